//! The tests that need no broker, in one binary: the engine against a
//! naive reference model (property tests), the schemas, `andon replay` and
//! `andon check-config` as a user runs them, and the checks of `deploy/`.
//! They share no state and run in parallel.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod deploy;
mod model;
mod replay_cli;
mod schemas;
mod tune_cli;
