//! The inbox's statements read their order from an index: no documented list
//! (default order or `RECENTLY_UPDATED`, the whole workspace or one status, team,
//! tag or assignee, or the unassigned) sorts the workspace, so a page costs the
//! same at 250 conversations and at 100,000. Read from the plans the database gives
//! for the very statements the server runs: `EXPLAIN QUERY PLAN` on SQLite,
//! `EXPLAIN` on PostgreSQL (with sorting priced out, so a sort in the plan means no
//! index can give the order).

use casefile::domain::chat::lists::{
    Columns, ConversationFilter, Joined, Order, PageQuery, Position, count_statement,
    page_statement,
};
use casefile::entity::ConversationStatus;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::json;

use crate::helpers::TestApp;

/// The documented inbox filters, by name.
fn filters() -> Vec<(&'static str, ConversationFilter)> {
    let none = ConversationFilter::default();
    vec![
        ("everything", none.clone()),
        (
            "one status",
            ConversationFilter {
                statuses: vec![ConversationStatus::Human],
                ..none.clone()
            },
        ),
        (
            "open (two statuses)",
            ConversationFilter {
                statuses: vec![ConversationStatus::Queued, ConversationStatus::Human],
                ..none.clone()
            },
        ),
        (
            "team",
            ConversationFilter {
                team_id: Some("team_01JA0000000000000000000000".into()),
                ..none.clone()
            },
        ),
        (
            "tag",
            ConversationFilter {
                tag_ids: vec!["tag_01JA0000000000000000000000".into()],
                ..none.clone()
            },
        ),
        (
            "assignee",
            ConversationFilter {
                assignee_id: Some("agt_01JA0000000000000000000000".into()),
                ..none.clone()
            },
        ),
        (
            "unassigned",
            ConversationFilter {
                unassigned: true,
                ..none.clone()
            },
        ),
    ]
}

/// The plan of `statement`, one line per step.
async fn plan(app: &TestApp, statement: Statement) -> Vec<String> {
    let db = &app.running.state.db;
    match db.backend() {
        DbBackend::Sqlite => {
            let explain = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", statement.sql),
                statement.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows = db.reader.query_all_raw(explain).await.expect("explain");
            rows.iter()
                .map(|row| row.try_get::<String>("", "detail").expect("detail"))
                .collect()
        }
        _ => {
            let txn = db.writer.begin().await.expect("begin");
            txn.execute_unprepared("SET LOCAL enable_sort = off")
                .await
                .expect("set");
            let explain = Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("EXPLAIN {}", statement.sql),
                statement.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows = txn.query_all_raw(explain).await.expect("explain");
            rows.iter()
                .map(|row| row.try_get::<String>("", "QUERY PLAN").expect("plan"))
                .collect()
        }
    }
}

/// Why `plan` reads more than a page of the workspace, if it does.
fn sorts_or_scans(backend: DbBackend, plan: &[String]) -> Option<String> {
    let bad = |line: &String| match backend {
        DbBackend::Sqlite => {
            line.contains("TEMP B-TREE")
                || (line.starts_with("SCAN conversations") && !line.contains("INDEX"))
        }
        _ => line.contains("Sort") || line.contains("Seq Scan on conversations"),
    };
    plan.iter().find(|line| bad(line)).cloned()
}

#[tokio::test]
async fn no_inbox_statement_sorts_the_workspace() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Plans").await;
    let backend = app.running.state.db.backend();
    let after = Position {
        updated_at: 1_700_000_000_000,
        id: "conv_01JA0000000000000000000000".into(),
    };
    let inbox_row = Joined {
        last_message: true,
        lead: true,
        tags: true,
        open_handoff: true,
    };
    // Every column, and what `{ id status }` reads.
    let narrow = Columns {
        conversation: Some(vec!["id", "workspace_id", "updated_at", "status"]),
        last_message: Some(vec!["id", "seq"]),
        lead: Some(vec!["id"]),
        tags: Some(vec!["conversation_id", "tag_id"]),
        open_handoff: Some(vec!["id", "status"]),
    };
    let mut failures = Vec::new();
    for (name, filter) in filters() {
        for (order, columns) in [
            (Order::Newest, &Columns::default()),
            (Order::RecentlyUpdated, &Columns::default()),
            (Order::Newest, &narrow),
            (Order::RecentlyUpdated, &narrow),
        ] {
            for after in [None, Some(&after)] {
                let query = PageQuery {
                    workspace_id: &ws.id,
                    filter: &filter,
                    order,
                    after,
                    limit: 51,
                    joined: inbox_row,
                    columns,
                };
                let statement = page_statement(backend, &query);
                let steps = plan(&app, statement).await;
                if let Some(why) = sorts_or_scans(backend, &steps) {
                    failures.push(format!(
                        "{name}, {order:?}, after {}: {why}\n  {}",
                        after.is_some(),
                        steps.join("\n  ")
                    ));
                }
            }
        }
        let steps = plan(&app, count_statement(backend, &ws.id, &filter)).await;
        if let Some(why) = sorts_or_scans(backend, &steps) {
            failures.push(format!("count of {name}: {why}\n  {}", steps.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "inbox statements that sort or scan the workspace:\n{}",
        failures.join("\n")
    );
}

/// An inbox page reads what its document selects: `{ id }` alone reads no lead,
/// tag, handoff or message rows and no column it does not show; the `InboxRow`
/// fragment reads its relations but not the conversation's context, the lead's
/// custom fields, the message's sources, the tags' evidence or the handoff's note;
/// and a page that asks for those gets them whole.
#[tokio::test]
async fn a_page_reads_only_what_its_document_selects() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Selections").await;
    app.data(
        Some(&ws.admin_token),
        "mutation { createTag(input: { label: \"Refunds\", keywords: [\"refund\"] }) { id } }",
        json!({}),
    )
    .await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("I want a refund")).await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!) { captureLead(conversationId: $c, input: { name: \"Kim\", email: \"kim@example.org\", fields: {} }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    app.request_human(&visitor, &conversation).await;
    app.settle().await;
    let db = &app.running.state.db;
    let read = |query: &'static str| {
        let app = &app;
        let token = ws.admin_token.clone();
        async move {
            db.record_statements();
            let answer = app.data(Some(&token), query, json!({})).await;
            (answer, db.recorded().join("\n"))
        }
    };

    let (answer, sql) = read("{ conversations(first: 10) { nodes { id } } }").await;
    assert_eq!(answer["conversations"]["nodes"][0]["id"], conversation);
    for table in ["leads", "conversation_tags", "handoffs", "messages"] {
        assert!(
            !sql.contains(&format!("\"{table}\"")),
            "{table} read for {{ id }}:\n{sql}"
        );
    }
    for column in ["context", "visitor_id", "lead_id", "status"] {
        assert!(
            !sql.contains(&format!("\"{column}\"")),
            "{column} read for {{ id }}:\n{sql}"
        );
    }

    let (answer, sql) = read(
        "{ conversations(first: 10) { edges { node { ...Row } } } }
         fragment Row on Conversation {
           id status updatedAt lead { name email } lastMessage { seq author body createdAt }
           tags { tag { label } source } openHandoff { id reason status }
         }",
    )
    .await;
    let row = &answer["conversations"]["edges"][0]["node"];
    assert_eq!(
        row["lead"],
        json!({ "name": "Kim", "email": "kim@example.org" })
    );
    assert_eq!(row["status"], "QUEUED");
    assert_eq!(row["tags"][0]["tag"]["label"], "Refunds");
    assert_eq!(row["openHandoff"]["status"], "REQUESTED");
    assert!(row["lastMessage"]["body"].is_string(), "{row}");
    for table in ["leads", "conversation_tags", "handoffs", "messages"] {
        assert!(
            sql.contains(&format!("\"{table}\"")),
            "{table} not read:\n{sql}"
        );
    }
    for column in [
        "context",
        "fields",
        "sources",
        "evidence",
        "note",
        "trigger_seq",
    ] {
        assert!(
            !sql.contains(&format!("\"{column}\"")),
            "{column} read for InboxRow:\n{sql}"
        );
    }

    // Asked for, they come whole: what a narrow page read is never served to it.
    let (answer, _) = read(
        "{ conversations(first: 10) { nodes { context visitorId lead { fields verified } lastMessage { sources { title } internal } tags { evidence } openHandoff { note reason } } } }",
    )
    .await;
    let row = &answer["conversations"]["nodes"][0];
    assert_eq!(row["context"]["pageUrl"], "https://example.com/docs");
    assert!(
        row["visitorId"]
            .as_str()
            .is_some_and(|v| v.starts_with("vis_"))
    );
    assert_eq!(row["lead"], json!({ "fields": {}, "verified": false }));
    assert_eq!(row["lastMessage"]["internal"], false);
    assert_eq!(row["tags"][0]["evidence"], "refund");
    assert_eq!(row["openHandoff"]["reason"], "VISITOR_REQUESTED");
}
