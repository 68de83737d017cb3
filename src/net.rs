//! The listening socket: accepting connections within the connection limits, headers
//! within their time-out, the client's address, and a shutdown that ends in time.
//!
//! Served with hyper directly rather than `axum::serve`, which offers neither a
//! header time-out (a client that trickles its headers, slowloris, would hold its
//! connection forever) nor a cap on connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_service::Service;

use crate::config::{Config, Limits};
use crate::error::AppError;

/// What a client over a limit is told to wait, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Live connections: all of them, and WebSockets by client address, within
/// `CASEFILE_MAX_CONNECTIONS` and `CASEFILE_MAX_WS_PER_IP`.
pub struct Connections {
    open: AtomicUsize,
    sockets_by_ip: Mutex<HashMap<IpAddr, usize>>,
    max_connections: usize,
    max_ws_per_ip: usize,
}

/// Counts a connection while it lives.
pub struct ConnectionSlot(Arc<Connections>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a WebSocket against its client's address while it lives.
pub struct SocketSlot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut by_ip = self.connections.lock();
        if let Some(count) = by_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    /// No connections yet, within `limits`.
    pub fn new(limits: &Limits) -> Connections {
        Connections {
            open: AtomicUsize::new(0),
            sockets_by_ip: Mutex::default(),
            max_connections: limits.max_connections,
            max_ws_per_ip: limits.max_ws_per_ip,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.sockets_by_ip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Count one more connection: `Ok` when it is within `CASEFILE_MAX_CONNECTIONS`,
    /// `Err` (still counted while it is refused) when it is over.
    fn open(self: &Arc<Self>) -> Result<ConnectionSlot, ConnectionSlot> {
        let previous = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectionSlot(Arc::clone(self));
        if previous < self.max_connections {
            Ok(slot)
        } else {
            Err(slot)
        }
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// WebSockets open now from `ip`.
    pub fn sockets_from(&self, ip: IpAddr) -> usize {
        self.lock().get(&ip).copied().unwrap_or(0)
    }

    /// A slot for one more WebSocket from `ip`, unless it has the most allowed
    /// open: then the error to answer with.
    pub fn socket(self: &Arc<Self>, ip: IpAddr) -> Result<SocketSlot, AppError> {
        let mut by_ip = self.lock();
        let count = by_ip.entry(ip).or_insert(0);
        if *count >= self.max_ws_per_ip {
            return Err(AppError::RateLimited {
                message: format!(
                    "this address has {} WebSockets open, the most allowed",
                    self.max_ws_per_ip
                ),
                retry_after: RETRY_AFTER_SECONDS,
            });
        }
        *count += 1;
        Ok(SocketSlot {
            connections: Arc::clone(self),
            ip,
        })
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` that is not a trusted proxy (addresses
/// to its left were written by the client and prove nothing).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// Headers every answer carries: browsers must not guess content types, and no page
/// leaks its URL (which may hold a token) to the sites it links to. Set here, once
/// per response, rather than as a layer on every route.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// A request refused for rate: 429 with `Retry-After`, and the GraphQL error with
/// `retryAfter`.
pub fn rate_limited(err: &AppError) -> Response<axum::body::Body> {
    let retry_after = match err {
        AppError::RateLimited { retry_after, .. } => *retry_after,
        _ => RETRY_AFTER_SECONDS,
    };
    let body = serde_json::json!({ "errors": [{
        "message": err.message(),
        "extensions": { "code": err.code(), "retryAfter": retry_after },
    }]});
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What a connection over `CASEFILE_MAX_CONNECTIONS` gets for any request.
fn too_many_connections() -> Response<axum::body::Body> {
    let mut response = rate_limited(&AppError::RateLimited {
        message: "the server has too many connections: try again shortly".to_owned(),
        retry_after: RETRY_AFTER_SECONDS,
    });
    security_headers(response.headers_mut());
    response
}

/// Accept on `listener` and serve `router` until `shutdown` completes; then stop
/// accepting, let in-flight requests finish for up to the shutdown time-out, and cut
/// what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Arc<Connections>,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits: &Limits = &config.limits;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout)
        .keep_alive(true);
    // Draining asks each connection to finish its request and close (a watch
    // channel: its notifications are sharded, and every connection polls it); cutting
    // aborts the connections' tasks where they are.
    let mut tasks = tokio::task::JoinSet::new();
    let (drain, draining) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a moment instead of spinning.
                    tracing::warn!(error.detail = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Forget the connections that ended.
        while tasks.try_join_next().is_some() {}
        let io = TokioIo::new(stream);
        let slot = match connections.open() {
            Ok(slot) => slot,
            Err(slot) => {
                let service =
                    hyper::service::service_fn(|_request: hyper::Request<Incoming>| async {
                        Ok::<_, std::convert::Infallible>(too_many_connections())
                    });
                let mut refuse = http.clone();
                refuse.keep_alive(false);
                let connection = refuse.serve_connection(io, service);
                tasks.spawn(async move {
                    let _slot = slot;
                    let _ = connection.await;
                });
                continue;
            }
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let answering = router.clone().call(request);
            async move {
                let mut response = answering.await?;
                security_headers(response.headers_mut());
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut draining = draining.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = draining.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = drain.send(());
    let limit = config.shutdown_timeout;
    let finished = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, finished).await.is_err() {
        tracing::warn!(
            timeout = ?limit,
            "requests still running at the shutdown time-out were cut"
        );
        tasks.abort_all();
    }
    Ok(())
}
