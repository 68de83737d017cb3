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
