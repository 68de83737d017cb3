//! Relay connections: page sizes, opaque cursors, and a lazily counted `totalCount`.

use std::future::Future;
use std::pin::Pin;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Object, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::limits::MAX_PAGE;
use crate::error::{AppError, AppResult};

/// Page size when a client does not say.
pub const DEFAULT_PAGE: i32 = 20;

type CountFuture = Pin<Box<dyn Future<Output = AppResult<u64>> + Send>>;

/// `totalCount`, computed only when a client asks for it.
pub struct TotalCount(Box<dyn Fn() -> CountFuture + Send + Sync>);

impl TotalCount {
    pub fn new<F, Fut>(count: F) -> TotalCount
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AppResult<u64>> + Send + 'static,
    {
        TotalCount(Box::new(move || Box::pin(count())))
    }
}

#[Object]
impl TotalCount {
    /// How many items match, across all pages.
    async fn total_count(&self) -> async_graphql::Result<i64> {
        let count = (self.0)().await?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }
}

/// A Relay connection of `N` with `totalCount`.
pub type Page<N> = Connection<String, N, TotalCount>;

/// The number of items to load for `first`: 1 to [`MAX_PAGE`].
pub fn page_size(first: Option<i32>) -> AppResult<u64> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n if (1..=MAX_PAGE).contains(&n) => Ok(n as u64),
        _ => Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position inside an `after` cursor; a cursor we did not make is `BAD_USER_INPUT`.
pub fn decode_cursor(cursor: &str) -> AppResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| AppError::bad_input("after", "not a cursor from this connection"))
}

/// A page from `rows`, which holds up to `limit + 1` items (the extra one says that
/// a next page exists).
pub fn page<M, N: OutputType>(
    mut rows: Vec<M>,
    limit: u64,
    position: impl Fn(&M) -> String,
    node: impl Fn(M) -> N,
    total: TotalCount,
) -> Page<N> {
    let has_next = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let mut connection = Connection::with_additional_fields(false, has_next, total);
    connection.edges.extend(
        rows.into_iter()
            .map(|row| Edge::new(encode_cursor(&position(&row)), node(row))),
    );
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let cursor = encode_cursor("conv_01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(
            decode_cursor(&cursor).ok().as_deref(),
            Some("conv_01ARZ3NDEKTSV4RRFFQ69G5FAV")
        );
        assert!(decode_cursor("%%%").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).ok(), Some(20));
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
