//! What went wrong in a batch, and what to do about it: every produce or
//! commit error is *permanent* for what was being written (it will fail
//! the same way again: a record too large, an invalid record, a missing
//! authorisation), *transient* (timeouts, leader changes, a broker down:
//! it may pass), or *fenced* (another writer owns the transactional id or
//! the group moved on: this member's batch must go). Retries back off
//! exponentially from 100 ms to 30 s, so no failure repeats in a tight
//! loop (docs/guarantees.md#errors-are-classified-and-retried-with-backoff).

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The `kind` label of `andon_batch_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Transient,
    Permanent,
    Fenced,
}

impl FailureKind {
    pub const ALL: [FailureKind; 3] = [FailureKind::Transient, FailureKind::Permanent, FailureKind::Fenced];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Fenced => "fenced",
        }
    }
}

/// Classifies a librdkafka error code.
pub fn classify_code(code: RDKafkaErrorCode) -> FailureKind {
    use RDKafkaErrorCode::*;
    match code {
        // The same record or request will be refused again.
        MessageSizeTooLarge
        | InvalidMessage
        | InvalidMessageSize
        | InvalidRecord
        | MessageBatchTooLarge
        | InvalidRequiredAcks
        | TopicAuthorizationFailed
        | GroupAuthorizationFailed
        | ClusterAuthorizationFailed
        | TransactionalIdAuthorizationFailed
        | SaslAuthenticationFailed
        | UnsupportedForMessageFormat
        | UnsupportedVersion
        | PolicyViolation
        | InvalidConfig
        | UnknownTopicOrPartition
        | Authentication
        | InvalidArgument
        | InvalidPartitions
        | InvalidReplicationFactor
        | InvalidTransactionTimeout
        | BadMessage
        | UnsupportedCompressionType
        | UnknownPartition
        | UnknownTopic => FailureKind::Permanent,
        // Someone else writes now.
        Fenced | ProducerFenced | InvalidProducerEpoch | FencedInstanceId | IllegalGeneration | UnknownMemberId
        | RebalanceInProgress => FailureKind::Fenced,
        _ => FailureKind::Transient,
    }
}

/// Classifies an rdkafka error (a fatal transactional error is fenced:
/// the producer must be replaced).
pub fn classify(e: &KafkaError) -> FailureKind {
    if let KafkaError::Transaction(r) = e {
        if r.is_fatal() {
            return FailureKind::Fenced;
        }
    }
    match e.rdkafka_error_code() {
        Some(code) => classify_code(code),
        None => FailureKind::Transient,
    }
}

/// Whether a consumer error may have hidden records from the consumer (a
/// lost connection, a failed fetch), so that an input's end seen before it
/// is no longer to be trusted. Not a position reset: `auto.offset.reset`
/// has already moved the fetch, and fetching again from the old position
/// would only be reset again, for ever.
pub fn hides_records(e: &KafkaError) -> bool {
    !matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange))
}

/// Exponential backoff: 100 ms, doubling, at most 30 s; reset by success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST, failures: 0 }
    }
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(30);

    /// The wait before the next attempt, and the one after it doubled.
    pub fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        self.failures += 1;
        wait
    }

    pub fn succeed(&mut self) {
        *self = Self::default();
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_broker_hides_records_a_position_reset_does_not() {
        let fetch = |code| KafkaError::MessageConsumption(code);
        assert!(hides_records(&fetch(RDKafkaErrorCode::BrokerTransportFailure)));
        assert!(hides_records(&fetch(RDKafkaErrorCode::AllBrokersDown)));
        assert!(hides_records(&fetch(RDKafkaErrorCode::RequestTimedOut)));
        assert!(!hides_records(&fetch(RDKafkaErrorCode::AutoOffsetReset)));
        assert!(!hides_records(&fetch(RDKafkaErrorCode::OffsetOutOfRange)));
    }

    #[test]
    fn a_record_too_large_is_permanent_a_broker_down_is_transient_a_new_epoch_is_fenced() {
        assert_eq!(classify_code(RDKafkaErrorCode::MessageSizeTooLarge), FailureKind::Permanent);
        assert_eq!(classify_code(RDKafkaErrorCode::TopicAuthorizationFailed), FailureKind::Permanent);
        assert_eq!(classify_code(RDKafkaErrorCode::AllBrokersDown), FailureKind::Transient);
        assert_eq!(classify_code(RDKafkaErrorCode::NotLeaderForPartition), FailureKind::Transient);
        assert_eq!(classify_code(RDKafkaErrorCode::RequestTimedOut), FailureKind::Transient);
        assert_eq!(classify_code(RDKafkaErrorCode::MessageTimedOut), FailureKind::Transient);
        assert_eq!(classify_code(RDKafkaErrorCode::ProducerFenced), FailureKind::Fenced);
        assert_eq!(classify(&KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)), FailureKind::Permanent);
    }

    #[test]
    fn backoff_doubles_from_100ms_to_30s_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..12).map(|_| b.fail().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
        assert_eq!(b.failures(), 12);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_millis(100));
    }
}
