//! Signing keys: a ring of HS256 secrets, each with an id (`kid`, in every token's
//! header). The newest key signs; every key verifies, so the tokens signed before a
//! rotation stay valid until they expire.
//!
//! The ring lives in the database (`settings.jwt_keys`), shared by every process:
//! `casefile keys rotate` adds a key, and each running server picks it up within
//! [`RELOAD_EVERY`], or at once when it meets a token of a key it does not know.
//! A configured `CASEFILE_JWT_SECRET` is a ring of its one key instead (rotate it by
//! changing the variable, which ends the tokens it signed).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::ids::random_secret;

/// The setting that holds the ring (JSON), and the one that held the single secret
/// before keys had ids (its tokens carry no `kid`: they are verified with it).
const RING_SETTING: &str = "jwt_keys";
const LEGACY_SETTING: &str = "jwt_secret";

/// How often a server reads the ring again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// One signing key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Key {
    pub kid: String,
    pub secret: String,
}

impl Key {
    /// The key of a configured secret: its id is derived from it, so every process
    /// configured alike agrees.
    pub fn configured(secret: &str) -> Key {
        let digest = Sha256::digest(secret.as_bytes());
        let kid: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Key {
            kid: format!("cfg-{kid}"),
            secret: secret.to_owned(),
        }
    }
}

/// The ring in force: the configured secret, else the database's ring (made on
/// first start, from the secret of older versions when there is one).
pub async fn load(db: &Db, configured: Option<&str>) -> AppResult<Vec<Key>> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return Ok(vec![Key::configured(secret)]);
    }
    // Two processes may start at once: the first insert wins, both read it back.
    // Stored sealed with a master key (`crate::db::seal`).
    let sealer = &db.sealer;
    let legacy = db
        .setting_or_insert(
            LEGACY_SETTING,
            &sealer.seal(LEGACY_SETTING, &random_secret(48)),
        )
        .await?;
    let first = serde_json::to_string(&[Key {
        kid: "k0".to_owned(),
        secret: sealer.open(LEGACY_SETTING, &legacy)?,
    }])?;
    let ring = db
        .setting_or_insert(RING_SETTING, &sealer.seal(RING_SETTING, &first))
        .await?;
    parse(&sealer.open(RING_SETTING, &ring)?)
}

/// The settings that hold key material, by name (each value sealed with that name
/// as its purpose).
pub const SEALED_SETTINGS: [&str; 2] = [LEGACY_SETTING, RING_SETTING];

fn parse(ring: &str) -> AppResult<Vec<Key>> {
    let keys: Vec<Key> = serde_json::from_str(ring)
        .map_err(|err| AppError::internal(format!("the signing key ring is corrupt: {err}")))?;
    if keys.is_empty() {
        return Err(AppError::internal("the signing key ring is empty"));
    }
    Ok(keys)
}

/// Add a new signing key to the database's ring; it signs from now on (on each
/// server once it has read the ring again), and the older keys still verify.
pub async fn rotate(db: &Db) -> AppResult<Key> {
    let mut keys = load(db, None).await?;
    let key = Key {
        kid: format!("k{}", random_secret(6)),
        secret: random_secret(48),
    };
    keys.push(key.clone());
    let ring = serde_json::to_string(&keys)?;
    db.set_setting(RING_SETTING, &db.sealer.seal(RING_SETTING, &ring))
        .await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_secret_has_a_stable_id() {
        let a = Key::configured("a configured secret of enough length!!");
        let b = Key::configured("a configured secret of enough length!!");
        let c = Key::configured("another configured secret of enough length");
        assert_eq!(a.kid, b.kid);
        assert_ne!(a.kid, c.kid);
        assert!(a.kid.starts_with("cfg-"));
    }
}
