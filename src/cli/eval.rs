//! `casefile eval`: a file of questions asked of the workspace's AI without
//! storing anything ([`crate::domain::orchestration::preview`]), each scored
//! against what it expects ([`crate::domain::orchestration::evaluation`]),
//! printed as a table for people or as JSON for scripts.

use anyhow::Context as _;

use crate::config::{Config, EvalArgs, EvalEngine, EvalFormat};
use crate::domain::knowledge::articles;
use crate::domain::orchestration::evaluation::{self, Scored, Totals};
use crate::domain::orchestration::preview;
use crate::domain::tenancy::workspaces;
use crate::entity::AnswerEngine;
use crate::error::AppError;

/// Run the evaluation and print it; an unreadable or malformed file, or an
/// unknown workspace, is an error before any question is asked.
pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let EvalArgs {
        workspace,
        questions,
        format,
        engine,
        database,
        model,
        embeddings,
    } = args;
    let text = std::fs::read_to_string(&questions)
        .with_context(|| format!("reading {}", questions.display()))?;
    let mut config = Config::for_command(database, None);
    config.model = model;
    config.embeddings = embeddings;
    let core = super::open(config).await?;
    let found = match workspaces::get(&core, &workspace).await {
        Ok(found) => found,
        Err(AppError::NotFound(_)) => anyhow::bail!("no workspace {workspace}"),
        Err(err) => anyhow::bail!("reading workspace {workspace}: {}", err.detail()),
    };
    let threshold = found
        .handoff_policy()
        .map_err(|err| anyhow::anyhow!(err.detail()))?
        .confidence_threshold;
    let known = articles::all(&core, &workspace)
        .await
        .map_err(|err| anyhow::anyhow!(err.detail()))?;
    let cases = evaluation::parse(&text, &known)
        .map_err(|err| anyhow::anyhow!("{}: {err}", questions.display()))?;
    if core.embedder.is_some() {
        eprintln!("embedding the articles' passages…");
        let (embedded, left) = crate::domain::knowledge::embeddings::embed_all(&core)
            .await
            .map_err(|err| anyhow::anyhow!(err.detail()))?;
        eprintln!("{embedded} passages embedded");
        if left > 0 {
            eprintln!(
                "warning: {left} passages could not be embedded: retrieval by meaning misses them"
            );
        }
    }
    let engine = engine.map(|e| match e {
        EvalEngine::Model => AnswerEngine::Model,
        EvalEngine::Extractive => AnswerEngine::Extractive,
    });
    let mut scored = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        eprint!("\r{}/{} questions", i + 1, cases.len());
        let seen = preview::preview(&core, &workspace, &case.case.question, engine)
            .await
            .map_err(|err| anyhow::anyhow!("line {}: {}", case.line, err.message()))?;
        scored.push(evaluation::score(case, &seen, threshold));
    }
    eprintln!();
    let totals = evaluation::totals(&scored);
    match format {
        EvalFormat::Json => {
            for one in &scored {
                println!("{}", serde_json::to_string(one)?);
            }
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({ "totals": totals }))?
            );
        }
        EvalFormat::Table => print!("{}", table(&scored, &totals)),
    }
    Ok(())
}

/// A share as a percentage, or `—` without a denominator.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn mark(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "",
    }
}

/// The last path segment of a URL: enough to tell articles apart in a table.
fn short(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// The questions as a Markdown table, then the totals.
fn table(scored: &[Scored], totals: &Totals) -> String {
    let mut out = String::from(
        "| line | outcome | confidence | cited | expected | hit@3 | handoff expected | question |\n\
         | ---: | --- | ---: | --- | --- | --- | --- | --- |\n",
    );
    for s in scored {
        let outcome = match &s.reason {
            Some(reason) => format!("{} {reason}", s.outcome),
            None if s.unsure => format!("{} (unsure)", s.outcome),
            None => s.outcome.to_owned(),
        };
        let question: String = s
            .question
            .chars()
            .take(60)
            .collect::<String>()
            .replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.line,
            outcome,
            s.confidence.map_or_else(String::new, |c| format!("{c:.2}")),
            s.cited
                .iter()
                .map(|c| short(&c.url))
                .collect::<Vec<_>>()
                .join(", "),
            s.expect_article.as_deref().map(short).unwrap_or(""),
            mark(s.hit3),
            mark(s.expect_handoff),
            question,
        ));
    }
    out.push_str(&format!(
        "\nquestions {}, answered {} ({} unsure), handed off {}\n\
         hit@1 {}, hit@3 {}, citation accuracy {}\n\
         handoff precision {}, handoff recall {}\n\
         model tokens {} prompt + {} completion{}\n",
        totals.questions,
        totals.answered,
        totals.unsure,
        totals.handed_off,
        percent(totals.hit1),
        percent(totals.hit3),
        percent(totals.citation_accuracy),
        percent(totals.handoff_precision),
        percent(totals.handoff_recall),
        totals.prompt_tokens,
        totals.completion_tokens,
        if totals.model_failures > 0 {
            format!(
                " ({} model failures, answered the extractive way)",
                totals.model_failures
            )
        } else {
            String::new()
        },
    ));
    out
}
