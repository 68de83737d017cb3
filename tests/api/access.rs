//! Isolation: visitors see only their own conversation and never internal notes;
//! nothing crosses workspaces, and what is elsewhere looks like what is nowhere.

use serde_json::json;

use crate::helpers::{TestApp, error_code};

#[tokio::test]
async fn visitor_cannot_read_another_conversation() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (mine, my_token) = app.start_conversation(&ws, Some("mine")).await;
    let (theirs, _) = app.start_conversation(&ws, Some("theirs")).await;

    let own = app
        .data(
            Some(&my_token),
            "query($id: ID!) { conversation(id: $id) { id } }",
            json!({ "id": mine }),
        )
        .await;
    assert_eq!(own["conversation"]["id"], mine.as_str());

    for query in [
        "query($id: ID!) { conversation(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ] {
        let body = app
            .gql(Some(&my_token), query, json!({ "id": theirs }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{query}");
    }
    let body = app
        .gql(
            Some(&my_token),
            "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"hello?\" }) { id } }",
            json!({ "c": theirs }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn agent_cannot_read_another_workspace_by_id_or_node() {
    let app = TestApp::spawn().await;
    let a = app.workspace("A").await;
    let b = app.workspace("B").await;
    let (b_conversation, _) = app.start_conversation(&b, Some("private to B")).await;
    let message_id = app
        .data(
            Some(&b.admin_token),
            "query($id: ID!) { conversation(id: $id) { messages { edges { node { id } } } } }",
            json!({ "id": b_conversation }),
        )
        .await["conversation"]["messages"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("message id")
        .to_owned();

    let by_id = app
        .gql(
            Some(&a.admin_token),
            "query($id: ID!) { conversation(id: $id) { id } }",
            json!({ "id": b_conversation }),
        )
        .await;
    assert_eq!(error_code(&by_id), "NOT_FOUND");
    for id in [&b_conversation, &message_id, &b.id, &b.admin_id] {
        let body = app
            .gql(
                Some(&a.admin_token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "node({id})");
        // Relay: `node` is nullable, so the rest of the answer stands.
        assert!(
            body["data"].is_object() && body["data"]["node"].is_null(),
            "{body}"
        );
    }
    let missing = app
        .gql(
            Some(&a.admin_token),
            "query { node(id: \"conv_01ARZ3NDEKTSV4RRFFQ69G5FAV\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        missing["errors"][0]["message"], by_id["errors"][0]["message"],
        "elsewhere looks like nowhere"
    );
    let listed = app
        .data(
            Some(&a.admin_token),
            "{ conversations { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["conversations"]["totalCount"], 0);
}

#[tokio::test]
async fn agent_cannot_assign_to_another_workspaces_agent() {
    let app = TestApp::spawn().await;
    let a = app.workspace("A").await;
    let b = app.workspace("B").await;
    let (conversation, _) = app.start_conversation(&a, Some("hi")).await;
    let body = app
        .gql(
            Some(&a.admin_token),
            "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } }",
            json!({ "c": conversation, "a": b.admin_id }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn visitor_cannot_read_internal_notes() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("my upload fails")).await;
    let note = app
        .data(
            Some(&ws.admin_token),
            "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"internal: check their plan\", internal: true }) { id seq internal } }",
            json!({ "c": conversation }),
        )
        .await["sendMessage"]
        .clone();
    assert_eq!(note["internal"], true);

    let seen = app
        .data(
            Some(&visitor),
            "query($id: ID!) { conversation(id: $id) { lastMessage { body } messages { totalCount edges { node { body internal } } } } }",
            json!({ "id": conversation }),
        )
        .await;
    let messages = &seen["conversation"]["messages"];
    assert_eq!(messages["totalCount"], 1);
    assert_eq!(messages["edges"][0]["node"]["body"], "my upload fails");
    assert_eq!(
        seen["conversation"]["lastMessage"]["body"],
        "my upload fails"
    );
    let by_node = app
        .gql(
            Some(&visitor),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": note["id"] }),
        )
        .await;
    assert_eq!(error_code(&by_node), "NOT_FOUND");

    let agent_view = app
        .data(Some(&ws.admin_token), "query($id: ID!) { conversation(id: $id) { lastMessage { body internal } messages { totalCount } } }", json!({ "id": conversation }))
        .await;
    assert_eq!(agent_view["conversation"]["messages"]["totalCount"], 2);
    assert_eq!(agent_view["conversation"]["lastMessage"]["internal"], true);
}

#[tokio::test]
async fn visitor_cannot_write_internal_notes() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let body = app
        .gql(
            Some(&visitor),
            "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"sneaky\", internal: true }) { id } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}
