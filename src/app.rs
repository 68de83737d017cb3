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
use crate::graphql::{Api, response};
use crate::net::rate_limited;
use crate::state::AppState;
use crate::ws;

/// Whether this build serves the demo pages at `/demo/widget` and `/demo/inbox`.
pub const DEMO_PAGES: bool = true;

/// The router of a server over `state`.
pub fn router(state: AppState) -> Router {
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
        .with_state(state.core.clone());
    let pages = crate::demo_pages::router(state.core.clone());
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/graphiql/{file}", get(graphiql_asset))
        .with_state(state)
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
    let connections = std::sync::Arc::clone(&state.connections);
    crate::net::serve(
        listener,
        router(state.clone()),
        connections,
        &state.config,
        shutdown,
    )
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

fn json_response(state: &AppState, response: &async_graphql::Response) -> Response {
    let max = state.config.limits.max_response_bytes;
    let mut answer = Response::new(Body::from(crate::graphql::response::serialise_response(
        max, response,
    )));
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::Unauthenticated("token is malformed"))
        })
        .transpose()?;
    crate::domain::tenancy::api_keys::authenticate(state, value).await
}

/// Execute one GraphQL request as `principal` from `client`; `read_only` when it
/// came over `GET`. A panic in a resolver becomes an `INTERNAL` error of this
/// request alone.
pub async fn execute(
    api: &Api,
    request: async_graphql::Request,
    principal: Option<Principal>,
    client: IpAddr,
    read_only: bool,
) -> async_graphql::Response {
    // Parse once, check, and hand the parsed document to the executor.
    let request = match api.prepare(request, principal, client, read_only, false) {
        Ok(request) => request,
        Err(err) => {
            let mut errors = vec![err];
            response::ensure_codes(&mut errors);
            return async_graphql::Response::from_errors(errors);
        }
    };
    let mut response = AssertUnwindSafe(api.schema().execute(request))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| response::panicked());
    response::ensure_codes(&mut response.errors);
    response
}

/// The caller's principal and address, or the answer that refuses it: bad
/// credentials, or a token over its rate.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(Option<Principal>, IpAddr), Response> {
    let client = crate::net::client_ip(peer.ip(), headers, &state.config.limits.trusted_proxies);
    let principal = principal(state, headers).await.map_err(app_error)?;
    if let Some(principal) = &principal {
        state
            .rate
            .request(principal)
            .map_err(|err| rate_limited(&err))?;
    }
    Ok((principal, client))
}

/// Execute under the request time-out: past it, 503.
async fn respond(
    state: &AppState,
    request: async_graphql::Request,
    (principal, client): (Option<Principal>, IpAddr),
    read_only: bool,
) -> Response {
    let limit = state.config.limits.http_request_timeout;
    // Boxed: the execution's future is large, and moving it into the time-out and
    // the handler's future would copy it at each step.
    let executing = Box::pin(execute(&state.api, request, principal, client, read_only));
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
    State(state): State<AppState>,
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
    let limits = &state.config;
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
    match caller(&state, &headers, peer).await {
        Ok(caller) => respond(&state, request, caller, false).await,
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
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.config.graphiql {
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
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return websocket(state, peer, headers, upgrade).await;
    }
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        if !state.config.graphiql {
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
    match caller(&state, &headers, peer).await {
        Ok(caller) => respond(&state, request, caller, true).await,
        Err(refused) => refused,
    }
}

/// Upgrade to GraphQL over WebSocket. Credentials normally come in
/// `connection_init`; an `Authorization` header on the upgrade (non-browser
/// clients) is the fallback. A client address with `CASEFILE_MAX_WS_PER_IP` sockets
/// open gets 429.
async fn websocket(
    state: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let config = &state.config;
    let client = crate::net::client_ip(peer.ip(), &headers, &config.limits.trusted_proxies);
    let slot = match state.connections.socket(client) {
        Ok(slot) => slot,
        Err(err) => return rate_limited(&err),
    };
    let header_principal = match principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return transport_error(StatusCode::UNAUTHORIZED, err.code(), &err.message()),
    };
    // A frame or message over the body limit is read whole (so its sender is not
    // reset mid-write and learns why: 1009) and refused; one declaring more than
    // the drain bound is refused before anything of it is read.
    let bound = ws::drain_bound(config.max_body_bytes);
    let upgrade = upgrade
        .protocols(ws::PROTOCOLS)
        .read_buffer_size(ws::READ_BUFFER)
        .write_buffer_size(ws::WRITE_BUFFER)
        .max_frame_size(bound)
        .max_message_size(bound);
    let protocol =
        ws::Protocol::from_header(upgrade.selected_protocol().and_then(|p| p.to_str().ok()));
    upgrade.on_upgrade(move |socket| {
        let tracker = state.tasks.clone();
        let client = ws::Client {
            ip: client,
            header_principal,
            _slot: slot,
        };
        tracker.track_future(ws::serve(socket, protocol, state.sockets.clone(), client))
    })
}

/// `200 ok` when the writer and the readers answer; otherwise 503 naming what is
/// down. A model that keeps failing (its breaker open: answers go the extractive
/// way meanwhile) is reported as degraded, and secrets stored without a master key
/// as not sealed, still with 200: the service answers.
async fn healthz(State(state): State<AppState>) -> Response {
    let (writer, reader) = state.db.health().await;
    let mut down = Vec::new();
    for (role, result) in [("writer", writer), ("readers", reader)] {
        if let Err(err) = result {
            tracing::warn!(error.detail = ?err, database.role = role, "health check failed");
            down.push(role);
        }
    }
    if down.is_empty() {
        let mut body = String::from("ok");
        let degraded = state
            .model
            .as_ref()
            .and_then(|model| model.breaker().open_for());
        if let Some(left) = degraded {
            body.push_str(&format!(
                "; model degraded: it failed repeatedly, so it is not called for the next {}s (answers are extractive meanwhile)",
                left.as_secs().max(1)
            ));
        }
        if !state.db.sealer.seals() {
            body.push_str("; secrets not sealed (CASEFILE_MASTER_KEY is unset)");
        }
        (StatusCode::OK, body).into_response()
    } else {
        let body = format!("database unavailable: {}", down.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
