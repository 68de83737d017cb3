//! Knowledge articles: management, search, import, and the demo workspace.

use serde_json::json;

use crate::helpers::{TestApp, error_code};

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
