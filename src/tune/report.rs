//! The report: its data (serialised as is by `--format json`) and the
//! table printed on the terminal.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::recommend::Recommendation;
use super::score::Score;

/// Everything `andon tune` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub complaints_read: u64,
    pub updates_read: u64,
    /// Lines that did not decode, by reason: they took no part.
    pub rejected: BTreeMap<String, u64>,
    /// The bad-pull rate a recommendation must stay under.
    pub target: f64,
    /// Engine replays run: the baseline and one per candidate.
    pub replays: usize,
    pub issues: Vec<IssueReport>,
}

/// One issue: its rule in force, the real work orders, the baseline row,
/// a row per candidate and the recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueReport {
    pub issue: String,
    pub in_force: InForce,
    pub work_orders: WorkOrders,
    /// The rules in force, replayed with the real updates (what `andon
    /// replay` gives).
    pub baseline: Score,
    pub candidates: Vec<Score>,
    pub recommendation: Recommendation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InForce {
    pub threshold: u32,
    pub window: String,
    pub action: String,
}

/// The real work orders of the issue, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkOrders {
    pub defect_confirmed: u64,
    pub no_defect: u64,
    pub open: u64,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Seconds as the largest unit that reads well: `45m`, `5.5h`, `2.3d`.
fn span(secs: Option<f64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 5400.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 48.0 * 3600.0 => format!("{:.1}h", s / 3600.0),
        Some(s) => format!("{:.1}d", s / 86_400.0),
    }
}

fn row(w: &mut impl Write, name: &str, s: &Score, mark: &str) -> io::Result<()> {
    let range =
        s.bad_rate_range.map_or(
            "-".into(),
            |[lo, hi]| {
                if lo == hi {
                    pct(lo)
                } else {
                    format!("{}..{}", pct(lo), pct(hi))
                }
            },
        );
    let judged = s.judged_rate.map_or("-".into(), pct);
    let interval = format!("{}..{}", pct(s.judged_interval[0]), pct(s.judged_interval[1]));
    writeln!(
        w,
        "  {name:<14} {:>6} {:>5} {:>8} {:>15} {:>7} {:>14} {:>8} {:>6} {:>9} {:>7} {:>7}{mark}",
        s.pulls,
        s.bad,
        s.unjudged,
        range,
        judged,
        interval,
        s.customers_hurt,
        s.missed,
        s.hurt_per_good_pull_median.map_or("-".into(), |m| format!("{m:.0}")),
        span(s.first_complaint_to_pull_median_s),
        span(s.first_complaint_to_pull_p90_s),
    )
}

impl Report {
    /// The terminal table: per issue, the baseline and the candidates, the
    /// recommended row marked `<- recommended`, then the entry to paste.
    pub fn write_table(&self, w: &mut impl Write) -> io::Result<()> {
        let rejected: u64 = self.rejected.values().sum();
        writeln!(
            w,
            "andon tune: {} complaints, {} updates read, {rejected} rejected; {} replays; target: bad pulls at most {}",
            self.complaints_read,
            self.updates_read,
            self.replays,
            pct(self.target)
        )?;
        for (reason, n) in &self.rejected {
            writeln!(w, "  rejected {reason:<22} {n}")?;
        }
        for is in &self.issues {
            let wo = is.work_orders;
            writeln!(w)?;
            writeln!(
                w,
                "issue {}: in force {} in {} ({}); real work orders: {} defect_confirmed, {} no_defect, {} open",
                is.issue,
                is.in_force.threshold,
                is.in_force.window,
                is.in_force.action,
                wo.defect_confirmed,
                wo.no_defect,
                wo.open
            )?;
            writeln!(
                w,
                "  {:<14} {:>6} {:>5} {:>8} {:>15} {:>7} {:>14} {:>8} {:>6} {:>9} {:>7} {:>7}",
                "rule",
                "pulls",
                "bad",
                "unjudged",
                "bad-pull rate",
                "judged",
                "95% interval",
                "hurt",
                "missed",
                "hurt/pull",
                "1st→p50",
                "1st→p90"
            )?;
            row(w, &format!("in force {}/{}", is.baseline.threshold, is.baseline.window), &is.baseline, "")?;
            for s in &is.candidates {
                let chosen = is.recommendation.threshold == Some(s.threshold)
                    && is.recommendation.window.as_deref() == Some(s.window.as_str());
                row(w, &format!("{} in {}", s.threshold, s.window), s, if chosen { "  <- recommended" } else { "" })?;
            }
            writeln!(w, "  {}", is.recommendation.statement)?;
            if let Some(toml) = &is.recommendation.toml {
                writeln!(w)?;
                for line in toml.lines() {
                    writeln!(w, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}
