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
//!    (`/proc/PID/stat`, in 10 ms ticks). "At work" is from the first
//!    record (plain) or from the last /metrics sample (polled every 25 ms)
//!    before andon's first assignment (its log) to the end: start-up and
//!    the group join are left out, every cost of processing the N records
//!    is in (see `throughput::Run`). Each andon run gets a dev cluster of its own (a second run on
//!    the same topics would restore the first one's state), and a plain
//!    consumer runs on it first, so every andon/plain ratio is taken on
//!    one cluster.
//! 2. **Thread scaling.** The same with `processing.threads` = 1 and 2;
//!    the default run stands for its effective thread count.
//! 3. **Replay's CPU per event** on the same complaints as JSON lines
//!    (`andon::replay::replay` in this process, one thread, best of
//!    three), against andon's at work.
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
//!   3.5 s after the old one left, on both sides ([`cluster::SESSION`]);
//! - it answers a fetch that finds nothing after `fetch.wait.max.ms`
//!   even when records arrive meanwhile (a real broker answers when they
//!   arrive): the bench's own readers ask for 5 ms, and so does andon in
//!   the latency run ([`latency::LATENCY_FETCH`]); elsewhere andon uses its own
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
//!
//! One job a file. The sections: `throughput.rs` (1, 2: andon against a
//! plain consumer, each thread count), `replay_cost.rs` (3: CPU per event
//! in replay), `failover.rs` (4, with the restores), `latency.rs` (5),
//! `in_process.rs` (7), `report.rs` (the printed table and its goals).
//! What they share: `cluster.rs` (the dev cluster process, the group
//! session settings), `andon_run.rs` (an `andon run` process, polled until it
//! has processed N), `plain.rs` (this binary's hidden plain-consumer
//! modes), `traffic.rs` (the complaints and producing them), `readers.rs`
//! (reading output and state topics), `observe.rs` (andon's /metrics and
//! JSON log), `procs.rs` (child processes, CPU from /proc, the clock).

mod andon_run;
mod cluster;
mod failover;
mod in_process;
mod latency;
mod observe;
mod plain;
mod procs;
mod readers;
mod replay_cost;
mod report;
mod throughput;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use andon::config::{Settings, Topics};

use crate::cluster::on_cluster;
use crate::failover::failover;
use crate::in_process::in_process;
use crate::latency::latency;
use crate::plain::{plain_consumer, takeover};
use crate::replay_cost::replay_cost;
use crate::report::{load_average, report, Results};
use crate::throughput::trial;
use crate::traffic::throughput_input;

/// The allocator of the andon binary (src/main.rs): replay's cost, measured
/// in this process, is then that of the engine as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// (see [`cluster::SESSION`]).
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

    let results = Results { trials, default_threads, replay, fail, lat, inproc, load_start };
    let (out, ok) = report(&ctx, bench, results);
    print!("{out}");
    let _ = std::fs::write(ctx.dir.join("results.txt"), &out);
    eprintln!("bench kafka: logs and results.txt in {}", ctx.dir.display());
    Ok(ok)
}
