//! The records of the view topic (`topics.view`, default `andon.view`): a
//! table, the latest value per key, JSON values like every other topic.
//!
//! | key | value | written by |
//! |---|---|---|
//! | `andon/<andon_id>` | [`AndonRecord`]: an open andon; a tombstone when it closes | the owner of its partition, in the batch transaction |
//! | `closed/<andon_id>` | [`ClosedRecord`]: a closed andon's summary (verdict, steps) | the same, in the transaction that closes it |
//! | `member/<member id>` | [`MemberRecord`]: where a member is reached, what it owns, its last hour | the member itself, outside transactions |
//!
//! Times are RFC 3339 in UTC, as in the outputs. Staff ids (`actor`) appear
//! in these records and in the HTTP answers built on them, never in metrics.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::andon::{ClosedSummary, DoneStep, OpenAndon};
use crate::event::{format_timestamp, parse_timestamp, Channel, Subject, Trigger, Ts, Verdict};

pub const ANDON_PREFIX: &str = "andon/";
pub const CLOSED_PREFIX: &str = "closed/";
pub const MEMBER_PREFIX: &str = "member/";

/// At most this many evidence ids in a record (the earliest first);
/// `evidence_total` keeps the full count.
pub const MAX_EVIDENCE: usize = 100;

/// What a key of the view topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Andon(&'a str),
    Closed(&'a str),
    Member(&'a str),
}

impl<'a> Key<'a> {
    pub fn parse(key: &'a str) -> Option<Key<'a>> {
        if let Some(id) = key.strip_prefix(ANDON_PREFIX) {
            Some(Key::Andon(id))
        } else if let Some(id) = key.strip_prefix(CLOSED_PREFIX) {
            Some(Key::Closed(id))
        } else {
            key.strip_prefix(MEMBER_PREFIX).map(Key::Member)
        }
    }
}

/// Event time as RFC 3339 text on the wire, nanoseconds in memory.
pub mod ts {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Ts, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(*t))
    }

    /// Parsed from the text where it lies: every view record carries
    /// several times, and each reader decodes every record.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Ts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 time")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Ts, E> {
                parse_timestamp("time", s).map_err(|e| E::custom(e.message))
            }
        }
        d.deserialize_str(Text)
    }
}

/// A completed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u32,
    pub owner: String,
    pub actor: String,
    #[serde(with = "ts")]
    pub started_at: Ts,
    #[serde(with = "ts")]
    pub completed_at: Ts,
    #[serde(with = "ts")]
    pub due_at: Ts,
}

impl From<&DoneStep> for StepRecord {
    fn from(d: &DoneStep) -> Self {
        StepRecord {
            step: d.step,
            owner: d.owner.clone(),
            actor: d.actor.clone(),
            started_at: d.started_at,
            completed_at: d.completed_at,
            due_at: d.due_at,
        }
    }
}

/// An open andon, as `/andons` shows it (plus `overdue`, which depends on
/// when it is asked and so is not stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndonRecord {
    pub andon_id: String,
    /// Its partition number (that of its subject key on the inputs).
    pub partition: i32,
    pub subject: Subject,
    pub issue: String,
    pub trigger: Trigger,
    /// Its rule delists: it keeps the subject off sale while open.
    pub delisting: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(with = "ts")]
    pub opened_at: Ts,
    /// The earliest [`MAX_EVIDENCE`] evidence ids.
    pub evidence: Vec<String>,
    pub evidence_total: u64,
    /// The current step (1-based) of `steps`.
    pub step: u32,
    pub steps: u32,
    pub owner: String,
    #[serde(with = "ts")]
    pub step_started_at: Ts,
    #[serde(with = "ts")]
    pub due_at: Ts,
    pub escalated: bool,
    /// Complaints attached since the pull, as of the andon's last change
    /// (attaching alone does not rewrite the record).
    pub complaints_attached: u64,
    /// Steps completed so far.
    #[serde(default)]
    pub done: Vec<StepRecord>,
}

impl AndonRecord {
    pub fn new(partition: i32, andon_id: &str, subject_key: &str, issue: &str, a: &OpenAndon) -> Option<Self> {
        Some(AndonRecord {
            andon_id: andon_id.to_owned(),
            partition,
            subject: Subject::from_key(subject_key)?,
            issue: issue.to_owned(),
            trigger: a.trigger,
            delisting: a.delisting,
            channel: a.channel,
            opened_at: a.opened_at,
            evidence: a.evidence.iter().take(MAX_EVIDENCE).map(|e| e.to_string()).collect(),
            evidence_total: a.evidence.len() as u64,
            step: a.step,
            steps: a.route.len() as u32,
            owner: a.owner().to_owned(),
            step_started_at: a.step_started,
            due_at: a.due_at,
            escalated: a.escalated,
            complaints_attached: a.attached,
            done: a.done.iter().map(StepRecord::from).collect(),
        })
    }

    pub fn subject_key(&self) -> String {
        self.subject.key()
    }
}

/// A closed andon: what the owners' timeliness and the bad-pull rate need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedRecord {
    pub andon_id: String,
    pub partition: i32,
    pub subject: Subject,
    pub issue: String,
    pub trigger: Trigger,
    /// Its rule delisted: it kept the subject off sale while open.
    pub delisting: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    pub verdict: Verdict,
    #[serde(with = "ts")]
    pub opened_at: Ts,
    #[serde(with = "ts")]
    pub closed_at: Ts,
    pub complaints_attached: u64,
    /// Every step completed, the closing one last.
    pub steps: Vec<StepRecord>,
}

impl ClosedRecord {
    pub fn new(
        partition: i32,
        andon_id: &str,
        delisting: bool,
        verdict: Verdict,
        closed_at: Ts,
        complaints_attached: u64,
        s: &ClosedSummary,
    ) -> Option<Self> {
        Some(ClosedRecord {
            andon_id: andon_id.to_owned(),
            partition,
            subject: Subject::from_key(&s.subject_key)?,
            issue: s.issue.clone(),
            trigger: s.trigger,
            delisting,
            channel: s.channel,
            verdict,
            opened_at: s.opened_at,
            closed_at,
            complaints_attached,
            steps: s.steps.iter().map(StepRecord::from).collect(),
        })
    }
}

/// The chart series a member publishes: per bucket of [`BUCKET_SECONDS`]
/// of wall-clock time, for the last hour.
pub const BUCKET_SECONDS: i64 = 10;
/// Buckets in an hour.
pub const BUCKETS: usize = 360;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// Unix seconds / [`BUCKET_SECONDS`] of the first value.
    pub first_bucket: i64,
    /// Complaints this member processed in each bucket.
    pub complaints: Vec<u64>,
    /// Andons this member's partitions pulled in each bucket.
    pub pulls: Vec<u64>,
    /// Open andons of this member's partitions, sampled in each bucket.
    pub open: Vec<u64>,
    /// Of those, overdue ones (current step past its due time).
    pub overdue: Vec<u64>,
}

/// One member of the group, published by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member: String,
    /// The base URL other members reach its HTTP endpoints at.
    pub advertise: String,
    /// Input partition numbers it owns.
    pub partitions: Vec<i32>,
    /// Wall clock of this record.
    #[serde(with = "ts")]
    pub updated_at: Ts,
    #[serde(default)]
    pub series: Series,
}

pub fn andon_key(andon_id: &str) -> String {
    format!("{ANDON_PREFIX}{andon_id}")
}

pub fn closed_key(andon_id: &str) -> String {
    format!("{CLOSED_PREFIX}{andon_id}")
}

pub fn member_key(member: &str) -> String {
    format!("{MEMBER_PREFIX}{member}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SubjectKind;

    #[test]
    fn keys_name_their_kind() {
        assert_eq!(Key::parse("andon/sku:A/x#1"), Some(Key::Andon("sku:A/x#1")));
        assert_eq!(Key::parse("closed/sku:A/x#1"), Some(Key::Closed("sku:A/x#1")));
        assert_eq!(Key::parse("member/host-1"), Some(Key::Member("host-1")));
        assert_eq!(Key::parse("other"), None);
    }

    #[test]
    fn records_round_trip_with_rfc3339_times() {
        let r = ClosedRecord {
            andon_id: "sku:A/x#1".into(),
            partition: 2,
            subject: Subject { kind: SubjectKind::Sku, id: "A".into() },
            issue: "x".into(),
            trigger: Trigger::Manual,
            delisting: true,
            channel: Some(Channel::Email),
            verdict: Verdict::NoDefect,
            opened_at: crate::time::Ts::from_nanos(1_780_000_000_000_000_000),
            closed_at: crate::time::Ts::from_nanos(1_780_000_060_500_000_000),
            complaints_attached: 3,
            steps: vec![],
        };
        let json = serde_json::to_string(&r).expect("json");
        assert!(json.contains("\"closed_at\":\"2026-05-28T20:27:40.500Z\""), "{json}");
        assert!(json.contains("\"channel\":\"email\"") && json.contains("\"verdict\":\"no_defect\""), "{json}");
        assert_eq!(serde_json::from_str::<ClosedRecord>(&json).expect("back"), r);
    }
}
