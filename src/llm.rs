//! A client of any OpenAI-compatible chat completions API (OpenAI, Azure OpenAI,
//! Ollama, llama.cpp's server, vLLM, LM Studio, …), streaming: `POST
//! {URL}/chat/completions` with `stream: true`, read as server-sent events of
//! `chat.completion.chunk`s, as OpenAI streams them (text in
//! `choices[0].delta.content`, tool calls in `choices[0].delta.tool_calls` with
//! their arguments in pieces, a last chunk with `usage`, then `data: [DONE]`).
//!
//! Each request is bounded twice: its first piece within the first-token time-out,
//! all of it within the whole time-out. What goes wrong is a [`Failure`] of a few
//! kinds, for one log line; the API key is sent and never shown.

mod breaker;
pub mod embeddings;
mod sse;

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

pub use breaker::Breaker;

use crate::config::{ModelConfig, Secret};

/// The model server of this process: where it is, the requests in flight, and
/// whether it is in use (the breaker).
pub struct Connector {
    http: reqwest::Client,
    endpoint: url::Url,
    host: String,
    model: String,
    api_key: Option<Secret>,
    timeout: Duration,
    first_token_timeout: Duration,
    turns: Semaphore,
    breaker: Breaker,
}

/// One message of the conversation sent to the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub content: String,
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    /// Its parameters, as a JSON schema.
    pub parameters: serde_json::Value,
}

/// A tool call the model made, its arguments as it wrote them (JSON text).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// Tokens a request used, as the server reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Why a request gave no (whole) answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server could not be reached (refused, unreachable, reset).
    Connect,
    /// It answered with an HTTP error status.
    Status(u16),
    /// What it streamed is not a completion stream.
    Malformed(String),
    /// Nothing came within the first-token time-out.
    FirstTokenTimeout(Duration),
    /// The answer did not end within the whole time-out.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect => f.write_str("connection failed"),
            Failure::Status(status) => write!(f, "HTTP status {status}"),
            Failure::Malformed(what) => write!(f, "malformed stream ({what})"),
            Failure::FirstTokenTimeout(limit) => {
                write!(
                    f,
                    "no first token within {}",
                    humantime::format_duration(*limit)
                )
            }
            Failure::Timeout(limit) => {
                write!(
                    f,
                    "answer not complete within {}",
                    humantime::format_duration(*limit)
                )
            }
        }
    }
}

impl Connector {
    /// The connector `config` describes; `None` without a URL.
    pub fn new(config: &ModelConfig) -> Option<Connector> {
        let (endpoint, host) = endpoint(config.url.as_ref()?, "chat/completions");
        let http = reqwest::Client::builder()
            .connect_timeout(config.first_token_timeout)
            .build()
            .ok()?;
        Some(Connector {
            http,
            endpoint,
            host,
            model: config.model.clone().unwrap_or_default(),
            api_key: config.api_key.clone(),
            timeout: config.timeout,
            first_token_timeout: config.first_token_timeout,
            turns: Semaphore::new(usize::from(config.concurrency)),
            breaker: Breaker::new(config.breaker),
        })
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `host:port` of the model server, for log lines.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Wait for a turn: at most the configured number of requests run at once.
    pub async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        self.turns.acquire().await.ok()
    }

    /// Ask the model to answer `messages`, with `tools` it may call; the answer
    /// streams from the returned [`Completion`].
    pub async fn start(
        &self,
        messages: &[ChatMessage],
        tools: &[Tool],
    ) -> Result<Completion, Failure> {
        let started = Instant::now();
        let first_deadline = started + self.first_token_timeout;
        let deadline = started + self.timeout;
        let tools: Vec<serde_json::Value> = tools
            .iter()
            .map(|tool| {
                serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if !tools.is_empty() {
            body["tools"] = serde_json::Value::Array(tools);
            body["tool_choice"] = serde_json::Value::from("auto");
        }
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = match tokio::time::timeout_at(first_deadline, request.send()).await {
            Err(_) => return Err(Failure::FirstTokenTimeout(self.first_token_timeout)),
            Ok(Err(err)) if err.is_timeout() => {
                return Err(Failure::FirstTokenTimeout(self.first_token_timeout));
            }
            Ok(Err(_)) => return Err(Failure::Connect),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        Ok(Completion {
            response,
            decoder: Decoder::default(),
            started,
            first_deadline,
            deadline,
            first_token_timeout: self.first_token_timeout,
            timeout: self.timeout,
        })
    }
}

/// `{base}/{path}`, and the server's `host:port` for log lines.
fn endpoint(base: &url::Url, path: &str) -> (url::Url, String) {
    let mut endpoint = base.clone();
    endpoint.set_path(&format!("{}/{path}", base.path().trim_end_matches('/')));
    let host = match (base.host_str(), base.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => base.to_string(),
    };
    (endpoint, host)
}

/// An answer being streamed.
pub struct Completion {
    response: reqwest::Response,
    decoder: Decoder,
    started: Instant,
    first_deadline: Instant,
    deadline: Instant,
    first_token_timeout: Duration,
    timeout: Duration,
}

impl Completion {
    /// The next piece of text the model wrote; `None` once the answer is complete
    /// (then its tool calls and usage are known).
    pub async fn next(&mut self) -> Result<Option<String>, Failure> {
        loop {
            if let Some(text) = self.decoder.pending.pop_front() {
                return Ok(Some(text));
            }
            if self.decoder.done {
                return Ok(None);
            }
            let (until, failure) = match self.decoder.first_at {
                None if self.first_deadline < self.deadline => (
                    self.first_deadline,
                    Failure::FirstTokenTimeout(self.first_token_timeout),
                ),
                _ => (self.deadline, Failure::Timeout(self.timeout)),
            };
            match tokio::time::timeout_at(until, self.response.chunk()).await {
                Err(_) => return Err(failure),
                Ok(Err(err)) if err.is_timeout() => return Err(failure),
                Ok(Err(_)) => return Err(Failure::Connect),
                Ok(Ok(Some(bytes))) => self.decoder.feed(&bytes)?,
                Ok(Ok(None)) => self.decoder.end()?,
            }
        }
    }

    /// The tool calls the model made (complete once [`Completion::next`] gave `None`).
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.decoder.tool_calls()
    }

    /// The tokens the server reported it used, if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.decoder.usage
    }

    /// How long the first piece took to come, if one came.
    pub fn first_token_after(&self) -> Option<Duration> {
        self.decoder.first_at.map(|at| at - self.started)
    }
}

/// Reads a completion stream's bytes into text, tool calls and usage.
#[derive(Default)]
struct Decoder {
    events: sse::Parser,
    /// Text read and not yet taken.
    pending: VecDeque<String>,
    /// Tool calls by their index, their pieces joined.
    calls: BTreeMap<u64, ToolCall>,
    usage: Option<Usage>,
    /// A choice said why it finished.
    finished: bool,
    /// `[DONE]` came, or the stream ended after a finish.
    done: bool,
    /// When the first text or tool call came.
    first_at: Option<Instant>,
}

/// One `chat.completion.chunk`, as far as it matters here.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

impl Decoder {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let mut events = Vec::new();
        self.events
            .feed(bytes, &mut events)
            .map_err(|_| Failure::Malformed("not UTF-8".to_owned()))?;
        events.iter().try_for_each(|event| self.read(event))
    }

    /// The stream ended. Some servers stop after the finishing chunk, without
    /// `[DONE]`; a stream cut before any finish is not an answer.
    fn end(&mut self) -> Result<(), Failure> {
        let mut events = Vec::new();
        self.events
            .finish(&mut events)
            .map_err(|_| Failure::Malformed("not UTF-8".to_owned()))?;
        events.iter().try_for_each(|event| self.read(event))?;
        if !self.done && !self.finished {
            return Err(Failure::Malformed(
                "the stream ended before the answer did".to_owned(),
            ));
        }
        self.done = true;
        Ok(())
    }

    /// Read one event's data.
    fn read(&mut self, data: &str) -> Result<(), Failure> {
        if self.done {
            return Ok(());
        }
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|_| Failure::Malformed("an event is not a completion chunk".to_owned()))?;
        if chunk.error.is_some() {
            return Err(Failure::Malformed("the server sent an error".to_owned()));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
            let Some(delta) = choice.delta else { continue };
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.first_at.get_or_insert_with(Instant::now);
                self.pending.push_back(text);
            }
            for call in delta.tool_calls {
                self.first_at.get_or_insert_with(Instant::now);
                let entry = self.calls.entry(call.index).or_default();
                if let Some(function) = call.function {
                    if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                        entry.name = name;
                    }
                    if let Some(arguments) = function.arguments {
                        entry.arguments.push_str(&arguments);
                    }
                }
            }
        }
        Ok(())
    }

    fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls
            .values()
            .filter(|call| !call.name.is_empty())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(stream: &str) -> Result<Decoder, Failure> {
        let mut decoder = Decoder::default();
        // In pieces of 7 bytes: chunks never end where events do.
        for piece in stream.as_bytes().chunks(7) {
            decoder.feed(piece)?;
        }
        decoder.end()?;
        Ok(decoder)
    }

    fn text(decoder: &Decoder) -> String {
        decoder.pending.iter().map(String::as_str).collect()
    }

    #[test]
    fn text_tool_call_pieces_and_usage_are_read_as_openai_streams_them() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"handoff_to_human\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"rea\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"son\\\": \\\"billing\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9,\"total_tokens\":129}}\n\n",
            "data: [DONE]\n\n",
        );
        let decoder = decode(stream).expect("a completion");
        assert_eq!(text(&decoder), "Let me check.");
        assert_eq!(
            decoder.tool_calls(),
            [ToolCall {
                name: "handoff_to_human".to_owned(),
                arguments: "{\"reason\": \"billing\"}".to_owned(),
            }]
        );
        assert_eq!(
            decoder.usage,
            Some(Usage {
                prompt_tokens: 120,
                completion_tokens: 9
            })
        );
        assert!(decoder.first_at.is_some());
    }

    #[test]
    fn a_stream_cut_mid_answer_or_not_a_completion_is_malformed() {
        let cut = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        assert!(matches!(decode(cut), Err(Failure::Malformed(_))));
        assert!(matches!(
            decode("data: <html>\n\n"),
            Err(Failure::Malformed(_))
        ));
        let error = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";
        assert!(matches!(decode(error), Err(Failure::Malformed(_))));
        // A finished answer without `[DONE]` is whole.
        let finished = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(text(&decode(finished).expect("whole")), "Hi");
    }
}
