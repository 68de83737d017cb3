//! Who gets a handoff: teams with automatic routing offer each one to one
//! available agent at a time (round robin or least busy, under capacity), an offer
//! passes on when declined or let expire, and waits in the queue when nobody is
//! left; no offers outside business hours; accept targets counted in business time
//! and their breaches announced and counted.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code, fresh_database, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const ESCALATIONS: &str = "subscription { escalations { id status offeredTo { id } offerExpiresAt slaDueAt slaBreachedAt } }";
const HANDOFF: &str = "query($id: ID!) { handoff(id: $id) { status offeredTo { id } offerExpiresAt acceptedBy { id } outOfHours slaDueAt slaBreachedAt } }";
const UPDATE_TEAM: &str = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { routing offerTimeoutSeconds acceptTargetSeconds } }";

/// A server whose sweeps run every 20 ms, so offers expire on time in tests.
async fn quick_app() -> TestApp {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.sweep_every = Duration::from_millis(20);
    TestApp::spawn_with(config, dir).await
}

/// A team of `members`, where the workspace's handoffs go; its id.
async fn team_of(app: &TestApp, ws: &Workspace, members: &[&str]) -> String {
    let team = app
        .data(
            Some(&ws.admin_token),
            "mutation($m: [ID!]!) { createTeam(input: { name: \"Support\", memberIds: $m }) { id } }",
            json!({ "m": members }),
        )
        .await["createTeam"]["id"]
        .as_str()
        .expect("team id")
        .to_owned();
    app.data(
        Some(&ws.admin_token),
        "mutation($t: ID!) { updateWorkspace(input: { defaultTeamId: $t }) { id } }",
        json!({ "t": team }),
    )
    .await;
    team
}

/// Wait until every agent of `ids` shows `ONLINE` (a socket of theirs is noted
/// in the background once it opens).
async fn until_online(app: &TestApp, admin: &str, ids: &[&str]) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let agents = app
                .data(Some(admin), "{ agents { id availability } }", json!({}))
                .await;
            let online = agents["agents"]
                .as_array()
                .expect("agents")
                .iter()
                .filter(|a| ids.contains(&a["id"].as_str().unwrap_or("")))
                .all(|a| a["availability"] == "ONLINE");
            if online {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the agents show online");
}

/// A visitor asks for a person in a new conversation; the handoff's id.
async fn handoff(app: &TestApp, ws: &Workspace) -> String {
    let (conversation, visitor) = app.start_conversation(ws, Some("I need a person")).await;
    app.request_human(&visitor, &conversation).await
}

/// The cursor of the workspace's latest event.
async fn last_cursor(app: &TestApp, ws: &Workspace) -> Value {
    let events = app
        .data(
            Some(&ws.admin_token),
            "{ events(first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    events["events"]["edges"]
        .as_array()
        .and_then(|edges| edges.last())
        .expect("an event")["cursor"]
        .clone()
}

async fn read(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(Some(token), HANDOFF, json!({ "id": id })).await["handoff"].clone()
}

/// An agent's socket, online, watching escalations as "e".
async fn watching(app: &TestApp, token: &str) -> WsClient {
    let mut client = WsClient::ready(app, TRANSPORT_WS, token).await;
    client.subscribe("e", ESCALATIONS, json!({})).await;
    client
}

async fn next_escalation(client: &mut WsClient) -> Value {
    client.next_data("e").await["data"]["escalations"].clone()
}

/// Make sure every socket of `sockets` watches escalations live (a subscription
/// is not acknowledged): a handoff requested while the team is still manual
/// reaches them all; then it is resolved, out of the way.
async fn live(app: &TestApp, ws: &Workspace, sockets: &mut [&mut WsClient]) {
    let (conversation, visitor) = app.start_conversation(ws, Some("probe")).await;
    let probe = app.request_human(&visitor, &conversation).await;
    for socket in sockets.iter_mut() {
        assert_eq!(next_escalation(socket).await["id"], probe.as_str());
    }
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
}

/// Alex and Blake, online (their sockets kept here), in the workspace's team.
struct TwoOnline {
    a: String,
    a_token: String,
    b: String,
    team: String,
    _sockets: [WsClient; 2],
}

/// [`TwoOnline`], their team routed by `routing`.
async fn two_online(app: &TestApp, ws: &Workspace, routing: &str) -> TwoOnline {
    let (a, a_token) = app.agent(ws, "Alex", "AGENT").await;
    let (b, b_token) = app.agent(ws, "Blake", "AGENT").await;
    let team = team_of(app, ws, &[&a, &b]).await;
    app.data(
        Some(&ws.admin_token),
        UPDATE_TEAM,
        json!({ "i": { "teamId": team, "routing": routing } }),
    )
    .await;
    let _sockets = [watching(app, &a_token).await, watching(app, &b_token).await];
    until_online(app, &ws.admin_token, &[&a, &b]).await;
    TwoOnline {
        a,
        a_token,
        b,
        team,
        _sockets,
    }
}

#[tokio::test]
async fn round_robin_offers_each_handoff_to_one_agent_and_passes_it_on() {
    let app = quick_app().await;
    let ws = app.workspace("Acme").await;
    let (a, a_token) = app.agent(&ws, "Alex", "AGENT").await;
    let (b, b_token) = app.agent(&ws, "Blake", "AGENT").await;
    // Casey is in the team, offline (no socket) until later.
    let (casey, casey_token) = app.agent(&ws, "Casey", "AGENT").await;
    let team = team_of(&app, &ws, &[&a, &b, &casey]).await;
    // Both watch escalations with the same document: one shared execution, whose
    // offers each reach only the agent offered.
    let mut a_socket = watching(&app, &a_token).await;
    let mut b_socket = watching(&app, &b_token).await;
    until_online(&app, &ws.admin_token, &[&a, &b]).await;
    live(&app, &ws, &mut [&mut a_socket, &mut b_socket]).await;
    let set = app
        .data(
            Some(&ws.admin_token),
            UPDATE_TEAM,
            json!({ "i": { "teamId": team, "routing": "ROUND_ROBIN", "offerTimeoutSeconds": 1 } }),
        )
        .await["updateTeam"]
        .clone();
    assert_eq!(
        set,
        json!({ "routing": "ROUND_ROBIN", "offerTimeoutSeconds": 1, "acceptTargetSeconds": null })
    );
    // Round robin starts from the first agent in id order.
    let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
    let (first_token, second_token) = if a < b {
        (&a_token, &b_token)
    } else {
        (&b_token, &a_token)
    };
    let (first_socket, second_socket) = if a < b {
        (&mut a_socket, &mut b_socket)
    } else {
        (&mut b_socket, &mut a_socket)
    };

    let id = handoff(&app, &ws).await;
    let offered = read(&app, &ws.admin_token, &id).await;
    assert_eq!(offered["status"], "OFFERED", "{offered}");
    assert_eq!(offered["offeredTo"]["id"], first.as_str());
    assert!(offered["offerExpiresAt"].is_string());
    let alert = next_escalation(first_socket).await;
    assert_eq!(
        (&alert["id"], &alert["status"], &alert["offeredTo"]["id"]),
        (&json!(id), &json!("OFFERED"), &json!(first))
    );

    // Nobody else may take or decline it meanwhile.
    let taken = app
        .gql(
            Some(second_token),
            "mutation($id: ID!) { acceptHandoff(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&taken), "CONFLICT", "{taken}");
    assert_eq!(
        taken["errors"][0]["extensions"]["reason"],
        "OFFERED_TO_ANOTHER"
    );
    let declined = app
        .gql(
            Some(second_token),
            "mutation($id: ID!) { declineHandoff(handoffId: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        declined["errors"][0]["extensions"]["reason"],
        "NOT_OFFERED_TO_YOU"
    );

    // Declined: it goes to the next agent, whose stream's first alert it is (the
    // first agent's offer never reached it).
    let passed = app
        .data(
            Some(first_token),
            "mutation($id: ID!) { declineHandoff(handoffId: $id) { status offeredTo { id } } }",
            json!({ "id": id }),
        )
        .await["declineHandoff"]
        .clone();
    assert_eq!(
        passed,
        json!({ "status": "OFFERED", "offeredTo": { "id": second } })
    );
    let alert = next_escalation(second_socket).await;
    assert_eq!(
        (&alert["id"], &alert["status"], &alert["offeredTo"]["id"]),
        (&json!(id), &json!("OFFERED"), &json!(second))
    );

    // The second lets the offer expire: nobody available is left (Casey is
    // offline), so it waits in the queue, and everyone watching hears of it.
    for socket in [&mut *first_socket, &mut *second_socket] {
        let queued = next_escalation(socket).await;
        assert_eq!(
            (&queued["id"], &queued["status"], &queued["offeredTo"]),
            (&json!(id), &json!("REQUESTED"), &Value::Null)
        );
    }
    // Casey comes online: the waiting handoff is offered to Casey, who was not
    // offered it yet; Casey declines, and it waits again.
    let _casey_socket = WsClient::ready(&app, TRANSPORT_WS, &casey_token).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while read(&app, &ws.admin_token, &id).await["offeredTo"]["id"] != casey.as_str() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the handoff is offered to the agent who came online");
    let waits = app
        .data(
            Some(&casey_token),
            "mutation($id: ID!) { declineHandoff(handoffId: $id) { status offeredTo { id } } }",
            json!({ "id": id }),
        )
        .await["declineHandoff"]
        .clone();
    assert_eq!(waits, json!({ "status": "REQUESTED", "offeredTo": null }));
    // The others heard of it waiting again, and never of Casey's offer.
    for socket in [&mut *first_socket, &mut *second_socket] {
        let queued = next_escalation(socket).await;
        assert_eq!(
            (&queued["id"], &queued["status"]),
            (&json!(id), &json!("REQUESTED"))
        );
    }

    // From the queue anyone of the team accepts it, as with manual routing.
    let accepted = app
        .data(
            Some(first_token),
            "mutation($id: ID!) { acceptHandoff(id: $id) { status acceptedBy { id } } }",
            json!({ "id": id }),
        )
        .await["acceptHandoff"]
        .clone();
    assert_eq!(
        accepted,
        json!({ "status": "ACCEPTED", "acceptedBy": { "id": first } })
    );

    // The next handoff goes on from the agent offered last (Casey, the last in id
    // order): the first again.
    let next = handoff(&app, &ws).await;
    let offered = read(&app, &ws.admin_token, &next).await;
    assert_eq!(offered["offeredTo"]["id"], first.as_str(), "{offered}");
    let alert = next_escalation(first_socket).await;
    assert_eq!(alert["id"], next.as_str());
    // Accepted by the agent it went to.
    let accepted = app
        .data(
            Some(first_token),
            "mutation($id: ID!) { acceptHandoff(id: $id) { status acceptedBy { id } offeredTo { id } } }",
            json!({ "id": next }),
        )
        .await["acceptHandoff"]
        .clone();
    assert_eq!(
        accepted,
        json!({ "status": "ACCEPTED", "acceptedBy": { "id": first }, "offeredTo": null })
    );

    // Each handoff's history says who was offered it and how each offer ended.
    let history = |id: &str| {
        let (app, admin, id) = (&app, ws.admin_token.clone(), id.to_owned());
        async move {
            app.data(
                Some(&admin),
                "query($id: ID!) { handoff(id: $id) { offers { agent { id } outcome } } }",
                json!({ "id": id }),
            )
            .await["handoff"]["offers"]
                .clone()
        }
    };
    assert_eq!(
        history(&id).await,
        json!([
            { "agent": { "id": first }, "outcome": "DECLINED" },
            { "agent": { "id": second }, "outcome": "EXPIRED" },
            { "agent": { "id": casey }, "outcome": "DECLINED" },
        ])
    );
    assert_eq!(
        history(&next).await,
        json!([{ "agent": { "id": first }, "outcome": "ACCEPTED" }])
    );
}

#[tokio::test]
async fn least_busy_offers_to_the_agent_holding_fewest_within_capacity() {
    let app = quick_app().await;
    let ws = app.workspace("Acme").await;
    let TwoOnline {
        a,
        a_token,
        b,
        team,
        _sockets,
    } = two_online(&app, &ws, "LEAST_BUSY").await;

    // Alex holds a conversation; Blake holds none: Blake is offered the next.
    let (held, _) = app.start_conversation(&ws, Some("hello")).await;
    app.take_over(&a_token, &held).await;
    let first = handoff(&app, &ws).await;
    assert_eq!(
        read(&app, &ws.admin_token, &first).await["offeredTo"]["id"],
        b.as_str()
    );

    // Blake may hold one conversation at most, and holds the offer: Alex is next.
    let capped = app
        .data(
            Some(&ws.admin_token),
            "mutation($i: UpdateAgentInput!) { updateAgent(input: $i) { maxConcurrent } }",
            json!({ "i": { "agentId": b, "maxConcurrent": 1 } }),
        )
        .await;
    assert_eq!(capped["updateAgent"]["maxConcurrent"], 1);
    let second = handoff(&app, &ws).await;
    assert_eq!(
        read(&app, &ws.admin_token, &second).await["offeredTo"]["id"],
        a.as_str()
    );
    let wrong = app
        .gql(
            Some(&ws.admin_token),
            "mutation($i: UpdateAgentInput!) { updateAgent(input: $i) { maxConcurrent } }",
            json!({ "i": { "agentId": b, "maxConcurrent": -1 } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let wrong = app
        .gql(
            Some(&ws.admin_token),
            UPDATE_TEAM,
            json!({ "i": { "teamId": team, "offerTimeoutSeconds": 0 } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
}

#[tokio::test]
async fn an_offer_ended_by_any_other_move_is_recorded_as_withdrawn() {
    use casefile::entity::handoff_offer::{self, OfferOutcome};
    use sea_orm::EntityTrait;
    let app = quick_app().await;
    let ws = app.workspace("Acme").await;
    let TwoOnline { a, b, _sockets, .. } = two_online(&app, &ws, "ROUND_ROBIN").await;

    // Four offered handoffs, each ended by a move other than its agent's answer.
    let mut offered = Vec::new();
    for _ in 0..4 {
        let (conversation, visitor) = app.start_conversation(&ws, Some("a person please")).await;
        let id = app.request_human(&visitor, &conversation).await;
        let holder = read(&app, &ws.admin_token, &id).await["offeredTo"]["id"]
            .as_str()
            .expect("offered")
            .to_owned();
        offered.push((conversation, id, holder, visitor));
    }
    let admin = Some(ws.admin_token.as_str());
    app.data(
        admin,
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": offered[0].0 }),
    )
    .await;
    app.data(
        admin,
        "mutation($c: ID!) { returnToAi(conversationId: $c) { id } }",
        json!({ "c": offered[1].0 }),
    )
    .await;
    let other = if offered[2].2 == a { &b } else { &a };
    app.data(
        admin,
        "mutation($h: ID!, $a: ID!) { transferHandoff(id: $h, agentId: $a) { status } }",
        json!({ "h": offered[2].1, "a": other }),
    )
    .await;
    app.data(
        admin,
        "mutation($a: ID!) { deactivateAgent(agentId: $a) { active } }",
        json!({ "a": offered[3].2 }),
    )
    .await;
    // The deactivated agent's handoff is offered on to the other agent.
    let moved_on = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let now = read(&app, &ws.admin_token, &offered[3].1).await;
            if now["status"] == "OFFERED" && now["offeredTo"]["id"] != offered[3].2.as_str() {
                return now["offeredTo"]["id"].as_str().expect("agent").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("offered on");

    let history = handoff_offer::Entity::find()
        .all(&app.running.state.db.reader)
        .await
        .expect("offers");
    for (_, id, holder, _) in &offered {
        let offer = history
            .iter()
            .find(|o| &o.handoff_id == id && &o.agent_id == holder)
            .unwrap_or_else(|| panic!("{id} offered to {holder} in {history:?}"));
        assert_eq!(offer.outcome, Some(OfferOutcome::Withdrawn), "{offer:?}");
        assert!(offer.ended_at.is_some(), "{offer:?}");
    }
    // The one offer standing is the one the handoffs show.
    let standing: Vec<_> = history.iter().filter(|o| o.outcome.is_none()).collect();
    assert_eq!(standing.len(), 1, "{standing:?}");
    assert_eq!(
        (&standing[0].handoff_id, &standing[0].agent_id),
        (&offered[3].1, &moved_on)
    );

    // The team sees the same history on the handoff; the visitor sees none of it.
    let offers = "query($id: ID!) { handoff(id: $id) { offers { agent { id } outcome offeredAt endedAt } } }";
    let seen =
        app.data(admin, offers, json!({ "id": offered[3].1 })).await["handoff"]["offers"].clone();
    let seen: Vec<_> = seen
        .as_array()
        .expect("offers")
        .iter()
        .map(|o| {
            assert!(o["offeredAt"].is_string(), "{o}");
            (
                o["agent"]["id"].clone(),
                o["outcome"].clone(),
                o["endedAt"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!(offered[3].2), json!("WITHDRAWN"), true),
            (json!(moved_on), Value::Null, false)
        ]
    );
    let visitor = app
        .data(
            Some(&offered[3].3),
            "query($c: ID!) { conversation(id: $c) { openHandoff { offers { outcome } } } }",
            json!({ "c": offered[3].0 }),
        )
        .await;
    assert_eq!(
        visitor["conversation"]["openHandoff"]["offers"],
        json!([]),
        "{visitor}"
    );
}

#[tokio::test]
async fn outside_business_hours_nothing_is_offered_and_the_target_counts_open_time() {
    let app = quick_app().await;
    let ws = app.workspace("Acme").await;
    let (a, a_token) = app.agent(&ws, "Alex", "AGENT").await;
    let team = team_of(&app, &ws, &[&a]).await;
    // Open only tomorrow, 09:00 to 17:30 UTC: closed now.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let weekday = tomorrow.format("%A").to_string().to_uppercase();
    app.data(
        Some(&ws.admin_token),
        UPDATE_TEAM,
        json!({ "i": { "teamId": team, "routing": "ROUND_ROBIN", "acceptTargetSeconds": 600,
            "businessHours": { "timeZone": "UTC",
                "intervals": [{ "weekday": weekday, "opens": "09:00", "closes": "17:30" }] } } }),
    )
    .await;
    let _socket = watching(&app, &a_token).await;
    until_online(&app, &ws.admin_token, &[&a]).await;

    let id = handoff(&app, &ws).await;
    // A sweep finds it waiting, and offers it to nobody while the team is closed.
    casefile::domain::handoff::routing::sweep(&app.running.state)
        .await
        .expect("a sweep");
    let waiting = read(&app, &ws.admin_token, &id).await;
    assert_eq!(
        (
            &waiting["status"],
            &waiting["offeredTo"],
            &waiting["outOfHours"]
        ),
        (&json!("REQUESTED"), &Value::Null, &json!(true)),
        "{waiting}"
    );
    // Ten minutes of open time: tomorrow 09:10, not ten minutes from now.
    let due: chrono::DateTime<chrono::Utc> = waiting["slaDueAt"]
        .as_str()
        .expect("slaDueAt")
        .parse()
        .expect("a time");
    assert_eq!(due, tomorrow.and_hms_opt(9, 10, 0).expect("time").and_utc());

    // The team opens (here: its hours are lifted): the next sweep offers it.
    app.data(
        Some(&ws.admin_token),
        UPDATE_TEAM,
        json!({ "i": { "teamId": team, "businessHours": null } }),
    )
    .await;
    casefile::domain::handoff::routing::sweep(&app.running.state)
        .await
        .expect("a sweep");
    let offered = read(&app, &ws.admin_token, &id).await;
    assert_eq!(
        (&offered["status"], &offered["offeredTo"]["id"]),
        (&json!("OFFERED"), &json!(a)),
        "{offered}"
    );
}

#[tokio::test]
async fn a_missed_accept_target_is_announced_once_and_counted_per_team() {
    let app = quick_app().await;
    let ws = app.workspace("Acme").await;
    let team = team_of(&app, &ws, &[]).await;
    let mut watcher = watching(&app, &ws.admin_token).await;
    live(&app, &ws, &mut [&mut watcher]).await;
    let mut inbox = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    inbox
        .subscribe(
            "i",
            "subscription($a: String) { inbox(after: $a) { kind handoff { id slaBreachedAt } } }",
            json!({ "a": last_cursor(&app, &ws).await }),
        )
        .await;
    app.data(
        Some(&ws.admin_token),
        UPDATE_TEAM,
        json!({ "i": { "teamId": team, "acceptTargetSeconds": 1 } }),
    )
    .await;
    let id = handoff(&app, &ws).await;
    let requested = next_escalation(&mut watcher).await;
    assert_eq!(
        (
            &requested["id"],
            &requested["status"],
            &requested["slaBreachedAt"]
        ),
        (&json!(id), &json!("REQUESTED"), &Value::Null)
    );
    assert!(requested["slaDueAt"].is_string());
    let breached = next_escalation(&mut watcher).await;
    assert_eq!(breached["id"], id.as_str());
    assert!(breached["slaBreachedAt"].is_string(), "{breached}");
    loop {
        let event = inbox.next_inbox("i").await;
        let inbox = &event["data"]["inbox"];
        if inbox["kind"] == "SLA_BREACHED" {
            assert_eq!(inbox["handoff"]["id"], id.as_str());
            break;
        }
    }
    // On PostgreSQL the log shows a transaction once none older is still open (a
    // sweep may be), so it is asked until the breach is there.
    let breaches = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let events = app
                .data(
                    Some(&ws.admin_token),
                    "{ events(types: [SLA_BREACHED]) { edges { node { handoff { id } } } } }",
                    json!({}),
                )
                .await;
            let edges = events["events"]["edges"].clone();
            if edges.as_array().is_some_and(|e| !e.is_empty()) {
                return edges;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the breach shows in the log");
    assert_eq!(breaches, json!([{ "node": { "handoff": { "id": id } } }]));
    let now = chrono::Utc::now();
    let insights = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { slaBreaches { team { id } handoffs breached } } }",
            json!({ "f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        insights["insights"]["slaBreaches"],
        json!([{ "team": { "id": team }, "handoffs": 1, "breached": 1 }])
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn two_processes_pass_each_offer_on_once() {
    crate::helpers::require_postgres();
    let (url, _) = fresh_database().await;
    let mut config = test_config(&url);
    config.sweep_every = Duration::from_millis(10);
    let one = TestApp::spawn_with(config.clone(), None).await;
    let two = TestApp::spawn_with(config, None).await;
    let ws = one.workspace("Acme").await;
    let (a, a_token) = one.agent(&ws, "Alex", "AGENT").await;
    let (b, b_token) = one.agent(&ws, "Blake", "AGENT").await;
    let team = team_of(&one, &ws, &[&a, &b]).await;
    one.data(
        Some(&ws.admin_token),
        UPDATE_TEAM,
        json!({ "i": { "teamId": team, "routing": "ROUND_ROBIN", "offerTimeoutSeconds": 1 } }),
    )
    .await;
    // Each agent is online on a different process; both processes sweep.
    let _a_socket = watching(&one, &a_token).await;
    let _b_socket = watching(&two, &b_token).await;
    until_online(&one, &ws.admin_token, &[&a, &b]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(handoff(&one, &ws).await);
    }
    // Every offer expires: each handoff is offered to each agent once, then waits.
    for id in &ids {
        tokio::time::timeout(Duration::from_secs(20), async {
            while read(&two, &ws.admin_token, id).await["status"] != "REQUESTED" {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the offers expire");
    }
    // The log shows a transaction once none older is still open (the other
    // process's sweep may be), so it is asked until each return to the queue is
    // there.
    let events = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let events = one
                .data(
                    Some(&ws.admin_token),
                    "{ events(types: [HANDOFF_REQUESTED, HANDOFF_OFFERED], first: 100) { edges { node { type handoff { id offeredTo { id } } } } } }",
                    json!({}),
                )
                .await;
            let edges = events["events"]["edges"].as_array().cloned().unwrap_or_default();
            let queued = |id: &String| {
                edges.iter().any(|e| {
                    e["node"]["type"] == "HANDOFF_REQUESTED" && e["node"]["handoff"]["id"] == id.as_str()
                })
            };
            if ids.iter().all(queued) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every return to the queue shows in the log");
    for id in &ids {
        let moves: Vec<(String, Value)> = events["events"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| &e["node"])
            .filter(|n| n["handoff"]["id"] == id.as_str())
            .map(|n| {
                (
                    n["type"].as_str().unwrap_or("").to_owned(),
                    n["handoff"]["offeredTo"]["id"].clone(),
                )
            })
            .collect();
        let offered: Vec<&Value> = moves
            .iter()
            .filter(|(kind, _)| kind == "HANDOFF_OFFERED")
            .map(|(_, to)| to)
            .collect();
        assert_eq!(offered.len(), 2, "{moves:?}");
        assert_ne!(offered[0], offered[1], "{moves:?}");
        assert_eq!(
            moves.last().map(|(kind, _)| kind.as_str()),
            Some("HANDOFF_REQUESTED"),
            "{moves:?}"
        );
        assert_eq!(
            moves
                .iter()
                .filter(|(kind, _)| kind == "HANDOFF_REQUESTED")
                .count(),
            1,
            "{moves:?}"
        );
    }
}
