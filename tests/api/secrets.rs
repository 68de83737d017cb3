//! Secrets sealed at rest: with `CASEFILE_MASTER_KEY` a copy of the database alone
//! reveals no secret (identity and webhook secrets, signing keys; API keys are only
//! ever hashes), `casefile keys seal` seals what was stored plain, and a missing or
//! wrong key is one sentence at start-up.

use serde_json::json;

use crate::helpers::{TIMEOUT, TestApp, Workspace, fresh_database, test_config};

/// 32 bytes of 7, in base64.
pub const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
/// 32 bytes of 8, in base64.
const WRONG_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";

fn sealed_config(url: &str, key: Option<&str>) -> casefile::Config {
    let mut config = test_config(url);
    // Tokens signed with the database's key ring, which is then sealed too.
    config.jwt_secret = None;
    config.master_key = key.map(casefile::config::Secret::new);
    config.webhook_allow_private = true;
    config
}

/// Every secret a workspace has: its identity secret, a webhook's secret (after a
/// rotation, the previous one too) and an API key's.
async fn secrets(app: &TestApp, ws: &Workspace) -> Vec<String> {
    let identity = app
        .data(
            Some(&ws.admin_token),
            "mutation { rotateIdentitySecret }",
            json!({}),
        )
        .await["rotateIdentitySecret"]
        .as_str()
        .expect("identity secret")
        .to_owned();
    let webhook = app
        .data(
            Some(&ws.admin_token),
            "mutation { createWebhook(input: {url: \"http://127.0.0.1:9/hook\", eventTypes: [MESSAGE_CREATED]}) { secret webhook { id } } }",
            json!({}),
        )
        .await["createWebhook"]
        .clone();
    let rotated = app
        .data(
            Some(&ws.admin_token),
            "mutation($id: ID!) { rotateWebhookSecret(webhookId: $id) { secret } }",
            json!({ "id": webhook["webhook"]["id"] }),
        )
        .await["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let key = app.api_key(ws, "INSIGHTS_READ").await;
    vec![
        identity,
        webhook["secret"]
            .as_str()
            .expect("webhook secret")
            .to_owned(),
        rotated,
        key,
    ]
}

/// The bytes of the SQLite database's files (the database and its write-ahead
/// log), as a copy of them would hold.
fn files_of(url: &str) -> Vec<u8> {
    let path = url.trim_start_matches("sqlite://");
    let mut bytes = std::fs::read(path).expect("the database file");
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// A server on `url`, or the sentence it refused to start with.
async fn start(url: &str, key: Option<&str>) -> Result<casefile::Running, String> {
    let addr = "127.0.0.1:0".parse().expect("address");
    tokio::time::timeout(TIMEOUT, casefile::spawn(sealed_config(url, key), addr))
        .await
        .expect("starts or refuses in time")
        .map_err(|err| err.to_string())
}

/// Whether a conversation started with identity `token` has a verified lead.
async fn verified(app: &TestApp, ws: &Workspace, token: &str) -> bool {
    let started = app
        .data(
            None,
            "mutation($i: StartConversationInput!) { startConversation(input: $i) { conversation { lead { verified } } } }",
            json!({ "i": { "widgetKey": ws.widget_key, "identityToken": token } }),
        )
        .await;
    started["startConversation"]["conversation"]["lead"]["verified"] == true
}

async fn health(app: &TestApp) -> String {
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn with_a_master_key_a_copy_of_the_database_reveals_no_secret() {
    let (url, dir) = fresh_database().await;
    let app = TestApp::spawn_with(sealed_config(&url, Some(MASTER_KEY)), dir).await;
    let ws = app.workspace("Acme").await;
    let all = secrets(&app, &ws).await;
    assert!(!health(&app).await.contains("not sealed"));

    // The secrets still work: an identity signed with the identity secret verifies.
    let token = casefile::domain::tenancy::identity::sign(
        &all[0],
        "user-1",
        "kim@example.com",
        "Kim",
        std::time::Duration::from_secs(600),
    )
    .expect("signed");
    assert!(verified(&app, &ws, &token).await);

    // What the database holds: sealed values, never the secrets.
    let db = &app.running.state.db;
    for (sql, what) in [
        (
            "SELECT identity_secret AS v FROM workspaces WHERE identity_secret IS NOT NULL",
            "identity",
        ),
        ("SELECT secret AS v FROM webhooks", "webhook"),
        (
            "SELECT previous_secret AS v FROM webhooks",
            "previous webhook",
        ),
        (
            "SELECT value AS v FROM settings WHERE key IN ('jwt_keys', 'jwt_secret')",
            "signing keys",
        ),
    ] {
        use sea_orm::ConnectionTrait;
        let rows = db
            .reader
            .query_all_raw(sea_orm::Statement::from_string(db.backend(), sql))
            .await
            .expect("read");
        assert!(!rows.is_empty(), "{what}");
        for row in rows {
            let value: String = row.try_get("", "v").expect("value");
            assert!(value.starts_with("sealed:v1:"), "{what}: {value}");
            for secret in &all {
                assert!(!value.contains(secret.as_str()), "{what}");
            }
        }
    }
    if url.starts_with("sqlite:") {
        let bytes = files_of(&url);
        for secret in &all {
            assert!(!contains(&bytes, secret), "a secret in the database files");
        }
    }
}

#[tokio::test]
async fn without_a_master_key_health_says_secrets_are_not_sealed() {
    let (url, dir) = fresh_database().await;
    let app = TestApp::spawn_with(sealed_config(&url, None), dir).await;
    let said = health(&app).await;
    assert!(said.starts_with("ok"), "{said}");
    assert!(said.contains("secrets not sealed"), "{said}");
}

#[tokio::test]
async fn keys_seal_seals_what_was_plain_and_a_missing_or_wrong_key_is_one_sentence() {
    let (url, dir) = fresh_database().await;
    let app = TestApp::spawn_with(sealed_config(&url, None), None).await;
    let ws = app.workspace("Acme").await;
    let all = secrets(&app, &ws).await;
    app.running.shutdown().await.expect("stops");

    let seal = |key: Option<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"));
        command
            .args(["keys", "seal", "--database-url", &url])
            .env_remove("CASEFILE_MASTER_KEY");
        if let Some(key) = key {
            command.env("CASEFILE_MASTER_KEY", key);
        }
        async move {
            let output = tokio::time::timeout(TIMEOUT, command.output())
                .await
                .expect("in time")
                .expect("runs");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (ok, _, err) = seal(None).await;
    assert!(!ok);
    assert!(err.contains("set CASEFILE_MASTER_KEY"), "{err}");
    let (ok, said, err) = seal(Some(MASTER_KEY)).await;
    assert!(ok, "{err}");
    // The identity secret, the webhook's two, and the two signing-key settings.
    assert!(said.contains("sealed 5 secrets"), "{said}");
    let (ok, said, _) = seal(Some(MASTER_KEY)).await;
    assert!(ok && said.contains("sealed 0 secrets"), "{said}");

    let missing = start(&url, None).await.err().expect("refused");
    assert!(
        missing.contains("sealed: set CASEFILE_MASTER_KEY"),
        "{missing}"
    );
    let wrong = start(&url, Some(WRONG_KEY)).await.err().expect("refused");
    assert!(
        wrong.contains("CASEFILE_MASTER_KEY does not open"),
        "{wrong}"
    );
    assert_eq!(wrong.lines().count(), 1, "{wrong}");

    // With the key, everything made before still works: the admin's token (signed
    // with the sealed key ring) and the identity secret.
    let running = start(&url, Some(MASTER_KEY)).await.expect("starts");
    let app = TestApp::from_running(running, dir);
    let token = casefile::domain::tenancy::identity::sign(
        &all[0],
        "user-2",
        "sam@example.com",
        "Sam",
        std::time::Duration::from_secs(600),
    )
    .expect("signed");
    assert!(verified(&app, &ws, &token).await);
    let viewer = app
        .data(Some(&ws.admin_token), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(viewer["viewer"]["id"], ws.admin_id.as_str());
    if url.starts_with("sqlite:") {
        let bytes = files_of(&url);
        // The API key was only ever a hash; the others are sealed now. (The old
        // plain values may linger in free pages until SQLite reuses them:
        // `casefile backup` writes a compacted copy without them.)
        assert!(!contains(&bytes, &all[3]), "an API key secret");
    }
}
