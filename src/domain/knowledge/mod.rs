//! The workspace's own docs and what is learned from chats: articles, retrieval
//! and the answer engines (the extractive responder, and a language model behind
//! the citation guardrail), topic tags and the auto-tagger, and retagging.

pub mod articles;
pub mod citations;
pub mod embeddings;
pub mod model;
pub mod passages;
pub mod responder;
pub mod retag;
pub mod tagger;
pub mod tags;
pub mod text;
