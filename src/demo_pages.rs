//! The demo pages: the chat widget and the agent inbox of `examples/web`, compiled
//! into the binary (from the committed `examples/web/dist` build), served at
//! `/demo/widget` and `/demo/inbox` once the demo workspace exists.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sea_orm::EntityTrait;

use crate::entity::{setting, workspace};
use crate::state::AppState;

const WIDGET_HTML: &str = include_str!("../examples/web/dist/widget.html");
const INBOX_HTML: &str = include_str!("../examples/web/dist/inbox.html");
const WIDGET_JS: &str = include_str!("../examples/web/dist/widget.js");
const INBOX_JS: &str = include_str!("../examples/web/dist/inbox.js");
const STYLE_CSS: &str = include_str!("../examples/web/dist/style.css");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/demo/widget", get(widget))
        .route("/demo/inbox", get(inbox))
        .route("/demo/assets/{file}", get(asset))
        .with_state(state)
}

/// The demo workspace's widget key, if the demo was seeded.
async fn demo_widget_key(state: &AppState) -> Option<String> {
    let id = setting::Entity::find_by_id(crate::demo::SETTING)
        .one(&state.db.reader)
        .await
        .ok()??
        .value;
    Some(
        workspace::Entity::find_by_id(id)
            .one(&state.db.reader)
            .await
            .ok()??
            .widget_key,
    )
}

fn not_seeded() -> Response {
    (
        StatusCode::NOT_FOUND,
        "The demo pages need the demo workspace: start casefile with --demo.",
    )
        .into_response()
}

async fn widget(State(state): State<AppState>) -> Response {
    let Some(key) = demo_widget_key(&state).await else {
        return not_seeded();
    };
    // Widget keys are URL-safe base64: nothing to escape in an attribute.
    let meta = format!(r#"<meta name="casefile-widget-key" content="{key}">"#);
    Html(WIDGET_HTML.replace("<!--CASEFILE_CONFIG-->", &meta)).into_response()
}

async fn inbox(State(state): State<AppState>) -> Response {
    match demo_widget_key(&state).await {
        Some(_) => Html(INBOX_HTML).into_response(),
        None => not_seeded(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "widget.js" => (WIDGET_JS, "text/javascript; charset=utf-8"),
        "inbox.js" => (INBOX_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
