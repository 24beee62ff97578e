//! The claims of the module documentation, on random histories: one run
//! for all issues equals a run per issue, and the rules in force replayed
//! with generated closes pull exactly where the baseline with the real
//! updates pulled.

use std::sync::Arc;

use super::*;
use crate::engine::tests::complaint;
use crate::engine::{Engine, EscalationClock, RecordMeta};
use crate::event::{Complaint, Output, Update, WorkOrderEvent};
use crate::time::Ts;

const H: Dur = Dur::from_secs(3600);

fn settings() -> Settings {
    Settings::from_toml(
        r#"
        [processing]
        grace = "6h"
        [rules.default]
        threshold = 2
        window = "10h"
        [[rules.issue]]
        issues = ["b"]
        threshold = 3
        window = "30h"
        "#,
    )
    .expect("valid config")
}

/// Complaints on 30 SKUs × issues a, b, c by 12 customers over 20 days,
/// roughly in time order (some a little late), a few event ids repeated.
fn complaints(seed: u64) -> Vec<Complaint> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut t = Ts::EPOCH;
    (0..3000)
        .map(|i| {
            t = t + Dur::from_secs(rng.i64(0..600));
            let at = t - Dur::from_secs(rng.i64(0..4 * 3600));
            let id = if rng.u8(0..50) == 0 { format!("e{}", rng.usize(0..i.max(1))) } else { format!("e{i}") };
            let issue = ["a", "b", "c"][rng.usize(0..3)];
            let mut c = complaint(&id, at, &format!("S{}", rng.u8(0..30)), issue, &format!("u{}", rng.u8(0..12)));
            c.pull = rng.u16(0..400) == 0;
            c
        })
        .collect()
}

/// The complaints through the engine under `settings`, each work order
/// closed 5 h after it opened, every third `no_defect`: the updates.
fn updates(settings: &Settings, complaints: &[Complaint]) -> Vec<Update> {
    let mut e = Engine::new(Arc::clone(&settings.engine), EscalationClock::StreamTime);
    let (mut out, mut pending, mut fed) = (Vec::new(), Vec::<Update>::new(), Vec::new());
    let mut n = 0;
    for c in complaints {
        pending.sort_by_key(|u| std::cmp::Reverse(u.at));
        while pending.last().is_some_and(|u| u.at < c.occurred_at) {
            let Some(u) = pending.pop() else { break };
            e.on_update(&u, RecordMeta::default(), &mut out).expect("a close of an open work order");
            fed.push(u);
        }
        e.on_complaint(c.clone(), RecordMeta::default(), &mut out).expect("no metadata, no reject");
        for o in out.drain(..) {
            if let Output::WorkOrder(WorkOrderEvent::Opened { andon_id, opened_at, .. }) = o {
                n += 1;
                let verdict = if n % 3 == 0 { Verdict::NoDefect } else { Verdict::DefectConfirmed };
                let at = opened_at + 5 * H;
                pending.push(Update {
                    update_id: "u1".into(),
                    andon_id,
                    step: 1,
                    actor: "x".into(),
                    at,
                    verdict: Some(verdict),
                });
            }
        }
    }
    fed
}

fn on_issue(keys: &truth::Keys, pulls: &[truth::Pull], issue: &str) -> Vec<truth::Pull> {
    pulls.iter().filter(|p| &*keys.keys[p.key as usize].issue == issue).copied().collect()
}

#[test]
fn all_issues_at_once_equals_one_issue_at_a_time() {
    let s = settings();
    for seed in 0..4 {
        let cs = complaints(seed);
        let mut keys = truth::Keys::of(&cs);
        let us = updates(&s, &cs);
        truth::baseline(Arc::clone(&s.engine), &cs, &us, &mut keys);
        let open_for = vec![8 * H; keys.keys.len()];
        let all: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let horizon = 14 * 24 * H;
        for c in [
            Candidate { threshold: 1, window: H },
            Candidate { threshold: 2, window: 3 * 24 * H },
            Candidate { threshold: 4, window: 14 * 24 * H },
        ] {
            let together =
                candidate::run(Arc::new(candidate_config(&s.engine, &all, c, horizon)), &cs, &keys, &open_for);
            for issue in &all {
                let alone = candidate::run(
                    Arc::new(candidate_config(&s.engine, std::slice::from_ref(issue), c, horizon)),
                    &cs,
                    &keys,
                    &open_for,
                );
                let (t, a) = (on_issue(&keys, &together, issue), on_issue(&keys, &alone, issue));
                assert!(!t.is_empty(), "seed {seed}, {c}, issue {issue}: the test must pull");
                assert_eq!(t, a, "seed {seed}, {c}, issue {issue}");
            }
        }
    }
}

#[test]
fn the_rules_in_force_with_generated_closes_pull_where_the_real_updates_did() {
    let s = settings();
    for seed in (10..40).chain([99]) {
        let cs = complaints(seed);
        let us = updates(&s, &cs);
        let mut keys = truth::Keys::of(&cs);
        let base = truth::baseline(Arc::clone(&s.engine), &cs, &us, &mut keys);
        let closed = keys.keys.iter().flat_map(|k| &k.work_orders).filter(|w| w.verdict.is_some()).count();
        assert!(closed > 20, "seed {seed}: the history must close work orders ({closed})");
        let open_for = vec![8 * H; keys.keys.len()];
        // No issue changed: only the horizon rule is added.
        let cfg = Arc::new(candidate_config(&s.engine, &[], Candidate { threshold: 1, window: H }, 30 * H));
        let again = candidate::run(cfg, &cs, &keys, &open_for);
        assert_eq!(again, base.pulls, "seed {seed}");
    }
}

#[test]
fn tune_prices_every_candidate_and_scores_the_baseline() {
    let s = settings();
    let cs = complaints(99);
    let us = updates(&s, &cs);
    let history = History { complaints: cs, updates: us, complaints_read: 3000, ..History::default() };
    let grid = Grid::parse(Some(&["2".into(), "3".into()]), Some(&["10h".into(), "30h".into()]), &["b".into()])
        .expect("valid grid");
    let count = std::sync::atomic::AtomicUsize::new(0);
    let report = tune(&s, &history, &Options { grid, target: 0.02 }, &|| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .expect("b is in the history");
    assert_eq!((report.replays, count.into_inner()), (5, 5));
    assert_eq!(report.issues.len(), 1);
    let b = &report.issues[0];
    assert_eq!((b.in_force.threshold, b.in_force.window.as_str()), (3, "30h"));
    // In force 3 in 30h is also the candidate (3, 30h): same pulls, same judgement.
    let same = b.candidates.iter().find(|c| c.threshold == 3 && c.window == "30h").expect("in the grid");
    assert_eq!(same, &b.baseline);
    assert_eq!(b.baseline.pulls, b.baseline.good + b.baseline.bad + b.baseline.unjudged);
    assert!(b.baseline.bad > 0 && b.baseline.good > 0, "{:?}", b.baseline);
    let e = tune(
        &s,
        &history,
        &Options { grid: Grid::parse(None, None, &["zzz".into()]).expect("valid"), target: 0.02 },
        &|| {},
    )
    .expect_err("no such issue");
    assert_eq!(e.flag, "--issue");
}
