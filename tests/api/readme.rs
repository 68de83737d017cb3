//! The snippets marked `runnable` (```sh runnable, ```js runnable) in the README
//! and in the book (`docs/src`, its chapters in `SUMMARY.md` order) run as written
//! against a live server: the shell ones with bash and curl, the JavaScript ones
//! with Node.js and the npm packages of `tests/node`. Only the address
//! (`127.0.0.1:8080`) and the placeholder lines that set a variable to what
//! `workspace create` printed (`WIDGET_KEY=wk_…`) are replaced. A snippet the book
//! repeats from the README runs once, so a copy that drifts shows up as a snippet
//! of its own.

use std::collections::HashMap;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TIMEOUT, TestApp, fresh_database, test_config};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NODE_CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// The README, then the book's chapters in the order of its `SUMMARY.md`.
fn documents() -> Vec<(String, String)> {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{ROOT}/{path}"))
            .unwrap_or_else(|err| panic!("{path}: {err}"))
    };
    let summary = read("docs/src/SUMMARY.md");
    let chapters = summary.lines().filter_map(|line| {
        let target = line.split_once("](")?.1.split_once(')')?.0;
        Some(format!("docs/src/{target}"))
    });
    std::iter::once("README.md".to_owned())
        .chain(chapters)
        .map(|path| {
            let text = read(&path);
            (path, text)
        })
        .collect()
}

/// The runnable snippets of the README and the book, in order, each once:
/// (language, text).
fn runnable() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (_, text) in documents() {
        for snippet in runnable_in(&text) {
            if !out.contains(&snippet) {
                out.push(snippet);
            }
        }
    }
    out
}

/// The runnable snippets of one document, in order.
fn runnable_in(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
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
        "the runnable snippets of the README and the book"
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

/// mdBook's id for a heading: lower case, spaces to `-`, only letters, digits,
/// `-` and `_` kept.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The relative link targets of a markdown line (`[text](target)`).
fn relative_links(line: &str) -> impl Iterator<Item = &str> {
    line.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
}

/// The headings of a markdown text, outside its fenced blocks.
fn headings(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every relative link of the README and the book leads to a file that exists,
/// and to a heading of it when it names one; every page of the book is in its
/// `SUMMARY.md` (CI's `mdbook build docs` checks the book's links too, with
/// mdbook-linkcheck2).
#[test]
fn the_docs_links_lead_somewhere() {
    let documents = documents();
    let mut broken = Vec::new();
    for (path, text) in &documents {
        let folder = std::path::Path::new(path).parent().expect("a folder");
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            for target in relative_links(line).filter(|_| !fenced) {
                let (file, heading) = target.split_once('#').unwrap_or((target, ""));
                let file = match file {
                    "" => std::path::Path::new(ROOT).join(path),
                    file => std::path::Path::new(ROOT).join(folder).join(file),
                };
                if !file.exists() {
                    broken.push(format!("{path}: {target} (no such file)"));
                } else if !heading.is_empty() {
                    let linked = std::fs::read_to_string(&file).unwrap_or_default();
                    if !headings(&linked).iter().any(|h| h == heading) {
                        broken.push(format!("{path}: {target} (no such heading)"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));

    let listed: Vec<&str> = documents.iter().map(|(path, _)| path.as_str()).collect();
    let mut unlisted = Vec::new();
    let mut folders = vec![std::path::Path::new(ROOT).join("docs/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the book's folder") {
            let entry = entry.expect("an entry").path();
            let relative = entry.strip_prefix(ROOT).expect("inside the project");
            let relative = relative.to_string_lossy();
            if entry.is_dir() {
                folders.push(entry.clone());
            } else if relative.ends_with(".md")
                && !relative.ends_with("SUMMARY.md")
                && !listed.contains(&relative.as_ref())
            {
                unlisted.push(relative.into_owned());
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "not in docs/src/SUMMARY.md: {unlisted:?}"
    );
}
