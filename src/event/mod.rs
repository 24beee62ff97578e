//! Wire types: the two input records (decoded from bytes, with a stable
//! rejection reason when they are bad) and the two output records (encoded as
//! the JSON that `schemas/` describes).
//!
//! Decoding never panics: every malformed input becomes a [`Reject`] whose
//! `reason` is a stable code (it goes into the DLQ header
//! `andon.error.reason`) and whose `message` names the offending field.
//! Unknown fields are ignored, for forward compatibility (docs/records.md).
//!
//! One job a file: `reject.rs` (why a record is refused), `values.rs` (the
//! enumerated field values and their wire spellings), `ids.rs` (subject
//! keys, issues, andon ids), `timestamp.rs` (RFC 3339), `decode.rs` (what
//! both decoders share), `complaint.rs` and `update.rs` (the two inputs),
//! `output.rs` (the two outputs), `tests.rs` (the decoders' contract).

mod complaint;
mod decode;
mod ids;
mod output;
mod reject;
mod timestamp;
mod update;
mod values;

pub use complaint::{decode_complaint, Complaint};
pub use ids::{andon_subject_key, is_valid_issue, parse_andon_id, Subject};
pub use output::{DelistCommand, DelistReason, Output, StepPlan, WorkOrderEvent};
pub use reject::{Reject, RejectReason};
pub use timestamp::{format_timestamp, parse_timestamp};
pub use update::{decode_update, Update};
pub use values::{Action, Channel, SubjectKind, Trigger, Verdict};

/// Event time and spans of it live in [`crate::time`]; re-exported because
/// every wire type carries them.
pub use crate::time::{Dur, Ts};

#[cfg(test)]
mod tests;
