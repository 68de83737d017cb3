//! An external AI agent: the workspace's built-in responder is off, and this
//! program answers instead. It follows the inbox with an `AI_WRITE` API key, and for
//! each new visitor message in a conversation the AI controls it asks its model
//! (behind the [`Model`] trait; here, a simple rule over the docs search), posts the
//! answer with its confidence and sources, and asks for a person when unsure.
//!
//! Against the demo:
//!
//! ```sh
//! cargo run --release -- --demo                                   # one terminal
//! # with an owner token: turn the responder off and create an AI key
//! curl -s localhost:8080/graphql -H 'content-type: application/json' -H "authorization: Bearer $OWNER" \
//!   -d '{"query":"mutation { updateWorkspace(input: {responderEnabled: false}) { id } createApiKey(name: \"bot\", scopes: [AI_WRITE]) { secret } }"}'
//! cargo run --example ai_agent -- --key ck_… [--count N] [--url http://127.0.0.1:8080]
//! ```
//!
//! `CASEFILE_API_KEY` may stand for `--key`; `--count N` stops after N messages.

#[path = "support/client.rs"]
mod client;

use anyhow::Context;
use serde_json::{Value, json};

use client::{Client, arg};

/// What the agent's model returns for a question.
struct Reply {
    body: String,
    confidence: f64,
    article_ids: Vec<String>,
}

/// The agent's model. A real one would call an LLM; this one answers with the best
/// docs match, sure only when the question's words appear in the article's title.
trait Model {
    fn answer(&self, question: &str, articles: &[Value]) -> Reply;
}

struct TitleMatch;

impl Model for TitleMatch {
    fn answer(&self, question: &str, articles: &[Value]) -> Reply {
        let Some(best) = articles.first() else {
            return Reply {
                body: "I don't know that one yet.".to_owned(),
                confidence: 0.1,
                article_ids: Vec::new(),
            };
        };
        let title = best["title"].as_str().unwrap_or_default().to_lowercase();
        let words: Vec<String> = question
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 3)
            .map(str::to_lowercase)
            .collect();
        let hits = words
            .iter()
            .filter(|w| title.contains(&w[..w.len().min(5)]))
            .count();
        let confidence = if words.is_empty() {
            0.1
        } else {
            (hits as f64 / words.len() as f64 * 1.5).min(0.95)
        };
        Reply {
            body: format!(
                "This article should help: {} ({})",
                best["title"].as_str().unwrap_or_default(),
                best["url"].as_str().unwrap_or_default()
            ),
            confidence,
            article_ids: vec![best["id"].as_str().unwrap_or_default().to_owned()],
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("url", "CASEFILE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let key = arg("key", "CASEFILE_API_KEY")
        .context("give an AI_WRITE API key with --key or CASEFILE_API_KEY")?;
    let count: Option<usize> = arg("count", "AI_AGENT_COUNT")
        .map(|c| c.parse())
        .transpose()?;
    let client = Client::new(&url, Some(key));
    let model = TitleMatch;
    let mut inbox = client
        .subscribe("Inbox", json!({ "filter": { "status": ["AI"] } }))
        .await?;
    println!("answering visitor messages…");
    let mut handled = 0;
    while let Some(event) = inbox.recv().await {
        let event = event?["inbox"].clone();
        let visitor_message =
            event["kind"] == "MESSAGE_CREATED" && event["message"]["author"] == "VISITOR";
        if !visitor_message || event["conversation"]["status"] != "AI" {
            continue;
        }
        let conversation = event["conversation"]["id"]
            .as_str()
            .context("conversation id")?
            .to_owned();
        let question = event["message"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let seq = event["message"]["seq"].as_i64().context("seq")?;
        let found = client
            .run("SearchArticles", json!({ "query": question, "first": 3 }))
            .await?;
        let articles: Vec<Value> = found["articles"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["node"].clone())
            .collect();
        let reply = model.answer(&question, &articles);
        let posted = client
            .run(
                "SendMessage",
                json!({ "input": { "conversationId": conversation, "body": reply.body, "confidence": reply.confidence,
                                    "sourceArticleIds": reply.article_ids, "replyToSeq": seq } }),
            )
            .await;
        match posted {
            Ok(_) => println!(
                "answered {conversation} (confidence {:.2})",
                reply.confidence
            ),
            // The visitor wrote again, or a human took over: the server refused it.
            Err(err) => println!("not answered {conversation}: {err}"),
        }
        if reply.confidence < 0.5 {
            client
                .run("RequestHuman", json!({ "conversationId": conversation, "note": format!("AI unsure about: {question}") }))
                .await?;
            println!("asked for a person in {conversation}");
        }
        handled += 1;
        if count.is_some_and(|n| handled >= n) {
            break;
        }
    }
    Ok(())
}
