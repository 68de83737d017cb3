//! Signing secrets and the `webhook-signature` header of Standard Webhooks.
//!
//! A receiver recomputes HMAC-SHA256 over `{id}.{timestamp}.{body}` with the secret
//! it was given and compares; binding the id and timestamp into the MAC is what lets
//! it refuse replays (an old timestamp) and duplicates (an id it has seen).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The header carrying the message id, unique per event (and the same on retries,
/// so a receiver can drop duplicates).
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the time of signing, in seconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying one or more space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The prefix the spec gives symmetric secrets, so that a secret pasted in the wrong
/// place is recognisable.
const PREFIX: &str = "whsec_";

/// Bytes in a generated secret: 192 bits, the spec's recommended minimum.
const GENERATED_LEN: usize = 24;

/// The range of secret lengths the spec recommends; shorter is guessable, and
/// longer than a SHA-256 block gains nothing.
const ACCEPTED_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// A symmetric signing secret shared with one receiver.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Secret {
        let mut bytes = vec![0; GENERATED_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Reads a secret in its `whsec_<standard base64>` form; `None` when the prefix
    /// is missing, the base64 is invalid, or the key is outside 24..=64 bytes.
    pub fn parse(text: &str) -> Option<Secret> {
        let bytes = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        ACCEPTED_LEN.contains(&bytes.len()).then_some(Secret(bytes))
    }

    /// The `whsec_…` form handed to the receiver, which every Standard Webhooks
    /// library accepts as is.
    pub fn encoded(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }
}

/// Never prints the key: secrets end up in `Debug` output of whatever holds them.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The `webhook-signature` value: one `v1,<base64>` per secret, space-separated.
///
/// Several secrets are live while one is rotated: the receiver accepts the message
/// if any signature matches, so it can switch secrets at its own pace. No secrets
/// give an empty string.
pub fn signature(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            format!(
                "v1,{}",
                STANDARD.encode(mac(secret, msg_id, timestamp, body))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three Standard Webhooks headers for one delivery, ready for
/// [`Client::post`](super::client::Client::post).
pub fn headers(
    secrets: &[&Secret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (
            HEADER_SIGNATURE,
            signature(secrets, msg_id, timestamp, body),
        ),
    ]
}

/// HMAC-SHA256 over the spec's signed content, `{msg_id}.{timestamp}.{body}`.
fn mac(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use standardwebhooks::Webhook;

    use super::*;

    const MSG_ID: &str = "msg_2p5jXN8AQM9LWM0D4loKWxJek";
    const BODY: &[u8] = br#"{"type":"HANDOFF_REQUESTED","handoff":{"id":"hnd_1"}}"#;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn header_map(msg_id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            (HEADER_ID, msg_id.to_owned()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_SIGNATURE, signature.to_owned()),
        ] {
            map.insert(name, value.parse().expect("ASCII header value"));
        }
        map
    }

    /// Verifies with the reference implementation, as a receiver would.
    fn verifies(secret: &Secret, body: &[u8], headers: &HeaderMap) -> bool {
        Webhook::new(&secret.encoded())
            .expect("our encoding is one the reference library reads")
            .verify(body, headers)
            .is_ok()
    }

    #[test]
    fn signature_matches_the_reference_test_vector() {
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("valid");
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature(
                &[&secret],
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                body
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn reference_library_verifies_our_signature() {
        let secret = Secret::generate();
        let timestamp = now();
        let signed = signature(&[&secret], MSG_ID, timestamp, BODY);
        assert!(verifies(
            &secret,
            BODY,
            &header_map(MSG_ID, timestamp, &signed)
        ));
    }

    #[test]
    fn headers_carry_id_timestamp_and_signature() {
        let secret = Secret::generate();
        let timestamp = now();
        let mut map = HeaderMap::new();
        for (name, value) in headers(&[&secret], MSG_ID, timestamp, BODY) {
            map.insert(name, value.parse().expect("ASCII header value"));
        }
        assert!(verifies(&secret, BODY, &map));
    }

    #[test]
    fn each_of_two_secrets_verifies_alone() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let timestamp = now();
        let signed = signature(&[&old, &new], MSG_ID, timestamp, BODY);
        let parts: Vec<&str> = signed.split(' ').collect();
        assert_eq!(parts.len(), 2, "{signed}");
        assert!(parts.iter().all(|part| part.starts_with("v1,")));
        let headers = header_map(MSG_ID, timestamp, &signed);
        assert!(verifies(&old, BODY, &headers));
        assert!(verifies(&new, BODY, &headers));
        assert!(!verifies(&Secret::generate(), BODY, &headers));
    }

    #[test]
    fn changed_body_does_not_verify() {
        let secret = Secret::generate();
        let timestamp = now();
        let signed = signature(&[&secret], MSG_ID, timestamp, BODY);
        let tampered = br#"{"type":"HANDOFF_REQUESTED","handoff":{"id":"hnd_2"}}"#;
        assert!(!verifies(
            &secret,
            tampered,
            &header_map(MSG_ID, timestamp, &signed)
        ));
    }

    #[test]
    fn changed_timestamp_does_not_verify() {
        let secret = Secret::generate();
        let timestamp = now();
        let signed = signature(&[&secret], MSG_ID, timestamp, BODY);
        assert!(!verifies(
            &secret,
            BODY,
            &header_map(MSG_ID, timestamp - 1, &signed)
        ));
    }

    #[test]
    fn secret_survives_encoding() {
        let secret = Secret::generate();
        let encoded = secret.encoded();
        assert!(encoded.starts_with("whsec_"), "{encoded}");
        assert_eq!(Secret::parse(&encoded), Some(secret));
    }

    #[test]
    fn parse_refuses_malformed_secrets() {
        let key = STANDARD.encode([7u8; 24]);
        assert!(Secret::parse(&key).is_none(), "missing prefix");
        assert!(Secret::parse("whsec_not base64!").is_none());
        assert!(Secret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 8]))).is_none());
        assert!(Secret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 65]))).is_none());
        assert!(Secret::parse(&format!("whsec_{key}")).is_some());
    }

    #[test]
    fn debug_hides_the_key() {
        let secret = Secret::generate();
        assert!(!format!("{secret:?}").contains(&secret.encoded()[6..]));
    }
}
