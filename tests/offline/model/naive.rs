//! The naive reference model of the engine, written from the documented
//! semantics (docs/semantics.md) and records (docs/records.md): the fixed
//! vocabulary of subjects, issues and owners, the generated configuration,
//! the records both sides consume, and [`Model`], which keeps everything
//! forever and recomputes by brute force.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use andon::config::Settings;
use andon::engine::EngineConfig;
use andon::time::{Dur, Ts};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Fixed vocabulary

/// Seconds; event times are generated in multiples of this (plus ±1 s
/// jitter now and then), so that windows, grace and SLAs (multiples of 30
/// min) land exactly on interval ends and due times often.
pub(super) const UNIT: i64 = 300;
/// 2026-03-01T00:00:00Z in seconds.
pub(super) const BASE: i64 = 1_772_323_200;

/// The model's times are whole seconds since the epoch; the engine's are [`Ts`].
pub(super) fn instant(secs: i64) -> Ts {
    Ts::EPOCH + Dur::from_secs(secs)
}

/// (kind, id). `X/1` has a `/` in its id: the andon id's subject key is
/// everything before the *last* `/`.
pub(super) const SUBJECTS: [(&str, &str); 5] =
    [("sku", "A"), ("sku", "B"), ("promotion", "SPRING-10"), ("sku", "X/1"), ("sku", "C")];
/// 0 and 3 fall back to `[rules.default]`, 1 has its own delisting rule,
/// 2 a `notify` rule.
pub(super) const ISSUES: [&str; 4] = ["print_defect", "safety_hazard", "promo_price_mismatch", "wrong_size"];
pub(super) const OWNERS: [&str; 3] = ["product", "operations", "supply_chain"];

pub(super) fn subject_key(s: usize) -> String {
    format!("{}:{}", SUBJECTS[s].0, SUBJECTS[s].1)
}

pub(super) fn subject_json(s: usize) -> Value {
    json!({"kind": SUBJECTS[s].0, "id": SUBJECTS[s].1})
}

/// RFC 3339 in UTC; all generated times are whole seconds.
pub(super) fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).expect("in range").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn verdict_str(defect: bool) -> &'static str {
    if defect {
        "defect_confirmed"
    } else {
        "no_defect"
    }
}

// ---------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone)]
pub(super) struct RuleCfg {
    pub(super) threshold: u32,
    /// Seconds.
    pub(super) window: i64,
    pub(super) delist: bool,
    /// Indices into OWNERS (repeats allowed).
    pub(super) route: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct Cfg {
    pub(super) grace: i64,
    pub(super) default: RuleCfg,
    pub(super) safety: RuleCfg,
    pub(super) promo: RuleCfg,
    /// Per owner, seconds.
    pub(super) slas: [i64; 3],
    pub(super) subjects: usize,
    pub(super) customers: usize,
}

impl Cfg {
    pub(super) fn rule(&self, issue: usize) -> &RuleCfg {
        match issue {
            1 => &self.safety,
            2 => &self.promo,
            _ => &self.default,
        }
    }

    /// 2W + grace, W the longest window: how long ids must be remembered.
    pub(super) fn horizon(&self) -> i64 {
        2 * self.default.window.max(self.safety.window).max(self.promo.window) + self.grace
    }

    pub(super) fn toml(&self) -> String {
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

    pub(super) fn engine_config(&self) -> Arc<EngineConfig> {
        let toml = self.toml();
        Settings::from_toml(&toml).unwrap_or_else(|e| panic!("generated config is valid: {e}\n{toml}")).engine
    }
}

// ---------------------------------------------------------------------------
// Records, as the driver makes them and both sides consume them

#[derive(Debug, Clone)]
pub(super) struct CIn {
    pub(super) event_id: String,
    pub(super) at: i64,
    pub(super) subject: usize,
    pub(super) issue: usize,
    pub(super) customer: String,
    pub(super) pull: bool,
}

#[derive(Debug, Clone)]
pub(super) struct UIn {
    pub(super) update_id: String,
    pub(super) andon_id: String,
    pub(super) step: u32,
    pub(super) actor: String,
    pub(super) at: i64,
    /// `Some(true)`: defect_confirmed.
    pub(super) verdict: Option<bool>,
}

#[derive(Debug, Clone)]
pub(super) enum Rec {
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
pub(super) enum Res {
    C { class: &'static str, pulled: Option<&'static str> },
    Applied,
    UpdateDuplicate,
    Rejected(&'static str),
}

/// (topic, record key, value)
pub(super) type Emit = (&'static str, String, Value);

pub(super) const COMMANDS: &str = "andon.delist-commands";
pub(super) const WORK_ORDERS: &str = "andon.work-orders";

// ---------------------------------------------------------------------------
// The naive model

#[derive(Debug, Clone)]
pub(super) struct MComplaint {
    pub(super) seq: u64,
    pub(super) event_id: String,
    pub(super) customer: String,
    pub(super) at: i64,
    pub(super) counted: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MAndon {
    pub(super) id: String,
    pub(super) subject: usize,
    pub(super) issue: usize,
    pub(super) delisting: bool,
    /// Sequence number of the record that pulled.
    pub(super) opened_seq: u64,
    /// (`at`, sequence number) of the closing update.
    pub(super) closed: Option<(i64, u64)>,
    pub(super) route: Vec<usize>,
    /// 1-based current step.
    pub(super) step: usize,
    pub(super) due: i64,
    pub(super) escalated: bool,
    pub(super) attached: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Model {
    pub(super) cfg: Cfg,
    pub(super) stream_time: Option<i64>,
    pub(super) seq: u64,
    /// Every processed (non-duplicate) complaint, per (subject, issue).
    pub(super) complaints: HashMap<(usize, usize), Vec<MComplaint>>,
    /// Every id ever processed, with the event time of its first record.
    pub(super) seen_c: HashMap<(usize, String), i64>,
    pub(super) seen_u: HashMap<(String, String), i64>,
    /// Every andon ever opened, in opening order.
    pub(super) andons: Vec<MAndon>,
    /// Delist commands issued per subject.
    pub(super) delists: HashMap<usize, u32>,
}

impl Model {
    pub(super) fn new(cfg: Cfg) -> Self {
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

    pub(super) fn open_andon_of(&self, subject: usize, issue: usize) -> Option<usize> {
        self.andons.iter().position(|a| a.subject == subject && a.issue == issue && a.closed.is_none())
    }

    pub(super) fn has_open_delisting(&self, subject: usize) -> bool {
        self.andons.iter().any(|a| a.subject == subject && a.closed.is_none() && a.delisting)
    }

    pub(super) fn assert_within_horizon(&self, first_seen: i64) {
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
    pub(super) fn raise(&mut self, t: i64, out: &mut Vec<Emit>) {
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

    pub(super) fn complaint(&mut self, c: &CIn, out: &mut Vec<Emit>) -> Res {
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
        // Evidence, as documented in window.rs (and docs/semantics.md): the
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
        // The documented rule for threshold evidence, checked on the model's own choice.
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
    pub(super) fn pull(
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
    pub(super) fn update(&mut self, u: &UIn, out: &mut Vec<Emit>) -> Res {
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
