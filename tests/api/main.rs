//! Integration tests: each boots the real server on an ephemeral port over a fresh
//! database (SQLite by default; PostgreSQL when `CASEFILE_TEST_DATABASE_URL` is set)
//! and talks to it over HTTP, as a client would.

mod helpers;
mod insights;
mod ws_client;

mod abuse;
mod access;
mod audit;
mod auth;
mod backups;
mod clients;
mod cluster;
mod conversations;
mod embeddings;
mod ending;
mod erasure;
mod events;
mod examples;
mod fuzz;
mod handoffs;
mod holes;
mod identity;
mod inbox;
mod keys;
mod knowledge;
mod leads;
mod lifecycle;
mod limits;
mod live;
mod model;
mod plans;
mod platform;
mod presence;
mod preview;
mod readme;
mod routing;
mod scope_table;
mod scopes;
mod secrets;
mod startup;
mod storage;
mod upgrade;
mod webhooks;
mod writes;
