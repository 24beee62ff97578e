//! A partition's life on this member: restoring, failed (a restore that
//! failed, retried with backoff) or active; restores that finish and make
//! partitions active, all at once; a changed partition count that stops
//! them all.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::super::client;
use super::super::errors::Backoff;
use super::super::restore::{RestoreError, Restored, Why};
use super::super::task::{OutputMark, Produce, Task};
use super::restorer::topology_problem;
use super::Processor;
use crate::view::{TableRecord, TableWriter};

/// A partition this member owns. `since`: its last progress (its
/// assignment, a batch that moved it, or nothing left to do), the start
/// of the clock that `processing.stall_after` is measured on.
pub(super) enum Slot {
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

pub(super) struct Active {
    pub(super) task: Task,
    /// Outputs processed and not yet committed.
    pub(super) pending: Vec<Produce>,
    /// How many of `pending` were sent into the batch while it was
    /// processed ([`crate::kafka::batch::Stream`]).
    pub(super) sent: usize,
    /// The view's table records of the outputs processed, to be sent with
    /// them; and how many of the batch's outputs they cover.
    pub(super) table: Vec<TableRecord>,
    pub(super) viewed: OutputMark,
    /// Records processed since the last batch.
    pub(super) processed: u64,
    /// When the partition last made progress (a batch that moved it, or
    /// nothing waiting).
    pub(super) progress: Instant,
    pub(super) backoff: Backoff,
    /// The partition's side of the cluster-wide view's table.
    pub(super) view: TableWriter,
    /// Inputs ([`crate::merge::Side`]) whose fetch failed: fetched again
    /// at the next clean point (see [`Task::link_lost`]).
    pub(super) refetch: [bool; 2],
    /// A misplaced input has been logged (per [`crate::merge::Side`]).
    pub(super) misplaced_warned: [bool; 2],
}

pub(super) fn restoring(why: Why, since: Instant, backoff: Backoff) -> Slot {
    Slot::Restoring { why, since, not_before: Instant::now(), requested: false, backoff }
}

impl Processor {
    /// Restores finished: each restored partition starts where its chain
    /// ends (one seek, one resume, one updates assignment for them all:
    /// per partition, the seeks alone took a third of a second for 16);
    /// each failed one is marked failed and tried again later.
    pub(super) fn restored(&mut self, results: Vec<(i32, Result<Restored, RestoreError>)>, elapsed: Duration) {
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
                sent: 0,
                table: Vec::new(),
                viewed: (0, 0),
                processed: 0,
                // The clock of no progress runs on through a restore: a
                // partition whose batches fail, restore and fail again is
                // stalled, however short each backoff.
                progress: since,
                backoff,
                view: TableWriter::new(p, Instant::now()),
                refetch: [false; 2],
                misplaced_warned: [false; 2],
            };
            self.slots.insert(p, Slot::Active(Box::new(active)));
        }
    }

    pub(super) fn topology(&mut self, r: Result<usize, client::TopologyError>) {
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
                    why: Why::Recovery { era: 0, generation: 0 },
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
}
