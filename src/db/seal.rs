//! Secrets sealed at rest. With `CASEFILE_MASTER_KEY` (32 random bytes, base64),
//! the secrets the database keeps (the workspaces' identity secrets, the webhooks'
//! signing secrets, the token signing keys) are stored encrypted with
//! XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`): a random 192-bit nonce
//! per value, and the value's purpose (`webhooks.secret`, …) as associated data, so
//! a sealed value cannot be moved to another column. A copy of the database alone
//! reveals none of them. A sealed value is `sealed:v1:` and the base64 of nonce
//! and ciphertext; a value without the prefix is plain (written before sealing, or
//! without a master key), read as it is and sealed by `casefile keys seal`.
//!
//! API keys' secrets are never stored at all: only their SHA-256 hashes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::config::Secret;
use crate::error::{AppError, AppResult};

const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 24;

/// Seals and opens the database's secrets; without a master key it leaves them
/// plain.
#[derive(Clone, Default)]
pub struct Sealer(Option<XChaCha20Poly1305>);

impl Sealer {
    /// A sealer with `key` (checked by [`master_key`] first), or one that leaves
    /// secrets plain.
    pub fn new(key: Option<&Secret>) -> Result<Sealer, String> {
        match key {
            None => Ok(Sealer(None)),
            Some(key) => {
                let bytes = crate::config::master_key_bytes(key.expose())?;
                Ok(Sealer(Some(XChaCha20Poly1305::new(&bytes.into()))))
            }
        }
    }

    /// Whether secrets are sealed (a master key is set).
    pub fn seals(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `stored` is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// `plain`, sealed for `purpose` (plain without a master key).
    pub fn seal(&self, purpose: &str, plain: &str) -> String {
        let Some(cipher) = &self.0 else {
            return plain.to_owned();
        };
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// The secret in `stored` (sealed for `purpose`, or plain).
    pub fn open(&self, purpose: &str, stored: &str) -> AppResult<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let Some(cipher) = &self.0 else {
            return Err(AppError::Unavailable(
                "this database's secrets are sealed: set CASEFILE_MASTER_KEY to the key they were sealed with".to_owned(),
            ));
        };
        let wrong = || {
            AppError::Unavailable(
                "CASEFILE_MASTER_KEY does not open the secrets sealed in this database: set the key they were sealed with".to_owned(),
            )
        };
        let bytes = STANDARD.decode(encoded).map_err(|_| wrong())?;
        if bytes.len() < NONCE_BYTES {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| wrong())?;
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }
}

/// Whether the sealer opens what the database holds sealed: the settings named
/// (key material), one sealed identity secret and one sealed webhook secret.
/// A database with sealed secrets and no master key, or the wrong one, is one
/// clear error at start-up.
pub async fn check(db: &super::Db, settings: &[&str]) -> AppResult<()> {
    use sea_orm::ConnectionTrait;
    let backend = db.backend();
    for name in settings {
        let row = db
            .writer
            .query_one_raw(super::stmt(
                backend,
                "SELECT value FROM settings WHERE key = ?",
                vec![(*name).into()],
            ))
            .await?;
        if let Some(row) = row {
            let value: String = row.try_get("", "value")?;
            db.sealer.open(name, &value)?;
        }
    }
    for (table, column, purpose) in [
        ("workspaces", "identity_secret", IDENTITY_SECRET),
        ("webhooks", "secret", WEBHOOK_SECRET),
    ] {
        let sql = format!("SELECT {column} AS value FROM {table} WHERE {column} LIKE ? LIMIT 1");
        let row = db
            .writer
            .query_one_raw(super::stmt(
                backend,
                &sql,
                vec![format!("{PREFIX}%").into()],
            ))
            .await?;
        if let Some(row) = row {
            let value: String = row.try_get("", "value")?;
            db.sealer.open(purpose, &value)?;
        }
    }
    Ok(())
}

/// Seal every secret still stored plain (the settings named, identity secrets,
/// webhook secrets), in one transaction; how many were sealed.
pub async fn seal_all(db: &super::Db, settings: &[&str]) -> AppResult<u64> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if !db.sealer.seals() {
        return Err(AppError::Unavailable(
            "set CASEFILE_MASTER_KEY (32 random bytes in base64: `openssl rand -base64 32`) to seal the secrets with"
                .to_owned(),
        ));
    }
    let backend = db.backend();
    let txn = db.writer.begin().await?;
    let mut sealed = 0;
    let mut rows: Vec<(String, String, String, String, String)> = Vec::new();
    for name in settings {
        let found = txn
            .query_one_raw(super::stmt(
                backend,
                "SELECT value FROM settings WHERE key = ?",
                vec![(*name).into()],
            ))
            .await?;
        if let Some(row) = found {
            rows.push((
                "settings".into(),
                "value".into(),
                "key".into(),
                (*name).to_owned(),
                row.try_get("", "value")?,
            ));
        }
    }
    for (table, column) in [
        ("workspaces", "identity_secret"),
        ("webhooks", "secret"),
        ("webhooks", "previous_secret"),
    ] {
        let sql = format!("SELECT id, {column} AS value FROM {table} WHERE {column} IS NOT NULL");
        for row in txn
            .query_all_raw(super::stmt(backend, &sql, Vec::new()))
            .await?
        {
            rows.push((
                table.into(),
                column.into(),
                "id".into(),
                row.try_get("", "id")?,
                row.try_get("", "value")?,
            ));
        }
    }
    for (table, column, key, id, value) in rows {
        if Sealer::is_sealed(&value) {
            continue;
        }
        let purpose = if table == "settings" {
            id.clone()
        } else {
            format!("{table}.{column}")
        };
        let sql = format!("UPDATE {table} SET {column} = ? WHERE {key} = ?");
        txn.execute_raw(super::stmt(
            backend,
            &sql,
            vec![db.sealer.seal(&purpose, &value).into(), id.into()],
        ))
        .await?;
        sealed += 1;
    }
    txn.commit().await?;
    Ok(sealed)
}

/// The purposes of the secrets kept in rows.
pub const IDENTITY_SECRET: &str = "workspaces.identity_secret";
pub const WEBHOOK_SECRET: &str = "webhooks.secret";
pub const WEBHOOK_PREVIOUS_SECRET: &str = "webhooks.previous_secret";

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        let key = STANDARD.encode([byte; 32]);
        Sealer::new(Some(&Secret::new(key))).expect("a key")
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_purpose_only() {
        let one = sealer(1);
        let sealed = one.seal("webhooks.secret", "whsec_abc");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            one.seal("webhooks.secret", "whsec_abc"),
            "a nonce each"
        );
        assert_eq!(
            one.open("webhooks.secret", &sealed).expect("opens"),
            "whsec_abc"
        );
        assert!(one.open("workspaces.identity_secret", &sealed).is_err());
        assert!(sealer(2).open("webhooks.secret", &sealed).is_err());
        assert!(Sealer::default().open("webhooks.secret", &sealed).is_err());
        // Plain values (before sealing) read as they are.
        assert_eq!(
            one.open("webhooks.secret", "plain").expect("plain"),
            "plain"
        );
        assert_eq!(Sealer::default().seal("x", "plain"), "plain");
    }

    #[test]
    fn a_master_key_is_32_bytes_of_base64() {
        use crate::config::master_key_bytes;
        assert!(master_key_bytes(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(master_key_bytes(&STANDARD.encode([7u8; 16])).is_err());
        assert!(master_key_bytes("not base64!").is_err());
    }
}
