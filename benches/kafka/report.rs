//! The printed table (also results.txt): every section's figures, the
//! column legend, then one line per goal, met or not.

use crate::failover::Failover;
use crate::latency::Latency;
use crate::throughput::{Run, Trial};
use crate::{Ctx, R};

pub fn opt_s(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2} s"))
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One line per goal: what it asks, what was measured, whether it holds.
pub struct Goals(Vec<(String, String, Option<bool>)>);

impl Goals {
    pub fn add(&mut self, goal: &str, measured: String, met: Option<bool>) {
        self.0.push((goal.to_owned(), measured, met));
    }
}

pub fn run_row(name: &str, r: &Run) -> String {
    format!(
        "  {name:<30} {:>8.2} s {:>9.0} {:>8.2} {:>8} {:>8} {:>8.2} s {:>10.0} {:>8.2} {:>8.2}{}",
        r.wall,
        r.eps(),
        r.cpu_us(),
        opt_s(r.joined),
        opt_s(r.restored),
        r.first,
        r.work_eps(),
        r.work_us(),
        r.broker / r.n * 1e6,
        if r.note.is_empty() { String::new() } else { format!("  ({})", r.note) }
    )
}

pub fn run_header() -> String {
    format!(
        "  {:<30} {:>10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8}",
        "", "start→all", "events/s", "CPU µs", "joined", "restored", "1st batch", "at work/s", "work µs", "broker µs"
    )
}

/// What the sections measured (or why not), for the report.
pub struct Results {
    pub trials: Vec<R<Trial>>,
    pub default_threads: usize,
    pub replay: R<(f64, f64)>,
    pub fail: R<Failover>,
    pub lat: R<Latency>,
    pub inproc: R<(f64, f64)>,
    /// The load average when the run started.
    pub load_start: String,
}

/// The printed table: every section's figures, then the goals, met or
/// not; and false if a section failed (a skipped one is no failure).
pub fn report(ctx: &Ctx, bench: bool, results: Results) -> (String, bool) {
    let Results { trials, default_threads, replay, fail, lat, inproc, load_start } = results;
    let sz = &ctx.sizes;
    let mut ok = true;
    let mut goals = Goals(Vec::new());
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("andon on Kafka (benches/kafka/){}", if bench { "" } else { ": SMOKE RUN, tiny sizes" }));
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
    let mut by_threads: Vec<(usize, f64, f64, f64)> = Vec::new(); // (threads, eps, eps at work, ratio to plain)
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
                        "CPU per event at work ≤ 4 µs",
                        format!("{:.2} µs", t.andon.work_us()),
                        Some(t.andon.work_us() <= 4.0),
                    );
                }
                by_threads.push((threads, t.andon.eps(), t.andon.work_eps(), ratio));
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
                "  threads 2 / threads 1: start→all events/s {:.2}, at work {:.2}, andon/plain ratio {:.2} against {:.2}",
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
    line("  (log); 1st batch = first record (plain) or first committed batch on /metrics (andon); at work = from the first".into());
    line("  record (plain) or the first assignment (andon: before it, start-up and the group join, ~0.05 s CPU) to the end;".into());
    line("  broker µs = the dev cluster's CPU per event meanwhile".into());
    line(String::new());

    line(
        "3. CPU per event against replay (same complaints as JSON lines, in process, one thread, best of three)".into(),
    );
    let default_andon = trials.first().and_then(|t| t.as_ref().ok()).map(|t| t.andon.work_us());
    match &replay {
        Ok((us, eps)) => {
            line(format!("  replay: {us:.2} µs CPU per event ({eps:.0} events/s)"));
            if let Some(a) = default_andon {
                line(format!("  andon at work: {a:.2} µs = {:.1}× replay (goal ≤ 2×; absolute goal ≤ 4 µs)", a / us));
                goals.add("CPU per event at work ≤ 2× replay's", format!("{:.1}×", a / us), Some(a / us <= 2.0));
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
    (out, ok)
}
