//! Scores: one replay's pulls of one issue judged against the truth.
//!
//! Every threshold pull falls in a real work order's episode or in none
//! ([`super::truth`]): `defect_confirmed` makes it good, `no_defect` bad,
//! no verdict (no episode, or a work order still open) unjudged. Manual
//! pulls are the agents' own and stay as they happened: they are counted
//! apart and are never a rule's good or bad pull, but a defect an agent
//! pulled by hand was not missed.
//!
//! Customers hurt are counted per confirmed defect (an episode whose work
//! order closed `defect_confirmed`): the distinct customers who complained
//! in the episode up to the first pull of the run in it; when the run made
//! none, the defect was **missed**, and every customer who complained in the
//! episode up to its close counts (a floor: without the real pull, more
//! would have bought it).

use serde::Serialize;

use crate::event::{Trigger, Verdict};
use crate::time::{Dur, Ts};

use super::grid::{format_window, Candidate};
use super::truth::{Keys, Pull};

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval (95 %) of `k` successes in `n` trials: sound
/// where counts are small and the rate near 0, as bad pulls are. `n = 0`
/// says nothing: [0, 1].
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One row of the report: a rule's pulls on one issue, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub threshold: u32,
    /// As the configuration writes it (`24h`).
    pub window: String,
    pub window_seconds: i64,
    /// Threshold pulls: the rule's own.
    pub pulls: u64,
    /// Pulls in an episode closed `defect_confirmed`.
    pub good: u64,
    /// Pulls in an episode closed `no_defect`: bad pulls.
    pub bad: u64,
    /// Pulls no real work order judges.
    pub unjudged: u64,
    /// Manual pulls (agents' own, as they happened): not scored.
    pub manual: u64,
    /// The bad-pull rate over all pulls, every unjudged pull good … every
    /// one bad. `None` without pulls.
    pub bad_rate_range: Option<[f64; 2]>,
    /// The bad-pull rate on the judged pulls alone.
    pub judged_rate: Option<f64>,
    /// Its 95 % Wilson interval ([0, 1] without judged pulls).
    pub judged_interval: [f64; 2],
    /// The top of the 95 % Wilson interval with every unjudged pull counted
    /// bad: what the recommendation holds to the target.
    pub worst_upper: f64,
    /// Confirmed defects (episodes closed `defect_confirmed`) in the history.
    pub defects: u64,
    /// Confirmed defects this rule never pulled (nor an agent by hand).
    pub missed: u64,
    /// Customers hurt over all confirmed defects: before the first pull, or
    /// all of the episode's when missed.
    pub customers_hurt: u64,
    /// The part of `customers_hurt` before good pulls of this rule.
    pub hurt_before_good_pulls: u64,
    /// Distinct customers before each good pull: median.
    pub hurt_per_good_pull_median: Option<f64>,
    /// From the episode's first complaint to the good pull, seconds: median and 90th percentile.
    pub first_complaint_to_pull_median_s: Option<f64>,
    pub first_complaint_to_pull_p90_s: Option<f64>,
}

impl Score {
    pub fn candidate(&self) -> Candidate {
        Candidate { threshold: self.threshold, window: Dur::from_secs(self.window_seconds) }
    }

    pub fn rule(&self) -> String {
        format!("{} in {}", self.threshold, self.window)
    }
}

/// Scores the pulls of one run that fall on keys of `issue` (`rule`: the
/// issue's rule in that run).
pub fn score(keys: &Keys, issue: &str, rule: Candidate, pulls: &[Pull]) -> Score {
    let mut s = Score {
        threshold: rule.threshold,
        window: format_window(rule.window),
        window_seconds: rule.window.as_secs(),
        pulls: 0,
        good: 0,
        bad: 0,
        unjudged: 0,
        manual: 0,
        bad_rate_range: None,
        judged_rate: None,
        judged_interval: [0.0, 1.0],
        worst_upper: 1.0,
        defects: 0,
        missed: 0,
        customers_hurt: 0,
        hurt_before_good_pulls: 0,
        hurt_per_good_pull_median: None,
        first_complaint_to_pull_median_s: None,
        first_complaint_to_pull_p90_s: None,
    };
    // Pulls per key, in time order.
    let mut by_key: Vec<(u32, Ts, Trigger)> =
        pulls.iter().filter(|p| *keys.keys[p.key as usize].issue == *issue).map(|p| (p.key, p.at, p.trigger)).collect();
    by_key.sort_by_key(|&(k, t, _)| (k, t));
    let mut hurt_each = Vec::new();
    let mut delays = Vec::new();
    // Whether each confirmed episode of a key was pulled, and how early.
    for &(key, at, trigger) in &by_key {
        let verdict = keys.keys[key as usize].episode(at).and_then(|e| e.verdict);
        match trigger {
            Trigger::Manual => s.manual += 1,
            Trigger::Threshold => {
                s.pulls += 1;
                match verdict {
                    Some(Verdict::DefectConfirmed) => s.good += 1,
                    Some(Verdict::NoDefect) => s.bad += 1,
                    None => s.unjudged += 1,
                }
            }
        }
    }
    for (id, key) in keys.keys.iter().enumerate() {
        if *key.issue != *issue {
            continue;
        }
        let key_pulls = {
            let from = by_key.partition_point(|&(k, _, _)| (k as usize) < id);
            let to = by_key.partition_point(|&(k, _, _)| (k as usize) <= id);
            &by_key[from..to]
        };
        for (i, w) in key.work_orders.iter().enumerate() {
            if w.verdict != Some(Verdict::DefectConfirmed) {
                continue;
            }
            let Some(until) = w.closed_at else { continue };
            s.defects += 1;
            let after = key.episode_of(i).after;
            let first = key_pulls.iter().find(|&&(_, t, _)| after.is_none_or(|a| t > a) && t <= until);
            match first {
                Some(&(_, t, trigger)) => {
                    let (hurt, first_complaint) = key.customers_between(after, t);
                    s.customers_hurt += hurt;
                    if trigger == Trigger::Threshold {
                        s.hurt_before_good_pulls += hurt;
                        hurt_each.push(hurt as f64);
                        delays.push(first_complaint.map_or(0.0, |f| (t - f).as_secs_f64()));
                    }
                }
                None => {
                    s.missed += 1;
                    s.customers_hurt += key.customers_between(after, until).0;
                }
            }
        }
    }
    if s.pulls > 0 {
        let n = s.pulls as f64;
        s.bad_rate_range = Some([s.bad as f64 / n, (s.bad + s.unjudged) as f64 / n]);
    }
    let judged = s.good + s.bad;
    if judged > 0 {
        s.judged_rate = Some(s.bad as f64 / judged as f64);
    }
    let (lo, hi) = wilson(s.bad, judged);
    s.judged_interval = [lo, hi];
    s.worst_upper = wilson(s.bad + s.unjudged, s.pulls).1;
    s.hurt_per_good_pull_median = quantile(&mut hurt_each, 0.5);
    s.first_complaint_to_pull_median_s = quantile(&mut delays, 0.5);
    s.first_complaint_to_pull_p90_s = quantile(&mut delays, 0.9);
    s
}

/// The q-quantile by the nearest-rank method (`None` when empty).
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::truth::{Key, WorkOrder};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 0/10, 1/10, 81/263.
        let (lo, hi) = wilson(0, 10);
        assert!(close(lo, 0.0) && close(hi, 0.2775), "{lo} {hi}");
        let (lo, hi) = wilson(1, 10);
        assert!(close(lo, 0.0179) && close(hi, 0.4042), "{lo} {hi}");
        let (lo, hi) = wilson(81, 263);
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0), "no trials, no knowledge");
        assert_eq!(wilson(5, 5).1, 1.0);
    }

    #[test]
    fn two_percent_takes_about_190_clean_pulls_to_show() {
        // What "history too thin" rests on: with no bad pull at all, the
        // top of the interval falls under 2 % only from n = 189.
        assert!(wilson(0, 188).1 > 0.02);
        assert!(wilson(0, 189).1 <= 0.02);
    }

    fn t(h: i64) -> Ts {
        Ts::EPOCH + Dur::from_secs(h * 3600)
    }

    /// Key 0: a defect (customers 1..=4 at hours 1..=4, closed confirmed at 10);
    /// key 1: a false alarm (closed no_defect at 10); key 2: never pulled in reality.
    fn keys() -> Keys {
        let wo = |v| {
            vec![WorkOrder { opened_at: t(3), trigger: Trigger::Threshold, closed_at: Some(t(10)), verdict: Some(v) }]
        };
        let mut k = Keys::of(&[]);
        k.keys = vec![
            Key {
                subject_key: "sku:D".into(),
                issue: "x".into(),
                complaints: (1..=4).map(|h| (t(h), h as u64)).collect(),
                work_orders: wo(Verdict::DefectConfirmed),
            },
            Key {
                subject_key: "sku:F".into(),
                issue: "x".into(),
                complaints: vec![(t(1), 9)],
                work_orders: wo(Verdict::NoDefect),
            },
            Key { subject_key: "sku:N".into(), issue: "x".into(), complaints: vec![(t(1), 7)], work_orders: vec![] },
            Key { subject_key: "sku:D".into(), issue: "other".into(), complaints: vec![], work_orders: vec![] },
        ];
        k
    }

    fn rule() -> Candidate {
        Candidate { threshold: 2, window: Dur::from_secs(86_400) }
    }

    #[test]
    fn pulls_are_judged_by_the_episode_they_fall_in() {
        let pulls = [
            Pull { key: 0, at: t(2), trigger: Trigger::Threshold },
            Pull { key: 1, at: t(1), trigger: Trigger::Threshold },
            Pull { key: 2, at: t(1), trigger: Trigger::Threshold },
            Pull { key: 3, at: t(1), trigger: Trigger::Threshold }, // another issue
        ];
        let s = score(&keys(), "x", rule(), &pulls);
        assert_eq!((s.pulls, s.good, s.bad, s.unjudged, s.manual), (3, 1, 1, 1, 0));
        assert_eq!(s.bad_rate_range, Some([1.0 / 3.0, 2.0 / 3.0]));
        assert_eq!(s.judged_rate, Some(0.5));
        assert_eq!(s.worst_upper, wilson(2, 3).1);
        assert_eq!((s.defects, s.missed, s.customers_hurt, s.hurt_before_good_pulls), (1, 0, 2, 2));
        assert_eq!(s.first_complaint_to_pull_median_s, Some(3600.0), "first complaint at 1 h, pull at 2 h");
        assert_eq!(s.window, "1d");
    }

    #[test]
    fn a_defect_never_pulled_is_missed_with_all_its_customers_and_a_manual_pull_is_not_scored() {
        let s = score(&keys(), "x", rule(), &[]);
        assert_eq!((s.pulls, s.defects, s.missed, s.customers_hurt, s.hurt_before_good_pulls), (0, 1, 1, 4, 0));
        assert_eq!((s.bad_rate_range, s.judged_rate, s.worst_upper), (None, None, 1.0));
        let manual = [Pull { key: 0, at: t(3), trigger: Trigger::Manual }];
        let s = score(&keys(), "x", rule(), &manual);
        assert_eq!((s.pulls, s.manual, s.missed, s.customers_hurt, s.hurt_before_good_pulls), (0, 1, 0, 3, 0));
    }

    #[test]
    fn a_pull_after_the_close_is_not_the_defects() {
        let pulls = [Pull { key: 0, at: t(11), trigger: Trigger::Threshold }];
        let s = score(&keys(), "x", rule(), &pulls);
        assert_eq!((s.pulls, s.unjudged, s.missed), (1, 1, 1));
    }
}
