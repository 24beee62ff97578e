//! `andon dev-cluster`: librdkafka's MockCluster (a Kafka-protocol broker
//! in process memory) with andon's topics created. For trying andon, for
//! other services' development, and for tests that kill and restart
//! `andon run` processes against one cluster.
//!
//! The MockCluster keeps at most 5 MiB or 100,000 message sets per
//! partition, never compacts, and neither hides aborted transactions nor
//! stores transactional offsets: andon's guarantees do not lean on any of
//! that (see `kafka::checkpoint`, the changelog's records and chain rules,
//! and docs/guarantees.md, "How it is kept, without trusting the broker").

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::Topics;

pub struct DevCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl DevCluster {
    /// Starts a one-broker cluster with the seven topics of `topics`, each
    /// with `partitions` partitions.
    pub fn start(partitions: i32, topics: &Topics) -> Result<Self, KafkaError> {
        let cluster = MockCluster::new(1)?;
        for t in topics.all() {
            cluster.create_topic(t, partitions, 1)?;
        }
        Ok(Self { cluster })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The cluster itself, for tests that take brokers down or inject errors.
    pub fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
