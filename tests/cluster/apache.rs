//! What only a real broker can show, on Apache Kafka (`scripts/kafka`):
//!
//! - the start-up checks answered by the broker: `processing.create_topics`
//!   makes all seven topics with the configs the docs promise (read back
//!   with DescribeConfigs), a state topic that is not compacted is refused
//!   naming the topic, unequal partition counts are refused;
//! - `andon_consumer_lag` equals the lag `kafka-consumer-groups` reports
//!   from the group's committed offsets (andon commits both inputs'
//!   positions in each transaction), on a stalled partition and a drained
//!   one;
//! - a member stopped with SIGTERM hands its partitions over at once (a
//!   real LeaveGroup, not the session timeout), and a static member
//!   (`group.instance.id`) restarted within its session timeout gets its
//!   partitions back without a rebalance; with the classic group protocol
//!   and with KIP-848's `consumer` protocol.
//!
//! Every test here is ignored by a plain `cargo test` (no JVM there) and
//! run by `scripts/test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::apache::Apache;
use crate::common::*;
use andon::config::Settings;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

fn outputs(bootstrap: &str) -> Vec<Record> {
    let mut got = read_all(bootstrap, "andon.delist-commands");
    got.extend(read_all(bootstrap, "andon.work-orders"));
    got
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A topic's configs as the broker describes them (DescribeConfigs).
fn topic_configs(bootstrap: &str, topic: &str) -> BTreeMap<String, String> {
    let answer = block_on(admin(bootstrap).describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()))
        .expect("describe configs");
    let resource = answer.into_iter().next().expect("one resource").expect("described");
    resource.entries.into_iter().filter_map(|e| Some((e.name, e.value?))).collect()
}

/// `andon run` in this process until it stops on its own (an error at
/// start) or `wait` is up: its error, if it stopped.
fn refused(settings: &Settings, wait: Duration) -> Option<String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let (flag, s) = (stop.clone(), settings.clone());
    let handle = std::thread::spawn(move || {
        let _ = tx.send(andon::kafka::run(Arc::new(s), Arc::default(), &flag).map_err(|e| e.to_string()));
    });
    let result = rx.recv_timeout(wait);
    stop.store(true, Ordering::SeqCst);
    let _ = handle.join();
    match result {
        Ok(Err(message)) => Some(message),
        Ok(Ok(())) | Err(_) => None,
    }
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn the_start_up_checks_are_answered_by_the_broker() {
    let _serial = serial();
    init_logs();
    let kafka = Apache::single();
    let bootstrap = kafka.bootstrap.clone();
    let toml = settings_toml(&bootstrap, PAIR_RULES).replace("[processing]\n", "[processing]\ncreate_topics = true\n");
    let settings = Settings::from_toml(&toml).expect("settings");

    // No topics: andon makes all seven, six partitions each, and runs.
    let run = Running::start(&settings);
    eventually(Duration::from_secs(60), "ready on the topics it created", || run.get("/readyz").0 == 200);
    assert!(run.alive());
    let listed = kafka.tool(&["topics", "--describe"]);
    for t in settings.topics.all() {
        let line = listed.lines().find(|l| l.starts_with(&format!("Topic: {t}\t"))).unwrap_or_else(|| {
            panic!("{t} was not created:\n{listed}");
        });
        assert!(line.contains("PartitionCount: 6"), "{line}");
    }
    let state = topic_configs(&bootstrap, &settings.topics.state);
    assert_eq!(state["cleanup.policy"], "compact", "the state topic is compacted");
    let view = topic_configs(&bootstrap, &settings.topics.view);
    assert_eq!(view["cleanup.policy"], "compact,delete", "the view topic is a table that ages out");
    assert_eq!(view["retention.ms"], "2592000000", "after 30 days");
    for t in [&settings.topics.complaints, &settings.topics.delist_commands, &settings.topics.dlq] {
        assert_eq!(topic_configs(&bootstrap, t)["cleanup.policy"], "delete", "{t} is a plain log");
    }
    run.stop();

    // The view topic as andon made it keeps any number of bytes: its
    // owners re-put open andons hourly only. Bounded by bytes, by bytes too.
    let configs = |s: &Settings| andon::kafka::client::check_topic_configs(s).expect("configs");
    assert!(!configs(&settings).view_bytes_bounded, "retention.bytes -1: unbounded");
    let bound = AlterConfig::new(ResourceSpecifier::Topic(&settings.topics.view))
        .set("cleanup.policy", "compact,delete")
        .set("retention.ms", "2592000000")
        .set("retention.bytes", "104857600");
    let r = block_on(admin(&bootstrap).alter_configs([&bound], &AdminOptions::new())).expect("alter configs");
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    eventually(Duration::from_secs(30), "the broker says retention.bytes 100 MiB", || {
        topic_configs(&bootstrap, &settings.topics.view).get("retention.bytes").map(String::as_str) == Some("104857600")
    });
    assert!(configs(&settings).view_bytes_bounded, "retention.bytes 100 MiB: bounded");

    // The state topic turned into a plain log: refused, naming it.
    let alter = |policy: &str| {
        let change = AlterConfig::new(ResourceSpecifier::Topic(&settings.topics.state)).set("cleanup.policy", policy);
        let r = block_on(admin(&bootstrap).alter_configs([&change], &AdminOptions::new())).expect("alter configs");
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    };
    alter("delete");
    eventually(Duration::from_secs(30), "the broker says delete", || {
        topic_configs(&bootstrap, &settings.topics.state)["cleanup.policy"] == "delete"
    });
    let message = refused(&settings, Duration::from_secs(60)).expect("refused on a state topic that is not compacted");
    assert!(message.contains("andon.state has cleanup.policy=delete"), "{message}");
    alter("compact");

    // One topic grown to eight partitions: refused, naming the counts.
    let grow = NewPartitions::new(&settings.topics.dlq, 8);
    let r = block_on(admin(&bootstrap).create_partitions([&grow], &AdminOptions::new())).expect("create partitions");
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    apache_wait_for_partitions(&bootstrap, &settings.topics.dlq, 8);
    let message = refused(&settings, Duration::from_secs(60)).expect("refused on unequal partition counts");
    assert!(message.contains("same partition count") && message.contains("andon.dlq: 8"), "{message}");
}

fn apache_wait_for_partitions(bootstrap: &str, topic: &str, n: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("consumer");
    eventually(Duration::from_secs(30), &format!("{topic} with {n} partitions"), || {
        c.fetch_metadata(Some(topic), Duration::from_secs(5)).is_ok_and(|md| md.topics()[0].partitions().len() == n)
    });
}

/// `kafka-consumer-groups --describe`: the LAG per (topic, partition).
fn tool_lag(kafka: &Apache, group: &str) -> BTreeMap<(String, i32), i64> {
    let text = kafka.tool(&["consumer-groups", "--describe", "--group", group]);
    let mut lag = BTreeMap::new();
    let mut columns: Vec<&str> = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.contains(&"LAG") {
            columns = cells;
            continue;
        }
        let col = |name: &str| columns.iter().position(|c| *c == name).and_then(|i| cells.get(i));
        let (Some(topic), Some(p), Some(l)) = (col("TOPIC"), col("PARTITION"), col("LAG")) else { continue };
        if let (Ok(p), Ok(l)) = (p.parse(), l.parse()) {
            lag.insert(((*topic).to_owned(), p), l);
        }
    }
    lag
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn consumer_lag_equals_what_kafka_consumer_groups_reports() {
    let _serial = serial();
    init_logs();
    let kafka = Apache::single();
    kafka.create_andon_topics(2, &BTreeMap::new());
    let bootstrap = kafka.bootstrap.clone();
    // A pull whose work order cannot be written (60 evidence ids, a
    // producer limited to 1,000 bytes a record) stalls its partition, with
    // the records behind it not processed: the lag andon reports for it
    // must be what the broker's committed offsets say.
    let rules =
        "[rules.default]\nthreshold = 60\nwindow = \"1h\"\nroute = [\"product\"]\n[owners.product]\nsla = \"30d\"\n";
    let toml = settings_toml(&bootstrap, rules)
        .replace("[kafka.properties]\n", "[kafka.properties]\n\"message.max.bytes\" = \"1000\"\n");
    let settings = Settings::from_toml(&toml).expect("settings");
    let run = Running::start(&settings);
    eventually(Duration::from_secs(60), "ready", || run.get("/readyz").0 == 200);
    // Some ordinary records first (both partitions commit positions).
    let warm: Vec<String> = (0..40).map(|i| complaint(&format!("w{i}"), &format!("W{i}"), "ann", 0)).collect();
    produce(&bootstrap, "andon.complaints", &warm);
    let updates: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"update_id":"u{i}","andon_id":"sku:W{i}/print_defect#1","step":1,"actor":"pm","at":"{}"}}"#,
                event_time(60)
            )
        })
        .collect();
    produce(&bootstrap, "andon.work-order-updates", &updates);
    eventually(Duration::from_secs(60), "the first records processed and committed", || {
        let lag = tool_lag(&kafka, "andon-test");
        lag.len() == 4 && lag.values().all(|l| *l == 0)
    });
    // Then the poison pull, and more records behind it on its partition.
    let big: Vec<String> =
        (0..60).map(|i| complaint(&format!("{i:03}{}", "e".repeat(117)), "BIG", &format!("c{i}"), 1)).collect();
    let behind: Vec<String> = (0..15).map(|i| complaint(&format!("after{i}"), "BIG", &format!("d{i}"), 2)).collect();
    produce(&bootstrap, "andon.complaints", &[big, behind].concat());
    let stalled = read_all(&bootstrap, "andon.complaints")
        .iter()
        .find(|r| r.key.as_deref() == Some("sku:BIG"))
        .map(|r| r.partition)
        .expect("BIG's partition");
    eventually(Duration::from_secs(60), "the partition stalled", || {
        run.metric(&format!("andon_partition_stalled{{partition=\"{stalled}\"}}")) == Some(1.0)
    });
    // andon's figure per partition number (complaints and updates summed)
    // against the tool's, once both are steady.
    let mut last = (BTreeMap::new(), BTreeMap::new());
    eventually(Duration::from_secs(60), "andon and kafka-consumer-groups agree", || {
        let tool = tool_lag(&kafka, "andon-test");
        let mut by_partition: BTreeMap<i32, i64> = BTreeMap::new();
        for ((_, p), l) in &tool {
            *by_partition.entry(*p).or_default() += l;
        }
        let ours: BTreeMap<i32, i64> = (0..2)
            .filter_map(|p| Some((p, run.metric(&format!("andon_consumer_lag{{partition=\"{p}\"}}"))? as i64)))
            .collect();
        let agree = by_partition == ours && ours.get(&stalled).is_some_and(|l| *l > 0);
        last = (by_partition, ours);
        agree
    });
    eprintln!("lag per partition: kafka-consumer-groups {:?}, andon {:?}", last.0, last.1);
    run.stop();
}

/// A configuration file for a member of `group` with `protocol` (the
/// classic one or KIP-848's `consumer`), `instance` its static id if any.
fn member_config(
    dir: &Path,
    name: &str,
    bootstrap: &str,
    protocol: &str,
    instance: Option<&str>,
) -> std::path::PathBuf {
    let mut text = settings_toml(bootstrap, PAIR_RULES);
    if protocol == "consumer" {
        // The broker sets the session timeout and heartbeat of the
        // consumer protocol (scripts/kafka: 6 s and 0.5 s; here the
        // group's own config, below); the client may not.
        text = text
            .lines()
            .filter(|l| !l.starts_with("\"session.timeout.ms\"") && !l.starts_with("\"heartbeat.interval.ms\""))
            .collect::<Vec<_>>()
            .join("\n");
        text = text.replace("[kafka.properties]", "[kafka.properties]\n\"group.protocol\" = \"consumer\"");
    } else {
        text = text.replace("\"session.timeout.ms\" = \"6000\"", "\"session.timeout.ms\" = \"30000\"");
    }
    if let Some(id) = instance {
        text = text.replace("[kafka.properties]", &format!("[kafka.properties]\n\"group.instance.id\" = \"{id}\""));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("config");
    path
}

/// The partitions a member's `/readyz` says it owns once ready.
fn owned(log: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(log).ok()?;
    let addr = served_addr(&text)?;
    let (code, body) = http_get(addr, "/readyz");
    (code == 200).then(|| body.split("ready: ").nth(1)?.split(' ').next()?.parse().ok()).flatten()
}

fn rebalances(log: &Path) -> Option<f64> {
    let addr = served_addr(&std::fs::read_to_string(log).ok()?)?;
    let (_, body) = http_get(addr, "/metrics");
    body.lines().find_map(|l| l.strip_prefix("andon_rebalances_total ")?.trim().parse().ok())
}

/// Two members on four partitions: one leaves with SIGTERM and the other
/// has all four within a few seconds, though the session timeout is 30 s
/// (a leaving member says so: LeaveGroup); then, as static members, one
/// restarts and gets its partitions back with no rebalance at the other.
fn leave_and_static_restart(protocol: &str) {
    let _serial = serial();
    let kafka = Apache::start(
        1,
        &["group.consumer.session.timeout.ms=30000", "group.consumer.max.session.timeout.ms=60000"],
        false,
    );
    kafka.create_andon_topics(4, &BTreeMap::new());
    let bootstrap = kafka.bootstrap.clone();
    let dir = crate::common::faults::TestDir::new(&format!("apache-group-{protocol}"));
    let mut all: Vec<String> = Vec::new();
    let mut feed = |n: usize| {
        let batch = pairs(&format!("R{n}-"), 20, n as i64);
        produce(&bootstrap, "andon.complaints", &batch);
        all.extend(batch);
        all.clone()
    };
    let settings = settings(&bootstrap, PAIR_RULES);
    let drained = |all: &[String]| {
        let want = all.len();
        eventually(Duration::from_secs(90), &format!("{want} outputs"), || outputs(&bootstrap).len() >= want);
    };

    // LeaveGroup: dynamic members.
    let (a_cfg, b_cfg) = (
        member_config(dir.path(), "a", &bootstrap, protocol, None),
        member_config(dir.path(), "b", &bootstrap, protocol, None),
    );
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut a = spawn_andon(&["run", "--config", a_cfg.to_str().expect("path")], &a_log);
    let b = spawn_andon(&["run", "--config", b_cfg.to_str().expect("path")], &b_log);
    eventually(Duration::from_secs(90), "a and b share the four partitions", || {
        owned(&a_log).zip(owned(&b_log)).is_some_and(|(x, y)| x + y == 4 && x > 0 && y > 0)
    });
    drained(&feed(0));
    let _ = std::process::Command::new("kill").args(["-TERM", &a.0.id().to_string()]).status();
    let left = Instant::now();
    assert!(a.0.wait().expect("wait").success(), "a stops cleanly");
    eventually(Duration::from_secs(25), "b owns all four (before a's 30 s session could lapse)", || {
        owned(&b_log) == Some(4)
    });
    let handover = left.elapsed();
    drained(&feed(1));
    drop(b);

    // Static membership: a restart within the session timeout is no
    // rebalance.
    let (c_cfg, d_cfg) = (
        member_config(dir.path(), "c", &bootstrap, protocol, Some("c")),
        member_config(dir.path(), "d", &bootstrap, protocol, Some("d")),
    );
    let (c_log, d_log) = (dir.path().join("c.log"), dir.path().join("d.log"));
    let _c = spawn_andon(&["run", "--config", c_cfg.to_str().expect("path")], &c_log);
    let mut d = spawn_andon(&["run", "--config", d_cfg.to_str().expect("path")], &d_log);
    eventually(Duration::from_secs(90), "c and d share the four partitions", || {
        owned(&c_log).zip(owned(&d_log)).is_some_and(|(x, y)| x + y == 4 && x > 0 && y > 0)
    });
    let d_owned = owned(&d_log).expect("d's partitions");
    drained(&feed(2));
    let c_rebalances = rebalances(&c_log).expect("c's metrics");
    let _ = std::process::Command::new("kill").args(["-TERM", &d.0.id().to_string()]).status();
    assert!(d.0.wait().expect("wait").success(), "d stops cleanly");
    let more = feed(3);
    let d2 = spawn_andon(&["run", "--config", d_cfg.to_str().expect("path")], &d_log);
    eventually(Duration::from_secs(60), "d back with its partitions", || owned(&d_log) == Some(d_owned));
    drained(&more);
    assert_eq!(rebalances(&c_log), Some(c_rebalances), "c saw no rebalance while d restarted");
    assert_eq!(owned(&c_log), Some(4 - d_owned), "c kept its partitions");
    drop(d2);

    // Everything exactly once, equal to replay.
    let got = outputs(&bootstrap);
    let ids: Vec<String> = got.iter().map(Record::output_id).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "every output once");
    assert_eq!(per_key_topics(&got), per_key_replay(&replay(&settings, &all, &[])));
    eprintln!("{protocol} protocol: partitions handed over {handover:.1?} after SIGTERM");
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn a_leaving_member_hands_over_at_once_and_a_static_member_restarts_without_a_rebalance_classic_protocol() {
    leave_and_static_restart("classic");
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn a_leaving_member_hands_over_at_once_and_a_static_member_restarts_without_a_rebalance_consumer_protocol() {
    leave_and_static_restart("consumer");
}

/// Lines of the brokers' logs (every node's `server.log`) that say the
/// log cleaner rewrote a partition of `topic`.
fn cleanings(kafka: &Apache, topic: &str) -> usize {
    let needle = format!("cleaned log {topic}-");
    (1..=kafka.nodes)
        .map(|n| {
            let log = std::fs::read_to_string(kafka.dir().join(format!("node{n}/server.log"))).unwrap_or_default();
            log.to_lowercase().matches(&needle).count()
        })
        .sum()
}

/// The cleaner at its most eager: a new segment every second, any dirt
/// worth cleaning, tombstones gone after a second.
const EAGER_CLEANER: [(&str, &str); 4] = [
    ("segment.ms", "1000"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("min.compaction.lag.ms", "0"),
    ("delete.retention.ms", "1000"),
];

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn under_an_eager_log_cleaner_every_restore_is_exact_and_the_view_complete() {
    use crate::common::faults::{chains, check, Traffic, TrafficOptions, RULES as FAULT_RULES};
    let _serial = serial();
    init_logs();
    let t0 = Instant::now();
    let kafka = Apache::single();
    let partitions = 4;
    let topics = Settings::from_toml("").expect("defaults").topics;
    let mut extra: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    extra.insert(&topics.state, EAGER_CLEANER.to_vec());
    extra.insert(&topics.view, EAGER_CLEANER.to_vec());
    kafka.create_andon_topics(partitions, &extra);
    let bootstrap = kafka.bootstrap.clone();
    // Members in this process, static (their transactional ids apart), with
    // a snapshot every 4 KiB of checkpoints: snapshots and the tombstones
    // after them all the time, for the cleaner to remove what they cover.
    let member = |name: &str| {
        let toml = settings_toml(&bootstrap, FAULT_RULES)
            .replace("[kafka.properties]", &format!("[kafka.properties]\n\"group.instance.id\" = \"{name}\""));
        let settings = Settings::from_toml(&toml).expect("settings");
        Running::with_view(&settings, andon::kafka::RunOptions { snapshot_after_bytes: 4096 })
    };
    let ready = |m: &Running| m.get("/readyz").0 == 200;
    let mut a = Some(member("a"));
    let mut b = Some(member("b"));
    eventually(Duration::from_secs(60), "a and b ready", || {
        a.as_ref().is_some_and(ready) && b.as_ref().is_some_and(ready)
    });
    let traffic = Traffic::start(
        &bootstrap,
        TrafficOptions {
            rate: 80.0,
            subjects: 1500,
            update_delay: Duration::from_secs(12),
            cooldown: Duration::from_secs(12),
            seed: 21,
            // The view's /bad-pulls counts the closes of the last 30 days.
            days_back: 2,
        },
        t0,
    );
    // Handovers throughout: one member away past its session timeout (the
    // other restores its partitions from the compacted changelog), then
    // back (a rebalance hands some back, restored again).
    let mut handovers = 0;
    for round in 0..6 {
        std::thread::sleep(Duration::from_secs(6));
        let away = if round % 2 == 0 { &mut a } else { &mut b };
        if let Some(m) = away.take() {
            m.stop();
        }
        std::thread::sleep(Duration::from_secs(9));
        *away = Some(member(if round % 2 == 0 { "a" } else { "b" }));
        handovers += 2;
        for m in [&a, &b].into_iter().flatten() {
            assert_eq!(
                m.metric("andon_partition_failed{partition=\"0\"}").unwrap_or(0.0)
                    + (1..partitions)
                        .map(|p| m.metric(&format!("andon_partition_failed{{partition=\"{p}\"}}")).unwrap_or(0.0))
                        .sum::<f64>(),
                0.0,
                "no restore failed"
            );
        }
    }
    traffic.pause();
    let owned = |m: &Running| -> Option<usize> {
        let (code, body) = m.get("/readyz");
        (code == 200).then(|| body.split("ready: ").nth(1)?.split(' ').next()?.parse().ok()).flatten()
    };
    eventually(Duration::from_secs(120), "a and b own every partition, ready", || {
        a.as_ref().and_then(owned).unwrap_or(0) + b.as_ref().and_then(owned).unwrap_or(0) == partitions as usize
    });
    std::thread::sleep(Duration::from_secs(10));
    let seen = traffic.finish();
    for m in [a.take(), b.take()].into_iter().flatten() {
        m.stop();
    }
    // A member that was never here restores every partition from what the
    // cleaner left, and its view is the whole cluster's.
    let fresh = member("fresh");
    eventually(Duration::from_secs(120), "the fresh member owns every partition", || {
        owned(&fresh) == Some(partitions as usize)
    });
    let (state_cleanings, view_cleanings) = (cleanings(&kafka, &topics.state), cleanings(&kafka, &topics.view));
    let outcome = check(&bootstrap, partitions);
    let chains = chains(&bootstrap, partitions);
    eprintln!(
        "compaction: {}; {} opened, {} closed; the cleaner rewrote state partitions {state_cleanings} times and view partitions {view_cleanings} times; {handovers} handovers",
        outcome.summary(),
        seen.opened,
        seen.closed
    );
    assert!(
        state_cleanings >= 10 && view_cleanings >= 10,
        "the cleaner ran often: {state_cleanings} / {view_cleanings}"
    );
    assert!(seen.opened > 50 && seen.closed > 20, "work orders opened and closed: {seen:?}");
    assert!(chains.errors.is_empty(), "every chain resolves: {:?}", chains.errors);
    let problems = outcome.problems_strict();
    assert!(problems.is_empty(), "{}\n{}", outcome.summary(), problems.join("\n"));

    // The view: the open andons replay leaves, every close once.
    let (complaints, updates) = crate::common::faults::inputs_in_topics(&bootstrap);
    let expected = replay(&settings("unused:9092", FAULT_RULES), &complaints, &updates);
    let open = expected_open(&expected);
    let closed = expected.iter().filter(|l| l["value"]["type"] == "closed").count();
    eventually(Duration::from_secs(60), "the fresh member's view lists replay's open andons", || {
        let (_, body) = fresh.get("/andons");
        let listed: BTreeSet<String> = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["andon_id"].as_str().map(str::to_owned))
            .collect();
        listed == open
    });
    let (_, bad) = fresh.get("/bad-pulls");
    let bad: serde_json::Value = serde_json::from_str(&bad).expect("json");
    assert_eq!(bad["closed"], closed, "every close once in the view's history");
    fresh.stop();
}

/// The node that coordinates `group` (`kafka-consumer-groups --state`).
fn group_coordinator(kafka: &Apache, group: &str) -> Option<u32> {
    let text = kafka.tool(&["consumer-groups", "--describe", "--group", group, "--state"]);
    // "GROUP  COORDINATOR (ID)  ASSIGNMENT-STRATEGY ...", then
    // "andon-test  127.0.0.1:40123  (2)  ...".
    let line = text.lines().find(|l| l.starts_with(group))?;
    line.split('(').nth(1)?.split(')').next()?.trim().parse().ok()
}

/// The nodes that coordinate the members' transactions
/// (`kafka-transactions list`).
fn transaction_coordinators(kafka: &Apache) -> BTreeSet<u32> {
    let text = kafka.tool(&["transactions", "list"]);
    let mut columns: Vec<&str> = Vec::new();
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.first() == Some(&"TransactionalId") {
            columns = cells;
            continue;
        }
        let Some(i) = columns.iter().position(|c| *c == "Coordinator") else { continue };
        if let Some(id) = cells.get(i).and_then(|c| c.parse().ok()) {
            ids.insert(id);
        }
    }
    ids
}

/// Every replica of every partition in sync again (after a node's return).
fn fully_replicated(kafka: &Apache) {
    eventually(Duration::from_secs(120), "no under-replicated partitions", || {
        kafka.tool(&["topics", "--describe", "--under-replicated-partitions"]).trim().is_empty()
    });
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn brokers_killed_one_at_a_time_lose_nothing_repeat_nothing_and_processing_resumes() {
    use crate::common::faults::*;
    let _serial = serial();
    let t0 = Instant::now();
    let dir = TestDir::new("apache-brokers");
    let partitions = 6;
    let cluster = Cluster::start_apache_with(3, partitions, &QUICK_FENCE);
    let kafka = cluster.apache().expect("Apache Kafka");
    let config = write_config(dir.path(), &cluster.bootstrap, SESSION_TIMEOUT);
    let mut members: Vec<Member> = ["a", "b", "c"].iter().map(|n| Member::new(n, &config, dir.path())).collect();
    for m in &mut members {
        m.start();
    }
    let drain = |members: &[Member], what: &str| -> Duration {
        let r: Vec<&Member> = members.iter().collect();
        wait_drained(&cluster.bootstrap, partitions, &r, Duration::from_secs(2), Duration::from_secs(180))
            .unwrap_or_else(|e| {
                let tails: Vec<String> = members
                    .iter()
                    .map(|m| format!("--- {} (stacks: {:?}):\n{}", m.name, m.stacks(), m.tail(40)))
                    .collect();
                panic!("{what}: {e}\n{}", tails.join("\n"))
            })
    };
    drain(&members, "the group forms");
    let traffic = Traffic::start(
        &cluster.bootstrap,
        TrafficOptions {
            rate: 60.0,
            subjects: 2000,
            update_delay: Duration::from_secs(30),
            cooldown: Duration::from_secs(30),
            seed: 33,
            days_back: 365,
        },
        t0,
    );
    std::thread::sleep(Duration::from_secs(8));
    // The active controller, the group's coordinator, a transaction
    // coordinator, and then whichever node has not been killed yet.
    let mut killed: BTreeSet<u32> = BTreeSet::new();
    for round in 0..4 {
        let (role, node) = match round {
            0 => ("the active controller", kafka.controller()),
            1 => ("the group coordinator", group_coordinator(kafka, "andon-test").expect("a coordinator")),
            2 => (
                "a transaction coordinator",
                *transaction_coordinators(kafka).iter().next().expect("transactions in flight"),
            ),
            _ => ("the node not killed yet", (1..=3).find(|n| !killed.contains(n)).unwrap_or(1)),
        };
        killed.insert(node);
        let before = watermarks(&cluster.bootstrap, &TOPICS_OUT, partitions).1;
        say(t0, format!("kill -9 node {node}, {role}"));
        kafka.kill(node);
        // Two of three replicas left: min.insync.replicas (2) still met,
        // so processing goes on while the node is down: at once, or, when
        // librdkafka's send_offsets_to_transaction hangs on the lost
        // coordinator, once andon's 15 s watchdog has replaced the producer
        // (docs/guarantees.md, "What you see, and what to do").
        let down = Instant::now();
        let mut during = before;
        eventually(Duration::from_secs(45), &format!("outputs going on with node {node} down"), || {
            during = watermarks(&cluster.bootstrap, &TOPICS_OUT, partitions).1;
            during > before
        });
        say(t0, format!("outputs went on {:.1?} after node {node} went down ({before} then {during})", down.elapsed()));
        std::thread::sleep(Duration::from_secs(12).saturating_sub(down.elapsed()));
        for m in &mut members {
            assert!(m.exited().is_none(), "{} runs:\n{}", m.name, m.tail(40));
            let h = m.health().unwrap_or_else(|| panic!("{} answers over HTTP", m.name));
            say(t0, format!("{}: {} (lag {})", m.name, h.readyz, h.lag));
        }
        kafka.restart(node);
        let back = Instant::now();
        say(t0, format!("node {node} back"));
        // Drained means every member ready, every partition owned, no lag
        // and no new output for a while: with complaints still arriving
        // (an output every second or so) that moment need never come, so
        // the traffic waits while the members catch up.
        traffic.pause();
        let took = drain(&members, &format!("after node {node} came back"));
        say(t0, format!("drained {took:.1?} after node {node}'s return ({:.1?} since)", back.elapsed()));
        fully_replicated(kafka);
        traffic.resume();
    }
    traffic.pause();
    drain(&members, "at the end");
    let seen = traffic.finish();
    for m in &mut members {
        let s = m.term(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        assert!(s.success(), "{} stops cleanly", m.name);
    }
    let outcome = check(&cluster.bootstrap, partitions);
    say(t0, format!("brokers: {}; {} opened, {} closed", outcome.summary(), seen.opened, seen.closed));
    let problems = outcome.problems_strict();
    assert!(problems.is_empty(), "{}\n{}", outcome.summary(), problems.join("\n"));
    assert!(seen.opened > 20, "work orders opened: {seen:?}");
}

/// `scripts/kafka tool DIR acls` with `args`.
fn acls(kafka: &Apache, args: &[&str]) {
    let mut all = vec!["acls"];
    all.extend_from_slice(args);
    kafka.tool(&all);
}

#[test]
#[ignore = "Apache Kafka: needs Java and Maven; scripts/test runs it"]
fn over_sasl_ssl_with_acls_a_wrong_password_or_a_missing_grant_is_loud_and_nothing_is_lost() {
    let _serial = serial();
    let kafka = Apache::start(1, &[], true);
    kafka.create_andon_topics(2, &BTreeMap::new());
    let plain = kafka.bootstrap.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    // What andon's principal may do: its topics, groups and transactional
    // ids (prefixed), but not write the work orders, yet.
    let user = "User:andon";
    for (kind, prefix) in [("--topic", "andon."), ("--group", "andon-test"), ("--transactional-id", "andon-")] {
        acls(
            &kafka,
            &[
                "--add",
                "--allow-principal",
                user,
                "--operation",
                "All",
                kind,
                prefix,
                "--resource-pattern-type",
                "prefixed",
            ],
        );
    }
    acls(&kafka, &["--add", "--deny-principal", user, "--operation", "Write", "--topic", "andon.work-orders"]);

    let config = dir.path().join("andon.toml");
    let ca = kafka.env("KAFKA_CA");
    let toml = settings_toml(&kafka.env("KAFKA_SASL_BOOTSTRAP"), PAIR_RULES).replace(
        "[kafka.properties]",
        &format!(
            "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"andon\"\n\"ssl.ca.location\" = \"{ca}\""
        ),
    );
    std::fs::write(&config, toml).expect("config");
    let run = |log: &Path, password: &str| {
        Proc(
            andon_command(&["run", "--config", config.to_str().expect("path")], log)
                .env("ANDON__KAFKA__PROPERTIES__SASL__PASSWORD", password)
                .spawn()
                .expect("spawn andon"),
        )
    };

    // A wrong password: alive, not ready, and the log says why.
    let wrong_log = dir.path().join("wrong.log");
    let mut wrong = run(&wrong_log, "not-the-password");
    std::thread::sleep(Duration::from_secs(15));
    assert!(wrong.0.try_wait().expect("wait").is_none(), "no crash (nor a loop of them) on a wrong password");
    let text = std::fs::read_to_string(&wrong_log).unwrap_or_default();
    let addr = served_addr(&text).expect("serves HTTP");
    assert_eq!(http_get(addr, "/readyz").0, 503, "not ready");
    assert_eq!(http_get(addr, "/healthz").0, 200, "but alive");
    assert!(
        text.contains("Authentication failed") || text.contains("authentication failed"),
        "the log says so:\n{text}"
    );
    assert!(!text.contains("not-the-password"), "the password is not logged");
    drop(wrong);

    // The right one, without Write on the work orders: the batches with a
    // pull wait, loudly; granted, everything arrives once.
    let log = dir.path().join("andon.log");
    let password = kafka.env("KAFKA_SASL_ANDON_PASSWORD");
    let _andon = run(&log, &password);
    let first = pairs("S", 6, 0);
    produce(&plain, "andon.complaints", &first);
    let metrics = || -> String {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        served_addr(&text).map(|a| http_get(a, "/metrics").1).unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !metrics().lines().any(|l| {
        l.starts_with("andon_batch_failures_total{kind=\"permanent\"}")
            && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) >= 1.0
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "no permanent batch failure counted in 90 s; andon's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.contains("andon.work-orders") && (l.contains("uthoriz") || l.contains("AUTHORIZATION"))),
        "the log names the topic and the missing authorization:\n{text}"
    );
    assert!(read_all(&plain, "andon.work-orders").is_empty(), "nothing written where andon may not write");
    assert!(read_all(&plain, "andon.delist-commands").is_empty(), "nor half a batch elsewhere");
    acls(
        &kafka,
        &["--remove", "--force", "--deny-principal", user, "--operation", "Write", "--topic", "andon.work-orders"],
    );
    let second = pairs("T", 6, 5);
    produce(&plain, "andon.complaints", &second);
    let all: Vec<String> = first.into_iter().chain(second).collect();
    eventually(Duration::from_secs(120), "every output once granted", || outputs(&plain).len() >= all.len());
    std::thread::sleep(Duration::from_secs(2));
    let got = outputs(&plain);
    let ids: Vec<String> = got.iter().map(Record::output_id).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "every output once: {ids:?}");
    assert_eq!(per_key_topics(&got), per_key_replay(&replay(&settings("unused:9092", PAIR_RULES), &all, &[])));
}
