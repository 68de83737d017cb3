//! Per-document checks that async-graphql does not make: aliases per document, and
//! no mutations over `GET` (a link or an `<img>` must never change anything). Depth
//! and complexity are limited by the schema builder.
//!
//! These run on the document the handler parses once and hands to the executor; an
//! async-graphql extension would do the same but costs a hook on every field.

use async_graphql::ServerError;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

use crate::config::limits::MAX_ALIASES;
use crate::error::code;

/// What the checked document asks for.
pub struct DocumentKind {
    /// It contains a mutation or subscription.
    pub writes: bool,
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

/// Check a parsed document; `read_only` when it arrived over `GET`.
pub fn check(doc: &ExecutableDocument, read_only: bool) -> Result<DocumentKind, ServerError> {
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
    Ok(DocumentKind { writes })
}

/// Parsed documents by query text. Clients send the same few operations over and
/// over; parsing each again costs more than copying the parsed one.
#[derive(Default)]
pub struct DocumentCache(std::sync::RwLock<std::collections::HashMap<String, ExecutableDocument>>);

/// Documents kept at most (past that the cache starts over), and the longest query
/// text kept.
const CACHED_DOCUMENTS: usize = 500;
const CACHED_QUERY_BYTES: usize = 16 * 1024;

impl DocumentCache {
    /// Parse (or recall) the request's document and check it; the parsed document
    /// stays in the request for the executor.
    pub fn prepare(
        &self,
        request: &mut async_graphql::Request,
        read_only: bool,
    ) -> Result<DocumentKind, ServerError> {
        let cached = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&request.query)
            .cloned();
        match cached {
            Some(doc) => request.set_parsed_query(doc),
            None => {
                let doc = request.parsed_query()?.clone();
                if request.query.len() <= CACHED_QUERY_BYTES {
                    let mut cache = self
                        .0
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if cache.len() >= CACHED_DOCUMENTS {
                        cache.clear();
                    }
                    cache.insert(request.query.clone(), doc);
                }
            }
        }
        check(request.parsed_query()?, read_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid query")
    }

    #[test]
    fn aliases_in_fragments_count_once() {
        let doc =
            parse("query { a: viewer { ...F } b: viewer { ...F } } fragment F on Agent { x: id }");
        assert!(check(&doc, false).is_ok());
        let many: String = (0..=MAX_ALIASES)
            .map(|i| format!("a{i}: viewer {{ id }} "))
            .collect();
        assert!(check(&parse(&format!("{{ {many} }}")), false).is_err());
    }

    #[test]
    fn writes_are_refused_when_read_only() {
        let doc = parse("mutation { signIn(email: \"a\", password: \"b\") { token } }");
        assert!(check(&doc, true).is_err());
        assert!(check(&doc, false).is_ok_and(|kind| kind.writes));
    }
}
