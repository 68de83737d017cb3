//! The HTTP surface: `/graphql` (POST to execute, GET for GraphiQL or read-only
//! queries), `/healthz`, and serving until shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::Principal;
use crate::error::{AppError, code};
use crate::graphql::AppSchema;
use crate::net::Connections;
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
    let schema = crate::graphql::schema(Some(state.core.clone()));
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
        .route("/graphiql/{file}", get(graphiql_asset))
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
    crate::net::serve(listener, router(state.clone()), state, shutdown).await
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

/// A whole request refused for rate: 429 with `Retry-After`, and the GraphQL error
/// with `retryAfter`.
pub fn rate_limited(err: AppError) -> Response {
    let retry_after = match &err {
        AppError::RateLimited { retry_after, .. } => *retry_after,
        _ => crate::net::RETRY_AFTER_SECONDS,
    };
    let body = json!({ "errors": [{
        "message": err.message(),
        "extensions": { "code": err.code(), "retryAfter": retry_after },
    }]});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

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

fn json_response(state: &AppState, response: &async_graphql::Response) -> Response {
    let max = state.config.limits.max_response_bytes;
    let mut answer = Response::new(Body::from(serialise_response(max, response)));
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
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

/// Execute one GraphQL request as `principal` from `client`; `read_only` when it
/// came over `GET`. A panic in a resolver becomes an `INTERNAL` error of this
/// request alone.
pub async fn execute(
    state: &AppState,
    schema: &AppSchema,
    request: async_graphql::Request,
    principal: Option<Principal>,
    client: IpAddr,
    read_only: bool,
) -> async_graphql::Response {
    // Parse once, check, and hand the parsed document to the executor.
    let request = match crate::graphql::prepare(
        state,
        &state.documents,
        request,
        principal,
        client,
        read_only,
        false,
    ) {
        Ok(request) => request,
        Err(err) => {
            let mut errors = vec![err];
            ensure_codes(&mut errors);
            return async_graphql::Response::from_errors(errors);
        }
    };
    let mut response = AssertUnwindSafe(schema.execute(request))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| panicked());
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

/// The caller's principal and address, or the answer that refuses it: bad
/// credentials, or a token over its rate.
async fn caller(
    shared: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(Option<Principal>, IpAddr), Response> {
    let client = crate::net::client_ip(
        peer.ip(),
        headers,
        &shared.state.config.limits.trusted_proxies,
    );
    let principal = principal(&shared.state, headers).await.map_err(app_error)?;
    if let Some(principal) = &principal {
        shared.state.rate.request(principal).map_err(rate_limited)?;
    }
    Ok((principal, client))
}

/// Execute under the request time-out: past it, 503.
async fn respond(
    shared: &Shared,
    request: async_graphql::Request,
    (principal, client): (Option<Principal>, IpAddr),
    read_only: bool,
) -> Response {
    let state = &shared.state;
    let limit = state.config.limits.http_request_timeout;
    // Boxed: the execution's future is large, and moving it into the time-out and
    // the handler's future would copy it at each step.
    let executing = Box::pin(execute(
        state,
        &shared.schema,
        request,
        principal,
        client,
        read_only,
    ));
    match tokio::time::timeout(limit, executing).await {
        Ok(response) => json_response(state, &response),
        Err(_) => transport_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVICE_UNAVAILABLE,
            &format!("the request did not finish within {limit:?}; try again"),
        ),
    }
}

async fn graphql_post(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
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
    let limits = &shared.state.config;
    let reading = axum::body::to_bytes(body, limits.max_body_bytes);
    let body = match tokio::time::timeout(limits.limits.http_body_timeout, reading).await {
        Ok(Ok(body)) => body,
        Ok(Err(err)) if is_too_large(&err) => {
            return transport_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BAD_USER_INPUT,
                &format!(
                    "request body is larger than {} bytes",
                    limits.max_body_bytes
                ),
            );
        }
        Ok(Err(_)) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "could not read the request body",
            );
        }
        Err(_) => {
            return transport_error(
                StatusCode::REQUEST_TIMEOUT,
                code::BAD_USER_INPUT,
                &format!(
                    "the request body did not arrive within {:?}",
                    limits.limits.http_body_timeout
                ),
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
    match caller(&shared, &headers, peer).await {
        Ok(caller) => respond(&shared, request, caller, false).await,
        Err(refused) => refused,
    }
}

/// Whether reading a body failed on the size limit (rather than the connection).
fn is_too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// GraphiQL, compiled into the binary from the committed `graphiql/dist` build
/// (the npm `graphiql` package with the explorer, and subscriptions over
/// `graphql-ws` to `/graphql`): it works on a network with no way out.
mod graphiql {
    use std::sync::LazyLock;

    use crate::assets::Asset;

    const PAGE: &str = include_str!("../graphiql/dist/index.html");
    pub static JS: Asset = Asset::new(
        include_str!("../graphiql/dist/graphiql.js"),
        "text/javascript; charset=utf-8",
    );
    pub static CSS: Asset = Asset::new(
        include_str!("../graphiql/dist/graphiql.css"),
        "text/css; charset=utf-8",
    );

    /// The page, its assets' URLs carrying a digest of their content, so that
    /// browsers may keep them as long as they like and still get a new build's.
    pub fn page() -> &'static str {
        static PAGE_WITH_DIGESTS: LazyLock<String> = LazyLock::new(|| {
            PAGE.replace(
                "/graphiql/graphiql.js",
                &format!("/graphiql/graphiql.js?v={}", digest(JS.body())),
            )
            .replace(
                "/graphiql/graphiql.css",
                &format!("/graphiql/graphiql.css?v={}", digest(CSS.body())),
            )
        });
        &PAGE_WITH_DIGESTS
    }

    /// FNV-1a of `text`, in hex: enough to tell builds apart.
    fn digest(text: &str) -> String {
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    }
}

async fn graphiql_asset(
    State(shared): State<Shared>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if !shared.state.config.graphiql {
        return StatusCode::NOT_FOUND.into_response();
    }
    let asset = match file.as_str() {
        "graphiql.js" => &graphiql::JS,
        "graphiql.css" => &graphiql::CSS,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // The page links each asset with a digest of its content in the URL.
    asset
        .respond(&headers, Some("public, max-age=31536000, immutable"))
        .await
}

async fn graphql_get(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return websocket(shared, peer, headers, upgrade).await;
    }
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        if !shared.state.config.graphiql {
            return transport_error(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "GraphiQL is turned off on this server (CASEFILE_GRAPHIQL=false); POST queries to /graphql",
            );
        }
        return Html(graphiql::page()).into_response();
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
    match caller(&shared, &headers, peer).await {
        Ok(caller) => respond(&shared, request, caller, true).await,
        Err(refused) => refused,
    }
}

/// Upgrade to GraphQL over WebSocket. Credentials normally come in
/// `connection_init`; an `Authorization` header on the upgrade (non-browser
/// clients) is the fallback. A client address with `CASEFILE_MAX_WS_PER_IP` sockets
/// open gets 429.
async fn websocket(
    shared: Shared,
    peer: SocketAddr,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let config = &shared.state.config;
    let client = crate::net::client_ip(peer.ip(), &headers, &config.limits.trusted_proxies);
    let Some(slot) = Connections::socket(&shared.state, client) else {
        return rate_limited(AppError::RateLimited {
            message: format!(
                "this address has {} WebSockets open, the most allowed",
                config.limits.max_ws_per_ip
            ),
            retry_after: crate::net::RETRY_AFTER_SECONDS,
        });
    };
    let header_principal = match principal(&shared.state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return transport_error(StatusCode::UNAUTHORIZED, err.code(), &err.message()),
    };
    // Frames and messages over the body limit are refused before their declared
    // size is allocated.
    let upgrade = upgrade
        .protocols(ws::PROTOCOLS)
        .read_buffer_size(ws::READ_BUFFER)
        .write_buffer_size(ws::WRITE_BUFFER)
        .max_frame_size(config.max_body_bytes)
        .max_message_size(config.max_body_bytes);
    let protocol =
        ws::Protocol::from_header(upgrade.selected_protocol().and_then(|p| p.to_str().ok()));
    let Shared { state, schema } = shared;
    upgrade.on_upgrade(move |socket| {
        let tracker = state.tasks.clone();
        let client = ws::Client {
            ip: client,
            header_principal,
            _slot: slot,
        };
        tracker.track_future(ws::serve(socket, protocol, state, schema, client))
    })
}

/// `200 ok` when the writer and the readers answer; otherwise 503 naming what is down.
async fn healthz(State(shared): State<Shared>) -> Response {
    let (writer, reader) = shared.state.db.health().await;
    let mut down = Vec::new();
    for (role, result) in [("writer", writer), ("readers", reader)] {
        if let Err(err) = result {
            tracing::warn!(error.detail = ?err, database.role = role, "health check failed");
            down.push(role);
        }
    }
    if down.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        let body = format!("database unavailable: {}", down.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
