//! Parsing input into domain values at the edge; failures name the field.

use crate::config::limits::MAX_SHORT_TEXT;
use crate::error::{AppError, AppResult};

/// A trimmed, non-empty text of at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("longer than {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A trimmed text of at most `max` characters; empty is allowed (it clears).
pub fn optional_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    match value.trim() {
        "" => Ok(String::new()),
        value => text(field, value, max),
    }
}

/// A short text (names, labels).
pub fn short(field: &str, value: &str) -> AppResult<String> {
    text(field, value, MAX_SHORT_TEXT)
}

/// An optional short text; empty means absent.
pub fn optional_short(field: &str, value: Option<&str>) -> AppResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => short(field, v).map(Some),
    }
}

/// A plausible email address, lower-cased.
pub fn email(field: &str, value: &str) -> AppResult<String> {
    let value = short(field, value)?.to_lowercase();
    let valid = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value.chars().any(char::is_whitespace)
            && value.matches('@').count() == 1
    });
    if valid {
        Ok(value)
    } else {
        Err(AppError::bad_input(field, "not an email address"))
    }
}

/// An absolute http(s) URL.
pub fn url(field: &str, value: &str) -> AppResult<String> {
    let value = text(field, value, 2048)?;
    match url::Url::parse(&value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(value),
        _ => Err(AppError::bad_input(field, "not an http(s) URL")),
    }
}

/// A slug or key: a letter, then letters, digits, `-` or `_`.
pub fn identifier(field: &str, value: &str) -> AppResult<String> {
    let value = short(field, value)?;
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && value.len() <= 64;
    if ok {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            "must start with a letter and contain only letters, digits, `-` and `_` (at most 64)",
        ))
    }
}

/// A JSON object no larger than `max_bytes` when serialized.
pub fn json_object(
    field: &str,
    value: Option<serde_json::Value>,
    max_bytes: usize,
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(map)) => {
            if serde_json::to_string(&map)?.len() > max_bytes {
                return Err(AppError::bad_input(
                    field,
                    format!("larger than {max_bytes} bytes"),
                ));
            }
            Ok(map)
        }
        Some(_) => Err(AppError::bad_input(field, "must be a JSON object")),
    }
}

/// What a lookup of an id the caller gave found; when nothing, `BAD_USER_INPUT`
/// naming `field` (`what` says which id), never hiding a database error as the
/// caller's fault.
pub fn existing<T>(
    found: AppResult<T>,
    field: &str,
    what: impl FnOnce() -> String,
) -> AppResult<T> {
    match found {
        Err(AppError::NotFound(_)) => Err(AppError::bad_input(field, what())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            email("email", " Ada@Example.COM ").ok().as_deref(),
            Some("ada@example.com")
        );
        for bad in ["ada", "ada@", "@x.com", "a b@x.com", "a@@x.com", "a@x"] {
            assert!(email("email", bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn over_long_text_is_rejected_not_truncated() {
        assert!(text("body", &"x".repeat(11), 10).is_err());
        assert_eq!(text("body", " hi ", 10).ok().as_deref(), Some("hi"));
    }

    #[test]
    fn urls_must_be_http() {
        assert!(url("pageUrl", "https://example.com/a").is_ok());
        assert!(url("pageUrl", "javascript:alert(1)").is_err());
    }
}
