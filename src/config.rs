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
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self { brokers: "127.0.0.1:9092".into(), group_id: "andon".into(), properties: BTreeMap::new() }
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
        }
    }
}

impl Topics {
    /// All six, inputs first.
    pub fn all(&self) -> [&str; 6] {
        [&self.complaints, &self.work_order_updates, &self.delist_commands, &self.work_orders, &self.dlq, &self.state]
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
}

impl Default for Http {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9898)), advertise: String::new() }
    }
}

impl Http {
    /// `advertise`, or `http://<listen>` when it is empty. A wildcard
    /// `listen` (`0.0.0.0:9898`) derives a URL no other machine can use:
    /// set `advertise` there.
    pub fn advertise_url(&self) -> String {
        match self.advertise.trim() {
            "" => format!("http://{}", self.listen),
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

/// The properties librdkafka itself treats as sensitive (flagged
/// `_RK_SENSITIVE` in its `rdkafka_conf.c`, librdkafka 2.12): it never
/// prints their values, nor do we.
pub const SENSITIVE_PROPERTIES: [&str; 13] = [
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "ssl.ca.pem",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "ssl_key",
];

/// Parts of a name that mark a value as secret whatever the property (later
/// librdkafka versions, plugins, Java-style names): when in doubt, redact.
const SECRET_PARTS: [&str; 9] =
    ["password", "passphrase", "secret", "token", "credential", "private", "jaas", "keystore", "keytab"];

/// Property names whose values must never be printed: librdkafka's own
/// [`SENSITIVE_PROPERTIES`], and any name with a [`SECRET_PARTS`] part, a
/// key (`ssl.key.*`, `*.key`) or PEM material (`*.pem`).
pub fn is_secret_property(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    SENSITIVE_PROPERTIES.contains(&n.as_str())
        || SECRET_PARTS.iter().any(|part| n.contains(part))
        || n.starts_with("ssl.key.")
        || n.ends_with(".key")
        || n.ends_with(".pem")
}

impl KafkaSettings {
    /// The properties with secret values replaced.
    pub fn redacted_properties(&self) -> BTreeMap<String, String> {
        fields::redact(&self.properties)
    }
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("properties", &self.redacted_properties())
            .finish()
    }
}

/// How fields are read and written: durations as `100ms`/`12h`/`7d`,
/// numbers and booleans also from the strings the environment gives, and
/// the values of secret properties never written.
mod fields {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::net::SocketAddr;
    use std::time::Duration;

    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    use super::is_secret_property;
    use crate::time::Dur;

    /// Longer than any window or SLA needs; `i64` nanoseconds reach 292 years.
    const MAX_SPAN: Duration = Duration::from_secs(100 * 365 * 86_400);

    const REDACTED: &str = "***redacted***";

    fn parse_duration(s: &str) -> Result<Duration, String> {
        humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?} is not a duration like \"100ms\", \"12h\" or \"7d\" ({e})"))
    }

    /// The largest unit that says it exactly: `7d`, `36h`, `100ms`, `0s`.
    pub fn format_duration(d: Duration) -> String {
        const UNITS: [(&str, u128); 7] = [
            ("d", 86_400_000_000_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ];
        let n = d.as_nanos();
        if n == 0 {
            return "0s".to_owned();
        }
        let (unit, size) = UNITS.iter().find(|(_, size)| n % size == 0).copied().unwrap_or(("ns", 1));
        format!("{}{unit}", n / size)
    }

    /// The text of a duration, with an error that says what is expected.
    fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"100ms\", \"12h\" or \"7d\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
                Ok(s.to_owned())
            }
        }
        d.deserialize_str(V)
    }

    /// A wall-clock duration (`std::time::Duration`).
    pub mod duration {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format_duration(*d))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            parse_duration(&duration_text(d)?).map_err(de::Error::custom)
        }
    }

    /// A span of event time, at most 100 years.
    pub mod span {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Dur, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format_duration(d.to_std()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
            let text = duration_text(d)?;
            let std = parse_duration(&text).map_err(de::Error::custom)?;
            match Dur::from_std(std) {
                Some(span) if std <= MAX_SPAN => Ok(span),
                _ => Err(de::Error::custom(format!("{text:?} is longer than 100 years"))),
            }
        }
    }

    pub mod opt_span {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Dur>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => span::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
            span::deserialize(d).map(Some)
        }
    }

    struct IntVisitor;

    impl Visitor<'_> for IntVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
            s.trim().parse().map_err(|_| E::custom(format!("{s:?} is not an integer")))
        }
    }

    /// An integer, or a string holding one (the environment's form).
    pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
        let v = d.deserialize_any(IntVisitor)?;
        T::try_from(v).map_err(|_| de::Error::custom(format!("{v} is out of range")))
    }

    /// Distinct customers: 1 to 1,000,000.
    pub fn threshold<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let t: i64 = integer(d)?;
        match u32::try_from(t) {
            Ok(t) if (1..=1_000_000).contains(&t) => Ok(t),
            _ => Err(de::Error::custom(format!("{t} is not between 1 and 1000000"))),
        }
    }

    pub fn opt_threshold<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        threshold(d).map(Some)
    }

    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom(format!("{s:?} is not true or false"))),
            }
        }
    }

    /// `true`/`false`, or a string holding one.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(BoolVisitor)
    }

    /// A list of names, or a string of them separated by commas (the
    /// environment's form: `ANDON__RULES__DEFAULT__ROUTE=product,operations`).
    pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Names {
            List(Vec<String>),
            Text(String),
        }
        match Names::deserialize(d) {
            Ok(Names::List(names)) => Ok(names),
            Ok(Names::Text(text)) => {
                Ok(text.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
            }
            Err(_) => Err(de::Error::custom("expected a list of names like [\"product\", \"operations\"]")),
        }
    }

    pub fn opt_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        names(d).map(Some)
    }

    /// `host:port`, an IP address and a port.
    pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.trim().parse().map_err(|_| de::Error::custom(format!("{s:?} is not an address like 127.0.0.1:9898")))
    }

    /// One value of `[kafka.properties]`: a scalar, or a table of more
    /// (`ssl.key.location = ...` unquoted is a nested table in TOML).
    enum Property {
        Value(String),
        Table(BTreeMap<String, Property>),
    }

    impl<'de> Deserialize<'de> for Property {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Property;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string, number or boolean")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Property, E> {
                    Ok(Property::Value(s.to_owned()))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Property, E> {
                    Ok(Property::Value(v.to_string()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Property, E> {
                    Ok(Property::Value(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Property, E> {
                    Ok(Property::Value(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Property, E> {
                    Ok(Property::Value(v.to_string()))
                }
                fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Property, A::Error> {
                    let mut table = BTreeMap::new();
                    while let Some((k, v)) = map.next_entry::<String, Property>()? {
                        table.insert(k, v);
                    }
                    Ok(Property::Table(table))
                }
            }
            d.deserialize_any(V)
        }
    }

    fn flatten(prefix: &str, table: BTreeMap<String, Property>, out: &mut BTreeMap<String, String>) {
        for (k, v) in table {
            let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
            match v {
                Property::Value(v) => {
                    out.insert(name, v);
                }
                Property::Table(t) => flatten(&name, t, out),
            }
        }
    }

    pub fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        let mut out = BTreeMap::new();
        flatten("", BTreeMap::<String, Property>::deserialize(d)?, &mut out);
        Ok(out)
    }

    pub fn redact(properties: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        properties
            .iter()
            .map(|(k, v)| (k.clone(), if is_secret_property(k) { REDACTED.to_owned() } else { v.clone() }))
            .collect()
    }

    pub fn redacted<S: Serializer>(properties: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
        redact(properties).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(toml: &str) -> ConfigError {
        Settings::from_toml(toml).expect_err(toml)
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::from_toml("").expect("defaults");
        assert_eq!(s.topics.complaints, "andon.complaints");
        assert_eq!(s.engine.rules.default.threshold, 2);
        assert_eq!(s.engine.rules.default.route.len(), 3);
        assert_eq!(s.processing.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(s.engine.grace, Dur::from_secs(86_400));
    }

    #[test]
    fn issue_rules_inherit_from_default_and_first_match_wins() {
        let s = Settings::from_toml(
            r#"
            [rules.default]
            threshold = 3
            window = "2d"
            [[rules.issue]]
            issues = ["safety_hazard"]
            threshold = 1
            [[rules.issue]]
            issues = ["safety_hazard", "promo_price_mismatch"]
            action = "notify"
            route = ["operations"]
            "#,
        )
        .expect("valid");
        let r = s.engine.rules.for_issue("safety_hazard");
        assert_eq!((r.threshold, r.window, r.action), (1, Dur::from_secs(2 * 86_400), RuleAction::Delist));
        let r = s.engine.rules.for_issue("promo_price_mismatch");
        assert_eq!((r.threshold, r.action, r.route.len()), (3, RuleAction::Notify, 1));
        assert_eq!(s.engine.rules.for_issue("anything_else").threshold, 3);
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            ("[processing]\ngrace = \"soon\"", "processing.grace"),
            ("[processing]\ntypo = 1", "processing"),
            ("[rules.default]\nthreshold = 0", "rules.default.threshold"),
            ("[[rules.issue]]\nissues = [\"x\"]\nthreshold = -1", "rules.issue[0].threshold"),
            ("[[rules.issue]]\nissues = [\"x\"]\nroute = [\"legal\"]", "rules.issue[0].route"),
            ("[owners.legal]\n", "owners.legal.sla"),
            ("[processing]\nguarantee = \"maybe\"", "processing.guarantee"),
            ("[http]\nlisten = \"nowhere\"", "http.listen"),
            ("[topics]\ndlq = \"andon.complaints\"", "topics.dlq"),
            ("[rules.default]\nwindow = \"10ms\"", "rules.default.window"),
            ("[[rules.issue]]\nissues = [\"Bad Issue\"]", "rules.issue[0].issues"),
            ("[rules.default]\naction = \"explode\"", "rules.default.action"),
            ("[rules.default]\nroute = []", "rules.default.route"),
        ];
        for (toml, field) in cases {
            let e = err(toml);
            assert!(e.to_string().contains(field), "{toml:?}: {e} should name {field}");
        }
    }

    #[test]
    fn new_keys_have_their_defaults_and_limits() {
        let s = Settings::from_toml("").expect("defaults");
        assert_eq!(s.processing.stall_after, Duration::from_secs(60));
        assert_eq!(s.processing.threads, 0);
        assert!(s.processing.effective_threads() >= 1);
        assert_eq!(s.http.advertise, "");
        assert_eq!(s.http.advertise_url(), "http://127.0.0.1:9898");

        let s = Settings::load_with_env(
            None,
            vec![
                ("ANDON__PROCESSING__STALL_AFTER".into(), "5m".into()),
                ("ANDON__PROCESSING__THREADS".into(), "3".into()),
                ("ANDON__HTTP__ADVERTISE".into(), "http://andon-1.andon.prod.svc:9898/".into()),
            ],
        )
        .expect("valid");
        assert_eq!(s.processing.stall_after, Duration::from_secs(300));
        assert_eq!(s.processing.effective_threads(), 3);
        assert_eq!(s.http.advertise_url(), "http://andon-1.andon.prod.svc:9898");

        for url in ["http://10.0.0.7:9898", "https://andon.example.com", "http://[::1]:9898/x", "HTTP://Host-1:1"] {
            let s = Settings::from_toml(&format!("[http]\nadvertise = {url:?}")).expect(url);
            assert_eq!(s.http.advertise, url);
        }
        let cases = [
            ("[processing]\nstall_after = \"0s\"", "processing.stall_after"),
            ("[processing]\nstall_after = \"soon\"", "processing.stall_after"),
            ("[processing]\nthreads = -1", "processing.threads"),
            ("[processing]\nthreads = \"many\"", "processing.threads"),
            ("[http]\nadvertise = \"andon-1:9898\"", "http.advertise"),
            ("[http]\nadvertise = \"ftp://andon-1:9898\"", "http.advertise"),
            ("[http]\nadvertise = \"http://\"", "http.advertise"),
            ("[http]\nadvertise = \"http://:9898\"", "http.advertise"),
            ("[http]\nadvertise = \"http://andon 1:9898\"", "http.advertise"),
            ("[http]\nadvertise = \"http://andon-1:0\"", "http.advertise"),
            ("[http]\nadvertise = \"http://andon-1:99999\"", "http.advertise"),
            ("[http]\nadvertise = \"http://user@andon-1\"", "http.advertise"),
            ("[http]\nadvertise = \"http://[nope]:1\"", "http.advertise"),
        ];
        for (toml, field) in cases {
            let e = err(toml);
            assert!(e.to_string().contains(field), "{toml:?}: {e} should name {field}");
        }
    }

    #[test]
    fn a_user_set_transactional_id_is_refused() {
        let e = err("[kafka.properties]\n\"transactional.id\" = \"andon-1\"");
        assert_eq!(e.field, "kafka.properties.transactional.id");
        assert!(e.message.contains("derives its own"), "{e}");
        let e = Settings::load_with_env(None, vec![("ANDON__KAFKA__PROPERTIES__TRANSACTIONAL.ID".into(), "x".into())])
            .expect_err("from the environment too");
        assert_eq!(e.field, "kafka.properties.transactional.id");
        // Static membership is how an instance keeps a stable identity.
        assert!(Settings::from_toml("[kafka.properties]\n\"group.instance.id\" = \"andon-0\"").is_ok());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("[processing]\ncomit_interval = \"1s\"");
        assert!(e.to_string().contains("comit_interval"), "{e}");
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "[processing]\ngrace = \"1h\"\n[rules.default]\nthreshold = 5\n").expect("write");
        let s = Settings::load_with_env(
            Some(&path),
            vec![
                ("ANDON__PROCESSING__GRACE".into(), "2h".into()),
                ("ANDON__RULES__DEFAULT__THRESHOLD".into(), "4".into()),
                ("ANDON__PROCESSING__CREATE_TOPICS".into(), "true".into()),
                ("ANDON__RULES__DEFAULT__ROUTE".into(), "product,operations".into()),
            ],
        )
        .expect("valid");
        assert_eq!(s.engine.grace, Dur::from_secs(7200));
        assert_eq!(s.engine.rules.default.threshold, 4);
        assert!(s.processing.create_topics);
        assert_eq!(s.engine.rules.default.route.len(), 2);
        let e = Settings::load_with_env(Some(&path), vec![("ANDON__PROCESSING__GRACE".into(), "x".into())])
            .expect_err("bad env");
        assert!(e.to_string().contains("processing.grace"), "{e}");
    }

    #[test]
    fn environment_values_stay_strings_unless_the_field_is_a_number() {
        let s = Settings::load_with_env(
            None,
            vec![
                ("ANDON__KAFKA__GROUP_ID".into(), "0123".into()),
                ("ANDON__KAFKA__BROKERS".into(), "true".into()),
                ("ANDON__KAFKA__PROPERTIES__SASL.PASSWORD".into(), "007".into()),
                ("ANDON__KAFKA__PROPERTIES__SASL.USERNAME".into(), "1e3".into()),
                ("ANDON__PROCESSING__MAX_EVENT_BYTES".into(), "4096".into()),
                ("ANDON__RULES__DEFAULT__THRESHOLD".into(), " 4 ".into()),
            ],
        )
        .expect("valid");
        assert_eq!(s.kafka.group_id, "0123");
        assert_eq!(s.kafka.brokers, "true");
        assert_eq!(s.kafka.properties.get("sasl.password").map(String::as_str), Some("007"));
        assert_eq!(s.kafka.properties.get("sasl.username").map(String::as_str), Some("1e3"));
        assert_eq!(s.processing.max_event_bytes, 4096);
        assert_eq!(s.engine.rules.default.threshold, 4);
        let e = Settings::load_with_env(None, vec![("ANDON__PROCESSING__MAX_EVENT_BYTES".into(), "lots".into())])
            .expect_err("not a number");
        assert!(e.to_string().contains("processing.max_event_bytes"), "{e}");
        let e = Settings::load_with_env(None, vec![("ANDON__PROCESSING__CREATE_TOPICS".into(), "yes".into())])
            .expect_err("not a boolean");
        assert!(e.to_string().contains("processing.create_topics"), "{e}");
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Settings::from_toml(
            "[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"sasl.username\" = \"ann\"\n\"security.protocol\" = \"SASL_SSL\"",
        )
        .expect("valid");
        assert_eq!(s.kafka.properties.get("sasl.password").map(String::as_str), Some("hunter2"));
        let shown = s.to_toml().expect("prints");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SASL_SSL"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).expect("serialises").contains("hunter2"));
        // The printed form is itself a valid configuration.
        let again = Settings::from_toml(&shown.replace("***redacted***", "x")).expect("round trip");
        assert_eq!(again.engine, s.engine);
    }

    #[test]
    fn every_sensitive_property_is_redacted() {
        let secret = [
            // librdkafka's own list.
            "sasl.username",
            "sasl.password",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.assertion.private.key.file",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.pem",
            "ssl.ca.pem",
            "ssl.key.location",
            "ssl.key.password",
            "ssl.key.pem",
            "ssl.keystore.password",
            "ssl_key",
            // The patterns.
            "ssl.keystore.location",
            "ssl.certificate.pem",
            "sasl.kerberos.keytab",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.credentials.client.secret",
            "some.plugin.api.token",
            "plugin.passphrase.file",
            "plugin.signing.key",
            "SASL.PASSWORD",
        ];
        for name in SENSITIVE_PROPERTIES.iter().chain(&secret) {
            assert!(is_secret_property(name), "{name} must be redacted");
            let s = Settings::from_toml(&format!("[kafka.properties]\n{name:?} = \"s3cr3t-0123\"\n")).expect(name);
            let shown = s.to_toml().expect("prints");
            assert!(!shown.contains("s3cr3t") && shown.contains("***redacted***"), "{name}:\n{shown}");
            assert!(!format!("{s:?}").contains("s3cr3t"), "{name} in Debug");
        }
        for name in [
            "security.protocol",
            "sasl.mechanism",
            "ssl.ca.location",
            "ssl.endpoint.identification.algorithm",
            "sasl.oauthbearer.method",
            "linger.ms",
        ] {
            assert!(!is_secret_property(name), "{name} is shown");
        }
        // Nested tables are dotted names too.
        let s =
            Settings::from_toml("[kafka.properties]\nsasl.oauthbearer.client.secret = \"s3cr3t\"\n").expect("nested");
        assert!(!s.to_toml().expect("prints").contains("s3cr3t"));
    }

    #[test]
    fn the_printed_settings_load_back_to_the_same_settings() {
        let s = Settings::from_toml(
            r#"
            [kafka]
            brokers = "k1:9093,k2:9093"
            [kafka.properties]
            "security.protocol" = "SASL_SSL"
            ssl.ca.location = "/etc/ca.pem"
            "linger.ms" = 5
            [processing]
            guarantee = "at_least_once"
            commit_interval = "1500ms"
            grace = "36h"
            max_event_bytes = 1000
            [http]
            listen = "0.0.0.0:9000"
            [rules.default]
            window = "2d"
            [[rules.issue]]
            issues = ["safety_hazard", "fire"]
            threshold = 1
            [[rules.issue]]
            issues = ["promo_price_mismatch"]
            action = "notify"
            route = ["legal"]
            [owners.legal]
            sla = "90m"
            "#,
        )
        .expect("valid");
        let shown = s.to_toml().expect("prints");
        let again = Settings::from_toml(&shown).expect("loads back");
        assert_eq!(again.to_toml().expect("prints"), shown);
        assert_eq!(again.engine, s.engine);
        assert_eq!((&again.kafka, &again.topics, &again.processing), (&s.kafka, &s.topics, &s.processing));
        assert_eq!((&again.http, &again.rules, &again.owners), (&s.http, &s.rules, &s.owners));
        // Durations as a user writes them; nested properties as librdkafka names them.
        for line in ["commit_interval = \"1500ms\"", "grace = \"36h\"", "window = \"2d\"", "sla = \"90m\""] {
            assert!(shown.contains(line), "{line} in\n{shown}");
        }
        assert_eq!(s.kafka.properties.get("ssl.ca.location").map(String::as_str), Some("/etc/ca.pem"));
        assert_eq!(s.kafka.properties.get("linger.ms").map(String::as_str), Some("5"));
        // An issue rule shows what it inherits.
        assert_eq!(s.rules.issue[0].window, Some(Dur::from_secs(2 * 86_400)));
        assert_eq!(s.rules.issue[1].threshold, Some(2));
    }

    #[test]
    fn defaults_print_as_the_documented_file() {
        let shown = Settings::from_toml("").expect("defaults").to_toml().expect("prints");
        for line in [
            "brokers = \"127.0.0.1:9092\"",
            "group_id = \"andon\"",
            "guarantee = \"exactly_once\"",
            "commit_interval = \"100ms\"",
            "max_task_idle = \"100ms\"",
            "grace = \"1d\"",
            "max_future_skew = \"1h\"",
            "max_event_bytes = 65536",
            "stall_after = \"1m\"",
            "threads = 0",
            "listen = \"127.0.0.1:9898\"",
            "advertise = \"\"",
            "window = \"7d\"",
            "route = [\"product\", \"operations\", \"supply_chain\"]",
            "sla = \"2d\"",
        ] {
            assert!(shown.contains(line), "{line} in\n{shown}");
        }
    }
}
