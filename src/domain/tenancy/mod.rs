//! The tenants and who acts in them: workspaces, agents, teams, API keys, verified
//! visitor identities, and presence.

pub mod agents;
pub mod api_keys;
pub mod identity;
pub mod lifecycle;
pub mod presence;
pub mod teams;
pub mod workspaces;
