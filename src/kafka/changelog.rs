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

#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub positions: Positions,
    pub delta: Delta,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub positions: Positions,
    pub state: State,
}

pub fn checkpoint_key(seq: u64) -> String {
    format!("checkpoint/{seq:020}")
}

pub const SNAPSHOT_KEY: &str = "snapshot";

/// A partition as the changelog left it.
#[derive(Debug, Default)]
pub struct Restored {
    pub seq: u64,
    pub positions: Positions,
    pub state: State,
    /// Checkpoints since the latest snapshot: their keys get tombstones
    /// with the next snapshot, and their size decides when that is.
    pub since_snapshot: Vec<u64>,
    pub bytes_since_snapshot: usize,
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

/// Restores partition `partition` from the state topic.
pub fn restore(consumer: &ClientConfig, topic: &str, partition: i32) -> Result<Restored, RestoreError> {
    let mut r = Restored::default();
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
            Some(k) if k == SNAPSHOT_KEY.as_bytes() => {
                let s: Snapshot = serde_json::from_slice(value).map_err(corrupt)?;
                r.seq = s.seq;
                r.positions = s.positions;
                r.state = s.state;
                r.since_snapshot.clear();
                r.bytes_since_snapshot = 0;
            }
            Some(k) if k.starts_with(b"checkpoint/") => {
                let c: Checkpoint = serde_json::from_slice(value).map_err(corrupt)?;
                // Older than the snapshot (compaction keeps order, but a
                // snapshot may follow checkpoints it already covers).
                if c.seq > r.seq || r.seq == 0 {
                    r.seq = c.seq;
                    r.positions = c.positions;
                    r.state.apply(c.delta);
                    r.since_snapshot.push(c.seq);
                    r.bytes_since_snapshot += value.len();
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
