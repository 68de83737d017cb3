//! What leaves the server: the event log as the `events` query pages it, signed
//! webhooks carrying it, the rows of the CSV exports, and a person's data.

pub mod contact;
pub mod delivery;
pub mod erasure;
pub mod events;
pub mod exports;
pub mod filters;
pub mod webhooks;
