//! Section 7, in process: a MockCluster and `andon::kafka::run` in this
//! process against a plain consumer assigned every partition, in steady
//! state (cheap, kept from before the process-based sections).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use andon::config::Settings;
use andon::dev_cluster::DevCluster;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::observe::metric_sum;
use crate::traffic::{produce_all, producer, Rec};
use crate::{Ctx, R};

/// Reads every partition of `topic` to its end (assigned, no group):
/// records per second from the first record to the last.
pub fn raw_in_process(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> R<f64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut seen, mut first) = (0, None);
    while seen < n {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                black_box(&m);
                seen += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(format!("raw consumer: {e}")),
            None => return Err(format!("raw consumer stalled at {seen} of {n}")),
        }
    }
    Ok((n - 1) as f64 / first.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9))
}

/// `andon::kafka::run` in this process over the topic to its end:
/// records per second in steady state, from the first committed batch on
/// (the sum of `andon_complaints_total`, read from its registry).
pub fn andon_in_process(bootstrap: &str, n: usize, timeout: Duration) -> R<f64> {
    let settings = Settings::from_toml(&format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\ngroup_id = \"bench-in-process\"\n[processing]\nguarantee = \"exactly_once\"\n\
         [rules.default]\nthreshold = 3\nwindow = \"1h\"\n"
    ))
    .map_err(|e| e.to_string())?;
    let registry = prometheus::Registry::new();
    let metrics = andon::ops::metrics::Metrics::new(&registry, &settings.engine).map_err(|e| e.to_string())?;
    let status = Arc::new(andon::kafka::Status::default());
    *status.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(metrics);
    let processed = || {
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap_or_default();
        metric_sum(&text, "andon_complaints_total").unwrap_or(0.0)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (s, flag) = (status.clone(), stop.clone());
    let h = std::thread::spawn(move || andon::kafka::run(Arc::new(settings), s, &flag).map_err(|e| e.to_string()));
    let deadline = Instant::now() + timeout;
    let mut first: Option<(Instant, f64)> = None;
    let result = loop {
        let done = processed();
        if first.is_none() && done > 0.0 {
            first = Some((Instant::now(), done));
        }
        if done >= n as f64 {
            let (t0, at_t0) = first.unwrap_or((Instant::now(), 0.0));
            break Ok((done - at_t0) / t0.elapsed().as_secs_f64().max(1e-9));
        }
        if Instant::now() > deadline || h.is_finished() {
            break Err(format!("andon in process: {done} of {n} processed"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    stop.store(true, Ordering::SeqCst);
    h.join().map_err(|_| "andon in process panicked".to_owned())??;
    result
}

pub fn in_process(ctx: &Ctx, input: &[Rec]) -> R<(f64, f64)> {
    let cluster = DevCluster::start(ctx.sizes.partitions, &ctx.topics).map_err(|e| e.to_string())?;
    let bootstrap = cluster.bootstrap_servers();
    produce_all(&producer(&bootstrap, 20)?, &ctx.topics.complaints, input)?;
    let raw = raw_in_process(&bootstrap, &ctx.topics.complaints, ctx.sizes.partitions, input.len())?;
    let andon = andon_in_process(&bootstrap, input.len(), ctx.sizes.timeout)?;
    Ok((raw, andon))
}
