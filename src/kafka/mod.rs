//! andon on the event bus: `andon run`.
//!
//! - [`processor`]: the loop: serve the group, restore, process, write
//!   batches; partition health.
//! - [`task`]: one partition number: merge, engine, DLQ, suppression of
//!   outputs already written. No I/O.
//! - [`batch`]: one batch through the seam: outputs, then checkpoints,
//!   then the commit.
//! - [`restore`]: partitions restored from the changelog, all at once.
//! - [`checkpoint`]: the `andon.state` record format and chain rules (pure).
//! - [`io`]: the seam (write a batch, read partitions): librdkafka and
//!   in-memory implementations.
//! - [`group`]: the consumer group: rebalance callback, generation, lag.
//! - [`errors`]: failures classified; backoff.
//! - [`client`]: client settings per role, start-up checks.
//! - [`glibc`]: librdkafka's large buffers returned to the system when freed.

pub mod batch;
pub mod checkpoint;
pub mod client;
pub mod errors;
pub mod glibc;
pub mod group;
pub mod io;
pub mod processor;
pub mod restore;
pub mod task;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::Settings;
pub use crate::ops::Status;

/// Why `andon run` stopped (start-up problems; failures while running are
/// handled, retried and reported, never a reason to exit).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Topology(#[from] client::TopologyError),
    #[error("metrics: {0}")]
    Metrics(prometheus::Error),
    #[error("no queue for partition {0} of the input topics")]
    Queue(i32),
    #[error("starting a thread: {0}")]
    Thread(std::io::Error),
}

/// Knobs that are not part of the configuration contract: tests turn them
/// to reach rare paths quickly.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Checkpoint bytes after which a snapshot is written.
    pub snapshot_after_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { snapshot_after_bytes: checkpoint::SNAPSHOT_AFTER_BYTES }
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

#[cfg(test)]
mod tests;
