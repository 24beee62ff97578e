//! The reader: consumes every partition of the view topic from the
//! beginning and applies each record to the model, for as long as the
//! process runs. Short fetch waits and polls keep it within a second of
//! the writers in steady state; `andon_view_lag_seconds` says how far
//! behind it is (0 at the end of every partition; otherwise the age of
//! the last record applied).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::event::Ts;
use crate::kafka::client;
use crate::ops::Status;

/// Runs forever; reconnects (and rebuilds the model from the beginning)
/// when the topic cannot be read or its partition count changes.
pub fn run(settings: &Settings, status: &Status) {
    let mut backoff = Duration::from_millis(500);
    // When the model was last known current (at the end of every
    // partition), or the start: while the topic cannot be read, the lag
    // gauge counts from it (growing, for an alert), and /cluster says
    // `null` (not known).
    let mut current_at = now();
    loop {
        match read(settings, status, &mut current_at) {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                status.view.lag_ms.store(-1, Ordering::Relaxed);
                if let Some(m) = status.metrics() {
                    m.view_lag_seconds.set((now() - current_at).as_nanos().max(0) as f64 / 1e9);
                }
                tracing::warn!(topic = %settings.topics.view, error = %e, retry_in_ms = backoff.as_millis() as u64, "view reader: cannot read the view topic; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn now() -> Ts {
    crate::kafka::processor::wall_clock()
}

/// Reads until an error or a change of the partition count.
fn read(settings: &Settings, status: &Status, current_at: &mut Ts) -> Result<(), KafkaError> {
    let topic = settings.topics.view.as_str();
    let mut cfg = client::plain_consumer(settings);
    cfg.set("group.id", format!("{}-view", settings.kafka.group_id)).set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer<client::Quiet> = cfg.create_with_context(client::Quiet)?;
    let partitions = partition_count(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let view = &status.view;
    // A new reader starts from nothing: what it shows is what it has read.
    *view.model_mut() = super::Model::default();
    view.partitions.store(partitions, Ordering::Relaxed);
    view.caught_up.store(false, Ordering::Relaxed);
    tracing::info!(topic, partitions, "view reader: reading the view topic from the beginning");

    let started = now();
    let mut at_end = vec![false; partitions as usize];
    let mut last_applied: Option<Ts> = None;
    let mut next_tick = Instant::now();
    let mut next_sweep = Instant::now() + Duration::from_secs(60);
    let mut next_metadata = Instant::now() + Duration::from_secs(30);
    // The messages themselves, not copies: librdkafka's buffers are read
    // in place (copying keys and values was about a tenth of what the
    // reader cost) and released once applied, outside the model's lock.
    let mut batch: Vec<BorrowedMessage<'_>> = Vec::new();
    loop {
        // Apply what has been fetched under one lock, then let readers in.
        let mut first = true;
        loop {
            let timeout = if first { Duration::from_millis(50) } else { Duration::ZERO };
            first = false;
            match consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => {
                    let p = m.partition();
                    if let Some(e) = at_end.get_mut(p as usize) {
                        *e = false;
                    }
                    batch.push(m);
                    if batch.len() >= 10_000 {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(e) = at_end.get_mut(p as usize) {
                        *e = true;
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "view reader: consumer error"),
            }
        }
        if !batch.is_empty() {
            let t = now();
            let mut model = view.model_mut();
            for m in &batch {
                let written = m.timestamp().to_millis().map_or(t, Ts::from_millis);
                let Some(key) = m.key() else { continue };
                if let Err(e) = model.apply(&String::from_utf8_lossy(key), m.payload(), written, t) {
                    tracing::warn!(topic, error = %e, "view reader: skipped a record that does not decode");
                }
                last_applied = Some(written);
            }
            drop(model);
            batch.clear();
        }
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + Duration::from_millis(250);
            let caught_up = at_end.iter().all(|e| *e);
            let lag_ms = if caught_up {
                view.caught_up.store(true, Ordering::Relaxed);
                *current_at = now();
                0
            } else {
                (now() - last_applied.unwrap_or(started)).as_nanos().max(0) / 1_000_000
            };
            view.lag_ms.store(lag_ms, Ordering::Relaxed);
            if let Some(m) = status.metrics() {
                m.view_lag_seconds.set(lag_ms as f64 / 1000.0);
            }
        }
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + Duration::from_secs(60);
            view.model_mut().sweep(now());
        }
        if Instant::now() >= next_metadata {
            next_metadata = Instant::now() + Duration::from_secs(30);
            match partition_count(&consumer, topic) {
                Ok(n) if n != partitions => {
                    tracing::warn!(
                        topic,
                        was = partitions,
                        now = n,
                        "view reader: the partition count changed; reading again"
                    );
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}

fn partition_count(consumer: &BaseConsumer<client::Quiet>, topic: &str) -> Result<i32, KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    match md.topics().iter().find(|t| t.name() == topic && t.error().is_none()).map(|t| t.partitions().len()) {
        Some(n) if n > 0 => Ok(n as i32),
        _ => Err(KafkaError::MetadataFetch(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)),
    }
}
