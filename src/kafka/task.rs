//! One input partition number: its engine, the decoded records of its two
//! input partitions waiting to be merged by event time (spec, Semantics 0),
//! and the outputs a restored writer must not write again.
//!
//! The task does no I/O: the processor hands it records and takes back
//! [`Produce`] records, so its merge and suppression rules are plain code.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::EngineConfig;
use crate::engine::{Engine, EscalationClock, RecordMeta};
use crate::event::{decode_complaint, decode_update, Complaint, Output, Reject, RejectReason, Ts, Update};
use crate::kafka::changelog::{dlq_id, Positions, Restored};

/// How long to wait for records of an input partition that is not known to
/// be at its end (the first fetch after an assignment, say) before merging
/// on without it.
const FETCH_WAIT: Duration = Duration::from_secs(10);

/// Which output topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutTopic {
    DelistCommands,
    WorkOrders,
    Dlq,
}

/// A record to produce to partition `partition` of `topic`.
#[derive(Debug)]
pub struct Produce {
    pub topic: OutTopic,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// DLQ headers (reason, message, source coordinates).
    pub headers: Vec<(&'static str, String)>,
}

/// Where an input record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Complaints,
    Updates,
}

/// A record as polled.
pub struct Incoming<'a> {
    pub source: Source,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record timestamp, nanoseconds.
    pub timestamp: Option<Ts>,
}

/// A polled record waiting its turn. Records that did not decode wait in
/// line too, and go to the DLQ when they reach the front: outputs then
/// follow input offsets, so a checkpoint's input position and output ends
/// always describe the same point (see `input_positions`).
struct Pending<T> {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: Option<Ts>,
    record: Result<T, Reject>,
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

/// What a task did in one `process` call, for logs and the demo.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Records that went through the engine (accepted or rejected by it).
    pub processed: u64,
    /// Records that did not decode (to the DLQ without the engine).
    pub undecodable: u64,
}

pub struct Task {
    pub partition: i32,
    engine: Engine,
    complaints: VecDeque<Pending<Complaint>>,
    updates: VecDeque<Pending<Update>>,
    /// Offset after the last record polled from each input.
    fetched_complaints: i64,
    fetched_updates: i64,
    /// Since when each input's queue has been empty (indexed by [`Source`]):
    /// the merge waits for an empty input only until it has been empty for
    /// `max_task_idle`, so a topic that stays quiet costs one wait, not one
    /// per batch.
    empty_since: [Option<Instant>; 2],
    /// Whether the consumer has reported reaching the end of each input
    /// partition (and nothing arrived since), indexed by [`Source`].
    at_end: [bool; 2],
    /// Ids of outputs already in the output partitions past the checkpoint.
    suppress: HashSet<String>,
    pub seq: u64,
    pub positions: Positions,
    pub since_snapshot: Vec<(u64, u32)>,
    pub bytes_since_snapshot: usize,
    pub snapshot_parts: u32,
    topic_names: [Arc<str>; 2],
    max_event_bytes: usize,
    out: Vec<Output>,
    stats: Stats,
    /// The record timestamp of the input being processed.
    last_timestamp: Option<Ts>,
}

impl Task {
    pub fn new(
        partition: i32,
        cfg: Arc<EngineConfig>,
        restored: Restored,
        suppress: HashSet<String>,
        topic_names: [Arc<str>; 2],
        max_event_bytes: usize,
    ) -> Self {
        let mut engine = Engine::restore(cfg, EscalationClock::WallClock, restored.state);
        engine.track_changes();
        Self {
            partition,
            engine,
            complaints: VecDeque::new(),
            updates: VecDeque::new(),
            fetched_complaints: restored.positions.complaints,
            fetched_updates: restored.positions.updates,
            empty_since: [None, None],
            at_end: [false, false],
            suppress,
            seq: restored.seq,
            positions: restored.positions,
            since_snapshot: restored.since_snapshot,
            bytes_since_snapshot: restored.bytes_since_snapshot,
            snapshot_parts: restored.snapshot_parts,
            topic_names,
            max_event_bytes,
            out: Vec::new(),
            stats: Stats::default(),
            last_timestamp: None,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Takes a polled record into its queue, decoded (or with the reason
    /// it does not decode: such records take no part in the merge).
    pub fn push(&mut self, m: Incoming<'_>) {
        self.at_end[m.source as usize] = false;
        self.empty_since[m.source as usize] = None;
        let value = m.value.unwrap_or_default();
        let (offset, key, timestamp) = (m.offset, m.key.map(<[u8]>::to_vec), m.timestamp);
        match m.source {
            Source::Complaints => {
                self.fetched_complaints = m.offset + 1;
                let record = decode_complaint(value, self.max_event_bytes);
                self.complaints.push_back(Pending { offset, key, value: value.to_vec(), timestamp, record });
            }
            Source::Updates => {
                self.fetched_updates = m.offset + 1;
                let record = decode_update(value, self.max_event_bytes);
                self.updates.push_back(Pending { offset, key, value: value.to_vec(), timestamp, record });
            }
        }
    }

    /// Sends the undecodable records at the front of the queues to the DLQ.
    fn reject_undecodable(&mut self, out: &mut Vec<Produce>) -> u64 {
        let mut n = 0;
        while let Some(p) = self.complaints.front() {
            let Err(r) = &p.record else { break };
            let (r, p) = (r.clone(), self.complaints.pop_front().expect("front exists"));
            self.dlq(Source::Complaints, p.offset, p.key.as_deref(), &p.value, &r, out);
            n += 1;
        }
        while let Some(p) = self.updates.front() {
            let Err(r) = &p.record else { break };
            let (r, p) = (r.clone(), self.updates.pop_front().expect("front exists"));
            self.dlq(Source::Updates, p.offset, p.key.as_deref(), &p.value, &r, out);
            n += 1;
        }
        n
    }

    /// Runs the engine over what the merge allows now, and the wall clock's
    /// escalations; outputs (less those already written) go to `out`.
    pub fn process(&mut self, now: Instant, wall: Ts, max_task_idle: Duration, out: &mut Vec<Produce>) -> Tally {
        let mut tally = Tally::default();
        loop {
            tally.undecodable += self.reject_undecodable(out);
            let take_complaint = match (self.complaints.front(), self.updates.front()) {
                (Some(Pending { record: Ok(c), .. }), Some(Pending { record: Ok(u), .. })) => c.occurred_at <= u.at,
                (None, None) => {
                    self.empty_since[0].get_or_insert(now);
                    self.empty_since[1].get_or_insert(now);
                    break;
                }
                (c, _) => {
                    // One side has nothing fetched. If its partition is known
                    // to be at its end, wait `max_task_idle` for new records
                    // (Kafka Streams' rule); if not, records are on their way
                    // (a fetch in flight): wait for them, within reason.
                    let empty = if c.is_some() { Source::Updates } else { Source::Complaints };
                    let limit = if self.at_end[empty as usize] { max_task_idle } else { max_task_idle.max(FETCH_WAIT) };
                    let since = *self.empty_since[empty as usize].get_or_insert(now);
                    if now.duration_since(since) < limit {
                        break;
                    }
                    c.is_some()
                }
            };
            tally.processed += 1;
            let rejected = if take_complaint {
                let Some(p) = self.complaints.pop_front() else { break };
                let Ok(record) = &p.record else { continue };
                self.last_timestamp = p.timestamp;
                let meta = RecordMeta { key: Some(p.key.as_deref().unwrap_or_default()), timestamp: p.timestamp };
                match self.engine.on_complaint(record, meta, &mut self.out) {
                    Ok(outcome) => {
                        self.stats.complaint(outcome.class.as_str());
                        None
                    }
                    Err(r) => Some((Source::Complaints, p.offset, p.key, p.value, r)),
                }
            } else {
                let Some(p) = self.updates.pop_front() else { break };
                let Ok(record) = &p.record else { continue };
                self.last_timestamp = p.timestamp;
                let meta = RecordMeta { key: Some(p.key.as_deref().unwrap_or_default()), timestamp: p.timestamp };
                match self.engine.on_update(record, meta, &mut self.out) {
                    Ok(_) => None,
                    Err(r) => Some((Source::Updates, p.offset, p.key, p.value, r)),
                }
            };
            if !self.out.is_empty() {
                if let Some(ts) = self.last_timestamp {
                    self.stats.latencies.push(ts);
                }
            }
            self.drain_outputs(out);
            if let Some((source, offset, key, value, r)) = rejected {
                self.dlq(source, offset, key.as_deref(), &value, &r, out);
            }
        }
        self.engine.tick(wall, &mut self.out);
        self.drain_outputs(out);
        self.last_timestamp = None;
        tally
    }

    fn drain_outputs(&mut self, out: &mut Vec<Produce>) {
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

    fn dlq(
        &mut self,
        source: Source,
        offset: i64,
        key: Option<&[u8]>,
        value: &[u8],
        r: &Reject,
        out: &mut Vec<Produce>,
    ) {
        let topic = &self.topic_names[source as usize];
        let partition = self.partition.to_string();
        let offset = offset.to_string();
        if !self.suppress.is_empty() && self.suppress.remove(&dlq_id(topic, &partition, &offset)) {
            return;
        }
        self.stats.dlq.push(r.reason);
        if source == Source::Complaints {
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
        out.push(Produce {
            topic: OutTopic::Dlq,
            key: key.map(<[u8]>::to_vec),
            value: value.to_vec(),
            headers: vec![
                ("andon.error.reason", r.reason.as_str().to_owned()),
                ("andon.error.message", r.message.clone()),
                ("andon.source.topic", topic.to_string()),
                ("andon.source.partition", partition),
                ("andon.source.offset", offset),
            ],
        });
    }

    /// The input positions a checkpoint taken now may claim: the first
    /// record still waiting in each queue, else the next to fetch.
    pub fn input_positions(&self) -> (i64, i64) {
        (
            self.complaints.front().map_or(self.fetched_complaints, |p| p.offset),
            self.updates.front().map_or(self.fetched_updates, |p| p.offset),
        )
    }

    /// The consumer reached the end of this input partition.
    pub fn at_end(&mut self, source: Source) {
        self.at_end[source as usize] = true;
    }

    /// Every output the engine emitted since the last [`Task::take_stats`],
    /// written now or suppressed as already written (for the view's table).
    pub fn batch_outputs(&self) -> impl Iterator<Item = &Output> {
        self.stats.outputs.iter().chain(&self.stats.suppressed)
    }

    pub fn take_stats(&mut self) -> Stats {
        std::mem::take(&mut self.stats)
    }

    pub fn take_delta(&mut self) -> crate::engine::Delta {
        self.engine.take_delta()
    }

    pub fn waiting(&self) -> usize {
        self.complaints.len() + self.updates.len()
    }
}
