//! The consumer group as the processing loop sees it: the rebalance
//! callback (which only assigns, pauses and reports: restores happen off
//! the loop), the group generation that stamps checkpoints, and the end
//! offsets librdkafka's statistics report, for consumer lag.
//!
//! Group membership is over the complaints topic alone; the updates
//! partition of the same number follows on a second, manually assigned
//! consumer. That keeps a subject's complaints and updates with one owner
//! whatever the assignor does (cooperative-sticky does not co-partition two
//! topics; Kafka Streams has its own assignor for that).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use crate::kafka::client;
use crate::kafka::io::rdkafka::Group;
use crate::merge::Side;

/// What the rebalance callback saw; the loop acts on it between batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// End offsets per input partition from librdkafka's statistics (the last
/// stable offset: read_committed consumers read up to it).
#[derive(Debug, Default)]
pub struct Ends(Mutex<HashMap<(Side, i32), i64>>);

impl Ends {
    pub fn get(&self, side: Side, partition: i32) -> Option<i64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&(side, partition)).copied()
    }

    fn record(&self, side: Side, topic: &str, statistics: &Statistics) {
        let Some(t) = statistics.topics.get(topic) else { return };
        let mut ends = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (p, s) in &t.partitions {
            if *p >= 0 && s.ls_offset >= 0 {
                ends.insert((side, *p), s.ls_offset);
            }
        }
    }
}

/// The group consumer's context.
pub struct GroupContext {
    pub complaints: String,
    pub updates: String,
    pub events: Mutex<Vec<Event>>,
    pub ends: Arc<Ends>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        client::error(error, reason);
    }
    fn stats(&self, statistics: Statistics) {
        self.ends.record(Side::Complaints, &self.complaints, &statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr::*;
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let partitions: Vec<i32> =
            tpl.elements().iter().filter(|e| e.topic() == self.complaints).map(|e| e.partition()).collect();
        match err {
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::info!(?partitions, "partitions assigned: restoring them");
                // Assigned at the beginning and fetching while the restore
                // runs (each partition has its own queue, drained only once
                // its task exists): a partition with no checkpoint then
                // starts at once, and one with a checkpoint is sought to it,
                // which drops what was fetched before.
                for p in &partitions {
                    let _ = tpl.set_partition_offset(&self.complaints, *p, Offset::Beginning);
                }
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = r {
                    tracing::error!(error = %e, "assign failed");
                }
                self.push(Event::Assigned(partitions));
            }
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(?partitions, lost = consumer.assignment_lost(), "partitions revoked");
                self.push(Event::Revoked(partitions));
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                self.push(Event::Revoked(partitions));
                let _ = consumer.unassign();
            }
        }
    }
}

impl GroupContext {
    fn push(&self, e: Event) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The updates consumer's context: its statistics feed consumer lag.
pub struct UpdatesContext {
    pub updates: String,
    pub ends: Arc<Ends>,
}

impl ClientContext for UpdatesContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        client::error(error, reason);
    }
    fn stats(&self, statistics: Statistics) {
        self.ends.record(Side::Updates, &self.updates, &statistics);
    }
}

impl ConsumerContext for UpdatesContext {}

/// The group consumer, as the batch sink needs it.
pub struct GroupHandle(pub Arc<BaseConsumer<GroupContext>>);

impl Group for GroupHandle {
    fn metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.0.group_metadata()
    }

    fn commit_offsets(&self, tpl: &TopicPartitionList) {
        // Progress lives in the checkpoints; the group offsets are for lag
        // dashboards, so a failed commit is only worth a debug line.
        if let Err(e) = self.0.commit(tpl, rdkafka::consumer::CommitMode::Async) {
            tracing::debug!(error = %e, "offset commit failed");
        }
    }

    fn topics(&self) -> (&str, &str) {
        let c = self.0.context();
        (&c.complaints, &c.updates)
    }
}

/// The consumer group generation this member is in (classic protocol), or
/// `None` outside a group. rdkafka does not wrap this getter.
#[allow(unsafe_code)]
pub fn generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<i32> {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live client of `consumer`, borrowed for this
    // call. `rd_kafka_consumer_group_metadata` returns a new object (or
    // null) that we own and destroy before returning; the generation
    // getter only reads it.
    unsafe {
        let md = rdkafka::bindings::rd_kafka_consumer_group_metadata(rk);
        if md.is_null() {
            return None;
        }
        let g = rdkafka::bindings::rd_kafka_consumer_group_metadata_generation_id(md);
        rdkafka::bindings::rd_kafka_consumer_group_metadata_destroy(md);
        (g >= 0).then_some(g)
    }
}
