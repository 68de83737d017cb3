//! Streaming CSV exports for integrators: `GET /export/leads.csv` (`LEADS_READ`) and
//! `GET /export/conversations.csv` (`CONVERSATIONS_READ`), authenticated like the
//! API (`Authorization: Bearer …`). The domain reads the rows a page at a time
//! (`domain::outbound::exports`); here they are written as CSV as they come, so an
//! export of any size holds one page in memory.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use crate::auth::Principal;
use crate::domain::Core;
use crate::domain::outbound::exports::{self, Row};
use crate::error::{AppError, AppResult};

fn csv_row(fields: &[String]) -> AppResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(fields.iter().map(|field| match neutralised(field) {
            std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
            std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
        }))
        .map_err(|err| AppError::internal(format!("csv: {err}")))?;
    writer
        .into_inner()
        .map_err(|err| AppError::internal(format!("csv: {err}")))
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first: visitors write these cells) gets a leading `'`, so it shows as text.
fn neutralised(field: &str) -> std::borrow::Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{field}"))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

fn failure(err: &AppError) -> Response {
    if let AppError::RateLimited { .. } = err {
        return crate::net::rate_limited(err);
    }
    let status = match err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "errors": [{ "message": err.message(), "extensions": { "code": err.code() } }] });
    (status, axum::Json(body)).into_response()
}

/// Who asks for an export: a token or an API key, within its rate (the scope it
/// needs is the export's to check).
async fn authorize(core: &Core, headers: &HeaderMap) -> AppResult<Principal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::Unauthenticated("token is malformed"))
        })
        .transpose()?;
    let principal = crate::domain::tenancy::api_keys::authenticate(core, value)
        .await?
        .ok_or(AppError::Unauthenticated(
            "an export needs a token or an API key",
        ))?;
    // An export counts as one request of its token's budget.
    core.rate.request(&principal)?;
    Ok(principal)
}

/// A CSV download of `pages` of rows, written as they come.
fn csv_response(
    name: &str,
    pages: impl Stream<Item = AppResult<Vec<Row>>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let body = pages.map(|page| {
        let chunk = page.and_then(|rows| {
            let mut chunk = Vec::new();
            for row in &rows {
                chunk.extend(csv_row(row)?);
            }
            Ok(chunk)
        });
        chunk.map(Bytes::from).map_err(|err| {
            tracing::error!(error.detail = ?err, "export failed mid-stream");
            std::io::Error::other("export failed")
        })
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The client's address (see `crate::net::client_ip`), for the audit log.
fn client(core: &Core, peer: std::net::SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    crate::net::client_ip(peer.ip(), headers, &core.config.limits.trusted_proxies)
}

/// `GET /export/leads.csv`.
pub async fn leads(
    State(core): State<Core>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let rows = match authorize(&core, &headers).await {
        Ok(principal) => exports::leads(&core, &principal, client(&core, peer, &headers)).await,
        Err(err) => Err(err),
    };
    match rows {
        Ok(rows) => csv_response("leads.csv", rows),
        Err(err) => failure(&err),
    }
}

/// `GET /export/conversations.csv`.
pub async fn conversations(
    State(core): State<Core>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let rows = match authorize(&core, &headers).await {
        Ok(principal) => {
            let address = client(&core, peer, &headers);
            exports::conversations(&core, &principal, address).await
        }
        Err(err) => Err(err),
    };
    match rows {
        Ok(rows) => csv_response("conversations.csv", rows),
        Err(err) => failure(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(neutralised(formula), format!("'{formula}"));
        }
        assert_eq!(neutralised("Kim"), "Kim");
        assert_eq!(neutralised(""), "");
    }

    #[test]
    fn fields_with_commas_quotes_and_newlines_are_quoted() {
        let row = csv_row(&[
            "a,b".into(),
            "say \"hi\"".into(),
            "two\nlines".into(),
            "plain".into(),
        ])
        .expect("row");
        assert_eq!(
            String::from_utf8(row).expect("utf8"),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\n"
        );
    }
}
