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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::record::{AndonRecord, ClosedRecord, Key, MemberRecord, StepRecord, BUCKETS, BUCKET_SECONDS};
use crate::event::{format_timestamp, Channel, Subject, Verdict};
use crate::time::{Dur, Ts};

const DAY: Dur = Dur::from_secs(86_400);
/// How far back closed andons are kept (bad pulls, owners' timeliness).
pub const HISTORY: Dur = Dur::from_secs(30 * 86_400);
/// At most this many closed andons are kept (the latest closed).
pub const MAX_CLOSED: usize = 200_000;
pub const MAX_RECENT: usize = 100;
/// A member not heard from for this long is forgotten.
const MEMBER_EXPIRY: Dur = Dur::from_secs(3600);
/// A member heard from this recently is taken to be running.
const MEMBER_LIVE: Dur = Dur::from_secs(30);

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

/// An open andon as served: the stored record and whether its current
/// step is overdue now.
#[derive(Debug, Clone, Serialize)]
pub struct AndonOut<'a> {
    #[serde(flatten)]
    pub andon: &'a AndonRecord,
    pub overdue: bool,
}

#[derive(Debug, Default)]
pub struct Model {
    open: HashMap<String, AndonRecord>,
    /// Open delisting andons per subject key: off sale while > 0.
    delisting: HashMap<String, u32>,
    closed: HashMap<String, ClosedRecord>,
    /// (closed_at, andon_id) of `closed`, for dropping the oldest.
    closed_order: BTreeSet<(Ts, String)>,
    members: BTreeMap<String, MemberRecord>,
    /// The latest events by time: (at, arrival) -> event.
    recent: BTreeMap<(Ts, u64), Recent>,
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
                let r: AndonRecord = serde_json::from_slice(v).map_err(|e| format!("{key}: {e}"))?;
                self.put_andon(id, r, written_at);
            }
            (Some(Key::Andon(id)), None) => {
                self.remove_andon(id);
            }
            (Some(Key::Closed(id)), Some(v)) => {
                let r: ClosedRecord = serde_json::from_slice(v).map_err(|e| format!("{key}: {e}"))?;
                self.put_closed(id, r, now);
            }
            (Some(Key::Closed(id)), None) => {
                if let Some(r) = self.closed.remove(id) {
                    self.closed_order.remove(&(r.closed_at, id.to_owned()));
                }
            }
            (Some(Key::Member(m)), Some(v)) => {
                let r: MemberRecord = serde_json::from_slice(v).map_err(|e| format!("{key}: {e}"))?;
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
        let r = Recent { kind, id: id.to_owned(), subject: subject.to_owned(), at: format_timestamp(at), detail };
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

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn off_sale_count(&self) -> usize {
        self.delisting.len()
    }

    pub fn closed_count(&self) -> usize {
        self.closed.len()
    }

    /// Every open andon, by due time then id.
    pub fn andons(&self, now: Ts) -> Vec<AndonOut<'_>> {
        let mut v: Vec<AndonOut<'_>> =
            self.open.values().map(|a| AndonOut { andon: a, overdue: a.due_at < now }).collect();
        v.sort_by(|a, b| (a.andon.due_at, &a.andon.andon_id).cmp(&(b.andon.due_at, &b.andon.andon_id)));
        v
    }

    pub fn andon(&self, id: &str, now: Ts) -> Option<AndonOut<'_>> {
        self.open.get(id).map(|a| AndonOut { andon: a, overdue: a.due_at < now })
    }

    /// The open andons of one subject, by due time then id.
    pub fn subject_andons(&self, subject_key: &str, now: Ts) -> Vec<AndonOut<'_>> {
        let mut v = self.andons(now);
        v.retain(|a| a.andon.subject_key() == subject_key);
        v
    }

    pub fn off_sale(&self, subject_key: &str) -> bool {
        self.delisting.contains_key(subject_key)
    }

    /// Ids of the open andons of partition `p` (for an owner to tombstone
    /// those it no longer has open).
    pub fn andon_ids_in(&self, p: i32) -> Vec<String> {
        let mut v: Vec<String> = self.open.values().filter(|a| a.partition == p).map(|a| a.andon_id.clone()).collect();
        v.sort();
        v
    }

    /// (open, overdue now) andons of the given partitions.
    pub fn open_in(&self, partitions: &[i32], now: Ts) -> (u64, u64) {
        self.open
            .values()
            .filter(|a| partitions.contains(&a.partition))
            .fold((0, 0), |(o, d), a| (o + 1, d + u64::from(a.due_at < now)))
    }

    /// The latest events, oldest first.
    pub fn recent(&self) -> Vec<Recent> {
        self.recent.values().cloned().collect()
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.values()
    }

    /// The member that says it owns partition `p` most recently.
    pub fn owner_of(&self, p: i32) -> Option<&MemberRecord> {
        self.members.values().filter(|m| m.partitions.contains(&p)).max_by_key(|m| m.updated_at)
    }

    /// Every completed step known: of open andons, and of closed ones.
    fn completed_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.open.values().flat_map(|a| a.done.iter()).chain(self.closed.values().flat_map(|c| c.steps.iter()))
    }

    /// Owners' timeliness (`GET /owners`).
    pub fn owners(&self, now: Ts) -> OwnersReport {
        let (d7, d30) = (now - DAY * 7, now - DAY * 30);
        let mut teams: BTreeMap<String, Tally> = BTreeMap::new();
        let mut actors: BTreeMap<String, (Tally, BTreeSet<String>)> = BTreeMap::new();
        for a in self.open.values() {
            let t = teams.entry(a.owner.clone()).or_default();
            t.open += 1;
            t.overdue += u64::from(a.due_at < now);
        }
        for s in self.completed_steps().filter(|s| s.completed_at >= d30) {
            teams.entry(s.owner.clone()).or_default().add(s, d7);
            let (t, owners) = actors.entry(s.actor.clone()).or_default();
            t.add(s, d7);
            owners.insert(s.owner.clone());
        }
        OwnersReport {
            window_days: 30,
            owners: teams
                .into_iter()
                .map(|(owner, t)| OwnerRow {
                    owner,
                    open_steps: t.open,
                    overdue: t.overdue,
                    completed_7d: t.completed_7d,
                    completed_30d: t.durations.len() as u64,
                    median_seconds: percentile(&t.durations, 50),
                    p90_seconds: percentile(&t.durations, 90),
                    within_sla: t.within_sla_share(),
                })
                .collect(),
            actors: actors
                .into_iter()
                .map(|(actor, (t, owners))| ActorRow {
                    actor,
                    owners: owners.into_iter().collect(),
                    completed_7d: t.completed_7d,
                    completed_30d: t.durations.len() as u64,
                    median_seconds: percentile(&t.durations, 50),
                    p90_seconds: percentile(&t.durations, 90),
                    within_sla: t.within_sla_share(),
                })
                .collect(),
        }
    }

    /// The bad-pull rate of the last 30 days by issue, trigger and
    /// complaint channel (`GET /bad-pulls`). Never per agent.
    pub fn bad_pulls(&self, now: Ts) -> BadPullsReport {
        let since = now - HISTORY;
        let mut all = Rate::default();
        let (mut by_issue, mut by_trigger, mut by_channel) =
            (BTreeMap::<String, Rate>::new(), BTreeMap::<&str, Rate>::new(), BTreeMap::<&str, Rate>::new());
        for c in self.closed.values().filter(|c| c.closed_at >= since) {
            let bad = c.verdict == Verdict::NoDefect;
            all.add(bad);
            by_issue.entry(c.issue.clone()).or_default().add(bad);
            by_trigger.entry(c.trigger.as_str()).or_default().add(bad);
            by_channel.entry(c.channel.map_or(NO_CHANNEL, Channel::as_str)).or_default().add(bad);
        }
        let rows = |m: BTreeMap<String, Rate>| m.into_iter().map(|(k, r)| r.row(k)).collect();
        BadPullsReport {
            window_days: 30,
            target: 0.02,
            closed: all.closed,
            bad: all.bad,
            rate: all.rate(),
            by_issue: rows(by_issue),
            by_trigger: rows(by_trigger.into_iter().map(|(k, r)| (k.to_owned(), r)).collect()),
            by_channel: rows(by_channel.into_iter().map(|(k, r)| (k.to_owned(), r)).collect()),
        }
    }

    /// The last hour of the whole cluster, summed over the members'
    /// published series, up to the last bucket every running member has
    /// published (so the newest point is never a partial sum).
    pub fn charts(&self, now: Ts) -> Charts {
        let recent = now - MEMBER_EXPIRY;
        let members: Vec<&MemberRecord> = self.members.values().filter(|m| m.updated_at >= recent).collect();
        let last = |m: &MemberRecord| m.series.first_bucket + m.series.complaints.len() as i64 - 1;
        let live = now - MEMBER_LIVE;
        let end = members
            .iter()
            .filter(|m| m.updated_at >= live && !m.series.complaints.is_empty())
            .map(|m| last(m))
            .min()
            .or_else(|| members.iter().map(|m| last(m)).max())
            .unwrap_or((now - Ts::EPOCH).as_secs() / BUCKET_SECONDS);
        let first = end - BUCKETS as i64 + 1;
        let mut c = Charts {
            bucket_seconds: BUCKET_SECONDS,
            first_bucket_at: first * BUCKET_SECONDS,
            complaints_per_second: vec![0.0; BUCKETS],
            pulls: vec![0; BUCKETS],
            open_andons: vec![None; BUCKETS],
            overdue_steps: vec![None; BUCKETS],
        };
        for m in members {
            let s = &m.series;
            for (i, b) in (s.first_bucket..).take(s.complaints.len()).enumerate() {
                if b < first || b > end {
                    continue;
                }
                let k = (b - first) as usize;
                c.complaints_per_second[k] += s.complaints[i] as f64 / BUCKET_SECONDS as f64;
                c.pulls[k] += s.pulls.get(i).copied().unwrap_or(0);
                if let Some(v) = s.open.get(i) {
                    *c.open_andons[k].get_or_insert(0) += v;
                }
                if let Some(v) = s.overdue.get(i) {
                    *c.overdue_steps[k].get_or_insert(0) += v;
                }
            }
        }
        c
    }
}

/// The `channel` of complaints that named none.
pub const NO_CHANNEL: &str = "unspecified";

#[derive(Default)]
struct Tally {
    open: u64,
    overdue: u64,
    completed_7d: u64,
    within_sla: u64,
    /// Seconds each step completed in the last 30 days took.
    durations: Vec<f64>,
}

impl Tally {
    fn add(&mut self, s: &StepRecord, d7: Ts) {
        self.completed_7d += u64::from(s.completed_at >= d7);
        self.within_sla += u64::from(s.completed_at <= s.due_at);
        self.durations.push((s.completed_at - s.started_at).as_secs_f64().max(0.0));
    }

    fn within_sla_share(&self) -> Option<f64> {
        (!self.durations.is_empty()).then(|| self.within_sla as f64 / self.durations.len() as f64)
    }
}

/// The nearest-rank percentile (the smallest value with at least `p` % of
/// the values at or below it); `None` for no values.
pub fn percentile(values: &[f64], p: u32) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (u64::from(p) * v.len() as u64).div_ceil(100).max(1) as usize;
    Some(v[rank - 1])
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnersReport {
    pub window_days: u32,
    pub owners: Vec<OwnerRow>,
    pub actors: Vec<ActorRow>,
}

/// One owner team. Durations are seconds from a step's start (the pull or
/// the previous step's completion) to its completion, over the steps
/// completed in the last 30 days (event time); `within_sla` is the share
/// of those completed by their due time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerRow {
    pub owner: String,
    /// Open andons whose current step is this owner's.
    pub open_steps: u64,
    /// Of those, past their due time now.
    pub overdue: u64,
    pub completed_7d: u64,
    pub completed_30d: u64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub within_sla: Option<f64>,
}

/// One person who completed steps in the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorRow {
    pub actor: String,
    /// The owner teams whose steps they completed.
    pub owners: Vec<String>,
    pub completed_7d: u64,
    pub completed_30d: u64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub within_sla: Option<f64>,
}

#[derive(Default)]
struct Rate {
    closed: u64,
    bad: u64,
}

impl Rate {
    fn add(&mut self, bad: bool) {
        self.closed += 1;
        self.bad += u64::from(bad);
    }

    fn rate(&self) -> Option<f64> {
        (self.closed > 0).then(|| self.bad as f64 / self.closed as f64)
    }

    fn row(&self, key: String) -> RateRow {
        RateRow { key, closed: self.closed, bad: self.bad, rate: self.rate() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    /// The issue, trigger or channel.
    pub key: String,
    pub closed: u64,
    /// Closed as `no_defect`.
    pub bad: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadPullsReport {
    pub window_days: u32,
    pub target: f64,
    pub closed: u64,
    pub bad: u64,
    pub rate: Option<f64>,
    pub by_issue: Vec<RateRow>,
    pub by_trigger: Vec<RateRow>,
    pub by_channel: Vec<RateRow>,
}

/// The status page's charts: one value per bucket, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charts {
    pub bucket_seconds: i64,
    /// Unix seconds at which the first bucket starts.
    pub first_bucket_at: i64,
    pub complaints_per_second: Vec<f64>,
    /// Andons pulled in each bucket.
    pub pulls: Vec<u64>,
    /// `None` where no member sampled (nobody was running).
    pub open_andons: Vec<Option<u64>>,
    pub overdue_steps: Vec<Option<u64>>,
}

/// What `/subjects` says about the view's side of a subject.
pub fn subject_of(kind: &str, id: &str) -> Option<Subject> {
    let n = id.chars().count();
    if !(1..=128).contains(&n) {
        return None;
    }
    Subject::from_key(&format!("{kind}:{id}")).filter(|s| s.kind.as_str() == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SubjectKind, Trigger};
    use crate::time::{Dur, Ts};
    use crate::view::record::{andon_key, closed_key, member_key, Series};

    const S: Dur = Dur::SECOND;
    const NOW: Ts = Ts::from_nanos(1_780_000_000 * 1_000_000_000);

    fn andon(id: &str, partition: i32, delisting: bool, due: Ts) -> AndonRecord {
        let (key, rest) = id.rsplit_once('/').expect("id");
        AndonRecord {
            andon_id: id.into(),
            partition,
            subject: Subject::from_key(key).expect("subject"),
            issue: rest.split('#').next().expect("issue").into(),
            trigger: Trigger::Threshold,
            delisting,
            channel: None,
            opened_at: NOW - 3600 * S,
            evidence: vec!["e1".into()],
            evidence_total: 1,
            step: 1,
            steps: 2,
            owner: "product".into(),
            step_started_at: NOW - 3600 * S,
            due_at: due,
            escalated: false,
            complaints_attached: 0,
            done: vec![],
        }
    }

    fn step(owner: &str, actor: &str, started: Ts, took: Dur, sla: Dur) -> StepRecord {
        StepRecord {
            step: 1,
            owner: owner.into(),
            actor: actor.into(),
            started_at: started,
            completed_at: started + took,
            due_at: started + sla,
        }
    }

    fn closed(id: &str, verdict: Verdict, trigger: Trigger, channel: Option<Channel>, at: Ts) -> ClosedRecord {
        let a = andon(id, 0, true, Ts::EPOCH);
        ClosedRecord {
            andon_id: id.into(),
            partition: 0,
            subject: a.subject,
            issue: a.issue,
            trigger,
            delisting: true,
            channel,
            verdict,
            opened_at: at - 3600 * S,
            closed_at: at,
            complaints_attached: 0,
            steps: vec![],
        }
    }

    fn put(m: &mut Model, key: &str, v: &impl Serialize) {
        m.apply(key, Some(&serde_json::to_vec(v).expect("json")), NOW, NOW).expect("applies");
    }

    #[test]
    fn puts_tombstones_and_closes_give_the_open_andons_and_off_sale_subjects() {
        let mut m = Model::default();
        put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
        put(&mut m, &andon_key("sku:A/y#1"), &andon("sku:A/y#1", 0, true, NOW - S));
        put(&mut m, &andon_key("sku:B/x#1"), &andon("sku:B/x#1", 1, false, NOW + 2 * S));
        let ids: Vec<&str> = m.andons(NOW).iter().map(|a| a.andon.andon_id.as_str()).collect();
        assert_eq!(ids, ["sku:A/y#1", "sku:A/x#1", "sku:B/x#1"], "by due time");
        assert!(m.andon("sku:A/y#1", NOW).expect("open").overdue);
        assert!(m.off_sale("sku:A") && !m.off_sale("sku:B"), "notify andons keep nothing off sale");
        // Re-putting (an owner's refresh) changes nothing.
        put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
        assert_eq!((m.open_count(), m.off_sale_count()), (3, 1));
        // Closing one of A's two delisting andons keeps A off sale.
        put(
            &mut m,
            &closed_key("sku:A/x#1"),
            &closed("sku:A/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW),
        );
        m.apply(&andon_key("sku:A/x#1"), None, NOW, NOW).expect("tombstone");
        assert!(m.off_sale("sku:A"));
        m.apply(&andon_key("sku:A/y#1"), None, NOW, NOW).expect("tombstone");
        assert!(!m.off_sale("sku:A"), "its last delisting andon closed");
        assert_eq!(m.open_count(), 1);
        assert_eq!(m.andon_ids_in(1), ["sku:B/x#1"]);
        assert!(m.andon_ids_in(0).is_empty());
        let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "pull").count(), 3, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "delist").count(), 1, "{kinds:?}");
        assert!(kinds.contains(&"closed"));
        assert!(m.apply("andon/x", Some(b"{"), NOW, NOW).is_err());
        assert!(m.apply("nope", None, NOW, NOW).is_err());
    }

    #[test]
    fn a_close_relists_and_escalations_show_in_recent() {
        let mut m = Model::default();
        put(&mut m, &andon_key("sku:A/x#1"), &andon("sku:A/x#1", 0, true, NOW + S));
        let mut esc = andon("sku:A/x#1", 0, true, NOW + S);
        esc.escalated = true;
        put(&mut m, &andon_key("sku:A/x#1"), &esc);
        put(&mut m, &andon_key("sku:A/x#1"), &esc);
        put(&mut m, &closed_key("sku:A/x#1"), &closed("sku:A/x#1", Verdict::NoDefect, Trigger::Threshold, None, NOW));
        let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["delist", "pull", "escalated", "relist", "closed"]);
        assert!(!m.off_sale("sku:A"));
    }

    #[test]
    fn an_andon_opened_and_closed_unseen_still_shows_its_pull_delist_and_relist() {
        let mut m = Model::default();
        let c = closed("sku:A/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW);
        put(&mut m, &closed_key("sku:A/x#1"), &c);
        put(&mut m, &closed_key("sku:A/x#1"), &c);
        let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["delist", "pull", "relist", "closed"], "once, though seen twice");
        // With another delisting andon open on the subject, no delist or relist.
        put(&mut m, &andon_key("sku:B/y#1"), &andon("sku:B/y#1", 0, true, NOW + S));
        put(
            &mut m,
            &closed_key("sku:B/x#1"),
            &closed("sku:B/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW),
        );
        let kinds: Vec<&str> = m.recent().iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "relist").count(), 1, "{kinds:?}");
        assert!(m.off_sale("sku:B"));
    }

    #[test]
    fn history_is_bounded_by_age() {
        let mut m = Model::default();
        put(
            &mut m,
            &closed_key("sku:A/x#1"),
            &closed("sku:A/x#1", Verdict::NoDefect, Trigger::Manual, None, NOW - 31 * DAY),
        );
        assert_eq!(m.closed_count(), 0, "too old to keep");
        put(
            &mut m,
            &closed_key("sku:A/x#2"),
            &closed("sku:A/x#2", Verdict::NoDefect, Trigger::Manual, None, NOW - 29 * DAY),
        );
        assert_eq!(m.closed_count(), 1);
        m.sweep(NOW + 2 * DAY);
        assert_eq!(m.closed_count(), 0, "aged out");
        assert_eq!(m.bad_pulls(NOW).closed, 0);
    }

    #[test]
    fn bad_pulls_by_issue_trigger_and_channel() {
        let mut m = Model::default();
        let cases = [
            ("sku:A/x#1", Verdict::NoDefect, Trigger::Manual, Some(Channel::Chat)),
            ("sku:A/x#2", Verdict::DefectConfirmed, Trigger::Threshold, Some(Channel::Chat)),
            ("sku:B/y#1", Verdict::DefectConfirmed, Trigger::Threshold, None),
            ("sku:C/y#1", Verdict::NoDefect, Trigger::Threshold, Some(Channel::Phone)),
        ];
        for (id, v, t, c) in cases {
            put(&mut m, &closed_key(id), &closed(id, v, t, c, NOW - DAY));
        }
        let r = m.bad_pulls(NOW);
        assert_eq!((r.closed, r.bad, r.rate), (4, 2, Some(0.5)));
        let row = |rows: &[RateRow], k: &str| rows.iter().find(|r| r.key == k).map(|r| (r.closed, r.bad)).expect(k);
        assert_eq!(row(&r.by_issue, "x"), (2, 1));
        assert_eq!(row(&r.by_issue, "y"), (2, 1));
        assert_eq!(row(&r.by_trigger, "manual"), (1, 1));
        assert_eq!(row(&r.by_trigger, "threshold"), (3, 1));
        assert_eq!(row(&r.by_channel, "chat"), (2, 1));
        assert_eq!(row(&r.by_channel, "phone"), (1, 1));
        assert_eq!(row(&r.by_channel, NO_CHANNEL), (1, 0));
    }

    #[test]
    fn owners_timeliness_from_open_and_closed_andons() {
        let mut m = Model::default();
        let h = 3600 * S;
        // product: 1 h (in SLA), 3 h (late), 2 h 10 days ago (in SLA); operations: one open, overdue.
        let mut a = andon("sku:A/x#1", 0, true, NOW - S);
        a.owner = "operations".into();
        a.done = vec![step("product", "ann", NOW - 2 * DAY, h, 2 * h)];
        put(&mut m, &andon_key("sku:A/x#1"), &a);
        let mut c = closed("sku:B/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW - DAY);
        c.steps = vec![
            step("product", "bob", NOW - 3 * DAY, 3 * h, 2 * h),
            step("operations", "ann", NOW - DAY - h, h, 12 * h),
        ];
        put(&mut m, &closed_key("sku:B/x#1"), &c);
        let mut c = closed("sku:C/x#1", Verdict::DefectConfirmed, Trigger::Threshold, None, NOW - 10 * DAY);
        c.steps = vec![step("product", "bob", NOW - 10 * DAY - 2 * h, 2 * h, 2 * h)];
        put(&mut m, &closed_key("sku:C/x#1"), &c);
        let r = m.owners(NOW);
        let product = r.owners.iter().find(|o| o.owner == "product").expect("product");
        assert_eq!((product.open_steps, product.overdue, product.completed_7d, product.completed_30d), (0, 0, 2, 3));
        assert_eq!((product.median_seconds, product.p90_seconds), (Some(7200.0), Some(10800.0)));
        assert_eq!(product.within_sla, Some(2.0 / 3.0));
        let ops = r.owners.iter().find(|o| o.owner == "operations").expect("operations");
        assert_eq!((ops.open_steps, ops.overdue, ops.completed_30d, ops.within_sla), (1, 1, 1, Some(1.0)));
        let ann = r.actors.iter().find(|a| a.actor == "ann").expect("ann");
        assert_eq!((ann.completed_30d, ann.owners.clone()), (2, vec!["operations".to_owned(), "product".to_owned()]));
        let bob = r.actors.iter().find(|a| a.actor == "bob").expect("bob");
        assert_eq!((bob.completed_7d, bob.completed_30d, bob.within_sla), (1, 2, Some(0.5)));
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[5.0], 90), Some(5.0));
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 90), percentile(&v, 100)), (Some(5.0), Some(9.0), Some(10.0)));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50), Some(2.0));
    }

    #[test]
    fn the_owner_of_a_partition_is_the_latest_member_to_claim_it() {
        let mut m = Model::default();
        let member = |id: &str, partitions: Vec<i32>, at: Ts| MemberRecord {
            member: id.into(),
            advertise: format!("http://{id}:9898"),
            partitions,
            updated_at: at,
            series: Series::default(),
        };
        put(&mut m, &member_key("a"), &member("a", vec![0, 1], NOW - 20 * S));
        put(&mut m, &member_key("b"), &member("b", vec![1], NOW - 5 * S));
        assert_eq!(m.owner_of(0).map(|m| m.member.as_str()), Some("a"));
        assert_eq!(m.owner_of(1).map(|m| m.member.as_str()), Some("b"), "handed over");
        assert!(m.owner_of(2).is_none());
        m.sweep(NOW + 2 * 3600 * S);
        assert_eq!(m.members().count(), 0, "forgotten after an hour");
    }

    #[test]
    fn charts_sum_the_members_up_to_what_all_running_ones_published() {
        let mut m = Model::default();
        let now_b = (NOW - Ts::EPOCH).as_secs() / BUCKET_SECONDS;
        let series = |first: i64, n: usize, v: u64| Series {
            first_bucket: first,
            complaints: vec![v * 10; n],
            pulls: vec![v; n],
            open: vec![v; n],
            overdue: vec![0; n],
        };
        let rec = |id: &str, s: Series| MemberRecord {
            member: id.into(),
            advertise: String::new(),
            partitions: vec![],
            updated_at: NOW,
            series: s,
        };
        put(&mut m, &member_key("a"), &rec("a", series(now_b - 9, 10, 1)));
        put(&mut m, &member_key("b"), &rec("b", series(now_b - 4, 4, 2)));
        let c = m.charts(NOW);
        assert_eq!(c.complaints_per_second.len(), BUCKETS);
        assert_eq!(c.first_bucket_at, (now_b - 1 - BUCKETS as i64 + 1) * BUCKET_SECONDS, "ends at b's last bucket");
        let last = BUCKETS - 1;
        assert_eq!((c.complaints_per_second[last], c.pulls[last], c.open_andons[last]), (3.0, 3, Some(3)));
        assert_eq!((c.pulls[last - 4], c.open_andons[last - 4]), (1, Some(1)), "before b started");
        assert_eq!(c.open_andons[last - 9], None, "nobody sampled");
    }

    #[test]
    fn subjects_from_path_parts() {
        assert_eq!(subject_of("sku", "B1"), Some(Subject { kind: SubjectKind::Sku, id: "B1".into() }));
        assert_eq!(subject_of("promotion", "a/b:c").map(|s| s.key()), Some("promotion:a/b:c".into()));
        assert_eq!(subject_of("book", "B1"), None);
        assert_eq!(subject_of("sku", ""), None);
        assert_eq!(subject_of("sku", &"x".repeat(129)), None);
        assert_eq!(subject_of("sku:x", "B1"), None);
    }
}
