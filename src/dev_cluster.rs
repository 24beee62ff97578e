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
//!
//! Faults can be injected into a running dev cluster from another process
//! (tests, `scripts/chaos`) through [`Control`] commands, one per line on
//! its standard input, each answered with one line (`ok` or `error: ...`):
//!
//! ```text
//! broker-down [BROKER]                 refuse connections (and drop them)
//! broker-up [BROKER]                   accept them again
//! rtt MS [BROKER]                      delay every response by MS ms (0: none)
//! errors API ERROR COUNT               answer the next COUNT requests of API with ERROR
//! clear-errors API                     forget the errors still queued for API
//! ```
//!
//! `BROKER` is a broker id (the dev cluster has one broker, id 1; the
//! default -1 means all). `API` is a Kafka API name (`Produce`, `Fetch`,
//! `EndTxn`, ...), `ERROR` a Kafka error name (`NOT_LEADER_FOR_PARTITION`,
//! `REQUEST_TIMED_OUT`, `MSG_SIZE_TOO_LARGE`, `_TRANSPORT` to drop the
//! connection, ...); both case-insensitive, underscores optional.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

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

    /// Carries out one control command.
    pub fn apply(&self, c: &Control) -> Result<(), KafkaError> {
        let m = &self.cluster;
        match *c {
            Control::BrokerDown(b) => m.broker_down(b),
            Control::BrokerUp(b) => m.broker_up(b),
            Control::Rtt(rtt, b) => m.broker_round_trip_time(b, rtt),
            Control::Errors { api, error, count } => {
                m.request_errors(api, &vec![error; count]);
                Ok(())
            }
            Control::ClearErrors(api) => {
                m.clear_request_errors(api);
                Ok(())
            }
        }
    }

    /// Reads one command line, carries it out, and returns the answer line
    /// (`ok` or `error: ...`); `None` for a blank line or a `#` comment.
    pub fn answer(&self, line: &str) -> Option<String> {
        Some(match parse(line)? {
            Ok(c) => match self.apply(&c) {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("error: {e}"),
            },
            Err(e) => format!("error: {e}"),
        })
    }
}

/// A fault (or its end) to inject into the dev cluster; see the module
/// documentation for the text form that [`parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    BrokerDown(i32),
    BrokerUp(i32),
    /// Round-trip time added to every response, and the broker.
    Rtt(Duration, i32),
    Errors {
        api: RDKafkaApiKey,
        error: RDKafkaRespErr,
        count: usize,
    },
    ClearErrors(RDKafkaApiKey),
}

/// The commands, for error messages.
pub const COMMANDS: &str =
    "broker-down [BROKER] | broker-up [BROKER] | rtt MS [BROKER] | errors API ERROR COUNT | clear-errors API";

/// Most errors queued by one `errors` command: bounded so that a typo in
/// a count cannot wedge the cluster for good.
pub const MAX_ERRORS: usize = 100_000;

/// Parses one command line; `None` for a blank line or a `#` comment.
pub fn parse(line: &str) -> Option<Result<Control, String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    Some(parse_words(&words))
}

fn parse_words(words: &[&str]) -> Result<Control, String> {
    let (cmd, args) = words.split_first().ok_or("empty command")?;
    let arity = |min: usize, max: usize| {
        if args.len() < min || args.len() > max {
            Err(format!("{cmd}: wrong number of arguments (usage: {COMMANDS})"))
        } else {
            Ok(())
        }
    };
    let broker = |i: usize| -> Result<i32, String> {
        match args.get(i) {
            None => Ok(-1),
            Some(b) => b.parse::<i32>().ok().filter(|b| *b >= -1).ok_or(format!("{b}: not a broker id")),
        }
    };
    match *cmd {
        "broker-down" => {
            arity(0, 1)?;
            Ok(Control::BrokerDown(broker(0)?))
        }
        "broker-up" => {
            arity(0, 1)?;
            Ok(Control::BrokerUp(broker(0)?))
        }
        "rtt" => {
            arity(1, 2)?;
            let ms: u32 = args[0].parse().map_err(|_| format!("{}: not a number of milliseconds", args[0]))?;
            Ok(Control::Rtt(Duration::from_millis(ms.into()), broker(1)?))
        }
        "errors" => {
            arity(3, 3)?;
            let count: usize = args[2].parse().map_err(|_| format!("{}: not a count", args[2]))?;
            if count > MAX_ERRORS {
                return Err(format!("{count}: at most {MAX_ERRORS} errors at once"));
            }
            Ok(Control::Errors { api: api_key(args[0])?, error: error_code(args[1])?, count })
        }
        "clear-errors" => {
            arity(1, 1)?;
            Ok(Control::ClearErrors(api_key(args[0])?))
        }
        other => Err(format!("unknown command {other:?} (commands: {COMMANDS})")),
    }
}

/// Lower case without underscores: `NOT_LEADER_FOR_PARTITION`,
/// `NotLeaderForPartition` and `not_leader_for_partition` are one name.
fn normal(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// The API keys a client of andon's uses (the others a broker never gets
/// from it).
const API_KEYS: [RDKafkaApiKey; 20] = {
    use RDKafkaApiKey::*;
    [
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ApiVersion,
        InitProducerId,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeConfigs,
        OffsetForLeaderEpoch,
    ]
};

fn api_key(name: &str) -> Result<RDKafkaApiKey, String> {
    let n = normal(name);
    API_KEYS.iter().copied().find(|k| normal(&format!("{k:?}")) == n).ok_or_else(|| {
        let names: Vec<String> = API_KEYS.iter().map(|k| format!("{k:?}")).collect();
        format!("{name}: not an API this dev cluster injects errors into (one of {})", names.join(", "))
    })
}

/// Errors worth injecting: what a broker answers when it moves, is slow
/// or goes away (transient for a client), and what it answers for a
/// record or request it will never take (permanent).
const ERRORS: [RDKafkaRespErr; 28] = {
    use RDKafkaRespErr::*;
    [
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
        RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_INVALID_MSG,
        RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
        RD_KAFKA_RESP_ERR_INVALID_RECORD,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
    ]
};

fn error_code(name: &str) -> Result<RDKafkaRespErr, String> {
    let n = normal(name);
    // librdkafka's own name (`NOT_LEADER_FOR_PARTITION`, `_TRANSPORT`) or
    // rdkafka's (`NotLeaderForPartition`).
    let names = |e: RDKafkaRespErr| {
        let c_name = format!("{e:?}");
        [normal(c_name.trim_start_matches("RD_KAFKA_RESP_ERR_")), normal(&format!("{:?}", RDKafkaErrorCode::from(e)))]
    };
    ERRORS.iter().copied().find(|e| names(*e).contains(&n)).ok_or_else(|| {
        let list: Vec<String> =
            ERRORS.iter().map(|e| format!("{e:?}").trim_start_matches("RD_KAFKA_RESP_ERR_").to_owned()).collect();
        format!("{name}: not an error this dev cluster injects (one of {})", list.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaRespErr::*;

    fn ok(line: &str) -> Control {
        parse(line).expect("a command").unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &str) -> String {
        parse(line).expect("a command").expect_err(line)
    }

    #[test]
    fn broker_commands_default_to_all_brokers() {
        assert_eq!(ok("broker-down"), Control::BrokerDown(-1));
        assert_eq!(ok("  broker-up 1 "), Control::BrokerUp(1));
        assert_eq!(ok("rtt 250"), Control::Rtt(Duration::from_millis(250), -1));
        assert_eq!(ok("rtt 0 1"), Control::Rtt(Duration::ZERO, 1));
    }

    #[test]
    fn errors_take_kafka_names_in_either_spelling() {
        let want = Control::Errors {
            api: RDKafkaApiKey::Produce,
            error: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            count: 3,
        };
        assert_eq!(ok("errors Produce NOT_LEADER_FOR_PARTITION 3"), want);
        assert_eq!(ok("errors produce NotLeaderForPartition 3"), want);
        assert_eq!(
            ok("errors Fetch REQUEST_TIMED_OUT 1"),
            Control::Errors { api: RDKafkaApiKey::Fetch, error: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, count: 1 }
        );
        assert_eq!(
            ok("errors EndTxn _TRANSPORT 2"),
            Control::Errors { api: RDKafkaApiKey::EndTxn, error: RD_KAFKA_RESP_ERR__TRANSPORT, count: 2 }
        );
        assert_eq!(
            ok("errors Produce MSG_SIZE_TOO_LARGE 5"),
            Control::Errors { api: RDKafkaApiKey::Produce, error: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, count: 5 }
        );
        assert_eq!(ok("clear-errors add_partitions_to_txn"), Control::ClearErrors(RDKafkaApiKey::AddPartitionsToTxn));
    }

    #[test]
    fn blank_lines_and_comments_are_no_commands() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("   \t"), None);
        assert_eq!(parse("# broker-down"), None);
    }

    #[test]
    fn mistakes_are_named() {
        assert!(err("reboot").contains("unknown command"), "{}", err("reboot"));
        assert!(err("broker-down 1 2").contains("wrong number of arguments"));
        assert!(err("broker-down x").contains("not a broker id"));
        assert!(err("broker-up -2").contains("not a broker id"));
        assert!(err("rtt").contains("wrong number of arguments"));
        assert!(err("rtt -5").contains("not a number of milliseconds"));
        assert!(err("errors Produce NOT_LEADER_FOR_PARTITION").contains("wrong number of arguments"));
        assert!(err("errors Produce NOT_LEADER_FOR_PARTITION many").contains("not a count"));
        assert!(err("errors Produce NOT_LEADER_FOR_PARTITION 100001").contains("at most"));
        let e = err("errors Produse NOT_LEADER_FOR_PARTITION 1");
        assert!(e.contains("Produse") && e.contains("Fetch"), "{e}");
        let e = err("errors Produce NO_SUCH_ERROR 1");
        assert!(e.contains("NO_SUCH_ERROR") && e.contains("REQUEST_TIMED_OUT"), "{e}");
        assert!(err("clear-errors").contains("wrong number of arguments"));
    }

    #[test]
    fn every_listed_name_parses_back_to_itself() {
        for k in API_KEYS {
            assert_eq!(api_key(&format!("{k:?}")), Ok(k));
        }
        for e in ERRORS {
            let name = format!("{e:?}");
            assert_eq!(error_code(name.trim_start_matches("RD_KAFKA_RESP_ERR_")), Ok(e), "{name}");
        }
    }

    #[test]
    fn a_running_cluster_answers_each_line() {
        let topics = crate::config::Settings::from_toml("").expect("defaults").topics;
        let c = DevCluster::start(1, &topics).expect("cluster");
        assert_eq!(c.answer("errors Produce NOT_LEADER_FOR_PARTITION 2").as_deref(), Some("ok"));
        assert_eq!(c.answer("clear-errors Produce").as_deref(), Some("ok"));
        assert_eq!(c.answer("rtt 10").as_deref(), Some("ok"));
        assert_eq!(c.answer("rtt 0").as_deref(), Some("ok"));
        assert_eq!(c.answer("broker-down").as_deref(), Some("ok"));
        assert_eq!(c.answer("broker-up").as_deref(), Some("ok"));
        assert_eq!(c.answer("# nothing"), None);
        let e = c.answer("broker-down 7").expect("an answer");
        assert!(e.starts_with("error: "), "no broker 7: {e}");
        assert!(c.answer("hello").expect("an answer").starts_with("error: unknown command"));
    }
}
