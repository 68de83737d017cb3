//! Booting a server per test, and speaking GraphQL to it.

use std::net::SocketAddr;
use std::time::Duration;

use casefile::{Config, Running};
use serde_json::{Value, json};

/// Every await on the server is bounded, so a broken server fails a test instead of
/// hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The signing secret of test servers, so tests can forge tokens.
pub const TEST_SECRET: &str = "test-secret-for-integration-tests";

pub struct TestApp {
    pub running: Running,
    pub client: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// A database URL for one test: a new SQLite file, or a new PostgreSQL database on
/// the server of `CASEFILE_TEST_DATABASE_URL`.
pub async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("CASEFILE_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            use sqlx::Connection;
            let mut url = url::Url::parse(&base).expect("CASEFILE_TEST_DATABASE_URL is a URL");
            // Named after the base database, so a CI run can drop what it made.
            let base_name = url.path().trim_start_matches('/').to_owned();
            let name = format!(
                "{base_name}_{}",
                ulid::Ulid::new().to_string().to_lowercase()
            );
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            // The name is ours: the base name and a lower-case ULID.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            url.set_path(&name);
            (url.to_string(), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("casefile.db").display());
            (url, Some(dir))
        }
    }
}

/// Serve `router` on an ephemeral port of `127.0.0.1` (the tests' stand-ins for
/// model and embedding servers); its address.
pub async fn serve_router(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Fail unless the tests run against PostgreSQL (`CASEFILE_TEST_DATABASE_URL`):
/// for the tests, marked `#[ignore]`, of what only PostgreSQL does.
pub fn require_postgres() {
    assert!(
        std::env::var("CASEFILE_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()),
        "set CASEFILE_TEST_DATABASE_URL to a PostgreSQL server to run this test"
    );
}

/// The configuration of most tests: rate limits off (`CASEFILE_RATE_LIMITS=off`),
/// since tests create agents, conversations and messages faster than any person.
/// The tests of the limits themselves use [`limited_config`].
pub fn test_config(database_url: &str) -> Config {
    let mut config = limited_config(database_url);
    config.limits.rate_limits = false;
    config
}

/// The production defaults, limits on, with the test signing secret.
pub fn limited_config(database_url: &str) -> Config {
    let mut config = Config::for_database(database_url);
    config.jwt_secret = Some(TEST_SECRET.to_owned());
    config
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let (url, dir) = fresh_database().await;
        Self::spawn_with(test_config(&url), dir).await
    }

    /// A server with the production rate limits.
    pub async fn spawn_limited() -> TestApp {
        let (url, dir) = fresh_database().await;
        Self::spawn_with(limited_config(&url), dir).await
    }

    pub async fn spawn_with(config: Config, dir: Option<tempfile::TempDir>) -> TestApp {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let running = tokio::time::timeout(TIMEOUT, casefile::spawn(config, addr))
            .await
            .expect("server starts in time")
            .expect("server starts");
        TestApp {
            running,
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("client"),
            _dir: dir,
        }
    }

    /// A test app around a server started some other way.
    pub fn from_running(running: Running, dir: Option<tempfile::TempDir>) -> TestApp {
        TestApp {
            running,
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("client"),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running.addr, path)
    }

    /// POST a GraphQL operation; the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request is sent");
        response.json().await.expect("response is JSON")
    }

    /// POST a GraphQL operation that must succeed; its `data`.
    pub async fn data(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Wait until the server has finished handling every visitor message (tagging,
    /// the handoff policy, the AI's answer).
    pub async fn settle(&self) {
        tokio::time::timeout(TIMEOUT, async {
            while self.running.state.pipelines.running() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("background work finishes in time");
    }

    /// Wait until exactly `n` subscription streams listen on the server: the
    /// acknowledgement that subscriptions have started (the protocols have none),
    /// or that those that ended have let go. Agents running one shareable
    /// subscription (see `casefile::ws::shared`) share one stream.
    pub async fn listening(&self, n: usize) {
        let events = &self.running.state.events;
        tokio::time::timeout(TIMEOUT, async {
            while events.streams_listening() != n {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{n} subscriptions listening in time, not {}",
                events.streams_listening()
            )
        });
    }

    /// Create a workspace through the CLI's code path, with the built-in AI
    /// responder off (tests of everything but the AI want a quiet conversation).
    pub async fn workspace(&self, name: &str) -> Workspace {
        let ws = self.workspace_with_ai(name).await;
        self.data(
            Some(&ws.admin_token),
            "mutation { updateWorkspace(input: { responderEnabled: false }) { responderEnabled } }",
            json!({}),
        )
        .await;
        ws
    }

    /// Create a workspace through the CLI's code path, AI responder on.
    pub async fn workspace_with_ai(&self, name: &str) -> Workspace {
        let email = format!(
            "owner-{}@example.com",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let created = casefile::cli::create_workspace(
            &self.running.state,
            name,
            &email,
            "correct horse battery",
            None,
        )
        .await
        .expect("workspace is created");
        Workspace {
            id: created.workspace_id,
            widget_key: created.widget_key,
            admin_id: created.admin_id,
            admin_token: created.admin_token,
            admin_email: email,
        }
    }

    /// Start a conversation from the widget; its id and the visitor token.
    pub async fn start_conversation(
        &self,
        ws: &Workspace,
        message: Option<&str>,
    ) -> (String, String) {
        let data = self
            .data(
                None,
                "mutation($input: StartConversationInput!) { startConversation(input: $input) { conversation { id } visitorToken } }",
                json!({ "input": { "widgetKey": ws.widget_key, "message": message, "context": { "pageUrl": "https://example.com/docs" } } }),
            )
            .await;
        let payload = &data["startConversation"];
        (
            payload["conversation"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            payload["visitorToken"].as_str().expect("token").to_owned(),
        )
    }

    pub async fn send(&self, token: &str, conversation_id: &str, body: &str) -> Value {
        self.data(
            Some(token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq author body internal } }",
            json!({ "input": { "conversationId": conversation_id, "body": body } }),
        )
        .await["sendMessage"]
            .clone()
    }

    /// `token`'s agent takes `conversation` from the AI (as its first public reply
    /// would), so that the message saying who joined comes before what a test
    /// sends.
    pub async fn take_over(&self, token: &str, conversation: &str) {
        self.data(
            Some(token),
            "mutation($c: ID!) { takeOver(conversationId: $c) { id } }",
            json!({ "c": conversation }),
        )
        .await;
    }

    /// Ask for a person in `conversation` as `token`'s holder; the handoff's id.
    pub async fn request_human(&self, token: &str, conversation: &str) -> String {
        self.data(
            Some(token),
            "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
            json!({ "c": conversation }),
        )
        .await["requestHuman"]["id"]
            .as_str()
            .expect("handoff id")
            .to_owned()
    }

    /// An API key of the workspace with `scopes` (e.g. `"LEADS_READ, AI_WRITE"`);
    /// its secret.
    pub async fn api_key(&self, ws: &Workspace, scopes: &str) -> String {
        self.data(
            Some(&ws.admin_token),
            &format!("mutation {{ createApiKey(name: \"key\", scopes: [{scopes}]) {{ secret }} }}"),
            json!({}),
        )
        .await["createApiKey"]["secret"]
            .as_str()
            .expect("secret")
            .to_owned()
    }

    /// Create an agent with `role` in the workspace; its id and token.
    pub async fn agent(&self, ws: &Workspace, name: &str, role: &str) -> (String, String) {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase(),
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let data = self
            .data(
                Some(&ws.admin_token),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({ "input": { "email": email, "name": name, "password": "agent-password", "role": role } }),
            )
            .await;
        let id = data["createAgent"]["id"].as_str().expect("id").to_owned();
        let signed = self
            .data(
                None,
                "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": "agent-password" }),
            )
            .await;
        (
            id,
            signed["signIn"]["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        )
    }
}

pub struct Workspace {
    pub id: String,
    pub widget_key: String,
    pub admin_id: String,
    pub admin_token: String,
    pub admin_email: String,
}

/// The `extensions.code` of the first error of a response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {body:#}"))
}
