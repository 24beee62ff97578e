//! andon on the event bus: `andon run`.
//!
//! - [`client`]: client settings per role, start-up checks, topic creation.
//! - [`changelog`]: checkpoints and snapshots in `andon.state`, restore, and
//!   the ids of outputs already written (for exactly-once output).
//! - [`task`]: one partition number: merge by event time, engine, DLQ,
//!   suppression of outputs already written. No I/O.
//! - [`processor`]: the loop: poll, process, produce, checkpoint, commit;
//!   rebalances and recovery from failed batches.

pub mod changelog;
pub mod client;
pub mod processor;
pub mod task;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::Settings;
pub use processor::{RunError, Status};

/// Runs the processor until `shutdown` is set.
pub fn run(settings: Arc<Settings>, status: Arc<Status>, shutdown: &AtomicBool) -> Result<(), RunError> {
    let processor = processor::Processor::start(settings, status, shutdown)?;
    processor.run(shutdown)
}
