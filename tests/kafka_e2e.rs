//! `andon run` in process against librdkafka's MockCluster over real
//! sockets: inputs produced by a plain client, outputs read back and
//! compared with `andon replay` on the same inputs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use andon::dev_cluster::DevCluster;
use common::*;

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

#[test]
fn examples_through_kafka_equal_replay_per_key() {
    // One partition: stream time (and so lateness) is then the same as in
    // replay, which has one stream time for the whole input.
    let cluster = DevCluster::start(1, &andon::config::Settings::from_toml("").expect("defaults").topics).expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    let rules = example_rules();
    let settings = settings(&bootstrap, &rules);
    let (complaints, updates) = (lines("complaints.jsonl"), lines("updates.jsonl"));
    produce(&bootstrap, "andon.complaints", &complaints);
    produce(&bootstrap, "andon.work-order-updates", &updates);

    let (stop, handle) = start(settings.clone());
    init_logs();
    let outputs = wait_stable(Duration::from_secs(2), Duration::from_secs(60), |n: &(usize, usize, usize)| n.0 > 0, || {
        (read_all(&bootstrap, "andon.delist-commands").len(), read_all(&bootstrap, "andon.work-orders").len(), read_all(&bootstrap, "andon.dlq").len())
    });
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
