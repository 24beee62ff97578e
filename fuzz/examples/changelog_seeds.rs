//! Writes the seeds of the `decode_changelog` fuzz target into
//! `fuzz/seeds/decode_changelog/`: records andon itself wrote, with its
//! engine and `Chain::write` (as `src/kafka/checkpoint/tests.rs` does), so
//! that the fuzzer starts from valid frames and operations of every kind.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example changelog_seeds
//!
//! A writer pulls andons, completes and closes work orders, checkpoints,
//! snapshots, retries a failed attempt; a second writer (a newer group
//! generation) restores and goes on while the first, a zombie, writes
//! late. The seeds: each record alone, the whole partition, and the
//! partition cut (from the snapshot on, without its first checkpoint),
//! records separated by `andon_fuzz::RECORD_SEP`, a tombstone as an empty
//! record. Deterministic: run it again after changing the format. Files
//! named `regression-*` (inputs that once failed) are left in place.

use std::collections::BTreeSet;
use std::sync::Arc;

use andon::config::Settings;
use andon::engine::{changes, Engine, EngineConfig, EscalationClock, RecordMeta};
use andon::event::{decode_complaint, decode_update, Output, WorkOrderEvent};
use andon::kafka::checkpoint::{self, Chain, Kind, Positions, Read, Stamp, StateRecord, Writing};
use andon_fuzz::{PARTITIONS, RECORD_SEP};

const RULES: &str = r#"
[rules.default]
threshold = 2
window = "1h"
route = ["product", "operations"]
[owners.product]
sla = "30m"
[owners.operations]
sla = "1h"
"#;

fn config() -> Arc<EngineConfig> {
    Settings::from_toml(RULES).expect("valid rules").engine
}

struct Writer {
    engine: Engine,
    chain: Chain,
    stamp: Stamp,
    attempt: u64,
    opened: Vec<String>,
    minute: u32,
}

impl Writer {
    fn new(stamp: Stamp) -> Self {
        let mut engine = Engine::new(config(), EscalationClock::WallClock);
        engine.track_changes();
        Self { engine, chain: Chain::default(), stamp, attempt: 0, opened: Vec::new(), minute: 0 }
    }

    fn restored(log: &[StateRecord], stamp: Stamp) -> Self {
        let r = checkpoint::resolve(&reads(log), PARTITIONS, log.len() as i64).expect("the chain resolves");
        let mut engine = Engine::restore(config(), EscalationClock::WallClock, r.state);
        engine.track_changes();
        Self { engine, chain: r.chain, stamp, attempt: 0, opened: Vec::new(), minute: 0 }
    }

    fn at(&mut self) -> String {
        self.minute += 1;
        format!("2026-11-01T{:02}:{:02}:00Z", 10 + self.minute / 60, self.minute % 60)
    }

    fn complaints(&mut self, from: usize, n: usize) {
        let mut out = Vec::new();
        for i in from..from + n {
            let at = self.at();
            let json = format!(
                r#"{{"event_id":"e{i}","occurred_at":"{at}","subject":{{"kind":"sku","id":"S{}"}},"issue":"print_defect","customer_id":"c{}","channel":"chat"}}"#,
                i % 3,
                i % 4
            );
            let c = decode_complaint(json.as_bytes(), 1 << 16).expect("valid complaint");
            let _ = self.engine.on_complaint(c, RecordMeta::default(), &mut out);
        }
        self.take(out);
    }

    /// The next step of every open work order (the last one with a verdict).
    fn updates(&mut self, step: u32, verdict: Option<&str>) {
        let mut out = Vec::new();
        for (k, id) in self.opened.clone().iter().enumerate() {
            let at = self.at();
            let verdict = verdict.map(|v| format!(r#","verdict":"{v}""#)).unwrap_or_default();
            let json = format!(
                r#"{{"update_id":"u{k}-{step}","andon_id":"{id}","step":{step},"actor":"sam","at":"{at}"{verdict}}}"#
            );
            let u = decode_update(json.as_bytes(), 1 << 16).expect("valid update");
            let _ = self.engine.on_update(&u, RecordMeta::default(), &mut out);
        }
        self.take(out);
    }

    fn take(&mut self, out: Vec<Output>) {
        for o in out {
            if let Output::WorkOrder(WorkOrderEvent::Opened { andon_id, .. }) = o {
                self.opened.push(andon_id);
            }
        }
    }

    /// One batch's records, appended to `log` (a failed attempt's only
    /// when `fail`: then the chain does not advance).
    fn commit(&mut self, log: &mut Vec<StateRecord>, kind: Kind, fail: bool) {
        self.attempt += 1;
        let w = Writing { stamp: self.stamp, attempt: self.attempt, partitions: PARTITIONS };
        let mut body = changes::Encoded::default();
        if kind == Kind::Snapshot {
            self.engine.take_changes(&mut changes::Encoded::default());
            changes::encode_state(self.engine.state(), &mut body.bytes).expect("encode");
        } else {
            self.engine.take_changes(&mut body);
        }
        let p = self.chain.positions;
        let pos = Positions { complaints: p.complaints + 10, updates: p.updates + 3, work_orders: p.work_orders + 2, ..p };
        let written = self.chain.write(w, kind, pos, &body);
        if fail {
            // Half of it reached the partition.
            log.extend(written.records.iter().take(written.records.len() / 2 + 1).cloned());
            return;
        }
        log.extend(written.records.iter().cloned());
        self.chain.advance(&written, self.stamp, pos, log.len() as i64);
    }
}

fn reads(log: &[StateRecord]) -> Vec<Read> {
    log.iter()
        .enumerate()
        .map(|(i, r)| Read { offset: i as i64, key: Some(r.key.clone().into_bytes()), value: r.value.clone() })
        .collect()
}

fn joined(log: &[StateRecord]) -> Vec<u8> {
    let values: Vec<&[u8]> = log.iter().map(|r| r.value.as_deref().unwrap_or_default()).collect();
    values.join(RECORD_SEP)
}

/// FNV-1a: a stable file name for a seed.
fn name(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn main() {
    let g = |generation| Stamp { era: 0, generation };
    let mut log: Vec<StateRecord> = Vec::new();
    let mut a = Writer::new(g(3));
    a.complaints(0, 6);
    a.commit(&mut log, Kind::Checkpoint, false);
    let first_checkpoint = log.len();
    a.updates(1, None);
    a.commit(&mut log, Kind::Checkpoint, true); // a failed attempt
    a.commit(&mut log, Kind::Checkpoint, false); // and its retry
    a.complaints(6, 4);
    a.commit(&mut log, Kind::Checkpoint, false);
    let snapshot_at = log.len();
    a.commit(&mut log, Kind::Snapshot, false);
    a.updates(2, Some("no_defect"));
    a.complaints(10, 5);
    a.commit(&mut log, Kind::Checkpoint, false);
    let whole = log.clone();

    // A newer generation takes over; the old writer goes on as a zombie.
    let mut b = Writer::restored(&log, g(4));
    b.complaints(15, 3);
    b.commit(&mut log, Kind::Checkpoint, false);
    a.complaints(15, 3);
    a.commit(&mut log, Kind::Checkpoint, false);
    b.updates(1, Some("defect_confirmed"));
    b.commit(&mut log, Kind::Checkpoint, false);
    checkpoint::resolve(&reads(&log), PARTITIONS, log.len() as i64).expect("the zombie is ignored");

    let mut seeds: BTreeSet<Vec<u8>> = BTreeSet::new();
    for r in &log {
        if let Some(v) = &r.value {
            seeds.insert(v.clone());
        }
    }
    seeds.insert(joined(&whole));
    seeds.insert(joined(&log));
    seeds.insert(joined(&log[snapshot_at..]));
    seeds.insert(joined(&log[first_checkpoint..]));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/decode_changelog");
    // Inputs that once failed (`regression-*`) and records of format 2
    // (`format2-*`, written before the links; andon still reads them)
    // stay; the rest is rewritten.
    std::fs::create_dir_all(&dir).expect("seed directory");
    for f in std::fs::read_dir(&dir).expect("seed directory").flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if !name.starts_with("regression-") && !name.starts_with("format2-") {
            let _ = std::fs::remove_file(f.path());
        }
    }
    let mut largest = 0;
    for s in &seeds {
        largest = largest.max(s.len());
        std::fs::write(dir.join(name(s)), s).expect("write seed");
    }
    println!("{} seeds in {} (the largest {largest} bytes)", seeds.len(), dir.display());
}
