//! What a running processor shows the outside: readiness and liveness for
//! `/readyz` and `/healthz`, the partitions it owns, its metrics, and the
//! cluster-wide view (`crate::view`) that `/andons`, `/recent` and the
//! status page answer from. Written by the processor thread and the view
//! reader, read by the HTTP server and the demo.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::ops::metrics::Metrics;
use crate::view::View;

#[derive(Default)]
pub struct Status {
    /// Joined, and every assigned partition restored.
    pub ready: AtomicBool,
    pub assigned: AtomicUsize,
    pub batches: AtomicUsize,
    /// Input records processed or rejected, since start.
    pub records: AtomicU64,
    /// Wall clock (ms) of the processing loop's last turn: `/healthz`.
    pub last_loop_ms: AtomicI64,
    /// Input partitions this member owns, ascending.
    partitions: Mutex<Vec<i32>>,
    /// Set by whoever serves metrics; the processor counts into it.
    pub metrics: Mutex<Option<Metrics>>,
    /// The cluster-wide read model.
    pub view: View,
    /// Each assigned partition's state, for `/readyz` and the status page.
    pub health: Mutex<Vec<PartitionHealth>>,
    /// A problem that stops all processing (a partition count changed).
    pub problem: Mutex<Option<String>>,
}

/// How an assigned partition is doing.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct PartitionHealth {
    pub partition: i32,
    /// `active`, `restoring` or `failed`.
    pub state: &'static str,
    /// Input waiting and no progress for `processing.stall_after`.
    pub stalled: bool,
    /// Why a failed partition failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .field("assigned", &self.assigned.load(Ordering::Relaxed))
            .field("records", &self.records.load(Ordering::Relaxed))
            .finish()
    }
}

impl Status {
    pub fn touch(&self) {
        self.last_loop_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn metrics(&self) -> Option<Metrics> {
        self.metrics.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// **Processor hook**, after every change of assignment: the input
    /// partitions this member now owns (`assigned` follows).
    pub fn set_partitions(&self, partitions: impl IntoIterator<Item = i32>) {
        let mut v: Vec<i32> = partitions.into_iter().collect();
        v.sort_unstable();
        self.assigned.store(v.len(), Ordering::Relaxed);
        *self.partitions.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    pub fn partitions(&self) -> Vec<i32> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner()).contains(&partition)
    }
}
