//! Sending a document as it was generated: a `POST /graphql` whose body is written
//! by hand (so variables can hold what no JSON library writes), or a `subscribe` on
//! a `graphql-transport-ws` socket that stays open across documents.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::generate::{Document, Operation};
use crate::helpers::TIMEOUT;
use crate::ws_client::TRANSPORT_WS;

/// How long a subscription is listened to before it is completed, when it sends
/// nothing.
const LISTEN: Duration = Duration::from_millis(150);

/// The JSON text of a GraphQL request.
fn request(doc: &Document) -> String {
    let query = serde_json::to_string(&doc.query).expect("a string serialises");
    format!(r#"{{"query":{query},"variables":{}}}"#, doc.variables)
}

/// POST `doc` with `token`; the status and body, or why there is none.
pub async fn http(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    doc: &Document,
) -> Result<(u16, String), String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(request(doc))
        .send()
        .await
        .map_err(|err| format!("no HTTP answer: {err}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|err| format!("the body did not arrive: {err}"))?;
    Ok((status, body))
}

/// What a socket did while it ran one document.
pub struct Run {
    /// Every text message, in order (some may belong to earlier subscriptions).
    pub messages: Vec<String>,
    /// The close code, when the server closed the socket.
    pub closed: Option<u16>,
}

pub struct Socket {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// A socket initialised with `token`.
    pub async fn open(addr: &str, token: &str) -> Result<Socket, String> {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            TRANSPORT_WS.parse().expect("header"),
        );
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| "no WebSocket upgrade in time".to_owned())?
            .map_err(|err| format!("no WebSocket upgrade: {err}"))?;
        let mut socket = Socket { socket };
        let init = serde_json::json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
        socket.send(init.to_string()).await?;
        let run = socket.read(None, false).await?;
        match run.messages.first() {
            Some(ack) if ack.contains("connection_ack") => Ok(socket),
            _ => Err(format!(
                "connection_init not acknowledged: {:?}, closed {:?}",
                run.messages, run.closed
            )),
        }
    }

    /// Run `doc` as operation `id`: until it completes or fails, or, for a
    /// subscription, until its first event or a short silence, then complete it.
    pub async fn run(&mut self, id: &str, doc: &Document) -> Result<Run, String> {
        let id_json = serde_json::to_string(id).expect("a string serialises");
        let message = format!(
            r#"{{"type":"subscribe","id":{id_json},"payload":{}}}"#,
            request(doc)
        );
        self.send(message).await?;
        let subscription = doc.operation == Operation::Subscription;
        let run = self.read(Some(id), subscription).await?;
        if subscription && run.closed.is_none() {
            let complete = format!(r#"{{"type":"complete","id":{id_json}}}"#);
            self.send(complete).await?;
        }
        Ok(run)
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|err| format!("the socket refused a send: {err}"))
    }

    /// Read until the operation `id` ends (its `complete` or `error`; with `id`
    /// none, the first message), the socket closes, or, `listening` to a
    /// subscription, its first event or [`LISTEN`] of silence.
    async fn read(&mut self, id: Option<&str>, listening: bool) -> Result<Run, String> {
        let mut run = Run {
            messages: Vec::new(),
            closed: None,
        };
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let until = if listening {
                deadline.min(tokio::time::Instant::now() + LISTEN)
            } else {
                deadline
            };
            let frame = match tokio::time::timeout_at(until, self.socket.next()).await {
                Ok(frame) => frame,
                Err(_) if listening && tokio::time::Instant::now() < deadline => return Ok(run),
                Err(_) => return Err(format!("no answer within {TIMEOUT:?}")),
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|err| format!("a message is not JSON ({err}): {text}"))?;
                    let kind = value["type"].as_str().unwrap_or_default().to_owned();
                    if kind == "ping" {
                        self.send(r#"{"type":"pong"}"#.to_owned()).await?;
                        continue;
                    }
                    run.messages.push(text.to_string());
                    let ours = id.is_none_or(|id| value["id"] == id);
                    let ended = matches!(kind.as_str(), "complete" | "error")
                        || (listening && kind == "next");
                    if ours && (id.is_none() || ended) {
                        return Ok(run);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    run.closed = Some(frame.map_or(1005, |frame| frame.code.into()));
                    return Ok(run);
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(format!("the socket failed: {err}")),
                None => return Err("the socket ended without a close frame".to_owned()),
            }
        }
    }
}
