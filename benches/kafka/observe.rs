//! Reading what andon says about itself: samples and histogram quantiles
//! from a Prometheus exposition (its /metrics), its JSON log lines, and
//! [`Restores`], what the log says about its restores.

use std::path::Path;

use chrono::DateTime;
use serde_json::Value;

/// Every sample of metric `name` in a Prometheus text exposition: the
/// labels as written between the braces ("" without), and the value.
pub fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
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
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let s = samples(text, name);
    (!s.is_empty()).then(|| s.iter().map(|(_, v)| v).sum())
}

/// Quantile `q` of histogram `name`, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does.
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
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
pub fn json_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// A log line's `timestamp` as Unix seconds.
pub fn log_time(v: &Value) -> Option<f64> {
    let ts = DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
    Some(ts.timestamp_micros() as f64 / 1e6)
}

pub fn log_message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

/// What an andon log says about its restores.
#[derive(Default)]
pub struct Restores {
    /// Unix time of the first "partitions assigned" line.
    pub assigned: Option<f64>,
    /// Unix time of the last "partition restored" line.
    pub last: Option<f64>,
    pub partitions: usize,
    /// Restore jobs (partitions restored together: same start, that is
    /// time minus `elapsed_ms`), and the sum of their durations (each
    /// job's longest `elapsed_ms`).
    pub jobs: usize,
    pub seconds: f64,
    pub records: u64,
    /// `changelog_bytes` summed; None when the lines lack the field.
    pub bytes: Option<u64>,
}

impl Restores {
    pub fn of(log: &[Value]) -> Restores {
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
