//! The server as a whole: health, GraphiQL, the checked-in schema, bootstrap and
//! sign-in, tokens across restarts, batched loading.

use serde_json::json;

use crate::helpers::{TestApp, error_code, fresh_database};

#[tokio::test]
async fn schema_file_matches_the_served_schema() {
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
            .expect("schema.graphql exists");
    assert!(
        checked_in == casefile::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn health_check_answers_when_the_database_does() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("body");
    assert!(html.contains("<div id=\"graphiql\">"), "{html}");
    // Everything the page loads comes from this server: no CDN.
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "{html}"
    );
    for (asset, kind) in [
        ("/graphiql/graphiql.js", "text/javascript"),
        ("/graphiql/graphiql.css", "text/css"),
    ] {
        let link = html
            .split('"')
            .find(|part| part.starts_with(asset))
            .unwrap_or_else(|| panic!("{asset} in {html}"));
        let response = app.client.get(app.url(link)).send().await.expect("sent");
        assert_eq!(response.status(), 200, "{link}");
        let served = response.headers()["content-type"].to_str().expect("type");
        assert!(served.starts_with(kind), "{link}: {served}");
        assert!(response.headers().get("content-encoding").is_none());
        let plain = response.bytes().await.expect("body");
        assert!(plain.len() > 10_000, "{link}");

        // A browser gets the same file gzipped, at a fraction of the size.
        let response = app
            .client
            .get(app.url(link))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .expect("sent");
        assert_eq!(response.headers()["content-encoding"], "gzip", "{link}");
        assert_eq!(response.headers()["vary"], "accept-encoding", "{link}");
        let gzipped = response.bytes().await.expect("body");
        assert!(
            gzipped.len() * 2 < plain.len(),
            "{link}: {} bytes",
            gzipped.len()
        );
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzipped[..]),
            &mut unzipped,
        )
        .expect("gzip");
        assert!(unzipped == plain, "{link}: the gzipped file is the file");
    }
}

#[tokio::test]
async fn owner_created_by_the_cli_signs_in_and_sees_themself() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme CMS").await;

    let signed = app
        .data(
            None,
            "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token agent { id role } } }",
            json!({ "e": ws.admin_email, "p": "correct horse battery" }),
        )
        .await;
    let token = signed["signIn"]["token"].as_str().expect("token");
    assert_eq!(signed["signIn"]["agent"]["role"], "OWNER");

    let viewer = app
        .data(
            Some(token),
            "{ viewer { id email role workspace { id name } } }",
            json!({}),
        )
        .await;
    assert_eq!(viewer["viewer"]["id"], ws.admin_id.as_str());
    assert_eq!(viewer["viewer"]["workspace"]["name"], "Acme CMS");
    let cli_token = app
        .data(Some(&ws.admin_token), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(cli_token["viewer"]["id"], ws.admin_id.as_str());
}

#[tokio::test]
async fn wrong_password_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let body = app
        .gql(
            None,
            "mutation($e: String!) { signIn(email: $e, password: \"wrong password\") { token } }",
            json!({ "e": ws.admin_email }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn generated_secret_survives_a_restart() {
    let (url, dir) = fresh_database().await;
    let config = casefile::Config::for_database(&url);
    assert!(config.jwt_secret.is_none());
    let first = TestApp::spawn_with(config.clone(), None).await;
    let ws = first.workspace("Acme").await;
    first.running.shutdown().await.expect("clean shutdown");

    let second = TestApp::spawn_with(config, dir).await;
    let viewer = second
        .data(Some(&ws.admin_token), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(viewer["viewer"]["id"], ws.admin_id.as_str());
}

#[tokio::test]
async fn an_inbox_page_costs_at_most_five_statements_at_any_size() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (agent_id, agent_token) = app.agent(&ws, "Alex", "AGENT").await;
    let tag = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTag(input: { label: \"Media library\", keywords: [\"upload\"] }) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .as_str()
        .expect("tag id")
        .to_owned();
    for i in 0..120 {
        let started = app
            .data(
                None,
                "mutation($k: String!, $m: String!) { startConversation(input: { widgetKey: $k, message: $m, lead: { name: \"Lee\", email: \"lee@example.com\" } }) { conversation { id } } }",
                json!({ "k": ws.widget_key, "m": format!("question {i}") }),
            )
            .await;
        let conversation = started["startConversation"]["conversation"]["id"].clone();
        app.data(
            Some(&agent_token),
            "mutation($c: ID!, $a: ID!, $t: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } tagConversation(conversationId: $c, tagId: $t) { id } }",
            json!({ "c": conversation, "a": agent_id, "t": tag }),
        )
        .await;
        if i % 3 == 0 {
            app.data(
                Some(&agent_token),
                "mutation($c: ID!) { takeOver(conversationId: $c) { id } }",
                json!({ "c": conversation }),
            )
            .await;
        }
    }
    app.settle().await;

    const INBOX: &str = "query($n: Int) { conversations(first: $n, orderBy: RECENTLY_UPDATED) { edges { node { \
        id status lead { name email } assignee { name } lastMessage { body seq author } \
        tags { source tag { label } } openHandoff { reason status } } } } }";
    for first in [50, 120] {
        let before = app.running.state.db.statement_count();
        let data = app
            .data(Some(&agent_token), INBOX, json!({ "n": first }))
            .await;
        let statements = app.running.state.db.statement_count() - before;

        let edges = data["conversations"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), first as usize);
        assert!(edges.iter().all(|e| e["node"]["lead"]["name"] == "Lee"));
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["assignee"]["name"] == "Alex")
        );
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["tags"][0]["tag"]["label"] == "Media library")
        );
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["lastMessage"]["seq"].as_i64().is_some())
        );
        let taken = edges
            .iter()
            .filter(|e| e["node"]["openHandoff"]["reason"] == "AGENT_TAKEOVER")
            .count();
        if first == 120 {
            assert_eq!(taken, 40, "every third conversation was taken over");
        }
        assert!(taken > 0);
        assert!(
            statements <= 5,
            "an inbox page of {first} took {statements} statements"
        );
    }
}
