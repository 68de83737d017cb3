//! The built-in AI responder: answers a visitor's question from the workspace's
//! knowledge articles by quoting the best passage, citing its sources, with a
//! confidence computed from how well the passage covers the question.

use crate::domain::Core;
use crate::entity::article;
use crate::error::AppResult;

use super::articles::{self, Hit};
use super::text;

/// Articles considered per question.
const CANDIDATES: u64 = 5;
/// Articles cited per answer.
const MAX_SOURCES: usize = 3;
/// Longest passage quoted, in characters.
const MAX_PASSAGE: usize = 600;

pub use crate::entity::message::Source;

/// What the responder found for a question.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// The best passage, quoted.
    pub passage: Option<String>,
    /// 0..1: how much of the question the passage (and its title) covers.
    pub confidence: f64,
    pub sources: Vec<Source>,
}

impl Answer {
    /// The message the AI posts: the passage, framed by how sure it is.
    pub fn message(&self, threshold: f64) -> String {
        match &self.passage {
            Some(passage) if self.confidence >= threshold => {
                let title = self.sources.first().map(|s| s.title.as_str()).unwrap_or("our docs");
                format!("From “{title}”:\n\n> {passage}")
            }
            Some(passage) => format!(
                "I'm not sure this answers your question, but our docs say:\n\n> {passage}\n\n\
                 Could you tell me more, or ask to talk to a person?"
            ),
            None => "I couldn't find that in our docs. Could you rephrase it, or ask to talk to a person?"
                .to_owned(),
        }
    }
}

/// The passages of an article body: paragraphs (headings left out: they name a
/// topic, they do not answer), with long ones cut at sentence ends.
pub fn passages(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in body.split("\n\n") {
        let cleaned: String = paragraph
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.trim_start_matches(['-', '*']).trim())
            .collect::<Vec<_>>()
            .join(" ");
        if cleaned.is_empty() {
            continue;
        }
        if cleaned.chars().count() <= MAX_PASSAGE {
            out.push(cleaned);
            continue;
        }
        let mut current = String::new();
        for sentence in cleaned.split_inclusive(['.', '!', '?']) {
            if !current.is_empty()
                && current.chars().count() + sentence.chars().count() > MAX_PASSAGE
            {
                out.push(current.trim().to_owned());
                current.clear();
            }
            current.push_str(sentence);
        }
        if !current.trim().is_empty() {
            out.push(current.trim().chars().take(MAX_PASSAGE).collect());
        }
    }
    out
}

/// The share of `terms` found among `in_text`'s terms.
fn coverage(terms: &[String], in_text: &[String]) -> f64 {
    if terms.is_empty() {
        return 0.0;
    }
    terms.iter().filter(|t| in_text.contains(t)).count() as f64 / terms.len() as f64
}

/// How well a passage answers: mostly the passage's coverage of the question, some
/// for the title's, damped for questions of one or two words (which match anything).
pub fn score(question_terms: &[String], title: &str, passage: &str) -> f64 {
    let passage_cov = coverage(question_terms, &text::terms(passage));
    let title_cov = coverage(question_terms, &text::terms(title));
    let specificity = 1.0 - 0.5_f64.powi(question_terms.len() as i32);
    ((0.8 * passage_cov + 0.2 * title_cov.max(passage_cov)) * specificity).clamp(0.0, 1.0)
}

/// The best passage of the best articles, and the articles to cite.
pub fn best_answer(question: &str, articles: &[article::Model]) -> Answer {
    let terms = text::terms(question);
    let mut best: Option<(f64, String)> = None;
    let mut sources: Vec<Source> = Vec::new();
    for article in articles {
        let mut article_best = 0.0;
        for passage in passages(&article.body) {
            let s = score(&terms, &article.title, &passage);
            if s > article_best {
                article_best = s;
            }
            if best.as_ref().is_none_or(|(b, _)| s > *b) {
                best = Some((s, passage));
            }
        }
        if article_best > 0.0 {
            sources.push(Source {
                article_id: article.id.clone(),
                title: article.title.clone(),
                url: article.url.clone(),
                score: (article_best * 1000.0).round() / 1000.0,
            });
        }
    }
    sources.sort_by(|a, b| b.score.total_cmp(&a.score));
    sources.truncate(MAX_SOURCES);
    match best {
        Some((confidence, passage)) if confidence > 0.0 => Answer {
            passage: Some(passage),
            confidence: (confidence * 1000.0).round() / 1000.0,
            sources,
        },
        _ => Answer {
            passage: None,
            confidence: 0.0,
            sources: Vec::new(),
        },
    }
}

/// Answer `question` from the workspace's articles.
pub async fn answer(core: &Core, workspace_id: &str, question: &str) -> AppResult<Answer> {
    Ok(retrieve(core, workspace_id, question).await?.answer)
}

/// Passages given to a language model at most.
pub const MAX_GROUNDING_PASSAGES: usize = 6;

/// What retrieval found for a question: the extractive answer, and the best
/// passages (at most [`MAX_GROUNDING_PASSAGES`]) grouped by article, best article
/// first, for a model to answer from.
#[derive(Clone, Debug, Default)]
pub struct Retrieval {
    pub answer: Answer,
    pub grounding: Vec<Grounding>,
    /// The best passages, best first, each with its own score.
    pub passages: Vec<RankedPassage>,
    /// The articles considered, best first: by their best passage's score, then
    /// in the full-text search's order (those that match no term of the question
    /// last, scored 0); with embeddings, in the fused order (each with its best
    /// passage's score all the same).
    pub articles: Vec<Source>,
}

/// An article given to the model as one numbered source: its best passages, in
/// the article's order, and its score (its best passage's, as in [`Answer`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Grounding {
    pub source: Source,
    pub passages: Vec<String>,
}

/// A passage retrieval found: its article (with the passage's score) and text.
#[derive(Clone, Debug, PartialEq)]
pub struct RankedPassage {
    pub source: Source,
    pub text: String,
}

/// Search the workspace's articles for `question` and rank their passages. With
/// embeddings, the articles full-text search ranks and those ranked by meaning
/// are fused ([`super::embeddings::fuse`]), so an article that shares no word
/// with the question (another language, other words) can still be found.
pub async fn retrieve(core: &Core, workspace_id: &str, question: &str) -> AppResult<Retrieval> {
    let hits: Vec<Hit> = articles::search(core, workspace_id, question, CANDIDATES, 0).await?;
    let mut articles: Vec<article::Model> = hits.into_iter().map(|h| h.article).collect();
    let mut order = ranked_articles(question, &articles);
    if let Some(meaning) = super::embeddings::rank(core, workspace_id, question).await {
        let lexical: Vec<String> = order.iter().map(|a| a.article_id.clone()).collect();
        let semantic: Vec<String> = meaning
            .into_iter()
            .take(CANDIDATES as usize)
            .map(|(id, _)| id)
            .collect();
        let fused: Vec<String> = super::embeddings::fuse(&[lexical, semantic])
            .into_iter()
            .take(CANDIDATES as usize)
            .collect();
        let missing: Vec<&str> = fused
            .iter()
            .filter(|id| !articles.iter().any(|a| &a.id == *id))
            .map(String::as_str)
            .collect();
        articles.extend(articles::by_ids(core, workspace_id, &missing).await?);
        articles = fused
            .iter()
            .filter_map(|id| articles.iter().find(|a| &a.id == id).cloned())
            .collect();
        let scored = ranked_articles(question, &articles);
        order = articles
            .iter()
            .filter_map(|a| scored.iter().find(|s| s.article_id == a.id).cloned())
            .collect();
    }
    let ranked = ranked_passages(question, &articles);
    Ok(Retrieval {
        answer: best_answer(question, &articles),
        grounding: grounding(&ranked, &articles),
        passages: ranked
            .iter()
            .map(|p| RankedPassage {
                source: source(&articles[p.article], p.score),
                text: p.text.clone(),
            })
            .collect(),
        articles: order,
    })
}

fn rounded(score: f64) -> f64 {
    (score * 1000.0).round() / 1000.0
}

fn source(article: &article::Model, score: f64) -> Source {
    Source {
        article_id: article.id.clone(),
        title: article.title.clone(),
        url: article.url.clone(),
        score: rounded(score),
    }
}

/// `articles` by their best passage's score for `question`, best first (ties, and
/// those scoring 0, in the given order).
pub fn ranked_articles(question: &str, articles: &[article::Model]) -> Vec<Source> {
    let terms = text::terms(question);
    let mut ranked: Vec<Source> = articles
        .iter()
        .map(|article| {
            let best = passages(&article.body)
                .iter()
                .map(|passage| score(&terms, &article.title, passage))
                .fold(0.0, f64::max);
            source(article, best)
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked
}

/// A passage among the best: its article's index, its index in the article, its
/// score and its text.
struct Ranked {
    article: usize,
    index: usize,
    score: f64,
    text: String,
}

/// The best passages of `articles` for `question` (those that match at all, at
/// most [`MAX_GROUNDING_PASSAGES`]), best first.
fn ranked_passages(question: &str, articles: &[article::Model]) -> Vec<Ranked> {
    let terms = text::terms(question);
    let mut ranked: Vec<Ranked> = Vec::new();
    for (a, article) in articles.iter().enumerate() {
        for (p, passage) in passages(&article.body).into_iter().enumerate() {
            let s = score(&terms, &article.title, &passage);
            if s > 0.0 {
                ranked.push(Ranked {
                    article: a,
                    index: p,
                    score: s,
                    text: passage,
                });
            }
        }
    }
    ranked.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.article.cmp(&y.article))
            .then(x.index.cmp(&y.index))
    });
    ranked.truncate(MAX_GROUNDING_PASSAGES);
    ranked
}

/// The best passages grouped by article, best article first, each article's
/// passages in its own order.
fn grounding(ranked: &[Ranked], articles: &[article::Model]) -> Vec<Grounding> {
    // (article, its best score, its passages chosen: (index, text))
    type Chosen<'a> = (usize, f64, Vec<(usize, &'a str)>);
    let mut out: Vec<Chosen<'_>> = Vec::new();
    for passage in ranked {
        let chosen = (passage.index, passage.text.as_str());
        match out.iter_mut().find(|(a, _, _)| *a == passage.article) {
            Some((_, _, passages)) => passages.push(chosen),
            None => out.push((passage.article, passage.score, vec![chosen])),
        }
    }
    out.into_iter()
        .map(|(a, s, mut passages)| {
            passages.sort_by_key(|(p, _)| *p);
            Grounding {
                source: source(&articles[a], s),
                passages: passages
                    .into_iter()
                    .map(|(_, text)| text.to_owned())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str, body: &str) -> article::Model {
        article::Model {
            id: id.into(),
            workspace_id: "ws".into(),
            title: title.into(),
            url: format!("https://docs.test/{id}"),
            body: body.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_best_passage_is_quoted_not_the_article() {
        let docs = [article(
            "a1",
            "Scheduling drafts",
            "# Scheduling drafts\n\nDrafts are private until published.\n\nTo schedule a draft, open it, click Schedule and pick a date and time. The post goes live then.\n\nScheduled posts appear in the calendar.",
        )];
        let answer = best_answer("How do I schedule a draft for later?", &docs);
        assert_eq!(
            answer.passage.as_deref(),
            Some(
                "To schedule a draft, open it, click Schedule and pick a date and time. The post goes live then."
            )
        );
        assert!(answer.confidence >= 0.5, "{answer:?}");
        assert_eq!(answer.sources[0].article_id, "a1");
    }

    #[test]
    fn confidence_follows_the_match() {
        let docs = [article(
            "a1",
            "Media library",
            "Upload images to the media library by dragging them in.",
        )];
        let covered = best_answer("How do I upload images to the media library?", &docs);
        let partly = best_answer(
            "Can I upload videos to YouTube from the billing page?",
            &docs,
        );
        let unrelated = best_answer("What is your refund policy for invoices?", &docs);
        assert!(
            covered.confidence > partly.confidence,
            "{covered:?} {partly:?}"
        );
        assert!(
            partly.confidence > unrelated.confidence,
            "{partly:?} {unrelated:?}"
        );
        assert_eq!(unrelated.confidence, 0.0);
        assert!(unrelated.passage.is_none());
    }

    #[test]
    fn long_paragraphs_are_cut_at_sentences() {
        let long = "A sentence about roles. ".repeat(60);
        let cut = passages(&long);
        assert!(cut.len() > 1);
        assert!(
            cut.iter()
                .all(|p| p.chars().count() <= MAX_PASSAGE && p.ends_with('.'))
        );
    }
}
