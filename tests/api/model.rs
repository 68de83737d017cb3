//! Answers from a language model, driven by a scripted OpenAI-compatible server
//! that streams exactly as OpenAI's API does (`data:` lines of
//! `chat.completion.chunk`s, `choices[0].delta.content`, tool-call deltas whose
//! arguments come in pieces, a last usage chunk, `data: [DONE]`), so each behaviour
//! is tested over the API: streamed pieces equal the stored body, invented markers
//! never reach the visitor, a tool call hands off, a person taking over stops the
//! answer, each kind of failure falls back within its time-out, the breaker opens
//! and closes, the daily token limit holds, and the key never shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::helpers::{TIMEOUT, TestApp, Workspace, fresh_database, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

/// What the fake model answers one request with.
#[derive(Clone, Debug)]
pub enum Script {
    /// A `200` event stream of these steps.
    Stream(Vec<Step>),
    /// An HTTP error.
    Status(u16),
    /// Headers, then nothing, ever.
    Hang,
    /// A `200` event stream whose body is this text.
    Raw(&'static str),
}

#[derive(Clone, Debug)]
pub enum Step {
    /// A `delta.content` chunk.
    Text(&'static str),
    /// A `handoff_to_human` call, its arguments in these pieces.
    Tool(Vec<&'static str>),
    /// A chunk with `finish_reason`.
    Finish(&'static str),
    /// The usage chunk: prompt and completion tokens.
    Usage(i64, i64),
    /// `data: [DONE]`.
    Done,
    /// A pause.
    Wait(Duration),
}

/// A request the fake model received.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: Value,
    /// Its `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Fake {
    scripts: Mutex<VecDeque<Script>>,
    received: Mutex<Vec<Received>>,
}

/// A scripted OpenAI-compatible server on `127.0.0.1`.
pub struct FakeModel {
    /// The base URL, as `CASEFILE_LLM_URL` takes it.
    pub url: String,
    fake: Arc<Fake>,
}

impl FakeModel {
    pub async fn start() -> FakeModel {
        let fake = Arc::new(Fake::default());
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .with_state(Arc::clone(&fake));
        let addr = crate::helpers::serve_router(app).await;
        FakeModel {
            url: format!("http://{addr}/v1"),
            fake,
        }
    }

    /// Answer the next requests with `scripts`, in order.
    pub fn script(&self, scripts: impl IntoIterator<Item = Script>) {
        self.fake.scripts.lock().expect("lock").extend(scripts);
    }

    pub fn received(&self) -> Vec<Received> {
        self.fake.received.lock().expect("lock").clone()
    }
}

/// One streamed chunk of `choices[0]` with `delta` (and `finish_reason`).
fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {chunk}\n\n")
}

fn step_text(step: &Step) -> Option<String> {
    Some(match step {
        Step::Text(text) => chunk(json!({ "content": text }), None),
        Step::Finish(reason) => chunk(json!({}), Some(reason)),
        Step::Usage(prompt, completion) => format!(
            "data: {}\n\n",
            json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": "fake", "choices": [],
                "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion } })
        ),
        Step::Done => "data: [DONE]\n\n".to_owned(),
        Step::Tool(pieces) => {
            let mut out = chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function",
                    "function": { "name": "handoff_to_human", "arguments": "" } }] }),
                None,
            );
            for piece in pieces {
                out.push_str(&chunk(
                    json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                    None,
                ));
            }
            out
        }
        Step::Wait(_) => return None,
    })
}

async fn completions(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("the request is JSON");
    fake.received.lock().expect("lock").push(Received {
        body,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let script = fake.scripts.lock().expect("lock").pop_front();
    let script = script.unwrap_or_else(|| {
        Script::Stream(vec![
            Step::Text("From the docs [1]."),
            Step::Finish("stop"),
            Step::Done,
        ])
    });
    let sse = [(header::CONTENT_TYPE, "text/event-stream")];
    match script {
        Script::Status(status) => (
            StatusCode::from_u16(status).expect("a status"),
            "{\"error\":{\"message\":\"scripted\"}}",
        )
            .into_response(),
        Script::Hang => (
            sse,
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>()),
        )
            .into_response(),
        Script::Raw(text) => (sse, text).into_response(),
        Script::Stream(steps) => {
            let stream = async_stream::stream! {
                for step in steps {
                    match step_text(&step) {
                        Some(text) => yield Ok::<_, std::io::Error>(Bytes::from(text)),
                        None => if let Step::Wait(pause) = step {
                            tokio::time::sleep(pause).await;
                        },
                    }
                }
            };
            (sse, Body::from_stream(stream)).into_response()
        }
    }
}

/// A server answering from `model`, with short time-outs.
async fn serve(model: &FakeModel, tune: impl FnOnce(&mut casefile::Config)) -> TestApp {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.model.url = Some(model.url.parse().expect("a URL"));
    config.model.model = Some("fake-model".to_owned());
    config.model.first_token_timeout = Duration::from_secs(2);
    config.model.timeout = Duration::from_secs(4);
    tune(&mut config);
    TestApp::spawn_with(config, dir).await
}

/// A workspace answering with the model, with two articles about drafts.
async fn workspace(app: &TestApp) -> Workspace {
    let ws = app.workspace_with_ai("Inkwell").await;
    for (title, url, body) in [
        (
            "Scheduling drafts",
            "https://docs.test/scheduling",
            "# Scheduling drafts\n\nTo schedule a draft, open it, click Schedule and pick a date and time. The post goes live then.\n\nScheduled posts appear in the calendar.",
        ),
        (
            "Publishing workflows",
            "https://docs.test/workflows",
            "# Publishing workflows\n\nEditors review a draft before it is published; a scheduled draft is published at its date.",
        ),
    ] {
        app.data(
            Some(&ws.admin_token),
            "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
            json!({ "i": { "title": title, "url": url, "body": body } }),
        )
        .await;
    }
    ws
}

const QUESTION: &str = "How do I schedule a draft?";

const EVENTS: &str = "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename ... on AnswerDelta { conversationId replyToSeq offset text } } }";

const READ: &str = "query($c: ID!) { conversation(id: $c) { status messages { nodes { seq author body confidence replyToSeq sources { title url } } } openHandoff { reason note caseFile { summary } } } }";

/// A conversation whose visitor listens to its events; its id, the visitor token
/// and the socket.
async fn listening_visitor(app: &TestApp, ws: &Workspace) -> (String, String, WsClient) {
    let (conversation, visitor) = app.start_conversation(ws, None).await;
    let mut socket = WsClient::ready(app, TRANSPORT_WS, &visitor).await;
    socket
        .subscribe("events", EVENTS, json!({ "c": conversation }))
        .await;
    app.listening(1).await;
    (conversation, visitor, socket)
}

/// The AnswerDeltas the socket receives until their text is `chars` long.
async fn deltas(socket: &mut WsClient, chars: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let mut length = 0;
    while length < chars {
        let payload = socket.next_data("events").await;
        let event = &payload["data"]["conversationEvents"];
        if event["__typename"] == "AnswerDelta" {
            length += event["text"].as_str().expect("text").chars().count();
            got.push(event.clone());
        }
    }
    got
}

fn messages(read: &Value) -> Vec<Value> {
    read["conversation"]["messages"]["nodes"]
        .as_array()
        .expect("messages")
        .clone()
}

fn ai_messages(read: &Value) -> Vec<Value> {
    messages(read)
        .into_iter()
        .filter(|m| m["author"] == "AI")
        .collect()
}

#[tokio::test]
async fn a_model_answer_streams_as_it_is_written_and_is_stored_once_as_sent() {
    let model = FakeModel::start().await;
    model.script([Script::Stream(vec![
        Step::Text("To schedule a draft, open it and click Schedule [1"),
        Step::Wait(Duration::from_millis(60)),
        Step::Text("]. Drafts are published at their date [2][9]"),
        Step::Wait(Duration::from_millis(60)),
        Step::Text(" [n]."),
        Step::Finish("stop"),
        Step::Usage(120, 30),
        Step::Done,
    ])]);
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let (conversation, visitor, mut socket) = listening_visitor(&app, &ws).await;
    // Neither an internal note nor the lead's details ever reach the model.
    app.data(
        Some(&ws.admin_token),
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        json!({ "input": { "conversationId": conversation, "body": "internal: VIP account", "internal": true } }),
    )
    .await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!) { captureLead(conversationId: $c, input: { email: \"kim@secret.example\", company: \"Secret Corp\" }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let asked = app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;

    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    let answers = ai_messages(&read);
    assert_eq!(answers.len(), 1, "stored once: {read:#}");
    let answer = &answers[0];
    let body = answer["body"].as_str().expect("body");
    assert_eq!(
        body,
        "To schedule a draft, open it and click Schedule [1]. Drafts are published at their date [2]."
    );
    assert_eq!(answer["replyToSeq"], asked["seq"]);

    // What the visitor saw, piece by piece, is exactly what was stored.
    let pieces = deltas(&mut socket, body.chars().count()).await;
    assert!(pieces.len() >= 2, "streamed in pieces: {pieces:?}");
    let mut offset = 0;
    let mut joined = String::new();
    for piece in &pieces {
        assert_eq!(piece["offset"], offset, "{pieces:?}");
        assert_eq!(piece["replyToSeq"], asked["seq"]);
        assert_eq!(piece["conversationId"], conversation.as_str());
        let text = piece["text"].as_str().expect("text");
        offset += text.chars().count() as i64;
        joined.push_str(text);
    }
    assert_eq!(joined, body);

    // The request, as OpenAI's API takes it.
    let received = model.received();
    assert_eq!(received.len(), 1);
    let request = &received[0].body;
    assert_eq!(request["model"], "fake-model");
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
    assert_eq!(request["tool_choice"], "auto");
    assert_eq!(request["tools"][0]["function"]["name"], "handoff_to_human");
    assert_eq!(
        request["tools"][0]["function"]["parameters"]["required"],
        json!(["reason"])
    );
    let sent = request["messages"].to_string();
    assert!(!sent.contains("VIP account"), "an internal note: {sent}");
    assert!(
        !sent.contains("Secret Corp") && !sent.contains("kim@secret.example"),
        "lead details: {sent}"
    );
    let chat = request["messages"].as_array().expect("messages");
    assert_eq!(chat[0]["role"], "system");
    assert_eq!(chat.last().expect("a last")["content"], QUESTION);

    // Sources in order of first citation, as numbered in the prompt; the invented
    // [9] and [n] cite nothing.
    let system = chat[0]["content"].as_str().expect("system prompt");
    let first = system.find("[1] ").expect("source 1");
    let second = system.find("[2] ").expect("source 2");
    let titles: Vec<&str> = answer["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(system[first..second].contains(titles[0]), "{system}");
    assert!(system[second..].contains(titles[1]), "{system}");
    assert!(answer["confidence"].as_f64().expect("confidence") > 0.0);

    // The usage the server reported is counted.
    let usage = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { modelUsage { answers failures handoffs promptTokens completionTokens estimated firstTokenP50Ms } } }",
            json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
        )
        .await;
    let usage = &usage["insights"]["modelUsage"];
    assert_eq!(usage["answers"], 1);
    assert_eq!(usage["failures"], 0);
    assert_eq!(usage["promptTokens"], 120);
    assert_eq!(usage["completionTokens"], 30);
    assert_eq!(usage["estimated"], 0);
    assert!(usage["firstTokenP50Ms"].is_i64());
}

#[tokio::test]
async fn the_model_hands_off_by_calling_its_tool_with_its_reason_in_the_case_file() {
    let model = FakeModel::start().await;
    model.script([Script::Stream(vec![
        Step::Text("I'll get a person to help with your invoice."),
        Step::Tool(vec![
            "{\"rea",
            "son\": \"the visitor disputes an ",
            "invoice\"}",
        ]),
        Step::Finish("tool_calls"),
        Step::Done,
    ])]);
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert_eq!(read["conversation"]["status"], "QUEUED");
    let handoff = &read["conversation"]["openHandoff"];
    assert_eq!(handoff["reason"], "AI_REQUESTED");
    assert_eq!(handoff["note"], "the visitor disputes an invoice");
    let summary = handoff["caseFile"]["summary"].as_str().expect("summary");
    assert!(
        summary.contains("the visitor disputes an invoice"),
        "{summary}"
    );
    // What it wrote before the call is stored first, then the visitor is told.
    let all = messages(&read);
    let ai = all
        .iter()
        .position(|m| m["author"] == "AI")
        .expect("the AI's text");
    assert_eq!(
        all[ai]["body"],
        "I'll get a person to help with your invoice."
    );
    assert!(
        all[ai + 1..].iter().any(|m| m["author"] == "SYSTEM"),
        "{all:?}"
    );
    // The usage the server did not report is estimated.
    let usage = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { modelUsage { handoffs estimated promptTokens } } }",
            json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(usage["insights"]["modelUsage"]["handoffs"], 1);
    assert_eq!(usage["insights"]["modelUsage"]["estimated"], 1);
    assert!(
        usage["insights"]["modelUsage"]["promptTokens"]
            .as_i64()
            .expect("tokens")
            > 0
    );
}

#[tokio::test]
async fn the_ai_shows_typing_while_a_slow_model_has_not_started_and_not_around_a_fast_one() {
    const ANSWER: &str = "To schedule a draft, open it and click Schedule [1].";
    let model = FakeModel::start().await;
    model.script([
        Script::Stream(vec![
            Step::Wait(Duration::from_millis(800)),
            Step::Text(ANSWER),
            Step::Finish("stop"),
            Step::Done,
        ]),
        Script::Stream(vec![Step::Text(ANSWER), Step::Finish("stop"), Step::Done]),
    ]);
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let mut socket = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    socket
        .subscribe(
            "events",
            "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename \
             ... on TypingEvent { author typing } ... on AnswerDelta { text } } }",
            json!({ "c": conversation }),
        )
        .await;
    app.listening(1).await;
    // What the visitor sees of the AI writing, as `typing:true`, `typing:false`
    // and `delta`, until `until` is seen (the conversation's other events, such as
    // its status as it starts, are not what this is about).
    async fn seen(socket: &mut WsClient, until: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let mut text = String::new();
        while seen.last().map(String::as_str) != Some(until) {
            let payload = socket.next_data("events").await;
            let event = &payload["data"]["conversationEvents"];
            seen.push(match event["__typename"].as_str() {
                Some("AnswerDelta") => {
                    text.push_str(event["text"].as_str().expect("text"));
                    if text == ANSWER { "answered" } else { "delta" }.to_owned()
                }
                Some("TypingEvent") => format!("{}:{}", event["author"], event["typing"]),
                _ => continue,
            });
        }
        seen
    }

    app.send(&visitor, &conversation, QUESTION).await;
    let mut slow = seen(&mut socket, "\"AI\":false").await;
    slow.dedup();
    assert_eq!(slow, ["\"AI\":true", "answered", "\"AI\":false"]);
    app.settle().await;

    app.send(
        &visitor,
        &conversation,
        "And where do scheduled posts appear?",
    )
    .await;
    assert_eq!(seen(&mut socket, "answered").await, ["answered"]);
    app.settle().await;
    // Nothing more came of it: the next thing the visitor hears is its own typing.
    app.data(
        Some(&visitor),
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }",
        json!({ "c": conversation }),
    )
    .await;
    assert_eq!(
        seen(&mut socket, "\"VISITOR\":true").await,
        ["\"VISITOR\":true"]
    );
}

#[tokio::test]
async fn a_person_taking_over_mid_answer_stops_it_at_once_and_nothing_is_stored() {
    let model = FakeModel::start().await;
    model.script([Script::Stream(vec![
        Step::Text("To schedule a draft, open it"),
        Step::Wait(Duration::from_secs(60)),
        Step::Text(" and click Schedule [1]."),
        Step::Finish("stop"),
        Step::Done,
    ])]);
    let app = serve(&model, |config| {
        config.model.timeout = Duration::from_secs(120);
    })
    .await;
    let ws = workspace(&app).await;
    let (conversation, visitor, mut socket) = listening_visitor(&app, &ws).await;
    app.send(&visitor, &conversation, QUESTION).await;
    let first = deltas(&mut socket, 1).await;
    assert_eq!(first[0]["text"], "To schedule a draft, open it");

    app.take_over(&ws.admin_token, &conversation).await;
    // The pipeline ends without waiting for the model's next minute.
    tokio::time::timeout(Duration::from_secs(10), app.settle())
        .await
        .expect("abandoned at once");
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert!(ai_messages(&read).is_empty(), "{read:#}");
    // Nothing more streams: the next event the visitor gets is not a piece.
    app.send(&visitor, &conversation, "thanks").await;
    loop {
        let payload = socket.next_data("events").await;
        let kind = &payload["data"]["conversationEvents"]["__typename"];
        assert_ne!(kind, "AnswerDelta", "{payload}");
        if kind != "TypingEvent" {
            break;
        }
    }
}

#[tokio::test]
async fn each_kind_of_model_failure_answers_the_extractive_way_within_its_time_out() {
    let model = FakeModel::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let refused = FakeModel {
        url: format!("http://{closed}/v1"),
        fake: Arc::default(),
    };
    let cases: [(&str, Option<Script>); 5] = [
        ("connection refused", None),
        ("HTTP error", Some(Script::Status(503))),
        (
            "malformed stream",
            Some(Script::Raw("data: {this is not json}\n\n")),
        ),
        ("no first token", Some(Script::Hang)),
        (
            "answer too slow",
            Some(Script::Stream(vec![
                Step::Text("To schedule"),
                Step::Wait(Duration::from_secs(60)),
                Step::Done,
            ])),
        ),
    ];
    for (what, script) in cases {
        let target = if script.is_some() { &model } else { &refused };
        if let Some(script) = script {
            model.script([script]);
        }
        let app = serve(target, |config| {
            config.model.first_token_timeout = Duration::from_secs(1);
            config.model.timeout = Duration::from_secs(2);
        })
        .await;
        let ws = workspace(&app).await;
        let (conversation, visitor) = app.start_conversation(&ws, None).await;
        let started = std::time::Instant::now();
        app.send(&visitor, &conversation, QUESTION).await;
        app.settle().await;
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{what}: answered after {:?}",
            started.elapsed()
        );
        let read = app
            .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
            .await;
        let answers = ai_messages(&read);
        assert_eq!(answers.len(), 1, "{what}: {read:#}");
        let body = answers[0]["body"].as_str().expect("body");
        assert!(
            body.starts_with("From “Scheduling drafts”"),
            "{what}: the extractive answer, not {body}"
        );
        assert!(!body.contains("To schedule a draft, open it and"), "{what}");
        let usage = app
            .data(
                Some(&ws.admin_token),
                "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { modelUsage { failures answers } } }",
                json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
            )
            .await;
        assert_eq!(usage["insights"]["modelUsage"]["failures"], 1, "{what}");
        assert_eq!(usage["insights"]["modelUsage"]["answers"], 0, "{what}");
    }
}

async fn health(app: &TestApp) -> (u16, String) {
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn the_breaker_stops_calling_a_failing_model_then_tries_it_again() {
    let model = FakeModel::start().await;
    model.script([Script::Status(500), Script::Status(500)]);
    let app = serve(&model, |config| {
        config.model.breaker.failures = 2;
        config.model.breaker.open_for = Duration::from_secs(2);
    })
    .await;
    let ws = workspace(&app).await;
    let (status, said) = health(&app).await;
    assert_eq!(status, 200);
    assert!(!said.contains("degraded"), "{said}");
    for _ in 0..2 {
        let (conversation, visitor) = app.start_conversation(&ws, None).await;
        app.send(&visitor, &conversation, QUESTION).await;
        app.settle().await;
    }
    assert_eq!(model.received().len(), 2);
    let (status, body) = health(&app).await;
    assert_eq!(status, 200, "degraded, still serving");
    assert!(body.starts_with("ok; model degraded"), "{body}");

    // Open: answered the extractive way without asking the model.
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    assert_eq!(model.received().len(), 2);
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert!(
        ai_messages(&read)[0]["body"]
            .as_str()
            .expect("body")
            .starts_with("From “"),
        "{read:#}"
    );

    // Closed again once its time passed: the model is asked.
    tokio::time::timeout(TIMEOUT, async {
        while health(&app).await.1.contains("degraded") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the breaker closes");
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    assert_eq!(model.received().len(), 3);
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert_eq!(ai_messages(&read)[0]["body"], "From the docs [1].");
}

#[tokio::test]
async fn past_its_daily_token_limit_a_workspace_answers_the_extractive_way() {
    let model = FakeModel::start().await;
    model.script([Script::Stream(vec![
        Step::Text("Open it and click Schedule [1]."),
        Step::Finish("stop"),
        Step::Usage(80, 40),
        Step::Done,
    ])]);
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let set = app
        .data(
            Some(&ws.admin_token),
            "mutation { updateWorkspace(input: { modelDailyTokenLimit: 100 }) { modelDailyTokenLimit answerEngine } }",
            json!({}),
        )
        .await;
    assert_eq!(
        set["updateWorkspace"],
        json!({ "modelDailyTokenLimit": 100, "answerEngine": "MODEL" })
    );
    for expected in [
        "Open it and click Schedule [1].",
        "From “Scheduling drafts”",
    ] {
        let (conversation, visitor) = app.start_conversation(&ws, None).await;
        app.send(&visitor, &conversation, QUESTION).await;
        app.settle().await;
        let read = app
            .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
            .await;
        let body = ai_messages(&read)[0]["body"]
            .as_str()
            .expect("body")
            .to_owned();
        assert!(body.starts_with(expected), "{body}");
    }
    assert_eq!(
        model.received().len(),
        1,
        "120 tokens spent, the limit is 100"
    );
}

#[tokio::test]
async fn the_workspace_chooses_its_engine_and_instructions_go_to_the_model() {
    let model = FakeModel::start().await;
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let read =
        "{ workspace { answerEngine responderEnabled answerInstructions modelDailyTokenLimit } }";
    assert_eq!(
        app.data(Some(&ws.admin_token), read, json!({})).await["workspace"],
        json!({ "answerEngine": "MODEL", "responderEnabled": true, "answerInstructions": "", "modelDailyTokenLimit": null })
    );
    let too_long = "x".repeat(4_001);
    let refused = app
        .gql(
            Some(&ws.admin_token),
            "mutation($i: String!) { updateWorkspace(input: { answerInstructions: $i }) { id } }",
            json!({ "i": too_long }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "answerInstructions"
    );
    app.data(
        Some(&ws.admin_token),
        "mutation { updateWorkspace(input: { answerInstructions: \"Answer in the visitor's language. Never promise refunds.\" }) { id } }",
        json!({}),
    )
    .await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    let system = model.received()[0].body["messages"][0]["content"]
        .as_str()
        .expect("system")
        .to_owned();
    assert!(system.contains("Never promise refunds."), "{system}");

    // `responderEnabled: false` is `OFF`: nobody answers, the model is not asked.
    let off = app
        .data(
            Some(&ws.admin_token),
            "mutation { updateWorkspace(input: { responderEnabled: false }) { answerEngine responderEnabled } }",
            json!({}),
        )
        .await;
    assert_eq!(
        off["updateWorkspace"],
        json!({ "answerEngine": "OFF", "responderEnabled": false })
    );
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    assert_eq!(model.received().len(), 1);
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert!(ai_messages(&read).is_empty());

    // `EXTRACTIVE` quotes without asking.
    app.data(
        Some(&ws.admin_token),
        "mutation { updateWorkspace(input: { answerEngine: EXTRACTIVE }) { answerEngine } }",
        json!({}),
    )
    .await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    assert_eq!(model.received().len(), 1);
}

#[tokio::test]
async fn without_a_model_the_default_is_extractive_and_model_is_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace_with_ai("No model").await;
    let read = app
        .data(
            Some(&ws.admin_token),
            "{ workspace { answerEngine } }",
            json!({}),
        )
        .await;
    assert_eq!(read["workspace"]["answerEngine"], "EXTRACTIVE");
    let refused = app
        .gql(
            Some(&ws.admin_token),
            "mutation { updateWorkspace(input: { answerEngine: MODEL }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "answerEngine");
}

#[tokio::test]
async fn nothing_over_the_threshold_never_asks_the_model() {
    let model = FakeModel::start().await;
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, "Do you sell gift cards?")
        .await;
    app.settle().await;
    assert!(model.received().is_empty());
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    // The policy's no-answer path, as before: ask to rephrase, or hand off.
    let answered = ai_messages(&read);
    let handed_off = !read["conversation"]["openHandoff"].is_null();
    assert!(answered.len() == 1 || handed_off, "{read:#}");
}

/// A key no log line, answer or help text may show.
const KEY: &str = "sk-test-0123456789abcdef-SECRET";

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token_and_never_shown() {
    // In the server: sent to the model, absent from what clients read.
    let model = FakeModel::start().await;
    model.script([Script::Status(401)]);
    let app = serve(&model, |config| {
        config.model.api_key = Some(casefile::config::Secret::new(KEY));
    })
    .await;
    let ws = workspace(&app).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, QUESTION).await;
    app.settle().await;
    assert_eq!(
        model.received()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let read = app
        .gql(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    assert!(!read.to_string().contains(KEY));
    assert!(!health(&app).await.1.contains(KEY));

    // The binary: its help, and its log when the model fails.
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(["serve", "--help"])
        .env("CASEFILE_LLM_API_KEY", KEY)
        .output()
        .await
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(help.contains("--llm-api-key"), "{help}");
    assert!(!help.contains(KEY), "{help}");

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/casefile.db", dir.path().display());
    let created = crate::startup::create_workspace(&url, "owner@key.test")
        .env("CASEFILE_ADMIN_PASSWORD", "correct horse battery")
        .env("CASEFILE_LLM_API_KEY", KEY)
        .output()
        .await
        .expect("workspace create runs");
    assert!(created.status.success());
    assert!(!String::from_utf8_lossy(&created.stdout).contains(KEY));
    assert!(!String::from_utf8_lossy(&created.stderr).contains(KEY));
    let created: Value = serde_json::from_slice(&created.stdout).expect("JSON");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env("CASEFILE_LLM_URL", format!("http://{closed}/v1"))
        .env("CASEFILE_LLM_MODEL", "fake-model")
        .env("CASEFILE_LLM_API_KEY", KEY)
        .env("CASEFILE_RATE_LIMITS", "off")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("casefile starts");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = Vec::new();
    let address = tokio::time::timeout(TIMEOUT, async {
        loop {
            let line = lines.next_line().await.expect("stderr").expect("a line");
            log.push(line.clone());
            if let Some(at) = line.find("serving on http://") {
                let rest = &line[at + "serving on http://".len()..];
                return rest
                    .split([';', ' ', '/'])
                    .next()
                    .expect("address")
                    .to_owned();
            }
        }
    })
    .await
    .expect("it serves");
    let client = reqwest::Client::new();
    let graphql = |token: Option<String>, query: &'static str, variables: Value| {
        let mut request = client
            .post(format!("http://{address}/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            let text = response.text().await.expect("text");
            let body: Value =
                serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: {err}: {text}"));
            assert!(!body.to_string().contains(KEY));
            body
        }
    };
    let admin = created["adminToken"].as_str().expect("token").to_owned();
    graphql(
        Some(admin),
        "mutation { upsertArticle(input: { title: \"Scheduling drafts\", url: \"https://docs.test/s\", body: \"To schedule a draft, open it, click Schedule and pick a date and time.\" }) { id } }",
        json!({}),
    )
    .await;
    let widget = created["widgetKey"]
        .as_str()
        .expect("widget key")
        .to_owned();
    graphql(
        None,
        "mutation($k: String!, $m: String!) { startConversation(input: { widgetKey: $k, message: $m }) { conversation { id } } }",
        json!({ "k": widget, "m": QUESTION }),
    )
    .await;
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let line = lines.next_line().await.expect("stderr").expect("a line");
            log.push(line.clone());
            if line.contains("the model failed") {
                return;
            }
        }
    })
    .await
    .expect("the failure is logged");
    let failure = log.last().expect("a line");
    assert!(
        failure.contains(&closed.to_string()),
        "names the host: {failure}"
    );
    assert!(
        failure.contains("connection failed"),
        "names the kind: {failure}"
    );
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("health")
        .text()
        .await
        .expect("text");
    assert!(!health.contains(KEY));
    child.kill().await.expect("stops");
    for line in &log {
        assert!(!line.contains(KEY), "the key in the log: {line}");
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

#[tokio::test]
#[ignore = "needs llama.cpp's OpenAI server and a model: `.ci/llama` installs them and prints CASEFILE_TEST_LLAMA_PYTHON and CASEFILE_TEST_LLAMA_MODEL; .ci/run runs this test alone"]
async fn llama_a_real_model_streams_an_answer_that_is_stored_as_sent() {
    let python = std::env::var("CASEFILE_TEST_LLAMA_PYTHON")
        .expect("CASEFILE_TEST_LLAMA_PYTHON: the python of a venv with llama-cpp-python[server] (see .ci/llama)");
    let weights = std::env::var("CASEFILE_TEST_LLAMA_MODEL")
        .expect("CASEFILE_TEST_LLAMA_MODEL: a GGUF file (see .ci/llama)");
    let port = free_port();
    let _server = tokio::process::Command::new(python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            &weights,
            "--n_threads",
            "2",
        ])
        .args([
            "--n_ctx",
            "2048",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("llama.cpp's server starts");
    let base = format!("http://127.0.0.1:{port}/v1");
    let probe = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while probe.get(format!("{base}/models")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("llama.cpp's server answers");

    let model = FakeModel {
        url: base,
        fake: Arc::default(),
    };
    let app = serve(&model, |config| {
        config.model.model = Some("smollm2-135m".to_owned());
        config.model.first_token_timeout = Duration::from_secs(60);
        config.model.timeout = Duration::from_secs(120);
        // The visitor's socket is read only once the answer is in, so it answers
        // no ping meanwhile: the keep-alive must outlast a slow CPU's answer (on a
        // machine that took 30 s, the default closed it with 1008).
        config.ws_keepalive = Duration::from_secs(300);
    })
    .await;
    let ws = workspace(&app).await;
    let (conversation, visitor, mut socket) = listening_visitor(&app, &ws).await;
    app.send(&visitor, &conversation, QUESTION).await;
    tokio::time::timeout(Duration::from_secs(150), async {
        while app.running.state.pipelines.running() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("answered in time");
    let usage = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { modelUsage { answers handoffs failures promptTokens completionTokens estimated firstTokenP50Ms } } }",
            json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
        )
        .await;
    let usage = &usage["insights"]["modelUsage"];
    assert_eq!(usage["failures"], 0, "{usage}");
    assert!(
        usage["promptTokens"].as_i64().expect("prompt") > 0,
        "{usage}"
    );
    assert!(
        usage["completionTokens"].as_i64().expect("completion") > 0,
        "{usage}"
    );
    assert!(usage["firstTokenP50Ms"].is_i64(), "{usage}");
    let read = app
        .data(Some(&ws.admin_token), READ, json!({ "c": conversation }))
        .await;
    let answers = ai_messages(&read);
    if usage["answers"] == 1 {
        let body = answers[0]["body"].as_str().expect("body");
        let streamed: String = deltas(&mut socket, body.chars().count())
            .await
            .iter()
            .map(|d| d["text"].as_str().expect("text").to_owned())
            .collect();
        assert_eq!(streamed, body, "the stored body is what streamed");
        // What the model invented as markers cites nothing it was not given.
        for source in answers[0]["sources"].as_array().expect("sources") {
            assert!(
                source["url"]
                    .as_str()
                    .expect("url")
                    .starts_with("https://docs.test/")
            );
        }
    } else {
        // It called `handoff_to_human` instead: handed off, by the AI.
        assert_eq!(usage["handoffs"], 1, "{usage}");
        assert_eq!(
            read["conversation"]["openHandoff"]["reason"],
            "AI_REQUESTED"
        );
    }
}

#[tokio::test]
async fn a_preview_asks_the_model_with_nothing_streamed_stored_or_counted() {
    let model = FakeModel::start().await;
    model.script([
        Script::Stream(vec![
            Step::Text("Open it and click Schedule [2][9]."),
            Step::Finish("stop"),
            Step::Usage(140, 11),
            Step::Done,
        ]),
        Script::Stream(vec![
            Step::Tool(vec!["{\"rea", "son\": \"a billing dispute\"}"]),
            Step::Finish("tool_calls"),
            Step::Done,
        ]),
        Script::Status(500),
        Script::Stream(vec![
            Step::Text("Click Schedule [1]."),
            Step::Finish("stop"),
            Step::Done,
        ]),
    ]);
    let app = serve(&model, |_| {}).await;
    let ws = workspace(&app).await;
    // A visitor listening to a conversation of the workspace sees nothing of it.
    let (conversation, visitor, mut socket) = listening_visitor(&app, &ws).await;
    const PREVIEW: &str = "query($q: String!, $e: AnswerEngine) { previewAnswer(question: $q, engine: $e) { \
        outcome reason note engine body confidence modelFailure promptTokens completionTokens sources { url } } }";
    let preview = |engine: Option<&str>| {
        let vars = json!({ "q": QUESTION, "e": engine });
        let (app, ws) = (&app, &ws);
        async move { app.data(Some(&ws.admin_token), PREVIEW, vars).await["previewAnswer"].clone() }
    };

    let answered = preview(None).await;
    assert_eq!(answered["outcome"], "ANSWERED", "{answered:#}");
    assert_eq!(answered["engine"], "MODEL");
    assert_eq!(answered["body"], "Open it and click Schedule [1].");
    assert_eq!(answered["sources"].as_array().expect("sources").len(), 1);
    assert!(answered["confidence"].as_f64().expect("confidence") > 0.0);
    assert_eq!(
        (&answered["promptTokens"], &answered["completionTokens"]),
        (&json!(140), &json!(11))
    );
    // The question alone is the conversation.
    let request = &model.received()[0].body;
    let chat = request["messages"].as_array().expect("messages");
    assert_eq!(chat.len(), 2);
    assert_eq!(chat[1], json!({ "role": "user", "content": QUESTION }));

    let handoff = preview(None).await;
    assert_eq!(handoff["outcome"], "HANDOFF", "{handoff:#}");
    assert_eq!(handoff["reason"], "AI_REQUESTED");
    assert_eq!(handoff["note"], "a billing dispute");
    assert_eq!(handoff["body"], Value::Null);
    assert!(handoff["promptTokens"].as_i64().expect("estimated") > 0);

    let failed = preview(None).await;
    assert_eq!(failed["outcome"], "ANSWERED", "{failed:#}");
    assert_eq!(failed["engine"], "EXTRACTIVE");
    assert!(
        failed["modelFailure"]
            .as_str()
            .expect("failure")
            .contains("500"),
        "{failed:#}"
    );

    // Asked for the extractive engine, the model is not called.
    let extractive = preview(Some("EXTRACTIVE")).await;
    assert_eq!(extractive["engine"], "EXTRACTIVE");
    assert_eq!(model.received().len(), 3);

    // Previews count neither in modelUsage nor toward the daily limit, and no event
    // reached the conversation's visitor.
    let usage = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { modelUsage { answers handoffs failures promptTokens } } }",
            json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        usage["insights"]["modelUsage"],
        json!({ "answers": 0, "handoffs": 0, "failures": 0, "promptTokens": 0 })
    );
    let asked = app
        .send(
            &visitor,
            &conversation,
            "Thanks, and how do I schedule a draft?",
        )
        .await;
    let first = deltas(&mut socket, 1).await;
    assert_eq!(
        (&first[0]["replyToSeq"], &first[0]["offset"]),
        (&asked["seq"], &json!(0)),
        "the first piece the visitor sees is of its own answer: {first:?}"
    );
}
