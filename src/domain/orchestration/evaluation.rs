//! `casefile eval`: a set of questions previewed one by one ([`super::preview`])
//! and scored against what was expected of them.
//!
//! The file is JSON Lines, one question a line:
//! `{"question": "…", "expectArticle": "<article id, url or exact title>",
//! "expectHandoff": true|false}` (both expectations optional; blank lines and lines
//! starting with `#` are skipped). The whole file is read and checked before any
//! question is asked: a malformed line, or an expected article the workspace does
//! not have, is an error naming its line, and nothing runs.
//!
//! The figures (each `None` when no question gives it a denominator):
//!
//! - `hit1`, `hit3`: of the questions with an expected article, the share whose
//!   article is first, or among the first three, of the articles retrieval ranks
//!   (whatever the answer then does);
//! - `citationAccuracy`: of those answered, the share whose answer cites it;
//! - `handoffPrecision`: of the questions handed off that say whether they should
//!   be, the share that should; `handoffRecall`: of those that should be, the share
//!   handed off;
//! - `answered`, `handedOff`, `unsure` (answered below the confidence threshold:
//!   the AI says it is not sure and offers a person), and the model's tokens.

use serde::{Deserialize, Serialize};

use super::preview::{Outcome, Preview};
use crate::entity::article;
use crate::entity::message::Source;

/// One line of the file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    pub question: String,
    #[serde(default)]
    pub expect_article: Option<String>,
    #[serde(default)]
    pub expect_handoff: Option<bool>,
}

/// A question of the file: its line number, and the article it expects, found.
#[derive(Clone, Debug)]
pub struct Question {
    pub line: usize,
    pub case: Case,
    pub expected: Option<article::Model>,
}

/// Read the file's questions against the workspace's articles; the first error
/// names its line.
pub fn parse(text: &str, articles: &[article::Model]) -> Result<Vec<Question>, String> {
    let mut questions = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let case: Case = serde_json::from_str(trimmed).map_err(|err| {
            format!(
                "line {line}: not a question ({err}); each line is {{\"question\": \"…\", \
                 \"expectArticle\": \"…\", \"expectHandoff\": true|false}}"
            )
        })?;
        if case.question.trim().is_empty() {
            return Err(format!("line {line}: the question is empty"));
        }
        let expected = match case.expect_article.as_deref().map(str::trim) {
            None => None,
            Some(wanted) => Some(
                find_article(articles, wanted)
                    .ok_or_else(|| {
                        format!(
                            "line {line}: expectArticle {wanted:?} is no article of the workspace \
                             (give its id, its url or its exact title)"
                        )
                    })?
                    .clone(),
            ),
        };
        questions.push(Question {
            line,
            case,
            expected,
        });
    }
    if questions.is_empty() {
        return Err("the file has no questions".to_owned());
    }
    Ok(questions)
}

/// The article `wanted` names: by id, url or exact title.
fn find_article<'a>(articles: &'a [article::Model], wanted: &str) -> Option<&'a article::Model> {
    articles
        .iter()
        .find(|a| a.id == wanted || a.url == wanted)
        .or_else(|| articles.iter().find(|a| a.title == wanted))
}

/// How one question went, against what was expected.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    pub line: usize,
    pub question: String,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub engine: String,
    pub confidence: Option<f64>,
    pub unsure: bool,
    pub body: Option<String>,
    /// The articles cited, in order.
    pub cited: Vec<Source>,
    /// The articles retrieved, best first.
    pub retrieved: Vec<Source>,
    pub expect_article: Option<String>,
    pub expect_handoff: Option<bool>,
    pub hit1: Option<bool>,
    pub hit3: Option<bool>,
    pub cites_expected: Option<bool>,
    pub model_failure: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// The set's figures.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub questions: usize,
    pub answered: usize,
    pub handed_off: usize,
    pub unsure: usize,
    pub hit1: Option<f64>,
    pub hit3: Option<f64>,
    pub citation_accuracy: Option<f64>,
    pub handoff_precision: Option<f64>,
    pub handoff_recall: Option<f64>,
    pub model_failures: usize,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Score one preview against its question.
pub fn score(question: &Question, preview: &Preview, threshold: f64) -> Scored {
    let expected = question.expected.as_ref();
    let rank = expected.and_then(|want| {
        preview
            .articles
            .iter()
            .position(|a| a.article_id == want.id)
    });
    let answered = preview.outcome == Outcome::Answered;
    let cites = expected
        .filter(|_| answered)
        .map(|want| preview.sources.iter().any(|s| s.article_id == want.id));
    Scored {
        line: question.line,
        question: question.case.question.clone(),
        outcome: match preview.outcome {
            Outcome::Answered => "ANSWERED",
            Outcome::Handoff => "HANDOFF",
        },
        reason: preview.reason.as_ref().map(name),
        note: preview.note.clone(),
        engine: name(&preview.engine),
        confidence: preview.confidence,
        unsure: answered && preview.confidence.is_some_and(|c| c < threshold),
        body: preview.body.clone(),
        cited: preview.sources.clone(),
        retrieved: preview.articles.clone(),
        expect_article: expected.map(|a| a.url.clone()),
        expect_handoff: question.case.expect_handoff,
        hit1: expected.map(|_| rank == Some(0)),
        hit3: expected.map(|_| rank.is_some_and(|r| r < 3)),
        cites_expected: cites,
        model_failure: preview.model_failure.clone(),
        prompt_tokens: preview.prompt_tokens,
        completion_tokens: preview.completion_tokens,
    }
}

/// An enum's name as the API spells it (`LOW_CONFIDENCE`).
fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The share of `true` among the values given; `None` with none.
fn share(values: impl Iterator<Item = bool>) -> Option<f64> {
    let (mut yes, mut all) = (0usize, 0usize);
    for value in values {
        all += 1;
        yes += usize::from(value);
    }
    (all > 0).then(|| yes as f64 / all as f64)
}

/// The figures of a scored set.
pub fn totals(scored: &[Scored]) -> Totals {
    let handed_off = |s: &Scored| s.outcome == "HANDOFF";
    Totals {
        questions: scored.len(),
        answered: scored.iter().filter(|s| !handed_off(s)).count(),
        handed_off: scored.iter().filter(|s| handed_off(s)).count(),
        unsure: scored.iter().filter(|s| s.unsure).count(),
        hit1: share(scored.iter().filter_map(|s| s.hit1)),
        hit3: share(scored.iter().filter_map(|s| s.hit3)),
        citation_accuracy: share(scored.iter().filter_map(|s| s.cites_expected)),
        handoff_precision: share(
            scored
                .iter()
                .filter(|s| handed_off(s))
                .filter_map(|s| s.expect_handoff),
        ),
        handoff_recall: share(
            scored
                .iter()
                .filter(|s| s.expect_handoff == Some(true))
                .map(handed_off),
        ),
        model_failures: scored.iter().filter(|s| s.model_failure.is_some()).count(),
        prompt_tokens: scored.iter().map(|s| s.prompt_tokens).sum(),
        completion_tokens: scored.iter().map(|s| s.completion_tokens).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str) -> article::Model {
        article::Model {
            id: id.into(),
            workspace_id: "ws".into(),
            title: title.into(),
            url: format!("https://docs.test/{id}"),
            body: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn expected_articles_are_found_by_id_url_or_exact_title() {
        let docs = [article("a1", "Scheduling"), article("a2", "Uploads")];
        let text = "{\"question\": \"q1\", \"expectArticle\": \"a1\"}\n\n\
                    # a comment\n\
                    {\"question\": \"q2\", \"expectArticle\": \"https://docs.test/a2\"}\n\
                    {\"question\": \"q3\", \"expectArticle\": \"Uploads\", \"expectHandoff\": false}\n\
                    {\"question\": \"q4\", \"expectHandoff\": true}";
        let questions = parse(text, &docs).expect("parses");
        let found: Vec<(usize, Option<&str>)> = questions
            .iter()
            .map(|q| (q.line, q.expected.as_ref().map(|a| a.id.as_str())))
            .collect();
        assert_eq!(
            found,
            [(1, Some("a1")), (4, Some("a2")), (5, Some("a2")), (6, None)]
        );
        assert_eq!(questions[3].case.expect_handoff, Some(true));
    }

    #[test]
    fn a_bad_line_is_named_and_nothing_else_is_read() {
        let docs = [article("a1", "Scheduling")];
        let err = parse("{\"question\": \"ok\"}\n{\"question\": 3}\n", &docs).expect_err("refused");
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse("{\"question\": \"ok\"}\nnot json\n", &docs).expect_err("refused");
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse("{\"question\": \"q\", \"expect\": 1}", &docs).expect_err("refused");
        assert!(err.starts_with("line 1:"), "{err}");
        let err = parse("{\"question\": \"q\", \"expectArticle\": \"nope\"}", &docs)
            .expect_err("refused");
        assert!(err.contains("line 1: expectArticle \"nope\""), "{err}");
        let err = parse("{\"question\": \"  \"}", &docs).expect_err("refused");
        assert_eq!(err, "line 1: the question is empty");
        assert!(parse("\n\n", &docs).is_err());
    }

    fn scored(outcome: &'static str, expect: Option<bool>, hit: Option<(bool, bool)>) -> Scored {
        Scored {
            line: 1,
            question: "q".into(),
            outcome,
            reason: None,
            note: None,
            engine: "EXTRACTIVE".into(),
            confidence: None,
            unsure: false,
            body: None,
            cited: Vec::new(),
            retrieved: Vec::new(),
            expect_article: None,
            expect_handoff: expect,
            hit1: hit.map(|h| h.0),
            hit3: hit.map(|h| h.1),
            cites_expected: hit.filter(|_| outcome == "ANSWERED").map(|h| h.0),
            model_failure: None,
            prompt_tokens: 10,
            completion_tokens: 5,
        }
    }

    #[test]
    fn precision_and_recall_count_only_questions_that_say() {
        let set = [
            scored("HANDOFF", Some(true), None),
            scored("HANDOFF", Some(false), None),
            scored("HANDOFF", None, None),
            scored("ANSWERED", Some(true), Some((true, true))),
            scored("ANSWERED", Some(false), Some((false, true))),
            scored("ANSWERED", None, Some((false, false))),
        ];
        let t = totals(&set);
        assert_eq!((t.questions, t.answered, t.handed_off), (6, 3, 3));
        // Handed off and saying: 2, of which 1 should have been.
        assert_eq!(t.handoff_precision, Some(0.5));
        // Should be: 2, of which 1 was.
        assert_eq!(t.handoff_recall, Some(0.5));
        assert_eq!(t.hit1, Some(1.0 / 3.0));
        assert_eq!(t.hit3, Some(2.0 / 3.0));
        assert_eq!(t.citation_accuracy, Some(1.0 / 3.0));
        assert_eq!((t.prompt_tokens, t.completion_tokens), (60, 30));
        assert_eq!(totals(&[]).hit1, None);
    }
}
