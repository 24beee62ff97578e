//! The `andon.state` changelog: its record format and the rules of its
//! chains. Pure: no I/O; `restore` reads, `batch` writes.
//!
//! Partition p of the state topic belongs to input partition p. After each
//! batch whose outputs were acknowledged, the partition's writer appends:
//!
//! - a **checkpoint** `seq` (the engine's changes in the batch as
//!   [`crate::engine::changes`] operations, and the positions after it), or
//!   now and then instead a **snapshot** `seq` (the whole state as
//!   operations), followed by tombstones for what the snapshot makes
//!   redundant (the previous snapshot, the checkpoints since);
//! - a small **head** record: the newest `seq`, and an offset at or before
//!   which the chain's snapshot starts, so that a restore reads the tail of
//!   the partition, then from there on, not the whole partition.
//!
//! Every record carries a [`Frame`]: its kind, `seq`, part number (a body
//! is split into parts of at most [`MAX_RECORD_BYTES`]), the writer's
//! [`Stamp`] (the consumer-group generation in which the writer was
//! assigned the partition, and an era that moves when the group was
//! reset or a static member got its partitions back in the same
//! generation), the attempt (a retried batch's parts never mix
//! with a failed attempt's), the **link** (the stamp and attempt of the
//! unit at `seq - 1` it continues), the positions, and the partition count.
//!
//! A restore ([`resolve`]) is exact or fails: the chain is followed back
//! from the newest unit of the newest writer, link by link, to a snapshot,
//! or to `seq` 1 when no snapshot was ever written. A missing link, a
//! chain with no start, a record that does not decode, or a partition
//! count that changed is an error, never a partial state. A zombie (a
//! member that lost the partition without noticing, then wrote) has an
//! older stamp: what it wrote after the newer writer began is ignored.
//! The links make a restore follow one writer's lineage even where two
//! writers' stamps are equal (a broker that assigned one partition to two
//! members at once): the state is one writer's, never a mix of both.
//! Format 2 (before the links) is still read: its units are followed back,
//! as then, to the newest writer not newer than the successor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::changes::{self, Encoded};
use crate::engine::State;

/// Changelog records carry bodies of at most this size: well under
/// Kafka's (and the MockCluster's) default `message.max.bytes` of 1 MB.
pub const MAX_RECORD_BYTES: usize = 256 << 10;

/// Checkpoint bytes since the last snapshot after which a snapshot is
/// written instead of a checkpoint (or the snapshot's own size, whichever
/// is larger, so that snapshots cost at most as much as the checkpoints).
/// On the MockCluster, which keeps 5 MiB a partition and never compacts,
/// the latest snapshot and what follows it must fit in that.
pub const SNAPSHOT_AFTER_BYTES: usize = 1 << 20;

/// Checkpoints after which a snapshot is written whatever their size:
/// bounds the chain a restore applies.
pub const SNAPSHOT_AFTER_CHECKPOINTS: usize = 4096;

/// The format version this code writes. It reads this one and format 2
/// (the same frame without [`Frame::link`]).
pub const FORMAT: u8 = 3;

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

/// Who wrote a record: compared as (era, generation). The generation is
/// the consumer group's in which the writer was assigned the partition
/// (`Task::generation`); the era moves on when a member restoring a newly
/// assigned partition finds a generation in the chain as new as its own or
/// newer: the group was deleted and started again from 1, or a static
/// member was given its partitions again with no new generation while its
/// predecessor may still write (`restore.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub era: u32,
    pub generation: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Checkpoint,
    Snapshot,
    Head,
}

/// The header of every changelog value; the body (changelog operations)
/// follows it in the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub format: u8,
    pub kind: Kind,
    pub seq: u64,
    pub stamp: Stamp,
    pub attempt: u64,
    pub part: u32,
    pub parts: u32,
    pub positions: Positions,
    /// Partition count of andon's topics when written.
    pub partitions: u32,
    /// Heads: an offset at or before the first record of the chain's base
    /// (its snapshot, or its first checkpoint).
    pub base: i64,
    /// Checkpoints and snapshots: the unit at `seq - 1` this one continues
    /// (none at `seq` 1, and in format 2).
    pub link: Option<Link>,
}

/// Names one unit of a chain: its writer's stamp and its attempt (unique
/// per batch try: the wall clock when written, plus a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    pub stamp: Stamp,
    pub attempt: u64,
}

/// Format 2's frame: [`Frame`] without its link.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct FrameV2 {
    format: u8,
    kind: Kind,
    seq: u64,
    stamp: Stamp,
    attempt: u64,
    part: u32,
    parts: u32,
    positions: Positions,
    partitions: u32,
    base: i64,
}

impl From<FrameV2> for Frame {
    fn from(f: FrameV2) -> Self {
        let FrameV2 { format, kind, seq, stamp, attempt, part, parts, positions, partitions, base } = f;
        Frame { format, kind, seq, stamp, attempt, part, parts, positions, partitions, base, link: None }
    }
}

/// A record for the state partition (`value: None` is a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

fn unit_key(kind: Kind, seq: u64, stamp: Stamp, part: u32) -> String {
    let name = match kind {
        Kind::Checkpoint => "checkpoint",
        Kind::Snapshot => "snapshot",
        Kind::Head => "head",
    };
    format!("{name}/{seq:020}/{:010}/{:010}/{part:05}", stamp.era, stamp.generation)
}

fn head_key(stamp: Stamp) -> String {
    format!("head/{:010}/{:010}", stamp.era, stamp.generation)
}

/// A record that is not a changelog record of this format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Undecodable(String);

/// Splits a changelog value into its frame and body.
pub fn decode_value(value: &[u8]) -> Result<(Frame, &[u8]), Undecodable> {
    if value.first() == Some(&b'{') {
        return Err(Undecodable(
            "a JSON changelog record of andon before 0.2: this partition's chain must be rebuilt (docs/guarantees.md, \"Rebuilding a partition's state\")".into(),
        ));
    }
    // The format is the frame's first byte (postcard writes a u8 as is).
    let (frame, body) = match value.first() {
        Some(&FORMAT) => postcard::take_from_bytes::<Frame>(value),
        Some(2) => postcard::take_from_bytes::<FrameV2>(value).map(|(f, body)| (Frame::from(f), body)),
        Some(other) => return Err(Undecodable(format!("format {other} (this andon reads formats 2 and {FORMAT})"))),
        None => return Err(Undecodable("an empty value".into())),
    }
    .map_err(|e| Undecodable(format!("no valid frame: {e}")))?;
    if frame.parts == 0 || frame.part >= frame.parts {
        return Err(Undecodable(format!("part {} of {}", frame.part, frame.parts)));
    }
    Ok((frame, body))
}

fn encode_value(frame: &Frame, body: &[u8]) -> Vec<u8> {
    // Serialising a frame into a Vec cannot fail (see changes::encode).
    let mut v = postcard::to_allocvec(frame).unwrap_or_default();
    v.extend_from_slice(body);
    v
}

/// A partition's chain as its writer tracks it between batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The last `seq` written (0: nothing yet).
    pub seq: u64,
    pub positions: Positions,
    /// An offset at or before the chain's base (see [`Frame::base`]).
    pub base: i64,
    /// End offset of the state partition after the last write.
    pub state_end: i64,
    /// The base snapshot: (seq, stamp, parts).
    pub snapshot: Option<(u64, Stamp, u32)>,
    pub snapshot_bytes: usize,
    /// Checkpoints since the snapshot: (seq, stamp, parts).
    pub since_snapshot: Vec<(u64, Stamp, u32)>,
    pub bytes_since_snapshot: usize,
    /// Keys of complete units a restore found off the chain (a zombie's,
    /// a failed attempt's): tombstoned with the next snapshot.
    pub orphans: Vec<String>,
    /// The unit at `seq`, which the next one links to.
    pub last: Option<Link>,
}

/// What one batch writes to a partition's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub records: Vec<StateRecord>,
    pub kind: Kind,
    pub seq: u64,
    pub parts: u32,
    pub bytes: usize,
    /// The unit written, for the next one's link.
    pub unit: Link,
}

/// Who writes, and how, for [`Chain::write`].
#[derive(Debug, Clone, Copy)]
pub struct Writing {
    pub stamp: Stamp,
    pub attempt: u64,
    pub partitions: u32,
}

impl Chain {
    /// Whether the next write should be a snapshot (`after_bytes`: usually
    /// [`SNAPSHOT_AFTER_BYTES`]). Partitions under the same load would all
    /// cross the limit in the same batch (a 10 MB batch in a benchmark, and
    /// a latency spike): each partition's limit is moved by up to a half,
    /// by its number.
    pub fn snapshot_due(&self, after_bytes: usize, partition: i32) -> bool {
        let spread = after_bytes / 16 * (partition.rem_euclid(8) as usize);
        self.bytes_since_snapshot > (after_bytes + spread).max(self.snapshot_bytes)
            || self.since_snapshot.len() >= SNAPSHOT_AFTER_CHECKPOINTS
    }

    /// The records of the next checkpoint (`body`: the batch's changes) or
    /// snapshot (`body`: the whole state), then tombstones, then the head.
    pub fn write(&self, w: Writing, kind: Kind, positions: Positions, body: &Encoded) -> Written {
        let seq = self.seq + 1;
        let room = MAX_RECORD_BYTES - 128; // the frame's own bytes
                                           // Splitting whole operations cannot fail on operations the engine
                                           // encoded; should it, the body goes as one part and the broker says.
        let runs = body.runs(room).unwrap_or_else(|_| vec![&body.bytes]);
        let parts = runs.len() as u32;
        let mut records = Vec::with_capacity(runs.len() + 1);
        let mut bytes = 0;
        for (i, run) in runs.iter().enumerate() {
            let frame = Frame {
                format: FORMAT,
                kind,
                seq,
                stamp: w.stamp,
                attempt: w.attempt,
                part: i as u32,
                parts,
                positions,
                partitions: w.partitions,
                base: -1,
                link: self.last,
            };
            let value = encode_value(&frame, run);
            bytes += value.len();
            records.push(StateRecord { key: unit_key(kind, seq, w.stamp, i as u32), value: Some(value) });
        }
        let mut base = self.base;
        if kind == Kind::Snapshot {
            // Everything the new snapshot makes redundant; written after
            // it, so a batch cut short leaves the old chain whole.
            let tomb = |key| StateRecord { key, value: None };
            if let Some((s, stamp, n)) = self.snapshot {
                records.extend((0..n).map(|p| tomb(unit_key(Kind::Snapshot, s, stamp, p))));
            }
            for (s, stamp, n) in &self.since_snapshot {
                records.extend((0..*n).map(|p| tomb(unit_key(Kind::Checkpoint, *s, *stamp, p))));
            }
            records.extend(self.orphans.iter().cloned().map(tomb));
            base = self.state_end;
        } else if self.seq == 0 {
            // The first checkpoint of a chain: its base is where it starts.
            base = self.state_end;
        }
        let head = Frame {
            format: FORMAT,
            kind: Kind::Head,
            seq,
            stamp: w.stamp,
            attempt: w.attempt,
            part: 0,
            parts: 1,
            positions,
            partitions: w.partitions,
            base,
            link: None,
        };
        records.push(StateRecord { key: head_key(w.stamp), value: Some(encode_value(&head, &[])) });
        Written { records, kind, seq, parts, bytes, unit: Link { stamp: w.stamp, attempt: w.attempt } }
    }

    /// The chain after `written` was acknowledged; `state_end` is the
    /// state partition's end offset after it.
    pub fn advance(&mut self, written: &Written, stamp: Stamp, positions: Positions, state_end: i64) {
        let before = self.state_end;
        match written.kind {
            Kind::Snapshot => {
                self.snapshot = Some((written.seq, stamp, written.parts));
                self.snapshot_bytes = written.bytes;
                self.since_snapshot.clear();
                self.bytes_since_snapshot = 0;
                self.orphans.clear();
                self.base = before;
            }
            _ => {
                if self.seq == 0 {
                    self.base = before;
                }
                self.since_snapshot.push((written.seq, stamp, written.parts));
                self.bytes_since_snapshot += written.bytes;
            }
        }
        self.seq = written.seq;
        self.last = Some(written.unit);
        self.positions = positions;
        self.state_end = state_end;
    }
}

/// A record as read from the state partition.
#[derive(Debug, Clone)]
pub struct Read {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Why a chain cannot be restored. Each is loud: the partition is not
/// processed until an operator acts or a retry finds it whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("offset {offset}: record does not decode: {why}")]
    Corrupt { offset: i64, why: String },
    #[error("checkpoint {missing} is missing: the chain from {from} back does not reach a snapshot or checkpoint 1")]
    Gap { missing: u64, from: u64 },
    #[error("the newest head says the chain reaches seq {seq}, but that checkpoint or snapshot is not complete")]
    Lost { seq: u64 },
    #[error("written when andon's topics had {written} partitions, now {now}: keys would have moved (docs/guarantees.md, \"Migrating to a new partition count\")")]
    Partitions { written: u32, now: u32 },
}

/// One checkpoint or snapshot, all its parts read (its bodies borrowed
/// from the records read).
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub stamp: Stamp,
    pub attempt: u64,
    /// The unit it continues (none at seq 1 and in format 2).
    pub link: Option<Link>,
    pub positions: Positions,
    pub partitions: u32,
    pub parts: u32,
    /// Offset of the unit's last part: among equals, the later wins.
    pub last_offset: i64,
    pub bytes: usize,
    bodies: BTreeMap<u32, &'a [u8]>,
}

impl Unit<'_> {
    fn key(&self, part: u32) -> String {
        unit_key(self.kind, self.seq, self.stamp, part)
    }
}

/// What a chain restores to.
#[derive(Debug, Default)]
pub struct Resolved {
    pub state: State,
    /// The chain as its next writer continues it.
    pub chain: Chain,
    /// The newest writer on the chain.
    pub stamp: Stamp,
    pub records_read: usize,
}

/// The newest head among `records` (by stamp, then seq): the offset from
/// which a restore must read, and the seq it promises.
pub fn newest_head(records: &[Read]) -> Option<(i64, u64)> {
    records
        .iter()
        .filter_map(|r| decode_value(r.value.as_deref()?).ok().map(|(f, _)| f))
        .filter(|f| f.kind == Kind::Head)
        .max_by_key(|f| (f.stamp, f.seq))
        .map(|f| (f.base, f.seq))
}

/// Follows the chain in `records` (a state partition read in offset order
/// from an offset at or before its base) and rebuilds the state it ends
/// at. `partitions` is the partition count now; `end` the partition's end
/// offset as read (where the next write will land).
pub fn resolve(records: &[Read], partitions: u32, end: i64) -> Result<Resolved, ChainError> {
    // Assemble units; parts of an attempt that a later attempt replaced,
    // or never completed, are dropped.
    type Id = (Kind, u64, Stamp, u64);
    let mut open: BTreeMap<Id, Unit> = BTreeMap::new();
    let mut complete: Vec<Unit> = Vec::new();
    // The newest head: its units were written before it, so they must be here.
    let mut promised: Option<(Stamp, u64)> = None;
    for r in records {
        let Some(value) = r.value.as_deref() else { continue };
        let (frame, body) = decode_value(value).map_err(|e| ChainError::Corrupt { offset: r.offset, why: e.0 })?;
        if frame.kind == Kind::Head {
            promised = promised.max(Some((frame.stamp, frame.seq)));
            continue;
        }
        if frame.partitions != partitions {
            return Err(ChainError::Partitions { written: frame.partitions, now: partitions });
        }
        let id = (frame.kind, frame.seq, frame.stamp, frame.attempt);
        let unit = open.entry(id).or_insert_with(|| Unit {
            kind: frame.kind,
            seq: frame.seq,
            stamp: frame.stamp,
            attempt: frame.attempt,
            link: frame.link,
            positions: frame.positions,
            partitions: frame.partitions,
            parts: frame.parts,
            last_offset: r.offset,
            bytes: 0,
            bodies: BTreeMap::new(),
        });
        unit.bodies.insert(frame.part, body);
        unit.bytes += value.len();
        unit.last_offset = r.offset;
        if unit.bodies.len() as u32 == unit.parts {
            if let Some(u) = open.remove(&id) {
                complete.push(u);
            }
        }
    }
    // Every complete unit by what links to it (the latest, should the
    // same unit have been written twice).
    let mut linked: BTreeMap<(u64, Link), Unit> = BTreeMap::new();
    for u in complete {
        let at = (u.seq, Link { stamp: u.stamp, attempt: u.attempt });
        if linked.get(&at).is_none_or(|b| b.last_offset < u.last_offset) {
            linked.insert(at, u);
        }
    }
    let Some(head) = linked.values().max_by_key(|u| (u.stamp, u.seq, u.last_offset)).cloned() else {
        if let Some((_, seq)) = promised {
            return Err(ChainError::Lost { seq });
        }
        return Ok(Resolved {
            chain: Chain { state_end: end, base: end, ..Chain::default() },
            records_read: records.len(),
            ..Resolved::default()
        });
    };
    if let Some((stamp, seq)) = promised {
        if (stamp, seq) > (head.stamp, head.seq) {
            return Err(ChainError::Lost { seq });
        }
    }
    // Back from the head to a snapshot or to seq 1, each step taking the
    // unit its successor links to (format 2: the newest writer not newer
    // than the successor).
    let mut chain = vec![head];
    while chain.last().is_some_and(|u| u.kind == Kind::Checkpoint && u.seq > 1) {
        let next = chain.last().expect("non-empty");
        let (seq, stamp) = (next.seq - 1, next.stamp);
        let found = match next.link {
            Some(link) => linked.get(&(seq, link)).cloned(),
            // Among equals, the latest complete attempt.
            None => linked
                .range((seq, Link { stamp: Stamp { era: 0, generation: i32::MIN }, attempt: 0 })..)
                .take_while(|((s, _), _)| *s == seq)
                .map(|(_, u)| u)
                .filter(|u| u.stamp <= stamp)
                .max_by_key(|u| (u.stamp, u.last_offset))
                .cloned(),
        };
        match found {
            Some(u) => chain.push(u),
            None => return Err(ChainError::Gap { missing: seq, from: chain[0].seq }),
        }
    }
    chain.reverse();
    // Units off the chain, up to its head: their keys, but never a key a
    // unit on the chain was written under (a retry replaces its failed
    // attempt under the same keys).
    let on_chain: std::collections::HashSet<String> =
        chain.iter().flat_map(|u| (0..u.parts).map(|p| u.key(p))).collect();
    let head_seq = chain.last().map_or(0, |h| h.seq);
    let orphans: Vec<String> = linked
        .values()
        .filter(|u| u.seq <= head_seq)
        .flat_map(|u| (0..u.parts).map(|p| u.key(p)))
        .filter(|k| !on_chain.contains(k))
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();

    let mut state = State::default();
    for u in &chain {
        for body in u.bodies.values() {
            for op in changes::decode(body) {
                let op = op.map_err(|e| ChainError::Corrupt { offset: u.last_offset, why: e.to_string() })?;
                changes::apply(&mut state, op);
            }
        }
    }
    let last = chain.last().expect("non-empty");
    let first = &chain[0];
    let mut c = Chain {
        seq: last.seq,
        positions: last.positions,
        base: -1,
        state_end: end,
        snapshot: None,
        snapshot_bytes: 0,
        since_snapshot: Vec::new(),
        bytes_since_snapshot: 0,
        orphans,
        last: Some(Link { stamp: last.stamp, attempt: last.attempt }),
    };
    // The base offset only needs to be at or before the chain's first
    // record; the first record read is, whatever was read.
    c.base = records.first().map_or(end, |r| r.offset);
    if first.kind == Kind::Snapshot {
        c.snapshot = Some((first.seq, first.stamp, first.parts));
        c.snapshot_bytes = first.bytes;
    }
    for u in chain.iter().filter(|u| u.kind == Kind::Checkpoint) {
        c.since_snapshot.push((u.seq, u.stamp, u.parts));
        c.bytes_since_snapshot += u.bytes;
    }
    Ok(Resolved { state, stamp: last.stamp, chain: c, records_read: records.len() })
}

#[cfg(test)]
mod tests;
