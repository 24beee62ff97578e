//! The chain rules, each fault named: what a restore makes of a state
//! partition that a writer, a failed attempt, a zombie or the broker left.

use std::sync::Arc;

use super::*;
use crate::config::Settings;
use crate::engine::EngineConfig;
use crate::engine::{Engine, EscalationClock, RecordMeta};
use crate::event::{decode_complaint, Output};

fn config() -> Arc<EngineConfig> {
    Settings::from_toml("[rules.default]\nthreshold = 3\nwindow = \"1h\"").expect("valid").engine
}

fn complaint(i: usize, sku: usize, customer: usize) -> crate::event::Complaint {
    let json = format!(
        r#"{{"event_id":"e{i}","occurred_at":"2026-11-01T10:{:02}:{:02}Z","subject":{{"kind":"sku","id":"S{sku}"}},"issue":"print_defect","customer_id":"c{customer}"}}"#,
        (i / 60) % 60,
        i % 60
    );
    decode_complaint(json.as_bytes(), 1 << 16).expect("valid complaint")
}

/// A state partition in memory: records appended get offsets.
#[derive(Default)]
struct Log {
    records: Vec<Read>,
    next: i64,
}

impl Log {
    fn append(&mut self, recs: &[StateRecord]) -> i64 {
        for r in recs {
            self.records.push(Read {
                offset: self.next,
                key: Some(r.key.clone().into_bytes()),
                value: r.value.clone(),
            });
            self.next += 1;
        }
        self.next
    }

    fn resolve(&self) -> Result<Resolved, ChainError> {
        resolve(&self.records, 4, self.next)
    }

    /// Removes every record whose key starts with `prefix`.
    fn drop_keys(&mut self, prefix: &str) {
        self.records.retain(|r| !r.key.as_deref().is_some_and(|k| k.starts_with(prefix.as_bytes())));
    }
}

/// A writer: an engine and its chain, writing one checkpoint per batch.
struct Writer {
    engine: Engine,
    chain: Chain,
    stamp: Stamp,
    attempt: u64,
}

impl Writer {
    fn new(stamp: Stamp) -> Self {
        let mut engine = Engine::new(config(), EscalationClock::WallClock);
        engine.track_changes();
        Self { engine, chain: Chain::default(), stamp, attempt: 0 }
    }

    fn from(r: Resolved, stamp: Stamp) -> Self {
        let mut engine = Engine::restore(config(), EscalationClock::WallClock, r.state);
        engine.track_changes();
        Self { engine, chain: r.chain, stamp, attempt: 0 }
    }

    fn feed(&mut self, range: std::ops::Range<usize>) -> Vec<Output> {
        let mut out = Vec::new();
        for i in range {
            let _ = self.engine.on_complaint(complaint(i, i % 7, i % 5), RecordMeta::default(), &mut out);
        }
        out
    }

    /// Complaints each about a subject of its own: the state grows by a
    /// key per complaint.
    fn feed_wide(&mut self, range: std::ops::Range<usize>) {
        let mut out = Vec::new();
        for i in range {
            let _ = self.engine.on_complaint(complaint(i, 1_000 + i, i % 5), RecordMeta::default(), &mut out);
        }
    }

    /// The records of the next batch (a snapshot when `snapshot`).
    fn batch(&mut self, snapshot: bool) -> Written {
        self.attempt += 1;
        let w = Writing { stamp: self.stamp, attempt: self.attempt, partitions: 4 };
        let mut body = changes::Encoded::default();
        let kind = if snapshot {
            self.engine.take_changes(&mut changes::Encoded::default());
            changes::encode_state(self.engine.state(), &mut body.bytes).expect("encode");
            Kind::Snapshot
        } else {
            self.engine.take_changes(&mut body);
            Kind::Checkpoint
        };
        let pos = Positions { complaints: self.chain.positions.complaints + 10, ..self.chain.positions };
        self.chain.write(w, kind, pos, &body)
    }

    fn commit(&mut self, log: &mut Log, snapshot: bool) -> Written {
        let written = self.batch(snapshot);
        let end = log.append(&written.records);
        let pos = Positions { complaints: self.chain.positions.complaints + 10, ..self.chain.positions };
        self.chain.advance(&written, self.stamp, pos, end);
        written
    }
}

fn g(generation: i32) -> Stamp {
    Stamp { era: 0, generation }
}

/// The engine restored from `log` behaves as `w` does from here on.
fn assert_same_as(log: &Log, w: &mut Writer, next: std::ops::Range<usize>) {
    let r = log.resolve().expect("restores");
    assert_eq!(r.chain.seq, w.chain.seq);
    assert_eq!(r.chain.positions, w.chain.positions);
    let mut restored = Writer::from(r, w.stamp);
    assert_eq!(restored.feed(next.clone()), w.feed(next), "a restored engine continues exactly");
}

#[test]
fn checkpoints_from_the_first_restore_exactly() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..20 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, false);
    }
    assert_same_as(&log, &mut w, 200..260);
}

#[test]
fn a_snapshot_and_the_checkpoints_after_it_restore_exactly_and_what_it_replaced_is_tombstoned() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..30 {
        w.feed(b * 10..b * 10 + 10);
        let written = w.commit(&mut log, b == 9 || b == 19);
        if b == 19 {
            let tombstones = written.records.iter().filter(|r| r.value.is_none()).count();
            assert_eq!(tombstones, 1 + 9, "the previous snapshot and the nine checkpoints since");
        }
    }
    // A broker that compacts or drops old records: all before the latest
    // snapshot's batch is gone, and the chain still restores.
    let keep_from = log
        .records
        .iter()
        .position(|r| r.key.as_deref() == Some(b"snapshot/00000000000000000020/0000000000/0000000001/00000"))
        .expect("snapshot 20");
    log.records.drain(..keep_from);
    assert_same_as(&log, &mut w, 300..360);
}

#[test]
fn a_chain_missing_its_first_checkpoint_is_refused() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..5 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, false);
    }
    log.drop_keys("checkpoint/00000000000000000001/");
    assert_eq!(log.resolve().err(), Some(ChainError::Gap { missing: 1, from: 5 }));
}

#[test]
fn checkpoints_without_the_snapshot_under_them_are_refused() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..8 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, b == 3);
    }
    log.drop_keys("snapshot/");
    assert_eq!(log.resolve().err(), Some(ChainError::Gap { missing: 4, from: 8 }));
}

#[test]
fn a_half_written_snapshot_leaves_the_previous_chain_whole() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..6 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, b == 2);
    }
    // The next batch writes a snapshot of several parts but is cut off
    // after its first part (a crash): no tombstones, no head.
    w.feed_wide(60..20_000);
    let cut = w.batch(true);
    assert!(cut.parts > 1, "a big snapshot is split into parts");
    log.append(&cut.records[..1]);
    let r = log.resolve().expect("the old chain");
    assert_eq!(r.chain.seq, 6, "the cut snapshot is not there");
}

#[test]
fn a_record_that_does_not_decode_is_named_by_offset() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..3 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, false);
    }
    log.records[1].value = Some(b"\x02garbage that is no frame".to_vec());
    match log.resolve() {
        Err(ChainError::Corrupt { offset: 1, .. }) => {}
        other => panic!("expected a corrupt record at offset 1, got {other:?}"),
    }
    log.records[1].value = Some(br#"{"seq":1,"attempt":5}"#.to_vec());
    let Err(ChainError::Corrupt { why, .. }) = log.resolve() else { panic!("JSON of the old format is refused") };
    assert!(why.contains("JSON"), "{why}");
}

#[test]
fn a_retried_batch_replaces_the_failed_attempt() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    w.feed(0..10);
    w.commit(&mut log, false);
    // A batch whose transaction failed after one part of a two-part
    // checkpoint reached the partition (visible on the MockCluster).
    w.feed_wide(10..20_000);
    let failed = w.batch(false);
    assert!(failed.parts > 1, "a big batch is split into parts");
    log.append(&failed.records[..1]);
    // The retry (same seq, new attempt) completes.
    let mut retry = Writer::from(log.resolve().expect("restores"), g(1));
    retry.attempt = 7;
    retry.feed_wide(10..20_000);
    retry.commit(&mut log, false);
    assert_same_as(&log, &mut retry, 20_000..20_100);
}

#[test]
fn parts_never_exceed_the_record_limit() {
    let mut w = Writer::new(g(1));
    w.feed_wide(0..30_000);
    let written = w.batch(false);
    assert!(written.parts > 2);
    for r in &written.records {
        assert!(
            r.value.as_ref().map_or(0, Vec::len) <= MAX_RECORD_BYTES,
            "{} bytes",
            r.value.as_ref().map_or(0, Vec::len)
        );
    }
}

#[test]
fn a_zombie_writing_after_the_new_owner_is_ignored() {
    let mut log = Log::default();
    let mut a = Writer::new(g(5));
    for b in 0..3 {
        a.feed(b * 10..b * 10 + 10);
        a.commit(&mut log, false);
    }
    // B (generation 6) takes over from the chain as it stands.
    let mut b = Writer::from(log.resolve().expect("restores"), g(6));
    // A, paused past its session timeout, resumes and writes seq 4 and 5.
    a.feed(30..40);
    a.commit(&mut log, false);
    b.feed(30..45);
    b.commit(&mut log, false);
    a.feed(40..50);
    a.commit(&mut log, false);
    b.feed(45..60);
    b.commit(&mut log, false);
    // B's chain: 1..3 by A, 4 and 5 by B; A's 4 and 5 are ignored.
    let r = log.resolve().expect("restores");
    assert_eq!((r.chain.seq, r.stamp), (5, g(6)));
    assert_eq!(r.chain.orphans.len(), 2, "A's two checkpoints are tombstoned at the next snapshot");
    assert_same_as(&log, &mut b, 60..120);
}

/// Found by the `decode_changelog` fuzz target: andon never writes a
/// negative generation, but a record that decodes may carry one, and
/// following its chain must not panic (a panic on the restorer thread
/// would end every later restore of the instance).
#[test]
fn a_chain_with_a_negative_generation_is_followed_without_a_panic() {
    let mut log = Log::default();
    let mut w = Writer::new(g(-1));
    for b in 0..3 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, false);
    }
    let r = log.resolve().expect("restores");
    assert_eq!((r.chain.seq, r.stamp), (3, g(-1)));
}

#[test]
fn a_group_reset_to_generation_one_still_wins_with_a_new_era() {
    let mut log = Log::default();
    let mut old = Writer::new(g(40));
    old.feed(0..10);
    old.commit(&mut log, false);
    let mut new = Writer::from(log.resolve().expect("restores"), Stamp { era: 1, generation: 1 });
    new.feed(10..20);
    new.commit(&mut log, false);
    let r = log.resolve().expect("restores");
    assert_eq!((r.chain.seq, r.stamp), (2, Stamp { era: 1, generation: 1 }));
}

#[test]
fn a_changed_partition_count_is_refused() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    w.feed(0..10);
    w.commit(&mut log, false);
    assert_eq!(resolve(&log.records, 8, log.next).err(), Some(ChainError::Partitions { written: 4, now: 8 }));
}

#[test]
fn units_promised_by_the_head_but_gone_are_a_loss() {
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..3 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, false);
    }
    log.drop_keys("checkpoint/00000000000000000003/");
    assert_eq!(log.resolve().err(), Some(ChainError::Lost { seq: 3 }));
    log.drop_keys("checkpoint/");
    assert_eq!(log.resolve().err(), Some(ChainError::Lost { seq: 3 }));
}

#[test]
fn an_empty_partition_is_a_fresh_start_and_the_newest_head_says_where_to_read() {
    let log = Log::default();
    let r = log.resolve().expect("fresh");
    assert_eq!(r.chain.seq, 0);
    let mut log = Log::default();
    let mut w = Writer::new(g(1));
    for b in 0..6 {
        w.feed(b * 10..b * 10 + 10);
        w.commit(&mut log, b == 3);
    }
    let snapshot_at =
        log.records.iter().find(|r| r.key.as_deref().is_some_and(|k| k.starts_with(b"snapshot/"))).map(|r| r.offset);
    let (base, seq) = newest_head(&log.records).expect("a head");
    assert_eq!(seq, 6);
    assert!(base <= snapshot_at.expect("snapshot"), "the head's base is at or before the snapshot");
    // Reading from the base alone restores the same.
    let tail: Vec<Read> = log.records.iter().filter(|r| r.offset >= base).cloned().collect();
    let r = resolve(&tail, 4, log.next).expect("restores from the base");
    assert_eq!(r.chain.seq, 6);
}

#[test]
fn two_writers_with_equal_stamps_never_mix_the_restore_follows_one_lineage() {
    // A broker that gives one partition to two members in one generation
    // (the MockCluster did, once, in a chaos run) leaves two writers with
    // the same stamp. Each unit links to the one it continues, so a
    // restore follows one of them, whatever order their units landed in.
    let mut log = Log::default();
    let mut a = Writer::new(g(5));
    for b in 0..3 {
        a.feed(b * 10..b * 10 + 10);
        a.commit(&mut log, false);
    }
    let mut b = Writer::from(log.resolve().expect("restores"), g(5));
    b.attempt = 1_000;
    b.feed(30..45);
    b.commit(&mut log, false);
    // A's seq 4, of other complaints, lands after B's: the newest unit of
    // seq 4 with that stamp, which B's seq 5 does not continue.
    a.feed(30..35);
    a.commit(&mut log, false);
    b.feed(45..60);
    b.commit(&mut log, false);
    let r = log.resolve().expect("restores");
    assert_eq!((r.chain.seq, r.stamp), (5, g(5)));
    assert_eq!(&r.state, b.engine.state(), "B's state alone, not B's seq 5 over A's seq 4");
    assert_same_as(&log, &mut b, 60..120);
    // Equal stamps, equal keys: compaction keeps A's seq 4 in place of
    // B's. B's seq 5 then links to a unit that is gone: refused, not mixed.
    let mut last = std::collections::HashMap::new();
    for (i, r) in log.records.iter().enumerate() {
        last.insert(r.key.clone(), i);
    }
    let compacted = Log {
        records: log.records.iter().enumerate().filter(|(i, r)| last[&r.key] == *i).map(|(_, r)| r.clone()).collect(),
        next: log.next,
    };
    assert!(matches!(compacted.resolve(), Err(ChainError::Gap { missing: 4, from: 5 })), "{:?}", compacted.resolve());
}

/// `log`'s records rewritten as format 2 wrote them.
fn as_format_2(log: &mut Log) {
    for r in &mut log.records {
        let Some(v) = r.value.as_deref() else { continue };
        let (f, body) = decode_value(v).expect("decodes");
        let old = FrameV2 {
            format: 2,
            kind: f.kind,
            seq: f.seq,
            stamp: f.stamp,
            attempt: f.attempt,
            part: f.part,
            parts: f.parts,
            positions: f.positions,
            partitions: f.partitions,
            base: f.base,
        };
        let mut value = postcard::to_allocvec(&old).expect("encodes");
        value.extend_from_slice(body);
        r.value = Some(value);
    }
}

#[test]
fn a_format_2_chain_is_restored_and_continued_in_format_3() {
    let mut log = Log::default();
    let mut a = Writer::new(g(1));
    for b in 0..3 {
        a.feed(b * 10..b * 10 + 10);
        a.commit(&mut log, false);
    }
    as_format_2(&mut log);
    assert_eq!(log.records[0].value.as_deref().and_then(|v| v.first()), Some(&2));
    assert_same_as(&log, &mut a, 30..40);
    // An upgraded member continues the chain; its units link to format 2's.
    let mut b = Writer::from(log.resolve().expect("restores"), g(2));
    b.feed(40..50);
    b.commit(&mut log, false);
    assert_eq!(log.records.last().and_then(|r| r.value.as_deref()?.first().copied()), Some(FORMAT));
    assert_same_as(&log, &mut b, 50..60);
}

#[test]
fn an_unknown_format_is_named() {
    let mut w = Writer::new(g(1));
    w.feed(0..10);
    let mut written = w.batch(false);
    let value = written.records[0].value.as_mut().expect("a value");
    value[0] = 9;
    let err = decode_value(value).expect_err("format 9 is refused");
    assert!(err.to_string().contains("format 9"), "{err}");
}
