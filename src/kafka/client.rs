//! librdkafka client settings for each role, start-up checks (brokers
//! reachable, topics present with equal partition counts), topic creation
//! on real Kafka, and librdkafka's own log routed into `tracing`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("topics missing: {0} (create them, or set processing.create_topics = true on a real Kafka cluster)")]
    Missing(String),
    #[error("all input and output topics must have the same partition count, but: {0}")]
    Unequal(String),
    #[error("creating topics failed: {0}")]
    Create(String),
    #[error("topics.state must be compacted (cleanup.policy=compact; andon's restores rest on it): {0}")]
    NotCompacted(String),
    #[error("{state} was written when andon's topics had {written} partitions; they have {now} now: keys would have moved between partitions (docs/guarantees.md, \"Migrating to a new partition count\")")]
    Repartitioned { state: String, written: u32, now: u32 },
    #[error("stopped while waiting for the brokers")]
    Stopped,
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Properties that only one kind of client takes: passing them to the
/// other makes librdkafka warn at every client creation.
const CONSUMER_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "group.",
    "partition.assignment.strategy",
    "auto.offset.reset",
    "enable.auto.",
    "auto.commit.",
    "isolation.level",
    "fetch.",
    "queued.",
    "enable.partition.eof",
    "check.crcs",
    "allow.auto.create.topics",
];
const PRODUCER_ONLY: &[&str] = &[
    "linger.ms",
    "queue.buffering.",
    "acks",
    "request.required.acks",
    "compression.",
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "batch.",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "message.send.max.retries",
    "partitioner",
    "sticky.",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Consumer,
    Producer,
    Admin,
}

/// The user's `[kafka.properties]` that apply to a client of `role`.
fn user_properties(settings: &Settings, role: Role) -> impl Iterator<Item = (&String, &String)> {
    settings.kafka.properties.iter().filter(move |(k, _)| !GROUP_MEMBER_ONLY.contains(&k.as_str())).filter(
        move |(k, _)| {
            let only = |list: &[&str]| list.iter().any(|p| k.starts_with(p));
            match role {
                Role::Consumer => !only(PRODUCER_ONLY),
                Role::Producer => !only(CONSUMER_ONLY),
                Role::Admin => !only(PRODUCER_ONLY) && !only(CONSUMER_ONLY),
            }
        },
    )
}

fn base(settings: &Settings, role: Role) -> ClientConfig {
    // `main` did this already; tests build clients without it.
    super::glibc::return_large_buffers();
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers);
    // librdkafka's own `debug` property names contexts to log at debug
    // level; with the level left at warning they would be dropped unseen.
    let debug = settings.kafka.properties.contains_key("debug");
    c.set_log_level(if debug { RDKafkaLogLevel::Debug } else { RDKafkaLogLevel::Warning });
    for (k, v) in user_properties(settings, role) {
        c.set(k, v);
    }
    c
}

fn consumer_base(settings: &Settings) -> ClientConfig {
    let mut c = base(settings, Role::Consumer);
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // The MockCluster would create a missing topic with the wrong
        // partition count; so would a real cluster with auto-creation on.
        .set("allow.auto.create.topics", "false")
        .set("isolation.level", "read_committed")
        // The merge by event time needs to know when an input is caught up,
        .set("enable.partition.eof", "true")
        // and an empty partition says so only when its fetch returns: the
        // broker holds an empty fetch up to this long (default 500 ms, which
        // then delayed the first batch after every assignment).
        .set("fetch.wait.max.ms", "100");
    // User properties win (they were set in `base`; set them again on top).
    for (k, v) in user_properties(settings, Role::Consumer) {
        c.set(k, v);
    }
    c
}

/// A consumer outside the group: assigned by hand (updates partitions,
/// restore reads).
pub fn plain_consumer(settings: &Settings) -> ClientConfig {
    let mut c = consumer_base(settings);
    c.set("group.id", format!("{}-reader", settings.kafka.group_id));
    c
}

/// `andon tune --kafka`'s reader of the inputs: assigned by hand,
/// read_committed, committing nothing. librdkafka's `assign` wants a
/// `group.id`, but a group that is only named (no JoinGroup, no
/// OffsetCommit) does not exist on the broker: a name of its own per
/// process, so that it can never be the members' group, and
/// `group.protocol` left at its default (the `consumer` protocol is for
/// subscribers).
pub fn history_reader(settings: &Settings) -> ClientConfig {
    let mut c = consumer_base(settings);
    c.set("group.id", format!("{}-tune-{}", settings.kafka.group_id, std::process::id()));
    c.remove("group.protocol");
    // A partition whose start is deleted while it is read (retention) is
    // reset to its start as the last fetch reported it, after this backoff
    // (default 500 ms). The MockCluster trims a full partition at every
    // append, so with the default the start had moved again by then, every
    // time: the read of a long `andon demo` never began. Real brokers
    // delete whole segments, rarely.
    default_unless_given(&mut c, settings, "fetch.error.backoff.ms", "10");
    c
}

/// Sets `key` to andon's `value` unless the user's `[kafka.properties]`
/// give it: where a user's value is applied before andon's defaults.
fn default_unless_given(c: &mut ClientConfig, settings: &Settings, key: &str, value: &str) {
    if !settings.kafka.properties.contains_key(key) {
        c.set(key, value);
    }
}

/// The restores' reader: a plain consumer that does not wait for data.
/// A changelog written in transactions ends with a commit marker, which is
/// never delivered: a read learns that it is done only from the
/// end-of-partition, which comes with the first fetch that finds nothing,
/// and the broker holds such a fetch for up to `fetch.wait.max.ms`.
pub fn changelog_reader(settings: &Settings) -> ClientConfig {
    let mut c = plain_consumer(settings);
    default_unless_given(&mut c, settings, "fetch.wait.max.ms", "5");
    c
}

/// Properties only the group member takes: static membership belongs to
/// it alone (a plain consumer with the same `group.instance.id` would take
/// its place in the group).
const GROUP_MEMBER_ONLY: &[&str] = &["group.instance.id"];

/// How many records librdkafka fetches ahead into each input partition's
/// queue (its default: 100,000, all held in memory while an instance
/// catches up on a backlog), and how soon it fetches again once a queue
/// is back under that (its default, 1 s, is for large queues: with 10,000
/// and 1,000 it made catching up 1.5 and 3.6 times slower). On Apache
/// Kafka, catching up on 1,000,000 one-complaint keys: peak RSS 691 →
/// 484 MB, 3.82 → 3.44 s (docs/configuration.md#kafkaproperties).
const INPUT_PREFETCH: [(&str, &str); 2] = [("queued.min.messages", "2000"), ("fetch.queue.backoff.ms", "10")];

fn bound_prefetch(c: &mut ClientConfig, settings: &Settings) {
    for (k, v) in INPUT_PREFETCH {
        default_unless_given(c, settings, k, v);
    }
}

/// The group member, over the complaints topic.
pub fn group_consumer(settings: &Settings) -> ClientConfig {
    let mut c = consumer_base(settings);
    bound_prefetch(&mut c, settings);
    c.set("group.id", &settings.kafka.group_id);
    // With the classic protocol, incremental handovers (a member keeps
    // what it is not asked to give up). With KIP-848's `consumer` protocol
    // the broker assigns, incrementally too, and librdkafka refuses the
    // setting.
    let consumer_protocol =
        settings.kafka.properties.get("group.protocol").is_some_and(|v| v.trim().eq_ignore_ascii_case("consumer"));
    if !consumer_protocol {
        default_unless_given(&mut c, settings, "partition.assignment.strategy", "cooperative-sticky");
    }
    // Consumer lag per partition: the end offsets come from librdkafka's
    // statistics, the positions from andon's own tasks.
    default_unless_given(&mut c, settings, "statistics.interval.ms", "1000");
    for (k, v) in user_properties(settings, Role::Consumer) {
        c.set(k, v);
    }
    if let Some(id) = settings.kafka.properties.get("group.instance.id") {
        c.set("group.instance.id", id);
    }
    c
}

/// The consumer of the updates partitions (assigned by hand, following
/// the group's assignment of complaints partitions).
pub fn updates_consumer(settings: &Settings) -> ClientConfig {
    let mut c = plain_consumer(settings);
    bound_prefetch(&mut c, settings);
    default_unless_given(&mut c, settings, "statistics.interval.ms", "1000");
    c
}

/// The batch producer: idempotent, and transactional with `exactly_once`.
pub fn producer(settings: &Settings, transactional: bool) -> ClientConfig {
    let mut c = base(settings, Role::Producer);
    c.set("enable.idempotence", "true").set("linger.ms", "5");
    for (k, v) in user_properties(settings, Role::Producer) {
        c.set(k, v);
    }
    if transactional {
        c.set("transactional.id", transactional_id(settings));
        // A transaction lasts a batch: from its first output, sent while
        // the batch is processed (at most one commit interval), to its
        // commit. An instance that dies holds the partitions it wrote
        // (their last stable offset) no longer than this before the broker
        // aborts its transaction.
        // At most the broker's default `transaction.max.timeout.ms`
        // (15 min), which refuses a longer one.
        let ms = (10_000 + settings.processing.commit_interval.as_millis()).min(900_000);
        default_unless_given(&mut c, settings, "transaction.timeout.ms", &ms.to_string());
    }
    c
}

/// The HTTP ingress's producer (`POST /complaints`, `POST /updates`):
/// idempotent, not transactional, placing keys as the inputs' producers
/// must (`[kafka] input_partitioner`), and failing a record within 10 s
/// (unless `message.timeout.ms` says otherwise) so that a webhook caller
/// hears "try again" rather than waiting for librdkafka's five minutes.
pub fn ingress_producer(settings: &Settings) -> ClientConfig {
    let mut c = producer(settings, false);
    c.set(
        "partitioner",
        match settings.kafka.input_partitioner {
            crate::view::Partitioner::Murmur2 => "murmur2_random",
            crate::view::Partitioner::Consistent => "consistent_random",
        },
    );
    default_unless_given(&mut c, settings, "message.timeout.ms", "10000");
    c
}

/// `message.max.bytes` of andon's producer: what a record must fit.
pub fn max_message_bytes(settings: &Settings) -> usize {
    settings.kafka.properties.get("message.max.bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(1_000_000)
}

/// Distinct per instance, and stable across its restarts where the
/// instance has a stable name: with static membership (`group.instance.id`)
/// the id derives from it, so a restarted instance's first transaction
/// aborts what its predecessor left open at once. Without it, the process
/// id keeps two instances on one host apart; a crashed instance's open
/// transaction then holds its state partitions until
/// `transaction.timeout.ms`. Zombies are fenced by the group metadata sent
/// with the offsets (KIP-447), not by this id.
pub fn transactional_id(settings: &Settings) -> String {
    let group = &settings.kafka.group_id;
    if let Some(id) = settings.kafka.properties.get("group.instance.id") {
        return format!("andon-{group}-{id}");
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
        .unwrap_or_else(|| "localhost".into());
    format!("andon-{group}-{host}-{}", std::process::id())
}

/// What the broker says of andon's topics' configuration, where it can
/// say (DescribeConfigs; the MockCluster cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfigs {
    /// The view topic keeps only so many bytes a partition
    /// (`retention.bytes` not -1), or the broker did not say: owners then
    /// also re-put their open andons by bytes written (`view::writer`).
    pub view_bytes_bounded: bool,
}

impl TopicConfigs {
    /// What is assumed until (or unless) the broker says.
    pub const UNKNOWN: TopicConfigs = TopicConfigs { view_bytes_bounded: true };
}

/// Refuses to run on a state topic that is not compacted, and reads the
/// view topic's `retention.bytes`, where the broker can say
/// (DescribeConfigs; the MockCluster cannot: then a warning and
/// [`TopicConfigs::UNKNOWN`]).
pub fn check_topic_configs(settings: &Settings) -> Result<TopicConfigs, TopologyError> {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> = base(settings, Role::Admin).create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TopologyError::Create(e.to_string()))?;
    let (state, view) = (settings.topics.state.as_str(), settings.topics.view.as_str());
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let answer =
        rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic(state), &ResourceSpecifier::Topic(view)], &opts));
    let (policy, view_bytes) = match answer.as_deref() {
        Ok([Ok(s), Ok(v)]) => (
            s.get("cleanup.policy").and_then(|e| e.value.clone()),
            v.get("retention.bytes").and_then(|e| e.value.clone()),
        ),
        Ok(other) => {
            let why = other.iter().find_map(|r| r.as_ref().err()).map(|e| format!("{e:?}")).unwrap_or_default();
            tracing::warn!(
                topic = state,
                why,
                "cannot check that the state topic is compacted (the broker does not say)"
            );
            return Ok(TopicConfigs::UNKNOWN);
        }
        Err(e) => {
            tracing::warn!(topic = state, error = %e, "cannot check that the state topic is compacted (the broker does not say)");
            return Ok(TopicConfigs::UNKNOWN);
        }
    };
    judge_topic_configs(state, policy.as_deref(), view_bytes.as_deref())
}

/// [`check_topic_configs`]' verdict on what the broker said.
pub fn judge_topic_configs(
    state: &str,
    state_policy: Option<&str>,
    view_retention_bytes: Option<&str>,
) -> Result<TopicConfigs, TopologyError> {
    match state_policy {
        Some(p) if !p.split(',').any(|x| x.trim() == "compact") => {
            return Err(TopologyError::NotCompacted(format!("{state} has cleanup.policy={p}")));
        }
        _ => {}
    }
    // Any value but a negative number (none given, or not a number) is
    // taken as a bound: the re-puts by bytes cost little where not needed.
    let unbounded = view_retention_bytes.and_then(|b| b.trim().parse::<i64>().ok()).is_some_and(|b| b < 0);
    Ok(TopicConfigs { view_bytes_bounded: !unbounded })
}

/// A client for metadata questions (brokers reachable, partition counts),
/// made once: each new client costs a connection and a first metadata
/// round trip, which showed at start-up.
pub type MetadataClient = BaseConsumer<Quiet>;

/// Waits until the brokers answer, saying so in the log, with backoff;
/// returns the client that asked, for further questions.
pub fn wait_for_brokers(settings: &Settings, shutdown: &AtomicBool) -> Result<MetadataClient, TopologyError> {
    let consumer: BaseConsumer<Quiet> = plain_consumer(settings).create_with_context(Quiet)?;
    let mut backoff = Duration::from_millis(500);
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) if !md.brokers().is_empty() => {
                tracing::info!(brokers = md.brokers().len(), bootstrap = %settings.kafka.brokers, "connected to Kafka");
                return Ok(consumer);
            }
            Ok(_) => tracing::warn!(bootstrap = %settings.kafka.brokers, "no brokers in metadata yet; retrying"),
            Err(e) => {
                tracing::warn!(bootstrap = %settings.kafka.brokers, error = %e, retry_in_ms = backoff.as_millis() as u64, "brokers unreachable; retrying")
            }
        }
        let until = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < until {
            if shutdown.load(Ordering::Relaxed) {
                return Err(TopologyError::Stopped);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Partition counts of the seven topics (`None`: missing).
fn partition_counts(
    consumer: &MetadataClient,
    settings: &Settings,
) -> Result<Vec<(String, Option<usize>)>, KafkaError> {
    let md = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(settings
        .topics
        .all()
        .into_iter()
        .map(|name| {
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map(|t| t.partitions().len())
                .filter(|n| *n > 0);
            (name.to_owned(), n)
        })
        .collect())
}

/// How long `andon run` waits at start for topics the broker it asked does
/// not list: on a cluster of several brokers, topics created a moment
/// before (by a deployment script, say) may not be known yet to the one
/// that answered, while another already lists them (seen on Apache Kafka:
/// a member started right after the topics were made exited "topics
/// missing" while its peers ran).
pub const LISTED_WITHIN_AT_START: Duration = Duration::from_secs(10);

/// Refuses to start unless all seven topics exist with one partition count;
/// creates missing ones first when `processing.create_topics` is set, and
/// otherwise waits up to `listed_within` for them to be listed
/// ([`LISTED_WITHIN_AT_START`] at start; zero for the periodic check).
pub fn check_topics(
    consumer: &MetadataClient,
    settings: &Settings,
    listed_within: Duration,
) -> Result<usize, TopologyError> {
    let mut counts = partition_counts(consumer, settings)?;
    let missing = |counts: &[(String, Option<usize>)]| -> Vec<String> {
        counts.iter().filter(|(_, n)| n.is_none()).map(|(t, _)| t.clone()).collect()
    };
    let mut absent = missing(&counts);
    if !absent.is_empty() && !settings.processing.create_topics && !listed_within.is_zero() {
        tracing::info!(
            topics = %absent.join(", "),
            wait_s = listed_within.as_secs(),
            "topics not listed by the broker asked: waiting for them (topics just created may not be known to every broker yet)"
        );
        counts = wait_until_listed(consumer, settings, listed_within)?;
        absent = missing(&counts);
    }
    if !absent.is_empty() {
        if !settings.processing.create_topics {
            return Err(TopologyError::Missing(absent.join(", ")));
        }
        let partitions = counts.iter().find_map(|(_, n)| *n).unwrap_or(6);
        let absent: Vec<&str> = absent.iter().map(String::as_str).collect();
        create(settings, &absent, partitions)?;
        counts = wait_until_listed(consumer, settings, Duration::from_secs(30))?;
    }
    let first = counts.iter().find_map(|(_, n)| *n).unwrap_or(0);
    if counts.iter().any(|(_, n)| *n != Some(first)) {
        let list: Vec<String> =
            counts.iter().map(|(t, n)| format!("{t}: {}", n.map_or("missing".into(), |n| n.to_string()))).collect();
        return Err(TopologyError::Unequal(list.join(", ")));
    }
    Ok(first)
}

/// The partition counts once every topic is listed, or as they stand
/// after `within`. A broker answers CreateTopics once the controller has
/// the topics; the broker a metadata request reaches may learn of them a
/// moment later (Apache Kafka: andon refused to start with the topics it
/// had just created "missing").
fn wait_until_listed(
    consumer: &MetadataClient,
    settings: &Settings,
    within: Duration,
) -> Result<Vec<(String, Option<usize>)>, TopologyError> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let counts = partition_counts(consumer, settings)?;
        if counts.iter().all(|(_, n)| n.is_some()) || std::time::Instant::now() >= deadline {
            return Ok(counts);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create(settings: &Settings, topics: &[&str], partitions: usize) -> Result<(), TopologyError> {
    let admin: AdminClient<DefaultClientContext> = base(settings, Role::Admin).create()?;
    let (state, view) = (settings.topics.state.as_str(), settings.topics.view.as_str());
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let n = NewTopic::new(t, partitions as i32, TopicReplication::Fixed(-1));
            if *t == state {
                n.set("cleanup.policy", "compact")
            } else if *t == view {
                // A table (latest value per key) whose closed-andon history
                // ages out after 30 days; open andons are re-put by their
                // owner well within that (see `view::writer`).
                n.set("cleanup.policy", "compact,delete").set("retention.ms", crate::view::RETENTION_MS)
            } else {
                n
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TopologyError::Create(e.to_string()))?;
    let results = rt.block_on(admin.create_topics(&new, &AdminOptions::new()))?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions, "created topic"),
            // Another member starting at the same time made it first.
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::info!(topic = %t, "topic created meanwhile"),
            Err((t, code)) => return Err(TopologyError::Create(format!("{t}: {code}"))),
        }
    }
    Ok(())
}

/// Client errors, into `tracing`. End-of-partition events are how the
/// merge learns an input is caught up, not errors: they are not logged.
pub fn error(error: KafkaError, reason: &str) {
    if matches!(error, KafkaError::PartitionEOF(_)) || reason.contains("reached end of partition") {
        return;
    }
    tracing::error!(target: "librdkafka", %error, "{reason}");
}

/// The context of andon's plain consumers: librdkafka's log and errors
/// into `tracing`.
pub struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self::error(error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

/// librdkafka's log lines, into `tracing` (without secrets: librdkafka
/// does not log configuration values at these levels).
pub fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_prefetch_is_bounded_unless_the_user_says_otherwise() {
        let s = Settings::from_toml("").expect("defaults");
        for c in [group_consumer(&s), updates_consumer(&s)] {
            assert_eq!(c.get("queued.min.messages"), Some("2000"));
            assert_eq!(c.get("fetch.queue.backoff.ms"), Some("10"));
        }
        assert_eq!(changelog_reader(&s).get("queued.min.messages"), None, "a restore reads at librdkafka's pace");
        let s = Settings::from_toml("[kafka.properties]\n\"queued.min.messages\" = \"500\"").expect("settings");
        assert_eq!(group_consumer(&s).get("queued.min.messages"), Some("500"));
        assert_eq!(group_consumer(&s).get("fetch.queue.backoff.ms"), Some("10"));
    }

    #[test]
    fn the_view_topic_is_unbounded_only_where_the_broker_says_a_negative_retention_bytes() {
        let bounded =
            |b: Option<&str>| judge_topic_configs("s", Some("compact"), b).expect("compacted").view_bytes_bounded;
        assert!(!bounded(Some("-1")), "Apache Kafka's default");
        assert!(bounded(Some("104857600")));
        assert!(bounded(None), "not said");
        assert!(bounded(Some("lots")), "not a number");
        let e = judge_topic_configs("andon.state", Some("delete"), Some("-1")).expect_err("not compacted");
        assert!(e.to_string().contains("andon.state has cleanup.policy=delete"), "{e}");
        assert!(judge_topic_configs("s", Some("compact,delete"), None).is_ok());
        assert!(judge_topic_configs("s", None, None).is_ok(), "no policy said: not refused");
    }
}
