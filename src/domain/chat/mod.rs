//! Conversations and what they hold: starting one, listing them for the inbox,
//! messages with their gap-free `seq`, leads and their fields, ratings, and the
//! message streams behind subscriptions.

pub mod article_uses;
pub mod conversations;
pub mod leads;
pub mod lists;
pub mod messages;
pub mod ratings;
pub mod sending;
pub mod streams;
pub mod typing;
