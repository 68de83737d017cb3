//! Verified visitor identities, for sites whose visitors are signed in (as
//! Intercom's and Zendesk's messengers do): the site's backend signs `{sub, email?,
//! name?, exp}` with the workspace's identity secret (HS256), and the widget passes
//! the token to `startConversation`. A valid token binds the conversation to the lead
//! of that `sub` on any device, with its email and name marked verified.

use crate::db::seal::{IDENTITY_SECRET, Sealer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sea_orm::{ActiveModelTrait, Set, TransactionTrait};

use super::audit::{self, Act, By};
use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::entity::audit_entry::AuditAction;
use crate::entity::workspace;
use crate::error::{AppError, AppResult};
use crate::ids::random_secret;

use crate::domain::core::validate;

/// The longest `sub` accepted.
const MAX_SUB: usize = 120;

/// Who the site says the visitor is.
#[derive(Debug, serde::Deserialize)]
pub struct Identity {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Identity {
    /// The visitor id of this identity: the same on every device.
    pub fn visitor_id(&self) -> String {
        format!("usr_{}", self.sub)
    }
}

/// The identity in `token`, signed with `workspace`'s secret and not expired;
/// anything else is `UNAUTHENTICATED`.
pub fn verify(sealer: &Sealer, workspace: &workspace::Model, token: &str) -> AppResult<Identity> {
    let Some(sealed) = workspace.identity_secret.as_deref() else {
        return Err(AppError::Unauthenticated(
            "this workspace verifies no identities yet: an admin makes its secret with rotateIdentitySecret",
        ));
    };
    let secret = sealer.open(IDENTITY_SECRET, sealed)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.validate_aud = false;
    validation.leeway = 0;
    let identity = jsonwebtoken::decode::<Identity>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|err| {
        AppError::Unauthenticated(match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "identity token expired",
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "identity token signature is invalid"
            }
            _ => "identity token is malformed",
        })
    })?
    .claims;
    let sub = identity.sub.trim();
    if sub.is_empty() || sub.chars().count() > MAX_SUB {
        return Err(AppError::Unauthenticated(
            "identity token `sub` must have 1 to 120 characters",
        ));
    }
    if let Some(email) = identity.email.as_deref() {
        validate::email("identityToken.email", email)?;
    }
    Ok(identity)
}

/// Make a new identity secret for the workspace (the old one stops verifying); it
/// is returned this once. By `admin` at `address`.
pub async fn rotate_secret(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
) -> AppResult<String> {
    new_secret(core, &admin.workspace_id, &By::agent(admin, address)).await
}

/// The workspace's identity secret, made if it has none (for the demo's stand-in of
/// a site's backend).
pub async fn secret(core: &Core, workspace_id: &str) -> AppResult<String> {
    let workspace = super::workspaces::get(core, workspace_id).await?;
    match workspace.identity_secret {
        Some(sealed) => core.db.sealer.open(IDENTITY_SECRET, &sealed),
        None => new_secret(core, workspace_id, &By::server(workspace_id)).await,
    }
}

/// Sign an identity as a site's backend does: `sub`, `email`, `name`, valid for
/// `ttl`.
pub fn sign(
    secret: &str,
    sub: &str,
    email: &str,
    name: &str,
    ttl: std::time::Duration,
) -> AppResult<String> {
    let exp = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
    let claims = serde_json::json!({ "sub": sub, "email": email, "name": name, "exp": exp });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|err| AppError::internal(format!("signing an identity: {err}")))
}

async fn new_secret(core: &Core, workspace_id: &str, by: &By) -> AppResult<String> {
    let workspace = super::workspaces::get(core, workspace_id).await?;
    let secret = random_secret(32);
    let mut active: workspace::ActiveModel = workspace.into();
    active.identity_secret = Set(Some(core.db.sealer.seal(IDENTITY_SECRET, &secret)));
    let txn = core.db.writer.begin().await?;
    let workspace = active.update(&txn).await?;
    audit::record(
        &txn,
        by,
        Act::on(
            AuditAction::IdentitySecretRotated,
            "Workspace",
            workspace_id,
        ),
    )
    .await?;
    txn.commit().await?;
    core.workspaces.put(workspace.id.clone(), workspace);
    Ok(secret)
}
