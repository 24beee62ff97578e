//! `andon run`: the consumer-group member's loop. Each turn: at a clean
//! point (nothing processed and not committed), serve the group (the
//! rebalance callback only assigns and pauses), take finished restores,
//! start new ones; then for up to `commit_interval`, drain every active
//! partition's queues into its task and process (the partitions spread
//! over `processing.threads`); then write the batch ([`batch::write`]).
//!
//! Each partition is in one of three states: restoring (paused on the
//! consumer, its restore running on the restorer thread), failed (a
//! restore that failed: retried with backoff, named in the log and the
//! metrics, `/readyz` failing), or active. A failed batch is aborted and
//! only the partitions it touched go back to restoring; the others go on.
//! A partition with input waiting and no progress for
//! `processing.stall_after` is reported stalled
//! (docs/guarantees.md#progress-is-watched).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::batch::{self, Share, Writer};
use super::checkpoint::Kind;
use super::client;
use super::errors::{Backoff, FailureKind};
use super::group::{self, Ends, Event, GroupContext, GroupHandle, UpdatesContext};
use super::io::rdkafka::{KafkaReader, KafkaSink};
use super::io::BatchSink;
use super::restore::{self, RestoreError, Restored, Why};
use super::task::{Incoming, Limits, Produce, Task};
use super::{RunError, RunOptions};
use crate::config::{Guarantee, Settings};
use crate::event::{Output, WorkOrderEvent};
use crate::merge::Side;
use crate::ops::metrics::Metrics;
use crate::ops::status::{PartitionHealth, Status};
use crate::time::Ts;
use crate::view::{TableRecord, TableWriter};

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

/// Wakes the loop when a partition queue receives something.
#[derive(Default)]
struct Waker {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Waker {
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
    }

    /// Waits until woken or `until`; clears the wake.
    fn wait(&self, until: Instant) {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        while !*woken {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            woken = self.cond.wait_timeout(woken, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        *woken = false;
    }
}

/// A partition this member owns.
enum Slot {
    /// Waiting for its restore (`requested`: handed to the restorer).
    Restoring {
        why: Why,
        since: Instant,
        not_before: Instant,
        requested: bool,
        backoff: Backoff,
    },
    /// Its restore failed; tried again at `retry_at`.
    Failed {
        why: Why,
        since: Instant,
        retry_at: Instant,
        backoff: Backoff,
        error: String,
    },
    Active(Box<Active>),
}

struct Active {
    task: Task,
    /// Outputs processed and not yet written.
    pending: Vec<Produce>,
    /// Records processed since the last batch.
    processed: u64,
    /// When the partition last made progress (a batch that moved it, or
    /// nothing waiting).
    progress: Instant,
    backoff: Backoff,
    /// The partition's side of the cluster-wide view's table.
    view: TableWriter,
}

/// The restorer thread: restores (all requested partitions at once) and
/// topology checks, off the loop.
enum Job {
    Restore(Vec<(i32, Why)>),
    CheckTopics,
}

enum Reply {
    Restored(Vec<(i32, Result<Restored, RestoreError>)>, Duration),
    Topics(Result<usize, String>),
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
    compaction: mpsc::Receiver<Result<(), client::TopologyError>>,
    slots: BTreeMap<i32, Slot>,
    status: Arc<Status>,
    metrics: Metrics,
    partitions: u32,
    /// Workers for the partitions (none with one thread).
    pool: Option<rayon::ThreadPool>,
    ends: Arc<Ends>,
    waker: Arc<Waker>,
    attempt: u64,
    /// Set when a topic's partition count changed: processing stops.
    halted: Option<String>,
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
        client::wait_for_brokers(&settings, shutdown)?;
        let partitions = client::check_topics(&settings)?;
        // The broker may not say (the MockCluster lets the question time
        // out): asked beside the group join, not before it.
        let compaction = {
            let (tx, rx) = mpsc::channel();
            let s = settings.clone();
            std::thread::Builder::new()
                .name("compaction-check".into())
                .spawn(move || {
                    let _ = tx.send(client::check_state_compaction(&s));
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
        let sink = KafkaSink::new(client::producer(&settings, eos), eos, Arc::new(GroupHandle(group.clone())))?;
        let reader = KafkaReader::new(client::plain_consumer(&settings))?;
        let limits = Limits {
            max_event_bytes: settings.processing.max_event_bytes,
            max_message_bytes: client::max_message_bytes(&settings),
        };
        let (jobs, replies) = restorer(settings.clone(), reader, partitions as u32, limits)?;
        group.subscribe(&[t.complaints.as_str()])?;
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
            compaction,
            slots: BTreeMap::new(),
            status,
            metrics,
            partitions: partitions as u32,
            pool,
            ends,
            waker,
            attempt: 0,
            halted: None,
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
            if let Ok(Err(e)) = self.compaction.try_recv() {
                return Err(e.into());
            }
            self.clean_point();
            self.status.touch();
            let deadline = self.batch_started + interval;
            let mut processed = 0;
            loop {
                let n = self.process_round();
                processed += n;
                if stopping || Instant::now() >= deadline || processed >= MAX_BATCH || shutdown.load(Ordering::Relaxed)
                {
                    break;
                }
                if n == 0 {
                    self.waker.wait(deadline.min(Instant::now() + Duration::from_millis(20)));
                }
            }
            self.batch_started = Instant::now();
            self.write_batch();
            self.publish();
            if stopping {
                break;
            }
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
        // partition has its own queue).
        while let Some(m) = self.group.poll(Duration::ZERO) {
            if let Err(e) = m {
                tracing::warn!(error = %e, "consumer error");
            }
        }
        while let Some(m) = self.updates.poll(Duration::ZERO) {
            if let Err(e) = m {
                tracing::warn!(error = %e, "updates consumer error");
            }
        }
        for e in self.group.context().take_events() {
            self.metrics.rebalances.inc();
            match e {
                Event::Assigned(ps) => {
                    let generation = group::generation(&self.group).unwrap_or(0);
                    for p in ps {
                        let why = Why::Assigned { generation };
                        self.slots.insert(p, restoring(why, Instant::now(), Backoff::default()));
                    }
                }
                Event::Revoked(ps) => {
                    for p in ps {
                        if let Some(Slot::Active(a)) = self.slots.remove(&p) {
                            tracing::info!(partition = p, dropped_unprocessed = a.task.waiting(), "partition revoked");
                        }
                        self.unassign_updates(p);
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
                    for (p, r) in results {
                        self.restored(p, r, elapsed);
                    }
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

    /// A restore finished: the partition starts where its chain ends, or
    /// is marked failed and tried again later.
    fn restored(&mut self, p: i32, r: Result<Restored, RestoreError>, elapsed: Duration) {
        let Some(Slot::Restoring { why, since, backoff, .. }) = self.slots.get(&p) else {
            return; // revoked meanwhile
        };
        let (why, since, mut backoff) = (*why, *since, backoff.clone());
        match r {
            Ok(restored) => {
                self.metrics.restore_seconds.observe(elapsed.as_secs_f64());
                let task = restored.task;
                let pos = task.chain.positions;
                let known = task.chain.seq > 0;
                let offset = |o| if known { Offset::Offset(o) } else { Offset::Beginning };
                let t = &self.settings.topics;
                if let Err(e) = self.group.seek(&t.complaints, p, offset(pos.complaints), Duration::from_secs(10)) {
                    tracing::warn!(partition = p, error = %e, "seek failed: restoring again");
                    self.slots.insert(p, restoring(why, since, backoff));
                    return;
                }
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition_offset(&t.complaints, p, offset(pos.complaints));
                if let Err(e) = self.group.resume(&tpl) {
                    tracing::warn!(partition = p, error = %e, "resume failed");
                }
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition_offset(&t.work_order_updates, p, offset(pos.updates));
                if let Err(e) = self.updates.incremental_assign(&tpl) {
                    tracing::warn!(partition = p, error = %e, "assigning the updates partition failed");
                }
                self.metrics.partition_failed.with_label_values(&[&p.to_string()]).set(0);
                self.slots.insert(
                    p,
                    Slot::Active(Box::new(Active {
                        task,
                        pending: Vec::new(),
                        processed: 0,
                        progress: Instant::now(),
                        backoff,
                        view: TableWriter::new(p),
                    })),
                );
            }
            Err(e) => {
                let wait = if e.is_transient() { backoff.fail() } else { backoff.fail().max(Duration::from_secs(5)) };
                tracing::error!(
                    partition = p,
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64,
                    "restore failed: the partition is not processed until it restores (README, \"A corrupt or broken checkpoint chain\")"
                );
                self.metrics.partition_failed.with_label_values(&[&p.to_string()]).set(1);
                let now = Instant::now();
                self.slots.insert(p, Slot::Failed { why, since, retry_at: now + wait, backoff, error: e.to_string() });
            }
        }
    }

    fn topology(&mut self, r: Result<usize, String>) {
        let problem = match r {
            Ok(n) if n as u32 == self.partitions => return,
            Ok(n) => format!(
                "the partition count of andon's topics changed from {} to {n}: keys would move between partitions and ids would restart; processing stopped (README, \"Partition counts are fixed\")",
                self.partitions
            ),
            Err(e) if e.contains("must have the same partition count") => e,
            Err(e) => {
                tracing::warn!(error = %e, "checking the topics failed");
                return;
            }
        };
        if self.halted.is_none() {
            tracing::error!(problem = %problem, "stopping processing");
        }
        // Nothing more is processed: every partition is paused, its
        // uncommitted work dropped, and reported failed.
        let ps: Vec<i32> = self.slots.keys().copied().collect();
        for p in ps {
            self.pause(p);
            let now = Instant::now();
            self.slots.insert(
                p,
                Slot::Failed {
                    why: Why::Recovery { era: 0 },
                    since: now,
                    retry_at: now + Duration::from_secs(3600 * 24 * 365),
                    backoff: Backoff::default(),
                    error: problem.clone(),
                },
            );
            self.metrics.partition_failed.with_label_values(&[&p.to_string()]).set(1);
        }
        self.halted = Some(problem);
    }

    /// One pass over the active partitions: drain their queues, process.
    fn process_round(&mut self) -> u64 {
        let now = Instant::now();
        let wall = wall_clock();
        let idle = self.settings.processing.max_task_idle;
        let (cq, uq) = (&self.complaint_queues, &self.update_queues);
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
            let mut n = drain(a, Side::Complaints, &cq[p], now, idle);
            n += drain(a, Side::Updates, &uq[p], now, idle);
            let tally = a.task.process(now, wall, idle, &mut a.pending);
            n += tally.processed + tally.undecodable;
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

    /// Writes what the active partitions processed since the last batch.
    fn write_batch(&mut self) {
        let t = self.settings.topics.clone();
        let after_bytes = self.options.snapshot_after_bytes;
        let mut bodies: BTreeMap<i32, (Kind, Vec<u8>, Vec<TableRecord>)> = BTreeMap::new();
        let now = Instant::now();
        let model = self.status.view.model();
        for (p, slot) in self.slots.iter_mut() {
            let Slot::Active(a) = slot else { continue };
            let (c, u) = a.task.input_positions();
            let moved = (c, u) != (a.task.chain.positions.complaints, a.task.chain.positions.updates);
            if a.pending.is_empty() && !a.task.has_changes() && !moved {
                continue;
            }
            // The view's table records come from the same state as the
            // outputs (and, for outputs suppressed as already written, are
            // written again: table puts are idempotent).
            let table = a.view.records(a.task.batch_outputs(), a.task.engine(), &model, now);
            let (kind, body) = a.task.checkpoint_body(after_bytes);
            bodies.insert(*p, (kind, body, table));
        }
        drop(model);
        if bodies.is_empty() {
            return;
        }
        let started = Instant::now();
        self.attempt += 1;
        let writer = Writer {
            generation: group::generation(&self.group).unwrap_or(0),
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
                    outputs: &a.pending,
                    table,
                    inputs: a.task.input_positions(),
                    kind: *kind,
                    body,
                    chain: &a.task.chain,
                    era: a.task.era,
                })
            })
            .collect();
        let result = batch::write(&mut *self.sink, &t, &shares, writer);
        drop(shares);
        match result {
            Ok(done) => {
                self.metrics.transaction_seconds.observe(started.elapsed().as_secs_f64());
                let now = Instant::now();
                let wall = wall_clock();
                for d in done {
                    let Some(Slot::Active(a)) = self.slots.get_mut(&d.partition) else { continue };
                    a.task.chain.advance(&d.written, d.stamp, d.positions, d.state_end);
                    a.pending.clear();
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
                        log_output(d.partition, o);
                    }
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
            let why = Why::Recovery { era: a.task.era };
            self.slots
                .insert(*p, Slot::Restoring { why, since: now, not_before: now + wait, requested: false, backoff });
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

    /// After a batch: health, lag and gauges; at most once a second the
    /// board that `/andons` and the status page show.
    fn publish(&mut self) {
        let now = Instant::now();
        let stall_after = self.settings.processing.stall_after;
        let mut health = Vec::with_capacity(self.slots.len());
        let mut ready = self.halted.is_none();
        for (p, slot) in self.slots.iter_mut() {
            let label = p.to_string();
            let (state, error, stalled) = match slot {
                Slot::Active(a) => {
                    if a.task.caught_up() && a.pending.is_empty() {
                        a.progress = now;
                    }
                    let stalled = now.duration_since(a.progress) > stall_after;
                    let pos = a.task.input_positions();
                    let lag = [(Side::Complaints, pos.0), (Side::Updates, pos.1)]
                        .iter()
                        .map(|(side, at)| self.ends.get(*side, *p).map_or(0, |end| (end - at).max(0)))
                        .sum::<i64>();
                    self.metrics.consumer_lag.with_label_values(&[&label]).set(lag);
                    ("active", None, stalled)
                }
                Slot::Restoring { since, .. } => ("restoring", None, now.duration_since(*since) > stall_after),
                Slot::Failed { error, .. } => ("failed", Some(error.clone()), true),
            };
            self.metrics.partition_stalled.with_label_values(&[&label]).set(i64::from(stalled));
            ready &= state == "active" && !stalled;
            health.push(PartitionHealth { partition: *p, state, stalled, error });
        }
        *self.status.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
        *self.status.problem.lock().unwrap_or_else(|e| e.into_inner()) = self.halted.clone();
        self.status.set_partitions(self.slots.keys().copied());
        self.status.ready.store(ready, Ordering::Relaxed);
        if self.last_board.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_board = Instant::now();
        let (mut open, mut delisted, mut keys) = (0, 0, 0);
        for slot in self.slots.values() {
            let Slot::Active(a) = slot else { continue };
            let e = a.task.engine();
            open += e.open_andon_count();
            delisted += e.delisted_subject_count();
            keys += e.key_count();
        }
        self.metrics.open_andons.set(open as i64);
        self.metrics.delisted_subjects.set(delisted as i64);
        self.metrics.state_keys.set(keys as i64);
    }
}

fn restoring(why: Why, since: Instant, backoff: Backoff) -> Slot {
    Slot::Restoring { why, since, not_before: Instant::now(), requested: false, backoff }
}

/// Hands what a partition queue holds to the task (at most [`DRAIN`]);
/// returns how many records it processed on the way.
fn drain<C: rdkafka::consumer::ConsumerContext>(
    a: &mut Active,
    side: Side,
    q: &PartitionQueue<C>,
    now: Instant,
    idle: Duration,
) -> u64 {
    let mut n = 0;
    for _ in 0..DRAIN {
        match q.poll(Duration::ZERO) {
            Some(Ok(m)) => {
                let t = a.task.offer(incoming(side, &m), now, idle, &mut a.pending);
                n += t.processed + t.undecodable;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => a.task.at_end(side),
            Some(Err(e)) => tracing::warn!(?side, partition = a.task.partition, error = %e, "consumer error"),
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

/// Starts the restorer thread.
fn restorer(
    settings: Arc<Settings>,
    reader: KafkaReader,
    partitions: u32,
    limits: Limits,
) -> Result<(mpsc::Sender<Job>, mpsc::Receiver<Reply>), RunError> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let (tx, replies) = mpsc::channel::<Reply>();
    std::thread::Builder::new()
        .name("restorer".into())
        .spawn(move || {
            for job in rx {
                let reply = match job {
                    Job::Restore(ps) => {
                        let started = Instant::now();
                        let r = restore::restore(&reader, &settings, &ps, partitions, &limits);
                        Reply::Restored(r, started.elapsed())
                    }
                    Job::CheckTopics => Reply::Topics(client::check_topics(&settings).map_err(|e| e.to_string())),
                };
                if tx.send(reply).is_err() {
                    return;
                }
            }
        })
        .map_err(RunError::Thread)?;
    Ok((jobs, replies))
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
        Output::WorkOrder(WorkOrderEvent::Opened { andon_id, issue, trigger, evidence_total, .. }) => tracing::info!(
            partition,
            andon_id = %andon_id,
            issue = %issue,
            trigger = trigger.as_str(),
            evidence = evidence_total,
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
