//! The two output records, encoded as the JSON `schemas/` describes:
//! [`DelistCommand`] and [`WorkOrderEvent`], with [`Output`] for either
//! and its key and identity.

use serde::{Serialize, Serializer};

use super::timestamp::ser_ts;
use super::{andon_subject_key, Action, Subject, Trigger, Ts, Verdict};
use crate::engine::andon::ClosedSummary;

/// `reason` of a delist command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelistReason {
    pub issue: String,
    pub trigger: Trigger,
    pub distinct_customers: u32,
    pub window_seconds: u64,
}

/// `andon.delist_command.v1`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelistCommand {
    pub command_id: String,
    pub action: Action,
    #[serde(rename = "subject", serialize_with = "ser_subject_key")]
    pub subject_key: String,
    pub andon_id: String,
    #[serde(serialize_with = "ser_ts")]
    pub issued_at: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DelistReason>,
}

/// One step of a work order as announced in `opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    pub step: u32,
    pub owner: String,
    #[serde(serialize_with = "ser_ts")]
    pub due_at: Ts,
}

/// `andon.work_order.v1`, one variant per `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkOrderEvent {
    Opened {
        andon_id: String,
        #[serde(rename = "subject", serialize_with = "ser_subject_key")]
        subject_key: String,
        issue: String,
        trigger: Trigger,
        delisted: bool,
        #[serde(serialize_with = "ser_ts")]
        opened_at: Ts,
        /// At most 100, the earliest first, the pulling complaint among them.
        evidence: Vec<String>,
        /// The full count behind `evidence`.
        evidence_total: u32,
        steps: Vec<StepPlan>,
    },
    StepCompleted {
        andon_id: String,
        step: u32,
        owner: String,
        actor: String,
        #[serde(serialize_with = "ser_ts")]
        at: Ts,
        /// When the step began (opening or the previous step's completion):
        /// for the step-duration metric, not part of the record.
        #[serde(skip)]
        started_at: Ts,
        /// When the step was due (for the owners' timeliness); not part of
        /// the record.
        #[serde(skip)]
        due_at: Ts,
    },
    Escalated {
        andon_id: String,
        step: u32,
        owner: String,
        #[serde(serialize_with = "ser_ts")]
        due_at: Ts,
        #[serde(serialize_with = "ser_ts")]
        escalated_at: Ts,
    },
    Closed {
        andon_id: String,
        verdict: Verdict,
        #[serde(serialize_with = "ser_ts")]
        closed_at: Ts,
        complaints_attached: u64,
        /// The closed andon's trigger, for the metric; not part of the record.
        #[serde(skip)]
        trigger: Trigger,
        /// What the cluster-wide view keeps of the closed andon (filled by
        /// the engine); not part of the record.
        #[serde(skip)]
        summary: Option<Box<ClosedSummary>>,
    },
}

impl WorkOrderEvent {
    pub fn andon_id(&self) -> &str {
        match self {
            Self::Opened { andon_id, .. }
            | Self::StepCompleted { andon_id, .. }
            | Self::Escalated { andon_id, .. }
            | Self::Closed { andon_id, .. } => andon_id,
        }
    }

    pub fn type_str(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "opened",
            Self::StepCompleted { .. } => "step_completed",
            Self::Escalated { .. } => "escalated",
            Self::Closed { .. } => "closed",
        }
    }

    /// The step this event is about (0 for `opened` and `closed`), part of
    /// the event's identity (`andon_id` + `type` + `step`).
    pub fn step(&self) -> u32 {
        match self {
            Self::StepCompleted { step, .. } | Self::Escalated { step, .. } => *step,
            Self::Opened { .. } | Self::Closed { .. } => 0,
        }
    }
}

/// Everything the engine emits, in emission order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Command(DelistCommand),
    WorkOrder(WorkOrderEvent),
}

impl Output {
    /// The record key: the subject key of the subject the output is about.
    pub fn key(&self) -> &str {
        match self {
            Output::Command(c) => &c.subject_key,
            Output::WorkOrder(e) => andon_subject_key(e.andon_id()),
        }
    }

    /// A stable identity, unique per output topic: how a restarted writer
    /// recognises an output that already reached its partition.
    pub fn id(&self) -> String {
        match self {
            Output::Command(c) => c.command_id.clone(),
            Output::WorkOrder(e) => format!("{}|{}|{}", e.andon_id(), e.type_str(), e.step()),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising these types cannot fail: all map keys are strings and
        // every subject key was built from a valid subject.
        match self {
            Output::Command(c) => serde_json::to_vec(c),
            Output::WorkOrder(e) => serde_json::to_vec(e),
        }
        .unwrap_or_default()
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Output::Command(c) => c.serialize(s),
            Output::WorkOrder(e) => e.serialize(s),
        }
    }
}

fn ser_subject_key<S: Serializer>(key: &str, s: S) -> Result<S::Ok, S::Error> {
    // Subject keys come from validated subjects, so this cannot fail; if it
    // ever did, failing the encode is better than writing a wrong subject.
    match Subject::from_key(key) {
        Some(subject) => subject.serialize(s),
        None => Err(serde::ser::Error::custom(format!("not a subject key: {key}"))),
    }
}
