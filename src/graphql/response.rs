//! What a GraphQL response looks like on the wire, the same over HTTP and
//! WebSocket: every error has its `extensions.code`, a panic is an `INTERNAL` error
//! of its operation alone, and a response over the size limit is replaced by an
//! error saying so.

use serde_json::json;

use crate::error::{AppError, code};

/// The JSON of a GraphQL response, or an error in its place when it is larger than
/// `CASEFILE_MAX_RESPONSE_BYTES`.
pub fn serialise_response(max: usize, response: &async_graphql::Response) -> String {
    match serde_json::to_string(response) {
        Ok(json) if json.len() <= max => json,
        Ok(json) => {
            tracing::warn!(
                bytes = json.len(),
                max,
                "a response over the size limit was replaced"
            );
            json!({ "errors": [{
                "message": format!("the response would be {} bytes, more than the {max} allowed: ask for fewer objects (smaller `first`)", json.len()),
                "extensions": { "code": code::BAD_USER_INPUT, "reason": "RESPONSE_TOO_LARGE", "limit": max },
            }]})
            .to_string()
        }
        Err(err) => {
            tracing::error!(error.detail = %err, "serialising a response failed");
            json!({ "errors": [{ "message": "internal error", "extensions": { "code": code::INTERNAL } }] })
                .to_string()
        }
    }
}

/// The response of an operation that panicked: an `INTERNAL` error for it alone (the
/// panic hook has logged the cause).
pub fn panicked() -> async_graphql::Response {
    let err = AppError::internal("a resolver panicked");
    let mut error = async_graphql::ServerError::new(err.message(), None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code::INTERNAL);
    async_graphql::Response::from_errors(vec![error])
}

/// Errors a response carries at most: the rest are summarised in one more.
pub const MAX_ERRORS: usize = 100;

/// Errors raised by the GraphQL layer itself (syntax, validation, limits, input
/// coercion) carry no code; they are all the client's to fix. Past
/// [`MAX_ERRORS`], the first 99 stay and one error says how many were left out (a
/// 90 KB document of repeated unknown directives would otherwise be answered with
/// megabytes of errors).
pub fn ensure_codes(errors: &mut Vec<async_graphql::ServerError>) {
    if errors.len() > MAX_ERRORS {
        let omitted = errors.len() - (MAX_ERRORS - 1);
        errors.truncate(MAX_ERRORS - 1);
        let mut summary = async_graphql::ServerError::new(
            format!("{omitted} more errors left out: fix these first"),
            None,
        );
        let ext = summary.extensions.get_or_insert_with(Default::default);
        ext.set("code", code::BAD_USER_INPUT);
        ext.set("reason", "TOO_MANY_ERRORS");
        ext.set("omitted", omitted as u64);
        errors.push(summary);
    }
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", code::BAD_USER_INPUT);
        }
    }
}
