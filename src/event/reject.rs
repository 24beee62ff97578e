//! Why a record is refused: [`RejectReason`], the stable codes that go
//! into the DLQ header `andon.error.reason`, and [`Reject`], a code with a
//! message naming the offending field.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a record went to the DLQ. The codes are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    InvalidJson,
    SchemaViolation,
    TooLarge,
    OccurredAtInFuture,
    KeyMismatch,
    UnknownAndon,
    AndonClosed,
    StepOutOfOrder,
    VerdictRequired,
}

impl RejectReason {
    pub const ALL: [RejectReason; 9] = [
        Self::InvalidJson,
        Self::SchemaViolation,
        Self::TooLarge,
        Self::OccurredAtInFuture,
        Self::KeyMismatch,
        Self::UnknownAndon,
        Self::AndonClosed,
        Self::StepOutOfOrder,
        Self::VerdictRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::SchemaViolation => "schema_violation",
            Self::TooLarge => "too_large",
            Self::OccurredAtInFuture => "occurred_at_in_future",
            Self::KeyMismatch => "key_mismatch",
            Self::UnknownAndon => "unknown_andon",
            Self::AndonClosed => "andon_closed",
            Self::StepOutOfOrder => "step_out_of_order",
            Self::VerdictRequired => "verdict_required",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A rejected input: where it goes is the DLQ, with these two headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Reject {
    pub reason: RejectReason,
    pub message: String,
}

impl Reject {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
    /// Most rejects are a value of the wrong shape: one constructor for
    /// them keeps the decoders short.
    pub(super) fn schema(message: impl Into<String>) -> Self {
        Self::new(RejectReason::SchemaViolation, message)
    }
}
