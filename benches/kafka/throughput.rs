//! Sections 1 and 2, throughput: on a fresh dev cluster, a plain consumer
//! then `andon run` over the same complaints, each a fresh process and
//! group, from process start until all are processed ([`Run`]); a
//! [`Trial`] per thread count.

use std::time::Duration;

use crate::andon_run::{wait_processed, Andon, Sample};
use crate::cluster::{on_cluster, Cluster};
use crate::observe::{json_log, Restores};
use crate::plain::run_child;
use crate::traffic::{produce_all, producer, Rec};
use crate::{Ctx, R};

/// One contender's run, from its process start until all processed.
pub struct Run {
    pub n: f64,
    /// Seconds from start to all processed, and CPU seconds meanwhile.
    pub wall: f64,
    pub cpu: f64,
    /// Seconds from start to its first record (plain) or first committed
    /// batch (andon).
    pub first: f64,
    /// At work: from its first record (plain) or its first assignment
    /// (andon) to the end: records, seconds, CPU seconds. Before that a
    /// process only starts and waits for the group to form (andon: ~0.05 s
    /// of CPU in 3 s); after it, all the work of processing the records is
    /// in the window: fetching, restoring, processing, committing.
    ///
    /// The window once began at andon's first committed batch, which left
    /// out what was spent before that commit on records committed later
    /// (librdkafka fetches far ahead; the first batch is processed whole
    /// before it commits): over 200,000 records that was most of the CPU,
    /// and the figure (1.1-4.3 µs over runs) understated the work 2-5×.
    pub work_n: f64,
    pub work_wall: f64,
    pub work_cpu: f64,
    /// The broker's CPU seconds over the run.
    pub broker: f64,
    /// andon: seconds from start to its first assignment and to its last
    /// restore (from its log).
    pub joined: Option<f64>,
    pub restored: Option<f64>,
    /// Something worth knowing (an unclean exit).
    pub note: String,
}

impl Run {
    pub fn eps(&self) -> f64 {
        self.n / self.wall
    }
    pub fn cpu_us(&self) -> f64 {
        self.cpu / self.n * 1e6
    }
    pub fn work_eps(&self) -> f64 {
        self.work_n / self.work_wall.max(1e-9)
    }
    pub fn work_us(&self) -> f64 {
        self.work_cpu / self.work_n.max(1.0) * 1e6
    }
}

/// The plain consumer (a process, a fresh group) over `n` records.
pub fn run_plain(ctx: &Ctx, cluster: &Cluster, tag: &str, n: usize) -> R<Run> {
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
        work_n: n as f64 - 1.0,
        work_wall: f("done") - f("first"),
        work_cpu: f("cpu_done") - f("cpu_first"),
        broker: cluster.cpu() - b0,
        joined: None,
        restored: None,
        note: String::new(),
    })
}

/// `andon run` (a process, a fresh group) until it has processed `n`.
pub fn run_andon(ctx: &Ctx, cluster: &Cluster, tag: &str, threads: Option<usize>, n: usize) -> R<Run> {
    let processing = threads.map(|t| format!("threads = {t}")).unwrap_or_default();
    let b0 = cluster.cpu();
    let mut a = Andon::start(ctx, tag, &cluster.bootstrap, &format!("bench-{tag}"), &processing, "", 3)?;
    let progress = wait_processed(&mut a, cluster, n, ctx.sizes.timeout)?;
    let (first, done) = (progress.first, progress.done);
    let (status, took) = a.proc.stop(Duration::from_secs(30));
    let note = match status {
        Some(s) if s.success() => String::new(),
        Some(s) => format!("exited {s} when stopped"),
        None => format!("killed: not stopped {took:.0} s after SIGTERM"),
    };
    let r = Restores::of(&json_log(&a.proc.log));
    let started = a.proc.started;
    // From the last sample before the first assignment; without one (its
    // /metrics not up yet), from the process start.
    let at_work =
        r.assigned.and_then(|t| progress.before(t)).unwrap_or(Sample { t: started, count: 0.0, cpu: 0.0, broker: b0 });
    Ok(Run {
        n: n as f64,
        wall: done.t - started,
        cpu: done.cpu,
        first: first.t - started,
        work_n: done.count - at_work.count,
        work_wall: done.t - at_work.t,
        work_cpu: done.cpu - at_work.cpu,
        broker: done.broker - b0,
        joined: r.assigned.map(|t| t - started),
        restored: r.last.map(|t| t - started),
        note,
    })
}

/// A plain consumer and an andon run, one after the other, on a fresh
/// dev cluster holding `input`.
pub struct Trial {
    pub threads: Option<usize>,
    pub plain: Run,
    pub andon: Run,
}

pub fn trial(ctx: &Ctx, input: &[Rec], threads: Option<usize>) -> R<Trial> {
    let tag = threads.map_or("default".to_owned(), |t| format!("threads{t}"));
    on_cluster(ctx, &format!("cluster-throughput-{tag}"), |cluster| {
        produce_all(&producer(&cluster.bootstrap, 20)?, &ctx.topics.complaints, input)?;
        let plain = run_plain(ctx, cluster, &format!("plain-{tag}"), input.len())?;
        let andon = run_andon(ctx, cluster, &format!("andon-{tag}"), threads, input.len())?;
        Ok(Trial { threads, plain, andon })
    })
}
