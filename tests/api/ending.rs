//! How conversations end and who holds them (issue 15): an agent's reply takes a
//! chat from the AI, the visitor confirms an answer, the AI and the clock resolve.

use serde_json::json;

use crate::handoffs::{messages, thread, with_docs};
use crate::helpers::TestApp;

const HOLDER: &str = "query($c: ID!) { conversation(id: $c) { status assignee { id } \
    openHandoff { reason status acceptedBy { id } } } }";

#[tokio::test]
async fn an_agents_public_reply_takes_the_chat_from_the_ai_and_a_note_does_not() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    assert_eq!(thread(&app, &visitor, &conversation).await["status"], "AI");

    // An internal note leaves the AI in charge.
    app.data(
        Some(&agent),
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"checking\", internal: true }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let noted = app
        .data(Some(&agent), HOLDER, json!({ "c": conversation }))
        .await;
    assert_eq!(noted["conversation"]["status"], "AI");
    assert_eq!(noted["conversation"]["openHandoff"], json!(null));

    let reply = app
        .send(&agent, &conversation, "Hi, Alex here: let me help.")
        .await;
    assert_eq!(reply["author"], "AGENT");
    let held = app
        .data(Some(&agent), HOLDER, json!({ "c": conversation }))
        .await;
    assert_eq!(
        held["conversation"],
        json!({ "status": "HUMAN", "assignee": { "id": agent_id },
                "openHandoff": { "reason": "AGENT_TAKEOVER", "status": "ACCEPTED", "acceptedBy": { "id": agent_id } } })
    );

    // The visitor sees who joined, before the reply; the AI answers no more.
    app.send(
        &visitor,
        &conversation,
        "How do I restore an older revision?",
    )
    .await;
    let seen = messages(&thread(&app, &visitor, &conversation).await);
    let bodies: Vec<&str> = seen.iter().filter_map(|m| m["body"].as_str()).collect();
    let joined = bodies
        .iter()
        .position(|b| *b == "Alex joined the conversation.")
        .expect("a joined message");
    let replied = bodies
        .iter()
        .position(|b| *b == "Hi, Alex here: let me help.")
        .expect("the reply");
    assert!(joined < replied, "{bodies:?}");
    assert_eq!(seen.last().expect("message")["author"], "VISITOR");
    assert_eq!(
        seen.iter().filter(|m| m["author"] == "AI").count(),
        1,
        "only the answer from before the reply: {seen:#?}"
    );
}

const ENDING: &str = "query($c: ID!) { conversation(id: $c) { status resolvedBy resolvedAt \
    openHandoff { reason status } } }";

const CONFIRM: &str = "mutation($c: ID!, $m: ID!, $h: Boolean!, $t: String) { \
    confirmAnswer(conversationId: $c, messageId: $m, helpful: $h, comment: $t) { status resolvedBy } }";

/// The id of the AI's latest answer in the conversation.
async fn latest_answer(app: &TestApp, token: &str, conversation: &str) -> String {
    let seen = messages(&thread(app, token, conversation).await);
    let id_of = app
        .data(
            Some(token),
            "query($c: ID!) { conversation(id: $c) { messages(first: 50) { edges { node { id author } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert!(seen.iter().any(|m| m["author"] == "AI"), "{seen:#?}");
    id_of["conversation"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .rev()
        .find(|e| e["node"]["author"] == "AI")
        .and_then(|e| e["node"]["id"].as_str())
        .expect("an AI answer")
        .to_owned()
}

#[tokio::test]
async fn a_helpful_answer_resolves_the_chat_as_the_ai_and_a_visitor_message_reopens_it() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    let answer = latest_answer(&app, &visitor, &conversation).await;

    let confirmed = app
        .data(
            Some(&visitor),
            CONFIRM,
            json!({ "c": conversation, "m": answer, "h": true, "t": "thanks" }),
        )
        .await;
    assert_eq!(
        confirmed["confirmAnswer"],
        json!({ "status": "RESOLVED", "resolvedBy": "AI" })
    );
    let seen = messages(&thread(&app, &visitor, &conversation).await);
    assert_eq!(seen.last().expect("message")["author"], "SYSTEM");
    let ended = app
        .data(Some(&ws.admin_token), ENDING, json!({ "c": conversation }))
        .await;
    assert!(ended["conversation"]["resolvedAt"].is_string(), "{ended}");
    let feedback = app
        .data(
            Some(&ws.admin_token),
            "query($id: ID!) { node(id: $id) { ... on Message { feedback { helpful comment } } } }",
            json!({ "id": answer }),
        )
        .await;
    assert_eq!(
        feedback["node"]["feedback"],
        json!({ "helpful": true, "comment": "thanks" })
    );

    // Writing again reopens it to the AI, and it is no longer resolved by anyone.
    app.send(
        &visitor,
        &conversation,
        "One more thing: how do I restore a revision?",
    )
    .await;
    let reopened = app
        .data(Some(&ws.admin_token), ENDING, json!({ "c": conversation }))
        .await;
    assert_eq!(reopened["conversation"]["status"], "AI");
    assert_eq!(reopened["conversation"]["resolvedBy"], json!(null));
    assert_eq!(reopened["conversation"]["resolvedAt"], json!(null));
}

#[tokio::test]
async fn an_unhelpful_answer_hands_off_after_the_policys_allowance() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    crate::handoffs::policy(&app, &ws, json!({ "maxUnhelpfulAnswers": 2 })).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    let first = latest_answer(&app, &visitor, &conversation).await;
    let once = app
        .data(
            Some(&visitor),
            CONFIRM,
            json!({ "c": conversation, "m": first, "h": false }),
        )
        .await;
    assert_eq!(once["confirmAnswer"]["status"], "AI", "one is allowed");

    app.send(
        &visitor,
        &conversation,
        "How do I restore an older revision?",
    )
    .await;
    let second = latest_answer(&app, &visitor, &conversation).await;
    assert_ne!(first, second);
    app.data(
        Some(&visitor),
        CONFIRM,
        json!({ "c": conversation, "m": second, "h": false }),
    )
    .await;
    let ended = app
        .data(Some(&ws.admin_token), ENDING, json!({ "c": conversation }))
        .await;
    assert_eq!(
        ended["conversation"]["openHandoff"],
        json!({ "reason": "UNRESOLVED", "status": "REQUESTED" })
    );
    assert_eq!(ended["conversation"]["status"], "QUEUED");
}

#[tokio::test]
async fn only_the_visitor_confirms_and_only_an_ai_answer_of_its_chat() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    let answer = latest_answer(&app, &visitor, &conversation).await;
    let (other, other_visitor) = app
        .start_conversation(&ws, Some("How do I upload images?"))
        .await;
    let other_answer = latest_answer(&app, &other_visitor, &other).await;

    for (token, c, m, code) in [
        // Agents flag answers; they do not answer for the visitor.
        (&ws.admin_token, &conversation, &answer, "FORBIDDEN"),
        // Another conversation's answer, through this one.
        (&visitor, &conversation, &other_answer, "NOT_FOUND"),
        // Another visitor's conversation.
        (&visitor, &other, &other_answer, "NOT_FOUND"),
    ] {
        let body = app
            .gql(Some(token), CONFIRM, json!({ "c": c, "m": m, "h": true }))
            .await;
        assert_eq!(crate::helpers::error_code(&body), code, "{body}");
    }
    let status = app
        .data(Some(&ws.admin_token), ENDING, json!({ "c": other }))
        .await;
    assert_eq!(status["conversation"]["status"], "AI", "nothing changed");
}

#[tokio::test]
async fn the_ai_resolves_what_it_holds_agents_and_visitors_are_recorded_too() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let ai = app.api_key(&ws, "AI_WRITE").await;
    let resolve =
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { status resolvedBy } }";

    let (held_by_ai, _) = app.start_conversation(&ws, Some("hi")).await;
    let by_ai = app
        .data(Some(&ai), resolve, json!({ "c": held_by_ai }))
        .await;
    assert_eq!(
        by_ai["resolveConversation"],
        json!({ "status": "RESOLVED", "resolvedBy": "AI" })
    );

    let (with_humans, visitor) = app.start_conversation(&ws, Some("hi")).await;
    app.request_human(&visitor, &with_humans).await;
    let refused = app
        .gql(Some(&ai), resolve, json!({ "c": with_humans }))
        .await;
    assert_eq!(
        crate::helpers::error_code(&refused),
        "CONFLICT",
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"],
        "CONTROL_NOT_HELD"
    );
    let by_agent = app
        .data(Some(&ws.admin_token), resolve, json!({ "c": with_humans }))
        .await;
    assert_eq!(
        by_agent["resolveConversation"],
        json!({ "status": "RESOLVED", "resolvedBy": "AGENT" })
    );

    let (ended_by_visitor, own) = app.start_conversation(&ws, Some("bye")).await;
    let by_visitor = app
        .data(Some(&own), resolve, json!({ "c": ended_by_visitor }))
        .await;
    assert_eq!(
        by_visitor["resolveConversation"],
        json!({ "status": "RESOLVED", "resolvedBy": "VISITOR" })
    );
    let reader = app.api_key(&ws, "CONVERSATIONS_READ").await;
    let (untouched, _) = app.start_conversation(&ws, Some("hi")).await;
    let by_reader = app
        .gql(Some(&reader), resolve, json!({ "c": untouched }))
        .await;
    assert_eq!(
        crate::helpers::error_code(&by_reader),
        "FORBIDDEN",
        "{by_reader}"
    );
}

/// Poll `conversation` as `token` until `done` holds of it (the database is the
/// acknowledgement: the sweeper runs on its own clock).
async fn until(
    app: &TestApp,
    token: &str,
    conversation: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    tokio::time::timeout(crate::helpers::TIMEOUT, async {
        loop {
            let seen = app
                .data(Some(token), ENDING, json!({ "c": conversation }))
                .await["conversation"]
                .clone();
            if done(&seen) {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the sweeper acts in time")
}

#[tokio::test]
async fn a_silent_ai_chat_is_resolved_on_the_clock_even_after_a_restart() {
    let (url, dir) = crate::helpers::fresh_database().await;
    // The first server sweeps only when it starts, before there is anything to do.
    let mut config = crate::helpers::test_config(&url);
    config.sweep_every = std::time::Duration::from_secs(3600);
    let first = TestApp::spawn_with(config.clone(), None).await;
    let ws = first.workspace("Acme").await;
    crate::handoffs::policy(&first, &ws, json!({ "autoResolveAfterSeconds": 1 })).await;
    let (silent, visitor) = first.start_conversation(&ws, Some("hello?")).await;
    let (with_humans, other) = first.start_conversation(&ws, Some("a person please")).await;
    first.request_human(&other, &with_humans).await;
    first.settle().await;
    first.running.shutdown().await.expect("stops");

    config.sweep_every = std::time::Duration::from_millis(50);
    let second = TestApp::spawn_with(config, dir).await;
    let ended = until(&second, &ws.admin_token, &silent, |c| {
        c["status"] == "RESOLVED"
    })
    .await;
    assert_eq!(ended["resolvedBy"], "AUTO");
    let seen = messages(&thread(&second, &visitor, &silent).await);
    let last = seen.last().expect("message");
    assert_eq!(
        (last["author"].as_str(), last["body"].as_str()),
        (
            Some("SYSTEM"),
            Some(casefile::domain::orchestration::sweeper::AUTO_RESOLVED_NOTE)
        )
    );
    // Only the AI's conversations end on the clock.
    let queued = second
        .data(Some(&ws.admin_token), ENDING, json!({ "c": with_humans }))
        .await;
    assert_eq!(queued["conversation"]["status"], "QUEUED");

    // The visitor writes again: reopened, and resolved again once silent.
    second.send(&visitor, &silent, "back again").await;
    let again = until(&second, &ws.admin_token, &silent, |c| {
        c["status"] == "RESOLVED" && c["resolvedBy"] == "AUTO"
    })
    .await;
    assert!(again["resolvedAt"].is_string());
    let notes = messages(&thread(&second, &visitor, &silent).await)
        .iter()
        .filter(|m| m["body"] == casefile::domain::orchestration::sweeper::AUTO_RESOLVED_NOTE)
        .count();
    assert_eq!(notes, 2);
}

#[tokio::test]
async fn a_null_auto_resolution_never_resolves() {
    let (url, dir) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.sweep_every = std::time::Duration::from_millis(20);
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Acme").await;
    let set = app
        .data(
            Some(&ws.admin_token),
            "mutation { updateHandoffPolicy(input: { autoResolveAfterSeconds: null }) { autoResolveAfterSeconds maxUnhelpfulAnswers } }",
            json!({}),
        )
        .await;
    assert_eq!(
        set["updateHandoffPolicy"],
        json!({ "autoResolveAfterSeconds": null, "maxUnhelpfulAnswers": 1 })
    );
    let (conversation, _) = app.start_conversation(&ws, Some("hello?")).await;
    // Make it look silent for an hour, then let the sweeper look at it.
    let hour_ago = casefile::entity::now_ms() - 3_600_000;
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.running.state.db.writer,
        &format!("UPDATE conversations SET updated_at = {hour_ago}"),
    )
    .await
    .expect("aged");
    assert_eq!(
        casefile::domain::orchestration::sweeper::sweep(&app.running.state)
            .await
            .expect("sweep"),
        0
    );
    let seen = app
        .data(Some(&ws.admin_token), ENDING, json!({ "c": conversation }))
        .await;
    assert_eq!(seen["conversation"]["status"], "AI");
    let refused = app
        .gql(
            Some(&ws.admin_token),
            "mutation { updateHandoffPolicy(input: { autoResolveAfterSeconds: 0 }) { autoResolveAfterSeconds } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&refused), "BAD_USER_INPUT");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn two_processes_resolve_a_silent_chat_once() {
    crate::helpers::require_postgres();
    let (url, _) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.sweep_every = std::time::Duration::from_millis(10);
    let one = TestApp::spawn_with(config.clone(), None).await;
    let two = TestApp::spawn_with(config, None).await;
    let ws = one.workspace("Acme").await;
    let mut conversations = Vec::new();
    for i in 0..10 {
        conversations.push(one.start_conversation(&ws, Some(&format!("q{i}"))).await);
    }
    crate::handoffs::policy(&one, &ws, json!({ "autoResolveAfterSeconds": 1 })).await;
    for (conversation, visitor) in &conversations {
        until(&two, &ws.admin_token, conversation, |c| {
            c["status"] == "RESOLVED"
        })
        .await;
        let notes = messages(&thread(&one, visitor, conversation).await)
            .iter()
            .filter(|m| m["body"] == casefile::domain::orchestration::sweeper::AUTO_RESOLVED_NOTE)
            .count();
        assert_eq!(notes, 1, "{conversation}");
    }
}

#[tokio::test]
async fn insights_count_feedback_and_flags_per_article_worst_first() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (_, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let ask = |question: &'static str| {
        let (app, ws) = (&app, &ws);
        async move {
            let (conversation, visitor) = app.start_conversation(ws, Some(question)).await;
            let answer = latest_answer(app, &visitor, &conversation).await;
            (conversation, visitor, answer)
        }
    };
    let (helped, helped_visitor, helped_answer) = ask("How do I schedule a draft?").await;
    let (unhelped, unhelped_visitor, unhelped_answer) = ask("How do I upload images?").await;
    let (_, _, wrong) = ask("How do I restore an older revision?").await;
    let (_, _, wrong_again) = ask("Where do I restore a revision from History?").await;

    app.data(
        Some(&helped_visitor),
        CONFIRM,
        json!({ "c": helped, "m": helped_answer, "h": true }),
    )
    .await;
    app.data(
        Some(&unhelped_visitor),
        CONFIRM,
        json!({ "c": unhelped, "m": unhelped_answer, "h": false, "t": "not what I asked" }),
    )
    .await;
    let flag = "mutation($m: ID!, $r: String!) { flagAnswer(messageId: $m, reason: $r) { reason agent { name } } }";
    let flagged = app
        .data(
            Some(&agent),
            flag,
            json!({ "m": wrong, "r": "History moved to the toolbar" }),
        )
        .await;
    assert_eq!(
        flagged["flagAnswer"],
        json!({ "reason": "History moved to the toolbar", "agent": { "name": "Alex" } })
    );
    app.data(
        Some(&ws.admin_token),
        flag,
        json!({ "m": wrong_again, "r": "outdated" }),
    )
    .await;
    let visitor_flag = app
        .gql(
            Some(&helped_visitor),
            flag,
            json!({ "m": helped_answer, "r": "x" }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&visitor_flag), "FORBIDDEN");

    // The unhelpful answer handed the chat off: its case file shows the feedback.
    let case = app
        .data(
            Some(&agent),
            "query($c: ID!) { conversation(id: $c) { openHandoff { reason caseFile { aiAnswers { feedback { helpful comment } flags { reason } } } } } }",
            json!({ "c": unhelped }),
        )
        .await;
    let handoff = &case["conversation"]["openHandoff"];
    assert_eq!(handoff["reason"], "UNRESOLVED");
    assert_eq!(
        handoff["caseFile"]["aiAnswers"][0]["feedback"],
        json!({ "helpful": false, "comment": "not what I asked" })
    );
    let flags = app
        .data(
            Some(&agent),
            "query($id: ID!) { node(id: $id) { ... on Message { flags { reason } } } }",
            json!({ "id": wrong }),
        )
        .await;
    assert_eq!(
        flags["node"]["flags"],
        json!([{ "reason": "History moved to the toolbar" }])
    );

    let now = chrono::Utc::now();
    let digest = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { aiResolved \
             answerFeedback { helpful unhelpful } \
             articleFeedback { title answers helpful unhelpful flagged } } }",
            json!({ "f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await["insights"]
        .clone();
    assert_eq!(digest["aiResolved"], 1, "the confirmed one");
    assert_eq!(
        digest["answerFeedback"],
        json!({ "helpful": 1, "unhelpful": 1 })
    );
    assert_eq!(
        digest["articleFeedback"],
        json!([
            { "title": "Revisions", "answers": 2, "helpful": 0, "unhelpful": 0, "flagged": 2 },
            { "title": "Uploading to the media library", "answers": 1, "helpful": 0, "unhelpful": 1, "flagged": 0 },
            { "title": "Scheduling drafts", "answers": 1, "helpful": 1, "unhelpful": 0, "flagged": 0 },
        ])
    );
}

#[tokio::test]
async fn outside_business_hours_a_handoff_waits_and_the_visitor_is_told_when_the_team_is_back() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let team = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTeam(input: { name: \"Support\" }) { id } }",
            json!({}),
        )
        .await["createTeam"]["id"]
        .clone();
    app.data(
        Some(&ws.admin_token),
        "mutation($t: ID!) { updateWorkspace(input: { defaultTeamId: $t }) { id } }",
        json!({ "t": team }),
    )
    .await;
    // Open only tomorrow, 09:00 to 17:30 UTC: closed now.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let weekday = tomorrow.format("%A").to_string().to_uppercase();
    let update = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { name businessHours { \
        timeZone intervals { weekday opens closes } holidays openNow nextOpenAt } } }";
    let set = app
        .data(
            Some(&ws.admin_token),
            update,
            json!({ "i": { "teamId": team, "businessHours": { "timeZone": "UTC",
                "intervals": [{ "weekday": weekday, "opens": "09:00", "closes": "17:30" }],
                "holidays": ["2026-12-25"] } } }),
        )
        .await["updateTeam"]
        .clone();
    assert_eq!(set["name"], "Support");
    let hours = &set["businessHours"];
    assert_eq!(
        (&hours["intervals"], &hours["holidays"], &hours["openNow"]),
        (
            &json!([{ "weekday": weekday, "opens": "09:00", "closes": "17:30" }]),
            &json!(["2026-12-25"]),
            &json!(false)
        )
    );
    let opens = tomorrow.and_hms_opt(9, 0, 0).expect("time").and_utc();
    let next: chrono::DateTime<chrono::Utc> = hours["nextOpenAt"]
        .as_str()
        .expect("nextOpenAt")
        .parse()
        .expect("a time");
    assert_eq!(next, opens);

    // A visitor in Tokyo asks for a person at night.
    let started = app
        .data(
            None,
            "mutation($i: StartConversationInput!) { startConversation(input: $i) { conversation { id } visitorToken } }",
            json!({ "i": { "widgetKey": ws.widget_key, "message": "hello", "context": { "timeZone": "Asia/Tokyo" } } }),
        )
        .await["startConversation"]
        .clone();
    let conversation = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let visitor = started["visitorToken"].as_str().expect("token").to_owned();
    app.settle().await;
    let handoff = app
        .data(
            Some(&visitor),
            "mutation($c: ID!) { requestHuman(conversationId: $c) { status outOfHours team { id } } }",
            json!({ "c": conversation }),
        )
        .await["requestHuman"]
        .clone();
    assert_eq!(
        handoff,
        json!({ "status": "REQUESTED", "outOfHours": true, "team": { "id": team } })
    );
    let seen = messages(&thread(&app, &visitor, &conversation).await);
    let told: Vec<&str> = seen
        .iter()
        .filter(|m| m["author"] == "SYSTEM")
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(
        told[0].starts_with("Our team is away right now and back on")
            && told[0].contains("at 18:00 (your time)"),
        "09:00 UTC is 18:00 in Tokyo: {told:?}"
    );
    assert!(told[1].contains("leave your email address"), "{told:?}");

    let now = chrono::Utc::now();
    let digest = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { handoffs outOfHoursHandoffs } }",
            json!({ "f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        digest["insights"],
        json!({ "handoffs": 1, "outOfHoursHandoffs": 1 })
    );

    // Always open again: the next handoff is in hours.
    app.data(
        Some(&ws.admin_token),
        update,
        json!({ "i": { "teamId": team, "businessHours": null } }),
    )
    .await;
    let (other, other_visitor) = app.start_conversation(&ws, Some("hi")).await;
    let in_hours = app
        .data(
            Some(&other_visitor),
            "mutation($c: ID!) { requestHuman(conversationId: $c) { outOfHours } }",
            json!({ "c": other }),
        )
        .await;
    assert_eq!(in_hours["requestHuman"]["outOfHours"], false);

    // Bad hours are refused, naming the field; agents cannot change teams.
    let bad = app
        .gql(
            Some(&ws.admin_token),
            update,
            json!({ "i": { "teamId": team, "businessHours": { "timeZone": "Mars/Base", "intervals": [] } } }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Mars/Base")),
        "{bad}"
    );
    let (_, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let forbidden = app
        .gql(
            Some(&agent),
            update,
            json!({ "i": { "teamId": team, "name": "Mine" } }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&forbidden), "FORBIDDEN");
}
