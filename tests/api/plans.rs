//! The inbox's statements read their order from an index: no documented list
//! (default order or `RECENTLY_UPDATED`, the whole workspace or one status, team,
//! tag or assignee, or the unassigned) sorts the workspace, so a page costs the
//! same at 250 conversations and at 100,000. Read from the plans the database gives
//! for the very statements the server runs: `EXPLAIN QUERY PLAN` on SQLite,
//! `EXPLAIN` on PostgreSQL (with sorting priced out, so a sort in the plan means no
//! index can give the order).

use casefile::domain::chat::lists::{
    ConversationFilter, Joined, Order, PageQuery, Position, count_statement, page_statement,
};
use casefile::entity::ConversationStatus;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

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
    };
    let mut failures = Vec::new();
    for (name, filter) in filters() {
        for order in [Order::Newest, Order::RecentlyUpdated] {
            for after in [None, Some(&after)] {
                let query = PageQuery {
                    workspace_id: &ws.id,
                    filter: &filter,
                    order,
                    after,
                    limit: 51,
                    joined: inbox_row,
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
