//! Section 4, failover: member A processes one complaint per subject and
//! stops; from member B's start in the same group until a fresh pair is
//! delisted, against a plain consumer taking over its group; B's restores
//! and the state topic's size beside it.

use std::time::{Duration, Instant};

use crate::andon_run::{wait_processed, Andon};
use crate::cluster::Cluster;
use crate::observe::{json_log, metric_sum, Restores};
use crate::plain::run_child;
use crate::procs::now_micros;
use crate::readers::{topic_size, Reader};
use crate::traffic::{complaint, one_per_subject, produce_all, producer};
use crate::{Ctx, R};

/// Sleeps until `d` after `since`.
pub fn settle(since: Instant, d: Duration) {
    std::thread::sleep(d.saturating_sub(since.elapsed()));
}

pub struct Failover {
    pub keys: usize,
    /// Plain consumer P2, seconds from its start: assigned, marker seen.
    pub plain_assigned: Option<f64>,
    pub plain_seen: f64,
    /// andon B, seconds from its start: assigned, last restore, delist seen.
    pub andon_assigned: Option<f64>,
    pub andon_restored: Option<f64>,
    pub andon_seen: f64,
    /// Seconds A took to stop after SIGTERM.
    pub a_stop: f64,
    pub restores: Restores,
    /// `andon_restore_seconds` of B: sum and count.
    pub restore_metric: Option<(f64, f64)>,
    /// The state topic, read whole after A stopped.
    pub state_records: u64,
    pub state_bytes: u64,
}

pub fn failover(ctx: &Ctx, cluster: &Cluster) -> R<Failover> {
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
