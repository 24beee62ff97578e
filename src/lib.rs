//! andon: pull the andon cord on products and promotions that customers keep
//! complaining about.
//!
//! The layout (README, "Architecture", maps the spec onto it):
//!
//! - [`event`]: wire types in and out; decoding with stable reject reasons.
//! - [`config`]: TOML + environment into validated [`config::Settings`].
//! - [`engine`]: the pure state machine (windows, pulls, work orders).
//! - [`replay`]: files through the engine to JSON lines (`andon replay`).
//!
//! `main.rs` only parses the command line and wires these together.

pub mod config;
pub mod engine;
pub mod event;
pub mod replay;
