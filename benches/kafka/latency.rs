//! Section 5, decision latency: complaints at a steady rate, one pulling
//! pair in every ten, delist commands read as they appear; latency = time
//! seen - `issued_at`, with andon's own histograms and CPU beside it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use andon::config::Settings;
use chrono::DateTime;
use rdkafka::producer::Producer;

use crate::andon_run::Andon;
use crate::cluster::Cluster;
use crate::observe::{histogram_quantile, metric_sum, samples};
use crate::procs::now_micros;
use crate::readers::Reader;
use crate::traffic::{complaint, producer, send};
use crate::{Ctx, R};

pub struct Latency {
    pub rate: u64,
    /// Complaints sent after the warm-up, and the seconds it took.
    pub sent: usize,
    pub send_secs: f64,
    /// Delists expected (one per pair after the warm-up), and for each
    /// one seen: when its pair was due (seconds into the measured run)
    /// and its latency.
    pub expected: usize,
    pub latencies: Vec<(f64, f64)>,
    pub commit_interval: f64,
    /// andon's CPU seconds and the wall seconds from the first complaint
    /// (warm-up included) to the last delist read.
    pub cpu: f64,
    pub wall: f64,
    /// andon's own `andon_decision_latency_seconds` and
    /// `andon_transaction_seconds` (a batch's write): p50, p99 each.
    pub own: Option<(f64, f64)>,
    pub transaction: Option<(f64, f64)>,
}

impl Latency {
    /// p50, p99 and max in seconds (nearest rank) of the delists whose
    /// pairs were due within the first `secs` seconds of the measured run.
    pub fn quantiles(&self, secs: f64) -> (f64, f64, f64) {
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
pub const LATENCY_FETCH: &str = "\"fetch.wait.max.ms\" = \"5\"";

/// `linger.ms` of the load's producer: librdkafka's default. Lower, the
/// load reaches the dev cluster as one message set per record, and the
/// MockCluster answers a fetch with one message set per partition, found
/// by walking the partition's sets from its start (`rdkafka_mock.c`:
/// "FIXME: Maintain an index"; `rdkafka_mock_handlers.c`: "FIXME: Multiple
/// messageSets?"): reading a partition then costs the broker quadratic
/// time in its length, and after some seconds the broker, not andon, sets
/// the latency. A real broker looks an offset up in an index and fills a
/// fetch with as many sets as fit.
pub const LOAD_LINGER_MS: u32 = 5;

/// Complaints per pulling pair in the latency run (the rest never pull).
pub const PULL_EVERY: usize = 10;

pub fn latency(ctx: &Ctx, cluster: &Cluster) -> R<Latency> {
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
    let p = producer(&cluster.bootstrap, LOAD_LINGER_MS)?;
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
