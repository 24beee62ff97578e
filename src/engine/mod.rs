//! The andon engine: a pure state machine from decoded complaints and
//! work-order updates (and the time, passed in) to delist commands and
//! work-order events. No I/O, no clock reads, no async: `replay`, `run`,
//! `demo` and the tests all drive this one type, so they cannot disagree.
//!
//! One engine serves one input partition number (in `replay`, the whole
//! input): stream time is the partition's. Its [`State`] is plain data that
//! serialises and restores to an engine that behaves identically. The rules
//! it applies are its own types ([`rules`]); `config` converts into them.
//!
//! Map of docs/semantics.md: rule 1 (duplicates) in [`Engine::is_seen`];
//! 2 and 3 (counting, stream time, lateness) in [`Engine::on_complaint`] and
//! [`window`]; 4 (pull) in [`Engine::pull`]; 5 and 6 (steps, escalations,
//! close, relist) in [`Engine::on_update`], [`Engine::tick`] and [`andon`].

pub mod andon;
pub mod changes;
mod coverage;
pub mod query;
pub mod rules;
mod subjects;
pub mod window;

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

/// hashbrown's map for its raw entry API: looking a subject up by `&str` must not
/// allocate its key on every complaint, only when the subject is new.
pub type FxHashMap<K, V> = hashbrown::HashMap<K, V, FxBuildHasher>;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::event::{
    format_timestamp, parse_andon_id, Action, Channel, Complaint, DelistCommand, DelistReason, Output, Reject,
    RejectReason, Trigger, Update, WorkOrderEvent,
};
use crate::time::{Dur, Ts};
use andon::OpenAndon;
use changes::ChangeLog;
pub use rules::{EngineConfig, RouteStep, Rule, RuleAction, Rules};
pub use subjects::Subjects;
use window::{Counted, Evidence, Window};

/// What drives escalations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationClock {
    /// `replay`: an input that raises stream time to t first escalates every
    /// step due before t.
    StreamTime,
    /// `run`: only [`Engine::tick`] with the wall clock escalates.
    WallClock,
}

/// Where an input record came from, as far as the rules care. `replay` has
/// neither a key nor a timestamp, and skips the checks that need them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordMeta<'a> {
    pub key: Option<&'a [u8]>,
    /// The Kafka record timestamp, for `max_future_skew`.
    pub timestamp: Option<Ts>,
}

/// How a complaint was classified (the `outcome` label of
/// `andon_complaints_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplaintClass {
    Counted,
    Duplicate,
    Late,
    Stale,
    Attached,
}

impl ComplaintClass {
    pub const ALL: [ComplaintClass; 5] = [Self::Counted, Self::Duplicate, Self::Late, Self::Stale, Self::Attached];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::Duplicate => "duplicate",
            Self::Late => "late",
            Self::Stale => "stale",
            Self::Attached => "attached",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplaintOutcome {
    pub class: ComplaintClass,
    /// Set when this complaint pulled the cord.
    pub pulled: Option<Trigger>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Applied,
    Duplicate,
}

/// One (subject, issue) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    /// Shared with every key of the issue ([`Issues`]). An `Arc<String>`
    /// is one pointer where an `Arc<str>` is two: 8 bytes less a key.
    pub issue: Arc<String>,
    /// Andons ever opened for this key: `n` of the last `andon_id`.
    pub andons: u32,
    /// Complaints at or before `stale_at` are stale, when `stale` (the
    /// last close's `at`): [`IssueState::stale_until`], an `Option<Ts>`
    /// kept in two fields, as an `Option` of an i64 takes 16 bytes and
    /// these 9 fit in the struct's padding (8 bytes less in every key).
    stale: bool,
    stale_at: Ts,
    /// Counted complaints, sorted by event time.
    pub counted: Window,
    pub open: Option<Box<OpenAndon>>,
}

impl IssueState {
    fn new(issue: Arc<String>) -> Self {
        Self { issue, andons: 0, stale: false, stale_at: Ts::EPOCH, counted: Window::default(), open: None }
    }

    /// Complaints at or before this time are stale (the last close's `at`).
    pub fn stale_until(&self) -> Option<Ts> {
        self.stale.then_some(self.stale_at)
    }

    pub fn set_stale_until(&mut self, t: Option<Ts>) {
        self.stale = t.is_some();
        self.stale_at = t.unwrap_or(Ts::EPOCH);
    }

    fn is_empty(&self) -> bool {
        self.andons == 0 && self.counted.is_empty() && self.open.is_none()
    }
}

/// Everything about one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    /// Delists ever issued: `m` of the last `command_id`.
    pub delists: u32,
    /// Open andons whose rule delists; the subject is off sale while > 0.
    pub open_delisting: u32,
    /// Usually one or two issues per subject: a slice beats a map, and a
    /// boxed slice a `Vec` by the 8 bytes of its capacity, in every entry
    /// of the subjects' table (a new issue is rare; it reallocates).
    pub issues: Box<[IssueState]>,
}

impl SubjectState {
    fn issue_mut(&mut self, issue: &str) -> Option<&mut IssueState> {
        self.issues.iter_mut().find(|s| *s.issue == issue)
    }

    /// The index of `issue`'s state, added empty (its name from `names`)
    /// if the subject has none.
    pub fn issue_index(&mut self, issue: &str, names: &mut Issues) -> usize {
        if let Some(i) = self.issues.iter().position(|s| *s.issue == *issue) {
            return i;
        }
        let mut v = std::mem::take(&mut self.issues).into_vec();
        v.reserve_exact(1);
        v.push(IssueState::new(names.get(issue)));
        self.issues = v.into_boxed_slice();
        self.issues.len() - 1
    }

    /// Drops the issues that hold nothing.
    fn drop_empty_issues(&mut self) {
        if self.issues.iter().any(IssueState::is_empty) {
            let v: Vec<IssueState> =
                std::mem::take(&mut self.issues).into_vec().into_iter().filter(|is| !is.is_empty()).collect();
            self.issues = v.into_boxed_slice();
        }
    }
}

/// The engine's whole state: what the changelog and snapshots carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub stream_time: Option<Ts>,
    pub subjects: Subjects,
    /// 128-bit hashes of (subject key, event_id) and (andon_id, update_id)
    /// with the event time they were first seen at.
    pub seen: FxHashMap<IdHash, Ts>,
    /// The issues' names the keys share, filled as keys are made
    /// ([`SubjectState::issue_index`], which a restore from the changelog
    /// goes through too). A state deserialized whole (tests do) keeps a
    /// name per key: more memory, the same state.
    #[serde(skip)]
    pub issues: Issues,
}

/// Each issue's name once, shared by its keys: a handful of issues span a
/// million keys, where a string of its own cost every key ~24 bytes.
/// Issues are free text, so names no key holds any more are dropped
/// ([`Issues::forget_unused`]). A cache: it takes no part in comparing
/// states (a restored state interned in another order is the same state).
#[derive(Debug, Clone, Default)]
pub struct Issues(hashbrown::HashTable<Arc<String>>);

impl Issues {
    /// `issue`'s shared name.
    pub fn get(&mut self, issue: &str) -> Arc<String> {
        let entry = self.0.entry(str_hash(issue), |name| **name == issue, |name| str_hash(name));
        Arc::clone(entry.or_insert_with(|| Arc::new(issue.to_owned())).get())
    }

    /// Drops the names no key holds.
    fn forget_unused(&mut self) {
        self.0.retain(|name| Arc::strong_count(name) > 1);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The hash of a string key in the engine's own tables ([`Issues`],
/// [`Subjects`]): Fx, as its maps' (`FxHashMap`).
fn str_hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl PartialEq for Issues {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Issues {}

/// A 128-bit id hash ([`id_hash`]) as [`State::seen`] keeps it: two `u64`s,
/// so that an entry with its time takes 24 bytes, not the 32 a `u128`'s
/// 16-byte alignment makes of it. A table entry per live id, at a million
/// keys in a table at half load: 17 bytes a key less.
/// Serialised as the `u128` it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "u128", into = "u128")]
pub struct IdHash([u64; 2]);

impl From<u128> for IdHash {
    fn from(h: u128) -> Self {
        Self([h as u64, (h >> 64) as u64])
    }
}

impl From<IdHash> for u128 {
    fn from(h: IdHash) -> Self {
        u128::from(h.0[0]) | u128::from(h.0[1]) << 64
    }
}

impl IdHash {
    pub fn from_le_bytes(b: [u8; 16]) -> Self {
        u128::from_le_bytes(b).into()
    }

    pub fn to_le_bytes(self) -> [u8; 16] {
        u128::from(self).to_le_bytes()
    }
}

impl std::hash::Hash for IdHash {
    /// The low half alone: xxh3's bits are uniform already, and equal
    /// halves still compare both.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// A read-only view of an open andon (`/andons`, the demo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndonView<'a> {
    pub andon_id: String,
    pub subject_key: &'a str,
    pub issue: &'a str,
    pub andon: &'a OpenAndon,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: Arc<EngineConfig>,
    clock: EscalationClock,
    state: State,
    /// (due time, andon_id) of every open andon's current step that is not
    /// yet escalated: derived from `state`, rebuilt on restore.
    due: BTreeSet<(Ts, Box<str>)>,
    /// How long duplicate ids are remembered: 2W + grace, W the longest window.
    dedup_horizon: Dur,
    next_sweep: Option<Ts>,
    open_andons: usize,
    delisted_subjects: usize,
    scratch: Vec<u8>,
    /// What changed since the last [`Engine::take_changes`], when tracked
    /// (the Kafka changelog); `replay` and the tests do not pay for it.
    changes: Option<ChangeLog>,
}

impl Engine {
    pub fn new(cfg: Arc<EngineConfig>, clock: EscalationClock) -> Self {
        Self::restore(cfg, clock, State::default())
    }

    /// An engine that continues from `state` exactly as the one it was taken from.
    pub fn restore(cfg: Arc<EngineConfig>, clock: EscalationClock, state: State) -> Self {
        let dedup_horizon = cfg.rules.longest_window() * 2 + cfg.grace;
        let mut engine = Self {
            cfg,
            clock,
            state,
            due: BTreeSet::new(),
            dedup_horizon,
            next_sweep: None,
            open_andons: 0,
            delisted_subjects: 0,
            scratch: Vec::with_capacity(256),
            changes: None,
        };
        for (key, subject) in engine.state.subjects.iter() {
            if subject.open_delisting > 0 {
                engine.delisted_subjects += 1;
            }
            for is in &subject.issues {
                if let Some(open) = &is.open {
                    engine.open_andons += 1;
                    if !open.escalated {
                        engine.due.insert((open.due_at, andon_id(key, &is.issue, open.n).into()));
                    }
                }
            }
        }
        engine
    }

    /// Starts recording what changes, for [`Engine::take_changes`].
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(ChangeLog::default);
    }

    /// Whether anything changed since the last [`Engine::take_changes`].
    pub fn has_changes(&self) -> bool {
        self.changes.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// Appends what changed since the last call to `out`, as changelog
    /// operations ([`changes`]); nothing when changes are not tracked.
    pub fn take_changes(&mut self, out: &mut changes::Encoded) {
        if let Some(ch) = self.changes.as_mut() {
            ch.take(&self.state, out);
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn into_state(self) -> State {
        self.state
    }

    pub fn config(&self) -> &Arc<EngineConfig> {
        &self.cfg
    }

    pub fn stream_time(&self) -> Option<Ts> {
        self.state.stream_time
    }

    pub fn open_andon_count(&self) -> usize {
        self.open_andons
    }

    pub fn delisted_subject_count(&self) -> usize {
        self.delisted_subjects
    }

    /// (subject, issue) keys held in memory.
    pub fn key_count(&self) -> usize {
        self.state.subjects.values().map(|s| s.issues.len()).sum()
    }

    /// The open andons, in no particular order.
    pub fn open_andons(&self) -> impl Iterator<Item = AndonView<'_>> {
        self.state.subjects.iter().flat_map(|(key, s)| {
            s.issues.iter().filter_map(move |is| {
                is.open.as_deref().map(|andon| AndonView {
                    andon_id: andon_id(key, &is.issue, andon.n),
                    subject_key: key,
                    issue: &is.issue,
                    andon,
                })
            })
        })
    }

    /// Processes one complaint, appending what it emits to `out`.
    /// `Err` means the record belongs in the DLQ; it changed nothing.
    /// Owned (`run`, `replay`) or borrowed (`tune`: one history through
    /// many engines); what is kept is copied either way.
    pub fn on_complaint<C: Borrow<Complaint>>(
        &mut self,
        input: C,
        meta: RecordMeta<'_>,
        out: &mut Vec<Output>,
    ) -> Result<ComplaintOutcome, Reject> {
        let c = input.borrow();
        check_record(self.cfg.max_future_skew, "occurred_at", c.occurred_at, &c.subject_key, meta)?;
        let h = self.id_hash(b'c', &c.subject_key, &c.event_id);
        if self.is_seen(h) {
            return Ok(ComplaintOutcome { class: ComplaintClass::Duplicate, pulled: None });
        }
        self.state.seen.insert(h.into(), c.occurred_at);
        // Logged below, where the complaint is not counted: a counted one's
        // Count op carries the id (changes::apply remembers it).
        let at = c.occurred_at;
        let log_seen = |log: Option<&mut ChangeLog>| {
            if let Some(log) = log {
                log.seen(h, at);
            }
        };
        let before = self.state.stream_time;
        self.advance(c.occurred_at, out);

        let cfg = Arc::clone(&self.cfg);
        let rule = cfg.rules.for_issue(&c.issue);
        let key = c.subject_key.as_str();
        let subject = self.state.subjects.get_or_default(key);
        let idx = subject.issue_index(&c.issue, &mut self.state.issues);
        let is = &mut subject.issues[idx];
        if let Some(open) = is.open.as_mut() {
            open.attached += 1;
            if let Some(log) = self.changes.as_mut() {
                log.attached(key, &c.issue, open.attached);
            }
            log_seen(self.changes.as_mut());
            return Ok(ComplaintOutcome { class: ComplaintClass::Attached, pulled: None });
        }
        let late = before.is_some_and(|st| c.occurred_at < st - rule.window - cfg.grace);
        let class = if late {
            ComplaintClass::Late
        } else if is.stale_until().is_some_and(|s| c.occurred_at <= s) {
            ComplaintClass::Stale
        } else {
            ComplaintClass::Counted
        };
        if c.pull || class != ComplaintClass::Counted {
            log_seen(self.changes.as_mut());
        }
        if c.pull {
            // The agent's own call: pulls whatever the count, late or stale.
            let (at, channel) = (c.occurred_at, c.channel);
            let evidence = Evidence { listed: vec![c.event_id.as_str().into()], total: 1 };
            self.pull(&c.subject_key, idx, Trigger::Manual, at, channel, evidence, out);
            return Ok(ComplaintOutcome { class, pulled: Some(Trigger::Manual) });
        }
        if class != ComplaintClass::Counted {
            return Ok(ComplaintOutcome { class, pulled: None });
        }
        let st = self.state.stream_time.unwrap_or(c.occurred_at);
        is.counted.evict_before(eviction_cutoff(st, rule.window, cfg.grace));
        let (at, channel) = (c.occurred_at, c.channel);
        if let Some(log) = self.changes.as_mut() {
            log.count(key, &c.issue, at, &c.customer_id, &c.event_id);
        }
        let place = is.counted.insert(Counted::new(at, &c.customer_id, &c.event_id), rule.window);
        match is.counted.threshold_evidence(place, rule.window, rule.threshold) {
            Some(evidence) => {
                self.pull(&c.subject_key, idx, Trigger::Threshold, at, channel, evidence, out);
                Ok(ComplaintOutcome { class, pulled: Some(Trigger::Threshold) })
            }
            None => Ok(ComplaintOutcome { class, pulled: None }),
        }
    }

    /// Processes one work-order update, appending what it emits to `out`.
    /// `Err` means the record belongs in the DLQ. Every check that can reject
    /// an update runs before anything changes, so a rejected update changes
    /// nothing and emits nothing. Once accepted, its id is remembered and
    /// stream time moves (which may emit escalations) before the andon is
    /// looked up again to apply it; that second lookup cannot fail, since
    /// moving stream time neither closes nor sweeps an open andon, and is
    /// written as an `Err` only so that it cannot panic.
    pub fn on_update(
        &mut self,
        u: &Update,
        meta: RecordMeta<'_>,
        out: &mut Vec<Output>,
    ) -> Result<UpdateOutcome, Reject> {
        check_record(self.cfg.max_future_skew, "at", u.at, u.subject_key(), meta)?;
        let h = self.id_hash(b'u', &u.andon_id, &u.update_id);
        if self.is_seen(h) {
            return Ok(UpdateOutcome::Duplicate);
        }
        let unknown = || {
            Reject::new(RejectReason::UnknownAndon, format!("andon_id: no andon {:?} on this partition", u.andon_id))
        };
        let (key, issue, n) = parse_andon_id(&u.andon_id).ok_or_else(unknown)?;
        let is = self.state.subjects.get_mut(key).and_then(|s| s.issue_mut(issue)).ok_or_else(unknown)?;
        let open = match is.open.as_deref() {
            Some(open) if open.n == n => open,
            _ if n <= is.andons => {
                return Err(Reject::new(
                    RejectReason::AndonClosed,
                    format!("andon_id: work order {:?} is already closed", u.andon_id),
                ))
            }
            _ => return Err(unknown()),
        };
        if u.step != open.step {
            return Err(Reject::new(
                RejectReason::StepOutOfOrder,
                format!("step: {} is not the current step {} of {:?}", u.step, open.step, u.andon_id),
            ));
        }
        if u.verdict.is_none() && open.is_last_step() {
            return Err(Reject::new(
                RejectReason::VerdictRequired,
                format!("verdict: step {} is the last step of {:?}; completing it needs a verdict", u.step, u.andon_id),
            ));
        }

        self.state.seen.insert(h.into(), u.at);
        if let Some(log) = self.changes.as_mut() {
            log.seen(h, u.at);
            log.dirty(key);
        }
        self.advance(u.at, out);

        let id: Box<str> = u.andon_id.as_str().into();
        let Some(subject) = self.state.subjects.get_mut(key) else { return Err(unknown()) };
        let Some(is) = subject.issue_mut(issue) else { return Err(unknown()) };
        let Some(open) = is.open.as_deref_mut() else { return Err(unknown()) };
        if !open.escalated {
            self.due.remove(&(open.due_at, id.clone()));
        }
        let closed = open.complete(&u.andon_id, &u.actor, u.at, u.verdict, out);
        if !closed {
            self.due.insert((open.due_at, id));
            return Ok(UpdateOutcome::Applied);
        }
        let delisting = open.delisting;
        is.open = None;
        // Counting starts again from nothing; what came before the fix is stale.
        is.counted.clear();
        if let Some(log) = self.changes.as_mut() {
            log.clear(key, issue);
        }
        is.set_stale_until(Some(is.stale_until().map_or(u.at, |s| s.max(u.at))));
        self.open_andons -= 1;
        if delisting {
            subject.open_delisting -= 1;
            if subject.open_delisting == 0 {
                self.delisted_subjects -= 1;
                out.push(Output::Command(DelistCommand {
                    command_id: format!("{key}#relist#{}", subject.delists),
                    action: Action::Relist,
                    subject_key: key.to_owned(),
                    andon_id: u.andon_id.clone(),
                    issued_at: u.at,
                    reason: None,
                }));
            }
        }
        Ok(UpdateOutcome::Applied)
    }

    /// Escalates every open andon whose current step was due before `now`
    /// (the wall clock in `run`), ordered by (due time, `andon_id`).
    pub fn tick(&mut self, now: Ts, out: &mut Vec<Output>) {
        while let Some((due, _)) = self.due.first() {
            if *due >= now {
                break;
            }
            let Some((_, id)) = self.due.pop_first() else { break };
            let Some((key, issue, _)) = parse_andon_id(&id) else { continue };
            if let Some(log) = self.changes.as_mut() {
                log.dirty(key);
            }
            if let Some(open) =
                self.state.subjects.get_mut(key).and_then(|s| s.issue_mut(issue)).and_then(|is| is.open.as_deref_mut())
            {
                open.escalate(&id, now, out);
            }
        }
    }

    /// The earliest due time not yet escalated: when `run` should tick next.
    pub fn next_due(&self) -> Option<Ts> {
        self.due.first().map(|(t, _)| *t)
    }

    fn id_hash(&mut self, tag: u8, scope: &str, id: &str) -> u128 {
        id_hash(&mut self.scratch, tag, scope, id)
    }

    /// Seen before, and still within the dedup horizon of stream time. The
    /// time test makes the answer independent of when old ids are swept.
    fn is_seen(&self, h: u128) -> bool {
        match (self.state.seen.get(&IdHash::from(h)), self.state.stream_time) {
            (Some(&at), Some(st)) => at >= st - self.dedup_horizon,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Moves stream time to `t` if that raises it: escalations first (in
    /// `replay`), then, now and then, eviction of what can no longer matter.
    fn advance(&mut self, t: Ts, out: &mut Vec<Output>) {
        if self.state.stream_time.is_some_and(|st| t <= st) {
            return;
        }
        self.state.stream_time = Some(t);
        if self.clock == EscalationClock::StreamTime {
            self.tick(t, out);
        }
        if self.next_sweep.is_none_or(|next| t >= next) {
            self.sweep(t);
            self.next_sweep = Some(t + (self.dedup_horizon / 8).max(Dur::SECOND));
        }
    }

    /// Drops ids past the dedup horizon, counted complaints past 2W + grace,
    /// and keys and subjects that hold nothing. None of it can change an
    /// output (see `is_seen` and `window::evict_before`), so when it runs does
    /// not matter; it keeps memory bounded by the live window.
    fn sweep(&mut self, st: Ts) {
        let cutoff = st - self.dedup_horizon;
        self.state.seen.retain(|_, at| *at >= cutoff);
        let cfg = &self.cfg;
        self.state.subjects.retain(|_, subject| {
            for is in subject.issues.iter_mut() {
                let rule = cfg.rules.for_issue(&is.issue);
                is.counted.evict_before(eviction_cutoff(st, rule.window, cfg.grace));
            }
            subject.drop_empty_issues();
            subject.delists > 0 || !subject.issues.is_empty()
        });
        self.state.issues.forget_unused();
    }

    /// Opens an andon on the key `issues[idx]` of `subject_key`: delist if it
    /// is the subject's first open delisting andon, then `opened`. `channel`
    /// is the pulling complaint's.
    #[allow(clippy::too_many_arguments)]
    fn pull(
        &mut self,
        subject_key: &str,
        idx: usize,
        trigger: Trigger,
        opened_at: Ts,
        channel: Option<Channel>,
        evidence: Evidence,
        out: &mut Vec<Output>,
    ) {
        let cfg = Arc::clone(&self.cfg);
        let Some(subject) = self.state.subjects.get_mut(subject_key) else { return };
        let is = &mut subject.issues[idx];
        let rule = cfg.rules.for_issue(&is.issue);
        is.andons += 1;
        let id = andon_id(subject_key, &is.issue, is.andons);
        let delisting = rule.action == RuleAction::Delist;
        if delisting {
            if subject.open_delisting == 0 {
                subject.delists += 1;
                self.delisted_subjects += 1;
                out.push(Output::Command(DelistCommand {
                    command_id: format!("{subject_key}#delist#{}", subject.delists),
                    action: Action::Delist,
                    subject_key: subject_key.to_owned(),
                    andon_id: id.clone(),
                    issued_at: opened_at,
                    reason: Some(DelistReason {
                        issue: is.issue.to_string(),
                        trigger,
                        distinct_customers: evidence.total,
                        window_seconds: rule.window.as_secs() as u64,
                    }),
                }));
            }
            subject.open_delisting += 1;
        }
        let route = rule.route.to_vec();
        let open = OpenAndon {
            n: is.andons,
            trigger,
            delisting,
            opened_at,
            due_at: opened_at + route.first().map_or(Dur::ZERO, |s| s.sla),
            route,
            step: 1,
            step_started: opened_at,
            escalated: false,
            attached: 0,
            evidence: evidence.listed,
            evidence_total: evidence.total,
            channel,
            done: Vec::new(),
        };
        out.push(Output::WorkOrder(WorkOrderEvent::Opened {
            andon_id: id.clone(),
            subject_key: subject_key.to_owned(),
            issue: is.issue.to_string(),
            trigger,
            delisted: delisting,
            opened_at,
            evidence: open.evidence.iter().map(|e| e.to_string()).collect(),
            evidence_total: open.evidence_total,
            steps: open.plan(),
        }));
        self.due.insert((open.due_at, id.into()));
        is.counted.clear();
        if let Some(log) = self.changes.as_mut() {
            log.clear(subject_key, &is.issue);
            log.dirty(subject_key);
        }
        is.open = Some(Box::new(open));
        self.open_andons += 1;
    }
}

/// The 128-bit hash under which an id is remembered: `tag` b'c' for a
/// complaint's (subject key, event_id), b'u' for an update's (andon_id,
/// update_id). `scratch` is reused (no allocation per id).
pub fn id_hash(scratch: &mut Vec<u8>, tag: u8, scope: &str, id: &str) -> u128 {
    scratch.clear();
    scratch.push(tag);
    scratch.extend_from_slice(scope.as_bytes());
    // A byte no UTF-8 string contains keeps ("a", "bc") apart from ("ab", "c").
    scratch.push(0xff);
    scratch.extend_from_slice(id.as_bytes());
    xxh3_128(scratch)
}

/// `<subject key>/<issue>#<n>`
pub fn andon_id(subject_key: &str, issue: &str, n: u32) -> String {
    format!("{subject_key}/{issue}#{n}")
}

/// Counted complaints older than stream time − 2W − grace can be evicted.
fn eviction_cutoff(stream_time: Ts, window: Dur, grace: Dur) -> Ts {
    stream_time - window * 2 - grace
}

/// The checks a record's Kafka key and timestamp make of it (`meta`; a
/// file's line has neither and passes): its event time `at` (the record's
/// `field`) no more than `max_future_skew` after the record timestamp, and
/// the key equal to `subject_key`. Public for `tune`, which reads the
/// inputs from Kafka and must drop what `run` would have sent to the DLQ.
pub fn check_record(
    max_future_skew: Dur,
    field: &str,
    at: Ts,
    subject_key: &str,
    meta: RecordMeta<'_>,
) -> Result<(), Reject> {
    if let Some(ts) = meta.timestamp {
        if at > ts + max_future_skew {
            return Err(Reject::new(
                RejectReason::OccurredAtInFuture,
                format!(
                    "{field}: {} is more than max_future_skew after the record timestamp {}",
                    format_timestamp(at),
                    format_timestamp(ts)
                ),
            ));
        }
    }
    match meta.key {
        Some(key) if key != subject_key.as_bytes() => Err(key_mismatch(key, subject_key)),
        _ => Ok(()),
    }
}

fn key_mismatch(key: &[u8], expected: &str) -> Reject {
    Reject::new(
        RejectReason::KeyMismatch,
        format!("record key {:?} is not the subject key {expected:?}", String::from_utf8_lossy(key)),
    )
}

#[cfg(test)]
pub(crate) mod tests;
