//! Outbound webhooks in the [Standard Webhooks] format, so that a receiver can verify
//! our deliveries with any of that project's libraries.
//!
//! - [`sign`]: signing secrets (`whsec_…`) and the `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature` headers.
//! - [`client`]: the HTTP side: one POST per attempt, a 2xx within ten seconds is
//!   success, and no URL may reach a private address (unless allowed, for
//!   development).
//!
//! This module knows nothing of events, storage or retries: it signs and delivers
//! one body, and reports what happened.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

pub mod client;
pub mod sign;

pub use client::{Attempt, Client, MAX_RESPONSE_BODY, TIMEOUT, check_url, is_public};
pub use sign::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, headers, signature};
