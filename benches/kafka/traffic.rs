//! The complaints the sections send, as Kafka records (keyed by subject
//! key, timestamped with `occurred_at`), and producing them with the
//! murmur2 partitioner andon expects. scripts/bench-peers writes the same
//! throughput input.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::procs::now_micros;
use crate::R;

/// A complaint as a Kafka record: keyed by its subject key, timestamped
/// with its `occurred_at`.
pub struct Rec {
    pub key: String,
    pub value: String,
    pub ts_ms: i64,
}

/// A complaint about SKU `sku` by `customer` at `at_us` (µs since the
/// epoch).
pub fn complaint(id: &str, sku: &str, customer: &str, at_us: i64) -> Rec {
    let at = DateTime::from_timestamp_micros(at_us).unwrap_or_default();
    let value = format!(
        r#"{{"event_id":"{id}","occurred_at":"{}","subject":{{"kind":"sku","id":"{sku}"}},"issue":"damaged_in_transit","customer_id":"{customer}","channel":"phone"}}"#,
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    Rec { key: format!("sku:{sku}"), value, ts_ms: at_us.div_euclid(1000) }
}

/// The throughput input, as scripts/bench-peers writes it: `n` complaints
/// over `skus` SKUs, up to four customers each, 50 ms apart, ending now.
pub fn throughput_input(n: usize, skus: u64) -> Vec<Rec> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    let start = now_micros() - n as i64 * 50_000;
    (0..n)
        .map(|i| {
            let sku = next(skus);
            let customer = format!("cust-{sku}-{}", next(4));
            complaint(&format!("ev-{i}"), &format!("B{sku:06}"), &customer, start + i as i64 * 50_000)
        })
        .collect()
}

/// `n` complaints, each on a subject of its own, 10 ms apart, ending now.
pub fn one_per_subject(n: usize) -> Vec<Rec> {
    let start = now_micros() - n as i64 * 10_000;
    (0..n)
        .map(|i| complaint(&format!("f-{i}"), &format!("F{i:07}"), &format!("cust-{i}"), start + i as i64 * 10_000))
        .collect()
}

/// A producer as andon's producers must be configured: the Java client's
/// partitioner (murmur2), so that keys land where andon expects them.
pub fn producer(bootstrap: &str, linger_ms: u32) -> R<BaseProducer> {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", linger_ms.to_string())
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    // Connected and with metadata before anything is timed.
    p.client().fetch_metadata(None, Duration::from_secs(10)).map_err(|e| format!("metadata: {e}"))?;
    Ok(p)
}

/// Queues one record, waiting while the producer's queue is full.
pub fn send(p: &BaseProducer, topic: &str, r: &Rec) -> R<()> {
    let mut rec = BaseRecord::to(topic).key(r.key.as_str()).payload(r.value.as_str()).timestamp(r.ts_ms);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                p.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(format!("produce: {e}")),
        }
    }
}

/// Sends `recs` and waits until all are acknowledged.
pub fn produce_all(p: &BaseProducer, topic: &str, recs: &[Rec]) -> R<()> {
    for r in recs {
        send(p, topic, r)?;
    }
    p.flush(Duration::from_secs(60)).map_err(|e| format!("flush: {e}"))
}
