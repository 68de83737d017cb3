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

const EXPORT: &str = "query($l: ID!) { exportContact(leadId: $l) }";

#[tokio::test]
async fn a_contacts_data_exports_as_one_document_of_what_the_visitor_could_see() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    define_fields(&app, &ws).await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("my cms breaks")).await;
    let lead = app
        .data(
            Some(&visitor),
            CAPTURE,
            json!({ "c": conversation, "i": { "name": "Kim", "email": "kim@example.com", "fields": { "cms": "Ghost" } } }),
        )
        .await["captureLead"]["id"]
        .as_str()
        .expect("lead")
        .to_owned();
    let send = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { id } }";
    app.data(
        Some(&ws.admin_token),
        send,
        json!({ "i": { "conversationId": conversation, "body": "internal: difficult customer", "internal": true } }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        send,
        json!({ "i": { "conversationId": conversation, "body": "Hi Kim, which Ghost version?" } }),
    )
    .await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!) { rateConversation(conversationId: $c, score: 4, comment: \"quick\") { score } }",
        json!({ "c": conversation }),
    )
    .await;

    let document = app
        .data(Some(&ws.admin_token), EXPORT, json!({ "l": lead }))
        .await["exportContact"]
        .clone();
    assert_eq!(document["format"], "casefile.contact.v1");
    assert_eq!(document["lead"]["email"], "kim@example.com");
    assert_eq!(
        document["lead"]["fields"]["cms"],
        json!({ "label": "CMS", "value": "Ghost" })
    );
    let conversations = document["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), 1);
    let shown = conversations[0]["messages"].to_string();
    assert!(shown.contains("my cms breaks"), "{shown}");
    assert!(shown.contains("which Ghost version?"), "{shown}");
    assert!(
        !shown.contains("difficult customer"),
        "an internal note: {shown}"
    );
    let reply = conversations[0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["author"] == "AGENT")
        .cloned()
        .expect("the agent's reply");
    assert!(reply["agent"].is_string(), "{reply}");
    assert_eq!(conversations[0]["rating"]["score"], 4);
    assert_eq!(conversations[0]["handoffs"][0]["reason"], "AGENT_TAKEOVER");
    assert!(
        !document.to_string().contains("\"note\""),
        "the team's notes are not the visitor's"
    );

    // Keys need both scopes; agents that do not manage the workspace, none.
    let both = app.api_key(&ws, "LEADS_READ, CONVERSATIONS_READ").await;
    let exported = app.data(Some(&both), EXPORT, json!({ "l": lead })).await;
    assert_eq!(exported["exportContact"]["lead"]["id"], lead.as_str());
    let one = app.api_key(&ws, "LEADS_READ").await;
    let (_, agent) = app.agent(&ws, "Sam", "AGENT").await;
    for token in [&one, &agent, &visitor] {
        let refused = app.gql(Some(token), EXPORT, json!({ "l": lead })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused:#}");
    }
    let other = app.workspace("Other").await;
    let hidden = app
        .gql(Some(&other.admin_token), EXPORT, json!({ "l": lead }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden:#}");
}
