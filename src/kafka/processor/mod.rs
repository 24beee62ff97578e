//! `andon run`: the consumer-group member's loop. Each turn: at a clean
//! point (nothing processed and not committed), serve the group (the
//! rebalance callback only assigns and pauses), take finished restores,
//! start new ones; then for up to `commit_interval`, drain every active
//! partition's queues into its task and process (the partitions spread
//! over `processing.threads`), sending each round's outputs into the batch
//! ([`batch::Stream`]); then write the rest of the batch ([`batch::write`]).
//!
//! Each partition is in one of three states: restoring (paused on the
//! consumer, its restore running on the restorer thread), failed (a
//! restore that failed: retried with backoff, named in the log and the
//! metrics, `/readyz` failing), or active. A failed batch is aborted and
//! only the partitions it touched go back to restoring; the others go on.
//! A partition that makes no progress for `processing.stall_after` (active
//! with input waiting, or restoring that long, retries included) or has
//! failed is reported stalled (docs/guarantees.md#progress-is-watched).
//!
//! Here: the loop, processing and the batch. Beside it: [`slots`] (the
//! three states, restores that finish, a changed partition count),
//! [`restorer`] (the restorer thread and the loop's waker), [`health`]
//! (what is reported after each batch), [`placement`] (inputs on the
//! partition their key belongs on).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

mod health;
mod placement;
mod restorer;
mod slots;

use super::batch::{self, Share, Writer};
use super::checkpoint::Kind;
use super::client;
use super::errors::{self, Backoff, FailureKind};
use super::group::{self, Ends, Event, GroupContext, GroupHandle, UpdatesContext};
use super::io::rdkafka::{KafkaReader, KafkaSink};
use super::io::BatchSink;
use super::restore::{self, Why};
use super::task::{Incoming, Limits};
use super::{RunError, RunOptions};
use crate::config::{Guarantee, Settings};
use crate::engine::changes::Encoded;
use crate::merge::Side;
use crate::ops::metrics::Metrics;
use crate::ops::status::Status;
use crate::time::Ts;
use crate::view::TableRecord;
use health::log_outputs;
use placement::Placement;
use restorer::{Job, Reply, Waker};
use slots::{restoring, Active, Slot};

/// Records processed after which a batch is written before its interval
/// is up: bounds memory and the size of a transaction.
const MAX_BATCH: u64 = 50_000;

/// Records drained from one partition queue per round: keeps the rounds
/// short enough for every partition to get its turn.
const DRAIN: usize = 5_000;

/// How often the topics' partition counts are checked while running.
const TOPOLOGY_EVERY: Duration = Duration::from_secs(30);

/// The wall clock as event time.
pub fn wall_clock() -> Ts {
    chrono::Utc::now().timestamp_nanos_opt().map_or(Ts::MAX, Ts::from_nanos)
}

pub struct Processor {
    settings: Arc<Settings>,
    options: RunOptions,
    group: Arc<BaseConsumer<GroupContext>>,
    updates: Arc<BaseConsumer<UpdatesContext>>,
    complaint_queues: Vec<PartitionQueue<GroupContext>>,
    update_queues: Vec<PartitionQueue<UpdatesContext>>,
    sink: Box<dyn BatchSink>,
    jobs: mpsc::Sender<Job>,
    replies: mpsc::Receiver<Reply>,
    restoring: bool,
    /// The broker's answer on the topics' configuration (asked at start).
    topic_configs: mpsc::Receiver<Result<client::TopicConfigs, client::TopologyError>>,
    /// Whether the view topic keeps only so many bytes a partition (or the
    /// broker has not said): see [`crate::view::TableWriter::records`].
    view_bytes_bounded: bool,
    slots: BTreeMap<i32, Slot>,
    status: Arc<Status>,
    metrics: Metrics,
    partitions: u32,
    /// Workers for the partitions (none with one thread).
    pool: Option<rayon::ThreadPool>,
    ends: Arc<Ends>,
    /// Each owned partition's input positions (complaints, updates) when it
    /// was last active: its lag while it restores or has failed.
    positions: BTreeMap<i32, (i64, i64)>,
    waker: Arc<Waker>,
    /// The batch's outputs sent so far, while it is processed.
    stream: batch::Stream,
    /// Why sending them failed: the batch fails at its end.
    stream_failed: Option<batch::BatchError>,
    attempt: u64,
    /// The last group generation this member was seen in: a partition
    /// assigned now is stamped with it (see `Task::generation`). librdkafka
    /// reports none (-1) while a session is lost or a rejoin is under way.
    generation: i32,
    /// Set when a topic's partition count changed: processing stops.
    halted: Option<String>,
    /// The group has assigned this member its partitions (maybe none) once.
    joined: bool,
    last_board: Instant,
    last_topology: Instant,
    batch_started: Instant,
}

impl Processor {
    /// Connects (waiting for the brokers), checks the topics, joins the group.
    pub fn start(
        settings: Arc<Settings>,
        status: Arc<Status>,
        shutdown: &AtomicBool,
        options: RunOptions,
    ) -> Result<Self, RunError> {
        let t0 = Instant::now();
        let metadata = client::wait_for_brokers(&settings, shutdown)?;
        let partitions = client::check_topics(&metadata, &settings, client::LISTED_WITHIN_AT_START)?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: brokers and topics checked");
        // The broker may not say (the MockCluster lets the question time
        // out): asked beside the group join, not before it.
        let topic_configs = {
            let (tx, rx) = mpsc::channel();
            let s = settings.clone();
            std::thread::Builder::new()
                .name("config-check".into())
                .spawn(move || {
                    let _ = tx.send(client::check_topic_configs(&s));
                })
                .map_err(RunError::Thread)?;
            rx
        };
        let t = &settings.topics;
        let metrics = match status.metrics() {
            Some(m) => m,
            // Nobody serves metrics: count into a registry of our own.
            None => Metrics::new(&prometheus::Registry::new(), &settings.engine).map_err(RunError::Metrics)?,
        };
        let ends = Arc::new(Ends::default());
        let waker = Arc::new(Waker::default());
        let group: Arc<BaseConsumer<GroupContext>> =
            Arc::new(client::group_consumer(&settings).create_with_context(GroupContext {
                complaints: t.complaints.clone(),
                updates: t.work_order_updates.clone(),
                events: Mutex::new(Vec::new()),
                ends: ends.clone(),
            })?);
        let updates: Arc<BaseConsumer<UpdatesContext>> = Arc::new(
            client::updates_consumer(&settings)
                .create_with_context(UpdatesContext { updates: t.work_order_updates.clone(), ends: ends.clone() })?,
        );
        // Every partition's records go to a queue of its own from the
        // start (before any assignment, so none can land elsewhere): the
        // workers drain them in parallel.
        let mut complaint_queues = Vec::new();
        let mut update_queues = Vec::new();
        for p in 0..partitions as i32 {
            let mut q = group.split_partition_queue(&t.complaints, p).ok_or(RunError::Queue(p))?;
            let w = waker.clone();
            q.set_nonempty_callback(move || w.wake());
            complaint_queues.push(q);
            let mut q = updates.split_partition_queue(&t.work_order_updates, p).ok_or(RunError::Queue(p))?;
            let w = waker.clone();
            q.set_nonempty_callback(move || w.wake());
            update_queues.push(q);
        }
        let eos = settings.processing.guarantee == Guarantee::ExactlyOnce;
        // Join as early as possible: the join takes seconds (the group's
        // initial rebalance delay), the rest of the start-up happens meanwhile.
        group.subscribe(&[t.complaints.as_str()])?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: subscribed");
        let sink =
            KafkaSink::new(client::producer(&settings, eos), eos, &t.state, Arc::new(GroupHandle(group.clone())))?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: producer ready");
        let reader = KafkaReader::new(client::changelog_reader(&settings))?;
        // Partitions added in place while andon was stopped: refused here,
        // before any partition (an old one or a new one) is processed.
        match restore::written_partition_count(&reader, &t.state, partitions as u32) {
            Ok(Some(written)) if written != partitions as u32 => {
                let (state, now) = (t.state.clone(), partitions as u32);
                return Err(client::TopologyError::Repartitioned { state, written, now }.into());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the partition count of the changelog failed: each restore checks its own")
            }
        }
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: changelog's partition count checked");
        let limits = Limits {
            max_event_bytes: settings.processing.max_event_bytes,
            max_message_bytes: client::max_message_bytes(&settings),
        };
        let (jobs, replies) =
            restorer::start(settings.clone(), reader, partitions as u32, limits, waker.clone(), metadata)?;
        let threads = settings.processing.effective_threads();
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("partitions-{i}"))
                .build()
                .map_err(|e| RunError::Thread(std::io::Error::other(e)))?;
            Some(pool)
        } else {
            None
        };
        tracing::info!(
            group = %settings.kafka.group_id,
            guarantee = settings.processing.guarantee.as_str(),
            partitions,
            threads,
            "joined the consumer group"
        );
        Ok(Self {
            settings,
            options,
            group,
            updates,
            complaint_queues,
            update_queues,
            sink: Box::new(sink),
            jobs,
            replies,
            restoring: false,
            topic_configs,
            view_bytes_bounded: client::TopicConfigs::UNKNOWN.view_bytes_bounded,
            slots: BTreeMap::new(),
            status,
            metrics,
            partitions: partitions as u32,
            pool,
            ends,
            positions: BTreeMap::new(),
            waker,
            stream: batch::Stream::default(),
            stream_failed: None,
            attempt: 0,
            generation: 0,
            halted: None,
            joined: false,
            last_board: Instant::now(),
            last_topology: Instant::now(),
            batch_started: Instant::now(),
        })
    }

    /// Runs until `shutdown` is set; then writes the last batch and leaves.
    pub fn run(mut self, shutdown: &AtomicBool) -> Result<(), RunError> {
        let interval = self.settings.processing.commit_interval;
        loop {
            let stopping = shutdown.load(Ordering::Relaxed);
            match self.topic_configs.try_recv() {
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(c)) => {
                    tracing::debug!(view_bytes_bounded = c.view_bytes_bounded, "topic configs checked");
                    self.view_bytes_bounded = c.view_bytes_bounded;
                }
                Err(_) => {}
            }
            self.clean_point();
            self.status.touch();
            let deadline = self.batch_started + interval;
            let mut processed = 0;
            let (mut rounds, mut idle) = (0u32, Duration::ZERO);
            let started = Instant::now();
            loop {
                let n = self.process_round();
                processed += n;
                rounds += 1;
                let sent = self.stream_outputs();
                if !sent
                    || stopping
                    || Instant::now() >= deadline
                    || processed >= MAX_BATCH
                    || shutdown.load(Ordering::Relaxed)
                {
                    break;
                }
                if n == 0 {
                    let t = Instant::now();
                    self.waker.wait(deadline.min(Instant::now() + Duration::from_millis(20)));
                    idle += t.elapsed();
                }
                // A restore finished: take it now, not at the next batch.
                if self.waker.take_reply() {
                    break;
                }
            }
            if processed > 0 {
                tracing::debug!(
                    processed,
                    rounds,
                    busy_ms = (started.elapsed() - idle).as_millis() as u64,
                    idle_ms = idle.as_millis() as u64,
                    "batch processed"
                );
            }
            self.batch_started = Instant::now();
            self.write_batch();
            self.publish();
            // The batch a signal came in is the last: another round would
            // take what was fetched meanwhile and hold the hand-over up by
            // a batch (its transaction: ~100 ms on Apache Kafka).
            if stopping || shutdown.load(Ordering::Relaxed) {
                break;
            }
        }
        if self.settings.kafka.properties.contains_key("group.instance.id") {
            // A static member keeps its partitions for its return within
            // the session timeout: no LeaveGroup (librdkafka sends none
            // for a static member closing), and no unsubscribe either,
            // which on Apache Kafka rejoins with nothing and rebalances
            // every other member.
            tracing::info!("shutting down: a static member, its partitions wait for its return");
            return Ok(());
        }
        tracing::info!("shutting down: leaving the consumer group");
        self.group.unsubscribe();
        // Serve the revoke so the group reassigns at once, not after a timeout.
        let _ = self.group.poll(Duration::from_millis(100));
        Ok(())
    }

    /// Between batches: the group's events, finished restores, new ones,
    /// retries, the topology check.
    fn clean_point(&mut self) {
        // Serves the rebalance callback; records never arrive here (each
        // partition has its own queue), errors of the whole consumer do
        // (a lost connection: its inputs are fetched again).
        let mut lost = [false; 2];
        while let Some(m) = self.group.poll(Duration::ZERO) {
            if let Err(e) = m {
                tracing::warn!(error = %e, "consumer error");
                lost[Side::Complaints as usize] |= errors::hides_records(&e);
            }
        }
        while let Some(m) = self.updates.poll(Duration::ZERO) {
            if let Err(e) = m {
                tracing::warn!(error = %e, "updates consumer error");
                lost[Side::Updates as usize] |= errors::hides_records(&e);
            }
        }
        self.refetch(lost);
        for e in self.group.context().take_events() {
            self.metrics.rebalances.inc();
            match e {
                Event::Assigned(ps) => {
                    self.joined = true;
                    let generation = self.generation();
                    // The updates partitions follow, fetching meanwhile too
                    // (so that an empty one has said so by the time its
                    // task starts).
                    let mut tpl = TopicPartitionList::new();
                    for p in ps {
                        let why = Why::Assigned { generation };
                        self.slots.insert(p, restoring(why, Instant::now(), Backoff::default()));
                        let _ =
                            tpl.add_partition_offset(&self.settings.topics.work_order_updates, p, Offset::Beginning);
                    }
                    if let Err(e) = self.updates.incremental_assign(&tpl) {
                        tracing::warn!(error = %e, "assigning the updates partitions failed");
                    }
                }
                Event::Revoked(ps) => {
                    for p in ps {
                        if let Some(Slot::Active(a)) = self.slots.remove(&p) {
                            tracing::info!(partition = p, dropped_unprocessed = a.task.waiting(), "partition revoked");
                        }
                        self.unassign_updates(p);
                        self.positions.remove(&p);
                        let label = p.to_string();
                        for g in [
                            &self.metrics.consumer_lag,
                            &self.metrics.partition_stalled,
                            &self.metrics.partition_failed,
                        ] {
                            let _ = g.remove_label_values(&[&label]);
                        }
                    }
                }
            }
        }
        while let Ok(reply) = self.replies.try_recv() {
            match reply {
                Reply::Restored(results, elapsed) => {
                    self.restoring = false;
                    self.restored(results, elapsed);
                }
                Reply::Topics(r) => self.topology(r),
            }
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for (p, slot) in self.slots.iter_mut() {
            match slot {
                Slot::Restoring { why, not_before, requested: false, .. } if *not_before <= now => due.push((*p, *why)),
                Slot::Failed { why, retry_at, since, backoff, .. } if *retry_at <= now => {
                    due.push((*p, *why));
                    *slot = Slot::Restoring {
                        why: *why,
                        since: *since,
                        not_before: now,
                        requested: false,
                        backoff: backoff.clone(),
                    };
                }
                _ => {}
            }
        }
        if !due.is_empty() && !self.restoring && self.halted.is_none() {
            for (p, _) in &due {
                if let Some(Slot::Restoring { requested, .. }) = self.slots.get_mut(p) {
                    *requested = true;
                }
            }
            self.restoring = self.jobs.send(Job::Restore(due)).is_ok();
        }
        // `/subjects` asks the owner of a partition for its live counts.
        let slots = &self.slots;
        self.status.view.queries.answer(|p| match slots.get(&p) {
            Some(Slot::Active(a)) => Some(a.task.engine()),
            _ => None,
        });
        if self.last_topology.elapsed() >= TOPOLOGY_EVERY && !self.restoring {
            self.last_topology = Instant::now();
            let _ = self.jobs.send(Job::CheckTopics);
        }
    }

    /// One pass over the active partitions: drain their queues, process.
    fn process_round(&mut self) -> u64 {
        let now = Instant::now();
        let wall = wall_clock();
        let idle = self.settings.processing.max_task_idle;
        let (cq, uq) = (&self.complaint_queues, &self.update_queues);
        let placement =
            Placement { partitioner: self.settings.kafka.input_partitioner, partitions: self.partitions as i32 };
        let misplaced = &self.metrics.input_misplaced;
        let mut actives: Vec<&mut Active> = self
            .slots
            .values_mut()
            .filter_map(|s| match s {
                Slot::Active(a) => Some(&mut **a),
                _ => None,
            })
            .collect();
        if actives.is_empty() {
            return 0;
        }
        let work = |a: &mut Active| {
            let p = a.task.partition as usize;
            // One record from each queue first: an input with a record
            // waiting is not at its end, whatever end the consumer reported
            // before, and the other input's records must not pass it as if
            // it were. While the loop waited on a batch (its acknowledgements,
            // seconds when a broker is down), both queues filled; a stale end
            // let an update through ahead of the complaints fetched before it
            // (to the DLQ as unknown_andon, where replay handles it).
            let first_complaint = peek(a, Side::Complaints, &cq[p]);
            let first_update = peek(a, Side::Updates, &uq[p]);
            // Updates first: usually few or none, and an end-of-partition
            // known before the complaints are offered lets them straight through.
            let mut n = drain(a, Side::Updates, first_update, &uq[p], now, idle, placement, misplaced);
            n += drain(a, Side::Complaints, first_complaint, &cq[p], now, idle, placement, misplaced);
            let tally = a.task.process(now, wall, idle, &mut a.pending);
            n += tally.processed + tally.undecodable;
            // The view's records of this round's outputs go with them.
            let (outputs, mark) = a.task.outputs_since(a.viewed);
            if mark != a.viewed {
                let records = a.view.streamed(outputs, a.task.engine());
                a.table.extend(records);
                a.viewed = mark;
            }
            a.processed += n;
            n
        };
        match &self.pool {
            Some(pool) if actives.len() > 1 => {
                use rayon::prelude::*;
                pool.install(|| actives.par_iter_mut().map(|a| work(a)).sum())
            }
            _ => actives.into_iter().map(work).sum(),
        }
    }

    /// Sends the outputs processed since the last look into the batch
    /// ([`batch::Stream`]); false once that failed (the batch then fails
    /// at its end, and is cut short).
    fn stream_outputs(&mut self) -> bool {
        if self.stream_failed.is_some() {
            return false;
        }
        let t = &self.settings.topics;
        for (p, slot) in self.slots.iter_mut() {
            let Slot::Active(a) = slot else { continue };
            if a.sent == a.pending.len() && a.table.is_empty() {
                continue;
            }
            if let Err(e) = self.stream.send(&mut *self.sink, t, *p, &a.pending[a.sent..], &a.table) {
                self.stream_failed = Some(e);
                return false;
            }
            a.sent = a.pending.len();
            a.table.clear();
        }
        true
    }

    /// The group generation now, or the last one seen (see the field).
    fn generation(&mut self) -> i32 {
        if let Some(g) = group::generation(&self.group) {
            self.generation = g;
        }
        self.generation
    }

    /// Writes what the active partitions processed since the last batch.
    fn write_batch(&mut self) {
        let t = self.settings.topics.clone();
        let after_bytes = self.options.snapshot_after_bytes;
        let now = Instant::now();
        let model = self.status.view.model();
        let bytes_bounded = self.view_bytes_bounded;
        let body = |(p, a): (&i32, &mut Active)| {
            let (c, u) = a.task.input_positions();
            let moved = (c, u) != (a.task.chain.positions.complaints, a.task.chain.positions.updates);
            let streamed = a.viewed != (0, 0);
            if a.pending.is_empty() && !streamed && !a.task.has_changes() && !moved && !a.view.idle_refresh_due(now) {
                return None;
            }
            // The view's table records of outputs not streamed yet (none,
            // unless sending failed) and the re-put when due: from the
            // same state as the outputs (and, for outputs suppressed as
            // already written, written again: table puts are idempotent).
            let table = a.view.records(a.task.outputs_since(a.viewed).0, a.task.engine(), &model, now, bytes_bounded);
            let (kind, body) = a.task.checkpoint_body(after_bytes);
            Some((*p, (kind, body, table)))
        };
        let actives = self.slots.iter_mut().filter_map(|(p, s)| match s {
            Slot::Active(a) => Some((p, &mut **a)),
            _ => None,
        });
        // Encoding the changes of a large batch takes a while: the
        // partitions go in parallel, like their processing.
        let bodies: BTreeMap<i32, (Kind, Encoded, Vec<TableRecord>)> = match &self.pool {
            Some(pool) => {
                use rayon::prelude::*;
                let actives: Vec<_> = actives.collect();
                pool.install(|| actives.into_par_iter().filter_map(body).collect())
            }
            None => actives.filter_map(body).collect(),
        };
        drop(model);
        // Outputs sent while processing made the batch non-empty.
        debug_assert!(!bodies.is_empty() || !self.stream.begun());
        let stream = std::mem::take(&mut self.stream);
        if let Some(e) = self.stream_failed.take() {
            self.fail_batch(e, bodies.keys().copied().collect());
            return;
        }
        if bodies.is_empty() {
            return;
        }
        let started = Instant::now();
        self.attempt += 1;
        let writer = Writer {
            // Tells a retried batch's changelog parts from a failed attempt's.
            attempt: (wall_clock().as_nanos() as u64).wrapping_add(self.attempt),
            partitions: self.partitions,
        };
        let shares: Vec<Share<'_>> = self
            .slots
            .iter()
            .filter_map(|(p, slot)| {
                let Slot::Active(a) = slot else { return None };
                let (kind, body, table) = bodies.get(p)?;
                Some(Share {
                    partition: *p,
                    outputs: &a.pending[a.sent..],
                    table,
                    inputs: a.task.input_positions(),
                    kind: *kind,
                    body,
                    chain: &a.task.chain,
                    era: a.task.era,
                    generation: a.task.generation,
                })
            })
            .collect();
        let result = batch::write(&mut *self.sink, &t, stream, &shares, writer);
        drop(shares);
        match result {
            Ok(done) => {
                self.metrics.transaction_seconds.observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    partitions = done.len(),
                    records = done
                        .iter()
                        .filter_map(|d| match self.slots.get(&d.partition) {
                            Some(Slot::Active(a)) => Some(a.processed),
                            _ => None,
                        })
                        .sum::<u64>(),
                    write_ms = started.elapsed().as_millis() as u64,
                    "batch written"
                );
                let now = Instant::now();
                let wall = wall_clock();
                for d in done {
                    let Some(Slot::Active(a)) = self.slots.get_mut(&d.partition) else { continue };
                    a.task.chain.advance(&d.written, d.stamp, d.positions, d.state_end);
                    a.pending.clear();
                    a.sent = 0;
                    a.viewed = (0, 0);
                    self.status.records.fetch_add(a.processed, Ordering::Relaxed);
                    a.processed = 0;
                    a.progress = now;
                    a.backoff.succeed();
                    let stats = a.task.take_stats();
                    for (class, n) in stats.complaints {
                        self.metrics.complaints.with_label_values(&[class]).inc_by(n);
                    }
                    for reason in stats.dlq {
                        self.metrics.dlq(reason);
                    }
                    for ts in stats.latencies {
                        self.metrics.decision_latency.observe((wall - ts).as_secs_f64().max(0.0));
                    }
                    for o in &stats.outputs {
                        self.metrics.output(o);
                    }
                    log_outputs(d.partition, &stats.outputs);
                }
                self.status.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.fail_batch(e, bodies.keys().copied().collect()),
        }
    }

    /// A batch failed: count it, abort it, and restore the partitions it
    /// touched after their backoff; the others go on.
    fn fail_batch(&mut self, e: batch::BatchError, touched: Vec<i32>) {
        let kind = e.kind();
        self.metrics.batch_failures.with_label_values(&[kind.as_str()]).inc();
        if let Err(abort) = self.sink.abort() {
            tracing::warn!(error = %abort, "aborting the failed batch failed");
        }
        let now = Instant::now();
        let mut waits = Vec::new();
        for p in &touched {
            let Some(Slot::Active(a)) = self.slots.remove(p) else { continue };
            let mut backoff = a.backoff;
            let wait = backoff.fail();
            waits.push(wait.as_millis() as u64);
            self.pause(*p);
            let why = Why::Recovery { era: a.task.era, generation: a.task.generation };
            // `since`: the last progress, not now (see `restored`).
            let since = a.progress;
            // Its lag meanwhile: from the checkpoint it goes back to.
            let at = a.task.chain.positions;
            self.positions.insert(*p, (at.complaints, at.updates));
            self.slots.insert(*p, Slot::Restoring { why, since, not_before: now + wait, requested: false, backoff });
        }
        tracing::warn!(
            kind = kind.as_str(),
            step = e.step,
            error = %e.error,
            partitions = ?touched,
            retry_in_ms = waits.iter().max().copied().unwrap_or(0),
            "batch failed: aborted; the partitions it touched are restored from the changelog and retried"
        );
        if kind == FailureKind::Fenced {
            tracing::warn!("fenced: another member may own these partitions now; a rebalance will tell");
        }
    }

    /// Inputs whose consumer lost its connection (`lost`, per side) or
    /// failed a fetch (per partition): an end reached before is no longer
    /// trusted, and each such partition is sought to the next record its
    /// task expects, which makes the consumer report the end again once it
    /// has fetched to it (librdkafka reports an end once per end offset,
    /// and again after a seek). Without this, after an outage the consumer
    /// that reconnected first ran ahead of the other, whose input passed
    /// for read to its end though records had been written to it meanwhile
    /// (docs/semantics.md#0-input-order).
    fn refetch(&mut self, lost: [bool; 2]) {
        let t = &self.settings.topics;
        let (mut complaints, mut updates) = (TopicPartitionList::new(), TopicPartitionList::new());
        for (p, slot) in self.slots.iter_mut() {
            let Slot::Active(a) = slot else { continue };
            for (side, topic, tpl) in [
                (Side::Complaints, &t.complaints, &mut complaints),
                (Side::Updates, &t.work_order_updates, &mut updates),
            ] {
                let i = side as usize;
                if lost[i] || a.refetch[i] {
                    a.refetch[i] = false;
                    a.task.link_lost(side);
                    let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(a.task.next_offset(side)));
                }
            }
        }
        seek_again(&self.group, complaints, "complaints");
        seek_again(&self.updates, updates, "updates");
    }

    fn pause(&self, p: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.topics.complaints, p);
        if let Err(e) = self.group.pause(&tpl) {
            tracing::debug!(partition = p, error = %e, "pause failed");
        }
        self.unassign_updates(p);
    }

    fn unassign_updates(&self, p: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.topics.work_order_updates, p);
        let _ = self.updates.incremental_unassign(&tpl);
    }
}

/// Seeks `tpl`'s partitions of `consumer` ([`Processor::refetch`]),
/// asynchronously (no timeout): the broker may still be down.
fn seek_again<C: rdkafka::consumer::ConsumerContext>(consumer: &BaseConsumer<C>, tpl: TopicPartitionList, what: &str) {
    if tpl.count() == 0 {
        return;
    }
    let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    tracing::info!(input = what, ?partitions, "a fetch failed: fetching again; the end counts once reached again");
    if let Err(e) = consumer.seek_partitions(tpl, Duration::ZERO) {
        tracing::warn!(input = what, error = %e, "seeking again failed");
    }
}

/// One record from `side`'s queue, unless the task holds enough of it;
/// a record (not an end or an error) tells the task that input is not at
/// its end ([`Task::arriving`](super::task::Task::arriving)).
fn peek<'q, C: rdkafka::consumer::ConsumerContext>(
    a: &mut Active,
    side: Side,
    q: &'q PartitionQueue<C>,
) -> Option<rdkafka::error::KafkaResult<BorrowedMessage<'q>>> {
    if !a.task.accepts(side) {
        return None;
    }
    let m = q.poll(Duration::ZERO);
    if let Some(Ok(m)) = &m {
        a.task.arriving(side, m.offset());
    }
    m
}

/// Hands what a partition queue holds to the task, `first` (already
/// polled from it) first (at most [`DRAIN`], and none while the task holds
/// enough of that input: [`Task::accepts`]), each record's placement
/// checked on the way; returns how many records it processed.
#[allow(clippy::too_many_arguments)]
fn drain<'q, C: rdkafka::consumer::ConsumerContext>(
    a: &mut Active,
    side: Side,
    mut first: Option<rdkafka::error::KafkaResult<BorrowedMessage<'q>>>,
    q: &'q PartitionQueue<C>,
    now: Instant,
    idle: Duration,
    placement: Placement,
    misplaced: &prometheus::IntCounterVec,
) -> u64 {
    let mut n = 0;
    for _ in 0..DRAIN {
        let next = match first.take() {
            Some(m) => Some(m),
            None if !a.task.accepts(side) => break,
            None => q.poll(Duration::ZERO),
        };
        match next {
            Some(Ok(m)) => {
                let warned = &mut a.misplaced_warned[side as usize];
                placement.check(side, a.task.partition, m.key(), warned, misplaced);
                let t = a.task.offer(incoming(side, &m), now, idle, &mut a.pending);
                n += t.processed + t.undecodable;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => a.task.at_end(side),
            Some(Err(e)) => {
                tracing::warn!(?side, partition = a.task.partition, error = %e, "consumer error");
                if errors::hides_records(&e) {
                    a.task.link_lost(side);
                    a.refetch[side as usize] = true;
                }
            }
            None => break,
        }
    }
    n
}

fn incoming<'a>(side: Side, m: &'a BorrowedMessage<'a>) -> Incoming<'a> {
    Incoming {
        side,
        offset: m.offset(),
        key: m.key(),
        value: m.payload(),
        timestamp: m.timestamp().to_millis().map(Ts::from_millis),
    }
}
