//! andon on Kafka, everything issue 9 asks measured in one run:
//! `cargo bench --bench kafka`. Against Kafka it always talks to an
//! `andon dev-cluster` started as a process of its own (so the broker's
//! CPU is nobody's), and every contender is a process of its own, timed
//! from its start (Unix time taken just before the spawn):
//!
//! 1. **Throughput.** N complaints are produced first, as
//!    scripts/bench-peers writes them: keyed by subject key with the
//!    murmur2 partitioner, ~20,000 SKUs with up to four customers each,
//!    50 ms of event time apart and ending now, record timestamp =
//!    `occurred_at`. Then, each from a fresh consumer group, until all N
//!    are processed: a plain librdkafka consumer (this binary re-executed
//!    in a hidden mode: subscribe, read N records, nothing else; it reads
//!    its own CPU time at its first record and at the last), and
//!    `andon run` with `exactly_once`, threshold 3 in 1 h (done when the
//!    sum of `andon_complaints_total` over all outcomes on its `/metrics`
//!    reaches N; /metrics counts only committed batches). CPU is utime +
//!    stime of all of a process's threads, exited ones included
//!    (`/proc/PID/stat`, in 10 ms ticks); andon's steady state runs from
//!    the first committed batch /metrics showed to the end (polled every
//!    25 ms). Each andon run gets a dev cluster of its own (a second run on
//!    the same topics would restore the first one's state), and a plain
//!    consumer runs on it first, so every andon/plain ratio is taken on
//!    one cluster.
//! 2. **Thread scaling.** The same with `processing.threads` = 1 and 2;
//!    the default run stands for its effective thread count.
//! 3. **Replay's CPU per event** on the same complaints as JSON lines
//!    (`andon::replay::replay` in this process, one thread, best of
//!    three), against andon's in steady state.
//! 4. **Failover.** K complaints, each on a subject of its own (so each
//!    key holds one counted complaint; threshold 2), processed by member
//!    A; A is stopped (SIGTERM, it leaves the group) and B started in the
//!    same group: from B's start until a pair of complaints produced right
//!    after it, on a new subject, is delisted (seen by a read_committed
//!    consumer). Beside it, a plain consumer doing the same: P1 reads the
//!    topic, commits and leaves; from P2's start in the same group until
//!    it receives a record produced right after it started. B's restores:
//!    its "partition restored" log lines (`elapsed_ms`,
//!    `changelog_records`, `changelog_bytes`) and `andon_restore_seconds`;
//!    the state topic's size is read by the bench itself.
//! 5. **Decision latency.** A steady rate (10,000 complaints/s) with
//!    `occurred_at` = now, in every ten complaints one pair that pulls
//!    and eight single complaints that never do; the delist commands
//!    are read as they appear: latency = time seen - `issued_at` (the
//!    pulling complaint's `occurred_at`). A first second of the same
//!    traffic is a warm-up and not counted; then 20 s are measured, and
//!    quantiles printed over all of it and over its first 10 s. andon's
//!    own `andon_decision_latency_seconds`, `andon_transaction_seconds`
//!    and its CPU meanwhile are printed beside them; every delist goes to
//!    latency.csv.
//! 6. Memory per key is measured by benches/replay.rs.
//! 7. **In process** (cheap, kept from before): a MockCluster and
//!    `andon::kafka::run` in this process against a plain consumer
//!    assigned every partition: events/s in steady state.
//!
//! The dev cluster is librdkafka's MockCluster, which differs from a real
//! broker in ways that matter here, each handled so that andon and the
//! plain consumer meet the same conditions:
//! - it writes no transaction markers and reports the high watermark as
//!   the last stable offset, so a read_committed consumer sees a
//!   transaction's records as soon as they are written, a little before
//!   the commit (andon writes outputs, then checkpoints, then commits);
//! - when a group's last member leaves, it keeps the group joining for
//!   `session.timeout.ms` - 1 s (a newcomer meanwhile waits for the rest
//!   of it), where a real broker empties the group at once and a newcomer
//!   waits `group.initial.rebalance.delay.ms` (3 s, as the MockCluster
//!   makes a new group's first member wait): every group member here has
//!   `session.timeout.ms` = 4000, and the failover starts the new member
//!   3.5 s after the old one left, on both sides ([`SESSION`]);
//! - it answers a fetch that finds nothing after `fetch.wait.max.ms`
//!   even when records arrive meanwhile (a real broker answers when they
//!   arrive): the bench's own readers ask for 5 ms, and so does andon in
//!   the latency run ([`LATENCY_FETCH`]); elsewhere andon uses its own
//!   100 ms and the plain consumers keep librdkafka's 500 ms.
//!
//! The machine is shared and noisy: ratios are taken within one run; run
//! it more than once before believing a digit. Logs and configuration of
//! every process go to target/tmp/bench-kafka/<time>/ with the printed
//! table (results.txt); the first and last lines say where.
//! `ANDON_BENCH_SECTIONS=4,5` runs only those sections. Under
//! `cargo test` (no `--bench` argument) it runs on small inputs, without
//! the scaling trial and the in-process run, as a smoke test (about 35 s,
//! most of it the MockCluster's 3 s group joins).

use std::fs::File;
use std::hint::black_box;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use andon::config::{Settings, Topics};
use andon::dev_cluster::DevCluster;
use chrono::{DateTime, SecondsFormat};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

type R<T> = Result<T, String>;

/// How much of everything one run measures.
struct Sizes {
    partitions: i32,
    /// Throughput input.
    complaints: usize,
    skus: u64,
    /// Failover: keys (complaints, one subject each).
    failover_keys: usize,
    /// Latency: complaints per second, and seconds measured (after one
    /// second of warm-up).
    latency_rate: u64,
    latency_secs: u64,
    /// Failover: how long after the old member left the new one starts
    /// (see [`SESSION`]).
    settle: Duration,
    /// Whether the thread-scaling trials and the in-process run happen
    /// (the smoke run leaves them out to stay short: the trials are the
    /// first trial's code again, and each costs group joins).
    extras: bool,
    /// Longest wait for any one step.
    timeout: Duration,
}

impl Sizes {
    fn new(bench: bool) -> Self {
        if bench {
            Sizes {
                partitions: 16,
                complaints: 200_000,
                skus: 20_000,
                failover_keys: 100_000,
                latency_rate: 10_000,
                // 20 s, not 10: at this rate every partition writes its
                // first snapshot (SNAPSHOT_AFTER_BYTES of checkpoints) at
                // about 10 s, all at once, so a 10 s run caught that stall
                // in some runs and not in others.
                latency_secs: 20,
                settle: Duration::from_millis(3_500),
                extras: true,
                timeout: Duration::from_secs(300),
            }
        } else {
            Sizes {
                partitions: 4,
                complaints: 2_000,
                skus: 200,
                failover_keys: 2_000,
                latency_rate: 1_000,
                latency_secs: 1,
                settle: Duration::ZERO,
                extras: false,
                timeout: Duration::from_secs(60),
            }
        }
    }
}

/// What every section needs: where andon is, where logs go.
struct Ctx {
    sizes: Sizes,
    andon: PathBuf,
    dir: PathBuf,
    topics: Topics,
}

// ---------------------------------------------------------------------------
// Processes and /proc

/// Unix time now, in seconds: the clock all processes here share.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn now_micros() -> i64 {
    (now() * 1e6) as i64
}

/// Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`;
/// 100 where it cannot be asked).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds a process has used, all its threads (exited ones
/// included): utime + stime from `/proc/{pid}/stat` (`pid` "self" for this
/// process). None once it is gone. Resolution: one clock tick (10 ms).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its closing
    // parenthesis. utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// CPU seconds of the calling thread, to the nanosecond
/// (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_secs() -> f64 {
    // The kernel brings the running thread's figure up to date when it
    // is switched out: a yield makes it current.
    std::thread::yield_now();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// A child process whose stdout and stderr go to a log file; stopped
/// (SIGTERM, then SIGKILL) if still running when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    /// Unix time just before the spawn.
    started: f64,
}

impl Proc {
    /// Spawns `cmd` (stdin closed, stdout and stderr to `log`).
    fn spawn(name: &str, mut cmd: Command, log: &Path) -> R<Proc> {
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let started = now();
        let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Proc { name: name.to_owned(), child, log: log.to_owned(), started })
    }

    /// Its CPU seconds so far (see [`cpu_secs`]).
    fn cpu(&self) -> Option<f64> {
        cpu_secs(&self.child.id().to_string())
    }

    /// Its exit status, once it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to exit by itself.
    fn wait(&mut self, timeout: Duration) -> R<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not finish within {timeout:?} (log {})", self.name, self.log.display()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asks it to stop (SIGTERM), waits up to `grace`, then kills it
    /// (SIGKILL): its exit status (None if it had to be killed) and the
    /// seconds it took.
    fn stop(&mut self, grace: Duration) -> (Option<ExitStatus>, f64) {
        let t = Instant::now();
        if let Some(s) = self.exited() {
            return (Some(s), 0.0);
        }
        signal(self.child.id(), "TERM");
        while t.elapsed() < grace {
            if let Some(s) = self.exited() {
                return (Some(s), t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, t.elapsed().as_secs_f64())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// Sends `SIG{sig}` to process `pid` (one of ours) with kill(1).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `GET http://{addr}{path}` (HTTP/1.0, so the body is never chunked):
/// status and body, or None when nothing answers within 2 s.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sock: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Every sample of metric `name` in a Prometheus text exposition: the
/// labels as written between the braces ("" without), and the value.
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of `name` (all label sets); None if it has none.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let s = samples(text, name);
    (!s.is_empty()).then(|| s.iter().map(|(_, v)| v).sum())
}

/// Quantile `q` of histogram `name`, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does.
fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = samples(text, &format!("{name}_bucket"))
        .into_iter()
        .filter_map(|(labels, count)| {
            let le = labels.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            return Some(lower + (le - lower) * (rank - below) / (count - below).max(1e-9));
        }
        (lower, below) = (le, count);
    }
    None
}

/// The JSON log lines of an andon process (`--log-format json`); lines
/// that do not parse (a line half written) are left out.
fn json_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// A log line's `timestamp` as Unix seconds.
fn log_time(v: &Value) -> Option<f64> {
    let ts = DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
    Some(ts.timestamp_micros() as f64 / 1e6)
}

fn log_message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The dev cluster, andon, and the plain consumers as processes

/// An `andon dev-cluster` process.
struct Cluster {
    proc: Proc,
    bootstrap: String,
}

impl Cluster {
    /// Starts `andon dev-cluster --partitions P` and waits for its
    /// bootstrap address.
    fn start(ctx: &Ctx, tag: &str) -> R<Cluster> {
        let file = ctx.dir.join(format!("{tag}.bootstrap"));
        let mut cmd = Command::new(&ctx.andon);
        cmd.args(["dev-cluster", "--partitions", &ctx.sizes.partitions.to_string(), "--bootstrap-file"]).arg(&file);
        let mut proc = Proc::spawn(&format!("dev cluster {tag}"), cmd, &ctx.dir.join(format!("{tag}.log")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(s) = std::fs::read_to_string(&file) {
                if !s.trim().is_empty() {
                    return Ok(Cluster { proc, bootstrap: s.trim().to_owned() });
                }
            }
            if let Some(s) = proc.exited() {
                return Err(format!("dev cluster exited ({s}); log {}", proc.log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!("dev cluster did not start; log {}", proc.log.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's CPU seconds so far.
    fn cpu(&self) -> f64 {
        self.proc.cpu().unwrap_or(0.0)
    }
}

/// Runs `f` on a fresh dev cluster; when it fails, says whether the
/// cluster had exited meanwhile (someone else's signal, a crash).
fn on_cluster<T>(ctx: &Ctx, tag: &str, f: impl FnOnce(&Cluster) -> R<T>) -> R<T> {
    let mut cluster = Cluster::start(ctx, tag)?;
    f(&cluster).map_err(|e| match cluster.proc.exited() {
        Some(s) => format!("{e} [the dev cluster had exited meanwhile ({s}); log {}]", cluster.proc.log.display()),
        None => e,
    })
}

/// An `andon run` process logging JSON at info, and its HTTP address once
/// its log names it.
struct Andon {
    proc: Proc,
    addr: Option<String>,
}

impl Andon {
    /// Writes `{tag}.toml` (`exactly_once`, [`SESSION`], HTTP on a free
    /// port, rules `threshold` distinct customers in 1 h; `processing` and
    /// `properties` lines added to their sections) and starts
    /// `andon --log-format json run` with it.
    fn start(
        ctx: &Ctx,
        tag: &str,
        bootstrap: &str,
        group: &str,
        processing: &str,
        properties: &str,
        threshold: u32,
    ) -> R<Andon> {
        let config = ctx.dir.join(format!("{tag}.toml"));
        let session: String = SESSION.iter().map(|(k, v)| format!("\"{k}\" = \"{v}\"\n")).collect();
        let text = format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\ngroup_id = \"{group}\"\n[kafka.properties]\n{session}{properties}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [processing]\nguarantee = \"exactly_once\"\n{processing}\n\
             [rules.default]\nthreshold = {threshold}\nwindow = \"1h\"\n"
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let mut cmd = Command::new(&ctx.andon);
        cmd.args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", std::env::var("ANDON_BENCH_LOG").unwrap_or_else(|_| "info".into()));
        let proc = Proc::spawn(&format!("andon {tag}"), cmd, &ctx.dir.join(format!("{tag}.log")))?;
        Ok(Andon { proc, addr: None })
    }

    /// Its `/metrics`, once its log names the address it serves.
    fn metrics(&mut self) -> Option<String> {
        if self.addr.is_none() {
            self.addr = json_log(&self.proc.log).iter().find_map(|v| {
                log_message(v).starts_with("serving /metrics").then(|| v["addr"].as_str().map(str::to_owned))?
            });
        }
        let (status, body) = http_get(self.addr.as_deref()?, "/metrics")?;
        (status == 200).then_some(body)
    }

    /// Fails if it has exited.
    fn alive(&mut self) -> R<()> {
        match self.proc.exited() {
            Some(s) => Err(format!("{} exited ({s}); log {}", self.proc.name, self.proc.log.display())),
            None => Ok(()),
        }
    }
}

/// andon's progress at one moment: complaints processed and committed
/// (the sum of `andon_complaints_total`), its CPU seconds and the
/// broker's.
#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    count: f64,
    cpu: f64,
    broker: f64,
}

/// Polls andon every 25 ms until it has processed `n` complaints: the
/// first sample that showed any (its first committed batch) and the first
/// that showed `n`.
fn wait_processed(a: &mut Andon, cluster: &Cluster, n: usize, timeout: Duration) -> R<(Sample, Sample)> {
    let deadline = Instant::now() + timeout;
    let mut first = None;
    let mut count = 0.0;
    loop {
        a.alive()?;
        if let Some(text) = a.metrics() {
            count = metric_sum(&text, "andon_complaints_total").unwrap_or(0.0);
            let s = Sample { t: now(), count, cpu: a.proc.cpu().unwrap_or(0.0), broker: cluster.cpu() };
            if count > 0.0 && first.is_none() {
                first = Some(s);
            }
            if count >= n as f64 {
                return Ok((first.unwrap_or(s), s));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: {count} of {n} complaints processed after {timeout:?} (log {})",
                a.proc.name,
                a.proc.log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// What an andon log says about its restores.
#[derive(Default)]
struct Restores {
    /// Unix time of the first "partitions assigned" line.
    assigned: Option<f64>,
    /// Unix time of the last "partition restored" line.
    last: Option<f64>,
    partitions: usize,
    /// Restore jobs (partitions restored together: same start, that is
    /// time minus `elapsed_ms`), and the sum of their durations (each
    /// job's longest `elapsed_ms`).
    jobs: usize,
    seconds: f64,
    records: u64,
    /// `changelog_bytes` summed; None when the lines lack the field.
    bytes: Option<u64>,
}

impl Restores {
    fn of(log: &[Value]) -> Restores {
        let mut r = Restores {
            assigned: log.iter().find(|v| log_message(v).starts_with("partitions assigned")).and_then(log_time),
            ..Restores::default()
        };
        let mut jobs: Vec<(f64, f64)> = Vec::new(); // (start, longest elapsed)
        for v in log.iter().filter(|v| log_message(v) == "partition restored") {
            let elapsed = v["elapsed_ms"].as_f64().unwrap_or(0.0) / 1e3;
            let t = log_time(v).unwrap_or(0.0);
            r.partitions += 1;
            r.last = Some(t);
            r.records += v["changelog_records"].as_u64().unwrap_or(0);
            if let Some(b) = v["changelog_bytes"].as_u64() {
                r.bytes = Some(r.bytes.unwrap_or(0) + b);
            }
            match jobs.iter_mut().find(|(start, _)| (start - (t - elapsed)).abs() < 0.02) {
                Some(job) => job.1 = job.1.max(elapsed),
                None => jobs.push((t - elapsed, elapsed)),
            }
        }
        r.jobs = jobs.len();
        r.seconds = jobs.iter().map(|(_, e)| e).sum();
        r
    }
}

/// Session settings of every group member here, andon and the plain
/// consumers alike. When the last member of a group leaves, the
/// MockCluster keeps the group joining for `session.timeout.ms` - 1 s
/// (44 s by default), and a member joining meanwhile waits for the rest
/// of it; then the group is empty, and a member joining it waits
/// `group.initial.rebalance.delay.ms` (3 s). A real broker empties the
/// group at once. So the session is 4 s here, and the failover starts the
/// new member 3.5 s after the old one left (`Sizes::settle`, both sides
/// alike): it finds the group empty and waits 3 s from its own join, as it
/// would on a real broker.
const SESSION: [(&str, &str); 2] = [("session.timeout.ms", "4000"), ("heartbeat.interval.ms", "1000")];

/// The plain consumers' settings: those of andon's group consumer
/// (cooperative-sticky, read_committed, from the earliest offset, no
/// auto-commit, [`SESSION`]), nothing else.
fn plain_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in SESSION {
        c.set(k, v);
    }
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false");
    c
}

/// Hidden mode `--plain-consumer BOOTSTRAP TOPIC GROUP N [commit]`:
/// subscribes, reads N records, prints `REPORT {first, done, cpu_first,
/// cpu_done}` (Unix times; its own CPU seconds, /proc/self/stat), commits
/// its positions if asked, and leaves the group.
fn plain_consumer(args: &[String]) -> R<()> {
    let [bootstrap, topic, group, n, rest @ ..] = args else {
        return Err("usage: --plain-consumer BOOTSTRAP TOPIC GROUP N [commit]".into());
    };
    let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
    let c: BaseConsumer = plain_config(bootstrap, group).create().map_err(|e| e.to_string())?;
    c.subscribe(&[topic.as_str()]).map_err(|e| e.to_string())?;
    let (mut seen, mut first) = (0, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < n {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                black_box(m.payload());
                seen += 1;
                first.get_or_insert_with(|| (now(), cpu_secs("self").unwrap_or(0.0)));
            }
            Some(Err(e)) => eprintln!("plain consumer: {e}"),
            None if Instant::now() > deadline => return Err(format!("stalled at {seen} of {n}")),
            None => {}
        }
    }
    let (done, cpu_done) = (now(), cpu_secs("self").unwrap_or(0.0));
    let (first, cpu_first) = first.unwrap_or((done, cpu_done));
    if rest.first().is_some_and(|a| a == "commit") {
        c.commit_consumer_state(CommitMode::Sync).map_err(|e| format!("commit: {e}"))?;
    }
    println!(
        "REPORT {}",
        serde_json::json!({"first": first, "done": done, "cpu_first": cpu_first, "cpu_done": cpu_done})
    );
    Ok(())
}

/// Hidden mode `--takeover BOOTSTRAP TOPIC GROUP KEY`: subscribes and
/// waits for a record keyed KEY; prints `REPORT {assigned, seen, before}`
/// (Unix times of its first assignment and of the record; records read
/// before it).
fn takeover(args: &[String]) -> R<()> {
    let [bootstrap, topic, group, key] = args else {
        return Err("usage: --takeover BOOTSTRAP TOPIC GROUP KEY".into());
    };
    let c: BaseConsumer = plain_config(bootstrap, group).create().map_err(|e| e.to_string())?;
    c.subscribe(&[topic.as_str()]).map_err(|e| e.to_string())?;
    let (mut assigned, mut before) = (None, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let polled = c.poll(Duration::from_millis(5));
        if assigned.is_none() && c.assignment().is_ok_and(|a| a.count() > 0) {
            assigned = Some(now());
        }
        match polled {
            Some(Ok(m)) if m.key() == Some(key.as_bytes()) => {
                let seen = now();
                println!("REPORT {}", serde_json::json!({"assigned": assigned, "seen": seen, "before": before}));
                return Ok(());
            }
            Some(Ok(_)) => before += 1,
            Some(Err(e)) => eprintln!("takeover consumer: {e}"),
            None if Instant::now() > deadline => return Err(format!("no record keyed {key} ({before} others)")),
            None => {}
        }
    }
}

/// Sleeps until `d` after `since`.
fn settle(since: Instant, d: Duration) {
    std::thread::sleep(d.saturating_sub(since.elapsed()));
}

/// Runs this binary in a hidden mode as process `tag` and waits for its
/// `REPORT` line.
fn run_child(ctx: &Ctx, tag: &str, args: &[&str], before_wait: impl FnOnce() -> R<()>) -> R<(Proc, Value)> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let mut proc = Proc::spawn(tag, cmd, &ctx.dir.join(format!("{tag}.log")))?;
    before_wait()?;
    let status = proc.wait(ctx.sizes.timeout)?;
    let text = std::fs::read_to_string(&proc.log).unwrap_or_default();
    let report = text.lines().find_map(|l| l.strip_prefix("REPORT ")).and_then(|l| serde_json::from_str(l).ok());
    match report {
        Some(r) if status.success() => Ok((proc, r)),
        _ => Err(format!("{tag} failed ({status}); log {}", proc.log.display())),
    }
}

// ---------------------------------------------------------------------------
// Input

/// A complaint as a Kafka record: keyed by its subject key, timestamped
/// with its `occurred_at`.
struct Rec {
    key: String,
    value: String,
    ts_ms: i64,
}

/// A complaint about SKU `sku` by `customer` at `at_us` (µs since the
/// epoch).
fn complaint(id: &str, sku: &str, customer: &str, at_us: i64) -> Rec {
    let at = DateTime::from_timestamp_micros(at_us).unwrap_or_default();
    let value = format!(
        r#"{{"event_id":"{id}","occurred_at":"{}","subject":{{"kind":"sku","id":"{sku}"}},"issue":"damaged_in_transit","customer_id":"{customer}","channel":"phone"}}"#,
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    Rec { key: format!("sku:{sku}"), value, ts_ms: at_us.div_euclid(1000) }
}

/// The throughput input, as scripts/bench-peers writes it: `n` complaints
/// over `skus` SKUs, up to four customers each, 50 ms apart, ending now.
fn throughput_input(n: usize, skus: u64) -> Vec<Rec> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    let start = now_micros() - n as i64 * 50_000;
    (0..n)
        .map(|i| {
            let sku = next(skus);
            let customer = format!("cust-{sku}-{}", next(4));
            complaint(&format!("ev-{i}"), &format!("B{sku:06}"), &customer, start + i as i64 * 50_000)
        })
        .collect()
}

/// `n` complaints, each on a subject of its own, 10 ms apart, ending now.
fn one_per_subject(n: usize) -> Vec<Rec> {
    let start = now_micros() - n as i64 * 10_000;
    (0..n)
        .map(|i| complaint(&format!("f-{i}"), &format!("F{i:07}"), &format!("cust-{i}"), start + i as i64 * 10_000))
        .collect()
}

/// A producer as andon's producers must be configured: the Java client's
/// partitioner (murmur2), so that keys land where andon expects them.
fn producer(bootstrap: &str, linger_ms: u32) -> R<BaseProducer> {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", linger_ms.to_string())
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    // Connected and with metadata before anything is timed.
    p.client().fetch_metadata(None, Duration::from_secs(10)).map_err(|e| format!("metadata: {e}"))?;
    Ok(p)
}

/// Queues one record, waiting while the producer's queue is full.
fn send(p: &BaseProducer, topic: &str, r: &Rec) -> R<()> {
    let mut rec = BaseRecord::to(topic).key(r.key.as_str()).payload(r.value.as_str()).timestamp(r.ts_ms);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                p.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(format!("produce: {e}")),
        }
    }
}

/// Sends `recs` and waits until all are acknowledged.
fn produce_all(p: &BaseProducer, topic: &str, recs: &[Rec]) -> R<()> {
    for r in recs {
        send(p, topic, r)?;
    }
    p.flush(Duration::from_secs(60)).map_err(|e| format!("flush: {e}"))
}

/// A read_committed consumer of `topic`, assigned every partition at its
/// end as of now, fetching with a 5 ms wait.
struct Reader(BaseConsumer);

impl Reader {
    fn at_end(bootstrap: &str, topic: &str, partitions: i32) -> R<Reader> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "bench-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "5")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|e| format!("reader: {e}"))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) =
                c.fetch_watermarks(topic, p, Duration::from_secs(10)).map_err(|e| format!("watermarks: {e}"))?;
            tpl.add_partition_offset(topic, p, Offset::Offset(high)).map_err(|e| e.to_string())?;
        }
        c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
        Ok(Reader(c))
    }

    /// The next record within `wait`: the Unix time it was seen, its
    /// partition, its value as JSON.
    fn next(&self, wait: Duration) -> Option<(f64, i32, Value)> {
        match self.0.poll(wait)? {
            Ok(m) => {
                let v = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null);
                Some((now(), m.partition(), v))
            }
            Err(_) => None,
        }
    }
}

/// Records and bytes (keys and values) now in `topic`, read whole.
fn topic_size(bootstrap: &str, topic: &str, partitions: i32) -> R<(u64, u64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-size")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(|e| format!("size reader: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    let mut left = 0i64;
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        ends.push(high);
        if high > low {
            left += 1;
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| e.to_string())?;
        }
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while left > 0 {
        if Instant::now() > deadline {
            return Err(format!("reading {topic} timed out"));
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            records += 1;
            bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
            if m.offset() + 1 >= ends[m.partition() as usize] {
                left -= 1;
            }
        }
    }
    Ok((records, bytes))
}

// ---------------------------------------------------------------------------
// 1.-2. Throughput, process start to all processed

/// One contender's run, from its process start until all processed.
struct Run {
    n: f64,
    /// Seconds from start to all processed, and CPU seconds meanwhile.
    wall: f64,
    cpu: f64,
    /// Seconds from start to its first record (plain) or first committed
    /// batch (andon).
    first: f64,
    /// From then to the end: records, seconds, CPU seconds.
    steady_n: f64,
    steady_wall: f64,
    steady_cpu: f64,
    /// The broker's CPU seconds over the run.
    broker: f64,
    /// andon: seconds from start to its first assignment and to its last
    /// restore (from its log).
    joined: Option<f64>,
    restored: Option<f64>,
    /// Something worth knowing (an unclean exit).
    note: String,
}

impl Run {
    fn eps(&self) -> f64 {
        self.n / self.wall
    }
    fn cpu_us(&self) -> f64 {
        self.cpu / self.n * 1e6
    }
    fn steady_eps(&self) -> f64 {
        self.steady_n / self.steady_wall.max(1e-9)
    }
    fn steady_us(&self) -> f64 {
        self.steady_cpu / self.steady_n.max(1.0) * 1e6
    }
}

/// The plain consumer (a process, a fresh group) over `n` records.
fn run_plain(ctx: &Ctx, cluster: &Cluster, tag: &str, n: usize) -> R<Run> {
    let b0 = cluster.cpu();
    let group = format!("bench-{tag}");
    let args = ["--plain-consumer", &cluster.bootstrap, &ctx.topics.complaints, &group, &n.to_string()];
    let (proc, r) = run_child(ctx, tag, &args, || Ok(()))?;
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    Ok(Run {
        n: n as f64,
        wall: f("done") - proc.started,
        cpu: f("cpu_done"),
        first: f("first") - proc.started,
        steady_n: n as f64 - 1.0,
        steady_wall: f("done") - f("first"),
        steady_cpu: f("cpu_done") - f("cpu_first"),
        broker: cluster.cpu() - b0,
        joined: None,
        restored: None,
        note: String::new(),
    })
}

/// `andon run` (a process, a fresh group) until it has processed `n`.
fn run_andon(ctx: &Ctx, cluster: &Cluster, tag: &str, threads: Option<usize>, n: usize) -> R<Run> {
    let processing = threads.map(|t| format!("threads = {t}")).unwrap_or_default();
    let b0 = cluster.cpu();
    let mut a = Andon::start(ctx, tag, &cluster.bootstrap, &format!("bench-{tag}"), &processing, "", 3)?;
    let (first, done) = wait_processed(&mut a, cluster, n, ctx.sizes.timeout)?;
    let (status, took) = a.proc.stop(Duration::from_secs(30));
    let note = match status {
        Some(s) if s.success() => String::new(),
        Some(s) => format!("exited {s} when stopped"),
        None => format!("killed: not stopped {took:.0} s after SIGTERM"),
    };
    let r = Restores::of(&json_log(&a.proc.log));
    let started = a.proc.started;
    Ok(Run {
        n: n as f64,
        wall: done.t - started,
        cpu: done.cpu,
        first: first.t - started,
        steady_n: done.count - first.count,
        steady_wall: done.t - first.t,
        steady_cpu: done.cpu - first.cpu,
        broker: done.broker - b0,
        joined: r.assigned.map(|t| t - started),
        restored: r.last.map(|t| t - started),
        note,
    })
}

/// A plain consumer and an andon run, one after the other, on a fresh
/// dev cluster holding `input`.
struct Trial {
    threads: Option<usize>,
    plain: Run,
    andon: Run,
}

fn trial(ctx: &Ctx, input: &[Rec], threads: Option<usize>) -> R<Trial> {
    let tag = threads.map_or("default".to_owned(), |t| format!("threads{t}"));
    on_cluster(ctx, &format!("cluster-throughput-{tag}"), |cluster| {
        produce_all(&producer(&cluster.bootstrap, 20)?, &ctx.topics.complaints, input)?;
        let plain = run_plain(ctx, cluster, &format!("plain-{tag}"), input.len())?;
        let andon = run_andon(ctx, cluster, &format!("andon-{tag}"), threads, input.len())?;
        Ok(Trial { threads, plain, andon })
    })
}

// ---------------------------------------------------------------------------
// 3. Replay on the same input

/// Replay's CPU µs per complaint (this thread, best of three) and its
/// complaints/s, over `input` as JSON lines with the throughput rules.
fn replay_cost(input: &[Rec]) -> R<(f64, f64)> {
    let settings =
        Settings::from_toml("[rules.default]\nthreshold = 3\nwindow = \"1h\"\n").map_err(|e| e.to_string())?;
    let lines = input.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join("\n");
    let n = input.len() as f64;
    let mut best = (f64::MAX, 0.0);
    for _ in 0..3 {
        let (cpu, t) = (thread_cpu_secs(), Instant::now());
        let complaints = andon::replay::Input { name: "complaints".into(), reader: lines.as_bytes() };
        let summary = andon::replay::replay(
            &settings,
            complaints,
            None::<andon::replay::Input<&[u8]>>,
            std::io::sink(),
            &mut |_| {},
        )
        .map_err(|e| format!("replay: {e}"))?;
        let (cpu, wall) = (thread_cpu_secs() - cpu, t.elapsed().as_secs_f64());
        if summary.complaints_read != input.len() as u64 {
            return Err(format!("replay read {} of {n}", summary.complaints_read));
        }
        if cpu < best.0 {
            best = (cpu, wall);
        }
    }
    Ok((best.0 / n * 1e6, n / best.1))
}

// ---------------------------------------------------------------------------
// 4. Failover

struct Failover {
    keys: usize,
    /// Plain consumer P2, seconds from its start: assigned, marker seen.
    plain_assigned: Option<f64>,
    plain_seen: f64,
    /// andon B, seconds from its start: assigned, last restore, delist seen.
    andon_assigned: Option<f64>,
    andon_restored: Option<f64>,
    andon_seen: f64,
    /// Seconds A took to stop after SIGTERM.
    a_stop: f64,
    restores: Restores,
    /// `andon_restore_seconds` of B: sum and count.
    restore_metric: Option<(f64, f64)>,
    /// The state topic, read whole after A stopped.
    state_records: u64,
    state_bytes: u64,
}

fn failover(ctx: &Ctx, cluster: &Cluster) -> R<Failover> {
    let (keys, t) = (ctx.sizes.failover_keys, &ctx.topics);
    let p = producer(&cluster.bootstrap, 5)?;
    produce_all(&p, &t.complaints, &one_per_subject(keys))?;

    // The plain consumer: P1 reads everything, commits, leaves; P2 takes
    // over and waits for a record produced right after it started.
    let (group, marker) = ("bench-failover-plain", "sku:MARKER");
    run_child(
        ctx,
        "failover-plain-p1",
        &["--plain-consumer", &cluster.bootstrap, &t.complaints, group, &keys.to_string(), "commit"],
        || Ok(()),
    )?;
    settle(Instant::now(), ctx.sizes.settle);
    let (p2, r) =
        run_child(ctx, "failover-plain-p2", &["--takeover", &cluster.bootstrap, &t.complaints, group, marker], || {
            produce_all(&p, &t.complaints, &[complaint("marker", "MARKER", "cust-m", now_micros())])
        })?;
    let plain_seen = r["seen"].as_f64().unwrap_or(0.0) - p2.started;
    let plain_assigned = r["assigned"].as_f64().map(|a| a - p2.started);

    // andon: A processes everything (the marker too), stops; B takes over.
    let group = "bench-failover-andon";
    let mut a = Andon::start(ctx, "failover-andon-a", &cluster.bootstrap, group, "", "", 2)?;
    wait_processed(&mut a, cluster, keys + 1, ctx.sizes.timeout)?;
    let (status, a_stop) = a.proc.stop(Duration::from_secs(30));
    let a_left = Instant::now();
    if !status.is_some_and(|s| s.success()) {
        return Err(format!("andon A did not stop cleanly ({status:?}); log {}", a.proc.log.display()));
    }
    let (state_records, state_bytes) = topic_size(&cluster.bootstrap, &t.state, ctx.sizes.partitions)?;
    let reader = Reader::at_end(&cluster.bootstrap, &t.delist_commands, ctx.sizes.partitions)?;
    settle(a_left, ctx.sizes.settle);
    let mut b = Andon::start(ctx, "failover-andon-b", &cluster.bootstrap, group, "", "", 2)?;
    let fresh = now_micros();
    produce_all(
        &p,
        &t.complaints,
        &[complaint("fresh-1", "FRESH", "cust-x", fresh), complaint("fresh-2", "FRESH", "cust-y", fresh + 1)],
    )?;
    let deadline = Instant::now() + ctx.sizes.timeout;
    let seen = loop {
        b.alive()?;
        if let Some((seen, _, v)) = reader.next(Duration::from_millis(50)) {
            if v["subject"]["id"] == "FRESH" && v["action"] == "delist" {
                break seen;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "andon B delisted no fresh pair within {:?}; log {}",
                ctx.sizes.timeout,
                b.proc.log.display()
            ));
        }
    };
    // The restores are over when the delist is out; /metrics is read once.
    let restore_metric = b.metrics().and_then(|text| {
        Some((metric_sum(&text, "andon_restore_seconds_sum")?, metric_sum(&text, "andon_restore_seconds_count")?))
    });
    b.proc.stop(Duration::from_secs(30));
    let restores = Restores::of(&json_log(&b.proc.log));
    let started = b.proc.started;
    Ok(Failover {
        keys,
        plain_assigned,
        plain_seen,
        andon_assigned: restores.assigned.map(|x| x - started),
        andon_restored: restores.last.map(|x| x - started),
        andon_seen: seen - started,
        a_stop,
        restores,
        restore_metric,
        state_records,
        state_bytes,
    })
}

// ---------------------------------------------------------------------------
// 5. Decision latency

struct Latency {
    rate: u64,
    /// Complaints sent after the warm-up, and the seconds it took.
    sent: usize,
    send_secs: f64,
    /// Delists expected (one per pair after the warm-up), and for each
    /// one seen: when its pair was due (seconds into the measured run)
    /// and its latency.
    expected: usize,
    latencies: Vec<(f64, f64)>,
    commit_interval: f64,
    /// andon's CPU seconds and the wall seconds from the first complaint
    /// (warm-up included) to the last delist read.
    cpu: f64,
    wall: f64,
    /// andon's own `andon_decision_latency_seconds` and
    /// `andon_transaction_seconds` (a batch's write): p50, p99 each.
    own: Option<(f64, f64)>,
    transaction: Option<(f64, f64)>,
}

impl Latency {
    /// p50, p99 and max in seconds (nearest rank) of the delists whose
    /// pairs were due within the first `secs` seconds of the measured run.
    fn quantiles(&self, secs: f64) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self.latencies.iter().filter(|(due, _)| *due < secs).map(|(_, l)| *l).collect();
        v.sort_by(f64::total_cmp);
        let q = |q: f64| match v.len() {
            0 => f64::NAN,
            n => v[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
        };
        (q(0.5), q(0.99), q(1.0))
    }
}

/// andon's consumers in the latency run: a fetch that finds nothing is
/// answered after 5 ms. A real broker answers a fetch as soon as records
/// arrive; the MockCluster only after `fetch.wait.max.ms` (500 ms by
/// default), which at a steady rate makes every other fetch wait.
const LATENCY_FETCH: &str = "\"fetch.wait.max.ms\" = \"5\"";

/// Complaints per pulling pair in the latency run (the rest never pull).
const PULL_EVERY: usize = 10;

fn latency(ctx: &Ctx, cluster: &Cluster) -> R<Latency> {
    let (rate, secs, t) = (ctx.sizes.latency_rate, ctx.sizes.latency_secs, &ctx.topics);
    let mut a = Andon::start(ctx, "latency-andon", &cluster.bootstrap, "bench-latency", "", LATENCY_FETCH, 2)?;
    let commit_interval = Settings::from_toml("").map_err(|e| e.to_string())?.processing.commit_interval.as_secs_f64();
    // Ready: every partition restored and active (a lag gauge each).
    let deadline = Instant::now() + ctx.sizes.timeout;
    loop {
        a.alive()?;
        let ready = a.metrics().is_some_and(|m| {
            samples(&m, "andon_consumer_lag").len() == ctx.sizes.partitions as usize
                && metric_sum(&m, "andon_ready") == Some(1.0)
        });
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("andon not ready after {:?}; log {}", ctx.sizes.timeout, a.proc.log.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reader = Reader::at_end(&cluster.bootstrap, &t.delist_commands, ctx.sizes.partitions)?;
    let p = producer(&cluster.bootstrap, 1)?;
    let warmup = rate as usize; // one second, in complaints (whole blocks of PULL_EVERY)
    let total = warmup + (rate * secs) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let topic = t.complaints.clone();
    let stop2 = stop.clone();
    // Paced: complaint i goes out at i / rate seconds, occurred_at = the
    // moment it is sent. In every ten, a pair that pulls (two customers
    // about one subject, one after the other) and eight single complaints
    // about subjects of their own (counted, never pulling): a busy shop,
    // not one where every other complaint delists something.
    let (cpu0, wall0) = (a.proc.cpu().unwrap_or(0.0), Instant::now());
    let sender = std::thread::spawn(move || -> R<(usize, f64)> {
        let t0 = Instant::now();
        let mut i = 0;
        let mut measured_from = t0;
        while i < total && !stop2.load(Ordering::Relaxed) {
            let due = ((t0.elapsed().as_secs_f64() * rate as f64) as usize + 1).min(total);
            while i < due {
                if i == warmup {
                    measured_from = Instant::now();
                }
                let (sku, customer) = match i % PULL_EVERY {
                    0 => (format!("L{:08}", i / PULL_EVERY), "cust-a"),
                    1 => (format!("L{:08}", i / PULL_EVERY), "cust-b"),
                    _ => (format!("N{i:09}"), "cust-n"),
                };
                send(&p, &topic, &complaint(&format!("l-{i}"), &sku, customer, now_micros()))?;
                i += 1;
            }
            p.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
        }
        let took = measured_from.elapsed().as_secs_f64();
        p.flush(Duration::from_secs(30)).map_err(|e| format!("flush: {e}"))?;
        Ok((i.saturating_sub(warmup), took))
    });
    let expected = (total - warmup) / PULL_EVERY;
    let mut latencies = Vec::with_capacity(expected);
    // Every delist, for a look at when the slow ones happened.
    let mut csv = String::from("issued_at,seen,latency_ms,partition,pair\n");
    let mut deadline = None;
    let mut failure = None;
    while latencies.len() < expected {
        if let Err(e) = a.alive() {
            failure = Some(e);
            break;
        }
        if let Some((seen, partition, v)) = reader.next(Duration::from_millis(50)) {
            let pair = v["subject"]["id"].as_str().and_then(|s| s.strip_prefix('L')?.parse::<usize>().ok());
            let issued = v["issued_at"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            if let (Some(pair), Some(issued), true) = (pair, issued, v["action"] == "delist") {
                let issued = issued.timestamp_micros() as f64 / 1e6;
                csv.push_str(&format!("{issued:.6},{seen:.6},{:.1},{partition},{pair}\n", (seen - issued) * 1e3));
                if pair * PULL_EVERY >= warmup {
                    latencies.push(((pair * PULL_EVERY - warmup) as f64 / rate as f64, seen - issued));
                }
            }
        }
        if sender.is_finished() {
            let d = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
            if Instant::now() > d {
                break;
            }
        }
    }
    let (cpu, wall) = (a.proc.cpu().unwrap_or(0.0) - cpu0, wall0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    let (sent, send_secs) = sender.join().map_err(|_| "the sender panicked".to_owned())??;
    if let Some(e) = failure {
        return Err(e);
    }
    let metrics = a.metrics().unwrap_or_default();
    let quantiles =
        |name: &str| Some((histogram_quantile(&metrics, name, 0.5)?, histogram_quantile(&metrics, name, 0.99)?));
    let (own, transaction) = (quantiles("andon_decision_latency_seconds"), quantiles("andon_transaction_seconds"));
    let _ = std::fs::write(ctx.dir.join("latency.csv"), csv);
    Ok(Latency { rate, sent, send_secs, expected, latencies, commit_interval, cpu, wall, own, transaction })
}

// ---------------------------------------------------------------------------
// 7. In process

/// Reads every partition of `topic` to its end (assigned, no group):
/// records per second from the first record to the last.
fn raw_in_process(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> R<f64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut seen, mut first) = (0, None);
    while seen < n {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                black_box(&m);
                seen += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(format!("raw consumer: {e}")),
            None => return Err(format!("raw consumer stalled at {seen} of {n}")),
        }
    }
    Ok((n - 1) as f64 / first.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9))
}

/// `andon::kafka::run` in this process over the topic to its end:
/// records per second in steady state, from the first committed batch on
/// (the sum of `andon_complaints_total`, read from its registry).
fn andon_in_process(bootstrap: &str, n: usize, timeout: Duration) -> R<f64> {
    let settings = Settings::from_toml(&format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\ngroup_id = \"bench-in-process\"\n[processing]\nguarantee = \"exactly_once\"\n\
         [rules.default]\nthreshold = 3\nwindow = \"1h\"\n"
    ))
    .map_err(|e| e.to_string())?;
    let registry = prometheus::Registry::new();
    let metrics = andon::ops::metrics::Metrics::new(&registry, &settings.engine).map_err(|e| e.to_string())?;
    let status = Arc::new(andon::kafka::Status::default());
    *status.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(metrics);
    let processed = || {
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap_or_default();
        metric_sum(&text, "andon_complaints_total").unwrap_or(0.0)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (s, flag) = (status.clone(), stop.clone());
    let h = std::thread::spawn(move || andon::kafka::run(Arc::new(settings), s, &flag).map_err(|e| e.to_string()));
    let deadline = Instant::now() + timeout;
    let mut first: Option<(Instant, f64)> = None;
    let result = loop {
        let done = processed();
        if first.is_none() && done > 0.0 {
            first = Some((Instant::now(), done));
        }
        if done >= n as f64 {
            let (t0, at_t0) = first.unwrap_or((Instant::now(), 0.0));
            break Ok((done - at_t0) / t0.elapsed().as_secs_f64().max(1e-9));
        }
        if Instant::now() > deadline || h.is_finished() {
            break Err(format!("andon in process: {done} of {n} processed"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    stop.store(true, Ordering::SeqCst);
    h.join().map_err(|_| "andon in process panicked".to_owned())??;
    result
}

fn in_process(ctx: &Ctx, input: &[Rec]) -> R<(f64, f64)> {
    let cluster = DevCluster::start(ctx.sizes.partitions, &ctx.topics).map_err(|e| e.to_string())?;
    let bootstrap = cluster.bootstrap_servers();
    produce_all(&producer(&bootstrap, 20)?, &ctx.topics.complaints, input)?;
    let raw = raw_in_process(&bootstrap, &ctx.topics.complaints, ctx.sizes.partitions, input.len())?;
    let andon = andon_in_process(&bootstrap, input.len(), ctx.sizes.timeout)?;
    Ok((raw, andon))
}

// ---------------------------------------------------------------------------
// The report

fn opt_s(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2} s"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One line per goal: what it asks, what was measured, whether it holds.
struct Goals(Vec<(String, String, Option<bool>)>);

impl Goals {
    fn add(&mut self, goal: &str, measured: String, met: Option<bool>) {
        self.0.push((goal.to_owned(), measured, met));
    }
}

fn run_row(name: &str, r: &Run) -> String {
    format!(
        "  {name:<30} {:>8.2} s {:>9.0} {:>8.2} {:>8} {:>8} {:>8.2} s {:>10.0} {:>8.2} {:>8.2}{}",
        r.wall,
        r.eps(),
        r.cpu_us(),
        opt_s(r.joined),
        opt_s(r.restored),
        r.first,
        r.steady_eps(),
        r.steady_us(),
        r.broker / r.n * 1e6,
        if r.note.is_empty() { String::new() } else { format!("  ({})", r.note) }
    )
}

fn run_header() -> String {
    format!(
        "  {:<30} {:>10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8}",
        "", "start→all", "events/s", "CPU µs", "joined", "restored", "1st batch", "steady/s", "st. µs", "broker µs"
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let hidden = |flag: &str| args.iter().position(|a| a == flag).map(|i| &args[i + 1..]);
    let child = |r: R<()>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    };
    if let Some(rest) = hidden("--plain-consumer") {
        return child(plain_consumer(rest));
    }
    if let Some(rest) = hidden("--takeover") {
        return child(takeover(rest));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,librdkafka=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let bench = args.iter().any(|a| a == "--bench");
    match run(bench) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench kafka: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A section left out by `ANDON_BENCH_SECTIONS`.
fn skipped<T>(only: &Option<String>) -> R<T> {
    Err(format!("skipped (ANDON_BENCH_SECTIONS={})", only.as_deref().unwrap_or_default()))
}

/// Runs every section and prints the report; false if a section failed.
fn run(bench: bool) -> R<bool> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("bench-kafka")
        .join(format!("{stamp}-{}", if bench { "bench" } else { "smoke" }));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let topics = Settings::from_toml("").map_err(|e| e.to_string())?.topics;
    let ctx = Ctx { sizes: Sizes::new(bench), andon: PathBuf::from(env!("CARGO_BIN_EXE_andon")), dir, topics };
    let sz = &ctx.sizes;
    let load_start = load_average();
    eprintln!("bench kafka: logs in {}", ctx.dir.display());
    let progress = |what: &str| eprintln!("bench kafka: {what} ...");

    let input = throughput_input(sz.complaints, sz.skus);
    let default_threads = Settings::from_toml("").map_err(|e| e.to_string())?.processing.effective_threads();
    // ANDON_BENCH_SECTIONS=4,5 runs only those (for working on one).
    let only = std::env::var("ANDON_BENCH_SECTIONS").ok();
    let wanted = |n: u32| only.as_deref().is_none_or(|s| s.split(',').any(|x| x.trim() == n.to_string()));
    let mut trials = Vec::new();
    if wanted(1) || wanted(3) {
        progress("1. throughput, default threads");
        trials.push(trial(&ctx, &input, None));
    }
    for t in [1, 2] {
        if t != default_threads && wanted(2) && ctx.sizes.extras {
            progress(&format!("2. throughput, threads = {t}"));
            trials.push(trial(&ctx, &input, Some(t)));
        }
    }
    let replay = if wanted(3) {
        progress("3. replay");
        replay_cost(&input)
    } else {
        skipped(&only)
    };
    let fail = if wanted(4) {
        progress("4. failover");
        on_cluster(&ctx, "cluster-failover", |c| failover(&ctx, c))
    } else {
        skipped(&only)
    };
    let lat = if wanted(5) {
        progress("5. decision latency");
        on_cluster(&ctx, "cluster-latency", |c| latency(&ctx, c))
    } else {
        skipped(&only)
    };
    let inproc = if !ctx.sizes.extras {
        Err("not run in the smoke run".to_owned())
    } else if wanted(7) {
        progress("7. in process");
        in_process(&ctx, &input)
    } else {
        skipped(&only)
    };

    // -- the report --
    let mut ok = true;
    let mut goals = Goals(Vec::new());
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("andon on Kafka (benches/kafka.rs){}", if bench { "" } else { ": SMOKE RUN, tiny sizes" }));
    line(format!(
        "machine: {} CPUs; load average {load_start} at the start, {} at the end",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    ));
    line(format!(
        "input: {} complaints, {} SKUs, up to 4 customers each, 50 ms apart ending now; {} partitions; exactly_once",
        sz.complaints, sz.skus, sz.partitions
    ));
    line(format!("logs and configurations: {}", ctx.dir.display()));
    line(String::new());
    line(
        "1. Throughput: each a fresh process and consumer group, timed from its start; a fresh dev cluster per trial"
            .into(),
    );
    line(run_header());
    let mut by_threads: Vec<(usize, f64, f64, f64)> = Vec::new(); // (threads, eps, steady eps, ratio to plain)
    for (i, t) in trials.iter().enumerate() {
        if i == 1 {
            line("2. Thread scaling: the same with processing.threads set".into());
        }
        match t {
            Ok(t) => {
                let threads = t.threads.unwrap_or(default_threads);
                let label = match t.threads {
                    None => format!("andon run, threads {threads} (default)"),
                    Some(n) => format!("andon run, threads = {n}"),
                };
                line(run_row(&format!("plain consumer (trial {})", i + 1), &t.plain));
                line(run_row(&label, &t.andon));
                let ratio = t.andon.eps() / t.plain.eps();
                line(format!(
                    "  andon/plain events/s {ratio:.2} (goal ≥ 0.80); andon's time to its first committed batch {:.2} s",
                    t.andon.first
                ));
                if t.threads.is_none() {
                    goals.add("start→all events/s, andon/plain ≥ 0.8", format!("{ratio:.2}"), Some(ratio >= 0.8));
                    goals.add(
                        "CPU per event in steady state ≤ 4 µs",
                        format!("{:.2} µs", t.andon.steady_us()),
                        Some(t.andon.steady_us() <= 4.0),
                    );
                }
                by_threads.push((threads, t.andon.eps(), t.andon.steady_eps(), ratio));
            }
            Err(e) => {
                ok &= e.starts_with("skipped");
                line(format!("  trial {} FAILED: {e}", i + 1));
            }
        }
    }
    let of = |n: usize| by_threads.iter().find(|b| b.0 == n);
    match (of(1), of(2)) {
        (Some(one), Some(two)) => {
            line(format!(
                "  threads 2 / threads 1: start→all events/s {:.2}, steady {:.2}, andon/plain ratio {:.2} against {:.2}",
                two.1 / one.1,
                two.2 / one.2,
                two.3,
                one.3
            ));
            goals.add("threads 1 → 2 scales (no number set)", format!("{:.2}× start→all", two.1 / one.1), None);
        }
        _ if !sz.extras => line("  threads 2 / threads 1: not run in the smoke run".into()),
        _ => line("  threads 2 / threads 1: not measured (a trial failed or was skipped)".into()),
    }
    line("  columns: start→all = process start to all processed (andon: /metrics shows N); CPU µs = the process's utime+stime".into());
    line("  per event over that time; joined/restored = from start to the first assignment and the last \"partition restored\"".into());
    line("  (log); 1st batch = first record (plain) or first committed batch on /metrics (andon); steady = from then to the end;".into());
    line("  broker µs = the dev cluster's CPU per event meanwhile".into());
    line(String::new());

    line(
        "3. CPU per event against replay (same complaints as JSON lines, in process, one thread, best of three)".into(),
    );
    let default_andon = trials.first().and_then(|t| t.as_ref().ok()).map(|t| t.andon.steady_us());
    match &replay {
        Ok((us, eps)) => {
            line(format!("  replay: {us:.2} µs CPU per event ({eps:.0} events/s)"));
            if let Some(a) = default_andon {
                line(format!(
                    "  andon in steady state: {a:.2} µs = {:.1}× replay (goal ≤ 2×; absolute goal ≤ 4 µs)",
                    a / us
                ));
                goals.add("steady CPU per event ≤ 2× replay's", format!("{:.1}×", a / us), Some(a / us <= 2.0));
            }
        }
        Err(e) => {
            ok &= e.starts_with("skipped");
            line(format!("  FAILED: {e}"));
        }
    }
    line(String::new());

    line("4. Failover: from the new member's process start, after the old one left the group".into());
    match &fail {
        Ok(f) => {
            line(format!(
                "  plain consumer P2: assigned at {}, record produced after its start received at {:.2} s",
                opt_s(f.plain_assigned),
                f.plain_seen
            ));
            line(format!(
                "  andon B ({} keys restored): assigned at {}, restored at {}, fresh pair delisted (visible) at {:.2} s",
                f.keys,
                opt_s(f.andon_assigned),
                opt_s(f.andon_restored),
                f.andon_seen
            ));
            let diff = f.andon_seen - f.plain_seen;
            line(format!(
                "  andon B - plain P2: {diff:.2} s (goal ≤ 1 s); A took {:.2} s to stop after SIGTERM",
                f.a_stop
            ));
            goals.add("failover: andon within 1 s of a plain consumer", format!("+{diff:.2} s"), Some(diff <= 1.0));
            let r = &f.restores;
            let mean = f.restore_metric.filter(|m| m.1 > 0.0).map(|(s, c)| s / c);
            line(format!(
                "  restores: {} partitions in {} job(s), {:.3} s (sum of jobs' longest elapsed_ms); andon_restore_seconds mean {}",
                r.partitions,
                r.jobs,
                r.seconds,
                mean.map_or("-".into(), |m| format!("{m:.3} s"))
            ));
            let mb = |b: u64| b as f64 / 1e6;
            line(format!(
                "  changelog: {} records read, {} by andon (changelog_bytes); andon.state holds {} records, {:.2} MB",
                r.records,
                r.bytes.map_or("bytes not logged".into(), |b| format!("{:.2} MB", mb(b))),
                f.state_records,
                mb(f.state_bytes)
            ));
            let (bytes, what) = match r.bytes {
                Some(b) => (b, "read by andon"),
                None => (f.state_bytes, "in andon.state (andon's log has no changelog_bytes)"),
            };
            let rate = mb(bytes) / r.seconds.max(1e-9);
            line(format!("  restore rate: {rate:.1} MB/s of changelog {what} (goal ≥ 50 MB/s)"));
            goals.add("restore ≥ 50 MB/s of changelog", format!("{rate:.1} MB/s"), Some(rate >= 50.0));
        }
        Err(e) => {
            ok &= e.starts_with("skipped");
            line(format!("  FAILED: {e}"));
        }
    }
    line(String::new());

    line("5. Decision latency: one pulling pair in every ten complaints at a steady rate, delist commands read as they appear (time seen - issued_at)".into());
    match &lat {
        Ok(l) => {
            let ms = |s: f64| s * 1e3;
            line(format!(
                "  {} complaints/s asked, {:.0} sent ({} in {:.1} s after a 1 s warm-up); {} of {} delists seen",
                l.rate,
                l.sent as f64 / l.send_secs.max(1e-9),
                l.sent,
                l.send_secs,
                l.latencies.len(),
                l.expected
            ));
            let goal = l.commit_interval + 0.05;
            let secs = sz.latency_secs as f64;
            let (p50, p99, max) = l.quantiles(secs);
            let (h50, h99, hmax) = l.quantiles(secs / 2.0);
            line(format!(
                "  latency over all {secs} s: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; over the first {} s: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                ms(p50),
                ms(p99),
                ms(max),
                secs / 2.0,
                ms(h50),
                ms(h99),
                ms(hmax)
            ));
            line(format!(
                "  goal p99 ≤ commit_interval + 50 ms = {:.0} ms; andon's CPU meanwhile {:.1} µs per complaint, {:.0} % of one core",
                ms(goal),
                l.cpu / (l.sent as f64 + sz.latency_rate as f64) * 1e6,
                l.cpu / l.wall.max(1e-9) * 100.0
            ));
            if let (Some((o50, o99)), Some((t50, t99))) = (l.own, l.transaction) {
                line(format!(
                    "  andon's own histograms (warm-up included, interpolated in buckets): andon_decision_latency_seconds p50 {:.0} ms,",
                    ms(o50),
                ));
                line(format!(
                    "  p99 {:.0} ms; andon_transaction_seconds (a batch's write) p50 {:.0} ms, p99 {:.0} ms; every delist in latency.csv",
                    ms(o99),
                    ms(t50),
                    ms(t99)
                ));
            }
            let all = l.latencies.len() == l.expected;
            goals.add(
                "decision latency p99 ≤ commit_interval + 50 ms",
                format!("{:.0} ms{}", ms(p99), if all { "" } else { " (delists missing)" }),
                Some(p99 <= goal && all),
            );
        }
        Err(e) => {
            ok &= e.starts_with("skipped");
            line(format!("  FAILED: {e}"));
        }
    }
    line(String::new());
    line(
        "6. Memory per key: `cargo bench --bench replay` (\"state per active key, 1 complaint\"; goal ≤ 300 bytes)"
            .into(),
    );
    line(String::new());
    line("7. In process (MockCluster and andon::kafka::run in this process; steady state, start-up excluded)".into());
    match &inproc {
        Ok((raw, andon)) => line(format!(
            "  raw consumption (assigned) {raw:.0} events/s; andon exactly_once {andon:.0} events/s; ratio {:.3}",
            andon / raw
        )),
        Err(e) if !sz.extras => line(format!("  {e}")),
        Err(e) => {
            ok &= e.starts_with("skipped");
            line(format!("  FAILED: {e}"));
        }
    }
    line(String::new());
    line("Goals".into());
    for (goal, measured, met) in &goals.0 {
        let met = match met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "",
        };
        line(format!("  {goal:<50} {measured:>14}   {met}"));
    }
    if !bench {
        line("(smoke run; `cargo bench --bench kafka` for the real sizes)".into());
    }
    print!("{out}");
    let _ = std::fs::write(ctx.dir.join("results.txt"), &out);
    eprintln!("bench kafka: logs and results.txt in {}", ctx.dir.display());
    Ok(ok)
}
