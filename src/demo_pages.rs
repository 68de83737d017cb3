//! The demo pages: the chat widget and the agent inbox of `examples/web`, compiled
//! into the binary (from the committed `examples/web/dist` build), served at
//! `/demo/widget` and `/demo/inbox` once the demo workspace exists.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sea_orm::EntityTrait;

use crate::assets::Asset;
use crate::domain::Core;
use crate::entity::{setting, workspace};

const WIDGET_HTML: &str = include_str!("../examples/web/dist/widget.html");
const INBOX_HTML: &str = include_str!("../examples/web/dist/inbox.html");
static WIDGET_JS: Asset = Asset::new(
    include_str!("../examples/web/dist/widget.js"),
    "text/javascript; charset=utf-8",
);
static INBOX_JS: Asset = Asset::new(
    include_str!("../examples/web/dist/inbox.js"),
    "text/javascript; charset=utf-8",
);
static STYLE_CSS: Asset = Asset::new(
    include_str!("../examples/web/dist/style.css"),
    "text/css; charset=utf-8",
);

pub fn router(core: Core) -> Router {
    Router::new()
        .route("/demo/widget", get(widget))
        .route("/demo/inbox", get(inbox))
        .route("/demo/assets/{file}", get(asset))
        .route("/demo/identity", get(identity))
        .with_state(core)
}

/// The demo workspace, if the demo was seeded.
async fn demo_workspace(core: &Core) -> Option<workspace::Model> {
    let id = setting::Entity::find_by_id(crate::demo::SETTING)
        .one(&core.db.reader)
        .await
        .ok()??
        .value;
    workspace::Entity::find_by_id(id)
        .one(&core.db.reader)
        .await
        .ok()?
}

/// The demo workspace's widget key, if the demo was seeded.
async fn demo_widget_key(core: &Core) -> Option<String> {
    Some(demo_workspace(core).await?.widget_key)
}

/// The signed-in user of the demo's stand-in customer site.
const DEMO_USER: (&str, &str, &str) = ("inkwell-user-kim", "kim.lee@customer.example", "Kim Lee");

/// What a site's backend does for its signed-in user (identity verification): sign
/// `{sub, email, name, exp}` with the workspace's identity secret. The demo page plays
/// the site, so this stands in for its backend, for its one demo user.
async fn identity(State(core): State<Core>) -> Response {
    let Some(workspace) = demo_workspace(&core).await else {
        return not_seeded();
    };
    let (sub, email, name) = DEMO_USER;
    let signed = match crate::domain::tenancy::identity::secret(&core, &workspace.id).await {
        Ok(secret) => crate::domain::tenancy::identity::sign(
            &secret,
            sub,
            email,
            name,
            std::time::Duration::from_secs(3600),
        ),
        Err(err) => Err(err),
    };
    match signed {
        Ok(token) => {
            axum::Json(serde_json::json!({ "identityToken": token, "name": name, "email": email }))
                .into_response()
        }
        Err(err) => {
            tracing::error!(error.detail = ?err, "signing the demo identity failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn not_seeded() -> Response {
    (
        StatusCode::NOT_FOUND,
        "The demo pages need the demo workspace: start casefile with --demo.",
    )
        .into_response()
}

async fn widget(State(core): State<Core>) -> Response {
    let Some(key) = demo_widget_key(&core).await else {
        return not_seeded();
    };
    // Widget keys are URL-safe base64: nothing to escape in an attribute.
    let meta = format!(r#"<meta name="casefile-widget-key" content="{key}">"#);
    Html(WIDGET_HTML.replace("<!--CASEFILE_CONFIG-->", &meta)).into_response()
}

async fn inbox(State(core): State<Core>) -> Response {
    match demo_widget_key(&core).await {
        Some(_) => Html(INBOX_HTML).into_response(),
        None => not_seeded(),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let asset = match file.as_str() {
        "widget.js" => &WIDGET_JS,
        "inbox.js" => &INBOX_JS,
        "style.css" => &STYLE_CSS,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    asset.respond(&headers, None).await
}
