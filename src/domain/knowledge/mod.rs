//! The workspace's own docs and what is learned from chats: articles, retrieval
//! and the extractive responder, topic tags and the auto-tagger, and retagging.

pub mod articles;
pub mod responder;
pub mod retag;
pub mod tagger;
pub mod tags;
pub mod text;
