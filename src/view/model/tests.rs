//! The model against hand-made records: what puts, tombstones and closes
//! leave open and off sale, the recent events they make, and the reports.

use serde::Serialize;

use super::*;
use crate::event::{Channel, Subject, SubjectKind, Trigger, Verdict};
use crate::time::{Dur, Ts};
use crate::view::record::{
    andon_key, closed_key, member_key, AndonRecord, ClosedRecord, MemberRecord, Series, StepRecord, BUCKETS,
    BUCKET_SECONDS,
};

const S: Dur = Dur::SECOND;
const NOW: Ts = Ts::from_nanos(1_780_000_000 * 1_000_000_000);

fn andon(id: &str, partition: i32, delisting: bool, due: Ts) -> AndonRecord {
    let (key, rest) = id.rsplit_once('/').expect("id");
    AndonRecord {
        andon_id: id.into(),
        partition,
        subject: Subject::from_key(key).expect("subject"),
        issue: rest.split('#').next().expect("issue").into(),
        trigger: Trigger::Threshold,
        delisting,
        channel: None,
        opened_at: NOW - 3600 * S,
        evidence: vec!["e1".into()],
        evidence_total: 1,
        step: 1,
        steps: 2,
        owner: "product".into(),
        step_started_at: NOW - 3600 * S,
        due_at: due,
        escalated: false,
        complaints_attached: 0,
        done: vec![],
    }
}

fn step(owner: &str, actor: &str, started: Ts, took: Dur, sla: Dur) -> StepRecord {
    StepRecord {
        step: 1,
        owner: owner.into(),
        actor: actor.into(),
        started_at: started,
        completed_at: started + took,
        due_at: started + sla,
    }
}

fn closed(id: &str, verdict: Verdict, trigger: Trigger, channel: Option<Channel>, at: Ts) -> ClosedRecord {
    let a = andon(id, 0, true, Ts::EPOCH);
    ClosedRecord {
        andon_id: id.into(),
        partition: 0,
        subject: a.subject,
        issue: a.issue,
        trigger,
        delisting: true,
        channel,
        verdict,
        opened_at: at - 3600 * S,
        closed_at: at,
        complaints_attached: 0,
        steps: vec![],
    }
}

fn put(m: &mut Model, key: &str, v: &impl Serialize) {
    m.apply(key, Some(&serde_json::to_vec(v).expect("json")), NOW, NOW).expect("applies");
}

#[test]
fn puts_tombstones_and_closes_give_the_open_andons_and_off_sale_subjects() {
    let mut m = Model::default();
    put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
    put(&mut m, &andon_key("sku:A/y#1"), &andon("sku:A/y#1", 0, true, NOW - S));
    put(&mut m, &andon_key("sku:B/x#1"), &andon("sku:B/x#1", 1, false, NOW + 2 * S));
    let ids: Vec<&str> = m.andons(NOW).iter().map(|a| a.andon.andon_id.as_str()).collect();
    assert_eq!(ids, ["sku:A/y#1", "sku:A/x#1", "sku:B/x#1"], "by due time");
    assert!(m.andon("sku:A/y#1", NOW).expect("open").overdue);
    assert!(m.off_sale("sku:A") && !m.off_sale("sku:B"), "notify andons keep nothing off sale");
    // Re-putting (an owner's refresh) changes nothing.
    put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
    assert_eq!((m.open_count(), m.off_sale_count()), (3, 1));
    // Closing one of A's two delisting andons keeps A off sale.
    put(
        &mut m,
        &closed_key("sku:A/x#1"),
        &closed("sku:A/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW),
    );
    m.apply(&andon_key("sku:A/x#1"), None, NOW, NOW).expect("tombstone");
    assert!(m.off_sale("sku:A"));
    m.apply(&andon_key("sku:A/y#1"), None, NOW, NOW).expect("tombstone");
    assert!(!m.off_sale("sku:A"), "its last delisting andon closed");
    assert_eq!(m.open_count(), 1);
    assert_eq!(m.andon_ids_in(1), ["sku:B/x#1"]);
    assert!(m.andon_ids_in(0).is_empty());
    let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "pull").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "delist").count(), 1, "{kinds:?}");
    assert!(kinds.contains(&"closed"));
    assert!(m.apply("andon/x", Some(b"{"), NOW, NOW).is_err());
    assert!(m.apply("nope", None, NOW, NOW).is_err());
}

#[test]
fn a_close_relists_and_escalations_show_in_recent() {
    let mut m = Model::default();
    put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
    let mut esc = andon("sku:A/x#1", 0, true, NOW + S);
    esc.escalated = true;
    put(&mut m, &andon_key("sku:A/x#1"), &esc);
    put(&mut m, &andon_key("sku:A/x#1"), &esc);
    put(&mut m, &closed_key("sku:A/x#1"), &closed("sku:A/x#1", Verdict::NoDefect, Trigger::Threshold, None, NOW));
    let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["delist", "pull", "escalated", "relist", "closed"]);
    assert!(!m.off_sale("sku:A"));
}

#[test]
fn an_andon_opened_and_closed_unseen_still_shows_its_pull_delist_and_relist() {
    let mut m = Model::default();
    let c = closed("sku:A/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW);
    put(&mut m, &closed_key("sku:A/x#1"), &c);
    put(&mut m, &closed_key("sku:A/x#1"), &c);
    let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["delist", "pull", "relist", "closed"], "once, though seen twice");
    // With another delisting andon open on the subject, no delist or relist.
    put(&mut m, &andon_key("sku:B/y#1"), &andon("sku:B/y#1", 0, true, NOW + S));
    put(
        &mut m,
        &closed_key("sku:B/x#1"),
        &closed("sku:B/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW),
    );
    let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "relist").count(), 1, "{kinds:?}");
    assert!(m.off_sale("sku:B"));
}

#[test]
fn history_is_bounded_by_age() {
    let mut m = Model::default();
    put(
        &mut m,
        &closed_key("sku:A/x#1"),
        &closed("sku:A/x#1", Verdict::NoDefect, Trigger::Manual, None, NOW - 31 * DAY),
    );
    assert_eq!(m.closed_count(), 0, "too old to keep");
    put(
        &mut m,
        &closed_key("sku:A/x#2"),
        &closed("sku:A/x#2", Verdict::NoDefect, Trigger::Manual, None, NOW - 29 * DAY),
    );
    assert_eq!(m.closed_count(), 1);
    m.sweep(NOW + 2 * DAY);
    assert_eq!(m.closed_count(), 0, "aged out");
    assert_eq!(m.bad_pulls(NOW).closed, 0);
}

#[test]
fn bad_pulls_by_issue_trigger_and_channel() {
    let mut m = Model::default();
    let cases = [
        ("sku:A/x#1", Verdict::NoDefect, Trigger::Manual, Some(Channel::Chat)),
        ("sku:A/x#2", Verdict::DefectConfirmed, Trigger::Threshold, Some(Channel::Chat)),
        ("sku:B/y#1", Verdict::DefectConfirmed, Trigger::Threshold, None),
        ("sku:C/y#1", Verdict::NoDefect, Trigger::Threshold, Some(Channel::Phone)),
    ];
    for (id, v, t, c) in cases {
        put(&mut m, &closed_key(id), &closed(id, v, t, c, NOW - DAY));
    }
    let r = m.bad_pulls(NOW);
    assert_eq!((r.closed, r.bad, r.rate), (4, 2, Some(0.5)));
    let row = |rows: &[RateRow], k: &str| rows.iter().find(|r| r.key == k).map(|r| (r.closed, r.bad)).expect(k);
    assert_eq!(row(&r.by_issue, "x"), (2, 1));
    assert_eq!(row(&r.by_issue, "y"), (2, 1));
    assert_eq!(row(&r.by_trigger, "manual"), (1, 1));
    assert_eq!(row(&r.by_trigger, "threshold"), (3, 1));
    assert_eq!(row(&r.by_channel, "chat"), (2, 1));
    assert_eq!(row(&r.by_channel, "phone"), (1, 1));
    assert_eq!(row(&r.by_channel, NO_CHANNEL), (1, 0));
}

#[test]
fn owners_timeliness_from_open_and_closed_andons() {
    let mut m = Model::default();
    let h = 3600 * S;
    // product: 1 h (in SLA), 3 h (late), 2 h 10 days ago (in SLA); operations: one open, overdue.
    let mut a = andon("sku:A/x#1", 0, true, NOW - S);
    a.owner = "operations".into();
    a.done = vec![step("product", "ann", NOW - 2 * DAY, h, 2 * h)];
    put(&mut m, &andon_key("sku:A/x#1"), &a);
    let mut c = closed("sku:B/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW - DAY);
    c.steps =
        vec![step("product", "bob", NOW - 3 * DAY, 3 * h, 2 * h), step("operations", "ann", NOW - DAY - h, h, 12 * h)];
    put(&mut m, &closed_key("sku:B/x#1"), &c);
    let mut c = closed("sku:C/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW - 10 * DAY);
    c.steps = vec![step("product", "bob", NOW - 10 * DAY - 2 * h, 2 * h, 2 * h)];
    put(&mut m, &closed_key("sku:C/x#1"), &c);
    let r = m.owners(NOW);
    let product = r.owners.iter().find(|o| o.owner == "product").expect("product");
    assert_eq!(
        (product.open_steps, product.overdue, product.timeliness.completed_7d, product.timeliness.completed_30d),
        (0, 0, 2, 3)
    );
    assert_eq!((product.timeliness.median_seconds, product.timeliness.p90_seconds), (Some(7200.0), Some(10800.0)));
    assert_eq!(product.timeliness.within_sla, Some(2.0 / 3.0));
    let ops = r.owners.iter().find(|o| o.owner == "operations").expect("operations");
    assert_eq!(
        (ops.open_steps, ops.overdue, ops.timeliness.completed_30d, ops.timeliness.within_sla),
        (1, 1, 1, Some(1.0))
    );
    let ann = r.actors.iter().find(|a| a.actor == "ann").expect("ann");
    assert_eq!(
        (ann.timeliness.completed_30d, ann.owners.clone()),
        (2, vec!["operations".to_owned(), "product".to_owned()])
    );
    let bob = r.actors.iter().find(|a| a.actor == "bob").expect("bob");
    assert_eq!(
        (bob.timeliness.completed_7d, bob.timeliness.completed_30d, bob.timeliness.within_sla),
        (1, 2, Some(0.5))
    );
    // The shared fields are the rows' own in the JSON.
    let json = serde_json::to_value(bob).expect("json");
    assert_eq!((json["actor"].as_str(), json["completed_30d"].as_u64()), (Some("bob"), Some(2)), "{json}");
}

#[test]
fn nearest_rank_percentiles() {
    assert_eq!(percentile(&[], 50), None);
    assert_eq!(percentile(&[5.0], 90), Some(5.0));
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!((percentile(&v, 50), percentile(&v, 90), percentile(&v, 100)), (Some(5.0), Some(9.0), Some(10.0)));
    assert_eq!(percentile(&[3.0, 1.0, 2.0], 50), Some(2.0));
}

#[test]
fn the_owner_of_a_partition_is_the_latest_member_to_claim_it() {
    let mut m = Model::default();
    let member = |id: &str, partitions: Vec<i32>, at: Ts| MemberRecord {
        member: id.into(),
        advertise: format!("http://{id}:9898"),
        partitions,
        updated_at: at,
        series: Series::default(),
    };
    put(&mut m, &member_key("a"), &member("a", vec![0, 1], NOW - 20 * S));
    put(&mut m, &member_key("b"), &member("b", vec![1], NOW - 5 * S));
    assert_eq!(m.owner_of(0).map(|m| m.member.as_str()), Some("a"));
    assert_eq!(m.owner_of(1).map(|m| m.member.as_str()), Some("b"), "handed over");
    assert!(m.owner_of(2).is_none());
    m.sweep(NOW + 2 * 3600 * S);
    assert_eq!(m.members().count(), 0, "forgotten after an hour");
}

#[test]
fn charts_sum_the_members_up_to_what_all_running_ones_published() {
    let mut m = Model::default();
    let now_b = (NOW - Ts::EPOCH).as_secs() / BUCKET_SECONDS;
    let series = |first: i64, n: usize, v: u64| Series {
        first_bucket: first,
        complaints: vec![v * 10; n],
        pulls: vec![v; n],
        open: vec![v; n],
        overdue: vec![0; n],
    };
    let rec = |id: &str, s: Series| MemberRecord {
        member: id.into(),
        advertise: String::new(),
        partitions: vec![],
        updated_at: NOW,
        series: s,
    };
    put(&mut m, &member_key("a"), &rec("a", series(now_b - 9, 10, 1)));
    put(&mut m, &member_key("b"), &rec("b", series(now_b - 4, 4, 2)));
    let c = m.charts(NOW);
    assert_eq!(c.complaints_per_second.len(), BUCKETS);
    assert_eq!(c.first_bucket_at, (now_b - 1 - BUCKETS as i64 + 1) * BUCKET_SECONDS, "ends at b's last bucket");
    let last = BUCKETS - 1;
    assert_eq!((c.complaints_per_second[last], c.pulls[last], c.open_andons[last]), (3.0, 3, Some(3)));
    assert_eq!((c.pulls[last - 4], c.open_andons[last - 4]), (1, Some(1)), "before b started");
    assert_eq!(c.open_andons[last - 9], None, "nobody sampled");
}

#[test]
fn subjects_from_path_parts() {
    assert_eq!(subject_of("sku", "B1"), Some(Subject { kind: SubjectKind::Sku, id: "B1".into() }));
    assert_eq!(subject_of("promotion", "a/b:c").map(|s| s.key()), Some("promotion:a/b:c".into()));
    assert_eq!(subject_of("book", "B1"), None);
    assert_eq!(subject_of("sku", ""), None);
    assert_eq!(subject_of("sku", &"x".repeat(129)), None);
    assert_eq!(subject_of("sku:x", "B1"), None);
}
