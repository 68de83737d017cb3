//! What a push relay for a mobile app starts from: receive Casefile's webhooks, make
//! sure each one really comes from Casefile, and act on escalations.
//!
//! ```sh
//! CASEFILE_WEBHOOK_SECRET=whsec_… cargo run --example webhook_receiver [-- --addr 0.0.0.0:9000]
//! ```
//!
//! It listens on `--addr`, or `RECEIVER_ADDR`, or `127.0.0.1:9000`, and takes POSTs
//! on any path. Deliveries follow [Standard Webhooks]: any of its libraries verifies
//! one in a single call; this example does the checks by hand to show what they are:
//!
//! 1. `webhook-timestamp` is within five minutes of now, so a captured delivery
//!    cannot be replayed later;
//! 2. one of the space-separated `v1,<base64>` values in `webhook-signature` is the
//!    HMAC-SHA256, keyed with the secret, of `{webhook-id}.{webhook-timestamp}.{body}`
//!    over the raw body bytes (parse the JSON only after), compared in constant
//!    time. There are several values while Casefile rotates the secret.
//!
//! A genuine delivery is answered 204, anything else 401. Deliveries are retried
//! until answered 2xx, so the same `webhook-id` can arrive twice: a real relay
//! remembers recent ids and drops repeats.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How far `webhook-timestamp` may be from our clock, either way.
const TOLERANCE_SECS: i64 = 5 * 60;

/// The HMAC key, decoded once from the `whsec_…` secret.
type Key = Arc<Vec<u8>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secret = std::env::var("CASEFILE_WEBHOOK_SECRET")
        .context("set CASEFILE_WEBHOOK_SECRET to the endpoint's whsec_… secret")?;
    let key = decode_secret(&secret).context("CASEFILE_WEBHOOK_SECRET is not a whsec_… secret")?;
    let addr = listen_addr();
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .with_state(Arc::new(key));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    println!("waiting for webhooks on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// `--addr HOST:PORT`, else `RECEIVER_ADDR`, else loopback port 9000.
fn listen_addr() -> String {
    let mut args = std::env::args().skip_while(|arg| arg != "--addr").skip(1);
    args.next()
        .or_else(|| std::env::var("RECEIVER_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned())
}

/// The key bytes of `whsec_<base64>` (the prefix is optional, as in the libraries).
fn decode_secret(secret: &str) -> anyhow::Result<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    Ok(STANDARD.decode(encoded.trim())?)
}

/// Takes the body as raw bytes: the signature covers them exactly, and re-encoding
/// parsed JSON would not give them back.
async fn receive(State(key): State<Key>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Err(reason) = verify(&key, &headers, &body, unix_now()) {
        eprintln!("refused a delivery: {reason}");
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => print_event(&event),
        Err(err) => eprintln!("a genuine delivery that is not JSON: {err}"),
    }
    StatusCode::NO_CONTENT
}

/// Checks a delivery the Standard Webhooks way; the error says which check failed.
fn verify(key: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), &'static str> {
    let id = header(headers, "webhook-id")?;
    let timestamp = header(headers, "webhook-timestamp")?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number")?;
    if (now - sent).abs() > TOLERANCE_SECS {
        return Err("webhook-timestamp is more than five minutes off");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "unusable secret")?;
    // The header text as sent, not the parsed number: the signature covers the text.
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let genuine = header(headers, "webhook-signature")?
        .split(' ')
        .filter_map(|signature| signature.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        // `verify_slice` compares in constant time, so timing tells an attacker
        // nothing about how close a forged signature came.
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if genuine {
        Ok(())
    } else {
        Err("no webhook-signature matches")
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, &'static str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or("a webhook-* header is missing")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// One line per event: the escalation's essentials, or just the type for the rest.
fn print_event(event: &Value) {
    let kind = text(&event["type"]);
    if kind == "HANDOFF_REQUESTED" {
        println!(
            "{kind}: handoff {} ({}) in conversation {}",
            text(&event["handoff"]["id"]),
            text(&event["handoff"]["reason"]),
            text(&event["conversation"]["id"]),
        );
    } else {
        println!("{kind} ({})", text(&event["id"]));
    }
}

/// A JSON value as a person reads it: strings without quotes, "-" for absent.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
