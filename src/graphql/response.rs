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

/// Errors raised by the GraphQL layer itself (syntax, validation, limits, input
/// coercion) carry no code; they are all the client's to fix.
pub fn ensure_codes(errors: &mut [async_graphql::ServerError]) {
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", code::BAD_USER_INPUT);
        }
    }
}
