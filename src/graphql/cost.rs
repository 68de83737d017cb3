//! What a document costs: the most objects its answer can hold, counted before
//! anything runs, much as GitHub's GraphQL API counts nodes. A document that costs
//! more than the limit (`CASEFILE_MAX_QUERY_COST`, 20,000 by default) is refused
//! with `BAD_USER_INPUT`, `reason: QUERY_TOO_COSTLY`, and its `cost` and the `limit`.
//!
//! Each field counts the objects it returns, once for each object around it, so
//! nesting multiplies:
//! - a field that returns one object counts 1;
//! - a field with `first` (a connection) counts `first`, and inside it `edges` and
//!   `nodes` are lists of `first` items (`pageInfo` is one object).
//!   `conversations(first: 50) { edges { node { id lead { id } } } }` counts 50 + 50
//!   edges + 50 nodes + 50 leads = 200, and a `messages(first: 200)` inside it would
//!   count 200 for each of the 50 conversations. Without `first`, the default page
//!   (20) counts; a `first` above the largest page (200) counts as given, though
//!   the field refuses it;
//! - a list without `first` (a conversation's `tags`, a team's `members`, a
//!   message's `sources`, a case file's `transcript`) counts 5 items
//!   ([`UNPAGED_LIST`]), a typical length rather than a bound;
//! - scalars, enums and `__typename` count 0, and so do `__schema` and `__type`,
//!   whose answer the schema bounds.
//!
//! Every alias counts, a fragment counts at each spread, the fragments on each type
//! of an interface or union all count, and `@skip`/`@include` are ignored; fragments
//! spread inside one another more than 32 deep are too costly. Only the operation
//! that runs counts; a subscription counts per event. To lower a cost, ask for
//! smaller pages or nest fewer lists.
//!
//! A `first` may be a variable, so the cost is counted for every request: one walk
//! of the document against a table of the schema's fields, built once.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{OutputType, ServerError, SubscriptionType, Value, Variables};

use super::live::LiveSubscription;
use super::pagination::DEFAULT_PAGE;
use super::{Mutation, Query};
use crate::error::code;

/// `extensions.reason` of a document refused for its cost.
pub const QUERY_TOO_COSTLY: &str = "QUERY_TOO_COSTLY";

/// Items counted for a list that takes no `first`. These lists are short in
/// practice (the AI cites at most 3 sources, a conversation has a few tags), and a
/// larger figure would refuse documented operations: the inbox's escalation queue
/// nests a case file's `aiAnswers { sources }` inside `handoffs(first: 50)`.
pub const UNPAGED_LIST: usize = 5;

/// Fragments spread inside one another deeper than this make a document cost
/// [`usize::MAX`]: real documents nest a few, and the walk must not overflow its
/// stack.
const MAX_SPREAD_DEPTH: usize = 32;

/// `first` when neither the request nor the schema gives one: the page a connection
/// returns when not told.
const DEFAULT_FIRST: usize = DEFAULT_PAGE as usize;

static TABLE: LazyLock<CostTable> = LazyLock::new(CostTable::new);

/// Refuse the operation `operation_name` of `doc` when it costs more than `limit`;
/// otherwise its cost.
pub fn check(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    limit: usize,
) -> Result<usize, ServerError> {
    let cost = cost(doc, operation_name, variables);
    within(cost, limit).map(|()| cost)
}

/// Refuse a document that costs `cost` when that is more than `limit`.
pub fn within(cost: usize, limit: usize) -> Result<(), ServerError> {
    if cost <= limit {
        return Ok(());
    }
    let mut err = ServerError::new(
        format!(
            "this document could return {cost} objects, more than the limit of {limit}: \
             ask for smaller pages (a smaller `first`) or nest fewer lists"
        ),
        None,
    );
    let extensions = err.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code::BAD_USER_INPUT);
    extensions.set("reason", QUERY_TOO_COSTLY);
    extensions.set("cost", cost);
    extensions.set("limit", limit);
    Err(err)
}

/// A cost, and the variables it read for `first`, with the values the request gave
/// them (`None`: not given): the same document, operation and values cost the same.
pub struct Counted {
    pub cost: usize,
    pub inputs: Vec<(String, Option<Value>)>,
}

/// The cost of the operation that runs for `operation_name` (0 when none would).
pub fn cost(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> usize {
    count(doc, operation_name, variables).cost
}

/// The cost of the operation that runs, with what it depended on.
pub fn count(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Counted {
    let Some(operation) = running(doc, operation_name) else {
        return Counted {
            cost: 0,
            inputs: Vec::new(),
        };
    };
    let mut walk = Walk {
        doc,
        operation,
        variables,
        fragments: HashMap::new(),
        spreads: 0,
        inputs: Vec::new(),
    };
    let cost = walk.set(
        &operation.selection_set.node,
        TABLE.root(operation.ty),
        None,
    );
    Counted {
        cost,
        inputs: walk.inputs,
    }
}

/// The operation the executor picks: the one named, or the only one.
fn running<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = doc.operations.iter();
    match operation_name {
        Some(wanted) => {
            operations.find(|(name, _)| name.is_some_and(|name| name.as_str() == wanted))
        }
        None => operations.next().filter(|_| operations.next().is_none()),
    }
    .map(|(_, operation)| &operation.node)
}

/// One request's count over a document.
struct Walk<'a> {
    doc: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    /// Fragments counted, by name and enclosing page; `None` while one is being
    /// counted, so a cycle (which the validator refuses) counts 0 instead of looping.
    fragments: HashMap<(&'a str, Option<usize>), Option<usize>>,
    /// Fragments being counted, one inside another.
    spreads: usize,
    /// The variables read, with the request's values.
    inputs: Vec<(String, Option<Value>)>,
}

impl<'a> Walk<'a> {
    /// The objects `set` returns for one object of type `ty`; `page` is `first`
    /// when that object is a connection.
    fn set(&mut self, set: &'a SelectionSet, ty: &'a str, page: Option<usize>) -> usize {
        let mut sum = 0usize;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => self.field(&field.node, ty, page),
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let ty = fragment
                        .type_condition
                        .as_ref()
                        .map_or(ty, |condition| condition.node.on.node.as_str());
                    self.set(&fragment.selection_set.node, ty, page)
                }
                Selection::FragmentSpread(spread) => {
                    self.spread(spread.node.fragment_name.node.as_str(), page)
                }
            };
            sum = sum.saturating_add(cost);
        }
        sum
    }

    fn field(&mut self, field: &'a Field, ty: &str, page: Option<usize>) -> usize {
        // Leaves, `__typename`, introspection and unknown fields count nothing.
        let Some(returns) = TABLE.field(ty, &field.name.node) else {
            return 0;
        };
        let first = returns.first.map(|default| self.first(field, default));
        let children = &field.selection_set.node;
        match (returns.list, first) {
            (false, None) => 1usize.saturating_add(self.set(children, &returns.ty, None)),
            // A connection: its page, then what is asked of the page.
            (false, Some(first)) => {
                first.saturating_add(self.set(children, &returns.ty, Some(first)))
            }
            (true, first) => {
                let items = first.or(page).unwrap_or(UNPAGED_LIST);
                let each = 1usize.saturating_add(self.set(children, &returns.ty, None));
                items.saturating_mul(each)
            }
        }
    }

    fn spread(&mut self, name: &'a str, page: Option<usize>) -> usize {
        // An unknown fragment is the validator's to refuse.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return 0;
        };
        match self.fragments.get(&(name, page)) {
            Some(counted) => return counted.unwrap_or(0),
            None if self.spreads >= MAX_SPREAD_DEPTH => return usize::MAX,
            None => {}
        }
        self.fragments.insert((name, page), None);
        self.spreads += 1;
        let fragment = &fragment.node;
        let ty = fragment.type_condition.node.on.node.as_str();
        let cost = self.set(&fragment.selection_set.node, ty, page);
        self.spreads -= 1;
        self.fragments.insert((name, page), Some(cost));
        cost
    }

    /// The `first` a field asks for, as given or through a variable; `default` when
    /// it gives none. A negative `first` counts 0 (the field refuses it).
    fn first(&mut self, field: &Field, default: usize) -> usize {
        let given = field.get_argument("first").and_then(|value| {
            let mut read = Vec::new();
            let given = value
                .node
                .clone()
                .into_const_with(|name| {
                    read.push((name.to_string(), self.variables.get(&name).cloned()));
                    self.variable(&name).cloned().ok_or(())
                })
                .ok();
            self.inputs.extend(read);
            given
        });
        match given {
            Some(Value::Number(number)) => number.as_i64().map_or(default, |first| {
                usize::try_from(first.max(0)).unwrap_or(usize::MAX)
            }),
            _ => default,
        }
    }

    /// A variable's value: the request's, else the operation's default.
    fn variable(&self, name: &str) -> Option<&'a Value> {
        self.variables.get(name).or_else(|| {
            self.operation
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == name)
                .and_then(|definition| definition.node.default_value.as_ref())
                .map(|value| &value.node)
        })
    }
}

/// The schema's fields that return objects (leaves cost nothing), by type, built
/// once from the types the schema is built from.
struct CostTable {
    query: String,
    mutation: String,
    subscription: String,
    types: HashMap<String, HashMap<String, Returns>>,
}

/// What a field returns, for counting.
struct Returns {
    /// The object, interface or union type.
    ty: String,
    /// A list of them, rather than one.
    list: bool,
    /// It takes `first`, with this default.
    first: Option<usize>,
}

impl CostTable {
    fn new() -> CostTable {
        // `Schema` keeps its registry to itself; the root types give the same one.
        let mut registry = Registry::default();
        <Query as OutputType>::create_type_info(&mut registry);
        <Mutation as OutputType>::create_type_info(&mut registry);
        <LiveSubscription as SubscriptionType>::create_type_info(&mut registry);
        let composite = |name: &str| registry.types.get(name).is_some_and(MetaType::is_composite);
        let types = registry
            .types
            .values()
            .filter_map(|ty| Some((ty.name().to_owned(), ty.fields()?)))
            .map(|(name, fields)| {
                let fields = fields
                    .values()
                    .filter(|field| composite(MetaTypeName::concrete_typename(&field.ty)))
                    .map(|field| {
                        let first = field.args.get("first").map(|first| {
                            first
                                .default_value
                                .as_deref()
                                .and_then(|value| value.parse().ok())
                                .unwrap_or(DEFAULT_FIRST)
                        });
                        let returns = Returns {
                            ty: MetaTypeName::concrete_typename(&field.ty).to_owned(),
                            list: MetaTypeName::create(&field.ty).is_list(),
                            first,
                        };
                        (field.name.clone(), returns)
                    })
                    .collect();
                (name, fields)
            })
            .collect();
        CostTable {
            query: <Query as OutputType>::type_name().into_owned(),
            mutation: <Mutation as OutputType>::type_name().into_owned(),
            subscription: <LiveSubscription as SubscriptionType>::type_name().into_owned(),
            types,
        }
    }

    fn root(&self, operation: OperationType) -> &str {
        match operation {
            OperationType::Query => &self.query,
            OperationType::Mutation => &self.mutation,
            OperationType::Subscription => &self.subscription,
        }
    }

    fn field(&self, ty: &str, field: &str) -> Option<&Returns> {
        self.types.get(ty)?.get(field)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid query")
    }

    fn cost_with(query: &str, variables: serde_json::Value) -> usize {
        cost(&parse(query), None, &Variables::from_json(variables))
    }

    fn cost_of(query: &str) -> usize {
        cost_with(query, json!({}))
    }

    fn attack() -> String {
        let aliases: String = (0..29)
            .map(|i| format!("m{i}: messages(first: 200) {{ edges {{ node {{ id body }} }} }} "))
            .collect();
        format!("{{ conversations(first: 200) {{ edges {{ node {{ {aliases} }} }} }} }}")
    }

    #[test]
    fn scalars_count_nothing_and_objects_one_each() {
        assert_eq!(cost_of("{ __typename }"), 0);
        assert_eq!(cost_of("{ viewer { id name } }"), 1);
        // `teams` is a list without `first`.
        assert_eq!(cost_of("{ viewer { id teams { id } } }"), 1 + UNPAGED_LIST);
    }

    #[test]
    fn a_connection_counts_its_page_its_edges_and_their_objects() {
        let query = "{ conversations(first: 50) { totalCount pageInfo { hasNextPage } \
                     edges { node { id lead { id } } } } }";
        assert_eq!(cost_of(query), 50 + 1 + 50 * 3);
    }

    #[test]
    fn nested_connections_multiply() {
        let query =
            "{ conversations(first: 10) { nodes { messages(first: 30) { nodes { id } } } } }";
        // 10 conversations, each with a page of 30 and its 30 messages.
        assert_eq!(cost_of(query), 10 + 10 * (1 + 30 + 30));
    }

    #[test]
    fn every_alias_counts() {
        let once = cost_of("{ conversations(first: 10) { nodes { id } } }");
        let twice = cost_of(
            "{ a: conversations(first: 10) { nodes { id } } \
               b: conversations(first: 10) { nodes { id } } }",
        );
        assert_eq!((once, twice), (20, 40));
    }

    #[test]
    fn a_fragment_counts_at_each_spread() {
        let query =
            "{ a: viewer { ...T } b: viewer { ...T } } fragment T on Agent { teams { id } }";
        assert_eq!(cost_of(query), 2 * (1 + UNPAGED_LIST));
        let inline = "{ node(id: \"x\") { ... on Conversation { lead { id } } \
                      ... on Agent { workspace { id } } } }";
        assert_eq!(cost_of(inline), 3);
    }

    #[test]
    fn first_may_come_from_a_variable() {
        let query = "query($n: Int) { conversations(first: $n) { nodes { id } } }";
        assert_eq!(cost_with(query, json!({ "n": 100 })), 200);
        // Above the largest page, it counts as given.
        assert_eq!(cost_with(query, json!({ "n": 1000 })), 2000);
        let defaulted = "query($n: Int = 7) { conversations(first: $n) { nodes { id } } }";
        assert_eq!(cost_of(defaulted), 14);
    }

    #[test]
    fn without_first_the_default_page_counts() {
        let page = DEFAULT_PAGE as usize;
        assert_eq!(cost_of("{ conversations { nodes { id } } }"), 2 * page);
        let missing = "query($n: Int) { conversations(first: $n) { nodes { id } } }";
        assert_eq!(cost_of(missing), 2 * page);
    }

    #[test]
    fn only_the_operation_that_runs_counts() {
        let doc = parse(
            "query Small { viewer { id } } \
             query Large { conversations(first: 100) { nodes { id } } }",
        );
        let variables = Variables::default();
        assert_eq!(cost(&doc, Some("Small"), &variables), 1);
        assert_eq!(cost(&doc, Some("Large"), &variables), 200);
        assert_eq!(cost(&doc, None, &variables), 0, "no operation runs");
    }

    #[test]
    fn subscriptions_count_per_event() {
        let query = "subscription { inbox { conversation { id tags { source } } } }";
        assert_eq!(cost_of(query), 2 + UNPAGED_LIST);
    }

    #[test]
    fn a_fragment_cycle_counts_once() {
        let query = "{ viewer { ...A } } fragment A on Agent { teams { id } ...B } \
                     fragment B on Agent { ...A }";
        assert_eq!(cost_of(query), 1 + UNPAGED_LIST);
    }

    #[test]
    fn fragments_spreading_each_other_are_counted_once_each() {
        // Each fragment spreads the next twice: 2^20 spreads, 20 walks.
        let fan: String = (0..20)
            .map(|i| {
                let next = i + 1;
                let body = format!("a: teams {{ id }} ...F{next} b: teams {{ id }} ...F{next}");
                format!("fragment F{i} on Agent {{ {body} }} ")
            })
            .collect();
        let query = format!("{{ viewer {{ ...F0 }} }} {fan} fragment F20 on Agent {{ id }}");
        let each = 2 * UNPAGED_LIST;
        assert_eq!(cost_of(&query), 1 + each * ((1 << 20) - 1));
    }

    #[test]
    fn fragments_nested_too_deep_are_too_costly() {
        let chain: String = (0..40)
            .map(|i| format!("fragment F{i} on Agent {{ ...F{} }} ", i + 1))
            .collect();
        let query = format!("{{ viewer {{ ...F0 }} }} {chain} fragment F40 on Agent {{ id }}");
        assert_eq!(cost_of(&query), usize::MAX);
    }

    #[test]
    fn the_aliased_messages_attack_is_refused() {
        let doc = parse(&attack());
        let err = check(&doc, None, &Variables::default(), 20_000).expect_err("refused");
        let extensions = err.extensions.expect("extensions");
        assert_eq!(
            extensions.get("reason"),
            Some(&Value::from(QUERY_TOO_COSTLY))
        );
        assert_eq!(extensions.get("limit"), Some(&Value::from(20_000)));
        let cost = cost(&doc, None, &Variables::default());
        assert!(cost > 1_000_000, "{cost}");
        assert_eq!(extensions.get("cost"), Some(&Value::from(cost)));
    }
}
