//! An `andon run` process as a contender: its configuration written and
//! started ([`Andon::start`]), its /metrics found through its log, and
//! [`wait_processed`], polling it until it has processed N complaints.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, SESSION};
use crate::observe::{json_log, log_message, metric_sum};
use crate::procs::{http_get, now, Proc};
use crate::{Ctx, R};

/// An `andon run` process logging JSON at info, and its HTTP address once
/// its log names it.
pub struct Andon {
    pub proc: Proc,
    pub addr: Option<String>,
}

impl Andon {
    /// Writes `{tag}.toml` (`exactly_once`, [`SESSION`], HTTP on a free
    /// port, rules `threshold` distinct customers in 1 h; `processing` and
    /// `properties` lines added to their sections) and starts
    /// `andon --log-format json run` with it.
    pub fn start(
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
    pub fn metrics(&mut self) -> Option<String> {
        if self.addr.is_none() {
            self.addr = json_log(&self.proc.log).iter().find_map(|v| {
                log_message(v).starts_with("serving /metrics").then(|| v["addr"].as_str().map(str::to_owned))?
            });
        }
        let (status, body) = http_get(self.addr.as_deref()?, "/metrics")?;
        (status == 200).then_some(body)
    }

    /// Fails if it has exited.
    pub fn alive(&mut self) -> R<()> {
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
pub struct Sample {
    pub t: f64,
    pub count: f64,
    pub cpu: f64,
    pub broker: f64,
}

/// Every sample [`wait_processed`] took, the first that showed any
/// complaint processed (its first committed batch) and the first that
/// showed all.
pub struct Progress {
    pub samples: Vec<Sample>,
    pub first: Sample,
    pub done: Sample,
}

impl Progress {
    /// The last sample taken at or before `t` (Unix seconds).
    pub fn before(&self, t: f64) -> Option<Sample> {
        self.samples.iter().rev().find(|s| s.t <= t).copied()
    }
}

/// Polls andon every 25 ms until it has processed `n` complaints.
pub fn wait_processed(a: &mut Andon, cluster: &Cluster, n: usize, timeout: Duration) -> R<Progress> {
    let deadline = Instant::now() + timeout;
    let mut first = None;
    let mut count = 0.0;
    let mut samples = Vec::new();
    loop {
        a.alive()?;
        if let Some(text) = a.metrics() {
            count = metric_sum(&text, "andon_complaints_total").unwrap_or(0.0);
            let s = Sample { t: now(), count, cpu: a.proc.cpu().unwrap_or(0.0), broker: cluster.cpu() };
            samples.push(s);
            if count > 0.0 && first.is_none() {
                first = Some(s);
            }
            if count >= n as f64 {
                return Ok(Progress { samples, first: first.unwrap_or(s), done: s });
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
