//! Read-only questions to a running engine, for the people looking at it:
//! "how close is this subject to a pull?" (`GET /subjects/{kind}/{id}`).
//! Nothing here changes state or emits anything.

use serde::{Deserialize, Serialize};

use super::{andon_id, AndonView, Engine};
use crate::event::parse_andon_id;

/// One issue of a subject as it stands in the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCount {
    pub issue: String,
    /// Distinct customers among the counted complaints whose event time
    /// lies in [stream time − W, stream time].
    pub counted: u32,
    /// N of the issue's rule.
    pub threshold: u32,
    /// W of the issue's rule, in whole seconds.
    pub window_seconds: u64,
    /// How many more distinct customers, complaining now, would pull
    /// (at least 1). While an andon is open on the key its complaints are
    /// attached rather than counted: this is then what it takes once the
    /// andon has closed.
    pub to_pull: u32,
    /// An andon is open on this (subject, issue).
    pub open_andon: bool,
}

impl Engine {
    /// The andon `andon_id` if it is open.
    pub fn open_andon(&self, id: &str) -> Option<AndonView<'_>> {
        let (key, issue, n) = parse_andon_id(id)?;
        let (key, subject) = self.state.subjects.get_key_value(key)?;
        let is = subject.issues.iter().find(|is| *is.issue == issue)?;
        let andon = is.open.as_deref().filter(|a| a.n == n)?;
        Some(AndonView { andon_id: andon_id(key, &is.issue, n), subject_key: key, issue: &is.issue, andon })
    }

    /// For each issue of `subject_key` with counted complaints in the
    /// current window, or with an open andon: where it stands. Issues in
    /// name order; empty for a subject never seen (or before any input).
    pub fn issue_counts(&self, subject_key: &str) -> Vec<IssueCount> {
        let (Some(subject), Some(st)) = (self.state.subjects.get(subject_key), self.state.stream_time) else {
            return Vec::new();
        };
        let mut out: Vec<IssueCount> = subject
            .issues
            .iter()
            .filter_map(|is| {
                let rule = self.cfg.rules.for_issue(&is.issue);
                let from = st - rule.window;
                let mut customers: Vec<&str> =
                    is.counted.entries().filter(|(at, _, _)| *at >= from && *at <= st).map(|(_, c, _)| c).collect();
                customers.sort_unstable();
                customers.dedup();
                let counted = customers.len() as u32;
                let open_andon = is.open.is_some();
                if counted == 0 && !open_andon {
                    return None;
                }
                Some(IssueCount {
                    issue: is.issue.to_string(),
                    counted,
                    threshold: rule.threshold,
                    window_seconds: rule.window.as_secs() as u64,
                    to_pull: rule.threshold.saturating_sub(counted).max(1),
                    open_andon,
                })
            })
            .collect();
        out.sort_by(|a, b| a.issue.cmp(&b.issue));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Settings;
    use crate::engine::tests::complaint;
    use crate::engine::{EscalationClock, RecordMeta};
    use crate::event::{Output, Update, Verdict};
    use crate::time::{Dur, Ts};

    const H: Dur = Dur::from_secs(3600);
    const S: Dur = Dur::SECOND;
    const T0: Ts = Ts::from_nanos(1_780_000_000 * 1_000_000_000);

    fn engine() -> Engine {
        let s = Settings::from_toml(
            r#"
            [rules.default]
            threshold = 3
            window = "1h"
            route = ["product", "operations"]
            [[rules.issue]]
            issues = ["safety_hazard"]
            threshold = 1
            window = "2h"
            "#,
        )
        .expect("settings");
        Engine::new(Arc::clone(&s.engine), EscalationClock::StreamTime)
    }

    fn complain(e: &mut Engine, id: &str, at: Ts, sku: &str, issue: &str, customer: &str) -> Vec<Output> {
        let mut out = Vec::new();
        e.on_complaint(complaint(id, at, sku, issue, customer), RecordMeta::default(), &mut out).expect("accepted");
        out
    }

    fn count(issue: &str, counted: u32, threshold: u32, window_seconds: u64, open_andon: bool) -> IssueCount {
        IssueCount {
            issue: issue.into(),
            counted,
            threshold,
            window_seconds,
            to_pull: threshold.saturating_sub(counted).max(1),
            open_andon,
        }
    }

    #[test]
    fn a_subject_never_seen_has_no_counts() {
        let mut e = engine();
        assert_eq!(e.issue_counts("sku:A"), vec![]);
        complain(&mut e, "e1", T0, "B", "print_defect", "c1");
        assert_eq!(e.issue_counts("sku:A"), vec![]);
    }

    #[test]
    fn counts_distinct_customers_in_the_window_and_what_it_takes_to_pull() {
        let mut e = engine();
        complain(&mut e, "e1", T0, "A", "print_defect", "c1");
        complain(&mut e, "e2", T0 + 60 * S, "A", "print_defect", "c1");
        assert_eq!(e.issue_counts("sku:A"), vec![count("print_defect", 1, 3, 3600, false)]);
        complain(&mut e, "e3", T0 + 120 * S, "A", "print_defect", "c2");
        complain(&mut e, "e4", T0 + 120 * S, "A", "wrong_item", "c9");
        let got = e.issue_counts("sku:A");
        assert_eq!(got, vec![count("print_defect", 2, 3, 3600, false), count("wrong_item", 1, 3, 3600, false)]);
        assert_eq!(got[0].to_pull, 1, "2 of 3: one more customer pulls");
    }

    #[test]
    fn complaints_older_than_the_window_no_longer_count() {
        let mut e = engine();
        complain(&mut e, "e1", T0, "A", "print_defect", "c1");
        complain(&mut e, "e2", T0 + H / 2, "A", "print_defect", "c2");
        // Stream time moves on (another subject): c1 falls out at T0 + H + 1 ns.
        complain(&mut e, "x1", T0 + H, "B", "print_defect", "c7");
        assert_eq!(e.issue_counts("sku:A"), vec![count("print_defect", 2, 3, 3600, false)], "ends included");
        complain(&mut e, "x2", T0 + H + Dur::from_nanos(1), "B", "print_defect", "c8");
        assert_eq!(e.issue_counts("sku:A"), vec![count("print_defect", 1, 3, 3600, false)]);
        complain(&mut e, "x3", T0 + 2 * H, "B", "print_defect", "c9");
        assert_eq!(e.issue_counts("sku:A"), vec![], "nothing counted in the window");
    }

    #[test]
    fn an_open_andon_shows_and_counting_restarts_after_the_close() {
        let mut e = engine();
        for (i, c) in ["c1", "c2", "c3"].iter().enumerate() {
            complain(&mut e, &format!("e{i}"), T0 + i as i64 * S, "A", "print_defect", c);
        }
        assert_eq!(e.issue_counts("sku:A"), vec![count("print_defect", 0, 3, 3600, true)], "pulled: open");
        let open = e.open_andon("sku:A/print_defect#1").expect("open");
        assert_eq!((open.subject_key, open.issue, open.andon.step), ("sku:A", "print_defect", 1));
        assert!(e.open_andon("sku:A/print_defect#2").is_none() && e.open_andon("sku:B/print_defect#1").is_none());
        complain(&mut e, "e9", T0 + 10 * S, "A", "print_defect", "c4");
        assert_eq!(e.issue_counts("sku:A")[0].counted, 0, "attached, not counted");
        let close = |step, verdict| Update {
            update_id: format!("u{step}"),
            andon_id: "sku:A/print_defect#1".into(),
            step,
            actor: "ann".into(),
            at: T0 + 20 * S,
            verdict,
        };
        let mut out = Vec::new();
        e.on_update(&close(1, Some(Verdict::DefectConfirmed)), RecordMeta::default(), &mut out).expect("closed");
        assert_eq!(e.issue_counts("sku:A"), vec![], "closed, nothing counted since");
        assert!(e.open_andon("sku:A/print_defect#1").is_none(), "closed");
        complain(&mut e, "e10", T0 + 30 * S, "A", "print_defect", "c1");
        assert_eq!(e.issue_counts("sku:A"), vec![count("print_defect", 1, 3, 3600, false)]);
    }

    #[test]
    fn each_issue_has_its_own_rule() {
        let mut e = engine();
        complain(&mut e, "e1", T0, "A", "print_defect", "c1");
        complain(&mut e, "e2", T0 + H + H / 2, "A", "print_defect", "c2");
        let got = e.issue_counts("sku:A");
        assert_eq!(got, vec![count("print_defect", 1, 3, 3600, false)]);
        // threshold 1 pulls at once: open, never "0 of 1".
        complain(&mut e, "s1", T0 + H + H / 2, "A", "safety_hazard", "c3");
        assert_eq!(e.issue_counts("sku:A")[1], count("safety_hazard", 0, 1, 7200, true));
    }
}
