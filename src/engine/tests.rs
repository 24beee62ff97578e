//! One test per rule of docs/semantics.md, edge cases named.

use super::*;
use crate::config::Settings;
use crate::event::{Subject, SubjectKind, Verdict};
use std::collections::HashSet;

const H: Dur = Dur::from_secs(3600);
const NS: Dur = Dur::from_nanos(1);

/// The instant `d` after the epoch: times in these tests read as spans since 1970.
fn at(d: Dur) -> Ts {
    Ts::EPOCH + d
}

/// Default: threshold 2 in 10 h, grace 1 h; safety_hazard pulls at once;
/// promo_price_mismatch only notifies. Owners 1 h, 2 h, 3 h.
fn config() -> Arc<EngineConfig> {
    Settings::from_toml(
        r#"
        [processing]
        grace = "1h"
        max_future_skew = "1h"
        [rules.default]
        threshold = 2
        window = "10h"
        route = ["product", "operations", "supply_chain"]
        [[rules.issue]]
        issues = ["safety_hazard"]
        threshold = 1
        [[rules.issue]]
        issues = ["promo_price_mismatch"]
        action = "notify"
        route = ["product"]
        [owners.product]
        sla = "1h"
        [owners.operations]
        sla = "2h"
        [owners.supply_chain]
        sla = "3h"
        "#,
    )
    .expect("valid config")
    .engine
}

struct T {
    e: Engine,
    out: Vec<Output>,
}

/// A complaint about SKU `sku` (not a pull, no channel), for the tests of
/// the engine and of what reads it (`query`, the view's writer).
pub(crate) fn complaint(id: &str, at: Ts, sku: &str, issue: &str, customer: &str) -> Complaint {
    let subject = Subject { kind: SubjectKind::Sku, id: sku.into() };
    Complaint {
        event_id: id.into(),
        occurred_at: at,
        subject_key: subject.key(),
        subject,
        issue: issue.into(),
        customer_id: customer.into(),
        pull: false,
        channel: None,
    }
}

fn update(id: &str, andon: &str, step: u32, at: Ts, verdict: Option<Verdict>) -> Update {
    Update { update_id: id.into(), andon_id: andon.into(), step, actor: "ann".into(), at, verdict }
}

impl T {
    fn new() -> Self {
        Self { e: Engine::new(config(), EscalationClock::StreamTime), out: Vec::new() }
    }
    fn c(&mut self, id: &str, at: Ts, customer: &str) -> ComplaintOutcome {
        self.cx(complaint(id, at, "B1", "print_defect", customer))
    }
    fn cx(&mut self, c: Complaint) -> ComplaintOutcome {
        self.out.clear();
        self.e.on_complaint(c.clone(), RecordMeta::default(), &mut self.out).expect("accepted")
    }
    fn u(&mut self, u: Update) -> Result<UpdateOutcome, Reject> {
        self.out.clear();
        self.e.on_update(&u, RecordMeta::default(), &mut self.out)
    }
    /// `type` of each output, commands as their action.
    fn kinds(&self) -> Vec<&'static str> {
        self.out
            .iter()
            .map(|o| match o {
                Output::Command(c) => c.action.as_str(),
                Output::WorkOrder(w) => w.type_str(),
            })
            .collect()
    }
    fn json(&self) -> Vec<serde_json::Value> {
        self.out.iter().map(|o| serde_json::to_value(o).expect("serialises")).collect()
    }
}

fn class(o: ComplaintOutcome) -> ComplaintClass {
    o.class
}

#[test]
fn two_customers_within_the_window_pull_and_delist() {
    let mut t = T::new();
    assert_eq!(t.c("e1", Ts::EPOCH, "alice").pulled, None);
    assert!(t.out.is_empty());
    let o = t.c("e2", at(5 * H), "bob");
    assert_eq!(o.pulled, Some(Trigger::Threshold));
    assert_eq!(t.kinds(), ["delist", "opened"]);
    let j = t.json();
    assert_eq!(j[0]["command_id"], "sku:B1#delist#1");
    assert_eq!(j[0]["andon_id"], "sku:B1/print_defect#1");
    assert_eq!(j[0]["issued_at"], "1970-01-01T05:00:00Z");
    assert_eq!(j[0]["subject"], serde_json::json!({"kind": "sku", "id": "B1"}));
    assert_eq!(j[0]["reason"]["distinct_customers"], 2);
    assert_eq!(j[0]["reason"]["window_seconds"], 36000);
    assert_eq!(j[0]["reason"]["trigger"], "threshold");
    assert_eq!(j[1]["evidence"], serde_json::json!(["e1", "e2"]));
    assert_eq!(j[1]["delisted"], true);
    let steps = &j[1]["steps"];
    assert_eq!(steps[0]["due_at"], "1970-01-01T06:00:00Z");
    assert_eq!(steps[1]["due_at"], "1970-01-01T08:00:00Z");
    assert_eq!(steps[2]["due_at"], "1970-01-01T11:00:00Z");
    assert_eq!(steps[2]["owner"], "supply_chain");
}

#[test]
fn exactly_window_apart_pulls_one_more_nanosecond_does_not() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "alice");
    assert_eq!(t.c("e2", at(10 * H), "bob").pulled, Some(Trigger::Threshold));
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "alice");
    assert_eq!(t.c("e2", at(10 * H + NS), "bob").pulled, None);
}

#[test]
fn same_customer_twice_counts_once() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "alice");
    let o = t.c("e2", at(H), "alice");
    assert_eq!((o.class, o.pulled), (ComplaintClass::Counted, None));
    assert_eq!(t.c("e3", at(2 * H), "bob").pulled, Some(Trigger::Threshold));
    // One per customer: alice's earliest in the interval, bob's own.
    assert_eq!(t.json()[1]["evidence"], serde_json::json!(["e1", "e3"]));
}

#[test]
fn duplicates_are_ignored_and_move_no_clock() {
    let mut t = T::new();
    t.c("e1", at(100 * H), "alice");
    assert_eq!(class(t.c("e1", at(100 * H), "bob")), ComplaintClass::Duplicate);
    // Same event_id on another issue of the same subject is still a duplicate.
    assert_eq!(class(t.cx(complaint("e1", at(100 * H), "B1", "safety_hazard", "x"))), ComplaintClass::Duplicate);
    // Same event_id on another subject is not.
    assert_eq!(class(t.cx(complaint("e1", at(100 * H), "B2", "print_defect", "x"))), ComplaintClass::Counted);
    // A duplicate far in the future must not move stream time.
    assert_eq!(class(t.c("e1", at(1000 * H), "alice")), ComplaintClass::Duplicate);
    assert_eq!(t.e.stream_time(), Some(at(100 * H)));
}

#[test]
fn late_beyond_grace_is_not_counted() {
    let mut t = T::new();
    t.c("e1", at(100 * H), "alice");
    // Stream time 100 h, W 10 h, grace 1 h: older than 89 h is too late.
    assert_eq!(class(t.c("e2", at(89 * H - NS), "bob")), ComplaintClass::Late);
    assert!(t.out.is_empty());
}

#[test]
fn late_within_grace_that_pulls() {
    let mut t = T::new();
    t.c("e1", at(80 * H), "alice"); // counted, alone
    t.c("x1", at(100 * H), "carol"); // raises stream time to 100 h
                                     // 89 h is exactly stream time − W − grace: not too late, and within W of alice.
    let o = t.c("e2", at(89 * H), "bob");
    assert_eq!((o.class, o.pulled), (ComplaintClass::Counted, Some(Trigger::Threshold)));
    let j = t.json();
    assert_eq!(j[1]["evidence"], serde_json::json!(["e1", "e2"]));
    assert_eq!(j[1]["opened_at"], "1970-01-04T17:00:00Z");
}

#[test]
fn manual_pull_pulls_at_once_even_late() {
    let mut t = T::new();
    t.c("x", at(100 * H), "carol");
    let mut c = complaint("m1", Ts::EPOCH, "B1", "print_defect", "dave");
    c.pull = true;
    let o = t.cx(c);
    assert_eq!((o.class, o.pulled), (ComplaintClass::Late, Some(Trigger::Manual)));
    let j = t.json();
    assert_eq!(j[0]["reason"]["trigger"], "manual");
    assert_eq!(j[0]["reason"]["distinct_customers"], 1);
    assert_eq!(j[1]["evidence"], serde_json::json!(["m1"]));
    assert_eq!(j[1]["trigger"], "manual");
}

#[test]
fn complaints_attach_to_an_open_andon_even_manual_pulls() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", at(H), "b");
    assert_eq!(class(t.c("e3", at(2 * H), "c")), ComplaintClass::Attached);
    let mut c = complaint("e4", at(2 * H), "B1", "print_defect", "d");
    c.pull = true;
    let o = t.cx(c);
    assert_eq!((o.class, o.pulled), (ComplaintClass::Attached, None));
    t.u(update("u1", "sku:B1/print_defect#1", 1, at(H + H / 2), Some(Verdict::DefectConfirmed))).expect("ok");
    assert_eq!(t.kinds(), ["step_completed", "closed", "relist"]);
    assert_eq!(t.json()[1]["complaints_attached"], 2);
}

#[test]
fn stale_after_close_and_second_episode_ids() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", at(H), "b");
    t.u(update("u1", "sku:B1/print_defect#1", 1, at(H + H / 2), Some(Verdict::DefectConfirmed))).expect("ok");
    let j = t.json();
    assert_eq!(j[2]["command_id"], "sku:B1#relist#1");
    assert_eq!(j[2]["andon_id"], "sku:B1/print_defect#1");
    assert_eq!(j[2]["issued_at"], "1970-01-01T01:30:00Z");
    assert!(j[2].get("reason").is_none());
    // At or before the closing update's `at`: stale, whoever complains.
    assert_eq!(class(t.c("e3", at(H + H / 2), "c")), ComplaintClass::Stale);
    assert_eq!(class(t.c("e4", at(H / 2), "d")), ComplaintClass::Stale);
    // After it: counting from nothing; the stale ones do not help.
    assert_eq!(t.c("e5", at(5 * H), "c").pulled, None);
    assert_eq!(t.c("e6", at(6 * H), "d").pulled, Some(Trigger::Threshold));
    let j = t.json();
    assert_eq!(j[0]["command_id"], "sku:B1#delist#2");
    assert_eq!(j[1]["andon_id"], "sku:B1/print_defect#2");
    assert_eq!(j[1]["evidence"], serde_json::json!(["e5", "e6"]));
}

#[test]
fn steps_advance_in_order_and_last_step_needs_a_verdict() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", Ts::EPOCH, "b");
    let id = "sku:B1/print_defect#1";
    let err = t.u(update("u0", id, 2, at(H), None)).expect_err("out of order");
    assert_eq!(err.reason, RejectReason::StepOutOfOrder);
    t.u(update("u1", id, 1, at(H / 2), None)).expect("step 1");
    assert_eq!(t.kinds(), ["step_completed"]);
    assert_eq!(t.json()[0]["owner"], "product");
    // The rejected u0 used no id: the same update_id is now fine.
    t.u(update("u0", id, 2, at(H), None)).expect("step 2");
    let err = t.u(update("u3", id, 3, at(2 * H), None)).expect_err("needs verdict");
    assert_eq!(err.reason, RejectReason::VerdictRequired);
    t.u(update("u3", id, 3, at(2 * H), Some(Verdict::NoDefect))).expect("close");
    assert_eq!(t.kinds(), ["step_completed", "closed", "relist"]);
    assert_eq!(t.json()[1]["verdict"], "no_defect");
    let err = t.u(update("u4", id, 3, at(3 * H), Some(Verdict::NoDefect))).expect_err("closed");
    assert_eq!(err.reason, RejectReason::AndonClosed);
    let err = t.u(update("u5", "sku:B1/print_defect#2", 1, at(3 * H), None)).expect_err("unknown");
    assert_eq!(err.reason, RejectReason::UnknownAndon);
    let err = t.u(update("u6", "garbage", 1, at(3 * H), None)).expect_err("unknown");
    assert_eq!(err.reason, RejectReason::UnknownAndon);
    // A repeated update_id of an applied update is a duplicate, not andon_closed.
    assert_eq!(t.u(update("u3", id, 3, at(2 * H), Some(Verdict::NoDefect))), Ok(UpdateOutcome::Duplicate));
}

#[test]
fn verdict_closes_early_skipping_steps() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", Ts::EPOCH, "b");
    t.u(update("u1", "sku:B1/print_defect#1", 1, at(H / 2), Some(Verdict::DefectConfirmed))).expect("close");
    assert_eq!(t.kinds(), ["step_completed", "closed", "relist"]);
}

#[test]
fn two_issues_on_one_subject_give_one_delist_and_one_relist() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", Ts::EPOCH, "b");
    assert_eq!(t.kinds(), ["delist", "opened"]);
    t.cx(complaint("s1", at(H / 4), "B1", "safety_hazard", "c"));
    assert_eq!(t.kinds(), ["opened"], "already off sale: no second delist");
    assert_eq!(t.json()[0]["delisted"], true);
    assert_eq!(t.e.delisted_subject_count(), 1);
    t.u(update("u1", "sku:B1/print_defect#1", 1, at(H / 2), Some(Verdict::DefectConfirmed))).expect("close");
    assert_eq!(t.kinds(), ["step_completed", "closed"], "safety andon still open: no relist");
    t.u(update("u2", "sku:B1/safety_hazard#1", 1, at(H / 2), Some(Verdict::DefectConfirmed))).expect("close");
    assert_eq!(t.kinds(), ["step_completed", "closed", "relist"]);
    let j = t.json();
    assert_eq!(j[2]["command_id"], "sku:B1#relist#1");
    assert_eq!(j[2]["andon_id"], "sku:B1/safety_hazard#1");
    assert_eq!(t.e.delisted_subject_count(), 0);
}

#[test]
fn notify_rules_open_work_orders_without_delisting() {
    let mut t = T::new();
    t.cx(complaint("p1", Ts::EPOCH, "B1", "promo_price_mismatch", "a"));
    t.cx(complaint("p2", at(H), "B1", "promo_price_mismatch", "b"));
    assert_eq!(t.kinds(), ["opened"]);
    assert_eq!(t.json()[0]["delisted"], false);
    assert_eq!(t.e.delisted_subject_count(), 0);
    t.u(update("u1", "sku:B1/promo_price_mismatch#1", 1, at(2 * H), Some(Verdict::NoDefect))).expect("close");
    assert_eq!(t.kinds(), ["step_completed", "closed"], "never delisted, so no relist");
    // A notify andon open beside a delisting one: the delisting one decides.
    t.cx(complaint("p3", at(3 * H), "B1", "promo_price_mismatch", "a"));
    t.cx(complaint("p4", at(3 * H), "B1", "promo_price_mismatch", "b"));
    t.cx(complaint("s1", at(3 * H), "B1", "safety_hazard", "c"));
    assert_eq!(t.kinds(), ["delist", "opened"]);
}

#[test]
fn escalations_follow_stream_time_in_due_order_once() {
    let mut t = T::new();
    t.cx(complaint("a", Ts::EPOCH, "B2", "safety_hazard", "x")); // due 1 h
    t.cx(complaint("b", Ts::EPOCH, "B1", "safety_hazard", "x")); // due 1 h, sorts first
    t.c("c", at(H), "y"); // raises to exactly 1 h: not *before* t, nothing yet
    assert_eq!(t.kinds(), Vec::<&str>::new());
    let o = t.c("d", at(H + NS), "z");
    assert_eq!(o.pulled, Some(Trigger::Threshold));
    // B1 is already off sale through its safety andon: no second delist.
    assert_eq!(t.kinds(), ["escalated", "escalated", "opened"]);
    let j = t.json();
    assert_eq!(j[0]["andon_id"], "sku:B1/safety_hazard#1");
    assert_eq!(j[1]["andon_id"], "sku:B2/safety_hazard#1");
    assert_eq!(j[0]["escalated_at"], "1970-01-01T01:00:00.000000001Z");
    assert_eq!(j[0]["due_at"], "1970-01-01T01:00:00Z");
    t.c("e", at(2 * H), "q");
    assert_eq!(t.kinds(), Vec::<&str>::new(), "each step is escalated once");
    // Completing step 1 late: step 2 is due `at` + 2 h, escalated when passed.
    t.u(update("u1", "sku:B1/safety_hazard#1", 1, at(2 * H), None)).expect("ok");
    assert_eq!(t.kinds(), ["step_completed"]);
    t.c("f", at(4 * H + NS), "r");
    let escalated: Vec<_> = t.json().into_iter().filter(|v| v["type"] == "escalated").collect();
    assert!(escalated.iter().any(|v| v["andon_id"] == "sku:B1/safety_hazard#1" && v["step"] == 2));
}

#[test]
fn wall_clock_mode_escalates_only_on_tick() {
    let mut e = Engine::new(config(), EscalationClock::WallClock);
    let mut out = Vec::new();
    e.on_complaint(complaint("a", Ts::EPOCH, "B1", "safety_hazard", "x"), RecordMeta::default(), &mut out).expect("ok");
    out.clear();
    e.on_complaint(complaint("b", at(10 * H), "B2", "print_defect", "x"), RecordMeta::default(), &mut out).expect("ok");
    assert!(out.is_empty(), "stream time alone never escalates in run mode");
    assert_eq!(e.next_due(), Some(at(H)));
    e.tick(at(H), &mut out);
    assert!(out.is_empty());
    e.tick(at(H + 5 * NS), &mut out);
    assert_eq!(out.len(), 1);
    e.tick(at(H + 10 * NS), &mut out);
    assert_eq!(out.len(), 1, "escalated once");
}

#[test]
fn record_checks_key_mismatch_and_future_skew() {
    let mut e = Engine::new(config(), EscalationClock::WallClock);
    let mut out = Vec::new();
    let c = complaint("a", at(10 * H), "B1", "print_defect", "x");
    let err =
        e.on_complaint(c.clone(), RecordMeta { key: Some(b"sku:B2"), timestamp: None }, &mut out).expect_err("key");
    assert_eq!(err.reason, RejectReason::KeyMismatch);
    let err = e
        .on_complaint(c.clone(), RecordMeta { key: Some(b"sku:B1"), timestamp: Some(at(9 * H - NS)) }, &mut out)
        .expect_err("future");
    assert_eq!(err.reason, RejectReason::OccurredAtInFuture);
    assert_eq!(e.stream_time(), None, "rejected records move no clock");
    e.on_complaint(c.clone(), RecordMeta { key: Some(b"sku:B1"), timestamp: Some(at(9 * H)) }, &mut out)
        .expect("exactly 1 h");
    let u = update("u", "sku:B1/print_defect#1", 1, Ts::EPOCH, None);
    let err = e.on_update(&u, RecordMeta { key: Some(b"sku:B9"), timestamp: None }, &mut out).expect_err("key");
    assert_eq!(err.reason, RejectReason::KeyMismatch);
}

#[test]
fn state_is_bounded_by_the_horizon() {
    let mut t = T::new();
    // 2000 complaints, each on its own subject, an hour apart: none pulls.
    for i in 0..2000 {
        t.cx(complaint(&format!("e{i}"), at(i * H), &format!("B{i}"), "print_defect", "a"));
    }
    // Horizon for ids: 2 × 10 h + 1 h = 21 h; plus at most one sweep interval.
    assert!(t.e.state().seen.len() <= 21 + 4, "{} ids kept", t.e.state().seen.len());
    assert!(t.e.key_count() <= 21 + 4, "{} keys kept", t.e.key_count());
}

#[test]
fn keys_share_their_issue_name_and_names_no_key_holds_are_forgotten() {
    let mut t = T::new();
    t.cx(complaint("s1", Ts::EPOCH, "B1", "print_defect", "a"));
    t.cx(complaint("s2", Ts::EPOCH, "B2", "print_defect", "a"));
    let names: Vec<_> = ["sku:B1", "sku:B2"].map(|k| Arc::clone(&t.e.state().subjects[k].issues[0].issue)).into();
    assert!(Arc::ptr_eq(&names[0], &names[1]), "one string for both keys");
    drop(names);
    // Issues are free text: 2000 of them, an hour apart, none repeated.
    for i in 0..2000 {
        t.cx(complaint(&format!("e{i}"), at(i * H), &format!("B{i}"), &format!("issue-{i}"), "a"));
    }
    let kept = t.e.state().issues.len();
    assert!(kept <= 21 + 4, "{kept} issue names kept");
    let live: HashSet<&str> =
        t.e.state().subjects.values().flat_map(|s| s.issues.iter().map(|is| is.issue.as_str())).collect();
    assert_eq!(kept, live.len(), "exactly the live keys' names are kept");
}

#[test]
fn snapshot_restores_an_identical_engine() {
    let mut t = T::new();
    t.c("e1", Ts::EPOCH, "a");
    t.c("e2", at(H), "b");
    t.cx(complaint("p1", at(H), "B1", "promo_price_mismatch", "a"));
    let json = serde_json::to_string(t.e.state()).expect("serialises");
    let state: State = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(&state, t.e.state());
    let mut r = Engine::restore(config(), EscalationClock::StreamTime, state);
    assert_eq!(r.open_andon_count(), 1);
    assert_eq!(r.delisted_subject_count(), 1);
    assert_eq!(r.next_due(), t.e.next_due());
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (e, out) in [(&mut t.e, &mut a), (&mut r, &mut b)] {
        e.on_complaint(complaint("p2", at(2 * H), "B1", "promo_price_mismatch", "b"), RecordMeta::default(), out)
            .expect("ok");
        e.on_update(&update("u1", "sku:B1/print_defect#1", 1, at(5 * H), None), RecordMeta::default(), out)
            .expect("ok");
    }
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

/// The changelog's contract: deltas taken at any points and applied in order
/// to the starting state give an engine that continues exactly like the
/// original (the examples exercise pulls, closes, escalations, duplicates).
#[test]
fn deltas_applied_in_order_restore_an_engine_that_continues_identically() {
    use crate::event::{decode_complaint, decode_update};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/");
    let cfg = Settings::load(Some(std::path::Path::new(&format!("{dir}andon.toml")))).expect("config").engine;
    let read = |f: &str| std::fs::read_to_string(format!("{dir}{f}")).expect("example file");
    let (complaints, updates) = (read("complaints.jsonl"), read("updates.jsonl"));
    let mut inputs: Vec<(Ts, bool, String)> = Vec::new();
    for l in complaints.lines() {
        if let Ok(c) = decode_complaint(l.as_bytes(), 1 << 16) {
            inputs.push((c.occurred_at, false, l.to_owned()));
        }
    }
    for l in updates.lines() {
        if let Ok(u) = decode_update(l.as_bytes(), 1 << 16) {
            inputs.push((u.at, true, l.to_owned()));
        }
    }
    inputs.sort_by_key(|(t, is_update, _)| (*t, *is_update));
    let feed = |e: &mut Engine, (_, is_update, line): &(Ts, bool, String), out: &mut Vec<Output>| {
        if *is_update {
            let _ = e.on_update(&decode_update(line.as_bytes(), 1 << 16).expect("valid"), RecordMeta::default(), out);
        } else {
            let _ =
                e.on_complaint(decode_complaint(line.as_bytes(), 1 << 16).expect("valid"), RecordMeta::default(), out);
        }
    };
    let mut whole = Engine::new(cfg.clone(), EscalationClock::StreamTime);
    let mut want = Vec::new();
    for i in &inputs {
        feed(&mut whole, i, &mut want);
    }
    for every in 1..=5 {
        let mut tracked = Engine::new(cfg.clone(), EscalationClock::StreamTime);
        tracked.track_changes();
        let mut log = changes::Encoded::default();
        let mut got = Vec::new();
        let cut = inputs.len() / 2;
        for (k, i) in inputs[..cut].iter().enumerate() {
            feed(&mut tracked, i, &mut got);
            if k % every == 0 {
                tracked.take_changes(&mut log);
            }
        }
        tracked.take_changes(&mut log);
        // Through the changelog's encoding, as a restore reads it.
        let mut restored_state = State::default();
        for op in changes::decode(&log.bytes) {
            changes::apply(&mut restored_state, op.expect("decodes"));
        }
        let mut restored = Engine::restore(cfg.clone(), EscalationClock::StreamTime, restored_state);
        for i in &inputs[cut..] {
            feed(&mut restored, i, &mut got);
        }
        assert_eq!(got, want, "changes taken every {every} records");
    }
}

#[test]
fn a_pull_with_more_than_a_hundred_customers_lists_a_hundred_and_counts_all() {
    let cfg = Settings::from_toml("[rules.default]\nthreshold = 150\nwindow = \"10h\"").expect("valid").engine;
    let mut e = Engine::new(cfg, EscalationClock::StreamTime);
    let mut out = Vec::new();
    for i in 0..150 {
        out.clear();
        let c = complaint(&format!("e{i:03}"), at(Dur::from_secs(i)), "B1", "print_defect", &format!("c{i}"));
        e.on_complaint(c.clone(), RecordMeta::default(), &mut out).expect("accepted");
    }
    let Some(Output::Command(DelistCommand { reason: Some(reason), .. })) = out.first() else {
        panic!("the 150th customer delists: {out:?}")
    };
    assert_eq!(reason.distinct_customers, 150, "the count stays exact");
    let Some(Output::WorkOrder(WorkOrderEvent::Opened { evidence, evidence_total, .. })) = out.get(1) else {
        panic!("opened follows: {out:?}")
    };
    assert_eq!(*evidence_total, 150);
    assert_eq!(evidence.len(), 100);
    assert_eq!((evidence[0].as_str(), evidence[98].as_str()), ("e000", "e098"), "the earliest first");
    assert_eq!(evidence[99], "e149", "the pulling complaint is always listed");
}

#[test]
fn a_key_flooded_by_one_customer_stays_quiet_until_a_second_customer_pulls() {
    let mut t = T::new();
    for i in 0..20_000 {
        assert_eq!(t.c(&format!("f{i}"), at(Dur::from_secs(i) / 10), "flooder").pulled, None);
    }
    let key = t.e.state().subjects.get("sku:B1").expect("subject");
    assert!(key.issues[0].counted.is_flooded(), "the key switched to its flooded representation");
    assert_eq!(t.c("other", at(Dur::from_secs(1_000)), "bob").pulled, Some(Trigger::Threshold));
    let Some(Output::WorkOrder(WorkOrderEvent::Opened { evidence, evidence_total, .. })) = t.out.get(1) else {
        panic!("opened: {:?}", t.out)
    };
    assert_eq!(*evidence_total, 2);
    assert_eq!(evidence.len(), 2);
    assert_eq!(evidence[1], "other");
}
