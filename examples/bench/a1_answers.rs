//! A1: answers from a model. 50 visitors, each with a conversation and a
//! graphql-transport-ws connection subscribed to its `conversationEvents` and
//! `messages` (as the widget does), ask their question at the same moment
//! (`sendMessage`); the workspace answers with `answerEngine: MODEL`, the model
//! being a fake OpenAI-compatible server in the bench process that streams its
//! whole answer at once (so what is measured is casefile's own time), or, in the
//! alternate rounds, with `EXTRACTIVE`.
//!
//! Measured per visitor: from just before its `sendMessage` to the first text of
//! the answer reaching it (the first `AnswerDelta` with the model, the stored AI
//! message with the extractive responder), and to the stored AI message; per round,
//! the casefile child's CPU (and PostgreSQL's, on PostgreSQL) from the moment the
//! visitors ask until every answer is in, per answer. Checked: every model answer's
//! pieces, joined in `offset` order, are exactly its stored body, and it cites a
//! source.
//!
//! The ceiling is the extractive path: the goal is what the connector adds to it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use futures_util::SinkExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{
    self, Ctx, Database, Goal, Row, STEP_TIMEOUT, Scenario, ServerChild, Socket, Workspace,
    percentile,
};

pub const SCENARIO: Scenario = Scenario {
    id: "A1",
    name: "model-answers",
    about: "50 visitors asking at once: sendMessage → first AnswerDelta (a model answering at once) beside the extractive answer",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const VISITORS: usize = 50;

/// The workspace's articles: title, URL, body.
const ARTICLES: &[(&str, &str, &str)] = &[
    (
        "Scheduling drafts to publish later",
        "https://help.bench.test/scheduling",
        "To schedule a draft, open it in the editor, click Schedule next to Publish and pick \
         the date and time. Scheduled drafts publish in the workspace's time zone.",
    ),
    (
        "Uploading images and videos",
        "https://help.bench.test/media",
        "To upload an image or a video, open the media library and drag the files in. Files \
         up to 2 GB are accepted; larger videos must be compressed first.",
    ),
    (
        "Downloading invoices",
        "https://help.bench.test/invoices",
        "Invoices are under Settings, Billing. Click an invoice to download it as a PDF; \
         every invoice is also emailed to the billing contact.",
    ),
    (
        "Inviting teammates",
        "https://help.bench.test/teammates",
        "To invite teammates, open Settings, Members and click Invite. Each teammate gets an \
         email with a link that is valid for seven days.",
    ),
    (
        "Custom domains",
        "https://help.bench.test/domains",
        "To use a custom domain, add a CNAME record pointing at publish.bench.test, then \
         enter the domain under Settings, Domains. Certificates are issued automatically.",
    ),
];

/// What the visitors ask, one article each.
const QUESTIONS: &[&str] = &[
    "How do I schedule a draft to publish later?",
    "How do I upload a video to the media library?",
    "Where do I download an invoice?",
    "How do I invite teammates?",
    "How do I use a custom domain?",
];

/// The answer the fake model streams, at once, in these pieces.
const ANSWER: &[&str] = &[
    "Here is how, from the docs: ",
    "open the page the source names ",
    "and follow its steps [1].",
];

const START: &str = "mutation($input: StartConversationInput!) { startConversation(input: $input) { conversation { id } visitorToken } }";
const EVENTS: &str = "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename ... on AnswerDelta { replyToSeq offset text } ... on TypingEvent { author typing } } }";
const MESSAGES: &str = "subscription($c: ID!) { messages(conversationId: $c) { seq author body replyToSeq sources { title } } }";
const TYPING: &str = "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }";
const ENGINE: &str =
    "mutation($e: AnswerEngine!) { updateWorkspace(input: { answerEngine: $e }) { answerEngine } }";

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = Database::fresh(ctx).await?;
    let model = fake_model().await?;
    let result = async {
        let mut ours = ServerChild::start(
            ctx,
            &["--serve-casefile", &db.url, "--model-url", &model.url],
        )
        .await?;
        let result = measure(ctx, &mut ours).await;
        ours.stop().await;
        result
    }
    .await;
    model.stop.cancel();
    db.cleanup().await;
    result
}

/// The fake model server: every request gets the whole answer as OpenAI streams
/// it (a role chunk, content chunks, a finish, a usage chunk, `[DONE]`) at once.
struct FakeModel {
    url: String,
    stop: tokio_util::sync::CancellationToken,
}

async fn fake_model() -> anyhow::Result<FakeModel> {
    let chunk = |delta: Value, finish: Option<&str>, usage: Option<Value>| {
        let mut chunk = json!({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": if usage.is_some() { json!([]) } else { json!([{ "index": 0, "delta": delta, "finish_reason": finish }]) },
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let mut body = chunk(json!({ "role": "assistant", "content": "" }), None, None);
    for piece in ANSWER {
        body.push_str(&chunk(json!({ "content": piece }), None, None));
    }
    body.push_str(&chunk(json!({}), Some("stop"), None));
    body.push_str(&chunk(
        json!({}),
        None,
        Some(json!({ "prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420 })),
    ));
    body.push_str("data: [DONE]\n\n");
    let body: &'static str = body.leak();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || async move {
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from(body))
                .expect("a response")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await;
    });
    Ok(FakeModel {
        url: format!("http://{addr}/v1"),
        stop,
    })
}

/// What one round measured.
#[derive(Default)]
struct Round {
    /// `sendMessage` → the first text of the answer at the visitor, ms.
    first: Vec<f64>,
    /// `sendMessage` → the stored AI message at the visitor, ms.
    stored: Vec<f64>,
    /// The child's CPU per answer, µs.
    cpu_us: f64,
    /// PostgreSQL's CPU per answer, µs (PostgreSQL only).
    db_cpu_us: Option<f64>,
    /// SQL statements per answer.
    statements: f64,
    /// Model answers whose pieces were not their stored body, or cited nothing.
    wrong: Vec<String>,
}

async fn measure(ctx: &Ctx, child: &mut ServerChild) -> anyhow::Result<Vec<Row>> {
    let ws = Workspace::of(child)?;
    let client = common::http_client()?;
    for (title, url, body) in ARTICLES {
        common::graphql(
            &client,
            child.addr,
            Some(&ws.owner_token),
            "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
            json!({ "i": { "title": title, "url": url, "body": body } }),
        )
        .await?;
    }
    let pairs = if ctx.quick { 2 } else { 10 };
    let mut model: Vec<Round> = Vec::new();
    let mut extractive: Vec<Round> = Vec::new();
    // One unmeasured round of each first (connections, caches, the model's pool).
    for pair in 0..=pairs {
        // Alternate which goes first.
        let order = if pair % 2 == 0 {
            ["MODEL", "EXTRACTIVE"]
        } else {
            ["EXTRACTIVE", "MODEL"]
        };
        for engine in order {
            let set = common::graphql(
                &client,
                child.addr,
                Some(&ws.owner_token),
                ENGINE,
                json!({ "e": engine }),
            )
            .await?;
            ensure!(
                set["updateWorkspace"]["answerEngine"] == engine,
                "answerEngine not set: {set}"
            );
            let round = round(ctx, child, &client, &ws, engine == "MODEL")
                .await
                .with_context(|| format!("a round with {engine}"))?;
            eprintln!(
                "   A1 {engine}: first p50 {:.1} ms p99 {:.1} ms, {:.0} µs CPU and {:.1} statements per answer",
                percentile(&mut round.first.clone(), 50.0),
                percentile(&mut round.first.clone(), 99.0),
                round.cpu_us,
                round.statements,
            );
            if pair == 0 {
                continue;
            }
            if engine == "MODEL" {
                model.push(round);
            } else {
                extractive.push(round);
            }
        }
    }
    Ok(rows(ctx, &model, &extractive))
}

fn rows(ctx: &Ctx, model: &[Round], extractive: &[Round]) -> Vec<Row> {
    let pooled = |rounds: &[Round], pick: fn(&Round) -> &Vec<f64>| -> Vec<f64> {
        rounds
            .iter()
            .flat_map(|r| pick(r).iter().copied())
            .collect()
    };
    let (mut m_first, mut e_first) = (
        pooled(model, |r| &r.first),
        pooled(extractive, |r| &r.first),
    );
    let (mut m_stored, mut e_stored) = (
        pooled(model, |r| &r.stored),
        pooled(extractive, |r| &r.stored),
    );
    let per_round = |rounds: &[Round], pick: fn(&Round) -> f64| -> Vec<f64> {
        rounds.iter().map(pick).collect()
    };
    let (m_cpu, e_cpu) = (
        per_round(model, |r| r.cpu_us),
        per_round(extractive, |r| r.cpu_us),
    );
    let wrong: Vec<String> = model.iter().flat_map(|r| r.wrong.clone()).collect();
    let answers = m_first.len();
    let pair = |ours: f64, ceiling: f64| (ours, ceiling, ours / ceiling);
    let first_p50 = pair(
        percentile(&mut m_first, 50.0),
        percentile(&mut e_first, 50.0),
    );
    let first_p99 = pair(
        percentile(&mut m_first, 99.0),
        percentile(&mut e_first, 99.0),
    );
    let stored_p99 = pair(
        percentile(&mut m_stored, 99.0),
        percentile(&mut e_stored, 99.0),
    );
    // Pooled over the rounds: a round's CPU is read in 10 ms ticks, 200 µs an answer.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cpu = pair(mean(&m_cpu), mean(&e_cpu));
    let note = format!(
        "{} rounds of each engine, alternating, after one unmeasured round of each; {VISITORS} visitors per round ({answers} model answers); \
         the model answers at once from the bench process, up to 8 requests in flight (CASEFILE_LLM_CONCURRENCY's default); \
         ours is answerEngine MODEL (first AnswerDelta), the ceiling EXTRACTIVE (the stored AI message)",
        model.len()
    );
    let mut rows = vec![
        Row::new(
            "A1",
            "first answer text at the visitor p50",
            "ms",
            first_p50,
            Goal::INFO,
        )
        .with_note(Some(note)),
        Row::new(
            "A1",
            "first answer text at the visitor p99",
            "ms",
            first_p99,
            Goal::INFO,
        ),
        Row::alone(
            "A1",
            "added p99 (model − extractive)",
            "ms",
            first_p99.0 - first_p99.1,
            Goal::at_most(5.0),
        ),
        Row::new(
            "A1",
            "stored answer at the visitor p99",
            "ms",
            stored_p99,
            Goal::INFO,
        ),
        Row::new("A1", "server CPU per answer", "µs", cpu, Goal::INFO)
            .with_rounds(&m_cpu, &e_cpu)
            .with_note(Some(
                "the casefile child's user + system CPU (/proc/PID/stat) from the moment the visitors ask until every answer is stored and delivered, per answer (its sendMessage included), over all the rounds of the engine"
                    .to_owned(),
            )),
        Row::alone(
            "A1",
            "added server CPU per answer",
            "µs",
            cpu.0 - cpu.1,
            Goal::at_most(300.0),
        ),
        Row::new(
            "A1",
            "SQL statements per answer",
            "",
            pair(
                mean(&per_round(model, |r| r.statements)),
                mean(&per_round(extractive, |r| r.statements)),
            ),
            Goal::INFO,
        )
        .with_note(Some(
            "every statement the casefile child ran in the phase (Db::statement_count), per answer: the sendMessage, the pipeline, the answer and its deliveries".to_owned(),
        )),
        Row::alone(
            "A1",
            "model answers not stored as streamed",
            "",
            wrong.len() as f64,
            Goal::at_most(0.0),
        )
        .with_note((!wrong.is_empty()).then(|| wrong.join("; "))),
    ];
    if ctx.database_url.is_some() {
        let db =
            |rounds: &[Round]| -> Vec<f64> { rounds.iter().filter_map(|r| r.db_cpu_us).collect() };
        let (m_db, e_db) = (db(model), db(extractive));
        rows.push(
            Row::new(
                "A1",
                "PostgreSQL CPU per answer",
                "µs",
                pair(mean(&m_db), mean(&e_db)),
                Goal::INFO,
            )
            .with_rounds(&m_db, &e_db)
            .with_note(Some(
                "the postgres processes' user + system CPU over the same phase, per answer"
                    .to_owned(),
            )),
        );
    }
    rows
}

/// A visitor ready to ask: its conversation, token, and a connection whose two
/// subscriptions are live.
struct Visitor {
    conversation: String,
    token: String,
    socket: Socket,
}

async fn visitor(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    widget_key: &str,
) -> anyhow::Result<Visitor> {
    let data = common::graphql(
        client,
        addr,
        None,
        START,
        json!({ "input": { "widgetKey": widget_key } }),
    )
    .await?;
    let conversation = data["startConversation"]["conversation"]["id"]
        .as_str()
        .context("conversation id")?
        .to_owned();
    let token = data["startConversation"]["visitorToken"]
        .as_str()
        .context("visitor token")?
        .to_owned();
    let mut socket = common::connect(
        &format!("ws://{addr}/graphql"),
        Some("graphql-transport-ws"),
    )
    .await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    let ack = common::next_protocol_message(&mut socket).await?;
    ensure!(ack["type"] == "connection_ack", "expected an ack: {ack}");
    for (id, query) in [("msg", MESSAGES), ("ev", EVENTS)] {
        let subscribe = json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": { "c": conversation } } });
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
    }
    // The visitor's own typing, heard back: the events are live (the messages
    // subscription, sent first, replays and joins live with no gap either way).
    // Typing is not stored, so one sent before the subscription started is never
    // heard: say it again until it is.
    for _ in 0..100 {
        common::graphql(
            client,
            addr,
            Some(&token),
            TYPING,
            json!({ "c": conversation }),
        )
        .await?;
        let heard = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                let frame = common::next_protocol_message(&mut socket).await?;
                if frame["id"] == "ev"
                    && frame["payload"]["data"]["conversationEvents"]["__typename"] == "TypingEvent"
                {
                    return anyhow::Ok(());
                }
            }
        })
        .await;
        match heard {
            Ok(heard) => {
                heard?;
                return Ok(Visitor {
                    conversation,
                    token,
                    socket,
                });
            }
            Err(_) => continue,
        }
    }
    bail!("the visitor's typing never came back")
}

/// One visitor's question: when its answer's first text and its stored answer
/// reached it, and what was wrong with it.
struct Asked {
    first: Duration,
    stored: Duration,
    wrong: Option<String>,
}

async fn ask(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    visitor: &mut Visitor,
    question: &str,
    model: bool,
    start: &Barrier,
) -> anyhow::Result<Asked> {
    start.wait().await;
    let sent = Instant::now();
    let post = common::graphql(
        client,
        addr,
        Some(&visitor.token),
        common::SEND_MESSAGE,
        json!({ "input": { "conversationId": visitor.conversation, "body": question } }),
    );
    let socket = &mut visitor.socket;
    let listen = async move {
        let mut first: Option<Duration> = None;
        let mut pieces = String::new();
        let mut wrong: Option<String> = None;
        // The stored answer: when it came, and its body. Its two subscriptions are
        // two streams: the last piece may come after it.
        let mut stored: Option<(Duration, String)> = None;
        for _ in 0..1_000 {
            if let Some((at, body)) = &stored
                && (!model || pieces.chars().count() >= body.chars().count())
            {
                if model && wrong.is_none() && *body != pieces {
                    wrong = Some(format!("stored {body:?}, streamed {pieces:?}"));
                }
                return Ok((first.unwrap_or(*at), *at, wrong));
            }
            let text = tokio::time::timeout(STEP_TIMEOUT, common::next_text(socket))
                .await
                .context("no answer in time")??;
            let at = sent.elapsed();
            let frame: Value = serde_json::from_str(&text)?;
            match (frame["type"].as_str(), frame["id"].as_str()) {
                (Some("next"), Some("ev")) => {
                    let event = &frame["payload"]["data"]["conversationEvents"];
                    if event["__typename"] != "AnswerDelta" {
                        continue;
                    }
                    first.get_or_insert(at);
                    let offset = event["offset"].as_u64().unwrap_or(u64::MAX);
                    if offset != pieces.chars().count() as u64 && wrong.is_none() {
                        wrong = Some(format!("a piece at {offset} after {pieces:?}"));
                    }
                    pieces.push_str(event["text"].as_str().unwrap_or_default());
                }
                (Some("next"), Some("msg")) => {
                    let message = &frame["payload"]["data"]["messages"];
                    match message["author"].as_str() {
                        Some("AI") => {}
                        Some("SYSTEM") => bail!("handed off instead of answering: {message}"),
                        _ => continue,
                    }
                    if model
                        && wrong.is_none()
                        && message["sources"].as_array().is_none_or(Vec::is_empty)
                    {
                        wrong = Some(format!("no source cited: {message}"));
                    }
                    let body = message["body"].as_str().unwrap_or_default().to_owned();
                    stored = Some((at, body));
                }
                (Some("next" | "ping" | "pong"), _) => continue,
                _ => bail!("unexpected frame: {text}"),
            }
        }
        bail!("no answer in 1,000 frames")
    };
    let (posted, heard) = tokio::join!(post, listen);
    posted?;
    let (first, stored, wrong) = heard?;
    Ok(Asked {
        first,
        stored,
        wrong,
    })
}

async fn round(
    ctx: &Ctx,
    child: &mut ServerChild,
    client: &reqwest::Client,
    ws: &Workspace,
    model: bool,
) -> anyhow::Result<Round> {
    let addr = child.addr;
    let mut visitors = common::open_all(VISITORS, 16, Duration::from_secs(120), |_| {
        visitor(client, addr, &ws.widget_key)
    })
    .await?;
    let start = Arc::new(Barrier::new(VISITORS + 1));
    let statements_before = child.statement_count().await?;
    let cpu_before = common::cpu_seconds(child.pid)?;
    let db_before = match ctx.database_url {
        Some(_) => Some(common::postgres_cpu_seconds()?),
        None => None,
    };
    let asking = futures_util::future::join_all(visitors.iter_mut().enumerate().map(|(i, v)| {
        let start = Arc::clone(&start);
        async move {
            ask(
                client,
                addr,
                v,
                QUESTIONS[i % QUESTIONS.len()],
                model,
                &start,
            )
            .await
        }
    }));
    let release = async {
        start.wait().await;
    };
    let (asked, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(asking, release)
    })
    .await
    .context("the round's answers took over 2 minutes")?;
    let cpu_after = common::cpu_seconds(child.pid)?;
    let statements_after = child.statement_count().await?;
    let db_after = match db_before {
        Some(_) => Some(common::postgres_cpu_seconds()?),
        None => None,
    };
    let mut round = Round::default();
    for asked in asked {
        let asked = asked?;
        round.first.push(asked.first.as_secs_f64() * 1e3);
        round.stored.push(asked.stored.as_secs_f64() * 1e3);
        round.wrong.extend(asked.wrong);
    }
    let answers = VISITORS as f64;
    round.cpu_us = (cpu_after - cpu_before) * 1e6 / answers;
    round.statements = (statements_after - statements_before) as f64 / answers;
    round.db_cpu_us = db_before
        .zip(db_after)
        .map(|(before, after)| (after - before) * 1e6 / answers);
    for visitor in visitors.iter_mut() {
        let _ = visitor.socket.close(None).await;
    }
    Ok(round)
}
