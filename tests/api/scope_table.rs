//! Every scope through every root field, against the table in the book's
//! `docs/src/concepts/principals-and-scopes.md` ("Scopes,
//! field by field"): the table is the contract, and this test keeps it true.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{TIMEOUT, TestApp, Workspace};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const SCOPES: [&str; 6] = [
    "INSIGHTS_READ",
    "LEADS_READ",
    "CONVERSATIONS_READ",
    "AI_WRITE",
    "EVENTS_READ",
    "KNOWLEDGE_WRITE",
];

/// What a root field is called with: the document and its variables.
struct Call {
    field: &'static str,
    document: &'static str,
}

/// The ids the calls use.
struct Fixture {
    conversation: String,
    handoff: String,
    lead: String,
    tag: String,
    article: String,
}

const QUERIES: &[Call] = &[
    Call {
        field: "viewer",
        document: "{ viewer { id } }",
    },
    Call {
        field: "workspace",
        document: "{ workspace { id } }",
    },
    Call {
        field: "agents",
        document: "{ agents { id } }",
    },
    Call {
        field: "teams",
        document: "{ teams { id } }",
    },
    Call {
        field: "conversation",
        document: "query($c: ID!) { conversation(id: $c) { id } }",
    },
    Call {
        field: "conversations",
        document: "{ conversations { totalCount } }",
    },
    Call {
        field: "lead",
        document: "query($l: ID!) { lead(id: $l) { id } }",
    },
    Call {
        field: "auditLog",
        document: "{ auditLog(first: 1) { nodes { id } } }",
    },
    Call {
        field: "exportContact",
        document: "query($l: ID!) { exportContact(leadId: $l) }",
    },
    Call {
        field: "leads",
        document: "{ leads { totalCount } }",
    },
    Call {
        field: "leadFields",
        document: "{ leadFields { key } }",
    },
    Call {
        field: "tags",
        document: "{ tags { id } }",
    },
    Call {
        field: "node",
        document: "query($c: ID!) { node(id: $c) { id } }",
    },
    Call {
        field: "handoff",
        document: "query($h: ID!) { handoff(id: $h) { id } }",
    },
    Call {
        field: "handoffs",
        document: "{ handoffs { totalCount } }",
    },
    Call {
        field: "articles",
        document: "{ articles { totalCount } }",
    },
    Call {
        field: "previewAnswer",
        document: "{ previewAnswer(question: \"How do I schedule a post?\") { outcome } }",
    },
    Call {
        field: "article",
        document: "query($a: ID!) { article(id: $a) { id } }",
    },
    Call {
        field: "apiKeys",
        document: "{ apiKeys { id } }",
    },
    Call {
        field: "insights",
        document: "{ insights(from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\") { conversations } }",
    },
    Call {
        field: "retagJob",
        document: "{ retagJob(id: \"job_missing\") { id } }",
    },
    Call {
        field: "events",
        document: "{ events(first: 1) { edges { cursor } } }",
    },
    Call {
        field: "webhooks",
        document: "{ webhooks { id } }",
    },
    Call {
        field: "webhookDeliveries",
        document: "{ webhookDeliveries(webhookId: \"whk_missing\") { id } }",
    },
];

const MUTATIONS: &[Call] = &[
    Call {
        field: "createWebhook",
        document: "mutation { createWebhook(input: { url: \"https://example.com/hook\" }) { secret } }",
    },
    Call {
        field: "updateWebhook",
        document: "mutation { updateWebhook(input: { webhookId: \"whk_missing\" }) { id } }",
    },
    Call {
        field: "deleteWebhook",
        document: "mutation { deleteWebhook(webhookId: \"whk_missing\") }",
    },
    Call {
        field: "rotateWebhookSecret",
        document: "mutation { rotateWebhookSecret(webhookId: \"whk_missing\") { secret } }",
    },
    Call {
        field: "signIn",
        document: "mutation { signIn(email: \"nobody@example.com\", password: \"wrong password\") { token } }",
    },
    Call {
        field: "createAgent",
        document: "mutation { createAgent(input: { email: \"x\", name: \"\", password: \"\" }) { id } }",
    },
    Call {
        field: "updateAgent",
        document: "mutation { updateAgent(input: { agentId: \"agt_missing\" }) { id } }",
    },
    Call {
        field: "declineHandoff",
        document: "mutation { declineHandoff(handoffId: \"hof_missing\") { id } }",
    },
    Call {
        field: "deactivateAgent",
        document: "mutation { deactivateAgent(agentId: \"agt_missing\") { id } }",
    },
    Call {
        field: "reactivateAgent",
        document: "mutation { reactivateAgent(agentId: \"agt_missing\") { id } }",
    },
    Call {
        field: "changePassword",
        document: "mutation { changePassword(currentPassword: \"x\", newPassword: \"y\") { token } }",
    },
    Call {
        field: "createTeam",
        document: "mutation { createTeam(input: { name: \"\" }) { id } }",
    },
    Call {
        field: "startConversation",
        document: "mutation { startConversation(input: { widgetKey: \"wk_missing\" }) { visitorToken } }",
    },
    Call {
        field: "assignConversation",
        document: "mutation { assignConversation(conversationId: \"conv_missing\") { id } }",
    },
    Call {
        field: "confirmAnswer",
        document: "mutation { confirmAnswer(conversationId: \"conv_missing\", messageId: \"msg_missing\", helpful: true) { id } }",
    },
    Call {
        field: "flagAnswer",
        document: "mutation { flagAnswer(messageId: \"msg_missing\", reason: \"wrong\") { id } }",
    },
    Call {
        field: "setAvailability",
        document: "mutation { setAvailability(status: AWAY) { id } }",
    },
    Call {
        field: "updateTeam",
        document: "mutation { updateTeam(input: { teamId: \"team_missing\", name: \"X\" }) { id } }",
    },
    Call {
        field: "resolveConversation",
        document: "mutation { resolveConversation(conversationId: \"conv_missing\") { id } }",
    },
    Call {
        field: "tagConversation",
        document: "mutation { tagConversation(conversationId: \"conv_missing\", tagId: \"tag_missing\") { id } }",
    },
    Call {
        field: "untagConversation",
        document: "mutation { untagConversation(conversationId: \"conv_missing\", tagId: \"tag_missing\") { id } }",
    },
    Call {
        field: "sendMessage",
        document: "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"an answer\" }) { id } }",
    },
    Call {
        field: "captureLead",
        document: "mutation($c: ID!) { captureLead(conversationId: $c, input: { company: \"Acme\" }) { id } }",
    },
    Call {
        field: "defineLeadField",
        document: "mutation { defineLeadField(input: { key: \"\", label: \"\", type: TEXT }) { key } }",
    },
    Call {
        field: "createTag",
        document: "mutation { createTag(input: { label: \"\" }) { id } }",
    },
    Call {
        field: "updateTag",
        document: "mutation { updateTag(id: \"tag_missing\", input: {}) { id } }",
    },
    Call {
        field: "deleteTag",
        document: "mutation { deleteTag(id: \"tag_missing\") }",
    },
    Call {
        field: "setTyping",
        document: "mutation($c: ID!) { setTyping(conversationId: $c, typing: false) }",
    },
    Call {
        field: "requestHuman",
        document: "mutation { requestHuman(conversationId: \"conv_missing\") { id } }",
    },
    Call {
        field: "acceptHandoff",
        document: "mutation { acceptHandoff(id: \"hof_missing\") { id } }",
    },
    Call {
        field: "takeOver",
        document: "mutation { takeOver(conversationId: \"conv_missing\") { id } }",
    },
    Call {
        field: "returnToAi",
        document: "mutation { returnToAi(conversationId: \"conv_missing\") { id } }",
    },
    Call {
        field: "transferHandoff",
        document: "mutation { transferHandoff(id: \"hof_missing\", teamId: \"team_missing\") { id } }",
    },
    Call {
        field: "upsertArticle",
        document: "mutation { upsertArticle(input: { title: \"\", url: \"\", body: \"\" }) { id } }",
    },
    Call {
        field: "deleteArticle",
        document: "mutation { deleteArticle(id: \"art_missing\") }",
    },
    Call {
        field: "updateHandoffPolicy",
        document: "mutation { updateHandoffPolicy(input: {}) { confidenceThreshold } }",
    },
    Call {
        field: "updateWorkspace",
        document: "mutation { updateWorkspace(input: {}) { id } }",
    },
    Call {
        field: "rotateIdentitySecret",
        document: "mutation { rotateIdentitySecret }",
    },
    Call {
        field: "createApiKey",
        document: "mutation { createApiKey(name: \"\", scopes: []) { secret } }",
    },
    Call {
        field: "eraseContact",
        document: "mutation($l: ID!) { eraseContact(leadId: $l) { conversations } }",
    },
    Call {
        field: "revokeApiKey",
        document: "mutation { revokeApiKey(id: \"key_missing\") { id } }",
    },
    Call {
        field: "rateConversation",
        document: "mutation { rateConversation(conversationId: \"conv_missing\", score: 9) { score } }",
    },
    Call {
        field: "retagConversations",
        document: "mutation { retagConversations(since: \"2100-01-01T00:00:00Z\") { id } }",
    },
];

const SUBSCRIPTIONS: &[Call] = &[
    Call {
        field: "messages",
        document: "subscription($c: ID!) { messages(conversationId: $c) { seq } }",
    },
    Call {
        field: "conversationEvents",
        document: "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }",
    },
    Call {
        field: "inbox",
        document: "subscription { inbox { kind } }",
    },
    Call {
        field: "escalations",
        document: "subscription { escalations { id } }",
    },
];

fn variables(fixture: &Fixture) -> Value {
    json!({
        "c": fixture.conversation, "h": fixture.handoff, "l": fixture.lead,
        "t": fixture.tag, "a": fixture.article,
    })
}

/// Only the variables a document declares.
fn declared(document: &str, all: &Value) -> Value {
    let mut vars = serde_json::Map::new();
    for (name, value) in all.as_object().expect("an object") {
        if document.contains(&format!("${name}:")) {
            vars.insert(name.clone(), value.clone());
        }
    }
    Value::Object(vars)
}

/// Whether the response says the caller may not do this (a valid key is never
/// `UNAUTHENTICATED`: that code here is about the call's own credentials, as
/// `signIn`'s password).
fn refused(body: &Value) -> bool {
    body["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| e["extensions"]["code"] == "FORBIDDEN")
    })
}

async fn fixture(app: &TestApp, ws: &Workspace) -> Fixture {
    let started = app
        .data(
            None,
            "mutation($k: String!) { startConversation(input: { widgetKey: $k, message: \"hello\", lead: { name: \"Lee\" } }) { conversation { id lead { id } } visitorToken } }",
            json!({ "k": ws.widget_key }),
        )
        .await["startConversation"]
        .clone();
    let conversation = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lead = started["conversation"]["lead"]["id"]
        .as_str()
        .expect("lead")
        .to_owned();
    let handoff = app.request_human(&ws.admin_token, &conversation).await;
    let tag = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTag(input: { label: \"Billing\" }) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .as_str()
        .expect("tag")
        .to_owned();
    let article = app
        .data(
            Some(&ws.admin_token),
            "mutation { upsertArticle(input: { title: \"Plans\", url: \"https://help.example.com/plans\", body: \"About plans.\" }) { id } }",
            json!({}),
        )
        .await["upsertArticle"]["id"]
        .as_str()
        .expect("article")
        .to_owned();
    Fixture {
        conversation,
        handoff,
        lead,
        tag,
        article,
    }
}

/// Whether a subscription by `token` is refused: an authorised one answers with
/// events (triggered here), a refused one with an `error`.
async fn subscription_refused(
    app: &TestApp,
    ws: &Workspace,
    token: &str,
    call: &Call,
    vars: &Value,
    fixture: &Fixture,
) -> bool {
    let mut client = WsClient::ready(app, TRANSPORT_WS, token).await;
    client
        .subscribe("s", call.document, declared(call.document, vars))
        .await;
    client.ping_pong().await;
    // Something for every subscription to report.
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) sendMessage(input: { conversationId: $c, body: \"ping\" }) { id } }",
        json!({ "c": fixture.conversation }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($h: ID!, $t: ID!) { transferHandoff(id: $h, teamId: $t) { id } }",
        json!({ "h": fixture.handoff, "t": team(app, ws).await }),
    )
    .await;
    let message = tokio::time::timeout(TIMEOUT, client.recv())
        .await
        .expect("an answer in time");
    match message["type"].as_str() {
        Some("next") => false,
        Some("error") => refused(&json!({ "errors": message["payload"] })),
        other => panic!("unexpected {other:?}: {message}"),
    }
}

async fn team(app: &TestApp, ws: &Workspace) -> String {
    app.data(
        Some(&ws.admin_token),
        "mutation($n: String!) { createTeam(input: { name: $n }) { id } }",
        json!({ "n": format!("Queue {}", ulid::Ulid::new()) }),
    )
    .await["createTeam"]["id"]
        .as_str()
        .expect("team")
        .to_owned()
}

/// The book's table: field → the scopes that reach it.
fn book_table() -> BTreeMap<String, Vec<bool>> {
    let readme = include_str!("../../docs/src/concepts/principals-and-scopes.md");
    let start = readme
        .find("| root field | INSIGHTS_READ | LEADS_READ | CONVERSATIONS_READ | AI_WRITE | EVENTS_READ | KNOWLEDGE_WRITE |")
        .expect("the book has the scope table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let field = cells[0].trim_matches('`').to_owned();
            let reach = cells[1..].iter().map(|cell| *cell == "yes").collect();
            (field, reach)
        })
        .collect()
}

#[tokio::test]
async fn every_scope_reaches_exactly_what_the_book_table_says() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let fixture = fixture(&app, &ws).await;
    let vars = variables(&fixture);
    let mut keys = Vec::new();
    for scope in SCOPES {
        keys.push(app.api_key(&ws, scope).await);
    }
    let mut seen: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for call in QUERIES.iter().chain(MUTATIONS) {
        let mut reach = Vec::new();
        for key in &keys {
            let body = app
                .gql(Some(key), call.document, declared(call.document, &vars))
                .await;
            reach.push(!refused(&body));
        }
        seen.insert(call.field.to_owned(), reach);
    }
    for call in SUBSCRIPTIONS {
        let mut reach = Vec::new();
        for key in &keys {
            reach.push(!subscription_refused(&app, &ws, key, call, &vars, &fixture).await);
        }
        seen.insert(call.field.to_owned(), reach);
    }
    let table = book_table();
    let mut differences = Vec::new();
    for (field, reach) in &seen {
        let mark = |r: &Vec<bool>| {
            r.iter()
                .map(|y| if *y { "yes" } else { "no" })
                .collect::<Vec<_>>()
                .join(" | ")
        };
        match table.get(field) {
            Some(expected) if expected == reach => {}
            _ => differences.push(format!("| `{field}` | {} |", mark(reach))),
        }
    }
    assert!(
        differences.is_empty() && table.len() == seen.len(),
        "the book's scope table differs; what the server does:\n{}",
        differences.join("\n")
    );
}
