//! Who a visitor is: a visitor id is not a credential.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const START: &str = "mutation($input: StartConversationInput!) { startConversation(input: $input) { visitorId visitorToken conversation { id visitorId lead { name email } } } }";

async fn start(app: &TestApp, token: Option<&str>, input: Value) -> Value {
    app.data(token, START, json!({ "input": input })).await["startConversation"].clone()
}

#[tokio::test]
async fn a_new_visitor_gets_a_random_visitor_id() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let first = start(&app, None, json!({ "widgetKey": ws.widget_key })).await;
    let second = start(&app, None, json!({ "widgetKey": ws.widget_key })).await;
    let id = first["visitorId"].as_str().expect("visitor id");
    assert!(
        id.starts_with("vis_") && id.len() >= 4 + 22,
        "128 random bits: {id}"
    );
    assert_ne!(first["visitorId"], second["visitorId"]);
    assert_eq!(first["conversation"]["visitorId"], first["visitorId"]);
}

#[tokio::test]
async fn someone_elses_visitor_id_does_not_reach_their_lead() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let victim = start(
        &app,
        None,
        json!({ "widgetKey": ws.widget_key, "lead": { "name": "Vera Victim", "email": "vera@example.com" } }),
    )
    .await;
    let victim_id = victim["visitorId"].as_str().expect("id");

    // The attacker names the victim's id, with no token or with a token of their own.
    let (_, attacker_token) = app.start_conversation(&ws, None).await;
    for token in [None, Some(attacker_token.as_str())] {
        let stolen = start(
            &app,
            token,
            json!({ "widgetKey": ws.widget_key, "visitorId": victim_id }),
        )
        .await;
        assert_ne!(stolen["visitorId"], victim_id, "a new visitor instead");
        assert!(
            stolen["conversation"]["lead"].is_null(),
            "no lead shown: {stolen}"
        );
        let again = app
            .data(
                Some(stolen["visitorToken"].as_str().expect("token")),
                "query($c: ID!) { conversation(id: $c) { lead { name email } } }",
                json!({ "c": stolen["conversation"]["id"] }),
            )
            .await;
        assert!(again["conversation"]["lead"].is_null(), "{again}");
    }

    // The victim, proving who they are with their token, keeps their lead.
    let token = victim["visitorToken"].as_str().expect("token");
    let returning = start(
        &app,
        Some(token),
        json!({ "widgetKey": ws.widget_key, "visitorId": victim_id }),
    )
    .await;
    assert_eq!(returning["visitorId"], victim_id);
    assert_eq!(
        returning["conversation"]["lead"]["email"],
        "vera@example.com"
    );
}

#[tokio::test]
async fn a_visitor_token_of_another_workspace_proves_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.workspace("Acme").await;
    let other = app.workspace("Other").await;
    let there = start(
        &app,
        None,
        json!({ "widgetKey": other.widget_key, "lead": { "name": "Olga" } }),
    )
    .await;
    let token = there["visitorToken"].as_str().expect("token");
    let here = start(
        &app,
        Some(token),
        json!({ "widgetKey": acme.widget_key, "visitorId": there["visitorId"] }),
    )
    .await;
    assert_ne!(here["visitorId"], there["visitorId"]);
    assert!(here["conversation"]["lead"].is_null());
}

/// An identity token as a site's backend would sign it.
fn identity(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signed")
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

async fn rotate(app: &TestApp, token: &str) -> String {
    app.data(Some(token), "mutation { rotateIdentitySecret }", json!({}))
        .await["rotateIdentitySecret"]
        .as_str()
        .expect("secret")
        .to_owned()
}

const VERIFIED: &str = "mutation($input: StartConversationInput!) { startConversation(input: $input) { visitorId visitorToken conversation { id lead { id name email verified } } } }";

#[tokio::test]
async fn a_signed_identity_binds_the_lead_across_devices() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let secret = rotate(&app, &ws.admin_token).await;
    let token = identity(
        &secret,
        json!({ "sub": "user-7", "email": "kim@example.com", "name": "Kim", "exp": in_an_hour() }),
    );
    // The widget also types a different email: the signed one wins.
    let laptop = app
        .data(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key, "identityToken": token, "lead": { "email": "typo@example.com" } } }),
        )
        .await["startConversation"]
        .clone();
    let lead = &laptop["conversation"]["lead"];
    assert_eq!(lead["email"], "kim@example.com");
    assert_eq!(lead["verified"], true);
    // Another device, no visitor token: the same lead.
    let phone = app
        .data(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key, "identityToken": token } }),
        )
        .await["startConversation"]
        .clone();
    assert_eq!(phone["conversation"]["lead"]["id"], lead["id"]);
    assert_eq!(phone["visitorId"], laptop["visitorId"]);
    // The visitor cannot overwrite what the site verified.
    let overwrite = app
        .gql(
            phone["visitorToken"].as_str(),
            "mutation($c: ID!) { captureLead(conversationId: $c, input: { email: \"mallory@example.com\" }) { email } }",
            json!({ "c": phone["conversation"]["id"] }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&overwrite), "FORBIDDEN");
    // An unverified visitor's lead says so.
    let anonymous = app
        .data(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key, "lead": { "name": "Anon" } } }),
        )
        .await;
    assert_eq!(
        anonymous["startConversation"]["conversation"]["lead"]["verified"],
        false
    );
}

#[tokio::test]
async fn a_bad_or_expired_identity_is_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let secret = rotate(&app, &ws.admin_token).await;
    for token in [
        identity(
            "not-the-secret",
            json!({ "sub": "user-7", "exp": in_an_hour() }),
        ),
        identity(&secret, json!({ "sub": "user-7", "exp": 1_000_000 })),
        identity(&secret, json!({ "exp": in_an_hour() })),
        "garbage".to_owned(),
    ] {
        let body = app
            .gql(
                None,
                VERIFIED,
                json!({ "input": { "widgetKey": ws.widget_key, "identityToken": token } }),
            )
            .await;
        assert_eq!(
            crate::helpers::error_code(&body),
            "UNAUTHENTICATED",
            "{body}"
        );
    }
    // A rotated secret stops verifying the tokens of the old one.
    let old = identity(&secret, json!({ "sub": "user-7", "exp": in_an_hour() }));
    rotate(&app, &ws.admin_token).await;
    let body = app
        .gql(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key, "identityToken": old } }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_workspace_may_require_verified_visitors() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let secret = rotate(&app, &ws.admin_token).await;
    app.data(
        Some(&ws.admin_token),
        "mutation { updateWorkspace(input: { requireVerifiedIdentity: true }) { requireVerifiedIdentity } }",
        json!({}),
    )
    .await;
    let refused = app
        .gql(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key } }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&refused), "UNAUTHENTICATED");
    let token = identity(&secret, json!({ "sub": "user-9", "exp": in_an_hour() }));
    let accepted = app
        .data(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": ws.widget_key, "identityToken": token } }),
        )
        .await;
    assert_eq!(
        accepted["startConversation"]["conversation"]["lead"]["verified"],
        true
    );
    // Only admins make the secret.
    let (_, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let body = app
        .gql(Some(&agent), "mutation { rotateIdentitySecret }", json!({}))
        .await;
    assert_eq!(crate::helpers::error_code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn the_demo_site_signs_its_user_for_the_widget() {
    let app = TestApp::spawn().await;
    let demo = casefile::demo::seed(&app.running.state)
        .await
        .expect("seeded");
    let signed: Value = app
        .client
        .get(app.url("/demo/identity"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let token = signed["identityToken"].as_str().expect("a token");
    let started = app
        .data(
            None,
            VERIFIED,
            json!({ "input": { "widgetKey": demo.workspace.widget_key, "identityToken": token } }),
        )
        .await;
    let lead = &started["startConversation"]["conversation"]["lead"];
    assert_eq!(lead["name"], "Kim Lee");
    assert_eq!(lead["verified"], true);
}
