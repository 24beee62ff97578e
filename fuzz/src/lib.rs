//! What every fuzz target checks beyond "no panic", in one place.
//!
//! The decoders take untrusted bytes (any producer can write to the input
//! topics), so each run checks the decoder's promises, not only that it
//! returns:
//! - a rejection carries a stable reason from `RejectReason::ALL`, one a
//!   decoder can give (`invalid_json`, `schema_violation`, `too_large`), a
//!   message, and `too_large` exactly when the record is over the limit;
//!   a record that serde_json reads as a `Value` is never called
//!   `invalid_json`;
//! - a decoded record satisfies its schema's rules, checked here
//!   independently of the decoder (lengths in characters, the issue
//!   pattern, enums), agrees field by field with a plain `serde_json::Value`
//!   parse of the same bytes, and its timestamps survive a format/parse
//!   round trip;
//! - decoding is deterministic and does not depend on the size limit as
//!   long as the record fits it.

use andon::event::{self, Complaint, Reject, RejectReason, Update};
use serde_json::Value;

/// andon's default `processing.max_event_bytes`.
pub const MAX_EVENT_BYTES: usize = 65536;

/// Runs `decode` at the default limit, at exactly the record's size and
/// one byte under it, and checks that the answers agree. Returns the
/// answer at the default limit.
pub fn decode_at_limits<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8], usize) -> Result<T, Reject>,
) -> Result<T, Reject> {
    let result = decode(bytes, MAX_EVENT_BYTES);
    match &result {
        Ok(_) => {}
        Err(r) => check_reject(bytes, MAX_EVENT_BYTES, r),
    }
    if bytes.len() <= MAX_EVENT_BYTES {
        let exact = decode(bytes, bytes.len());
        assert_eq!(exact, result, "the answer changed with max_bytes = the record's own size");
        if let Some(under) = bytes.len().checked_sub(1) {
            let r = decode(bytes, under).expect_err("a record over max_bytes was accepted");
            check_reject(bytes, under, &r);
        }
    }
    result
}

/// A decoder's rejection: a stable, decoder-level reason and a message.
pub fn check_reject(bytes: &[u8], max_bytes: usize, r: &Reject) {
    assert!(RejectReason::ALL.contains(&r.reason), "reason {:?} is not in RejectReason::ALL", r.reason);
    assert!(
        matches!(r.reason, RejectReason::InvalidJson | RejectReason::SchemaViolation | RejectReason::TooLarge),
        "a decoder gave the engine-level reason {}",
        r.reason
    );
    let code = r.reason.as_str();
    assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "reason code {code:?}");
    assert_eq!(r.reason.to_string(), code);
    assert!(!r.message.is_empty(), "a {code} rejection without a message");
    assert_eq!(bytes.len() > max_bytes, r.reason == RejectReason::TooLarge, "too_large iff over max_bytes: {r}");
    // "Valid JSON" as serde_json's own Value reads it: the JSON grammar
    // minus lone surrogates in strings and numbers beyond f64, which
    // RFC 8259 lets a parser refuse (andon calls them invalid_json).
    if r.reason == RejectReason::InvalidJson {
        assert!(serde_json::from_slice::<Value>(bytes).is_err(), "valid JSON rejected as invalid_json: {r}");
    }
}

/// `1..=max` characters (the schemas' `minLength`/`maxLength` count
/// characters, not bytes).
fn len_ok(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n)
}

/// `^[a-z0-9][a-z0-9_.-]{0,63}$`, written out again here on purpose.
pub fn issue_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        && s.chars().count() <= 64
}

fn check_ts(ts: andon::time::Ts) {
    let text = event::format_timestamp(ts);
    assert_eq!(
        event::parse_timestamp("ts", &text).ok(),
        Some(ts),
        "timestamp {} does not round-trip via {text:?}",
        ts.as_nanos()
    );
}

/// An optional string field of the raw JSON: absent or null, or a string
/// of at most `max` characters.
fn check_opt_str(v: &Value, field: &str, max: usize) {
    match v.get(field) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => assert!(len_ok(s, 0, max), "{field} of {} chars was accepted", s.chars().count()),
        Some(other) => panic!("{field} = {other} (not a string) was accepted"),
    }
}

/// The same bytes as a plain JSON value, when serde_json's `Value` can hold
/// them (it refuses numbers out of f64 range that the decoder may skip in
/// an unknown field).
fn as_value(bytes: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    assert!(v.is_object(), "a record that is not a JSON object was accepted: {v}");
    Some(v)
}

pub fn check_complaint(bytes: &[u8], c: &Complaint) {
    assert!(len_ok(&c.event_id, 1, 128), "event_id {:?}", c.event_id);
    assert!(len_ok(&c.customer_id, 1, 128), "customer_id {:?}", c.customer_id);
    assert!(len_ok(&c.subject.id, 1, 128), "subject.id {:?}", c.subject.id);
    assert!(issue_ok(&c.issue), "issue {:?} does not match the pattern", c.issue);
    assert_eq!(c.subject_key, format!("{}:{}", c.subject.kind.as_str(), c.subject.id));
    assert_eq!(event::Subject::from_key(&c.subject_key).as_ref(), Some(&c.subject), "subject key does not parse back");
    check_ts(c.occurred_at);

    let Some(v) = as_value(bytes) else { return };
    assert_eq!(v["event_id"].as_str(), Some(c.event_id.as_str()));
    assert_eq!(v["customer_id"].as_str(), Some(c.customer_id.as_str()));
    assert_eq!(v["issue"].as_str(), Some(c.issue.as_str()));
    assert_eq!(v["subject"]["kind"].as_str(), Some(c.subject.kind.as_str()));
    assert_eq!(v["subject"]["id"].as_str(), Some(c.subject.id.as_str()));
    assert!(v["subject"].is_object(), "subject {} is not an object", v["subject"]);
    assert_eq!(v["pull"].as_bool().unwrap_or(false), c.pull);
    assert!(matches!(v.get("pull"), None | Some(Value::Null | Value::Bool(_))), "pull = {}", v["pull"]);
    for field in ["order_id", "agent_id", "region"] {
        check_opt_str(&v, field, 128);
    }
    check_opt_str(&v, "note", 4096);
    match v.get("channel") {
        None | Some(Value::Null) => {}
        Some(ch) => assert!(
            matches!(ch.as_str(), Some("phone" | "chat" | "email" | "social" | "other")),
            "channel {ch} was accepted"
        ),
    }
}

pub fn check_update(bytes: &[u8], u: &Update) {
    assert!(len_ok(&u.update_id, 1, 128), "update_id {:?}", u.update_id);
    assert!(len_ok(&u.andon_id, 1, 256), "andon_id {:?}", u.andon_id);
    assert!(len_ok(&u.actor, 1, 128), "actor {:?}", u.actor);
    assert!(u.step >= 1, "step 0 was accepted");
    check_ts(u.at);
    assert_eq!(u.subject_key(), event::andon_subject_key(&u.andon_id));
    // A well-formed andon id splits into parts that build it again.
    if let Some((key, issue, n)) = event::parse_andon_id(&u.andon_id) {
        assert_eq!(key, u.subject_key());
        assert!(issue_ok(issue), "parse_andon_id gave issue {issue:?}");
        assert!(event::Subject::from_key(key).is_some(), "parse_andon_id gave key {key:?}");
        assert_eq!(format!("{key}/{issue}#{n}"), u.andon_id, "andon id does not round-trip");
    }

    let Some(v) = as_value(bytes) else { return };
    assert_eq!(v["update_id"].as_str(), Some(u.update_id.as_str()));
    assert_eq!(v["andon_id"].as_str(), Some(u.andon_id.as_str()));
    assert_eq!(v["actor"].as_str(), Some(u.actor.as_str()));
    assert_eq!(v["step"].as_u64(), Some(u64::from(u.step)), "step {} decoded as {}", v["step"], u.step);
    assert_eq!(v["verdict"].as_str(), u.verdict.map(|x| x.as_str()), "verdict {}", v["verdict"]);
    check_opt_str(&v, "note", 4096);
}

// ------------------------------------------------------------ changelog

use andon::engine::{changes, State};
use andon::kafka::checkpoint::{self, Kind, Read, Stamp, Writing};

/// Separates the records of one `decode_changelog` input (an empty record
/// is a tombstone). Long and odd enough never to occur inside a record
/// andon wrote.
pub const RECORD_SEP: &[u8] = b"\x00|andon.state|\x00";

/// The partition count the changelog seeds were written with.
pub const PARTITIONS: u32 = 4;

/// The records of one input.
pub fn split_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(RECORD_SEP.len()).position(|w| w == RECORD_SEP) {
        out.push(&rest[..at]);
        rest = &rest[at + RECORD_SEP.len()..];
    }
    out.push(rest);
    out
}

/// One changelog value: its frame and body decode or are refused, every
/// operation that decodes encodes back to itself, and applying them to a
/// state never panics.
pub fn check_changelog_value(value: &[u8]) {
    let Ok((_frame, body)) = checkpoint::decode_value(value) else { return };
    let mut state = State::default();
    for op in changes::decode(body) {
        let Ok(op) = op else { break };
        let mut buf = Vec::new();
        changes::encode(&op, &mut buf).expect("a decoded operation encodes");
        let back: Vec<_> = changes::decode(&buf).collect();
        assert_eq!(back.len(), 1, "one operation encodes to one");
        assert_eq!(back[0].as_ref().ok(), Some(&op), "an operation survives encode and decode");
        changes::apply(&mut state, op);
    }
    let _ = changes::split(body, 64);
}

/// The whole of `state` as changelog operations (deterministic: the same
/// state always gives the same bytes).
fn snapshot(state: &State) -> Vec<u8> {
    let mut buf = Vec::new();
    changes::encode_state(state, &mut buf).expect("a state encodes");
    buf
}

/// A state partition made of the input's records: resolving it never
/// panics; a chain that resolves gives a state whose snapshot restores to
/// the same snapshot, and a snapshot the next writer appends on that
/// chain restores to the same state.
pub fn check_changelog_partition(values: &[&[u8]]) {
    const FIRST: i64 = 100;
    let reads: Vec<Read> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Read {
            offset: FIRST + i as i64,
            key: None,
            value: if v.is_empty() { None } else { Some(v.to_vec()) },
        })
        .collect();
    let end = FIRST + reads.len() as i64;
    let _ = checkpoint::newest_head(&reads);
    let Ok(resolved) = checkpoint::resolve(&reads, PARTITIONS, end) else { return };
    let snap = snapshot(&resolved.state);
    let mut again = State::default();
    for op in changes::decode(&snap) {
        changes::apply(&mut again, op.expect("a snapshot andon encoded decodes"));
    }
    assert_eq!(snapshot(&again), snap, "a restored state's snapshot restores to the same snapshot");

    // The next writer: newer than every stamp in the partition.
    let newest = reads
        .iter()
        .filter_map(|r| checkpoint::decode_value(r.value.as_deref()?).ok())
        .map(|(f, _)| f.stamp)
        .max()
        .unwrap_or_default();
    let Some(era) = newest.era.checked_add(1) else { return };
    let w = Writing { stamp: Stamp { era, generation: 1 }, attempt: 1, partitions: PARTITIONS };
    let body = changes::Encoded { bytes: snap.clone(), ends: Vec::new() };
    let written = resolved.chain.write(w, Kind::Snapshot, resolved.chain.positions, &body);
    let mut more = reads.clone();
    for (i, r) in written.records.iter().enumerate() {
        more.push(Read { offset: end + i as i64, key: Some(r.key.clone().into_bytes()), value: r.value.clone() });
    }
    let end2 = end + written.records.len() as i64;
    let next = checkpoint::resolve(&more, PARTITIONS, end2)
        .unwrap_or_else(|e| panic!("a snapshot written on a restored chain does not restore: {e}"));
    assert_eq!(next.chain.seq, resolved.chain.seq + 1, "the snapshot continues the chain");
    assert_eq!(next.chain.positions, resolved.chain.positions);
    assert_eq!(snapshot(&next.state), snap, "the snapshot restores the state it was written from");
}
