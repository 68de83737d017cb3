//! Static files compiled into the binary (GraphiQL, the demo pages), sent gzipped
//! to clients that accept it: GraphiQL's script is 1.3 MB as built and about a
//! third of that gzipped, which matters on the slow links self-hosted servers are
//! often reached over. Each file is compressed once, on its first request that
//! accepts gzip, and kept.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

/// One compiled-in file.
pub struct Asset {
    body: &'static str,
    content_type: &'static str,
    gzipped: OnceCell<Option<Bytes>>,
}

impl Asset {
    pub const fn new(body: &'static str, content_type: &'static str) -> Asset {
        Asset {
            body,
            content_type,
            gzipped: OnceCell::const_new(),
        }
    }

    pub fn body(&self) -> &'static str {
        self.body
    }

    /// The file, gzipped when the request's `Accept-Encoding` allows it, with
    /// `cache_control` when given.
    pub async fn respond(
        &'static self,
        request: &HeaderMap,
        cache_control: Option<&'static str>,
    ) -> Response {
        let gzipped = if accepts_gzip(request) {
            self.gzipped().await
        } else {
            None
        };
        let mut response = match &gzipped {
            Some(gzipped) => gzipped.clone().into_response(),
            None => self.body.into_response(),
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzipped.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(cache_control) = cache_control {
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            );
        }
        response
    }

    /// The gzipped file, compressed off the runtime's threads the first time
    /// (`None` if that failed: the file is then sent as it is).
    async fn gzipped(&'static self) -> Option<Bytes> {
        self.gzipped
            .get_or_init(|| async {
                tokio::task::spawn_blocking(|| gzip(self.body.as_bytes()).ok().map(Bytes::from))
                    .await
                    .ok()
                    .flatten()
            })
            .await
            .clone()
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Whether `Accept-Encoding` lists `gzip` (or `*`) with a non-zero quality.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let quality = parts
                .find_map(|param| param.strip_prefix("q="))
                .map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && quality > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn gzip_is_sent_only_where_accepted() {
        assert!(accepts_gzip(&accept("gzip, deflate, br")));
        assert!(accepts_gzip(&accept("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&accept("*")));
        assert!(!accepts_gzip(&accept("gzip;q=0, br")));
        assert!(!accepts_gzip(&accept("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn the_gzipped_file_is_the_file() {
        use std::io::Read;
        static FILE: Asset = Asset::new("hello, hello, hello, hello", "text/plain");
        let gzipped = FILE.gzipped().await.expect("compressed");
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_string(&mut unzipped)
            .expect("gzip");
        assert_eq!(unzipped, FILE.body());
    }
}
