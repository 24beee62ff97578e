//! Wire types: the two input records (decoded from bytes, with a stable
//! rejection reason when they are bad) and the two output records (encoded as
//! the JSON that `schemas/` describes).
//!
//! Decoding never panics: every malformed input becomes a [`Reject`] whose
//! `reason` is a stable code (it goes into the DLQ header
//! `andon.error.reason`) and whose `message` names the offending field.
//! Unknown fields are ignored, for forward compatibility (docs/records.md).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize, Serializer};

use crate::engine::andon::ClosedSummary;
/// Event time and spans of it live in [`crate::time`]; re-exported because
/// every wire type carries them.
pub use crate::time::{Dur, Ts};

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
    fn schema(message: impl Into<String>) -> Self {
        Self::new(RejectReason::SchemaViolation, message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Sku,
    Promotion,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sku => "sku",
            Self::Promotion => "promotion",
        }
    }
}

/// `{kind, id}` exactly, as in every output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

impl Subject {
    /// `"<kind>:<id>"`, the record key of everything about this subject.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }

    /// The inverse of [`Subject::key`]; `None` for anything that is not one.
    pub fn from_key(key: &str) -> Option<Subject> {
        let (kind, id) = key.split_once(':')?;
        let kind = match kind {
            "sku" => SubjectKind::Sku,
            "promotion" => SubjectKind::Promotion,
            _ => return None,
        };
        (!id.is_empty()).then(|| Subject { kind, id: id.to_owned() })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    DefectConfirmed,
    NoDefect,
}

impl Verdict {
    pub const ALL: [Verdict; 2] = [Self::DefectConfirmed, Self::NoDefect];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DefectConfirmed => "defect_confirmed",
            Self::NoDefect => "no_defect",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Threshold,
    Manual,
}

impl Trigger {
    pub const ALL: [Trigger; 2] = [Self::Threshold, Self::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Manual => "manual",
        }
    }
}

/// The channel a complaint came in through (`channel` of a complaint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Chat,
    Email,
    Social,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 5] = [Self::Phone, Self::Chat, Self::Email, Self::Social, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Chat => "chat",
            Self::Email => "email",
            Self::Social => "social",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A decoded complaint: only what the engine needs. The other optional
/// fields are validated by [`decode_complaint`] but not kept; `channel` is
/// kept for the bad-pull breakdown by channel (it never names an agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub event_id: String,
    pub occurred_at: Ts,
    pub subject: Subject,
    pub subject_key: String,
    pub issue: String,
    pub customer_id: String,
    pub pull: bool,
    pub channel: Option<Channel>,
}

/// A decoded work-order update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub update_id: String,
    pub andon_id: String,
    pub step: u32,
    pub actor: String,
    pub at: Ts,
    pub verdict: Option<Verdict>,
}

impl Update {
    /// The subject key this update must be keyed by: `andon_id` up to its last `/`.
    pub fn subject_key(&self) -> &str {
        self.andon_id.rsplit_once('/').map_or("", |(k, _)| k)
    }
}

// ---------------------------------------------------------------------------
// Decoding

const MAX_ID: usize = 128;
const MAX_NOTE: usize = 4096;

struct RawSubject<'a> {
    kind: Cow<'a, str>,
    id: Cow<'a, str>,
}

/// A subject must be a JSON object: serde's derive would also take an
/// array of its fields in order, which the schema does not allow.
impl<'de: 'a, 'a> Deserialize<'de> for RawSubject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawSubject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with \"kind\" and \"id\"")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut kind, mut id) = (None, None);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "kind" => kind = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                        "id" => id = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawSubject {
                    kind: kind.ok_or_else(|| serde::de::Error::missing_field("kind"))?,
                    id: id.ok_or_else(|| serde::de::Error::missing_field("id"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A string borrowed from the input where it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct W<'a>(#[serde(borrow)] Cow<'a, str>);
        W::deserialize(d).map(|w| BorrowedStr(w.0))
    }
}

#[derive(Deserialize)]
struct RawComplaint<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    subject: RawSubject<'a>,
    #[serde(borrow)]
    issue: Cow<'a, str>,
    #[serde(borrow)]
    customer_id: Cow<'a, str>,
    #[serde(default)]
    pull: Option<bool>,
    #[serde(default, borrow)]
    order_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    agent_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    note: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawUpdate<'a> {
    #[serde(borrow)]
    update_id: Cow<'a, str>,
    #[serde(borrow)]
    andon_id: Cow<'a, str>,
    step: u64,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(default, borrow)]
    verdict: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    note: Option<Cow<'a, str>>,
}

/// Parses JSON into `T`, telling a syntax error (`invalid_json`) from a value
/// of the wrong shape (`schema_violation`, with the path of the field).
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], max_bytes: usize) -> Result<T, Reject> {
    if bytes.len() > max_bytes {
        return Err(Reject::new(
            RejectReason::TooLarge,
            format!("record is {} bytes, more than max_event_bytes = {max_bytes}", bytes.len()),
        ));
    }
    // Records are JSON objects; serde's derive would also read a struct
    // from an array of its fields.
    if let Some(&first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        if first != b'{' && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            return Err(Reject::schema("the record must be a JSON object"));
        }
    }
    // Fast path without path tracking; redo with it only to explain a failure.
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => {
            Err(Reject::new(RejectReason::InvalidJson, format!("not valid JSON: {e}")))
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Ok(_) => Err(Reject::schema("record does not match its schema")),
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if inner.is_syntax() || inner.is_eof() {
                        return Err(Reject::new(RejectReason::InvalidJson, format!("not valid JSON: {inner}")));
                    }
                    let msg = strip_position(&inner.to_string());
                    if path == "." || path.is_empty() {
                        Err(Reject::schema(msg))
                    } else {
                        Err(Reject::schema(format!("{path}: {msg}")))
                    }
                }
            }
        }
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), Reject> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(Reject::schema(format!("{field}: length {n} is outside {min}..{max}")));
    }
    Ok(())
}

fn check_opt_len(field: &str, v: &Option<Cow<'_, str>>, max: usize) -> Result<(), Reject> {
    match v {
        Some(v) => check_len(field, v, 0, max),
        None => Ok(()),
    }
}

/// `^[a-z0-9][a-z0-9_.-]{0,63}$`
pub fn is_valid_issue(issue: &str) -> bool {
    let b = issue.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'))
}

/// RFC 3339 date-time with a mandatory offset, `T`/`Z` in either case, as
/// nanoseconds since the epoch. Dates alone, times without an offset and
/// instants outside what nanoseconds in an i64 can hold are rejected.
pub fn parse_timestamp(field: &str, s: &str) -> Result<Ts, Reject> {
    let b = s.as_bytes();
    // chrono also takes a space between date and time; RFC 3339 (and JSON
    // Schema's date-time) does not.
    if b.len() < 20 || !matches!(b[10], b'T' | b't') {
        return Err(Reject::schema(format!("{field}: {s:?} is not an RFC 3339 date-time with a UTC offset")));
    }
    let dt = DateTime::parse_from_rfc3339(s)
        .map_err(|e| Reject::schema(format!("{field}: {s:?} is not an RFC 3339 date-time with a UTC offset ({e})")))?;
    dt.timestamp_nanos_opt()
        .map(Ts::from_nanos)
        .ok_or_else(|| Reject::schema(format!("{field}: {s:?} is outside the supported range (years 1677..2262)")))
}

/// Formats event time as RFC 3339 in UTC (`Z`), with a fraction only when
/// there is one.
pub fn format_timestamp(ts: Ts) -> String {
    DateTime::from_timestamp_nanos(ts.as_nanos()).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ser_ts<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*ts))
}

fn ser_subject_key<S: Serializer>(key: &str, s: S) -> Result<S::Ok, S::Error> {
    // Subject keys come from validated subjects, so this cannot fail; if it
    // ever did, failing the encode is better than writing a wrong subject.
    match Subject::from_key(key) {
        Some(subject) => subject.serialize(s),
        None => Err(serde::ser::Error::custom(format!("not a subject key: {key}"))),
    }
}

/// Decodes a complaint from the bytes of a record value.
pub fn decode_complaint(bytes: &[u8], max_bytes: usize) -> Result<Complaint, Reject> {
    let raw: RawComplaint<'_> = parse(bytes, max_bytes)?;
    check_len("event_id", &raw.event_id, 1, MAX_ID)?;
    let occurred_at = parse_timestamp("occurred_at", &raw.occurred_at)?;
    let kind = match &*raw.subject.kind {
        "sku" => SubjectKind::Sku,
        "promotion" => SubjectKind::Promotion,
        other => return Err(Reject::schema(format!("subject.kind: {other:?} is not one of \"sku\", \"promotion\""))),
    };
    check_len("subject.id", &raw.subject.id, 1, MAX_ID)?;
    if !is_valid_issue(&raw.issue) {
        return Err(Reject::schema(format!("issue: {:?} does not match ^[a-z0-9][a-z0-9_.-]{{0,63}}$", raw.issue)));
    }
    check_len("customer_id", &raw.customer_id, 1, MAX_ID)?;
    check_opt_len("order_id", &raw.order_id, MAX_ID)?;
    check_opt_len("agent_id", &raw.agent_id, MAX_ID)?;
    check_opt_len("region", &raw.region, MAX_ID)?;
    check_opt_len("note", &raw.note, MAX_NOTE)?;
    let channel = match &raw.channel {
        None => None,
        Some(ch) => Some(Channel::parse(ch).ok_or_else(|| {
            Reject::schema(format!(
                "channel: {ch:?} is not one of \"phone\", \"chat\", \"email\", \"social\", \"other\""
            ))
        })?),
    };
    let subject = Subject { kind, id: raw.subject.id.into_owned() };
    Ok(Complaint {
        event_id: raw.event_id.into_owned(),
        occurred_at,
        subject_key: subject.key(),
        subject,
        issue: raw.issue.into_owned(),
        customer_id: raw.customer_id.into_owned(),
        pull: raw.pull.unwrap_or(false),
        channel,
    })
}

/// Decodes a work-order update from the bytes of a record value.
pub fn decode_update(bytes: &[u8], max_bytes: usize) -> Result<Update, Reject> {
    let raw: RawUpdate<'_> = parse(bytes, max_bytes)?;
    check_len("update_id", &raw.update_id, 1, MAX_ID)?;
    // An andon_id is `<subject key>/<issue>#<n>`, at most 128 + 10 + 1 + 64 + 1 + 10 chars.
    check_len("andon_id", &raw.andon_id, 1, 256)?;
    if raw.step < 1 || raw.step > u64::from(u32::MAX) {
        return Err(Reject::schema(format!("step: {} is not an integer from 1", raw.step)));
    }
    check_len("actor", &raw.actor, 1, MAX_ID)?;
    let at = parse_timestamp("at", &raw.at)?;
    let verdict = match raw.verdict.as_deref() {
        None => None,
        Some("defect_confirmed") => Some(Verdict::DefectConfirmed),
        Some("no_defect") => Some(Verdict::NoDefect),
        Some(other) => {
            return Err(Reject::schema(format!("verdict: {other:?} is not one of \"defect_confirmed\", \"no_defect\"")))
        }
    };
    check_opt_len("note", &raw.note, MAX_NOTE)?;
    Ok(Update {
        update_id: raw.update_id.into_owned(),
        andon_id: raw.andon_id.into_owned(),
        step: raw.step as u32,
        actor: raw.actor.into_owned(),
        at,
        verdict,
    })
}

// ---------------------------------------------------------------------------
// Outputs

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Delist,
    Relist,
}

impl Action {
    pub const ALL: [Action; 2] = [Self::Delist, Self::Relist];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delist => "delist",
            Self::Relist => "relist",
        }
    }
}

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

/// The subject key part of an `andon_id` (everything before its last `/`).
pub fn andon_subject_key(andon_id: &str) -> &str {
    andon_id.rsplit_once('/').map_or("", |(k, _)| k)
}

/// Splits `<subject key>/<issue>#<n>` into its parts.
pub fn parse_andon_id(andon_id: &str) -> Option<(&str, &str, u32)> {
    let (key, rest) = andon_id.rsplit_once('/')?;
    let (issue, n) = rest.split_once('#')?;
    let n: u32 = n.parse().ok()?;
    if n == 0
        || !is_valid_issue(issue)
        || Subject::from_key(key).is_none()
        || n.to_string().len() != rest.len() - issue.len() - 1
    {
        return None;
    }
    Some((key, issue, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complaint(json: &str) -> Result<Complaint, Reject> {
        decode_complaint(json.as_bytes(), 65536)
    }

    const OK: &str = r#"{"event_id":"e1","occurred_at":"2026-11-01T10:00:00Z","subject":{"kind":"sku","id":"B1"},"issue":"print_defect","customer_id":"c1"}"#;

    #[test]
    fn decodes_a_minimal_complaint() {
        let c = complaint(OK).expect("valid");
        assert_eq!(c.subject_key, "sku:B1");
        assert!(!c.pull);
        assert_eq!(format_timestamp(c.occurred_at), "2026-11-01T10:00:00Z");
    }

    #[test]
    fn ignores_unknown_fields() {
        let json = OK.replace("\"c1\"", "\"c1\",\"shiny_new_field\":{\"a\":[1,2]}");
        assert!(complaint(&json).is_ok());
    }

    #[test]
    fn rejects_with_stable_reasons_naming_the_field() {
        let cases: &[(&str, RejectReason, &str)] = &[
            ("{not json", RejectReason::InvalidJson, "JSON"),
            ("[1,2]", RejectReason::SchemaViolation, ""),
            (&OK.replace("\"sku\"", "\"book\""), RejectReason::SchemaViolation, "subject.kind"),
            (&OK.replace("\"print_defect\"", "\"Print Defect\""), RejectReason::SchemaViolation, "issue"),
            (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01"), RejectReason::SchemaViolation, "occurred_at"),
            (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01T10:00:00"), RejectReason::SchemaViolation, "occurred_at"),
            (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01 10:00:00Z"), RejectReason::SchemaViolation, "occurred_at"),
            (&OK.replace(",\"customer_id\":\"c1\"", ""), RejectReason::SchemaViolation, "customer_id"),
            (&OK.replace("\"c1\"", "17"), RejectReason::SchemaViolation, "customer_id"),
            (&OK.replace("\"e1\"", "\"\""), RejectReason::SchemaViolation, "event_id"),
            (&OK.replace("\"c1\"", "\"c1\",\"channel\":\"fax\""), RejectReason::SchemaViolation, "channel"),
            (&OK.replace("\"c1\"", "\"c1\",\"pull\":\"yes\""), RejectReason::SchemaViolation, "pull"),
        ];
        for (json, reason, field) in cases {
            let err = complaint(json).expect_err(json);
            assert_eq!(err.reason, *reason, "{json}: {err}");
            assert!(err.message.contains(field), "{json}: message {:?} should name {field}", err.message);
        }
    }

    #[test]
    fn keeps_the_channel() {
        assert_eq!(complaint(OK).expect("valid").channel, None);
        for ch in Channel::ALL {
            let json = OK.replace("\"c1\"", &format!("\"c1\",\"channel\":\"{}\"", ch.as_str()));
            assert_eq!(complaint(&json).expect("valid").channel, Some(ch));
        }
        assert_eq!(serde_json::to_string(&Channel::Social).expect("json"), "\"social\"");
    }

    #[test]
    fn too_large_is_checked_before_parsing() {
        let err = decode_complaint(OK.as_bytes(), 10).expect_err("too large");
        assert_eq!(err.reason, RejectReason::TooLarge);
    }

    #[test]
    fn accepts_lowercase_t_z_and_offsets() {
        for ts in ["2026-11-01t10:00:00z", "2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00.5Z"] {
            let c = complaint(&OK.replace("2026-11-01T10:00:00Z", ts)).expect(ts);
            assert!(format_timestamp(c.occurred_at).starts_with("2026-11-01T10:00:00"), "{ts}");
        }
    }

    #[test]
    fn update_decoding() {
        let u = decode_update(
            br#"{"update_id":"u1","andon_id":"sku:B1/print_defect#1","step":1,"actor":"ann","at":"2026-11-01T10:00:00Z","verdict":"no_defect"}"#,
            65536,
        )
        .expect("valid");
        assert_eq!(u.subject_key(), "sku:B1");
        assert_eq!(u.verdict, Some(Verdict::NoDefect));
        let err = decode_update(
            br#"{"update_id":"u1","andon_id":"x","step":0,"actor":"ann","at":"2026-11-01T10:00:00Z"}"#,
            65536,
        )
        .expect_err("step 0");
        assert!(err.message.contains("step"));
        let err = decode_update(
            br#"{"update_id":"u1","andon_id":"x","step":-1,"actor":"ann","at":"2026-11-01T10:00:00Z"}"#,
            65536,
        )
        .expect_err("negative step");
        assert!(err.message.contains("step"), "{err}");
    }

    #[test]
    fn andon_ids_round_trip() {
        assert_eq!(parse_andon_id("sku:a/b/print_defect#12"), Some(("sku:a/b", "print_defect", 12)));
        assert_eq!(parse_andon_id("sku:a/print_defect#0"), None);
        assert_eq!(parse_andon_id("sku:a/print_defect#01"), None);
        assert_eq!(parse_andon_id("nope/print_defect#1"), None);
        assert_eq!(parse_andon_id("sku:a#1"), None);
    }
}
