//! Per-document checks that async-graphql does not make: aliases per document, no
//! mutations over `GET` (a link or an `<img>` must never change anything), one
//! `signIn` per document (aliases would otherwise try many passwords in one request),
//! and the document's cost ([`super::cost`]). Depth is limited by the schema builder;
//! the nesting of brackets is counted on the text, before it is parsed. Text holding
//! the NUL character (U+0000), which PostgreSQL cannot store, is refused here too,
//! whether it comes as a literal or in the variables, on every database alike.
//!
//! These run on the document the handler parses once and hands to the executor; an
//! async-graphql extension would do the same but costs a hook on every field.

use async_graphql::ServerError;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

use crate::config::limits::{MAX_ALIASES, MAX_NESTING};
use crate::error::code;

/// What the checked document asks for.
pub struct DocumentKind {
    /// It contains a mutation or subscription.
    pub writes: bool,
    /// It contains a mutation.
    pub mutates: bool,
}

fn refused(message: String) -> ServerError {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code::BAD_USER_INPUT);
    err
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some())
                    + count_aliases(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => count_aliases(&fragment.node.selection_set.node),
            // Fragment definitions are counted once each, not at every spread.
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// How deep the brackets (`{`, `[`, `(`) of `query` nest outside strings and
/// comments, read as GraphQL's lexer reads them. Counted before parsing, since the
/// parser recurses once per level of a list or object value without a bound.
fn nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0);
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(b"\"\"\"") {
            // A block string ends at the next `"""` that is not `\"""`.
            at += 3;
            while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                at += if bytes[at..].starts_with(b"\\\"\"\"") {
                    4
                } else {
                    1
                };
            }
            at += 3;
            continue;
        }
        match rest[0] {
            b'#' => {
                while at < bytes.len() && !matches!(bytes[at], b'\n' | b'\r') {
                    at += 1;
                }
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && !matches!(bytes[at], b'"' | b'\n' | b'\r') {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

/// Whether a string anywhere in `value` (keys included) holds the NUL character.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// Refuse `what` if it holds the NUL character anywhere.
fn refuse_nul(what: &impl serde::Serialize, place: &str) -> Result<(), ServerError> {
    let value = serde_json::to_value(what)
        .map_err(|err| refused(format!("the {place} cannot be read: {err}")))?;
    if holds_nul(&value) {
        return Err(refused(format!(
            "the {place} hold the NUL character (U+0000), which no text may contain"
        )));
    }
    Ok(())
}

/// Root fields named `name` in `set`, through inline fragments and fragment spreads
/// (at each spread; `depth` bounds spreads of spreads).
fn count_root_fields(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    name: &str,
    depth: usize,
) -> usize {
    if depth > 32 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => usize::from(field.node.name.node == name),
            Selection::InlineFragment(fragment) => {
                count_root_fields(doc, &fragment.node.selection_set.node, name, depth + 1)
            }
            Selection::FragmentSpread(spread) => doc
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |fragment| {
                    count_root_fields(doc, &fragment.node.selection_set.node, name, depth + 1)
                }),
        })
        .sum()
}

/// Check a parsed document; `read_only` when it arrived over `GET`;
/// `introspection` when the server answers `__schema` and `__type`.
pub fn check(
    doc: &ExecutableDocument,
    read_only: bool,
    introspection: bool,
) -> Result<DocumentKind, ServerError> {
    let writes = doc
        .operations
        .iter()
        .any(|(_, op)| op.node.ty != OperationType::Query);
    if read_only && writes {
        return Err(refused(
            "mutations and subscriptions must be sent with POST".into(),
        ));
    }
    let aliases: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count_aliases(&op.node.selection_set.node))
        .chain(
            doc.fragments
                .values()
                .map(|f| count_aliases(&f.node.selection_set.node)),
        )
        .sum();
    if aliases > MAX_ALIASES {
        return Err(refused(format!(
            "too many aliases ({aliases} > {MAX_ALIASES})"
        )));
    }
    let sign_ins: usize = doc
        .operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Mutation)
        .map(|(_, op)| count_root_fields(doc, &op.node.selection_set.node, "signIn", 0))
        .sum();
    if sign_ins > 1 {
        return Err(refused(
            "a document may contain one `signIn`: send one request per sign-in".into(),
        ));
    }
    if !introspection {
        let asks = doc.operations.iter().any(|(_, op)| {
            let root = &op.node.selection_set.node;
            count_root_fields(doc, root, "__schema", 0) + count_root_fields(doc, root, "__type", 0)
                > 0
        });
        if asks {
            // As Apollo Server says it, and as scanners read it: an error, not data.
            let mut err = ServerError::new(
                "GraphQL introspection is off on this server (CASEFILE_INTROSPECTION=false): \
                 the query asked for __schema or __type",
                None,
            );
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", code::GRAPHQL_VALIDATION_FAILED);
            return Err(err);
        }
    }
    let mutates = doc
        .operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation);
    Ok(DocumentKind { writes, mutates })
}

/// Parsed documents by query text, with their costs. Clients send the same few
/// operations over and over; parsing (and costing) each again costs more than
/// copying the parsed one.
#[derive(Default)]
pub struct DocumentCache(
    std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Cached>>>,
);

/// A parsed document and the costs counted for it.
pub struct Cached {
    doc: ExecutableDocument,
    costs: std::sync::Mutex<Vec<Memo>>,
}

/// The cost of one operation of a document, for the values its `first`s read.
struct Memo {
    operation: Option<String>,
    inputs: Vec<(String, Option<async_graphql::Value>)>,
    cost: usize,
}

/// Costs remembered per document (different operations or page sizes).
const MEMOS: usize = 16;

impl Cached {
    fn new(doc: ExecutableDocument) -> Cached {
        Cached {
            doc,
            costs: Default::default(),
        }
    }

    /// The cost of `request`'s operation: remembered, or counted and remembered.
    fn cost(&self, request: &async_graphql::Request) -> usize {
        let operation = request.operation_name.as_deref();
        let memos = || {
            self.costs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let known = memos().iter().find_map(|memo| {
            let same = memo.operation.as_deref() == operation
                && memo
                    .inputs
                    .iter()
                    .all(|(name, value)| request.variables.get(name.as_str()) == value.as_ref());
            same.then_some(memo.cost)
        });
        if let Some(cost) = known {
            return cost;
        }
        let counted = super::cost::count(&self.doc, operation, &request.variables);
        let mut memos = memos();
        if memos.len() < MEMOS {
            memos.push(Memo {
                operation: operation.map(str::to_owned),
                inputs: counted.inputs,
                cost: counted.cost,
            });
        }
        counted.cost
    }
}

/// Documents kept at most (past that the cache starts over), and the longest query
/// text kept.
const CACHED_DOCUMENTS: usize = 500;
const CACHED_QUERY_BYTES: usize = 16 * 1024;

impl DocumentCache {
    /// Parse (or recall) the request's document and check it, its cost against
    /// `max_cost` included (a cost depends on the variables, so it is counted for
    /// every request); the parsed document stays in the request for the executor.
    pub fn prepare(
        &self,
        request: &mut async_graphql::Request,
        read_only: bool,
        introspection: bool,
        max_cost: usize,
    ) -> Result<DocumentKind, ServerError> {
        let cached = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&request.query)
            .cloned();
        let cached = match cached {
            Some(cached) => cached,
            None => {
                let deepest = nesting(&request.query);
                if deepest > MAX_NESTING {
                    return Err(refused(format!(
                        "the document nests brackets {deepest} deep, more than {MAX_NESTING}"
                    )));
                }
                let doc = async_graphql::parser::parse_query(&request.query)?;
                refuse_nul(&doc, "document's strings")?;
                let cached = std::sync::Arc::new(Cached::new(doc));
                if request.query.len() <= CACHED_QUERY_BYTES {
                    let mut cache = self
                        .0
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if cache.len() >= CACHED_DOCUMENTS {
                        cache.clear();
                    }
                    cache.insert(request.query.clone(), cached.clone());
                }
                cached
            }
        };
        refuse_nul(&request.variables, "variables")?;
        let kind = check(&cached.doc, read_only, introspection)?;
        super::cost::within(cached.cost(request), max_cost)?;
        request.set_parsed_query(cached.doc.clone());
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid query")
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        assert_eq!(nesting("{ a(x: [[1]], y: {z: 2}) { b } }"), 4);
        assert_eq!(nesting(r#"{ a(x: "[[[[\"{{{") }"#), 2);
        assert_eq!(nesting("{ a # [[[[{{{{\n b }"), 1);
        assert_eq!(nesting(r#"{ a(x: """ [[[ \""" {{{ """) }"#), 2);
        assert_eq!(nesting("{ a(x: \"open\n[[[ ) }"), 5);
    }

    #[test]
    fn the_nul_character_is_found_wherever_it_is() {
        let nul = |query: &str| refuse_nul(&parse(query), "document's strings").is_err();
        assert!(nul(r#"{ articles(query: "a\u0000b") { totalCount } }"#));
        assert!(nul(
            r#"{ leads(filter: { query: ["x", {a: "\u0000"}] }) { totalCount } }"#
        ));
        assert!(nul(r#"{ a @include(if: "\u0000") }"#));
        assert!(
            !nul(r#"{ articles(query: "a\\u0000b") { totalCount } }"#),
            "an escaped backslash"
        );
        let variables = async_graphql::Variables::from_json(
            serde_json::json!({ "v": { "k": ["ok", "no\u{0}"] } }),
        );
        assert!(refuse_nul(&variables, "variables").is_err());
        let fine = async_graphql::Variables::from_json(serde_json::json!({ "v": "fine" }));
        assert!(refuse_nul(&fine, "variables").is_ok());
    }

    #[test]
    fn aliases_in_fragments_count_once() {
        let doc =
            parse("query { a: viewer { ...F } b: viewer { ...F } } fragment F on Agent { x: id }");
        assert!(check(&doc, false, true).is_ok());
        let many: String = (0..=MAX_ALIASES)
            .map(|i| format!("a{i}: viewer {{ id }} "))
            .collect();
        assert!(check(&parse(&format!("{{ {many} }}")), false, true).is_err());
    }

    #[test]
    fn a_remembered_cost_follows_the_variables_it_read() {
        let cache = DocumentCache::default();
        let query = "query($n: Int) { conversations(first: $n) { edges { node { messages(first: 200) { edges { node { id } } } } } } }";
        let request = |n: i64| {
            async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(
                serde_json::json!({ "n": n }),
            ))
        };
        assert!(cache.prepare(&mut request(2), false, true, 20_000).is_ok());
        assert!(
            cache
                .prepare(&mut request(200), false, true, 20_000)
                .is_err()
        );
        assert!(cache.prepare(&mut request(2), false, true, 20_000).is_ok());
    }

    #[test]
    fn one_sign_in_per_document() {
        let one = parse("mutation { signIn(email: \"a\", password: \"b\") { token } }");
        assert!(check(&one, false, true).is_ok());
        let two = parse(
            "mutation { a: signIn(email: \"a\", password: \"b\") { token } b: signIn(email: \"a\", password: \"c\") { token } }",
        );
        assert!(check(&two, false, true).is_err());
        let spread = parse(
            "mutation { ...S ...S } fragment S on Mutation { signIn(email: \"a\", password: \"b\") { token } }",
        );
        assert!(check(&spread, false, true).is_err());
    }

    #[test]
    fn writes_are_refused_when_read_only() {
        let doc = parse("mutation { signIn(email: \"a\", password: \"b\") { token } }");
        assert!(check(&doc, true, true).is_err());
        assert!(check(&doc, false, true).is_ok_and(|kind| kind.writes));
    }
}
