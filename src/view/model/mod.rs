//! The read model every member keeps of the whole cluster, built by
//! applying the view topic's records in order ([`Model::apply`]), and the
//! answers built from it (`/andons`, `/recent`, `/owners`, `/bad-pulls`,
//! the charts). Pure: the time is passed in, nothing here does I/O.
//!
//! Memory is bounded by the open andons, the closed andons of the last
//! [`HISTORY`] (at most [`MAX_CLOSED`]), the members heard from in the last
//! hour, and [`MAX_RECENT`] recent events. Off-sale subjects are derived
//! from the open andons (a subject is off sale while it has an open
//! delisting andon), so they cost nothing more.
//!
//! One job a file: this one applies the records and sweeps; `queries.rs`
//! answers about open andons, recent events and members; `owners.rs`
//! (owners' timeliness), `bad_pulls.rs` and `charts.rs` build the reports
//! of those names; `tests.rs` tests them all.

mod bad_pulls;
mod charts;
mod owners;
mod queries;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use serde::Serialize;

pub use bad_pulls::{BadPullsReport, RateRow, NO_CHANNEL};
pub use charts::Charts;
pub use owners::{percentile, ActorRow, OwnerRow, OwnersReport};
pub use queries::{subject_of, AndonOut};

use super::record::{AndonRecord, ClosedRecord, Key, MemberRecord};
use crate::time::{Dur, Ts};

const DAY: Dur = Dur::from_secs(86_400);
/// How far back closed andons are kept (bad pulls, owners' timeliness).
pub const HISTORY: Dur = Dur::from_secs(30 * 86_400);
/// At most this many closed andons are kept (the latest closed).
pub const MAX_CLOSED: usize = 200_000;
pub const MAX_RECENT: usize = 100;
/// A member not heard from for this long is forgotten.
const MEMBER_EXPIRY: Dur = Dur::from_secs(3600);

/// A notable event for the status page's feed: pulls, delists, relists,
/// escalations, closes, derived from how the table changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recent {
    pub kind: &'static str,
    pub id: String,
    pub subject: String,
    pub at: String,
    pub detail: String,
}

/// An event as [`Model`] keeps it; its time is its key's, formatted only
/// when asked for (most events are pushed out unread).
#[derive(Debug)]
struct Noted {
    kind: &'static str,
    id: String,
    subject: String,
    detail: String,
}

/// The maps are keyed by andon ids and subject keys with Fx hashing, as
/// the engine's are: SipHash was a tenth of what reading the view cost.
#[derive(Debug, Default)]
pub struct Model {
    open: FxHashMap<String, AndonRecord>,
    /// Open delisting andons per subject key: off sale while > 0.
    delisting: FxHashMap<String, u32>,
    closed: FxHashMap<String, ClosedRecord>,
    /// (closed_at, andon_id) of `closed`, for dropping the oldest.
    closed_order: BTreeSet<(Ts, String)>,
    members: BTreeMap<String, MemberRecord>,
    /// The latest events by time: (at, arrival) -> event.
    recent: BTreeMap<(Ts, u64), Noted>,
    arrivals: u64,
}

impl Model {
    /// Applies one record of the view topic (`value` `None`: a tombstone).
    /// `written_at` is the record's timestamp (when it was written), used
    /// as the time of events the record does not date itself (escalations).
    /// A record that does not decode is refused and changes nothing.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>, written_at: Ts, now: Ts) -> Result<(), String> {
        match (Key::parse(key), value) {
            (Some(Key::Andon(id)), Some(v)) => {
                let r: AndonRecord = decode(key, v)?;
                self.put_andon(id, r, written_at);
            }
            (Some(Key::Andon(id)), None) => {
                self.remove_andon(id);
            }
            (Some(Key::Closed(id)), Some(v)) => {
                let r: ClosedRecord = decode(key, v)?;
                self.put_closed(id, r, now);
            }
            (Some(Key::Closed(id)), None) => {
                if let Some(r) = self.closed.remove(id) {
                    self.closed_order.remove(&(r.closed_at, id.to_owned()));
                }
            }
            (Some(Key::Member(m)), Some(v)) => {
                let r: MemberRecord = decode(key, v)?;
                self.members.insert(m.to_owned(), r);
            }
            (Some(Key::Member(m)), None) => {
                self.members.remove(m);
            }
            (None, _) => return Err(format!("{key}: not a key of the view topic")),
        }
        Ok(())
    }

    fn put_andon(&mut self, id: &str, r: AndonRecord, written_at: Ts) {
        let subject = r.subject_key();
        match self.open.get(id) {
            None => {
                let detail = format!("{} ({})", r.issue, r.trigger.as_str());
                if r.delisting {
                    let n = self.delisting.entry(subject.clone()).or_default();
                    *n += 1;
                    if *n == 1 {
                        self.event("delist", id, &subject, r.opened_at, detail.clone());
                    }
                }
                self.event("pull", id, &subject, r.opened_at, detail);
            }
            Some(old) => {
                if r.escalated && !old.escalated {
                    self.event("escalated", id, &subject, written_at, format!("step {} ({})", r.step, r.owner));
                }
            }
        }
        self.open.insert(id.to_owned(), r);
    }

    /// Drops an open andon; true when that put its subject back on sale.
    fn remove_andon(&mut self, id: &str) -> bool {
        let Some(r) = self.open.remove(id) else { return false };
        if !r.delisting {
            return false;
        }
        let subject = r.subject_key();
        match self.delisting.get_mut(&subject) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.delisting.remove(&subject);
                true
            }
            None => false,
        }
    }

    fn put_closed(&mut self, id: &str, r: ClosedRecord, now: Ts) {
        let subject = r.subject.key();
        // The close and the tombstone of the open andon are written
        // together; taking the andon off here keeps the two consistent
        // whichever a reader sees first. A close seen again (a replayed
        // batch) is news to nobody.
        if self.closed.contains_key(id) {
            self.remove_andon(id);
        } else if self.open.contains_key(id) {
            if self.remove_andon(id) {
                self.event("relist", id, &subject, r.closed_at, r.issue.clone());
            }
        } else {
            // Opened and closed before this reader saw it open (in one
            // batch, or before what compaction kept): its pull, and the
            // delist and relist it made if nothing else kept the subject
            // off sale.
            let detail = format!("{} ({})", r.issue, r.trigger.as_str());
            if r.delisting && !self.delisting.contains_key(&subject) {
                self.event("delist", id, &subject, r.opened_at, detail.clone());
                self.event("relist", id, &subject, r.closed_at, r.issue.clone());
            }
            self.event("pull", id, &subject, r.opened_at, detail);
        }
        if !self.closed.contains_key(id) {
            self.event("closed", id, &subject, r.closed_at, r.verdict.as_str().to_owned());
        }
        if r.closed_at < now - HISTORY {
            return;
        }
        if let Some(old) = self.closed.remove(id) {
            self.closed_order.remove(&(old.closed_at, id.to_owned()));
        }
        self.closed_order.insert((r.closed_at, id.to_owned()));
        self.closed.insert(id.to_owned(), r);
        while self.closed.len() > MAX_CLOSED {
            let Some((_, oldest)) = self.closed_order.pop_first() else { break };
            self.closed.remove(&oldest);
        }
    }

    fn event(&mut self, kind: &'static str, id: &str, subject: &str, at: Ts, detail: String) {
        self.arrivals += 1;
        let r = Noted { kind, id: id.to_owned(), subject: subject.to_owned(), detail };
        self.recent.insert((at, self.arrivals), r);
        while self.recent.len() > MAX_RECENT {
            self.recent.pop_first();
        }
    }

    /// Forgets closed andons older than [`HISTORY`] and members not heard
    /// from for an hour.
    pub fn sweep(&mut self, now: Ts) {
        let cutoff = now - HISTORY;
        while let Some((at, _)) = self.closed_order.first() {
            if *at >= cutoff {
                break;
            }
            if let Some((_, id)) = self.closed_order.pop_first() {
                self.closed.remove(&id);
            }
        }
        let expiry = now - MEMBER_EXPIRY;
        self.members.retain(|_, m| m.updated_at >= expiry);
    }
}

/// A view record's JSON value. UTF-8 is checked once for the whole value,
/// so that the parser does not check each string again (as it does reading
/// bytes): most of what reading the view costs is this decoding.
fn decode<T: serde::de::DeserializeOwned>(key: &str, v: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(v).map_err(|e| format!("{key}: not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests;
