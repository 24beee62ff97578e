//! What really happened: the history replayed under the rules in force,
//! with the real updates, exactly as `andon replay` does it (the same
//! engine, the same [`Merge`], escalations on stream time). Its work orders
//! and their verdicts are the truth every candidate is judged by.
//!
//! **Episodes.** The work orders of one (subject, issue) key follow one
//! another: the next can only open once the last has closed. Work order k,
//! closed at c_k, owns the **episode** (c_{k−1}, c_k], from the close of the
//! key's previous work order (or the start of the history) to its own
//! close. A candidate pull at t on that key falls in exactly one episode or
//! after the last close; in an episode it is judged by that work order's
//! verdict. A work order still open at the end owns everything after the
//! previous close and has no verdict; so has time after the last close.
//! One exception keeps a replay of the rules in force equal to reality: a
//! pull at the very time a real work order opened is judged by that one,
//! even where input out of order (a manual pull read after a close but
//! made before it) opened it before the previous one closed.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64;

use crate::engine::{Engine, EngineConfig, EscalationClock, RecordMeta};
use crate::event::{Complaint, Output, Trigger, Update, Verdict, WorkOrderEvent};
use crate::merge::{Merge, Next, Timed};
use crate::time::{Dur, Ts};

/// Index of a (subject, issue) key in [`Keys`].
pub type KeyId = u32;

/// A pull as a replay made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pull {
    pub key: KeyId,
    pub at: Ts,
    pub trigger: Trigger,
}

/// One (subject, issue) key of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub subject_key: Box<str>,
    pub issue: Box<str>,
    /// Every decoded complaint of the key as (event time, customer hash),
    /// sorted by time: who complained when, for the customers hurt.
    pub complaints: Vec<(Ts, u64)>,
    /// The real work orders, in the order they opened.
    pub work_orders: Vec<WorkOrder>,
}

/// A real work order of the baseline replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkOrder {
    pub opened_at: Ts,
    pub trigger: Trigger,
    /// `None`: open at the end of the history.
    pub closed_at: Option<Ts>,
    pub verdict: Option<Verdict>,
}

/// The episode a time falls in ([module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// Index into the key's `work_orders`.
    pub index: usize,
    /// Exclusive: the previous work order's close (`None`: the start of history).
    pub after: Option<Ts>,
    /// Inclusive; `None`: open at the end.
    pub until: Option<Ts>,
    pub verdict: Option<Verdict>,
}

impl Key {
    /// The episode of a pull at `t`, if any: the real work order opened at
    /// `t` itself (the same pull as in reality), else the episode whose span
    /// holds `t`.
    pub fn episode(&self, t: Ts) -> Option<Episode> {
        let index = match self.work_orders.iter().rposition(|w| w.opened_at == t) {
            Some(i) => i,
            None => self.work_orders.iter().position(|w| w.closed_at.is_none_or(|c| t <= c))?,
        };
        Some(self.episode_of(index))
    }

    /// The episode of work order `index`. It starts at the previous close,
    /// or just before its own pull where that came first: a manual pull
    /// read after a close but made before it (input out of order) opens
    /// before the previous work order's close.
    pub fn episode_of(&self, index: usize) -> Episode {
        let w = self.work_orders[index];
        let prev = index.checked_sub(1).and_then(|i| self.work_orders[i].closed_at);
        let after = prev.map(|c| c.min(w.opened_at - Dur::from_nanos(1)));
        Episode { index, after, until: w.closed_at, verdict: w.verdict }
    }

    /// Distinct customers who complained after `after` (exclusive) and at
    /// or before `until`, and the time of the first of those complaints.
    pub fn customers_between(&self, after: Option<Ts>, until: Ts) -> (u64, Option<Ts>) {
        let from = after.map_or(0, |a| self.complaints.partition_point(|(t, _)| *t <= a));
        let to = self.complaints.partition_point(|(t, _)| *t <= until);
        let slice = self.complaints.get(from..to).unwrap_or(&[]);
        let mut seen: Vec<u64> = slice.iter().map(|(_, c)| *c).collect();
        seen.sort_unstable();
        seen.dedup();
        (seen.len() as u64, slice.first().map(|(t, _)| *t))
    }
}

/// Every key of the history, looked up by `&str` without allocating.
#[derive(Debug, Default)]
pub struct Keys {
    pub keys: Vec<Key>,
    index: FxHashMap<Box<str>, FxHashMap<Box<str>, KeyId>>,
}

impl Keys {
    /// The keys of `complaints`, each with its complaints in time order.
    pub fn of(complaints: &[Complaint]) -> Keys {
        let mut k = Keys::default();
        for c in complaints {
            let id = k.intern(&c.subject_key, &c.issue);
            k.keys[id as usize].complaints.push((c.occurred_at, xxh3_64(c.customer_id.as_bytes())));
        }
        for key in &mut k.keys {
            key.complaints.sort_by_key(|(t, _)| *t);
        }
        k
    }

    fn intern(&mut self, subject_key: &str, issue: &str) -> KeyId {
        if let Some(id) = self.get(subject_key, issue) {
            return id;
        }
        let id = self.keys.len() as KeyId;
        self.keys.push(Key {
            subject_key: subject_key.into(),
            issue: issue.into(),
            complaints: Vec::new(),
            work_orders: Vec::new(),
        });
        self.index.entry(subject_key.into()).or_default().insert(issue.into(), id);
        id
    }

    pub fn get(&self, subject_key: &str, issue: &str) -> Option<KeyId> {
        self.index.get(subject_key).and_then(|m| m.get(issue)).copied()
    }

    /// The issues of the history, sorted.
    pub fn issues(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.iter().map(|k| k.issue.to_string()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What the baseline replay gives: its pulls (the baseline row) and, kept
/// in `Keys`, the real work orders.
#[derive(Debug, Default)]
pub struct Baseline {
    pub pulls: Vec<Pull>,
}

struct C<'a>(&'a Complaint);
struct U<'a>(&'a Update);

impl Timed for C<'_> {
    fn event_time(&self) -> Option<Ts> {
        Some(self.0.occurred_at)
    }
}

impl Timed for U<'_> {
    fn event_time(&self) -> Option<Ts> {
        Some(self.0.at)
    }
}

/// Replays the history under the rules in force and records its work
/// orders into `keys`. Lines that did not decode are gone already; they
/// would only have gone to the DLQ.
pub fn baseline(cfg: Arc<EngineConfig>, complaints: &[Complaint], updates: &[Update], keys: &mut Keys) -> Baseline {
    let mut engine = Engine::new(cfg, EscalationClock::StreamTime);
    let mut merge: Merge<C<'_>, U<'_>> = Merge::default();
    let (mut ci, mut ui) = (complaints.iter(), updates.iter());
    let mut out = Vec::with_capacity(16);
    let mut base = Baseline::default();
    // andon_id -> (key, index of its work order)
    let mut open: FxHashMap<String, (KeyId, usize)> = FxHashMap::default();
    loop {
        if merge.len(crate::merge::Side::Complaints) == 0 {
            if let Some(c) = ci.next() {
                merge.push_complaint(C(c));
            }
        }
        if merge.len(crate::merge::Side::Updates) == 0 {
            if let Some(u) = ui.next() {
                merge.push_update(U(u));
            }
        }
        // Both files are read whole: a side with nothing queued is at its end.
        match merge.next(|_| true) {
            Next::Complaint(C(c)) => {
                // No record metadata in files, so nothing here can reject.
                let _ = engine.on_complaint(c, RecordMeta::default(), &mut out);
            }
            Next::Update(U(u)) => {
                let _ = engine.on_update(u, RecordMeta::default(), &mut out);
            }
            Next::Wait(_) | Next::Empty => break,
        }
        for o in out.drain(..) {
            match o {
                Output::WorkOrder(WorkOrderEvent::Opened {
                    andon_id, subject_key, issue, trigger, opened_at, ..
                }) => {
                    let Some(key) = keys.get(&subject_key, &issue) else { continue };
                    base.pulls.push(Pull { key, at: opened_at, trigger });
                    let wos = &mut keys.keys[key as usize].work_orders;
                    wos.push(WorkOrder { opened_at, trigger, closed_at: None, verdict: None });
                    open.insert(andon_id, (key, wos.len() - 1));
                }
                Output::WorkOrder(WorkOrderEvent::Closed { andon_id, verdict, closed_at, .. }) => {
                    if let Some((key, i)) = open.remove(&andon_id) {
                        let w = &mut keys.keys[key as usize].work_orders[i];
                        w.closed_at = Some(closed_at);
                        w.verdict = Some(verdict);
                    }
                }
                _ => {}
            }
        }
    }
    base
}

/// How long a work order of `issue` stays open, for candidate pulls no
/// real work order judges: the median of the real ones of that issue, else
/// of all issues, else `fallback` (the route's SLAs summed).
pub fn typical_open(keys: &Keys, issue: &str, fallback: Dur) -> Dur {
    let spans = |only: Option<&str>| -> Vec<Dur> {
        let mut v: Vec<Dur> = keys
            .keys
            .iter()
            .filter(|k| only.is_none_or(|i| *k.issue == *i))
            .flat_map(|k| k.work_orders.iter().filter_map(|w| w.closed_at.map(|c| c - w.opened_at)))
            .collect();
        v.sort_unstable();
        v
    };
    let v = spans(Some(issue));
    let v = if v.is_empty() { spans(None) } else { v };
    v.get(v.len() / 2).copied().unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> Ts {
        Ts::EPOCH + Dur::from_secs(h * 3600)
    }

    fn key(wos: &[(i64, Option<i64>, Option<Verdict>)]) -> Key {
        Key {
            subject_key: "sku:A".into(),
            issue: "x".into(),
            complaints: vec![(t(1), 1), (t(2), 2), (t(2), 1), (t(5), 3), (t(12), 4)],
            work_orders: wos
                .iter()
                .map(|&(o, c, v)| WorkOrder {
                    opened_at: t(o),
                    trigger: Trigger::Threshold,
                    closed_at: c.map(t),
                    verdict: v,
                })
                .collect(),
        }
    }

    #[test]
    fn episodes_run_from_the_previous_close_to_their_own() {
        let k = key(&[
            (2, Some(4), Some(Verdict::NoDefect)),
            (10, Some(20), Some(Verdict::DefectConfirmed)),
            (30, None, None),
        ]);
        let e = |h| k.episode(t(h)).map(|e| (e.index, e.verdict));
        assert_eq!(e(0), Some((0, Some(Verdict::NoDefect))), "before the first pull: the first episode");
        assert_eq!(e(4), Some((0, Some(Verdict::NoDefect))), "the close itself is inside");
        assert_eq!(e(5), Some((1, Some(Verdict::DefectConfirmed))), "right after a close: the next");
        assert_eq!(e(25), Some((2, None)), "open at the end: no verdict");
        assert_eq!(e(1000), Some((2, None)));
        let closed = key(&[(2, Some(4), Some(Verdict::DefectConfirmed))]);
        assert_eq!(closed.episode(t(5)), None, "after the last close: no episode");
        assert_eq!(key(&[]).episode(t(0)), None, "a key never pulled");
    }

    #[test]
    fn customers_are_counted_once_between_the_bounds() {
        let k = key(&[]);
        assert_eq!(k.customers_between(None, t(2)), (2, Some(t(1))), "customer 1 twice counts once");
        assert_eq!(k.customers_between(Some(t(1)), t(5)), (3, Some(t(2))), "the lower bound is exclusive");
        assert_eq!(k.customers_between(Some(t(12)), t(20)), (0, None));
    }
}
