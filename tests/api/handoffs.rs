//! The AI answers from the docs; what needs a person reaches a person with a case file.

use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const ARTICLES: &[(&str, &str, &str)] = &[
    (
        "Scheduling drafts",
        "https://docs.test/scheduling",
        "Drafts stay private until published.\n\nTo schedule a draft, open it, click the arrow next to Publish and choose Schedule. Pick the date and time and the post goes live then.\n\nScheduled posts show a clock icon.",
    ),
    (
        "Uploading to the media library",
        "https://docs.test/media",
        "The media library stores images and files.\n\nTo upload images, open Media and drag the files onto the page. The largest upload is 100 MB on Pro.",
    ),
    (
        "Revisions",
        "https://docs.test/revisions",
        "Every save creates a revision.\n\nTo restore an older revision, open History, pick the revision and click Restore this revision.",
    ),
];

pub async fn with_docs(app: &TestApp) -> Workspace {
    let ws = app.workspace_with_ai("Inkwell").await;
    for (title, url, body) in ARTICLES {
        app.data(
            Some(&ws.admin_token),
            "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
            json!({ "i": { "title": title, "url": url, "body": body } }),
        )
        .await;
    }
    ws
}

const THREAD: &str = "query($c: ID!) { conversation(id: $c) { status openHandoff { id reason status team { name } } \
    messages(first: 50) { edges { node { seq author body confidence sources { title url score article { id } } } } } } }";

pub async fn thread(app: &TestApp, token: &str, conversation: &str) -> Value {
    app.settle().await;
    app.data(Some(token), THREAD, json!({ "c": conversation }))
        .await["conversation"]
        .clone()
}

pub fn messages(thread: &Value) -> Vec<Value> {
    thread["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

pub async fn policy(app: &TestApp, ws: &Workspace, input: Value) {
    app.data(
        Some(&ws.admin_token),
        "mutation($i: HandoffPolicyInput!) { updateHandoffPolicy(input: $i) { confidenceThreshold } }",
        json!({ "i": input }),
    )
    .await;
}

#[tokio::test]
async fn ai_answers_from_the_docs_quoting_and_citing_the_right_article() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft to publish later?"))
        .await;

    let seen = thread(&app, &visitor, &conversation).await;
    assert_eq!(seen["status"], "AI");
    assert_eq!(seen["openHandoff"], Value::Null);
    let all = messages(&seen);
    assert_eq!(all.len(), 2, "{all:#?}");
    let answer = &all[1];
    assert_eq!(answer["author"], "AI");
    assert_eq!(answer["sources"][0]["title"], "Scheduling drafts");
    assert_eq!(answer["sources"][0]["url"], "https://docs.test/scheduling");
    assert!(
        answer["sources"][0]["article"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("art_"))
    );
    let body = answer["body"].as_str().expect("body");
    assert!(
        body.contains("click the arrow next to Publish and choose Schedule"),
        "{body}"
    );
    assert!(
        !body.contains("clock icon"),
        "a passage, not the whole article: {body}"
    );
    let confidence = answer["confidence"].as_f64().expect("confidence");
    assert!((0.5..=1.0).contains(&confidence), "{confidence}");

    // Confidence is computed from the match: a vaguer question scores lower.
    let (other, other_visitor) = app.start_conversation(&ws, Some("publish it")).await;
    let vague = messages(&thread(&app, &other_visitor, &other).await)[1]["confidence"]
        .as_f64()
        .expect("confidence");
    assert!(vague < confidence, "{vague} < {confidence}");
}

#[tokio::test]
async fn a_question_the_docs_do_not_cover_goes_to_humans_after_the_allowed_unsure_answers() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    policy(
        &app,
        &ws,
        json!({ "confidenceThreshold": 0.5, "maxLowConfidenceAnswers": 1 }),
    )
    .await;
    let (conversation, visitor) = app
        .start_conversation(
            &ws,
            Some("Does your product integrate with Salesforce CRM?"),
        )
        .await;
    let first = thread(&app, &visitor, &conversation).await;
    assert_eq!(first["status"], "AI", "one unsure answer is allowed");
    let unsure = &messages(&first)[1];
    assert_eq!(unsure["author"], "AI");
    assert!(unsure["confidence"].as_f64().expect("confidence") < 0.5);

    app.send(&visitor, &conversation, "What about HubSpot pipelines?")
        .await;
    let second = thread(&app, &visitor, &conversation).await;
    assert_eq!(second["status"], "QUEUED");
    assert_eq!(second["openHandoff"]["reason"], "LOW_CONFIDENCE");
    let last = messages(&second);
    assert_eq!(last[3]["author"], "SYSTEM");
    assert_eq!(last[3]["body"], "A person from the team will join shortly.");
    assert!(
        last.iter().filter(|m| m["author"] == "AI").count() == 1,
        "no second unsure answer"
    );
}

#[tokio::test]
async fn asking_for_a_human_hands_off_at_once() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("can I talk to a human?"))
        .await;
    let seen = thread(&app, &visitor, &conversation).await;
    assert_eq!(seen["status"], "QUEUED");
    assert_eq!(seen["openHandoff"]["reason"], "VISITOR_REQUESTED");
    let all = messages(&seen);
    assert!(
        all.iter().all(|m| m["author"] != "AI"),
        "the AI does not answer: {all:?}"
    );
    assert_eq!(all[1]["body"], "A person from the team will join shortly.");
    assert!(
        all[2]["body"].as_str().is_some_and(|b| b.contains("email")),
        "asks for an email when no lead is known"
    );
}

#[tokio::test]
async fn the_widget_button_requests_a_human_with_a_note() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let handoff = app
        .data(
            Some(&visitor),
            "mutation($c: ID!) { requestHuman(conversationId: $c, note: \"billing question\") { id reason status note } }",
            json!({ "c": conversation }),
        )
        .await["requestHuman"]
        .clone();
    assert_eq!(
        (handoff["reason"].as_str(), handoff["status"].as_str()),
        (Some("VISITOR_REQUESTED"), Some("REQUESTED"))
    );
    let again = app
        .data(
            Some(&visitor),
            "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        again["requestHuman"]["id"], handoff["id"],
        "one open handoff per conversation"
    );
}

async fn team(app: &TestApp, ws: &Workspace, name: &str) -> String {
    app.data(
        Some(&ws.admin_token),
        "mutation($n: String!) { createTeam(input: { name: $n }) { id } }",
        json!({ "n": name }),
    )
    .await["createTeam"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn tag(app: &TestApp, ws: &Workspace, input: Value) -> String {
    app.data(
        Some(&ws.admin_token),
        "mutation($i: CreateTagInput!) { createTag(input: $i) { id } }",
        json!({ "i": input }),
    )
    .await["createTag"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn a_policy_tag_escalates_and_routes_to_its_team() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let billing = team(&app, &ws, "Billing").await;
    let support = team(&app, &ws, "Support").await;
    tag(&app, &ws, json!({ "label": "Billing", "keywords": ["invoice", "refund"], "teamId": billing, "escalate": true, "priority": 10 })).await;
    tag(
        &app,
        &ws,
        json!({ "label": "Media", "keywords": ["upload"], "teamId": support, "priority": 1 }),
    )
    .await;

    let (conversation, visitor) = app
        .start_conversation(
            &ws,
            Some("I was charged twice on my invoices after an upload"),
        )
        .await;
    let seen = thread(&app, &visitor, &conversation).await;
    assert_eq!(seen["status"], "QUEUED");
    assert_eq!(seen["openHandoff"]["reason"], "POLICY");
    assert_eq!(
        seen["openHandoff"]["team"]["name"], "Billing",
        "the highest-priority tag routes"
    );
    let tags = app
        .data(Some(&ws.admin_token), "query($c: ID!) { conversation(id: $c) { team { name } tags { source evidence confidence tag { label } } } }", json!({ "c": conversation }))
        .await["conversation"]
        .clone();
    assert_eq!(tags["team"]["name"], "Billing");
    let applied = tags["tags"].as_array().expect("tags");
    let billing_tag = applied
        .iter()
        .find(|t| t["tag"]["label"] == "Billing")
        .expect("billing tag");
    assert_eq!(billing_tag["source"], "AUTO");
    assert_eq!(billing_tag["evidence"], "invoices");
}

async fn capture_demo_lead(app: &TestApp, ws: &Workspace, visitor: &str, conversation: &str) {
    app.data(
        Some(&ws.admin_token),
        "mutation { defineLeadField(input: { key: \"cmsVersion\", label: \"CMS version\", type: TEXT }) { id } }",
        json!({}),
    )
    .await;
    app.data(
        Some(visitor),
        "mutation($c: ID!) { captureLead(conversationId: $c, input: { name: \"Kim\", email: \"kim@example.com\", fields: { cmsVersion: \"6.4\" } }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
}

const CASE_FILE: &str = "query($h: ID!) { handoff(id: $h) { reason caseFile { summary question attempts context \
    transcript { seq author body } aiAnswers { confidence sources { title } } lead { email fields } \
    tags { source evidence tag { slug } } } } }";

#[tokio::test]
async fn the_case_file_holds_transcript_ai_answers_lead_context_and_tags() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    tag(
        &app,
        &ws,
        json!({ "label": "Media library", "keywords": ["upload", "media library"] }),
    )
    .await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I upload images to the media library?"))
        .await;
    capture_demo_lead(&app, &ws, &visitor, &conversation).await;
    app.settle().await;
    app.send(
        &visitor,
        &conversation,
        "That did not work, I want a real person",
    )
    .await;
    let seen = thread(&app, &ws.admin_token, &conversation).await;
    let handoff = seen["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();

    let file = app
        .data(Some(&ws.admin_token), CASE_FILE, json!({ "h": handoff }))
        .await["handoff"]
        .clone();
    assert_eq!(file["reason"], "VISITOR_REQUESTED");
    let case = &file["caseFile"];
    assert_eq!(
        case["question"],
        "How do I upload images to the media library?"
    );
    assert_eq!(case["attempts"], 1);
    assert_eq!(case["context"]["pageUrl"], "https://example.com/docs");
    assert_eq!(
        case["aiAnswers"][0]["sources"][0]["title"],
        "Uploading to the media library"
    );
    assert_eq!(
        case["lead"],
        json!({ "email": "kim@example.com", "fields": { "cmsVersion": "6.4" } })
    );
    assert_eq!(
        case["tags"][0],
        json!({ "source": "AUTO", "evidence": "upload, media library", "tag": { "slug": "media-library" } })
    );
    let authors: Vec<&str> = case["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .map(|m| m["author"].as_str().expect("author"))
        .collect();
    assert_eq!(
        authors,
        ["VISITOR", "AI", "VISITOR", "SYSTEM"],
        "the whole thread, and no email request: the lead has one"
    );
    let summary = case["summary"].as_str().expect("summary");
    for expected in [
        "How do I upload images to the media library?",
        "answered 1 time",
        "asked for a person",
        "kim@example.com",
        "Media library",
    ] {
        assert!(
            summary.contains(expected),
            "{expected} missing from: {summary}"
        );
    }
}

#[tokio::test]
async fn of_twenty_agents_accepting_at_once_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let mut agents = Vec::new();
    for i in 0..20 {
        agents.push(app.agent(&ws, &format!("Agent{i}"), "AGENT").await);
    }
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("talk to a human please"))
        .await;
    let handoff = thread(&app, &visitor, &conversation).await["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();

    let attempts = agents.iter().map(|(id, token)| {
        let (app_client, url, token, id, handoff) =
            (app.client.clone(), app.url("/graphql"), token.clone(), id.clone(), handoff.clone());
        tokio::spawn(async move {
            let body: Value = app_client
                .post(url)
                .bearer_auth(&token)
                .json(&json!({ "query": "mutation($h: ID!) { acceptHandoff(id: $h) { status acceptedBy { id name } } }", "variables": { "h": handoff } }))
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            (id, body)
        })
    });
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for attempt in attempts {
        let (id, body) = attempt.await.expect("joined");
        if body.get("errors").is_some() {
            assert_eq!(error_code(&body), "CONFLICT");
            assert_eq!(
                body["errors"][0]["extensions"]["reason"],
                "ALREADY_ACCEPTED"
            );
            losers.push(
                body["errors"][0]["message"]
                    .as_str()
                    .expect("message")
                    .to_owned(),
            );
        } else {
            assert_eq!(
                body["data"]["acceptHandoff"]["acceptedBy"]["id"],
                id.as_str()
            );
            winners.push(
                body["data"]["acceptHandoff"]["acceptedBy"]["name"]
                    .as_str()
                    .expect("name")
                    .to_owned(),
            );
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    assert_eq!(losers.len(), 19);
    assert!(
        losers.iter().all(|m| m.starts_with(&winners[0])),
        "losers are told who won: {losers:?}"
    );

    let seen = app
        .data(Some(&ws.admin_token), "query($c: ID!) { conversation(id: $c) { status assignee { name } lastMessage { author body } } }", json!({ "c": conversation }))
        .await["conversation"]
        .clone();
    assert_eq!(seen["status"], "HUMAN");
    assert_eq!(seen["assignee"]["name"], winners[0].as_str());
    assert_eq!(
        seen["lastMessage"]["body"],
        format!("{} joined the conversation.", winners[0])
    );
}

#[tokio::test]
async fn an_agent_takes_over_a_live_ai_chat_and_the_ai_stops() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    assert_eq!(thread(&app, &visitor, &conversation).await["status"], "AI");

    let taken = app
        .data(Some(&agent), "mutation($c: ID!) { takeOver(conversationId: $c) { reason status acceptedBy { id } } }", json!({ "c": conversation }))
        .await["takeOver"]
        .clone();
    assert_eq!(
        taken,
        json!({ "reason": "AGENT_TAKEOVER", "status": "ACCEPTED", "acceptedBy": { "id": agent_id } })
    );
    app.send(
        &visitor,
        &conversation,
        "How do I restore an older revision?",
    )
    .await;
    let seen = thread(&app, &visitor, &conversation).await;
    assert_eq!(seen["status"], "HUMAN");
    let last = messages(&seen);
    assert_eq!(
        last.last().expect("message")["author"],
        "VISITOR",
        "the AI no longer answers"
    );
    assert!(
        last.iter()
            .any(|m| m["body"] == "Alex joined the conversation.")
    );
}

#[tokio::test]
async fn returning_to_the_ai_restarts_its_context() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (_, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("I want to speak to someone"))
        .await;
    let handoff = thread(&app, &visitor, &conversation).await["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();
    app.data(
        Some(&agent),
        "mutation($h: ID!) { acceptHandoff(id: $h) { id } }",
        json!({ "h": handoff }),
    )
    .await;
    let back = app
        .data(
            Some(&agent),
            "mutation($c: ID!) { returnToAi(conversationId: $c) { status assignee { id } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        back["returnToAi"],
        json!({ "status": "AI", "assignee": null })
    );
    let cancelled = app
        .data(
            Some(&agent),
            "query($h: ID!) { handoff(id: $h) { status cancelledAt } }",
            json!({ "h": handoff }),
        )
        .await;
    assert_eq!(cancelled["handoff"]["status"], "CANCELLED");

    app.send(
        &visitor,
        &conversation,
        "How do I restore an older revision?",
    )
    .await;
    let seen = thread(&app, &visitor, &conversation).await;
    assert_eq!(
        seen["status"], "AI",
        "the old request for a person does not count again"
    );
    let last = messages(&seen).last().cloned().expect("message");
    assert_eq!(last["author"], "AI");
    assert_eq!(last["sources"][0]["title"], "Revisions");
}

#[tokio::test]
async fn visitors_cannot_accept_transfer_or_read_case_files() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let support = team(&app, &ws, "Support").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("human please")).await;
    let handoff = thread(&app, &ws.admin_token, &conversation).await["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();
    for (query, vars) in [
        (
            "mutation($h: ID!) { acceptHandoff(id: $h) { id } }",
            json!({ "h": handoff }),
        ),
        (
            "mutation($h: ID!, $t: ID!) { transferHandoff(id: $h, teamId: $t) { id } }",
            json!({ "h": handoff, "t": support }),
        ),
        (
            "query($h: ID!) { handoff(id: $h) { caseFile { summary } } }",
            json!({ "h": handoff }),
        ),
        (
            "mutation($c: ID!) { takeOver(conversationId: $c) { id } }",
            json!({ "c": conversation }),
        ),
    ] {
        let body = app.gql(Some(&visitor), query, vars).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}");
    }
    let own = app
        .gql(Some(&visitor), "query($c: ID!) { conversation(id: $c) { openHandoff { status caseFile { summary } } } }", json!({ "c": conversation }))
        .await;
    assert_eq!(
        error_code(&own),
        "FORBIDDEN",
        "the visitor never reads the case file"
    );
    let status = app
        .data(
            Some(&visitor),
            "query($c: ID!) { conversation(id: $c) { openHandoff { status } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        status["conversation"]["openHandoff"]["status"], "REQUESTED",
        "but sees that a person is coming"
    );
}

#[tokio::test]
async fn handoffs_transfer_to_teams_and_agents_and_close_on_resolve() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let billing = team(&app, &ws, "Billing").await;
    let (sam_id, _) = app.agent(&ws, "Sam", "AGENT").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("talk to a person")).await;
    let handoff = thread(&app, &visitor, &conversation).await["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();

    let to_team = app
        .data(Some(&ws.admin_token), "mutation($h: ID!, $t: ID!) { transferHandoff(id: $h, teamId: $t) { status team { name } } }", json!({ "h": handoff, "t": billing }))
        .await;
    assert_eq!(
        to_team["transferHandoff"],
        json!({ "status": "REQUESTED", "team": { "name": "Billing" } })
    );
    let to_agent = app
        .data(Some(&ws.admin_token), "mutation($h: ID!, $a: ID!) { transferHandoff(id: $h, agentId: $a) { status acceptedBy { name } } }", json!({ "h": handoff, "a": sam_id }))
        .await;
    assert_eq!(
        to_agent["transferHandoff"],
        json!({ "status": "ACCEPTED", "acceptedBy": { "name": "Sam" } })
    );
    let both = app.gql(Some(&ws.admin_token), "mutation($h: ID!, $a: ID!, $t: ID!) { transferHandoff(id: $h, agentId: $a, teamId: $t) { id } }", json!({ "h": handoff, "a": sam_id, "t": billing })).await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT");

    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }",
        json!({ "c": conversation }),
    )
    .await;
    let closed = app
        .data(Some(&ws.admin_token), "query($h: ID!) { handoff(id: $h) { status resolvedAt } handoffs(filter: { status: RESOLVED }) { totalCount } }", json!({ "h": handoff }))
        .await;
    assert_eq!(closed["handoff"]["status"], "RESOLVED");
    assert!(closed["handoff"]["resolvedAt"].is_string());
    assert_eq!(closed["handoffs"]["totalCount"], 1);
}

#[tokio::test]
async fn an_external_ai_posts_answers_but_cannot_speak_while_humans_hold_control() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    app.data(
        Some(&ws.admin_token),
        "mutation { updateWorkspace(input: { responderEnabled: false }) { responderEnabled } }",
        json!({}),
    )
    .await;
    let key = app
        .data(Some(&ws.admin_token), "mutation { createApiKey(name: \"our model\", scopes: [AI_WRITE]) { secret apiKey { scopes } } }", json!({}))
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let article = app
        .data(
            Some(&ws.admin_token),
            "{ articles(query: \"revision\") { edges { node { id } } } }",
            json!({}),
        )
        .await["articles"]["edges"][0]["node"]["id"]
        .clone();
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I undo my changes?"))
        .await;
    app.settle().await;
    const ANSWER: &str = "mutation($c: ID!, $a: ID!, $r: Int) { sendMessage(input: { conversationId: $c, body: \"Open History and restore.\", confidence: 0.83, sourceArticleIds: [$a], replyToSeq: $r }) { author confidence sources { title score } } }";
    let posted = app
        .data(
            Some(&key),
            ANSWER,
            json!({ "c": conversation, "a": article, "r": 1 }),
        )
        .await;
    assert_eq!(
        posted["sendMessage"],
        json!({ "author": "AI", "confidence": 0.83, "sources": [{ "title": "Revisions", "score": 0.83 }] })
    );

    app.send(&visitor, &conversation, "and the older one?")
        .await;
    let stale = app
        .gql(
            Some(&key),
            ANSWER,
            json!({ "c": conversation, "a": article, "r": 1 }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    assert_eq!(stale["errors"][0]["extensions"]["reason"], "STALE_ANSWER");

    app.data(
        Some(&key),
        "mutation($c: ID!) { requestHuman(conversationId: $c, note: \"not sure\") { reason } }",
        json!({ "c": conversation }),
    )
    .await;
    let blocked = app
        .gql(
            Some(&key),
            ANSWER,
            json!({ "c": conversation, "a": article, "r": 3 }),
        )
        .await;
    assert_eq!(error_code(&blocked), "CONFLICT");
    assert_eq!(
        blocked["errors"][0]["extensions"]["reason"],
        "CONTROL_NOT_HELD"
    );
    let by_visitor_token = app
        .gql(
            Some(&visitor),
            ANSWER,
            json!({ "c": conversation, "a": article, "r": 3 }),
        )
        .await;
    assert_eq!(
        error_code(&by_visitor_token),
        "BAD_USER_INPUT",
        "only the AI gives confidence"
    );
}

#[tokio::test]
async fn escalations_reach_subscribers_of_the_team_with_the_case_file() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let billing = team(&app, &ws, "Billing").await;
    let other = team(&app, &ws, "Other").await;
    tag(
        &app,
        &ws,
        json!({ "label": "Billing", "keywords": ["refund"], "teamId": billing, "escalate": true }),
    )
    .await;
    let mut mobile = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    mobile
        .subscribe("billing", "subscription($t: [ID!]) { escalations(teamIds: $t) { reason team { name } caseFile { question } } }", json!({ "t": [billing] }))
        .await;
    mobile
        .subscribe(
            "other",
            "subscription($t: [ID!]) { escalations(teamIds: $t) { reason } }",
            json!({ "t": [other] }),
        )
        .await;
    app.listening(2).await;

    app.start_conversation(&ws, Some("I need a refund for last month"))
        .await;
    let alert = mobile.next_data("billing").await;
    assert_eq!(
        alert["data"]["escalations"],
        json!({ "reason": "POLICY", "team": { "name": "Billing" }, "caseFile": { "question": "I need a refund for last month" } })
    );
    assert!(
        mobile
            .recv_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "not for the other team"
    );
}

#[tokio::test]
async fn agents_running_one_escalations_query_share_it_and_each_may_leave() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let billing = team(&app, &ws, "Billing").await;
    tag(
        &app,
        &ws,
        json!({ "label": "Billing", "keywords": ["refund"], "teamId": billing, "escalate": true }),
    )
    .await;
    let query = "subscription($t: [ID!]) { escalations(teamIds: $t) { reason team { name } caseFile { question } } }";
    let mut agents = Vec::new();
    for name in ["Ana", "Ben", "Cy"] {
        let (_, token) = app.agent(&ws, name, "AGENT").await;
        let mut client = WsClient::ready(&app, TRANSPORT_WS, &token).await;
        client
            .subscribe("esc", query, json!({ "t": [billing] }))
            .await;
        agents.push(client);
    }
    // One execution for the three.
    app.listening(1).await;
    // The first subscriber, whose execution the others joined, leaves (the pong
    // shows the server has read its `complete`).
    agents[0]
        .send(json!({ "type": "complete", "id": "esc" }))
        .await;
    agents[0].ping_pong().await;

    app.start_conversation(&ws, Some("I need a refund for last month"))
        .await;
    let expected = json!({ "reason": "POLICY", "team": { "name": "Billing" }, "caseFile": { "question": "I need a refund for last month" } });
    for client in &mut agents[1..] {
        assert_eq!(
            client.next_data("esc").await["data"]["escalations"],
            expected
        );
    }
    assert!(
        agents[0]
            .recv_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "a subscriber that completed gets nothing more"
    );

    // Everyone leaves, and the execution ends; a new subscriber starts it again.
    for client in &mut agents[1..] {
        client
            .send(json!({ "type": "complete", "id": "esc" }))
            .await;
    }
    app.listening(0).await;
    let mut late = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    late.subscribe("esc", query, json!({ "t": [billing] }))
        .await;
    app.listening(1).await;
    app.start_conversation(&ws, Some("another refund please"))
        .await;
    let alert = late.next_data("esc").await;
    assert_eq!(
        alert["data"]["escalations"]["caseFile"]["question"],
        "another refund please"
    );
}

#[tokio::test]
async fn a_late_accept_loses_to_the_winner_until_the_handoff_waits_again() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let billing = team(&app, &ws, "Billing").await;
    let (_, sam) = app.agent(&ws, "Sam", "AGENT").await;
    let (kim_id, kim) = app.agent(&ws, "Kim", "AGENT").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("talk to a person")).await;
    let handoff = thread(&app, &visitor, &conversation).await["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();
    let accept = "mutation($h: ID!) { acceptHandoff(id: $h) { status acceptedBy { id name } } }";

    app.data(Some(&sam), accept, json!({ "h": handoff })).await;
    let late = app.gql(Some(&kim), accept, json!({ "h": handoff })).await;
    assert_eq!(error_code(&late), "CONFLICT");
    assert_eq!(
        late["errors"][0]["extensions"]["reason"],
        "ALREADY_ACCEPTED"
    );
    assert_eq!(
        late["errors"][0]["message"],
        "Sam already accepted this handoff"
    );

    // Sent back to the team's queue: the same handoff may be accepted again.
    app.data(
        Some(&ws.admin_token),
        "mutation($h: ID!, $t: ID!) { transferHandoff(id: $h, teamId: $t) { status } }",
        json!({ "h": handoff, "t": billing }),
    )
    .await;
    let again = app.data(Some(&kim), accept, json!({ "h": handoff })).await;
    assert_eq!(
        again["acceptHandoff"],
        json!({ "status": "ACCEPTED", "acceptedBy": { "id": kim_id, "name": "Kim" } })
    );

    // Resolved: nobody accepts it any more, and the answer says why.
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }",
        json!({ "c": conversation }),
    )
    .await;
    let closed = app.gql(Some(&sam), accept, json!({ "h": handoff })).await;
    assert_eq!(closed["errors"][0]["extensions"]["reason"], "NOT_REQUESTED");
    assert_eq!(
        closed["errors"][0]["message"],
        "this handoff is RESOLVED, not waiting"
    );
}
