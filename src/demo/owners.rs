//! The simulated owners: product, operations and supply chain read the
//! `opened` work orders and walk them step by step with human delays (some
//! slower than their SLA, so escalations show), ending in a verdict drawn
//! from the ground truth: genuine defects are confirmed, most pulls caused
//! by coincidental noise are not.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use serde_json::{json, Value};

use super::rng::Rng;
use super::traffic::Truth;
use super::{producer, reader, send};
use crate::config::Topics;

/// One work order as the owners see it.
struct Job {
    subject_key: String,
    /// `<subject key>|<issue>`, to look up the ground truth.
    truth_key: String,
    owners: Vec<String>,
    /// The step the next update is for (1-based).
    step: u32,
    /// Decided when the work order opens: the verdict, and whether it comes
    /// at the first step (nothing found, close at once) or the last.
    confirm: bool,
    early: bool,
}

/// The simulated owners: read `opened` work orders and act on them step by
/// step with human delays, until `stop`.
pub(super) fn owners(bootstrap: &str, topics: &Topics, truth: &Truth, stop: &AtomicBool) -> anyhow::Result<()> {
    let consumer = reader(bootstrap, "andon-demo-owners", &[topics.work_orders.as_str()])?;
    let producer = producer(bootstrap).context("owners' producer")?;
    let mut rng = Rng::new();
    let mut jobs: HashMap<String, Job> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    // (when, andon_id), soonest first.
    let mut agenda: BinaryHeap<std::cmp::Reverse<(Instant, String)>> = BinaryHeap::new();
    let run = rng.next_u64() as u32;
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let opened = m
                .payload()
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                .filter(|v| v.get("type").and_then(Value::as_str) == Some("opened"));
            if let Some(v) = opened {
                if let Some((andon_id, job)) = job_from(&v, truth, &mut rng) {
                    if seen.insert(andon_id.clone()) {
                        let delay = step_delay(&mut rng, job.owners.first().map_or("", String::as_str));
                        agenda.push(std::cmp::Reverse((Instant::now() + delay, andon_id.clone())));
                        jobs.insert(andon_id, job);
                    }
                }
            }
        }
        let now = Instant::now();
        while agenda.peek().is_some_and(|std::cmp::Reverse((t, _))| *t <= now) {
            let Some(std::cmp::Reverse((_, andon_id))) = agenda.pop() else {
                break;
            };
            let Some(job) = jobs.get_mut(&andon_id) else {
                continue;
            };
            let last = job.step as usize >= job.owners.len();
            let verdict = if !job.confirm && (job.early || last) {
                Some("no_defect")
            } else if job.confirm && last {
                Some("defect_confirmed")
            } else {
                None
            };
            sent += 1;
            let owner = job.owners.get(job.step as usize - 1).cloned().unwrap_or_default();
            let mut update = json!({
                // Unique and short, whatever the length of the andon_id.
                "update_id": format!("upd-{run:08x}-{sent}"),
                "andon_id": andon_id,
                "step": job.step,
                "actor": format!("{owner}/{}", rng.pick(&["alex", "sam", "kim", "noor", "jo", "ravi", "mei", "lena"])),
                "at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            if let (Some(verdict), Some(o)) = (verdict, update.as_object_mut()) {
                o.insert("verdict".into(), json!(verdict));
                o.insert(
                    "note".into(),
                    json!(if verdict == "no_defect" {
                        "inspected stock: nothing wrong"
                    } else {
                        "defect confirmed; stock fixed"
                    }),
                );
            }
            send(&producer, &topics.work_order_updates, &job.subject_key, &update.to_string(), stop)?;
            if verdict.is_some() {
                if job.confirm {
                    // The fix ends the incident: the relisted subject goes quiet.
                    truth.lock().remove(&job.truth_key);
                }
                jobs.remove(&andon_id);
            } else {
                job.step += 1;
                let next_owner = job.owners.get(job.step as usize - 1).cloned().unwrap_or_default();
                agenda.push(std::cmp::Reverse((now + step_delay(&mut rng, &next_owner), andon_id)));
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(5)).context("flushing updates")?;
    Ok(())
}

/// Reads an `opened` event into a job, deciding its verdict from the ground
/// truth; `None` when the event lacks what the owners need.
fn job_from(v: &Value, truth: &Truth, rng: &mut Rng) -> Option<(String, Job)> {
    let andon_id = v.get("andon_id")?.as_str()?.to_owned();
    let subject_key = andon_id.rsplit_once('/')?.0.to_owned();
    let issue = v.get("issue")?.as_str()?;
    let owners: Vec<String> =
        v.get("steps")?.as_array()?.iter().filter_map(|s| s.get("owner")?.as_str().map(str::to_owned)).collect();
    if owners.is_empty() {
        return None;
    }
    let truth_key = format!("{subject_key}|{issue}");
    let manual = v.get("trigger").and_then(Value::as_str) == Some("manual");
    let genuine = truth.lock().contains(&truth_key);
    // Owners are good but not perfect; noise that happened to cluster is
    // mostly found to be nothing, though two damaged parcels can be a real
    // carrier problem; agents' own calls are usually right; price
    // complaints about promotions are often a misread of the terms.
    let p_confirm = if genuine {
        0.98
    } else if manual {
        0.85
    } else if subject_key.starts_with("promotion:") {
        0.3
    } else {
        0.5
    };
    let confirm = rng.chance(p_confirm);
    let early = rng.chance(0.7);
    Some((andon_id, Job { subject_key, truth_key, owners, step: 1, confirm, early }))
}

/// How long an owner takes for a step: mostly seconds, sometimes much
/// longer than the SLA (so escalations happen).
fn step_delay(rng: &mut Rng, owner: &str) -> Duration {
    let secs = if rng.chance(0.14) {
        rng.between(20.0, 40.0)
    } else {
        match owner {
            "product" => rng.between(3.0, 12.0),
            "operations" => rng.between(2.0, 9.0),
            "supply_chain" => rng.between(4.0, 15.0),
            _ => rng.between(3.0, 12.0),
        }
    };
    Duration::from_secs_f64(secs)
}
