//! The HTTP endpoints of a running andon over real HTTP: metrics with the
//! names docs/metrics.md gives, health and readiness, the open andons, the
//! status page, and odd requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path)
}

on_both!(metrics_health_readiness_andons_and_the_page_over_http);

fn metrics_health_readiness_andons_and_the_page_over_http(on: On) {
    let _lock = shared(on);
    // One partition: the examples' counts are then exactly replay's.
    let (_cluster, bootstrap) = cluster(on, 1);
    let rules = std::fs::read_to_string(format!("{}/examples/andon.toml", env!("CARGO_MANIFEST_DIR"))).expect("rules");
    let rules = format!("[rules.default]{}", rules.split("[rules.default]").nth(1).expect("rules"));
    let settings = settings(&bootstrap, &rules);

    let (status, addr) = andon::ops::serve(&settings).expect("serve");

    // Before the processor has joined: alive, not ready.
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz").0, 503);

    let lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR")))
            .expect("example")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    produce(&bootstrap, "andon.complaints", &lines("complaints.jsonl"));
    produce(&bootstrap, "andon.work-order-updates", &lines("updates.jsonl"));
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, s, st) = (stop.clone(), settings.clone(), status.clone());
    let h = std::thread::spawn(move || andon::kafka::run(Arc::new(s), st, &flag).expect("andon run"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        let done = body.contains("andon_commands_total{action=\"relist\"} 2")
            && body.contains("andon_commands_total{action=\"delist\"} 4")
            && body.contains("andon_dlq_total{reason=\"verdict_required\"} 1");
        if done && get(addr, "/readyz").0 == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "outputs never counted:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The documented names and bounded labels, with the examples' counts.
    for expected in [
        "andon_pulls_total{issue=\"safety_hazard\",trigger=\"threshold\"} 1",
        "andon_pulls_total{issue=\"other\",trigger=\"manual\"} 1",
        "andon_commands_total{action=\"delist\"} 4",
        "andon_work_orders_closed_total{trigger=\"threshold\",verdict=\"no_defect\"} 1",
        "andon_dlq_total{reason=\"invalid_json\"} 1",
        "andon_complaints_total{outcome=\"duplicate\"} 1",
        "andon_step_duration_seconds_bucket{owner=\"product\"",
        "andon_decision_latency_seconds_count",
        "andon_restore_seconds_count 1",
        "andon_rebalances_total",
        "andon_transaction_seconds_count",
        "andon_open_andons",
        "andon_delisted_subjects",
        "andon_state_keys",
    ] {
        assert!(metrics.contains(expected), "/metrics lacks {expected}:\n{metrics}");
    }
    assert!(!metrics.contains("B0PRINT01") && !metrics.contains("cust-"), "no label names a subject or customer");
    // Consumer lag: present for the partition, and 0 once the input is drained.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(addr, "/metrics");
        let lag = body.lines().find(|l| l.starts_with("andon_consumer_lag{partition=\"0\"}"));
        if lag.is_some_and(|l| l.ends_with(" 0")) {
            break;
        }
        assert!(Instant::now() < deadline, "andon_consumer_lag never fell to 0: {lag:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The board refreshes once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let andons: Vec<Value> = loop {
        let (code, body) = get(addr, "/andons");
        assert_eq!(code, 200);
        let v: Vec<Value> = serde_json::from_str(&body).expect("JSON list");
        if v.len() == 3 {
            break v;
        }
        assert!(Instant::now() < deadline, "open andons: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let lamp = andons.iter().find(|a| a["andon_id"] == "sku:B0LAMP003/flickers#1").expect("the lamp's andon is open");
    assert_eq!(lamp["subject"], serde_json::json!({"kind": "sku", "id": "B0LAMP003"}));
    assert_eq!(lamp["owner"], "product");
    assert_eq!(lamp["evidence"], serde_json::json!(["c-0015", "c-0023"]));
    let (code, body) = get(addr, "/andons/sku:B0LAMP003/flickers%231");
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["step"], 1);
    assert_eq!(get(addr, "/andons/sku:NOPE/x%231").0, 404);
    let (code, recent) = get(addr, "/recent");
    assert_eq!(code, 200);
    assert!(recent.contains("\"relist\""), "{recent}");

    // The page, and what must not work.
    let (code, page) = get(addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("<title>andon") && !page.contains("http://") && !page.contains("https://"), "self-contained");
    let (code, js) = get(addr, "/assets/uPlot.iife.min.js");
    assert!(code == 200 && js.contains("uPlot"), "the chart library is served by andon itself");
    assert_eq!(get(addr, "/assets/uPlot.min.css").0, 200);
    assert!(page.contains("src=\"/assets/uPlot.iife.min.js\""), "and the page loads it from there");
    assert_eq!(get(addr, "/nope").0, 404);
    assert_eq!(request(addr, "POST", "/metrics").0, 405);
    assert_eq!(request(addr, "DELETE", "/andons").0, 405);
    assert_eq!(get(addr, "/andons/%ZZ%").0 / 100, 4, "bad percent-encoding is a client error");
    assert_eq!(get(addr, &format!("/andons/{}", "x".repeat(20_000))).0 / 100, 4);
    assert_eq!(get(addr, "/healthz").0, 200, "still alive after odd requests");

    stop.store(true, Ordering::SeqCst);
    h.join().expect("andon thread");
}

/// Producers on librdkafka's default partitioner (`consistent_random`,
/// CRC-32) rather than murmur2. With `[kafka] input_partitioner =
/// "consistent"` every input is where andon expects it and `/subjects`
/// finds each subject's live counts; with the default (murmur2) andon
/// counts the misplaced inputs, and the lookups it would get wrong are
/// the ones the metric warns of. One member owns all four partitions, so
/// a lookup on the wrong partition answers from an engine that never saw
/// the subject: `"issues": []`.
#[test]
fn inputs_from_another_partitioner_are_found_when_configured_and_counted_when_not() {
    let _lock = shared(On::Mock);
    let partitions = 4;
    // One complaint per subject: live counts (1 of 2), no andon, which
    // the view would show from any partition.
    let subjects: Vec<String> = (0..40).map(|i| format!("CRC{i}")).collect();
    let lines: Vec<String> = subjects.iter().map(|s| complaint(&format!("{s}-a"), s, "ann", 0)).collect();
    let misplaced = subjects
        .iter()
        .filter(|s| {
            let key = format!("sku:{s}");
            let (murmur2, consistent) = (
                andon::view::Partitioner::Murmur2.partition(key.as_bytes(), partitions),
                andon::view::Partitioner::Consistent.partition(key.as_bytes(), partitions),
            );
            murmur2 != consistent
        })
        .count();
    assert!(misplaced > 10, "the two partitioners disagree on many keys: {misplaced} of 40");

    for setting in ["consistent", "murmur2"] {
        let (_cluster, bootstrap) = cluster(On::Mock, partitions);
        produce_with(&bootstrap, "andon.complaints", &lines, "consistent_random");
        let toml = settings_toml(&bootstrap, PAIR_RULES)
            .replace("[kafka]\n", &format!("[kafka]\ninput_partitioner = \"{setting}\"\n"));
        let settings = andon::config::Settings::from_toml(&toml).expect("settings");
        assert_eq!(settings.kafka.input_partitioner.as_str(), setting);
        let member = Running::with_view(&settings, andon::kafka::RunOptions::default());
        let series = "andon_complaints_total{outcome=\"counted\"}";
        eventually(Duration::from_secs(60), "every complaint counted", || {
            member.metric(series) == Some(subjects.len() as f64) && member.get("/readyz").0 == 200
        });
        let counted = |s: &str| -> bool {
            let (code, body) = member.get(&format!("/subjects/sku/{s}"));
            assert_eq!(code, 200, "/subjects/sku/{s}: {body}");
            let v: Value = serde_json::from_str(&body).expect("json");
            v["issues"].as_array().is_some_and(|a| a.iter().any(|i| i["counted"] == 1))
        };
        let found = subjects.iter().filter(|s| counted(s)).count();
        let metric = member.metric("andon_input_misplaced_total{input=\"complaints\"}");
        member.stop();
        match setting {
            "consistent" => {
                assert_eq!(found, subjects.len(), "every subject's live counts are found");
                assert_eq!(metric, Some(0.0), "nothing misplaced");
            }
            _ => {
                assert_eq!(metric, Some(misplaced as f64), "each misplaced complaint counted once");
                assert_eq!(found, subjects.len() - misplaced, "exactly the misplaced subjects are looked up wrong");
            }
        }
    }
}
