//! The history, read and decoded once: every complaint and update line of
//! the files `andon replay` reads, in file order. A line that does not
//! decode is counted by reason and named on stderr (the first 100, as
//! `replay` does), and takes no part in anything after: the engine would
//! have sent it to the DLQ, where it changes nothing (docs/records.md).

use std::collections::BTreeMap;
use std::io::{self, BufRead};

use crate::event::{decode_complaint, decode_update, Complaint, Reject, RejectReason, Update};
use crate::replay::{count_rejected, Input};

/// Everything read, decoded.
#[derive(Debug, Default)]
pub struct History {
    pub complaints: Vec<Complaint>,
    pub updates: Vec<Update>,
    pub complaints_read: u64,
    pub updates_read: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
}

impl History {
    /// Reads both inputs to their end. `progress` hears the bytes read so far.
    pub fn read<C: BufRead, U: BufRead>(
        complaints: Input<C>,
        updates: Option<Input<U>>,
        max_bytes: usize,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<History> {
        let mut h = History::default();
        let mut bytes = 0u64;
        (h.complaints, h.complaints_read) =
            read_lines(complaints, max_bytes, decode_complaint, &mut h.rejected, &mut bytes, progress)?;
        if let Some(u) = updates {
            (h.updates, h.updates_read) =
                read_lines(u, max_bytes, decode_update, &mut h.rejected, &mut bytes, progress)?;
        }
        progress(bytes);
        Ok(h)
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// One file's records, decoded, and how many lines held one.
fn read_lines<R: BufRead, T>(
    mut input: Input<R>,
    max_bytes: usize,
    decode: fn(&[u8], usize) -> Result<T, Reject>,
    rejected: &mut BTreeMap<RejectReason, u64>,
    bytes: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(Vec<T>, u64)> {
    let mut buf = Vec::with_capacity(1024);
    let (mut line_no, mut read, mut out) = (0u64, 0u64, Vec::new());
    loop {
        buf.clear();
        let n = input.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok((out, read));
        }
        *bytes += n as u64;
        line_no += 1;
        let mut line = &buf[..];
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // blank lines are not records
        }
        read += 1;
        match decode(line, max_bytes) {
            Ok(record) => out.push(record),
            Err(reject) => {
                if count_rejected(rejected, &reject, "lines") {
                    tracing::warn!(file = %input.name, line = line_no, reason = reject.reason.as_str(), message = %reject.message, "rejected input line");
                }
            }
        }
        if line_no % 65_536 == 0 {
            progress(*bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_counted_by_reason_and_skipped() {
        let complaints = concat!(
            r#"{"event_id":"e1","occurred_at":"2026-11-01T10:00:00Z","subject":{"kind":"sku","id":"A"},"issue":"x","customer_id":"c1"}"#,
            "\n\nnot json\n",
            r#"{"event_id":"e2","occurred_at":"2026-11-01T10:00:00Z","subject":{"kind":"sku","id":"A"},"issue":"x"}"#,
            "\n"
        );
        let updates = "{\"update_id\": 1}\n";
        let h = History::read(
            Input { name: "c".into(), reader: complaints.as_bytes() },
            Some(Input { name: "u".into(), reader: updates.as_bytes() }),
            65_536,
            &mut |_| {},
        )
        .expect("in memory");
        assert_eq!((h.complaints.len(), h.complaints_read, h.updates_read), (1, 3, 1));
        assert_eq!(h.rejected.get(&RejectReason::InvalidJson), Some(&1));
        assert_eq!(h.rejected.get(&RejectReason::SchemaViolation), Some(&2));
        assert_eq!(h.rejected_total(), 3);
    }
}
