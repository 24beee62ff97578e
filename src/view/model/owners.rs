//! Owners' timeliness (`GET /owners`): per owner team and per person,
//! steps open, overdue and completed, their durations and the share
//! within SLA.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Model, DAY};
use crate::time::Ts;
use crate::view::record::StepRecord;

impl Model {
    /// Every completed step known: of open andons, and of closed ones.
    fn completed_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.open.values().flat_map(|a| a.done.iter()).chain(self.closed.values().flat_map(|c| c.steps.iter()))
    }

    /// Owners' timeliness (`GET /owners`).
    pub fn owners(&self, now: Ts) -> OwnersReport {
        let (d7, d30) = (now - DAY * 7, now - DAY * 30);
        let mut teams: BTreeMap<String, Tally> = BTreeMap::new();
        let mut actors: BTreeMap<String, (Tally, BTreeSet<String>)> = BTreeMap::new();
        for a in self.open.values() {
            let t = teams.entry(a.owner.clone()).or_default();
            t.open += 1;
            t.overdue += u64::from(a.due_at < now);
        }
        for s in self.completed_steps().filter(|s| s.completed_at >= d30) {
            teams.entry(s.owner.clone()).or_default().add(s, d7);
            let (t, owners) = actors.entry(s.actor.clone()).or_default();
            t.add(s, d7);
            owners.insert(s.owner.clone());
        }
        OwnersReport {
            window_days: 30,
            owners: teams
                .into_iter()
                .map(|(owner, t)| OwnerRow {
                    owner,
                    open_steps: t.open,
                    overdue: t.overdue,
                    timeliness: t.timeliness(),
                })
                .collect(),
            actors: actors
                .into_iter()
                .map(|(actor, (t, owners))| ActorRow {
                    actor,
                    owners: owners.into_iter().collect(),
                    timeliness: t.timeliness(),
                })
                .collect(),
        }
    }
}

#[derive(Default)]
struct Tally {
    open: u64,
    overdue: u64,
    completed_7d: u64,
    within_sla: u64,
    /// Seconds each step completed in the last 30 days took.
    durations: Vec<f64>,
}

impl Tally {
    fn add(&mut self, s: &StepRecord, d7: Ts) {
        self.completed_7d += u64::from(s.completed_at >= d7);
        self.within_sla += u64::from(s.completed_at <= s.due_at);
        self.durations.push((s.completed_at - s.started_at).as_secs_f64().max(0.0));
    }

    fn timeliness(&self) -> Timeliness {
        let n = self.durations.len();
        Timeliness {
            completed_7d: self.completed_7d,
            completed_30d: n as u64,
            median_seconds: percentile(&self.durations, 50),
            p90_seconds: percentile(&self.durations, 90),
            within_sla: (n > 0).then(|| self.within_sla as f64 / n as f64),
        }
    }
}

/// The nearest-rank percentile (the smallest value with at least `p` % of
/// the values at or below it); `None` for no values.
pub fn percentile(values: &[f64], p: u32) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (u64::from(p) * v.len() as u64).div_ceil(100).max(1) as usize;
    Some(v[rank - 1])
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnersReport {
    pub window_days: u32,
    pub owners: Vec<OwnerRow>,
    pub actors: Vec<ActorRow>,
}

/// One owner team. Durations are seconds from a step's start (the pull or
/// the previous step's completion) to its completion, over the steps
/// completed in the last 30 days (event time); `within_sla` is the share
/// of those completed by their due time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerRow {
    pub owner: String,
    /// Open andons whose current step is this owner's.
    pub open_steps: u64,
    /// Of those, past their due time now.
    pub overdue: u64,
    #[serde(flatten)]
    pub timeliness: Timeliness,
}

/// One person who completed steps in the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorRow {
    pub actor: String,
    /// The owner teams whose steps they completed.
    pub owners: Vec<String>,
    #[serde(flatten)]
    pub timeliness: Timeliness,
}

/// What owner teams and people share: steps completed in the last 7 and
/// 30 days, their durations in seconds, and the share within SLA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeliness {
    pub completed_7d: u64,
    pub completed_30d: u64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub within_sla: Option<f64>,
}
