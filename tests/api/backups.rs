//! Backups: `casefile backup` while messages flow and `casefile restore` on
//! SQLite; `pg_dump` and `pg_restore` as the book (guides/backups.md) gives them on PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{TIMEOUT, TestApp, fresh_database, require_postgres, test_config};

/// `casefile ARGS…`: whether it succeeded, and what it printed (stdout, stderr).
async fn casefile(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(args)
        .output();
    let output = tokio::time::timeout(TIMEOUT, output)
        .await
        .expect("exits in time")
        .expect("runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `seq`s of the conversation's messages, in the database at `url`.
async fn seqs(url: &str, conversation: &str) -> Vec<i64> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(url).await.expect("connect");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq"
                }
                _ => "SELECT seq FROM messages WHERE conversation_id = ? ORDER BY seq",
            },
            vec![conversation.into()],
        ))
        .await
        .expect("read");
    db.close().await.expect("close");
    rows.iter()
        .map(|row| row.try_get::<i64>("", "seq").expect("seq"))
        .collect()
}

#[tokio::test]
async fn a_backup_while_messages_flow_holds_every_acknowledged_one_and_restores() {
    // SQLite's own tools, on a SQLite file whichever database the suite runs on
    // (PostgreSQL's are the next test's).
    let dir = Some(tempfile::tempdir().expect("temp dir"));
    let url = format!(
        "sqlite://{}",
        dir.as_ref()
            .expect("dir")
            .path()
            .join("casefile.db")
            .display()
    );
    let app = TestApp::spawn_with(test_config(&url), None).await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;

    // An agent sends one message after another; each acknowledgement is noted
    // with when it came.
    let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        let (client, endpoint) = (app.client.clone(), app.url("/graphql"));
        let (token, conversation) = (ws.admin_token.clone(), conversation.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let body: serde_json::Value = client
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .json(&json!({
                        "query": "mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq } }",
                        "variables": { "i": { "conversationId": conversation, "body": format!("message {n}") } },
                    }))
                    .send()
                    .await
                    .expect("sent")
                    .json()
                    .await
                    .expect("JSON");
                let seq = body["data"]["sendMessage"]["seq"].as_i64().expect("seq");
                acked.lock().expect("lock").push((seq, Instant::now()));
            }
        })
    };
    let wait_for = |count: usize| {
        let acked = Arc::clone(&acked);
        async move {
            tokio::time::timeout(TIMEOUT, async {
                while acked.lock().expect("lock").len() < count {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .expect("messages are acknowledged");
        }
    };
    wait_for(20).await;
    let copy = dir
        .as_ref()
        .expect("a SQLite folder")
        .path()
        .join("copy.db");
    let began = Instant::now();
    let (ok, said, err) = casefile(&[
        "backup",
        "--to",
        copy.to_str().expect("path"),
        "--database-url",
        &url,
    ])
    .await;
    assert!(ok, "{err}");
    assert!(said.contains("backed up"), "{said}");
    let seen = acked.lock().expect("lock").len();
    wait_for(seen + 10).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sender.await.expect("the sender ends");

    // Every message acknowledged before the backup began is in the copy, with no
    // gap in `seq`.
    let copy_url = format!("sqlite://{}", copy.display());
    let copied = seqs(&copy_url, &conversation).await;
    let expected: Vec<i64> = (1..=copied.len() as i64).collect();
    assert_eq!(copied, expected, "no gap");
    let before: Vec<i64> = acked
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(seq, _)| *seq)
        .collect();
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|seq| copied.contains(seq)),
        "acknowledged before the backup: {before:?}; in it up to {:?}",
        copied.last()
    );
    let live = seqs(&url, &conversation).await;
    assert!(
        live.len() > copied.len(),
        "messages went on after the backup"
    );

    // A backup is never written over an existing file.
    let (ok, _, err) = casefile(&[
        "backup",
        "--to",
        copy.to_str().expect("path"),
        "--database-url",
        &url,
    ])
    .await;
    assert!(!ok);
    assert!(err.contains("exists"), "{err}");

    // Restoring under a running server is refused; once it stops, it works.
    let from = copy.to_str().expect("path");
    let (ok, _, err) = casefile(&["restore", "--from", from, "--database-url", &url]).await;
    assert!(!ok);
    assert!(err.contains("a casefile server is using"), "{err}");
    assert_eq!(
        seqs(&url, &conversation).await.len(),
        live.len(),
        "untouched"
    );
    app.running.shutdown().await.expect("stops");
    let (ok, said, err) = casefile(&["restore", "--from", from, "--database-url", &url]).await;
    assert!(ok, "{err}");
    assert!(said.contains("restored"), "{said}");
    let app = TestApp::spawn_with(test_config(&url), dir).await;
    let read = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { messages { totalCount } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        read["conversation"]["messages"]["totalCount"],
        copied.len() as i64,
        "the restored database is the copy"
    );
    // What is not a Casefile backup is refused.
    let junk = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(junk.path(), b"not a database").expect("write");
    app.running.shutdown().await.expect("stops");
    let (ok, _, err) = casefile(&[
        "restore",
        "--from",
        junk.path().to_str().expect("path"),
        "--database-url",
        &url,
    ])
    .await;
    assert!(!ok);
    assert!(err.contains("is not a Casefile backup"), "{err}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn pg_dump_and_pg_restore_as_the_readme_gives_them_carry_everything() {
    require_postgres();
    let (url, _) = fresh_database().await;
    let app = TestApp::spawn_with(test_config(&url), None).await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    for n in 0..5 {
        app.send(&ws.admin_token, &conversation, &format!("message {n}"))
            .await;
    }
    let before = seqs(&url, &conversation).await;
    let dump = tempfile::tempdir().expect("dir");
    let file = dump.path().join("casefile.dump");
    let run = |program: &str, args: Vec<String>| {
        let program = program.to_owned();
        async move {
            let output = tokio::process::Command::new(&program)
                .args(&args)
                .output()
                .await
                .unwrap_or_else(|err| panic!("{program} runs: {err}"));
            assert!(
                output.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    // While the server runs: pg_dump reads one snapshot.
    run(
        "pg_dump",
        vec![
            "--format=custom".into(),
            format!("--file={}", file.display()),
            url.clone(),
        ],
    )
    .await;
    app.running.shutdown().await.expect("stops");
    let (restored, _) = fresh_database().await;
    run(
        "pg_restore",
        vec![
            "--no-owner".into(),
            "--dbname".into(),
            restored.clone(),
            file.display().to_string(),
        ],
    )
    .await;
    assert_eq!(seqs(&restored, &conversation).await, before);
    let app = TestApp::spawn_with(test_config(&restored), None).await;
    let read = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { messages { totalCount } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        read["conversation"]["messages"]["totalCount"],
        before.len() as i64
    );
    // casefile's own commands point PostgreSQL users at these tools.
    let (ok, _, err) = casefile(&["backup", "--to", "x.db", "--database-url", &url]).await;
    assert!(!ok);
    assert!(err.contains("pg_dump"), "{err}");
}
