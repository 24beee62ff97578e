//! `andon run` in process against librdkafka's MockCluster and Apache
//! Kafka over real sockets: inputs produced by a plain client, outputs read
//! back (`read_committed`) and compared with `andon replay` on the same
//! inputs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

on_both!(
    examples_through_kafka_equal_replay_per_key,
    every_reject_reason_lands_in_the_dlq_and_the_partition_goes_on,
    a_quiet_work_order_escalates_on_the_wall_clock,
    snapshots_keep_restores_right_across_restarts,
);

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{}/examples/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("example")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn example_rules() -> String {
    let text = std::fs::read_to_string(format!("{}/examples/andon.toml", env!("CARGO_MANIFEST_DIR"))).expect("rules");
    // The example's [processing] section would clash with the test's own.
    text.split("[rules.default]").nth(1).map(|r| format!("[rules.default]{r}")).expect("rules section")
}

/// Runs `andon run` on a thread until the returned flag is set.
fn start(settings: andon::config::Settings) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let h = std::thread::spawn(move || {
        andon::kafka::run(Arc::new(settings), Default::default(), &flag).expect("andon run");
    });
    (stop, h)
}

fn examples_through_kafka_equal_replay_per_key(on: On) {
    let _lock = shared(on);
    // One partition: stream time (and so lateness) is then the same as in
    // replay, which has one stream time for the whole input.
    let (_cluster, bootstrap) = cluster(on, 1);
    let rules = example_rules();
    let settings = settings(&bootstrap, &rules);
    let (complaints, updates) = (lines("complaints.jsonl"), lines("updates.jsonl"));
    produce(&bootstrap, "andon.complaints", &complaints);
    produce(&bootstrap, "andon.work-order-updates", &updates);

    let (stop, handle) = start(settings.clone());
    init_logs();
    let outputs = wait_stable(
        Duration::from_secs(2),
        Duration::from_secs(60),
        |n: &(usize, usize, usize)| n.0 > 0,
        || {
            (
                read_all(&bootstrap, "andon.delist-commands").len(),
                read_all(&bootstrap, "andon.work-orders").len(),
                read_all(&bootstrap, "andon.dlq").len(),
            )
        },
    );
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("andon thread");

    let expected = replay(&settings, &complaints, &updates);
    let mut got = read_all(&bootstrap, "andon.delist-commands");
    got.extend(read_all(&bootstrap, "andon.work-orders"));
    assert_eq!(per_key_topics(&got), per_key_replay(&expected), "outputs per key equal replay's ({outputs:?})");

    let dlq = read_all(&bootstrap, "andon.dlq");
    let mut reasons: Vec<String> = dlq.iter().map(|r| r.headers["andon.error.reason"].clone()).collect();
    reasons.sort();
    let mut want: Vec<String> = expected
        .iter()
        .filter(|l| l["topic"] == "andon.dlq")
        .map(|l| l["headers"]["andon.error.reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    want.sort();
    assert_eq!(reasons, want, "the same records rejected for the same reasons");
    for r in &dlq {
        let source = if r.headers["andon.source.topic"] == "andon.complaints" { &complaints } else { &updates };
        let offset: usize = r.headers["andon.source.offset"].parse().expect("offset header");
        assert_eq!(r.value, source[offset].as_bytes(), "DLQ value is the input unchanged");
        assert_eq!(r.headers["andon.source.partition"], "0");
        assert!(!r.headers["andon.error.message"].is_empty());
    }
}

fn t(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(6) + chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn complaint(id: &str, sku: &str, at: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","occurred_at":"{at}","subject":{{"kind":"sku","id":"{sku}"}},"issue":"x","customer_id":"c-{id}"}}"#
    )
}

fn update(id: &str, andon: &str, step: u32, at: &str, verdict: Option<&str>) -> String {
    let v = verdict.map(|v| format!(r#","verdict":"{v}""#)).unwrap_or_default();
    format!(r#"{{"update_id":"{id}","andon_id":"{andon}","step":{step},"actor":"pm","at":"{at}"{v}}}"#)
}

type Case<'a> = (Option<&'a str>, String, Option<&'a str>);

fn raw<'a>(v: &'a [Case<'a>]) -> Vec<(Option<&'a str>, &'a str)> {
    v.iter().map(|(k, l, _)| (*k, l.as_str())).collect()
}

const ONE_STEP: &str = r#"
[rules.default]
threshold = 1
window = "1h"
route = ["product"]
"#;

fn every_reject_reason_lands_in_the_dlq_and_the_partition_goes_on(on: On) {
    let _lock = shared(on);
    init_logs();
    let (_cluster, bootstrap) = cluster(on, 1);
    let mut settings = settings(&bootstrap, ONE_STEP);
    settings.processing.max_event_bytes = 1024;
    let big = complaint("big", "A", &t(0)).replace(r#""issue""#, &format!(r#""note":"{}","issue""#, "n".repeat(1100)));
    let future = complaint("future", "A", &(chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339());
    let complaints: Vec<(Option<&str>, String, Option<&str>)> = vec![
        (Some("sku:A"), complaint("c1", "A", &t(0)), None),
        (None, "{not json".into(), Some("invalid_json")),
        (
            Some("sku:A"),
            complaint("bad", "A", &t(1)).replace(r#""issue":"x""#, r#""issue":"Bad Issue""#),
            Some("schema_violation"),
        ),
        (Some("sku:A"), big, Some("too_large")),
        (Some("sku:A"), future, Some("occurred_at_in_future")),
        (Some("sku:Z"), complaint("mismatch", "A", &t(2)), Some("key_mismatch")),
        (Some("sku:C"), complaint("c2", "C", &t(10)), None),
    ];
    let updates: Vec<(Option<&str>, String, Option<&str>)> = vec![
        (Some("sku:A"), update("u1", "sku:A/x#1", 2, &t(3), None), Some("step_out_of_order")),
        (Some("sku:A"), update("u2", "sku:A/x#1", 1, &t(4), None), Some("verdict_required")),
        (Some("sku:A"), update("u3", "sku:A/x#1", 1, &t(5), Some("defect_confirmed")), None),
        (Some("sku:A"), update("u4", "sku:A/x#1", 1, &t(6), Some("no_defect")), Some("andon_closed")),
        (Some("sku:B"), update("u5", "sku:B/x#1", 1, &t(7), Some("no_defect")), Some("unknown_andon")),
    ];
    produce_raw(&bootstrap, "andon.complaints", &raw(&complaints));
    produce_raw(&bootstrap, "andon.work-order-updates", &raw(&updates));

    let (stop, handle) = start(settings);
    wait_stable(
        Duration::from_secs(2),
        Duration::from_secs(60),
        |n: &usize| *n >= 2,
        || read_all(&bootstrap, "andon.delist-commands").len(),
    );
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("andon thread");

    let dlq = read_all(&bootstrap, "andon.dlq");
    for (topic, inputs) in [("andon.complaints", &complaints), ("andon.work-order-updates", &updates)] {
        for (offset, (key, value, reason)) in inputs.iter().enumerate() {
            let found: Vec<&Record> = dlq
                .iter()
                .filter(|r| {
                    r.headers["andon.source.topic"] == topic && r.headers["andon.source.offset"] == offset.to_string()
                })
                .collect();
            match reason {
                Some(reason) => {
                    assert_eq!(found.len(), 1, "{topic} offset {offset} ({reason}) is in the DLQ once");
                    let r = found[0];
                    assert_eq!(&r.headers["andon.error.reason"], reason);
                    assert_eq!(r.value, value.as_bytes(), "the value unchanged");
                    assert_eq!(r.key.as_deref(), *key, "the key unchanged");
                    assert_eq!(r.headers["andon.source.partition"], "0");
                    assert!(r.headers["andon.error.message"].len() > 10, "a message that says why");
                }
                None => assert!(found.is_empty(), "{topic} offset {offset} was processed, not rejected"),
            }
        }
    }
    // And processing went on past every bad record: A was delisted and
    // relisted, C (after all of them) delisted.
    let commands: Vec<String> = read_all(&bootstrap, "andon.delist-commands")
        .iter()
        .map(|r| r.json()["command_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(commands, ["sku:A#delist#1", "sku:A#relist#1", "sku:C#delist#1"]);
}

fn a_quiet_work_order_escalates_on_the_wall_clock(on: On) {
    let _lock = shared(on);
    init_logs();
    let (_cluster, bootstrap) = cluster(on, 1);
    let settings = settings(&bootstrap, &format!("{ONE_STEP}\n[owners.product]\nsla = \"3s\"\n"));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    produce(&bootstrap, "andon.complaints", &[complaint("c1", "Q", &now)]);
    let (stop, handle) = start(settings);
    // No further input: only the wall clock can escalate it.
    let events = wait_stable(
        Duration::from_millis(500),
        Duration::from_secs(60),
        |n: &Vec<Value>| n.len() >= 2,
        || read_all(&bootstrap, "andon.work-orders").iter().map(Record::json).collect::<Vec<_>>(),
    );
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("andon thread");
    assert_eq!(events[0]["type"], "opened");
    assert_eq!(events[1]["type"], "escalated", "{events:?}");
    assert_eq!(events.len(), 2, "escalated once: {events:?}");
    let due = chrono::DateTime::parse_from_rfc3339(events[1]["due_at"].as_str().expect("due_at")).expect("time");
    let at =
        chrono::DateTime::parse_from_rfc3339(events[1]["escalated_at"].as_str().expect("escalated_at")).expect("time");
    assert!(at >= due, "noticed after it was due: {events:?}");
    assert!(at - due < chrono::Duration::seconds(5), "and promptly: {events:?}");
}

fn snapshots_keep_restores_right_across_restarts(on: On) {
    let _lock = shared(on);
    let (_cluster, bootstrap) = cluster(on, 2);
    let settings = settings(&bootstrap, &example_rules());
    let (complaints, updates) = (lines("complaints.jsonl"), lines("updates.jsonl"));
    let expected = replay(&settings, &complaints, &updates);
    // Tiny snapshots threshold: nearly every checkpoint is followed by a
    // snapshot and tombstones, and the restores below must rest on them.
    let options = andon::kafka::RunOptions { snapshot_after_bytes: 600 };
    let cut = complaints.len() / 2;
    let cut_time = serde_json::from_str::<Value>(&complaints[cut]).expect("json")["occurred_at"]
        .as_str()
        .expect("time")
        .to_owned();
    let (early, late): (Vec<String>, Vec<String>) = updates.iter().cloned().partition(|u| {
        serde_json::from_str::<Value>(u)
            .map(|v| v["at"].as_str().unwrap_or_default() < cut_time.as_str())
            .unwrap_or(true)
    });
    for (round, (c, u)) in [(&complaints[..cut], &early[..]), (&complaints[cut..], &late[..])].into_iter().enumerate() {
        produce(&bootstrap, "andon.complaints", c);
        produce(&bootstrap, "andon.work-order-updates", u);
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, s, o) = (stop.clone(), settings.clone(), options.clone());
        let h =
            std::thread::spawn(move || andon::kafka::run_with(Arc::new(s), Default::default(), &flag, o).expect("run"));
        let want = expected[..].len();
        wait_stable(
            Duration::from_secs(2),
            Duration::from_secs(60),
            |n: &usize| round == 0 || *n >= want / 2,
            || read_all(&bootstrap, "andon.work-orders").len() + read_all(&bootstrap, "andon.delist-commands").len(),
        );
        stop.store(true, Ordering::SeqCst);
        h.join().expect("andon thread");
    }
    let state = read_all(&bootstrap, "andon.state");
    assert!(
        state.iter().any(|r| r.key.as_deref().is_some_and(|k| k.starts_with("snapshot/"))),
        "snapshots were written"
    );
    assert!(state.iter().any(|r| r.value.is_empty()), "and tombstones for the checkpoints they cover");
    let mut got = read_all(&bootstrap, "andon.delist-commands");
    got.extend(read_all(&bootstrap, "andon.work-orders"));
    // Two partitions: lateness may differ from replay's single stream time,
    // but the examples' late complaint is late in its own partition too.
    assert_eq!(per_key_topics(&got), per_key_replay(&expected));
}
