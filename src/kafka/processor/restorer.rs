//! The restorer thread: restores (all requested partitions at once) and
//! checks of the topics' partition counts, off the processing loop, so
//! that neither counts against `max.poll.interval.ms` or `/healthz`; and
//! the [`Waker`] through which it, and the partition queues, wake the loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::super::client;
use super::super::io::rdkafka::KafkaReader;
use super::super::restore::{self, RestoreError, Restored, Why};
use super::super::task::Limits;
use super::super::RunError;
use crate::config::Settings;

/// Wakes the loop when a partition queue receives something.
#[derive(Default)]
pub(super) struct Waker {
    woken: Mutex<bool>,
    cond: Condvar,
    /// The restorer has replied.
    replied: AtomicBool,
}

impl Waker {
    pub(super) fn reply(&self) {
        self.replied.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(super) fn take_reply(&self) -> bool {
        self.replied.swap(false, Ordering::SeqCst)
    }

    pub(super) fn wake(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
    }

    /// Waits until woken or `until`; clears the wake.
    pub(super) fn wait(&self, until: Instant) {
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

/// Work for the restorer thread.
pub(super) enum Job {
    Restore(Vec<(i32, Why)>),
    CheckTopics,
}

pub(super) enum Reply {
    Restored(Vec<(i32, Result<Restored, RestoreError>)>, Duration),
    Topics(Result<usize, client::TopologyError>),
}

/// What stops processing after a check of the topics' partition counts:
/// a count other than the one andon started with, or counts no longer
/// equal. (A check that failed to ask says nothing.)
pub(super) fn topology_problem(started_with: u32, checked: &Result<usize, client::TopologyError>) -> Option<String> {
    match checked {
        Ok(n) if *n as u32 == started_with => None,
        Ok(n) => Some(format!(
            "the partition count of andon's topics changed from {started_with} to {n}: keys would move between partitions and ids would restart; processing stopped (docs/guarantees.md, \"Migrating to a new partition count\")"
        )),
        Err(e @ client::TopologyError::Unequal(_)) => Some(format!("{e}; processing stopped")),
        Err(_) => None,
    }
}

/// Starts the restorer thread.
pub(super) fn start(
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
                    Job::CheckTopics => Reply::Topics(client::check_topics(&metadata, &settings, Duration::ZERO)),
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
