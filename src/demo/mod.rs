//! `andon demo`: the whole mechanism on one machine with nothing installed.
//! This file starts the parts, runs the screen's loop and stops them in
//! order; each part has its own file.
//!
//! Five parts, all in this process:
//!
//! - **Cluster**: librdkafka's MockCluster ([`DevCluster`]) with andon's
//!   topics, 3 partitions each. It stays on the main thread (it is not
//!   `Send`); its bootstrap servers are printed so that `kcat` or a second
//!   `andon run` can attach.
//! - **Processor**: `andon run` itself ([`crate::kafka::run`]) on a thread,
//!   a member of the consumer group like any other instance.
//! - **Traffic** ([`traffic`]): a generator of complaints, produced with a
//!   plain rdkafka producer the way producers of the inputs must
//!   (docs/records.md#what-producers-of-the-inputs-must-do: key = subject
//!   key, `partitioner = murmur2_random`).
//! - **Owners** ([`owners`]): simulated product / operations / supply-chain
//!   owners who read `opened` work orders and walk them step by step with
//!   realistic delays (some slower than their SLA, so escalations show),
//!   ending in a verdict: mostly `defect_confirmed`, sometimes `no_defect`.
//! - **Screen** ([`screen`]): what a downstream service would see: the
//!   output topics read from the beginning by a plain consumer, summarised
//!   every second (a full-screen frame on a terminal, a one-line summary
//!   every 5 s otherwise), and a final summary when the demo ends.
//!
//! Their randomness comes from [`rng`].
//!
//! **Rules.** When the settings carry the default rules and owners (no
//! `[rules]`/`[owners]` given), the demo swaps in rules whose timescales fit
//! a demo (`rules.toml` beside this file): escalations within a minute
//! instead of a day. The default rule is 3 distinct customers within 2
//! minutes rather than, say, 2 within 10 minutes, because the generator
//! produces 60-100 complaints/s: at that rate a threshold of 2 over 10
//! minutes would let background noise alone pull hundreds of subjects a
//! minute, even over the 250,000-SKU catalogue the noise is spread across
//! (mild Zipf skew; genuine defects favour the head). With rules of your
//! own (a `--config` file or `ANDON__RULES__...`), those are used as they
//! are; the traffic is then not tuned to them.
//!
//! **Ground truth.** The generator knows which subjects are genuinely
//! defective (it makes their complaints cluster) and shares that with the
//! owners; a confirmed fix ends the incident, so the relisted subject goes
//! quiet. Owners confirm genuine defects (98 %), reject half of the pulls
//! that coincidental noise caused and most noise pulls on promotions, so
//! the bad-pull rate on the screen (typically 5-15 %, above the 2 % target)
//! is an outcome of rules and traffic, not a fixed number.
//!
//! Ctrl-C (or `--duration`) stops the traffic and owners, then the
//! processor (which finishes its batch and leaves the group), reads what is
//! left on the output topics, prints the final summary and returns. The
//! summary ends with one `summary: key=value ...` line for scripts and tests.

mod owners;
mod rng;
mod screen;
mod traffic;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{AuthMode, Role, Settings, TokenSettings};
use crate::dev_cluster::DevCluster;
use crate::time::Dur;
use screen::{Rate, Screen};
use traffic::{GenStats, Truth};

/// Partitions per topic of the embedded cluster.
const PARTITIONS: i32 = 3;

/// Rules for the demo, used when the settings carry the defaults.
const DEMO_RULES: &str = include_str!("rules.toml");

/// Runs the demo until `shutdown` is set or `duration` has passed.
pub fn run(settings: Settings, duration: Option<Duration>, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = DevCluster::start(PARTITIONS, &settings.topics).context("starting the embedded cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    let (mut settings, demo_rules) = demo_settings(settings, &bootstrap)?;
    let token = demo_token(&mut settings)?;
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
    let page = format!("{}://{page}/", settings.http.scheme());
    match &token {
        Some(token) => {
            // The token goes in the page's #fragment: the browser keeps it
            // and never sends the fragment to a server or a log.
            println!("andon demo: status page {page}#token={token} (metrics at {page}metrics)");
            println!("andon demo: the agent page {page}agent#token={token}");
            println!("andon demo: HTTP needs a token; this run's, with every role: {token}");
            println!("andon demo:   curl -H 'Authorization: Bearer {token}' {page}andons");
        }
        None => println!("andon demo: status page {page} (metrics at {page}metrics, the agent page at {page}agent)"),
    }

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
            .spawn(move || traffic::generator(&bootstrap, &topic, &truth, &stats, &stop))
            .context("starting the traffic thread")?
    };
    let owners = {
        let (bootstrap, topics, truth, stop) =
            (bootstrap.clone(), settings.topics.clone(), truth.clone(), sim_stop.clone());
        std::thread::Builder::new()
            .name("owners".into())
            .spawn(move || owners::owners(&bootstrap, &topics, &truth, &stop))
            .context("starting the owners thread")?
    };

    // The screen runs here, on the main thread, next to the cluster.
    let mut screen = Screen::new(&bootstrap, &settings.kafka.group_id, &settings.topics, demo_rules, page)?;
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
        screen.poll(Duration::from_millis(50));
        let now = Instant::now();
        rate.sample(now, stats.sent.load(Ordering::Relaxed));
        if now >= next_frame {
            next_frame = now + refresh;
            let per_sec = rate.per_second();
            let mut out = std::io::stdout().lock();
            let written = if terminal {
                let frame = screen.frame(started.elapsed(), per_sec, &stats, &status);
                write!(out, "\x1b[2J\x1b[H{frame}")
            } else {
                writeln!(out, "{}", screen.line(started.elapsed(), per_sec, &stats))
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
    screen.drain(Duration::from_secs(3));
    let elapsed = started.elapsed();
    let produced = stats.sent.load(Ordering::Relaxed);
    let avg = produced as f64 / elapsed.as_secs_f64().max(0.001);
    print!("{}", screen.summary(elapsed, avg, &stats));
    let _ = std::io::stdout().flush();
    // Clients first: a client that outlives the cluster logs connection errors.
    drop(screen);
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
    // These four go together: `engine` (what the engine runs on) is derived
    // at load from `rules`, `owners` and `processing.grace` (what the
    // settings say and the rules line prints); swapping some without the
    // others would run one set of rules and show another.
    settings.engine = demo.engine;
    settings.rules = demo.rules;
    settings.owners = demo.owners;
    settings.processing.grace = demo.processing.grace;
    if settings.processing.commit_interval == defaults.processing.commit_interval {
        settings.processing.commit_interval = demo.processing.commit_interval;
    }
    Ok((settings, true))
}

/// With `http.auth.mode = "tokens"` (the default) and no token of the
/// user's, a random token for this run with every role, its hash set in
/// `settings`: authentication stays on, and the user is handed the key.
fn demo_token(settings: &mut Settings) -> anyhow::Result<Option<String>> {
    let auth = &mut settings.http.auth;
    if auth.mode != AuthMode::Tokens || !auth.tokens.is_empty() {
        return Ok(None);
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the demo's token: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let roles = Role::ALL.iter().map(|r| r.as_str().to_owned()).collect();
    auth.tokens.insert("demo".into(), TokenSettings { sha256: crate::ops::auth::sha256_hex(&token), roles });
    Ok(Some(token))
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

/// A producer as docs/records.md asks of upstream services: the Java
/// client's partitioner (records keyed by subject land where andon expects
/// them), idempotent.
fn producer(bootstrap: &str) -> anyhow::Result<BaseProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .context("producer")
}

/// Sends one record; a full local queue waits for deliveries instead of
/// dropping the record.
pub(super) fn send(
    producer: &BaseProducer,
    topic: &str,
    key: &str,
    value: &str,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
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

/// A plain consumer over every partition of `topics` from the beginning,
/// outside any consumer group's assignment.
pub(super) fn reader(bootstrap: &str, group: &str, topics: &[&str]) -> anyhow::Result<BaseConsumer> {
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
    fn the_demo_makes_a_token_unless_the_user_chose() {
        let mut s = Settings::from_toml("").expect("defaults");
        let token = demo_token(&mut s).expect("random").expect("a token");
        let auth = crate::ops::auth::Auth::from_settings(&s.http.auth).expect("auth");
        let mut h = axum::http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().expect("header"));
        let caller = auth.authenticate(&h, None).expect("the printed token works");
        assert!(Role::ALL.iter().all(|r| caller.has(*r)));
        let mut none = Settings::from_toml("[http.auth]\nmode = \"none\"\n").expect("none");
        assert_eq!(demo_token(&mut none).expect("no token needed"), None);
    }
}
