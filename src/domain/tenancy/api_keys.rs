//! Integrator API keys (`ck_…`): created by admins with scopes, shown once, stored
//! as a SHA-256 hash, revocable. Also where any bearer credential is authenticated.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::audit::{self, Act, By};
use crate::auth::{AgentPrincipal, ApiKeyPrincipal, Principal, Scope, bearer};
use crate::domain::Core;
use crate::entity::audit_entry::AuditAction;
use crate::entity::{api_key, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id, random_secret};

use crate::domain::core::validate;

/// The prefix that tells an API key from a JWT.
pub const KEY_PREFIX: &str = "ck_";

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The principal of an `Authorization` header value: a JWT or an API key. A present
/// but bad credential is `UNAUTHENTICATED`, never anonymous.
pub async fn authenticate(core: &Core, header: Option<&str>) -> AppResult<Option<Principal>> {
    let Some(token) = bearer(header)? else {
        return Ok(None);
    };
    if !token.starts_with(KEY_PREFIX) {
        let mut principal = match core.tokens.verify(token) {
            Err(AppError::Unauthenticated(crate::auth::UNKNOWN_KEY))
                if core.tokens.may_reload() =>
            {
                reload_keys(core).await?;
                core.tokens.verify(token)?
            }
            verified => verified?,
        };
        if let Principal::Agent(agent) = &mut principal {
            super::agents::check_token(core, agent).await?;
        }
        return Ok(Some(principal));
    }
    let key = api_key::Entity::find()
        .filter(api_key::Column::SecretHash.eq(hash(token)))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::Unauthenticated("unknown or revoked API key"))?;
    let scopes = key.scopes()?;
    Ok(Some(Principal::ApiKey(ApiKeyPrincipal {
        key_id: key.id,
        workspace_id: key.workspace_id,
        scopes,
    })))
}

/// Read the signing keys again: another process (or `casefile keys rotate`) may
/// have added one.
pub async fn reload_keys(core: &Core) -> AppResult<()> {
    let keys = crate::auth::keys::load(&core.db, core.config.jwt_secret.as_deref()).await?;
    core.tokens.set_keys(&keys);
    Ok(())
}

/// Create a key (`admin` at `address`); the secret is returned here and never
/// again.
pub async fn create(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    name: &str,
    scopes: &[Scope],
) -> AppResult<(api_key::Model, String)> {
    let name = validate::short("name", name)?;
    if scopes.is_empty() {
        return Err(AppError::bad_input("scopes", "give at least one scope"));
    }
    let mut scopes = scopes.to_vec();
    scopes.dedup();
    let secret = format!("{KEY_PREFIX}{}", random_secret(24));
    let key = api_key::ActiveModel {
        id: Set(new_id(Kind::ApiKey)),
        workspace_id: Set(admin.workspace_id.clone()),
        name: Set(name),
        secret_hash: Set(hash(&secret)),
        scopes: Set(serde_json::to_string(&scopes)?),
        created_by: Set(Some(admin.agent_id.clone())),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    };
    let txn = core.db.writer.begin().await?;
    let key = key.insert(&txn).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::ApiKeyCreated, "ApiKey", &key.id).changing(vec!["scopes"]),
    )
    .await?;
    txn.commit().await?;
    Ok((key, secret))
}

/// Revoke a key (`admin` at `address`): it stops working at once.
pub async fn revoke(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    id: &str,
) -> AppResult<api_key::Model> {
    let key = api_key::Entity::find_by_id(id)
        .filter(api_key::Column::WorkspaceId.eq(&admin.workspace_id))
        .one(&core.db.writer)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut active: api_key::ActiveModel = key.into();
    active.revoked_at = Set(Some(now_ms()));
    let txn = core.db.writer.begin().await?;
    let key = active.update(&txn).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::ApiKeyRevoked, "ApiKey", id),
    )
    .await?;
    // Its open sockets close, on every process.
    let revoked =
        crate::domain::core::feed::Event::access_revoked(&key.workspace_id, &key.id, None);
    crate::domain::core::feed::commit(core, txn, &[revoked]).await?;
    Ok(key)
}

/// The workspace's key `id`, revoked or not.
pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<Option<api_key::Model>> {
    Ok(api_key::Entity::find_by_id(id)
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?)
}

pub async fn list(core: &Core, workspace_id: &str) -> AppResult<Vec<api_key::Model>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(api_key::Column::Id)
        .all(&core.db.reader)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn secrets_are_stored_as_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
