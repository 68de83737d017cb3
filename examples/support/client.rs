//! A small GraphQL client for the examples: queries over HTTP, subscriptions over
//! WebSocket (`graphql-transport-ws`), with the operations of `operations.graphql`.

#![allow(
    dead_code,
    reason = "each example, and the tests, use a different part of this module"
)]

use std::collections::HashMap;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The documented operations, by name.
pub fn operations() -> HashMap<String, String> {
    parse_operations(include_str!("../operations.graphql"))
}

/// Split a document into its named operations, each with the fragments it needs.
pub fn parse_operations(document: &str) -> HashMap<String, String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    for line in document.lines() {
        let trimmed = line.trim();
        if depth == 0 && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 && !current.trim().is_empty() {
            blocks.push(std::mem::take(&mut current));
        }
    }
    let fragments: Vec<&String> = blocks
        .iter()
        .filter(|b| b.trim_start().starts_with("fragment"))
        .collect();
    let mut out = HashMap::new();
    for block in blocks
        .iter()
        .filter(|b| !b.trim_start().starts_with("fragment"))
    {
        let name = block
            .split_whitespace()
            .nth(1)
            .map(|n| n.split(['(', '{']).next().unwrap_or(n).to_owned())
            .unwrap_or_default();
        let mut text = block.clone();
        for fragment in &fragments {
            let fragment_name = fragment.split_whitespace().nth(1).unwrap_or_default();
            if block.contains(&format!("...{fragment_name}")) {
                text.push_str(fragment);
            }
        }
        out.insert(name, text);
    }
    out
}

pub struct Client {
    pub base: String,
    pub token: Option<String>,
    http: reqwest::Client,
    operations: HashMap<String, String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
            operations: operations(),
        }
    }

    pub fn operation(&self, name: &str) -> anyhow::Result<&str> {
        self.operations
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("operations.graphql has no operation {name}"))
    }

    /// Run a documented operation over HTTP; its `data`, or the first error.
    pub async fn run(&self, name: &str, variables: Value) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": self.operation(name)?, "variables": variables, "operationName": name }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        if let Some(error) = body["errors"].get(0) {
            bail!(
                "{name}: {} ({})",
                error["message"].as_str().unwrap_or("error"),
                error["extensions"]["code"].as_str().unwrap_or("?")
            );
        }
        Ok(body["data"].clone())
    }

    /// Subscribe to a documented subscription; each `data` arrives on the channel.
    pub async fn subscribe(
        &self,
        name: &str,
        variables: Value,
    ) -> anyhow::Result<tokio::sync::mpsc::Receiver<anyhow::Result<Value>>> {
        let url = format!("{}/graphql", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .context("connecting")?;
        let init = match &self.token {
            Some(token) => {
                json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })
            }
            None => json!({ "type": "connection_init" }),
        };
        socket.send(Message::Text(init.to_string().into())).await?;
        let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": self.operation(name)?, "variables": variables, "operationName": name } });
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut acked = false;
            while let Some(frame) = socket.next().await {
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(frame)) => {
                        let _ = tx
                            .send(Err(anyhow!("server closed the socket: {frame:?}")))
                            .await;
                        return;
                    }
                    Ok(_) => continue,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match message["type"].as_str() {
                    Some("connection_ack") if !acked => {
                        acked = true;
                        if socket
                            .send(Message::Text(subscribe.to_string().into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some("ping") => {
                        let _ = socket
                            .send(Message::Text(json!({ "type": "pong" }).to_string().into()))
                            .await;
                    }
                    Some("next") => {
                        let payload = &message["payload"];
                        let item = match payload["errors"].get(0) {
                            Some(error) => Err(anyhow!("{}", error["message"])),
                            None => Ok(payload["data"].clone()),
                        };
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                    Some("error") => {
                        let _ = tx
                            .send(Err(anyhow!("subscription refused: {}", message["payload"])))
                            .await;
                        return;
                    }
                    Some("complete") => return,
                    _ => {}
                }
            }
        });
        Ok(rx)
    }
}

/// The value after `--name` on the command line, else the environment variable.
pub fn arg(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == format!("--{name}"))
}
