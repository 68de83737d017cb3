//! H1: a handoff storm. 200 agents each hold a graphql-transport-ws connection
//! subscribed to `escalations` (the documented `Escalations` operation, with the
//! case file); 200 visitors press "Talk to a person" (`requestHuman`) within one
//! second, one every 5 ms on a fixed schedule (open loop); 50 of the agents race
//! to accept every escalation they receive (`acceptHandoff`, one request at a
//! time per agent, as soon as the alert arrived).
//!
//! Measured: the delivery latency of every escalation to every subscriber (200 ×
//! 200), from the moment its `requestHuman` was due to be sent (so it includes
//! the request and its commit) to the subscriber receiving the `next` frame; and
//! that every conversation was accepted exactly once: one winner among the racing
//! agents' answers, one accepted handoff, one "… joined the conversation."
//! message, the winner as assignee.
//!
//! No ceiling: this is about correctness under contention and latency.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::client;
use crate::common::{
    self, Call, Ctx, Database, Goal, Row, STEP_TIMEOUT, Scenario, ServerChild, Workspace,
    percentile,
};
use crate::seed::{Catalog, Conversation, DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "H1",
    name: "handoff-storm",
    about: "200 escalations in 1 s to 200 `escalations` subscribers, 50 agents racing to accept: delivery p99, no double accept",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const SUBSCRIBERS: usize = 200;
/// Escalations per round (`--quick`: half of them, in half a second).
const ESCALATIONS: usize = 200;
const RACERS: usize = 50;
/// One escalation every 5 ms: 200 in one second.
const PERIOD: Duration = Duration::from_millis(5);
/// How long the deliveries and the accepts of a round may take.
const ROUND_LIMIT: Duration = Duration::from_secs(40);
/// A round is over when nothing arrived for this long (lost deliveries).
const QUIET: Duration = Duration::from_secs(2);

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    ensure!(
        ctx.nofile >= (SUBSCRIBERS + RACERS + 200) as u64,
        "H1 needs an open-files limit of at least {}",
        SUBSCRIBERS + RACERS + 200
    );
    let db = Database::fresh(ctx).await?;
    let result = run_on(ctx, &db).await;
    db.cleanup().await;
    result
}

async fn run_on(ctx: &Ctx, db: &Database) -> anyhow::Result<Vec<Row>> {
    let mut ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let result = measure(ctx, db, &mut ours).await;
    ours.stop().await;
    result
}

/// An escalation a subscriber received.
struct Alert {
    /// The conversation's number in the round (`-1`: not one of the round's).
    key: i64,
    at: Instant,
}

/// What a listening subscriber noticed besides alerts.
enum Heard {
    Alert(Alert),
    Problem(String),
}

/// The handoff id and conversation id of an `escalations` `next` frame, read
/// without parsing the whole case file.
fn ids_of(frame: &str) -> Option<(String, String)> {
    if !frame.contains("\"next\"") || frame.contains("\"errors\"") {
        return None;
    }
    let id = |prefix: &str| {
        let at = frame.find(prefix)?;
        frame.get(at..at + prefix.len() + 26).map(str::to_owned)
    };
    Some((id("hof_")?, id("conv_")?))
}

/// A subscriber: an agent's connection with `escalations` running.
async fn subscribe(addr: SocketAddr, token: &str, query: &str) -> anyhow::Result<common::Socket> {
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) =
        tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .context("WebSocket connect timed out")??;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    for _ in 0..10 {
        let frame = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .context("no connection_ack in time")?;
        match frame {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {
                let subscribe = json!({ "type": "subscribe", "id": "esc", "payload": { "query": query, "variables": {} } });
                socket
                    .send(Message::Text(subscribe.to_string().into()))
                    .await?;
                return Ok(socket);
            }
            Some(Ok(Message::Text(text))) if text.contains("ping") => continue,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => bail!("expected connection_ack, got {other:?}"),
        }
    }
    bail!("no connection_ack")
}

/// Read a subscriber's frames until `stop`: every alert to `heard` (arrival time
/// taken before parsing), and for a racing agent, the handoff id to `race`.
async fn listen(
    mut socket: common::Socket,
    keys: Arc<std::sync::RwLock<HashMap<String, i64>>>,
    heard: mpsc::UnboundedSender<Heard>,
    race: Option<mpsc::UnboundedSender<String>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            frame = socket.next() => {
                let at = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some((handoff, conversation)) = ids_of(text.as_str()) {
                            let key = keys
                                .read()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get(&conversation)
                                .copied()
                                .unwrap_or(-1);
                            let _ = heard.send(Heard::Alert(Alert { key, at }));
                            if let Some(race) = &race {
                                let _ = race.send(handoff);
                            }
                        } else if !text.contains("\"ping\"") && !text.contains("\"pong\"") {
                            let shown: String = text.as_str().chars().take(300).collect();
                            let _ = heard.send(Heard::Problem(format!("unexpected frame: {shown}")));
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let _ = heard.send(Heard::Problem(format!("closed by the server: {frame:?}")));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        let _ = heard.send(Heard::Problem(format!("socket failed: {err}")));
                        return;
                    }
                    None => {
                        let _ = heard.send(Heard::Problem("socket ended".to_owned()));
                        return;
                    }
                }
            }
            () = stop.cancelled() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
}

/// The outcome of one accept.
#[derive(Debug)]
struct Attempt {
    handoff: String,
    agent: usize,
    won: bool,
    /// Anything but a win or a `CONFLICT`.
    problem: Option<String>,
    ms: f64,
}

/// A racing agent: accept every handoff it is alerted to, one at a time.
async fn race(
    agent: usize,
    agent_id: String,
    call: Call,
    mut alerts: mpsc::UnboundedReceiver<String>,
    attempts: mpsc::UnboundedSender<Attempt>,
    accept_query: String,
) -> anyhow::Result<()> {
    let client = common::load_client()?;
    // Bounded: the alerts of the run, and the channel closes with the run.
    while let Some(handoff) = alerts.recv().await {
        let started = Instant::now();
        let call = Call::post(
            &call.url,
            call.bearer.as_deref(),
            json!({ "query": accept_query, "variables": { "id": handoff } }).to_string(),
        );
        let outcome = common::send(&client, &call).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let (won, problem) = match outcome {
            Err(why) => (false, Some(why)),
            Ok(body) => {
                let value: Value = serde_json::from_slice(&body).unwrap_or_default();
                let accepted = &value["data"]["acceptHandoff"];
                if accepted["status"] == "ACCEPTED"
                    && accepted["acceptedBy"]["id"] == agent_id.as_str()
                {
                    (true, None)
                } else if value["errors"][0]["extensions"]["code"] == "CONFLICT" {
                    (false, None)
                } else {
                    (false, Some(format!("unexpected answer: {value}")))
                }
            }
        };
        let _ = attempts.send(Attempt {
            handoff,
            agent,
            won,
            problem,
            ms,
        });
    }
    Ok(())
}

/// What one round found.
#[derive(Default)]
struct Round {
    latencies: Vec<f64>,
    lost: u64,
    problems: u64,
    first_problem: Option<String>,
    accepted_twice: u64,
    never_accepted: u64,
    /// Winning `acceptHandoff` answers per handoff id.
    winners: HashMap<String, u64>,
    accept_ms: Vec<f64>,
    attempts: usize,
    /// SQL statements the server ran during the round (the `/healthz` warm-up's
    /// `SELECT 1`s included).
    statements: u64,
    request_failures: u64,
}

async fn measure(ctx: &Ctx, db: &Database, ours: &mut ServerChild) -> anyhow::Result<Vec<Row>> {
    let (rounds, escalations) = if ctx.quick {
        (1, ESCALATIONS / 2)
    } else {
        (2, ESCALATIONS)
    };
    let workspace = Workspace::of(ours)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let catalog = seeder.catalog(3, SUBSCRIBERS, 12).await?;
    let operations = client::operations();
    let op = |name: &str| {
        operations
            .get(name)
            .cloned()
            .with_context(|| format!("operations.graphql has no {name}"))
    };
    let (escalations_query, request_human, accept) = (
        op("Escalations")?,
        op("RequestHuman")?,
        op("AcceptHandoff")?,
    );

    // The subscribers, and the racing agents behind the first RACERS of them.
    let keys: Arc<std::sync::RwLock<HashMap<String, i64>>> = Arc::default();
    let sockets = common::open_all(SUBSCRIBERS, 64, Duration::from_secs(60), |i| {
        subscribe(ours.addr, &catalog.agents[i].token, &escalations_query)
    })
    .await?;
    let stop = CancellationToken::new();
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let (attempts_tx, mut attempts) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    let mut racers = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let race_tx = if i < RACERS {
            let (tx, rx) = mpsc::unbounded_channel();
            let agent = &catalog.agents[i];
            let call = Call::post(
                &format!("http://{}/graphql", ours.addr),
                Some(&agent.token),
                String::new(),
            );
            racers.push(tokio::spawn(race(
                i,
                agent.id.clone(),
                call,
                rx,
                attempts_tx.clone(),
                accept.clone(),
            )));
            Some(tx)
        } else {
            None
        };
        listeners.push(tokio::spawn(listen(
            socket,
            Arc::clone(&keys),
            heard_tx.clone(),
            race_tx,
            stop.clone(),
        )));
    }
    drop(attempts_tx);
    drop(heard_tx);
    // However the scenario ends, the clients stop.
    let _guard = stop.clone().drop_guard();

    // A probe escalation proves every subscription live (they yield only what
    // happens after they start) and warms the server up; not counted.
    let (probe, _) = seeder
        .conversations(&catalog, Profile::Waiting, 1, DAY)
        .await?;
    let probe = probe.first().context("no probe conversation")?;
    let probe_call = request_human_call(ours.addr, &seeder, probe, &request_human)?;
    common::send(&common::load_client()?, &probe_call)
        .await
        .map_err(|why| anyhow::anyhow!("requestHuman: {why}"))?;
    let mut warm = Round::default();
    drain(
        &mut heard,
        &mut attempts,
        SUBSCRIBERS,
        RACERS,
        -1,
        &mut warm,
        &[],
    )
    .await;
    ensure!(
        warm.lost == 0 && warm.problems == 0,
        "the probe escalation reached {} of {SUBSCRIBERS} subscribers ({} problems: {})",
        SUBSCRIBERS as u64 - warm.lost,
        warm.problems,
        warm.first_problem.unwrap_or_default()
    );

    let mut all = Round::default();
    let mut per_round_p99 = Vec::new();
    // The casefile child's CPU over the storms (requests, deliveries, accepts),
    // and the handoffs requested in them.
    let (mut cpu_s, mut handoffs) = (0.0, 0usize);
    for round in 0..rounds {
        let (conversations, _) = seeder
            .conversations(&catalog, Profile::Waiting, escalations, DAY)
            .await?;
        {
            let mut map = keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.clear();
            for (i, c) in conversations.iter().enumerate() {
                map.insert(c.id.clone(), i as i64);
            }
        }
        let calls = conversations
            .iter()
            .map(|c| request_human_call(ours.addr, &seeder, c, &request_human))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let warmers = vec![Call::get(&format!("http://{}/healthz", ours.addr)); 8];
        let statements_before = ours.statement_count().await?;
        let cpu_before = common::cpu_seconds(ours.pid)?;
        let started = Instant::now();
        let (_, shots) = common::open_loop(calls, PERIOD, warmers).await?;
        let intended: Vec<Instant> = shots.iter().map(|s| s.intended).collect();
        let requests: Vec<f64> = shots.iter().map(common::Shot::latency_ms).collect();
        let mut r = Round::default();
        for shot in &shots {
            let ok = shot
                .outcome
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|body| (common::no_graphql_errors())(body));
            if let Err(why) = ok {
                r.request_failures += 1;
                r.first_problem
                    .get_or_insert(format!("requestHuman: {why}"));
            }
        }
        drain(
            &mut heard,
            &mut attempts,
            SUBSCRIBERS * escalations,
            RACERS * escalations,
            0,
            &mut r,
            &intended,
        )
        .await;
        cpu_s += common::cpu_seconds(ours.pid)? - cpu_before;
        handoffs += escalations;
        let statements = ours
            .statement_count()
            .await?
            .saturating_sub(statements_before);
        all.statements += statements;
        check_accepts(&seeder, &catalog, &conversations, &mut r).await?;
        let mut latencies = r.latencies.clone();
        let p99 = percentile(&mut latencies, 99.0);
        per_round_p99.push(p99);
        eprintln!(
            "H1 round {}/{rounds} ({:.1?}, {statements} SQL statements): requestHuman p50/p99 {:.1}/{:.1} ms; delivery p50 {:.1} ms, p99 {:.1} ms, {} lost, {} problems; {} accepts (p99 {:.1} ms), {} accepted twice, {} never accepted",
            round + 1,
            started.elapsed(),
            percentile(&mut requests.clone(), 50.0),
            percentile(&mut requests.clone(), 99.0),
            percentile(&mut latencies, 50.0),
            p99,
            r.lost,
            r.problems,
            r.attempts,
            percentile(&mut r.accept_ms.clone(), 99.0),
            r.accepted_twice,
            r.never_accepted,
        );
        all.latencies.extend(r.latencies);
        all.lost += r.lost;
        all.problems += r.problems;
        all.accepted_twice += r.accepted_twice;
        all.never_accepted += r.never_accepted;
        all.accept_ms.extend(r.accept_ms);
        all.attempts += r.attempts;
        all.request_failures += r.request_failures;
        if all.first_problem.is_none() {
            all.first_problem = r.first_problem;
        }
    }
    stop.cancel();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(listeners),
    )
    .await;
    for racer in racers {
        racer.abort();
    }

    let broken = all.lost > 0 || all.problems > 0 || all.request_failures > 0;
    let note = format!(
        "{rounds} round(s) of {escalations} requestHuman at one per {} ms to {SUBSCRIBERS} subscribers, latency from the scheduled request; per-round p99 {:?} ms; {} lost, {} connection problems, {} failed requestHuman{}; {} accept attempts by {RACERS} agents, accept p50/p99 {:.1}/{:.1} ms; the server ran {} SQL statements per round",
        PERIOD.as_millis(),
        per_round_p99
            .iter()
            .map(|v| (v * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        all.lost,
        all.problems,
        all.request_failures,
        all.first_problem
            .as_deref()
            .map(|p| format!(" (first problem: {p})"))
            .unwrap_or_default(),
        all.attempts,
        percentile(&mut all.accept_ms, 50.0),
        percentile(&mut all.accept_ms, 99.0),
        all.statements / rounds as u64,
    );
    let deliveries = all.latencies.len();
    Ok(vec![
        Row::alone(
            "H1",
            format!("escalation delivery p50 ({escalations} × {SUBSCRIBERS})"),
            "ms",
            percentile(&mut all.latencies, 50.0),
            Goal::INFO,
        )
        .broken_if(broken),
        Row::alone(
            "H1",
            format!("escalation delivery p99 ({escalations} × {SUBSCRIBERS})"),
            "ms",
            percentile(&mut all.latencies, 99.0),
            Goal::at_most(100.0),
        )
        .broken_if(broken)
        .with_rounds(&per_round_p99, &[])
        .with_note(Some(format!("{deliveries} deliveries; {note}"))),
        Row::alone(
            "H1",
            "conversations accepted twice",
            "",
            all.accepted_twice as f64,
            Goal::at_most(0.0),
        )
        .with_note(Some(
            "checked in the answers (one winning acceptHandoff per handoff) and in the database (one ACCEPTED handoff, one \"… joined the conversation.\" message, status HUMAN, the winner assigned)".to_owned(),
        )),
        Row::alone(
            "H1",
            "conversations never accepted",
            "",
            all.never_accepted as f64,
            Goal::at_most(0.0),
        )
        .with_note(Some(
            "a conversation none of the racing agents accepted: their alert never came (lost) or every accept failed".to_owned(),
        )),
        Row::alone(
            "H1",
            "server CPU per handoff",
            "ms",
            cpu_s / handoffs.max(1) as f64 * 1000.0,
            Goal::INFO,
        )
        .with_note(Some(format!(
            "an operation is one handoff: its requestHuman, its escalation delivered to {SUBSCRIBERS} subscribers and the {RACERS} racing acceptHandoff calls; the casefile child's user + system CPU (/proc/PID/stat) from the first requestHuman of each round until its deliveries and accepts were all in, divided by the {handoffs} handoffs requested"
        ))),
    ])
}

fn request_human_call(
    addr: SocketAddr,
    seeder: &Seeder,
    conversation: &Conversation,
    query: &str,
) -> anyhow::Result<Call> {
    let token = seeder.visitor_token(conversation)?;
    Ok(Call::graphql(
        addr,
        Some(&token),
        query,
        json!({ "conversationId": conversation.id }),
    ))
}

/// Gather alerts (those with `key >= min_key`, up to `deliveries`) and accept
/// attempts (up to `accepts`) until both are complete or the round's time is up.
/// Latencies from `intended[key]`.
async fn drain(
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    attempts: &mut mpsc::UnboundedReceiver<Attempt>,
    deliveries: usize,
    accepts: usize,
    min_key: i64,
    round: &mut Round,
    intended: &[Instant],
) {
    let deadline = Instant::now() + ROUND_LIMIT;
    let mut delivered = 0;
    let mut attempted = Vec::new();
    let mut last = Instant::now();
    while delivered < deliveries || attempted.len() < accepts {
        let quiet = (last + QUIET).min(deadline);
        tokio::select! {
            item = heard.recv(), if delivered < deliveries => match item {
                Some(Heard::Alert(alert)) if alert.key >= min_key => {
                    last = Instant::now();
                    delivered += 1;
                    if let Some(sent) = usize::try_from(alert.key).ok().and_then(|k| intended.get(k)) {
                        round.latencies.push(alert.at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
                    }
                }
                Some(Heard::Alert(_)) => {}
                Some(Heard::Problem(why)) => {
                    round.problems += 1;
                    round.first_problem.get_or_insert(why);
                }
                None => break,
            },
            item = attempts.recv(), if attempted.len() < accepts => match item {
                Some(attempt) => {
                    last = Instant::now();
                    attempted.push(attempt);
                }
                None => break,
            },
            () = tokio::time::sleep_until(quiet) => break,
        }
    }
    round.lost += (deliveries - delivered) as u64;
    round.attempts = attempted.len();
    for attempt in &attempted {
        round.accept_ms.push(attempt.ms);
        if let Some(problem) = &attempt.problem {
            round.problems += 1;
            round.first_problem.get_or_insert(format!(
                "acceptHandoff by agent {}: {problem}",
                attempt.agent
            ));
        }
        if attempt.won {
            *round.winners.entry(attempt.handoff.clone()).or_default() += 1;
        }
    }
}

/// The database agrees: per conversation one accepted handoff, one "joined"
/// message, status HUMAN, assigned to the one who accepted.
async fn check_accepts(
    seeder: &Seeder,
    catalog: &Catalog,
    conversations: &[Conversation],
    round: &mut Round,
) -> anyhow::Result<()> {
    use casefile::db::stmt;
    use sea_orm::ConnectionTrait;
    let backend = seeder.backend();
    let marks = vec!["?"; conversations.len()].join(", ");
    let ids: Vec<sea_orm::Value> = conversations.iter().map(|c| c.id.as_str().into()).collect();
    let query = |sql: String| {
        let ids = ids.clone();
        async move {
            seeder
                .db
                .reader
                .query_all_raw(stmt(backend, &sql, ids))
                .await
        }
    };
    let handoffs = query(format!(
        "SELECT id, conversation_id, status, accepted_by FROM handoffs WHERE conversation_id IN ({marks})"
    ))
    .await?;
    let joined = query(format!(
        "SELECT conversation_id, COUNT(*) AS n FROM messages WHERE author = 'SYSTEM' \
         AND body LIKE '% joined the conversation.' AND conversation_id IN ({marks}) GROUP BY conversation_id"
    ))
    .await?;
    let states = query(format!(
        "SELECT id, status, assignee_id FROM conversations WHERE id IN ({marks})"
    ))
    .await?;
    let joined_n: HashMap<String, i64> = joined
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "conversation_id")?,
                r.try_get::<i64>("", "n")?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    // Per conversation: accepted handoffs, winning answers, the acceptor.
    let mut accepted_n: HashMap<String, i64> = HashMap::new();
    let mut answers_n: HashMap<String, u64> = HashMap::new();
    let mut winner: HashMap<String, String> = HashMap::new();
    for r in &handoffs {
        let id: String = r.try_get("", "id")?;
        let conversation: String = r.try_get("", "conversation_id")?;
        let status: String = r.try_get("", "status")?;
        *answers_n.entry(conversation.clone()).or_default() +=
            round.winners.get(&id).copied().unwrap_or(0);
        if status == "ACCEPTED" {
            *accepted_n.entry(conversation.clone()).or_default() += 1;
            if let Some(agent) = r.try_get::<Option<String>>("", "accepted_by")? {
                winner.insert(conversation, agent);
            }
        }
    }
    let known: std::collections::HashSet<&str> =
        catalog.agents.iter().map(|a| a.id.as_str()).collect();
    for r in &states {
        let id: String = r.try_get("", "id")?;
        let status: String = r.try_get("", "status")?;
        let assignee: Option<String> = r.try_get("", "assignee_id")?;
        let a = accepted_n.get(&id).copied().unwrap_or(0);
        let j = joined_n.get(&id).copied().unwrap_or(0);
        let w = answers_n.get(&id).copied().unwrap_or(0);
        if a > 1 || j > 1 || w > 1 {
            round.accepted_twice += 1;
        } else if a == 0 || j == 0 || w == 0 {
            round.never_accepted += 1;
        } else if status != "HUMAN"
            || assignee.as_ref() != winner.get(&id)
            || !assignee.as_deref().is_some_and(|x| known.contains(x))
        {
            round.problems += 1;
            round.first_problem.get_or_insert(format!(
                "conversation {id} is {status}, assigned to {assignee:?}, accepted by {:?}",
                winner.get(&id)
            ));
        }
    }
    Ok(())
}
