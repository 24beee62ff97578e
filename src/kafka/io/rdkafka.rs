//! The seam implemented with librdkafka: a (transactional) producer for
//! batches, and plain consumers outside the group for reading partitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use rustc_hash::FxHashMap;

use super::{Acks, BatchSink, IoError, LogReader, Out, Range, Record, Watermarks};
use crate::kafka::client::{self, Quiet};
use crate::kafka::errors::{classify, FailureKind};

/// How long a transaction operation or a flush may take.
pub const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new transactional producer waits for the cluster's metadata
/// before it initialises its transactions anyway ([`KafkaSink::producer`]).
const METADATA_FIRST: Duration = Duration::from_secs(5);

/// The pause between looks at the producer while waiting for it.
const NAP: Duration = Duration::from_micros(200);

/// What the batch sink needs of the consumer group.
pub trait Group: Send + Sync {
    /// For `send_offsets_to_transaction` (KIP-447 fencing).
    fn metadata(&self) -> Option<ConsumerGroupMetadata>;
    /// `at_least_once`: the group's offsets, for lag dashboards (progress
    /// itself lives in the checkpoints).
    fn commit_offsets(&self, tpl: &TopicPartitionList);
    /// The input topics whose positions are committed: complaints (the
    /// group's own) and work-order updates (read outside the group, but
    /// committed with it, so that lag tools see both).
    fn topics(&self) -> (&str, &str);
}

/// Delivery reports of the current batch.
#[derive(Default)]
struct Deliveries {
    acks: Mutex<AckRanges>,
    error: Mutex<Option<IoError>>,
}

/// The offsets acknowledged per topic and partition, as (first, last + 1).
/// A delivery report is looked up by its topic as borrowed, so that a
/// report (one per record written) allocates nothing: keyed by an owned
/// (topic, partition), each report cost a `String` and a SipHash.
#[derive(Default)]
struct AckRanges(Vec<(String, PartitionRanges)>);

/// Per partition: (first offset acknowledged, last + 1).
type PartitionRanges = FxHashMap<i32, (i64, i64)>;

impl AckRanges {
    fn note(&mut self, topic: &str, partition: i32, offset: i64) {
        // A batch writes a handful of topics: a scan beats hashing them.
        let i = match self.0.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                self.0.push((topic.to_owned(), PartitionRanges::default()));
                self.0.len() - 1
            }
        };
        let e = self.0[i].1.entry(partition).or_insert((offset, offset + 1));
        e.0 = e.0.min(offset);
        e.1 = e.1.max(offset + 1);
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn into_acks(self) -> Acks {
        self.0.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |(p, r)| ((t.clone(), p), r))).collect()
    }
}

struct ProduceContext(Arc<Deliveries>);

impl ClientContext for ProduceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        client::error(error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                self.0.acks.lock().unwrap_or_else(|e| e.into_inner()).note(m.topic(), m.partition(), m.offset());
            }
            Err((e, m)) => {
                let mut err = self.0.error.lock().unwrap_or_else(|e| e.into_inner());
                if err.is_none() {
                    let what = format!("writing to {}[{}]", m.topic(), m.partition());
                    *err = Some(IoError::new(classify(e), what, e));
                }
            }
        }
    }
}

/// [`BatchSink`] over a librdkafka producer.
pub struct KafkaSink {
    config: ClientConfig,
    eos: bool,
    /// A topic the producer writes, whose metadata it asks for before
    /// initialising its transactions (see [`KafkaSink::producer`]).
    topic: String,
    /// Shared only with a [`KafkaSink::send_offsets`] call in flight on
    /// its own thread.
    producer: Arc<BaseProducer<ProduceContext>>,
    deliveries: Arc<Deliveries>,
    group: Arc<dyn Group>,
    /// A transaction was begun on this producer and not yet ended: only
    /// then is there one to abort (a new producer has none).
    open: bool,
    /// The producer is to be replaced, and the last attempt failed (a
    /// coordinator still down, say): the next batch tries again first.
    stale: bool,
}

/// The timeout given to `send_offsets_to_transaction` (normally a matter
/// of milliseconds; librdkafka answers a coordinator's loss within it),
/// and how long past it the producer is taken for stuck: short, because
/// a whole member's partitions wait meanwhile, and a producer replaced
/// needlessly costs only a retried batch.
const OFFSETS_TIMEOUT: Duration = Duration::from_secs(10);
const OFFSETS_GRACE: Duration = Duration::from_secs(5);

impl KafkaSink {
    /// A producer from `config` (with `transactional.id` set when `eos`),
    /// its transactions initialised. `topic`: one it writes (any).
    pub fn new(config: ClientConfig, eos: bool, topic: &str, group: Arc<dyn Group>) -> Result<Self, KafkaError> {
        let deliveries = Arc::new(Deliveries::default());
        let producer = Self::producer(&config, &deliveries, eos, topic)?;
        Ok(Self { config, eos, topic: topic.to_owned(), producer, deliveries, group, open: false, stale: false })
    }

    fn producer(
        config: &ClientConfig,
        deliveries: &Arc<Deliveries>,
        eos: bool,
        topic: &str,
    ) -> Result<Arc<BaseProducer<ProduceContext>>, KafkaError> {
        let producer: BaseProducer<ProduceContext> = config.create_with_context(ProduceContext(deliveries.clone()))?;
        if eos {
            // The brokers first: librdkafka (2.12) sends its first
            // FindCoordinator to the bootstrap broker, whose handle it
            // drops as soon as the cluster's own brokers are learnt; the
            // request dies with it and is asked again only 500 ms later.
            // On Apache Kafka 4.4: 12 of 32 fresh producers took 0.51 s in
            // init_transactions instead of 0.06 s; none of 32 once the
            // metadata was in. A failure here is init_transactions' to
            // report, so the wait is short.
            let _ = producer.client().fetch_metadata(Some(topic), METADATA_FIRST);
            // Also aborts what an earlier incarnation with this id left open.
            producer.init_transactions(TXN_TIMEOUT)?;
        }
        Ok(Arc::new(producer))
    }

    /// `send_offsets_to_transaction`, on a thread of its own with a
    /// deadline. librdkafka (2.12) can block in it for ever when the
    /// group's coordinator dies: its own timeout is not enforced on the
    /// coordinator request (confluentinc/librdkafka#5456, #5511). Seen on
    /// Apache Kafka with the coordinator's node killed: the member stayed
    /// "ready" and processed nothing. Past the deadline the stuck producer
    /// is left to its thread and a new one with the same transactional id
    /// takes over; initialising it fences the stuck one and aborts its
    /// transaction, so nothing of the batch can still commit, and the
    /// batch is retried.
    fn send_offsets(&mut self, tpl: TopicPartitionList, meta: ConsumerGroupMetadata) -> Result<(), IoError> {
        let what = "sending offsets to the transaction";
        let producer = Arc::clone(&self.producer);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("txn-offsets".into())
            .spawn(move || {
                let _ = tx.send(producer.send_offsets_to_transaction(&tpl, &meta, OFFSETS_TIMEOUT));
            })
            .map_err(|e| IoError::new(FailureKind::Transient, what, e))?;
        match rx.recv_timeout(OFFSETS_TIMEOUT + OFFSETS_GRACE) {
            Ok(r) => self.txn(what, r),
            Err(_) => {
                let stuck = format!("no answer within {:?} (librdkafka#5456)", OFFSETS_TIMEOUT + OFFSETS_GRACE);
                tracing::error!(step = what, "{stuck}: the producer is stuck; a new one fences it");
                self.replace(&format!("{what}: {stuck}"))?;
                Err(IoError::new(FailureKind::Transient, what, stuck))
            }
        }
    }

    /// A new producer in place of one that cannot go on (fatal, stuck).
    /// With transactions, initialising it fences the old one.
    fn replace(&mut self, why: &str) -> Result<(), IoError> {
        tracing::warn!(why, "starting a new producer");
        self.open = false;
        self.stale = true;
        self.producer = Self::producer(&self.config, &self.deliveries, self.eos, &self.topic)
            .map_err(|e| IoError::new(classify(&e), "starting a new producer", e))?;
        self.stale = false;
        Ok(())
    }

    /// Why the open transaction failed, if it did. When a transaction
    /// fails (Apache Kafka refusing to add a partition for want of an ACL,
    /// say), librdkafka purges its queue, so every delivery report says
    /// `PurgeQueue`: transient by its code, while the cause is permanent.
    /// `begin_transaction` is the one call that reports the cause without
    /// side effects here: in the failed state it returns the transaction's
    /// error (its own code), and while a transaction is open and healthy it
    /// refuses with a state error and changes nothing.
    fn transaction_error(&self) -> Option<IoError> {
        if !self.eos {
            return None;
        }
        match self.producer.begin_transaction() {
            Err(KafkaError::Transaction(e)) if e.code() != RDKafkaErrorCode::State => {
                let e = KafkaError::Transaction(e);
                Some(IoError::new(classify(&e), "the transaction", e))
            }
            _ => None,
        }
    }

    fn txn(&self, what: &str, r: Result<(), KafkaError>) -> Result<(), IoError> {
        r.map_err(|e| IoError::new(classify(&e), what, e))
    }
}

impl BatchSink for KafkaSink {
    fn begin(&mut self) -> Result<(), IoError> {
        self.deliveries.acks.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if self.stale {
            self.replace("the last attempt to replace it failed")?;
        }
        if self.eos {
            self.txn("beginning a transaction", self.producer.begin_transaction())?;
            self.open = true;
        }
        Ok(())
    }

    fn send(&mut self, r: &Out<'_>) -> Result<(), IoError> {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(r.topic).partition(r.partition);
        if let Some(k) = r.key {
            rec = rec.key(k);
        }
        if let Some(v) = r.value {
            rec = rec.payload(v);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
            for (name, value) in r.headers {
                h = h.insert(Header { key: name, value: Some(*value) });
            }
            rec = rec.headers(h);
        }
        // A full local queue is drained by serving delivery reports, not by
        // dropping.
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    self.producer.poll(Duration::ZERO);
                    std::thread::sleep(NAP);
                }
                Err((e, _)) => {
                    let err = IoError::new(classify(&e), format!("writing to {}[{}]", r.topic, r.partition), e);
                    // A transaction that failed meanwhile (a partition it
                    // may not add, a fenced producer) refuses further
                    // records with a state error that says nothing of why:
                    // its own error does, as in `flush`. Records sent while
                    // a batch is processed meet this first.
                    return Err(self.transaction_error().unwrap_or(err));
                }
            }
        }
    }

    fn flush(&mut self) -> Result<Acks, IoError> {
        // Not `Producer::flush`: rdkafka's BaseProducer polls in slices of
        // 100 ms that it always sits out, which made every batch at least
        // 200 ms long. Nor `poll(1 ms)`: rdkafka rounds what is left of its
        // deadline down to whole milliseconds and spins through the last
        // one (a profile found it). Serve what is there, then nap briefly.
        let deadline = Instant::now() + TXN_TIMEOUT;
        loop {
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() == 0 {
                break;
            }
            if Instant::now() > deadline {
                let n = self.producer.in_flight_count();
                return Err(IoError::new(
                    FailureKind::Transient,
                    "waiting for acknowledgements",
                    format!("{n} records not acknowledged within {TXN_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(NAP);
        }
        if let Some(e) = self.deliveries.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(self.transaction_error().unwrap_or(e));
        }
        Ok(std::mem::take(&mut *self.deliveries.acks.lock().unwrap_or_else(|e| e.into_inner())).into_acks())
    }

    fn commit(&mut self, positions: &[(i32, i64, i64)]) -> Result<(), IoError> {
        let mut tpl = TopicPartitionList::new();
        let (complaints, updates) = self.group.topics();
        for (p, c, u) in positions {
            let what = "committing positions";
            for (topic, offset) in [(complaints, c), (updates, u)] {
                tpl.add_partition_offset(topic, *p, Offset::Offset(*offset))
                    .map_err(|e| IoError::new(FailureKind::Permanent, what, e))?;
            }
        }
        if !self.eos {
            if tpl.count() > 0 {
                self.group.commit_offsets(&tpl);
            }
            return Ok(());
        }
        if tpl.count() > 0 {
            let meta = self.group.metadata().ok_or_else(|| {
                IoError::new(FailureKind::Fenced, "sending offsets to the transaction", "no consumer group metadata")
            })?;
            self.send_offsets(tpl, meta)?;
        }
        let r = self.producer.commit_transaction(TXN_TIMEOUT);
        self.txn("committing the transaction", r)?;
        self.open = false;
        Ok(())
    }

    fn abort(&mut self) -> Result<(), IoError> {
        // Records never sent cannot land: drop them. Records in flight
        // might: wait until each is acknowledged or has failed, so that
        // nothing reaches a partition after the outputs are read back (a
        // late acknowledgement would otherwise be written twice).
        self.producer.purge(PurgeConfig::default().queue());
        let settle = Instant::now() + TXN_TIMEOUT + Duration::from_secs(5);
        loop {
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() == 0 || Instant::now() >= settle {
                break;
            }
            std::thread::sleep(NAP);
        }
        let stuck = self.producer.in_flight_count();
        let _ = self.deliveries.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.deliveries.acks.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if stuck > 0 {
            return self.replace(&format!("{stuck} records neither acknowledged nor failed"));
        }
        if self.eos && self.open {
            match self.producer.abort_transaction(TXN_TIMEOUT) {
                Ok(()) => self.open = false,
                Err(e) => return self.replace(&format!("aborting the transaction failed: {e}")),
            }
        }
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            // An idempotent producer in a fatal state never recovers.
            return self.replace(&format!("fatal producer error {code:?}: {reason}"));
        }
        Ok(())
    }
}

/// [`LogReader`] with librdkafka consumers outside the group.
pub struct KafkaReader {
    config: ClientConfig,
    /// The clients that ask for offsets; replaced after any failure (see
    /// [`KafkaReader::watermarks`]).
    offsets: Mutex<Arc<OffsetClients>>,
}

/// Two long-lived consumers that only ask for offsets (ListOffsets).
struct OffsetClients {
    /// read_committed: its high watermark is the last stable offset.
    committed: BaseConsumer<Quiet>,
    uncommitted: BaseConsumer<Quiet>,
}

impl OffsetClients {
    fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        let committed = config.create_with_context(Quiet)?;
        let mut u = config.clone();
        u.set("isolation.level", "read_uncommitted");
        let uncommitted = u.create_with_context(Quiet)?;
        Ok(Self { committed, uncommitted })
    }
}

/// A read that makes no progress for this long fails (transiently).
const READ_STALL: Duration = Duration::from_secs(30);

impl KafkaReader {
    /// `config`: [`crate::kafka::client::changelog_reader`]'s (read_committed, partition EOF on).
    pub fn new(config: ClientConfig) -> Result<Self, KafkaError> {
        let offsets = Mutex::new(Arc::new(OffsetClients::new(&config)?));
        Ok(Self { config, offsets })
    }
}

impl KafkaReader {
    /// Offsets of `which` (the beginning, or the end as `consumer`'s
    /// isolation level sees it) of several partitions, in one request per
    /// broker (ListOffsets by the timestamps -2 and -1).
    fn offsets(
        consumer: &BaseConsumer<Quiet>,
        topic: &str,
        partitions: &[i32],
        which: Offset,
    ) -> Result<Vec<i64>, IoError> {
        let what = || format!("reading the offsets of {topic}");
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset(topic, *p, which).map_err(|e| IoError::new(FailureKind::Permanent, what(), e))?;
        }
        let got = consumer
            .offsets_for_times(tpl, Duration::from_secs(10))
            .map_err(|e| IoError::new(classify(&e), what(), e))?;
        partitions
            .iter()
            .map(|p| {
                let e = got
                    .find_partition(topic, *p)
                    .ok_or_else(|| IoError::new(FailureKind::Transient, what(), "no answer"))?;
                if let Err(err) = e.error() {
                    return Err(IoError::new(classify(&err), what(), err));
                }
                match e.offset() {
                    Offset::Offset(o) => Ok(o),
                    // No record at or past the "timestamp": an empty partition.
                    _ => Ok(0),
                }
            })
            .collect()
    }
}

impl LogReader for KafkaReader {
    fn watermarks(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Watermarks>, IoError> {
        let clients = Arc::clone(&self.offsets.lock().unwrap_or_else(|e| e.into_inner()));
        let asked: Result<_, IoError> = (|| {
            let low = Self::offsets(&clients.committed, topic, partitions, Offset::Beginning)?;
            let stable = Self::offsets(&clients.committed, topic, partitions, Offset::End)?;
            let high = Self::offsets(&clients.uncommitted, topic, partitions, Offset::End)?;
            Ok((low, stable, high))
        })();
        let (low, stable, high) = match asked {
            Ok(got) => got,
            Err(e) => {
                // Seen on Apache Kafka after a broker was killed and came
                // back: a long-lived client kept answering
                // LeaderNotAvailable, or even "Local: Unknown partition",
                // for minutes, for a partition whose leader never moved
                // (its cached metadata was stale). The next attempt (the
                // caller retries, with backoff) asks with fresh clients,
                // which fetch metadata anew.
                if let Ok(fresh) = OffsetClients::new(&self.config) {
                    *self.offsets.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
                }
                return Err(e);
            }
        };
        Ok(low
            .into_iter()
            .zip(stable)
            .zip(high)
            .map(|((low, stable), high)| Watermarks { low, high: high.max(stable), stable })
            .collect())
    }

    fn read(&self, ranges: &[Range]) -> Result<Vec<Vec<Record>>, IoError> {
        // An end-of-partition event names the partition but not its topic:
        // each topic is read by a consumer of its own, all at once.
        let mut topics: Vec<&str> = ranges.iter().map(|r| r.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        let results: Vec<Result<Vec<(usize, Record)>, IoError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = topics
                .iter()
                .map(|topic| {
                    let mine: Vec<(usize, &Range)> =
                        ranges.iter().enumerate().filter(|(_, r)| r.topic == *topic).collect();
                    scope.spawn(move || self.read_topic(topic, &mine))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Err(IoError::new(FailureKind::Transient, "reading", "reader panicked")))
                })
                .collect()
        });
        let mut out: Vec<Vec<Record>> = vec![Vec::new(); ranges.len()];
        for records in results {
            for (range, r) in records? {
                out[range].push(r);
            }
        }
        Ok(out)
    }
}

impl KafkaReader {
    /// Reads the ranges of one topic to the end of each partition.
    fn read_topic(&self, topic: &str, ranges: &[(usize, &Range)]) -> Result<Vec<(usize, Record)>, IoError> {
        // Per partition: its range, and the last offset it holds as the
        // watermarks said (reached, the read is done without waiting for
        // the end-of-partition, which comes only once an empty fetch has
        // returned: up to fetch.wait.max.ms later).
        let mut todo: HashMap<i32, (usize, i64)> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        let partitions: Vec<i32> = ranges.iter().map(|(_, r)| r.partition).collect();
        let marks = self.watermarks(topic, &partitions)?;
        for ((i, r), w) in ranges.iter().zip(marks) {
            let from = r.from.max(w.low);
            if from >= w.stable {
                continue;
            }
            todo.insert(r.partition, (*i, w.stable - 1));
            tpl.add_partition_offset(topic, r.partition, Offset::Offset(from))
                .map_err(|e| IoError::new(FailureKind::Permanent, format!("reading {topic}"), e))?;
        }
        let mut out = Vec::new();
        if todo.is_empty() {
            return Ok(out);
        }
        // A consumer of its own per read: no event of an earlier read (an
        // end of partition, say) can be taken for one of this read.
        let what = || format!("reading {topic}");
        let started = Instant::now();
        let mut first: Option<Duration> = None;
        let consumer: BaseConsumer<Quiet> =
            self.config.create_with_context(Quiet).map_err(|e| IoError::new(classify(&e), what(), e))?;
        consumer.assign(&tpl).map_err(|e| IoError::new(classify(&e), what(), e))?;
        let mut last_progress = Instant::now();
        while !todo.is_empty() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last_progress = Instant::now();
                    first.get_or_insert(started.elapsed());
                    let Some(&(range, last)) = todo.get(&m.partition()) else { continue };
                    let headers = m
                        .headers()
                        .map(|h| h.iter().map(|x| (x.key.to_owned(), x.value.unwrap_or_default().to_vec())).collect())
                        .unwrap_or_default();
                    let record = Record {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers,
                    };
                    out.push((range, record));
                    // A transaction marker may take the last offset: then
                    // the end-of-partition says it.
                    if m.offset() >= last {
                        todo.remove(&m.partition());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    last_progress = Instant::now();
                    todo.remove(&p);
                }
                Some(Err(e)) => return Err(IoError::new(classify(&e), what(), e)),
                None if last_progress.elapsed() > READ_STALL => {
                    let left: Vec<String> = todo.keys().map(|p| format!("{topic}[{p}]")).collect();
                    return Err(IoError::new(
                        FailureKind::Transient,
                        format!("reading {}", left.join(", ")),
                        format!("no progress for {READ_STALL:?}"),
                    ));
                }
                None => {}
            }
        }
        tracing::debug!(
            topic,
            partitions = ranges.len(),
            records = out.len(),
            first_record_ms = first.map(|d| d.as_millis() as u64),
            ms = started.elapsed().as_millis() as u64,
            "read"
        );
        // Closing a consumer takes librdkafka about 100 ms (its threads
        // wind down): a restore does not wait for it.
        let closing = std::thread::Builder::new().name("reader-close".into());
        if let Err(e) = closing.spawn(move || drop(consumer)) {
            tracing::debug!(error = %e, "closing the reader on this thread");
        }
        Ok(out)
    }
}
