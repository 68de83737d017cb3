//! What an integrator does with an `INSIGHTS_READ` API key: print the digest of the
//! last days as tables.
//!
//! Against the demo:
//!
//! ```sh
//! cargo run --release -- --demo                                   # one terminal
//! # create a key with an owner token (printed by the demo):
//! curl -s localhost:8080/graphql -H 'content-type: application/json' -H "authorization: Bearer $OWNER" \
//!   -d '{"query":"mutation { createApiKey(name: \"report\", scopes: [INSIGHTS_READ]) { secret } }"}'
//! cargo run --example insights -- --key ck_… [--days 30] [--url http://127.0.0.1:8080]
//! ```
//!
//! `CASEFILE_API_KEY` may stand for `--key`.

#[path = "support/client.rs"]
mod client;

use anyhow::Context;
use serde_json::{Value, json};

use client::{Client, arg};

fn number(value: &Value) -> String {
    match value {
        Value::Null => "–".to_owned(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("url", "CASEFILE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let key =
        arg("key", "CASEFILE_API_KEY").context("give an API key with --key or CASEFILE_API_KEY")?;
    let days: i64 = arg("days", "INSIGHTS_DAYS")
        .map(|d| d.parse())
        .transpose()?
        .unwrap_or(30);
    let to = chrono::Utc::now() + chrono::Duration::minutes(1);
    let from = to - chrono::Duration::days(days);
    let client = Client::new(&url, Some(key));
    let data = client
        .run(
            "Insights",
            json!({ "from": from.to_rfc3339(), "to": to.to_rfc3339() }),
        )
        .await?;
    let digest = &data["insights"];

    println!("Insights, last {days} days\n");
    println!("| metric | value |\n| --- | --- |");
    for (label, field) in [
        ("conversations", "conversations"),
        ("resolved by the AI", "aiResolved"),
        ("handoffs", "handoffs"),
        ("handoff rate", "handoffRate"),
        ("median seconds to accept", "medianSecondsToAccept"),
        ("p90 seconds to accept", "p90SecondsToAccept"),
        ("median seconds to resolve", "medianSecondsToResolve"),
        ("CSAT (1–5)", "csat"),
    ] {
        println!("| {label} | {} |", number(&digest[field]));
    }
    println!(
        "\n| topic | conversations | handoffs | rate | previous period |\n| --- | --- | --- | --- | --- |"
    );
    for topic in digest["topics"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {} |",
            topic["tag"]["label"].as_str().unwrap_or("?"),
            number(&topic["conversations"]),
            number(&topic["handoffs"]),
            number(&topic["handoffRate"]),
            number(&topic["previousPeriodHandoffs"])
        );
    }
    println!("\n| reason | handoffs |\n| --- | --- |");
    for reason in digest["reasons"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} |",
            reason["reason"].as_str().unwrap_or("?"),
            number(&reason["handoffs"])
        );
    }
    println!("\n| docs gap (articles to write) | asked |\n| --- | --- |");
    for gap in digest["docsGaps"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} |",
            gap["question"].as_str().unwrap_or("?"),
            number(&gap["count"])
        );
    }
    Ok(())
}
