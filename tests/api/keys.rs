//! Signing keys with ids: tokens name their key, and a rotation keeps old tokens.

use serde_json::json;

use crate::helpers::{TIMEOUT, TestApp, fresh_database, test_config};

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("tokens carry a kid")
}

async fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"));
    command.args(args).env_remove("CASEFILE_JWT_SECRET");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the command ends in time")
        .expect("the command runs")
}

#[tokio::test]
async fn a_key_rotation_keeps_old_tokens_and_reaches_running_servers() {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.jwt_secret = None;
    let a = TestApp::spawn_with(config.clone(), None).await;
    let ws = a.workspace("Acme").await;
    let old_kid = kid(&ws.admin_token);

    let rotated = cli(&["keys", "rotate", "--database-url", &url], &[]).await;
    assert!(rotated.status.success(), "{rotated:?}");
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(said.contains("added signing key"), "{said}");

    // A server started now signs with the new key.
    let b = TestApp::spawn_with(config, None).await;
    let signed = b
        .data(
            None,
            "mutation($e: String!) { signIn(email: $e, password: \"correct horse battery\") { token } }",
            json!({ "e": ws.admin_email }),
        )
        .await;
    let new_token = signed["signIn"]["token"].as_str().expect("token");
    assert_ne!(kid(new_token), old_kid);

    // The running server learns the new key from the first token that names it, and
    // both servers still take the old token.
    for (app, token) in [
        (&a, new_token),
        (&a, &ws.admin_token),
        (&b, &ws.admin_token),
    ] {
        let viewer = app.data(Some(token), "{ viewer { id } }", json!({})).await;
        assert_eq!(viewer["viewer"]["id"], ws.admin_id.as_str());
    }
    drop(dir);
}

#[tokio::test]
async fn a_configured_secret_is_rotated_where_it_is_configured() {
    let (url, _dir) = fresh_database().await;
    let refused = cli(
        &["keys", "rotate", "--database-url", &url],
        &[(
            "CASEFILE_JWT_SECRET",
            "a-configured-secret-that-is-long-enough",
        )],
    )
    .await;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("CASEFILE_JWT_SECRET"), "{said}");
}
