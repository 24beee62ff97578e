//! Configuration: a TOML file plus `ANDON__SECTION__KEY` environment
//! overrides (the `config` crate's layering), read into typed, validated
//! [`Settings`].
//!
//! [`Settings`] is the one description of the configuration. Each section's
//! `Default` holds its defaults (and nothing else does); serde reads the
//! sections (durations like `100ms`, `12h`, `7d`; numbers and booleans also as
//! the strings the environment gives); [`Settings::load`] validates them and
//! derives the engine's rules; and `andon check-config` serialises the result
//! with [`Settings::to_toml`]: a file that loads back to the same settings.
//!
//! Every mistake stops start-up with a [`ConfigError`] that names the field
//! (`rules.issue[1].threshold`, `owners.legal.sla`, ...). Secrets in
//! `[kafka.properties]` never reach a log line or `check-config`: the
//! serializer and `Debug` both redact them ([`is_secret_property`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{EngineConfig, RouteStep, Rule, RuleAction, Rules};
use crate::event::is_valid_issue;
use crate::time::Dur;
pub use crate::view::partition::Partitioner;

mod auth;
mod fields;
mod secrets;
#[cfg(test)]
mod tests;

pub use auth::{proxy_net, roles, AuthMode, AuthSettings, Role, TokenSettings};
pub use fields::format_duration;
pub use secrets::{is_secret_property, SECRET_PARTS, SENSITIVE_PROPERTIES};

/// A configuration mistake, naming the field it is about.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

// ---------------------------------------------------------------------------
// The sections, each with its defaults.

/// `[kafka]`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    /// `[kafka.properties]`, passed to librdkafka as they are. Nested
    /// tables become dotted names; numbers and booleans become strings.
    /// Serialised with secret values redacted.
    #[serde(deserialize_with = "fields::properties", serialize_with = "fields::redacted")]
    pub properties: BTreeMap<String, String>,
    /// The partitioner the producers of the inputs use: where `/subjects`
    /// looks a key up, and what the processor checks arriving inputs
    /// against (`andon_input_misplaced_total`).
    pub input_partitioner: Partitioner,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "andon".into(),
            properties: BTreeMap::new(),
            input_partitioner: Partitioner::default(),
        }
    }
}

/// `[topics]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub complaints: String,
    pub work_order_updates: String,
    pub delist_commands: String,
    pub work_orders: String,
    pub dlq: String,
    pub state: String,
    /// The cluster-wide read model (a compacted table topic, see `view`).
    pub view: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            complaints: "andon.complaints".into(),
            work_order_updates: "andon.work-order-updates".into(),
            delist_commands: "andon.delist-commands".into(),
            work_orders: "andon.work-orders".into(),
            dlq: "andon.dlq".into(),
            state: "andon.state".into(),
            view: "andon.view".into(),
        }
    }
}

impl Topics {
    /// All seven, inputs first.
    pub fn all(&self) -> [&str; 7] {
        [
            &self.complaints,
            &self.work_order_updates,
            &self.delist_commands,
            &self.work_orders,
            &self.dlq,
            &self.state,
            &self.view,
        ]
    }
}

/// Whether outputs go out in Kafka transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

impl Guarantee {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExactlyOnce => "exactly_once",
            Self::AtLeastOnce => "at_least_once",
        }
    }
}

/// `[processing]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Processing {
    pub guarantee: Guarantee,
    /// Longer than 0.
    #[serde(with = "fields::duration")]
    pub commit_interval: Duration,
    #[serde(with = "fields::duration")]
    pub max_task_idle: Duration,
    #[serde(deserialize_with = "fields::boolean")]
    pub create_topics: bool,
    /// Event time; the engine's copy is [`EngineConfig::grace`].
    #[serde(with = "fields::span")]
    pub grace: Dur,
    /// Event time; the engine's copy is [`EngineConfig::max_future_skew`].
    #[serde(with = "fields::span")]
    pub max_future_skew: Dur,
    /// 1 to 64 MiB.
    #[serde(deserialize_with = "fields::integer")]
    pub max_event_bytes: usize,
    /// A partition with input waiting and no progress for this long is
    /// stalled (not ready). Longer than 0.
    #[serde(with = "fields::duration")]
    pub stall_after: Duration,
    /// Partition-processing threads; 0 is one per core (see
    /// [`Processing::effective_threads`]).
    #[serde(deserialize_with = "fields::integer")]
    pub threads: usize,
}

impl Default for Processing {
    fn default() -> Self {
        Self {
            guarantee: Guarantee::ExactlyOnce,
            commit_interval: Duration::from_millis(100),
            max_task_idle: Duration::from_millis(100),
            create_topics: false,
            grace: Dur::from_secs(86_400),
            max_future_skew: Dur::from_secs(3600),
            max_event_bytes: 65536,
            stall_after: Duration::from_secs(60),
            threads: 0,
        }
    }
}

impl Processing {
    /// `threads`, with 0 meaning one per core (1 where the platform cannot
    /// say how many there are).
    pub fn effective_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    #[serde(deserialize_with = "fields::socket_addr")]
    pub listen: SocketAddr,
    /// The URL other members use to reach this one (`http://host:port`);
    /// empty: derived from `listen` ([`Http::advertise_url`]).
    pub advertise: String,
    /// PEM files: this member's certificate chain and its private key.
    /// Both set: HTTPS only; both empty: plain HTTP.
    pub tls_cert: String,
    pub tls_key: String,
    /// PEM file of the CA(s) that members' certificates are checked
    /// against when this member asks another over `https://`.
    pub tls_ca: String,
    /// Records `POST /complaints` and `POST /updates` may have on their
    /// way to the topics at once; beyond it they answer `503`.
    pub ingress_max_pending: usize,
    /// `[http.auth]`: who may do what.
    pub auth: AuthSettings,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
            advertise: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            ingress_max_pending: 10_000,
            auth: AuthSettings::default(),
        }
    }
}

impl Http {
    /// Whether HTTPS is served (`tls_cert` and `tls_key` set).
    pub fn tls(&self) -> bool {
        !self.tls_cert.trim().is_empty()
    }

    /// `https` with TLS on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls() {
            "https"
        } else {
            "http"
        }
    }

    /// `advertise`, or `http://<listen>` when it is empty. A wildcard
    /// `listen` (`0.0.0.0:9898`) derives a URL no other machine can use:
    /// set `advertise` there.
    pub fn advertise_url(&self) -> String {
        match self.advertise.trim() {
            "" => format!("{}://{}", self.scheme(), self.listen),
            url => url.trim_end_matches('/').to_owned(),
        }
    }
}

/// `[rules]`: the file's form of the rules; the engine's is [`Settings::engine`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSet {
    pub default: RuleSettings,
    /// In file order; the first whose `issues` names an issue wins. Once
    /// loaded, every field is set: what a rule leaves out it takes from
    /// `default`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issue: Vec<IssueRule>,
}

/// `[rules.default]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSettings {
    /// Distinct customers, 1 to 1,000,000.
    #[serde(deserialize_with = "fields::threshold")]
    pub threshold: u32,
    /// At least 1 s.
    #[serde(with = "fields::span")]
    pub window: Dur,
    pub action: RuleAction,
    /// Owners, each with an `sla` in `[owners]`; at least one.
    #[serde(deserialize_with = "fields::names")]
    pub route: Vec<String>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            threshold: 2,
            window: Dur::from_secs(7 * 86_400),
            action: RuleAction::Delist,
            route: vec!["product".into(), "operations".into(), "supply_chain".into()],
        }
    }
}

/// `[[rules.issue]]`: a rule for the issues it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRule {
    pub issues: Vec<String>,
    #[serde(default, deserialize_with = "fields::opt_threshold", skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    #[serde(default, with = "fields::opt_span", skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    #[serde(default, deserialize_with = "fields::opt_names", skip_serializing_if = "Option::is_none")]
    pub route: Option<Vec<String>>,
}

/// `[owners.<name>]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// How long a step of this owner may take before it is escalated.
    #[serde(with = "fields::span")]
    pub sla: Dur,
}

/// The owners there are without a file; `[owners]` overrides and adds.
fn default_owners() -> BTreeMap<String, Owner> {
    [("product", 24), ("operations", 12), ("supply_chain", 48)]
        .into_iter()
        .map(|(name, hours)| (name.to_owned(), Owner { sla: Dur::from_secs(hours * 3600) }))
        .collect()
}

/// What a file (or the environment) may hold: the sections, each defaulted.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    kafka: KafkaSettings,
    topics: Topics,
    processing: Processing,
    http: Http,
    rules: RuleSet,
    owners: BTreeMap<String, Owner>,
}

/// The validated configuration: what `check-config` prints and everything
/// else reads.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub processing: Processing,
    pub http: Http,
    pub rules: RuleSet,
    /// The default owners and those of `[owners]`.
    pub owners: BTreeMap<String, Owner>,
    /// The engine's form of `rules`, `owners` and the event-time bounds of
    /// `processing`, derived from them at load.
    #[serde(skip)]
    pub engine: Arc<EngineConfig>,
}

impl Settings {
    /// Loads `path` (if given) and the `ANDON__*` environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("ANDON__")).collect();
        Self::load_with_env(path, env)
    }

    /// As [`Settings::load`], with the environment passed in (tests).
    pub fn load_with_env(path: Option<&Path>, env: Vec<(String, String)>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new("--config", format!("{} does not exist", path.display())));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml).required(true));
        }
        let source: std::collections::HashMap<String, String> = env.into_iter().collect();
        // Every environment value stays a string: guessing types would turn a
        // group id or password "0123" into the number 123. The fields that
        // are numbers, booleans or lists read them from strings themselves.
        builder = builder.add_source(
            config::Environment::with_prefix("ANDON")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(false)
                .source(Some(source)),
        );
        let cfg = builder.build().map_err(|e| ConfigError::new(path_name(path), e.to_string()))?;
        let value: serde_json::Value =
            cfg.try_deserialize().map_err(|e| ConfigError::new(path_name(path), e.to_string()))?;
        Self::from_value(value)
    }

    /// Parses a TOML document (tests, and `check-config` of embedded files).
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::new("<toml>", e.to_string()))?;
        let value: serde_json::Value = cfg.try_deserialize().map_err(|e| ConfigError::new("<toml>", e.to_string()))?;
        Self::from_value(value)
    }

    fn from_value(value: serde_json::Value) -> Result<Settings, ConfigError> {
        let file: File = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde names a missing field only in the message: name it as a field.
            if let Some(name) = inner.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
                let field = if path == "." { name.to_owned() } else { format!("{path}.{name}") };
                return ConfigError::new(field, "is required");
            }
            // An unknown key is named in the message; the path is its section.
            ConfigError::new(if path == "." { "<root>".to_owned() } else { path }, inner)
        })?;
        Self::validate(file)
    }

    /// The effective settings as TOML, secrets redacted (`andon check-config`).
    /// Loading what it returns gives these settings again.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    fn validate(file: File) -> Result<Settings, ConfigError> {
        let File { kafka, topics, processing, http, mut rules, owners: given } = file;

        if kafka.brokers.trim().is_empty() {
            return Err(ConfigError::new("kafka.brokers", "must not be empty"));
        }
        if kafka.group_id.trim().is_empty() {
            return Err(ConfigError::new("kafka.group_id", "must not be empty"));
        }
        if kafka.properties.contains_key("transactional.id") {
            return Err(ConfigError::new(
                "kafka.properties.transactional.id",
                "andon derives its own transactional id, distinct per instance (one id shared by replicas \
                 would fence them against each other); remove it, and set group.instance.id for a stable one",
            ));
        }
        if kafka.properties.get("group.protocol").is_some_and(|v| v.trim().eq_ignore_ascii_case("consumer")) {
            // KIP-848: the broker runs the assignment and keeps the session
            // timeout and heartbeat interval (group configs
            // `consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`);
            // librdkafka refuses a client that sets them.
            for key in ["partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"] {
                if kafka.properties.contains_key(key) {
                    return Err(ConfigError::new(
                        format!("kafka.properties.{key}"),
                        "is not used with group.protocol = \"consumer\" (the broker sets it for the group); remove it",
                    ));
                }
            }
        }
        check_topics(&topics)?;

        let p = &processing;
        if p.commit_interval.is_zero() {
            return Err(ConfigError::new("processing.commit_interval", "must be longer than 0"));
        }
        if !(1..=64 * 1024 * 1024).contains(&p.max_event_bytes) {
            return Err(ConfigError::new("processing.max_event_bytes", "must be between 1 and 67108864"));
        }
        if p.stall_after.is_zero() {
            return Err(ConfigError::new("processing.stall_after", "must be longer than 0"));
        }
        if !http.advertise.trim().is_empty() {
            check_url(http.advertise.trim()).map_err(|m| ConfigError::new("http.advertise", m))?;
        }
        if http.ingress_max_pending == 0 {
            return Err(ConfigError::new("http.ingress_max_pending", "must be at least 1"));
        }
        match (http.tls_cert.trim().is_empty(), http.tls_key.trim().is_empty()) {
            (false, true) => return Err(ConfigError::new("http.tls_key", "must be set when http.tls_cert is")),
            (true, false) => return Err(ConfigError::new("http.tls_cert", "must be set when http.tls_key is")),
            _ => {}
        }
        http.auth.validate()?;

        let mut owners = default_owners();
        for (name, owner) in given {
            if owner.sla <= Dur::ZERO {
                return Err(ConfigError::new(format!("owners.{name}.sla"), "must be longer than 0"));
            }
            owners.insert(name, owner);
        }

        let default = rule("rules.default", &rules.default, &owners)?;
        let mut by_issue = Vec::new();
        for (i, r) in rules.issue.iter_mut().enumerate() {
            let field = format!("rules.issue[{i}]");
            if r.issues.is_empty() {
                return Err(ConfigError::new(format!("{field}.issues"), "must name at least one issue"));
            }
            if let Some(issue) = r.issues.iter().find(|i| !is_valid_issue(i)) {
                return Err(ConfigError::new(
                    format!("{field}.issues"),
                    format!("{issue:?} does not match ^[a-z0-9][a-z0-9_.-]{{0,63}}$"),
                ));
            }
            // What the rule leaves out comes from the default rule: fill it
            // in, so that the effective settings show it.
            let d = &rules.default;
            let resolved = RuleSettings {
                threshold: *r.threshold.get_or_insert(d.threshold),
                window: *r.window.get_or_insert(d.window),
                action: *r.action.get_or_insert(d.action),
                route: r.route.get_or_insert_with(|| d.route.clone()).clone(),
            };
            by_issue.push((r.issues.clone(), rule(&field, &resolved, &owners)?));
        }

        let engine = EngineConfig {
            rules: Rules { default, by_issue },
            grace: processing.grace,
            max_future_skew: processing.max_future_skew,
        };
        Ok(Settings { kafka, topics, processing, http, rules, owners, engine: Arc::new(engine) })
    }
}

fn path_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "<environment>".to_owned(), |p| p.display().to_string())
}

fn check_topics(t: &Topics) -> Result<(), ConfigError> {
    let topics = [
        ("topics.complaints", &t.complaints),
        ("topics.work_order_updates", &t.work_order_updates),
        ("topics.delist_commands", &t.delist_commands),
        ("topics.work_orders", &t.work_orders),
        ("topics.dlq", &t.dlq),
        ("topics.state", &t.state),
        ("topics.view", &t.view),
    ];
    for (i, (field, name)) in topics.iter().enumerate() {
        let legal = !name.is_empty()
            && name.len() <= 249
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !legal {
            return Err(ConfigError::new(*field, format!("{name:?} is not a legal Kafka topic name")));
        }
        if let Some((other, _)) = topics[..i].iter().find(|(_, n)| n == name) {
            return Err(ConfigError::new(*field, format!("{name:?} is already used by {other}")));
        }
    }
    Ok(())
}

/// An `http://` or `https://` URL naming a host (and perhaps a port and a path).
fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not an http(s) URL like http://andon-0.andon:9898 ({why})"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) =
        ["http://", "https://"].iter().find_map(|scheme| lower.starts_with(scheme).then(|| &url[scheme.len()..]))
    else {
        return bad("it must start with http:// or https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("no user information");
    }
    let (host, port) = match authority.strip_prefix('[') {
        // [IPv6]:port
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => (ip, port.strip_prefix(':')),
            _ => return bad("a bracketed host must be an IPv6 address"),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = authority.starts_with('[')
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }));
    if !host_ok {
        return bad("no valid host");
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return bad("the port must be a number from 1 to 65535");
        }
    }
    Ok(())
}

/// The engine's form of one rule, its route's owners looked up.
fn rule(field: &str, r: &RuleSettings, owners: &BTreeMap<String, Owner>) -> Result<Rule, ConfigError> {
    if r.window < Dur::SECOND {
        return Err(ConfigError::new(format!("{field}.window"), "must be at least 1s"));
    }
    if r.route.is_empty() {
        return Err(ConfigError::new(format!("{field}.route"), "must name at least one owner"));
    }
    let route = r
        .route
        .iter()
        .map(|name| match owners.get(name) {
            Some(o) => Ok(RouteStep { owner: name.clone(), sla: o.sla }),
            None => Err(ConfigError::new(
                format!("{field}.route"),
                format!("owner {name:?} has no sla (add [owners.{name}] sla = \"24h\")"),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(Rule { threshold: r.threshold, window: r.window, action: r.action, route })
}

impl KafkaSettings {
    /// The properties with secret values replaced.
    pub fn redacted_properties(&self) -> BTreeMap<String, String> {
        secrets::redact(&self.properties)
    }
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("properties", &self.redacted_properties())
            .field("input_partitioner", &self.input_partitioner)
            .finish()
    }
}
