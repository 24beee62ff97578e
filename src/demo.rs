//! `andon demo`: the whole mechanism on one machine with nothing installed.
//!
//! Five parts, all in this process:
//!
//! - **Cluster**: librdkafka's MockCluster ([`DevCluster`]) with andon's
//!   topics, 3 partitions each. It stays on the main thread (it is not
//!   `Send`); its bootstrap servers are printed so that `kcat` or a second
//!   `andon run` can attach.
//! - **Processor**: `andon run` itself ([`crate::kafka::run`]) on a thread,
//!   a member of the consumer group like any other instance.
//! - **Traffic**: a generator of complaints, produced with a plain rdkafka
//!   producer the way the spec asks of upstream services (key = subject key,
//!   `partitioner = murmur2_random`). See `generator` for the mix.
//! - **Owners**: simulated product / operations / supply-chain owners who
//!   read `opened` work orders and walk them step by step with realistic
//!   delays (some slower than their SLA, so escalations show), ending in a
//!   verdict: mostly `defect_confirmed`, sometimes `no_defect`.
//! - **View**: what a downstream service would see: the output topics read
//!   from the beginning by a plain consumer, summarised every second (a
//!   full-screen frame on a terminal, a one-line summary every 5 s
//!   otherwise), and a final summary when the demo ends.
//!
//! **Rules.** When the settings carry the default rules and owners (no
//! `[rules]`/`[owners]` given), the demo swaps in rules whose timescales fit
//! a demo: escalations within a minute instead of a day. The default rule
//! is 3 distinct customers within 2 minutes rather than, say, 2 within 10
//! minutes, because the generator produces 60-100 complaints/s: at that rate
//! a threshold of 2 over 10 minutes would let background noise alone pull
//! hundreds of subjects a minute, even over the 250,000-SKU catalogue the
//! noise is spread across (mild Zipf skew; genuine defects favour the
//! head). With rules of your own (a `--config` file or
//! `ANDON__RULES__...`), those are used as they are; the traffic is then
//! not tuned to them.
//!
//! **Ground truth.** The generator knows which subjects are genuinely
//! defective (it makes their complaints cluster) and shares that with the
//! owners; a confirmed fix ends the incident, so the relisted subject goes
//! quiet. Owners confirm genuine defects (98 %), reject half of the pulls
//! that coincidental noise caused and most noise pulls on promotions, so
//! the bad-pull rate in the view (typically 5-15 %, above the 2 % target)
//! is an outcome of rules and traffic, not a fixed number.
//!
//! Ctrl-C (or `--duration`) stops the traffic and owners, then the
//! processor (which finishes its batch and leaves the group), reads what is
//! left on the output topics, prints the final summary and returns. The
//! summary ends with one `summary: key=value ...` line for scripts and tests.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::config::{Settings, Topics};
use crate::dev_cluster::DevCluster;
use crate::ops::Status;
use crate::time::Dur;

/// Partitions per topic of the embedded cluster.
const PARTITIONS: i32 = 3;

/// Rules for the demo, used when the settings carry the defaults.
const DEMO_RULES: &str = r#"
[processing]
commit_interval = "100ms"
grace = "1m"

[rules.default]
threshold = 3
window = "2m"
action = "delist"
route = ["product", "operations", "supply_chain"]

[[rules.issue]]
issues = ["safety_hazard"]
threshold = 1

[[rules.issue]]
issues = ["promo_price_mismatch"]
action = "notify"
route = ["operations"]

[owners.product]
sla = "20s"
[owners.operations]
sla = "15s"
[owners.supply_chain]
sla = "30s"
"#;

/// The bad-pull target of the spec.
const BAD_PULL_TARGET: f64 = 0.02;

/// Runs the demo until `shutdown` is set or `duration` has passed.
pub fn run(settings: Settings, duration: Option<Duration>, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = DevCluster::start(PARTITIONS, &settings.topics).context("starting the embedded cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    let (settings, demo_rules) = demo_settings(settings, &bootstrap)?;
    let settings = Arc::new(settings);
    let terminal = std::io::stdout().is_terminal();
    println!("andon demo: embedded cluster at {bootstrap} ({PARTITIONS} partitions per topic)");
    println!("{}", rules_line(&settings, demo_rules));
    if !terminal {
        println!("(stdout is not a terminal: a one-line summary every 5 s)");
    }
    let _ = std::io::stdout().flush();

    // Metrics, endpoints and the status page, as `andon run` serves them
    // (on the demo's own rules, so the issue labels fit).
    let (status, page) = crate::ops::serve(&settings)?;
    let page = format!("http://{page}/");
    println!("andon demo: status page {page} (metrics at {page}metrics)");

    // The processor, exactly as `andon run` runs it.
    let processor_stop = Arc::new(AtomicBool::new(false));
    let processor: JoinHandle<Result<(), crate::kafka::RunError>> = {
        let (settings, status, stop) = (settings.clone(), status.clone(), processor_stop.clone());
        std::thread::Builder::new()
            .name("processor".into())
            .spawn(move || crate::kafka::run(settings, status, &stop))
            .context("starting the processor thread")?
    };

    let truth = Arc::new(Truth::default());
    let stats = Arc::new(GenStats::default());
    let sim_stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (bootstrap, topic, truth, stats, stop) =
            (bootstrap.clone(), settings.topics.complaints.clone(), truth.clone(), stats.clone(), sim_stop.clone());
        std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || generator(&bootstrap, &topic, &truth, &stats, &stop))
            .context("starting the traffic thread")?
    };
    let owners = {
        let (bootstrap, topics, truth, stop) =
            (bootstrap.clone(), settings.topics.clone(), truth.clone(), sim_stop.clone());
        std::thread::Builder::new()
            .name("owners".into())
            .spawn(move || owners(&bootstrap, &topics, &truth, &stop))
            .context("starting the owners thread")?
    };

    // The view runs here, on the main thread, next to the cluster.
    let mut view = View::new(&bootstrap, &settings.kafka.group_id, &settings.topics, demo_rules)?;
    view.page = page;
    let mut rate = Rate::new();
    let refresh = if terminal { Duration::from_secs(1) } else { Duration::from_secs(5) };
    let mut next_frame = Instant::now() + Duration::from_millis(300);
    let mut early_end: Option<&str> = None;
    loop {
        if shutdown.load(Ordering::Relaxed) {
            break;
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if processor.is_finished() {
            early_end = Some("the processor stopped");
            break;
        }
        if generator.is_finished() || owners.is_finished() {
            early_end = Some("a simulation thread stopped");
            break;
        }
        view.poll(Duration::from_millis(50));
        let now = Instant::now();
        rate.sample(now, stats.sent.load(Ordering::Relaxed));
        if now >= next_frame {
            next_frame = now + refresh;
            let per_sec = rate.per_second();
            let mut out = std::io::stdout().lock();
            let written = if terminal {
                let frame = view.frame(started.elapsed(), per_sec, &stats, &status);
                write!(out, "\x1b[2J\x1b[H{frame}")
            } else {
                writeln!(out, "{}", view.line(started.elapsed(), per_sec, &stats))
            };
            // A closed stdout (`| head`) is no reason to stop the demo.
            let _ = written.and_then(|()| out.flush());
        }
    }

    // Stop in dependency order: no new inputs, then the processor (it
    // finishes its batch and leaves the group), then read what it wrote last.
    sim_stop.store(true, Ordering::SeqCst);
    let generator_result = join("traffic", generator);
    let owners_result = join("owners", owners);
    processor_stop.store(true, Ordering::SeqCst);
    let processor_result = match processor.join() {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(_) => Err(anyhow::anyhow!("the processor thread panicked")),
    };
    view.drain(Duration::from_secs(3));
    let elapsed = started.elapsed();
    let produced = stats.sent.load(Ordering::Relaxed);
    let avg = produced as f64 / elapsed.as_secs_f64().max(0.001);
    print!("{}", view.summary(elapsed, avg, &stats));
    let _ = std::io::stdout().flush();
    // Clients first: a client that outlives the cluster logs connection errors.
    drop(view);
    drop(cluster);

    processor_result.context("processor")?;
    generator_result.context("traffic generator")?;
    owners_result.context("simulated owners")?;
    if let Some(why) = early_end {
        anyhow::bail!("demo ended early: {why}");
    }
    Ok(())
}

/// The processor's settings: the embedded cluster's brokers, a short session
/// timeout (a member that vanishes is dropped quickly), and the demo rules
/// unless the user gave rules of their own. Returns whether the demo rules
/// are in use.
fn demo_settings(mut settings: Settings, bootstrap: &str) -> anyhow::Result<(Settings, bool)> {
    settings.kafka.brokers = bootstrap.to_owned();
    settings.kafka.properties.entry("session.timeout.ms".into()).or_insert_with(|| "6000".into());
    let defaults = Settings::from_toml("").context("default settings")?;
    let user_rules = *settings.engine != *defaults.engine || settings.owners != defaults.owners;
    if user_rules {
        return Ok((settings, false));
    }
    let demo = Settings::from_toml(DEMO_RULES).context("demo rules")?;
    settings.engine = demo.engine;
    settings.rules = demo.rules;
    settings.owners = demo.owners;
    settings.processing.grace = demo.processing.grace;
    if settings.processing.commit_interval == defaults.processing.commit_interval {
        settings.processing.commit_interval = demo.processing.commit_interval;
    }
    Ok((settings, true))
}

fn rules_line(settings: &Settings, demo_rules: bool) -> String {
    let rules = &settings.engine.rules;
    let d = |d: Dur| humantime::format_duration(Duration::from_secs(d.as_secs().max(0) as u64)).to_string();
    let mut s = format!(
        "rules ({}): {} customers within {}",
        if demo_rules { "demo" } else { "from your configuration" },
        rules.default.threshold,
        d(rules.default.window)
    );
    for (issues, r) in &rules.by_issue {
        let _ = write!(s, "; {}: {} in {}, {}", issues.join("/"), r.threshold, d(r.window), r.action.as_str());
    }
    let slas: Vec<String> = settings.owners.iter().map(|(o, owner)| format!("{o} {}", d(owner.sla))).collect();
    let _ = write!(s, "; SLAs {}", slas.join(", "));
    s
}

fn join(name: &str, h: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    match h.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the {name} thread panicked")),
    }
}

// ---------------------------------------------------------------------------
// Randomness: a small PRNG, so the demo needs no extra dependency.

/// SplitMix64: fast, good enough for traffic shapes.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Self {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self(t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [lo, hi).
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// One of `items` by weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }

    /// A rank in 0..n with Zipf-like popularity (exponent `s`): the
    /// continuous power law's inverse CDF, floored.
    fn zipf(&mut self, n: usize, s: f64) -> usize {
        let u = self.unit();
        let n_f = n as f64;
        let x = if (s - 1.0).abs() < 1e-9 {
            n_f.powf(u)
        } else {
            let e = 1.0 - s;
            ((n_f.powf(e) - 1.0) * u + 1.0).powf(1.0 / e)
        };
        (x as usize).clamp(1, n) - 1
    }

    /// Exponentially distributed, mean `mean` seconds.
    fn exp_secs(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

// ---------------------------------------------------------------------------
// Traffic.

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
struct Truth(Mutex<HashSet<String>>);

impl Truth {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panicked holder cannot leave a set of strings inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the generator sent, for the view.
#[derive(Default)]
struct GenStats {
    sent: AtomicU64,
    duplicates: AtomicU64,
    late: AtomicU64,
    malformed: AtomicU64,
    manual: AtomicU64,
    incidents: AtomicU64,
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
fn generator(bootstrap: &str, topic: &str, truth: &Truth, stats: &GenStats, stop: &AtomicBool) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // The Java client's partitioner, as the spec asks of producers.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .context("traffic producer")?;
    let mut t = Traffic { rng: Rng::seeded(1), seq: 0, recent: VecDeque::new() };
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

/// Sends one record; a full local queue waits for deliveries instead of
/// dropping the record.
fn send(producer: &BaseProducer, topic: &str, key: &str, value: &str, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                rec = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e).context("producing"),
        }
    }
}

// ---------------------------------------------------------------------------
// Owners.

/// One work order as the owners see it.
struct Job {
    subject_key: String,
    /// `<subject key>|<issue>`, to look up the ground truth.
    truth_key: String,
    owners: Vec<String>,
    /// The step the next update is for (1-based).
    step: u32,
    /// Decided when the work order opens: the verdict, and whether it comes
    /// at the first step (nothing found, close at once) or the last.
    confirm: bool,
    early: bool,
}

/// The simulated owners: read `opened` work orders and act on them step by
/// step with human delays, until `stop`.
fn owners(bootstrap: &str, topics: &Topics, truth: &Truth, stop: &AtomicBool) -> anyhow::Result<()> {
    let consumer = reader(bootstrap, "andon-demo-owners", &[topics.work_orders.as_str()])?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .context("owners' producer")?;
    let mut rng = Rng::seeded(2);
    let mut jobs: HashMap<String, Job> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    // (when, andon_id), soonest first.
    let mut agenda: BinaryHeap<std::cmp::Reverse<(Instant, String)>> = BinaryHeap::new();
    let run = rng.next_u64() as u32;
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let opened = m
                .payload()
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                .filter(|v| v.get("type").and_then(Value::as_str) == Some("opened"));
            if let Some(v) = opened {
                if let Some((andon_id, job)) = job_from(&v, truth, &mut rng) {
                    if seen.insert(andon_id.clone()) {
                        let delay = step_delay(&mut rng, job.owners.first().map_or("", String::as_str));
                        agenda.push(std::cmp::Reverse((Instant::now() + delay, andon_id.clone())));
                        jobs.insert(andon_id, job);
                    }
                }
            }
        }
        let now = Instant::now();
        while agenda.peek().is_some_and(|std::cmp::Reverse((t, _))| *t <= now) {
            let Some(std::cmp::Reverse((_, andon_id))) = agenda.pop() else {
                break;
            };
            let Some(job) = jobs.get_mut(&andon_id) else {
                continue;
            };
            let last = job.step as usize >= job.owners.len();
            let verdict = if !job.confirm && (job.early || last) {
                Some("no_defect")
            } else if job.confirm && last {
                Some("defect_confirmed")
            } else {
                None
            };
            sent += 1;
            let owner = job.owners.get(job.step as usize - 1).cloned().unwrap_or_default();
            let mut update = json!({
                // Unique and short, whatever the length of the andon_id.
                "update_id": format!("upd-{run:08x}-{sent}"),
                "andon_id": andon_id,
                "step": job.step,
                "actor": format!("{owner}/{}", rng.pick(&["alex", "sam", "kim", "noor", "jo", "ravi", "mei", "lena"])),
                "at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            if let (Some(verdict), Some(o)) = (verdict, update.as_object_mut()) {
                o.insert("verdict".into(), json!(verdict));
                o.insert(
                    "note".into(),
                    json!(if verdict == "no_defect" {
                        "inspected stock: nothing wrong"
                    } else {
                        "defect confirmed; stock fixed"
                    }),
                );
            }
            send(&producer, &topics.work_order_updates, &job.subject_key, &update.to_string(), stop)?;
            if verdict.is_some() {
                if job.confirm {
                    // The fix ends the incident: the relisted subject goes quiet.
                    truth.lock().remove(&job.truth_key);
                }
                jobs.remove(&andon_id);
            } else {
                job.step += 1;
                let next_owner = job.owners.get(job.step as usize - 1).cloned().unwrap_or_default();
                agenda.push(std::cmp::Reverse((now + step_delay(&mut rng, &next_owner), andon_id)));
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(5)).context("flushing updates")?;
    Ok(())
}

/// Reads an `opened` event into a job, deciding its verdict from the ground
/// truth; `None` when the event lacks what the owners need.
fn job_from(v: &Value, truth: &Truth, rng: &mut Rng) -> Option<(String, Job)> {
    let andon_id = v.get("andon_id")?.as_str()?.to_owned();
    let subject_key = andon_id.rsplit_once('/')?.0.to_owned();
    let issue = v.get("issue")?.as_str()?;
    let owners: Vec<String> =
        v.get("steps")?.as_array()?.iter().filter_map(|s| s.get("owner")?.as_str().map(str::to_owned)).collect();
    if owners.is_empty() {
        return None;
    }
    let truth_key = format!("{subject_key}|{issue}");
    let manual = v.get("trigger").and_then(Value::as_str) == Some("manual");
    let genuine = truth.lock().contains(&truth_key);
    // Owners are good but not perfect; noise that happened to cluster is
    // mostly found to be nothing, though two damaged parcels can be a real
    // carrier problem; agents' own calls are usually right; price
    // complaints about promotions are often a misread of the terms.
    let p_confirm = if genuine {
        0.98
    } else if manual {
        0.85
    } else if subject_key.starts_with("promotion:") {
        0.3
    } else {
        0.5
    };
    let confirm = rng.chance(p_confirm);
    let early = rng.chance(0.7);
    Some((andon_id, Job { subject_key, truth_key, owners, step: 1, confirm, early }))
}

/// How long an owner takes for a step: mostly seconds, sometimes much
/// longer than the SLA (so escalations happen).
fn step_delay(rng: &mut Rng, owner: &str) -> Duration {
    let secs = if rng.chance(0.14) {
        rng.between(20.0, 40.0)
    } else {
        match owner {
            "product" => rng.between(3.0, 12.0),
            "operations" => rng.between(2.0, 9.0),
            "supply_chain" => rng.between(4.0, 15.0),
            _ => rng.between(3.0, 12.0),
        }
    };
    Duration::from_secs_f64(secs)
}

// ---------------------------------------------------------------------------
// The view.

/// A plain consumer over every partition of `topics` from the beginning,
/// outside any consumer group's assignment.
fn reader(bootstrap: &str, group: &str, topics: &[&str]) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("consumer")?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(10)).context("reading topic metadata")?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let partitions = md.topics().iter().find(|t| t.name() == *topic).map_or(0, |t| t.partitions().len());
        anyhow::ensure!(partitions > 0, "topic {topic} not found");
        for p in 0..partitions as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning).context("assigning")?;
        }
    }
    consumer.assign(&tpl).context("assigning")?;
    Ok(consumer)
}

/// An open work order as the view shows it.
struct OpenAndon {
    trigger: String,
    delisted: bool,
    /// (owner, sla) per step; the SLA from the differences of the planned due times.
    steps: Vec<(String, Option<chrono::Duration>)>,
    step: u32,
    due: Option<DateTime<Utc>>,
    escalated: bool,
}

struct View {
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
    open: BTreeMap<String, OpenAndon>,
}

fn ts(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    let s = v.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("?")
}

impl View {
    fn new(bootstrap: &str, group: &str, topics: &Topics, demo_rules: bool) -> anyhow::Result<Self> {
        let consumer = reader(
            bootstrap,
            "andon-demo-view",
            &[topics.delist_commands.as_str(), topics.work_orders.as_str(), topics.dlq.as_str()],
        )?;
        Ok(Self {
            consumer,
            topics: topics.clone(),
            bootstrap: bootstrap.to_owned(),
            page: String::new(),
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
        })
    }

    /// Reads what has arrived for up to `budget`.
    fn poll(&mut self, budget: Duration) {
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
                Some(Err(e)) => tracing::debug!(error = %e, "view consumer"),
                None => {}
            }
            if Instant::now() >= until {
                return;
            }
        }
    }

    /// Reads until nothing new has come for a while (or `max` has passed).
    fn drain(&mut self, max: Duration) {
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
        // view must never fall over on what it reads.
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
                self.open.insert(
                    andon_id.to_owned(),
                    OpenAndon { trigger, delisted, steps, step: 1, due, escalated: false },
                );
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
    fn frame(&self, elapsed: Duration, per_sec: f64, stats: &GenStats, status: &Status) -> String {
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
        let mut rows: Vec<(&String, &OpenAndon)> = self.open.iter().collect();
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
    fn line(&self, elapsed: Duration, per_sec: f64, stats: &GenStats) -> String {
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
    fn summary(&self, elapsed: Duration, avg: f64, stats: &GenStats) -> String {
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
struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn new() -> Self {
        Self { samples: VecDeque::new() }
    }

    fn sample(&mut self, now: Instant, count: u64) {
        self.samples.push_back((now, count));
        while self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(3)) {
            self.samples.pop_front();
        }
    }

    fn per_second(&self) -> f64 {
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
    use super::*;

    #[test]
    fn demo_rules_parse_and_replace_only_defaults() {
        let s = Settings::from_toml("").expect("defaults");
        let (d, demo) = demo_settings(s, "127.0.0.1:1").expect("demo settings");
        assert!(demo);
        assert_eq!(d.engine.rules.default.threshold, 3);
        assert_eq!(d.kafka.brokers, "127.0.0.1:1");
        let own = Settings::from_toml("[rules.default]\nthreshold = 7\n").expect("own rules");
        let (d, demo) = demo_settings(own, "x:1").expect("demo settings");
        assert!(!demo);
        assert_eq!(d.engine.rules.default.threshold, 7);
    }

    #[test]
    fn zipf_stays_in_range_and_favours_the_head() {
        let mut rng = Rng(7);
        let mut head = 0;
        for _ in 0..10_000 {
            let r = rng.zipf(1000, 1.0);
            assert!(r < 1000);
            if r < 10 {
                head += 1;
            }
        }
        assert!(head > 2000, "{head}");
    }

    #[test]
    fn view_survives_odd_records() {
        let consumer = ClientConfig::new()
            .set("group.id", "t")
            .create::<BaseConsumer>()
            .expect("a consumer needs no broker to be created");
        let topics = Settings::from_toml("").expect("defaults").topics;
        let mut v = View {
            consumer,
            topics: topics.clone(),
            bootstrap: String::new(),
            page: String::new(),
            group: String::new(),
            demo_rules: true,
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
        };
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
