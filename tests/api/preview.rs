//! Trying the AI before it speaks: `previewAnswer` for admins and `casefile eval`
//! over a file of questions, with nothing stored.

use serde_json::{Value, json};

use crate::helpers::{TIMEOUT, TestApp, Workspace, error_code};

const PREVIEW: &str = "query($q: String!, $e: AnswerEngine) { previewAnswer(question: $q, engine: $e) { \
    outcome reason note engine body confidence modelFailure promptTokens completionTokens \
    sources { articleId title url score } \
    passages { text score article { articleId title url score } } \
    articles { title url score } \
    tags { tag { label } evidence escalates } } }";

/// A workspace answering the extractive way, with three articles and a billing tag
/// that escalates.
async fn workspace(app: &TestApp) -> Workspace {
    let ws = app.workspace_with_ai("Inkwell").await;
    for (title, url, body) in [
        (
            "Scheduling drafts",
            "https://docs.test/scheduling",
            "# Scheduling drafts\n\nTo schedule a draft, open it, click Schedule and pick a date and time. The post goes live then.\n\nScheduled posts appear in the calendar.",
        ),
        (
            "Publishing workflows",
            "https://docs.test/workflows",
            "# Publishing workflows\n\nEditors review a draft before it is published; a scheduled draft is published at its date.",
        ),
        (
            "Uploading images",
            "https://docs.test/uploads",
            "# Uploading images\n\nDrag images into the media library to upload them. Files up to 25 MB are accepted.",
        ),
    ] {
        app.data(
            Some(&ws.admin_token),
            "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }",
            json!({ "i": { "title": title, "url": url, "body": body } }),
        )
        .await;
    }
    app.data(
        Some(&ws.admin_token),
        "mutation { createTag(input: {label: \"Billing\", keywords: [\"invoice\", \"refund\"], escalate: true}) { id } }",
        json!({}),
    )
    .await;
    ws
}

async fn preview(app: &TestApp, ws: &Workspace, question: &str) -> Value {
    app.data(Some(&ws.admin_token), PREVIEW, json!({ "q": question }))
        .await["previewAnswer"]
        .clone()
}

#[tokio::test]
async fn an_admin_sees_what_the_ai_would_say_and_why_with_nothing_stored() {
    let app = TestApp::spawn().await;
    let ws = workspace(&app).await;

    let answered = preview(&app, &ws, "How do I schedule a draft for later?").await;
    assert_eq!(answered["outcome"], "ANSWERED", "{answered:#}");
    assert_eq!(answered["reason"], Value::Null);
    assert_eq!(answered["engine"], "EXTRACTIVE");
    assert_eq!(
        answered["sources"][0]["url"],
        "https://docs.test/scheduling"
    );
    assert!(
        answered["body"]
            .as_str()
            .expect("body")
            .contains("To schedule a draft, open it, click Schedule"),
        "{answered:#}"
    );
    assert!(answered["confidence"].as_f64().expect("confidence") >= 0.5);
    // Why: the passages retrieved, best first, with their scores and articles.
    let passages = answered["passages"].as_array().expect("passages");
    assert!(!passages.is_empty());
    assert_eq!(
        passages[0]["article"]["url"],
        "https://docs.test/scheduling"
    );
    let scores: Vec<f64> = passages
        .iter()
        .map(|p| p["score"].as_f64().expect("score"))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(passages[0]["score"], passages[0]["article"]["score"]);
    assert_eq!(
        answered["articles"][0]["url"],
        "https://docs.test/scheduling"
    );
    assert_eq!(answered["promptTokens"], 0);

    let asked_for_a_person = preview(&app, &ws, "can I talk to a human please").await;
    assert_eq!(asked_for_a_person["outcome"], "HANDOFF");
    assert_eq!(asked_for_a_person["reason"], "VISITOR_REQUESTED");
    assert_eq!(asked_for_a_person["body"], Value::Null);

    let billing = preview(&app, &ws, "I want a refund for my last invoice").await;
    assert_eq!(billing["outcome"], "HANDOFF");
    assert_eq!(billing["reason"], "POLICY");
    assert_eq!(billing["tags"][0]["tag"]["label"], "Billing");
    assert_eq!(billing["tags"][0]["escalates"], true);
    assert_eq!(billing["tags"][0]["evidence"], json!(["invoice", "refund"]));

    // Nothing was stored: no conversation, no event.
    let stored = app
        .data(
            Some(&ws.admin_token),
            "{ conversations(first: 5) { totalCount } events(first: 5) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(stored["conversations"]["totalCount"], 0, "{stored:#}");
    assert_eq!(stored["events"]["edges"], json!([]), "{stored:#}");
}

#[tokio::test]
async fn below_the_threshold_the_preview_follows_the_handoff_policy() {
    let app = TestApp::spawn().await;
    let ws = workspace(&app).await;
    let unknown = "Does Inkwell integrate with Shopify?";
    // As a first message, an answer below the threshold says it is unsure.
    let unsure = preview(&app, &ws, unknown).await;
    assert_eq!(unsure["outcome"], "ANSWERED", "{unsure:#}");
    assert!(unsure["confidence"].as_f64().expect("confidence") < 0.5);
    // A policy with no patience for unsure answers hands it off.
    app.data(
        Some(&ws.admin_token),
        "mutation { updateHandoffPolicy(input: {maxLowConfidenceAnswers: 0}) { maxLowConfidenceAnswers } }",
        json!({}),
    )
    .await;
    let handed = preview(&app, &ws, unknown).await;
    assert_eq!(handed["outcome"], "HANDOFF", "{handed:#}");
    assert_eq!(handed["reason"], "LOW_CONFIDENCE");
}

#[tokio::test]
async fn only_admins_preview_and_bad_questions_are_refused() {
    let app = TestApp::spawn().await;
    let ws = workspace(&app).await;
    let (_, agent) = app.agent(&ws, "Agent", "AGENT").await;
    let (_, visitor) = app.start_conversation(&ws, None).await;
    for token in [&agent, &visitor] {
        let body = app
            .gql(Some(token), PREVIEW, json!({ "q": "How do I schedule?" }))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    }
    let empty = app
        .gql(Some(&ws.admin_token), PREVIEW, json!({ "q": "   " }))
        .await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT", "{empty:#}");
    assert_eq!(empty["errors"][0]["extensions"]["field"], "question");
    // No model on this server: it cannot be asked for.
    let model = app
        .gql(
            Some(&ws.admin_token),
            PREVIEW,
            json!({ "q": "How do I schedule?", "e": "MODEL" }),
        )
        .await;
    assert_eq!(error_code(&model), "BAD_USER_INPUT", "{model:#}");
    assert_eq!(model["errors"][0]["extensions"]["field"], "engine");
}

/// `casefile eval` against the test server's database; its status, stdout and
/// stderr.
async fn eval(app: &TestApp, ws: &Workspace, file: &str, format: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("questions.jsonl");
    std::fs::write(&path, file).expect("write");
    let database = app
        .running
        .state
        .config
        .database_url
        .clone()
        .expect("a database URL");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args([
            "eval",
            "--workspace",
            &ws.id,
            "--format",
            format,
            "--questions",
        ])
        .arg(&path)
        .args(["--database-url", &database])
        .env_remove("CASEFILE_LLM_URL")
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

const QUESTIONS: &str = r#"{"question": "how do i schedule a draft to go out later", "expectArticle": "https://docs.test/scheduling", "expectHandoff": false}
{"question": "can I drag images into the media library?", "expectArticle": "Uploading images", "expectHandoff": false}
{"question": "who reviews a draft before it is published?", "expectArticle": "https://docs.test/workflows"}

{"question": "i need a refund on this invoice", "expectHandoff": true}
{"question": "talk to a human please", "expectHandoff": true}
{"question": "what is the scheduled calendar for images", "expectArticle": "https://docs.test/uploads", "expectHandoff": true}
"#;

#[tokio::test]
async fn the_eval_command_scores_a_question_file_as_json_and_as_a_table() {
    let app = TestApp::spawn().await;
    let ws = workspace(&app).await;
    let (ok, stdout, stderr) = eval(&app, &ws, QUESTIONS, "json").await;
    assert!(ok, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 7, "six questions and the totals: {stdout}");
    let first = &lines[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["outcome"], "ANSWERED");
    assert_eq!(first["hit1"], true);
    assert_eq!(first["citesExpected"], true);
    assert_eq!(first["cited"][0]["url"], "https://docs.test/scheduling");
    assert_eq!(
        lines[3]["line"], 5,
        "blank lines are skipped, lines keep their numbers"
    );
    assert_eq!(lines[3]["outcome"], "HANDOFF");
    assert_eq!(lines[3]["reason"], "POLICY");
    assert_eq!(lines[4]["reason"], "VISITOR_REQUESTED");
    let totals = &lines[6]["totals"];
    assert_eq!(totals["questions"], 6);
    assert_eq!(totals["handedOff"], 2);
    assert_eq!(totals["answered"], 4);
    // Four questions expect an article; the last is ranked below scheduling.
    let hit1 = totals["hit1"].as_f64().expect("hit1");
    let hit3 = totals["hit3"].as_f64().expect("hit3");
    assert!((0.5..1.0).contains(&hit1), "{totals:#}");
    assert!(hit3 >= hit1, "{totals:#}");
    // Handed off: 2, both expected to be; expected: 3, of which 2 were.
    assert_eq!(totals["handoffPrecision"], 1.0);
    assert_eq!(totals["handoffRecall"], 2.0 / 3.0);
    assert!(totals["citationAccuracy"].as_f64().is_some());

    let (ok, table, stderr) = eval(&app, &ws, QUESTIONS, "table").await;
    assert!(ok, "{stderr}");
    assert!(table.contains("| 5 | HANDOFF POLICY |"), "{table}");
    assert!(table.contains("questions 6, answered 4"), "{table}");
    assert!(
        table.contains("handoff precision 100.0%, handoff recall 66.7%"),
        "{table}"
    );

    // Still nothing stored.
    let stored = app
        .data(
            Some(&ws.admin_token),
            "{ conversations(first: 5) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(stored["conversations"]["totalCount"], 0);
}

#[tokio::test]
async fn a_malformed_question_file_is_refused_by_line_before_anything_runs() {
    let app = TestApp::spawn().await;
    let ws = workspace(&app).await;
    let cases = [
        (
            "{\"question\": \"fine\"}\n{\"question\": \"broken\"\n",
            "line 2:",
        ),
        (
            "{\"question\": \"fine\"}\n\n{\"question\": \"x\", \"expectArticle\": \"https://docs.test/none\"}\n",
            "line 3: expectArticle",
        ),
        (
            "{\"question\": \"x\", \"expectHandoff\": \"yes\"}\n",
            "line 1:",
        ),
        ("{\"questions\": \"typo\"}\n", "line 1:"),
    ];
    for (file, said) in cases {
        let (ok, stdout, stderr) = eval(&app, &ws, file, "json").await;
        assert!(!ok, "{file}: {stdout}");
        assert!(stderr.contains(said), "{file}: {stderr}");
        assert_eq!(stdout, "", "nothing half-runs: {stdout}");
    }
    let missing = Workspace {
        id: "ws_missing".into(),
        widget_key: ws.widget_key.clone(),
        admin_id: ws.admin_id.clone(),
        admin_token: ws.admin_token.clone(),
        admin_email: ws.admin_email.clone(),
    };
    let (ok, _, stderr) = eval(&app, &missing, QUESTIONS, "json").await;
    assert!(!ok);
    assert!(stderr.contains("no workspace ws_missing"), "{stderr}");
}
