//! Lead capture, validated against the workspace's lead fields.

use serde_json::json;

use crate::helpers::{TestApp, Workspace, error_code};

async fn define_fields(app: &TestApp, ws: &Workspace) {
    for input in [
        json!({ "key": "cms", "label": "CMS", "type": "SELECT", "options": ["WordPress", "Drupal", "Ghost"], "required": true }),
        json!({ "key": "cmsVersion", "label": "CMS version", "type": "NUMBER" }),
        json!({ "key": "pageUrl", "label": "Page", "type": "URL" }),
        json!({ "key": "newsletter", "label": "Newsletter", "type": "BOOLEAN" }),
    ] {
        app.data(
            Some(&ws.admin_token),
            "mutation($i: DefineLeadFieldInput!) { defineLeadField(input: $i) { key } }",
            json!({ "i": input }),
        )
        .await;
    }
}

const CAPTURE: &str = "mutation($c: ID!, $i: LeadInput!) { captureLead(conversationId: $c, input: $i) { id name email company fields } }";

#[tokio::test]
async fn visitor_captures_a_valid_lead() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    define_fields(&app, &ws).await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;

    let lead = app
        .data(
            Some(&visitor),
            CAPTURE,
            json!({ "c": conversation, "i": { "name": "Kim", "email": "Kim@Example.com", "company": "Acme, Inc.", "fields": { "cms": "Drupal", "cmsVersion": "10.2", "newsletter": true } } }),
        )
        .await["captureLead"]
        .clone();
    assert_eq!(lead["email"], "kim@example.com");
    assert_eq!(
        lead["fields"],
        json!({ "cms": "Drupal", "cmsVersion": 10.2, "newsletter": true })
    );

    let seen = app
        .data(
            Some(&ws.admin_token),
            "query($id: ID!) { conversation(id: $id) { lead { id company fields } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(seen["conversation"]["lead"]["id"], lead["id"]);
    assert_eq!(seen["conversation"]["lead"]["company"], "Acme, Inc.");
    let own = app
        .data(
            Some(&visitor),
            "query($id: ID!) { lead(id: $id) { name } }",
            json!({ "id": lead["id"] }),
        )
        .await;
    assert_eq!(own["lead"]["name"], "Kim");
    let leads = app
        .data(
            Some(&ws.admin_token),
            "{ leads(filter: { query: \"acme\" }) { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(leads["leads"]["totalCount"], 1);
}

#[tokio::test]
async fn invalid_lead_fields_are_bad_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    define_fields(&app, &ws).await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    let cases = [
        (json!({ "fields": { "cms": "Joomla" } }), "fields.cms"),
        (
            json!({ "fields": { "cms": "Ghost", "cmsVersion": "ten" } }),
            "fields.cmsVersion",
        ),
        (
            json!({ "fields": { "cms": "Ghost", "pageUrl": "not a url" } }),
            "fields.pageUrl",
        ),
        (
            json!({ "fields": { "cms": "Ghost", "newsletter": "maybe" } }),
            "fields.newsletter",
        ),
        (
            json!({ "fields": { "cms": "Ghost", "shoeSize": 42 } }),
            "fields.shoeSize",
        ),
        (
            json!({ "email": "not-an-email", "fields": { "cms": "Ghost" } }),
            "email",
        ),
        (json!({ "name": "Kim" }), "fields.cms"),
    ];
    for (input, field) in cases {
        let body = app
            .gql(
                Some(&visitor),
                CAPTURE,
                json!({ "c": conversation, "i": input }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{input}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{body}"
        );
    }
    let lead = app
        .data(
            Some(&ws.admin_token),
            "query($id: ID!) { conversation(id: $id) { lead { id } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(
        lead["conversation"]["lead"],
        json!(null),
        "nothing was stored"
    );
}

#[tokio::test]
async fn visitor_sees_lead_fields_to_build_the_form() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    define_fields(&app, &ws).await;
    let (_, visitor) = app.start_conversation(&ws, None).await;
    let fields = app
        .data(
            Some(&visitor),
            "{ leadFields { key type options required } }",
            json!({}),
        )
        .await;
    assert_eq!(
        fields["leadFields"][0],
        json!({ "key": "cms", "type": "SELECT", "options": ["WordPress", "Drupal", "Ghost"], "required": true })
    );
}
