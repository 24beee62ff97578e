//! Recovery through the seam, in memory, in milliseconds: tasks restored
//! from the changelog, batches written, faults injected between, and the
//! outputs compared with `andon replay`'s. What the processing loop does
//! around a failed batch (abort, restore what it touched, go on) is
//! repeated here with the same pieces; the MockCluster tests (tests/)
//! remain the proof end to end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{self, Share, Writer};
use super::checkpoint::{ChainError, SNAPSHOT_AFTER_BYTES};
use super::errors::FailureKind;
use super::io::memory::{Fault, Memory, MemoryReader, MemorySink, Stored};
use super::io::BatchSink;
use super::restore::{restore, written_partition_count, RestoreError, Why};
use super::task::{Incoming, Limits, Produce, Task};
use crate::config::Settings;
use crate::merge::Side;
use crate::time::Ts;

const PARTITIONS: usize = 2;

fn settings() -> Arc<Settings> {
    Arc::new(
        Settings::from_toml(
            "[rules.default]\nthreshold = 2\nwindow = \"1h\"\nroute = [\"product\", \"operations\"]\n[owners.product]\nsla = \"1h\"\n[owners.operations]\nsla = \"1h\"",
        )
        .expect("valid"),
    )
}

fn topics(s: &Settings) -> Vec<&str> {
    s.topics.all().to_vec()
}

/// Key and value of a complaint about `sku` from `customer` at minute `m`.
fn complaint(i: usize, sku: &str, customer: &str, m: usize) -> (String, String) {
    (
        format!("sku:{sku}"),
        format!(
            r#"{{"event_id":"e{i}","occurred_at":"2026-11-01T{:02}:{:02}:00Z","subject":{{"kind":"sku","id":"{sku}"}},"issue":"print_defect","customer_id":"{customer}"}}"#,
            10 + m / 60,
            m % 60
        ),
    )
}

/// Which partition a subject key goes to, here: by a byte of it.
fn partition_of(key: &str) -> i32 {
    (key.bytes().map(u32::from).sum::<u32>() % PARTITIONS as u32) as i32
}

/// Records of one input partition as the in-memory broker shows them.
type Records<'a> = &'a [(i64, Stored)];

/// One member: its tasks, its sink, a cursor per input partition.
struct Member {
    broker: Memory,
    settings: Arc<Settings>,
    sink: MemorySink,
    reader: MemoryReader,
    tasks: BTreeMap<i32, Task>,
    pending: BTreeMap<i32, Vec<Produce>>,
    /// The batch's outputs sent while it was processed, as the processing
    /// loop sends them: here those of the even partitions, so that every
    /// batch has both kinds; how many of each partition's `pending`; and
    /// why sending failed, if it did.
    stream: batch::Stream,
    sent: BTreeMap<i32, usize>,
    stream_failed: Option<batch::BatchError>,
    attempt: u64,
    /// The partition count its checkpoints say they were written with.
    partitions: u32,
}

impl Member {
    /// `_generation`: the group generation it is in, which only its
    /// restores' `Why::Assigned` carries into its checkpoints.
    fn new(broker: &Memory, _generation: i32) -> Self {
        Self {
            broker: broker.clone(),
            settings: settings(),
            sink: broker.sink(true),
            reader: broker.reader(),
            tasks: BTreeMap::new(),
            pending: BTreeMap::new(),
            stream: batch::Stream::default(),
            sent: BTreeMap::new(),
            stream_failed: None,
            attempt: 0,
            partitions: PARTITIONS as u32,
        }
    }

    fn limits() -> Limits {
        Limits { max_event_bytes: 65_536, max_message_bytes: 1_000_000 }
    }

    /// Restores `ps`; returns the failures.
    fn restore(&mut self, ps: &[i32], why: Why) -> Vec<(i32, RestoreError)> {
        let req: Vec<(i32, Why)> = ps.iter().map(|p| (*p, why)).collect();
        let mut failed = Vec::new();
        for (p, r) in restore(&self.reader, &self.settings, &req, PARTITIONS as u32, &Self::limits()) {
            match r {
                Ok(r) => {
                    self.tasks.insert(p, r.task);
                    self.pending.insert(p, Vec::new());
                }
                Err(e) => failed.push((p, e)),
            }
        }
        failed
    }

    /// Feeds each task everything past its position and processes it, in
    /// two rounds as the processing loop would: the updates and the first
    /// half of the complaints, then the rest. After each round the even
    /// partitions' outputs are sent into the batch, so a batch streams
    /// twice (in about 30 of these tests' batches both rounds have outputs)
    /// and a `Send` fault can fall between its rounds.
    fn process(&mut self) {
        let t = &self.settings.topics;
        for (p, task) in self.tasks.iter_mut() {
            let (c, u) = task.input_positions();
            let now = Instant::now() + Duration::from_secs(3600);
            let pending = self.pending.get_mut(p).expect("pending");
            let complaints: Vec<_> =
                self.broker.visible(&t.complaints, *p).into_iter().filter(|(o, _)| *o >= c).collect();
            let updates: Vec<_> =
                self.broker.visible(&t.work_order_updates, *p).into_iter().filter(|(o, _)| *o >= u).collect();
            let (first, rest) = complaints.split_at(complaints.len() / 2);
            // The updates are read to their end in the first round (so
            // the merge can take complaints), the complaints in the second.
            let rounds: [(&[(Side, Records<'_>)], Side); 2] = [
                (&[(Side::Updates, &updates), (Side::Complaints, first)], Side::Updates),
                (&[(Side::Complaints, rest)], Side::Complaints),
            ];
            for (inputs, ended) in rounds {
                for (side, records) in inputs {
                    for (offset, r) in records.iter() {
                        let m = Incoming {
                            side: *side,
                            offset: *offset,
                            key: r.key.as_deref(),
                            value: r.value.as_deref(),
                            timestamp: None,
                        };
                        task.offer(m, now, Duration::ZERO, pending);
                    }
                }
                task.at_end(ended);
                task.process(now, Ts::EPOCH, Duration::ZERO, pending);
                let sent = self.sent.entry(*p).or_default();
                if p % 2 == 0 && self.stream_failed.is_none() {
                    match self.stream.send(&mut self.sink, t, *p, &pending[*sent..], &[]) {
                        Ok(()) => *sent = pending.len(),
                        Err(e) => self.stream_failed = Some(e),
                    }
                }
            }
        }
    }

    /// Writes a batch; on failure aborts it and restores what it touched,
    /// as the processing loop does.
    fn write(&mut self) -> Result<(), FailureKind> {
        self.attempt += 1;
        let mut bodies = BTreeMap::new();
        for (p, task) in self.tasks.iter_mut() {
            bodies.insert(*p, task.checkpoint_body(SNAPSHOT_AFTER_BYTES));
        }
        let shares: Vec<Share<'_>> = self
            .tasks
            .iter()
            .map(|(p, task)| Share {
                partition: *p,
                outputs: &self.pending[p][self.sent.get(p).copied().unwrap_or(0)..],
                table: &[],
                inputs: task.input_positions(),
                kind: bodies[p].0,
                body: &bodies[p].1,
                chain: &task.chain,
                era: task.era,
                generation: task.generation,
            })
            .collect();
        let writer = Writer { attempt: self.attempt, partitions: self.partitions };
        let stream = std::mem::take(&mut self.stream);
        let result = match self.stream_failed.take() {
            Some(e) => Err(e),
            None => batch::write(&mut self.sink, &self.settings.topics, stream, &shares, writer),
        };
        drop(shares);
        self.sent.clear();
        match result {
            Ok(done) => {
                for d in done {
                    let task = self.tasks.get_mut(&d.partition).expect("task");
                    task.chain.advance(&d.written, d.stamp, d.positions, d.state_end);
                    self.pending.insert(d.partition, Vec::new());
                }
                Ok(())
            }
            Err(e) => {
                self.sink.abort().expect("abort");
                let touched: Vec<i32> = self.tasks.keys().copied().collect();
                let stamps: Vec<(u32, i32)> =
                    touched.iter().map(|p| (self.tasks[p].era, self.tasks[p].generation)).collect();
                self.tasks.clear();
                for (p, (era, generation)) in touched.iter().zip(stamps) {
                    let failed = self.restore(&[*p], Why::Recovery { era, generation });
                    assert!(failed.is_empty(), "recovery restores: {failed:?}");
                }
                Err(e.kind())
            }
        }
    }
}

/// A broker with the test's topics; complaints appended to their partitions.
fn broker(inputs: &[(String, String)]) -> Memory {
    let s = settings();
    let m = Memory::new(&topics(&s), PARTITIONS);
    for (k, v) in inputs {
        m.append(&s.topics.complaints, partition_of(k), Some(k.as_bytes()), Some(v.as_bytes()));
    }
    m
}

/// What `andon replay` gives for the same complaints, per output topic and key.
fn replayed(inputs: &[(String, String)]) -> BTreeMap<(String, String), Vec<serde_json::Value>> {
    let s = settings();
    let lines: Vec<&str> = inputs.iter().map(|(_, v)| v.as_str()).collect();
    let text = lines.join("\n");
    let mut out = Vec::new();
    let input = crate::replay::Input { name: "c".into(), reader: text.as_bytes() };
    crate::replay::replay::<_, &[u8], _>(&s, input, None, &mut out, &mut |_| {}).expect("replay");
    let mut m: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for line in String::from_utf8(out).expect("utf-8").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        if v["value"]["type"] == "escalated" {
            continue;
        }
        let key =
            (v["topic"].as_str().unwrap_or_default().to_owned(), v["key"].as_str().unwrap_or_default().to_owned());
        m.entry(key).or_default().push(v["value"].clone());
    }
    m
}

/// The output topics as a read_committed consumer sees them, same shape.
fn written(b: &Memory) -> BTreeMap<(String, String), Vec<serde_json::Value>> {
    let s = settings();
    let mut m: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for topic in [&s.topics.delist_commands, &s.topics.work_orders] {
        for p in 0..PARTITIONS as i32 {
            for (_, r) in b.visible(topic, p) {
                let v: serde_json::Value =
                    serde_json::from_slice(r.value.as_deref().unwrap_or_default()).expect("json");
                if v["type"] == "escalated" {
                    continue;
                }
                let key = String::from_utf8(r.key.unwrap_or_default()).expect("key");
                m.entry((topic.to_string(), key)).or_default().push(v);
            }
        }
    }
    m
}

/// Pairs of complaints on eight subjects, with repeats and noise.
fn traffic(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| complaint(i, &format!("S{}", i % 8), &format!("c{}", (i * 7) % 5), i)).collect()
}

fn run_in_slices(m: &mut Member, b: &Memory, inputs: &[(String, String)], slices: usize, faults: &[(usize, Fault)]) {
    let s = settings();
    let per = inputs.len().div_ceil(slices);
    for (k, chunk) in inputs.chunks(per).enumerate() {
        for (key, v) in chunk {
            b.append(&s.topics.complaints, partition_of(key), Some(key.as_bytes()), Some(v.as_bytes()));
        }
        for (at, f) in faults {
            if *at == k {
                b.inject(f.clone());
            }
        }
        m.process();
        // A failed batch is retried (after the restore) until one succeeds.
        let mut tries = 0;
        while m.write().is_err() {
            tries += 1;
            assert!(tries < 10, "a transient fault passes");
            m.process();
        }
    }
}

#[test]
fn without_faults_the_outputs_equal_replay() {
    let inputs = traffic(200);
    let b = broker(&[]);
    let mut m = Member::new(&b, 1);
    assert!(m.restore(&[0, 1], Why::Assigned { generation: 1 }).is_empty());
    run_in_slices(&mut m, &b, &inputs, 10, &[]);
    assert_eq!(written(&b), replayed(&inputs));
}

#[test]
fn the_partition_count_the_changelog_was_written_with_is_read_back() {
    let inputs = traffic(50);
    let b = broker(&[]);
    let state = settings().topics.state.clone();
    assert_eq!(written_partition_count(&b.reader(), &state, PARTITIONS as u32), Ok(None), "nothing written yet");
    let mut m = Member::new(&b, 1);
    // As if written before the topics had partitions added in place.
    m.partitions = 7;
    assert!(m.restore(&[0, 1], Why::Assigned { generation: 1 }).is_empty());
    run_in_slices(&mut m, &b, &inputs, 2, &[]);
    assert_eq!(written_partition_count(&b.reader(), &state, PARTITIONS as u32), Ok(Some(7)));
}

#[test]
fn a_flush_cut_short_after_some_outputs_landed_writes_each_once_like_kafka_and_like_the_mock_cluster() {
    for mock in [false, true] {
        let inputs = traffic(200);
        let b = if mock { broker(&[]).like_mock_cluster() } else { broker(&[]) };
        let mut m = Member::new(&b, 1);
        assert!(m.restore(&[0, 1], Why::Assigned { generation: 1 }).is_empty());
        let faults = [
            (2, Fault::Flush { kind: FailureKind::Transient, land: 1 }),
            (5, Fault::Flush { kind: FailureKind::Transient, land: 3 }),
            (7, Fault::Commit(FailureKind::Transient)),
            (8, Fault::Send(FailureKind::Permanent)),
        ];
        run_in_slices(&mut m, &b, &inputs, 10, &faults);
        assert_eq!(b.faults_left(), 0, "every fault was met");
        assert_eq!(written(&b), replayed(&inputs), "mock cluster: {mock}");
    }
}

#[test]
fn a_restart_at_any_batch_continues_exactly() {
    let inputs = traffic(160);
    for cut in 1..8 {
        let b = broker(&[]).like_mock_cluster();
        let mut m = Member::new(&b, 1);
        m.restore(&[0, 1], Why::Assigned { generation: 1 });
        run_in_slices(&mut m, &b, &inputs[..cut * 20], cut, &[]);
        // The member dies with work processed and not written.
        m.process();
        drop(m);
        let mut m = Member::new(&b, 2);
        assert!(m.restore(&[0, 1], Why::Assigned { generation: 2 }).is_empty());
        run_in_slices(&mut m, &b, &inputs[cut * 20..], 8 - cut, &[]);
        assert_eq!(written(&b), replayed(&inputs), "restart after batch {cut}");
    }
}

#[test]
fn a_corrupt_state_record_fails_that_partition_alone() {
    let inputs = traffic(40);
    let b = broker(&[]);
    let s = settings();
    let mut m = Member::new(&b, 1);
    m.restore(&[0, 1], Why::Assigned { generation: 1 });
    run_in_slices(&mut m, &b, &inputs, 2, &[]);
    let (offset, _) = b.visible(&s.topics.state, 0)[0].clone();
    b.overwrite(&s.topics.state, 0, offset, Some(b"\x02 not a frame".to_vec()));
    let mut again = Member::new(&b, 2);
    let failed = again.restore(&[0, 1], Why::Assigned { generation: 2 });
    assert_eq!(failed.len(), 1);
    let (p, e) = &failed[0];
    assert_eq!(*p, 0);
    assert!(!e.is_transient(), "a corrupt chain needs an operator: {e}");
    assert!(matches!(e, RestoreError::Chain { error: ChainError::Corrupt { .. }, .. }), "{e}");
    assert!(again.tasks.contains_key(&1), "partition 1 restores and goes on");
}

#[test]
fn a_chain_missing_its_first_checkpoint_is_refused_not_restored_partially() {
    let inputs = traffic(60);
    let b = broker(&[]);
    let s = settings();
    let mut m = Member::new(&b, 1);
    m.restore(&[0, 1], Why::Assigned { generation: 1 });
    run_in_slices(&mut m, &b, &inputs, 3, &[]);
    b.delete_keys(&s.topics.state, 1, b"checkpoint/00000000000000000001/");
    let failed = Member::new(&b, 2).restore(&[0, 1], Why::Assigned { generation: 2 });
    assert_eq!(failed.len(), 1);
    assert!(
        matches!(&failed[0], (1, RestoreError::Chain { error: ChainError::Gap { missing: 1, .. }, .. })),
        "{failed:?}"
    );
}

#[test]
fn a_transaction_left_open_on_the_state_partition_is_waited_for() {
    let b = broker(&[]);
    let s = settings();
    let mut m = Member::new(&b, 1);
    m.restore(&[0], Why::Assigned { generation: 1 });
    // A member that began a batch and vanished: its records are beyond
    // the last stable offset until the broker aborts its transaction.
    let mut sink = b.sink(true);
    sink.begin().expect("begin");
    let out = super::io::Out { topic: &s.topics.state, partition: 0, key: Some(b"x"), value: Some(b"y"), headers: &[] };
    sink.send(&out).expect("send");
    sink.flush().expect("flush");
    let failed = Member::new(&b, 2).restore(&[0], Why::Assigned { generation: 2 });
    assert!(matches!(&failed[..], [(0, RestoreError::Open { .. })]), "{failed:?}");
    assert!(failed[0].1.is_transient(), "retried until the transaction ends");
    sink.abort().expect("abort");
    assert!(Member::new(&b, 2).restore(&[0], Why::Assigned { generation: 2 }).is_empty());
}

#[test]
fn a_zombie_resumed_after_a_takeover_does_not_fork_the_chain() {
    let inputs = traffic(120);
    let b = broker(&[]).like_mock_cluster();
    let mut a = Member::new(&b, 5);
    a.restore(&[0, 1], Why::Assigned { generation: 5 });
    run_in_slices(&mut a, &b, &inputs[..40], 2, &[]);
    // B takes over (generation 6); A, paused, has processed more and now
    // writes its batch after B began.
    let mut bm = Member::new(&b, 6);
    assert!(bm.restore(&[0, 1], Why::Assigned { generation: 6 }).is_empty());
    let s = settings();
    for (k, v) in &inputs[40..80] {
        b.append(&s.topics.complaints, partition_of(k), Some(k.as_bytes()), Some(v.as_bytes()));
    }
    bm.process();
    bm.write().expect("B writes");
    a.process();
    // A's checkpoints are stamped with the generation it was assigned the
    // partitions in, 5, whatever generation its consumer has joined since
    // (the MockCluster can keep a member in the group while it gives its
    // partitions to another): stamped 6 like B's, a restore would mix the
    // two writers' checkpoints into one chain.
    let before: Vec<usize> = [0, 1].iter().map(|p| b.visible(&s.topics.state, *p).len()).collect();
    a.write().expect("the zombie writes too (the MockCluster does not fence)");
    for (p, n) in [0, 1].into_iter().zip(before) {
        let keys: Vec<String> = b.visible(&s.topics.state, p)[n..]
            .iter()
            .filter_map(|(_, r)| r.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()))
            .collect();
        assert!(!keys.is_empty(), "A wrote to partition {p}");
        assert!(keys.iter().all(|k| k.ends_with("/0000000005") || k.contains("/0000000005/")), "{keys:?}");
    }
    run_in_slices(&mut bm, &b, &inputs[80..], 2, &[]);
    // A restore now follows B's chain: it continues exactly as B does.
    // The zombie's batch repeated outputs with the same ids, nothing else.
    assert_next_restore_follows(&b, &bm, &inputs, 7);
}

/// A member restoring both partitions now, in `generation`, continues
/// exactly as `writer` does; the outputs, deduplicated by id, are replay's.
fn assert_next_restore_follows(b: &Memory, writer: &Member, inputs: &[(String, String)], generation: i32) {
    let mut next = Member::new(b, generation);
    assert!(next.restore(&[0, 1], Why::Assigned { generation }).is_empty());
    for p in [0, 1] {
        assert_eq!(next.tasks[&p].chain.positions, writer.tasks[&p].chain.positions, "partition {p}");
        assert_eq!(next.tasks[&p].engine().state(), writer.tasks[&p].engine().state(), "partition {p}");
    }
    let mut deduped = written(b);
    for v in deduped.values_mut() {
        let mut seen = std::collections::HashSet::new();
        v.retain(|x| seen.insert(x.to_string()));
    }
    assert_eq!(deduped, replayed(inputs));
}

#[test]
fn a_static_member_restarted_in_the_same_generation_outranks_its_frozen_predecessor() {
    // With static membership (`group.instance.id`) a restarted instance
    // gets its partitions back with no rebalance: the same generation as
    // its predecessor's assignment. Apache Kafka fences the predecessor;
    // the MockCluster does not, so a predecessor that was only frozen
    // wakes and writes with the stamp its successor was given too.
    let inputs = traffic(120);
    let b = broker(&[]).like_mock_cluster();
    let s = settings();
    let mut old = Member::new(&b, 5);
    assert!(old.restore(&[0, 1], Why::Assigned { generation: 5 }).is_empty());
    run_in_slices(&mut old, &b, &inputs[..40], 2, &[]);
    let mut new = Member::new(&b, 5);
    assert!(new.restore(&[0, 1], Why::Assigned { generation: 5 }).is_empty());
    let append = |from: usize, to: usize| {
        for (k, v) in &inputs[from..to] {
            b.append(&s.topics.complaints, partition_of(k), Some(k.as_bytes()), Some(v.as_bytes()));
        }
    };
    // The predecessor froze in the middle of a batch of fewer inputs than
    // its successor's first: the two batches have the same seq and differ.
    append(40, 60);
    old.process();
    append(60, 80);
    new.process();
    new.write().expect("the successor writes");
    old.write().expect("the predecessor wakes and writes too");
    run_in_slices(&mut new, &b, &inputs[80..], 2, &[]);
    // A restore follows the successor's chain alone.
    assert_next_restore_follows(&b, &new, &inputs, 6);
}

#[test]
fn a_batch_of_table_records_alone_waits_for_them_before_its_checkpoint() {
    // A batch retried after its outputs were written sends them no more
    // (already written), only the view's table records. Its checkpoint
    // must wait for those too: written first, and visible where aborted
    // records are (the MockCluster; `at_least_once`), it would let the
    // next restore skip the batch, and its table records (the closes in
    // the view's history) would never be written.
    let b = broker(&[]).like_mock_cluster();
    let s = settings();
    let mut m = Member::new(&b, 1);
    assert!(m.restore(&[0], Why::Assigned { generation: 1 }).is_empty());
    let task = m.tasks.get_mut(&0).expect("task");
    let (kind, body) = task.checkpoint_body(SNAPSHOT_AFTER_BYTES);
    let table = vec![crate::view::TableRecord { key: "closed/x".into(), value: Some(b"{}".to_vec()) }];
    let share = Share {
        partition: 0,
        outputs: &[],
        table: &table,
        inputs: task.input_positions(),
        kind,
        body: &body,
        chain: &task.chain,
        era: task.era,
        generation: task.generation,
    };
    b.inject(Fault::Flush { kind: FailureKind::Transient, land: 0 });
    let writer = Writer { attempt: 1, partitions: PARTITIONS as u32 };
    let err = batch::write(&mut m.sink, &s.topics, batch::Stream::default(), &[share], writer)
        .expect_err("the view's records are not acknowledged");
    m.sink.abort().expect("abort");
    assert_eq!(err.step, "waiting for the outputs' acknowledgements");
    assert!(b.visible(&s.topics.state, 0).is_empty(), "no checkpoint was sent");
}

#[test]
fn a_key_flooded_by_a_hundred_thousand_complaints_is_checkpointed_in_parts_and_restored() {
    let b = broker(&[]);
    let s = settings();
    let mut m = Member::new(&b, 1);
    m.restore(&[0, 1], Why::Assigned { generation: 1 });
    let p = partition_of("sku:F");
    for i in 0..100_000 {
        let (k, v) = complaint(i, "F", "flooder", i / 1000);
        b.append(&s.topics.complaints, p, Some(k.as_bytes()), Some(v.as_bytes()));
        if i % 20_000 == 19_999 {
            m.process();
            m.write().expect("batch");
        }
    }
    let largest = b.visible(&s.topics.state, p).iter().map(|(_, r)| r.value.as_ref().map_or(0, Vec::len)).max();
    assert!(largest.unwrap_or(0) <= super::checkpoint::MAX_RECORD_BYTES, "no record over the limit");
    let mut again = Member::new(&b, 2);
    assert!(again.restore(&[p], Why::Assigned { generation: 2 }).is_empty());
    assert_eq!(again.tasks[&p].engine().state(), m.tasks[&p].engine().state());
    // A second customer pulls at once.
    let (k, v) = complaint(100_000, "F", "second", 99);
    b.append(&s.topics.complaints, p, Some(k.as_bytes()), Some(v.as_bytes()));
    again.process();
    again.write().expect("batch");
    let opened = written(&b).remove(&(s.topics.work_orders.clone(), "sku:F".into())).unwrap_or_default();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["evidence_total"], 2);
}
