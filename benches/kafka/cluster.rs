//! The dev cluster every trial runs on: an `andon dev-cluster` process of
//! its own (so the broker's CPU is nobody's), and [`SESSION`], the group
//! session settings every member here shares because of how the
//! MockCluster empties a group.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs::Proc;
use crate::{Ctx, R};

/// An `andon dev-cluster` process.
pub struct Cluster {
    pub proc: Proc,
    pub bootstrap: String,
}

impl Cluster {
    /// Starts `andon dev-cluster --partitions P` and waits for its
    /// bootstrap address.
    pub fn start(ctx: &Ctx, tag: &str) -> R<Cluster> {
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
    pub fn cpu(&self) -> f64 {
        self.proc.cpu().unwrap_or(0.0)
    }
}

/// Runs `f` on a fresh dev cluster; when it fails, says whether the
/// cluster had exited meanwhile (someone else's signal, a crash).
pub fn on_cluster<T>(ctx: &Ctx, tag: &str, f: impl FnOnce(&Cluster) -> R<T>) -> R<T> {
    let mut cluster = Cluster::start(ctx, tag)?;
    f(&cluster).map_err(|e| match cluster.proc.exited() {
        Some(s) => format!("{e} [the dev cluster had exited meanwhile ({s}); log {}]", cluster.proc.log.display()),
        None => e,
    })
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
pub const SESSION: [(&str, &str); 2] = [("session.timeout.ms", "4000"), ("heartbeat.interval.ms", "1000")];
