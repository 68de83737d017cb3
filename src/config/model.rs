//! Answers from a language model: where the OpenAI-compatible API is, which model
//! to ask, and how long and how many requests to allow. With no URL there is no
//! model, and the AI answers with the extractive responder.

use std::time::Duration;

use clap::Args;

#[derive(Clone, Debug, Args)]
pub struct ModelConfig {
    /// The base URL of an OpenAI-compatible API (OpenAI, Azure OpenAI, Ollama,
    /// llama.cpp's server, vLLM, LM Studio, …), e.g. `http://127.0.0.1:8000/v1`:
    /// Casefile calls `POST {URL}/chat/completions`. Unset: no model.
    #[arg(long = "llm-url", env = "CASEFILE_LLM_URL", value_parser = model_url)]
    pub url: Option<url::Url>,

    /// The model name sent in each request (required with the URL).
    #[arg(long = "llm-model", env = "CASEFILE_LLM_MODEL")]
    pub model: Option<String>,

    /// Sent as `Authorization: Bearer …` when set; never logged or shown.
    #[arg(
        long = "llm-api-key",
        env = "CASEFILE_LLM_API_KEY",
        hide_env_values = true,
        value_parser = secret
    )]
    pub api_key: Option<Secret>,

    /// How long a whole answer may take, from the request to its last piece.
    #[arg(long = "llm-timeout", env = "CASEFILE_LLM_TIMEOUT", default_value = "60s", value_parser = positive_duration)]
    pub timeout: Duration,

    /// How long the model may take to start answering (its first piece of text or
    /// its tool call).
    #[arg(
        long = "llm-first-token-timeout",
        env = "CASEFILE_LLM_FIRST_TOKEN_TIMEOUT",
        default_value = "15s",
        value_parser = positive_duration
    )]
    pub first_token_timeout: Duration,

    /// Model requests in flight per process; the rest wait their turn while the
    /// visitor sees the AI typing.
    #[arg(long = "llm-concurrency", env = "CASEFILE_LLM_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// When the model is taken out of use after failing (not a flag: tests shorten
    /// it).
    #[arg(skip)]
    pub breaker: BreakerConfig,
}

/// After `failures` failures within `window` the process stops calling the model
/// for `open_for` (answers go the extractive way meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: usize,
    pub window: Duration,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }
}

impl ModelConfig {
    /// Settings that cannot work, in one plain sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.url.is_some() && self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            return Err(
                "CASEFILE_LLM_URL is set without CASEFILE_LLM_MODEL: set the name of the model to ask \
                 (as your server lists it, e.g. `gpt-4o-mini` or `llama3.1`)"
                    .to_owned(),
            );
        }
        if self.first_token_timeout > self.timeout {
            return Err(format!(
                "CASEFILE_LLM_FIRST_TOKEN_TIMEOUT ({}) is longer than CASEFILE_LLM_TIMEOUT ({}), the whole answer's: \
                 shorten it or lengthen the other",
                humantime::format_duration(self.first_token_timeout),
                humantime::format_duration(self.timeout)
            ));
        }
        Ok(())
    }
}

/// A value that must not be shown: its `Debug` says only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

pub(super) fn secret(value: &str) -> Result<Secret, String> {
    Ok(Secret(value.trim().to_owned()))
}

/// An `http://` or `https://` URL with a host.
pub(super) fn model_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value.trim()).map_err(|err| {
        format!("not a URL ({err}): expected one like `http://127.0.0.1:8000/v1`")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(
            "expected an http:// or https:// URL with a host, like `http://127.0.0.1:8000/v1`"
                .to_owned(),
        );
    }
    Ok(url)
}

pub(super) fn positive_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value.trim()).map_err(|err| err.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret::new("sk-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        assert_eq!(secret.expose(), "sk-very-secret");
    }

    #[test]
    fn model_urls_are_http_with_a_host() {
        assert!(model_url("http://127.0.0.1:8000/v1").is_ok());
        assert!(model_url("https://models.example.com/v1").is_ok());
        assert!(model_url("ftp://example.com").is_err());
        assert!(model_url("127.0.0.1:8000").is_err());
    }
}
