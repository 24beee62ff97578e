//! Restoring partitions from the changelog, all requested at once: the
//! tail of each state partition (for its newest head), then from the base
//! it names, the chain resolved ([`checkpoint::resolve`]), then the ids of
//! outputs already written past the checkpoint, read back from the output
//! partitions so that replayed inputs do not write them twice.
//!
//! A restore runs off the processing loop (on the restorer thread), so it
//! counts neither against `max.poll.interval.ms` nor against `/healthz`;
//! each partition's result is its own: one partition's broken chain does
//! not keep the others from processing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::kafka::checkpoint::{self, ChainError, Read};
use crate::kafka::errors::FailureKind;
use crate::kafka::io::{IoError, LogReader, Range, Record};
use crate::kafka::task::{dlq_id, Limits, Task};

/// State records read from the end of a partition to find its newest head.
const TAIL: i64 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{topic}[{partition}]: {error}")]
    Chain { topic: String, partition: i32, error: ChainError },
    #[error("{topic}[{partition}]: a transaction is still open (last stable offset {stable}, high watermark {high})")]
    Open { topic: String, partition: i32, stable: i64, high: i64 },
}

impl RestoreError {
    /// Whether trying again may help without anyone acting: a broker that
    /// answers again, a transaction that ends. A broken chain stays broken.
    pub fn is_transient(&self) -> bool {
        match self {
            RestoreError::Io(e) => e.kind != FailureKind::Permanent,
            RestoreError::Open { .. } => true,
            RestoreError::Chain { .. } => false,
        }
    }
}

/// What a restore is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Newly assigned to this member, whose group generation is given.
    Assigned { generation: i32 },
    /// Again, after a failed batch: the partition keeps its era and the
    /// generation it was assigned in.
    Recovery { era: u32, generation: i32 },
}

/// One partition restored.
pub struct Restored {
    pub task: Task,
    pub records_read: usize,
    pub already_written: usize,
}

/// Restores `partitions` (each with why), all at once. `partition_count`:
/// of andon's topics now.
pub fn restore(
    reader: &dyn LogReader,
    settings: &Settings,
    partitions: &[(i32, Why)],
    partition_count: u32,
    limits: &Limits,
) -> Vec<(i32, Result<Restored, RestoreError>)> {
    let t = &settings.topics;
    let started = Instant::now();
    let mut results: HashMap<i32, Result<Restored, RestoreError>> = HashMap::new();

    // 1. Watermarks; a partition with a transaction still open waits.
    let mut live: Vec<(i32, Why, i64, i64)> = Vec::new(); // (partition, why, low, end)
    let numbers: Vec<i32> = partitions.iter().map(|(p, _)| *p).collect();
    let marks = match reader.watermarks(&t.state, &numbers) {
        Ok(m) => m,
        Err(e) => return fail_all(partitions, &results, e),
    };
    for (&(p, why), w) in partitions.iter().zip(marks) {
        if w.stable < w.high {
            let e = RestoreError::Open { topic: t.state.clone(), partition: p, stable: w.stable, high: w.high };
            results.insert(p, Err(e));
        } else {
            live.push((p, why, w.low, w.high));
        }
    }

    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: watermarks");
    // 2. The tail of each, for its newest head.
    let tail_from: Vec<i64> = live.iter().map(|(_, _, low, end)| (end - TAIL).max(*low)).collect();
    let ranges: Vec<Range> = live
        .iter()
        .zip(&tail_from)
        .map(|((p, ..), from)| Range { topic: t.state.clone(), partition: *p, from: *from })
        .collect();
    let tails = match read_all(reader, &ranges) {
        Ok(r) => r,
        Err(e) => return fail_all(partitions, &results, e),
    };
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: tails read");
    // Changelog bytes read per partition (keys and values), for the log.
    let mut bytes: HashMap<i32, u64> = HashMap::new();
    for ((p, ..), records) in live.iter().zip(&tails) {
        *bytes.entry(*p).or_default() += size(records);
    }

    // 3. From each head's base (the whole partition where no head is in
    // the tail, or the chain from the base does not hold), then resolved.
    let mut resolved = Vec::new();
    let mut full = Vec::new();
    for (i, (p, why, low, end)) in live.iter().enumerate() {
        match checkpoint::newest_head(&tails[i]) {
            Some((base, _)) if base >= tail_from[i] => {
                let records: Vec<Read> = tails[i].iter().filter(|r| r.offset >= base).cloned().collect();
                resolved.push((*p, *why, *low, *end, records));
            }
            Some((base, _)) => full.push((*p, *why, *low, *end, base.max(*low))),
            None if *end <= *low => resolved.push((*p, *why, *low, *end, Vec::new())),
            None => full.push((*p, *why, *low, *end, *low)),
        }
    }
    if !full.is_empty() {
        let ranges: Vec<Range> = full
            .iter()
            .map(|(p, _, _, _, from)| Range { topic: t.state.clone(), partition: *p, from: *from })
            .collect();
        match read_all(reader, &ranges) {
            Ok(reads) => {
                for ((p, why, low, end, _), records) in full.into_iter().zip(reads) {
                    *bytes.entry(p).or_default() += size(&records);
                    resolved.push((p, why, low, end, records));
                }
            }
            Err(e) => return fail_all(partitions, &results, e),
        }
    }
    let mut chains = Vec::new();
    let mut retry_whole = Vec::new();
    // Resolving (decoding and applying the operations) is the CPU of a
    // restore: the partitions go in parallel.
    let outcomes: Vec<_> = {
        use rayon::prelude::*;
        resolved
            .into_par_iter()
            .map(|(p, why, low, end, records)| {
                let r = checkpoint::resolve(&records, partition_count, end);
                let first = records.first().map(|r| r.offset);
                (p, why, low, end, first, r)
            })
            .collect()
    };
    for (p, why, low, end, first, r) in outcomes {
        match r {
            Ok(r) => chains.push((p, why, r)),
            // The base a head named may rest on records since compacted
            // away (a zombie's head, say): read the whole partition once.
            Err(ChainError::Gap { .. } | ChainError::Lost { .. }) if first.is_some_and(|f| f > low) => {
                retry_whole.push((p, why, low, end));
            }
            Err(error) => {
                results.insert(p, Err(RestoreError::Chain { topic: t.state.clone(), partition: p, error }));
            }
        }
    }
    if !retry_whole.is_empty() {
        let ranges: Vec<Range> = retry_whole
            .iter()
            .map(|(p, _, low, _)| Range { topic: t.state.clone(), partition: *p, from: *low })
            .collect();
        match read_all(reader, &ranges) {
            Ok(reads) => {
                for ((p, why, _, end), records) in retry_whole.into_iter().zip(reads) {
                    *bytes.entry(p).or_default() += size(&records);
                    match checkpoint::resolve(&records, partition_count, end) {
                        Ok(r) => chains.push((p, why, r)),
                        Err(error) => {
                            let e = RestoreError::Chain { topic: t.state.clone(), partition: p, error };
                            results.insert(p, Err(e));
                        }
                    }
                }
            }
            Err(e) => return fail_all(partitions, &results, e),
        }
    }

    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: chains resolved");
    // 4. Outputs already written past each checkpoint.
    let outputs = [&t.delist_commands, &t.work_orders, &t.dlq];
    let mut ranges = Vec::new();
    for (p, _, r) in &chains {
        let pos = r.chain.positions;
        for (topic, from) in outputs.iter().zip([pos.delist_commands, pos.work_orders, pos.dlq]) {
            ranges.push(Range { topic: topic.to_string(), partition: *p, from });
        }
    }
    let mut written: Vec<HashSet<String>> = vec![HashSet::new(); chains.len()];
    match reader.read(&ranges) {
        Ok(reads) => {
            for (i, records) in reads.iter().enumerate() {
                written[i / outputs.len()].extend(records.iter().filter_map(stored_output_id));
            }
        }
        Err(e) => return fail_all(partitions, &results, e),
    }

    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: outputs read back");
    let names: [Arc<str>; 2] = [t.complaints.as_str().into(), t.work_order_updates.as_str().into()];
    for ((p, why, r), suppress) in chains.into_iter().zip(written) {
        let (era, generation) = match why {
            // A newer generation on the chain than the group's own means
            // the group was reset (generations start again at 1); the same
            // generation, that a static member came back and was given its
            // partitions again with no rebalance while its predecessor may
            // still write (fenced on Apache Kafka, not on the MockCluster).
            // Either way a new era keeps this member's checkpoints the
            // newest, so a restore never mixes the two writers' chains.
            Why::Assigned { generation } if generation <= r.stamp.generation => (r.stamp.era + 1, generation),
            Why::Assigned { generation } => (r.stamp.era, generation),
            Why::Recovery { era, generation } => (era, generation),
        };
        let already_written = suppress.len();
        tracing::info!(
            partition = p,
            seq = r.chain.seq,
            changelog_records = r.records_read,
            changelog_bytes = bytes.get(&p).copied().unwrap_or(0),
            already_written,
            subjects = r.state.subjects.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition restored"
        );
        let records_read = r.records_read;
        let task = Task::new(
            p,
            settings.engine.clone(),
            r.state,
            r.chain,
            (era, generation),
            suppress,
            names.clone(),
            limits.clone(),
        );
        results.insert(p, Ok(Restored { task, records_read, already_written }));
    }
    let mut out: Vec<(i32, Result<Restored, RestoreError>)> = results.into_iter().collect();
    out.sort_by_key(|(p, _)| *p);
    out
}

/// The partition count the state topic's newest records were written
/// with (`None`: nothing written yet). Asked at start-up: partitions added
/// in place while andon was stopped leave the old partitions' chains
/// refusing to restore ([`ChainError::Partitions`]), but the new ones
/// empty, and a member that owned only new ones would process them.
pub fn written_partition_count(reader: &dyn LogReader, state: &str, partitions: u32) -> Result<Option<u32>, IoError> {
    let numbers: Vec<i32> = (0..partitions as i32).collect();
    let marks = reader.watermarks(state, &numbers)?;
    // The first partition with records: its tail holds a frame (heads are
    // written last and are small).
    let Some((p, w)) = numbers.iter().zip(&marks).find(|(_, w)| w.high > w.low) else {
        return Ok(None);
    };
    let range = Range { topic: state.to_owned(), partition: *p, from: (w.high - TAIL).max(w.low) };
    let tail = reader.read(&[range])?;
    Ok(tail
        .iter()
        .flatten()
        .rev()
        .find_map(|r| checkpoint::decode_value(r.value.as_deref()?).ok())
        .map(|(frame, _)| frame.partitions))
}

fn read_all(reader: &dyn LogReader, ranges: &[Range]) -> Result<Vec<Vec<Read>>, IoError> {
    Ok(reader
        .read(ranges)?
        .into_iter()
        .map(|records| records.into_iter().map(|r| Read { offset: r.offset, key: r.key, value: r.value }).collect())
        .collect())
}

/// Bytes of keys and values in `records`.
fn size(records: &[Read]) -> u64 {
    records.iter().map(|r| (r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len)) as u64).sum()
}

fn fail_all(
    partitions: &[(i32, Why)],
    done: &HashMap<i32, Result<Restored, RestoreError>>,
    e: IoError,
) -> Vec<(i32, Result<Restored, RestoreError>)> {
    partitions
        .iter()
        .map(|(p, _)| {
            let r = match done.get(p) {
                Some(Err(prev)) => prev.clone(),
                _ => RestoreError::Io(e.clone()),
            };
            (*p, Err(r))
        })
        .collect()
}

/// The id of an output record as it stands in its topic: `command_id`,
/// `andon_id|type|step`, or the DLQ record's source coordinates. The same
/// ids as [`crate::event::Output::id`] and [`dlq_id`].
pub fn stored_output_id(rec: &Record) -> Option<String> {
    let get = |name: &str| rec.header(name).map(String::from_utf8_lossy);
    if let (Some(t), Some(p), Some(o)) =
        (get("andon.source.topic"), get("andon.source.partition"), get("andon.source.offset"))
    {
        return Some(dlq_id(&t, &p, &o));
    }
    #[derive(serde::Deserialize)]
    struct Ids {
        command_id: Option<String>,
        andon_id: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        step: Option<u32>,
    }
    let ids: Ids = serde_json::from_slice(rec.value.as_deref()?).ok()?;
    if let Some(c) = ids.command_id {
        return Some(c);
    }
    let (a, k) = (ids.andon_id?, ids.kind?);
    Some(format!("{a}|{k}|{}", ids.step.unwrap_or(0)))
}
