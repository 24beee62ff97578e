//! `andon tune --kafka`: the history read from the input topics instead of
//! files. The same history is produced to Kafka (record timestamp = event
//! time, keyed as producers must) with records before, inside and after a
//! span, and tuned twice: from Kafka with `--since`/`--until`, and from
//! files holding exactly the records of the span. The reports must be equal
//! but for what only Kafka can show: the records `run` would send to the
//! DLQ for their key, counted by reason. On Apache Kafka an aborted
//! transaction of complaints inside the span must not be read
//! (read_committed; the MockCluster shows aborted records, so there it is
//! not written). And the read must leave no consumer group behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use andon::event::format_timestamp;
use andon::time::{Dur, Ts};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::common::{cluster, event_base, key_of, on_both, shared, write_config, On};

const RULES: &str = r#"
[rules.default]
threshold = 3
window = "1h"
route = ["product"]
[owners.product]
sla = "30d"
"#;

const H: i64 = 3600;

/// A record to produce: its timestamp, key and value.
type Timed = (Ts, String, String);

fn complaint(at: Ts, id: &str, sku: &str, customer: &str) -> Timed {
    let line = format!(
        r#"{{"event_id":"{id}","occurred_at":"{}","subject":{{"kind":"sku","id":"{sku}"}},"issue":"print_defect","customer_id":"{customer}"}}"#,
        format_timestamp(at)
    );
    (at, key_of(&line).expect("a subject"), line)
}

fn close(at: Ts, sku: &str, verdict: &str) -> Timed {
    let line = format!(
        r#"{{"update_id":"close","andon_id":"sku:{sku}/print_defect#1","step":1,"actor":"qa-1","at":"{}","verdict":"{verdict}"}}"#,
        format_timestamp(at)
    );
    (at, key_of(&line).expect("an andon id"), line)
}

/// Four days of history ending a day ago (inside any retention): every 2 h
/// a key three customers pull within 20 minutes, closed an hour later (one
/// in eight `no_defect`); every 4 h a key of two customers, which only an
/// eager rule pulls.
fn history(base: Ts) -> (Vec<Timed>, Vec<Timed>) {
    let (mut complaints, mut updates) = (Vec::new(), Vec::new());
    let at = |secs: i64| base + Dur::from_secs(secs);
    for i in 0..48 {
        let (t, sku) = (i * 2 * H, format!("D{i}"));
        for (j, c) in ["ann", "bob", "cy"].iter().enumerate() {
            complaints.push(complaint(at(t + j as i64 * 600), &format!("{sku}-{c}"), &sku, c));
        }
        updates.push(close(at(t + H), &sku, if i % 8 == 0 { "no_defect" } else { "defect_confirmed" }));
    }
    for i in 0..24 {
        let (t, sku) = (i * 4 * H + 1800, format!("N{i}"));
        complaints.push(complaint(at(t), &format!("{sku}-ann"), &sku, "ann"));
        complaints.push(complaint(at(t + 600), &format!("{sku}-bob"), &sku, "bob"));
    }
    complaints.sort();
    updates.sort();
    (complaints, updates)
}

fn producer(bootstrap: &str, transactional: Option<&str>) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("partitioner", "murmur2_random").set("enable.idempotence", "true");
    if let Some(id) = transactional {
        c.set("transactional.id", id);
    }
    c.create().expect("producer")
}

fn produce(p: &BaseProducer, topic: &str, records: &[Timed]) {
    for (at, key, value) in records {
        let ms = at.as_nanos() / 1_000_000;
        let rec = BaseRecord::to(topic).key(key.as_str()).payload(value.as_str()).timestamp(ms);
        crate::common::send_waiting(p, rec);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// `andon tune` on a small grid: its report, and its process id (which
/// names the group id its Kafka reader carries).
fn tune(config: &Path, args: &[&str]) -> (Value, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_andon"))
        .arg("tune")
        .arg("--config")
        .arg(config)
        .args(["--format", "json", "--threshold", "2,3", "--window", "30m,1h,2h"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("andon tune runs");
    let pid = child.id();
    let out = child.wait_with_output().expect("andon tune ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "andon tune {args:?}: {:?}\n{stderr}", out.status);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON document ({e}); stderr: {stderr}"));
    (report, pid)
}

fn tune_reads_exactly_its_span_of_committed_records_and_joins_no_group(on: On) {
    let _machine = shared(on);
    let (_broker, bootstrap) = cluster(on, 3);
    let topics = andon::config::Settings::from_toml("").expect("defaults").topics;
    let base = Ts::from_millis(event_base().timestamp_millis()) - Dur::from_secs(4 * 86_400);
    let (since, until) = (base + Dur::from_secs(24 * H), base + Dur::from_secs(72 * H));
    let (complaints, updates) = history(base);

    let p = producer(&bootstrap, None);
    produce(&p, &topics.complaints, &complaints);
    produce(&p, &topics.work_order_updates, &updates);
    // Inside the span, what `run` sends to the DLQ: a value that is not
    // JSON, and a complaint keyed by another subject.
    let inside = since + Dur::from_secs(H / 2);
    let (_, _, misplaced) = complaint(inside, "X-ann", "X", "ann");
    produce(
        &p,
        &topics.complaints,
        &[(inside, "sku:D13".into(), "not json".into()), (inside, "sku:Y".into(), misplaced)],
    );
    if on == On::Apache {
        // Three customers on one key inside the span, aborted: read, they
        // would pull under every rule of the grid.
        let t = producer(&bootstrap, Some("tune-test-aborted"));
        t.init_transactions(Duration::from_secs(30)).expect("init transactions");
        t.begin_transaction().expect("begin");
        let aborted: Vec<Timed> = ["ann", "bob", "cy"]
            .iter()
            .map(|c| complaint(inside + Dur::from_secs(60), &format!("A-{c}"), "A", c))
            .collect();
        for (at, key, value) in &aborted {
            let rec = BaseRecord::to(&topics.complaints).key(key.as_str()).payload(value.as_str());
            crate::common::send_waiting(&t, rec.timestamp(at.as_nanos() / 1_000_000));
        }
        t.flush(Duration::from_secs(30)).expect("flush");
        t.abort_transaction(Duration::from_secs(30)).expect("abort");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &bootstrap, RULES, &[]);
    let (from_kafka, pid) =
        tune(&config, &["--kafka", "--since", &format_timestamp(since), "--until", &format_timestamp(until)]);

    // The same span as files: the records whose timestamp is in it.
    let span = |records: &[Timed]| -> String {
        records.iter().filter(|(at, ..)| *at >= since && *at < until).map(|(_, _, l)| format!("{l}\n")).collect()
    };
    let (c, u) = (span(&complaints), span(&updates));
    let (in_span, updates_in_span) = (c.lines().count(), u.lines().count());
    assert!(0 < in_span && in_span < complaints.len(), "the span cuts the history: {in_span} of {}", complaints.len());
    std::fs::write(dir.path().join("complaints.jsonl"), c).expect("write");
    std::fs::write(dir.path().join("updates.jsonl"), u).expect("write");
    let (from_files, _) = tune(
        &config,
        &[
            dir.path().join("complaints.jsonl").to_str().expect("utf-8"),
            "--updates",
            dir.path().join("updates.jsonl").to_str().expect("utf-8"),
        ],
    );

    assert_eq!(from_files["complaints_read"], in_span);
    assert_eq!(from_kafka["complaints_read"], in_span + 2, "the span's complaints and the two DLQ records");
    assert_eq!(from_kafka["updates_read"], updates_in_span);
    assert_eq!(from_kafka["rejected"], serde_json::json!({"invalid_json": 1, "key_mismatch": 1}));
    assert_eq!(from_kafka["issues"], from_files["issues"], "the report from Kafka is the report from the files");
    let pulls = &from_kafka["issues"][0]["baseline"]["pulls"];
    assert_eq!(pulls, 24, "a pull every 2 h over the 48 h of the span");

    // Nothing committed under the group id the reader carried (the
    // configuration's `group_id`, "-tune-" and its pid),
    let reader = format!("andon-test-tune-{pid}");
    let probe: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", &reader).create().expect("probe");
    let mut tpl = TopicPartitionList::new();
    for topic in [&topics.complaints, &topics.work_order_updates] {
        tpl.add_partition_range(topic, 0, 2);
    }
    let committed = probe.committed_offsets(tpl, Duration::from_secs(10)).expect("OffsetFetch");
    for e in committed.elements() {
        assert_eq!(e.offset(), Offset::Invalid, "{reader} committed {}[{}]", e.topic(), e.partition());
    }
    // and no group joined: Apache Kafka lists none (the MockCluster cannot
    // list groups).
    if on == On::Apache {
        let groups = probe.fetch_group_list(None, Duration::from_secs(10)).expect("ListGroups");
        let names: Vec<&str> = groups.groups().iter().map(|g| g.name()).collect();
        assert!(names.is_empty(), "consumer groups after andon tune --kafka: {names:?}");
    }
}

on_both!(tune_reads_exactly_its_span_of_committed_records_and_joins_no_group);
