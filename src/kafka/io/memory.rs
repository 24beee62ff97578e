//! The seam in memory: a broker of partitions in `Vec`s, with faults to
//! inject, for tests of recovery that run in milliseconds.
//!
//! It behaves like Kafka with transactions (aborted records hidden from
//! readers, records of open transactions beyond the last stable offset) or,
//! with [`Memory::like_mock_cluster`], like librdkafka's MockCluster (every
//! record visible, transactions only answered). Records sent wait "in
//! flight" until a flush lands them; an injected fault can fail a flush
//! after only some of them landed, as a broker going away does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Acks, BatchSink, IoError, LogReader, Out, Range, Record, Watermarks};
use crate::kafka::errors::FailureKind;

/// A fault for the next matching operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `send` refuses the record.
    Send(FailureKind),
    /// `flush` lands only the first `land` records in flight, then fails.
    Flush { kind: FailureKind, land: usize },
    /// `commit` fails; the transaction stays open.
    Commit(FailureKind),
    /// A read or watermark query fails.
    Read(FailureKind),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    txn: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    Open,
    Committed,
    Aborted,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per topic, per partition: (low watermark, records from it on).
    topics: HashMap<String, Vec<(i64, Vec<Stored>)>>,
    mock_cluster: bool,
    txns: HashMap<u64, TxnState>,
    next_txn: u64,
    faults: VecDeque<Fault>,
    committed: BTreeMap<i32, (i64, i64)>,
    max_message_bytes: usize,
}

/// The broker. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Memory(Arc<Mutex<Inner>>);

impl Memory {
    /// Topics with `partitions` partitions each, like Kafka.
    pub fn new(topics: &[&str], partitions: usize) -> Self {
        let inner = Inner {
            topics: topics.iter().map(|t| (t.to_string(), vec![(0, Vec::new()); partitions])).collect(),
            max_message_bytes: 1_000_000,
            ..Inner::default()
        };
        Memory(Arc::new(Mutex::new(inner)))
    }

    /// Every record visible to readers, as on librdkafka's MockCluster.
    pub fn like_mock_cluster(self) -> Self {
        self.lock().mock_cluster = true;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a fault; faults are used in the order queued.
    pub fn inject(&self, f: Fault) {
        self.lock().faults.push_back(f);
    }

    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    pub fn set_max_message_bytes(&self, n: usize) {
        self.lock().max_message_bytes = n;
    }

    /// Appends a record outside any transaction (an input producer).
    pub fn append(&self, topic: &str, partition: i32, key: Option<&[u8]>, value: Option<&[u8]>) -> i64 {
        let mut inner = self.lock();
        let (low, records) = &mut inner.topics.get_mut(topic).expect("topic")[partition as usize];
        records.push(Stored {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: vec![],
            txn: None,
        });
        *low + records.len() as i64 - 1
    }

    /// The records a read_committed consumer sees in a partition, with offsets.
    pub fn visible(&self, topic: &str, partition: i32) -> Vec<(i64, Stored)> {
        let inner = self.lock();
        let (low, records) = &inner.topics[topic][partition as usize];
        let stable = inner.stable(records);
        records
            .iter()
            .enumerate()
            .filter(|(i, r)| (*i as i64) < stable && inner.shows(r))
            .map(|(i, r)| (*low + i as i64, r.clone()))
            .collect()
    }

    /// Replaces the value of the record at `offset`.
    pub fn overwrite(&self, topic: &str, partition: i32, offset: i64, value: Option<Vec<u8>>) {
        let mut inner = self.lock();
        let (low, records) = &mut inner.topics.get_mut(topic).expect("topic")[partition as usize];
        records[(offset - *low) as usize].value = value;
    }

    /// Drops the records before `offset`, as retention does.
    pub fn delete_before(&self, topic: &str, partition: i32, offset: i64) {
        let mut inner = self.lock();
        let (low, records) = &mut inner.topics.get_mut(topic).expect("topic")[partition as usize];
        let n = (offset - *low).clamp(0, records.len() as i64) as usize;
        records.drain(..n);
        *low += n as i64;
    }

    /// Drops the records whose key starts with `prefix` (a broker that lost them).
    pub fn delete_keys(&self, topic: &str, partition: i32, prefix: &[u8]) {
        let mut inner = self.lock();
        let (_, records) = &mut inner.topics.get_mut(topic).expect("topic")[partition as usize];
        for r in records.iter_mut() {
            if r.key.as_deref().is_some_and(|k| k.starts_with(prefix)) {
                r.value = None;
            }
        }
    }

    /// The consumer group's committed positions (complaints, updates).
    pub fn committed(&self) -> BTreeMap<i32, (i64, i64)> {
        self.lock().committed.clone()
    }

    pub fn sink(&self, transactional: bool) -> MemorySink {
        MemorySink { broker: self.clone(), transactional, txn: None, in_flight: Vec::new(), acks: Acks::new() }
    }

    pub fn reader(&self) -> MemoryReader {
        MemoryReader(self.clone())
    }
}

impl Inner {
    fn fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(matches)?;
        self.faults.remove(i)
    }

    fn state(&self, r: &Stored) -> TxnState {
        r.txn.map_or(TxnState::Committed, |t| self.txns.get(&t).copied().unwrap_or(TxnState::Open))
    }

    fn shows(&self, r: &Stored) -> bool {
        self.mock_cluster || self.state(r) == TxnState::Committed
    }

    /// Index of the first record of a transaction still open.
    fn stable(&self, records: &[Stored]) -> i64 {
        if self.mock_cluster {
            return records.len() as i64;
        }
        records.iter().position(|r| self.state(r) == TxnState::Open).unwrap_or(records.len()) as i64
    }
}

#[derive(Debug, Clone)]
struct Pending {
    topic: String,
    partition: i32,
    stored: Stored,
    size: usize,
}

/// [`BatchSink`] of a [`Memory`] broker.
pub struct MemorySink {
    broker: Memory,
    transactional: bool,
    txn: Option<u64>,
    in_flight: Vec<Pending>,
    acks: Acks,
}

impl MemorySink {
    /// Lands the first `n` records in flight.
    fn land(&mut self, n: usize) -> Result<(), IoError> {
        let mut inner = self.broker.lock();
        for p in self.in_flight.drain(..n.min(self.in_flight.len())) {
            if p.size > inner.max_message_bytes {
                return Err(IoError::new(
                    FailureKind::Permanent,
                    format!("writing to {}[{}]", p.topic, p.partition),
                    format!("Broker: Message size too large ({} > {})", p.size, inner.max_message_bytes),
                ));
            }
            let (low, records) = &mut inner.topics.get_mut(&p.topic).expect("topic")[p.partition as usize];
            let offset = *low + records.len() as i64;
            records.push(p.stored);
            let e = self.acks.entry((p.topic, p.partition)).or_insert((offset, offset + 1));
            e.1 = offset + 1;
        }
        Ok(())
    }
}

impl BatchSink for MemorySink {
    fn begin(&mut self) -> Result<(), IoError> {
        self.acks.clear();
        if self.transactional {
            let mut inner = self.broker.lock();
            inner.next_txn += 1;
            let t = inner.next_txn;
            inner.txns.insert(t, TxnState::Open);
            self.txn = Some(t);
        }
        Ok(())
    }

    fn send(&mut self, r: &Out<'_>) -> Result<(), IoError> {
        if let Some(Fault::Send(kind)) = self.broker.lock().fault(|f| matches!(f, Fault::Send(_))) {
            return Err(IoError::new(kind, format!("writing to {}[{}]", r.topic, r.partition), "injected"));
        }
        let stored = Stored {
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r.headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
            txn: self.txn,
        };
        self.in_flight.push(Pending { topic: r.topic.to_owned(), partition: r.partition, stored, size: r.size() });
        Ok(())
    }

    fn flush(&mut self) -> Result<Acks, IoError> {
        let fault = self.broker.lock().fault(|f| matches!(f, Fault::Flush { .. }));
        if let Some(Fault::Flush { kind, land }) = fault {
            self.land(land)?;
            return Err(IoError::new(kind, "waiting for acknowledgements", "injected"));
        }
        self.land(self.in_flight.len())?;
        Ok(std::mem::take(&mut self.acks))
    }

    fn commit(&mut self, positions: &[(i32, i64, i64)]) -> Result<(), IoError> {
        let mut inner = self.broker.lock();
        if let Some(Fault::Commit(kind)) = inner.fault(|f| matches!(f, Fault::Commit(_))) {
            return Err(IoError::new(kind, "committing the transaction", "injected"));
        }
        if let Some(t) = self.txn.take() {
            inner.txns.insert(t, TxnState::Committed);
        }
        inner.committed.extend(positions.iter().map(|(p, c, u)| (*p, (*c, *u))));
        Ok(())
    }

    fn abort(&mut self) -> Result<(), IoError> {
        // What was in flight settles before abort returns: here it lands
        // (the worst case for duplicates), as a slow acknowledgement would.
        let n = self.in_flight.len();
        let _ = self.land(n);
        self.in_flight.clear();
        self.acks.clear();
        if let Some(t) = self.txn.take() {
            self.broker.lock().txns.insert(t, TxnState::Aborted);
        }
        Ok(())
    }
}

/// [`LogReader`] of a [`Memory`] broker.
pub struct MemoryReader(Memory);

impl LogReader for MemoryReader {
    fn watermarks(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Watermarks>, IoError> {
        let mut inner = self.0.lock();
        if let Some(Fault::Read(kind)) = inner.fault(|f| matches!(f, Fault::Read(_))) {
            return Err(IoError::new(kind, format!("reading the offsets of {topic}"), "injected"));
        }
        Ok(partitions
            .iter()
            .map(|p| {
                let (low, records) = &inner.topics[topic][*p as usize];
                let (low, len) = (*low, records.len() as i64);
                Watermarks { low, high: low + len, stable: low + inner.stable(records) }
            })
            .collect())
    }

    fn read(&self, ranges: &[Range]) -> Result<Vec<Vec<Record>>, IoError> {
        if let Some(Fault::Read(kind)) = self.0.lock().fault(|f| matches!(f, Fault::Read(_))) {
            return Err(IoError::new(kind, "reading", "injected"));
        }
        Ok(ranges
            .iter()
            .map(|r| {
                self.0
                    .visible(&r.topic, r.partition)
                    .into_iter()
                    .filter(|(offset, _)| *offset >= r.from)
                    .map(|(offset, s)| Record { offset, key: s.key, value: s.value, headers: s.headers })
                    .collect()
            })
            .collect())
    }
}
