//! What an on-call agent's mobile app does: subscribe to escalations and print each
//! case file as it arrives; with `--accept`, accept the first one.
//!
//! Run it against the demo (which prints the agents' tokens):
//!
//! ```sh
//! cargo run --release -- --demo                       # in one terminal
//! cargo run --example escalations -- --token eyJ… [--team team_…] [--accept]
//! ```
//!
//! Then ask for a person in a chat ("can I talk to a human?"). `--url` (default
//! `http://127.0.0.1:8080`) and `--count N` (stop after N escalations) are optional;
//! `CASEFILE_TOKEN` may stand for `--token`.

#[path = "support/client.rs"]
mod client;

use anyhow::Context;
use serde_json::{Value, json};

use client::{Client, arg, flag};

fn print_case_file(handoff: &Value) {
    let case = &handoff["caseFile"];
    println!(
        "── escalation {} ({}) for {}",
        handoff["id"].as_str().unwrap_or("?"),
        handoff["reason"].as_str().unwrap_or("?"),
        handoff["team"]["name"].as_str().unwrap_or("no team")
    );
    println!("   {}", case["summary"].as_str().unwrap_or_default());
    if let Some(lead) = case["lead"].as_object() {
        println!(
            "   lead: {} {} {}",
            lead.get("name").and_then(Value::as_str).unwrap_or(""),
            lead.get("email").and_then(Value::as_str).unwrap_or(""),
            lead.get("fields").map(Value::to_string).unwrap_or_default()
        );
    }
    for answer in case["aiAnswers"].as_array().into_iter().flatten() {
        let sources: Vec<&str> = answer["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["title"].as_str())
            .collect();
        println!(
            "   AI ({:.2}): cited {}",
            answer["confidence"].as_f64().unwrap_or(0.0),
            sources.join(", ")
        );
    }
    let tags: Vec<String> = case["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{} [{}]",
                t["tag"]["label"].as_str().unwrap_or(""),
                t["evidence"].as_str().unwrap_or("")
            )
        })
        .collect();
    println!("   tags: {}", tags.join(", "));
    println!(
        "   messages: {}",
        case["transcript"].as_array().map_or(0, Vec::len)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("url", "CASEFILE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let token = arg("token", "CASEFILE_TOKEN")
        .context("give an agent token with --token or CASEFILE_TOKEN")?;
    let count: Option<usize> = arg("count", "ESCALATIONS_COUNT")
        .map(|c| c.parse())
        .transpose()?;
    let client = Client::new(&url, Some(token));
    let teams: Option<Vec<String>> = arg("team", "CASEFILE_TEAM").map(|t| vec![t]);
    let mut escalations = client
        .subscribe("Escalations", json!({ "teamIds": teams }))
        .await?;
    println!("waiting for escalations…");
    let mut seen = 0;
    let mut accepted = false;
    while let Some(item) = escalations.recv().await {
        let handoff = item?["escalations"].clone();
        print_case_file(&handoff);
        if flag("accept") && !accepted {
            let id = handoff["id"].as_str().context("handoff id")?;
            match client.run("AcceptHandoff", json!({ "id": id })).await {
                Ok(data) => println!(
                    "   accepted by {}",
                    data["acceptHandoff"]["acceptedBy"]["name"]
                        .as_str()
                        .unwrap_or("you")
                ),
                Err(err) => println!("   could not accept: {err}"),
            }
            accepted = true;
        }
        seen += 1;
        if count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}
