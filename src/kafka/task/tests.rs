//! One partition's task, without Kafka: what it processes, waits for,
//! writes to the DLQ and suppresses.

use std::time::{Duration, Instant};

use super::*;
use crate::config::Settings;
use crate::time::Dur;

const IDLE: Duration = Duration::from_millis(100);

fn task(suppress: &[&str]) -> Task {
    let cfg = Settings::from_toml("[rules.default]\nthreshold = 2\nwindow = \"1h\"\nroute = [\"product\"]")
        .expect("valid")
        .engine;
    Task::new(
        0,
        cfg,
        State::default(),
        Chain::default(),
        (0, 1),
        suppress.iter().map(|s| s.to_string()).collect(),
        ["complaints".into(), "updates".into()],
        Limits { max_event_bytes: 65_536, max_message_bytes: 1_000_000 },
    )
}

fn complaint(id: &str, customer: &str, minute: u32) -> String {
    format!(
        r#"{{"event_id":"{id}","occurred_at":"2026-11-01T10:{minute:02}:00Z","subject":{{"kind":"sku","id":"A"}},"issue":"print_defect","customer_id":"{customer}"}}"#
    )
}

/// Offers a record now (processed at once if its turn, else queued).
fn push(t: &mut Task, side: Side, offset: i64, value: &[u8], out: &mut Vec<Produce>) {
    let key = Some(&b"sku:A"[..]);
    t.offer(Incoming { side, offset, key, value: Some(value), timestamp: None }, Instant::now(), IDLE, out);
}

fn types(out: &[Produce]) -> Vec<String> {
    out.iter()
        .map(|p| match p.topic {
            OutTopic::Dlq => "dlq".to_owned(),
            _ => {
                let v: serde_json::Value = serde_json::from_slice(&p.value).expect("json");
                v.get("type").or_else(|| v.get("action")).and_then(|t| t.as_str()).unwrap_or("?").to_owned()
            }
        })
        .collect()
}

#[test]
fn a_record_too_large_for_the_producer_goes_to_the_dlq_without_its_value() {
    let mut t = task(&[]);
    let poison = vec![b'x'; 1_040_000];
    let mut out = Vec::new();
    push(&mut t, Side::Complaints, 0, &poison, &mut out);
    push(&mut t, Side::Complaints, 1, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 2, complaint("e2", "bob", 2).as_bytes(), &mut out);
    t.at_end(Side::Updates);
    let now = Instant::now();
    t.process(now, Ts::EPOCH, IDLE, &mut out);
    t.process(now + IDLE, Ts::EPOCH, IDLE, &mut out);
    assert_eq!(types(&out), ["dlq", "delist", "opened"], "the good pair behind it pulls");
    let dlq = &out[0];
    assert!(dlq.value.is_empty(), "the value is omitted");
    let header = |name: &str| dlq.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("andon.error.reason"), Some("too_large"));
    assert_eq!(header("andon.error.value_omitted"), Some("1040000"));
    assert_eq!(header("andon.source.offset"), Some("0"));
    // A small bad record keeps its value.
    let mut t = task(&[]);
    let mut out = Vec::new();
    push(&mut t, Side::Complaints, 0, b"{not json", &mut out);
    t.process(now, Ts::EPOCH, IDLE, &mut out);
    assert_eq!(out[0].value, b"{not json");
    assert!(!out[0].headers.iter().any(|(k, _)| *k == "andon.error.value_omitted"));
}

#[test]
fn the_merge_waits_for_an_input_not_known_to_be_at_its_end() {
    let mut t = task(&[]);
    let mut out = Vec::new();
    push(&mut t, Side::Complaints, 0, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 1, complaint("e2", "bob", 2).as_bytes(), &mut out);
    let now = Instant::now();
    // However long: updates may still be on their way (a stall is
    // reported by the processor, not papered over here).
    let tally = t.process(now + Duration::from_secs(3600), Ts::EPOCH, IDLE, &mut out);
    assert_eq!((tally.processed, out.len()), (0, 0));
    t.at_end(Side::Updates);
    t.process(now + Duration::from_secs(3600), Ts::EPOCH, IDLE, &mut out);
    assert_eq!(types(&out), ["delist", "opened"], "at its end and quiet for long: passed over");
}

#[test]
fn an_end_seen_before_the_link_was_lost_is_not_trusted() {
    let mut t = task(&[]);
    let mut out = Vec::new();
    t.at_end(Side::Updates);
    // The updates consumer loses the broker; complaints keep coming (their
    // consumer reconnected first) while updates written meanwhile wait.
    t.link_lost(Side::Updates);
    assert_eq!(t.next_offset(Side::Updates), 0, "where it fetches again from");
    push(&mut t, Side::Complaints, 0, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 1, complaint("e2", "bob", 2).as_bytes(), &mut out);
    let now = Instant::now();
    let tally = t.process(now + Duration::from_secs(3600), Ts::EPOCH, IDLE, &mut out);
    assert_eq!((tally.processed, out.len()), (0, 0), "waits: the end it saw may have moved");
    // Fetched again to its end: nothing was written meanwhile.
    t.at_end(Side::Updates);
    t.process(now + Duration::from_secs(3600), Ts::EPOCH, IDLE, &mut out);
    assert_eq!(types(&out), ["delist", "opened"]);
}

#[test]
fn records_held_up_by_the_other_input_are_bounded_and_flow_again() {
    let mut t = task(&[]);
    let mut out = Vec::new();
    let mut offset = 0;
    while t.accepts(Side::Complaints) {
        let c = complaint(&format!("e{offset}"), &format!("c{offset}"), (offset % 60) as u32);
        push(&mut t, Side::Complaints, offset, c.as_bytes(), &mut out);
        offset += 1;
    }
    assert_eq!((offset as usize, out.len()), (super::QUEUE_LIMIT, 0), "held while updates are not known at their end");
    assert!(t.accepts(Side::Updates), "the input the merge waits for is still taken");
    t.at_end(Side::Updates);
    let now = Instant::now();
    let tally = t.process(now + IDLE, Ts::EPOCH, IDLE, &mut out);
    assert_eq!(tally.processed as usize, super::QUEUE_LIMIT);
    assert!(t.accepts(Side::Complaints));
}

#[test]
fn an_input_at_its_end_is_still_waited_for_max_task_idle() {
    let mut t = task(&[]);
    let mut out = Vec::new();
    t.at_end(Side::Updates);
    let now = Instant::now();
    push(&mut t, Side::Complaints, 0, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 1, complaint("e2", "bob", 2).as_bytes(), &mut out);
    t.process(now, Ts::EPOCH, IDLE, &mut out);
    assert!(out.is_empty(), "updates may yet come within max_task_idle");
    t.process(now + IDLE * 2, Ts::EPOCH, IDLE, &mut out);
    assert_eq!(types(&out), ["delist", "opened"]);
}

/// An input reported at its end and quiet past `max_task_idle`, whose
/// records were fetched meanwhile (the loop was busy): the processor polls
/// one of them before it offers the other input's ([`Task::arriving`]), and
/// the update behind the complaints waits for them. Without that word the
/// update went first, to the DLQ, as its andon was not open yet.
#[test]
fn a_record_polled_from_an_input_ends_its_stale_end() {
    let update = r#"{"update_id":"u1","andon_id":"sku:A/print_defect#1","step":1,"actor":"pm","at":"2026-11-01T10:10:00Z","verdict":"defect_confirmed"}"#;
    let run = |arriving: bool| {
        let mut t = task(&[]);
        let mut out = Vec::new();
        t.at_end(Side::Complaints);
        t.at_end(Side::Updates);
        // Quiet since well before max_task_idle.
        t.empty_since = [Some(Instant::now() - IDLE * 3); 2];
        if arriving {
            t.arriving(Side::Complaints, 0);
        }
        push(&mut t, Side::Updates, 0, update.as_bytes(), &mut out);
        push(&mut t, Side::Complaints, 0, complaint("e1", "ann", 1).as_bytes(), &mut out);
        push(&mut t, Side::Complaints, 1, complaint("e2", "bob", 2).as_bytes(), &mut out);
        // The complaints' end reached again, and quiet since.
        t.at_end(Side::Complaints);
        t.empty_since[0] = Some(Instant::now() - IDLE * 3);
        t.process(Instant::now(), Ts::EPOCH, IDLE, &mut out);
        types(&out)
    };
    let stale = run(false);
    assert_eq!(stale[0], "dlq", "a stale end lets the update pass: {stale:?}");
    let out = run(true);
    assert_eq!(out[..2], ["delist", "opened"]);
    assert!(out.iter().any(|t| t == "closed") && !out.iter().any(|t| t == "dlq"), "{out:?}");
}

#[test]
fn records_before_the_restored_position_are_ignored() {
    let mut t = task(&[]);
    let mut out = Vec::new();
    push(&mut t, Side::Complaints, 5, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 3, complaint("e2", "bob", 2).as_bytes(), &mut out);
    assert_eq!(t.waiting(), 1, "offset 3 came before offset 6 was due: fetched before a seek");
    assert_eq!(t.input_positions().0, 5);
}

#[test]
fn outputs_already_written_are_not_written_again() {
    let mut t = task(&["sku:A#delist#1", "dlq|complaints|0|0"]);
    let mut out = Vec::new();
    push(&mut t, Side::Complaints, 0, b"{not json", &mut out);
    push(&mut t, Side::Complaints, 1, complaint("e1", "ann", 1).as_bytes(), &mut out);
    push(&mut t, Side::Complaints, 2, complaint("e2", "bob", 2).as_bytes(), &mut out);
    t.at_end(Side::Updates);
    let now = Instant::now();
    t.process(now, Ts::EPOCH, IDLE, &mut out);
    t.process(now + IDLE, Ts::EPOCH, IDLE, &mut out);
    assert_eq!(types(&out), ["opened"], "the DLQ record and the delist stood in their partitions already");
}

#[test]
fn escalations_follow_the_records_while_catching_up_and_the_wall_clock_once_caught_up() {
    let mut t = task(&[]);
    let at = |minute: i64| Ts::EPOCH + Dur::from_secs(1_793_527_200 + minute * 60); // 2026-11-01T10:00Z + minutes
    let rec = |t: &mut Task, offset, minute, value: String, out: &mut Vec<Produce>| {
        let m = Incoming {
            side: Side::Complaints,
            offset,
            key: Some(b"sku:A"),
            value: Some(value.as_bytes()),
            timestamp: Some(at(minute)),
        };
        t.offer(m, Instant::now(), IDLE, out);
    };
    let mut out = Vec::new();
    rec(&mut t, 0, 1, complaint("e1", "ann", 1), &mut out);
    rec(&mut t, 1, 2, complaint("e2", "bob", 2), &mut out);
    t.at_end(Side::Updates);
    let now = Instant::now();
    // The product owner has 24 h; the wall clock says a week later, but
    // the records processed so far are from 10:02: no escalation yet.
    let wall = at(7 * 24 * 60);
    t.process(now, wall, IDLE, &mut out);
    t.process(now + IDLE, wall, IDLE, &mut out);
    assert_eq!(types(&out), ["delist", "opened"]);
    out.clear();
    rec(&mut t, 2, 3, complaint("e3", "cy", 3), &mut out);
    t.process(now + IDLE * 2, wall, IDLE, &mut out);
    assert!(!types(&out).contains(&"escalated".to_owned()), "catching up: {:?}", types(&out));
    t.at_end(Side::Complaints);
    t.process(now + IDLE * 3, wall, IDLE, &mut out);
    assert_eq!(types(&out), ["escalated"], "caught up: the wall clock decides");
}
