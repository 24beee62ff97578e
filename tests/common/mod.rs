//! Helpers shared by the two test binaries (`tests/offline/`,
//! `tests/cluster/`), included by each as `mod common`: for the tests that
//! talk Kafka over real sockets a MockCluster in process or an
//! `andon dev-cluster` process, a plain rdkafka producer and consumer (not
//! andon's code path), and `andon replay` for the expected outputs; the
//! lock that keeps heavy tests from running beside others ([`serial`],
//! [`parallel`]); the tools from outside cargo ([`need_tool`]), a
//! browser to click through a page ([`webdriver`]); and in
//! [`faults`] the multi-process fault runs' harness (a dev cluster driven
//! through its stdin, members to kill and freeze, traffic, the check of
//! every output against replay).
#![allow(dead_code)]

pub mod apache;
pub mod faults;
pub mod webdriver;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use andon::config::Settings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
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

/// A MockCluster in this process with andon's default topics, each of
/// `partitions` partitions, the test's logs on; and its bootstrap servers.
pub fn mock_cluster(partitions: i32) -> (andon::dev_cluster::DevCluster, String) {
    init_logs();
    let topics = Settings::from_toml("").expect("defaults").topics;
    let cluster = andon::dev_cluster::DevCluster::start(partitions, &topics).expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    (cluster, bootstrap)
}

/// The broker a test runs on: librdkafka's MockCluster (fast, in process or
/// as `andon dev-cluster`), or Apache Kafka (`scripts/kafka`: what users
/// run; it fences, compacts, hides aborted records and answers
/// DescribeConfigs, which the MockCluster does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Mock,
    Apache,
}

/// A test's broker, stopped when dropped.
pub enum Broker {
    /// A MockCluster in this process.
    Mock(andon::dev_cluster::DevCluster),
    /// `andon dev-cluster`, a process of its own (its stdin the fault
    /// control).
    DevCluster(Proc),
    Apache(apache::Apache),
}

impl Broker {
    /// The in-process MockCluster, for a test that injects its faults.
    pub fn mock(&self) -> &andon::dev_cluster::DevCluster {
        match self {
            Broker::Mock(c) => c,
            _ => panic!("this test needs the in-process MockCluster"),
        }
    }

    /// A topic of `partitions` (replication as the cluster allows), with
    /// `configs` where the broker keeps them (the MockCluster keeps none).
    pub fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        match self {
            Broker::Mock(c) => c.mock().create_topic(name, partitions, 1).expect("create topic"),
            Broker::Apache(a) => a.create_topics(&[(name, partitions, configs)]),
            Broker::DevCluster(_) => panic!("topics of an andon dev-cluster process are made at its start"),
        }
    }

    pub fn apache(&self) -> &apache::Apache {
        match self {
            Broker::Apache(a) => a,
            _ => panic!("this test needs Apache Kafka"),
        }
    }
}

/// andon's seven topics of `partitions` each, on an in-process MockCluster
/// or on one Apache Kafka node; and the bootstrap servers.
pub fn cluster(on: On, partitions: i32) -> (Broker, String) {
    match on {
        On::Mock => {
            let (c, b) = mock_cluster(partitions);
            (Broker::Mock(c), b)
        }
        On::Apache => {
            init_logs();
            let a = apache::Apache::single();
            a.create_andon_topics(partitions, &BTreeMap::new());
            let b = a.bootstrap.clone();
            (Broker::Apache(a), b)
        }
    }
}

/// As [`cluster`], but the MockCluster in an `andon dev-cluster` process of
/// its own, logging into `dir` (for tests whose members are processes).
pub fn cluster_process(on: On, dir: &Path, partitions: i32) -> (Broker, String) {
    match on {
        On::Mock => {
            let (p, b) = start_dev_cluster(dir, partitions);
            (Broker::DevCluster(p), b)
        }
        On::Apache => cluster(On::Apache, partitions),
    }
}

/// `on_both!(name, ...)`: each `fn name(on: On)` of the module runs as two
/// tests, `name::mock` on the MockCluster and `name::apache` on Apache
/// Kafka (ignored by a plain `cargo test`, which has no JVM; run by
/// `scripts/test`).
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn mock() {
                super::$name(crate::common::On::Mock)
            }
            #[test]
            #[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
            fn apache() {
                super::$name(crate::common::On::Apache)
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both;

/// The lock for a test that shares the machine on the MockCluster: on
/// Apache Kafka it runs alone (a broker's JVM beside another test's would
/// make both slow to start and their timings noisy).
pub fn shared(on: On) -> Lock {
    match on {
        On::Mock => Lock::Shared(parallel()),
        On::Apache => Lock::Alone(serial()),
    }
}

/// Either guard of [`MACHINE`].
pub enum Lock {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

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
[http.auth]
# The harness reads every endpoint without credentials; tests/offline/auth.rs
# covers authentication.
mode = "none"
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

/// The instant the tests' event times count from: the start of the hour
/// one day before this test process first asked. `andon run` compares
/// event times with the wall clock (escalations once caught up, "the last
/// 30 days" of `/owners` and `/bad-pulls`, the view's retention), so a test
/// that wrote fixed dates passed until the wall clock overtook them and
/// failed ever after. A day back keeps every event clear of
/// `max_future_skew` (1 h) and inside the view's 30 days; whole hours keep
/// the minutes a test writes readable in its failures.
pub fn event_base() -> chrono::DateTime<chrono::Utc> {
    static BASE: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let day_ago = chrono::Utc::now().timestamp() - 86_400;
        chrono::DateTime::from_timestamp(day_ago - day_ago.rem_euclid(3600), 0).expect("time")
    })
}

/// [`event_base`] plus `secs`, as an input's `occurred_at` (RFC 3339, UTC).
pub fn event_time(secs: i64) -> String {
    (event_base() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A `print_defect` complaint `minute` minutes after [`event_base`] (an
/// owner's SLA of days runs out long after the test, whatever day it
/// runs on).
pub fn complaint(id: &str, sku: &str, customer: &str, minute: i64) -> String {
    let at = event_time(minute * 60);
    format!(
        r#"{{"event_id":"{id}","occurred_at":"{at}","subject":{{"kind":"sku","id":"{sku}"}},"issue":"print_defect","customer_id":"{customer}"}}"#
    )
}

/// Rules under which two customers pull, with one owner whose SLA of 30
/// days never runs out during a test.
pub const PAIR_RULES: &str = r#"
[rules.default]
threshold = 2
window = "1h"
route = ["product"]
[owners.product]
sla = "30d"
"#;

/// Pairs of [`complaint`]s on `subjects` subjects: each pulls once.
pub fn pairs(prefix: &str, subjects: usize, minute: i64) -> Vec<String> {
    (0..subjects)
        .flat_map(|i| {
            let sku = format!("{prefix}{i}");
            [complaint(&format!("{sku}-a"), &sku, "ann", minute), complaint(&format!("{sku}-b"), &sku, "bob", minute)]
        })
        .collect()
}

/// The andons `replay`'s lines leave open: opened and not closed.
pub fn expected_open(lines: &[serde_json::Value]) -> std::collections::BTreeSet<String> {
    let mut open = std::collections::BTreeSet::new();
    for l in lines.iter().filter(|l| l["topic"] == "andon.work-orders") {
        let id = l["value"]["andon_id"].as_str().unwrap_or_default().to_owned();
        match l["value"]["type"].as_str() {
            Some("opened") => {
                open.insert(id);
            }
            Some("closed") => {
                open.remove(&id);
            }
            _ => {}
        }
    }
    open
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
/// partitioner, as docs/records.md asks of producers ("What producers of
/// the inputs must do"), idempotent: a retried batch keeps its place.
/// Without it, Apache Kafka showed what the MockCluster never did: the
/// first requests to a topic just created fail (its leader is not known
/// everywhere yet), are retried behind the later ones, and the records
/// land out of their order, which then differs from replay's.
pub fn produce(bootstrap: &str, topic: &str, lines: &[String]) {
    produce_with(bootstrap, topic, lines, "murmur2_random");
}

pub fn produce_with(bootstrap: &str, topic: &str, lines: &[String], partitioner: &str) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", partitioner)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for l in lines {
        let key = key_of(l);
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(l.as_str());
        if let Some(k) = &key {
            rec = rec.key(k.as_str());
        }
        send_waiting(&p, rec);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Sends `rec`, polling (delivery reports) while the producer's queue is
/// full.
pub fn send_waiting<C: ProducerContext>(p: &BaseProducer<C>, mut rec: BaseRecord<'_, str, str, C::DeliveryOpaque>) {
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(10));
            }
        }
    }
}

/// Produces (key, value) pairs as they are: for records a well-behaved
/// producer would not write (no key, the wrong key).
pub fn produce_raw(bootstrap: &str, topic: &str, records: &[(Option<&str>, &str)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
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

    /// The output's id: `command_id`; `andon_id|type|step`; for the DLQ
    /// the source coordinates.
    pub fn output_id(&self) -> String {
        if self.topic.ends_with("dlq") {
            let h = |k: &str| self.headers.get(k).map_or("", String::as_str);
            return format!(
                "dlq:{}/{}/{}",
                h("andon.source.topic"),
                h("andon.source.partition"),
                h("andon.source.offset")
            );
        }
        let v = self.json();
        match v.get("command_id").and_then(Value::as_str) {
            Some(c) => c.to_owned(),
            None => {
                format!("{}|{}|{}", v["andon_id"], v["type"], v.get("step").map(|s| s.to_string()).unwrap_or_default())
            }
        }
    }
}

/// Everything in `topic` now (from each partition's low watermark), in
/// partition and offset order.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", "true")
        // The MockCluster holds an empty fetch this long.
        .set("fetch.wait.max.ms", "50")
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
        let deadline = Instant::now() + Duration::from_secs(60);
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
                    if m.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                // A connection's news, not a record's: librdkafka (2.12)
                // reports to the consumer that every broker it knows is
                // down whenever its connections are, if only for a moment.
                // Seen once on the MockCluster ("2/2 brokers are down"),
                // 7 s after an outage had ended, from a reader whose
                // metadata and watermarks had just been answered. The
                // reading goes on; its deadline still holds.
                Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                    | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
                ))) => {}
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
    }
    out
}

/// The low and the high watermarks of `topics`, each summed over the
/// partitions: what the MockCluster dropped from their starts (it keeps at
/// most 5 MiB or 100,000 message sets a partition), and where they end.
pub fn watermarks(bootstrap: &str, topics: &[&str], partitions: i32) -> (i64, i64) {
    let c: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "probe").create().expect("consumer");
    let mut sums = (0, 0);
    for t in topics {
        for p in 0..partitions {
            let (low, high) = c.fetch_watermarks(t, p, Duration::from_secs(10)).unwrap_or((0, 0));
            sums = (sums.0 + low, sums.1 + high);
        }
    }
    sums
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

/// A child process, killed and reaped when dropped (resumed first if it
/// still runs: a test may have stopped it with SIGSTOP).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").args(["-CONT", &self.0.id().to_string()]).status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `andon` binary with `args`, its logs appended to `log`, nothing on
/// stdin, stdout dropped: to spawn, or to change first.
pub fn andon_command(args: &[&str], log: &Path) -> Command {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let mut c = Command::new(env!("CARGO_BIN_EXE_andon"));
    c.args(args).env("RUST_LOG", "info,librdkafka=warn").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    c
}

/// The `andon` binary with `args`, its logs appended to `log`.
pub fn spawn_andon(args: &[&str], log: &Path) -> Proc {
    Proc(andon_command(args, log).spawn().expect("spawn andon"))
}

/// An `andon dev-cluster` process with `partitions` per topic, logging and
/// writing its bootstrap servers into `dir`: the process and the servers.
/// Its stdin and stdout are pipes, for a test that injects faults
/// ([`faults::Cluster`]); the others leave them be.
pub fn start_dev_cluster(dir: &Path, partitions: i32) -> (Proc, String) {
    let file = dir.join("bootstrap");
    let child = andon_command(
        &["dev-cluster", "--partitions", &partitions.to_string(), "--bootstrap-file", file.to_str().expect("path")],
        &dir.join("dev-cluster.log"),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn andon dev-cluster");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(&file) {
            if s.ends_with('\n') {
                return (p, s.trim().to_owned());
            }
        }
        assert!(Instant::now() < deadline, "dev-cluster did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where an `andon run` serves HTTP, from its log: the last start's line.
pub fn served_addr(log: &str) -> Option<SocketAddr> {
    let line = log.lines().rev().find(|l| l.contains("serving /metrics"))?;
    line.split("addr=").nth(1)?.split_whitespace().next()?.trim_matches('"').parse().ok()
}

/// A configuration file in `dir` for `andon run`: the tests' settings with
/// `rules`, each Kafka property in `properties` set (replacing the tests'
/// value, if they set one).
pub fn write_config(dir: &Path, bootstrap: &str, rules: &str, properties: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = settings_toml(bootstrap, rules);
    for (k, v) in properties {
        let line = format!("\"{k}\" = \"{v}\"");
        text = match text.lines().find(|l| l.starts_with(&format!("\"{k}\" ="))) {
            Some(old) => text.replace(old, &line),
            None => text.replace("[kafka.properties]", &format!("[kafka.properties]\n{line}")),
        };
    }
    let path = dir.join("andon.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// Headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=`),
/// in a profile of its own, its console logged to stderr.
pub fn chromium(args: &[&str], url: &str) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    Command::new(need_tool("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            // Let the page's first fetches and refresh run.
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// `GET path` over HTTP/1.1 on a fresh connection: (status, body); status
/// 0 when nothing answers (a test polls until something does).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// `andon run` in process with its HTTP endpoints on a free port.
pub struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Running {
    pub fn start(settings: &Settings) -> Self {
        let registry = prometheus::Registry::new();
        let metrics = andon::ops::metrics::Metrics::new(&registry, &settings.engine).expect("metrics");
        let status = Arc::new(andon::ops::status::Status::default());
        *status.metrics.lock().expect("lock") = Some(metrics);
        // The settings' own [http.auth] (the harness's say mode = "none").
        let auth = Arc::new(andon::ops::auth::Auth::from_settings(&settings.http.auth).expect("auth"));
        let app = andon::ops::http::router(status.clone(), registry, auth, andon::view::remote::Client::default());
        let addr = andon::ops::http::serve("127.0.0.1:0".parse().expect("addr"), None, app).expect("serve");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, s) = (stop.clone(), settings.clone());
        let handle = std::thread::spawn(move || andon::kafka::run(Arc::new(s), status, &flag).expect("andon run"));
        Running { stop, handle: Some(handle), addr }
    }

    /// As `andon run` starts: the HTTP endpoints and the cluster-wide view
    /// (its reader, and this member in it) too, with test `options`.
    pub fn with_view(settings: &Settings, options: andon::kafka::RunOptions) -> Self {
        let (status, addr) = andon::ops::serve(settings).expect("serve");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, s) = (stop.clone(), settings.clone());
        let handle = std::thread::spawn(move || {
            andon::kafka::run_with(Arc::new(s), status, &flag, options).expect("andon run");
        });
        Running { stop, handle: Some(handle), addr }
    }

    /// Where it serves HTTP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    /// The value of one metric series, as `/metrics` shows it.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    pub fn alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("andon thread");
        }
    }
}

/// Waits until `f` holds, or fails with `what`.
pub fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A CA, and a certificate for 127.0.0.1 and localhost it signed, as PEM
/// files in `dir`: (ca, cert, key).
pub fn pki(dir: &std::path::Path) -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "andon test CA");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("ca");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).expect("leaf params");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let cert = leaf.signed_by(&leaf_key, &ca).expect("leaf");
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write pem");
        p.display().to_string()
    };
    (write("ca.pem", ca.pem()), write("cert.pem", cert.pem()), write("key.pem", leaf_key.serialize_pem()))
}

/// Two in-process MockCluster brokers, every topic (two partitions) led by
/// broker 1 but the view topic, led by broker 2; and an `andon run` in
/// this process on them, ready, with both partitions assigned. With broker
/// 2 down, a batch's outputs reach their partitions but its table records
/// cannot: the batch waits `message.timeout.ms` for them, then fails.
pub struct ViewApart {
    pub cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub bootstrap: String,
    pub settings: Settings,
    pub status: Arc<andon::ops::status::Status>,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    run: JoinHandle<()>,
    /// Asks for watermarks ([`ViewApart::written`]).
    probe: BaseConsumer,
}

impl ViewApart {
    /// `message_timeout_ms`: how long a batch waits for its table records.
    pub fn start(rules: &str, message_timeout_ms: u32) -> Self {
        use rdkafka::mocking::{MockCluster, MockCoordinator};
        init_logs();
        let topics = Settings::from_toml("").expect("defaults").topics;
        let cluster = MockCluster::new(2).expect("cluster");
        for t in topics.all() {
            cluster.create_topic(t, 2, 1).expect("topic");
            for p in 0..2 {
                cluster.partition_leader(t, p, Some(if t == topics.view { 2 } else { 1 })).expect("leader");
            }
        }
        let bootstrap = cluster.bootstrap_servers();
        let toml = settings_toml(&bootstrap, rules).replace(
            "[kafka.properties]",
            &format!("[kafka.properties]\n\"message.timeout.ms\" = \"{message_timeout_ms}\""),
        );
        let settings = Settings::from_toml(&toml).expect("settings");
        cluster.coordinator(MockCoordinator::Group(settings.kafka.group_id.clone()), 1).expect("group coordinator");
        cluster
            .coordinator(MockCoordinator::Transaction(andon::kafka::client::transactional_id(&settings)), 1)
            .expect("transaction coordinator");
        let (status, addr) = andon::ops::serve(&settings).expect("serve");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, s, st) = (stop.clone(), settings.clone(), status.clone());
        let run = std::thread::spawn(move || andon::kafka::run(Arc::new(s), st, &flag).expect("andon run"));
        eventually(Duration::from_secs(60), "andon ready with both partitions", || {
            status.ready.load(Ordering::Relaxed) && status.assigned.load(Ordering::Relaxed) == 2
        });
        let probe = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "probe")
            .create()
            .expect("consumer");
        Self { cluster, bootstrap, settings, status, addr, stop, run, probe }
    }

    /// The high watermark of `topic`'s partition `p` (records written,
    /// committed or not).
    pub fn written(&self, topic: &str, p: i32) -> i64 {
        self.probe.fetch_watermarks(topic, p, Duration::from_secs(2)).map_or(0, |(_, high)| high)
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.run.join().expect("andon thread");
    }
}
