//! The HTTP surface: `/graphql` (POST to execute, GET for GraphiQL or read-only
//! queries), `/healthz`, and serving until shutdown.

use std::future::Future;
use std::net::SocketAddr;

use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::Principal;
use crate::error::{AppError, code};
use crate::graphql::{AppSchema, RequestAuth};
use crate::loaders;
use crate::state::AppState;
use crate::ws;

/// Whether this build serves the demo pages at `/demo/widget` and `/demo/inbox`.
pub const DEMO_PAGES: bool = true;

#[derive(Clone)]
struct Shared {
    state: AppState,
    schema: AppSchema,
}

/// The router of a server over `state`.
pub fn router(state: AppState) -> Router {
    let schema = crate::graphql::schema(Some(state.clone()));
    let max_body = state.config.max_body_bytes;
    // Widgets run on customers' sites: any origin may call the API. Credentials are
    // bearer tokens, never cookies, so this grants nothing a token does not.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    let exports = Router::new()
        .route("/export/leads.csv", get(crate::export::leads))
        .route(
            "/export/conversations.csv",
            get(crate::export::conversations),
        )
        .with_state(state.clone());
    let pages = crate::demo_pages::router(state.clone());
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .with_state(Shared { state, schema })
        .merge(exports)
        .merge(pages)
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(cors)
}

/// Serve on `listener` until `shutdown` completes, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error response outside GraphQL execution (transport problems), in the same
/// shape as GraphQL errors.
fn transport_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

fn app_error(err: AppError) -> Response {
    transport_error(StatusCode::OK, err.code(), &err.message())
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::Unauthenticated("token is malformed"))
        })
        .transpose()?;
    crate::domain::api_keys::authenticate(state, value).await
}

/// Execute one GraphQL request as `principal`; `read_only` when it came over `GET`.
pub async fn execute(
    state: &AppState,
    schema: &AppSchema,
    mut request: async_graphql::Request,
    principal: Option<Principal>,
    read_only: bool,
) -> async_graphql::Response {
    // Parse once, check, and hand the parsed document to the executor.
    let kind = match state.documents.prepare(&mut request, read_only) {
        Ok(kind) => kind,
        Err(err) => {
            let mut errors = vec![err];
            ensure_codes(&mut errors);
            return async_graphql::Response::from_errors(errors);
        }
    };
    let sees_internal = principal.as_ref().is_some_and(Principal::sees_internal);
    // Queries share what they loaded across the request; a mutation reads what it
    // just wrote, so nothing is cached for it.
    let loaders = loaders::LazyLoaders::new(state, sees_internal, !kind.writes);
    let request = request.data(RequestAuth::new(principal)).data(loaders);
    let mut response = schema.execute(request).await;
    ensure_codes(&mut response.errors);
    response
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

async fn graphql_post(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return transport_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "POST /graphql needs `Content-Type: application/json`",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return transport_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BAD_USER_INPUT,
                &format!(
                    "request body is larger than {} bytes",
                    shared.state.config.max_body_bytes
                ),
            );
        }
        Err(_) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "could not read the request body",
            );
        }
    };
    // One pass over the body: a batch (a JSON array) is recognised by its first byte.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return transport_error(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "batched requests are not supported: send one operation per request",
        );
    }
    let request = match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => request,
        Err(_) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "the body must be a JSON object with `query`, and optionally `variables` and `operationName`",
            );
        }
    };
    let principal = match principal(&shared.state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return app_error(err),
    };
    axum::Json(execute(&shared.state, &shared.schema, request, principal, false).await)
        .into_response()
}

async fn graphql_get(
    State(shared): State<Shared>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return websocket(shared, headers, upgrade).await;
    }
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .title("Casefile GraphiQL")
                .finish(),
        )
        .into_response();
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(_) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "could not parse the query string",
            );
        }
    };
    let principal = match principal(&shared.state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return app_error(err),
    };
    axum::Json(execute(&shared.state, &shared.schema, request, principal, true).await)
        .into_response()
}

/// Upgrade to GraphQL over WebSocket. Credentials normally come in
/// `connection_init`; an `Authorization` header on the upgrade (non-browser
/// clients) is the fallback.
async fn websocket(shared: Shared, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    let header_principal = match principal(&shared.state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return transport_error(StatusCode::UNAUTHORIZED, err.code(), &err.message()),
    };
    let upgrade = upgrade
        .protocols(ws::PROTOCOLS)
        .read_buffer_size(ws::READ_BUFFER)
        .write_buffer_size(ws::WRITE_BUFFER)
        .max_message_size(shared.state.config.max_body_bytes);
    let protocol =
        ws::Protocol::from_header(upgrade.selected_protocol().and_then(|p| p.to_str().ok()));
    let Shared { state, schema } = shared;
    upgrade.on_upgrade(move |socket| {
        let tracker = state.connections.clone();
        tracker.track_future(ws::serve(socket, protocol, state, schema, header_principal))
    })
}

async fn healthz(State(shared): State<Shared>) -> Response {
    match shared.state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(err) => {
            tracing::warn!(error.detail = ?err, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
