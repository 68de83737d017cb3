//! What leaves the server: the event log as the `events` query pages it, signed
//! webhooks carrying it, and the rows of the CSV exports.

pub mod delivery;
pub mod events;
pub mod exports;
pub mod filters;
pub mod webhooks;
