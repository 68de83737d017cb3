//! Conversations and messages through the API, as the widget and the inbox use them.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

#[tokio::test]
async fn visitor_and_agent_exchange_messages_in_seq_order() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;

    let reply = app
        .send(&ws.admin_token, &conversation, "Use the Schedule button.")
        .await;
    assert_eq!(
        (reply["seq"].as_i64(), reply["author"].as_str()),
        (Some(3), Some("AGENT")),
        "after the message saying the agent joined (a public reply takes the chat from the AI)"
    );
    let follow_up = app.send(&visitor, &conversation, "Thanks!").await;
    assert_eq!(
        (follow_up["seq"].as_i64(), follow_up["author"].as_str()),
        (Some(4), Some("VISITOR"))
    );

    let read = app
        .data(
            Some(&visitor),
            "query($id: ID!) { conversation(id: $id) { status context lastMessage { seq } messages { edges { node { seq author body agent { name } } } } } }",
            json!({ "id": conversation }),
        )
        .await;
    let conv = &read["conversation"];
    assert_eq!(conv["status"], "HUMAN");
    assert_eq!(conv["context"]["pageUrl"], "https://example.com/docs");
    assert_eq!(conv["lastMessage"]["seq"], 4);
    let seqs: Vec<i64> = conv["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let agent_name = conv["messages"]["edges"][2]["node"]["agent"]["name"].as_str();
    assert!(
        agent_name.is_some_and(|name| name.starts_with("owner-")),
        "the owner's name, from the email"
    );
}

#[tokio::test]
async fn retried_send_with_same_client_message_id_stores_nothing_new() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let send = "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b, clientMessageId: \"m-1\" }) { id seq body } }";

    let first = app
        .data(
            Some(&visitor),
            send,
            json!({ "c": conversation, "b": "first try" }),
        )
        .await;
    let retry = app
        .data(
            Some(&visitor),
            send,
            json!({ "c": conversation, "b": "first try" }),
        )
        .await;
    assert_eq!(first, retry);
    let next = app.send(&visitor, &conversation, "another").await;
    assert_eq!(next["seq"], 2, "the retry used no seq");

    let count = app
        .data(
            Some(&visitor),
            "query($id: ID!) { conversation(id: $id) { messages { totalCount } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(count["conversation"]["messages"]["totalCount"], 2);
}

#[tokio::test]
async fn oversized_message_body_is_refused_not_truncated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let body = app
        .gql(
            Some(&visitor),
            "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { id } }",
            json!({ "c": conversation, "b": "x".repeat(10_001) }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "body");
    let empty = app
        .data(
            Some(&visitor),
            "query($id: ID!) { conversation(id: $id) { lastSeq } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(empty["conversation"]["lastSeq"], 0);
}

fn ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn conversations_paginate_with_cursors_that_survive_inserts() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut started = Vec::new();
    for i in 0..25 {
        started.push(app.start_conversation(&ws, Some(&format!("q{i}"))).await.0);
    }
    let query = "query($after: String) { conversations(first: 10, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }";

    let first = app
        .data(Some(&ws.admin_token), query, json!({ "after": null }))
        .await["conversations"]
        .clone();
    assert_eq!(first["totalCount"], 25);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let expected_first: Vec<String> = started.iter().rev().take(10).cloned().collect();
    assert_eq!(ids(&first), expected_first, "newest first");

    // New conversations arrive while the client pages.
    for i in 0..3 {
        app.start_conversation(&ws, Some(&format!("late {i}")))
            .await;
    }
    let mut seen = ids(&first);
    let mut cursor = first["pageInfo"]["endCursor"].clone();
    loop {
        let page = app
            .data(Some(&ws.admin_token), query, json!({ "after": cursor }))
            .await["conversations"]
            .clone();
        seen.extend(ids(&page));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        cursor = page["pageInfo"]["endCursor"].clone();
    }
    let mut expected: Vec<String> = started.clone();
    expected.reverse();
    assert_eq!(
        seen, expected,
        "every conversation once, none of the late ones, in order"
    );
}

#[tokio::test]
async fn foreign_cursor_is_bad_input() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let body = app
        .gql(
            Some(&ws.admin_token),
            "{ conversations(after: \"bm9wZQ\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn conversations_filter_by_status_assignee_and_tag() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let tag = app
        .data(Some(&ws.admin_token), "mutation { createTag(input: { label: \"Billing\", escalate: true }) { id slug escalate } }", json!({}))
        .await["createTag"]
        .clone();
    assert_eq!(tag["slug"], "billing");
    let (assigned, _) = app.start_conversation(&ws, Some("a")).await;
    let (tagged, _) = app.start_conversation(&ws, Some("b")).await;
    let (resolved, _) = app.start_conversation(&ws, Some("c")).await;
    // The first messages are handled (tagged, the policy asked) before the agent
    // tags: an escalating tag found by that handling would hand the chat off.
    app.settle().await;
    app.data(Some(&agent), "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { assignee { id } } }", json!({ "c": assigned, "a": agent_id })).await;
    let tagged_view = app
        .data(Some(&agent), "mutation($c: ID!, $t: ID!) { tagConversation(conversationId: $c, tagId: $t) { tags { source tag { slug } appliedBy { name } } } }", json!({ "c": tagged, "t": tag["id"] }))
        .await;
    assert_eq!(tagged_view["tagConversation"]["tags"][0]["source"], "AGENT");
    assert_eq!(
        tagged_view["tagConversation"]["tags"][0]["appliedBy"]["name"],
        "Alex"
    );
    let resolved_view = app
        .data(
            Some(&agent),
            "mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }",
            json!({ "c": resolved }),
        )
        .await;
    assert_eq!(resolved_view["resolveConversation"]["status"], "RESOLVED");

    let list = |filter: Value| {
        let app = &app;
        let token = agent.clone();
        async move {
            let data = app
                .data(Some(&token), "query($f: ConversationFilterInput) { conversations(filter: $f) { edges { node { id } } } }", json!({ "f": filter }))
                .await;
            ids(&data["conversations"])
        }
    };
    assert_eq!(
        list(json!({ "assigneeId": agent_id })).await,
        vec![assigned.clone()]
    );
    assert_eq!(
        list(json!({ "tagIds": [tag["id"]] })).await,
        vec![tagged.clone()]
    );
    assert_eq!(
        list(json!({ "status": "RESOLVED" })).await,
        vec![resolved.clone()]
    );
    assert_eq!(
        list(json!({ "status": ["AI"], "unassigned": true })).await,
        vec![tagged.clone()]
    );

    app.data(
        Some(&agent),
        "mutation($c: ID!, $t: ID!) { untagConversation(conversationId: $c, tagId: $t) { id } }",
        json!({ "c": tagged, "t": tag["id"] }),
    )
    .await;
    assert!(list(json!({ "tagIds": [tag["id"]] })).await.is_empty());
}

#[tokio::test]
async fn visitor_message_reopens_a_resolved_conversation() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }",
        json!({ "c": conversation }),
    )
    .await;
    app.send(&visitor, &conversation, "one more question").await;
    let read = app
        .data(
            Some(&visitor),
            "query($id: ID!) { conversation(id: $id) { status } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(read["conversation"]["status"], "AI");
}

#[tokio::test]
async fn start_conversation_payload_is_readable_by_the_new_visitor() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let data = app
        .data(
            None,
            "mutation($k: String!) { startConversation(input: { widgetKey: $k, message: \"hello\", lead: { name: \"Kim\" } }) { visitorId conversation { visitorId lead { name } messages { edges { node { seq body } } } } visitorToken } }",
            json!({ "k": ws.widget_key }),
        )
        .await;
    let conv = &data["startConversation"]["conversation"];
    assert_eq!(conv["visitorId"], data["startConversation"]["visitorId"]);
    assert_eq!(conv["lead"]["name"], "Kim");
    assert_eq!(conv["messages"]["edges"][0]["node"]["body"], "hello");
}

#[tokio::test]
async fn duplicate_tag_slug_is_a_conflict() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let create = "mutation { createTag(input: { label: \"Versioning\" }) { id } }";
    app.data(Some(&ws.admin_token), create, json!({})).await;
    let body = app.gql(Some(&ws.admin_token), create, json!({})).await;
    assert_eq!(error_code(&body), "CONFLICT");
}

/// Inbox rows resolve field after field (`graphql::inline`), `conversation(id:)` the
/// way async-graphql does: the same selection answers the same either way, with
/// aliases, fragments on the type and on an interface, `__typename`, a key selected
/// twice (merged), and a failing field reported while its neighbours resolve.
#[tokio::test]
async fn inbox_rows_answer_as_the_conversation_itself_does() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let started = app
        .data(
            None,
            "mutation($input: StartConversationInput!) { startConversation(input: $input) { conversation { id } visitorToken } }",
            json!({ "input": { "widgetKey": ws.widget_key, "message": "Why was I charged twice?", "lead": { "name": "Dana", "email": "dana@example.com" } } }),
        )
        .await;
    let conversation = started["startConversation"]["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let visitor = started["startConversation"]["visitorToken"]
        .as_str()
        .expect("token");
    app.settle().await;
    app.request_human(visitor, &conversation).await;
    let tag = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTag(input: { label: \"Billing\" }) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .clone();
    app.data(
        Some(&agent),
        "mutation($c: ID!, $t: ID!) { tagConversation(conversationId: $c, tagId: $t) { id } }",
        json!({ "c": conversation, "t": tag }),
    )
    .await;
    app.data(
        Some(&agent),
        "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } }",
        json!({ "c": conversation, "a": agent_id }),
    )
    .await;

    let row = "fragment Row on Conversation { __typename id status lead { name } lead { email } \
               who: assignee { name __typename } lastMessage { seq author body } \
               tags { tag { label } source } openHandoff { reason status } \
               ... on Node { nodeId: id } ... { visitorId } broken: messages(first: 0) { totalCount } }";
    let listed = app
        .gql(
            Some(&agent),
            &format!("{{ conversations(first: 5) {{ __typename totalCount pageInfo {{ endCursor }} edges {{ __typename cursor node {{ ...Row }} }} more: edges {{ cursor }} }} }} {row}"),
            json!({}),
        )
        .await;
    let single = app
        .gql(
            Some(&agent),
            &format!("query($id: ID!) {{ conversation(id: $id) {{ ...Row }} }} {row}"),
            json!({ "id": conversation }),
        )
        .await;

    let page = &listed["data"]["conversations"];
    assert_eq!(page["__typename"], "ConversationConnection");
    assert_eq!(page["totalCount"], 1);
    assert_eq!(page["edges"][0]["__typename"], "ConversationEdge");
    assert_eq!(page["edges"][0]["cursor"], page["pageInfo"]["endCursor"]);
    assert_eq!(
        page["more"],
        json!([{ "cursor": page["pageInfo"]["endCursor"] }])
    );
    let node = &page["edges"][0]["node"];
    assert_eq!(node, &single["data"]["conversation"]);
    assert_eq!(node["__typename"], "Conversation");
    assert_eq!(node["nodeId"], conversation.as_str());
    assert_eq!(
        (&node["lead"]["name"], &node["lead"]["email"]),
        (&json!("Dana"), &json!("dana@example.com"))
    );
    assert_eq!(
        node["who"],
        json!({ "name": "Alex", "__typename": "Agent" })
    );
    assert_eq!(node["tags"][0]["tag"]["label"], "Billing");
    assert_eq!(node["openHandoff"]["reason"], "VISITOR_REQUESTED");
    assert!(node["visitorId"].is_string());
    assert!(
        node.get("broken").is_none_or(Value::is_null),
        "a failing field has no value: {node}"
    );
    for (body, path) in [
        (
            &listed,
            json!(["conversations", "edges", 0, "node", "broken"]),
        ),
        (&single, json!(["conversation", "broken"])),
    ] {
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{body:#}");
        assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(errors[0]["path"], path);
    }
}
