//! Apache Kafka for the tests: real KRaft brokers, one JVM a node, started
//! by `scripts/kafka` (the same script a person uses) under
//! `target/kafka-tests/`, with this test process as their owner, so that
//! a test that dies leaves no broker behind (the script's watchdog kills
//! them). Dropped, a cluster is stopped and its directory removed; when
//! the test failed, the directory and its brokers' logs are kept and named.
//!
//! A test on Apache Kafka is `#[ignore]`d by a plain `cargo test` (it needs
//! Java and Maven) and run by `scripts/test` (`--include-ignored`). Without
//! Java it fails with the script's message; it never skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// A topic to create: its name, partition count and configs.
pub type TopicSpec<'a> = (&'a str, i32, &'a [(&'a str, &'a str)]);

/// A running Apache Kafka cluster of `scripts/kafka`.
pub struct Apache {
    dir: PathBuf,
    pub bootstrap: String,
    pub nodes: u32,
}

impl Apache {
    /// One node (broker and controller), replication factor 1.
    pub fn single() -> Apache {
        Apache::start(1, &[], false)
    }

    /// `nodes` combined nodes, broker properties `sets` (`key=value`),
    /// with `sasl` a SASL_SSL listener too (see `scripts/kafka`).
    pub fn start(nodes: u32, sets: &[&str], sasl: bool) -> Apache {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let parent = root.join("target/kafka-tests");
        std::fs::create_dir_all(&parent).expect("target/kafka-tests");
        let dir = parent.join(format!(
            "{}-{}-{}",
            std::thread::current().name().unwrap_or("test").replace("::", "-"),
            std::process::id(),
            chrono::Utc::now().format("%H%M%S%3f")
        ));
        let mut cmd = Command::new(root.join("scripts/kafka"));
        cmd.arg("start").arg("--nodes").arg(nodes.to_string()).arg("--dir").arg(&dir);
        cmd.arg("--owner").arg(std::process::id().to_string());
        if sasl {
            cmd.arg("--sasl");
        }
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        let out = cmd.stderr(Stdio::piped()).output().expect("run scripts/kafka");
        assert!(
            out.status.success(),
            "scripts/kafka start failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
        assert!(!bootstrap.is_empty(), "scripts/kafka printed no bootstrap");
        Apache { dir, bootstrap, nodes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A value of the cluster's `env` file (`KAFKA_SASL_BOOTSTRAP`, ...).
    pub fn env(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("env")).expect("env file");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
            .unwrap_or_else(|| panic!("{key} is not in {}/env", self.dir.display()))
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"))
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .expect("run scripts/kafka");
        assert!(
            out.status.success(),
            "scripts/kafka {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    /// `kill -9` node `n` (1-based).
    pub fn kill(&self, n: u32) {
        self.script(&["kill", self.dir_str(), &n.to_string()]);
    }

    /// SIGTERM node `n`, waiting for its exit.
    pub fn stop_node(&self, n: u32) {
        self.script(&["stop-node", self.dir_str(), &n.to_string()]);
    }

    /// Starts node `n` again, waiting until it is back in the cluster.
    pub fn restart(&self, n: u32) {
        self.script(&["restart", self.dir_str(), &n.to_string()]);
    }

    /// The node id of the active controller.
    pub fn controller(&self) -> u32 {
        let out = self.script(&["controller", self.dir_str()]);
        out.trim().parse().unwrap_or_else(|_| panic!("controller: {out:?}"))
    }

    /// An admin tool of the release (`topics`, `configs`, `acls`,
    /// `consumer-groups`, ...), its stdout.
    pub fn tool(&self, args: &[&str]) -> String {
        let mut all = vec!["tool", self.dir_str()];
        all.extend_from_slice(args);
        self.script(&all)
    }

    /// Creates topics with `partitions` each and the replication factor of
    /// the cluster (1 or 3), each with its configs.
    pub fn create_topics(&self, topics: &[TopicSpec<'_>]) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create().expect("admin client");
        let rf = if self.nodes >= 3 { 3 } else { 1 };
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions, configs)| {
                configs
                    .iter()
                    .fold(NewTopic::new(name, *partitions, TopicReplication::Fixed(rf)), |t, (k, v)| t.set(k, v))
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = rt.block_on(admin.create_topics(&new, &opts)).expect("create topics");
        for r in results {
            if let Err((topic, e)) = r {
                panic!("creating {topic}: {e}");
            }
        }
        // Every broker knows them (with their leaders) before a client asks.
        let names: Vec<&str> = topics.iter().map(|t| t.0).collect();
        wait_for_topics(&self.bootstrap, &names);
    }

    /// andon's seven topics, `partitions` each, with the configs that
    /// docs/configuration.md asks for (the state topic compacted, the view
    /// topic compacted and deleted after 30 days) plus `extra` per topic.
    pub fn create_andon_topics(&self, partitions: i32, extra: &BTreeMap<&str, Vec<(&str, &str)>>) {
        let topics = andon::config::Settings::from_toml("").expect("defaults").topics;
        let mut spec: Vec<(String, Vec<(&str, &str)>)> = Vec::new();
        for t in topics.all() {
            let mut configs: Vec<(&str, &str)> = Vec::new();
            if t == topics.state {
                configs.push(("cleanup.policy", "compact"));
            } else if t == topics.view {
                configs.push(("cleanup.policy", "compact,delete"));
                configs.push(("retention.ms", "2592000000"));
            }
            if let Some(e) = extra.get(t) {
                configs.extend(e.iter().copied());
            }
            spec.push((t.to_owned(), configs));
        }
        let borrowed: Vec<TopicSpec<'_>> = spec.iter().map(|(n, c)| (n.as_str(), partitions, c.as_slice())).collect();
        self.create_topics(&borrowed);
    }
}

/// Waits until every broker of `bootstrap` answers a metadata request
/// naming every topic with a leader for each partition. A topic just
/// created is not at once known to every broker, and asking one (as this
/// did, through whichever broker librdkafka picked) was not enough: a
/// member that asked a broker still behind found no topics and exited at
/// start ("topics missing"; the three-node chaos test in a full
/// scripts/test, 2026-12-07).
pub fn wait_for_topics(bootstrap: &str, names: &[&str]) {
    for broker in bootstrap.split(',') {
        wait_for_topics_on(broker, names);
    }
}

fn wait_for_topics_on(broker: &str, names: &[&str]) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        // A new client each time, knowing this broker alone: librdkafka
        // learns the others from the first answer and may ask them next.
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker).create().expect("consumer");
        let ready = c.fetch_metadata(None, Duration::from_secs(5)).is_ok_and(|md| {
            names.iter().all(|n| {
                md.topics().iter().any(|t| {
                    t.name() == *n
                        && t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
        });
        if ready {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "topics {names:?} not ready on {broker} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        let mut cmd = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"));
        cmd.arg("stop");
        if failed {
            cmd.arg("--keep");
        }
        let _ = cmd.arg(&self.dir).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if failed {
            eprintln!("Apache Kafka's data and logs kept in {}", self.dir.display());
        }
    }
}
