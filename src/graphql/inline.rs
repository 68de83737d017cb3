//! Objects whose fields resolve one after the other inside a single future.
//!
//! async-graphql resolves every field of an object as a boxed future of its own,
//! sized for the object's largest resolver and polled through a `FuturesUnordered`
//! (an `Arc` task each), so that fields waiting on I/O make progress together. An
//! inbox row has about 35 fields in ten objects, nearly all of them already in
//! memory (the page prefetches its relations into the request's loaders), and that
//! machinery was about a third of the server's CPU per inbox page (benches/README,
//! "Q1, round four").
//!
//! [`Inline<T>`] is `T` in the schema (same name, fields and introspection) and
//! resolves the selected fields in document order, awaiting each in turn, into the
//! same map async-graphql would build: aliases, fragments, `__typename`, repeated
//! response keys merged, and a failing field reported in `errors` while its
//! neighbours resolve. The one difference is that a field waiting on I/O holds back
//! the fields after it in the same object. Use it for objects whose fields are in
//! memory or come from the request's DataLoaders: the rows of a list still resolve
//! concurrently, so their loads are still batched, one batch per field.
//!
//! Extensions' per-field hooks (`Extension::resolve`) are not called for these
//! fields: casefile's schema registers no extension (see `graphql::schema`),
//! and one that needs the hook must switch these objects back. With a custom
//! directive in the schema it resolves the way async-graphql does.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_container;
use async_graphql::{
    ContainerType, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult,
    Value,
};

/// `T`, resolved field after field (see the module's documentation).
pub struct Inline<T>(pub T);

impl<T: ContainerType> OutputType for Inline<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if !ctx.schema_env.custom_directives.is_empty() {
            return resolve_container(ctx, &self.0).await;
        }
        resolve_in_order(ctx, &self.0).await
    }
}

async fn resolve_in_order<T: ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    let mut fields = Vec::with_capacity(ctx.item.node.items.len());
    collect(ctx, root, ctx.item, &mut fields)?;
    let mut results = IndexMap::with_capacity(fields.len());
    for field in fields {
        let key = field.node.response_key().node.clone();
        if field.node.name.node == "__typename" {
            insert(
                &mut results,
                key,
                Value::String(root.introspection_type_name().into_owned()),
            );
            continue;
        }
        let ctx_field = ctx.with_field(field);
        match root.resolve_field(&ctx_field).await {
            Ok(value) => insert(&mut results, key, value.unwrap_or_default()),
            Err(error) => ctx.add_error(error),
        }
    }
    Ok(if results.is_empty() {
        Value::Null
    } else {
        Value::Object(results)
    })
}

/// The fields of `set` that apply to `root`, fragments spread, in document order.
fn collect<'a, T: ContainerType>(
    ctx: &ContextSelectionSet<'a>,
    root: &T,
    set: &'a Positioned<SelectionSet>,
    fields: &mut Vec<&'a Positioned<Field>>,
) -> ServerResult<()> {
    for selection in &set.node.items {
        let (condition, inner) = match &selection.node {
            Selection::Field(field) => {
                fields.push(field);
                continue;
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let Some(fragment) = ctx.query_env.fragments.get(name) else {
                    return Err(ServerError::new(
                        format!(r#"Unknown fragment "{name}"."#),
                        Some(spread.pos),
                    ));
                };
                (
                    Some(&fragment.node.type_condition),
                    &fragment.node.selection_set,
                )
            }
            Selection::InlineFragment(fragment) => (
                fragment.node.type_condition.as_ref(),
                &fragment.node.selection_set,
            ),
        };
        let applies = condition.is_none_or(|condition| {
            let on = condition.node.on.node.as_str();
            let name = root.introspection_type_name();
            name == on
                || ctx
                    .schema_env
                    .registry
                    .implements
                    .get(name.as_ref())
                    .is_some_and(|interfaces| interfaces.contains(on))
        });
        if applies {
            collect(ctx, root, inner, fields)?;
        }
    }
    Ok(())
}

/// Adds a field's value under its response key; a key selected twice (`lead { name }`
/// and `lead { email }` from two fragments) has its objects merged, as async-graphql
/// merges them.
fn insert(target: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    let Some(previous) = target.get_mut(&key) else {
        target.insert(key, value);
        return;
    };
    match (previous, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                insert(into, key, value);
            }
        }
        (Value::List(into), Value::List(from)) => {
            for (into, from) in into.iter_mut().zip(from) {
                if let (Value::Object(into), Value::Object(from)) = (into, from) {
                    for (key, value) in from {
                        insert(into, key, value);
                    }
                }
            }
        }
        _ => {}
    }
}
