//! The owner's side of the view topic: which table records a batch of a
//! partition writes ([`table_records`], pure), and when an owner re-puts
//! all of its partition's open andons ([`TableWriter`]).
//!
//! Records are derived from the engine's state *after* the round of
//! processing that made the outputs (they are sent with them), for every
//! andon an output is about, including outputs that were suppressed as
//! already written (so a batch replayed after a crash or a failed commit
//! writes its table records again even when its outputs are not). Puts
//! are idempotent: writing one twice is harmless.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::record::{andon_key, closed_key, AndonRecord, ClosedRecord, ANDON_PREFIX};
use super::Model;
use crate::engine::{AndonView, Engine};
use crate::event::{Output, WorkOrderEvent};

/// A record for partition p of the view topic (`value` `None`: tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// An owner re-puts every open andon of its partition at least this often:
/// far within the topic's 30-day retention (`compact,delete`), so an andon
/// open for months keeps a live record; and within what a size-bounded
/// broker keeps of an hour of member records (the MockCluster keeps 5 MiB
/// a partition; three members write about 1 MiB an hour each). Costs one
/// pass over the partition's state an hour.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);

/// ...and after this many bytes of table records since the last re-put (or
/// twice the last re-put's size, if larger): on a broker that keeps only
/// the newest bytes of a partition (the MockCluster keeps 5 MiB), every
/// open andon then stands in what is kept. Only there: where the broker
/// says the view topic's `retention.bytes` is unbounded (Apache Kafka's
/// default), these re-puts would only cost, about a third of what the
/// view writes (a re-put after twice its size), and on a load where most
/// complaints pull, 8 % of andon's instructions (callgrind).
pub const REFRESH_BYTES: usize = 1 << 20;

fn put(partition: i32, v: &AndonView<'_>) -> Option<TableRecord> {
    let r = AndonRecord::new(partition, &v.andon_id, v.subject_key, v.issue, v.andon)?;
    Some(TableRecord { key: andon_key(&v.andon_id), value: serde_json::to_vec(&r).ok() })
}

/// The table records of one batch of partition `partition`: for every
/// andon the batch's outputs are about, its record now (a put while it is
/// open), or its close (`closed/<id>`, then a tombstone for `andon/<id>`).
pub fn table_records<'a>(
    partition: i32,
    outputs: impl IntoIterator<Item = &'a Output>,
    engine: &Engine,
) -> Vec<TableRecord> {
    // andon_id -> its `closed` event, if the batch closed it.
    let mut touched: BTreeMap<&str, Option<&WorkOrderEvent>> = BTreeMap::new();
    // Whether an andon opened in this batch delists (its `opened` says).
    let mut delisting: BTreeMap<&str, bool> = BTreeMap::new();
    for o in outputs {
        match o {
            Output::WorkOrder(e @ WorkOrderEvent::Closed { andon_id, .. }) => {
                touched.insert(andon_id, Some(e));
            }
            Output::WorkOrder(e) => {
                if let WorkOrderEvent::Opened { andon_id, delisted, .. } = e {
                    delisting.insert(andon_id, *delisted);
                }
                touched.entry(e.andon_id()).or_insert(None);
            }
            Output::Command(c) => {
                touched.entry(&c.andon_id).or_insert(None);
            }
        }
    }
    let mut out = Vec::with_capacity(touched.len());
    for (id, closed) in touched {
        if let Some(v) = engine.open_andon(id) {
            out.extend(put(partition, &v));
            continue;
        }
        if let Some(WorkOrderEvent::Closed { verdict, closed_at, complaints_attached, summary: Some(s), .. }) = closed {
            // Opened in an earlier batch: its rule says (the rule of its
            // issue now; a rule changed while it was open is not known).
            let delists = delisting.get(id).copied().unwrap_or_else(|| {
                engine.config().rules.for_issue(&s.issue).action == crate::engine::RuleAction::Delist
            });
            if let Some(r) = ClosedRecord::new(partition, id, delists, *verdict, *closed_at, *complaints_attached, s) {
                out.push(TableRecord { key: closed_key(id), value: serde_json::to_vec(&r).ok() });
            }
        }
        out.push(TableRecord { key: andon_key(id), value: None });
    }
    out
}

/// Every open andon of the partition as a put, and a tombstone for every
/// andon the view still shows open there (`in_view`) that the engine does
/// not: what brings the table back in line with the owner's state whatever
/// happened before (a record lost to retention, a writer without a view).
pub fn refresh_records(partition: i32, engine: &Engine, in_view: &[String]) -> Vec<TableRecord> {
    let mut out: Vec<TableRecord> = engine.open_andons().filter_map(|v| put(partition, &v)).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    for id in in_view {
        if engine.open_andon(id).is_none() {
            out.push(TableRecord { key: andon_key(id), value: None });
        }
    }
    out
}

/// One partition's writer: [`table_records`] every batch, and now and
/// then [`refresh_records`]: on the first batch after the partition was
/// assigned or restored, then every [`REFRESH_EVERY`] or, on a view topic
/// bounded by bytes, [`REFRESH_BYTES`].
#[derive(Debug)]
pub struct TableWriter {
    partition: i32,
    made: Instant,
    refreshed: Option<Instant>,
    bytes_since: usize,
    last_refresh_bytes: usize,
}

impl TableWriter {
    pub fn new(partition: i32, now: Instant) -> Self {
        Self { partition, made: now, refreshed: None, bytes_since: 0, last_refresh_bytes: 0 }
    }

    /// A re-put is due with the next batch: the first one, then
    /// [`REFRESH_EVERY`] after the last re-put.
    fn refresh_due(&self, now: Instant) -> bool {
        self.refreshed.is_none_or(|at| now.duration_since(at) >= REFRESH_EVERY)
    }

    /// A partition with no input writes a batch for its re-put when this
    /// says so ([`REFRESH_EVERY`] after the last re-put, or after the
    /// writer was made): else an andon open on an idle partition would age
    /// out of the view topic. Not at once after a restore: a partition
    /// that keeps failing would otherwise write a batch of its own after
    /// each restore, and count it as progress.
    pub fn idle_refresh_due(&self, now: Instant) -> bool {
        now.duration_since(self.refreshed.unwrap_or(self.made)) >= REFRESH_EVERY
    }

    /// The records of outputs of a batch still being processed, sent with
    /// them ([`crate::kafka::batch::Stream`]): from the state after the
    /// round that made them (a later round that touches the same andon
    /// puts it again). A re-put waits for the batch's end ([`Self::records`]).
    pub fn streamed<'a>(&mut self, outputs: impl IntoIterator<Item = &'a Output>, engine: &Engine) -> Vec<TableRecord> {
        let records = table_records(self.partition, outputs, engine);
        self.bytes_since += size(&records);
        records
    }

    /// The records to write to the view topic's partition with this
    /// batch's outputs (those not [`Self::streamed`]): both come from the
    /// same state, so they agree.
    /// `bytes_bounded`: the view topic keeps only so many bytes a partition,
    /// or the broker has not said (then re-puts by bytes too).
    pub fn records<'a>(
        &mut self,
        outputs: impl IntoIterator<Item = &'a Output>,
        engine: &Engine,
        view: &Model,
        now: Instant,
        bytes_bounded: bool,
    ) -> Vec<TableRecord> {
        let mut records = table_records(self.partition, outputs, engine);
        let by_bytes = bytes_bounded && self.bytes_since >= REFRESH_BYTES.max(2 * self.last_refresh_bytes);
        let due = self.refresh_due(now) || by_bytes;
        if due {
            // Both read the same state: where they name the same key they
            // agree. The batch's closes first, then one record per andon key.
            let refresh = refresh_records(self.partition, engine, &view.andon_ids_in(self.partition));
            let (closes, andons): (Vec<TableRecord>, Vec<TableRecord>) =
                records.into_iter().partition(|r| !r.key.starts_with(ANDON_PREFIX));
            let mut by_key: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
            for r in andons.into_iter().chain(refresh) {
                by_key.insert(r.key, r.value);
            }
            records = closes;
            records.extend(by_key.into_iter().map(|(key, value)| TableRecord { key, value }));
            self.refreshed = Some(now);
            self.last_refresh_bytes = size(&records);
            self.bytes_since = 0;
        } else {
            self.bytes_since += size(&records);
        }
        records
    }
}

fn size(records: &[TableRecord]) -> usize {
    records.iter().map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len)).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Settings;
    use crate::engine::tests::complaint;
    use crate::engine::{EscalationClock, RecordMeta};
    use crate::event::{Channel, Complaint, Update, Verdict};
    use crate::time::{Dur, Ts};
    use crate::view::record::ClosedRecord;

    const S: Dur = Dur::SECOND;
    const T0: Ts = Ts::from_nanos(1_780_000_000 * 1_000_000_000);

    fn engine() -> Engine {
        let s = Settings::from_toml(
            "[rules.default]\nthreshold = 2\nwindow = \"1h\"\nroute = [\"product\", \"operations\"]",
        )
        .expect("settings");
        Engine::new(Arc::clone(&s.engine), EscalationClock::WallClock)
    }

    fn complain(e: &mut Engine, id: &str, at: Ts, sku: &str, customer: &str, out: &mut Vec<Output>) {
        let c = Complaint { channel: Some(Channel::Phone), ..complaint(id, at, sku, "print_defect", customer) };
        e.on_complaint(c, RecordMeta::default(), out).expect("accepted");
    }

    fn update(
        e: &mut Engine,
        id: &str,
        andon: &str,
        step: u32,
        at: Ts,
        verdict: Option<Verdict>,
        out: &mut Vec<Output>,
    ) {
        let u = Update { update_id: id.into(), andon_id: andon.into(), step, actor: "ann".into(), at, verdict };
        e.on_update(&u, RecordMeta::default(), out).expect("applied");
    }

    fn keys(records: &[TableRecord]) -> Vec<(String, bool)> {
        records.iter().map(|r| (r.key.clone(), r.value.is_some())).collect()
    }

    fn pull_a(e: &mut Engine) -> Vec<Output> {
        let mut out = Vec::new();
        complain(e, "e1", T0, "A", "c1", &mut out);
        complain(e, "e2", T0 + S, "A", "c2", &mut out);
        out
    }

    #[test]
    fn a_pull_puts_the_andon_and_a_close_writes_its_summary_then_a_tombstone() {
        let mut e = engine();
        let out = pull_a(&mut e);
        let r = table_records(2, &out, &e);
        assert_eq!(keys(&r), [("andon/sku:A/print_defect#1".to_owned(), true)], "delist and opened: one put");
        let v: AndonRecord = serde_json::from_slice(r[0].value.as_deref().expect("put")).expect("json");
        assert_eq!((v.partition, v.step, v.owner.as_str(), v.channel), (2, 1, "product", Some(Channel::Phone)));
        assert_eq!((v.evidence_total, v.delisting), (2, true));

        let mut out = Vec::new();
        update(&mut e, "u1", "sku:A/print_defect#1", 1, T0 + 10 * S, None, &mut out);
        let r = table_records(2, &out, &e);
        let v: AndonRecord = serde_json::from_slice(r[0].value.as_deref().expect("put")).expect("json");
        assert_eq!((v.step, v.owner.as_str(), v.done.len()), (2, "operations", 1));

        let mut out = Vec::new();
        update(&mut e, "u2", "sku:A/print_defect#1", 2, T0 + 20 * S, Some(Verdict::NoDefect), &mut out);
        let r = table_records(2, &out, &e);
        assert_eq!(
            keys(&r),
            [("closed/sku:A/print_defect#1".to_owned(), true), ("andon/sku:A/print_defect#1".to_owned(), false)]
        );
        let c: ClosedRecord = serde_json::from_slice(r[0].value.as_deref().expect("closed")).expect("json");
        assert_eq!((c.verdict, c.channel, c.steps.len()), (Verdict::NoDefect, Some(Channel::Phone), 2));
        assert_eq!(c.steps[1].actor, "ann");
        assert!(table_records(2, &[], &e).is_empty(), "no outputs, nothing to write");
    }

    #[test]
    fn records_streamed_round_by_round_leave_the_table_where_the_whole_batch_would() {
        // The last record of each key is what compaction keeps.
        fn last(records: &[TableRecord]) -> BTreeMap<String, Option<Vec<u8>>> {
            records.iter().map(|r| (r.key.clone(), r.value.clone())).collect()
        }
        let (mut streamed, mut whole) = (engine(), engine());
        let mut w = TableWriter::new(0, Instant::now());
        let (mut sent, mut all) = (Vec::new(), Vec::new());
        type Round = fn(&mut Engine, &mut Vec<Output>);
        let rounds: [Round; 3] = [
            |e, out| out.extend(pull_a(e)),
            |e, out| {
                complain(e, "e3", T0 + 2 * S, "B", "c1", out);
                complain(e, "e4", T0 + 3 * S, "B", "c3", out);
                update(e, "u1", "sku:A/print_defect#1", 1, T0 + 10 * S, None, out);
            },
            |e, out| update(e, "u2", "sku:A/print_defect#1", 2, T0 + 20 * S, Some(Verdict::NoDefect), out),
        ];
        for round in rounds {
            let mut out = Vec::new();
            round(&mut streamed, &mut out);
            sent.extend(w.streamed(&out, &streamed));
            round(&mut whole, &mut all);
        }
        let batch = table_records(0, &all, &whole);
        assert_eq!(last(&sent), last(&batch));
        assert_eq!(
            keys(&sent),
            [
                ("andon/sku:A/print_defect#1".to_owned(), true),
                ("andon/sku:A/print_defect#1".to_owned(), true),
                ("andon/sku:B/print_defect#1".to_owned(), true),
                ("closed/sku:A/print_defect#1".to_owned(), true),
                ("andon/sku:A/print_defect#1".to_owned(), false),
            ],
            "A put, then put again beside B's, then A's close and tombstone"
        );
        assert_eq!(w.bytes_since, size(&sent), "streamed bytes count towards a re-put by bytes");
    }

    #[test]
    fn opened_and_closed_in_one_batch_leaves_a_tombstone() {
        let mut e = engine();
        let mut out = pull_a(&mut e);
        update(&mut e, "u1", "sku:A/print_defect#1", 1, T0 + 10 * S, Some(Verdict::DefectConfirmed), &mut out);
        let r = table_records(0, &out, &e);
        assert_eq!(
            keys(&r),
            [("closed/sku:A/print_defect#1".to_owned(), true), ("andon/sku:A/print_defect#1".to_owned(), false)]
        );
    }

    #[test]
    fn a_refresh_puts_every_open_andon_and_drops_what_the_view_has_wrong() {
        let mut e = engine();
        pull_a(&mut e);
        let mut out = Vec::new();
        complain(&mut e, "e3", T0 + 2 * S, "B", "c1", &mut out);
        complain(&mut e, "e4", T0 + 3 * S, "B", "c3", &mut out);
        let stale = vec!["sku:Z/print_defect#4".to_owned(), "sku:A/print_defect#1".to_owned()];
        let r = refresh_records(1, &e, &stale);
        assert_eq!(
            keys(&r),
            [
                ("andon/sku:A/print_defect#1".to_owned(), true),
                ("andon/sku:B/print_defect#1".to_owned(), true),
                ("andon/sku:Z/print_defect#4".to_owned(), false)
            ]
        );
    }

    #[test]
    fn the_writer_refreshes_first_then_after_enough_bytes() {
        let mut e = engine();
        let view = Model::default();
        let t = Instant::now();
        let mut w = TableWriter::new(0, t);
        let out = pull_a(&mut e);
        assert!(!w.idle_refresh_due(t), "no batch of its own at once");
        assert_eq!(w.records(&[], &e, &view, t, true).len(), 1, "first batch after assignment: the open andon");
        assert!(w.records(&[], &e, &view, t, true).is_empty(), "then only what batches touch");
        assert_eq!(w.records(&out, &e, &view, t, true).len(), 1);
        // An idle partition's processor writes a batch when it is due.
        assert!(!w.idle_refresh_due(t + REFRESH_EVERY / 2));
        assert!(w.idle_refresh_due(t + REFRESH_EVERY), "an hour later, whatever the input");
        assert!(TableWriter::new(1, t).idle_refresh_due(t + REFRESH_EVERY), "assigned an hour ago and idle since");
        assert!(w.records(&[], &e, &view, t + REFRESH_EVERY, true).len() == 1, "an hour later: re-put");
        // Bytes: a busy andon's records add up until a re-put is due.
        let mut written = 0;
        loop {
            written += size(&w.records(&out, &e, &view, t + REFRESH_EVERY, true));
            if w.bytes_since == 0 {
                break;
            }
            assert!(written < 2 * REFRESH_BYTES, "never refreshed");
        }
        assert!(written >= REFRESH_BYTES, "not before REFRESH_BYTES: {written}");
    }

    #[test]
    fn on_a_view_topic_unbounded_by_bytes_only_the_hour_brings_a_re_put() {
        let mut e = engine();
        let view = Model::default();
        let t = Instant::now();
        let mut w = TableWriter::new(0, t);
        let out = pull_a(&mut e);
        assert_eq!(w.records(&[], &e, &view, t, false).len(), 1, "the first batch re-puts, bounded or not");
        let mut written = 0;
        while written < 3 * REFRESH_BYTES {
            written += size(&w.records(&out, &e, &view, t, false));
            assert_ne!(w.bytes_since, 0, "re-put by bytes on an unbounded topic after {written} bytes");
        }
        // The same writer, told now that the topic is bounded, re-puts.
        w.records(&out, &e, &view, t, true);
        assert_eq!(w.bytes_since, 0, "bounded: re-put by bytes");
        assert!(w.records(&[], &e, &view, t + REFRESH_EVERY, false).len() == 1, "an hour later: re-put");
    }
}
