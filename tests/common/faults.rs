//! The pieces of the multi-process fault tests (`tests/cluster/zombie.rs`,
//! `tests/cluster/chaos.rs`): an `andon dev-cluster` process that takes
//! fault commands on its stdin, `andon run` members to kill, stop and restart,
//! traffic that flows while they do (complaints, and updates that close
//! the work orders the members open), and the final check of every output
//! partition against `andon replay` of the inputs as they stand in their
//! topics ([`compare`] serves `tests/cluster/kafka_restart.rs` too).
//!
//! The traffic keeps every subject's complaints and updates apart in time
//! (see [`TrafficOptions`]), so that what a member processes does not
//! depend on which of its two input partitions a fault delayed: the order
//! rule (docs/semantics.md#0-input-order) lets `run` go on without a
//! partition that stayed quiet for `max_task_idle`, and a fault can keep
//! one partition quiet that long while the other has records. The tests
//! are about fault handling, not about that timing.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::{http_get, per_key_replay, read_all, replay, send_waiting, served_addr, settings, watermarks};
use super::{PerKey, Proc, Record};

/// Rules of the fault tests and of `kafka_restart`: pairs of customers pull within an hour, a
/// safety hazard at once; two owners per work order.
pub const RULES: &str = r#"
[rules.default]
threshold = 2
window = "1h"
route = ["product", "operations"]
[[rules.issue]]
issues = ["safety_hazard"]
threshold = 1
[owners.product]
sla = "30m"
[owners.operations]
sla = "1h"
"#;

/// Broker properties of the three-node Apache Kafka runs: a node killed
/// with `kill -9` is fenced (its partitions led elsewhere) after 4 s, not 9.
pub const QUICK_FENCE: [&str; 2] = ["broker.session.timeout.ms=4000", "broker.heartbeat.interval.ms=1000"];

pub const SESSION_TIMEOUT: Duration = Duration::from_millis(6000);

pub const TOPICS_IN: [&str; 2] = ["andon.complaints", "andon.work-order-updates"];
pub const TOPICS_OUT: [&str; 3] = ["andon.delist-commands", "andon.work-orders", "andon.dlq"];

/// A line of the fault tests' own log, on stderr, with the time since `t0`.
pub fn say(t0: Instant, what: impl std::fmt::Display) -> String {
    let line = format!("[{:7.1}s] {what}", t0.elapsed().as_secs_f64());
    eprintln!("{line}");
    line
}

/// A small deterministic generator (xorshift64*), seeded.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in lo..=hi (milliseconds).
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A directory for a test's logs under `target/faults/`: removed when the
/// test passes, kept (and named on stderr) when it fails.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/faults").join(format!("{name}-{stamp}"));
        std::fs::create_dir_all(&path).expect("test directory");
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// ---------------------------------------------------------------- cluster

/// The brokers of a fault run: `andon dev-cluster` in a process of its
/// own, its stdin the fault control (see `andon dev-cluster --help`), or
/// Apache Kafka (`scripts/kafka`), whose nodes are killed and restarted.
pub struct Cluster {
    brokers: Brokers,
    pub bootstrap: String,
    pub partitions: i32,
}

enum Brokers {
    Dev { proc: Proc, stdin: ChildStdin, answers: mpsc::Receiver<String>, log: PathBuf },
    Apache(super::apache::Apache),
}

impl Cluster {
    pub fn start(dir: &Path, partitions: i32) -> Cluster {
        let (mut proc, bootstrap) = super::start_dev_cluster(dir, partitions);
        let stdin = proc.0.stdin.take().expect("stdin");
        let stdout = proc.0.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            // The first line is the bootstrap servers; answers follow.
            for line in BufReader::new(stdout).lines().skip(1) {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let log = dir.join("dev-cluster.log");
        Cluster { brokers: Brokers::Dev { proc, stdin, answers, log }, bootstrap, partitions }
    }

    /// Apache Kafka of `nodes` nodes (1 or 3; with 3 every topic has three
    /// replicas and `min.insync.replicas` 2), andon's topics created.
    pub fn start_apache(nodes: u32, partitions: i32) -> Cluster {
        Cluster::start_apache_with(nodes, partitions, &[])
    }

    /// Apache Kafka with broker properties `sets` (`key=value`).
    pub fn start_apache_with(nodes: u32, partitions: i32, sets: &[&str]) -> Cluster {
        let a = super::apache::Apache::start(nodes, sets, false);
        a.create_andon_topics(partitions, &BTreeMap::new());
        let bootstrap = a.bootstrap.clone();
        Cluster { brokers: Brokers::Apache(a), bootstrap, partitions }
    }

    /// A dev cluster (`on` Mock) or one Apache Kafka node.
    pub fn on(on: super::On, dir: &Path, partitions: i32) -> Cluster {
        match on {
            super::On::Mock => Cluster::start(dir, partitions),
            super::On::Apache => Cluster::start_apache(1, partitions),
        }
    }

    pub fn apache(&self) -> Option<&super::apache::Apache> {
        match &self.brokers {
            Brokers::Apache(a) => Some(a),
            Brokers::Dev { .. } => None,
        }
    }

    /// Why the dev cluster is gone, if it is: its exit and the end of its
    /// log (librdkafka's MockCluster asserts on some sequences of events).
    pub fn gone(&mut self) -> Option<String> {
        let Brokers::Dev { proc, log, .. } = &mut self.brokers else { return None };
        let status = proc.0.try_wait().ok()??;
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        Some(format!("the dev cluster exited ({status}); its log ends: {}", tail.join(" | ")))
    }

    /// One control command of the dev cluster; its answer.
    pub fn control(&mut self, command: &str) -> Result<(), String> {
        let Brokers::Dev { stdin, answers, .. } = &mut self.brokers else {
            return Err("Apache Kafka takes no dev-cluster commands".into());
        };
        writeln!(stdin, "{command}").and_then(|()| stdin.flush()).map_err(|e| format!("writing: {e}"))?;
        match answers.recv_timeout(Duration::from_secs(10)) {
            Ok(a) if a == "ok" => Ok(()),
            Ok(a) => Err(a),
            Err(e) => Err(format!("no answer: {e}")),
        }
    }

    /// A control command that must work.
    pub fn must(&mut self, command: &str) {
        if let Err(e) = self.control(command) {
            std::thread::sleep(Duration::from_millis(200));
            let gone = self.gone().unwrap_or_default();
            panic!("dev-cluster refused {command:?}: {e} {gone}");
        }
    }
}

// ---------------------------------------------------------------- members

/// An `andon run` process, started and stopped at will; each start
/// appends to its log after a marker line.
pub struct Member {
    pub name: String,
    config: PathBuf,
    pub log: PathBuf,
    child: Option<Proc>,
    stopped: bool,
    pub starts: u32,
}

impl Member {
    pub fn new(name: &str, config: &Path, dir: &Path) -> Member {
        Member {
            name: name.to_owned(),
            config: config.to_owned(),
            log: dir.join(format!("{name}.log")),
            child: None,
            stopped: false,
            starts: 0,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let _ = writeln!(log, "=== start {} of {} ===", self.starts, self.name);
        drop(log);
        self.child = Some(super::spawn_andon(&["run", "--config", self.config.to_str().expect("path")], &self.log));
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.0.id())
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args([format!("-{sig}"), pid.to_string()]).status();
        }
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// `kill -9` (a frozen member is resumed first, to die at once).
    pub fn kill9(&mut self) {
        drop(self.child.take());
        self.stopped = false;
    }

    /// SIGTERM, then waits for the exit; `kill -9` after `timeout`.
    pub fn term(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if self.stopped {
            self.cont();
        }
        let Some(mut c) = self.child.take() else { return Err("not running".into()) };
        self.signal_pid(c.0.id(), "TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = c.0.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                // Dropped: killed and reaped.
                return Err(format!("did not stop within {timeout:?} of SIGTERM: killed"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_pid(&self, pid: u32, sig: &str) {
        let _ = Command::new("kill").args([format!("-{sig}"), pid.to_string()]).status();
    }

    /// SIGSTOP: frozen, sockets open, nothing answered.
    pub fn stop(&mut self) {
        self.signal("STOP");
        self.stopped = true;
    }

    pub fn cont(&mut self) {
        self.signal("CONT");
        self.stopped = false;
    }

    /// The exit status if the process ended on its own.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.0.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// This start's part of the log.
    pub fn current_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let marker = format!("=== start {} of {} ===", self.starts, self.name);
        text.rsplit_once(&marker).map(|(_, t)| t.to_owned()).unwrap_or(text)
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Every thread's stack of the running process (gdb), written next to
    /// its log as `NAME.stacks`: what a member that hangs is waiting on.
    pub fn stacks(&self) -> Option<PathBuf> {
        let pid = self.pid()?;
        let out = Command::new("gdb")
            .args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt"])
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        let path = self.log.with_extension("stacks");
        std::fs::write(&path, [out.stdout, out.stderr].concat()).ok()?;
        Some(path)
    }

    /// Where this start serves HTTP (from its log).
    pub fn http(&self) -> Option<SocketAddr> {
        served_addr(&self.current_log())
    }

    /// `/readyz` and the consumer lag summed over the partitions it owns
    /// with the partitions it reports lag for (`None`: not answering).
    pub fn health(&self) -> Option<Health> {
        let addr = self.http()?;
        let (ready_code, ready) = http_get(addr, "/readyz");
        let (code, metrics) = http_get(addr, "/metrics");
        if ready_code == 0 || code == 0 {
            return None;
        }
        let mut lag = 0;
        let mut lag_partitions = Vec::new();
        for l in metrics.lines().filter(|l| l.starts_with("andon_consumer_lag{")) {
            let p = l.split("partition=\"").nth(1).and_then(|s| s.split('"').next()).and_then(|p| p.parse().ok());
            let v: i64 = l.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if let Some(p) = p {
                lag_partitions.push(p);
            }
            lag += v;
        }
        let assigned = ready.split("ready: ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok());
        Some(Health { ready: ready_code == 200, readyz: ready.trim().to_owned(), assigned, lag, lag_partitions })
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    pub ready: bool,
    pub readyz: String,
    /// Partitions owned, when ready.
    pub assigned: Option<usize>,
    pub lag: i64,
    pub lag_partitions: Vec<i32>,
}

/// The members' configuration: the tests' settings (quick batches), the
/// session timeout given, and empty fetches answered within 50 ms (the
/// MockCluster holds an empty fetch for `fetch.wait.max.ms` and does not
/// answer it early when records arrive).
pub fn write_config(dir: &Path, bootstrap: &str, session_timeout: Duration) -> PathBuf {
    let session = session_timeout.as_millis().to_string();
    super::write_config(dir, bootstrap, RULES, &[("session.timeout.ms", &session), ("fetch.wait.max.ms", "50")])
}

/// Waits until the running members together own every partition, all
/// ready, with no lag, and the output topics stay unchanged for `quiet`.
/// Returns how long it took, or what was still wrong at `timeout`.
pub fn wait_drained(
    bootstrap: &str,
    partitions: i32,
    members: &[&Member],
    quiet: Duration,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last_outputs = -1;
    let mut calm_since = Instant::now();
    loop {
        let mut problems = Vec::new();
        let mut assigned = 0;
        for m in members {
            match m.health() {
                None => problems.push(format!("{}: no answer over HTTP", m.name)),
                Some(h) => {
                    if !h.ready {
                        problems.push(format!("{}: {}", m.name, h.readyz));
                    }
                    if h.lag != 0 {
                        problems.push(format!("{}: lag {}", m.name, h.lag));
                    }
                    assigned += h.assigned.unwrap_or(0);
                }
            }
        }
        if assigned != partitions as usize {
            problems.push(format!("{assigned} of {partitions} partitions owned by ready members"));
        }
        let outputs = watermarks(bootstrap, &TOPICS_OUT, partitions).1;
        if outputs != last_outputs || !problems.is_empty() {
            last_outputs = outputs;
            calm_since = Instant::now();
        }
        if problems.is_empty() && calm_since.elapsed() >= quiet {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(format!("not drained after {timeout:?}: {}", problems.join("; ")));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------- traffic

/// What the traffic does.
#[derive(Debug, Clone)]
pub struct TrafficOptions {
    /// Complaints a second.
    pub rate: f64,
    /// Distinct subjects complained about.
    pub subjects: u32,
    /// After a work order's `opened` is seen, its subject gets no more
    /// complaints, and its first update comes this long after: longer
    /// than any fault can keep a member's complaints partition from being
    /// fetched, so the complaints before it have been processed.
    pub update_delay: Duration,
    /// After the last of a subject's work orders is seen `closed`, this
    /// long before the subject gets complaints again (the same reason).
    pub cooldown: Duration,
    pub seed: u64,
    /// How many days before the test's [`super::event_base`] the traffic's
    /// event time starts, whatever day it runs on. Far enough back that the
    /// run's traffic (two seconds of event time a complaint) never reaches
    /// the present, where `max_future_skew` would send it to the DLQ: a
    /// year for the long chaos runs; a day or two where the view's "last
    /// 30 days" (of `/bad-pulls`, `/owners`) must see the closes.
    pub days_back: i64,
}

/// Complaints and updates flowing on a thread of their own, and every
/// output record read as it appears (with when it first appeared).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    shared: Arc<Mutex<Seen>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// What the traffic thread saw and did.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub complaints_sent: u64,
    pub updates_sent: u64,
    pub update_failures: u64,
    pub opened: u64,
    pub closed: u64,
    /// Each output record's first sighting: (topic, partition, offset) →
    /// time since the start of the test.
    pub outputs: HashMap<(String, i32, i64), Duration>,
    pub errors: Vec<String>,
}

struct Job {
    andon_id: String,
    subject: String,
    steps: u32,
    /// The step the next update completes.
    step: u32,
    /// The step whose update carries the verdict.
    close_at: u32,
    verdict: &'static str,
    due: Instant,
    /// An update of this job is waiting for its delivery report.
    in_flight: bool,
}

#[derive(Default)]
struct Reports {
    failed: Mutex<Vec<usize>>,
}

struct ReportContext(Arc<Reports>);

impl ClientContext for ReportContext {}

impl ProducerContext for ReportContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, job: usize) {
        if r.is_err() && job > 0 {
            self.0.failed.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        }
    }
}

/// Event time of the traffic's first complaint, in seconds: `days_back`
/// days before [`super::event_base`], two seconds a complaint (updates
/// fall between two complaints, never on one).
fn sim_start(days_back: i64) -> i64 {
    super::event_base().timestamp() - days_back * 86_400
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).expect("time").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Traffic {
    pub fn start(bootstrap: &str, options: TrafficOptions, t0: Instant) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Seen::default()));
        let (s, p, sh, b) = (stop.clone(), paused.clone(), shared.clone(), bootstrap.to_owned());
        let handle = std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || traffic(&b, &options, t0, &s, &p, &sh))
            .expect("traffic thread");
        Traffic { stop, paused, shared, handle: Some(handle) }
    }

    /// No new complaints or updates until [`Traffic::resume`]; outputs are
    /// still read.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        // The tick in progress finishes its flush.
        std::thread::sleep(Duration::from_millis(300));
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Seen {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.seen()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn traffic(
    bootstrap: &str,
    o: &TrafficOptions,
    t0: Instant,
    stop: &AtomicBool,
    paused: &AtomicBool,
    shared: &Mutex<Seen>,
) {
    let reports = Arc::new(Reports::default());
    // One request in flight: whatever a fault does, records reach their
    // partitions in the order sent (or not at all). Retries are librdkafka's.
    let producer: BaseProducer<ReportContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.timeout.ms", "120000")
        .create_with_context(ReportContext(reports.clone()))
        .expect("producer");
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "fault-traffic-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let partitions = {
        let md = reader.fetch_metadata(Some(TOPICS_OUT[0]), Duration::from_secs(10)).expect("metadata");
        md.topics()[0].partitions().len() as i32
    };
    let mut tpl = TopicPartitionList::new();
    for t in TOPICS_OUT {
        for p in 0..partitions {
            tpl.add_partition_offset(t, p, Offset::Beginning).expect("tpl");
        }
    }
    reader.assign(&tpl).expect("assign");

    let mut rng = Rng::new(o.seed ^ 0x007A_111C);
    let issues = ["damaged_in_transit", "print_defect", "wrong_item"];
    let mut sim = sim_start(o.days_back);
    let mut n: u64 = 0;
    let mut owed = 0.0f64;
    let mut last_tick = Instant::now();
    // Subjects with work orders seen open (count), and subjects resting
    // until an instant after their last close.
    let mut open: HashMap<String, u32> = HashMap::new();
    let mut resting: HashMap<String, Instant> = HashMap::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut closed: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        let dt = now.duration_since(last_tick).as_secs_f64();
        last_tick = now;

        // Outputs seen since the last tick.
        let mut new_outputs = Vec::new();
        for _ in 0..20_000 {
            match reader.poll(Duration::ZERO) {
                Some(Ok(m)) => new_outputs.push((
                    m.topic().to_owned(),
                    m.partition(),
                    m.offset(),
                    m.payload().and_then(|v| serde_json::from_slice::<Value>(v).ok()),
                )),
                Some(Err(_)) | None => break,
            }
        }
        {
            let mut seen = shared.lock().unwrap_or_else(|e| e.into_inner());
            for (t, p, off, v) in &new_outputs {
                seen.outputs.entry((t.clone(), *p, *off)).or_insert_with(|| t0.elapsed());
                let Some(v) = v else { continue };
                let (Some(kind), Some(id)) = (v["type"].as_str(), v["andon_id"].as_str()) else { continue };
                let Some((subject, _)) = id.rsplit_once('/') else { continue };
                match kind {
                    "opened" if known.insert(id.to_owned()) => {
                        seen.opened += 1;
                        *open.entry(subject.to_owned()).or_default() += 1;
                        let steps = v["steps"].as_array().map_or(1, |s| s.len() as u32).max(1);
                        let close_at = if rng.below(4) == 0 { 1 } else { steps };
                        jobs.push(Job {
                            andon_id: id.to_owned(),
                            subject: subject.to_owned(),
                            steps,
                            step: 1,
                            close_at,
                            verdict: if rng.below(10) == 0 { "no_defect" } else { "defect_confirmed" },
                            due: now + o.update_delay + rng.millis(0, 2000),
                            in_flight: false,
                        });
                    }
                    "closed" if closed.insert(id.to_owned()) => {
                        seen.closed += 1;
                        if let Some(c) = open.get_mut(subject) {
                            *c = c.saturating_sub(1);
                            if *c == 0 {
                                open.remove(subject);
                                resting.insert(subject.to_owned(), now + o.cooldown);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        resting.retain(|_, until| *until > now);

        if paused.load(Ordering::SeqCst) {
            owed = 0.0;
            continue;
        }

        // Complaints due by the rate, each about a subject that is neither
        // open nor resting.
        owed += dt * o.rate;
        let mut sent_any = false;
        while owed >= 1.0 {
            owed -= 1.0;
            let subject = (0..20).map(|_| format!("S{:04}", rng.below(o.subjects.into()))).find(|s| {
                let key = format!("sku:{s}");
                !open.contains_key(&key) && !resting.contains_key(&key)
            });
            let Some(subject) = subject else { continue };
            n += 1;
            sim += 2;
            let issue = if rng.below(200) == 0 { "safety_hazard" } else { rng.pick(&issues) };
            let line = json!({
                "event_id": format!("e{n}"),
                "occurred_at": ts(sim),
                "subject": {"kind": "sku", "id": subject},
                "issue": issue,
                "customer_id": format!("c{}", rng.below(50)),
            })
            .to_string();
            let key = format!("sku:{subject}");
            let copies = if rng.below(100) == 0 { 2 } else { 1 };
            for _ in 0..copies {
                send(&producer, "andon.complaints", Some(&key), &line, 0);
            }
            if rng.below(500) == 0 {
                send(&producer, "andon.complaints", None, &format!("{{not json {n}"), 0);
            }
            sent_any = true;
            shared.lock().unwrap_or_else(|e| e.into_inner()).complaints_sent += copies;
        }

        // Updates due.
        let mut sent_jobs = Vec::new();
        for (i, j) in jobs.iter_mut().enumerate() {
            if j.in_flight || j.due > now || j.step > j.steps {
                continue;
            }
            let actor = if j.step == 1 { "product/sam" } else { "operations/kim" };
            let mut u = json!({
                "update_id": format!("u-{}-{}", j.andon_id, j.step),
                "andon_id": j.andon_id,
                "step": j.step,
                "actor": actor,
                "at": ts(sim + 1),
            });
            if j.step == j.close_at {
                u["verdict"] = json!(j.verdict);
            }
            send(&producer, "andon.work-order-updates", Some(&j.subject), &u.to_string(), i + 1);
            j.in_flight = true;
            sent_jobs.push(i);
            sent_any = true;
        }
        if !sent_any {
            continue;
        }
        // Everything sent this tick is acknowledged (or has failed) before
        // anything later is sent.
        let mut waited = Duration::ZERO;
        while producer.flush(Duration::from_secs(1)).is_err() {
            waited += Duration::from_secs(1);
            if stop.load(Ordering::SeqCst) && waited > Duration::from_secs(30) {
                break;
            }
        }
        let failed: Vec<usize> = std::mem::take(&mut *reports.failed.lock().unwrap_or_else(|e| e.into_inner()));
        let mut seen = shared.lock().unwrap_or_else(|e| e.into_inner());
        for i in sent_jobs {
            let j = &mut jobs[i];
            j.in_flight = false;
            if failed.contains(&(i + 1)) {
                // Sent again later, with the same update_id.
                seen.update_failures += 1;
                j.due = Instant::now() + Duration::from_secs(1);
            } else {
                seen.updates_sent += 1;
                if j.step == j.close_at {
                    j.step = j.steps + 1;
                } else {
                    j.step += 1;
                    j.due = Instant::now() + rng.millis(500, 4000);
                }
            }
        }
        jobs.retain(|j| j.step <= j.steps || j.in_flight);
    }
}

fn send(producer: &BaseProducer<ReportContext>, topic: &str, key: Option<&str>, value: &str, job: usize) {
    let mut rec: BaseRecord<'_, str, str, usize> = BaseRecord::with_opaque_to(topic, job).payload(value);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    send_waiting(producer, rec);
}

// ---------------------------------------------------------------- check

/// The inputs as they stand in their topics, in the order `andon replay`
/// must see them: by event time (a record that does not decode keeps the
/// place of the one before it in its partition), then partition, then
/// offset. The traffic writes each partition in event-time order, so this
/// keeps every partition's order, which is what `run` sees.
pub fn inputs_in_topics(bootstrap: &str) -> (Vec<String>, Vec<String>) {
    let order = |topic: &str, field: &str| -> Vec<String> {
        let mut recs: Vec<(i64, i32, i64, String)> = Vec::new();
        let mut last: HashMap<i32, i64> = HashMap::new();
        for r in read_all(bootstrap, topic) {
            let line = String::from_utf8_lossy(&r.value).into_owned();
            let t = r.json()[field]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp())
                .unwrap_or_else(|| *last.get(&r.partition).unwrap_or(&i64::MIN));
            last.insert(r.partition, t);
            recs.push((t, r.partition, r.offset, line));
        }
        recs.sort_by_key(|r| (r.0, r.1, r.2));
        recs.into_iter().map(|r| r.3).collect()
    };
    (order(TOPICS_IN[0], "occurred_at"), order(TOPICS_IN[1], "at"))
}

/// A later occurrence of an output id.
#[derive(Debug, Clone)]
pub struct Repeat {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub first_offset: i64,
    pub id: String,
    /// Escalations follow the wall clock: a repeated one may differ in
    /// `escalated_at`.
    pub escalation: bool,
    pub identical: bool,
}

/// Every output partition against `andon replay` of the inputs.
#[derive(Debug, Default)]
pub struct Outcome {
    pub inputs: (usize, usize),
    pub outputs: usize,
    pub expected: usize,
    pub repeats: Vec<Repeat>,
    /// Keys whose outputs differ from replay's (deduplicated by id,
    /// escalations aside), with the first difference.
    pub divergent: Vec<String>,
    /// Distinct DLQ records, and replay's count.
    pub dlq: (usize, usize),
    /// Records the MockCluster dropped from the input and output topics.
    pub dropped: i64,
}

impl Outcome {
    /// Repeats that are not byte-identical to the first occurrence.
    pub fn differing_repeats(&self) -> Vec<&Repeat> {
        self.repeats.iter().filter(|r| !r.identical && !r.escalation).collect()
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.dropped > 0 {
            p.push(format!("the MockCluster dropped {} input or output records (too much traffic)", self.dropped));
        }
        for r in self.differing_repeats() {
            p.push(format!(
                "{}[{}]@{} repeats {} (first @{}) with different bytes",
                r.topic, r.partition, r.offset, r.id, r.first_offset
            ));
        }
        if !self.divergent.is_empty() {
            p.push(format!(
                "{} keys differ from replay; first: {}",
                self.divergent.len(),
                self.divergent.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
            ));
        }
        if self.dlq.0 != self.dlq.1 {
            p.push(format!("DLQ: {} distinct records, replay has {}", self.dlq.0, self.dlq.1));
        }
        p
    }

    /// [`Outcome::problems`] on a broker that fences zombies and hides
    /// aborted records (Apache Kafka, read `read_committed`): there, an id
    /// that stands twice is a problem whatever its bytes.
    pub fn problems_strict(&self) -> Vec<String> {
        let mut p = self.problems();
        for r in self.repeats.iter().take(10) {
            p.push(format!("{}[{}]@{} repeats {} (first @{})", r.topic, r.partition, r.offset, r.id, r.first_offset));
        }
        if self.repeats.len() > 10 {
            p.push(format!("... {} repeated ids in all", self.repeats.len()));
        }
        p
    }

    pub fn summary(&self) -> String {
        let esc = self.repeats.iter().filter(|r| r.escalation).count();
        format!(
            "{} complaints and {} updates in; {} distinct outputs (replay: {} without escalations), {} repeated ids ({} of them escalations), {} DLQ records (replay: {})",
            self.inputs.0,
            self.inputs.1,
            self.outputs,
            self.expected,
            self.repeats.len(),
            esc,
            self.dlq.0,
            self.dlq.1
        )
    }
}

/// Reads the inputs and every output partition, and compares.
pub fn check(bootstrap: &str, partitions: i32) -> Outcome {
    let (complaints, updates) = inputs_in_topics(bootstrap);
    compare(bootstrap, partitions, &complaints, &updates)
}

/// Every output partition against `andon replay` of `complaints` and
/// `updates` (with [`RULES`]).
pub fn compare(bootstrap: &str, partitions: i32, complaints: &[String], updates: &[String]) -> Outcome {
    let mut all_topics: Vec<&str> = TOPICS_IN.to_vec();
    all_topics.extend(TOPICS_OUT);
    let dropped = watermarks(bootstrap, &all_topics, partitions).0;
    let mut got: Vec<Record> = Vec::new();
    for t in TOPICS_OUT {
        got.extend(read_all(bootstrap, t));
    }
    // The first occurrence of each id; later ones are repeats.
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<&Record> = Vec::new();
    let mut repeats = Vec::new();
    for (i, r) in got.iter().enumerate() {
        let id = r.output_id();
        match first.get(&id) {
            None => {
                first.insert(id, i);
                kept.push(r);
            }
            Some(&f) => {
                let f = &got[f];
                repeats.push(Repeat {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    first_offset: f.offset,
                    escalation: r.json()["type"] == "escalated",
                    identical: f.value == r.value && f.key == r.key && f.partition == r.partition,
                    id,
                });
            }
        }
    }
    let expected = replay(&settings("unused:9092", RULES), complaints, updates);
    let want = per_key_replay(&expected);
    let mut have = PerKey::new();
    for r in kept.iter().filter(|r| !r.topic.ends_with("dlq")) {
        let v = r.json();
        if v["type"] == "escalated" {
            continue;
        }
        if let Some(k) = &r.key {
            have.entry((r.topic.clone(), k.clone())).or_default().push(v);
        }
    }
    let mut keys: Vec<&(String, String)> = want.keys().chain(have.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut divergent = Vec::new();
    for k in keys {
        let (g, w) = (have.get(k).map_or(&[][..], Vec::as_slice), want.get(k).map_or(&[][..], Vec::as_slice));
        if g == w {
            continue;
        }
        let at = g.iter().zip(w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
        divergent.push(format!(
            "{} {}: {} outputs, replay {}; first difference at #{at}: got {} want {}",
            k.0,
            k.1,
            g.len(),
            w.len(),
            g.get(at).map_or("nothing".into(), Value::to_string),
            w.get(at).map_or("nothing".into(), Value::to_string)
        ));
    }
    let dlq_got = kept.iter().filter(|r| r.topic.ends_with("dlq")).count();
    let dlq_want = expected.iter().filter(|l| l["topic"] == "andon.dlq").count();
    Outcome {
        inputs: (complaints.len(), updates.len()),
        outputs: kept.iter().filter(|r| r.json()["type"] != "escalated" && !r.topic.ends_with("dlq")).count(),
        expected: expected.iter().filter(|l| l["topic"] != "andon.dlq" && l["value"]["type"] != "escalated").count(),
        repeats,
        divergent,
        dlq: (dlq_got, dlq_want),
        dropped,
    }
}

/// What the state partitions say.
#[derive(Debug, Default)]
pub struct Chains {
    /// Partitions whose chain does not resolve, and why.
    pub errors: Vec<String>,
    /// Records a writer wrote after a newer writer's first record on the
    /// same partition (a zombie's late writes).
    pub late_records: usize,
    /// For each (partition, older writer): the checkpoints and snapshots
    /// (by `seq`) it wrote after a newer writer began: the batches a
    /// zombie wrote.
    pub late_batches: BTreeMap<(i32, (u32, i32)), BTreeSet<u64>>,
}

impl Chains {
    /// The most batches one zombie wrote on one partition.
    pub fn most_late_batches(&self) -> usize {
        self.late_batches.values().map(BTreeSet::len).max().unwrap_or(0)
    }
}

/// Each state partition's chain resolved as a restore would (from the
/// partition's low watermark), and the zombies' late writes on it (as far
/// as the MockCluster, which keeps 5 MiB a partition, still holds them).
pub fn chains(bootstrap: &str, partitions: i32) -> Chains {
    use andon::kafka::checkpoint::{self, Kind, Read};
    let mut out = Chains::default();
    let mut by_partition: BTreeMap<i32, Vec<Read>> = BTreeMap::new();
    for r in read_all(bootstrap, "andon.state") {
        // An empty value is a tombstone (no frame is empty).
        let value = (!r.value.is_empty()).then_some(r.value);
        by_partition.entry(r.partition).or_default().push(Read {
            offset: r.offset,
            key: r.key.map(String::into_bytes),
            value,
        });
    }
    for (p, reads) in &by_partition {
        let mut newest = None;
        for r in reads {
            let Some(Ok((frame, _))) = r.value.as_deref().map(checkpoint::decode_value) else { continue };
            match newest {
                Some(n) if frame.stamp < n => {
                    out.late_records += 1;
                    if frame.kind != Kind::Head {
                        let writer = (frame.stamp.era, frame.stamp.generation);
                        out.late_batches.entry((*p, writer)).or_default().insert(frame.seq);
                    }
                }
                _ => newest = Some(frame.stamp),
            }
        }
        let end = reads.last().map_or(0, |r| r.offset + 1);
        if let Err(e) = checkpoint::resolve(reads, partitions as u32, end) {
            out.errors.push(format!("andon.state[{p}]: {e}"));
        }
    }
    out
}

/// Lines of the members' logs that name a panic, a failed restore, or an
/// error, counted by kind.
pub fn log_findings(logs: &[PathBuf]) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for l in text.lines() {
            let kind = if l.contains("panicked") {
                "panic"
            } else if l.contains("restore failed") {
                "restore failed"
            } else if l.contains(" ERROR ") {
                "other ERROR"
            } else if l.contains("batch failed") {
                "batch failed (WARN)"
            } else {
                continue;
            };
            *found.entry(kind.to_owned()).or_default() += 1;
        }
    }
    found
}
