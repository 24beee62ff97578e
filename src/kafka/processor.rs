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
    /// The restorer has replied.
    replied: AtomicBool,
}

impl Waker {
    fn reply(&self) {
        self.replied.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn take_reply(&self) -> bool {
        self.replied.swap(false, Ordering::SeqCst)
    }

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

/// A partition this member owns. `since`: its last progress (its
/// assignment, a batch that moved it, or nothing left to do), the start
/// of the clock that `processing.stall_after` is measured on.
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
    Topics(Result<usize, client::TopologyError>),
}

/// What stops processing after a check of the topics' partition counts:
/// a count other than the one andon started with, or counts no longer
/// equal. (A check that failed to ask says nothing.)
fn topology_problem(started_with: u32, checked: &Result<usize, client::TopologyError>) -> Option<String> {
    match checked {
        Ok(n) if *n as u32 == started_with => None,
        Ok(n) => Some(format!(
            "the partition count of andon's topics changed from {started_with} to {n}: keys would move between partitions and ids would restart; processing stopped (docs/guarantees.md, \"Migrating to a new partition count\")"
        )),
        Err(e @ client::TopologyError::Unequal(_)) => Some(format!("{e}; processing stopped")),
        Err(_) => None,
    }
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
    /// Each owned partition's input positions (complaints, updates) when it
    /// was last active: its lag while it restores or has failed.
    positions: BTreeMap<i32, (i64, i64)>,
    waker: Arc<Waker>,
    attempt: u64,
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
        let partitions = client::check_topics(&metadata, &settings)?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: brokers and topics checked");
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
        // Join as early as possible: the join takes seconds (the group's
        // initial rebalance delay), the rest of the start-up happens meanwhile.
        group.subscribe(&[t.complaints.as_str()])?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: subscribed");
        let sink = KafkaSink::new(client::producer(&settings, eos), eos, Arc::new(GroupHandle(group.clone())))?;
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "start: producer ready");
        let reader = KafkaReader::new(client::plain_consumer(&settings))?;
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
        let (jobs, replies) = restorer(settings.clone(), reader, partitions as u32, limits, waker.clone(), metadata)?;
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
            positions: BTreeMap::new(),
            waker,
            attempt: 0,
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
            if let Ok(Err(e)) = self.compaction.try_recv() {
                return Err(e.into());
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
                if stopping || Instant::now() >= deadline || processed >= MAX_BATCH || shutdown.load(Ordering::Relaxed)
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
                    self.joined = true;
                    let generation = group::generation(&self.group).unwrap_or(0);
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

    /// A restore finished: the partition starts where its chain ends, or
    /// is marked failed and tried again later.
    /// Restores finished: each restored partition starts where its chain
    /// ends (one seek, one resume, one updates assignment for them all:
    /// per partition, the seeks alone took a third of a second for 16);
    /// each failed one is marked failed and tried again later.
    fn restored(&mut self, results: Vec<(i32, Result<Restored, RestoreError>)>, elapsed: Duration) {
        let t = self.settings.topics.clone();
        let (mut seek, mut resume) = (TopicPartitionList::new(), TopicPartitionList::new());
        let (mut seek_updates, mut assign_updates) = (TopicPartitionList::new(), TopicPartitionList::new());
        let mut activated = Vec::new();
        for (p, r) in results {
            let Some(Slot::Restoring { why, since, backoff, .. }) = self.slots.get(&p) else {
                continue; // revoked meanwhile
            };
            let (why, since, mut backoff) = (*why, *since, backoff.clone());
            match r {
                Ok(restored) => {
                    self.metrics.restore_seconds.observe(elapsed.as_secs_f64());
                    let task = restored.task;
                    let pos = task.chain.positions;
                    let known = task.chain.seq > 0;
                    let offset = |o| if known { Offset::Offset(o) } else { Offset::Beginning };
                    // Newly assigned with no checkpoint: both inputs are
                    // assigned at their beginning already. With one, they
                    // are sought to it. After a recovery (complaints paused,
                    // updates unassigned, records consumed past the
                    // checkpoint) both start again from it.
                    match why {
                        Why::Assigned { .. } if !known => {}
                        Why::Assigned { .. } => {
                            let _ = seek.add_partition_offset(&t.complaints, p, offset(pos.complaints));
                            let _ = seek_updates.add_partition_offset(&t.work_order_updates, p, offset(pos.updates));
                        }
                        Why::Recovery { .. } => {
                            let _ = seek.add_partition_offset(&t.complaints, p, offset(pos.complaints));
                            let _ = assign_updates.add_partition_offset(&t.work_order_updates, p, offset(pos.updates));
                        }
                    }
                    resume.add_partition(&t.complaints, p);
                    self.metrics.partition_failed.with_label_values(&[&p.to_string()]).set(0);
                    activated.push((p, task, since, backoff));
                }
                Err(e) => {
                    let wait =
                        if e.is_transient() { backoff.fail() } else { backoff.fail().max(Duration::from_secs(5)) };
                    tracing::error!(
                        partition = p,
                        error = %e,
                        retry_in_ms = wait.as_millis() as u64,
                        "restore failed: the partition is not processed until it restores (docs/guarantees.md#restore-is-exact-or-loud)"
                    );
                    self.metrics.partition_failed.with_label_values(&[&p.to_string()]).set(1);
                    let now = Instant::now();
                    self.slots
                        .insert(p, Slot::Failed { why, since, retry_at: now + wait, backoff, error: e.to_string() });
                }
            }
        }
        if activated.is_empty() {
            return;
        }
        let sought =
            if seek.count() > 0 { self.group.seek_partitions(seek, Duration::from_secs(10)).map(drop) } else { Ok(()) };
        let sought = sought.and_then(|()| {
            if seek_updates.count() > 0 {
                self.updates.seek_partitions(seek_updates, Duration::from_secs(10)).map(drop)
            } else {
                Ok(())
            }
        });
        {
            if let Err(e) = sought {
                // The partitions stay restoring: their restore is redone.
                tracing::warn!(error = %e, "seeking restored partitions failed: restoring them again");
                for (p, _, since, backoff) in activated {
                    let why = match self.slots.get(&p) {
                        Some(Slot::Restoring { why, .. }) => *why,
                        _ => continue,
                    };
                    self.slots.insert(p, restoring(why, since, backoff));
                }
                return;
            }
        }
        if let Err(e) = self.group.resume(&resume) {
            tracing::warn!(error = %e, "resuming restored partitions failed");
        }
        if assign_updates.count() > 0 {
            if let Err(e) = self.updates.incremental_assign(&assign_updates) {
                tracing::warn!(error = %e, "assigning the updates partitions failed");
            }
        }
        for (p, task, since, backoff) in activated {
            tracing::debug!(partition = p, seq = task.chain.seq, "partition active");
            let active = Active {
                task,
                pending: Vec::new(),
                processed: 0,
                // The clock of no progress runs on through a restore: a
                // partition whose batches fail, restore and fail again is
                // stalled, however short each backoff.
                progress: since,
                backoff,
                view: TableWriter::new(p, Instant::now()),
            };
            self.slots.insert(p, Slot::Active(Box::new(active)));
        }
    }

    fn topology(&mut self, r: Result<usize, client::TopologyError>) {
        let Some(problem) = topology_problem(self.partitions, &r) else {
            if let Err(e) = r {
                tracing::warn!(error = %e, "checking the topics failed");
            }
            return;
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
            // Updates first: usually few or none, and an end-of-partition
            // known before the complaints are offered lets them straight through.
            let mut n = drain(a, Side::Updates, &uq[p], now, idle);
            n += drain(a, Side::Complaints, &cq[p], now, idle);
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
            if a.pending.is_empty() && !a.task.has_changes() && !moved && !a.view.idle_refresh_due(now) {
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
        // Ready: in the group, every partition active and moving.
        let mut ready = self.joined && self.halted.is_none();
        for (p, slot) in self.slots.iter_mut() {
            let label = p.to_string();
            let (state, error, stalled) = match slot {
                Slot::Active(a) => {
                    if a.task.caught_up() && a.pending.is_empty() {
                        a.progress = now;
                    }
                    self.positions.insert(*p, a.task.input_positions());
                    ("active", None, now.duration_since(a.progress) > stall_after)
                }
                Slot::Restoring { since, .. } => ("restoring", None, now.duration_since(*since) > stall_after),
                Slot::Failed { error, .. } => ("failed", Some(error.clone()), true),
            };
            // A partition restoring or failed is as far as it was when last
            // active (never active here: its lag is not known yet).
            if let Some(pos) = self.positions.get(p) {
                let lag = [(Side::Complaints, pos.0), (Side::Updates, pos.1)]
                    .iter()
                    .map(|(side, at)| self.ends.get(*side, *p).map_or(0, |end| (end - at).max(0)))
                    .sum::<i64>();
                self.metrics.consumer_lag.with_label_values(&[&label]).set(lag);
            }
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
    waker: Arc<Waker>,
    metadata: client::MetadataClient,
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
                    Job::CheckTopics => Reply::Topics(client::check_topics(&metadata, &settings)),
                };
                if tx.send(reply).is_err() {
                    return;
                }
                waker.reply();
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

#[cfg(test)]
mod tests {
    use super::*;
    use client::TopologyError;

    #[test]
    fn a_changed_or_unequal_partition_count_stops_processing_a_failed_check_does_not() {
        assert_eq!(topology_problem(4, &Ok(4)), None);
        let grown = topology_problem(4, &Ok(8)).expect("stops");
        assert!(grown.contains("from 4 to 8"), "{grown}");
        let unequal = topology_problem(4, &Err(TopologyError::Unequal("andon.dlq: 8".into()))).expect("stops");
        assert!(unequal.contains("andon.dlq: 8"), "{unequal}");
        assert_eq!(topology_problem(4, &Err(TopologyError::Stopped)), None, "a check that could not ask says nothing");
    }
}
