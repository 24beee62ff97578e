//! What the member reports after each batch: each partition's health
//! (`/readyz`, `andon_partition_stalled`), its consumer lag, the gauges of
//! the state it holds; and one log line per pull, delist, relist and
//! escalation.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::slots::Slot;
use super::Processor;
use crate::event::{Output, WorkOrderEvent};
use crate::merge::Side;
use crate::ops::status::PartitionHealth;

impl Processor {
    /// After a batch: health, lag and gauges; at most once a second the
    /// board that `/andons` and the status page show.
    pub(super) fn publish(&mut self) {
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

/// One structured line per pull, delist, relist and escalation.
pub(super) fn log_output(partition: i32, o: &Output) {
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
