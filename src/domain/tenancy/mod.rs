//! The tenants and who acts in them: workspaces, agents, teams, API keys, verified
//! visitor identities, presence, and the audit log of what administrators did.

pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod identity;
pub mod lifecycle;
pub mod presence;
pub mod teams;
pub mod workspaces;
