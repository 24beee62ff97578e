//! `andon run`: the consumer-group member. Polls a batch, hands records to
//! the partition tasks, produces their outputs, waits for the
//! acknowledgements, writes each partition's checkpoint, and commits: in one
//! transaction with `exactly_once`, without with `at_least_once`.
//!
//! Group membership is over the complaints topic alone; the updates
//! partition of the same number follows it on a second, manually assigned
//! consumer. That keeps a subject's complaints and updates with one owner
//! whatever the assignor does (cooperative-sticky does not co-partition two
//! topics; Kafka Streams has its own assignor for that).
//!
//! Rebalances happen only inside `poll`, between batches, when everything
//! processed has been checkpointed: a revoked partition's task is dropped
//! with whatever it had fetched but not processed (its next owner starts
//! from the checkpoint); an assigned one is restored from the changelog in
//! the rebalance callback, before the assignment takes effect, and starts
//! at the checkpointed positions.
//!
//! A failed batch (a produce error, a failed commit) is aborted and every
//! task is restored again from the changelog: outputs that reached their
//! partitions anyway are recognised by id and not written twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::{Guarantee, Settings};
use crate::event::{Output, Ts, WorkOrderEvent};
use crate::kafka::changelog::{self, Positions, RestoreError, StateRecord};
use crate::kafka::client;
use crate::kafka::task::{Incoming, OutTopic, Produce, Source, Task};
use crate::ops::metrics::Metrics;
use crate::ops::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Topology(#[from] client::TopologyError),
    #[error("{0}")]
    Batch(String),
}

/// Restores partitions: owns a consumer outside the group for reading the
/// changelog and the output partitions.
struct Restorer {
    settings: Arc<Settings>,
    consumer: ClientConfig,
    metrics: Metrics,
}

impl Restorer {
    fn restore(&self, partition: i32) -> Result<Task, RestoreError> {
        let t = &self.settings.topics;
        let started = Instant::now();
        let consumer = &self.consumer;
        let restored = changelog::restore(consumer, &t.state, partition)?;
        let mut suppress = std::collections::HashSet::new();
        let p = &restored.positions;
        for (topic, from) in [(&t.delist_commands, p.delist_commands), (&t.work_orders, p.work_orders), (&t.dlq, p.dlq)]
        {
            let (ids, _) = changelog::written_ids(consumer, topic, partition, from)?;
            suppress.extend(ids);
        }
        self.metrics.restore_seconds.observe(started.elapsed().as_secs_f64());
        tracing::info!(
            partition,
            seq = restored.seq,
            changelog_records = restored.records_read,
            already_written = suppress.len(),
            subjects = restored.state.subjects.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition restored"
        );
        // Inputs already read to their end need no waiting for in the merge
        // (an empty updates partition is the common case).
        let start = |topic: &str, pos: i64| -> Result<bool, RestoreError> {
            let (low, high) = changelog::watermarks(consumer, topic, partition)?;
            Ok(high <= if restored.seq > 0 { pos.max(low) } else { low })
        };
        let at_end = [
            start(&t.complaints, restored.positions.complaints)?,
            start(&t.work_order_updates, restored.positions.updates)?,
        ];
        let mut task = Task::new(
            partition,
            self.settings.engine.clone(),
            restored,
            suppress,
            [t.complaints.as_str().into(), t.work_order_updates.as_str().into()],
            self.settings.processing.max_event_bytes,
        );
        if at_end[0] {
            task.at_end(Source::Complaints);
        }
        if at_end[1] {
            task.at_end(Source::Updates);
        }
        Ok(task)
    }
}

enum Event {
    Assigned(i32, Result<Box<Task>, RestoreError>),
    Revoked(i32),
}

struct GroupContext {
    restorer: Arc<Restorer>,
    complaints: String,
    events: Mutex<Vec<Event>>,
    status: Arc<Status>,
    metrics: Metrics,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        client::error(error, reason);
    }
    /// librdkafka's statistics: consumer lag per assigned partition.
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(topic) = statistics.topics.get(&self.complaints) {
            for (p, s) in &topic.partitions {
                if *p >= 0 && s.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[&p.to_string()]).set(s.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr::*;
        let cooperative = matches!(consumer.rebalance_protocol(), rdkafka::consumer::RebalanceProtocol::Cooperative);
        match err {
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<i32> =
                    tpl.elements().iter().filter(|e| e.topic() == self.complaints).map(|e| e.partition()).collect();
                tracing::info!(?partitions, "partitions assigned: restoring them");
                // Ready again once these are restored (`handle_events`); an
                // empty assignment has nothing to restore.
                self.status.ready.store(partitions.is_empty(), Ordering::Relaxed);
                self.metrics.rebalances.inc();
                for p in partitions {
                    let task = self.restorer.restore(p);
                    let offset = match &task {
                        Ok(t) if t.seq > 0 => Offset::Offset(t.positions.complaints),
                        _ => Offset::Beginning,
                    };
                    if let Err(e) = tpl.set_partition_offset(&self.complaints, p, offset) {
                        tracing::error!(partition = p, error = %e, "cannot set the restored position");
                    }
                    self.push(Event::Assigned(p, task.map(Box::new)));
                }
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = r {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "partitions revoked");
                self.metrics.rebalances.inc();
                for p in &partitions {
                    let _ = self.metrics.consumer_lag.remove_label_values(&[&p.to_string()]);
                }
                for e in tpl.elements() {
                    self.push(Event::Revoked(e.partition()));
                }
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {}
}

impl GroupContext {
    fn push(&self, e: Event) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }
}

/// Delivery reports: the end offset of every output partition written, and
/// the first error of the batch.
#[derive(Default)]
struct Deliveries {
    ends: Mutex<HashMap<(String, i32), i64>>,
    error: Mutex<Option<String>>,
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
                let mut ends = self.0.ends.lock().unwrap_or_else(|e| e.into_inner());
                let end = ends.entry((m.topic().to_owned(), m.partition())).or_insert(0);
                *end = (*end).max(m.offset() + 1);
            }
            Err((e, m)) => {
                let mut err = self.0.error.lock().unwrap_or_else(|e| e.into_inner());
                if err.is_none() {
                    *err = Some(format!("delivery to {}[{}] failed: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

struct Slot {
    task: Task,
    pending: Vec<Produce>,
    /// The partition's side of the cluster-wide view's table.
    view: crate::view::TableWriter,
}

impl Slot {
    fn new(task: Task) -> Self {
        let view = crate::view::TableWriter::new(task.partition);
        Slot { task, pending: Vec::new(), view }
    }
}

pub struct Processor {
    settings: Arc<Settings>,
    group: BaseConsumer<GroupContext>,
    updates: BaseConsumer<client::Quiet>,
    producer: BaseProducer<ProduceContext>,
    deliveries: Arc<Deliveries>,
    restorer: Arc<Restorer>,
    slots: BTreeMap<i32, Slot>,
    status: Arc<Status>,
    eos: bool,
    options: super::RunOptions,
    metrics: Metrics,
    last_board: Instant,
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Records buffered (fetched, not yet processed or produced) after which a
/// batch stops polling and processes: bounds memory and batch size.
const MAX_BUFFERED: usize = 20_000;

impl Processor {
    /// Connects (waiting for the brokers), checks the topics, joins the group.
    pub fn start(
        settings: Arc<Settings>,
        status: Arc<Status>,
        shutdown: &AtomicBool,
        options: super::RunOptions,
    ) -> Result<Self, RunError> {
        client::wait_for_brokers(&settings, shutdown)?;
        client::check_topics(&settings)?;
        let t = &settings.topics;
        let metrics = match status.metrics() {
            Some(m) => m,
            // Nobody serves metrics: count into a registry of our own.
            None => Metrics::new(&prometheus::Registry::new(), &settings.engine)
                .map_err(|e| RunError::Batch(format!("metrics: {e}")))?,
        };
        let restorer = Arc::new(Restorer {
            settings: settings.clone(),
            consumer: client::plain_consumer(&settings),
            metrics: metrics.clone(),
        });
        let group: BaseConsumer<GroupContext> =
            client::group_consumer(&settings).create_with_context(GroupContext {
                restorer: restorer.clone(),
                complaints: t.complaints.clone(),
                events: Mutex::new(Vec::new()),
                status: status.clone(),
                metrics: metrics.clone(),
            })?;
        let updates: BaseConsumer<client::Quiet> =
            client::plain_consumer(&settings).create_with_context(client::Quiet)?;
        let deliveries = Arc::new(Deliveries::default());
        let eos = settings.processing.guarantee == Guarantee::ExactlyOnce;
        let producer = new_producer(&settings, &deliveries, eos)?;
        group.subscribe(&[t.complaints.as_str()])?;
        tracing::info!(group = %settings.kafka.group_id, guarantee = if eos { "exactly_once" } else { "at_least_once" }, "joined the consumer group");
        Ok(Self {
            settings,
            group,
            updates,
            producer,
            deliveries,
            restorer,
            slots: BTreeMap::new(),
            status,
            eos,
            options,
            metrics,
            last_board: Instant::now(),
        })
    }

    /// Runs until `shutdown` is set; then finishes the batch and leaves.
    pub fn run(mut self, shutdown: &AtomicBool) -> Result<(), RunError> {
        let p = &self.settings.processing;
        let (interval, idle) = (p.commit_interval, p.max_task_idle);
        let mut stopping = false;
        while !stopping {
            stopping = shutdown.load(Ordering::Relaxed);
            let started = Instant::now();
            self.poll_for(interval.saturating_sub(started.elapsed()), shutdown)?;
            let now = Instant::now();
            let wall = wall_clock();
            let mut records = 0;
            for slot in self.slots.values_mut() {
                let t = slot.task.process(now, wall, idle, &mut slot.pending);
                records += t.processed + t.undecodable;
            }
            self.status.view.queries.answer(|p| self.slots.get(&p).map(|s| s.task.engine()));
            let polled_ms = now.duration_since(started).as_millis();
            let waiting: usize = self.slots.values().map(|s| s.task.waiting()).sum();
            let committing = Instant::now();
            self.status.touch();
            let r = self.commit_batch();
            if records > 0 {
                tracing::debug!(
                    polled_ms,
                    records,
                    waiting,
                    commit_ms = committing.elapsed().as_millis() as u64,
                    "batch"
                );
            }
            match &r {
                Ok(true) => {
                    self.metrics.transaction_seconds.observe(committing.elapsed().as_secs_f64());
                    self.publish(true);
                }
                Ok(false) => self.publish(false),
                Err(_) => {}
            }
            if let Err(e) = r {
                tracing::warn!(error = %e, "batch failed: aborting it and restoring from the changelog");
                let mut backoff = Duration::from_millis(500);
                while let Err(e) = self.recover() {
                    if let RunError::Kafka(k) = &e {
                        if k.rdkafka_error_code() == Some(RDKafkaErrorCode::Fenced) {
                            return Err(e); // another instance has our transactional.id
                        }
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "recovery failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    if shutdown.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                }
            }
            self.status.batches.fetch_add(1, Ordering::Relaxed);
            self.status.records.fetch_add(records, Ordering::Relaxed);
        }
        tracing::info!("shutting down: leaving the consumer group");
        self.group.unsubscribe();
        // Serve the revoke so the group reassigns at once, not after a timeout.
        let _ = self.group.poll(Duration::from_millis(100));
        Ok(())
    }

    fn poll_for(&mut self, budget: Duration, shutdown: &AtomicBool) -> Result<(), RunError> {
        let until = Instant::now() + budget;
        let mut buffered = self.slots.values().map(|s| s.task.waiting() + s.pending.len()).sum::<usize>();
        let mut wait = true;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            // Drain what librdkafka has fetched without a clock read per
            // record; block (briefly) only when there was nothing.
            for i in 0..1024 {
                let timeout = if wait && i == 0 { left.min(Duration::from_millis(20)) } else { Duration::ZERO };
                let msg = self.group.poll(timeout);
                // Assignments made inside that poll apply before its message.
                handle_events(&self.group, &self.updates, &mut self.slots, &self.settings, &self.status)?;
                let Some(msg) = msg else { break };
                buffered += route(&mut self.slots, Source::Complaints, msg);
            }
            let before = buffered;
            for _ in 0..10_000 {
                let Some(msg) = self.updates.poll(Duration::ZERO) else { break };
                buffered += route(&mut self.slots, Source::Updates, msg);
            }
            wait = buffered == before;
            if left.is_zero() || shutdown.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Enough for one batch: process it rather than buffer more.
            if buffered > MAX_BUFFERED {
                return Ok(());
            }
        }
    }

    /// Produces what the batch emitted, waits for it, writes checkpoints,
    /// commits. Does nothing when no partition has anything to say.
    fn commit_batch(&mut self) -> Result<bool, RunError> {
        let t = self.settings.topics.clone();
        let dirty: Vec<i32> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                let (c, u) = s.task.input_positions();
                !s.pending.is_empty() || c != s.task.positions.complaints || u != s.task.positions.updates
            })
            .map(|(p, _)| *p)
            .collect();
        if dirty.is_empty() {
            return Ok(false);
        }
        if self.eos {
            self.producer.begin_transaction()?;
        }
        self.deliveries.ends.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for (p, slot) in self.slots.iter_mut() {
            for r in slot.pending.drain(..) {
                let topic = match r.topic {
                    OutTopic::DelistCommands => &t.delist_commands,
                    OutTopic::WorkOrders => &t.work_orders,
                    OutTopic::Dlq => &t.dlq,
                };
                let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(*p).payload(&r.value[..]);
                if let Some(k) = &r.key {
                    rec = rec.key(&k[..]);
                }
                if !r.headers.is_empty() {
                    let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
                    for (name, value) in &r.headers {
                        h = h.insert(Header { key: name, value: Some(value.as_bytes()) });
                    }
                    rec = rec.headers(h);
                }
                send(&self.producer, rec)?;
            }
            // The cluster-wide view's table, partition p, in the same transaction.
            let view = slot.view.records(
                slot.task.batch_outputs(),
                slot.task.engine(),
                &self.status.view.model(),
                Instant::now(),
            );
            for r in &view {
                let rec = BaseRecord::to(&t.view).partition(*p).key(r.key.as_bytes());
                send(&self.producer, if let Some(v) = &r.value { rec.payload(&v[..]) } else { rec })?;
            }
        }
        self.flush()?;
        let ends = std::mem::take(&mut *self.deliveries.ends.lock().unwrap_or_else(|e| e.into_inner()));
        // Tells this attempt's checkpoint parts from a failed one's.
        let attempt = wall_clock() as u64;
        let mut new_positions = Vec::new();
        for (p, slot) in self.slots.iter_mut() {
            let task = &mut slot.task;
            let delta = task.take_delta();
            let (c, u) = task.input_positions();
            let end = |topic: &str, prev: i64| ends.get(&(topic.to_owned(), *p)).copied().unwrap_or(prev).max(prev);
            let pos = Positions {
                complaints: c,
                updates: u,
                delist_commands: end(&t.delist_commands, task.positions.delist_commands),
                work_orders: end(&t.work_orders, task.positions.work_orders),
                dlq: end(&t.dlq, task.positions.dlq),
            };
            if delta.is_empty() && pos == task.positions {
                continue;
            }
            let seq = task.seq + 1;
            let records = changelog::encode_checkpoint(seq, attempt, pos, &delta).map_err(batch_err)?;
            let parts = records.len() as u32;
            let bytes: usize = records.iter().map(|r| r.value.as_ref().map_or(0, Vec::len)).sum();
            send_state(&self.producer, &t.state, *p, &records)?;
            let mut snapshot = None;
            if task.bytes_since_snapshot + bytes > self.options.snapshot_after_bytes
                || task.since_snapshot.len() >= 4096
            {
                let mut covered = task.since_snapshot.clone();
                covered.push((seq, parts));
                let (records, snapshot_parts) =
                    changelog::encode_snapshot(seq, attempt, pos, task.engine().state(), &covered, task.snapshot_parts)
                        .map_err(batch_err)?;
                send_state(&self.producer, &t.state, *p, &records)?;
                tracing::debug!(partition = *p, seq, parts = snapshot_parts, "snapshot written");
                snapshot = Some(snapshot_parts);
            }
            new_positions.push((*p, seq, pos, (parts, bytes), snapshot));
        }
        self.flush()?;
        if self.eos {
            let mut tpl = TopicPartitionList::new();
            for (p, _, pos, _, _) in &new_positions {
                tpl.add_partition_offset(&t.complaints, *p, Offset::Offset(pos.complaints))?;
            }
            if tpl.count() > 0 {
                let meta = self.group.group_metadata().ok_or_else(|| RunError::Batch("no group metadata".into()))?;
                self.producer.send_offsets_to_transaction(&tpl, &meta, TXN_TIMEOUT)?;
            }
            self.producer.commit_transaction(TXN_TIMEOUT)?;
        } else {
            let mut tpl = TopicPartitionList::new();
            for (p, _, pos, _, _) in &new_positions {
                tpl.add_partition_offset(&t.complaints, *p, Offset::Offset(pos.complaints))?;
            }
            if tpl.count() > 0 {
                // Progress lives in the checkpoint; the group offsets are for
                // lag dashboards, so a failed commit is only worth a warning.
                if let Err(e) = self.group.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
                    tracing::debug!(error = %e, "offset commit failed");
                }
            }
        }
        for (p, seq, pos, (parts, bytes), snapshot) in new_positions {
            if let Some(slot) = self.slots.get_mut(&p) {
                let task = &mut slot.task;
                task.seq = seq;
                task.positions = pos;
                match snapshot {
                    Some(snapshot_parts) => {
                        task.since_snapshot.clear();
                        task.bytes_since_snapshot = 0;
                        task.snapshot_parts = snapshot_parts;
                    }
                    None => {
                        task.since_snapshot.push((seq, parts));
                        task.bytes_since_snapshot += bytes;
                    }
                }
            }
        }
        Ok(true)
    }

    /// After a batch: counts what it committed into the metrics and logs the
    /// notable outputs; at most once a second, refreshes the state gauges.
    fn publish(&mut self, committed: bool) {
        let now = wall_clock();
        if committed {
            for slot in self.slots.values_mut() {
                let stats = slot.task.take_stats();
                for (class, n) in stats.complaints {
                    self.metrics.complaints.with_label_values(&[class]).inc_by(n);
                }
                for reason in stats.dlq {
                    self.metrics.dlq(reason);
                }
                for ts in stats.latencies {
                    self.metrics.decision_latency.observe((now - ts).max(0) as f64 / 1e9);
                }
                for o in &stats.outputs {
                    self.metrics.output(o);
                    log_output(slot.task.partition, o);
                }
            }
        }
        if self.last_board.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_board = Instant::now();
        let (mut open, mut delisted, mut keys) = (0, 0, 0);
        for slot in self.slots.values() {
            let e = slot.task.engine();
            open += e.open_andon_count();
            delisted += e.delisted_subject_count();
            keys += e.key_count();
        }
        self.metrics.open_andons.set(open as i64);
        self.metrics.delisted_subjects.set(delisted as i64);
        self.metrics.state_keys.set(keys as i64);
    }

    fn flush(&self) -> Result<(), RunError> {
        // Not `Producer::flush`: rdkafka's BaseProducer polls in slices of
        // 100 ms that it always sits out, which made every batch at least
        // 200 ms long (found by the throughput benchmark).
        let deadline = Instant::now() + TXN_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(RunError::Batch(format!(
                    "{} records not acknowledged within {TXN_TIMEOUT:?}",
                    self.producer.in_flight_count()
                )));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        if let Some(e) = self.deliveries.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(RunError::Batch(e));
        }
        Ok(())
    }

    /// After a failed batch: abort it, restore every partition from the
    /// changelog and go back to the checkpointed positions.
    fn recover(&mut self) -> Result<(), RunError> {
        // What is still queued belongs to the failed batch: drop it, and
        // serve the delivery reports that says so (a BaseProducer's abort
        // waits for them but does not poll for them).
        self.producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(1));
        }
        if self.eos {
            if let Err(e) = self.producer.abort_transaction(TXN_TIMEOUT) {
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fenced) {
                    return Err(e.into());
                }
                // A producer in a fatal state (or stuck mid-abort) is
                // replaced; the checkpoints make that safe.
                tracing::warn!(error = %e, fatal = is_fatal(&e), "abort failed: starting a new producer");
                self.producer = new_producer(&self.settings, &self.deliveries, self.eos)?;
            }
        }
        let _ = self.deliveries.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        let partitions: Vec<i32> = self.slots.keys().copied().collect();
        let mut seek = TopicPartitionList::new();
        let mut updates = TopicPartitionList::new();
        for p in partitions {
            let task = self.restorer.restore(p)?;
            let known = task.seq > 0;
            let c = if known { Offset::Offset(task.positions.complaints) } else { Offset::Beginning };
            let u = if known { Offset::Offset(task.positions.updates) } else { Offset::Beginning };
            seek.add_partition_offset(&self.settings.topics.complaints, p, c)?;
            updates.add_partition_offset(&self.settings.topics.work_order_updates, p, u)?;
            self.slots.insert(p, Slot::new(task));
        }
        if seek.count() > 0 {
            self.group.seek_partitions(seek, Duration::from_secs(10))?;
            // Reassigning restarts the updates fetch at the positions.
            self.updates.incremental_unassign(&updates)?;
            self.updates.incremental_assign(&updates)?;
        }
        Ok(())
    }
}

/// Applies what the rebalance callback did: restored tasks start (with
/// their updates partition at its checkpointed position), revoked ones go.
fn handle_events(
    group: &BaseConsumer<GroupContext>,
    updates: &BaseConsumer<client::Quiet>,
    slots: &mut BTreeMap<i32, Slot>,
    settings: &Settings,
    status: &Status,
) -> Result<(), RunError> {
    let events = std::mem::take(&mut *group.context().events.lock().unwrap_or_else(|e| e.into_inner()));
    if events.is_empty() {
        return Ok(());
    }
    for e in events {
        match e {
            Event::Assigned(p, task) => {
                let task = task?;
                let mut tpl = TopicPartitionList::new();
                let offset = if task.seq > 0 { Offset::Offset(task.positions.updates) } else { Offset::Beginning };
                tpl.add_partition_offset(&settings.topics.work_order_updates, p, offset)?;
                updates.incremental_assign(&tpl)?;
                slots.insert(p, Slot::new(*task));
            }
            Event::Revoked(p) => {
                if let Some(slot) = slots.remove(&p) {
                    tracing::info!(partition = p, dropped_unprocessed = slot.task.waiting(), "partition revoked");
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&settings.topics.work_order_updates, p);
                    let _ = updates.incremental_unassign(&tpl);
                }
            }
        }
    }
    status.set_partitions(slots.keys().copied());
    status.ready.store(true, Ordering::Relaxed);
    Ok(())
}

fn new_producer(
    settings: &Settings,
    deliveries: &Arc<Deliveries>,
    eos: bool,
) -> Result<BaseProducer<ProduceContext>, KafkaError> {
    let mut pc: ClientConfig = client::producer(settings);
    if eos {
        pc.set("transactional.id", client::transactional_id(settings));
    }
    let producer: BaseProducer<ProduceContext> = pc.create_with_context(ProduceContext(deliveries.clone()))?;
    if eos {
        producer.init_transactions(TXN_TIMEOUT)?;
    }
    Ok(producer)
}

/// One structured line per pull, delist, relist and escalation.
fn log_output(partition: i32, o: &Output) {
    match o {
        Output::Command(c) => tracing::info!(
            partition,
            action = c.action.as_str(),
            command_id = %c.command_id,
            andon_id = %c.andon_id,
            subject = %c.subject_key,
            "subject {}", if matches!(c.action, crate::event::Action::Delist) { "delisted" } else { "relisted" }
        ),
        Output::WorkOrder(WorkOrderEvent::Opened { andon_id, issue, trigger, evidence, .. }) => tracing::info!(
            partition,
            andon_id = %andon_id,
            issue = %issue,
            trigger = trigger.as_str(),
            evidence = evidence.len(),
            "andon pulled"
        ),
        Output::WorkOrder(WorkOrderEvent::Escalated { andon_id, step, owner, .. }) => {
            tracing::info!(partition, andon_id = %andon_id, step, owner = %owner, "step escalated")
        }
        Output::WorkOrder(WorkOrderEvent::Closed { andon_id, verdict, .. }) => {
            tracing::info!(partition, andon_id = %andon_id, verdict = verdict.as_str(), "work order closed")
        }
        Output::WorkOrder(WorkOrderEvent::StepCompleted { .. }) => {}
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(r) if r.is_fatal())
}

fn batch_err(e: serde_json::Error) -> RunError {
    RunError::Batch(e.to_string())
}

fn send_state(
    producer: &BaseProducer<ProduceContext>,
    topic: &str,
    partition: i32,
    records: &[StateRecord],
) -> Result<(), RunError> {
    for r in records {
        let rec = BaseRecord::to(topic).partition(partition).key(r.key.as_bytes());
        send(
            producer,
            match &r.value {
                Some(v) => rec.payload(&v[..]),
                None => rec,
            },
        )?;
    }
    Ok(())
}

/// Sends without waiting for the delivery; a full local queue is drained
/// by serving delivery reports, not by dropping.
fn send(producer: &BaseProducer<ProduceContext>, mut rec: BaseRecord<'_, [u8], [u8]>) -> Result<(), RunError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Hands a polled record to its partition's task (or notes that the
/// partition is at its end); returns how many records it buffered.
fn route(slots: &mut BTreeMap<i32, Slot>, source: Source, msg: Result<BorrowedMessage<'_>, KafkaError>) -> usize {
    match msg {
        Ok(m) => match slots.get_mut(&m.partition()) {
            Some(slot) => {
                slot.task.push(incoming(source, &m));
                1
            }
            None => 0,
        },
        Err(KafkaError::PartitionEOF(p)) => {
            if let Some(slot) = slots.get_mut(&p) {
                slot.task.at_end(source);
            }
            0
        }
        Err(e) => {
            tracing::warn!(?source, error = %e, "consumer error");
            0
        }
    }
}

fn incoming<'a>(source: Source, m: &'a rdkafka::message::BorrowedMessage<'a>) -> Incoming<'a> {
    Incoming {
        source,
        offset: m.offset(),
        key: m.key(),
        value: m.payload(),
        timestamp: m.timestamp().to_millis().map(|ms| ms.saturating_mul(1_000_000)),
    }
}

pub fn wall_clock() -> Ts {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}
