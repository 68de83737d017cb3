//! Automatic tags, the insights digest, API keys and CSV exports.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code};

const TAGS: &str = "query($c: ID!) { conversation(id: $c) { tags { source evidence confidence messageId tag { slug } } } }";

async fn tags_of(app: &TestApp, ws: &Workspace, conversation: &str) -> Vec<Value> {
    app.settle().await;
    app.data(Some(&ws.admin_token), TAGS, json!({ "c": conversation }))
        .await["conversation"]["tags"]
        .as_array()
        .expect("tags")
        .clone()
}

async fn create_tag(app: &TestApp, ws: &Workspace, input: Value) -> String {
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
async fn tags_are_applied_with_evidence_on_the_message_that_matched() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    create_tag(
        &app,
        &ws,
        json!({ "label": "Media uploads", "keywords": ["upload", "media library"] }),
    )
    .await;
    create_tag(
        &app,
        &ws,
        json!({ "label": "Versions", "keywords": [], "patterns": ["v\\d+\\.\\d+"] }),
    )
    .await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hello there")).await;
    assert!(tags_of(&app, &ws, &conversation).await.is_empty());
    let second = app
        .send(
            &visitor,
            &conversation,
            "My uploads to the Media Library fail since V6.2",
        )
        .await;

    let tags = tags_of(&app, &ws, &conversation).await;
    assert_eq!(tags.len(), 2, "{tags:#?}");
    let media = tags
        .iter()
        .find(|t| t["tag"]["slug"] == "media-uploads")
        .expect("media tag");
    assert_eq!(media["source"], "AUTO");
    assert_eq!(media["evidence"], "uploads, Media Library");
    assert_eq!(media["messageId"], second["id"]);
    assert!(media["confidence"].as_f64().expect("confidence") > 0.5);
    let version = tags
        .iter()
        .find(|t| t["tag"]["slug"] == "versions")
        .expect("pattern tag");
    assert_eq!(version["evidence"], "V6.2");

    let bad = app
        .gql(
            Some(&ws.admin_token),
            "mutation { createTag(input: { label: \"X\", patterns: [\"(unclosed\"] }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "patterns");
}

#[tokio::test]
async fn an_agents_removal_sticks() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let tag = create_tag(
        &app,
        &ws,
        json!({ "label": "Billing", "keywords": ["invoice"] }),
    )
    .await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("where is my invoice"))
        .await;
    assert_eq!(tags_of(&app, &ws, &conversation).await.len(), 1);
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!, $t: ID!) { untagConversation(conversationId: $c, tagId: $t) { id } }",
        json!({ "c": conversation, "t": tag }),
    )
    .await;
    app.send(&visitor, &conversation, "the invoice, again")
        .await;
    assert!(
        tags_of(&app, &ws, &conversation).await.is_empty(),
        "not re-applied after an agent removed it"
    );
    retag(&app, &ws).await;
    assert!(
        tags_of(&app, &ws, &conversation).await.is_empty(),
        "nor by a retag"
    );
}

async fn retag(app: &TestApp, ws: &Workspace) -> Value {
    let job = app
        .data(
            Some(&ws.admin_token),
            "mutation { retagConversations(since: \"2020-01-01T00:00:00Z\") { id status total } }",
            json!({}),
        )
        .await["retagConversations"]
        .clone();
    for _ in 0..200 {
        let now = app
            .data(
                Some(&ws.admin_token),
                "query($id: ID!) { retagJob(id: $id) { status processed total tagged untagged } }",
                json!({ "id": job["id"] }),
            )
            .await["retagJob"]
            .clone();
        if now["status"] != "RUNNING" {
            assert_eq!(now["status"], "DONE");
            return now;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("retag did not finish");
}

#[tokio::test]
async fn retagging_applies_changed_rules_to_stored_conversations() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut conversations = Vec::new();
    for question in [
        "the scheduler skipped my post",
        "scheduled posts never go live",
        "how do I edit the navigation menu",
    ] {
        conversations.push(app.start_conversation(&ws, Some(question)).await.0);
    }
    app.settle().await;
    let tag = create_tag(
        &app,
        &ws,
        json!({ "label": "Scheduling", "keywords": ["schedule"] }),
    )
    .await;
    let done = retag(&app, &ws).await;
    assert_eq!(
        (done["processed"].as_i64(), done["tagged"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        tags_of(&app, &ws, &conversations[0]).await[0]["evidence"],
        "scheduler"
    );
    assert_eq!(
        tags_of(&app, &ws, &conversations[1]).await[0]["evidence"],
        "scheduled"
    );
    assert!(tags_of(&app, &ws, &conversations[2]).await.is_empty());

    app.data(
        Some(&ws.admin_token),
        "mutation($t: ID!) { updateTag(id: $t, input: { keywords: [\"menu\"] }) { id } }",
        json!({ "t": tag }),
    )
    .await;
    let changed = retag(&app, &ws).await;
    assert_eq!(
        (changed["tagged"].as_i64(), changed["untagged"].as_i64()),
        (Some(1), Some(2))
    );
    assert!(tags_of(&app, &ws, &conversations[0]).await.is_empty());
    assert_eq!(
        tags_of(&app, &ws, &conversations[2]).await[0]["evidence"],
        "menu"
    );
}

#[tokio::test]
async fn an_ai_answer_citing_an_article_applies_its_topic() {
    let app = TestApp::spawn().await;
    let ws = app.workspace_with_ai("Acme").await;
    let article = app
        .data(Some(&ws.admin_token), "mutation { upsertArticle(input: { title: \"Restoring revisions\", url: \"https://d.test/r\", body: \"Open History and click Restore this revision to restore an older revision.\" }) { id } }", json!({}))
        .await["upsertArticle"]["id"]
        .clone();
    create_tag(
        &app,
        &ws,
        json!({ "label": "Versioning", "articleIds": [article] }),
    )
    .await;
    let (conversation, _) = app
        .start_conversation(&ws, Some("How can I restore an older revision?"))
        .await;
    let tags = tags_of(&app, &ws, &conversation).await;
    assert_eq!(tags.len(), 1, "{tags:#?}");
    assert_eq!(tags[0]["evidence"], "article: Restoring revisions");
}

/// Move a conversation (and its handoffs) in time, for a fixture with known numbers.
async fn place(
    app: &TestApp,
    conversation: &str,
    created_at: i64,
    handoff: Option<(i64, Option<i64>, Option<i64>)>,
) {
    use sea_orm::ConnectionTrait;
    let db = &app.running.state.db;
    let run =
        |sql: &str, values: Vec<sea_orm::Value>| casefile::db::stmt(db.backend(), sql, values);
    db.writer
        .execute_raw(run(
            "UPDATE conversations SET created_at = ?, updated_at = ? WHERE id = ?",
            vec![created_at.into(), created_at.into(), conversation.into()],
        ))
        .await
        .expect("moved");
    if let Some((requested, accepted, resolved)) = handoff {
        db.writer
            .execute_raw(run(
                "UPDATE handoffs SET requested_at = ?, accepted_at = ?, resolved_at = ? WHERE conversation_id = ?",
                vec![requested.into(), accepted.into(), resolved.into(), conversation.into()],
            ))
            .await
            .expect("moved");
    }
}

#[tokio::test]
async fn the_digest_matches_a_fixture_computed_by_hand() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let team = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTeam(input: { name: \"Billing\" }) { id } }",
            json!({}),
        )
        .await["createTeam"]["id"]
        .clone();
    let billing = create_tag(&app, &ws, json!({ "label": "Billing" })).await;
    let media = create_tag(&app, &ws, json!({ "label": "Media" })).await;
    let day = 86_400_000_i64;
    let t0 = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    let token = ws.admin_token.clone();
    let mutate = |query: &'static str, vars: Value| {
        let (app, token) = (&app, token.clone());
        async move { app.data(Some(&token), query, vars).await }
    };
    let mut c = Vec::new();
    for i in 0..7 {
        c.push(
            app.start_conversation(&ws, Some(&format!("question {i}")))
                .await,
        );
    }
    let id = |i: usize| c[i].0.clone();
    // c0, c1: resolved by the AI (no handoff); c5: by an agent, which is not the AI's.
    let ai = app.api_key(&ws, "AI_WRITE").await;
    for i in [0, 1] {
        app.data(
            Some(&ai),
            "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
            json!({ "c": id(i) }),
        )
        .await;
    }
    mutate(
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": id(5) }),
    )
    .await;
    // c2, c3, c4 handed off (visitor, policy, low confidence); c6 handed off last period.
    app.data(
        Some(&c[2].1),
        "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
        json!({ "c": id(2) }),
    )
    .await;
    mutate(
        "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
        json!({ "c": id(3) }),
    )
    .await;
    mutate(
        "mutation($c: ID!) { requestHuman(conversationId: $c, reason: LOW_CONFIDENCE) { id } }",
        json!({ "c": id(4) }),
    )
    .await;
    mutate(
        "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
        json!({ "c": id(6) }),
    )
    .await;
    for i in [2, 3, 4, 6] {
        mutate(
            "mutation($c: ID!) { takeOver(conversationId: $c) { id } }",
            json!({ "c": id(i) }),
        )
        .await;
    }
    for i in [2, 3] {
        mutate(
            "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
            json!({ "c": id(i) }),
        )
        .await;
    }
    for (i, tag) in [
        (2, &billing),
        (3, &billing),
        (4, &media),
        (5, &media),
        (6, &billing),
    ] {
        mutate(
            "mutation($c: ID!, $t: ID!) { tagConversation(conversationId: $c, tagId: $t) { id } }",
            json!({ "c": id(i), "t": tag }),
        )
        .await;
    }
    for i in [2, 3] {
        mutate("mutation($c: ID!, $t: ID!) { assignConversation(conversationId: $c, agentId: null, teamId: $t) { id } }", json!({ "c": id(i), "t": team })).await;
    }
    app.data(
        Some(&c[0].1),
        "mutation($c: ID!) { rateConversation(conversationId: $c, score: 5) { score } }",
        json!({ "c": id(0) }),
    )
    .await;
    app.data(Some(&c[2].1), "mutation($c: ID!) { rateConversation(conversationId: $c, score: 2, comment: \"slow\") { score } }", json!({ "c": id(2) })).await;
    let bad = app
        .gql(
            Some(&c[1].1),
            "mutation($c: ID!) { rateConversation(conversationId: $c, score: 6) { score } }",
            json!({ "c": id(1) }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");

    // Times: requested h after start; accepted after a (s); resolved after r (s).
    let at = |d: i64, h: i64| t0 + d * day + h * 3_600_000;
    place(&app, &id(0), at(0, 1), None).await;
    place(&app, &id(1), at(0, 2), None).await;
    place(
        &app,
        &id(2),
        at(1, 1),
        Some((at(1, 2), Some(at(1, 2) + 30_000), Some(at(1, 2) + 300_000))),
    )
    .await;
    place(
        &app,
        &id(3),
        at(1, 3),
        Some((at(1, 4), Some(at(1, 4) + 90_000), Some(at(1, 4) + 600_000))),
    )
    .await;
    place(
        &app,
        &id(4),
        at(3, 1),
        Some((at(3, 2), Some(at(3, 2) + 60_000), None)),
    )
    .await;
    place(&app, &id(5), at(3, 5), None).await;
    place(
        &app,
        &id(6),
        at(-2, 0),
        Some((at(-2, 1), Some(at(-2, 1) + 10_000), None)),
    )
    .await;

    let digest = app
        .data(
            Some(&ws.admin_token),
            "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { conversations aiResolved handoffs handoffRate \
             medianSecondsToAccept p90SecondsToAccept medianSecondsToResolve csat ratings \
             topics { tag { slug } conversations handoffs handoffRate previousPeriodHandoffs } \
             reasons { reason handoffs } series(bucket: DAY) { conversations handoffs aiResolved } } }",
            json!({ "f": "2026-01-01T00:00:00Z", "t": "2026-01-08T00:00:00Z" }),
        )
        .await["insights"]
        .clone();
    assert_eq!(digest["conversations"], 6);
    assert_eq!(digest["aiResolved"], 2);
    assert_eq!(digest["handoffs"], 3);
    assert_eq!(digest["handoffRate"], 0.5);
    assert_eq!(digest["medianSecondsToAccept"], 60.0, "of 30, 60, 90");
    assert_eq!(
        digest["p90SecondsToAccept"], 90.0,
        "nearest rank: the 3rd of 3"
    );
    assert_eq!(digest["medianSecondsToResolve"], 450.0, "of 300 and 600");
    assert_eq!(digest["csat"], 3.5);
    assert_eq!(digest["ratings"], 2);
    assert_eq!(
        digest["topics"],
        json!([
            { "tag": { "slug": "billing" }, "conversations": 2, "handoffs": 2, "handoffRate": 1.0, "previousPeriodHandoffs": 1 },
            { "tag": { "slug": "media" }, "conversations": 2, "handoffs": 1, "handoffRate": 0.5, "previousPeriodHandoffs": 0 },
        ])
    );
    let mut reasons: Vec<(String, i64)> = digest["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().expect("reason").to_owned(),
                r["handoffs"].as_i64().expect("n"),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("LOW_CONFIDENCE".to_owned(), 1),
            ("POLICY".to_owned(), 1),
            ("VISITOR_REQUESTED".to_owned(), 1)
        ]
    );
    let per_day: Vec<(i64, i64, i64)> = digest["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|p| {
            (
                p["conversations"].as_i64().expect("n"),
                p["handoffs"].as_i64().expect("n"),
                p["aiResolved"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        per_day,
        [
            (2, 0, 2),
            (2, 2, 0),
            (0, 0, 0),
            (2, 1, 0),
            (0, 0, 0),
            (0, 0, 0),
            (0, 0, 0)
        ]
    );

    let by_team = app
        .data(Some(&ws.admin_token), "query($t: ID) { insights(from: \"2026-01-01T00:00:00Z\", to: \"2026-01-08T00:00:00Z\", teamId: $t) { conversations handoffs } }", json!({ "t": team }))
        .await;
    assert_eq!(
        by_team["insights"],
        json!({ "conversations": 2, "handoffs": 2 })
    );
}

#[tokio::test]
async fn docs_gaps_group_unanswered_questions_by_wording() {
    let app = TestApp::spawn().await;
    let ws = app.workspace_with_ai("Acme").await;
    let mut asked = Vec::new();
    for question in [
        "Does Inkwell integrate with Salesforce?",
        "Salesforce integration available?",
        "Can I cancel my subscription online?",
        "integrate inkwell and salesforce CRM",
    ] {
        asked.push(app.start_conversation(&ws, Some(question)).await.0);
    }
    app.settle().await;
    let gaps = app
        .data(Some(&ws.admin_token), "{ insights(from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\") { docsGaps { question count conversationIds } } }", json!({}))
        .await["insights"]["docsGaps"]
        .clone();
    assert_eq!(gaps[0]["count"], 3, "{gaps:#}");
    let mut ids: Vec<String> = gaps[0]["conversationIds"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![asked[0].clone(), asked[1].clone(), asked[3].clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        gaps[1],
        json!({ "question": "Can I cancel my subscription online?", "count": 1, "conversationIds": [asked[2]] })
    );
}

async fn key(app: &TestApp, ws: &Workspace, scopes: &str) -> String {
    app.data(Some(&ws.admin_token), &format!("mutation {{ createApiKey(name: \"k\", scopes: [{scopes}]) {{ secret apiKey {{ id }} }} }}"), json!({}))
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned()
}

#[tokio::test]
async fn api_keys_do_only_what_their_scopes_allow_in_their_workspace() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let other = app.workspace("Other").await;
    let insights = key(&app, &ws, "INSIGHTS_READ").await;
    let leads = key(&app, &ws, "LEADS_READ").await;
    let digest = "{ insights(from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\") { conversations } }";
    assert_eq!(
        app.data(Some(&insights), digest, json!({})).await["insights"]["conversations"],
        0
    );
    assert_eq!(
        error_code(&app.gql(Some(&leads), digest, json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &app.gql(Some(&insights), "{ leads { totalCount } }", json!({}))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &app.gql(
                Some(&insights),
                "{ conversations { totalCount } }",
                json!({})
            )
            .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &app.gql(
                Some(&insights),
                "mutation { createTag(input: { label: \"x\" }) { id } }",
                json!({})
            )
            .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        app.data(Some(&leads), "{ leads { totalCount } }", json!({}))
            .await["leads"]["totalCount"],
        0
    );

    let (conversation, visitor) = app.start_conversation(&other, None).await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!) { captureLead(conversationId: $c, input: { name: \"B\" }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    assert_eq!(
        app.data(Some(&leads), "{ leads { totalCount } }", json!({}))
            .await["leads"]["totalCount"],
        0,
        "only its workspace"
    );

    let id = app
        .data(Some(&ws.admin_token), "{ apiKeys { id } }", json!({}))
        .await["apiKeys"][0]["id"]
        .clone();
    app.data(
        Some(&ws.admin_token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        error_code(&app.gql(Some(&insights), digest, json!({})).await),
        "UNAUTHENTICATED",
        "revoked at once"
    );
    assert_eq!(
        error_code(&app.gql(Some("ck_not-a-key"), digest, json!({})).await),
        "UNAUTHENTICATED"
    );
}

fn parse_csv(body: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn csv_exports_use_lead_fields_as_columns_and_quote_properly() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    for (key, kind) in [("cms", "TEXT"), ("seats", "NUMBER")] {
        app.data(Some(&ws.admin_token), &format!("mutation {{ defineLeadField(input: {{ key: \"{key}\", label: \"{key}\", type: {kind} }}) {{ id }} }}"), json!({})).await;
    }
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!, $i: LeadInput!) { captureLead(conversationId: $c, input: $i) { id } }",
        json!({ "c": conversation, "i": { "name": "Kim \"KJ\" Lee", "email": "kim@example.com", "company": "Acme, Inc.", "fields": { "cms": "Word\nPress", "seats": 12 } } }),
    )
    .await;
    let leads_key = key(&app, &ws, "LEADS_READ").await;
    let response = app
        .client
        .get(app.url("/export/leads.csv"))
        .bearer_auth(&leads_key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let body = response.text().await.expect("body");
    assert!(
        body.starts_with("id,name,email,company,cms,seats,created_at,updated_at\n"),
        "{body}"
    );
    let rows = parse_csv(&body);
    assert_eq!(
        &rows[0][1..6],
        [
            "Kim \"KJ\" Lee",
            "kim@example.com",
            "Acme, Inc.",
            "Word\nPress",
            "12"
        ]
    );

    let refused = app
        .client
        .get(app.url("/export/conversations.csv"))
        .bearer_auth(&leads_key)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    let anonymous = app
        .client
        .get(app.url("/export/leads.csv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);

    // Lead columns need LEADS_READ beside CONVERSATIONS_READ.
    for (scopes, email) in [
        ("CONVERSATIONS_READ", ""),
        ("CONVERSATIONS_READ, LEADS_READ", "kim@example.com"),
    ] {
        let conversations_key = key(&app, &ws, scopes).await;
        let body = app
            .client
            .get(app.url("/export/conversations.csv"))
            .bearer_auth(&conversations_key)
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body");
        let rows = parse_csv(&body);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], conversation);
        assert_eq!(rows[0][7], email, "{scopes}");
    }
}
