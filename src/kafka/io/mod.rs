//! The seam between andon's Kafka logic and Kafka itself: what a batch
//! writes ([`BatchSink`]: produce, flush, commit or abort a batch) and what
//! a restore reads ([`LogReader`]: watermarks, and partitions read from an
//! offset to their end). [`rdkafka`] implements them with librdkafka;
//! [`memory`] in memory, with faults to inject, so that recovery, error
//! classification, chain validation and output suppression are tested in
//! milliseconds (the MockCluster tests stay the end-to-end proof).
//!
//! The consumer group (assignments, input records) is not behind the seam:
//! it is librdkafka's protocol, driven only by the processing loop.

pub mod memory;
pub mod rdkafka;

use std::collections::BTreeMap;

use super::errors::FailureKind;

/// A record to write.
#[derive(Debug, Clone, Copy)]
pub struct Out<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl Out<'_> {
    /// Bytes the record takes against `message.max.bytes` (key, value,
    /// headers and the record's own overhead, roughly as librdkafka counts).
    pub fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len) + headers + RECORD_OVERHEAD
    }
}

/// A record's framing in a batch, at most (varints, timestamps, lengths).
pub const RECORD_OVERHEAD: usize = 64;

/// An I/O failure, classified, naming what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct IoError {
    pub kind: FailureKind,
    pub what: String,
    pub message: String,
}

impl IoError {
    pub fn new(kind: FailureKind, what: impl Into<String>, message: impl ToString) -> Self {
        Self { kind, what: what.into(), message: message.to_string() }
    }
}

/// Per (topic, partition) written since the last flush: the first offset
/// acknowledged and one past the last.
pub type Acks = BTreeMap<(String, i32), (i64, i64)>;

/// Writes a batch: in a transaction with `exactly_once`, without with
/// `at_least_once`. One batch at a time: `begin`, `send`s and `flush`es,
/// then `commit` or `abort`.
pub trait BatchSink: Send {
    fn begin(&mut self) -> Result<(), IoError>;
    /// Queues a record (it may reach its partition from now on).
    fn send(&mut self, r: &Out<'_>) -> Result<(), IoError>;
    /// Waits until every record sent is acknowledged, or the first failed.
    fn flush(&mut self) -> Result<Acks, IoError>;
    /// Ends the batch, with the input positions (partition, next
    /// complaints offset, next updates offset) for the consumer group.
    fn commit(&mut self, positions: &[(i32, i64, i64)]) -> Result<(), IoError>;
    /// Abandons the batch. Returns only once no record sent can still
    /// reach its partition (what was in flight is settled, what was queued
    /// is purged), so that reading the outputs back afterwards sees all
    /// that will ever be there.
    fn abort(&mut self) -> Result<(), IoError>;
}

/// A partition's offsets. `stable` is the last stable offset (records of
/// transactions still open lie beyond it); brokers without transactions,
/// and the MockCluster, report it equal to `high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watermarks {
    pub low: i64,
    pub high: i64,
    pub stable: i64,
}

/// A record read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }
}

/// A partition to read, from an offset to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub topic: String,
    pub partition: i32,
    pub from: i64,
}

/// Reads partitions outside the consumer group, as a read_committed
/// consumer sees them.
pub trait LogReader: Send + Sync {
    /// The watermarks of several partitions of one topic (asked together:
    /// one request per broker, not one per partition).
    fn watermarks(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Watermarks>, IoError>;
    /// Reads every range from `from` to the end of its partition as the
    /// broker reports it now, all ranges at once: the records of each
    /// range, in offset order.
    fn read(&self, ranges: &[Range]) -> Result<Vec<Vec<Record>>, IoError>;
}
