//! Exactly-once output across `kill -9`, graceful restarts and a rebalance:
//! `andon run` processes killed and restarted mid-stream, on an
//! `andon dev-cluster` process and on Apache Kafka; afterwards every output
//! id stands exactly once in its topic (read `read_committed`) and the
//! outputs per key equal `andon replay`'s.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::faults::{compare, RULES, TOPICS_OUT};
use crate::common::*;
use serde_json::{json, Value};

on_both!(
    kill_9_mid_stream_three_times_then_outputs_are_exactly_once,
    two_processes_split_the_partitions_and_take_over_from_each_other,
);

/// Event time `secs` into the workload, which starts a week before
/// [`event_base`]: the largest workload (24,000 complaints 5 s apart)
/// spans 33 hours, all of it in the past whatever day the test runs.
fn ts(secs: i64) -> String {
    event_time(secs - 7 * 86_400)
}

/// Complaints in event-time order over many SKUs (so lateness cannot differ
/// between one stream time per partition and replay's single one), with
/// duplicates, a few malformed lines; updates for the andons they open.
fn workload(n: usize) -> (Vec<String>, Vec<String>) {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let issues = ["damaged_in_transit", "print_defect", "wrong_item", "safety_hazard"];
    let mut complaints = Vec::with_capacity(n);
    for i in 0..n {
        let issue = if next(200) == 0 { issues[3] } else { issues[next(3) as usize] };
        let line = json!({
            "event_id": format!("e{i}"),
            "occurred_at": ts(i as i64 * 5),
            "subject": {"kind": "sku", "id": format!("S{:04}", next(400))},
            "issue": issue,
            "customer_id": format!("c{}", next(50)),
            "note": "customer says it arrived broken",
        })
        .to_string();
        if i % 97 == 0 {
            complaints.push(line.clone()); // a duplicate, right after
        }
        if i % 1000 == 500 {
            complaints.push("{not json".to_owned());
        }
        complaints.push(line);
    }
    // Updates for the andons the complaints open: step 1 done 10 minutes
    // after opening, then closed with a verdict 20 minutes after that.
    let settings = settings("unused:9092", RULES);
    let opened = replay(&settings, &complaints, &[]);
    let mut updates: Vec<(String, String)> = Vec::new();
    for (k, o) in opened.iter().filter(|l| l["value"]["type"] == "opened").enumerate() {
        let id = o["value"]["andon_id"].as_str().expect("andon_id");
        let at =
            chrono::DateTime::parse_from_rfc3339(o["value"]["opened_at"].as_str().expect("opened_at")).expect("time");
        let t1 = (at + chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let t2 = (at + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let verdict = if k % 10 == 0 { "no_defect" } else { "defect_confirmed" };
        updates.push((
            t1.clone(),
            json!({"update_id": format!("u{k}a"), "andon_id": id, "step": 1, "actor": "pm", "at": t1}).to_string(),
        ));
        updates.push((t2.clone(), json!({"update_id": format!("u{k}b"), "andon_id": id, "step": 2, "actor": "ops", "at": t2, "verdict": verdict}).to_string()));
    }
    updates.sort_by(|a, b| a.0.cmp(&b.0));
    (complaints, updates.into_iter().map(|(_, l)| l).collect())
}

/// Records in all three output topics (growing while andon works).
fn all_outputs(bootstrap: &str, partitions: i32) -> i64 {
    watermarks(bootstrap, &TOPICS_OUT, partitions).1
}

/// Waits until the log shows `n` partition restores in all.
fn wait_for_restores(log: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches("partition restored").count() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "no restore of all partitions:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Output records other than escalations (which follow the wall clock).
fn counted_outputs(bootstrap: &str) -> usize {
    outputs(bootstrap).iter().filter(|r| r.json()["type"] != "escalated").count()
}

fn expected_outputs(expected: &[Value]) -> usize {
    expected.iter().filter(|l| l["topic"] != "andon.dlq" && l["value"]["type"] != "escalated").count()
}

fn outputs(bootstrap: &str) -> Vec<Record> {
    let mut got = read_all(bootstrap, "andon.delist-commands");
    got.extend(read_all(bootstrap, "andon.work-orders"));
    got
}

/// Every output id stands once in its topic (the DLQ's by their source
/// coordinates), and the outputs per key are `andon replay`'s.
fn assert_exactly_once_and_equal_to_replay(
    bootstrap: &str,
    partitions: i32,
    complaints: &[String],
    updates: &[String],
) {
    let outcome = compare(bootstrap, partitions, complaints, updates);
    let repeats: Vec<String> =
        outcome.repeats.iter().map(|r| format!("{}[{}]@{} {}", r.topic, r.partition, r.offset, r.id)).collect();
    assert!(repeats.is_empty(), "outputs written more than once: {repeats:?}");
    let problems = outcome.problems();
    assert!(problems.is_empty(), "{}\n{}", outcome.summary(), problems.join("\n"));
}

fn kill_9_mid_stream_three_times_then_outputs_are_exactly_once(on: On) {
    let _serial = serial();
    let dir = crate::common::faults::TestDir::new("kafka-restart");
    let (_cluster, bootstrap) = cluster_process(on, dir.path(), 3);
    let (complaints, updates) = workload(24_000);
    let expected_commands = {
        let e = replay(&settings("unused:9092", RULES), &complaints, &updates);
        e.iter().filter(|l| l["topic"] == "andon.delist-commands").count() as i64
    };
    produce(&bootstrap, "andon.complaints", &complaints);
    produce(&bootstrap, "andon.work-order-updates", &updates);
    let config = write_config(dir.path(), &bootstrap, RULES, &[]);
    let log = dir.path().join("run.log");
    let args = ["run", "--config", config.to_str().expect("path")];

    // Kill at about a tenth, a third and two thirds of the delist commands.
    for fraction in [0.1, 0.33, 0.66] {
        let mut p = spawn_andon(&args, &log);
        let mark = (expected_commands as f64 * fraction) as i64;
        let deadline = Instant::now() + Duration::from_secs(90);
        while watermarks(&bootstrap, &["andon.delist-commands"], 3).1 < mark {
            assert!(
                Instant::now() < deadline,
                "no progress to {mark}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(
                p.0.try_wait().expect("wait").is_none(),
                "andon run exited; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p.0.kill().expect("kill -9");
        p.0.wait().expect("reap");
    }
    // The last run finishes the input and stops gracefully.
    let restores_before = std::fs::read_to_string(&log).unwrap_or_default().matches("partition restored").count();
    let mut p = spawn_andon(&args, &log);
    wait_for_restores(&log, restores_before + 3);
    let want = expected_outputs(&replay(&settings("unused:9092", RULES), &complaints, &updates));
    wait_stable(
        Duration::from_secs(3),
        Duration::from_secs(120),
        |n: &(usize, i64)| n.0 >= want,
        || (counted_outputs(&bootstrap), all_outputs(&bootstrap, 3)),
    );
    let pid = p.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    let status = p.0.wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.matches("partition restored").count() >= 6, "restarts restored partitions:\n{text}");
    assert_exactly_once_and_equal_to_replay(&bootstrap, 3, &complaints, &updates);
}

fn two_processes_split_the_partitions_and_take_over_from_each_other(on: On) {
    let _serial = serial();
    let dir = crate::common::faults::TestDir::new("kafka-restart");
    let (_cluster, bootstrap) = cluster_process(on, dir.path(), 4);
    let (complaints, updates) = workload(16_000);
    // All input first: then the merge by event time sees what replay sees,
    // whoever processes a partition and whenever (docs/semantics.md, rule 0).
    produce(&bootstrap, "andon.complaints", &complaints);
    produce(&bootstrap, "andon.work-order-updates", &updates);
    let expected = replay(&settings("unused:9092", RULES), &complaints, &updates);
    let config = write_config(dir.path(), &bootstrap, RULES, &[]);
    let args = ["run", "--config", config.to_str().expect("path")];
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    // A starts alone and gets everything; B joins mid-stream and A hands
    // half of its partitions over (cooperative rebalance); then A leaves
    // and B takes over the rest.
    let mut a = spawn_andon(&args, &a_log);
    let first = expected_outputs(&expected) / 5;
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted_outputs(&bootstrap) < first {
        assert!(
            Instant::now() < deadline,
            "A makes no progress: {}",
            std::fs::read_to_string(&a_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = spawn_andon(&args, &b_log);
    wait_for_restores(&b_log, 2);
    let pid = a.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(a.0.wait().expect("wait").success(), "A stops cleanly");
    // B takes A's two over in the rebalance A's leaving starts (some
    // seconds on the MockCluster): A may have written every output before.
    wait_for_restores(&b_log, 4);
    let want = expected_outputs(&expected);
    wait_stable(
        Duration::from_secs(3),
        Duration::from_secs(120),
        |n: &(usize, i64)| n.0 >= want,
        || (counted_outputs(&bootstrap), all_outputs(&bootstrap, 4)),
    );
    drop(b);
    let a_text = std::fs::read_to_string(&a_log).unwrap_or_default();
    let b_text = std::fs::read_to_string(&b_log).unwrap_or_default();
    assert!(a_text.contains("partitions revoked"), "A handed partitions over:\n{a_text}");
    assert!(b_text.matches("partition restored").count() >= 4, "B ended with all four:\n{b_text}\nA:\n{a_text}");
    assert_exactly_once_and_equal_to_replay(&bootstrap, 4, &complaints, &updates);
}

/// The broker goes away for a while and answers some produce and
/// transaction requests with errors; andon aborts, restores and retries,
/// and the outputs still stand exactly once.
#[test]
fn a_broker_outage_and_request_errors_lose_nothing_and_duplicate_nothing() {
    let _serial = serial();
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr::*};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (cluster, bootstrap) = mock_cluster(2);
    let (complaints, updates) = workload(9_000);
    let settings = settings(&bootstrap, RULES);
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, s) = (stop.clone(), settings.clone());
    let h = std::thread::spawn(move || andon::kafka::run(Arc::new(s), Default::default(), &flag).expect("andon run"));

    // Three rounds of input, each with the updates of its time span.
    let time =
        |l: &str, f: &str| serde_json::from_str::<Value>(l).expect("json")[f].as_str().unwrap_or_default().to_owned();
    let cuts = [0, 3_000, 6_000, complaints.len()];
    let mut rounds = Vec::new();
    for w in cuts.windows(2) {
        let last = time(&complaints[w[1] - 1], "occurred_at");
        let first = if w[0] == 0 { String::new() } else { time(&complaints[w[0] - 1], "occurred_at") };
        let u: Vec<String> = updates
            .iter()
            .filter(|u| {
                let at = time(u, "at");
                at > first && (at <= last || w[1] == complaints.len())
            })
            .cloned()
            .collect();
        rounds.push((complaints[w[0]..w[1]].to_vec(), u));
    }
    let delists = |b: &str| watermarks(b, &["andon.delist-commands"], 2).1;
    for (i, (c, u)) in rounds.iter().enumerate() {
        produce(&bootstrap, "andon.complaints", c);
        produce(&bootstrap, "andon.work-order-updates", u);
        std::thread::sleep(Duration::from_millis(1500));
        match i {
            0 => {
                // Errors on the requests a batch makes: produce, adding
                // partitions to the transaction, ending it.
                let mock = cluster.mock();
                mock.request_errors(RDKafkaApiKey::Produce, &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3]);
                mock.request_errors(
                    RDKafkaApiKey::AddPartitionsToTxn,
                    &[RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 2],
                );
                mock.request_errors(
                    RDKafkaApiKey::EndTxn,
                    &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR__TRANSPORT],
                );
            }
            1 => {
                let before = delists(&bootstrap);
                cluster.mock().broker_down(1).expect("down");
                std::thread::sleep(Duration::from_secs(4));
                cluster.mock().broker_up(1).expect("up");
                assert!(delists(&bootstrap) >= before);
            }
            _ => {}
        }
    }
    let expected = replay(&settings, &complaints, &updates);
    let want = expected_outputs(&expected);
    wait_stable(
        Duration::from_secs(3),
        Duration::from_secs(120),
        |n: &(usize, i64)| n.0 >= want,
        || (counted_outputs(&bootstrap), all_outputs(&bootstrap, 2)),
    );
    stop.store(true, Ordering::SeqCst);
    h.join().expect("andon thread");
    assert_exactly_once_and_equal_to_replay(&bootstrap, 2, &complaints, &updates);
}
