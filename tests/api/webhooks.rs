//! Webhooks: signed (checked with the independent `standardwebhooks` crate), in
//! order, retried, disabled after the retry window, resumed after a restart, and
//! delivered once with two servers on one database.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TIMEOUT, TestApp, Workspace, error_code, fresh_database, test_config};

/// What a receiver got: headers and body.
#[derive(Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A local receiver that records every request and answers `status`.
pub struct Receiver {
    pub url: String,
    pub status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct Shared {
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    shared
        .got
        .lock()
        .expect("lock")
        .push(Received { headers, body });
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).expect("status")
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let shared = Shared {
            status: Arc::new(AtomicU16::new(status)),
            got: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            status: shared.status,
            got: shared.got,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Wait until `done` holds of what arrived.
    pub async fn until(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let got = self.got();
                if done(&got) {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the deliveries arrive in time")
    }
}

pub fn body(received: &Received) -> Value {
    serde_json::from_str(&received.body).expect("JSON body")
}

/// The message bodies delivered, in order (each delivery of each event).
fn messages(got: &[Received]) -> Vec<String> {
    got.iter()
        .filter_map(|r| body(r)["message"]["body"].as_str().map(str::to_owned))
        .collect()
}

pub async fn serve(retry_base_ms: u64, retry_for_ms: u64) -> TestApp {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.webhook_allow_private = true;
    // Secrets sealed at rest: every delivery here is signed with a secret the
    // server opened from its sealed row.
    config.master_key = Some(casefile::config::Secret::new(crate::secrets::MASTER_KEY));
    config.webhook_retry_base = Duration::from_millis(retry_base_ms);
    config.webhook_retry_for = Duration::from_millis(retry_for_ms);
    TestApp::spawn_with(config, dir).await
}

pub const CREATE: &str = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id enabled } } }";

/// A webhook of `ws` to `url` for message events; its id and secret.
async fn create(app: &TestApp, ws: &Workspace, url: &str) -> (String, String) {
    let data = app
        .data(
            Some(&ws.admin_token),
            CREATE,
            json!({ "input": { "url": url, "eventTypes": ["MESSAGE_CREATED"], "description": "test" } }),
        )
        .await;
    let created = &data["createWebhook"];
    (
        created["webhook"]["id"].as_str().expect("id").to_owned(),
        created["secret"].as_str().expect("secret").to_owned(),
    )
}

fn verify(secret: &str, received: &Received) {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    webhook
        .verify(received.body.as_bytes(), &received.headers)
        .expect("the signature verifies independently");
}

#[tokio::test]
async fn deliveries_are_signed_in_order_and_verify_independently() {
    let app = serve(10, 60_000).await;
    let receiver = Receiver::start(204).await;
    let ws = app.workspace("Acme").await;
    let (_, secret) = create(&app, &ws, &receiver.url).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (conversation, visitor) = app.start_conversation(&ws, Some("one")).await;
    for body in ["two", "three", "four"] {
        app.send(&visitor, &conversation, body).await;
    }
    let got = receiver.until(|got| got.len() >= 4).await;
    assert_eq!(messages(&got), ["one", "two", "three", "four"]);
    let events = app
        .data(
            Some(&ws.admin_token),
            "{ events(types: [MESSAGE_CREATED]) { edges { node { id cursor } } } }",
            json!({}),
        )
        .await;
    for (received, edge) in got
        .iter()
        .zip(events["events"]["edges"].as_array().expect("edges"))
    {
        verify(&secret, received);
        let envelope = body(received);
        assert_eq!(
            received.headers["webhook-id"],
            edge["node"]["id"].as_str().expect("id")
        );
        assert_eq!(envelope["id"], edge["node"]["id"]);
        assert_eq!(envelope["cursor"], edge["node"]["cursor"]);
        assert_eq!(envelope["type"], "MESSAGE_CREATED");
        assert_eq!(envelope["conversation"]["id"], conversation);
        assert_eq!(received.headers["content-type"], "application/json");
    }
    // A tampered body does not verify.
    let mut forged = got[0].clone();
    forged.body = forged.body.replace("one", "eno");
    let webhook = standardwebhooks::Webhook::new(&secret).expect("secret");
    assert!(
        webhook
            .verify(forged.body.as_bytes(), &forged.headers)
            .is_err()
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_the_order_is_kept() {
    let app = serve(10, 60_000).await;
    let receiver = Receiver::start(500).await;
    let ws = app.workspace("Acme").await;
    let (webhook, secret) = create(&app, &ws, &receiver.url).await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("first")).await;
    app.send(&visitor, &conversation, "second").await;
    // Three failed attempts at the first event, and nothing after it meanwhile.
    let got = receiver.until(|got| got.len() >= 3).await;
    assert!(
        messages(&got).iter().all(|m| m == "first"),
        "{:?}",
        messages(&got)
    );
    receiver.status.store(200, Ordering::SeqCst);
    let got = receiver
        .until(|got| messages(got).last().is_some_and(|m| m == "second"))
        .await;
    let delivered = messages(&got);
    let first_success = delivered
        .iter()
        .position(|m| m == "second")
        .expect("second");
    assert!(delivered[..first_success].iter().all(|m| m == "first"));
    for received in &got {
        verify(&secret, received);
    }
    // Retries keep the event's id.
    let ids: std::collections::BTreeSet<_> = got[..first_success]
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    // Successes are recorded a few at a time: wait for the first.
    let attempts = tokio::time::timeout(TIMEOUT, async {
        loop {
            let data = app
                .data(
                    Some(&ws.admin_token),
                    "query($w: ID!) { webhookDeliveries(webhookId: $w, first: 100) { attempt status responseCode latencyMs } }",
                    json!({ "w": webhook }),
                )
                .await;
            if data["webhookDeliveries"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["status"] == "SUCCEEDED"))
            {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the success is recorded");
    let attempts = attempts["webhookDeliveries"].as_array().expect("attempts");
    let oldest = attempts.last().expect("an attempt");
    assert_eq!(oldest["attempt"], 1);
    assert_eq!(oldest["status"], "FAILED");
    assert_eq!(oldest["responseCode"], 500);
    assert!(
        attempts
            .iter()
            .any(|a| a["status"] == "SUCCEEDED" && a["responseCode"] == 200)
    );
}

#[tokio::test]
async fn a_webhook_failing_for_the_whole_window_is_disabled_and_resumes_when_enabled() {
    let app = serve(10, 200).await;
    let receiver = Receiver::start(503).await;
    let ws = app.workspace("Acme").await;
    let (webhook, _) = create(&app, &ws, &receiver.url).await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("stuck")).await;
    let disabled = tokio::time::timeout(TIMEOUT, async {
        loop {
            let data = app
                .data(
                    Some(&ws.admin_token),
                    "{ webhooks { id enabled disabledReason } }",
                    json!({}),
                )
                .await;
            let hook = data["webhooks"][0].clone();
            if hook["enabled"] == false {
                return hook;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("disabled in time");
    assert!(
        disabled["disabledReason"]
            .as_str()
            .expect("reason")
            .contains("503"),
        "{disabled}"
    );
    app.send(&visitor, &conversation, "while disabled").await;
    receiver.status.store(200, Ordering::SeqCst);
    let before = receiver.got().len();
    app.data(
        Some(&ws.admin_token),
        "mutation($w: ID!) { updateWebhook(input: { webhookId: $w, enabled: true }) { enabled } }",
        json!({ "w": webhook }),
    )
    .await;
    let got = receiver
        .until(|got| messages(got).last().is_some_and(|m| m == "while disabled"))
        .await;
    assert_eq!(messages(&got[before..]), ["stuck", "while disabled"]);
}

#[tokio::test]
async fn delivery_resumes_after_a_restart() {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.webhook_allow_private = true;
    config.webhook_retry_base = Duration::from_millis(10);
    let app = TestApp::spawn_with(config.clone(), None).await;
    let receiver = Receiver::start(500).await;
    let ws = app.workspace("Acme").await;
    let (_, secret) = create(&app, &ws, &receiver.url).await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("before the restart"))
        .await;
    app.send(&visitor, &conversation, "also before").await;
    receiver.until(|got| !got.is_empty()).await;
    app.running.shutdown().await.expect("stops");
    let before = receiver.got().len();

    receiver.status.store(200, Ordering::SeqCst);
    let restarted = TestApp::spawn_with(config, dir).await;
    let got = receiver
        .until(|got| messages(got).last().is_some_and(|m| m == "also before"))
        .await;
    // The restarted server picks up at the event the first could not deliver.
    assert_eq!(
        messages(&got[before..]),
        ["before the restart", "also before"]
    );
    verify(&secret, got.last().expect("a delivery"));
    drop(restarted);
}

#[tokio::test]
async fn two_servers_deliver_each_event_once() {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.webhook_allow_private = true;
    let one = TestApp::spawn_with(config.clone(), dir).await;
    let two = TestApp::spawn_with(config, None).await;
    let receiver = Receiver::start(200).await;
    let ws = one.workspace("Acme").await;
    create(&one, &ws, &receiver.url).await;
    let (conversation, visitor) = one.start_conversation(&ws, Some("m0")).await;
    for i in 1..20 {
        let app = if i % 2 == 0 { &one } else { &two };
        app.send(&visitor, &conversation, &format!("m{i}")).await;
    }
    let got = receiver.until(|got| messages(got).len() >= 20).await;
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(messages(&got), expected, "each once, in order");
}

#[tokio::test]
async fn private_urls_and_non_admins_are_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://localhost:9/hook",
        "ftp://example.com/",
    ] {
        let refused = app
            .gql(
                Some(&ws.admin_token),
                CREATE,
                json!({ "input": { "url": url } }),
            )
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{url}: {refused}");
    }
    // Another workspace's teams and tags are nothing here (found by the fuzz test).
    let other = app.workspace("Other").await;
    let theirs = app
        .data(
            Some(&other.admin_token),
            "mutation { createTeam(input: { name: \"Theirs\" }) { id } createTag(input: { label: \"Theirs\" }) { id } }",
            json!({}),
        )
        .await;
    for (field, id) in [
        ("teamIds", &theirs["createTeam"]["id"]),
        ("tagIds", &theirs["createTag"]["id"]),
    ] {
        let refused = app
            .gql(
                Some(&ws.admin_token),
                CREATE,
                json!({ "input": { "url": "https://example.com/hook", field: [id] } }),
            )
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{field}: {refused}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], field);
    }
    let (_, agent) = app.agent(&ws, "Sam", "AGENT").await;
    let refused = app
        .gql(
            Some(&agent),
            CREATE,
            json!({ "input": { "url": "https://example.com/hook" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let app = serve(10, 60_000).await;
    let receiver = Receiver::start(204).await;
    let ws = app.workspace("Acme").await;
    let (webhook, old) = create(&app, &ws, &receiver.url).await;
    let rotated = app
        .data(
            Some(&ws.admin_token),
            "mutation($w: ID!) { rotateWebhookSecret(webhookId: $w) { secret } }",
            json!({ "w": webhook }),
        )
        .await;
    let new = rotated["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    app.start_conversation(&ws, Some("after rotation")).await;
    let got = receiver.until(|got| !got.is_empty()).await;
    let signatures = got[0].headers["webhook-signature"].to_str().expect("ascii");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    verify(&new, &got[0]);
    verify(&old, &got[0]);
}
