//! The top of the domain: what happens after a visitor writes (tag, decide,
//! answer or hand off), and the sweeps that end conversations on a clock.

pub mod answering;
pub mod evaluation;
pub mod observe;
pub mod pipeline;
pub mod preview;
pub mod send;
pub mod start;
pub mod sweeper;
