//! The recommendation for one issue: of the candidates whose bad-pull rate
//! stays under the target even at its worst (every unjudged pull counted
//! bad, the top of the 95 % Wilson interval), the one that hurts the
//! fewest customers; with the `[[rules.issue]]` entry to paste. When no
//! candidate qualifies, a plain statement of why instead.

use serde::Serialize;

use crate::engine::{Rule, RuleAction};

use super::score::{wilson, Score};

/// What `tune` says about one issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The chosen candidate's threshold and window (`None`: none qualifies).
    pub threshold: Option<u32>,
    pub window: Option<String>,
    /// The `[[rules.issue]]` entry for the configuration file.
    pub toml: Option<String>,
    /// One or two sentences for the operator.
    pub statement: String,
}

/// Fewest pulls without a bad one that can show a bad-pull rate under
/// `target` at the top of its interval.
pub fn pulls_needed(target: f64) -> u64 {
    (1..=1_000_000u64).find(|&n| wilson(0, n).1 <= target).unwrap_or(u64::MAX)
}

/// Picks from `candidates` (see the module documentation). Ties go to
/// fewer bad or unjudged pulls, then fewer pulls, then the higher
/// threshold, then the shorter window: the rule that asks more of the
/// evidence.
pub fn recommend(issue: &str, candidates: &[Score], in_force: &Rule, default: &Rule, target: f64) -> Recommendation {
    let best = candidates.iter().filter(|s| s.pulls > 0 && s.worst_upper <= target).min_by(|a, b| {
        (a.customers_hurt, a.bad + a.unjudged, a.pulls, std::cmp::Reverse(a.threshold), a.window_seconds).cmp(&(
            b.customers_hurt,
            b.bad + b.unjudged,
            b.pulls,
            std::cmp::Reverse(b.threshold),
            b.window_seconds,
        ))
    });
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let Some(s) = best else {
        let needed = pulls_needed(target);
        let most = candidates.iter().map(|s| s.pulls).max().unwrap_or(0);
        let statement = if most < needed {
            format!(
                "History too thin to say: showing a bad-pull rate under {} at 95 % takes at least {needed} pulls \
                 without a bad one, and no candidate made more than {most} on {issue}. Keep the rules in force.",
                pct(target)
            )
        } else {
            format!(
                "No candidate keeps its bad-pull rate under {} at the top of its 95 % interval (unjudged pulls \
                 counted bad) on {issue}. Keep the rules in force, or widen the grid.",
                pct(target)
            )
        };
        return Recommendation { threshold: None, window: None, toml: None, statement };
    };
    let mut toml =
        format!("[[rules.issue]]\nissues = [{issue:?}]\nthreshold = {}\nwindow = {:?}\n", s.threshold, s.window);
    // A new entry for this issue alone takes what it leaves out from
    // [rules.default]: carry over what the issue's own rule sets otherwise.
    if in_force.action != default.action {
        toml.push_str(&format!("action = {:?}\n", in_force.action.as_str()));
    }
    if in_force.route != default.route {
        let names: Vec<String> = in_force.route.iter().map(|s| format!("{:?}", s.owner)).collect();
        toml.push_str(&format!("route = [{}]\n", names.join(", ")));
    }
    let same = s.threshold == in_force.threshold && s.window_seconds == in_force.window.as_secs();
    let mut statement = format!(
        "{} on {issue}: {} customers hurt over {} confirmed defects ({} missed), {} bad and {} unjudged of {} \
         pulls: at most {} at the top of its 95 % interval.",
        s.rule(),
        s.customers_hurt,
        s.defects,
        s.missed,
        s.bad,
        s.unjudged,
        s.pulls,
        pct(s.worst_upper),
    );
    if same {
        statement.push_str(" That is the rule in force.");
    } else if in_force.action == RuleAction::Notify {
        statement.push_str(" The rule in force only notifies; the entry keeps it so.");
    }
    Recommendation { threshold: Some(s.threshold), window: Some(s.window.clone()), toml: Some(toml), statement }
}
