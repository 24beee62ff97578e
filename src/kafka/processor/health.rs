//! What the member reports after each batch: each partition's health
//! (`/readyz`, `andon_partition_stalled`), its consumer lag, the gauges of
//! the state it holds; and one log line per pull (with its delist),
//! relist, escalation and close.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::slots::Slot;
use super::Processor;
use crate::event::{Action, DelistCommand, Output, WorkOrderEvent};
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

/// One structured line per pull, relist, escalation and closed work order.
/// A delist is told on the line of the pull that caused it (the engine
/// emits the command just before the pull's `opened`): one event, one line,
/// where two lines per pull were ~8 % of andon's instructions (callgrind)
/// at a pull every ten complaints.
pub(super) fn log_outputs(partition: i32, outputs: &[Output]) {
    let mut delist: Option<&DelistCommand> = None;
    for o in outputs {
        if let Some(c) = delist.take() {
            match o {
                Output::WorkOrder(WorkOrderEvent::Opened { andon_id, .. }) if *andon_id == c.andon_id => {
                    log_pull(partition, o, Some(c));
                    continue;
                }
                _ => log_command(partition, c),
            }
        }
        match o {
            Output::Command(c) if c.action == Action::Delist => delist = Some(c),
            Output::Command(c) => log_command(partition, c),
            Output::WorkOrder(WorkOrderEvent::Opened { .. }) => log_pull(partition, o, None),
            Output::WorkOrder(WorkOrderEvent::Escalated { andon_id, step, owner, .. }) => {
                tracing::info!(partition, andon_id = %andon_id, step, owner = %owner, "step escalated")
            }
            Output::WorkOrder(WorkOrderEvent::Closed { andon_id, verdict, .. }) => {
                tracing::info!(partition, andon_id = %andon_id, verdict = verdict.as_str(), "work order closed")
            }
            Output::WorkOrder(WorkOrderEvent::StepCompleted { .. }) => {}
        }
    }
    if let Some(c) = delist {
        log_command(partition, c);
    }
}

fn log_pull(partition: i32, o: &Output, delist: Option<&DelistCommand>) {
    let Output::WorkOrder(WorkOrderEvent::Opened { andon_id, issue, trigger, evidence_total, .. }) = o else { return };
    // Without a delist, `command_id` and `subject` are left out (a field
    // whose value is `None` is not recorded).
    tracing::info!(
        partition,
        andon_id = %andon_id,
        issue = %issue,
        trigger = trigger.as_str(),
        evidence = evidence_total,
        delisted = delist.is_some(),
        command_id = delist.map(|c| tracing::field::display(&c.command_id)),
        subject = delist.map(|c| tracing::field::display(&c.subject_key)),
        "andon pulled"
    )
}

/// A relist, or a delist without its pull beside it (not what the engine
/// emits, but never silent).
fn log_command(partition: i32, c: &DelistCommand) {
    let message = match c.action {
        Action::Delist => "subject delisted",
        Action::Relist => "subject relisted",
    };
    tracing::info!(
        partition,
        action = c.action.as_str(),
        command_id = %c.command_id,
        andon_id = %c.andon_id,
        subject = %c.subject_key,
        "{message}"
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::Trigger;
    use crate::time::Ts;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn command(action: Action, andon: &str, n: u32) -> Output {
        Output::Command(DelistCommand {
            command_id: format!("sku:A#{}#{n}", action.as_str()),
            action,
            subject_key: "sku:A".into(),
            andon_id: andon.into(),
            issued_at: Ts::EPOCH,
            reason: None,
        })
    }

    fn opened(andon: &str, delisted: bool) -> Output {
        Output::WorkOrder(WorkOrderEvent::Opened {
            andon_id: andon.into(),
            subject_key: "sku:A".into(),
            issue: "x".into(),
            trigger: Trigger::Threshold,
            delisted,
            opened_at: Ts::EPOCH,
            evidence: vec!["e1".into()],
            evidence_total: 1,
            steps: Vec::new(),
        })
    }

    fn logged(outputs: &[Output]) -> Vec<String> {
        let lines = Lines::default();
        let w = lines.clone();
        let sub = tracing_subscriber::fmt().with_writer(move || w.clone()).with_ansi(false).without_time().finish();
        tracing::subscriber::with_default(sub, || log_outputs(3, outputs));
        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_pull_and_its_delist_are_one_line_and_nothing_is_left_out() {
        let lines = logged(&[
            command(Action::Delist, "sku:A/x#1", 1),
            opened("sku:A/x#1", true),
            // Its rule delists, but the subject was off sale already.
            opened("sku:A/y#1", true),
            command(Action::Relist, "sku:A/x#1", 1),
            // A delist with no pull beside it is still told.
            command(Action::Delist, "sku:A/z#1", 2),
        ]);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].contains("andon pulled") && lines[0].contains("delisted=true"), "{}", lines[0]);
        assert!(lines[0].contains("command_id=sku:A#delist#1") && lines[0].contains("partition=3"), "{}", lines[0]);
        assert!(lines[1].contains("andon pulled") && lines[1].contains("delisted=false"), "{}", lines[1]);
        assert!(!lines[1].contains("command_id") && !lines[1].contains("subject="), "{}", lines[1]);
        assert!(lines[2].contains("subject relisted"), "{}", lines[2]);
        assert!(lines[3].contains("subject delisted") && lines[3].contains("sku:A/z#1"), "{}", lines[3]);
    }
}
