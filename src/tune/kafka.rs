//! The history read from Kafka (`andon tune --kafka`): the configured
//! complaints and updates topics between two times, read `read_committed`
//! by a consumer assigned every partition by hand
//! ([`client::history_reader`]): it joins no group and commits nothing, so
//! the running members notice nothing.
//!
//! **Which records.** Exactly those whose timestamp lies in [`since`,
//! `until`), wherever they are in the log. Per partition the read starts at
//! the first offset whose timestamp is at or after `since` (the broker's
//! time index: `ListOffsets` by time, as kcat's `-o s@T` does; every record
//! before it is older) and ends at the end there was when the read began
//! (the high watermark then; under `read_committed` the read also stops at
//! the last stable offset), and every record is checked against the span.
//! The end is not looked up by `until` the same way: the first record at
//! or after `until` is not the last one before it (a backfill, a producer
//! setting old timestamps), as Apache Kafka showed this module's test. A
//! partition whose time index answers "no record that late" is read from
//! its start and filtered: librdkafka's MockCluster (`andon demo`, `andon
//! dev-cluster`) answers every lookup by time that way, and a real broker
//! only for a partition idle since `since`, which costs a read of it and
//! changes nothing.
//!
//! **In which order.** A record is decoded and checked as `andon run`
//! does (decoder, `max_future_skew` from its timestamp, key = subject
//! key): what `run` would have sent to the DLQ is counted by reason, the
//! first 100 named in the log with topic, partition and offset, and takes
//! no part. The partitions of one topic are then merged by event time,
//! each in its own order (rule 0 of docs/semantics.md across partitions:
//! `run` merges two inputs of one partition that way), ties to the lower
//! partition; the result is what [`History`] holds for a file.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::engine::{check_record, RecordMeta};
use crate::event::{decode_complaint, decode_update, Reject, RejectReason};
use crate::kafka::client;
use crate::replay::count_rejected;
use crate::time::{Dur, Ts};
use crate::tune::History;

/// How long a read may go without a record or an end of partition before
/// it gives up, naming what it waits for (a broker down, a topic whose
/// leader is gone).
const STALL: Duration = Duration::from_secs(60);
/// Metadata, watermark and time lookups.
const LOOKUP: Duration = Duration::from_secs(30);

/// The span of history: records whose timestamp is in [`since`, `until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// `None`: from the start of each partition.
    pub since: Option<Ts>,
    pub until: Ts,
}

/// Why the history could not be read (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{topic}: {message}")]
    Topic { topic: String, message: String },
    #[error(
        "{topic}: nothing read for {secs} s, partitions {partitions:?} not at their end (is the broker reachable?)"
    )]
    Stalled { topic: String, secs: u64, partitions: Vec<i32> },
    #[error("the Kafka client: {0}")]
    Client(KafkaError),
}

// Not `#[from]`, which would make the error its source too: printed with
// its chain, librdkafka's message would show twice.
impl From<KafkaError> for ReadError {
    fn from(e: KafkaError) -> Self {
        ReadError::Client(e)
    }
}

impl Span {
    /// Whether a record of timestamp `t` is in the span (one without a
    /// timestamp cannot be placed, and is kept).
    fn holds(&self, t: Option<Ts>) -> bool {
        t.is_none_or(|t| self.since.is_none_or(|s| t >= s) && t < self.until)
    }
}

/// `--since` / `--until`: an RFC 3339 instant, or a duration before `now`
/// (`90d`, `12h`). The message names neither flag (the caller does).
pub fn parse_time(s: &str, now: Ts) -> Result<Ts, String> {
    let s = s.trim();
    if let Ok(ts) = crate::event::parse_timestamp("time", s) {
        return Ok(ts);
    }
    match humantime::parse_duration(s).ok().and_then(Dur::from_std) {
        Some(d) => Ok(now - d),
        None => Err(format!("{s:?} is neither a time like 2026-09-01T00:00:00Z nor a duration before now like 90d")),
    }
}

/// Where each partition's read begins and ends.
#[derive(Debug, Clone, Copy)]
struct Range {
    partition: i32,
    start: i64,
    /// Exclusive.
    end: i64,
}

/// Reads both input topics of `settings` over `span`. `progress` hears
/// (records read, records to read) as the read goes; the second is known
/// once both topics' ranges are.
pub fn read(settings: &Settings, span: Span, progress: &dyn Fn(u64, u64)) -> Result<History, ReadError> {
    let topics = &settings.topics;
    // A reader per topic, for its ranges and then its records (one reader
    // for both would hear the first topic's ends of partition while it
    // reads the second: they name the partition alone).
    let (complaints_reader, updates_reader) = (consumer(settings)?, consumer(settings)?);
    let complaints = ranges(&complaints_reader, &topics.complaints, span)?;
    let updates = ranges(&updates_reader, &topics.work_order_updates, span)?;
    let total: u64 = complaints.iter().chain(&updates).map(|r| (r.end - r.start) as u64).sum();
    let mut h = History::default();
    let mut read = Read { span, done: 0, total, progress: &progress, rejected: &mut h.rejected };
    let (skew, max_bytes) = (settings.processing.max_future_skew, settings.processing.max_event_bytes);
    (h.complaints, h.complaints_read) = read.input(
        &complaints_reader,
        &topics.complaints,
        &complaints,
        |r| {
            let c = decode_complaint(r.value, max_bytes)?;
            check_record(skew, "occurred_at", c.occurred_at, &c.subject_key, r.meta)?;
            Ok(c)
        },
        |c| c.occurred_at,
    )?;
    (h.updates, h.updates_read) = read.input(
        &updates_reader,
        &topics.work_order_updates,
        &updates,
        |r| {
            let u = decode_update(r.value, max_bytes)?;
            check_record(skew, "at", u.at, u.subject_key(), r.meta)?;
            Ok(u)
        },
        |u| u.at,
    )?;
    progress(total, total);
    Ok(h)
}

/// The read of both inputs, one after the other.
struct Read<'a> {
    span: Span,
    /// Records polled (in the span or not), of `total` offsets in the ranges.
    done: u64,
    total: u64,
    progress: &'a dyn Fn(u64, u64),
    rejected: &'a mut BTreeMap<RejectReason, u64>,
}

impl Read<'_> {
    /// One input's records in the span: each decoded and checked by
    /// `decode` (rejected ones counted), the partitions merged by `time`;
    /// and how many were read.
    fn input<T>(
        &mut self,
        reader: &Reader,
        topic: &str,
        ranges: &[Range],
        decode: impl Fn(&Record<'_>) -> Result<T, Reject>,
        time: impl Fn(&T) -> Ts,
    ) -> Result<(Vec<T>, u64), ReadError> {
        let mut by_partition: BTreeMap<i32, Vec<T>> = BTreeMap::new();
        let mut read = 0u64;
        read_topic(reader, topic, ranges, &mut |p, r| {
            self.done += 1;
            if self.done % 4096 == 0 {
                (self.progress)(self.done, self.total);
            }
            if !self.span.holds(r.meta.timestamp) {
                return;
            }
            read += 1;
            match decode(&r) {
                Ok(x) => by_partition.entry(p).or_default().push(x),
                Err(reject) => {
                    if count_rejected(self.rejected, &reject, "records") {
                        tracing::warn!(topic, partition = p, offset = r.offset, reason = reject.reason.as_str(), message = %reject.message, "rejected input record");
                    }
                }
            }
        })?;
        Ok((merge_by_time(by_partition, time), read))
    }
}

/// One record as the decoders see it.
struct Record<'a> {
    offset: i64,
    value: &'a [u8],
    meta: RecordMeta<'a>,
}

type Reader = BaseConsumer<client::Quiet>;

fn consumer(settings: &Settings) -> Result<Reader, ReadError> {
    Ok(client::history_reader(settings).create_with_context(client::Quiet)?)
}

/// Each partition's [`Range`] of `topic` for `span`; empty ones left out.
fn ranges(c: &Reader, topic: &str, span: Span) -> Result<Vec<Range>, ReadError> {
    let named = |message: String| ReadError::Topic { topic: topic.to_owned(), message };
    let md = c.fetch_metadata(Some(topic), LOOKUP)?;
    let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| named("not in the metadata".into()))?;
    if let Some(e) = t.error() {
        return Err(named(rdkafka::types::RDKafkaErrorCode::from(e).to_string()));
    }
    let partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        return Err(named("the topic does not exist".into()));
    }
    let mut ends = BTreeMap::new();
    for &p in &partitions {
        ends.insert(p, c.fetch_watermarks(topic, p, LOOKUP)?);
    }
    let first_at = |at: Ts| -> Result<BTreeMap<i32, Option<i64>>, ReadError> {
        let mut tpl = TopicPartitionList::new();
        let millis = at.as_nanos().div_euclid(1_000_000);
        for &p in &partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(millis))?;
        }
        let found = c.offsets_for_times(tpl, LOOKUP)?;
        let mut out = BTreeMap::new();
        for e in found.elements() {
            if let Err(err) = e.error() {
                return Err(named(format!("partition {}: looking up offsets by time: {err}", e.partition())));
            }
            out.insert(e.partition(), if let Offset::Offset(o) = e.offset() { Some(o) } else { None });
        }
        Ok(out)
    };
    let starts = match span.since {
        Some(since) => first_at(since)?,
        None => BTreeMap::new(),
    };
    let mut out = Vec::new();
    for &p in &partitions {
        let (low, end) = ends[&p];
        // "No record that late" (None) is read from the start and filtered:
        // the module docs say why.
        let start = starts.get(&p).copied().flatten().unwrap_or(low).max(low);
        if start < end {
            out.push(Range { partition: p, start, end });
        }
    }
    Ok(out)
}

/// Reads every range of `topic` to its end, handing each record to `each`
/// with its partition.
fn read_topic(
    c: &Reader,
    topic: &str,
    ranges: &[Range],
    each: &mut dyn FnMut(i32, Record<'_>),
) -> Result<(), ReadError> {
    if ranges.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for r in ranges {
        tpl.add_partition_offset(topic, r.partition, Offset::Offset(r.start))?;
    }
    c.assign(&tpl)?;
    let mut open: BTreeMap<i32, i64> = ranges.iter().map(|r| (r.partition, r.end)).collect();
    let mut last_progress = Instant::now();
    while !open.is_empty() {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let p = m.partition();
                let Some(&end) = open.get(&p) else { continue };
                if m.offset() >= end {
                    open.remove(&p);
                    continue;
                }
                let meta = RecordMeta { key: m.key(), timestamp: m.timestamp().to_millis().map(Ts::from_millis) };
                each(p, Record { offset: m.offset(), value: m.payload().unwrap_or_default(), meta });
                if m.offset() + 1 >= end {
                    open.remove(&p);
                }
            }
            // Under read_committed the end of what can be read (the last
            // stable offset); aborted records and markers have no message.
            Some(Err(KafkaError::PartitionEOF(p))) => {
                last_progress = Instant::now();
                open.remove(&p);
            }
            Some(Err(e)) => {
                // Transient (a broker restarting): librdkafka retries; a
                // read that never resumes ends at STALL.
                tracing::warn!(topic, error = %e, "reading history");
            }
            None => {}
        }
        if last_progress.elapsed() >= STALL {
            return Err(ReadError::Stalled {
                topic: topic.to_owned(),
                secs: STALL.as_secs(),
                partitions: open.keys().copied().collect(),
            });
        }
    }
    Ok(())
}

/// The partitions' records as one sequence by event time, each partition
/// in its own order (a k-way merge of their heads), ties to the lower
/// partition.
fn merge_by_time<T>(by_partition: BTreeMap<i32, Vec<T>>, time: impl Fn(&T) -> Ts) -> Vec<T> {
    let total = by_partition.values().map(Vec::len).sum();
    let mut queues: Vec<std::vec::IntoIter<T>> = Vec::new();
    let mut heads: Vec<Option<T>> = Vec::new();
    let mut heap = BinaryHeap::new();
    for (i, records) in by_partition.into_values().enumerate() {
        let mut q = records.into_iter();
        let head = q.next();
        if let Some(h) = &head {
            heap.push(Reverse((time(h), i)));
        }
        queues.push(q);
        heads.push(head);
    }
    let mut out = Vec::with_capacity(total);
    while let Some(Reverse((_, i))) = heap.pop() {
        if let Some(record) = heads[i].take() {
            out.push(record);
        }
        heads[i] = queues[i].next();
        if let Some(h) = &heads[i] {
            heap.push(Reverse((time(h), i)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_merge_by_event_time_each_in_its_own_order() {
        let by_partition = BTreeMap::from([
            (0, vec![(Ts::from_millis(5), "a"), (Ts::from_millis(1), "b"), (Ts::from_millis(9), "c")]),
            (1, vec![(Ts::from_millis(3), "d"), (Ts::from_millis(5), "e")]),
            (2, vec![]),
        ]);
        let merged: Vec<&str> = merge_by_time(by_partition, |r| r.0).into_iter().map(|r| r.1).collect();
        // "b" is late within partition 0 and stays behind "a"; the tie at 5
        // goes to partition 0.
        assert_eq!(merged, ["d", "a", "b", "e", "c"]);
    }

    #[test]
    fn times_are_instants_or_durations_before_now() {
        let now = Ts::from_millis(100 * 86_400_000);
        assert_eq!(parse_time("90d", now), Ok(Ts::from_millis(10 * 86_400_000)));
        assert_eq!(parse_time("1970-01-02T00:00:00Z", now), Ok(Ts::from_millis(86_400_000)));
        let err = parse_time("yesterday", now).expect_err("not a time");
        assert!(err.contains("\"yesterday\""), "{err}");
    }
}
