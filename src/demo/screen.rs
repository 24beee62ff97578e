//! The demo's terminal screen: what a downstream service would see. A plain
//! consumer reads the output topics and the DLQ from the beginning,
//! deduplicates by output id and counts pulls, delists, relists,
//! escalations, verdicts and DLQ reasons, and keeps the open work orders'
//! rows; from that it draws a full-screen frame (on a terminal), a one-line
//! summary (otherwise) and the final summary with its `summary:` line.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Headers, Message};
use serde_json::Value;

use super::reader;
use super::traffic::GenStats;
use crate::config::Topics;
use crate::ops::Status;

/// The bad-pull target (docs/semantics.md: at most 2 % of closed work
/// orders).
const BAD_PULL_TARGET: f64 = 0.02;

/// An open work order as a row of the screen's table: what the output
/// topics said of it, not the engine's state.
struct AndonRow {
    trigger: String,
    delisted: bool,
    /// (owner, sla) per step; the SLA from the differences of the planned due times.
    steps: Vec<(String, Option<chrono::Duration>)>,
    step: u32,
    due: Option<DateTime<Utc>>,
    escalated: bool,
}

/// The screen's state: its consumer and the counts it has read.
pub(super) struct Screen {
    /// The status page's address.
    page: String,
    consumer: BaseConsumer,
    topics: Topics,
    bootstrap: String,
    /// The processor's consumer group, for the "join" hint.
    group: String,
    demo_rules: bool,
    /// Output ids already counted: a consumer deduplicates by id.
    seen: HashSet<String>,
    pulls: BTreeMap<String, u64>,
    delists: u64,
    relists: u64,
    escalations: u64,
    steps_completed: u64,
    verdicts: BTreeMap<String, u64>,
    attached: u64,
    dlq: BTreeMap<String, u64>,
    open: BTreeMap<String, AndonRow>,
}

fn ts(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    let s = v.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("?")
}

impl Screen {
    /// The screen of the processor in consumer group `group`, whose status
    /// page is at `page`.
    pub(super) fn new(
        bootstrap: &str,
        group: &str,
        topics: &Topics,
        demo_rules: bool,
        page: String,
    ) -> anyhow::Result<Self> {
        let consumer = reader(
            bootstrap,
            "andon-demo-view",
            &[topics.delist_commands.as_str(), topics.work_orders.as_str(), topics.dlq.as_str()],
        )?;
        Ok(Self::with_consumer(consumer, bootstrap, group, topics, demo_rules, page))
    }

    /// As [`Screen::new`] with the consumer given (and so no broker needed).
    fn with_consumer(
        consumer: BaseConsumer,
        bootstrap: &str,
        group: &str,
        topics: &Topics,
        demo_rules: bool,
        page: String,
    ) -> Self {
        Self {
            consumer,
            topics: topics.clone(),
            bootstrap: bootstrap.to_owned(),
            page,
            group: group.to_owned(),
            demo_rules,
            seen: HashSet::new(),
            pulls: BTreeMap::new(),
            delists: 0,
            relists: 0,
            escalations: 0,
            steps_completed: 0,
            verdicts: BTreeMap::new(),
            attached: 0,
            dlq: BTreeMap::new(),
            open: BTreeMap::new(),
        }
    }

    /// Reads what has arrived for up to `budget`.
    pub(super) fn poll(&mut self, budget: Duration) {
        let until = Instant::now() + budget;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.consumer.poll(left) {
                Some(Ok(m)) => {
                    let topic = m.topic().to_owned();
                    let dlq_reason = m.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == "andon.error.reason")
                            .and_then(|h| h.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    });
                    let dlq_id = m.headers().map(|h| {
                        let mut id = String::new();
                        for h in h.iter().filter(|h| h.key.starts_with("andon.source.")) {
                            let _ = write!(id, "{}={};", h.key, String::from_utf8_lossy(h.value.unwrap_or_default()));
                        }
                        id
                    });
                    let value = m.payload().and_then(|p| serde_json::from_slice::<Value>(p).ok());
                    self.ingest(&topic, value.as_ref(), dlq_reason, dlq_id);
                }
                Some(Err(e)) => tracing::debug!(error = %e, "screen consumer"),
                None => {}
            }
            if Instant::now() >= until {
                return;
            }
        }
    }

    /// Reads until nothing new has come for a while (or `max` has passed).
    pub(super) fn drain(&mut self, max: Duration) {
        let until = Instant::now() + max;
        let mut quiet_since = Instant::now();
        let mut count = self.seen.len();
        while Instant::now() < until && quiet_since.elapsed() < Duration::from_millis(700) {
            self.poll(Duration::from_millis(100));
            if self.seen.len() != count {
                count = self.seen.len();
                quiet_since = Instant::now();
            }
        }
    }

    fn ingest(&mut self, topic: &str, value: Option<&Value>, dlq_reason: Option<String>, dlq_id: Option<String>) {
        if topic == self.topics.dlq {
            let id = format!("dlq:{}", dlq_id.unwrap_or_default());
            if self.seen.insert(id) {
                *self.dlq.entry(dlq_reason.unwrap_or_else(|| "unknown".into())).or_default() += 1;
            }
            return;
        }
        // Anything that is not the JSON an output should be is skipped: the
        // screen must never fall over on what it reads.
        let Some(v) = value else { return };
        if topic == self.topics.delist_commands {
            let Some(id) = v.get("command_id").and_then(Value::as_str) else {
                return;
            };
            if !self.seen.insert(format!("cmd:{id}")) {
                return;
            }
            match v.get("action").and_then(Value::as_str) {
                Some("delist") => self.delists += 1,
                Some("relist") => self.relists += 1,
                _ => {}
            }
            return;
        }
        if topic != self.topics.work_orders {
            return;
        }
        let (Some(andon_id), Some(kind)) =
            (v.get("andon_id").and_then(Value::as_str), v.get("type").and_then(Value::as_str))
        else {
            return;
        };
        let step = v.get("step").and_then(Value::as_u64).unwrap_or(0);
        if !self.seen.insert(format!("wo:{andon_id}:{kind}:{step}")) {
            return;
        }
        match kind {
            "opened" => {
                let trigger = str_of(v, "trigger").to_owned();
                *self.pulls.entry(trigger.clone()).or_default() += 1;
                let mut steps = Vec::new();
                let mut due = None;
                let mut prev = ts(v, "opened_at");
                for s in v.get("steps").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    let d = ts(s, "due_at");
                    if due.is_none() {
                        due = d;
                    }
                    let sla = match (prev, d) {
                        (Some(a), Some(b)) => Some(b - a),
                        _ => None,
                    };
                    prev = d;
                    steps.push((str_of(s, "owner").to_owned(), sla));
                }
                let delisted = v.get("delisted").and_then(Value::as_bool).unwrap_or(false);
                self.open
                    .insert(andon_id.to_owned(), AndonRow { trigger, delisted, steps, step: 1, due, escalated: false });
            }
            "step_completed" => {
                self.steps_completed += 1;
                if let Some(a) = self.open.get_mut(andon_id) {
                    a.step = u32::try_from(step).unwrap_or(u32::MAX).saturating_add(1);
                    a.escalated = false;
                    let sla = usize::try_from(step).ok().and_then(|i| a.steps.get(i)).and_then(|s| s.1);
                    a.due = match (ts(v, "at"), sla) {
                        (Some(at), Some(sla)) => at.checked_add_signed(sla),
                        _ => None,
                    };
                }
            }
            "escalated" => {
                self.escalations += 1;
                if let Some(a) = self.open.get_mut(andon_id) {
                    a.escalated = true;
                }
            }
            "closed" => {
                *self.verdicts.entry(str_of(v, "verdict").to_owned()).or_default() += 1;
                self.attached += v.get("complaints_attached").and_then(Value::as_u64).unwrap_or(0);
                self.open.remove(andon_id);
            }
            _ => {}
        }
    }

    fn closed(&self) -> u64 {
        self.verdicts.values().sum()
    }

    fn no_defect(&self) -> u64 {
        self.verdicts.get("no_defect").copied().unwrap_or(0)
    }

    fn bad_pull_rate(&self) -> String {
        let closed = self.closed();
        if closed == 0 {
            return "n/a".into();
        }
        let rate = self.no_defect() as f64 / closed as f64;
        let verdict = if rate <= BAD_PULL_TARGET { "within" } else { "above" };
        format!("{:.1} % ({verdict} the {:.0} % target)", rate * 100.0, BAD_PULL_TARGET * 100.0)
    }

    fn pulls_text(&self) -> String {
        let total: u64 = self.pulls.values().sum();
        let by: Vec<String> = ["threshold", "manual"]
            .iter()
            .map(|t| format!("{t} {}", self.pulls.get(*t).copied().unwrap_or(0)))
            .collect();
        format!("{total} ({})", by.join(", "))
    }

    fn dlq_text(&self) -> String {
        let total: u64 = self.dlq.values().sum();
        if total == 0 {
            return "0".into();
        }
        let by: Vec<String> = self.dlq.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!("{total} ({})", by.join(", "))
    }

    fn verdicts_text(&self) -> String {
        let confirmed = self.verdicts.get("defect_confirmed").copied().unwrap_or(0);
        format!("{} closed: {confirmed} defect_confirmed, {} no_defect", self.closed(), self.no_defect())
    }

    /// A full-screen frame for a terminal.
    pub(super) fn frame(&self, elapsed: Duration, per_sec: f64, stats: &GenStats, status: &Status) -> String {
        let mut f = String::new();
        let b = &self.bootstrap;
        let _ = writeln!(f, "andon demo   elapsed {}   bootstrap {b}   (Ctrl-C stops)", clock(elapsed));
        let _ = writeln!(f, "  page:   {}   (Prometheus: {}metrics)", self.page, self.page);
        let _ = writeln!(f, "  watch:  kcat -b {b} -C -t {}", self.topics.work_orders);
        let _ =
            writeln!(f, "  join:   ANDON__KAFKA__BROKERS={b} andon run   (a second member of group {:?})", self.group);
        let ready = status.ready.load(Ordering::Relaxed);
        let _ = writeln!(
            f,
            "processor: {}, {} partition(s), {} records in {} batches;  rules: {}",
            if ready { "running" } else { "starting" },
            status.assigned.load(Ordering::Relaxed),
            status.records.load(Ordering::Relaxed),
            status.batches.load(Ordering::Relaxed),
            if self.demo_rules { "demo" } else { "yours" },
        );
        let _ = writeln!(f);
        let _ = writeln!(
            f,
            "complaints   {per_sec:.1}/s, {} sent\n             (duplicates {}, late {}, malformed {}, manual pulls {}; {} genuine incidents)",
            stats.sent.load(Ordering::Relaxed),
            stats.duplicates.load(Ordering::Relaxed),
            stats.late.load(Ordering::Relaxed),
            stats.malformed.load(Ordering::Relaxed),
            stats.manual.load(Ordering::Relaxed),
            stats.incidents.load(Ordering::Relaxed),
        );
        let _ = writeln!(f, "pulls        {}", self.pulls_text());
        let _ = writeln!(
            f,
            "delists      {:<6} relists {:<6} escalations {}",
            self.delists, self.relists, self.escalations
        );
        let _ = writeln!(
            f,
            "work orders  {}; {} steps completed; {} complaints attached",
            self.verdicts_text(),
            self.steps_completed,
            self.attached
        );
        let _ = writeln!(f, "bad pulls    {}", self.bad_pull_rate());
        let _ = writeln!(f, "DLQ          {}", self.dlq_text());
        let _ = writeln!(f);
        let _ = writeln!(f, "open andons: {}", self.open.len());
        let _ = writeln!(f, "  {:<40} {:<9} {:<6} {:<5} {:<13} due", "andon_id", "trigger", "delist", "step", "owner");
        let now = Utc::now();
        let mut rows: Vec<(&String, &AndonRow)> = self.open.iter().collect();
        // Most urgent first: overdue at the top.
        rows.sort_by_key(|(_, a)| a.due.unwrap_or(DateTime::<Utc>::MAX_UTC));
        const ROWS: usize = 15;
        for (id, a) in rows.iter().take(ROWS) {
            let owner = a.steps.get((a.step as usize).saturating_sub(1)).map_or("?", |s| s.0.as_str());
            let due = match a.due {
                Some(d) if d >= now => format!("in {}s", (d - now).num_seconds()),
                Some(d) => {
                    format!("OVERDUE {}s{}", (now - d).num_seconds(), if a.escalated { ", escalated" } else { "" })
                }
                None => "?".into(),
            };
            let _ = writeln!(
                f,
                "  {:<40} {:<9} {:<6} {:<5} {:<13} {due}",
                shorten(id, 40),
                a.trigger,
                if a.delisted { "yes" } else { "no" },
                format!("{}/{}", a.step, a.steps.len()),
                owner
            );
        }
        if rows.len() > ROWS {
            let _ = writeln!(f, "  ... and {} more", rows.len() - ROWS);
        }
        f
    }

    /// One line for a log or a pipe.
    pub(super) fn line(&self, elapsed: Duration, per_sec: f64, stats: &GenStats) -> String {
        format!(
            "[{}] {per_sec:.1} complaints/s ({} sent) | pulls {} | delists {} | relists {} | escalations {} | dlq {} | closed {} | bad-pull rate {} | open {}",
            clock(elapsed),
            stats.sent.load(Ordering::Relaxed),
            self.pulls_text(),
            self.delists,
            self.relists,
            self.escalations,
            self.dlq.values().sum::<u64>(),
            self.closed(),
            self.bad_pull_rate(),
            self.open.len(),
        )
    }

    /// The final summary, ending in a `key=value` line for scripts.
    pub(super) fn summary(&self, elapsed: Duration, avg: f64, stats: &GenStats) -> String {
        let mut f = String::new();
        let sent = stats.sent.load(Ordering::Relaxed);
        let _ = writeln!(f);
        let _ = writeln!(f, "andon demo finished after {}", clock(elapsed));
        let _ = writeln!(f, "  complaints sent  {sent} ({avg:.1}/s)");
        let _ = writeln!(f, "  pulls            {}", self.pulls_text());
        let _ = writeln!(f, "  delists          {}", self.delists);
        let _ = writeln!(f, "  relists          {}", self.relists);
        let _ = writeln!(f, "  escalations      {}", self.escalations);
        let _ = writeln!(f, "  work orders      {}; {} still open", self.verdicts_text(), self.open.len());
        let _ = writeln!(f, "  bad-pull rate    {}", self.bad_pull_rate());
        let _ = writeln!(f, "  DLQ              {}", self.dlq_text());
        let _ = writeln!(
            f,
            "summary: complaints={sent} pulls={} threshold_pulls={} manual_pulls={} delists={} relists={} escalations={} closed={} no_defect={} open={} dlq={}",
            self.pulls.values().sum::<u64>(),
            self.pulls.get("threshold").copied().unwrap_or(0),
            self.pulls.get("manual").copied().unwrap_or(0),
            self.delists,
            self.relists,
            self.escalations,
            self.closed(),
            self.no_defect(),
            self.open.len(),
            self.dlq.values().sum::<u64>(),
        );
        f
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{head}…")
}

/// Complaints per second over the last few seconds.
pub(super) struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub(super) fn new() -> Self {
        Self { samples: VecDeque::new() }
    }

    pub(super) fn sample(&mut self, now: Instant, count: u64) {
        self.samples.push_back((now, count));
        while self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(3)) {
            self.samples.pop_front();
        }
    }

    pub(super) fn per_second(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                c1.saturating_sub(*c0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::config::ClientConfig;
    use serde_json::json;

    use super::*;
    use crate::config::Settings;

    #[test]
    fn the_screen_survives_odd_records() {
        let consumer = ClientConfig::new()
            .set("group.id", "t")
            .create::<BaseConsumer>()
            .expect("a consumer needs no broker to be created");
        let topics = Settings::from_toml("").expect("defaults").topics;
        let mut v = Screen::with_consumer(consumer, "", "", &topics, true, String::new());
        for odd in [json!(null), json!([1]), json!({"type": "opened"}), json!({"andon_id": 3, "type": "closed"})] {
            v.ingest(&topics.work_orders, Some(&odd), None, None);
            v.ingest(&topics.delist_commands, Some(&odd), None, None);
        }
        let opened =
            json!({"andon_id": "sku:X/print_defect#1", "type": "opened", "steps": [{"owner": 5, "due_at": "nope"}]});
        v.ingest(&topics.work_orders, Some(&opened), None, None);
        let done = json!({"andon_id": "sku:X/print_defect#1", "type": "step_completed", "step": 99999999999u64});
        v.ingest(&topics.work_orders, Some(&done), None, None);
        v.ingest(&topics.dlq, None, None, None);
        let _ = v.frame(Duration::ZERO, 0.0, &GenStats::default(), &Status::default());
        assert_eq!(v.pulls.values().sum::<u64>(), 1);
    }
}
