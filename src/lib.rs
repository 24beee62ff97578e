//! andon: pull the andon cord on products and promotions that customers keep
//! complaining about.
//!
//! The layout (README, "Architecture", maps the contract in docs/ onto it):
//!
//! - [`time`]: event time ([`time::Ts`]) and spans of it ([`time::Dur`]).
//! - [`event`]: wire types in and out; decoding with stable reject reasons.
//! - [`config`]: TOML + environment into validated [`config::Settings`].
//! - [`engine`]: the pure state machine (windows, pulls, work orders).
//! - [`replay`]: files through the engine to JSON lines (`andon replay`).
//! - [`tune`]: the engine over history under candidate rules, scored (`andon tune`).
//! - [`kafka`]: the engine on the event bus (`andon run`): changelog,
//!   partition tasks, the batch loop.
//! - [`dev_cluster`]: librdkafka's MockCluster with andon's topics.
//! - [`demo`]: everything in one process with generated traffic.
//! - [`shutdown`]: signals into a flag.
//! - [`view`]: the cluster-wide read model (all open andons, history).
//! - [`ops`]: metrics, status and HTTP (the status page), started by
//!   [`ops::serve`] for `run` and `demo` alike.
//!
//! `main.rs` only parses the command line and wires these together.

pub mod config;
pub mod demo;
pub mod dev_cluster;
pub mod engine;
pub mod event;
pub mod kafka;
pub mod merge;
pub mod ops;
pub mod replay;
pub mod shutdown;
pub mod time;
pub mod tune;
pub mod view;
