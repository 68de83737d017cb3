//! Smaller holes: handoff notes, spreadsheet formulas in exports, weak secrets.

use serde_json::json;

use crate::helpers::{TestApp, fresh_database, test_config};

#[tokio::test]
async fn visitors_never_see_handoff_notes() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { requestHuman(conversationId: $c, note: \"VIP, angry about billing\") { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let query = "query($c: ID!) { conversation(id: $c) { openHandoff { note } } }";
    let seen = app
        .data(Some(&visitor), query, json!({ "c": conversation }))
        .await;
    assert!(
        seen["conversation"]["openHandoff"]["note"].is_null(),
        "{seen}"
    );
    let agent = app
        .data(Some(&ws.admin_token), query, json!({ "c": conversation }))
        .await;
    assert_eq!(
        agent["conversation"]["openHandoff"]["note"],
        "VIP, angry about billing"
    );
}

#[tokio::test]
async fn exports_neutralise_spreadsheet_formulas() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    app.data(
        None,
        "mutation($k: String!) { startConversation(input: { widgetKey: $k, lead: { name: \"=HYPERLINK(\\\"http://evil.example\\\",\\\"x\\\")\", company: \"@SUM(A1)\" } }) { visitorToken } }",
        json!({ "k": ws.widget_key }),
    )
    .await;
    let csv = app
        .client
        .get(app.url("/export/leads.csv"))
        .bearer_auth(&ws.admin_token)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("csv");
    assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
    assert!(csv.contains("'@SUM(A1)"), "{csv}");
    assert!(!csv.contains(",=") && !csv.contains(",@"), "{csv}");
}

#[tokio::test]
async fn a_short_signing_secret_is_refused_at_start() {
    let (url, _dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.jwt_secret = Some("too-short".to_owned());
    let started = casefile::spawn(config, "127.0.0.1:0".parse().expect("address")).await;
    let Err(err) = started else {
        panic!("a 9-byte secret must not start a server");
    };
    assert!(err.to_string().contains("32"), "{err}");
}

#[tokio::test]
async fn a_client_message_id_belongs_to_its_author() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let send = "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b, clientMessageId: \"k-1\" }) { id body author } }";
    let mine = app
        .data(
            Some(&visitor),
            send,
            json!({ "c": conversation, "b": "my secret order number 42" }),
        )
        .await;

    // An agent replaying the visitor's key gets a conflict, never the visitor's message.
    let other = app
        .gql(
            Some(&ws.admin_token),
            send,
            json!({ "c": conversation, "b": "probe" }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&other), "CONFLICT", "{other}");
    assert_eq!(
        other["errors"][0]["extensions"]["reason"],
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert!(!other.to_string().contains("order number"), "{other}");

    // The author reusing the key for another body: a conflict too.
    let changed = app
        .gql(
            Some(&visitor),
            send,
            json!({ "c": conversation, "b": "something else" }),
        )
        .await;
    assert_eq!(
        changed["errors"][0]["extensions"]["reason"],
        "IDEMPOTENCY_KEY_REUSED"
    );

    // A true retry still answers the stored message.
    let retry = app
        .data(
            Some(&visitor),
            send,
            json!({ "c": conversation, "b": "my secret order number 42" }),
        )
        .await;
    assert_eq!(retry, mine);
}

#[tokio::test]
async fn only_the_holder_its_waiting_team_and_admins_transfer_a_handoff() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (member_id, member) = app.agent(&ws, "Mia", "AGENT").await;
    let (_, outsider) = app.agent(&ws, "Otto", "AGENT").await;
    let team = |name: &'static str, members: Vec<String>| {
        let app = &app;
        let token = ws.admin_token.clone();
        async move {
            app.data(
                Some(&token),
                "mutation($n: String!, $m: [ID!]!) { createTeam(input: { name: $n, memberIds: $m }) { id } }",
                json!({ "n": name, "m": members }),
            )
            .await["createTeam"]["id"]
                .as_str()
                .expect("team")
                .to_owned()
        }
    };
    let billing = team("Billing", vec![member_id.clone()]).await;
    let support = team("Support", vec![]).await;
    let (conversation, _) = app.start_conversation(&ws, Some("hi")).await;
    let handoff = app.request_human(&ws.admin_token, &conversation).await;
    let transfer = "mutation($h: ID!, $t: ID!) { transferHandoff(id: $h, teamId: $t) { status team { name } } }";
    app.data(
        Some(&ws.admin_token),
        transfer,
        json!({ "h": handoff, "t": billing }),
    )
    .await;

    // Waiting for Billing: an agent outside it may not move it; a member may.
    let refused = app
        .gql(
            Some(&outsider),
            transfer,
            json!({ "h": handoff, "t": support }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&refused), "FORBIDDEN");
    let moved = app
        .data(
            Some(&member),
            transfer,
            json!({ "h": handoff, "t": billing }),
        )
        .await;
    assert_eq!(moved["transferHandoff"]["team"]["name"], "Billing");

    // Accepted by the member: now theirs (and admins') to pass on.
    app.data(
        Some(&member),
        "mutation($h: ID!) { acceptHandoff(id: $h) { id } }",
        json!({ "h": handoff }),
    )
    .await;
    let refused = app
        .gql(
            Some(&outsider),
            transfer,
            json!({ "h": handoff, "t": support }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&refused), "FORBIDDEN");
    let passed = app
        .data(
            Some(&member),
            transfer,
            json!({ "h": handoff, "t": support }),
        )
        .await;
    assert_eq!(passed["transferHandoff"]["team"]["name"], "Support");
}
