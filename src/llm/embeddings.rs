//! A client of any OpenAI-compatible embeddings API: `POST {URL}/embeddings` with
//! `{model, input: [texts]}` (and `input_type` when configured), answered with
//! `data[].embedding` by `index`. Vectors come back L2-normalised, so a dot product
//! is their cosine. The API key is sent and never shown.

use std::time::Duration;

use serde::Deserialize;

use super::Failure;
use crate::config::{EmbeddingsConfig, Secret};

/// What a text is embedded as: asymmetric models embed questions and the
/// passages that answer them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Query,
    Passage,
}

/// A passage's embedding, as retrieval by meaning reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Indexed {
    pub article_id: String,
    pub vector: Vec<f32>,
}

/// The embedding server of this process.
pub struct Embedder {
    http: reqwest::Client,
    endpoint: url::Url,
    host: String,
    model: String,
    api_key: Option<Secret>,
    input_type: bool,
    /// How long a question waits for its embedding.
    pub question_timeout: Duration,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl Embedder {
    /// The embedder `config` describes; `None` without a URL.
    pub fn new(config: &EmbeddingsConfig) -> Option<Embedder> {
        let (endpoint, host) = super::endpoint(config.url.as_ref()?, "embeddings");
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .build()
            .ok()?;
        Some(Embedder {
            http,
            endpoint,
            host,
            model: config.model.clone().unwrap_or_default(),
            api_key: config.api_key.clone(),
            input_type: config.input_type,
            question_timeout: config.timeout,
        })
    }

    /// The embedding model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `host:port` of the embedding server, for log lines.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The embeddings of `texts`, in order, each L2-normalised, within `timeout`.
    pub async fn embed(
        &self,
        texts: &[String],
        input: Input,
        timeout: Duration,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let mut body = serde_json::json!({ "model": self.model, "input": texts });
        if self.input_type {
            body["input_type"] = serde_json::Value::from(match input {
                Input::Query => "query",
                Input::Passage => "passage",
            });
        }
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let answered = tokio::time::timeout(timeout, async {
            let response = request.send().await.map_err(|err| {
                if err.is_timeout() {
                    Failure::Timeout(timeout)
                } else {
                    Failure::Connect
                }
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(Failure::Status(status.as_u16()));
            }
            response.bytes().await.map_err(|_| Failure::Connect)
        })
        .await
        .map_err(|_| Failure::Timeout(timeout))??;
        let mut parsed: Response = serde_json::from_slice(&answered)
            .map_err(|err| Failure::Malformed(format!("not an embeddings response: {err}")))?;
        if parsed.data.len() != texts.len() {
            return Err(Failure::Malformed(format!(
                "{} embeddings for {} texts",
                parsed.data.len(),
                texts.len()
            )));
        }
        parsed.data.sort_by_key(|d| d.index.unwrap_or(usize::MAX));
        let dimensions = parsed.data.first().map_or(0, |d| d.embedding.len());
        if dimensions == 0 || parsed.data.iter().any(|d| d.embedding.len() != dimensions) {
            return Err(Failure::Malformed(
                "embeddings of no or different dimensions".to_owned(),
            ));
        }
        Ok(parsed
            .data
            .into_iter()
            .map(|d| normalised(d.embedding))
            .collect())
    }
}

/// `vector` scaled to length 1 (a zero vector stays zero).
pub fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

/// A vector as stored: little-endian `f32`s.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector; `None` when the bytes are no whole number of `f32`s.
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// The dot product: the cosine of two normalised vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_their_bytes_normalised() {
        let v = normalised(vec![3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(from_bytes(&to_bytes(&v)), Some(v.clone()));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        assert_eq!(normalised(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }
}
