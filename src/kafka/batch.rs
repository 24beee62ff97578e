//! Writing one batch through the seam: every partition's outputs (most
//! already sent while the batch was processed: [`Stream`]) and the view's
//! table records, then — once they are acknowledged, so that a visible
//! checkpoint never claims records that are not in their topics — each
//! partition's checkpoint (or snapshot) and head, then the commit with the
//! input positions. One transaction with `exactly_once`
//! (docs/guarantees.md#how-it-is-kept-without-trusting-the-broker).
//!
//! On failure nothing here is undone: the caller aborts the batch and
//! restores the partitions it touched, and their outputs that reached
//! their partitions anyway are recognised by id and not written again.

use crate::config::Topics;
use crate::engine::changes::Encoded;
use crate::kafka::checkpoint::{Chain, Kind, Positions, Stamp, Writing, Written};
use crate::kafka::errors::FailureKind;
use crate::kafka::io::{Acks, BatchSink, IoError, Out};
use crate::kafka::task::{OutTopic, Produce};
use crate::view::TableRecord;

/// One partition's share of a batch.
pub struct Share<'a> {
    pub partition: i32,
    /// The outputs not yet sent ([`Stream`]).
    pub outputs: &'a [Produce],
    /// Records for the cluster-wide view's table (`topics.view`).
    pub table: &'a [TableRecord],
    /// Input positions after the batch (complaints, updates).
    pub inputs: (i64, i64),
    pub kind: Kind,
    /// The changelog operations: the batch's changes, or the whole state.
    pub body: &'a Encoded,
    pub chain: &'a Chain,
    pub era: u32,
    /// The group generation in which this member was assigned the
    /// partition: what its checkpoints are stamped with (see `Task`).
    pub generation: i32,
}

/// What a partition's share became once committed.
#[derive(Debug)]
pub struct Done {
    pub partition: i32,
    pub written: Written,
    pub stamp: Stamp,
    pub positions: Positions,
    /// End of the state partition after the batch.
    pub state_end: i64,
}

/// A batch that failed, and at which step.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {error}")]
pub struct BatchError {
    pub step: &'static str,
    pub error: IoError,
}

impl BatchError {
    pub fn kind(&self) -> FailureKind {
        self.error.kind
    }
}

/// How a batch is written: the attempt (unique per try) and the partition
/// count of andon's topics.
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    pub attempt: u64,
    pub partitions: u32,
}

pub fn topic_name(topics: &Topics, t: OutTopic) -> &str {
    match t {
        OutTopic::DelistCommands => &topics.delist_commands,
        OutTopic::WorkOrders => &topics.work_orders,
        OutTopic::Dlq => &topics.dlq,
    }
}

/// The batch's outputs, sent while the batch is still being processed:
/// the batch begins with the first of them, and they travel to their
/// partitions (which join the transaction meanwhile) while the rest is
/// processed, instead of all after it. On Apache Kafka at 10,000
/// complaints/s, sending them at the end made their acknowledgement the
/// largest step of the write (43 ms at p50 of an 82 ms transaction).
#[derive(Debug, Default)]
pub struct Stream {
    begun: bool,
}

impl Stream {
    /// Sends `outputs` of `partition` into the batch, and the view's
    /// `table` records of them, beginning the batch first if nothing was
    /// sent yet. A failure fails the batch (the caller aborts it as it
    /// would a failed [`write`]).
    pub fn send(
        &mut self,
        sink: &mut dyn BatchSink,
        topics: &Topics,
        partition: i32,
        outputs: &[Produce],
        table: &[TableRecord],
    ) -> Result<(), BatchError> {
        if outputs.is_empty() && table.is_empty() {
            return Ok(());
        }
        self.begin(sink)?;
        send_outputs(sink, topics, partition, outputs)?;
        send_table(sink, topics, partition, table)
    }

    /// Begins the batch, unless something was sent already.
    fn begin(&mut self, sink: &mut dyn BatchSink) -> Result<(), BatchError> {
        if !self.begun {
            sink.begin().map_err(|error| BatchError { step: "beginning the batch", error })?;
            self.begun = true;
        }
        Ok(())
    }

    /// Whether the batch has begun (something was sent).
    pub fn begun(&self) -> bool {
        self.begun
    }
}

fn send_table(
    sink: &mut dyn BatchSink,
    topics: &Topics,
    partition: i32,
    table: &[TableRecord],
) -> Result<(), BatchError> {
    let records = table.iter().map(|r| (r.key.as_str(), r.value.as_deref()));
    send_keyed(sink, &topics.view, partition, records, "writing the view's table")
}

/// Sends keyed records without headers (the view's table, a state
/// partition's checkpoint) to `partition` of `topic`.
fn send_keyed<'r>(
    sink: &mut dyn BatchSink,
    topic: &str,
    partition: i32,
    records: impl IntoIterator<Item = (&'r str, Option<&'r [u8]>)>,
    step: &'static str,
) -> Result<(), BatchError> {
    for (key, value) in records {
        let out = Out { topic, partition, key: Some(key.as_bytes()), value, headers: &[] };
        sink.send(&out).map_err(|error| BatchError { step, error })?;
    }
    Ok(())
}

fn send_outputs(
    sink: &mut dyn BatchSink,
    topics: &Topics,
    partition: i32,
    outputs: &[Produce],
) -> Result<(), BatchError> {
    for r in outputs {
        let headers: Vec<(&str, &[u8])> = r.headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let out = Out {
            topic: topic_name(topics, r.topic),
            partition,
            key: r.key.as_deref(),
            value: Some(&r.value),
            headers: &headers,
        };
        sink.send(&out).map_err(|error| BatchError { step: "writing outputs", error })?;
    }
    Ok(())
}

/// Writes `shares` as one batch (see the module documentation), after
/// what `stream` sent of it; the stream is done with afterwards,
/// whatever the result.
pub fn write(
    sink: &mut dyn BatchSink,
    topics: &Topics,
    mut stream: Stream,
    shares: &[Share<'_>],
    w: Writer,
) -> Result<Vec<Done>, BatchError> {
    let step = |step| move |error| BatchError { step, error };
    let t0 = std::time::Instant::now();
    // Whether anything was sent before the checkpoints: the outputs and
    // the view's table records are acknowledged before a checkpoint says
    // they were written (a retried batch may send table records alone).
    let mut any_sent = stream.begun;
    stream.begin(sink)?;
    for s in shares {
        send_outputs(sink, topics, s.partition, s.outputs)?;
        any_sent |= !s.outputs.is_empty();
        send_table(sink, topics, s.partition, s.table)?;
        any_sent |= !s.table.is_empty();
    }
    let t1 = t0.elapsed();
    let acks =
        if any_sent { sink.flush().map_err(step("waiting for the outputs' acknowledgements"))? } else { Acks::new() };
    let t2 = t0.elapsed();
    let end = |topic: &str, p: i32, prev: i64| acks.get(&(topic.to_owned(), p)).map_or(prev, |(_, e)| (*e).max(prev));
    let mut pending = Vec::with_capacity(shares.len());
    for s in shares {
        let prev = s.chain.positions;
        let positions = Positions {
            complaints: s.inputs.0,
            updates: s.inputs.1,
            delist_commands: end(&topics.delist_commands, s.partition, prev.delist_commands),
            work_orders: end(&topics.work_orders, s.partition, prev.work_orders),
            dlq: end(&topics.dlq, s.partition, prev.dlq),
        };
        let stamp = Stamp { era: s.era, generation: s.generation };
        let writing = Writing { stamp, attempt: w.attempt, partitions: w.partitions };
        let written = s.chain.write(writing, s.kind, positions, s.body);
        let records = written.records.iter().map(|r| (r.key.as_str(), r.value.as_deref()));
        send_keyed(sink, &topics.state, s.partition, records, "writing checkpoints")?;
        pending.push((s.partition, written, stamp, positions));
    }
    let t3 = t0.elapsed();
    let acks = sink.flush().map_err(step("waiting for the checkpoints' acknowledgements"))?;
    let t4 = t0.elapsed();
    let inputs: Vec<(i32, i64, i64)> = shares.iter().map(|s| (s.partition, s.inputs.0, s.inputs.1)).collect();
    sink.commit(&inputs).map_err(step("committing"))?;
    tracing::trace!(
        sent_us = t1.as_micros() as u64,
        outputs_acked_us = t2.as_micros() as u64,
        checkpoints_sent_us = t3.as_micros() as u64,
        checkpoints_acked_us = t4.as_micros() as u64,
        committed_us = t0.elapsed().as_micros() as u64,
        "batch steps"
    );
    Ok(pending
        .into_iter()
        .map(|(partition, written, stamp, positions)| {
            let state_end = acks.get(&(topics.state.clone(), partition)).map_or(-1, |(_, e)| *e);
            Done { partition, written, stamp, positions, state_end }
        })
        .collect())
}
