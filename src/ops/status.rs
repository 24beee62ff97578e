//! What a running processor shows the outside: readiness and liveness for
//! `/readyz` and `/healthz`, the open andons for `/andons`, recent
//! notable outputs for the status page, and its metrics. Written by the
//! processor thread after each committed batch, read by the HTTP server
//! and the demo.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::engine::AndonView;
use crate::event::{format_timestamp, Output, Subject, Ts, WorkOrderEvent};
use crate::ops::metrics::Metrics;

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
    pub board: Mutex<Board>,
    /// Set by whoever serves metrics; the processor counts into it.
    pub metrics: Mutex<Option<Metrics>>,
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
}

/// An open andon as `/andons` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AndonInfo {
    pub andon_id: String,
    pub partition: i32,
    pub subject: Subject,
    pub issue: String,
    pub trigger: &'static str,
    pub delisting: bool,
    pub opened_at: String,
    pub evidence: Vec<String>,
    pub step: u32,
    pub steps: u32,
    pub owner: String,
    pub due_at: String,
    #[serde(skip)]
    pub due_ts: Ts,
    pub escalated: bool,
    pub complaints_attached: u64,
}

impl AndonInfo {
    pub fn new(partition: i32, v: &AndonView<'_>) -> Option<Self> {
        let a = v.andon;
        Some(AndonInfo {
            andon_id: v.andon_id.clone(),
            partition,
            subject: Subject::from_key(v.subject_key)?,
            issue: v.issue.to_owned(),
            trigger: a.trigger.as_str(),
            delisting: a.delisting,
            opened_at: format_timestamp(a.opened_at),
            evidence: a.evidence.iter().map(|e| e.to_string()).collect(),
            step: a.step,
            steps: a.route.len() as u32,
            owner: a.owner().to_owned(),
            due_at: format_timestamp(a.due_at),
            due_ts: a.due_at,
            escalated: a.escalated,
            complaints_attached: a.attached,
        })
    }
}

/// A notable output for the status page's feed.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    pub kind: &'static str,
    pub id: String,
    pub subject: String,
    pub at: String,
    pub detail: String,
}

impl Recent {
    pub fn of(o: &Output) -> Option<Self> {
        let subject = o.key().to_owned();
        match o {
            Output::Command(c) => Some(Recent {
                kind: c.action.as_str(),
                id: c.command_id.clone(),
                subject,
                at: format_timestamp(c.issued_at),
                detail: c.reason.as_ref().map(|r| format!("{} ({})", r.issue, r.trigger.as_str())).unwrap_or_default(),
            }),
            Output::WorkOrder(WorkOrderEvent::Opened { andon_id, trigger, issue, opened_at, .. }) => Some(Recent {
                kind: "pull",
                id: andon_id.clone(),
                subject,
                at: format_timestamp(*opened_at),
                detail: format!("{issue} ({})", trigger.as_str()),
            }),
            Output::WorkOrder(WorkOrderEvent::Escalated { andon_id, owner, escalated_at, .. }) => Some(Recent {
                kind: "escalated",
                id: andon_id.clone(),
                subject,
                at: format_timestamp(*escalated_at),
                detail: owner.clone(),
            }),
            Output::WorkOrder(WorkOrderEvent::Closed { andon_id, verdict, closed_at, .. }) => Some(Recent {
                kind: "closed",
                id: andon_id.clone(),
                subject,
                at: format_timestamp(*closed_at),
                detail: verdict.as_str().to_owned(),
            }),
            Output::WorkOrder(WorkOrderEvent::StepCompleted { .. }) => None,
        }
    }
}

/// The open andons of every partition this instance owns, and the latest
/// notable outputs.
#[derive(Debug, Default)]
pub struct Board {
    pub andons: Vec<AndonInfo>,
    pub recent: VecDeque<Recent>,
}

impl Board {
    pub const RECENT: usize = 100;

    pub fn push_recent(&mut self, r: Recent) {
        if self.recent.len() == Self::RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }
}
