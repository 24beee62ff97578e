//! `andon run` against raw consumption of the same topic, in one run, on
//! one MockCluster (in process, over real sockets).
//!
//! `cargo bench --bench kafka` produces N complaints to a topic, then
//! measures records per second in steady state (start-up excluded):
//! - raw: a plain rdkafka consumer reading every partition to the end;
//! - andon, `exactly_once`: the processor over the same topic, outputs,
//!   DLQ, changelog and offsets in transactions;
//! - andon, `at_least_once`: the same without transactions;
//!
//! and prints events/s for each and their ratios to raw. Each andon run
//! has its own output, state topics and group. The input is sized for the
//! MockCluster's 5 MiB per partition.
//!
//! Under `cargo test` it runs a small input as a smoke test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use andon::config::{Settings, Topics};
use andon::dev_cluster::DevCluster;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 8;

fn complaints(n: usize) -> Vec<(String, String)> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sku = (x % 5_000) as u32;
            let ts = chrono::DateTime::from_timestamp(1_790_000_000 + i as i64 / 20, 0).expect("time");
            let key = format!("sku:B{sku:06}");
            let value = format!(
                r#"{{"event_id":"ev-{i}","occurred_at":"{}","subject":{{"kind":"sku","id":"B{sku:06}"}},"issue":"damaged_in_transit","customer_id":"cust-{}","channel":"phone"}}"#,
                ts.format("%Y-%m-%dT%H:%M:%SZ"),
                (x >> 20) % 100_000
            );
            (key, value)
        })
        .collect()
}

fn produce(bootstrap: &str, topic: &str, records: &[(String, String)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    for (k, v) in records {
        let mut rec = BaseRecord::to(topic).key(k.as_str()).payload(v.as_str());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
}

/// Reads every partition of `topic` to its end: records per second from
/// the first record to the last.
fn raw(bootstrap: &str, topic: &str, n: usize) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut seen = 0;
    let mut first = None;
    while seen < n {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                std::hint::black_box(&m);
                seen += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("raw consumer: {e}"),
            None => panic!("raw consumer stalled at {seen} of {n}"),
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    (n - 1) as f64 / secs.max(1e-9)
}

/// `andon run` over the topic to its end: records per second in steady
/// state.
fn andon(bootstrap: &str, topics: Topics, guarantee: &str, n: usize) -> f64 {
    let mut settings = Settings::from_toml(&format!(
        r#"
        [kafka]
        brokers = "{bootstrap}"
        group_id = "bench-{guarantee}"
        [processing]
        guarantee = "{guarantee}"
        [rules.default]
        threshold = 3
        window = "1h"
        "#
    ))
    .expect("settings");
    settings.topics = topics;
    let status = Arc::new(andon::kafka::Status::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (s, flag) = (status.clone(), stop.clone());
    let h = std::thread::spawn(move || andon::kafka::run(Arc::new(settings), s, &flag).expect("andon run"));
    let deadline = Instant::now() + Duration::from_secs(300);
    // Steady state: from the end of the first batch that processed
    // anything (start-up, group join and restore before it) to the last,
    // counting only the records processed in between.
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let done = status.records.load(Ordering::Relaxed);
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done as usize >= n {
            break;
        }
        assert!(Instant::now() < deadline, "andon stalled at {done}");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (t0, at_t0) = first.unwrap_or((Instant::now(), 0));
    let secs = t0.elapsed().as_secs_f64();
    let rate = (n as u64 - at_t0) as f64 / secs.max(1e-9);
    stop.store(true, Ordering::SeqCst);
    h.join().expect("andon thread");
    rate
}

fn topics(prefix: &str, complaints: &str) -> Topics {
    Topics {
        complaints: complaints.to_owned(),
        work_order_updates: format!("{prefix}.updates"),
        delist_commands: format!("{prefix}.delist-commands"),
        work_orders: format!("{prefix}.work-orders"),
        dlq: format!("{prefix}.dlq"),
        state: format!("{prefix}.state"),
        view: format!("{prefix}.view"),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,librdkafka=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let bench = std::env::args().any(|a| a == "--bench");
    // ~230 bytes a record: 120k records is ~3.4 MiB per partition of eight.
    let n = if bench { 120_000 } else { 5_000 };
    let base = Settings::from_toml("").expect("defaults").topics;
    let cluster = DevCluster::start(PARTITIONS, &base).expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    let (eos, alo) = (topics("eos", &base.complaints), topics("alo", &base.complaints));
    for t in [&eos, &alo] {
        for name in &t.all()[1..] {
            cluster.mock().create_topic(name, PARTITIONS, 1).expect("topic");
        }
    }
    produce(&bootstrap, &base.complaints, &complaints(n));

    let r = raw(&bootstrap, &base.complaints, n);
    let e = andon(&bootstrap, eos, "exactly_once", n);
    let a = andon(&bootstrap, alo, "at_least_once", n);
    println!("input: {n} complaints on {PARTITIONS} partitions (MockCluster, in process)");
    println!("raw consumption               {r:>10.0} events/s");
    println!("andon run, exactly_once       {e:>10.0} events/s   ratio {:.2}", e / r);
    println!("andon run, at_least_once      {a:>10.0} events/s   ratio {:.2}", a / r);
    if !bench {
        println!("(smoke run; `cargo bench --bench kafka` for the real size)");
    }
}
