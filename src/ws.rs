//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws` (subscriptions-transport-ws) sub-protocols.
//!
//! Written here rather than taken from async-graphql, whose handler misses parts of
//! the protocol (no init timeout, duplicate ids silently replace subscriptions, no
//! server pings, 1002 where 4400/4403 are due) and allocates two 128 KiB buffers per
//! connection. One task owns each connection and polls all its subscriptions, so an
//! idle subscribed connection costs a few KiB.
//!
//! Close codes: 4400 bad message, 4401 subscribe before `connection_init`, 4403
//! rejected credentials or expired token, 4408 no `connection_init` in time, 4409
//! duplicate subscription id, 4429 a second `connection_init`, 1012 server restart
//! (reconnect), 1009 a frame or message over the body limit, 1008 a client that
//! does not read what it is sent within `CASEFILE_WS_SEND_TIMEOUT`, or that answers
//! no ping for two keep-alive intervals.
//!
//! Every write is bounded by the send time-out and raced against shutdown and the
//! token's expiry, so a client that stops reading cannot hold its connection's task
//! (and the events queued for it) past the time-out, nor delay shutdown.

mod revocation;
mod shared;

use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Response;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{self, BoxStream, SplitSink};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, Sleep};
use tokio_stream::StreamMap;

use crate::auth::Principal;
use crate::domain::Core;
use crate::error::AppError;
use crate::graphql::Api;
use revocation::Sessions;
use shared::SharedOperations;

/// The sub-protocols, in order of preference.
pub const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

/// Buffer sizes per connection: small, since chat messages are. The read buffer is
/// what an idle connection keeps touched; it grows for a larger frame when one comes
/// (and keeps that size), so this is only its floor. 256 rather than 1,024 bytes:
/// S2 went from 11.8 / 12.6 to 10.9 / 12.3 KiB per idle connection at 5,000 /
/// 10,000, with the same CPU per subscription set up (benches/README.md).
pub const READ_BUFFER: usize = 256;
pub const WRITE_BUFFER: usize = 4 * 1024;

/// Most operations one connection may run at once.
const MAX_SUBSCRIPTIONS: usize = 100;

/// Most events written to a connection before one flush.
const BURST: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`, as the npm `graphql-ws` client speaks it.
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol (Apollo's old
    /// client).
    Legacy,
}

impl Protocol {
    pub fn from_header(selected: Option<&str>) -> Protocol {
        match selected {
            Some("graphql-ws") => Protocol::Legacy,
            _ => Protocol::TransportWs,
        }
    }
}

/// Why a connection ends.
struct Close(u16, &'static str);

const BAD_MESSAGE: Close = Close(4400, "Invalid message");
const UNAUTHORIZED: Close = Close(4401, "Unauthorized");
const FORBIDDEN: Close = Close(4403, "Forbidden");
const EXPIRED: Close = Close(4403, "Forbidden: token expired");
const INIT_TIMEOUT: Close = Close(4408, "Connection initialisation timeout");
const TOO_MANY_INITS: Close = Close(4429, "Too many initialisation requests");
const RESTART: Close = Close(1012, "Server restarting; reconnect");
const TOO_BIG: Close = Close(1009, "Message too big");
const SLOW_READER: Close = Close(1008, "Not reading: sends timed out");
const NO_PONG: Close = Close(1008, "No answer to pings");
const REVOKED: Close = Close(4403, "Forbidden: access revoked");

/// How long the closing frame may take to go out before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long, after its close frame, the server reads (and discards) what the
/// client is still sending, waiting for the client's close frame (RFC 6455
/// §7.1.1): dropping a connection with unread data resets it, and a client reset
/// mid-write never reads why it was closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The most a socket reads of one frame or message, and after its close frame:
/// what is over the body limit (`CASEFILE_MAX_BODY_BYTES`) but within this is read
/// whole and then refused with 1009; what declares more is refused at its header.
pub fn drain_bound(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(32).max(8 << 20)
}

/// What the sockets of one server share: the GraphQL service, the sockets that
/// close when their principal's access is revoked, and the subscriptions executed
/// once for many sockets.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

struct HubInner {
    api: Api,
    sessions: Sessions,
    operations: SharedOperations,
}

impl Hub {
    pub fn new(api: Api) -> Hub {
        Hub(Arc::new(HubInner {
            api,
            sessions: Sessions::default(),
            operations: SharedOperations::default(),
        }))
    }

    pub fn api(&self) -> &Api {
        &self.0.api
    }

    pub fn core(&self) -> &Core {
        self.0.api.core()
    }

    fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    fn operations(&self) -> &SharedOperations {
        &self.0.operations
    }

    /// The agents with a socket open on this process (for presence).
    pub fn open_agents(&self) -> Vec<String> {
        self.sessions().open_agents()
    }
}

/// Who is on the other end of a connection.
pub struct Client {
    pub ip: IpAddr,
    /// The principal of an `Authorization` header on the upgrade, if any.
    pub header_principal: Option<Principal>,
    /// Counts the socket against its address while it lives.
    pub _slot: crate::net::SocketSlot,
}

type Sink = SplitSink<WebSocket, Message>;

/// What an operation hands its connection.
enum Outgoing {
    /// An answer of its own execution.
    Own(Box<Response>),
    /// An answer of an execution shared with other connections (see [`shared`]).
    Shared(Arc<shared::Answer>),
    /// The operation completed.
    Done,
}

type Operation = BoxStream<'static, Outgoing>;

struct Connection {
    protocol: Protocol,
    hub: Hub,
    sink: Sink,
    /// Set by `connection_init`; `None` before, `Some(None)` when anonymous.
    principal: Option<Option<Principal>>,
    operations: StreamMap<String, Operation>,
    /// Operations that have sent nothing yet: their first error is an `error`
    /// message rather than a `next`.
    fresh: Vec<String>,
    client_ip: IpAddr,
    /// For agents and API keys: cancelled when their access is revoked.
    registration: Option<revocation::Registration>,
}

/// Run `work` (which writes to the socket) unless the send time-out, shutdown or the
/// connection's deadline comes first; then the connection closes with their code.
async fn bounded<T>(
    work: impl Future<Output = T>,
    send_timeout: Duration,
    shutdown: &tokio_util::sync::CancellationToken,
    deadline: &mut Option<Pin<Box<Sleep>>>,
    before_init: bool,
) -> Result<T, Close> {
    tokio::select! {
        done = tokio::time::timeout(send_timeout, work) => done.map_err(|_| SLOW_READER),
        () = shutdown.cancelled() => Err(RESTART),
        () = async { deadline.as_mut().expect("guarded by is_some").await }, if deadline.is_some() => {
            Err(if before_init { INIT_TIMEOUT } else { EXPIRED })
        }
    }
}

/// Whether a read failed because a frame or message was over the size limit.
fn too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// Serve one upgraded connection until it closes.
pub async fn serve(socket: WebSocket, protocol: Protocol, hub: Hub, client: Client) {
    let Client {
        ip,
        header_principal,
        _slot,
    } = client;
    let (sink, mut incoming) = socket.split();
    let config = &hub.core().config;
    let send_timeout = config.limits.ws_send_timeout;
    let max_body = config.max_body_bytes;
    let drain_bound = drain_bound(max_body);
    // One timer: the init timeout until `connection_init`, then the token's expiry.
    let mut deadline: Option<Pin<Box<Sleep>>> =
        Some(Box::pin(tokio::time::sleep(config.ws_init_timeout)));
    let keepalive_every = config.ws_keepalive;
    let shutdown = hub.core().shutdown.clone();
    let mut conn = Connection {
        protocol,
        hub: hub.clone(),
        sink,
        principal: None,
        operations: StreamMap::new(),
        fresh: Vec::new(),
        client_ip: ip,
        registration: None,
    };
    // Cancelled when the principal's access is revoked (set at `connection_init`).
    let mut revoked: Option<tokio_util::sync::CancellationToken> = None;
    let mut keepalive = tokio::time::interval_at(Instant::now() + keepalive_every, keepalive_every);
    // Anything the client sends (a pong included) shows it is there.
    let mut last_heard = Instant::now();

    let close = loop {
        let before_init = conn.principal.is_none();
        tokio::select! {
            frame = incoming.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) if text.len() > max_body => break Some(TOO_BIG),
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Binary(_))) => break Some(BAD_MESSAGE),
                    Some(Err(err)) if too_big(&err) => break Some(TOO_BIG),
                    Some(Err(_)) => break None,
                };
                last_heard = Instant::now();
                // Boxed: handling (auth, parsing) needs a large future, only briefly;
                // the connection's own state stays small while it idles.
                let handled = Box::pin(conn.handle(text.as_str(), &header_principal));
                match bounded(handled, send_timeout, &shutdown, &mut deadline, before_init).await {
                    Ok(Ok(Some(principal_expiry))) => {
                        deadline = principal_expiry.map(|at| Box::pin(tokio::time::sleep_until(at)));
                        revoked = conn.registration.as_ref().map(|r| r.revoked.clone());
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(close)) | Err(close) => break Some(close),
                }
            }
            Some((id, response)) = conn.operations.next(), if !conn.operations.is_empty() => {
                let writing = Box::pin(conn.deliver_burst(id, response));
                match bounded(writing, send_timeout, &shutdown, &mut deadline, before_init).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(close) => break Some(close),
                }
            }
            () = async { deadline.as_mut().expect("guarded by is_some").await }, if deadline.is_some() => {
                if conn.principal.is_none() {
                    break Some(INIT_TIMEOUT);
                }
                let _ = tokio::time::timeout(send_timeout, Box::pin(conn.expire())).await;
                break Some(EXPIRED);
            }
            _ = keepalive.tick(), if conn.principal.is_some() => {
                if last_heard.elapsed() > keepalive_every * 2 {
                    break Some(NO_PONG);
                }
                let pinging = Box::pin(conn.ping());
                match bounded(pinging, send_timeout, &shutdown, &mut deadline, before_init).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(close) => break Some(close),
                }
            }
            () = async { revoked.as_ref().expect("guarded by is_some").cancelled().await }, if revoked.is_some() => {
                break Some(REVOKED);
            }
            () = shutdown.cancelled() => break Some(RESTART),
        }
    };
    // The operations (and what they hold queued) go now, whatever the socket does.
    conn.operations.clear();
    let closing = async {
        if let Some(Close(code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            conn.sink.send(Message::Close(Some(frame))).await.is_ok()
        } else {
            false
        }
    };
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, closing)
        .await
        .unwrap_or(false);
    if sent {
        // What the client still sends is read and dropped, up to its close frame.
        let drain = async {
            let mut read = 0usize;
            while let Some(Ok(frame)) = incoming.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
                read = read.saturating_add(frame.into_data().len());
                if read > drain_bound {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.sink.close()).await;
}

/// One error, with its `extensions.code`.
fn coded(error: async_graphql::ServerError) -> Vec<async_graphql::ServerError> {
    let mut errors = vec![error];
    crate::graphql::response::ensure_codes(&mut errors);
    errors
}

/// The bearer token in a `connection_init` payload.
fn init_token(payload: &Value) -> Option<&str> {
    let keys = ["authorization", "Authorization"];
    keys.iter()
        .find_map(|k| payload.get(*k))
        .or_else(|| {
            payload
                .get("headers")
                .and_then(|h| keys.iter().find_map(|k| h.get(*k)))
        })
        .and_then(Value::as_str)
}

impl Connection {
    async fn send(&mut self, message: Value) -> Result<(), axum::Error> {
        self.sink
            .send(Message::Text(message.to_string().into()))
            .await
    }

    /// A WebSocket ping (browsers answer it by themselves) and the protocol's own
    /// (`ping`, or `ka` in the legacy protocol), in one write.
    async fn ping(&mut self) -> Result<(), axum::Error> {
        let ping = match self.protocol {
            Protocol::TransportWs => r#"{"type":"ping"}"#,
            Protocol::Legacy => r#"{"type":"ka"}"#,
        };
        self.sink.feed(Message::Ping(Default::default())).await?;
        self.sink.feed(Message::Text(ping.into())).await?;
        self.sink.flush().await
    }

    /// Deliver what one operation produced, and what else is ready, in one write: a
    /// burst of events costs one system call per connection, not one per event.
    async fn deliver_burst(&mut self, id: String, outgoing: Outgoing) -> Result<(), axum::Error> {
        // Boxed, like every await below that is not a select branch: the
        // connection's future stays small while it idles.
        Box::pin(self.deliver(id, outgoing)).await?;
        for _ in 0..BURST {
            let Some(Some((id, outgoing))) = self.operations.next().now_or_never() else {
                break;
            };
            Box::pin(self.deliver(id, outgoing)).await?;
        }
        self.sink.flush().await
    }

    /// Handle one client message. `Ok(Some(expiry))` after a successful init.
    async fn handle(
        &mut self,
        text: &str,
        header_principal: &Option<Principal>,
    ) -> Result<Option<Option<Instant>>, Close> {
        let message: Value = serde_json::from_str(text).map_err(|_| BAD_MESSAGE)?;
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .ok_or(BAD_MESSAGE)?;
        let id = message.get("id").and_then(Value::as_str);
        match (self.protocol, kind) {
            (_, "connection_init") => {
                return self
                    .init(message.get("payload"), header_principal)
                    .await
                    .map(Some);
            }
            (Protocol::TransportWs, "ping") => {
                let _ = self.send(json!({ "type": "pong" })).await;
            }
            (Protocol::TransportWs, "pong") => {}
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let id = id.ok_or(BAD_MESSAGE)?;
                let payload = message.get("payload").cloned().ok_or(BAD_MESSAGE)?;
                self.subscribe(id, payload).await?;
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                let id = id.ok_or(BAD_MESSAGE)?;
                self.operations.remove(id);
                self.fresh.retain(|f| f != id);
            }
            (Protocol::Legacy, "connection_terminate") => {
                return Err(Close(1000, "Normal closure"));
            }
            _ => return Err(BAD_MESSAGE),
        }
        Ok(None)
    }

    async fn init(
        &mut self,
        payload: Option<&Value>,
        header_principal: &Option<Principal>,
    ) -> Result<Option<Instant>, Close> {
        if self.principal.is_some() {
            return Err(TOO_MANY_INITS);
        }
        let token = payload.and_then(init_token);
        let principal = match token {
            Some(token) => {
                match crate::domain::tenancy::api_keys::authenticate(self.hub.core(), Some(token))
                    .await
                {
                    Ok(principal) => principal,
                    Err(err) => {
                        if self.protocol == Protocol::Legacy {
                            let _ = self
                            .send(json!({ "type": "connection_error", "payload": { "message": err.message() } }))
                            .await;
                        }
                        return Err(FORBIDDEN);
                    }
                }
            }
            None => header_principal.clone(),
        };
        let expiry = principal
            .as_ref()
            .and_then(Principal::expires_at)
            .map(|at| {
                let left = at - chrono::Utc::now().timestamp();
                Instant::now() + Duration::from_secs(left.max(0) as u64)
            });
        self.registration = principal
            .as_ref()
            .and_then(|principal| Sessions::register(&self.hub, principal));
        self.principal = Some(principal);
        let _ = self.send(json!({ "type": "connection_ack" })).await;
        Ok(expiry)
    }

    async fn subscribe(&mut self, id: &str, payload: Value) -> Result<(), Close> {
        let Some(principal) = self.principal.clone() else {
            return Err(UNAUTHORIZED);
        };
        if self.operations.contains_key(id) {
            return Err(Close(4409, "Subscriber for this id already exists"));
        }
        if self.operations.len() >= MAX_SUBSCRIPTIONS {
            let err = AppError::RateLimited {
                message: format!(
                    "at most {MAX_SUBSCRIPTIONS} operations per connection: complete one first"
                ),
                retry_after: 1,
            };
            let error = async_graphql::Error::from(err).into_server_error(Default::default());
            let _ = self.fail(id, &coded(error)).await;
            return Ok(());
        }
        if let Some(Err(err)) = principal.as_ref().map(|p| self.hub.core().rate.request(p)) {
            let error = async_graphql::Error::from(err).into_server_error(Default::default());
            let _ = self.fail(id, &coded(error)).await;
            return Ok(());
        }
        // An agent's token is checked against the agent as it is now (deactivated,
        // password changed, new role), as every HTTP request's is.
        let mut principal = principal;
        if let Some(Principal::Agent(agent)) = principal.as_mut()
            && let Err(err) =
                crate::domain::tenancy::agents::check_token(self.hub.core(), agent).await
        {
            let error = async_graphql::Error::from(err).into_server_error(Default::default());
            let _ = self.fail(id, &coded(error)).await;
            return Ok(());
        }
        let request: async_graphql::Request =
            serde_json::from_value(payload).map_err(|_| BAD_MESSAGE)?;
        let api = self.hub.api();
        let prepared = api.prepare(request, principal.clone(), self.client_ip, false, true);
        let mut request = match prepared {
            Ok(request) => request,
            Err(err) => {
                let _ = self.fail(id, &coded(err)).await;
                return Ok(());
            }
        };
        let key = shared::Key::of(&mut request, principal.as_ref());
        let me = match &principal {
            Some(crate::auth::Principal::Agent(agent)) => Some(agent.agent_id.clone()),
            _ => None,
        };
        let done = stream::once(async { Outgoing::Done });
        let operation: Operation = match key {
            Some(key) => {
                // How a shared execution that panicked starts again.
                let (api, client_ip) = (api.clone(), self.client_ip);
                let context =
                    move |request| api.with_context(request, principal.clone(), client_ip, false);
                SharedOperations::subscribe(&self.hub, key, me, request, context)
                    .map(|item| match item {
                        shared::Item::Shared(answer) => Outgoing::Shared(answer),
                        shared::Item::Own(response) => Outgoing::Own(response),
                    })
                    .chain(done)
                    .boxed()
            }
            // A panic ends this operation alone, with an `INTERNAL` error. Its
            // variables go into its document: kept as async-graphql keeps them, they
            // would cost ~1 KiB for as long as it runs.
            None => {
                crate::graphql::variables::inline(&mut request);
                AssertUnwindSafe(api.schema().execute_stream(request))
                    .catch_unwind()
                    .map(|response| {
                        Outgoing::Own(Box::new(
                            response.unwrap_or_else(|_| crate::graphql::response::panicked()),
                        ))
                    })
                    .chain(done)
                    .boxed()
            }
        };
        self.operations.insert(id.to_owned(), operation);
        self.fresh.push(id.to_owned());
        Ok(())
    }

    /// Send what an operation produced (written, not yet flushed, when it is a
    /// `next`).
    async fn deliver(&mut self, id: String, outgoing: Outgoing) -> Result<(), axum::Error> {
        let first = match self.fresh.iter().position(|f| *f == id) {
            Some(at) => {
                self.fresh.swap_remove(at);
                true
            }
            None => false,
        };
        let kind = match self.protocol {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        // An operation that failed before producing anything gets `error` (which
        // ends it); later errors ride in `next`, and the stream goes on.
        let failed = |response: &Response| {
            first && response.data == async_graphql::Value::Null && !response.errors.is_empty()
        };
        let text = match outgoing {
            Outgoing::Done => return self.send(json!({ "type": "complete", "id": id })).await,
            Outgoing::Own(mut response) => {
                crate::graphql::response::ensure_codes(&mut response.errors);
                if failed(&response) {
                    self.operations.remove(&id);
                    return self.fail(&id, &response.errors).await;
                }
                // Serialised once, straight to text: this runs per subscriber per event.
                let max = self.hub.core().config.limits.max_response_bytes;
                let payload = crate::graphql::response::serialise_response(max, &response);
                let id = serde_json::to_string(&id).unwrap_or_default();
                format!(r#"{{"type":"{kind}","id":{id},"payload":{payload}}}"#)
            }
            Outgoing::Shared(answer) => {
                if !answer.panicked && failed(&answer.response) {
                    self.operations.remove(&id);
                    return self.fail(&id, &answer.response.errors).await;
                }
                let id = serde_json::to_string(&id).unwrap_or_default();
                format!(r#"{{"type":"{kind}","id":{id},"payload":{}}}"#, answer.json)
            }
        };
        // Flushed by the caller, after whatever else is ready.
        self.sink.feed(Message::Text(text.into())).await
    }

    /// Report an operation that could not run, or ended in error (its errors have
    /// their codes).
    async fn fail(
        &mut self,
        id: &str,
        errors: &[async_graphql::ServerError],
    ) -> Result<(), axum::Error> {
        let errors = serde_json::to_value(errors).unwrap_or(Value::Null);
        match self.protocol {
            Protocol::TransportWs => {
                self.send(json!({ "type": "error", "id": id, "payload": errors }))
                    .await
            }
            Protocol::Legacy => {
                let first = errors.get(0).cloned().unwrap_or(Value::Null);
                self.send(json!({ "type": "error", "id": id, "payload": first }))
                    .await?;
                self.send(json!({ "type": "complete", "id": id })).await
            }
        }
    }

    /// The token expired: end every operation with an error saying so.
    async fn expire(&mut self) {
        let ids: Vec<String> = self.operations.keys().cloned().collect();
        for id in ids {
            let err = AppError::Unauthenticated("token expired");
            let error = async_graphql::Error::from(err).into_server_error(Default::default());
            let _ = self.fail(&id, &coded(error)).await;
        }
        self.operations.clear();
    }
}
