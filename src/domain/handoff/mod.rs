//! Passing a conversation from the AI to humans: the policy that decides when,
//! handoffs and their case files, routing to a team's agents, business hours, and
//! what people say about the AI's answers.

pub mod accept;
pub mod case_file;
pub mod deactivation;
pub mod feedback;
pub mod handoffs;
pub mod hours;
pub mod policy;
pub mod request;
pub mod resolution;
pub mod routing;
pub mod transfer;
