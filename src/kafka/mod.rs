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
pub use crate::ops::Status;
pub use processor::RunError;

/// Knobs that are not part of the configuration contract: tests turn them
/// to reach rare paths quickly.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Checkpoint bytes after which a snapshot is written.
    pub snapshot_after_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { snapshot_after_bytes: changelog::SNAPSHOT_AFTER_BYTES }
    }
}

/// Runs the processor until `shutdown` is set.
pub fn run(settings: Arc<Settings>, status: Arc<Status>, shutdown: &AtomicBool) -> Result<(), RunError> {
    run_with(settings, status, shutdown, RunOptions::default())
}

pub fn run_with(
    settings: Arc<Settings>,
    status: Arc<Status>,
    shutdown: &AtomicBool,
    options: RunOptions,
) -> Result<(), RunError> {
    let processor = processor::Processor::start(settings, status, shutdown, options)?;
    processor.run(shutdown)
}
