//! Knowledge articles: the workspace's own docs, kept in the database's full-text
//! index (SQLite FTS5, PostgreSQL tsvector with a GIN index) by the same
//! transaction that writes them.

use std::path::Path;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::auth::Editor;
use crate::domain::Core;
use crate::entity::{article, article_revision, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use super::text;
use crate::db::stmt;
use crate::domain::core::validate;

/// Longest article body, in characters.
const MAX_BODY: usize = 200_000;

pub struct ArticleInput<'a> {
    pub id: Option<&'a str>,
    pub title: &'a str,
    pub url: &'a str,
    pub body: &'a str,
}

/// Keep the SQLite full-text row of `article` in step (PostgreSQL computes its
/// `search` column itself).
async fn index(txn: &DatabaseTransaction, article: &article::Model) -> AppResult<()> {
    if txn.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    unindex(txn, &article.id).await?;
    txn.execute_raw(stmt(
        DbBackend::Sqlite,
        "INSERT INTO articles_fts (article_id, workspace_id, title, body) VALUES (?, ?, ?, ?)",
        vec![
            article.id.as_str().into(),
            article.workspace_id.as_str().into(),
            article.title.as_str().into(),
            article.body.as_str().into(),
        ],
    ))
    .await?;
    Ok(())
}

async fn unindex(txn: &DatabaseTransaction, id: &str) -> AppResult<()> {
    if txn.get_database_backend() == DbBackend::Sqlite {
        txn.execute_raw(stmt(
            DbBackend::Sqlite,
            "DELETE FROM articles_fts WHERE article_id = ?",
            vec![id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Create an article, or replace the one with `input.id`, as `editor` (`None`:
/// an import). A new article, or a change of its title or body, is a new
/// revision, and its passages are cut again (to be embedded again); saving the
/// same text again changes nothing.
pub async fn upsert(
    core: &Core,
    workspace_id: &str,
    input: ArticleInput<'_>,
    editor: Option<&Editor>,
) -> AppResult<article::Model> {
    let title = validate::short("title", input.title)?;
    let url = validate::url("url", input.url)?;
    let body = validate::text("body", input.body, MAX_BODY)?;
    let now = now_ms();
    let txn = core.db.writer.begin().await?;
    let existing = match input.id {
        Some(id) => Some(
            article::Entity::find_by_id(id)
                .filter(article::Column::WorkspaceId.eq(workspace_id))
                .one(&txn)
                .await?
                .ok_or(AppError::NotFound("article"))?,
        ),
        None => None,
    };
    let (model, revised) = match existing {
        Some(found) if found.title == title && found.body == body && found.url == url => {
            return Ok(found);
        }
        Some(found) => {
            let revised = found.title != title || found.body != body;
            let mut active: article::ActiveModel = found.into();
            active.title = Set(title);
            active.url = Set(url);
            active.body = Set(body);
            active.updated_at = Set(now);
            (active.update(&txn).await?, revised)
        }
        None => {
            let created = article::ActiveModel {
                id: Set(new_id(Kind::Article)),
                workspace_id: Set(workspace_id.to_owned()),
                title: Set(title),
                url: Set(url),
                body: Set(body),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            (created, true)
        }
    };
    index(&txn, &model).await?;
    if revised {
        revise(&txn, &model, editor).await?;
        super::passages::replace(&txn, &model).await?;
    }
    txn.commit().await?;
    if revised {
        core.vectors.forget(workspace_id);
        core.embeddings_wanted.notify_one();
    }
    Ok(model)
}

/// Keep `article` as it is now as its next revision.
async fn revise(
    txn: &DatabaseTransaction,
    article: &article::Model,
    editor: Option<&Editor>,
) -> AppResult<()> {
    let last: Option<i32> = article_revision::Entity::find()
        .select_only()
        .column_as(article_revision::Column::Revision.max(), "revision")
        .filter(article_revision::Column::ArticleId.eq(article.id.as_str()))
        .into_tuple::<Option<i32>>()
        .one(txn)
        .await?
        .flatten();
    article_revision::ActiveModel {
        id: Set(new_id(Kind::Revision)),
        workspace_id: Set(article.workspace_id.clone()),
        article_id: Set(article.id.clone()),
        revision: Set(last.unwrap_or(0) + 1),
        title: Set(article.title.clone()),
        url: Set(article.url.clone()),
        body: Set(article.body.clone()),
        edited_at: Set(article.updated_at),
        edited_by_agent_id: Set(match editor {
            Some(Editor::Agent(id)) => Some(id.clone()),
            _ => None,
        }),
        edited_by_api_key_id: Set(match editor {
            Some(Editor::ApiKey(id)) => Some(id.clone()),
            _ => None,
        }),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// When the article's text last changed (its newest revision), if it exists.
pub async fn last_revised(core: &Core, article_id: &str) -> AppResult<Option<i64>> {
    Ok(article_revision::Entity::find()
        .select_only()
        .column_as(article_revision::Column::EditedAt.max(), "edited_at")
        .filter(article_revision::Column::ArticleId.eq(article_id))
        .into_tuple::<Option<i64>>()
        .one(&core.db.reader)
        .await?
        .flatten())
}

/// An article's revisions, newest first.
pub async fn revisions(core: &Core, article_id: &str) -> AppResult<Vec<article_revision::Model>> {
    Ok(article_revision::Entity::find()
        .filter(article_revision::Column::ArticleId.eq(article_id))
        .order_by_desc(article_revision::Column::Revision)
        .all(&core.db.reader)
        .await?)
}

pub async fn delete(core: &Core, workspace_id: &str, id: &str) -> AppResult<()> {
    let txn = core.db.writer.begin().await?;
    let deleted = article::Entity::delete_many()
        .filter(article::Column::Id.eq(id))
        .filter(article::Column::WorkspaceId.eq(workspace_id))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("article"));
    }
    unindex(&txn, id).await?;
    super::passages::remove(&txn, id).await?;
    txn.commit().await?;
    Ok(())
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<article::Model> {
    article::Entity::find_by_id(id)
        .filter(article::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("article"))
}

/// A full-text match: an article and its rank (higher is better).
#[derive(Clone, Debug)]
pub struct Hit {
    pub article: article::Model,
    pub rank: f64,
}

/// The full-text query for `question`: its content words, any of which may match.
fn match_expression(backend: DbBackend, question: &str) -> Option<String> {
    let words: Vec<String> = text::words(question)
        .into_iter()
        .filter(|w| !text::is_stop_word(w) && w.len() > 1)
        .filter(|w| w.chars().all(char::is_alphanumeric))
        .take(32)
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(match backend {
        // Quoted, so nothing in the question is read as FTS5 syntax.
        DbBackend::Sqlite => words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
        _ => words.join(" | "),
    })
}

/// Articles matching any content word of `question`, best first.
pub async fn search(
    core: &Core,
    workspace_id: &str,
    question: &str,
    limit: u64,
    offset: u64,
) -> AppResult<Vec<Hit>> {
    let backend = core.db.backend();
    let Some(expression) = match_expression(backend, question) else {
        return Ok(Vec::new());
    };
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT a.id AS id, -bm25(articles_fts, 0.0, 0.0, 4.0, 1.0) AS rank \
             FROM articles_fts JOIN articles a ON a.id = articles_fts.article_id \
             WHERE articles_fts MATCH ? AND articles_fts.workspace_id = ? \
             ORDER BY rank DESC, a.id LIMIT ? OFFSET ?"
        }
        _ => {
            "SELECT a.id AS id, CAST(ts_rank_cd(a.search, q) AS DOUBLE PRECISION) AS rank \
             FROM articles a, to_tsquery('english', ?) q \
             WHERE a.search @@ q AND a.workspace_id = ? \
             ORDER BY rank DESC, a.id LIMIT ? OFFSET ?"
        }
    };
    let rows = core
        .db
        .reader
        .query_all_raw(stmt(
            backend,
            sql,
            vec![
                expression.into(),
                workspace_id.into(),
                (limit as i64).into(),
                (offset as i64).into(),
            ],
        ))
        .await?;
    let mut ranked = Vec::with_capacity(rows.len());
    for row in rows {
        ranked.push((
            row.try_get::<String>("", "id")?,
            row.try_get::<f64>("", "rank")?,
        ));
    }
    let articles = article::Entity::find()
        .filter(article::Column::Id.is_in(ranked.iter().map(|(id, _)| id.clone())))
        .all(&core.db.reader)
        .await?;
    Ok(ranked
        .into_iter()
        .filter_map(|(id, rank)| {
            let article = articles.iter().find(|a| a.id == id)?.clone();
            Some(Hit { article, rank })
        })
        .collect())
}

/// Articles without a query: newest first, after the article `after`.
pub async fn page(
    core: &Core,
    workspace_id: &str,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<article::Model>> {
    let mut select = article::Entity::find().filter(article::Column::WorkspaceId.eq(workspace_id));
    if let Some(after) = after {
        select = select.filter(article::Column::Id.lt(after));
    }
    Ok(select
        .order_by_desc(article::Column::Id)
        .limit(limit)
        .all(&core.db.reader)
        .await?)
}

/// The workspace's articles among `ids`, in no particular order.
pub async fn by_ids(
    core: &Core,
    workspace_id: &str,
    ids: &[&str],
) -> AppResult<Vec<article::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(article::Entity::find()
        .filter(article::Column::WorkspaceId.eq(workspace_id))
        .filter(article::Column::Id.is_in(ids.iter().copied()))
        .all(&core.db.reader)
        .await?)
}

/// Every article of the workspace, oldest first.
pub async fn all(core: &Core, workspace_id: &str) -> AppResult<Vec<article::Model>> {
    Ok(article::Entity::find()
        .filter(article::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(article::Column::Id)
        .all(&core.db.reader)
        .await?)
}

pub async fn count(core: &Core, workspace_id: &str) -> AppResult<u64> {
    Ok(article::Entity::find()
        .filter(article::Column::WorkspaceId.eq(workspace_id))
        .count(&core.db.reader)
        .await?)
}

/// An article read from a Markdown or HTML file.
#[derive(Debug, PartialEq)]
pub struct ParsedFile {
    pub title: String,
    pub url: Option<String>,
    pub body: String,
}

/// Title, URL and plain body of a Markdown file (front matter `title:`/`url:`, else
/// the first `#` heading) or an HTML file (`<title>` or `<h1>`, tags stripped).
pub fn parse_file(name: &str, content: &str) -> ParsedFile {
    let is_html = name.ends_with(".html") || name.ends_with(".htm");
    let (mut title, mut url, mut body) = (None, None, content.to_owned());
    if !is_html
        && let Some(rest) = content.strip_prefix("---\n")
        && let Some((front, after)) = rest.split_once("\n---")
    {
        for line in front.lines() {
            if let Some((key, value)) = line.split_once(':') {
                let value = value.trim().trim_matches('"').to_owned();
                match key.trim() {
                    "title" => title = Some(value),
                    "url" => url = Some(value),
                    _ => {}
                }
            }
        }
        body = after.trim_start_matches('-').trim_start().to_owned();
    }
    if is_html {
        let tag_text = |tag: &str| {
            let open = content.find(&format!("<{tag}"))?;
            let start = content[open..].find('>')? + open + 1;
            let end = content[start..].find(&format!("</{tag}>"))? + start;
            Some(strip_tags(&content[start..end]).trim().to_owned())
        };
        title = tag_text("title").or_else(|| tag_text("h1"));
        let inner = tag_text("body").unwrap_or_else(|| strip_tags(content));
        body = inner;
    } else if title.is_none() {
        title = body
            .lines()
            .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_owned()));
    }
    let title = title.filter(|t| !t.is_empty()).unwrap_or_else(|| {
        let stem = name.rsplit('/').next().unwrap_or(name);
        stem.split('.')
            .next()
            .unwrap_or(stem)
            .replace(['-', '_'], " ")
    });
    ParsedFile {
        title,
        url,
        body: body.trim().to_owned(),
    }
}

/// HTML as text: tags removed (block tags become line breaks), entities decoded.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for ch in html.chars() {
        match (in_tag, ch) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag
                    .trim_start_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                if matches!(
                    name.as_str(),
                    "p" | "br" | "li" | "h1" | "h2" | "h3" | "h4" | "div" | "tr"
                ) {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
}

/// Import every `.md`, `.markdown`, `.html` and `.htm` file of `dir` (not
/// recursively). An article whose URL already exists is replaced. Returns how many
/// were imported.
pub async fn import_dir(
    core: &Core,
    workspace_id: &str,
    dir: &Path,
    base_url: &str,
) -> anyhow::Result<usize> {
    let entries = std::fs::read_dir(dir).map_err(|err| {
        anyhow::anyhow!(
            "cannot read the folder {}: {}: give a folder of .md and .html files",
            dir.display(),
            match err.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                _ => err.to_string(),
            }
        )
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "md" | "markdown" | "html" | "htm"))
        })
        .collect();
    paths.sort();
    let mut imported = 0;
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let content = std::fs::read_to_string(&path)?;
        let parsed = parse_file(&name, &content);
        let slug = name.split('.').next().unwrap_or(&name);
        let url = parsed
            .url
            .clone()
            .unwrap_or_else(|| format!("{}/{slug}", base_url.trim_end_matches('/')));
        let existing = article::Entity::find()
            .filter(article::Column::WorkspaceId.eq(workspace_id))
            .filter(article::Column::Url.eq(&url))
            .one(&core.db.reader)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        upsert(
            core,
            workspace_id,
            ArticleInput {
                id: existing.as_ref().map(|a| a.id.as_str()),
                title: &parsed.title,
                url: &url,
                body: &parsed.body,
            },
            None,
        )
        .await
        .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message()))?;
        imported += 1;
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_front_matter_and_headings_give_the_title() {
        let parsed = parse_file(
            "a.md",
            "---\ntitle: Scheduling drafts\nurl: https://x.test/s\n---\nBody text.",
        );
        assert_eq!(
            parsed,
            ParsedFile {
                title: "Scheduling drafts".into(),
                url: Some("https://x.test/s".into()),
                body: "Body text.".into()
            }
        );
        assert_eq!(
            parse_file("b.md", "# Roles\n\nEditors can publish.").title,
            "Roles"
        );
        assert_eq!(
            parse_file("media-library.md", "no heading").title,
            "media library"
        );
    }

    #[test]
    fn html_is_read_as_text() {
        let parsed = parse_file(
            "x.html",
            "<html><head><title>Media &amp; files</title></head><body><h1>Media</h1><p>Drag files in.</p></body></html>",
        );
        assert_eq!(parsed.title, "Media & files");
        assert!(parsed.body.contains("Drag files in."));
        assert!(!parsed.body.contains('<'));
    }

    #[test]
    fn questions_cannot_inject_full_text_syntax() {
        let expr = match_expression(DbBackend::Sqlite, "upload\" OR * NEAR(").expect("words");
        assert_eq!(expr, "\"upload\" OR \"near\"");
        assert_eq!(
            match_expression(DbBackend::Postgres, "schedule a draft!").as_deref(),
            Some("schedule | draft")
        );
        assert_eq!(match_expression(DbBackend::Sqlite, "how do I?"), None);
    }
}
