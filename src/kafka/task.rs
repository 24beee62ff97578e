//! One input partition number: its engine, the records of its two input
//! partitions waiting to be merged by event time ([`crate::merge`]), the
//! outputs a restored writer must not write again, and its changelog chain.
//!
//! The task does no I/O: the processor hands it records and takes back
//! [`Produce`] records and changelog operations, so its rules are plain code.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{changes, Engine, EngineConfig, EscalationClock, RecordMeta, State};
use crate::event::{decode_complaint, decode_update, Complaint, Output, Reject, RejectReason, Update};
use crate::kafka::checkpoint::{Chain, Kind};
use crate::kafka::io::{Out, RECORD_OVERHEAD};
use crate::merge::{Merge, Next, Side, Timed};
use crate::time::Ts;

/// Which output topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutTopic {
    DelistCommands,
    WorkOrders,
    Dlq,
}

/// A record to produce to the task's partition of `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produce {
    pub topic: OutTopic,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// DLQ headers (reason, message, source coordinates, ...).
    pub headers: Vec<(&'static str, String)>,
}

/// A record as polled.
pub struct Incoming<'a> {
    pub side: Side,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record timestamp.
    pub timestamp: Option<Ts>,
}

/// A polled record waiting its turn. Records that did not decode wait in
/// line too, and go to the DLQ when they reach the front: outputs then
/// follow input offsets, so a checkpoint's input position and output ends
/// always describe the same point (see `input_positions`).
struct Pending<T> {
    offset: i64,
    key: Option<Box<[u8]>>,
    value: Box<[u8]>,
    timestamp: Option<Ts>,
    record: Result<T, Reject>,
}

/// A queued record's source coordinates and its record, tagged with its
/// side's type.
type Parts = (i64, Option<Box<[u8]>>, Box<[u8]>, Option<Ts>, Decoded);

impl<T> Pending<T> {
    fn into_parts(self, tag: fn(Result<T, Reject>) -> Decoded) -> Parts {
        (self.offset, self.key, self.value, self.timestamp, tag(self.record))
    }
}

impl Timed for Pending<Complaint> {
    fn event_time(&self) -> Option<Ts> {
        self.record.as_ref().ok().map(|c| c.occurred_at)
    }
}

impl Timed for Pending<Update> {
    fn event_time(&self) -> Option<Ts> {
        self.record.as_ref().ok().map(|u| u.at)
    }
}

/// A record decoded from either input.
enum Decoded {
    Complaint(Result<Complaint, Reject>),
    Update(Result<Update, Reject>),
}

impl Decoded {
    fn decoded(&self) -> bool {
        matches!(self, Decoded::Complaint(Ok(_)) | Decoded::Update(Ok(_)))
    }
}

/// What a batch did, for the metrics: applied when the batch commits,
/// dropped with it when it fails.
#[derive(Debug, Default)]
pub struct Stats {
    pub complaints: Vec<(&'static str, u64)>,
    pub dlq: Vec<RejectReason>,
    /// Record timestamps of the inputs that produced outputs.
    pub latencies: Vec<Ts>,
    pub outputs: Vec<Output>,
    /// Outputs not written because they already stood in their partition
    /// (a replay after a restart or a failed batch): not counted again, but
    /// the cluster-wide view's table records are rewritten for them.
    pub suppressed: Vec<Output>,
}

impl Stats {
    fn complaint(&mut self, outcome: &'static str) {
        match self.complaints.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => self.complaints.push((outcome, 1)),
        }
    }
}

/// How many of a batch's outputs, written and suppressed, were looked
/// at ([`Task::outputs_since`]).
pub type OutputMark = (usize, usize);

/// What a task did in one `process` call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Records that went through the engine (accepted or rejected by it).
    pub processed: u64,
    /// Records that did not decode (to the DLQ without the engine).
    pub undecodable: u64,
}

/// Limits of what the task writes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Input records larger than this are rejected (`too_large`).
    pub max_event_bytes: usize,
    /// The producer's `message.max.bytes`: a DLQ record that would not fit
    /// is written with its value omitted.
    pub max_message_bytes: usize,
}

/// See [`Task::accepts`].
pub const QUEUE_LIMIT: usize = 2_000;

pub struct Task {
    pub partition: i32,
    engine: Engine,
    merge: Merge<Pending<Complaint>, Pending<Update>>,
    /// Offset after the last record polled from each input ([`Side`]).
    fetched: [i64; 2],
    /// Since when each input's queue has been empty: the merge waits for an
    /// empty input only until it has been empty for `max_task_idle`, so a
    /// topic that stays quiet costs one wait, not one per batch.
    empty_since: [Option<Instant>; 2],
    /// Whether the consumer has reported reaching the end of each input
    /// partition (and nothing arrived since).
    at_end: [bool; 2],
    /// Ids of outputs already in the output partitions past the checkpoint.
    suppress: HashSet<String>,
    /// The changelog chain this task continues.
    pub chain: Chain,
    /// The era its checkpoints are stamped with (see `checkpoint::Stamp`).
    pub era: u32,
    /// The group generation in which this member was assigned the
    /// partition: its checkpoints' stamp, for as long as it holds it. Not
    /// the generation the member is in when it writes: a member whose
    /// session lapsed unnoticed, or that the group kept while giving the
    /// partition to another (the MockCluster does), may have joined the
    /// new owner's generation by then, and equal stamps let a restore mix
    /// the two writers' checkpoints into one chain (a chaos run lost a pull
    /// so). Stamped with the assignment, the older holder is always older.
    pub generation: i32,
    topic_names: [Arc<str>; 2],
    limits: Limits,
    out: Vec<Output>,
    stats: Stats,
    /// The record timestamp of the input being processed.
    last_timestamp: Option<Ts>,
    /// The largest record timestamp processed: while catching up,
    /// escalations go by it rather than by the wall clock, so a backlog of
    /// updates that completed steps in time does not escalate them.
    newest_record: Option<Ts>,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: i32,
        cfg: Arc<EngineConfig>,
        state: State,
        chain: Chain,
        (era, generation): (u32, i32),
        suppress: HashSet<String>,
        topic_names: [Arc<str>; 2],
        limits: Limits,
    ) -> Self {
        let mut engine = Engine::restore(cfg, EscalationClock::WallClock, state);
        engine.track_changes();
        Self {
            partition,
            engine,
            merge: Merge::default(),
            fetched: [chain.positions.complaints, chain.positions.updates],
            // Nothing has been taken from either input since the task began.
            empty_since: [Some(Instant::now()), Some(Instant::now())],
            at_end: [false, false],
            suppress,
            chain,
            era,
            generation,
            topic_names,
            limits,
            out: Vec::new(),
            stats: Stats::default(),
            last_timestamp: None,
            newest_record: None,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Takes a polled record: processed at once when the merge would take
    /// it now (nothing queued before it, the other input quiet and known to
    /// be at its end: the common case, and no copy), else queued, decoded
    /// (or with the reason it does not decode: such records take no part in
    /// the merge).
    pub fn offer(&mut self, m: Incoming<'_>, now: Instant, max_task_idle: Duration, out: &mut Vec<Produce>) -> Tally {
        let mut tally = Tally::default();
        let side = m.side as usize;
        // Offsets only grow within a partition: anything below the next
        // expected one was fetched before a seek (a restore's) took effect.
        if m.offset < self.fetched[side] {
            return tally;
        }
        self.arriving(m.side, m.offset);
        self.fetched[side] = m.offset + 1;
        let value = m.value.unwrap_or_default();
        let record = match m.side {
            Side::Complaints => Decoded::Complaint(decode_complaint(value, self.limits.max_event_bytes)),
            Side::Updates => Decoded::Update(decode_update(value, self.limits.max_event_bytes)),
        };
        let other = match m.side {
            Side::Complaints => Side::Updates,
            Side::Updates => Side::Complaints,
        };
        let now_is_its_turn = self.merge.len(m.side) == 0
            && (!record.decoded() || (self.merge.len(other) == 0 && self.may_skip(other, now, max_task_idle)));
        if now_is_its_turn {
            self.handle(m.side, m.offset, m.key, value, m.timestamp, record, &mut tally, out);
            return tally;
        }
        let (offset, key, timestamp) = (m.offset, m.key.map(Box::from), m.timestamp);
        match record {
            Decoded::Complaint(record) => {
                self.merge.push_complaint(Pending { offset, key, value: value.into(), timestamp, record })
            }
            Decoded::Update(record) => {
                self.merge.push_update(Pending { offset, key, value: value.into(), timestamp, record })
            }
        }
        tally
    }

    /// Whether the merge may pass over `side` now: it has nothing queued,
    /// is known to be at its end, and has been quiet for `max_task_idle`
    /// (Kafka Streams' rule). An input not known to be at its end is waited
    /// for: records are on their way (one that never delivers is a stall,
    /// watched by the processor).
    fn may_skip(&mut self, side: Side, now: Instant, max_task_idle: Duration) -> bool {
        let i = side as usize;
        if self.merge.len(side) == 0 {
            self.empty_since[i].get_or_insert(now);
        }
        self.at_end[i] && self.empty_since[i].is_some_and(|s| now.duration_since(s) >= max_task_idle)
    }

    /// Runs the engine over the queued records the merge allows now, and
    /// escalations by the wall clock; outputs (less those already written)
    /// go to `out`.
    pub fn process(&mut self, now: Instant, wall: Ts, max_task_idle: Duration, out: &mut Vec<Produce>) -> Tally {
        let mut tally = Tally::default();
        loop {
            let skip =
                [self.may_skip(Side::Complaints, now, max_task_idle), self.may_skip(Side::Updates, now, max_task_idle)];
            let (side, (offset, key, value, timestamp, record)) = match self.merge.next(|side| skip[side as usize]) {
                Next::Wait(_) | Next::Empty => break,
                Next::Complaint(p) => (Side::Complaints, p.into_parts(Decoded::Complaint)),
                Next::Update(p) => (Side::Updates, p.into_parts(Decoded::Update)),
            };
            self.handle(side, offset, key.as_deref(), &value, timestamp, record, &mut tally, out);
        }
        let caught_up = self.merge.is_empty() && self.at_end == [true, true];
        let escalate_at = if caught_up { Some(wall) } else { self.newest_record.map(|t| t.min(wall)) };
        if let Some(t) = escalate_at {
            self.engine.tick(t, &mut self.out);
        }
        self.drain_outputs(out);
        self.last_timestamp = None;
        tally
    }

    /// One record through the engine (or, undecodable or rejected, to the DLQ).
    #[allow(clippy::too_many_arguments)]
    fn handle(
        &mut self,
        side: Side,
        offset: i64,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp: Option<Ts>,
        record: Decoded,
        tally: &mut Tally,
        out: &mut Vec<Produce>,
    ) {
        let meta = RecordMeta { key: Some(key.unwrap_or_default()), timestamp };
        let rejected = match record {
            Decoded::Complaint(Err(r)) | Decoded::Update(Err(r)) => {
                tally.undecodable += 1;
                Some(r)
            }
            Decoded::Complaint(Ok(c)) => {
                tally.processed += 1;
                self.seen_record(timestamp);
                match self.engine.on_complaint(c, meta, &mut self.out) {
                    Ok(outcome) => {
                        self.stats.complaint(outcome.class.as_str());
                        None
                    }
                    Err(r) => Some(r),
                }
            }
            Decoded::Update(Ok(u)) => {
                tally.processed += 1;
                self.seen_record(timestamp);
                self.engine.on_update(&u, meta, &mut self.out).err()
            }
        };
        self.drain_outputs(out);
        if let Some(r) = rejected {
            self.dlq(side, offset, key, value, &r, out);
        }
    }

    fn seen_record(&mut self, timestamp: Option<Ts>) {
        self.last_timestamp = timestamp;
        if timestamp > self.newest_record {
            self.newest_record = timestamp;
        }
    }

    fn drain_outputs(&mut self, out: &mut Vec<Produce>) {
        if !self.out.is_empty() {
            if let Some(ts) = self.last_timestamp {
                self.stats.latencies.push(ts);
            }
        }
        for o in self.out.drain(..) {
            if !self.suppress.is_empty() && self.suppress.remove(&o.id()) {
                self.stats.suppressed.push(o);
                continue; // already in its partition from before the restart
            }
            out.push(Produce {
                topic: match o {
                    Output::Command(_) => OutTopic::DelistCommands,
                    Output::WorkOrder(_) => OutTopic::WorkOrders,
                },
                key: Some(o.key().as_bytes().to_vec()),
                value: o.to_json(),
                headers: Vec::new(),
            });
            self.stats.outputs.push(o);
        }
    }

    fn dlq(&mut self, side: Side, offset: i64, key: Option<&[u8]>, value: &[u8], r: &Reject, out: &mut Vec<Produce>) {
        let topic = &self.topic_names[side as usize];
        let partition = self.partition.to_string();
        let offset = offset.to_string();
        if !self.suppress.is_empty() && self.suppress.remove(&dlq_id(topic, &partition, &offset)) {
            return;
        }
        self.stats.dlq.push(r.reason);
        if side == Side::Complaints {
            self.stats.complaint("invalid");
        }
        tracing::warn!(
            topic = &**topic,
            partition = self.partition,
            offset = %offset,
            reason = r.reason.as_str(),
            message = %r.message,
            "rejected record to the DLQ"
        );
        let mut headers = vec![
            ("andon.error.reason", r.reason.as_str().to_owned()),
            ("andon.error.message", r.message.clone()),
            ("andon.source.topic", topic.to_string()),
            ("andon.source.partition", partition),
            ("andon.source.offset", offset),
        ];
        // A copy that would not fit the producer's limit would fail its
        // batch again and again: write it without the value, which the
        // source coordinates find.
        let header_bytes: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let size = Out { topic: "", partition: 0, key, value: Some(value), headers: &header_bytes }.size();
        let value = if size + RECORD_OVERHEAD > self.limits.max_message_bytes {
            headers.push(("andon.error.value_omitted", value.len().to_string()));
            Vec::new()
        } else {
            value.to_vec()
        };
        out.push(Produce { topic: OutTopic::Dlq, key: key.map(<[u8]>::to_vec), value, headers });
    }

    /// The input positions a checkpoint taken now may claim: the first
    /// record still waiting in each queue, else the next to fetch.
    pub fn input_positions(&self) -> (i64, i64) {
        (
            self.merge.front_complaint().map_or(self.fetched[0], |p| p.offset),
            self.merge.front_update().map_or(self.fetched[1], |p| p.offset),
        )
    }

    /// A record at `offset` was polled from `side` and is about to be
    /// offered, after one polled from the other input: `side` is not at
    /// its end (an end reported before it is stale) until the consumer
    /// says so again. A record from before a seek (below the next offset
    /// expected) says nothing.
    pub fn arriving(&mut self, side: Side, offset: i64) {
        let i = side as usize;
        if offset >= self.fetched[i] {
            self.at_end[i] = false;
            self.empty_since[i] = None;
        }
    }

    /// The consumer reached the end of this input partition.
    pub fn at_end(&mut self, side: Side) {
        self.at_end[side as usize] = true;
    }

    /// The consumer of this input lost its connection or failed a fetch:
    /// an end reached before may have moved meanwhile (records produced
    /// while it could not fetch, which the other input's consumer may
    /// already be delivering), so the input is not known to be at its end
    /// until the consumer says so again. The caller makes it fetch again
    /// from [`Task::next_offset`] (librdkafka reports an end only once per
    /// end offset, and again after a seek).
    pub fn link_lost(&mut self, side: Side) {
        self.at_end[side as usize] = false;
    }

    /// The offset of the next record this task expects from `side`.
    pub fn next_offset(&self, side: Side) -> i64 {
        self.fetched[side as usize]
    }

    /// Whether both inputs are known to be read to their end and nothing waits.
    pub fn caught_up(&self) -> bool {
        self.merge.is_empty() && self.at_end == [true, true]
    }

    /// The outputs the engine emitted since the last [`Task::take_stats`],
    /// written now or suppressed as already written (for the view's table),
    /// past `mark`: how many of each an earlier call returned (`(0, 0)`:
    /// all). Also the mark after them.
    pub fn outputs_since(&self, mark: OutputMark) -> (impl Iterator<Item = &Output>, OutputMark) {
        let (o, s) = (&self.stats.outputs, &self.stats.suppressed);
        let now = (o.len(), s.len());
        (o[mark.0.min(now.0)..].iter().chain(&s[mark.1.min(now.1)..]), now)
    }

    pub fn take_stats(&mut self) -> Stats {
        std::mem::take(&mut self.stats)
    }

    /// Appends the engine's changes since the last call, as changelog operations.
    pub fn take_changes(&mut self, out: &mut changes::Encoded) {
        self.engine.take_changes(out);
    }

    pub fn has_changes(&self) -> bool {
        self.engine.has_changes()
    }

    /// The body of this partition's next checkpoint: the engine's changes
    /// since the last, or, when the chain is due one, a snapshot of the
    /// whole state (which covers the changes).
    pub fn checkpoint_body(&mut self, snapshot_after_bytes: usize) -> (Kind, changes::Encoded) {
        let mut body = changes::Encoded::default();
        if self.chain.snapshot_due(snapshot_after_bytes, self.partition) {
            self.engine.take_changes(&mut changes::Encoded::default());
            // Encoding into a Vec only fails on types serde cannot describe.
            let _ = changes::encode_state(self.engine.state(), &mut body.bytes);
            (Kind::Snapshot, body)
        } else {
            self.engine.take_changes(&mut body);
            (Kind::Checkpoint, body)
        }
    }

    /// Records polled and not yet processed.
    pub fn waiting(&self) -> usize {
        self.merge.len(Side::Complaints) + self.merge.len(Side::Updates)
    }

    /// Whether to poll more of `side`: not while [`QUEUE_LIMIT`] of its
    /// records wait (for the other input, which the merge needs first).
    /// Past that they stay in the consumer's queue, where fetching pauses
    /// when it is full (`queued.max.messages.kbytes`), instead of being
    /// decoded and copied into the merge without bound: an input that
    /// stalls costs the other no memory beyond this.
    pub fn accepts(&self, side: Side) -> bool {
        self.merge.len(side) < QUEUE_LIMIT
    }
}

/// The id of a DLQ record: its source coordinates.
pub fn dlq_id(topic: &str, partition: &str, offset: &str) -> String {
    format!("dlq|{topic}|{partition}|{offset}")
}

#[cfg(test)]
mod tests;
