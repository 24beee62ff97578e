//! Helpers shared by the two test binaries (`tests/offline/`,
//! `tests/cluster/`), included by each as `mod common`: for the tests that
//! talk Kafka over real sockets a MockCluster in process or an
//! `andon dev-cluster` process, a plain rdkafka producer and consumer (not
//! andon's code path), and `andon replay` for the expected outputs; the
//! lock that keeps heavy tests from running beside others ([`serial`],
//! [`parallel`]); the tools from outside cargo ([`need_tool`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use andon::config::Settings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// The tests of one binary run on parallel threads (as many as cores: two
/// here). A test that leans on session timeouts, a traffic rate or the
/// timing of an injected fault holds this lock for writing ([`serial`]) and
/// so runs alone, as it did when it had a binary of its own; a test that
/// can share the machine (an in-process MockCluster of its own, say) holds
/// it for reading ([`parallel`]), beside others like it but never beside a
/// serial one. `tests/cluster/main.rs` says which test is which.
static MACHINE: RwLock<()> = RwLock::new(());

/// The machine to this test alone, for as long as the guard lives.
pub fn serial() -> RwLockWriteGuard<'static, ()> {
    // A test that panicked holding the lock leaves nothing inconsistent.
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// The machine shared with the other [`parallel`] tests, for as long as the
/// guard lives.
pub fn parallel() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Settings for a test: the cluster's brokers, quick batches, a short
/// session timeout (the MockCluster drops a killed member only after it).
pub fn settings_toml(bootstrap: &str, rules: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "{bootstrap}"
group_id = "andon-test"
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[http]
listen = "127.0.0.1:0"
[processing]
commit_interval = "50ms"
max_task_idle = "200ms"
grace = "1d"
{rules}
"#
    )
}

pub fn settings(bootstrap: &str, rules: &str) -> Settings {
    Settings::from_toml(&settings_toml(bootstrap, rules)).expect("test settings")
}

/// The subject key a well-behaved producer keys a record by.
pub fn key_of(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if let Some(s) = v.get("subject") {
        return Some(format!("{}:{}", s.get("kind")?.as_str()?, s.get("id")?.as_str()?));
    }
    let a = v.get("andon_id")?.as_str()?;
    Some(a.rsplit_once('/')?.0.to_owned())
}

/// Produces lines keyed by their subject key with the Java client's
/// partitioner, as the spec asks of producers.
pub fn produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for l in lines {
        let key = key_of(l);
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(l.as_str());
        if let Some(k) = &key {
            rec = rec.key(k.as_str());
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Produces (key, value) pairs as they are: for records a well-behaved
/// producer would not write (no key, the wrong key).
pub fn produce_raw(bootstrap: &str, topic: &str, records: &[(Option<&str>, &str)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    for (k, v) in records {
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(*v);
        if let Some(k) = k {
            rec = rec.key(*k);
        }
        p.send(rec).map_err(|(e, _)| e).expect("send");
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Record {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.value).unwrap_or(Value::Null)
    }
}

/// Everything in `topic` now, partition by partition.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = md.topics()[0].partitions().len() as i32;
    let mut out = Vec::new();
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
        if low >= high {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(low)).expect("tpl");
        c.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "reading {topic}[{p}] timed out");
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let mut headers = BTreeMap::new();
                    if let Some(h) = m.headers() {
                        for x in h.iter() {
                            headers
                                .insert(x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into());
                        }
                    }
                    out.push(Record {
                        topic: topic.to_owned(),
                        partition: p,
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
    }
    out
}

/// `andon replay` over the lines, as JSON values `{"topic","key","value"}`.
pub fn replay(settings: &Settings, complaints: &[String], updates: &[String]) -> Vec<Value> {
    let c = complaints.join("\n");
    let u = updates.join("\n");
    let mut out = Vec::new();
    andon::replay::replay(
        settings,
        andon::replay::Input { name: "complaints".into(), reader: c.as_bytes() },
        Some(andon::replay::Input { name: "updates".into(), reader: u.as_bytes() }),
        &mut out,
        &mut |_| {},
    )
    .expect("replay");
    String::from_utf8(out).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

/// Per (output topic, subject key), the sequence of output values,
/// escalations left out (wall clock in `run`, stream time in `replay`).
/// Order between the two output topics is not recoverable from offsets, so
/// each topic's sequence is compared on its own.
pub type PerKey = BTreeMap<(String, String), Vec<Value>>;

pub fn per_key_replay(lines: &[Value]) -> PerKey {
    let mut m = PerKey::new();
    for l in lines {
        let Some(key) = l["key"].as_str() else { continue };
        if l["value"]["type"] == "escalated" {
            continue;
        }
        let topic = l["topic"].as_str().unwrap_or_default().to_owned();
        m.entry((topic, key.to_owned())).or_default().push(l["value"].clone());
    }
    m
}

/// The same from the output topics, in offset order (each key lives in one
/// partition, so that is its emission order).
pub fn per_key_topics(records: &[Record]) -> PerKey {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let mut m = PerKey::new();
    for r in sorted {
        let v = r.json();
        if v["type"] == "escalated" {
            continue;
        }
        if let Some(k) = &r.key {
            m.entry((r.topic.clone(), k.clone())).or_default().push(v);
        }
    }
    m
}

/// Logs of the code under test on stderr (shown for failing tests).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Waits until `f` returns something `ready` accepts, then until it
/// returns the same value twice `quiet` apart.
pub fn wait_stable<T: PartialEq>(
    quiet: Duration,
    timeout: Duration,
    ready: impl Fn(&T) -> bool,
    mut f: impl FnMut() -> T,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut last = f();
    while !ready(&last) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        last = f();
    }
    loop {
        std::thread::sleep(quiet);
        let now = f();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A tool from Debian's packages that `scripts/test` installs (promtool,
/// prometheus, chromium). The tests that call it are `#[ignore]`d with the
/// tool's name, so that a plain `cargo test` leaves them out and says so;
/// `scripts/test` runs them (`--include-ignored`). Missing, such a test
/// fails: it never skips.
pub fn need_tool(tool: &str) -> std::path::PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = std::path::Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} is not installed: run scripts/test (the README's test command), which installs it");
}
