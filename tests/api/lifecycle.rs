//! Revocation and the agent lifecycle: access that ends, ends everywhere at once.

use serde_json::json;

use crate::helpers::{TestApp, error_code, fresh_database, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const VIEWER: &str = "{ viewer { id role } }";
const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }";

/// The email of agent `id`.
async fn email(app: &TestApp, admin: &str, id: &str) -> String {
    app.data(
        Some(admin),
        "query($id: ID!) { node(id: $id) { ... on Agent { email } } }",
        json!({ "id": id }),
    )
    .await["node"]["email"]
        .as_str()
        .expect("email")
        .to_owned()
}

#[tokio::test]
async fn a_deactivated_agent_is_out_everywhere_and_its_conversations_go_back_to_the_queue() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    let handoff = app.request_human(&ws.admin_token, &conversation).await;
    app.data(
        Some(&agent),
        "mutation($h: ID!) { acceptHandoff(id: $h) { id } }",
        json!({ "h": handoff }),
    )
    .await;
    let mut socket = WsClient::ready(&app, TRANSPORT_WS, &agent).await;
    socket
        .subscribe("e", "subscription { escalations { id } }", json!({}))
        .await;
    socket.ping_pong().await;

    let off = app
        .data(
            Some(&ws.admin_token),
            "mutation($a: ID!) { deactivateAgent(agentId: $a) { active } }",
            json!({ "a": agent_id }),
        )
        .await;
    assert_eq!(off["deactivateAgent"]["active"], false);

    assert_eq!(
        error_code(&app.gql(Some(&agent), VIEWER, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(socket.closed().await, 4403);
    let address = email(&app, &ws.admin_token, &agent_id).await;
    let again = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": address, "p": "agent-password" }),
        )
        .await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
    let state = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!, $h: ID!) { conversation(id: $c) { status assignee { id } } handoff(id: $h) { status } }",
            json!({ "c": conversation, "h": handoff }),
        )
        .await;
    assert_eq!(state["conversation"]["status"], "QUEUED");
    assert!(state["conversation"]["assignee"].is_null());
    assert_eq!(state["handoff"]["status"], "REQUESTED");

    // Back in: signing in works; the tokens from before stay ended.
    app.data(
        Some(&ws.admin_token),
        "mutation($a: ID!) { reactivateAgent(agentId: $a) { active } }",
        json!({ "a": agent_id }),
    )
    .await;
    assert_eq!(
        error_code(&app.gql(Some(&agent), VIEWER, json!({})).await),
        "UNAUTHENTICATED"
    );
    let fresh = app
        .data(
            None,
            SIGN_IN,
            json!({ "e": address, "p": "agent-password" }),
        )
        .await["signIn"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    app.data(Some(&fresh), VIEWER, json!({})).await;
}

#[tokio::test]
async fn a_role_change_applies_from_the_next_request() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let create = "mutation { createTeam(input: { name: \"Night shift\" }) { id } }";
    assert_eq!(
        error_code(&app.gql(Some(&agent), create, json!({})).await),
        "FORBIDDEN"
    );
    let updated = app
        .data(
            Some(&ws.admin_token),
            "mutation($a: ID!) { updateAgent(input: { agentId: $a, role: ADMIN, name: \"Alex Admin\" }) { role name } }",
            json!({ "a": agent_id }),
        )
        .await;
    assert_eq!(updated["updateAgent"]["role"], "ADMIN");
    assert_eq!(
        app.data(Some(&agent), VIEWER, json!({})).await["viewer"]["role"],
        "ADMIN"
    );
    app.data(Some(&agent), create, json!({})).await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_token_and_socket() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (_, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let mut socket = WsClient::ready(&app, TRANSPORT_WS, &agent).await;
    socket
        .subscribe("e", "subscription { escalations { id } }", json!({}))
        .await;
    socket.ping_pong().await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token } }";
    let wrong = app
        .gql(
            Some(&agent),
            change,
            json!({ "c": "not it", "n": "a new password" }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    let changed = app
        .data(
            Some(&agent),
            change,
            json!({ "c": "agent-password", "n": "a new password" }),
        )
        .await;
    let new_token = changed["changePassword"]["token"].as_str().expect("token");
    assert_eq!(
        error_code(&app.gql(Some(&agent), VIEWER, json!({})).await),
        "UNAUTHENTICATED"
    );
    app.data(Some(new_token), VIEWER, json!({})).await;
    assert_eq!(socket.closed().await, 4403);
}

#[tokio::test]
async fn the_last_active_owner_stays() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    for (query, vars) in [
        (
            "mutation($a: ID!) { deactivateAgent(agentId: $a) { id } }",
            json!({ "a": ws.admin_id }),
        ),
        (
            "mutation($a: ID!) { updateAgent(input: { agentId: $a, role: ADMIN }) { id } }",
            json!({ "a": ws.admin_id }),
        ),
    ] {
        let body = app.gql(Some(&ws.admin_token), query, vars).await;
        assert_eq!(error_code(&body), "CONFLICT", "{query}");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "LAST_OWNER");
    }
    // With a second owner, the first may step down.
    let (_, _) = app.agent(&ws, "Olive", "OWNER").await;
    app.data(
        Some(&ws.admin_token),
        "mutation($a: ID!) { updateAgent(input: { agentId: $a, role: ADMIN }) { role } }",
        json!({ "a": ws.admin_id }),
    )
    .await;
}

#[tokio::test]
async fn a_revoked_key_loses_its_sockets_on_every_process() {
    // On PostgreSQL two processes share the database: the socket is on one, the
    // revocation on the other. On SQLite, one process.
    let (url, dir) = fresh_database().await;
    let shared = std::env::var("CASEFILE_TEST_DATABASE_URL").is_ok();
    let a = TestApp::spawn_with(test_config(&url), if shared { None } else { dir }).await;
    let b = if shared {
        Some(TestApp::spawn_with(test_config(&url), None).await)
    } else {
        None
    };
    let ws = a.workspace("Acme").await;
    let key = a
        .data(
            Some(&ws.admin_token),
            "mutation { createApiKey(name: \"feed\", scopes: [CONVERSATIONS_READ]) { secret apiKey { id } } }",
            json!({}),
        )
        .await["createApiKey"]
        .clone();
    let secret = key["secret"].as_str().expect("secret");
    let mut socket = WsClient::ready(b.as_ref().unwrap_or(&a), TRANSPORT_WS, secret).await;
    socket
        .subscribe("i", "subscription { inbox { kind } }", json!({}))
        .await;
    socket.ping_pong().await;
    a.data(
        Some(&ws.admin_token),
        "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
        json!({ "k": key["apiKey"]["id"] }),
    )
    .await;
    assert_eq!(socket.closed().await, 4403);
    assert_eq!(
        error_code(
            &a.gql(Some(secret), "{ conversations { totalCount } }", json!({}))
                .await
        ),
        "UNAUTHENTICATED"
    );
}
