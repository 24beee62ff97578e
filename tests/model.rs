//! Model-based tests of the engine (`src/engine/`) against SPEC.md.
//!
//! 1. [`Model`] is a deliberately naive reference written from the spec's
//!    "Semantics", "Outputs" and "Identifiers" sections. It shares no data
//!    structure with the engine: it keeps every processed complaint and every
//!    andon forever, recomputes windows by brute force over all counted
//!    complaints of the key, remembers every id forever (the generator only
//!    replays ids within the spec's 2W + grace horizon, where "at least"
//!    makes both answers the same) and builds the expected output JSON from
//!    the field names of the spec. Random streams (proptest) are fed to the
//!    model and to the engine, and every record's classification / reject
//!    reason and every output (`to_json()`, parsed) must agree exactly.
//! 2. Snapshot / restore: the same streams, with the engine's state
//!    serialised to JSON, parsed and restored at random points, give the same
//!    outputs as an uninterrupted run.
//! 3. Bounded memory: on a long stream (20k records over months of event
//!    time, few keys) the engine's retained ids and counted complaints stay
//!    below bounds given by the window, not by the stream length.
//!
//! Streams are generated as "intents" that a driver turns into concrete
//! records using the model's current state (so updates mostly target andons
//! that are really open, with their current step or a wrong one), and times
//! relative to the current stream time (in order, out of order, late within
//! and beyond grace, exactly on the lateness and escalation edges).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use andon::config::Settings;
use andon::engine::{Engine, EngineConfig, EscalationClock, RecordMeta, State, UpdateOutcome};
use andon::event::{Complaint, Output, Subject, SubjectKind, Update, Verdict};
use andon::time::{Dur, Ts};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Fixed vocabulary

/// Seconds; event times are generated in multiples of this (plus ±1 s
/// jitter now and then), so that windows, grace and SLAs (multiples of 30
/// min) land exactly on interval ends and due times often.
const UNIT: i64 = 300;
/// 2026-03-01T00:00:00Z in seconds.
const BASE: i64 = 1_772_323_200;

/// The model's times are whole seconds since the epoch; the engine's are [`Ts`].
fn instant(secs: i64) -> Ts {
    Ts::EPOCH + Dur::from_secs(secs)
}

/// (kind, id). `X/1` has a `/` in its id: the andon id's subject key is
/// everything before the *last* `/`.
const SUBJECTS: [(&str, &str); 5] =
    [("sku", "A"), ("sku", "B"), ("promotion", "SPRING-10"), ("sku", "X/1"), ("sku", "C")];
/// 0 and 3 fall back to `[rules.default]`, 1 has its own delisting rule,
/// 2 a `notify` rule.
const ISSUES: [&str; 4] = ["print_defect", "safety_hazard", "promo_price_mismatch", "wrong_size"];
const OWNERS: [&str; 3] = ["product", "operations", "supply_chain"];

fn subject_key(s: usize) -> String {
    format!("{}:{}", SUBJECTS[s].0, SUBJECTS[s].1)
}

fn subject_json(s: usize) -> Value {
    json!({"kind": SUBJECTS[s].0, "id": SUBJECTS[s].1})
}

/// RFC 3339 in UTC; all generated times are whole seconds.
fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).expect("in range").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn verdict_str(defect: bool) -> &'static str {
    if defect {
        "defect_confirmed"
    } else {
        "no_defect"
    }
}

// ---------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone)]
struct RuleCfg {
    threshold: u32,
    /// Seconds.
    window: i64,
    delist: bool,
    /// Indices into OWNERS (repeats allowed).
    route: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Cfg {
    grace: i64,
    default: RuleCfg,
    safety: RuleCfg,
    promo: RuleCfg,
    /// Per owner, seconds.
    slas: [i64; 3],
    subjects: usize,
    customers: usize,
}

impl Cfg {
    fn rule(&self, issue: usize) -> &RuleCfg {
        match issue {
            1 => &self.safety,
            2 => &self.promo,
            _ => &self.default,
        }
    }

    /// 2W + grace, W the longest window: how long ids must be remembered.
    fn horizon(&self) -> i64 {
        2 * self.default.window.max(self.safety.window).max(self.promo.window) + self.grace
    }

    fn toml(&self) -> String {
        let route = |r: &RuleCfg| r.route.iter().map(|&o| format!("\"{}\"", OWNERS[o])).collect::<Vec<_>>().join(", ");
        let rule = |r: &RuleCfg| {
            format!(
                "threshold = {}\nwindow = \"{}s\"\naction = \"{}\"\nroute = [{}]\n",
                r.threshold,
                r.window,
                if r.delist { "delist" } else { "notify" },
                route(r)
            )
        };
        let mut s = format!("[processing]\ngrace = \"{}s\"\n\n[rules.default]\n{}", self.grace, rule(&self.default));
        let _ = write!(s, "\n[[rules.issue]]\nissues = [\"{}\"]\n{}", ISSUES[1], rule(&self.safety));
        let _ = write!(s, "\n[[rules.issue]]\nissues = [\"{}\"]\n{}", ISSUES[2], rule(&self.promo));
        for (o, sla) in OWNERS.iter().zip(self.slas) {
            let _ = write!(s, "\n[owners.{o}]\nsla = \"{sla}s\"\n");
        }
        s
    }

    fn engine_config(&self) -> Arc<EngineConfig> {
        let toml = self.toml();
        Settings::from_toml(&toml).unwrap_or_else(|e| panic!("generated config is valid: {e}\n{toml}")).engine
    }
}

// ---------------------------------------------------------------------------
// Records, as the driver makes them and both sides consume them

#[derive(Debug, Clone)]
struct CIn {
    event_id: String,
    at: i64,
    subject: usize,
    issue: usize,
    customer: String,
    pull: bool,
}

#[derive(Debug, Clone)]
struct UIn {
    update_id: String,
    andon_id: String,
    step: u32,
    actor: String,
    at: i64,
    /// `Some(true)`: defect_confirmed.
    verdict: Option<bool>,
}

#[derive(Debug, Clone)]
enum Rec {
    C(CIn),
    U(UIn),
}

impl std::fmt::Display for Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rec::C(c) => write!(
                f,
                "complaint {} at {} {}/{} customer {}{}",
                c.event_id,
                ts(c.at),
                subject_key(c.subject),
                ISSUES[c.issue],
                c.customer,
                if c.pull { " PULL" } else { "" }
            ),
            Rec::U(u) => write!(
                f,
                "update {} {} step {} at {}{}",
                u.update_id,
                u.andon_id,
                u.step,
                ts(u.at),
                u.verdict.map(|v| format!(" verdict {}", verdict_str(v))).unwrap_or_default()
            ),
        }
    }
}

/// What happened to one record: a complaint's class (and trigger if it
/// pulled), an update applied or duplicate, or the DLQ reason.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Res {
    C { class: &'static str, pulled: Option<&'static str> },
    Applied,
    UpdateDuplicate,
    Rejected(&'static str),
}

/// (topic, record key, value)
type Emit = (&'static str, String, Value);

const COMMANDS: &str = "andon.delist-commands";
const WORK_ORDERS: &str = "andon.work-orders";

// ---------------------------------------------------------------------------
// The naive model

#[derive(Debug, Clone)]
struct MComplaint {
    seq: u64,
    event_id: String,
    customer: String,
    at: i64,
    counted: bool,
}

#[derive(Debug, Clone)]
struct MAndon {
    id: String,
    subject: usize,
    issue: usize,
    delisting: bool,
    /// Sequence number of the record that pulled.
    opened_seq: u64,
    /// (`at`, sequence number) of the closing update.
    closed: Option<(i64, u64)>,
    route: Vec<usize>,
    /// 1-based current step.
    step: usize,
    due: i64,
    escalated: bool,
    attached: u64,
}

#[derive(Debug, Clone)]
struct Model {
    cfg: Cfg,
    stream_time: Option<i64>,
    seq: u64,
    /// Every processed (non-duplicate) complaint, per (subject, issue).
    complaints: HashMap<(usize, usize), Vec<MComplaint>>,
    /// Every id ever processed, with the event time of its first record.
    seen_c: HashMap<(usize, String), i64>,
    seen_u: HashMap<(String, String), i64>,
    /// Every andon ever opened, in opening order.
    andons: Vec<MAndon>,
    /// Delist commands issued per subject.
    delists: HashMap<usize, u32>,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        Self {
            cfg,
            stream_time: None,
            seq: 0,
            complaints: HashMap::new(),
            seen_c: HashMap::new(),
            seen_u: HashMap::new(),
            andons: Vec::new(),
            delists: HashMap::new(),
        }
    }

    fn open_andon_of(&self, subject: usize, issue: usize) -> Option<usize> {
        self.andons.iter().position(|a| a.subject == subject && a.issue == issue && a.closed.is_none())
    }

    fn has_open_delisting(&self, subject: usize) -> bool {
        self.andons.iter().any(|a| a.subject == subject && a.closed.is_none() && a.delisting)
    }

    fn assert_within_horizon(&self, first_seen: i64) {
        let st = self.stream_time.expect("something was processed");
        assert!(
            first_seen >= st - self.cfg.horizon(),
            "generator bug: replayed an id first seen at {} past the horizon of stream time {}",
            ts(first_seen),
            ts(st)
        );
    }

    /// Semantics 3 and 5: stream time is the largest event time processed;
    /// an input that raises it to t first escalates, in (due, andon_id)
    /// order, the open andons whose current step is due before t.
    fn raise(&mut self, t: i64, out: &mut Vec<Emit>) {
        if self.stream_time.is_some_and(|st| t <= st) {
            return;
        }
        self.stream_time = Some(t);
        let mut due: Vec<(i64, String, usize)> = self
            .andons
            .iter()
            .enumerate()
            .filter(|(_, a)| a.closed.is_none() && !a.escalated && a.due < t)
            .map(|(i, a)| (a.due, a.id.clone(), i))
            .collect();
        due.sort();
        for (due_at, id, i) in due {
            let a = &mut self.andons[i];
            a.escalated = true;
            out.push((
                WORK_ORDERS,
                subject_key(a.subject),
                json!({
                    "type": "escalated",
                    "andon_id": id,
                    "step": a.step,
                    "owner": OWNERS[a.route[a.step - 1]],
                    "due_at": ts(due_at),
                    "escalated_at": ts(t),
                }),
            ));
        }
    }

    fn complaint(&mut self, c: &CIn, out: &mut Vec<Emit>) -> Res {
        self.seq += 1;
        let seq = self.seq;
        // 1. Duplicates: same (subject key, event_id) processed before.
        if let Some(&first) = self.seen_c.get(&(c.subject, c.event_id.clone())) {
            self.assert_within_horizon(first);
            return Res::C { class: "duplicate", pulled: None };
        }
        self.seen_c.insert((c.subject, c.event_id.clone()), c.at);
        let before = self.stream_time;
        self.raise(c.at, out);

        let rule = self.cfg.rule(c.issue).clone();
        let key = (c.subject, c.issue);
        let mut record =
            MComplaint { seq, event_id: c.event_id.clone(), customer: c.customer.clone(), at: c.at, counted: false };
        // 2. An open andon on the key: attached (whatever else it is).
        if let Some(i) = self.open_andon_of(c.subject, c.issue) {
            self.andons[i].attached += 1;
            self.complaints.entry(key).or_default().push(record);
            return Res::C { class: "attached", pulled: None };
        }
        // 3. Too late: older than stream time − W − grace.
        let late = before.is_some_and(|st| c.at < st - rule.window - self.cfg.grace);
        // 6. Stale: at or before the `at` of a closing update of this key.
        let stale = self
            .andons
            .iter()
            .filter(|a| a.subject == c.subject && a.issue == c.issue)
            .filter_map(|a| a.closed.map(|(at, _)| at))
            .any(|closed_at| c.at <= closed_at);
        let class = if late {
            "late"
        } else if stale {
            "stale"
        } else {
            "counted"
        };
        if c.pull {
            // Manual: pulls at once, whatever the count, late or stale.
            self.complaints.entry(key).or_default().push(record);
            self.pull(c.subject, c.issue, "manual", c.at, (vec![(c.event_id.clone(), c.customer.clone())], 1), out);
            return Res::C { class, pulled: Some("manual") };
        }
        record.counted = class == "counted";
        self.complaints.entry(key).or_default().push(record);
        if class != "counted" {
            return Res::C { class, pulled: None };
        }

        // The key's counting state: counted complaints since its last pull or close.
        let epoch_start = self
            .andons
            .iter()
            .filter(|a| a.subject == c.subject && a.issue == c.issue)
            .map(|a| a.opened_seq.max(a.closed.map_or(0, |(_, s)| s)))
            .max()
            .unwrap_or(0);
        let w = rule.window;
        let live: Vec<&MComplaint> = self.complaints[&key]
            .iter()
            .filter(|x| x.counted && x.seq > epoch_start && (x.at - c.at).abs() <= 2 * w)
            .collect();
        let distinct_in = |s: i64| {
            live.iter()
                .filter(|x| s <= x.at && x.at <= s + w)
                .map(|x| x.customer.as_str())
                .collect::<HashSet<_>>()
                .len()
        };
        // Brute force: every interval [s, s + W] containing c that starts at,
        // or ends at, a counted complaint (or c itself).
        let mut starts = vec![c.at, c.at - w];
        for x in &live {
            starts.push(x.at);
            starts.push(x.at - w);
        }
        let n = rule.threshold as usize;
        let pulls = starts.iter().any(|&s| s <= c.at && c.at <= s + w && distinct_in(s) >= n);
        if !pulls {
            return Res::C { class, pulled: None };
        }
        // Evidence, as documented in window.rs (and allowed by the spec): the
        // qualifying interval that starts earliest (at a complaint), and in it
        // one complaint per customer: c for its own, the earliest for others.
        let mut candidate_starts: Vec<i64> =
            live.iter().map(|x| x.at).filter(|&t| c.at - w <= t && t <= c.at).collect();
        candidate_starts.sort();
        candidate_starts.dedup();
        let s = candidate_starts
            .into_iter()
            .find(|&s| distinct_in(s) >= n)
            .expect("model: a qualifying interval can slide right to start at a complaint");
        let mut inside: Vec<&MComplaint> = live.iter().copied().filter(|x| s <= x.at && x.at <= s + w).collect();
        inside.sort_by_key(|x| (x.at, x.seq));
        let mut picked: Vec<&MComplaint> = Vec::new();
        for x in inside {
            let mine = x.customer == c.customer;
            if (mine && x.seq == seq) || (!mine && !picked.iter().any(|p| p.customer == x.customer)) {
                picked.push(x);
            }
        }
        picked.sort_by_key(|x| (x.at, x.seq));
        // The spec's rule for threshold evidence, checked on the model's own choice.
        let customers: HashSet<&str> = picked.iter().map(|x| x.customer.as_str()).collect();
        assert_eq!(customers.len(), picked.len(), "model: one complaint per customer");
        assert!(customers.len() >= n, "model: at least N distinct customers");
        assert!(picked.iter().any(|x| x.seq == seq), "model: the pulling complaint is among the evidence");
        let span = picked.iter().map(|x| x.at).max().unwrap_or(0) - picked.iter().map(|x| x.at).min().unwrap_or(0);
        assert!(span <= w, "model: evidence spans at most W");
        // At most 100 listed: the earliest others, the pulling one always.
        let total = picked.len();
        let mut others = 0;
        picked.retain(|x| {
            x.seq == seq || {
                others += 1;
                others < 100
            }
        });
        let evidence = picked.into_iter().map(|x| (x.event_id.clone(), x.customer.clone())).collect();
        self.pull(c.subject, c.issue, "threshold", c.at, (evidence, total), out);
        Res::C { class, pulled: Some("threshold") }
    }

    /// Semantics 4.
    fn pull(
        &mut self,
        subject: usize,
        issue: usize,
        trigger: &str,
        at: i64,
        (evidence, total): (Vec<(String, String)>, usize),
        out: &mut Vec<Emit>,
    ) {
        let rule = self.cfg.rule(issue).clone();
        let skey = subject_key(subject);
        let n = self.andons.iter().filter(|a| a.subject == subject && a.issue == issue).count() + 1;
        let id = format!("{skey}/{}#{n}", ISSUES[issue]);
        if rule.delist && !self.has_open_delisting(subject) {
            let m = self.delists.entry(subject).or_insert(0);
            *m += 1;
            out.push((
                COMMANDS,
                skey.clone(),
                json!({
                    "command_id": format!("{skey}#delist#{m}"),
                    "action": "delist",
                    "subject": subject_json(subject),
                    "andon_id": id,
                    "issued_at": ts(at),
                    "reason": {
                        "issue": ISSUES[issue],
                        "trigger": trigger,
                        "distinct_customers": total,
                        "window_seconds": rule.window,
                    },
                }),
            ));
        }
        let mut due = at;
        let steps: Vec<Value> = rule
            .route
            .iter()
            .enumerate()
            .map(|(k, &o)| {
                due += self.cfg.slas[o];
                json!({"step": k + 1, "owner": OWNERS[o], "due_at": ts(due)})
            })
            .collect();
        out.push((
            WORK_ORDERS,
            skey.clone(),
            json!({
                "type": "opened",
                "andon_id": id,
                "subject": subject_json(subject),
                "issue": ISSUES[issue],
                "trigger": trigger,
                "delisted": rule.delist,
                "opened_at": ts(at),
                "evidence": evidence.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
                "evidence_total": total,
                "steps": steps,
            }),
        ));
        self.andons.push(MAndon {
            id,
            subject,
            issue,
            delisting: rule.delist,
            opened_seq: self.seq,
            closed: None,
            due: at + self.cfg.slas[rule.route[0]],
            route: rule.route,
            step: 1,
            escalated: false,
            attached: 0,
        });
    }

    /// Semantics 5 and 6.
    fn update(&mut self, u: &UIn, out: &mut Vec<Emit>) -> Res {
        self.seq += 1;
        let dkey = (u.andon_id.clone(), u.update_id.clone());
        if let Some(&first) = self.seen_u.get(&dkey) {
            self.assert_within_horizon(first);
            return Res::UpdateDuplicate;
        }
        let Some(i) = self.andons.iter().position(|a| a.id == u.andon_id) else {
            return Res::Rejected("unknown_andon");
        };
        let a = &self.andons[i];
        if a.closed.is_some() {
            return Res::Rejected("andon_closed");
        }
        if u.step as usize != a.step {
            return Res::Rejected("step_out_of_order");
        }
        if u.verdict.is_none() && a.step == a.route.len() {
            return Res::Rejected("verdict_required");
        }
        self.seen_u.insert(dkey, u.at);
        self.raise(u.at, out);
        let seq = self.seq;
        let a = &mut self.andons[i];
        let skey = subject_key(a.subject);
        out.push((
            WORK_ORDERS,
            skey.clone(),
            json!({
                "type": "step_completed",
                "andon_id": a.id,
                "step": a.step,
                "owner": OWNERS[a.route[a.step - 1]],
                "actor": u.actor,
                "at": ts(u.at),
            }),
        ));
        match u.verdict {
            None => {
                a.step += 1;
                a.due = u.at + self.cfg.slas[a.route[a.step - 1]];
                a.escalated = false;
            }
            Some(defect) => {
                out.push((
                    WORK_ORDERS,
                    skey.clone(),
                    json!({
                        "type": "closed",
                        "andon_id": a.id,
                        "verdict": verdict_str(defect),
                        "closed_at": ts(u.at),
                        "complaints_attached": a.attached,
                    }),
                ));
                a.closed = Some((u.at, seq));
                let (subject, delisting) = (a.subject, a.delisting);
                if delisting && !self.has_open_delisting(subject) {
                    let m = self.delists[&subject];
                    out.push((
                        COMMANDS,
                        skey.clone(),
                        json!({
                            "command_id": format!("{skey}#relist#{m}"),
                            "action": "relist",
                            "subject": subject_json(subject),
                            "andon_id": u.andon_id,
                            "issued_at": ts(u.at),
                        }),
                    ));
                }
            }
        }
        Res::Applied
    }
}

// ---------------------------------------------------------------------------
// Intents and the driver that makes records of them

#[derive(Debug, Clone)]
enum TimeSpec {
    /// stream time + units·UNIT + jitter seconds
    Fwd(i64, i64),
    /// stream time − units·UNIT + jitter seconds
    Back(i64, i64),
    /// stream time − W − grace + d seconds (the lateness edge)
    LateEdge(i64),
    /// the current due time of the k-th open andon + d seconds
    DueEdge(usize, i64),
}

#[derive(Debug, Clone)]
enum Intent {
    Complaint {
        subject: usize,
        issue: usize,
        customer: usize,
        time: TimeSpec,
        pull: bool,
    },
    /// Replay a processed complaint (within the horizon), maybe altered.
    DupComplaint {
        pick: usize,
        mutate: u8,
    },
    /// An update of the pick-th open andon; `step_delta` 0 is its current step.
    Update {
        pick: usize,
        step_delta: i64,
        verdict: Option<bool>,
        time: TimeSpec,
        actor: u8,
    },
    /// An update for a closed, unknown or malformed andon id.
    BadUpdate {
        kind: u8,
        pick: usize,
        step: u32,
        verdict: Option<bool>,
        time: TimeSpec,
    },
    /// Replay an update sent before (applied ones within the horizon).
    DupUpdate {
        pick: usize,
        shift: i64,
    },
}

struct Driver {
    model: Model,
    next_event: u64,
    next_update: u64,
    /// Complaints processed (not as duplicates), replayable.
    c_hist: Vec<CIn>,
    /// Every update sent.
    u_hist: Vec<UIn>,
}

/// One record with what the model says about it.
#[derive(Debug, Clone)]
struct Step {
    rec: Rec,
    res: Res,
    out: Vec<Emit>,
}

impl Driver {
    fn new(cfg: Cfg) -> Self {
        Self { model: Model::new(cfg), next_event: 0, next_update: 0, c_hist: Vec::new(), u_hist: Vec::new() }
    }

    fn st(&self) -> i64 {
        self.model.stream_time.unwrap_or(BASE)
    }

    fn open_andons(&self) -> Vec<usize> {
        (0..self.model.andons.len()).filter(|&i| self.model.andons[i].closed.is_none()).collect()
    }

    fn resolve(&self, t: &TimeSpec, issue: usize) -> i64 {
        let st = self.st();
        match *t {
            TimeSpec::Fwd(u, j) => st + u * UNIT + j,
            TimeSpec::Back(u, j) => st - u * UNIT + j,
            TimeSpec::LateEdge(d) => st - self.model.cfg.rule(issue).window - self.model.cfg.grace + d,
            TimeSpec::DueEdge(k, d) => {
                let open = self.open_andons();
                if open.is_empty() {
                    st + UNIT
                } else {
                    self.model.andons[open[k % open.len()]].due + d
                }
            }
        }
    }

    fn within_horizon(&self, first_seen: i64) -> bool {
        first_seen >= self.st() - self.model.cfg.horizon()
    }

    fn make(&mut self, intent: &Intent) -> Option<Rec> {
        let cfg = self.model.cfg.clone();
        Some(match intent {
            Intent::Complaint { subject, issue, customer, time, pull } => {
                self.next_event += 1;
                Rec::C(CIn {
                    event_id: format!("e{}", self.next_event),
                    at: self.resolve(time, *issue),
                    subject: subject % cfg.subjects,
                    issue: *issue,
                    customer: format!("c{}", customer % cfg.customers),
                    pull: *pull,
                })
            }
            Intent::DupComplaint { pick, mutate } => {
                let eligible: Vec<&CIn> = self
                    .c_hist
                    .iter()
                    .filter(|c| self.within_horizon(self.model.seen_c[&(c.subject, c.event_id.clone())]))
                    .collect();
                if eligible.is_empty() {
                    return None;
                }
                let mut c = eligible[pick % eligible.len()].clone();
                match mutate {
                    // Same id, other content: still a duplicate, and must not move time.
                    2 => c.at = self.st() + (*pick as i64 % 7) * UNIT,
                    3 => {
                        c.customer = format!("c{}", (pick / 3) % cfg.customers);
                        c.pull = !c.pull;
                    }
                    // Same subject, other issue: still a duplicate.
                    4 => c.issue = (c.issue + 1 + pick % 3) % ISSUES.len(),
                    // Same event_id on another subject: not a duplicate
                    // (unless that pair was itself processed).
                    5 => {
                        let other = (c.subject + 1) % cfg.subjects;
                        match self.model.seen_c.get(&(other, c.event_id.clone())) {
                            Some(&t) if !self.within_horizon(t) => {}
                            _ => c.subject = other,
                        }
                    }
                    _ => {}
                }
                Rec::C(c)
            }
            Intent::Update { pick, step_delta, verdict, time, actor } => {
                let open = self.open_andons();
                if open.is_empty() {
                    if pick % 4 != 0 {
                        return None;
                    }
                    return self.make(&Intent::BadUpdate {
                        kind: 0,
                        pick: *pick,
                        step: 1,
                        verdict: *verdict,
                        time: time.clone(),
                    });
                }
                let a = &self.model.andons[open[pick % open.len()]];
                let step = match a.step as i64 + step_delta {
                    s if *step_delta == 0 || s >= 1 => s,
                    _ => a.step as i64 + 1,
                };
                let (andon_id, issue) = (a.id.clone(), a.issue);
                self.next_update += 1;
                Rec::U(UIn {
                    update_id: format!("u{}", self.next_update),
                    andon_id,
                    step: step as u32,
                    actor: ["ann", "bob", "cyd"][*actor as usize % 3].to_owned(),
                    at: self.resolve(time, issue),
                    verdict: *verdict,
                })
            }
            Intent::BadUpdate { kind, pick, step, verdict, time } => {
                let closed: Vec<&MAndon> = self.model.andons.iter().filter(|a| a.closed.is_some()).collect();
                let s = pick % cfg.subjects;
                let andon_id = match kind {
                    0 if !closed.is_empty() => closed[pick % closed.len()].id.clone(),
                    0 | 1 => {
                        let i = (pick / 7) % ISSUES.len();
                        let n = self.model.andons.iter().filter(|a| a.subject == s && a.issue == i).count();
                        format!("{}/{}#{}", subject_key(s), ISSUES[i], n + 1 + pick % 2)
                    }
                    2 => "sku:NOPE/print_defect#1".to_owned(),
                    3 => format!("{}/{}#01", subject_key(s), ISSUES[0]),
                    _ => "garbage".to_owned(),
                };
                self.next_update += 1;
                Rec::U(UIn {
                    update_id: format!("u{}", self.next_update),
                    andon_id,
                    step: *step,
                    actor: "dan".to_owned(),
                    at: self.resolve(time, 0),
                    verdict: *verdict,
                })
            }
            Intent::DupUpdate { pick, shift } => {
                let applied_only = pick % 3 != 0;
                let eligible: Vec<&UIn> = self
                    .u_hist
                    .iter()
                    .filter(|u| match self.model.seen_u.get(&(u.andon_id.clone(), u.update_id.clone())) {
                        Some(&t) => self.within_horizon(t),
                        None => !applied_only,
                    })
                    .collect();
                if eligible.is_empty() {
                    return None;
                }
                let mut u = eligible[pick % eligible.len()].clone();
                u.at += shift * UNIT;
                Rec::U(u)
            }
        })
    }

    fn feed(&mut self, rec: &Rec) -> Step {
        let mut out = Vec::new();
        let res = match rec {
            Rec::C(c) => {
                let res = self.model.complaint(c, &mut out);
                if res != (Res::C { class: "duplicate", pulled: None }) {
                    self.c_hist.push(c.clone());
                }
                res
            }
            Rec::U(u) => {
                let res = self.model.update(u, &mut out);
                self.u_hist.push(u.clone());
                res
            }
        };
        Step { rec: rec.clone(), res, out }
    }

    fn step(&mut self, intent: &Intent) -> Option<Step> {
        let rec = self.make(intent)?;
        Some(self.feed(&rec))
    }
}

/// The model's run over a stream of intents: the concrete records with the
/// expected result and outputs of each.
fn model_run(cfg: &Cfg, intents: &[Intent]) -> (Vec<Step>, Model) {
    let mut d = Driver::new(cfg.clone());
    let steps = intents.iter().filter_map(|i| d.step(i)).collect();
    (steps, d.model)
}

// ---------------------------------------------------------------------------
// The engine side

fn to_complaint(c: &CIn) -> Complaint {
    let kind = if SUBJECTS[c.subject].0 == "sku" { SubjectKind::Sku } else { SubjectKind::Promotion };
    Complaint {
        event_id: c.event_id.clone(),
        occurred_at: instant(c.at),
        subject: Subject { kind, id: SUBJECTS[c.subject].1.to_owned() },
        subject_key: subject_key(c.subject),
        issue: ISSUES[c.issue].to_owned(),
        customer_id: c.customer.clone(),
        pull: c.pull,
        channel: None,
    }
}

fn to_update(u: &UIn) -> Update {
    Update {
        update_id: u.update_id.clone(),
        andon_id: u.andon_id.clone(),
        step: u.step,
        actor: u.actor.clone(),
        at: instant(u.at),
        verdict: u.verdict.map(|d| if d { Verdict::DefectConfirmed } else { Verdict::NoDefect }),
    }
}

fn emit_of(o: &Output) -> Emit {
    let topic = match o {
        Output::Command(_) => COMMANDS,
        Output::WorkOrder(_) => WORK_ORDERS,
    };
    let value = serde_json::from_slice(&o.to_json()).expect("outputs are JSON");
    (topic, o.key().to_owned(), value)
}

fn engine_feed(e: &mut Engine, rec: &Rec) -> (Res, Vec<Emit>) {
    let mut out = Vec::new();
    let res = match rec {
        Rec::C(c) => match e.on_complaint(to_complaint(c), RecordMeta::default(), &mut out) {
            Ok(o) => Res::C { class: o.class.as_str(), pulled: o.pulled.map(|t| t.as_str()) },
            Err(r) => Res::Rejected(r.reason.as_str()),
        },
        Rec::U(u) => match e.on_update(&to_update(u), RecordMeta::default(), &mut out) {
            Ok(UpdateOutcome::Applied) => Res::Applied,
            Ok(UpdateOutcome::Duplicate) => Res::UpdateDuplicate,
            Err(r) => Res::Rejected(r.reason.as_str()),
        },
    };
    (res, out.iter().map(emit_of).collect())
}

fn show_emits(out: &[Emit]) -> String {
    let mut s = String::new();
    for (topic, key, v) in out {
        let _ = writeln!(s, "    {topic} [{key}] {v}");
    }
    if s.is_empty() {
        s.push_str("    (nothing)\n");
    }
    s
}

fn mismatch(cfg: &Cfg, steps: &[Step], i: usize, what: &str, got: &(Res, Vec<Emit>)) -> TestCaseError {
    let mut s = format!("{what} at record {i}\nconfig:\n{}\nrecords before (model's view):\n", cfg.toml());
    for (k, st) in steps.iter().enumerate().take(i).skip(i.saturating_sub(25)) {
        let _ = writeln!(s, "  #{k} {} -> {:?}", st.rec, st.res);
        if !st.out.is_empty() {
            s.push_str(&show_emits(&st.out));
        }
    }
    let st = &steps[i];
    let _ = writeln!(s, "record #{i}: {}", st.rec);
    let _ = writeln!(s, "  model:  {:?}\n{}", st.res, show_emits(&st.out));
    let _ = writeln!(s, "  engine: {:?}\n{}", got.0, show_emits(&got.1));
    TestCaseError::fail(s)
}

/// Runs the engine over the model's records and compares every record.
/// `cuts`: before these record indices, snapshot and restore the engine.
fn compare_engine(cfg: &Cfg, steps: &[Step], cuts: &HashSet<usize>) -> Result<Engine, TestCaseError> {
    let ecfg = cfg.engine_config();
    let mut e = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
    for (i, st) in steps.iter().enumerate() {
        if cuts.contains(&i) {
            e = snapshot_restore(&ecfg, e);
        }
        let got = engine_feed(&mut e, &st.rec);
        if got.0 != st.res {
            return Err(mismatch(cfg, steps, i, "classification differs", &got));
        }
        if got.1 != st.out {
            return Err(mismatch(cfg, steps, i, "outputs differ", &got));
        }
    }
    Ok(e)
}

fn snapshot_restore(ecfg: &Arc<EngineConfig>, e: Engine) -> Engine {
    let text = serde_json::to_string(e.state()).expect("state serialises");
    let state: State = serde_json::from_str(&text).expect("state deserialises");
    assert_eq!(&state, e.state(), "state survives a JSON round trip");
    let r = Engine::restore(Arc::clone(ecfg), EscalationClock::StreamTime, state);
    assert_eq!(r.open_andon_count(), e.open_andon_count());
    assert_eq!(r.delisted_subject_count(), e.delisted_subject_count());
    assert_eq!(r.next_due(), e.next_due());
    r
}

// ---------------------------------------------------------------------------
// Strategies

fn rule_strategy(delist: bool) -> impl Strategy<Value = RuleCfg> {
    (1u32..=4, 2i64..=8, prop::collection::vec(0usize..3, 1..=3)).prop_map(move |(threshold, w, route)| RuleCfg {
        threshold,
        window: w * 1800,
        delist,
        route,
    })
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        rule_strategy(true),
        rule_strategy(true),
        rule_strategy(false),
        prop::sample::select(vec![0i64, 1800, 3600, 7200]),
        prop::array::uniform3(prop::sample::select(vec![1800i64, 3600, 7200, 10800])),
        2usize..=5,
        2usize..=6,
    )
        .prop_map(|(default, safety, promo, grace, slas, subjects, customers)| Cfg {
            grace,
            default,
            safety,
            promo,
            slas,
            subjects,
            customers,
        })
}

fn jitter() -> impl Strategy<Value = i64> {
    prop_oneof![8 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64)]
}

fn forward() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 4 => Just(1i64), 2 => Just(2i64), 1 => Just(4i64)]
}

fn complaint_time() -> impl Strategy<Value = TimeSpec> {
    prop_oneof![
        70 => (forward(), jitter()).prop_map(|(u, j)| TimeSpec::Fwd(u, j)),
        14 => (0i64..=12, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        6 => (12i64..=100, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        5 => (-1i64..=1).prop_map(TimeSpec::LateEdge),
        5 => (any::<usize>(), -1i64..=1).prop_map(|(k, d)| TimeSpec::DueEdge(k, d)),
    ]
}

fn update_time() -> impl Strategy<Value = TimeSpec> {
    prop_oneof![
        75 => (forward(), jitter()).prop_map(|(u, j)| TimeSpec::Fwd(u, j)),
        15 => (0i64..=12, jitter()).prop_map(|(u, j)| TimeSpec::Back(u, j)),
        10 => (any::<usize>(), -1i64..=1).prop_map(|(k, d)| TimeSpec::DueEdge(k, d)),
    ]
}

fn verdict() -> impl Strategy<Value = Option<bool>> {
    prop_oneof![5 => Just(None), 3 => Just(Some(true)), 2 => Just(Some(false))]
}

fn intent() -> impl Strategy<Value = Intent> {
    let subject =
        prop_oneof![4 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize), 1 => Just(4usize)];
    let issue = prop_oneof![5 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)];
    let step_delta = prop_oneof![16 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64), 1 => Just(2i64)];
    prop_oneof![
        55 => (subject, issue, 0usize..6, complaint_time(), prop::bool::weighted(0.04)).prop_map(
            |(subject, issue, customer, time, pull)| Intent::Complaint { subject, issue, customer, time, pull }
        ),
        6 => (any::<usize>(), 0u8..6).prop_map(|(pick, mutate)| Intent::DupComplaint { pick, mutate }),
        25 => (any::<usize>(), step_delta, verdict(), update_time(), 0u8..3).prop_map(
            |(pick, step_delta, verdict, time, actor)| Intent::Update { pick, step_delta, verdict, time, actor }
        ),
        4 => (0u8..5, any::<usize>(), 1u32..=3, verdict(), update_time()).prop_map(
            |(kind, pick, step, verdict, time)| Intent::BadUpdate { kind, pick, step, verdict, time }
        ),
        5 => (any::<usize>(), 0i64..=2).prop_map(|(pick, shift)| Intent::DupUpdate { pick, shift }),
    ]
}

fn case_strategy(len: std::ops::Range<usize>) -> impl Strategy<Value = (Cfg, Vec<Intent>)> {
    (cfg_strategy(), prop::collection::vec(intent(), len))
}

fn pt_config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        // Regressions worth keeping become named tests in this file.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..PtConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(pt_config(256))]

    /// Every record's classification and every output agree with the naive model.
    #[test]
    fn engine_agrees_with_the_naive_model((cfg, intents) in case_strategy(200..2000)) {
        let (steps, model) = model_run(&cfg, &intents);
        let e = compare_engine(&cfg, &steps, &HashSet::new())?;
        let open: Vec<&MAndon> = model.andons.iter().filter(|a| a.closed.is_none()).collect();
        prop_assert_eq!(e.open_andon_count(), open.len());
        let mut ids: Vec<String> = e.open_andons().map(|v| v.andon_id).collect();
        ids.sort();
        let mut want: Vec<String> = open.iter().map(|a| a.id.clone()).collect();
        want.sort();
        prop_assert_eq!(ids, want);
        let off_sale = (0..cfg.subjects).filter(|&s| model.has_open_delisting(s)).count();
        prop_assert_eq!(e.delisted_subject_count(), off_sale);
        prop_assert_eq!(e.stream_time(), model.stream_time.map(instant));
    }
}

proptest! {
    #![proptest_config(pt_config(96))]

    /// Snapshot (serde_json) and restore at random points changes nothing:
    /// the outputs equal the uninterrupted run's (which equal the model's).
    #[test]
    fn snapshot_and_restore_anywhere_changes_nothing(
        (cfg, intents) in case_strategy(200..1500),
        cuts in prop::collection::vec(0usize..1500, 1..10),
    ) {
        let (steps, _) = model_run(&cfg, &intents);
        let cuts: HashSet<usize> = cuts.into_iter().map(|c| c % steps.len().max(1)).collect();
        let ecfg = cfg.engine_config();
        let mut plain = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
        let mut cut = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
        for (i, st) in steps.iter().enumerate() {
            if cuts.contains(&i) {
                cut = snapshot_restore(&ecfg, cut);
            }
            let a = engine_feed(&mut plain, &st.rec);
            let b = engine_feed(&mut cut, &st.rec);
            prop_assert_eq!(&a, &b, "restored engine differs at record #{}: {}", i, st.rec);
        }
        // And both agree with the model (restores included).
        compare_engine(&cfg, &steps, &cuts)?;
    }
}

/// A few handwritten streams through the same comparison: edges the
/// generator reaches only by luck.
#[test]
fn handwritten_edges_agree_with_the_model() {
    let cfg = Cfg {
        grace: 3600,
        default: RuleCfg { threshold: 2, window: 7200, delist: true, route: vec![0, 1, 2] },
        safety: RuleCfg { threshold: 1, window: 3600, delist: true, route: vec![1] },
        promo: RuleCfg { threshold: 2, window: 3600, delist: false, route: vec![0, 0] },
        slas: [3600, 1800, 7200],
        subjects: 4,
        customers: 3,
    };
    let c = |id: &str, at: i64, subject: usize, issue: usize, customer: &str, pull: bool| {
        Rec::C(CIn { event_id: id.into(), at: BASE + at, subject, issue, customer: customer.into(), pull })
    };
    let u = |id: &str, andon: &str, step: u32, at: i64, verdict: Option<bool>| {
        Rec::U(UIn { update_id: id.into(), andon_id: andon.into(), step, actor: "ann".into(), at: BASE + at, verdict })
    };
    let recs = vec![
        c("a1", 0, 0, 0, "c0", false),
        c("a2", 7200, 0, 0, "c1", false), // exactly W apart: pulls (ends included)
        c("a3", 7300, 0, 0, "c2", true),  // manual while open: attached
        u("u1", "sku:A/print_defect#1", 2, 7400, None), // wrong step
        u("u1", "sku:A/print_defect#1", 1, 7400, None), // same id after a reject: fine
        u("u1", "sku:A/print_defect#1", 1, 7400, None), // duplicate
        c("s1", 7500, 0, 1, "c0", false), // safety on the same subject: no second delist
        c("x1", 7200 + 1800 + 3600 + 1, 3, 0, "c0", false), // raises past both dues
        u("u2", "sku:A/print_defect#1", 2, 20000, None),
        u("u3", "sku:A/print_defect#1", 3, 20000, None), // verdict_required
        u("u3", "sku:A/print_defect#1", 3, 20000, Some(false)),
        u("u4", "sku:A/safety_hazard#1", 1, 15000, Some(true)), // relists sku:A
        c("a4", 15000, 0, 1, "c1", false),                      // stale (= close at)
        c("a5", 15001, 0, 1, "c1", false),                      // pulls again: #2
        c("l1", 20000 - 7200 - 3600, 3, 0, "c0", false),        // exactly on the lateness edge
        c("l2", 20000 - 7200 - 3600 - 1, 3, 0, "c2", true),     // late manual pull
        c("p1", 20000, 1, 2, "c0", false),
        c("p2", 20000, 1, 2, "c1", false), // notify: opened, no delist
        u("u5", "sku:B/promo_price_mismatch#1", 1, 20000, None),
        u("u6", "sku:B/promo_price_mismatch#1", 2, 20001, Some(true)), // no relist
        u("u7", "sku:B/promo_price_mismatch#1", 2, 20001, Some(true)), // andon_closed
        u("u8", "sku:B/promo_price_mismatch#2", 1, 20001, Some(true)), // unknown
        c("x2", 20002, 3, 0, "c0", false),
        c("a5", 40000, 0, 2, "c0", false), // duplicate: (subject, event_id)
        c("a5", 20002, 1, 1, "c1", false), // same event_id, other subject: new
    ];
    let mut d = Driver::new(cfg.clone());
    let steps: Vec<Step> = recs.iter().map(|r| d.feed(r)).collect();
    if let Err(e) = compare_engine(&cfg, &steps, &HashSet::new()) {
        panic!("{e}");
    }
    let classes: Vec<&Res> = steps.iter().map(|s| &s.res).collect();
    // The model itself says what the spec says on these edges.
    assert_eq!(classes[1], &Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(classes[2], &Res::C { class: "attached", pulled: None });
    assert_eq!(classes[3], &Res::Rejected("step_out_of_order"));
    assert_eq!(classes[5], &Res::UpdateDuplicate);
    assert_eq!(classes[9], &Res::Rejected("verdict_required"));
    assert_eq!(classes[12], &Res::C { class: "stale", pulled: None });
    assert_eq!(classes[13], &Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(classes[14], &Res::C { class: "counted", pulled: None });
    assert_eq!(classes[15], &Res::C { class: "late", pulled: Some("manual") });
    assert_eq!(classes[20], &Res::Rejected("andon_closed"));
    assert_eq!(classes[21], &Res::Rejected("unknown_andon"));
    assert_eq!(classes[23], &Res::C { class: "duplicate", pulled: None });
    assert_eq!(classes[24], &Res::C { class: "counted", pulled: Some("threshold") });
}

/// A counted complaint exactly 2W + grace older than stream time may still
/// pair with a complaint exactly on the lateness edge, and an id exactly
/// 2W + grace old is still a duplicate: the engine must not forget either a
/// moment early (sweeps included), for the longest window and a shorter one.
#[test]
fn horizons_are_kept_to_the_edge() {
    let cfg = Cfg {
        grace: 3600,
        default: RuleCfg { threshold: 2, window: 7200, delist: true, route: vec![0] },
        safety: RuleCfg { threshold: 1, window: 3600, delist: true, route: vec![1] },
        promo: RuleCfg { threshold: 2, window: 3600, delist: false, route: vec![2] },
        slas: [360_000, 360_000, 360_000],
        subjects: 5,
        customers: 3,
    };
    let c = |id: &str, at: i64, subject: usize, issue: usize, customer: &str| {
        Rec::C(CIn { event_id: id.into(), at: BASE + at, subject, issue, customer: customer.into(), pull: false })
    };
    const H: i64 = 3600;
    // Default rule: W 2 h, grace 1 h, so ids and its complaints matter for
    // 5 h; the promo rule (W 1 h) keeps its complaints for 3 h.
    let recs = vec![
        c("x", 0, 0, 0, "c0"),
        c("t1", H, 4, 0, "c2"), // time goes by in steps: sweeps run
        c("t2", 2 * H, 4, 0, "c2"),
        c("t3", 4 * H, 4, 0, "c2"),
        c("y", 5 * H, 2, 0, "c0"), // stream time = x + 2W + grace
        c("x", 0, 0, 0, "c2"),     // still a duplicate
        c("z", 2 * H, 0, 0, "c1"), // on the lateness edge, W after x: pulls
        c("p0", 6 * H, 3, 2, "c0"),
        c("t4", 7 * H, 4, 0, "c2"),
        c("t5", 8 * H, 4, 0, "c2"),
        c("r", 9 * H, 4, 0, "c2"),  // stream time = p0 + 2W' + grace
        c("p1", 7 * H, 3, 2, "c1"), // on the promo lateness edge, W' after p0: pulls
    ];
    let mut d = Driver::new(cfg.clone());
    let steps: Vec<Step> = recs.iter().map(|r| d.feed(r)).collect();
    if let Err(e) = compare_engine(&cfg, &steps, &HashSet::new()) {
        panic!("{e}");
    }
    assert_eq!(steps[5].res, Res::C { class: "duplicate", pulled: None });
    assert_eq!(steps[6].res, Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(steps[6].out[1].2["evidence"], json!(["x", "z"]));
    assert_eq!(steps[11].res, Res::C { class: "counted", pulled: Some("threshold") });
    assert_eq!(steps[11].out[0].2["evidence"], json!(["p0", "p1"]));
}

/// The generator is not vacuous: over a handful of streams, every kind of
/// outcome and output the model knows occurs.
#[test]
fn generated_streams_cover_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = case_strategy(1000..1001);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..24 {
        let (cfg, intents) = strategy.new_tree(&mut runner).expect("generates").current();
        let (steps, _) = model_run(&cfg, &intents);
        for st in &steps {
            let k = match &st.res {
                Res::C { class, pulled } => format!("complaint {class} {}", pulled.unwrap_or("-")),
                other => format!("{other:?}"),
            };
            *counts.entry(k).or_default() += 1;
            for (_, _, v) in &st.out {
                let k = match (v["type"].as_str(), v["action"].as_str()) {
                    (Some("opened"), _) => format!(
                        "opened delisted={} evidence={}",
                        v["delisted"],
                        v["evidence"].as_array().map_or(0, |a| a.len()).min(3)
                    ),
                    (Some(t), _) => t.to_owned(),
                    (None, Some(a)) => a.to_owned(),
                    _ => "?".to_owned(),
                };
                *counts.entry(k).or_default() += 1;
            }
            let opened_without_delist = st.out.iter().any(|(_, _, v)| v["type"] == "opened" && v["delisted"] == true)
                && !st.out.iter().any(|(_, _, v)| v["action"] == "delist");
            if opened_without_delist {
                *counts.entry("delisting opened, subject already off sale".into()).or_default() += 1;
            }
            if st.out.iter().filter(|(_, _, v)| v["type"] == "escalated").count() > 1 {
                *counts.entry("several escalations at once".into()).or_default() += 1;
            }
        }
    }
    let mut keys: Vec<_> = counts.iter().collect();
    keys.sort();
    for (k, n) in &keys {
        eprintln!("{n:>7}  {k}");
    }
    for want in [
        "complaint counted -",
        "complaint counted threshold",
        "complaint counted manual",
        "complaint late -",
        "complaint late manual",
        "complaint stale -",
        "complaint stale manual",
        "complaint attached -",
        "complaint duplicate -",
        "Applied",
        "UpdateDuplicate",
        "Rejected(\"unknown_andon\")",
        "Rejected(\"andon_closed\")",
        "Rejected(\"step_out_of_order\")",
        "Rejected(\"verdict_required\")",
        "delist",
        "relist",
        "opened delisted=true evidence=1",
        "opened delisted=true evidence=2",
        "opened delisted=true evidence=3",
        "opened delisted=false evidence=1",
        "step_completed",
        "escalated",
        "closed",
        "delisting opened, subject already off sale",
        "several escalations at once",
    ] {
        assert!(counts.get(want).copied().unwrap_or(0) > 0, "the generator never produced {want:?}");
    }
}

/// Memory is bounded by the window, not the stream: 20k records over months
/// of event time on few keys. Checked against the model as well.
#[test]
fn memory_stays_bounded_on_a_long_stream() {
    let mut runner = TestRunner::deterministic();
    let (mut cfg, intents) = case_strategy(20_000..20_001).new_tree(&mut runner).expect("generates").current();
    cfg.subjects = 3;
    cfg.customers = 4;
    let (steps, model) = model_run(&cfg, &intents);
    let horizon = cfg.horizon();
    let ecfg = cfg.engine_config();
    let mut e = Engine::new(Arc::clone(&ecfg), EscalationClock::StreamTime);
    let mut sizes = Vec::new();
    let mut max_seen = 0;
    let mut max_counted = 0;
    // Event times of ids as the model remembers them, in processing order.
    let mut id_times: Vec<i64> = Vec::new();
    let mut dm = Driver::new(cfg.clone());
    for (i, st) in steps.iter().enumerate() {
        let got = engine_feed(&mut e, &st.rec);
        if got.0 != st.res || got.1 != st.out {
            panic!("{}", mismatch(&cfg, &steps, i, "engine and model differ", &got));
        }
        let before = (dm.model.seen_c.len(), dm.model.seen_u.len());
        dm.feed(&st.rec);
        if (dm.model.seen_c.len(), dm.model.seen_u.len()) != before {
            id_times.push(match &st.rec {
                Rec::C(c) => c.at,
                Rec::U(u) => u.at,
            });
        }
        if i % 200 == 199 {
            let now = (e.stream_time().expect("started") - Ts::EPOCH).as_secs();
            let state = e.state();
            let seen = state.seen.len();
            let counted: usize = state.subjects.values().flat_map(|s| &s.issues).map(|is| is.counted.len()).sum();
            // Ids within twice the horizon: the engine may keep what is
            // within the horizon plus what a lazy sweep has not dropped yet.
            let recent_ids = id_times.iter().filter(|&&t| t >= now - 2 * horizon).count();
            assert!(seen <= recent_ids, "record {i}: {seen} ids kept, only {recent_ids} within 2 × (2W + grace)");
            assert!(counted <= recent_ids, "record {i}: {counted} counted complaints kept");
            assert!(e.key_count() <= cfg.subjects * ISSUES.len());
            max_seen = max_seen.max(seen);
            max_counted = max_counted.max(counted);
            sizes.push(serde_json::to_string(state).expect("serialises").len());
        }
    }
    let records = steps.len();
    let span_days = (model.stream_time.expect("started") - BASE) / 86_400;
    eprintln!(
        "{records} records over {span_days} days: at most {max_seen} ids and {max_counted} counted complaints kept; \
         state {} .. {} bytes",
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0)
    );
    assert!(span_days > 10 * horizon / 86_400, "the stream spans many horizons");
    assert!(max_seen < records / 20, "{max_seen} ids kept of {records}");
    // The state does not grow with the stream: the last quarter is no bigger
    // than twice the second quarter's largest.
    let q = sizes.len() / 4;
    let second = sizes[q..2 * q].iter().max().copied().unwrap_or(0);
    let last = sizes[3 * q..].iter().max().copied().unwrap_or(0);
    assert!(last <= 2 * second + 4096, "state grew from {second} to {last} bytes");
}
