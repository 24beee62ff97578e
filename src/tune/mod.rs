//! `andon tune`: every candidate rule priced on history before it goes live.
//!
//! The history (the files `andon replay` reads, or the input topics:
//! [`kafka`]) is decoded once ([`history`]). It is replayed once under the
//! rules in force with the real updates ([`truth`]): that is the baseline row, and its work orders
//! and their verdicts are the truth. Then once per candidate of the grid
//! ([`grid`]: thresholds × windows), through the same engine, with the
//! real closes standing in for the updates ([`candidate`]); the candidate
//! replays run in parallel on all cores (rayon). Each run's pulls are judged
//! against the truth ([`score`]), and per issue the candidate that hurts the
//! fewest customers within the bad-pull target is recommended
//! ([`recommend`]). [`report`] prints it as a table or JSON, [`html`] as
//! a page with a chart per issue.
//!
//! **All issues at once.** One candidate run sets the candidate's threshold
//! and window for every issue in scope, not one issue per run: a grid of
//! 30 costs 30 replays, not 30 per issue. That is sound because the engine
//! keeps issues apart: a complaint is counted, pulls and attaches on its own
//! (subject, issue) key, under the rule of its own issue
//! (`Engine::on_complaint`, `IssueState`). What keys share is this:
//!
//! - stream time, which every input moves whatever its key, so a complaint's
//!   lateness depends on all keys' complaints, but not on any rule: the
//!   generated closes never change it ([`candidate`] says why);
//! - the remembered ids, per (subject, `event_id`) across issues, but kept
//!   for 2 × the longest window + grace, so a rule's window decides how
//!   long. Each candidate run therefore carries one more rule, for an
//!   issue no complaint can have ([`HORIZON_ISSUE`]), with the longest
//!   window of the grid and of the rules in force: every run remembers ids
//!   equally long, and an issue's pulls depend on its own rule alone (the
//!   test `all_issues_at_once_equals_one_issue_at_a_time` checks it);
//! - the delist command of a subject, sent by its first open delisting
//!   andon whatever its issue: a pull is the `opened` event of its key,
//!   which does not depend on that.
//!
//! Manual pulls (`pull: true`) are complaints like any other and happen in
//! every run as they happened, unless the key already has an open andon
//! then (they attach to it, as in reality).

pub mod candidate;
pub mod grid;
pub mod history;
pub mod html;
pub mod kafka;
pub mod recommend;
pub mod report;
pub mod score;
pub mod truth;

use std::sync::Arc;

use rayon::prelude::*;

use crate::config::Settings;
use crate::engine::{EngineConfig, Rule};
use crate::event::Verdict;
use crate::time::Dur;

pub use grid::{Candidate, Grid, GridError};
pub use history::History;
pub use report::Report;

/// The issue of the rule that only sets how long ids are remembered: not
/// a valid issue name (docs/records.md), so no complaint ever matches it.
pub const HORIZON_ISSUE: &str = "~andon-tune-horizon";

/// What to try and what to hold it to.
#[derive(Debug, Clone)]
pub struct Options {
    pub grid: Grid,
    /// The highest acceptable bad-pull rate (0.02: 2 %).
    pub target: f64,
}

/// The rules of one candidate run: `c` for every issue in `issues`, the
/// other issues as in force, ids remembered for `horizon`.
pub fn candidate_config(base: &EngineConfig, issues: &[String], c: Candidate, horizon: Dur) -> EngineConfig {
    let mut cfg = base.clone();
    let mut by_issue: Vec<(Vec<String>, Rule)> = issues
        .iter()
        .map(|issue| {
            let r = base.rules.for_issue(issue);
            let rule = Rule { threshold: c.threshold, window: c.window, action: r.action, route: r.route.clone() };
            (vec![issue.clone()], rule)
        })
        .collect();
    by_issue.push((vec![HORIZON_ISSUE.to_owned()], Rule { window: horizon, ..base.rules.default.clone() }));
    by_issue.extend(base.rules.by_issue.iter().cloned());
    cfg.rules.by_issue = by_issue;
    cfg
}

/// Prices the grid on `history`. `done` hears each finished replay (for a
/// progress bar). The only error is an `--issue` the history does not hold.
pub fn tune(
    settings: &Settings,
    history: &History,
    opts: &Options,
    done: &(dyn Fn() + Sync),
) -> Result<Report, GridError> {
    let base = &settings.engine;
    let mut keys = truth::Keys::of(&history.complaints);
    let all = keys.issues();
    let issues = if opts.grid.issues.is_empty() {
        all
    } else {
        if let Some(missing) = opts.grid.issues.iter().find(|i| !all.contains(i)) {
            return Err(GridError {
                flag: "--issue",
                message: format!("no complaint of the history has the issue {missing:?}"),
            });
        }
        opts.grid.issues.clone()
    };
    let baseline = truth::baseline(Arc::clone(base), &history.complaints, &history.updates, &mut keys);
    done();
    // Per issue first: each look scans every key.
    let typical: std::collections::BTreeMap<String, Dur> = keys
        .issues()
        .into_iter()
        .map(|issue| {
            let rule = base.rules.for_issue(&issue);
            let fallback = rule.route.iter().fold(Dur::ZERO, |a, s| a + s.sla);
            let d = truth::typical_open(&keys, &issue, fallback);
            (issue, d)
        })
        .collect();
    let open_for: Vec<Dur> = keys.keys.iter().map(|k| typical.get(&*k.issue).copied().unwrap_or(Dur::ZERO)).collect();
    let candidates = opts.grid.candidates();
    let horizon = opts.grid.windows.iter().copied().fold(base.rules.longest_window(), Dur::max);
    let runs: Vec<Vec<truth::Pull>> = candidates
        .par_iter()
        .map(|&c| {
            let cfg = Arc::new(candidate_config(base, &issues, c, horizon));
            let pulls = candidate::run(cfg, &history.complaints, &keys, &open_for);
            done();
            pulls
        })
        .collect();
    let mut reports = Vec::new();
    for issue in &issues {
        let rule = base.rules.for_issue(issue);
        let in_force = Candidate { threshold: rule.threshold, window: rule.window };
        let scores: Vec<score::Score> =
            candidates.iter().zip(&runs).map(|(&c, pulls)| score::score(&keys, issue, c, pulls)).collect();
        let mut wo = report::WorkOrders::default();
        for k in keys.keys.iter().filter(|k| *k.issue == **issue) {
            for w in &k.work_orders {
                match w.verdict {
                    Some(Verdict::DefectConfirmed) => wo.defect_confirmed += 1,
                    Some(Verdict::NoDefect) => wo.no_defect += 1,
                    None => wo.open += 1,
                }
            }
        }
        let recommendation = recommend::recommend(issue, &scores, rule, &base.rules.default, opts.target);
        reports.push(report::IssueReport {
            issue: issue.clone(),
            in_force: report::InForce {
                threshold: rule.threshold,
                window: grid::format_window(rule.window),
                action: rule.action.as_str().to_owned(),
            },
            work_orders: wo,
            baseline: score::score(&keys, issue, in_force, &baseline.pulls),
            candidates: scores,
            recommendation,
        });
    }
    Ok(Report {
        complaints_read: history.complaints_read,
        updates_read: history.updates_read,
        rejected: history.rejected.iter().map(|(r, n)| (r.as_str().to_owned(), *n)).collect(),
        target: opts.target,
        replays: 1 + candidates.len(),
        issues: reports,
    })
}

#[cfg(test)]
mod tests;
