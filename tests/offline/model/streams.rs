//! The generated streams: intents (what should happen: a complaint in
//! order or late, an update to an open andon's current step or a wrong one)
//! and the driver that turns them into concrete records using the model's
//! state; the proptest strategies for configurations and intents.

use proptest::prelude::*;

use super::naive::*;

// ---------------------------------------------------------------------------
// Intents and the driver that makes records of them

#[derive(Debug, Clone)]
pub(super) enum TimeSpec {
    /// stream time + units·UNIT + jitter seconds
    Fwd(i64, i64),
    /// stream time − units·UNIT + jitter seconds
    Back(i64, i64),
    /// stream time − W − grace + d seconds (the lateness edge)
    LateEdge(i64),
    /// the current due time of the k-th open andon + d seconds
    DueEdge(usize, i64),
}

#[derive(Debug, Clone)]
pub(super) enum Intent {
    Complaint {
        subject: usize,
        issue: usize,
        customer: usize,
        time: TimeSpec,
        pull: bool,
    },
    /// Replay a processed complaint (within the horizon), maybe altered.
    DupComplaint {
        pick: usize,
        mutate: u8,
    },
    /// An update of the pick-th open andon; `step_delta` 0 is its current step.
    Update {
        pick: usize,
        step_delta: i64,
        verdict: Option<bool>,
        time: TimeSpec,
        actor: u8,
    },
    /// An update for a closed, unknown or malformed andon id.
    BadUpdate {
        kind: u8,
        pick: usize,
        step: u32,
        verdict: Option<bool>,
        time: TimeSpec,
    },
    /// Replay an update sent before (applied ones within the horizon).
    DupUpdate {
        pick: usize,
        shift: i64,
    },
}

pub(super) struct Driver {
    pub(super) model: Model,
    pub(super) next_event: u64,
    pub(super) next_update: u64,
    /// Complaints processed (not as duplicates), replayable.
    pub(super) c_hist: Vec<CIn>,
    /// Every update sent.
    pub(super) u_hist: Vec<UIn>,
}

/// One record with what the model says about it.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) rec: Rec,
    pub(super) res: Res,
    pub(super) out: Vec<Emit>,
}

impl Driver {
    pub(super) fn new(cfg: Cfg) -> Self {
        Self { model: Model::new(cfg), next_event: 0, next_update: 0, c_hist: Vec::new(), u_hist: Vec::new() }
    }

    pub(super) fn st(&self) -> i64 {
        self.model.stream_time.unwrap_or(BASE)
    }

    pub(super) fn open_andons(&self) -> Vec<usize> {
        (0..self.model.andons.len()).filter(|&i| self.model.andons[i].closed.is_none()).collect()
    }

    pub(super) fn resolve(&self, t: &TimeSpec, issue: usize) -> i64 {
        let st = self.st();
        match *t {
            TimeSpec::Fwd(u, j) => st + u * UNIT + j,
            TimeSpec::Back(u, j) => st - u * UNIT + j,
            TimeSpec::LateEdge(d) => st - self.model.cfg.rule(issue).window - self.model.cfg.grace + d,
            TimeSpec::DueEdge(k, d) => {
                let open = self.open_andons();
                if open.is_empty() {
                    st + UNIT
                } else {
                    self.model.andons[open[k % open.len()]].due + d
                }
            }
        }
    }

    pub(super) fn within_horizon(&self, first_seen: i64) -> bool {
        first_seen >= self.st() - self.model.cfg.horizon()
    }

    pub(super) fn make(&mut self, intent: &Intent) -> Option<Rec> {
        let cfg = self.model.cfg.clone();
        Some(match intent {
            Intent::Complaint { subject, issue, customer, time, pull } => {
                self.next_event += 1;
                Rec::C(CIn {
                    event_id: format!("e{}", self.next_event),
                    at: self.resolve(time, *issue),
                    subject: subject % cfg.subjects,
                    issue: *issue,
                    customer: format!("c{}", customer % cfg.customers),
                    pull: *pull,
                })
            }
            Intent::DupComplaint { pick, mutate } => {
                let eligible: Vec<&CIn> = self
                    .c_hist
                    .iter()
                    .filter(|c| self.within_horizon(self.model.seen_c[&(c.subject, c.event_id.clone())]))
                    .collect();
                if eligible.is_empty() {
                    return None;
                }
                let mut c = eligible[pick % eligible.len()].clone();
                match mutate {
                    // Same id, other content: still a duplicate, and must not move time.
                    2 => c.at = self.st() + (*pick as i64 % 7) * UNIT,
                    3 => {
                        c.customer = format!("c{}", (pick / 3) % cfg.customers);
                        c.pull = !c.pull;
                    }
                    // Same subject, other issue: still a duplicate.
                    4 => c.issue = (c.issue + 1 + pick % 3) % ISSUES.len(),
                    // Same event_id on another subject: not a duplicate
                    // (unless that pair was itself processed).
                    5 => {
                        let other = (c.subject + 1) % cfg.subjects;
                        match self.model.seen_c.get(&(other, c.event_id.clone())) {
                            Some(&t) if !self.within_horizon(t) => {}
                            _ => c.subject = other,
                        }
                    }
                    _ => {}
                }
                Rec::C(c)
            }
            Intent::Update { pick, step_delta, verdict, time, actor } => {
                let open = self.open_andons();
                if open.is_empty() {
                    if pick % 4 != 0 {
                        return None;
                    }
                    return self.make(&Intent::BadUpdate {
                        kind: 0,
                        pick: *pick,
                        step: 1,
                        verdict: *verdict,
                        time: time.clone(),
                    });
                }
                let a = &self.model.andons[open[pick % open.len()]];
                let step = match a.step as i64 + step_delta {
                    s if *step_delta == 0 || s >= 1 => s,
                    _ => a.step as i64 + 1,
                };
                let (andon_id, issue) = (a.id.clone(), a.issue);
                self.next_update += 1;
                Rec::U(UIn {
                    update_id: format!("u{}", self.next_update),
                    andon_id,
                    step: step as u32,
                    actor: ["ann", "bob", "cyd"][*actor as usize % 3].to_owned(),
                    at: self.resolve(time, issue),
                    verdict: *verdict,
                })
            }
            Intent::BadUpdate { kind, pick, step, verdict, time } => {
                let closed: Vec<&MAndon> = self.model.andons.iter().filter(|a| a.closed.is_some()).collect();
                let s = pick % cfg.subjects;
                let andon_id = match kind {
                    0 if !closed.is_empty() => closed[pick % closed.len()].id.clone(),
                    0 | 1 => {
                        let i = (pick / 7) % ISSUES.len();
                        let n = self.model.andons.iter().filter(|a| a.subject == s && a.issue == i).count();
                        format!("{}/{}#{}", subject_key(s), ISSUES[i], n + 1 + pick % 2)
                    }
                    2 => "sku:NOPE/print_defect#1".to_owned(),
                    3 => format!("{}/{}#01", subject_key(s), ISSUES[0]),
                    _ => "garbage".to_owned(),
                };
                self.next_update += 1;
                Rec::U(UIn {
                    update_id: format!("u{}", self.next_update),
                    andon_id,
                    step: *step,
                    actor: "dan".to_owned(),
                    at: self.resolve(time, 0),
                    verdict: *verdict,
                })
            }
            Intent::DupUpdate { pick, shift } => {
                let applied_only = pick % 3 != 0;
                let eligible: Vec<&UIn> = self
                    .u_hist
                    .iter()
                    .filter(|u| match self.model.seen_u.get(&(u.andon_id.clone(), u.update_id.clone())) {
                        Some(&t) => self.within_horizon(t),
                        None => !applied_only,
                    })
                    .collect();
                if eligible.is_empty() {
                    return None;
                }
                let mut u = eligible[pick % eligible.len()].clone();
                u.at += shift * UNIT;
                Rec::U(u)
            }
        })
    }

    pub(super) fn feed(&mut self, rec: &Rec) -> Step {
        let mut out = Vec::new();
        let res = match rec {
            Rec::C(c) => {
                let res = self.model.complaint(c, &mut out);
                if res != (Res::C { class: "duplicate", pulled: None }) {
                    self.c_hist.push(c.clone());
                }
                res
            }
            Rec::U(u) => {
                let res = self.model.update(u, &mut out);
                self.u_hist.push(u.clone());
                res
            }
        };
        Step { rec: rec.clone(), res, out }
    }

    pub(super) fn step(&mut self, intent: &Intent) -> Option<Step> {
        let rec = self.make(intent)?;
        Some(self.feed(&rec))
    }
}

/// The model's run over a stream of intents: the concrete records with the
/// expected result and outputs of each.
pub(super) fn model_run(cfg: &Cfg, intents: &[Intent]) -> (Vec<Step>, Model) {
    let mut d = Driver::new(cfg.clone());
    let steps = intents.iter().filter_map(|i| d.step(i)).collect();
    (steps, d.model)
}

// ---------------------------------------------------------------------------
// Strategies

pub(super) fn rule_strategy(delist: bool) -> impl Strategy<Value = RuleCfg> {
    (1u32..=4, 2i64..=8, prop::collection::vec(0usize..3, 1..=3)).prop_map(move |(threshold, w, route)| RuleCfg {
        threshold,
        window: w * 1800,
        delist,
        route,
    })
}

pub(super) fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        rule_strategy(true),
        rule_strategy(true),
        rule_strategy(false),
        prop::sample::select(vec![0i64, 1800, 3600, 7200]),
        prop::array::uniform3(prop::sample::select(vec![1800i64, 3600, 7200, 10800])),
        2usize..=5,
        2usize..=6,
    )
        .prop_map(|(default, safety, promo, grace, slas, subjects, customers)| Cfg {
            grace,
            default,
            safety,
            promo,
            slas,
            subjects,
            customers,
        })
}

pub(super) fn jitter() -> impl Strategy<Value = i64> {
    prop_oneof![8 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64)]
}

pub(super) fn forward() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 4 => Just(1i64), 2 => Just(2i64), 1 => Just(4i64)]
}

pub(super) fn complaint_time() -> impl Strategy<Value = TimeSpec> {
    prop_oneof![
        70 => (forward(), jitter()).prop_map(|(u, j)| TimeSpec::Fwd(u, j)),
        14 => (0i64..=12, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        6 => (12i64..=100, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        5 => (-1i64..=1).prop_map(TimeSpec::LateEdge),
        5 => (any::<usize>(), -1i64..=1).prop_map(|(k, d)| TimeSpec::DueEdge(k, d)),
    ]
}

pub(super) fn update_time() -> impl Strategy<Value = TimeSpec> {
    prop_oneof![
        75 => (forward(), jitter()).prop_map(|(u, j)| TimeSpec::Fwd(u, j)),
        15 => (0i64..=12, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        10 => (any::<usize>(), -1i64..=1).prop_map(|(k, d)| TimeSpec::DueEdge(k, d)),
    ]
}

pub(super) fn verdict() -> impl Strategy<Value = Option<bool>> {
    prop_oneof![5 => Just(None), 3 => Just(Some(true)), 2 => Just(Some(false))]
}

pub(super) fn intent() -> impl Strategy<Value = Intent> {
    let subject =
        prop_oneof![4 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize), 1 => Just(4usize)];
    let issue = prop_oneof![5 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)];
    let step_delta = prop_oneof![16 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64), 1 => Just(2i64)];
    prop_oneof![
        55 => (subject, issue, 0usize..6, complaint_time(), prop::bool::weighted(0.04)).prop_map(
            |(subject, issue, customer, time, pull)| Intent::Complaint { subject, issue, customer, time, pull }
        ),
        6 => (any::<usize>(), 0u8..6).prop_map(|(pick, mutate)| Intent::DupComplaint { pick, mutate }),
        25 => (any::<usize>(), step_delta, verdict(), update_time(), 0u8..3).prop_map(
            |(pick, step_delta, verdict, time, actor)| Intent::Update { pick, step_delta, verdict, time, actor }
        ),
        4 => (0u8..5, any::<usize>(), 1u32..=3, verdict(), update_time()).prop_map(
            |(kind, pick, step, verdict, time)| Intent::BadUpdate { kind, pick, step, verdict, time }
        ),
        5 => (any::<usize>(), 0i64..=2).prop_map(|(pick, shift)| Intent::DupUpdate { pick, shift }),
    ]
}

pub(super) fn case_strategy(len: std::ops::Range<usize>) -> impl Strategy<Value = (Cfg, Vec<Intent>)> {
    (cfg_strategy(), prop::collection::vec(intent(), len))
}
