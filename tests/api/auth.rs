//! Tokens: every defect is UNAUTHENTICATED, every kind stays in its lane.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TEST_SECRET, TestApp, error_code};

fn forge(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token encodes")
}

fn agent_claims(app_ws: &str, agent: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": agent, "wid": app_ws, "role": "OWNER", "aud": "casefile:agent", "iat": now, "exp": now + exp_offset })
}

async fn viewer_code(app: &TestApp, token: &str) -> String {
    let body = app.gql(Some(token), "{ viewer { id } }", json!({})).await;
    error_code(&body).to_owned()
}

#[tokio::test]
async fn request_without_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let body = app.gql(None, "{ viewer { id } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn expired_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let token = forge(&agent_claims(&ws.id, &ws.admin_id, -60), TEST_SECRET);
    assert_eq!(viewer_code(&app, &token).await, "UNAUTHENTICATED");
    let fresh = forge(&agent_claims(&ws.id, &ws.admin_id, 600), TEST_SECRET);
    let body = app.gql(Some(&fresh), "{ viewer { id } }", json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["id"],
        ws.admin_id.as_str(),
        "a fresh forged token with the right key works"
    );
}

#[tokio::test]
async fn token_signed_with_another_key_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let token = forge(
        &agent_claims(&ws.id, &ws.admin_id, 600),
        "not-the-server-secret",
    );
    assert_eq!(viewer_code(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn unsigned_alg_none_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(agent_claims(&ws.id, &ws.admin_id, 600).to_string());
    assert_eq!(
        viewer_code(&app, &format!("{header}.{claims}.")).await,
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn algorithm_swapped_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &agent_claims(&ws.id, &ws.admin_id, 600),
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("token encodes");
    assert_eq!(viewer_code(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn malformed_token_is_unauthenticated_not_anonymous() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    // Even an operation that needs no token refuses a broken one.
    let body = app
        .gql(
            Some("not.a.token"),
            "mutation($k: String!) { startConversation(input: { widgetKey: $k }) { visitorToken } }",
            json!({ "k": ws.widget_key }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn string_expiry_is_not_treated_as_absent() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut claims = agent_claims(&ws.id, &ws.admin_id, 0);
    claims["exp"] = json!("9999999999");
    assert_eq!(
        viewer_code(&app, &forge(&claims, TEST_SECRET)).await,
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn visitor_token_is_not_accepted_where_an_agent_is_required() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (_, visitor) = app.start_conversation(&ws, Some("hi")).await;
    for query in [
        "{ viewer { id } }",
        "{ conversations { totalCount } }",
        "{ agents { id } }",
        "{ tags { id } }",
    ] {
        let body = app.gql(Some(&visitor), query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}");
    }
}

#[tokio::test]
async fn agents_cannot_manage_the_workspace() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (_, agent) = app.agent(&ws, "Sam", "AGENT").await;
    let attempts = [
        "mutation { createTag(input: { label: \"Billing\" }) { id } }",
        "mutation { createTeam(input: { name: \"Tier 2\" }) { id } }",
        "mutation { defineLeadField(input: { key: \"cms\", label: \"CMS\", type: TEXT }) { id } }",
        "mutation { createAgent(input: { email: \"x@example.com\", name: \"X\", password: \"password123\" }) { id } }",
    ];
    for mutation in attempts {
        let body = app.gql(Some(&agent), mutation, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{mutation}");
    }
}

#[tokio::test]
async fn admins_cannot_create_owners() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (_, admin) = app.agent(&ws, "Ada", "ADMIN").await;
    let body = app
        .gql(
            Some(&admin),
            "mutation { createAgent(input: { email: \"o@example.com\", name: \"O\", password: \"password123\", role: OWNER }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn unknown_widget_key_cannot_start_a_conversation() {
    let app = TestApp::spawn().await;
    let body = app
        .gql(
            None,
            "mutation { startConversation(input: { widgetKey: \"wk_nope\" }) { visitorToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}
