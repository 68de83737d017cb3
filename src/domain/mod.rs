//! Domain services: the queries, transactions and invariants below the resolvers,
//! in sub-domains that import one way (see the layer order in `crate`'s Layout):
//! [`orchestration`] on top, then [`insights`] and [`outbound`], [`handoff`],
//! [`knowledge`], [`chat`], [`tenancy`], and [`core`] at the bottom.
//!
//! Every function takes the domain's [`Core`] (never the transport's state) and
//! the workspace it acts in, and never reads across it; objects of another
//! workspace are `NOT_FOUND`, as if they did not exist. A write stores the events it
//! causes in its own transaction (`core::feed::commit`).

pub mod chat;
pub mod core;
pub mod handoff;
pub mod insights;
pub mod knowledge;
pub mod orchestration;
pub mod outbound;
pub mod tenancy;

pub use self::core::Core;
