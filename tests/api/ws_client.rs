//! A small GraphQL-over-WebSocket client for tests, speaking either protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TIMEOUT, TestApp};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
    /// Messages read while waiting for something else (a pong), in order.
    pending: std::collections::VecDeque<Value>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, protocol: &'static str) -> WsClient {
        WsClient::connect_to(&app.running.addr.to_string(), protocol).await
    }

    /// Connect to the server at `addr` (`host:port`).
    pub async fn connect_to(addr: &str, protocol: &'static str) -> WsClient {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (socket, response) =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .expect("connect in time")
                .expect("connect");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        WsClient {
            socket,
            protocol,
            pending: Default::default(),
        }
    }

    /// Connect and initialise with `token`; panics unless acknowledged.
    pub async fn ready(app: &TestApp, protocol: &'static str, token: &str) -> WsClient {
        WsClient::ready_at(&app.running.addr.to_string(), protocol, token).await
    }

    pub async fn ready_at(addr: &str, protocol: &'static str, token: &str) -> WsClient {
        let mut client = WsClient::connect_to(addr, protocol).await;
        client.init(Some(token)).await;
        assert_eq!(client.recv().await["type"], "connection_ack");
        client
    }

    /// Connect and initialise with `token`, or `None` when the server at `addr`
    /// cannot be reached or goes away before its ack (a process that died): for
    /// clients that fail over to another server.
    pub async fn try_ready_at(addr: &str, protocol: &'static str, token: &str) -> Option<WsClient> {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect or refuse in time")
            .ok()?;
        let mut client = WsClient {
            socket,
            protocol,
            pending: Default::default(),
        };
        let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
        client.try_send(init).await?;
        let ack = client.recv_or_gone().await?;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        Some(client)
    }

    /// Send `message`, or `None` when the socket is gone.
    pub async fn try_send(&mut self, message: Value) -> Option<()> {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .ok()
    }

    /// The next protocol message, skipping keep-alives; `None` once the server
    /// closed the socket or the connection broke (a process that died). Panics
    /// when neither happens within [`TIMEOUT`].
    pub async fn recv_or_gone(&mut self) -> Option<Value> {
        if let Some(message) = self.pending.pop_front() {
            return Some(message);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message or a close in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                        continue;
                    }
                    return Some(value);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn init(&mut self, token: Option<&str>) {
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == LEGACY_WS {
            "start"
        } else {
            "subscribe"
        };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message, skipping keep-alives; panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(TIMEOUT).await.expect("a message in time")
    }

    /// The next protocol message within `limit`, if any. The limit holds however
    /// many keep-alives arrive meanwhile (a server pings every 15 s: a missed
    /// message must fail the test, not make it wait forever).
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Value> {
        if let Some(message) = self.pending.pop_front() {
            return Some(message);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                        continue;
                    }
                    return Some(value);
                }
                Some(Ok(Message::Close(frame))) => panic!("closed unexpectedly: {frame:?}"),
                Some(Ok(_)) => continue,
                other => panic!("socket failed: {other:?}"),
            }
        }
    }

    /// The payload of the next data message for `id`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.recv().await;
        let expected = if self.protocol == LEGACY_WS {
            "data"
        } else {
            "next"
        };
        assert_eq!(message["type"], expected, "{message}");
        assert_eq!(message["id"], id, "{message}");
        message["payload"].clone()
    }

    /// The next `inbox` payload of `id` about a conversation: agents' availability
    /// changes (a socket opening makes its agent available) are passed over.
    pub async fn next_inbox(&mut self, id: &str) -> Value {
        loop {
            let payload = self.next_data(id).await;
            if payload["data"]["inbox"]["kind"] != "AGENT_AVAILABILITY_CHANGED" {
                return payload;
            }
        }
    }

    /// Send a protocol `ping` and wait for its `pong`: the socket is open and served.
    pub async fn ping_pong(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        tokio::time::timeout(TIMEOUT, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"pong\"") => return,
                    Some(Ok(Message::Text(text))) => {
                        let value: Value = serde_json::from_str(&text).expect("JSON message");
                        if !matches!(value["type"].as_str(), Some("ping" | "ka")) {
                            self.pending.push_back(value);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
                    Some(Ok(_)) => continue,
                    other => panic!("socket failed: {other:?}"),
                }
            }
        })
        .await
        .expect("a pong in time");
    }

    /// Wait for the server to close the socket; its close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, self.socket.next())
                .await
                .expect("close in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket failed before closing: {err}"),
            }
        }
    }
}
