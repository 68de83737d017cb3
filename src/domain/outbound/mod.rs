//! What leaves the server: the event log as the `events` query pages it, and
//! signed webhooks carrying it.

pub mod events;
pub mod webhooks;
