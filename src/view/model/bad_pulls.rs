//! The bad-pull rate (`GET /bad-pulls`): closed andons whose verdict was
//! `no_defect`, by issue, trigger and complaint channel, never per agent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Model, HISTORY};
use crate::event::{Channel, Verdict};
use crate::time::Ts;

impl Model {
    /// The bad-pull rate of the last 30 days by issue, trigger and
    /// complaint channel (`GET /bad-pulls`). Never per agent.
    pub fn bad_pulls(&self, now: Ts) -> BadPullsReport {
        let since = now - HISTORY;
        let mut all = Rate::default();
        let (mut by_issue, mut by_trigger, mut by_channel) =
            (BTreeMap::<String, Rate>::new(), BTreeMap::<&str, Rate>::new(), BTreeMap::<&str, Rate>::new());
        for c in self.closed.values().filter(|c| c.closed_at >= since) {
            let bad = c.verdict == Verdict::NoDefect;
            all.add(bad);
            by_issue.entry(c.issue.clone()).or_default().add(bad);
            by_trigger.entry(c.trigger.as_str()).or_default().add(bad);
            by_channel.entry(c.channel.map_or(NO_CHANNEL, Channel::as_str)).or_default().add(bad);
        }
        let rows = |m: BTreeMap<String, Rate>| m.into_iter().map(|(k, r)| r.row(k)).collect();
        BadPullsReport {
            window_days: 30,
            target: 0.02,
            closed: all.closed,
            bad: all.bad,
            rate: all.rate(),
            by_issue: rows(by_issue),
            by_trigger: rows(by_trigger.into_iter().map(|(k, r)| (k.to_owned(), r)).collect()),
            by_channel: rows(by_channel.into_iter().map(|(k, r)| (k.to_owned(), r)).collect()),
        }
    }
}

/// The `channel` of complaints that named none.
pub const NO_CHANNEL: &str = "unspecified";

#[derive(Default)]
struct Rate {
    closed: u64,
    bad: u64,
}

impl Rate {
    fn add(&mut self, bad: bool) {
        self.closed += 1;
        self.bad += u64::from(bad);
    }

    fn rate(&self) -> Option<f64> {
        (self.closed > 0).then(|| self.bad as f64 / self.closed as f64)
    }

    fn row(&self, key: String) -> RateRow {
        RateRow { key, closed: self.closed, bad: self.bad, rate: self.rate() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    /// The issue, trigger or channel.
    pub key: String,
    pub closed: u64,
    /// Closed as `no_defect`.
    pub bad: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadPullsReport {
    pub window_days: u32,
    pub target: f64,
    pub closed: u64,
    pub bad: u64,
    pub rate: Option<f64>,
    pub by_issue: Vec<RateRow>,
    pub by_trigger: Vec<RateRow>,
    pub by_channel: Vec<RateRow>,
}
