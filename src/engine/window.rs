//! The distinct-customer sliding window of one (subject, issue) key.
//!
//! A key keeps its counted complaints sorted by event time (arrival order
//! among equal times). After a counted complaint `c` arrives, the key pulls
//! when some interval of length W, ends included, that contains `c` holds
//! complaints from at least N distinct customers (spec, Semantics 2).
//!
//! Only intervals that start at a complaint's time need checking: any
//! qualifying interval can slide right until its start meets the first
//! complaint inside it, keeping every complaint and still containing `c`.
//! Of the qualifying intervals we take the earliest start, and from it one
//! complaint per customer: `c` for its own customer, the earliest for the
//! others. That choice is deterministic, so a replay and a restored engine
//! give the same evidence.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::time::{Dur, Ts};

/// A counted complaint, as much of it as the window needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub at: Ts,
    pub customer: Box<str>,
    pub event_id: Box<str>,
}

/// Inserts `c` after every complaint at the same or an earlier time, and
/// returns its index.
pub fn insert(counted: &mut Vec<Counted>, c: Counted) -> usize {
    let i = counted.partition_point(|x| x.at <= c.at);
    // Most keys only ever hold a complaint or two below the threshold: do
    // not start at Vec's default capacity of four (state per key counts).
    if counted.len() < 4 {
        counted.reserve_exact(1);
    }
    counted.insert(i, c);
    i
}

/// Drops complaints older than `cutoff`: they can no longer share an interval
/// of length W with any complaint that is not too late.
pub fn evict_before(counted: &mut Vec<Counted>, cutoff: Ts) {
    let n = counted.partition_point(|x| x.at < cutoff);
    if n > 0 {
        counted.drain(..n);
    }
}

/// The indices (ascending) of the evidence for a threshold pull right after
/// the complaint at index `i`, or `None` when no interval reaches `threshold`.
pub fn threshold_evidence(counted: &[Counted], i: usize, window: Dur, threshold: u32) -> Option<Vec<usize>> {
    let c = counted.get(i)?;
    if threshold <= 1 {
        return Some(vec![i]);
    }
    let start_from = c.at - window;
    let mut j = counted.partition_point(|x| x.at < start_from);
    // Fast path, the common case: fewer complaints than the threshold
    // within W either side of c cannot hold enough distinct customers.
    let reach = counted.partition_point(|x| x.at <= c.at + window);
    if ((reach - j) as u64) < u64::from(threshold) {
        return None;
    }
    let mut end = j; // exclusive end of the interval [counted[j].at, counted[j].at + W]
    let mut per_customer: FxHashMap<&str, u32> = FxHashMap::default();
    let mut distinct = 0u32;
    while j < counted.len() && counted[j].at <= c.at {
        let until = counted[j].at + window;
        while end < counted.len() && counted[end].at <= until {
            let n = per_customer.entry(&counted[end].customer).or_insert(0);
            if *n == 0 {
                distinct += 1;
            }
            *n += 1;
            end += 1;
        }
        if distinct >= threshold {
            return Some(evidence(counted, j, end, i));
        }
        let t = counted[j].at;
        while j < counted.len() && counted[j].at == t {
            if let Some(n) = per_customer.get_mut(&*counted[j].customer) {
                *n -= 1;
                if *n == 0 {
                    distinct -= 1;
                }
            }
            j += 1;
        }
    }
    None
}

/// One complaint per customer of `counted[from..to]`: `i` for its own
/// customer, the earliest for each other.
fn evidence(counted: &[Counted], from: usize, to: usize, i: usize) -> Vec<usize> {
    let own = &counted[i].customer;
    let mut seen: FxHashMap<&str, ()> = FxHashMap::default();
    seen.insert(own, ());
    let mut picked = vec![i];
    for (k, x) in counted.iter().enumerate().take(to).skip(from) {
        if seen.insert(&x.customer, ()).is_none() {
            picked.push(k);
        }
    }
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counted complaint at `at` nanoseconds.
    fn c(at: i64, customer: &str, id: &str) -> Counted {
        Counted { at: Ts::from_nanos(at), customer: customer.into(), event_id: id.into() }
    }

    fn ns(n: i64) -> Dur {
        Dur::from_nanos(n)
    }

    fn ids(counted: &[Counted], idx: Option<Vec<usize>>) -> Option<Vec<&str>> {
        idx.map(|v| v.into_iter().map(|k| &*counted[k].event_id).collect())
    }

    #[test]
    fn exactly_one_window_apart_pulls_ends_included() {
        let v = vec![c(0, "a", "e1"), c(10, "b", "e2")];
        assert_eq!(ids(&v, threshold_evidence(&v, 1, ns(10), 2)), Some(vec!["e1", "e2"]));
        let v = vec![c(0, "a", "e1"), c(11, "b", "e2")];
        assert_eq!(threshold_evidence(&v, 1, ns(10), 2), None);
    }

    #[test]
    fn same_customer_counts_once() {
        let v = vec![c(0, "a", "e1"), c(1, "a", "e2"), c(2, "a", "e3")];
        assert_eq!(threshold_evidence(&v, 2, ns(10), 2), None);
    }

    #[test]
    fn late_complaint_bridges_into_the_past() {
        // c arrives late at t=5; the pair (a@0, c@5) is within W=5.
        let v = vec![c(0, "a", "e1"), c(5, "b", "late"), c(20, "c", "e3")];
        assert_eq!(ids(&v, threshold_evidence(&v, 1, ns(5), 2)), Some(vec!["e1", "late"]));
    }

    #[test]
    fn evidence_takes_the_pulling_complaint_for_its_customer() {
        let v = vec![c(0, "b", "b-early"), c(1, "a", "a1"), c(2, "b", "b-pull")];
        assert_eq!(ids(&v, threshold_evidence(&v, 2, ns(10), 2)), Some(vec!["a1", "b-pull"]));
    }

    #[test]
    fn insert_keeps_arrival_order_among_equal_times() {
        let mut v = vec![c(5, "a", "1")];
        assert_eq!(insert(&mut v, c(5, "b", "2")), 1);
        assert_eq!(insert(&mut v, c(0, "b", "3")), 0);
        evict_before(&mut v, Ts::from_nanos(5));
        assert_eq!(v.len(), 2);
    }
}
