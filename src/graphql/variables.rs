//! A live operation's variables written into its document.
//!
//! async-graphql keeps a subscription's variables for as long as it runs, in a
//! `BTreeMap` whose first node holds room for eleven entries of ~88 bytes: about
//! 1 KiB per subscription however few variables it has (a widget's `messages` has
//! two), the largest single part of an idle subscribed connection that is ours to
//! change (`heaptrack` on bench S2; benches/README.md). Written into the document
//! as the literals they stand for, the map stays empty and allocates nothing.
//!
//! Only where the literal means exactly what the variable meant: every variable of
//! the operation is of a built-in scalar type (`ID`, `String`, `Int`, `Float`,
//! `Boolean`, or lists of them), so no enum or input object needs coercing; every
//! non-null one has a value; and the document holds this one operation. Anything
//! else runs as sent, and async-graphql reports its errors as it always does.

use async_graphql::parser::types::{
    BaseType, Directive, DocumentOperations, ExecutableDocument, OperationDefinition, Selection,
    SelectionSet, Type, VariableDefinition,
};
use async_graphql::{Name, Positioned, Variables};
use async_graphql_value::{ConstValue, Value};

/// Built-in scalars, whose literals and variable values coerce alike.
const SCALARS: [&str; 5] = ["ID", "String", "Int", "Float", "Boolean"];

/// Write `request`'s variables into its operation, and empty them, where that means
/// the same (see the module's documentation); otherwise leave it as it is.
pub fn inline(request: &mut async_graphql::Request) {
    if request.variables.is_empty() {
        return;
    }
    let variables = std::mem::take(&mut request.variables);
    let inlined = match request.parsed_query() {
        Ok(doc) => inlined(doc, &variables),
        Err(_) => None,
    };
    match inlined {
        Some(inlined) => request.set_parsed_query(inlined),
        None => request.variables = variables,
    }
}

/// `doc`, its one operation's variables written in. A document of several
/// operations is left as it is: written for one, the others' fragments and
/// variables could be left unused, which async-graphql refuses.
fn inlined(doc: &ExecutableDocument, variables: &Variables) -> Option<ExecutableDocument> {
    let definitions = match &doc.operations {
        DocumentOperations::Single(operation) => &operation.node.variable_definitions,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            &operations.values().next()?.node.variable_definitions
        }
        DocumentOperations::Multiple(_) => return None,
    };
    let values = Values {
        values: values(definitions, variables)?,
        undefined: std::cell::Cell::new(false),
    };
    let mut doc = doc.clone();
    let operation = match &mut doc.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) => operations.values_mut().next()?,
    };
    let OperationDefinition {
        variable_definitions,
        directives,
        selection_set,
        ..
    } = &mut operation.node;
    variable_definitions.clear();
    write_directives(directives, &values);
    write_selection(&mut selection_set.node, &values);
    for fragment in doc.fragments.values_mut() {
        write_directives(&mut fragment.node.directives, &values);
        write_selection(&mut fragment.node.selection_set.node, &values);
    }
    // A variable the operation does not define is an error async-graphql reports.
    (!values.undefined.get()).then_some(doc)
}

/// Each variable's value (`None`: not given and no default, so an argument set to
/// it counts as not given), or `None` when one cannot be written as a literal.
fn values(
    definitions: &[Positioned<VariableDefinition>],
    given: &Variables,
) -> Option<Vec<(Name, Option<ConstValue>)>> {
    let mut values = Vec::with_capacity(definitions.len());
    for definition in definitions {
        let definition = &definition.node;
        if !of_scalars(&definition.var_type.node) {
            return None;
        }
        let name = definition.name.node.clone();
        let value = given
            .get(&name)
            .cloned()
            .or_else(|| definition.default_value.as_ref().map(|d| d.node.clone()));
        let missing = matches!(value, None | Some(ConstValue::Null));
        if missing && !definition.var_type.node.nullable {
            return None;
        }
        if value.as_ref().is_some_and(|value| !plain(value)) {
            return None;
        }
        values.push((name, value));
    }
    Some(values)
}

/// Whether `ty` is a built-in scalar, or lists of them.
fn of_scalars(ty: &Type) -> bool {
    match &ty.base {
        BaseType::Named(name) => SCALARS.contains(&name.as_str()),
        BaseType::List(inner) => of_scalars(inner),
    }
}

/// Whether `value` is a scalar or a list of them.
fn plain(value: &ConstValue) -> bool {
    match value {
        ConstValue::Null | ConstValue::Number(_) | ConstValue::String(_) => true,
        ConstValue::Boolean(_) => true,
        ConstValue::List(items) => items.iter().all(plain),
        ConstValue::Binary(_) | ConstValue::Enum(_) | ConstValue::Object(_) => false,
    }
}

/// The operation's variables, and whether the document used one it does not
/// define.
struct Values {
    values: Vec<(Name, Option<ConstValue>)>,
    undefined: std::cell::Cell<bool>,
}

fn write_selection(set: &mut SelectionSet, values: &Values) {
    for item in &mut set.items {
        match &mut item.node {
            Selection::Field(field) => {
                write_arguments(&mut field.node.arguments, values);
                write_directives(&mut field.node.directives, values);
                write_selection(&mut field.node.selection_set.node, values);
            }
            Selection::FragmentSpread(spread) => {
                write_directives(&mut spread.node.directives, values);
            }
            Selection::InlineFragment(fragment) => {
                write_directives(&mut fragment.node.directives, values);
                write_selection(&mut fragment.node.selection_set.node, values);
            }
        }
    }
}

fn write_directives(directives: &mut [Positioned<Directive>], values: &Values) {
    for directive in directives {
        write_arguments(&mut directive.node.arguments, values);
    }
}

/// Arguments with their variables written in; one set to a variable that was not
/// given (and has no default) is dropped, as if not given.
fn write_arguments(arguments: &mut Vec<(Positioned<Name>, Positioned<Value>)>, values: &Values) {
    arguments.retain_mut(|(_, value)| match written(&value.node, values) {
        Some(written) => {
            value.node = written;
            true
        }
        None => false,
    });
}

/// `value` with its variables written in; `None` when it is a variable that was not
/// given. In a list such a variable is `null`, in an object its field is left out.
fn written(value: &Value, values: &Values) -> Option<Value> {
    Some(match value {
        Value::Variable(name) => {
            let Some((_, value)) = values.values.iter().find(|(n, _)| n == name) else {
                values.undefined.set(true);
                return None;
            };
            value.clone()?.into_value()
        }
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| written(item, values).unwrap_or(Value::Null))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), written(value, values)?)))
                .collect(),
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, variables: serde_json::Value) -> async_graphql::Request {
        async_graphql::Request::new(query).variables(Variables::from_json(variables))
    }

    /// The operation's selection, for comparing (without positions, which stay
    /// those of the text sent).
    fn shown(request: &mut async_graphql::Request) -> String {
        let doc = request.parsed_query().expect("parses");
        let (_, operation) = doc.operations.iter().next().expect("an operation");
        let mut text = format!("{:?}", operation.node.selection_set.node);
        while let Some(at) = text.find("pos: Pos(") {
            let end = at + text[at..].find("), ").expect("a position") + 3;
            text.replace_range(at..end, "");
        }
        text
    }

    fn same_as(query: &str) -> String {
        shown(&mut async_graphql::Request::new(query))
    }

    #[test]
    fn scalars_are_written_in_and_the_map_emptied() {
        let mut r = request(
            "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { seq } }",
            serde_json::json!({ "c": "conv_1", "after": 3 }),
        );
        inline(&mut r);
        assert!(r.variables.is_empty());
        assert_eq!(
            shown(&mut r),
            same_as("subscription { messages(conversationId: \"conv_1\", afterSeq: 3) { seq } }")
        );
    }

    #[test]
    fn a_variable_not_given_leaves_its_argument_out_and_a_default_is_used() {
        let mut r = request(
            "subscription($c: ID!, $after: Int, $d: Int = 7) { messages(conversationId: $c, afterSeq: $after) @include(if: true) { seq x: seq @skip(if: false) } f(list: [$after, $d], o: { a: $after, b: $d }) }",
            serde_json::json!({ "c": "conv_1" }),
        );
        inline(&mut r);
        assert!(r.variables.is_empty());
        assert_eq!(
            shown(&mut r),
            same_as(
                "subscription { messages(conversationId: \"conv_1\") @include(if: true) { seq x: seq @skip(if: false) } f(list: [null, 7], o: { b: 7 }) }"
            )
        );
    }

    #[test]
    fn fragments_are_written_too_in_a_document_of_one_operation() {
        let mut r = request(
            "query A($id: ID!) { a: node(id: $id) { ...F } } fragment F on Node { id @include(if: $on) }",
            serde_json::json!({ "id": "x" }),
        );
        // `$on` is not A's variable: left for async-graphql to refuse.
        inline(&mut r);
        assert!(!r.variables.is_empty());

        let mut r = request(
            "query A($id: ID!, $on: Boolean!) { a: node(id: $id) { ...F } } fragment F on Node { id @include(if: $on) }",
            serde_json::json!({ "id": "x", "on": true }),
        )
        .operation_name("A");
        inline(&mut r);
        assert!(r.variables.is_empty());
        let doc = r.parsed_query().expect("parses");
        let fragment = format!("{:?}", doc.fragments.values().next().expect("F").node);
        assert!(fragment.contains("Boolean(true)"), "{fragment}");
        assert!(!fragment.contains("Variable"), "{fragment}");
    }

    #[test]
    fn a_document_of_several_operations_runs_as_sent() {
        // Written for A, B's fragment and variable would be left unused.
        let mut r = request(
            "query A($id: ID!) { a: node(id: $id) { ...F } } query B($id: ID!) { b: node(id: $id) { ...G } } \
             fragment F on Node { id } fragment G on Node { id }",
            serde_json::json!({ "id": "x" }),
        )
        .operation_name("A");
        let before = format!("{:?}", r.parsed_query().expect("parses").operations);
        inline(&mut r);
        assert_eq!(
            r.variables,
            Variables::from_json(serde_json::json!({ "id": "x" }))
        );
        assert_eq!(
            format!("{:?}", r.parsed_query().expect("parses").operations),
            before
        );
    }

    #[test]
    fn what_a_literal_would_not_mean_alike_runs_as_sent() {
        for (query, variables) in [
            // An enum or an input object needs the schema to coerce.
            (
                "query($s: ConversationStatus) { conversations(filter: { status: $s }) { totalCount } }",
                serde_json::json!({ "s": "OPEN" }),
            ),
            (
                "query($f: ConversationFilterInput) { conversations(filter: $f) { totalCount } }",
                serde_json::json!({ "f": { "status": "OPEN" } }),
            ),
            // A required variable missing, or null: async-graphql says so.
            (
                "query($id: ID!) { node(id: $id) { id } }",
                serde_json::json!({ "other": 1 }),
            ),
            (
                "query($id: ID!) { node(id: $id) { id } }",
                serde_json::json!({ "id": null }),
            ),
            // A value that is not a scalar where a scalar is declared.
            (
                "query($id: ID) { node(id: $id) { id } }",
                serde_json::json!({ "id": { "a": 1 } }),
            ),
        ] {
            let mut r = request(query, variables.clone());
            let before = shown(&mut r);
            inline(&mut r);
            assert_eq!(r.variables, Variables::from_json(variables), "{query}");
            assert_eq!(shown(&mut r), before, "{query}");
        }
    }
}
