//! Faults injected into a running `andon run`, each test named for its
//! fault: a poison record, a corrupt or broken state chain, request errors
//! (transient and permanent), the broker gone for 20 s, a restore slower
//! than `max.poll.interval.ms`, a partition that cannot write, partitions
//! added in place, the loop held up by a batch while both inputs fill.
//! Each shows nothing lost, nothing twice, no stall — or, where the fault
//! is one an operator must fix, that it is loud and confined to its
//! partition. The faults only the MockCluster can inject
//! (request errors, an outage, a slow broker) run on it alone; the others
//! on Apache Kafka too.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use andon::config::Settings;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr::*};

on_both!(
    a_complaint_of_1_040_000_bytes_goes_to_the_dlq_without_its_value_and_the_pair_behind_it_pulls,
    a_corrupt_state_record_on_partition_0_of_2_stops_that_partition_alone,
    a_chain_missing_its_first_checkpoint_is_refused_and_that_partition_alone_stops,
    a_partition_that_cannot_write_is_reported_stalled_and_retried_with_backoff,
    partitions_added_in_place_while_stopped_are_refused_at_start,
);

/// The partition each subject key's complaints landed in.
fn partitions_of_keys(bootstrap: &str) -> std::collections::BTreeMap<String, i32> {
    read_all(bootstrap, "andon.complaints").into_iter().filter_map(|r| Some((r.key?, r.partition))).collect()
}

fn outputs(bootstrap: &str) -> Vec<Record> {
    let mut got = read_all(bootstrap, "andon.delist-commands");
    got.extend(read_all(bootstrap, "andon.work-orders"));
    got
}

/// Every output id once, and the outputs per key equal replay's.
fn assert_exactly_once_and_equal_to_replay(bootstrap: &str, settings: &Settings, complaints: &[String]) {
    let got = outputs(bootstrap);
    let mut ids = BTreeSet::new();
    for r in &got {
        let v = r.json();
        let id = v["command_id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}|{}|{}", v["andon_id"], v["type"], v["step"]));
        assert!(ids.insert(id.clone()), "{id} written twice");
    }
    let expected = replay(settings, complaints, &[]);
    assert_eq!(per_key_topics(&got), per_key_replay(&expected));
}

fn wait_for_outputs(bootstrap: &str, want: usize) {
    eventually(Duration::from_secs(120), &format!("{want} outputs"), || outputs(bootstrap).len() >= want);
    // And nothing more comes.
    std::thread::sleep(Duration::from_secs(2));
}

fn a_complaint_of_1_040_000_bytes_goes_to_the_dlq_without_its_value_and_the_pair_behind_it_pulls(on: On) {
    let _s = serial();
    let (_cluster, bootstrap) = cluster(on, 1);
    // Legal under Kafka's default topic limit (1 MiB); the producer must
    // allow it (librdkafka's own default is 1,000,000).
    let poison = format!(
        r#"{{"event_id":"big","occurred_at":"{}","subject":{{"kind":"sku","id":"P"}},"issue":"print_defect","customer_id":"c","note":"{}"}}"#,
        event_time(0),
        "x".repeat(1_040_000 - 140)
    );
    assert!(poison.len() >= 1_039_000 && poison.len() <= 1_040_000, "{}", poison.len());
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.max.bytes", "1048588")
        .create()
        .expect("producer");
    p.send(BaseRecord::to("andon.complaints").key("sku:P").payload(&poison)).map_err(|(e, _)| e).expect("send");
    p.flush(Duration::from_secs(30)).expect("flush");
    let good = pairs("G", 1, 1);
    produce(&bootstrap, "andon.complaints", &good);
    let settings = settings(&bootstrap, PAIR_RULES);
    let run = Running::start(&settings);
    eventually(Duration::from_secs(60), "the pair behind the poison record pulls", || {
        outputs(&bootstrap).iter().any(|r| r.json()["type"] == "opened")
    });
    let dlq = read_all(&bootstrap, "andon.dlq");
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0].value.is_empty(), "the value is omitted");
    assert_eq!(dlq[0].headers["andon.error.reason"], "too_large");
    assert_eq!(dlq[0].headers["andon.error.value_omitted"], poison.len().to_string());
    assert_eq!(dlq[0].headers["andon.source.offset"], "0", "the source coordinates find the original");
    assert_eq!(run.metric("andon_batch_failures_total{kind=\"permanent\"}"), Some(0.0), "no batch failed");
    run.stop();
}

/// Runs andon over `inputs` once so that both partitions have a chain.
fn seed_state(bootstrap: &str, settings: &Settings, inputs: &[String]) {
    produce(bootstrap, "andon.complaints", inputs);
    let run = Running::start(settings);
    wait_for_outputs(bootstrap, inputs.len() / 2 * 2);
    run.stop();
}

/// After a fault in partition 0's chain: partition 1 goes on, partition 0
/// does not, the process lives, `/readyz` and the metric say so.
fn assert_partition_0_alone_fails(bootstrap: &str, settings: &Settings, what: &str) {
    let run = Running::start(settings);
    let more = pairs("N", 12, 30);
    produce(bootstrap, "andon.complaints", &more);
    let placed = partitions_of_keys(bootstrap);
    let keys = |p: i32| -> BTreeSet<String> {
        (0..12).map(|i| format!("sku:N{i}")).filter(|k| placed.get(k) == Some(&p)).collect()
    };
    let (on0, on1) = (keys(0), keys(1));
    assert!(!on0.is_empty() && !on1.is_empty(), "the new subjects fall in both partitions");
    eventually(Duration::from_secs(60), "partition 1 processes", || {
        let opened: BTreeSet<String> =
            outputs(bootstrap).iter().filter(|r| r.json()["type"] == "opened").filter_map(|r| r.key.clone()).collect();
        on1.is_subset(&opened)
    });
    eventually(Duration::from_secs(30), "partition 0 reported failed", || {
        run.metric("andon_partition_failed{partition=\"0\"}") == Some(1.0)
    });
    let opened: BTreeSet<String> =
        outputs(bootstrap).iter().filter(|r| r.json()["type"] == "opened").filter_map(|r| r.key.clone()).collect();
    assert!(on0.is_disjoint(&opened), "partition 0 processed nothing ({what})");
    assert!(run.alive(), "the process lives");
    let (code, body) = run.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("partition 0 failed"), "{body}");
    assert_eq!(run.metric("andon_partition_failed{partition=\"1\"}"), Some(0.0));
    run.stop();
}

fn a_corrupt_state_record_on_partition_0_of_2_stops_that_partition_alone(on: On) {
    let _s = serial();
    let (_cluster, bootstrap) = cluster(on, 2);
    let settings = settings(&bootstrap, PAIR_RULES);
    seed_state(&bootstrap, &settings, &pairs("S", 10, 0));
    // A record that does not decode, appended to partition 0's chain.
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("producer");
    p.send(BaseRecord::to("andon.state").partition(0).key("checkpoint/garbage").payload("\u{2}not a frame"))
        .map_err(|(e, _)| e)
        .expect("send");
    p.flush(Duration::from_secs(10)).expect("flush");
    assert_partition_0_alone_fails(&bootstrap, &settings, "corrupt record");
}

fn a_chain_missing_its_first_checkpoint_is_refused_and_that_partition_alone_stops(on: On) {
    let _s = serial();
    let (_cluster, bootstrap) = cluster(on, 2);
    let settings = settings(&bootstrap, PAIR_RULES);
    // Partition 1's chain as andon writes it; partition 0's the same but
    // for its checkpoint 1, which never reaches the broker (the MockCluster
    // cannot delete records: the chain is written here, by andon's own
    // format code, without it).
    use andon::kafka::checkpoint::{Chain, Kind, Positions, Stamp, Writing};
    let engine_changes = |n: usize| {
        let mut e = andon::engine::Engine::new(settings.engine.clone(), andon::engine::EscalationClock::WallClock);
        e.track_changes();
        let mut out = Vec::new();
        let c = andon::event::decode_complaint(complaint(&format!("x{n}"), "X", "ann", 0).as_bytes(), 65536)
            .expect("complaint");
        let _ = e.on_complaint(c.clone(), andon::engine::RecordMeta::default(), &mut out);
        let mut body = andon::engine::changes::Encoded::default();
        e.take_changes(&mut body);
        body
    };
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("producer");
    let mut chain = Chain::default();
    let w = Writing { stamp: Stamp { era: 0, generation: 1 }, attempt: 1, partitions: 2 };
    for seq in 1..=3u64 {
        let pos = Positions { complaints: 0, ..Positions::default() };
        let written = chain.write(w, Kind::Checkpoint, pos, &engine_changes(seq as usize));
        if seq > 1 {
            for r in &written.records {
                let mut rec = BaseRecord::to("andon.state").partition(0).key(r.key.as_str());
                if let Some(v) = &r.value {
                    rec = rec.payload(v.as_slice());
                }
                p.send(rec).map_err(|(e, _)| e).expect("send");
            }
        }
        chain.advance(&written, w.stamp, pos, seq as i64 * 2);
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    assert_partition_0_alone_fails(&bootstrap, &settings, "chain without checkpoint 1");
}

#[test]
fn produce_and_fetch_errors_transient_and_permanent_lose_nothing_and_duplicate_nothing() {
    let _s = serial();
    let (cluster, bootstrap) = mock_cluster(2);
    let settings = settings(&bootstrap, PAIR_RULES);
    let mut run = Running::start(&settings);
    let mut all = Vec::new();
    // Transient errors, injected before the round's input: the test's own
    // producer retries them too, andon's batches fail and are retried.
    for (round, (api, err, n)) in [
        (RDKafkaApiKey::Produce, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 4),
        (RDKafkaApiKey::Fetch, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 5),
        (RDKafkaApiKey::Produce, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 3),
        (RDKafkaApiKey::Fetch, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 3),
        (RDKafkaApiKey::Fetch, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 2),
    ]
    .into_iter()
    .enumerate()
    {
        cluster.mock().request_errors(api, &vec![err; n]);
        let inputs = pairs(&format!("R{round}-"), 8, round as i64 * 5);
        produce(&bootstrap, "andon.complaints", &inputs);
        all.extend(inputs);
        std::thread::sleep(Duration::from_millis(1500));
    }
    // A delist and an opened per pair.
    wait_for_outputs(&bootstrap, all.len());
    // A permanent error (the record too large for the broker) on andon's
    // own writes: injected while andon is stopped and the input is in, so
    // that andon's first batches after its restart meet it.
    run.stop();
    let inputs = pairs("P-", 8, 40);
    produce(&bootstrap, "andon.complaints", &inputs);
    all.extend(inputs);
    cluster.mock().request_errors(RDKafkaApiKey::Produce, &[RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 3]);
    run = Running::start(&settings);
    wait_for_outputs(&bootstrap, all.len());
    assert!(run.alive());
    assert!(
        run.metric("andon_batch_failures_total{kind=\"permanent\"}").unwrap_or(0.0) >= 1.0,
        "a permanent error was met and retried"
    );
    assert_exactly_once_and_equal_to_replay(&bootstrap, &settings, &all);
    eventually(Duration::from_secs(60), "ready again", || run.get("/readyz").0 == 200);
    run.stop();
}

#[test]
fn a_broker_down_for_20_seconds_loses_nothing_duplicates_nothing_and_recovers() {
    let _s = serial();
    let (cluster, bootstrap) = mock_cluster(2);
    let settings = settings(&bootstrap, PAIR_RULES);
    let run = Running::start(&settings);
    let first = pairs("A", 10, 0);
    produce(&bootstrap, "andon.complaints", &first);
    wait_for_outputs(&bootstrap, first.len());
    let second = pairs("B", 10, 10);
    produce(&bootstrap, "andon.complaints", &second);
    std::thread::sleep(Duration::from_millis(50));
    cluster.mock().broker_down(1).expect("down");
    std::thread::sleep(Duration::from_secs(20));
    assert!(run.alive(), "the process lives through the outage");
    cluster.mock().broker_up(1).expect("up");
    let third = pairs("C", 10, 20);
    produce(&bootstrap, "andon.complaints", &third);
    let all: Vec<String> = first.into_iter().chain(second).chain(third).collect();
    wait_for_outputs(&bootstrap, all.len());
    assert_exactly_once_and_equal_to_replay(&bootstrap, &settings, &all);
    eventually(Duration::from_secs(60), "ready again", || run.get("/readyz").0 == 200);
    run.stop();
}

#[test]
fn a_restore_slower_than_max_poll_interval_keeps_the_member_in_its_group() {
    let _s = serial();
    let (cluster, bootstrap) = mock_cluster(2);
    // max.poll.interval.ms at its smallest legal value (the session
    // timeout), and every request slowed so that a restore takes longer.
    let extra = "\"max.poll.interval.ms\" = \"6000\"\n";
    let toml =
        settings_toml(&bootstrap, PAIR_RULES).replace("[kafka.properties]\n", &format!("[kafka.properties]\n{extra}"));
    let settings = Settings::from_toml(&toml).expect("settings");
    seed_state(&bootstrap, &settings, &pairs("S", 20, 0));
    cluster.mock().broker_round_trip_time(1, Duration::from_millis(400)).expect("rtt");
    let run = Running::start(&settings);
    let more = pairs("T", 10, 30);
    produce(&bootstrap, "andon.complaints", &more);
    let all: Vec<String> = pairs("S", 20, 0).into_iter().chain(more).collect();
    wait_for_outputs(&bootstrap, all.len());
    cluster.mock().broker_round_trip_time(1, Duration::ZERO).expect("rtt");
    assert_eq!(
        run.metric("andon_rebalances_total"),
        Some(1.0),
        "one assignment: the member never fell out of its group"
    );
    assert_exactly_once_and_equal_to_replay(&bootstrap, &settings, &all);
    run.stop();
}

fn a_partition_that_cannot_write_is_reported_stalled_and_retried_with_backoff(on: On) {
    let _s = serial();
    let (_cluster, bootstrap) = cluster(on, 1);
    // Every batch with a pull fails the same way: the work order (60
    // evidence ids of 120 characters) does not fit a producer limited to
    // 1,000 bytes a record. Permanent: it would fail again, and does.
    let rules =
        "[rules.default]\nthreshold = 60\nwindow = \"1h\"\nroute = [\"product\"]\n[owners.product]\nsla = \"30d\"\n";
    let toml = settings_toml(&bootstrap, rules)
        .replace("[processing]\n", "[processing]\nstall_after = \"3s\"\n")
        .replace("[kafka.properties]\n", "[kafka.properties]\n\"message.max.bytes\" = \"1000\"\n");
    let settings = Settings::from_toml(&toml).expect("settings");
    let run = Running::start(&settings);
    eventually(Duration::from_secs(30), "ready", || run.get("/readyz").0 == 200);
    let inputs: Vec<String> =
        (0..60).map(|i| complaint(&format!("{i:03}{}", "e".repeat(117)), "BIG", &format!("c{i}"), 0)).collect();
    produce(&bootstrap, "andon.complaints", &inputs);
    eventually(Duration::from_secs(60), "the partition reported stalled", || {
        run.metric("andon_partition_stalled{partition=\"0\"}") == Some(1.0)
    });
    let (code, body) = run.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("stalled"), "{body}");
    assert!(run.alive());
    let failures = run.metric("andon_batch_failures_total{kind=\"permanent\"}").unwrap_or(0.0);
    assert!(failures >= 1.0, "counted as permanent");
    // Retried with backoff (100 ms doubling), not in a tight loop; and
    // stalled all along: each retry restores the partition and fails
    // again, which is no progress (the clock does not restart).
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(run.metric("andon_partition_stalled{partition=\"0\"}"), Some(1.0), "stalled through its retries");
    }
    let later = run.metric("andon_batch_failures_total{kind=\"permanent\"}").unwrap_or(0.0);
    assert!(later - failures <= 4.0, "{failures} then {later}: backing off");
    // What did fit (the delist) may stand in its partition from an aborted
    // attempt (the MockCluster shows aborted records); the retries find it
    // there and do not write it again.
    let written = outputs(&bootstrap);
    assert!(written.len() <= 1, "each output at most once while retrying: {written:?}");
    run.stop();
}

fn partitions_added_in_place_while_stopped_are_refused_at_start(on: On) {
    let _s = serial();
    let (cluster, bootstrap) = cluster(on, 2);
    let settings = settings(&bootstrap, PAIR_RULES);
    let run = Running::start(&settings);
    eventually(Duration::from_secs(30), "ready", || run.get("/readyz").0 == 200);
    produce(&bootstrap, "andon.complaints", &pairs("S", 4, 0));
    wait_for_outputs(&bootstrap, 8);
    run.stop();
    // The same topics with 4 partitions, the changelog carried over as it
    // is (what `kafka-topics --alter --partitions 4` does to andon's topics).
    let mut four = settings.clone();
    for t in [
        &mut four.topics.complaints,
        &mut four.topics.work_order_updates,
        &mut four.topics.delist_commands,
        &mut four.topics.work_orders,
        &mut four.topics.dlq,
        &mut four.topics.state,
        &mut four.topics.view,
    ] {
        t.push_str(".four");
        let compacted: &[(&str, &str)] =
            if t.starts_with("andon.state") { &[("cleanup.policy", "compact")] } else { &[] };
        cluster.create_topic(t, 4, compacted);
    }
    let state = read_all(&bootstrap, "andon.state");
    assert!(!state.is_empty(), "a changelog was written");
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("producer");
    for r in &state {
        let mut rec: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(&four.topics.state).partition(r.partition).payload(r.value.as_slice());
        if let Some(k) = &r.key {
            rec = rec.key(k.as_bytes());
        }
        p.send(rec).map_err(|(e, _)| e).expect("send");
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(andon::kafka::run(Arc::new(four), Arc::default(), &flag).map_err(|e| e.to_string()));
    });
    // Refused at start, before any partition (old or new) is processed.
    let result = rx.recv_timeout(Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    let _ = handle.join();
    let message = match result {
        Ok(Err(message)) => message,
        Ok(Ok(())) => panic!("andon ran on topics with partitions added"),
        Err(_) => panic!("andon started on topics with partitions added (not refused within 30 s)"),
    };
    assert!(message.contains("2 partitions") && message.contains("4 now"), "{message}");
    assert!(message.contains("Migrating to a new partition count"), "{message}");
}

/// The member's loop is held up by a batch that waits for its table
/// records (the view topic's broker is down), and meanwhile the consumers
/// fetch, for the other partition, a pair of complaints that pulls and,
/// after it, an update of the andon they open. Both inputs of that
/// partition had been reported at their end and quiet for longer than
/// `max_task_idle` before the loop stopped to wait; once it goes on, the
/// update must still be merged after the complaints fetched before it,
/// not let through ahead of them because the complaints' end was stale
/// (it went to the DLQ as `unknown_andon`, a CI run's failure of
/// view.rs's failed-batch test, where replay handles it).
#[test]
fn records_fetched_while_a_batch_waits_are_merged_in_event_time_order() {
    let _serial = serial();
    let run = ViewApart::start(PAIR_RULES, 4000);
    // Both inputs of both partitions at their end, and quiet.
    std::thread::sleep(Duration::from_secs(1));
    let on = |p: i32| {
        (0..)
            .map(|i| format!("Q{i}"))
            .find(|s| andon::view::Partitioner::Murmur2.partition(format!("sku:{s}").as_bytes(), 2) == p)
            .expect("a subject")
    };
    let (blocker, late) = (on(1), on(0));
    let andon = format!("sku:{late}/print_defect#1");
    let mut complaints = vec![complaint("b1", &blocker, "ann", 0), complaint("b2", &blocker, "bob", 0)];
    let late_pair = vec![complaint("l1", &late, "ann", 1), complaint("l2", &late, "bob", 1)];
    let update = format!(
        r#"{{"update_id":"u1","andon_id":"{andon}","step":1,"actor":"pm","at":"{}","verdict":"defect_confirmed"}}"#,
        event_time(10 * 60)
    );
    run.cluster.broker_down(2).expect("down");
    produce(&run.bootstrap, "andon.complaints", &complaints);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while run.written("andon.work-orders", 1) == 0 {
        assert!(std::time::Instant::now() < deadline, "the blocker's outputs were never written");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The loop now waits up to 4 s for the blocker's table records.
    let held = std::time::Instant::now();
    produce(&run.bootstrap, "andon.complaints", &late_pair);
    produce(&run.bootstrap, "andon.work-order-updates", std::slice::from_ref(&update));
    assert!(held.elapsed() < Duration::from_secs(3), "produced while the loop waits ({:?})", held.elapsed());
    std::thread::sleep(Duration::from_secs(5));
    run.cluster.broker_up(2).expect("up");
    complaints.extend(late_pair);
    let expected = replay(&run.settings, &complaints, std::slice::from_ref(&update));
    assert!(expected.iter().any(|l| l["value"]["type"] == "closed"), "replay closes the late andon");
    let want = expected.iter().filter(|l| l["topic"] != "andon.dlq").count();
    eventually(Duration::from_secs(120), &format!("{want} outputs or a record in the DLQ"), || {
        outputs(&run.bootstrap).len() >= want || !read_all(&run.bootstrap, "andon.dlq").is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let dlq = read_all(&run.bootstrap, "andon.dlq");
    assert!(dlq.is_empty(), "nothing to the DLQ: {:?}", dlq.iter().map(|r| &r.headers).collect::<Vec<_>>());
    assert_eq!(per_key_topics(&outputs(&run.bootstrap)), per_key_replay(&expected));
    run.stop();
}

/// A topic the broker does not list yet when `andon run` starts (on a
/// cluster of several brokers, topics made a moment before may not be known
/// to the one asked; Apache Kafka showed it): andon waits for it up to
/// `LISTED_WITHIN_AT_START` (10 s) and then processes as usual, rather than
/// exit "topics missing"; a topic never listed is still refused, naming
/// it, once that wait is over.
#[test]
fn a_topic_listed_a_moment_after_start_is_waited_for_and_one_never_listed_is_refused() {
    use andon::kafka::client::LISTED_WITHIN_AT_START;
    let _s = serial();
    init_logs();
    let topics = Settings::from_toml("").expect("defaults").topics;
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("cluster");
    for t in topics.all().into_iter().filter(|t| *t != topics.view) {
        cluster.create_topic(t, 2, 1).expect("topic");
    }
    let bootstrap = cluster.bootstrap_servers();
    let settings = settings(&bootstrap, PAIR_RULES);

    let t0 = std::time::Instant::now();
    let status = Arc::new(andon::ops::status::Status::default());
    let refused = andon::kafka::run(Arc::new(settings.clone()), status, &AtomicBool::new(false))
        .expect_err("a topic never listed is refused");
    assert!(refused.to_string().contains("topics missing: andon.view"), "{refused}");
    assert!(t0.elapsed() >= LISTED_WITHIN_AT_START, "refused after its wait, not at once: {:?}", t0.elapsed());

    let run = Running::start(&settings);
    std::thread::sleep(Duration::from_secs(2));
    cluster.create_topic(&topics.view, 2, 1).expect("the view topic, late");
    let complaints = pairs("L", 4, 0);
    produce(&bootstrap, "andon.complaints", &complaints);
    wait_for_outputs(&bootstrap, complaints.len());
    assert_exactly_once_and_equal_to_replay(&bootstrap, &settings, &complaints);
    run.stop();
}
