//! The traffic generator: complaints as upstream services would produce
//! them, at 60-100 a second. Background noise spread over a 250,000-SKU
//! catalogue (mild Zipf skew) and 20 promotions; genuine incidents whose
//! complaints cluster on one subject and issue (recorded in [`Truth`] for
//! the owners); repeat contacts, duplicates, late and malformed records,
//! and the odd manual pull.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::producer::Producer;
use serde_json::{json, Value};

use super::rng::Rng;
use super::{producer, send};

/// SKUs in the catalogue. Most are long tail: complaints spread thin over
/// them do not reach a threshold; the head (Zipf) gets most of them.
const SKUS: usize = 250_000;
/// Popularity skew of SKUs; mild, or best sellers' noise alone would pull.
const SKU_SKEW: f64 = 0.4;
const PROMOTIONS: [&str; 20] = [
    "SPRING-10",
    "SUMMER-SALE-25",
    "BACK2SCHOOL",
    "FREESHIP-50",
    "BLACKFRIDAY-30",
    "CYBER-15",
    "WELCOME-5",
    "BUNDLE-KITCHEN",
    "APP-ONLY-20",
    "FLASH-HEADPHONES",
    "CLEARANCE-70",
    "LOYALTY-DOUBLE",
    "STUDENT-10",
    "GARDEN-3FOR2",
    "TOYS-BOGO50",
    "WINTER-COATS-40",
    "PRIME-DAY-ELEC",
    "NEWYEAR-12",
    "TV-WEEK",
    "BOGO-SOCKS",
];
/// Background complaints per second (before duplicates, late and bad ones).
const BACKGROUND_RATE: f64 = 80.0;
/// Genuine incidents: a new one every this many seconds on average, at most
/// this many at once.
const INCIDENT_EVERY_SECS: f64 = 4.0;
const MAX_INCIDENTS: usize = 18;
/// Incidents at start-up, so the view has something to show at once.
const FIRST_INCIDENTS: usize = 5;
/// Customers: a pool this large makes repeats by chance rare.
const CUSTOMERS: u64 = 3_000_000;

/// Issues of complaints about SKUs, by how common they are.
const SKU_ISSUES: [(&str, f64); 4] =
    [("damaged_in_transit", 0.42), ("wrong_item", 0.22), ("missing_parts", 0.20), ("print_defect", 0.16)];
/// Issues of genuine defects: production faults more than transit.
const DEFECT_ISSUES: [(&str, f64); 5] = [
    ("print_defect", 0.32),
    ("missing_parts", 0.30),
    ("damaged_in_transit", 0.18),
    ("wrong_item", 0.14),
    ("safety_hazard", 0.06),
];
const CHANNELS: [(&str, f64); 5] =
    [("chat", 0.38), ("email", 0.27), ("phone", 0.22), ("social", 0.09), ("other", 0.04)];
const REGIONS: [&str; 6] = ["eu-west", "eu-central", "us-east", "us-west", "uk", "apac"];

fn note_for(issue: &str, rng: &mut Rng) -> &'static str {
    let notes: &[&str] = match issue {
        "damaged_in_transit" => {
            &["box crushed on arrival", "arrived wet, packaging torn", "dented corner, outer box fine"]
        }
        "print_defect" => &["print is smeared", "colours off, image blurry", "text misaligned on the label"],
        "wrong_item" => &["received a different model", "wrong colour sent", "size does not match the order"],
        "missing_parts" => &["screws missing", "no power adapter in the box", "manual and one shelf missing"],
        "safety_hazard" => &["charger gets very hot", "sharp edge cut my hand", "smell of burning plastic"],
        "promo_price_mismatch" => &["discount not applied at checkout", "price in cart higher than advertised"],
        _ => &["customer unhappy"],
    };
    rng.pick(notes)
}

fn sku_id(rank: usize) -> String {
    // A bijection on u32 (odd multiplier): popular SKUs do not look sequential.
    format!("B0{:08X}", (rank as u32).wrapping_add(1).wrapping_mul(2_654_435_761))
}

/// Subjects known to be genuinely defective, `<subject key>|<issue>`, until
/// an owner confirms the fix. Shared by the generator and the owners.
#[derive(Default)]
pub(super) struct Truth(Mutex<HashSet<String>>);

impl Truth {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panicked holder cannot leave a set of strings inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the generator sent, for the view.
#[derive(Default)]
pub(super) struct GenStats {
    pub(super) sent: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) late: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) manual: AtomicU64,
    pub(super) incidents: AtomicU64,
}

/// A genuine defect: complaints from distinct customers at `rate` per
/// second until fixed or `ends`.
struct Incident {
    kind: &'static str,
    id: String,
    issue: &'static str,
    rate: f64,
    due: f64,
    ends: Instant,
}

impl Incident {
    fn truth_key(&self) -> String {
        format!("{}:{}|{}", self.kind, self.id, self.issue)
    }
}

struct Traffic {
    rng: Rng,
    seq: u64,
    /// Recently sent (key, value): the pool for duplicates and repeat contacts.
    recent: VecDeque<(String, String)>,
}

impl Traffic {
    fn complaint(
        &mut self,
        kind: &str,
        id: &str,
        issue: &str,
        occurred_at: DateTime<Utc>,
        customer: Option<String>,
    ) -> Value {
        self.seq += 1;
        let rng = &mut self.rng;
        let customer = customer.unwrap_or_else(|| format!("c{:07}", rng.next_u64() % CUSTOMERS));
        let mut v = json!({
            "event_id": format!("evt-{:012x}-{}", rng.next_u64() & 0xFFFF_FFFF_FFFF, self.seq),
            "occurred_at": occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "subject": {"kind": kind, "id": id},
            "issue": issue,
            "customer_id": customer,
        });
        let channel = rng.weighted(&CHANNELS);
        if let Some(o) = v.as_object_mut() {
            if rng.chance(0.85) {
                o.insert("order_id".into(), json!(format!("o-{}", 10_000_000 + rng.below(89_999_999))));
            }
            if rng.chance(0.9) {
                o.insert("channel".into(), json!(channel));
                if matches!(channel, "phone" | "chat") {
                    o.insert("agent_id".into(), json!(format!("agent-{:03}", rng.below(240))));
                }
            }
            if rng.chance(0.7) {
                o.insert("region".into(), json!(rng.pick(&REGIONS)));
            }
            if rng.chance(0.35) {
                o.insert("note".into(), json!(note_for(issue, rng)));
            }
        }
        v
    }

    /// A complaint about no real problem: a random subject by popularity.
    fn noise(&mut self, at: DateTime<Utc>) -> (String, Value) {
        // Promotions get few complaints outside real pricing bugs.
        if self.rng.chance(0.000_3) {
            let p = PROMOTIONS[self.rng.zipf(PROMOTIONS.len(), 1.0)];
            return (format!("promotion:{p}"), self.complaint("promotion", p, "promo_price_mismatch", at, None));
        }
        let id = sku_id(self.rng.zipf(SKUS, SKU_SKEW));
        // Safety hazards pull at once (threshold 1): they must be rare.
        let issue = if self.rng.chance(0.000_05) { "safety_hazard" } else { self.rng.weighted(&SKU_ISSUES) };
        (format!("sku:{id}"), self.complaint("sku", &id, issue, at, None))
    }

    fn remember(&mut self, key: &str, value: &str) {
        if self.recent.len() >= 2048 {
            self.recent.pop_front();
        }
        self.recent.push_back((key.to_owned(), value.to_owned()));
    }
}

/// Produces complaints until `stop`: background noise over the catalogue,
/// genuine incidents whose complaints cluster, repeat contacts, duplicates,
/// late and malformed records, and the odd manual pull.
pub(super) fn generator(
    bootstrap: &str,
    topic: &str,
    truth: &Truth,
    stats: &GenStats,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let producer = producer(bootstrap).context("traffic producer")?;
    let mut t = Traffic { rng: Rng::new(), seq: 0, recent: VecDeque::new() };
    let mut incidents: Vec<Incident> = Vec::new();
    let started = Instant::now();
    let mut last = started;
    let mut background_due = 0.0;
    let mut next_incident = 0.0;
    let mut first = FIRST_INCIDENTS;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let at = Utc::now();
        let mut out: Vec<(String, String)> = Vec::new();

        // Incidents come and go; a confirmed fix (the owners take the key
        // out of `truth`) or their natural end stops them.
        {
            let open = truth.lock();
            incidents.retain(|i| now < i.ends && open.contains(&i.truth_key()));
        }
        next_incident -= dt;
        while (first > 0 || next_incident <= 0.0) && incidents.len() < MAX_INCIDENTS {
            if first > 0 {
                first -= 1;
            } else {
                next_incident += t.rng.exp_secs(INCIDENT_EVERY_SECS);
            }
            let incident = if t.rng.chance(0.12) {
                // A promotion priced wrong at checkout.
                let p = PROMOTIONS[t.rng.zipf(PROMOTIONS.len(), 1.0)];
                Incident {
                    kind: "promotion",
                    id: p.to_owned(),
                    issue: "promo_price_mismatch",
                    rate: 0.0,
                    due: 0.0,
                    ends: now,
                }
            } else {
                // Defects show first on what sells: the head of the catalogue.
                let id = sku_id(t.rng.zipf(SKUS / 50, 0.9));
                Incident { kind: "sku", id, issue: t.rng.weighted(&DEFECT_ISSUES), rate: 0.0, due: 0.0, ends: now }
            };
            let key = incident.truth_key();
            if incidents.iter().any(|i| i.truth_key() == key) {
                continue;
            }
            let incident = Incident {
                rate: t.rng.between(0.15, 0.7),
                due: t.rng.exp_secs(1.5),
                ends: now + Duration::from_secs_f64(t.rng.between(90.0, 300.0)),
                ..incident
            };
            truth.lock().insert(key);
            stats.incidents.fetch_add(1, Ordering::Relaxed);
            incidents.push(incident);
        }
        if next_incident < 0.0 {
            next_incident = 0.0;
        }
        for i in &mut incidents {
            i.due -= dt;
            while i.due <= 0.0 {
                i.due += t.rng.exp_secs(1.0 / i.rate);
                let v = t.complaint(i.kind, &i.id, i.issue, at, None);
                out.push((format!("{}:{}", i.kind, i.id), v.to_string()));
            }
        }

        // Background, with a slow swell so the rate looks alive.
        let swell = 1.0 + 0.25 * (started.elapsed().as_secs_f64() / 20.0).sin();
        background_due += BACKGROUND_RATE * swell * dt;
        while background_due >= 1.0 {
            background_due -= 1.0;
            let roll = t.rng.unit();
            if roll < 0.03 && !t.recent.is_empty() {
                // A retry upstream: the same record again (same event_id).
                let k = t.rng.below(t.recent.len());
                if let Some(r) = t.recent.get(k).cloned() {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    out.push(r);
                }
            } else if roll < 0.07 && !t.recent.is_empty() {
                // The same customer again about the same thing: a new
                // event that must not count twice.
                let k = t.rng.below(t.recent.len());
                let again = t.recent.get(k).and_then(|(key, v)| {
                    let v: Value = serde_json::from_str(v).ok()?;
                    let s = v.get("subject")?;
                    Some((
                        key.clone(),
                        s.get("kind")?.as_str()?.to_owned(),
                        s.get("id")?.as_str()?.to_owned(),
                        v.get("issue")?.as_str()?.to_owned(),
                        v.get("customer_id")?.as_str()?.to_owned(),
                    ))
                });
                if let Some((key, kind, id, issue, customer)) = again {
                    let v = t.complaint(&kind, &id, &issue, at, Some(customer));
                    out.push((key, v.to_string()));
                }
            } else if roll < 0.095 {
                // Late: an agent files a call from minutes ago.
                let ago = chrono::Duration::milliseconds((t.rng.between(45.0, 360.0) * 1000.0) as i64);
                let (key, v) = t.noise(at - ago);
                stats.late.fetch_add(1, Ordering::Relaxed);
                out.push((key, v.to_string()));
            } else if roll < 0.099 {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                let (key, v) = t.noise(at);
                out.push(malformed(&mut t.rng, key, v));
            } else if roll < 0.099_15 {
                // An agent pulls the cord by hand.
                let (key, mut v) = t.noise(at);
                if let Some(o) = v.as_object_mut() {
                    o.insert("pull".into(), json!(true));
                    o.insert("channel".into(), json!("phone"));
                    o.insert("agent_id".into(), json!(format!("agent-{:03}", t.rng.below(240))));
                    o.insert("note".into(), json!("agent: several similar reports today, pulling"));
                }
                stats.manual.fetch_add(1, Ordering::Relaxed);
                out.push((key, v.to_string()));
            } else {
                let (key, v) = t.noise(at);
                out.push((key, v.to_string()));
            }
        }

        for (key, value) in out {
            send(&producer, topic, &key, &value, stop)?;
            stats.sent.fetch_add(1, Ordering::Relaxed);
            if value.starts_with('{') && value.contains("customer_id") {
                t.remember(&key, &value);
            }
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20).saturating_sub(now.elapsed()));
    }
    producer.flush(Duration::from_secs(5)).context("flushing complaints")?;
    Ok(())
}

/// A record that andon must reject to the DLQ, and why it is wrong.
fn malformed(rng: &mut Rng, key: String, mut v: Value) -> (String, String) {
    match rng.below(5) {
        0 => {
            // Cut off mid-way: invalid JSON.
            let s = v.to_string();
            let cut = s.len() / 2;
            (key, s.get(..cut).unwrap_or("{").to_owned())
        }
        1 => {
            if let Some(o) = v.as_object_mut() {
                o.insert("issue".into(), json!("Damaged In Transit!"));
            }
            (key, v.to_string())
        }
        2 => {
            if let Some(o) = v.as_object_mut() {
                o.remove("customer_id");
            }
            (key, v.to_string())
        }
        3 => {
            // A timestamp without an offset.
            if let Some(o) = v.as_object_mut() {
                o.insert("occurred_at".into(), json!(Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()));
            }
            (key, v.to_string())
        }
        _ => {
            // Keyed by another subject than its own.
            (format!("sku:{}", sku_id(rng.below(SKUS))), v.to_string())
        }
    }
}
