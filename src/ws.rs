//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws` (subscriptions-transport-ws) sub-protocols.
//!
//! Written here rather than taken from async-graphql, whose handler misses parts of
//! the protocol (no init timeout, duplicate ids silently replace subscriptions, no
//! server pings, 1002 where 4400/4403 are due) and allocates two 128 KiB buffers per
//! connection. One task owns each connection and polls all its subscriptions, so an
//! idle subscribed connection costs a few KiB.
//!
//! Close codes: 4400 bad message, 4401 subscribe before `connection_ack`, 4403
//! rejected credentials or expired token, 4408 no `connection_init` in time, 4409
//! duplicate subscription id, 4429 a second `connection_init`, 1012 server restart
//! (reconnect).

mod shared;

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
use crate::error::AppError;
use crate::graphql::{AppSchema, RequestAuth};
use crate::state::AppState;
pub use shared::SharedOperations;

/// The sub-protocols, in order of preference.
pub const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

/// Buffer sizes per connection: small, since chat messages are. The read buffer is
/// what an idle connection keeps touched; it grows for a larger frame when one comes.
pub const READ_BUFFER: usize = 1024;
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

type Sink = SplitSink<WebSocket, Message>;

/// A `next` (or legacy `data`) message.
#[derive(serde::Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: &'a Response,
}
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
    state: AppState,
    schema: AppSchema,
    sink: Sink,
    /// Set by `connection_init`; `None` before, `Some(None)` when anonymous.
    principal: Option<Option<Principal>>,
    operations: StreamMap<String, Operation>,
    /// Operations that have sent nothing yet: their first error is an `error`
    /// message rather than a `next`.
    fresh: Vec<String>,
}

/// Serve one upgraded connection until it closes.
pub async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    state: AppState,
    schema: AppSchema,
    header_principal: Option<Principal>,
) {
    let (sink, mut incoming) = socket.split();
    let config = &state.config;
    // One timer: the init timeout until `connection_init`, then the token's expiry.
    let mut deadline: Option<Pin<Box<Sleep>>> =
        Some(Box::pin(tokio::time::sleep(config.ws_init_timeout)));
    let keepalive_every = config.ws_keepalive;
    let shutdown = state.shutdown.clone();
    let mut conn = Connection {
        protocol,
        state: state.clone(),
        schema,
        sink,
        principal: None,
        operations: StreamMap::new(),
        fresh: Vec::new(),
    };
    let mut keepalive = tokio::time::interval_at(Instant::now() + keepalive_every, keepalive_every);

    let close = loop {
        tokio::select! {
            frame = incoming.next() => {
                let Some(Ok(frame)) = frame else { break None };
                let text = match frame {
                    Message::Text(text) => text,
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => break Some(BAD_MESSAGE),
                };
                // Boxed: handling (auth, parsing) needs a large future, only briefly;
                // the connection's own state stays small while it idles.
                match Box::pin(conn.handle(text.as_str(), &header_principal)).await {
                    Ok(Some(principal_expiry)) => {
                        deadline = principal_expiry.map(|at| Box::pin(tokio::time::sleep_until(at)));
                    }
                    Ok(None) => {}
                    Err(close) => break Some(close),
                }
            }
            Some((id, response)) = conn.operations.next(), if !conn.operations.is_empty() => {
                // Boxed, like every await below that is not a select branch: the
                // connection's future stays small while it idles.
                let mut delivered = Box::pin(conn.deliver(id, response)).await;
                // What else is ready goes out in the same write: a burst of events
                // costs one system call per connection, not one per event.
                for _ in 0..BURST {
                    if delivered.is_err() {
                        break;
                    }
                    let Some(Some((id, response))) = conn.operations.next().now_or_never() else {
                        break;
                    };
                    delivered = Box::pin(conn.deliver(id, response)).await;
                }
                if delivered.is_err() || Box::pin(conn.sink.flush()).await.is_err() {
                    break None;
                }
            }
            () = async { deadline.as_mut().expect("guarded by is_some").await }, if deadline.is_some() => {
                if conn.principal.is_none() {
                    break Some(INIT_TIMEOUT);
                }
                Box::pin(conn.expire()).await;
                break Some(EXPIRED);
            }
            _ = keepalive.tick(), if conn.principal.is_some() => {
                let ping = match conn.protocol {
                    Protocol::TransportWs => json!({ "type": "ping" }),
                    Protocol::Legacy => json!({ "type": "ka" }),
                };
                if Box::pin(conn.send(ping)).await.is_err() {
                    break None;
                }
            }
            () = shutdown.cancelled() => break Some(RESTART),
        }
    };
    if let Some(Close(code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = conn.sink.send(Message::Close(Some(frame))).await;
    }
    let _ = conn.sink.close().await;
}

/// One error, with its `extensions.code`.
fn coded(error: async_graphql::ServerError) -> Vec<async_graphql::ServerError> {
    let mut errors = vec![error];
    crate::app::ensure_codes(&mut errors);
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
                match crate::domain::api_keys::authenticate(&self.state, Some(token)).await {
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
            let err = AppError::RateLimited(format!(
                "at most {MAX_SUBSCRIPTIONS} operations per connection"
            ));
            let error = async_graphql::Error::from(err).into_server_error(Default::default());
            let _ = self.fail(id, &coded(error)).await;
            return Ok(());
        }
        let mut request: async_graphql::Request =
            serde_json::from_value(payload).map_err(|_| BAD_MESSAGE)?;
        if let Err(err) = self.state.documents.prepare(&mut request, false) {
            let _ = self.fail(id, &coded(err)).await;
            return Ok(());
        }
        let sees_internal = principal.as_ref().is_some_and(Principal::sees_internal);
        let key = shared::Key::of(&mut request, principal.as_ref());
        // A live operation must read what is current at each event.
        let loaders = crate::loaders::LazyLoaders::new(&self.state, sees_internal, false);
        let request = request.data(RequestAuth::new(principal)).data(loaders);
        let done = stream::once(async { Outgoing::Done });
        let operation: Operation = match key {
            Some(key) => SharedOperations::subscribe(&self.state, &self.schema, key, request)
                .map(|item| match item {
                    shared::Item::Shared(answer) => Outgoing::Shared(answer),
                    shared::Item::Own(response) => Outgoing::Own(response),
                })
                .chain(done)
                .boxed(),
            None => self
                .schema
                .execute_stream(request)
                .map(|response| Outgoing::Own(Box::new(response)))
                .chain(done)
                .boxed(),
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
                crate::app::ensure_codes(&mut response.errors);
                if failed(&response) {
                    self.operations.remove(&id);
                    return self.fail(&id, &response.errors).await;
                }
                // Serialised once, straight to text: this runs per subscriber per event.
                let frame = Frame {
                    kind,
                    id: &id,
                    payload: &response,
                };
                serde_json::to_string(&frame).unwrap_or_default()
            }
            Outgoing::Shared(answer) => {
                if failed(&answer.response) {
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
