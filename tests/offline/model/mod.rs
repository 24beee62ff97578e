//! Model-based tests of the engine (`src/engine/`) against its documented
//! semantics (docs/semantics.md) and records (docs/records.md).
//!
//! 1. [`Model`] (in `naive.rs`) is a deliberately naive reference written
//!    from the documented semantics, work-order events and identifiers. It
//!    shares no data structure with the engine: it keeps every processed
//!    complaint and every andon forever, recomputes windows by brute force
//!    over all counted complaints of the key, remembers every id forever
//!    (the generator only replays ids within the documented 2W + grace
//!    horizon, where "at least" makes both answers the same) and builds the
//!    expected output JSON from the documented field names. Random streams
//!    (proptest) are fed to the model and to the engine, and every record's
//!    classification / reject reason and every output (`to_json()`, parsed)
//!    must agree exactly.
//! 2. Snapshot / restore: the same streams, with the engine's state
//!    serialised to JSON, parsed and restored at random points, give the same
//!    outputs as an uninterrupted run.
//! 3. Bounded memory: on a long stream (20k records over months of event
//!    time, few keys) the engine's retained ids and counted complaints stay
//!    below bounds given by the window, not by the stream length.
//!
//! Streams are generated (in `streams.rs`) as "intents" that a driver turns
//! into concrete records using the model's current state (so updates mostly
//! target andons that are really open, with their current step or a wrong
//! one), and times relative to the current stream time (in order, out of
//! order, late within and beyond grace, exactly on the lateness and
//! escalation edges). This file runs the engine over the same records and
//! holds the tests.

mod naive;
mod streams;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use andon::engine::{Engine, EngineConfig, EscalationClock, RecordMeta, State, UpdateOutcome};
use andon::event::{Complaint, Output, Subject, SubjectKind, Update, Verdict};
use andon::time::Ts;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::json;

use naive::*;
use streams::*;

// ---------------------------------------------------------------------------
// The engine side

fn to_complaint(c: &CIn) -> Complaint {
    let kind = if SUBJECTS[c.subject].0 == "sku" { SubjectKind::Sku } else { SubjectKind::Promotion };
    Complaint {
        event_id: c.event_id.clone(),
        occurred_at: instant(c.at),
        subject: Subject { kind, id: SUBJECTS[c.subject].1.to_owned() },
        subject_key: subject_key(c.subject),
        issue: ISSUES[c.issue].to_owned(),
        customer_id: c.customer.clone(),
        pull: c.pull,
        channel: None,
    }
}

fn to_update(u: &UIn) -> Update {
    Update {
        update_id: u.update_id.clone(),
        andon_id: u.andon_id.clone(),
        step: u.step,
        actor: u.actor.clone(),
        at: instant(u.at),
        verdict: u.verdict.map(|d| if d { Verdict::DefectConfirmed } else { Verdict::NoDefect }),
    }
}

fn emit_of(o: &Output) -> Emit {
    let topic = match o {
        Output::Command(_) => COMMANDS,
        Output::WorkOrder(_) => WORK_ORDERS,
    };
    let value = serde_json::from_slice(&o.to_json()).expect("outputs are JSON");
    (topic, o.key().to_owned(), value)
}

fn engine_feed(e: &mut Engine, rec: &Rec) -> (Res, Vec<Emit>) {
    let mut out = Vec::new();
    let res = match rec {
        Rec::C(c) => match e.on_complaint(to_complaint(c), RecordMeta::default(), &mut out) {
            Ok(o) => Res::C { class: o.class.as_str(), pulled: o.pulled.map(|t| t.as_str()) },
            Err(r) => Res::Rejected(r.reason.as_str()),
        },
        Rec::U(u) => match e.on_update(&to_update(u), RecordMeta::default(), &mut out) {
            Ok(UpdateOutcome::Applied) => Res::Applied,
            Ok(UpdateOutcome::Duplicate) => Res::UpdateDuplicate,
            Err(r) => Res::Rejected(r.reason.as_str()),
        },
    };
    (res, out.iter().map(emit_of).collect())
}

fn show_emits(out: &[Emit]) -> String {
    let mut s = String::new();
    for (topic, key, v) in out {
        let _ = writeln!(s, "    {topic} [{key}] {v}");
    }
    if s.is_empty() {
        s.push_str("    (nothing)\n");
    }
    s
}

fn mismatch(cfg: &Cfg, steps: &[Step], i: usize, what: &str, got: &(Res, Vec<Emit>)) -> TestCaseError {
    let mut s = format!("{what} at record {i}\nconfig:\n{}\nrecords before (model's view):\n", cfg.toml());
    for (k, st) in steps.iter().enumerate().take(i).skip(i.saturating_sub(25)) {
        let _ = writeln!(s, "  #{k} {} -> {:?}", st.rec, st.res);
        if !st.out.is_empty() {
            s.push_str(&show_emits(&st.out));
        }
    }
    let st = &steps[i];
    let _ = writeln!(s, "record #{i}: {}", st.rec);
    let _ = writeln!(s, "  model:  {:?}\n{}", st.res, show_emits(&st.out));
    let _ = writeln!(s, "  engine: {:?}\n{}", got.0, show_emits(&got.1));
    TestCaseError::fail(s)
}

/// Runs the engine over the model's records and compares every record.
/// `cuts`: before these record indices, snapshot and restore the engine.
fn compare_engine(cfg: &Cfg, steps: &[Step], cuts: &HashSet<usize>) -> Result<Engine, TestCaseError> {
    let ecfg = cfg.engine_config();
    let mut e = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
    for (i, st) in steps.iter().enumerate() {
        if cuts.contains(&i) {
            e = snapshot_restore(&ecfg, e);
        }
        let got = engine_feed(&mut e, &st.rec);
        if got.0 != st.res {
            return Err(mismatch(cfg, steps, i, "classification differs", &got));
        }
        if got.1 != st.out {
            return Err(mismatch(cfg, steps, i, "outputs differ", &got));
        }
    }
    Ok(e)
}

fn snapshot_restore(ecfg: &Arc<EngineConfig>, e: Engine) -> Engine {
    let text = serde_json::to_string(e.state()).expect("state serialises");
    let state: State = serde_json::from_str(&text).expect("state deserialises");
    assert_eq!(&state, e.state(), "state survives a JSON round trip");
    let r = Engine::restore(Arc::clone(ecfg), EscalationClock::StreamTime, state);
    assert_eq!(r.open_andon_count(), e.open_andon_count());
    assert_eq!(r.delisted_subject_count(), e.delisted_subject_count());
    assert_eq!(r.next_due(), e.next_due());
    r
}

fn pt_config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        // Regressions worth keeping become named tests in this file.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..PtConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(pt_config(256))]

    /// Every record's classification and every output agree with the naive model.
    #[test]
    fn engine_agrees_with_the_naive_model((cfg, intents) in case_strategy(200..2000)) {
        let (steps, model) = model_run(&cfg, &intents);
        let e = compare_engine(&cfg, &steps, &HashSet::new())?;
        let open: Vec<&MAndon> = model.andons.iter().filter(|a| a.closed.is_none()).collect();
        prop_assert_eq!(e.open_andon_count(), open.len());
        let mut ids: Vec<String> = e.open_andons().map(|v| v.andon_id).collect();
        ids.sort();
        let mut want: Vec<String> = open.iter().map(|a| a.id.clone()).collect();
        want.sort();
        prop_assert_eq!(ids, want);
        let off_sale = (0..cfg.subjects).filter(|&s| model.has_open_delisting(s)).count();
        prop_assert_eq!(e.delisted_subject_count(), off_sale);
        prop_assert_eq!(e.stream_time(), model.stream_time.map(instant));
    }
}

proptest! {
    #![proptest_config(pt_config(96))]

    /// Snapshot (serde_json) and restore at random points changes nothing:
    /// the outputs equal the uninterrupted run's (which equal the model's).
    #[test]
    fn snapshot_and_restore_anywhere_changes_nothing(
        (cfg, intents) in case_strategy(200..1500),
        cuts in prop::collection::vec(0usize..1500, 1..10),
    ) {
        let (steps, _) = model_run(&cfg, &intents);
        let cuts: HashSet<usize> = cuts.into_iter().map(|c| c % steps.len().max(1)).collect();
        let ecfg = cfg.engine_config();
        let mut plain = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
        let mut cut = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
        for (i, st) in steps.iter().enumerate() {
            if cuts.contains(&i) {
                cut = snapshot_restore(&ecfg, cut);
            }
            let a = engine_feed(&mut plain, &st.rec);
            let b = engine_feed(&mut cut, &st.rec);
            prop_assert_eq!(&a, &b, "restored engine differs at record #{}: {}", i, st.rec);
        }
        // And both agree with the model (restores included).
        compare_engine(&cfg, &steps, &cuts)?;
    }
}

/// A few handwritten streams through the same comparison: edges the
/// generator reaches only by luck.
#[test]
fn handwritten_edges_agree_with_the_model() {
    let cfg = Cfg {
        grace: 3600,
        default: RuleCfg { threshold: 2, window: 7200, delist: true, route: vec![0, 1, 2] },
        safety: RuleCfg { threshold: 1, window: 3600, delist: true, route: vec![1] },
        promo: RuleCfg { threshold: 2, window: 3600, delist: false, route: vec![0, 0] },
        slas: [3600, 1800, 7200],
        subjects: 4,
        customers: 3,
    };
    let c = |id: &str, at: i64, subject: usize, issue: usize, customer: &str, pull: bool| {
        Rec::C(CIn { event_id: id.into(), at: BASE + at, subject, issue, customer: customer.into(), pull })
    };
    let u = |id: &str, andon: &str, step: u32, at: i64, verdict: Option<bool>| {
        Rec::U(UIn { update_id: id.into(), andon_id: andon.into(), step, actor: "ann".into(), at: BASE + at, verdict })
    };
    let recs = vec![
        c("a1", 0, 0, 0, "c0", false),
        c("a2", 7200, 0, 0, "c1", false), // exactly W apart: pulls (ends included)
        c("a3", 7300, 0, 0, "c2", true),  // manual while open: attached
        u("u1", "sku:A/print_defect#1", 2, 7400, None), // wrong step
        u("u1", "sku:A/print_defect#1", 1, 7400, None), // same id after a reject: fine
        u("u1", "sku:A/print_defect#1", 1, 7400, None), // duplicate
        c("s1", 7500, 0, 1, "c0", false), // safety on the same subject: no second delist
        c("x1", 7200 + 1800 + 3600 + 1, 3, 0, "c0", false), // raises past both dues
        u("u2", "sku:A/print_defect#1", 2, 20000, None),
        u("u3", "sku:A/print_defect#1", 3, 20000, None), // verdict_required
        u("u3", "sku:A/print_defect#1", 3, 20000, Some(false)),
        u("u4", "sku:A/safety_hazard#1", 1, 15000, Some(true)), // relists sku:A
        c("a4", 15000, 0, 1, "c1", false),                      // stale (= close at)
        c("a5", 15001, 0, 1, "c1", false),                      // pulls again: #2
        c("l1", 20000 - 7200 - 3600, 3, 0, "c0", false),        // exactly on the lateness edge
        c("l2", 20000 - 7200 - 3600 - 1, 3, 0, "c2", true),     // late manual pull
        c("p1", 20000, 1, 2, "c0", false),
        c("p2", 20000, 1, 2, "c1", false), // notify: opened, no delist
        u("u5", "sku:B/promo_price_mismatch#1", 1, 20000, None),
        u("u6", "sku:B/promo_price_mismatch#1", 2, 20001, Some(true)), // no relist
        u("u7", "sku:B/promo_price_mismatch#1", 2, 20001, Some(true)), // andon_closed
        u("u8", "sku:B/promo_price_mismatch#2", 1, 20001, Some(true)), // unknown
        c("x2", 20002, 3, 0, "c0", false),
        c("a5", 40000, 0, 2, "c0", false), // duplicate: (subject, event_id)
        c("a5", 20002, 1, 1, "c1", false), // same event_id, other subject: new
    ];
    let mut d = Driver::new(cfg.clone());
    let steps: Vec<Step> = recs.iter().map(|r| d.feed(r)).collect();
    if let Err(e) = compare_engine(&cfg, &steps, &HashSet::new()) {
        panic!("{e}");
    }
    let classes: Vec<&Res> = steps.iter().map(|s| &s.res).collect();
    // The model itself says what the docs say on these edges.
    assert_eq!(classes[1], &Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(classes[2], &Res::C { class: "attached", pulled: None });
    assert_eq!(classes[3], &Res::Rejected("step_out_of_order"));
    assert_eq!(classes[5], &Res::UpdateDuplicate);
    assert_eq!(classes[9], &Res::Rejected("verdict_required"));
    assert_eq!(classes[12], &Res::C { class: "stale", pulled: None });
    assert_eq!(classes[13], &Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(classes[14], &Res::C { class: "counted", pulled: None });
    assert_eq!(classes[15], &Res::C { class: "late", pulled: Some("manual") });
    assert_eq!(classes[20], &Res::Rejected("andon_closed"));
    assert_eq!(classes[21], &Res::Rejected("unknown_andon"));
    assert_eq!(classes[23], &Res::C { class: "duplicate", pulled: None });
    assert_eq!(classes[24], &Res::C { class: "counted", pulled: Some("threshold") });
}

/// A counted complaint exactly 2W + grace older than stream time may still
/// pair with a complaint exactly on the lateness edge, and an id exactly
/// 2W + grace old is still a duplicate: the engine must not forget either a
/// moment early (sweeps included), for the longest window and a shorter one.
#[test]
fn horizons_are_kept_to_the_edge() {
    let cfg = Cfg {
        grace: 3600,
        default: RuleCfg { threshold: 2, window: 7200, delist: true, route: vec![0] },
        safety: RuleCfg { threshold: 1, window: 3600, delist: true, route: vec![1] },
        promo: RuleCfg { threshold: 2, window: 3600, delist: false, route: vec![2] },
        slas: [360_000, 360_000, 360_000],
        subjects: 5,
        customers: 3,
    };
    let c = |id: &str, at: i64, subject: usize, issue: usize, customer: &str| {
        Rec::C(CIn { event_id: id.into(), at: BASE + at, subject, issue, customer: customer.into(), pull: false })
    };
    const H: i64 = 3600;
    // Default rule: W 2 h, grace 1 h, so ids and its complaints matter for
    // 5 h; the promo rule (W 1 h) keeps its complaints for 3 h.
    let recs = vec![
        c("x", 0, 0, 0, "c0"),
        c("t1", H, 4, 0, "c2"), // time goes by in steps: sweeps run
        c("t2", 2 * H, 4, 0, "c2"),
        c("t3", 4 * H, 4, 0, "c2"),
        c("y", 5 * H, 2, 0, "c0"), // stream time = x + 2W + grace
        c("x", 0, 0, 0, "c2"),     // still a duplicate
        c("z", 2 * H, 0, 0, "c1"), // on the lateness edge, W after x: pulls
        c("p0", 6 * H, 3, 2, "c0"),
        c("t4", 7 * H, 4, 0, "c2"),
        c("t5", 8 * H, 4, 0, "c2"),
        c("r", 9 * H, 4, 0, "c2"),  // stream time = p0 + 2W' + grace
        c("p1", 7 * H, 3, 2, "c1"), // on the promo lateness edge, W' after p0: pulls
    ];
    let mut d = Driver::new(cfg.clone());
    let steps: Vec<Step> = recs.iter().map(|r| d.feed(r)).collect();
    if let Err(e) = compare_engine(&cfg, &steps, &HashSet::new()) {
        panic!("{e}");
    }
    assert_eq!(steps[5].res, Res::C { class: "duplicate", pulled: None });
    assert_eq!(steps[6].res, Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(steps[6].out[1].2["evidence"], json!(["x", "z"]));
    assert_eq!(steps[11].res, Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(steps[11].out[0].2["evidence"], json!(["p0", "p1"]));
}

/// The generator is not vacuous: over a handful of streams, every kind of
/// outcome and output the model knows occurs.
#[test]
fn generated_streams_cover_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = case_strategy(1000..1001);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..24 {
        let (cfg, intents) = strategy.new_tree(&mut runner).expect("generates").current();
        let (steps, _) = model_run(&cfg, &intents);
        for st in &steps {
            let k = match &st.res {
                Res::C { class, pulled } => format!("complaint {class} {}", pulled.unwrap_or("-")),
                other => format!("{other:?}"),
            };
            *counts.entry(k).or_default() += 1;
            for (_, _, v) in &st.out {
                let k = match (v["type"].as_str(), v["action"].as_str()) {
                    (Some("opened"), _) => format!(
                        "opened delisted={} evidence={}",
                        v["delisted"],
                        v["evidence"].as_array().map_or(0, |a| a.len()).min(3)
                    ),
                    (Some(t), _) => t.to_owned(),
                    (None, Some(a)) => a.to_owned(),
                    _ => "?".to_owned(),
                };
                *counts.entry(k).or_default() += 1;
            }
            let opened_without_delist = st.out.iter().any(|(_, _, v)| v["type"] == "opened" && v["delisted"] == true)
                && !st.out.iter().any(|(_, _, v)| v["action"] == "delist");
            if opened_without_delist {
                *counts.entry("delisting opened, subject already off sale".into()).or_default() += 1;
            }
            if st.out.iter().filter(|(_, _, v)| v["type"] == "escalated").count() > 1 {
                *counts.entry("several escalations at once".into()).or_default() += 1;
            }
        }
    }
    let mut keys: Vec<_> = counts.iter().collect();
    keys.sort();
    for (k, n) in &keys {
        eprintln!("{n:>7}  {k}");
    }
    for want in [
        "complaint counted -",
        "complaint counted threshold",
        "complaint counted manual",
        "complaint late -",
        "complaint late manual",
        "complaint stale -",
        "complaint stale manual",
        "complaint attached -",
        "complaint duplicate -",
        "Applied",
        "UpdateDuplicate",
        "Rejected(\"unknown_andon\")",
        "Rejected(\"andon_closed\")",
        "Rejected(\"step_out_of_order\")",
        "Rejected(\"verdict_required\")",
        "delist",
        "relist",
        "opened delisted=true evidence=1",
        "opened delisted=true evidence=2",
        "opened delisted=true evidence=3",
        "opened delisted=false evidence=1",
        "step_completed",
        "escalated",
        "closed",
        "delisting opened, subject already off sale",
        "several escalations at once",
    ] {
        assert!(counts.get(want).copied().unwrap_or(0) > 0, "the generator never produced {want:?}");
    }
}

/// Memory is bounded by the window, not the stream: 20k records over months
/// of event time on few keys. Checked against the model as well.
#[test]
fn memory_stays_bounded_on_a_long_stream() {
    let mut runner = TestRunner::deterministic();
    let (mut cfg, intents) = case_strategy(20_000..20_001).new_tree(&mut runner).expect("generates").current();
    cfg.subjects = 3;
    cfg.customers = 4;
    let (steps, model) = model_run(&cfg, &intents);
    let horizon = cfg.horizon();
    let ecfg = cfg.engine_config();
    let mut e = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
    let mut sizes = Vec::new();
    let mut max_seen = 0;
    let mut max_counted = 0;
    // Event times of ids as the model remembers them, in processing order.
    let mut id_times: Vec<i64> = Vec::new();
    let mut dm = Driver::new(cfg.clone());
    for (i, st) in steps.iter().enumerate() {
        let got = engine_feed(&mut e, &st.rec);
        if got.0 != st.res || got.1 != st.out {
            panic!("{}", mismatch(&cfg, &steps, i, "engine and model differ", &got));
        }
        let before = (dm.model.seen_c.len(), dm.model.seen_u.len());
        dm.feed(&st.rec);
        if (dm.model.seen_c.len(), dm.model.seen_u.len()) != before {
            id_times.push(match &st.rec {
                Rec::C(c) => c.at,
                Rec::U(u) => u.at,
            });
        }
        if i % 200 == 199 {
            let now = (e.stream_time().expect("started") - Ts::EPOCH).as_secs();
            let state = e.state();
            let seen = state.seen.len();
            let counted: usize = state.subjects.values().flat_map(|s| &s.issues).map(|is| is.counted.len()).sum();
            // Ids within twice the horizon: the engine may keep what is
            // within the horizon plus what a lazy sweep has not dropped yet.
            let recent_ids = id_times.iter().filter(|&&t| t >= now - 2 * horizon).count();
            assert!(seen <= recent_ids, "record {i}: {seen} ids kept, only {recent_ids} within 2 × (2W + grace)");
            assert!(counted <= recent_ids, "record {i}: {counted} counted complaints kept");
            assert!(e.key_count() <= cfg.subjects * ISSUES.len());
            max_seen = max_seen.max(seen);
            max_counted = max_counted.max(counted);
            sizes.push(serde_json::to_string(state).expect("serialises").len());
        }
    }
    let records = steps.len();
    let span_days = (model.stream_time.expect("started") - BASE) / 86_400;
    eprintln!(
        "{records} records over {span_days} days: at most {max_seen} ids and {max_counted} counted complaints kept; \
         state {} .. {} bytes",
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0)
    );
    assert!(span_days > 10 * horizon / 86_400, "the stream spans many horizons");
    assert!(max_seen < records / 20, "{max_seen} ids kept of {records}");
    // The state does not grow with the stream: the last quarter is no bigger
    // than twice the second quarter's largest.
    let q = sizes.len() / 4;
    let second = sizes[q..2 * q].iter().max().copied().unwrap_or(0);
    let last = sizes[3 * q..].iter().max().copied().unwrap_or(0);
    assert!(last <= 2 * second + 4096, "state grew from {second} to {last} bytes");
}
