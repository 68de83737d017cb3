//! The README's snippets marked `runnable` (```sh runnable, ```js runnable) run as
//! written against a live server: the shell ones with bash and curl, the
//! JavaScript ones with Node.js and the npm packages of `tests/node`. Only the
//! address (`127.0.0.1:8080`) and the placeholder lines that set a variable to
//! what `workspace create` printed (`WIDGET_KEY=wk_…`) are replaced.

use std::collections::HashMap;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TIMEOUT, TestApp, fresh_database, test_config};

const README: &str = include_str!("../../README.md");
const NODE_CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// The README's runnable snippets, in order: (language, text).
fn runnable() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in README.lines() {
        match &mut current {
            Some((_, body)) if line == "```" => {
                let (lang, body) = current.take().expect("a snippet");
                out.push((lang, body.clone()));
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {
                if let Some(info) = line.strip_prefix("```")
                    && let Some(lang) = info.strip_suffix(" runnable")
                {
                    current = Some((lang.to_owned(), String::new()));
                }
            }
        }
    }
    out
}

/// `snippet` for this server: its address, and without the lines that set a
/// placeholder (`NAME=…`), whose values come from the environment instead.
fn for_server(snippet: &str, addr: &str) -> String {
    snippet
        .lines()
        .filter(|line| {
            let placeholder = line.split_once('=').is_some_and(|(name, value)| {
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && value.contains('…')
            });
            !placeholder
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("127.0.0.1:8080", addr)
}

/// Run a shell snippet; its stdout as JSON.
async fn shell(snippet: &str, env: &HashMap<&str, String>) -> Value {
    let output = tokio::time::timeout(
        TIMEOUT,
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", snippet])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output(),
    )
    .await
    .expect("the snippet finishes in time")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{snippet}\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("JSON from\n{snippet}\n{stdout}"))
}

/// Start a JavaScript snippet as a module beside `tests/node`'s packages; its
/// stdout lines.
fn node(
    dir: &tempfile::TempDir,
    name: &str,
    snippet: &str,
    env: &HashMap<&str, String>,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let file = dir.path().join(name);
    std::fs::write(&file, snippet).expect("written");
    let mut child = Command::new("node")
        .arg(&file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

/// The first line of `lines` containing `text`.
async fn line_with(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    text: &str,
) -> String {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("stdout")
                .unwrap_or_else(|| panic!("the snippet ended before printing {text}"));
            if line.contains(text) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {text} in time"))
}

#[tokio::test]
#[ignore = "needs Node.js, curl and `npm ci --prefix tests/node`; run with --ignored"]
async fn npm_readme_snippets_run_as_written() {
    crate::clients::require_node_clients();
    assert!(
        std::path::Path::new(NODE_CLIENTS)
            .join("node_modules/standardwebhooks")
            .exists(),
        "run `npm ci --prefix tests/node`"
    );
    let snippets = runnable();
    let kinds: Vec<&str> = snippets.iter().map(|(lang, _)| lang.as_str()).collect();
    assert_eq!(
        kinds,
        ["sh", "sh", "js", "js"],
        "the README's runnable snippets"
    );
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.webhook_allow_private = true;
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace_with_ai("Acme").await;
    let addr = app.running.addr.to_string();
    let mut env: HashMap<&str, String> = HashMap::from([
        ("WIDGET_KEY", ws.widget_key.clone()),
        ("ADMIN_TOKEN", ws.admin_token.clone()),
    ]);

    // A visitor starts a conversation.
    let started = shell(&for_server(&snippets[0].1, &addr), &env).await;
    let payload = &started["data"]["startConversation"];
    assert_eq!(payload["conversation"]["status"], "AI", "{started}");
    let conversation = payload["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    env.insert("CONVERSATION_ID", conversation.clone());
    env.insert(
        "VISITOR_TOKEN",
        payload["visitorToken"].as_str().expect("token").to_owned(),
    );

    // An agent reads it back.
    let read = shell(&for_server(&snippets[1].1, &addr), &env).await;
    let node_ = &read["data"]["conversations"]["edges"][0]["node"];
    assert_eq!(node_["id"], conversation.as_str(), "{read}");
    assert_eq!(
        node_["messages"]["edges"][0]["node"]["body"],
        "How do I schedule a draft?"
    );

    // The visitor's subscription replays the conversation.
    let scratch = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(
        format!("{NODE_CLIENTS}/node_modules"),
        scratch.path().join("node_modules"),
    )
    .expect("packages linked");
    let (mut subscriber, mut lines) = node(
        &scratch,
        "subscribe.mjs",
        &for_server(&snippets[2].1, &addr),
        &env,
    );
    line_with(&mut lines, "How do I schedule a draft?").await;
    subscriber.kill().await.expect("stopped");

    // A webhook receiver verifies a handoff's delivery.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let created = app
        .data(
            Some(&ws.admin_token),
            "mutation($u: String!) { createWebhook(input: { url: $u, eventTypes: [HANDOFF_REQUESTED] }) { secret } }",
            json!({ "u": format!("http://127.0.0.1:{port}/") }),
        )
        .await;
    env.insert(
        "CASEFILE_WEBHOOK_SECRET",
        created["createWebhook"]["secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    );
    env.insert("PORT", port.to_string());
    let (mut receiver, mut lines) = node(
        &scratch,
        "receiver.mjs",
        &for_server(&snippets[3].1, &addr),
        &env,
    );
    line_with(&mut lines, "listening on").await;
    let handoff = app
        .request_human(&env["VISITOR_TOKEN"], &conversation)
        .await;
    let seen = line_with(&mut lines, "handoff ").await;
    assert_eq!(seen, format!("handoff {handoff} in {conversation}"));
    receiver.kill().await.expect("stopped");
}
