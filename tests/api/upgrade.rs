//! Upgrading a database that holds data: the migrations of issue 15 (010 to 013),
//! the model's answers (014), measured knowledge (015), trust (016) and the
//! partial `clientMessageId` index (017) roll back and forward on a file written by
//! the server, and what they fill in for existing rows is right.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use crate::helpers::{TestApp, fresh_database, test_config};

/// Migrations that came with conversation endings, business hours, presence,
/// routing, the model's answers, measured knowledge, trust (erasures, retention,
/// the audit log) and the partial `clientMessageId` index.
const NEW: u32 = 8;

const SEND: &str =
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq body } }";

#[tokio::test]
async fn a_database_with_data_upgrades_and_keeps_who_resolved_what() {
    let (url, dir) = fresh_database().await;
    let config = test_config(&url);
    let app = TestApp::spawn_with(config.clone(), None).await;
    let ws = app.workspace("Acme").await;
    let (resolved, _) = app.start_conversation(&ws, Some("done")).await;
    let (open, visitor) = app.start_conversation(&ws, Some("still open")).await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": resolved }),
    )
    .await;
    app.request_human(&visitor, &open).await;
    let keyed = json!({ "input": { "conversationId": open, "body": "sent once", "clientMessageId": "k-1" } });
    let sent = app.data(Some(&visitor), SEND, keyed.clone()).await["sendMessage"].clone();
    let article = app
        .data(
            Some(&ws.admin_token),
            "mutation { upsertArticle(input: {title: \"Roles\", url: \"https://docs.test/roles\", body: \"Editors publish.\"}) { id updatedAt } }",
            json!({}),
        )
        .await["upsertArticle"]
        .clone();
    app.running.shutdown().await.expect("stops");

    // Back to the schema before them, as a server of the previous release left it.
    let db = Database::connect(url.as_str()).await.expect("connect");
    Migrator::down(&db, Some(NEW)).await.expect("roll back");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM conversations WHERE status = 'RESOLVED'",
        ))
        .await
        .expect("query")
        .expect("a row");
    let resolved_rows: i64 = row.try_get("", "n").expect("n");
    assert_eq!(resolved_rows, 1, "the data outlives the roll-back");
    let gone = db
        .execute_unprepared("SELECT resolved_by FROM conversations")
        .await;
    assert!(gone.is_err(), "the roll-back removed the column");
    db.close().await.expect("close");

    // The new server migrates it forward on start.
    let app = TestApp::spawn_with(config, dir).await;
    let settings = app
        .data(
            Some(&ws.admin_token),
            "{ workspace { answerEngine responderEnabled answerInstructions modelDailyTokenLimit retentionDays } }",
            json!({}),
        )
        .await;
    assert_eq!(
        settings["workspace"],
        json!({ "answerEngine": "OFF", "responderEnabled": false, "answerInstructions": "", "modelDailyTokenLimit": null, "retentionDays": null }),
        "a workspace whose responder was off keeps it off"
    );
    let read = "query($c: ID!) { conversation(id: $c) { status resolvedBy resolvedAt openHandoff { outOfHours offeredTo { id } slaDueAt } } }";
    let before = app
        .data(Some(&ws.admin_token), read, json!({ "c": resolved }))
        .await;
    assert_eq!(before["conversation"]["status"], "RESOLVED");
    assert_eq!(
        before["conversation"]["resolvedBy"], "AGENT",
        "only agents resolved conversations before"
    );
    assert!(before["conversation"]["resolvedAt"].is_string());
    let waiting = app
        .data(Some(&ws.admin_token), read, json!({ "c": open }))
        .await;
    assert_eq!(
        waiting["conversation"],
        json!({ "status": "QUEUED", "resolvedBy": null, "resolvedAt": null,
            "openHandoff": { "outOfHours": false, "offeredTo": null, "slaDueAt": null } })
    );
    // A send retried after the upgrade still finds its key (017 made its index
    // partial): the same message, and another body under it is a conflict.
    let retried = app.data(Some(&visitor), SEND, keyed).await;
    assert_eq!(
        retried["sendMessage"], sent,
        "the retry returns what was stored"
    );
    let reused = app
        .gql(
            Some(&visitor),
            SEND,
            json!({ "input": { "conversationId": open, "body": "another", "clientMessageId": "k-1" } }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&reused), "CONFLICT");
    // An article written before revisions began has its text as revision 1.
    let revisions = app
        .data(
            Some(&ws.admin_token),
            "query($id: ID!) { article(id: $id) { revisions { revision editedAt body editedBy { id } } } }",
            json!({ "id": article["id"] }),
        )
        .await;
    assert_eq!(
        revisions["article"]["revisions"],
        json!([{ "revision": 1, "editedAt": article["updatedAt"], "body": "Editors publish.", "editedBy": null }])
    );
}
