//! The engine's state changes as a stream of small operations, encoded as
//! they happen: what the Kafka changelog carries (`kafka::checkpoint`
//! frames it into records), and what a restore applies.
//!
//! Writing every touched subject whole each batch made the changelog grow
//! with the size of the keys touched, not with the input: a key holding a
//! thousand counted complaints was written out again for each new one. An
//! operation per change keeps it proportional to the input: a counted
//! complaint is one [`Op::Count`], which carries its id (applying it
//! remembers the id); any other id remembered (a complaint attached, late,
//! stale or pulling by hand; an update) is one [`Op::Seen`]; a complaint
//! attached to an open andon also one [`Op::Attached`]. The rarer changes
//! to a subject's andons (pull, step, close, escalation) mark it dirty, and
//! one [`Op::Subject`] with its header (everything but the counted
//! complaints) closes the batch.
//!
//! Applying the operations of a stretch of processing, in order, to the
//! state it started from gives the state it ended at, as far as outputs can
//! tell: evictions of old complaints and ids are not logged (they are
//! functions of stream time and happen again after a restore; see
//! `Engine::sweep`).
//!
//! The encoding is postcard (a compact, non-self-describing serde format):
//! internal to andon, versioned by the record frame that carries it. Ops
//! borrow their strings when decoded, so a restore allocates only what the
//! state keeps.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::andon::OpenAndon;
use super::window::Counted;
use super::{IdHash, IssueState, State, SubjectState};
use crate::time::Ts;

/// Counted complaints per [`Op::Counts`] in a snapshot: keeps every op far
/// below a changelog record's size.
const COUNTS_PER_OP: usize = 256;
/// Ids per [`Op::SeenMany`] in a snapshot.
const SEEN_PER_OP: usize = 4096;

/// One change. The variants' order and fields are the wire format: append
/// new variants at the end, never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op<'a> {
    /// Stream time after the stretch of processing.
    StreamTime(Ts),
    /// An id remembered: (hash, event time).
    Seen([u8; 16], Ts),
    /// A complaint counted on a key.
    Count {
        #[serde(borrow)]
        subject: Cow<'a, str>,
        #[serde(borrow)]
        issue: Cow<'a, str>,
        at: Ts,
        #[serde(borrow)]
        customer: Cow<'a, str>,
        #[serde(borrow)]
        event_id: Cow<'a, str>,
    },
    /// A key's counted complaints cleared (a pull, a close).
    Clear {
        #[serde(borrow)]
        subject: Cow<'a, str>,
        #[serde(borrow)]
        issue: Cow<'a, str>,
    },
    /// A subject's header: everything but the counted complaints.
    Subject {
        #[serde(borrow)]
        subject: Cow<'a, str>,
        delists: u32,
        open_delisting: u32,
        #[serde(borrow)]
        issues: Vec<IssueHead<'a>>,
    },
    /// Snapshots: many counted complaints of one key, in order.
    Counts {
        #[serde(borrow)]
        subject: Cow<'a, str>,
        #[serde(borrow)]
        issue: Cow<'a, str>,
        #[serde(borrow)]
        items: Vec<(Ts, Cow<'a, str>, Cow<'a, str>)>,
    },
    /// Snapshots: many ids.
    SeenMany(Vec<([u8; 16], Ts)>),
    /// Complaints attached to a key's open andon, now `attached` in all
    /// (the common change to an open andon: a header would repeat it whole).
    Attached {
        #[serde(borrow)]
        subject: Cow<'a, str>,
        #[serde(borrow)]
        issue: Cow<'a, str>,
        attached: u64,
    },
}

/// One issue of a subject header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueHead<'a> {
    #[serde(borrow)]
    pub issue: Cow<'a, str>,
    pub andons: u32,
    pub stale_until: Option<Ts>,
    pub open: Option<Cow<'a, OpenAndon>>,
}

/// A changelog encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
#[error("changelog operations: {0}")]
pub struct OpsError(#[from] postcard::Error);

/// Appends `op` to `buf`.
pub fn encode(op: &Op<'_>, buf: &mut Vec<u8>) -> Result<(), OpsError> {
    Ok(postcard::serialize_with_flavor(op, Append(buf))?)
}

/// A postcard output that appends to a `Vec` in place (postcard's
/// `to_extend` pushes byte by byte through `Extend`, which showed in
/// profiles; its `AllocVec` wants a fresh vector each time).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The operations in `bytes`, one after another.
pub fn decode(mut bytes: &[u8]) -> impl Iterator<Item = Result<Op<'_>, OpsError>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        match postcard::take_from_bytes::<Op<'_>>(bytes) {
            Ok((op, rest)) => {
                bytes = rest;
                Some(Ok(op))
            }
            Err(e) => {
                bytes = &[];
                Some(Err(e.into()))
            }
        }
    })
}

/// Encoded operations and where each one ends, so that a checkpoint body
/// is cut into records between operations without decoding it again
/// (decoding every batch's body to find the cuts cost about as much as
/// encoding it). `ends` may be empty (a snapshot): [`split`] then finds them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// The end offset of each operation in `bytes`, in order.
    pub ends: Vec<usize>,
}

impl Encoded {
    /// Appends `op`.
    pub fn push(&mut self, op: &Op<'_>) {
        // Encoding into a Vec cannot fail: postcard errors only on full
        // fixed buffers and on types serde cannot describe.
        let _ = encode(op, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Appends `other`'s operations.
    pub fn append(&mut self, other: &mut Encoded) {
        let base = self.bytes.len();
        self.bytes.append(&mut other.bytes);
        self.ends.extend(other.ends.drain(..).map(|e| e + base));
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// [`split`], by the recorded ends when they cover the bytes.
    pub fn runs(&self, max: usize) -> Result<Vec<&[u8]>, OpsError> {
        if self.bytes.len() <= max {
            return Ok(vec![&self.bytes]);
        }
        if self.ends.last() != Some(&self.bytes.len()) {
            return split(&self.bytes, max);
        }
        Ok(cut(&self.bytes, self.ends.iter().copied(), max))
    }
}

/// `bytes` cut at some of `ends` (each operation's end, in order) into runs
/// of at most `max` bytes, an operation larger than `max` alone.
fn cut(bytes: &[u8], ends: impl IntoIterator<Item = usize>, max: usize) -> Vec<&[u8]> {
    let mut runs = Vec::new();
    let (mut start, mut at) = (0, 0);
    for end in ends {
        if end - start > max && at > start {
            runs.push(&bytes[start..at]);
            start = at;
        }
        at = end;
    }
    runs.push(&bytes[start..]);
    runs
}

/// Splits encoded operations into runs of at most `max` bytes, each a
/// whole number of operations (an operation larger than `max` alone).
pub fn split(bytes: &[u8], max: usize) -> Result<Vec<&[u8]>, OpsError> {
    if bytes.len() <= max {
        return Ok(vec![bytes]);
    }
    let (mut ends, mut rest) = (Vec::new(), bytes);
    while !rest.is_empty() {
        let (_, next) = postcard::take_from_bytes::<Op<'_>>(rest)?;
        ends.push(bytes.len() - next.len());
        rest = next;
    }
    Ok(cut(bytes, ends, max))
}

thread_local! {
    /// For the id hashes a restore recomputes.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Applies one operation to `state`.
pub fn apply(state: &mut State, op: Op<'_>) {
    match op {
        Op::StreamTime(t) => {
            if state.stream_time.is_none_or(|st| t > st) {
                state.stream_time = Some(t);
            }
        }
        Op::Seen(h, at) => {
            state.seen.insert(IdHash::from_le_bytes(h), at);
        }
        Op::SeenMany(v) => {
            for (h, at) in v {
                state.seen.insert(IdHash::from_le_bytes(h), at);
            }
        }
        Op::Count { subject, issue, at, customer, event_id } => {
            // A counted complaint's id is remembered with it (no Seen op).
            let h = SCRATCH.with_borrow_mut(|scratch| super::id_hash(scratch, b'c', &subject, &event_id));
            state.seen.insert(h.into(), at);
            let is = issue_mut(state, &subject, &issue);
            is.counted.push_back(Counted::new(at, &customer, &event_id));
        }
        Op::Counts { subject, issue, items } => {
            let is = issue_mut(state, &subject, &issue);
            for (at, customer, event_id) in items {
                is.counted.push_back(Counted::new(at, &customer, &event_id));
            }
        }
        Op::Clear { subject, issue } => {
            issue_mut(state, &subject, &issue).counted.clear();
        }
        Op::Attached { subject, issue, attached } => {
            if let Some(open) = issue_mut(state, &subject, &issue).open.as_mut() {
                open.attached = attached;
            }
        }
        Op::Subject { subject, delists, open_delisting, issues } => {
            let s = state.subjects.get_or_default(&subject);
            s.delists = delists;
            s.open_delisting = open_delisting;
            for head in issues {
                let i = s.issue_index(&head.issue, &mut state.issues);
                let is = &mut s.issues[i];
                is.andons = head.andons;
                is.set_stale_until(head.stale_until);
                is.open = head.open.map(|o| Box::new(o.into_owned()));
            }
        }
    }
}

fn issue_mut<'s>(state: &'s mut State, subject: &str, issue: &str) -> &'s mut IssueState {
    let s = state.subjects.get_or_default(subject);
    let i = s.issue_index(issue, &mut state.issues);
    &mut s.issues[i]
}

/// A subject's header op.
pub fn subject_op<'a>(key: &'a str, s: &'a SubjectState) -> Op<'a> {
    Op::Subject {
        subject: Cow::Borrowed(key),
        delists: s.delists,
        open_delisting: s.open_delisting,
        issues: s
            .issues
            .iter()
            .map(|is| IssueHead {
                issue: Cow::Borrowed(&is.issue),
                andons: is.andons,
                stale_until: is.stale_until(),
                open: is.open.as_deref().map(Cow::Borrowed),
            })
            .collect(),
    }
}

/// The whole of `state` as operations that rebuild it from nothing.
pub fn encode_state(state: &State, buf: &mut Vec<u8>) -> Result<(), OpsError> {
    if let Some(t) = state.stream_time {
        encode(&Op::StreamTime(t), buf)?;
    }
    // In key order: the same state always gives the same bytes.
    let mut subjects: Vec<(&str, &SubjectState)> = state.subjects.iter().collect();
    subjects.sort_unstable_by_key(|&(key, _)| key);
    for (key, s) in subjects {
        encode(&subject_op(key, s), buf)?;
        for is in &s.issues {
            // Borrowed: a snapshot copies no complaint.
            let items: Vec<(Ts, &str, &str)> = is.counted.entries().collect();
            for chunk in items.chunks(COUNTS_PER_OP) {
                let items = chunk
                    .iter()
                    .map(|&(at, customer, event_id)| (at, Cow::Borrowed(customer), Cow::Borrowed(event_id)))
                    .collect();
                encode(&Op::Counts { subject: Cow::Borrowed(key), issue: Cow::Borrowed(&is.issue), items }, buf)?;
            }
        }
    }
    let mut seen: Vec<([u8; 16], Ts)> = state.seen.iter().map(|(h, at)| (h.to_le_bytes(), *at)).collect();
    seen.sort_unstable();
    for chunk in seen.chunks(SEEN_PER_OP) {
        encode(&Op::SeenMany(chunk.to_vec()), buf)?;
    }
    Ok(())
}

/// What the engine logs while it works (see the module documentation).
#[derive(Debug, Default)]
pub struct ChangeLog {
    /// Operations encoded so far in this stretch.
    ops: Encoded,
    /// Subjects whose header changed.
    dirty: rustc_hash::FxHashSet<Box<str>>,
}

impl ChangeLog {
    pub fn seen(&mut self, h: u128, at: Ts) {
        self.ops.push(&Op::Seen(h.to_le_bytes(), at));
    }

    pub fn count(&mut self, subject: &str, issue: &str, at: Ts, customer: &str, event_id: &str) {
        let op = Op::Count {
            subject: Cow::Borrowed(subject),
            issue: Cow::Borrowed(issue),
            at,
            customer: Cow::Borrowed(customer),
            event_id: Cow::Borrowed(event_id),
        };
        self.ops.push(&op);
    }

    pub fn clear(&mut self, subject: &str, issue: &str) {
        self.ops.push(&Op::Clear { subject: Cow::Borrowed(subject), issue: Cow::Borrowed(issue) });
    }

    pub fn attached(&mut self, subject: &str, issue: &str, attached: u64) {
        // A header written this stretch carries the count too; either way
        // the last word on it is the newest.
        self.ops.push(&Op::Attached { subject: Cow::Borrowed(subject), issue: Cow::Borrowed(issue), attached });
    }

    pub fn dirty(&mut self, subject: &str) {
        if !self.dirty.contains(subject) {
            self.dirty.insert(subject.into());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.dirty.is_empty()
    }

    /// Ends the stretch: appends its operations, then the headers of the
    /// dirty subjects and stream time, to `out`, and starts a new stretch.
    pub fn take(&mut self, state: &State, out: &mut Encoded) {
        out.append(&mut self.ops);
        let mut dirty: Vec<Box<str>> = self.dirty.drain().collect();
        dirty.sort_unstable();
        for key in dirty {
            // A subject swept away since is simply not written: the sweep
            // happens again after a restore.
            if let Some(s) = state.subjects.get(&key) {
                out.push(&subject_op(&key, s));
            }
        }
        if let Some(t) = state.stream_time {
            out.push(&Op::StreamTime(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_operations_whole() {
        let mut buf = Vec::new();
        for i in 0..200 {
            let op = Op::Clear { subject: format!("sku:{i}").into(), issue: "x".into() };
            encode(&op, &mut buf).expect("encode");
        }
        let runs = split(&buf, 100).expect("split");
        assert!(runs.len() > 1);
        assert_eq!(runs.concat(), buf, "nothing lost or repeated");
        for r in &runs {
            assert!(r.len() <= 100);
            assert_eq!(decode(r).filter(|op| op.is_ok()).count(), decode(r).count(), "each run decodes alone");
        }
    }

    #[test]
    fn cutting_by_the_recorded_ends_gives_the_runs_decoding_finds() {
        // Operations of uneven sizes, two of them larger than a run.
        let mut enc = Encoded::default();
        for i in 0..300 {
            let subject = if i % 97 == 5 { "s".repeat(150) } else { format!("sku:{}", "x".repeat(i % 13)) };
            enc.push(&Op::Clear { subject: subject.into(), issue: "x".into() });
        }
        // Appended as the change log appends a stretch to a body.
        let mut body = Encoded::default();
        body.push(&Op::StreamTime(Ts::from_nanos(7)));
        body.append(&mut enc);
        for max in [1, 40, 100, 149, 1000, body.bytes.len(), body.bytes.len() + 1] {
            let by_ends = body.runs(max).expect("runs");
            assert_eq!(by_ends, split(&body.bytes, max).expect("split"), "max {max}");
            assert_eq!(by_ends.concat(), body.bytes);
        }
        // Without ends (a snapshot), the same by decoding.
        let bare = Encoded { bytes: body.bytes.clone(), ends: Vec::new() };
        assert_eq!(bare.runs(100).expect("runs"), split(&body.bytes, 100).expect("split"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let errors = decode(&[0xff, 0xff, 0xff, 0x01]).filter(|op| op.is_err()).count();
        assert_eq!(errors, 1);
    }
}
