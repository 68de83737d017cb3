//! Knowledge articles: management, search, import, and the demo workspace.

use serde_json::json;

use crate::helpers::{TIMEOUT, TestApp, error_code};

#[tokio::test]
async fn articles_are_searchable_as_soon_as_they_are_written() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let upsert = "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id title } }";
    let id = app
        .data(Some(&ws.admin_token), upsert, json!({ "i": { "title": "Webhooks", "url": "https://docs.test/webhooks", "body": "Webhooks call your URL when a post is published." } }))
        .await["upsertArticle"]["id"]
        .clone();
    let search =
        "query($q: String) { articles(query: $q) { totalCount edges { node { id title } } } }";
    let found = app
        .data(
            Some(&ws.admin_token),
            search,
            json!({ "q": "publishing webhook" }),
        )
        .await;
    assert_eq!(found["articles"]["edges"][0]["node"]["id"], id);

    app.data(Some(&ws.admin_token), upsert, json!({ "i": { "id": id, "title": "Menus", "url": "https://docs.test/menus", "body": "Build navigation menus." } })).await;
    let stale = app
        .data(Some(&ws.admin_token), search, json!({ "q": "webhook" }))
        .await;
    assert_eq!(
        stale["articles"]["totalCount"], 0,
        "the index follows the update"
    );
    let fresh = app
        .data(Some(&ws.admin_token), search, json!({ "q": "navigation" }))
        .await;
    assert_eq!(fresh["articles"]["edges"][0]["node"]["title"], "Menus");

    app.data(
        Some(&ws.admin_token),
        "mutation($id: ID!) { deleteArticle(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    let gone = app
        .data(Some(&ws.admin_token), search, json!({ "q": "navigation" }))
        .await;
    assert_eq!(gone["articles"]["totalCount"], 0);
}

#[tokio::test]
async fn only_admins_manage_articles_and_other_workspaces_see_none() {
    let app = TestApp::spawn().await;
    let a = app.workspace("A").await;
    let b = app.workspace("B").await;
    let (_, agent) = app.agent(&a, "Sam", "AGENT").await;
    let input = json!({ "i": { "title": "Private", "url": "https://a.test/x", "body": "Only for A about scheduling." } });
    let upsert = "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id } }";
    assert_eq!(
        error_code(&app.gql(Some(&agent), upsert, input.clone()).await),
        "FORBIDDEN"
    );
    app.data(Some(&a.admin_token), upsert, input).await;
    let other = app
        .data(
            Some(&b.admin_token),
            "{ articles(query: \"scheduling\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(other["articles"]["totalCount"], 0);
    let bad = app
        .gql(
            Some(&a.admin_token),
            upsert,
            json!({ "i": { "title": "X", "url": "not a url", "body": "b" } }),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "url");
}

#[tokio::test]
async fn the_cli_imports_markdown_and_html_files() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("roles.md"),
        "# Roles\n\nEditors can publish posts.",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("seo.html"),
        "<html><title>SEO basics</title><body><p>Set a meta description.</p></body></html>",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let imported = casefile::domain::knowledge::articles::import_dir(
        &app.running.state,
        &ws.id,
        dir.path(),
        "https://docs.test",
    )
    .await
    .expect("import");
    assert_eq!(imported, 2);
    let again = casefile::domain::knowledge::articles::import_dir(
        &app.running.state,
        &ws.id,
        dir.path(),
        "https://docs.test",
    )
    .await
    .expect("import");
    assert_eq!(again, 2);
    let listed = app
        .data(
            Some(&ws.admin_token),
            "{ articles { totalCount edges { node { title url } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["articles"]["totalCount"], 2,
        "a re-import replaces by URL"
    );
    let found = app
        .data(
            Some(&ws.admin_token),
            "{ articles(query: \"meta description\") { edges { node { title url } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        found["articles"]["edges"][0]["node"],
        json!({ "title": "SEO basics", "url": "https://docs.test/seo" })
    );
}

#[tokio::test]
async fn the_demo_workspace_is_seeded_once_with_docs_tags_teams_and_lead_fields() {
    let app = TestApp::spawn().await;
    let first = casefile::demo::seed(&app.running.state)
        .await
        .expect("seeded");
    let second = casefile::demo::seed(&app.running.state)
        .await
        .expect("reused");
    assert_eq!(first.workspace.id, second.workspace.id);
    assert_eq!(first.people.len(), 3);
    // A random password, printed when the accounts are made and never again.
    let password = first.password.clone().expect("a new demo has a password");
    assert!(password.len() >= 16 && second.password.is_none());
    let signed = app
        .data(
            None,
            "mutation($p: String!) { signIn(email: \"alex@inkwell.example\", password: $p) { token } }",
            json!({ "p": password }),
        )
        .await;
    assert!(signed["signIn"]["token"].is_string());
    let fixed = app
        .gql(
            None,
            "mutation { signIn(email: \"alex@inkwell.example\", password: \"demo-password-123\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&fixed), "UNAUTHENTICATED");
    let token = &first.people[0].4;
    let data = app
        .data(Some(token), "{ articles { totalCount } tags { slug team { name } } teams { name businessHours { timeZone intervals { weekday } } } leadFields { key } }", json!({}))
        .await;
    assert!(data["articles"]["totalCount"].as_i64().expect("count") >= 15);
    let teams: Vec<&str> = data["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(teams, ["Content Support", "Accounts & Billing"]);
    // Billing keeps Berlin office hours on weekdays; content support is always open.
    assert_eq!(data["teams"][0]["businessHours"], json!(null));
    assert_eq!(
        data["teams"][1]["businessHours"]["timeZone"],
        "Europe/Berlin"
    );
    assert_eq!(
        data["teams"][1]["businessHours"]["intervals"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    let keys: Vec<&str> = data["leadFields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["cms", "cmsVersion", "role", "pageUrl"]);
    assert!(data["tags"].as_array().expect("tags").len() >= 5);

    let ws = crate::helpers::Workspace {
        id: first.workspace.id.clone(),
        widget_key: first.workspace.widget_key.clone(),
        admin_id: String::new(),
        admin_token: token.clone(),
        admin_email: String::new(),
    };
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    app.settle().await;
    let answer = app
        .data(
            Some(&visitor),
            "query($c: ID!) { conversation(id: $c) { lastMessage { author sources { title } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(answer["conversation"]["lastMessage"]["author"], "AI");
    assert_eq!(
        answer["conversation"]["lastMessage"]["sources"][0]["title"],
        "Scheduling drafts to publish later"
    );
}

const REVISIONS: &str = "query($id: ID!) { article(id: $id) { updatedAt revisions { revision editedAt title body editedBy { __typename id name } } } }";

async fn revisions_of(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    app.data(Some(token), REVISIONS, json!({ "id": id })).await["article"].clone()
}

async fn status_of(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    app.data(
        Some(token),
        "query($id: ID!) { conversation(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await["conversation"]["status"]
        .clone()
}

const UPSERT: &str =
    "mutation($i: ArticleInputObject!) { upsertArticle(input: $i) { id updatedAt } }";

#[tokio::test]
async fn every_change_of_an_article_is_a_revision_kept_with_who_made_it() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let input = |id: Option<&str>, body: &str| json!({ "i": { "id": id, "title": "Exporting posts", "url": "https://docs.test/export", "body": body } });
    let created = app
        .data(
            Some(&ws.admin_token),
            UPSERT,
            input(None, "Download posts as CSV."),
        )
        .await;
    let id = created["upsertArticle"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = revisions_of(&app, &ws.admin_token, &id).await;
    assert_eq!(first["revisions"].as_array().expect("revisions").len(), 1);
    assert_eq!(first["revisions"][0]["revision"], 1);
    assert_eq!(
        first["revisions"][0]["editedBy"],
        json!({ "__typename": "Agent", "id": ws.admin_id, "name": first["revisions"][0]["editedBy"]["name"] })
    );
    assert_eq!(first["revisions"][0]["editedAt"], first["updatedAt"]);

    // The same text again is no revision, and changes nothing.
    app.data(
        Some(&ws.admin_token),
        UPSERT,
        input(Some(&id), "Download posts as CSV."),
    )
    .await;
    let same = revisions_of(&app, &ws.admin_token, &id).await;
    assert_eq!(same["revisions"].as_array().expect("revisions").len(), 1);
    assert_eq!(same["updatedAt"], first["updatedAt"]);

    // A docs pipeline's key with KNOWLEDGE_WRITE edits it: revision 2 is the key's.
    let key = app.api_key(&ws, "KNOWLEDGE_WRITE").await;
    app.data(
        Some(&key),
        UPSERT,
        input(Some(&id), "Export a post to PDF from its menu."),
    )
    .await;
    let edited = revisions_of(&app, &ws.admin_token, &id).await;
    let revisions = edited["revisions"].as_array().expect("revisions");
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0]["revision"], 2, "newest first");
    assert_eq!(revisions[0]["body"], "Export a post to PDF from its menu.");
    assert_eq!(revisions[1]["body"], "Download posts as CSV.");
    assert_eq!(revisions[0]["editedBy"]["__typename"], "ApiKey");
    assert_eq!(revisions[0]["editedBy"]["name"], "key");
    assert_ne!(edited["updatedAt"], first["updatedAt"]);

    // Nobody else edits the docs.
    let reader = app.api_key(&ws, "INSIGHTS_READ").await;
    let (_, agent) = app.agent(&ws, "Sam", "AGENT").await;
    for token in [&reader, &agent] {
        let refused = app
            .gql(Some(token), UPSERT, input(Some(&id), "Vandalised."))
            .await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused:#}");
    }
    assert_eq!(
        revisions_of(&app, &ws.admin_token, &id).await["revisions"]
            .as_array()
            .expect("revisions")
            .len(),
        2
    );
    let deleted = app
        .data(
            Some(&key),
            "mutation($id: ID!) { deleteArticle(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["deleteArticle"], id.as_str());
}

const IMPACT: &str = "query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) { \
    articleImpact { articleId title revision editedAt windowSeconds conversationsBefore handoffsBefore handoffRateBefore conversationsAfter handoffsAfter handoffRateAfter } \
    docsGaps { question count nowAnswered answeredBy { url } answeredSince } } }";

#[tokio::test]
async fn article_impact_shows_the_handoffs_an_edit_stopped_and_the_gap_it_closed() {
    let app = TestApp::spawn().await;
    let ws = app.workspace_with_ai("Acme").await;
    // No patience for unsure answers: a question the docs do not answer is handed off.
    app.data(
        Some(&ws.admin_token),
        "mutation { updateHandoffPolicy(input: {maxLowConfidenceAnswers: 0}) { maxLowConfidenceAnswers } }",
        json!({}),
    )
    .await;
    let input = |id: Option<&str>, body: &str| json!({ "i": { "id": id, "title": "Exporting posts", "url": "https://docs.test/export", "body": body } });
    let created = app
        .data(
            Some(&ws.admin_token),
            UPSERT,
            input(None, "Download your posts as a CSV file from Settings."),
        )
        .await;
    let id = created["upsertArticle"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let question = "How do I export a post to PDF?";
    for _ in 0..2 {
        let (conversation, _) = app.start_conversation(&ws, Some(question)).await;
        app.settle().await;
        assert_eq!(
            status_of(&app, &ws.admin_token, &conversation).await,
            "QUEUED"
        );
    }
    let range = json!({ "f": "2020-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" });
    let before = app.data(Some(&ws.admin_token), IMPACT, range.clone()).await;
    assert_eq!(
        before["insights"]["articleImpact"],
        json!([]),
        "creating is no edit"
    );
    let gap = &before["insights"]["docsGaps"][0];
    assert_eq!(gap["count"], 2, "{before:#}");
    assert_eq!(gap["nowAnswered"], false);

    // The fix.
    app.data(
        Some(&ws.admin_token),
        UPSERT,
        input(
            Some(&id),
            "To export a post to PDF, open the post and click Export PDF.",
        ),
    )
    .await;
    let (conversation, _) = app.start_conversation(&ws, Some(question)).await;
    app.settle().await;
    assert_eq!(
        status_of(&app, &ws.admin_token, &conversation).await,
        "AI",
        "answered now"
    );

    // Each side is as long as the time since the edit: once it covers the first
    // conversations, the comparison is whole.
    let impact = tokio::time::timeout(TIMEOUT, async {
        loop {
            let read = app.data(Some(&ws.admin_token), IMPACT, range.clone()).await;
            let impact = read["insights"]["articleImpact"][0].clone();
            if impact["conversationsBefore"] == 2 {
                return (impact, read["insights"]["docsGaps"][0].clone());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the window grows to cover the conversations before the edit");
    let (impact, gap) = impact;
    assert_eq!(impact["articleId"], id.as_str());
    assert_eq!(impact["revision"], 2);
    assert_eq!(impact["handoffsBefore"], 2);
    assert_eq!(impact["handoffRateBefore"], 1.0);
    assert_eq!(impact["conversationsAfter"], 1);
    assert_eq!(impact["handoffsAfter"], 0);
    assert_eq!(impact["handoffRateAfter"], 0.0);
    assert_eq!(gap["nowAnswered"], true, "{gap:#}");
    assert_eq!(gap["answeredBy"]["url"], "https://docs.test/export");
    assert_eq!(gap["answeredSince"], impact["editedAt"]);

    // Outside the period of the edit, there is no edit to show.
    let later = app
        .data(
            Some(&ws.admin_token),
            IMPACT,
            json!({ "f": "2099-01-01T00:00:00Z", "t": "2100-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(later["insights"]["articleImpact"], json!([]));
}
