//! The plain consumers andon is measured against: this binary run again
//! in a hidden mode (`--plain-consumer`: read N records; `--takeover`: wait
//! for one key), each with andon's group consumer settings and nothing
//! else, and [`run_child`], which starts one and reads its `REPORT` line.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde_json::Value;

use crate::cluster::SESSION;
use crate::procs::{cpu_secs, now, Proc};
use crate::{Ctx, R};

/// The plain consumers' settings: those of andon's group consumer
/// (cooperative-sticky, read_committed, from the earliest offset, no
/// auto-commit, [`SESSION`]), nothing else.
pub fn plain_config(bootstrap: &str, group: &str) -> ClientConfig {
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
pub fn plain_consumer(args: &[String]) -> R<()> {
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
pub fn takeover(args: &[String]) -> R<()> {
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

/// Runs this binary in a hidden mode as process `tag` and waits for its
/// `REPORT` line.
pub fn run_child(ctx: &Ctx, tag: &str, args: &[&str], before_wait: impl FnOnce() -> R<()>) -> R<(Proc, Value)> {
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
