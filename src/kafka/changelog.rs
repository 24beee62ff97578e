//! The `andon.state` changelog: what a partition's checkpoint holds, how it
//! is written, and how a partition is restored from it.
//!
//! Partition p of the state topic belongs to input partition p. It holds two
//! kinds of record, JSON values:
//!
//! - `checkpoint/<seq>`: written after a batch's outputs were acknowledged:
//!   the state changes of the batch ([`Delta`]), the input positions after
//!   it, and the end offsets of this partition's output partitions.
//! - `snapshot`: the whole state with the same positions and ends, written
//!   now and then (see [`SNAPSHOT_AFTER_BYTES`]) and followed by tombstones
//!   for the checkpoints it makes redundant.
//!
//! A restore reads the partition from its first retained offset, keeps the
//! latest snapshot and applies the checkpoints after it. That is right on a
//! compacted topic (a snapshot and the checkpoints after it are never
//! compacted away: each checkpoint key is unique until its tombstone) and
//! on the MockCluster, which keeps only the last 5 MiB of a partition and
//! never compacts: a snapshot is written well before 5 MiB of checkpoints
//! have piled up after the previous one.
//!
//! A checkpoint is one record, so it is either there or not. It is written
//! only after the batch's outputs were acknowledged, so a checkpoint that
//! is visible (even from an aborted transaction, which the MockCluster does
//! not hide) never claims outputs that are not in their topics.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::engine::{Delta, State};
use crate::kafka::client::Quiet;

/// Checkpoint bytes after which the next checkpoint is followed by a
/// snapshot. Well under the MockCluster's 5 MiB per partition, so the
/// latest snapshot is always retained.
pub const SNAPSHOT_AFTER_BYTES: usize = 1 << 20;

/// Where a partition stands: input positions (the next offset to process)
/// and the end offsets of its output partitions when the checkpoint was
/// taken (everything before them is accounted for by the state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    pub complaints: i64,
    pub updates: i64,
    pub delist_commands: i64,
    pub work_orders: i64,
    pub dlq: i64,
}

/// Largest changelog record written: well under Kafka's (and the
/// MockCluster's) default message.max.bytes of 1 MB. A checkpoint or
/// snapshot larger than this is written as several parts.
pub const MAX_RECORD_BYTES: usize = 256 << 10;

/// One part of a checkpoint (body: [`Delta`]) or snapshot (body: [`State`]).
/// `attempt` tells a retried batch's parts from those of the attempt that
/// failed: a checkpoint counts only when all `parts` of one attempt are
/// there.
#[derive(Debug, Serialize, Deserialize)]
pub struct Part<T> {
    pub seq: u64,
    pub attempt: u64,
    pub part: u32,
    pub parts: u32,
    pub positions: Positions,
    pub body: T,
}

/// A record for the state partition (`value: None` is a tombstone).
#[derive(Debug)]
pub struct StateRecord {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

fn checkpoint_key(seq: u64, part: u32) -> String {
    format!("checkpoint/{seq:020}/{part:04}")
}

fn snapshot_key(part: u32) -> String {
    format!("snapshot/{part:04}")
}

/// Splits `body` into as few parts as keep every record under
/// [`MAX_RECORD_BYTES`].
fn encode_parts<T: Serialize>(
    seq: u64,
    attempt: u64,
    positions: Positions,
    split: impl Fn(usize) -> Vec<T>,
    key: impl Fn(u32) -> String,
) -> Result<Vec<StateRecord>, serde_json::Error> {
    let mut k = 1;
    loop {
        let bodies = split(k);
        let parts = bodies.len() as u32;
        let mut out = Vec::with_capacity(bodies.len());
        let mut largest = 0;
        for (i, body) in bodies.into_iter().enumerate() {
            let value = serde_json::to_vec(&Part { seq, attempt, part: i as u32, parts, positions, body })?;
            largest = largest.max(value.len());
            out.push(StateRecord { key: key(i as u32), value: Some(value) });
        }
        // One subject bigger than a record on its own cannot be split
        // further; it goes as it is (the broker will say if it is too big).
        if largest <= MAX_RECORD_BYTES || k >= 1 << 16 || parts < k as u32 {
            return Ok(out);
        }
        k = (k * 2).max(largest.div_ceil(MAX_RECORD_BYTES) * k);
    }
}

fn chunks<T: Clone>(v: &[T], k: usize, i: usize) -> Vec<T> {
    let size = v.len().div_ceil(k).max(1);
    v.chunks(size).nth(i).map(<[T]>::to_vec).unwrap_or_default()
}

/// The records of one batch's checkpoint.
pub fn encode_checkpoint(
    seq: u64,
    attempt: u64,
    positions: Positions,
    delta: &Delta,
) -> Result<Vec<StateRecord>, serde_json::Error> {
    encode_parts(
        seq,
        attempt,
        positions,
        |k| {
            let k = k.min(delta.subjects.len().max(delta.seen.len()).max(1));
            (0..k)
                .map(|i| Delta {
                    stream_time: delta.stream_time,
                    subjects: chunks(&delta.subjects, k, i),
                    seen: chunks(&delta.seen, k, i),
                })
                .collect()
        },
        |part| checkpoint_key(seq, part),
    )
}

/// The records of a snapshot of `state`, then tombstones for what it makes
/// redundant: the checkpoints since the previous snapshot (`covered`, as
/// (seq, parts)) and parts of the previous snapshot beyond this one's.
pub fn encode_snapshot(
    seq: u64,
    attempt: u64,
    positions: Positions,
    state: &State,
    covered: &[(u64, u32)],
    previous_parts: u32,
) -> Result<(Vec<StateRecord>, u32), serde_json::Error> {
    let subjects: Vec<_> = state.subjects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let seen: Vec<_> = state.seen.iter().map(|(k, v)| (*k, *v)).collect();
    let mut records = encode_parts(
        seq,
        attempt,
        positions,
        |k| {
            let k = k.min(subjects.len().max(seen.len()).max(1));
            (0..k)
                .map(|i| State {
                    stream_time: state.stream_time,
                    subjects: chunks(&subjects, k, i).into_iter().collect(),
                    seen: chunks(&seen, k, i).into_iter().collect(),
                })
                .collect()
        },
        snapshot_key,
    )?;
    let parts = records.len() as u32;
    for (s, n) in covered {
        records.extend((0..*n).map(|p| StateRecord { key: checkpoint_key(*s, p), value: None }));
    }
    records.extend((parts..previous_parts).map(|p| StateRecord { key: snapshot_key(p), value: None }));
    Ok((records, parts))
}

/// Parts of one checkpoint or snapshot read so far.
struct Assembly<T> {
    seq: u64,
    attempt: u64,
    parts: u32,
    positions: Positions,
    bytes: usize,
    got: std::collections::BTreeMap<u32, T>,
}

impl<T> Assembly<T> {
    /// Adds a part; returns the whole when this completes it. Parts of
    /// another attempt or seq replace an unfinished assembly.
    fn add(slot: &mut Option<Self>, p: Part<T>, bytes: usize) -> Option<Self> {
        let fresh = match slot {
            Some(a) => a.seq != p.seq || a.attempt != p.attempt,
            None => true,
        };
        if fresh {
            *slot = Some(Assembly {
                seq: p.seq,
                attempt: p.attempt,
                parts: p.parts,
                positions: p.positions,
                bytes: 0,
                got: Default::default(),
            });
        }
        let a = slot.as_mut()?;
        a.bytes += bytes;
        a.got.insert(p.part, p.body);
        if a.got.len() as u32 >= a.parts {
            slot.take()
        } else {
            None
        }
    }
}

/// A partition as the changelog left it.
#[derive(Debug, Default)]
pub struct Restored {
    pub seq: u64,
    pub positions: Positions,
    pub state: State,
    /// Checkpoints (seq, parts) since the latest snapshot: their keys get
    /// tombstones with the next snapshot, and their size decides when.
    pub since_snapshot: Vec<(u64, u32)>,
    pub bytes_since_snapshot: usize,
    /// Parts of the latest snapshot.
    pub snapshot_parts: u32,
    pub records_read: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("reading {topic}[{partition}]: {source}")]
    Kafka { topic: String, partition: i32, source: rdkafka::error::KafkaError },
    #[error("{topic}[{partition}] offset {offset}: unreadable changelog record: {message}")]
    Corrupt { topic: String, partition: i32, offset: i64, message: String },
    #[error("reading {topic}[{partition}]: no progress for {0:?}", STALL)]
    Stalled { topic: String, partition: i32 },
}

const STALL: Duration = Duration::from_secs(30);

/// Reads `topic[partition]` from `from` (or its start) to its current end,
/// handing each record to `f`. A consumer of its own each time, so that no
/// event of an earlier read (an end-of-partition, say) can be taken for one
/// of this read.
pub fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    from: Option<i64>,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<(), RestoreError>,
) -> Result<(), RestoreError> {
    let kafka = |source| RestoreError::Kafka { topic: topic.to_owned(), partition, source };
    let consumer: BaseConsumer<Quiet> = config.create_with_context(Quiet).map_err(kafka)?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).map_err(kafka)?;
    let start = from.map_or(low, |f| f.max(low));
    if start >= high {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start)).map_err(kafka)?;
    consumer.assign(&tpl).map_err(kafka)?;
    let mut last_progress = Instant::now();
    let mut next = start;
    while next < high {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                next = m.offset() + 1;
                f(&m)?;
            }
            // The end, as the broker saw it: transaction markers take offsets
            // too, so the last record may sit below `high - 1`.
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(kafka(e)),
            None if last_progress.elapsed() > STALL => {
                return Err(RestoreError::Stalled { topic: topic.to_owned(), partition })
            }
            None => {}
        }
    }
    Ok(())
}

/// Low and high watermarks of `topic[partition]`, asked of the broker.
pub fn watermarks(config: &ClientConfig, topic: &str, partition: i32) -> Result<(i64, i64), RestoreError> {
    let kafka = |source| RestoreError::Kafka { topic: topic.to_owned(), partition, source };
    let consumer: BaseConsumer<Quiet> = config.create_with_context(Quiet).map_err(kafka)?;
    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).map_err(kafka)
}

/// Restores partition `partition` from the state topic: the latest
/// complete snapshot, then every complete checkpoint after it, in order.
pub fn restore(consumer: &ClientConfig, topic: &str, partition: i32) -> Result<Restored, RestoreError> {
    let mut r = Restored::default();
    let mut checkpoint: Option<Assembly<Delta>> = None;
    let mut snapshot: Option<Assembly<State>> = None;
    read_to_end(consumer, topic, partition, None, |m| {
        r.records_read += 1;
        let Some(value) = m.payload() else { return Ok(()) }; // a tombstone
        let corrupt = |e: serde_json::Error| RestoreError::Corrupt {
            topic: topic.to_owned(),
            partition,
            offset: m.offset(),
            message: e.to_string(),
        };
        match m.key() {
            Some(k) if k.starts_with(b"snapshot/") => {
                let p: Part<State> = serde_json::from_slice(value).map_err(corrupt)?;
                if let Some(a) = Assembly::add(&mut snapshot, p, value.len()) {
                    if a.seq >= r.seq {
                        let mut state = State::default();
                        for (_, part) in a.got {
                            state.stream_time = state.stream_time.max(part.stream_time);
                            state.subjects.extend(part.subjects);
                            state.seen.extend(part.seen);
                        }
                        r.state = state;
                        r.seq = a.seq;
                        r.positions = a.positions;
                        r.since_snapshot.clear();
                        r.bytes_since_snapshot = 0;
                        r.snapshot_parts = a.parts;
                    }
                }
            }
            Some(k) if k.starts_with(b"checkpoint/") => {
                let p: Part<Delta> = serde_json::from_slice(value).map_err(corrupt)?;
                if let Some(a) = Assembly::add(&mut checkpoint, p, value.len()) {
                    // A checkpoint the snapshot already covers is skipped.
                    if a.seq > r.seq {
                        for (_, delta) in a.got {
                            r.state.apply(delta);
                        }
                        r.seq = a.seq;
                        r.positions = a.positions;
                        r.since_snapshot.push((a.seq, a.parts));
                        r.bytes_since_snapshot += a.bytes;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

/// The id of an output record as it stands in its topic: `command_id`,
/// `andon_id|type|step`, or the DLQ record's source coordinates. The same
/// ids as [`crate::event::Output::id`] and [`dlq_id`].
pub fn stored_output_id(value: Option<&[u8]>, headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<String> {
    if let Some(h) = headers {
        let get = |name: &str| {
            h.iter().find(|x| x.key == name).and_then(|x| x.value).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if let (Some(t), Some(p), Some(o)) =
            (get("andon.source.topic"), get("andon.source.partition"), get("andon.source.offset"))
        {
            return Some(dlq_id(&t, &p, &o));
        }
    }
    #[derive(Deserialize)]
    struct Ids {
        command_id: Option<String>,
        andon_id: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        step: Option<u32>,
    }
    let ids: Ids = serde_json::from_slice(value?).ok()?;
    if let Some(c) = ids.command_id {
        return Some(c);
    }
    let (a, k) = (ids.andon_id?, ids.kind?);
    Some(format!("{a}|{k}|{}", ids.step.unwrap_or(0)))
}

pub fn dlq_id(topic: &str, partition: &str, offset: &str) -> String {
    format!("dlq|{topic}|{partition}|{offset}")
}

/// The ids of the outputs already in `topic[partition]` from `from` on:
/// what a restored partition must not write again.
pub fn written_ids(
    consumer: &ClientConfig,
    topic: &str,
    partition: i32,
    from: i64,
) -> Result<(HashSet<String>, i64), RestoreError> {
    let mut ids = HashSet::new();
    let mut end = from;
    read_to_end(consumer, topic, partition, Some(from), |m| {
        end = m.offset() + 1;
        if let Some(id) = stored_output_id(m.payload(), m.headers()) {
            ids.insert(id);
        }
        Ok(())
    })?;
    Ok((ids, end))
}

/// Per-topic end offsets reported by delivery callbacks, for checkpoints.
pub type Ends = HashMap<(String, i32), i64>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::engine::{Engine, EscalationClock, RecordMeta};
    use crate::event::decode_complaint;

    /// A state big enough to need several records.
    fn big_engine() -> Engine {
        let cfg = Settings::from_toml("[rules.default]\nthreshold = 100\nwindow = \"7d\"\n").expect("config").engine;
        let mut e = Engine::new(cfg, EscalationClock::StreamTime);
        e.track_changes();
        let mut out = Vec::new();
        for i in 0..6000 {
            let line = format!(
                r#"{{"event_id":"event-{i:08}","occurred_at":"2026-11-01T00:00:00Z","subject":{{"kind":"sku","id":"SKU-{:06}"}},"issue":"damaged_in_transit","customer_id":"customer-{i:08}"}}"#,
                i % 3000
            );
            e.on_complaint(
                &decode_complaint(line.as_bytes(), 1 << 16).expect("valid"),
                RecordMeta::default(),
                &mut out,
            )
            .expect("accepted");
        }
        e
    }

    fn parts<T: serde::de::DeserializeOwned>(records: &[StateRecord], prefix: &str) -> Vec<Part<T>> {
        records
            .iter()
            .filter(|r| r.key.starts_with(prefix))
            .filter_map(|r| r.value.as_ref())
            .map(|v| serde_json::from_slice(v).expect("part"))
            .collect()
    }

    #[test]
    fn big_checkpoints_and_snapshots_split_into_parts_under_the_record_limit_and_reassemble() {
        let mut e = big_engine();
        let delta = e.take_delta();
        let pos = Positions { complaints: 6000, ..Default::default() };
        let records = encode_checkpoint(7, 1, pos, &delta).expect("encode");
        assert!(records.len() > 1, "a big delta takes several records");
        assert!(records.iter().all(|r| r.value.as_ref().is_some_and(|v| v.len() <= MAX_RECORD_BYTES)));
        let mut slot = None;
        let mut whole = None;
        for p in parts::<Delta>(&records, "checkpoint/") {
            assert_eq!((p.seq, p.attempt, p.positions), (7, 1, pos));
            whole = Assembly::add(&mut slot, p, 0).or(whole);
        }
        let mut state = State::default();
        for (_, d) in whole.expect("complete").got {
            state.apply(d);
        }
        assert_eq!(&state, e.state(), "the parts of a checkpoint rebuild the state");

        let covered = [(5, 2), (6, 1)];
        let (records, n) = encode_snapshot(7, 1, pos, e.state(), &covered, 40).expect("encode");
        assert!(n > 1 && n < 40);
        let tombstones: Vec<&str> = records.iter().filter(|r| r.value.is_none()).map(|r| r.key.as_str()).collect();
        assert!(tombstones.contains(&"checkpoint/00000000000000000005/0001"));
        assert!(tombstones.contains(&"checkpoint/00000000000000000006/0000"));
        assert!(tombstones.contains(&"snapshot/0039"), "parts of an older, larger snapshot are removed");
        assert_eq!(tombstones.len(), 3 + (40 - n as usize));
        let mut slot = None;
        let mut whole = None;
        for p in parts::<State>(&records, "snapshot/") {
            whole = Assembly::add(&mut slot, p, 0).or(whole);
        }
        let whole = whole.expect("complete");
        let mut state = State::default();
        for (_, s) in whole.got {
            state.stream_time = state.stream_time.max(s.stream_time);
            state.subjects.extend(s.subjects);
            state.seen.extend(s.seen);
        }
        assert_eq!(&state, e.state(), "the parts of a snapshot rebuild the state");
    }

    #[test]
    fn parts_of_a_failed_attempt_never_mix_with_the_retry() {
        let mut e = big_engine();
        let delta = e.take_delta();
        let failed = encode_checkpoint(3, 100, Positions::default(), &delta).expect("encode");
        let retry = encode_checkpoint(3, 200, Positions::default(), &delta).expect("encode");
        let mut slot = None;
        let mut done = Vec::new();
        // The failed attempt got only its first part out; then the retry.
        for p in parts::<Delta>(&failed[..1], "checkpoint/").into_iter().chain(parts::<Delta>(&retry, "checkpoint/")) {
            if let Some(a) = Assembly::add(&mut slot, p, 0) {
                done.push(a.attempt);
            }
        }
        assert_eq!(done, [200], "only the retry completes");
    }
}
