//! `andon replay`: the engine offline, over files. Each file is read in its
//! own order; the two are merged by their next records' event times,
//! complaints first on ties (docs/semantics.md, rule 0), by the same
//! [`Merge`] as the Kafka task's. Every output goes to `out`
//! as one JSON line in emission order; a rejected line goes there as a DLQ
//! line and never stops the run. A [`Summary`] of the run is returned.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

use serde::Serialize;

use crate::config::Settings;
use crate::engine::{Engine, EscalationClock, RecordMeta, UpdateOutcome};
use crate::event::{
    decode_complaint, decode_update, Action, Complaint, Output, Reject, RejectReason, Trigger, Update, Verdict,
    WorkOrderEvent,
};
use crate::merge::{Merge, Next, Side, Timed};
use crate::time::Ts;

/// One input file: a name for the DLQ headers and its lines.
pub struct Input<R> {
    pub name: String,
    pub reader: R,
}

/// What a run saw and did, printed to stderr by the CLI.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub complaints_read: u64,
    pub updates_read: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    pub complaints: BTreeMap<&'static str, u64>,
    pub duplicate_updates: u64,
    pub pulls: BTreeMap<(String, Trigger), u64>,
    pub delists: u64,
    pub relists: u64,
    pub escalations: u64,
    pub closed: BTreeMap<Verdict, u64>,
    pub open_at_end: usize,
}

impl Summary {
    /// Counts an emitted output.
    pub fn record(&mut self, o: &Output) {
        match o {
            Output::Command(c) => match c.action {
                Action::Delist => self.delists += 1,
                Action::Relist => self.relists += 1,
            },
            Output::WorkOrder(WorkOrderEvent::Opened { issue, trigger, .. }) => {
                *self.pulls.entry((issue.clone(), *trigger)).or_default() += 1;
            }
            Output::WorkOrder(WorkOrderEvent::Escalated { .. }) => self.escalations += 1,
            Output::WorkOrder(WorkOrderEvent::Closed { verdict, .. }) => *self.closed.entry(*verdict).or_default() += 1,
            Output::WorkOrder(WorkOrderEvent::StepCompleted { .. }) => {}
        }
    }

    /// Share of closed work orders whose verdict was `no_defect`.
    pub fn bad_pull_rate(&self) -> Option<f64> {
        let total: u64 = self.closed.values().sum();
        (total > 0).then(|| *self.closed.get(&Verdict::NoDefect).unwrap_or(&0) as f64 / total as f64)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rejected: u64 = self.rejected.values().sum();
        writeln!(f, "andon replay summary")?;
        writeln!(f, "  inputs read:     {} complaints, {} updates", self.complaints_read, self.updates_read)?;
        writeln!(f, "  rejected (DLQ):  {rejected}")?;
        for (reason, n) in &self.rejected {
            writeln!(f, "    {reason:<24} {n}")?;
        }
        writeln!(f, "  complaints:")?;
        for (class, n) in &self.complaints {
            writeln!(f, "    {class:<24} {n}")?;
        }
        writeln!(f, "  duplicate updates: {}", self.duplicate_updates)?;
        let pulls: u64 = self.pulls.values().sum();
        writeln!(f, "  pulls:           {pulls}")?;
        for ((issue, trigger), n) in &self.pulls {
            writeln!(f, "    {:<24} {:<10} {n}", issue, trigger.as_str())?;
        }
        writeln!(f, "  delists:         {}", self.delists)?;
        writeln!(f, "  relists:         {}", self.relists)?;
        writeln!(f, "  escalations:     {}", self.escalations)?;
        let closed: u64 = self.closed.values().sum();
        writeln!(f, "  closed:          {closed}")?;
        for (verdict, n) in &self.closed {
            writeln!(f, "    {:<24} {n}", verdict.as_str())?;
        }
        writeln!(f, "  open at end:     {}", self.open_at_end)?;
        match self.bad_pull_rate() {
            Some(r) => write!(f, "  bad-pull rate:   {:.2} % (target at most 2 %)", r * 100.0),
            None => write!(f, "  bad-pull rate:   n/a (no verdicts)"),
        }
    }
}

#[derive(Serialize)]
struct OutLine<'a> {
    topic: &'a str,
    key: &'a str,
    value: &'a Output,
}

#[derive(Serialize)]
struct DlqLine<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    value: &'a str,
    headers: DlqHeaders<'a>,
}

#[derive(Serialize)]
struct DlqHeaders<'a> {
    #[serde(rename = "andon.error.reason")]
    reason: &'static str,
    #[serde(rename = "andon.error.message")]
    message: &'a str,
    #[serde(rename = "andon.source.file")]
    file: &'a str,
    #[serde(rename = "andon.source.line")]
    line: String,
}

/// Reads lines of one file and decodes them.
struct Source<R, T> {
    input: Input<R>,
    line_no: u64,
    /// Lines read that were not blank (the summary's count).
    read: u64,
    buf: Vec<u8>,
    decode: fn(&[u8], usize) -> Result<T, Reject>,
    done: bool,
}

/// A line read: decoded, or rejected (it takes no part in the merge and
/// goes to the DLQ as soon as it reaches the front of its queue).
enum Line<T> {
    Decoded { line_no: u64, raw: Vec<u8>, record: T },
    Rejected { line_no: u64, raw: Vec<u8>, reject: Reject },
}

impl Timed for Line<Complaint> {
    fn event_time(&self) -> Option<Ts> {
        match self {
            Line::Decoded { record, .. } => Some(record.occurred_at),
            Line::Rejected { .. } => None,
        }
    }
}

impl Timed for Line<Update> {
    fn event_time(&self) -> Option<Ts> {
        match self {
            Line::Decoded { record, .. } => Some(record.at),
            Line::Rejected { .. } => None,
        }
    }
}

impl<R: BufRead, T> Source<R, T> {
    fn new(input: Input<R>, decode: fn(&[u8], usize) -> Result<T, Reject>) -> Self {
        Self { input, line_no: 0, read: 0, buf: Vec::with_capacity(1024), decode, done: false }
    }

    /// The next line that is not blank (`None`: the end of the file).
    fn next(&mut self, max_bytes: usize, bytes_read: &mut u64) -> io::Result<Option<Line<T>>> {
        while !self.done {
            self.buf.clear();
            let n = self.input.reader.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                self.done = true;
                break;
            }
            *bytes_read += n as u64;
            self.line_no += 1;
            let mut line = &self.buf[..];
            while let [rest @ .., b'\n' | b'\r'] = line {
                line = rest;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue; // blank lines are not records
            }
            self.read += 1;
            let (line_no, raw) = (self.line_no, line.to_vec());
            return Ok(Some(match (self.decode)(line, max_bytes) {
                Ok(record) => Line::Decoded { line_no, raw, record },
                Err(reject) => Line::Rejected { line_no, raw, reject },
            }));
        }
        Ok(None)
    }
}

/// How many rejected lines are named one by one on stderr.
const REPORT_LIMIT: u64 = 100;

/// Counts `reject` in `by_reason`, and says whether the caller should name
/// it in the log: a rejected input is named (the DLQ line on stdout may be
/// going into a file), but a file of garbage must not drown the terminal,
/// so past [`REPORT_LIMIT`] they are only counted, which one line (of
/// rejected `what`) says. `replay`, and `tune` from files or Kafka.
pub fn count_rejected(by_reason: &mut BTreeMap<RejectReason, u64>, reject: &Reject, what: &str) -> bool {
    *by_reason.entry(reject.reason).or_default() += 1;
    let rejected: u64 = by_reason.values().sum();
    if rejected == REPORT_LIMIT + 1 {
        tracing::warn!("more than {REPORT_LIMIT} rejected {what}: the rest are only counted in the summary");
    }
    rejected <= REPORT_LIMIT
}

/// Where output lines go, and the tally of them.
struct Sink<'a, W> {
    out: W,
    settings: &'a Settings,
    summary: Summary,
}

impl<W: Write> Sink<'_, W> {
    fn dlq(&mut self, raw: &[u8], reject: &Reject, file: &str, line: u64) -> io::Result<()> {
        if count_rejected(&mut self.summary.rejected, reject, "lines") {
            tracing::warn!(file, line, reason = reject.reason.as_str(), message = %reject.message, "rejected input line");
        }
        let value = String::from_utf8_lossy(raw);
        let record = DlqLine {
            topic: &self.settings.topics.dlq,
            key: None,
            value: &value,
            headers: DlqHeaders {
                reason: reject.reason.as_str(),
                message: &reject.message,
                file,
                line: line.to_string(),
            },
        };
        serde_json::to_writer(&mut self.out, &record)?;
        self.out.write_all(b"\n")
    }

    fn emit(&mut self, outputs: &mut Vec<Output>) -> io::Result<()> {
        for o in outputs.drain(..) {
            self.summary.record(&o);
            let topic = match o {
                Output::Command(_) => &self.settings.topics.delist_commands,
                Output::WorkOrder(_) => &self.settings.topics.work_orders,
            };
            serde_json::to_writer(&mut self.out, &OutLine { topic, key: o.key(), value: &o })?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Progress reports: bytes read so far (for a progress bar).
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Runs the engine over the inputs and writes every output line to `out`.
pub fn replay<C: BufRead, U: BufRead, W: Write>(
    settings: &Settings,
    complaints: Input<C>,
    updates: Option<Input<U>>,
    out: W,
    progress: Progress<'_>,
) -> io::Result<Summary> {
    let mut engine = Engine::new(settings.engine.clone(), EscalationClock::StreamTime);
    let mut sink = Sink { out, settings, summary: Summary::default() };
    let max_bytes = settings.processing.max_event_bytes;
    let mut cs: Source<C, Complaint> = Source::new(complaints, decode_complaint);
    let mut us: Option<Source<U, Update>> = updates.map(|u| Source::new(u, decode_update));
    let mut bytes = 0u64;
    let mut outputs = Vec::with_capacity(16);
    // The same merge as the Kafka task's, one line ahead on each side: a
    // side may be passed over only when its file is read to the end.
    let mut merge: Merge<Line<Complaint>, Line<Update>> = Merge::default();
    let mut since_progress = 0u32;
    loop {
        if merge.len(Side::Complaints) == 0 {
            if let Some(line) = cs.next(max_bytes, &mut bytes)? {
                merge.push_complaint(line);
            }
        }
        if let (0, Some(src)) = (merge.len(Side::Updates), us.as_mut()) {
            if let Some(line) = src.next(max_bytes, &mut bytes)? {
                merge.push_update(line);
            }
        }
        let ended = |side| match side {
            Side::Complaints => cs.done,
            Side::Updates => us.as_ref().is_none_or(|u| u.done),
        };
        match merge.next(ended) {
            Next::Complaint(Line::Decoded { line_no, raw, record }) => {
                match engine.on_complaint(record, RecordMeta::default(), &mut outputs) {
                    Ok(outcome) => *sink.summary.complaints.entry(outcome.class.as_str()).or_default() += 1,
                    Err(reject) => sink.dlq(&raw, &reject, &cs.input.name, line_no)?,
                }
                sink.emit(&mut outputs)?;
            }
            Next::Update(Line::Decoded { line_no, raw, record }) => {
                match engine.on_update(&record, RecordMeta::default(), &mut outputs) {
                    Ok(UpdateOutcome::Duplicate) => sink.summary.duplicate_updates += 1,
                    Ok(UpdateOutcome::Applied) => {}
                    Err(reject) => {
                        let name = us.as_ref().map_or("", |u| u.input.name.as_str());
                        sink.dlq(&raw, &reject, name, line_no)?;
                    }
                }
                sink.emit(&mut outputs)?;
            }
            Next::Complaint(Line::Rejected { line_no, raw, reject }) => {
                sink.dlq(&raw, &reject, &cs.input.name, line_no)?;
            }
            Next::Update(Line::Rejected { line_no, raw, reject }) => {
                let name = us.as_ref().map_or("", |u| u.input.name.as_str());
                sink.dlq(&raw, &reject, name, line_no)?;
            }
            // Both sides were just refilled: a side with nothing queued is
            // read to its end, so the merge never waits; empty is the end.
            Next::Wait(_) | Next::Empty => break,
        }
        since_progress += 1;
        if since_progress == 4096 {
            since_progress = 0;
            progress(bytes);
        }
    }
    progress(bytes);
    sink.out.flush()?;
    let mut summary = sink.summary;
    summary.complaints_read = cs.read;
    summary.updates_read = us.as_ref().map_or(0, |u| u.read);
    summary.open_at_end = engine.open_andon_count();
    Ok(summary)
}
