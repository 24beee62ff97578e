//! Configuration: a TOML file plus `ANDON__SECTION__KEY` environment
//! overrides (the `config` crate's layering), read raw and converted once into
//! typed, validated [`Settings`].
//!
//! Every mistake stops start-up with a [`ConfigError`] that names the field
//! (`rules.issue[1].threshold`, `owners.legal.sla`, ...). Secrets in
//! `[kafka.properties]` never reach a log line or `check-config`: both go
//! through [`Settings::redacted`] / the redacting `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::event::{is_valid_issue, Dur};

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
// Raw: exactly the keys of the spec, unknown keys refused.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    kafka: RawKafka,
    topics: RawTopics,
    processing: RawProcessing,
    http: RawHttp,
    rules: RawRules,
    owners: BTreeMap<String, RawOwner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKafka {
    brokers: String,
    group_id: String,
    properties: BTreeMap<String, serde_json::Value>,
}

impl Default for RawKafka {
    fn default() -> Self {
        Self { brokers: "127.0.0.1:9092".into(), group_id: "andon".into(), properties: BTreeMap::new() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTopics {
    complaints: String,
    work_order_updates: String,
    delist_commands: String,
    work_orders: String,
    dlq: String,
    state: String,
    view: String,
}

impl Default for RawTopics {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawProcessing {
    guarantee: String,
    commit_interval: String,
    max_task_idle: String,
    #[serde(deserialize_with = "bool_or_str")]
    create_topics: bool,
    grace: String,
    max_future_skew: String,
    #[serde(deserialize_with = "int_or_str")]
    max_event_bytes: i64,
}

impl Default for RawProcessing {
    fn default() -> Self {
        Self {
            guarantee: "exactly_once".into(),
            commit_interval: "100ms".into(),
            max_task_idle: "100ms".into(),
            create_topics: false,
            grace: "1d".into(),
            max_future_skew: "1h".into(),
            max_event_bytes: 65536,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
    advertise: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self { listen: "127.0.0.1:9898".into(), advertise: String::new() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    default: RawRule,
    issue: Vec<RawIssueRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRule {
    #[serde(deserialize_with = "opt_int_or_str")]
    threshold: Option<i64>,
    window: Option<String>,
    action: Option<String>,
    route: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssueRule {
    issues: Vec<String>,
    #[serde(default, deserialize_with = "opt_int_or_str")]
    threshold: Option<i64>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    route: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOwner {
    sla: Option<String>,
}

/// Environment overrides arrive as strings; TOML gives real integers. Both are fine.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrStr {
    Int(i64),
    Str(String),
}

fn int_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match IntOrStr::deserialize(d)? {
        IntOrStr::Int(i) => Ok(i),
        IntOrStr::Str(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
    }
}

fn opt_int_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int_or_str(d).map(Some)
}

fn bool_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrStr {
        Bool(bool),
        Str(String),
    }
    match BoolOrStr::deserialize(d)? {
        BoolOrStr::Bool(b) => Ok(b),
        BoolOrStr::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("{s:?} is not true or false"))),
        },
    }
}

// ---------------------------------------------------------------------------
// Typed settings.

/// Whether outputs go out in Kafka transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

/// What a rule does when it pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Take the subject off sale and open a work order.
    Delist,
    /// Open a work order only.
    Notify,
}

/// One step of a route: who owns it and how long they have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStep {
    pub owner: String,
    /// Nanoseconds.
    pub sla: Dur,
}

/// A counting rule for one or more issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Distinct customers within `window` that pull the cord (≥ 1).
    pub threshold: u32,
    /// Nanoseconds (≥ 1 s).
    pub window: Dur,
    pub action: RuleAction,
    /// At least one step.
    pub route: Arc<[RouteStep]>,
}

/// The rules of `[rules]`: first matching `[[rules.issue]]`, else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub default: Rule,
    /// In file order; the first whose `issues` names an issue wins.
    pub by_issue: Vec<(Vec<String>, Rule)>,
}

impl Rules {
    pub fn for_issue(&self, issue: &str) -> &Rule {
        self.by_issue.iter().find(|(issues, _)| issues.iter().any(|i| i == issue)).map_or(&self.default, |(_, r)| r)
    }

    /// The longest window of all rules: it bounds how long duplicates are remembered.
    pub fn longest_window(&self) -> Dur {
        self.by_issue.iter().map(|(_, r)| r.window).fold(self.default.window, Dur::max)
    }

    /// Every issue some rule names, for bounded metric labels.
    pub fn named_issues(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_issue.iter().flat_map(|(i, _)| i.iter().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What the engine needs: rules and time bounds. Everything in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub rules: Rules,
    pub grace: Dur,
    pub max_future_skew: Dur,
}

#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    /// Passed to librdkafka as they are.
    pub properties: BTreeMap<String, String>,
}

/// Property names whose values must never be printed.
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "sasl.jaas", "key.pem", "keystore", "credentials"].iter().any(|s| n.contains(s))
        || n.ends_with(".key")
}

impl KafkaSettings {
    /// The properties with secret values replaced.
    pub fn redacted_properties(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_property(k) { "***redacted***".to_owned() } else { v.clone() };
                (k.clone(), v)
            })
            .collect()
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

#[derive(Debug, Clone, Serialize)]
pub struct Topics {
    pub complaints: String,
    pub work_order_updates: String,
    pub delist_commands: String,
    pub work_orders: String,
    pub dlq: String,
    pub state: String,
    /// The cluster-wide read model (compacted table topic, see `view`).
    pub view: String,
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

#[derive(Debug, Clone)]
pub struct Processing {
    pub guarantee: Guarantee,
    pub commit_interval: Duration,
    pub max_task_idle: Duration,
    pub create_topics: bool,
    pub max_event_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub listen: SocketAddr,
    /// The base URL other members reach this one at (`http://host:port`);
    /// empty: derived from the address actually bound (see `ops::serve`).
    pub advertise: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub processing: Processing,
    pub http: Http,
    pub engine: Arc<EngineConfig>,
    pub owners: BTreeMap<String, Dur>,
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
        builder = builder.add_source(
            config::Environment::with_prefix("ANDON")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("rules.default.route")
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
        let raw: RawSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde names an unknown key only in the message; point at its section.
            ConfigError::new(if path == "." { "<root>".to_owned() } else { path }, inner)
        })?;
        convert(raw)
    }

    /// The effective settings as TOML, secrets redacted (`andon check-config`).
    pub fn redacted_toml(&self) -> String {
        let d = humantime_str;
        let mut out = String::new();
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        out.push_str("[kafka]\n");
        out.push_str(&format!("brokers = {}\ngroup_id = {}\n", q(&self.kafka.brokers), q(&self.kafka.group_id)));
        out.push_str("\n[kafka.properties]\n");
        for (k, v) in self.kafka.redacted_properties() {
            out.push_str(&format!("{} = {}\n", q(&k), q(&v)));
        }
        let t = &self.topics;
        out.push_str(&format!(
            "\n[topics]\ncomplaints = {}\nwork_order_updates = {}\ndelist_commands = {}\nwork_orders = {}\ndlq = {}\nstate = {}\nview = {}\n",
            q(&t.complaints),
            q(&t.work_order_updates),
            q(&t.delist_commands),
            q(&t.work_orders),
            q(&t.dlq),
            q(&t.state),
            q(&t.view)
        ));
        let p = &self.processing;
        let g = match p.guarantee {
            Guarantee::ExactlyOnce => "exactly_once",
            Guarantee::AtLeastOnce => "at_least_once",
        };
        out.push_str(&format!(
            "\n[processing]\nguarantee = {}\ncommit_interval = {}\nmax_task_idle = {}\ncreate_topics = {}\ngrace = {}\nmax_future_skew = {}\nmax_event_bytes = {}\n",
            q(g),
            q(&humantime::format_duration(p.commit_interval).to_string()),
            q(&humantime::format_duration(p.max_task_idle).to_string()),
            p.create_topics,
            q(&d(self.engine.grace)),
            q(&d(self.engine.max_future_skew)),
            p.max_event_bytes
        ));
        out.push_str(&format!(
            "\n[http]\nlisten = {}\nadvertise = {}\n",
            q(&self.http.listen.to_string()),
            q(&self.http.advertise)
        ));
        let rule = |out: &mut String, r: &Rule| {
            let route: Vec<String> = r.route.iter().map(|s| q(&s.owner)).collect();
            let action = match r.action {
                RuleAction::Delist => "delist",
                RuleAction::Notify => "notify",
            };
            out.push_str(&format!(
                "threshold = {}\nwindow = {}\naction = {}\nroute = [{}]\n",
                r.threshold,
                q(&d(r.window)),
                q(action),
                route.join(", ")
            ));
        };
        out.push_str("\n[rules.default]\n");
        rule(&mut out, &self.engine.rules.default);
        for (issues, r) in &self.engine.rules.by_issue {
            let issues: Vec<String> = issues.iter().map(|i| q(i)).collect();
            out.push_str(&format!("\n[[rules.issue]]\nissues = [{}]\n", issues.join(", ")));
            rule(&mut out, r);
        }
        for (name, sla) in &self.owners {
            out.push_str(&format!("\n[owners.{}]\nsla = {}\n", q(name), q(&d(*sla))));
        }
        out
    }
}

fn path_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "<environment>".to_owned(), |p| p.display().to_string())
}

fn humantime_str(nanos: Dur) -> String {
    humantime::format_duration(Duration::from_nanos(nanos.max(0) as u64)).to_string()
}

/// `100ms`, `12h`, `7d`, ... into a non-negative span.
fn duration(field: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        ConfigError::new(field, format!("{s:?} is not a duration like \"100ms\", \"12h\" or \"7d\" ({e})"))
    })
}

fn nanos(field: &str, s: &str) -> Result<Dur, ConfigError> {
    let d = duration(field, s)?;
    // Ten thousand years is far more than any window; beyond it i64 nanoseconds would overflow.
    if d > Duration::from_secs(100 * 365 * 86_400) {
        return Err(ConfigError::new(field, format!("{s:?} is longer than 100 years")));
    }
    Ok(d.as_nanos() as Dur)
}

fn flatten_properties(
    prefix: &str,
    map: &BTreeMap<String, serde_json::Value>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (k, v) in map {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            serde_json::Value::String(s) => {
                out.insert(key, s.clone());
            }
            serde_json::Value::Bool(b) => {
                out.insert(key, b.to_string());
            }
            serde_json::Value::Number(n) => {
                out.insert(key, n.to_string());
            }
            serde_json::Value::Object(m) => {
                let m: BTreeMap<String, serde_json::Value> = m.clone().into_iter().collect();
                flatten_properties(&key, &m, out)?;
            }
            _ => {
                return Err(ConfigError::new(format!("kafka.properties.{key}"), "must be a string, number or boolean"))
            }
        }
    }
    Ok(())
}

fn convert(raw: RawSettings) -> Result<Settings, ConfigError> {
    // Owners: the spec's three by default, each overridable, more addable.
    let mut owners: BTreeMap<String, Dur> =
        [("product", 24 * 3600), ("operations", 12 * 3600), ("supply_chain", 48 * 3600)]
            .into_iter()
            .map(|(k, s)| (k.to_owned(), s * 1_000_000_000))
            .collect();
    for (name, owner) in &raw.owners {
        let field = format!("owners.{name}.sla");
        match &owner.sla {
            Some(s) => {
                let sla = nanos(&field, s)?;
                if sla <= 0 {
                    return Err(ConfigError::new(field, "must be longer than 0"));
                }
                owners.insert(name.clone(), sla);
            }
            None => return Err(ConfigError::new(field, "every owner needs an sla")),
        }
    }

    let default = rule(
        "rules.default",
        &raw.rules.default,
        &Rule {
            threshold: 2,
            window: 7 * 86_400 * 1_000_000_000,
            action: RuleAction::Delist,
            route: Arc::from(Vec::new()),
        },
        Some(&["product", "operations", "supply_chain"]),
        &owners,
    )?;
    let mut by_issue = Vec::new();
    for (i, r) in raw.rules.issue.iter().enumerate() {
        let field = format!("rules.issue[{i}]");
        if r.issues.is_empty() {
            return Err(ConfigError::new(format!("{field}.issues"), "must name at least one issue"));
        }
        for issue in &r.issues {
            if !is_valid_issue(issue) {
                return Err(ConfigError::new(
                    format!("{field}.issues"),
                    format!("{issue:?} does not match ^[a-z0-9][a-z0-9_.-]{{0,63}}$"),
                ));
            }
        }
        let as_rule = RawRule {
            threshold: r.threshold,
            window: r.window.clone(),
            action: r.action.clone(),
            route: r.route.clone(),
        };
        by_issue.push((r.issues.clone(), rule(&field, &as_rule, &default, None, &owners)?));
    }

    let p = &raw.processing;
    let guarantee = match p.guarantee.as_str() {
        "exactly_once" => Guarantee::ExactlyOnce,
        "at_least_once" => Guarantee::AtLeastOnce,
        other => {
            return Err(ConfigError::new(
                "processing.guarantee",
                format!("{other:?} is not \"exactly_once\" or \"at_least_once\""),
            ))
        }
    };
    let commit_interval = duration("processing.commit_interval", &p.commit_interval)?;
    if commit_interval.is_zero() {
        return Err(ConfigError::new("processing.commit_interval", "must be longer than 0"));
    }
    let max_task_idle = duration("processing.max_task_idle", &p.max_task_idle)?;
    let grace = nanos("processing.grace", &p.grace)?;
    let max_future_skew = nanos("processing.max_future_skew", &p.max_future_skew)?;
    if p.max_event_bytes < 1 || p.max_event_bytes > 64 * 1024 * 1024 {
        return Err(ConfigError::new("processing.max_event_bytes", "must be between 1 and 67108864"));
    }
    let listen: SocketAddr = raw.http.listen.parse().map_err(|_| {
        ConfigError::new("http.listen", format!("{:?} is not an address like 127.0.0.1:9898", raw.http.listen))
    })?;
    let advertise = raw.http.advertise.trim().trim_end_matches('/').to_owned();
    if !advertise.is_empty() {
        let hostport = advertise.strip_prefix("http://").unwrap_or_default();
        if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
            return Err(ConfigError::new(
                "http.advertise",
                format!("{:?} is not a URL like http://andon-0.andon:9898 (or empty)", raw.http.advertise),
            ));
        }
    }

    let mut properties = BTreeMap::new();
    flatten_properties("", &raw.kafka.properties, &mut properties)?;
    if raw.kafka.brokers.trim().is_empty() {
        return Err(ConfigError::new("kafka.brokers", "must not be empty"));
    }
    if raw.kafka.group_id.trim().is_empty() {
        return Err(ConfigError::new("kafka.group_id", "must not be empty"));
    }
    let t = raw.topics;
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

    Ok(Settings {
        kafka: KafkaSettings { brokers: raw.kafka.brokers, group_id: raw.kafka.group_id, properties },
        topics: Topics {
            complaints: t.complaints,
            work_order_updates: t.work_order_updates,
            delist_commands: t.delist_commands,
            work_orders: t.work_orders,
            dlq: t.dlq,
            state: t.state,
            view: t.view,
        },
        processing: Processing {
            guarantee,
            commit_interval,
            max_task_idle,
            create_topics: p.create_topics,
            max_event_bytes: p.max_event_bytes as usize,
        },
        http: Http { listen, advertise },
        engine: Arc::new(EngineConfig { rules: Rules { default, by_issue }, grace, max_future_skew }),
        owners,
    })
}

/// Validates one rule, filling what it leaves out from `base`.
fn rule(
    field: &str,
    raw: &RawRule,
    base: &Rule,
    default_route: Option<&[&str]>,
    owners: &BTreeMap<String, Dur>,
) -> Result<Rule, ConfigError> {
    let threshold = match raw.threshold {
        None => base.threshold,
        Some(t) if (1..=1_000_000).contains(&t) => t as u32,
        Some(t) => {
            return Err(ConfigError::new(format!("{field}.threshold"), format!("{t} is not between 1 and 1000000")))
        }
    };
    let window = match &raw.window {
        None => base.window,
        Some(s) => {
            let w = nanos(&format!("{field}.window"), s)?;
            if w < 1_000_000_000 {
                return Err(ConfigError::new(format!("{field}.window"), format!("{s:?} is shorter than 1s")));
            }
            w
        }
    };
    let action = match raw.action.as_deref() {
        None => base.action,
        Some("delist") => RuleAction::Delist,
        Some("notify") => RuleAction::Notify,
        Some(other) => {
            return Err(ConfigError::new(
                format!("{field}.action"),
                format!("{other:?} is not \"delist\" or \"notify\""),
            ))
        }
    };
    let route = match (&raw.route, default_route) {
        (Some(r), _) => {
            if r.is_empty() {
                return Err(ConfigError::new(format!("{field}.route"), "must name at least one owner"));
            }
            route_steps(&format!("{field}.route"), r.iter().map(String::as_str), owners)?
        }
        (None, Some(d)) => route_steps(&format!("{field}.route"), d.iter().copied(), owners)?,
        (None, None) => base.route.clone(),
    };
    Ok(Rule { threshold, window, action, route })
}

fn route_steps<'a>(
    field: &str,
    names: impl Iterator<Item = &'a str>,
    owners: &BTreeMap<String, Dur>,
) -> Result<Arc<[RouteStep]>, ConfigError> {
    names
        .map(|name| match owners.get(name) {
            Some(sla) => Ok(RouteStep { owner: name.to_owned(), sla: *sla }),
            None => {
                Err(ConfigError::new(field, format!("owner {name:?} has no sla (add [owners.{name}] sla = \"24h\")")))
            }
        })
        .collect()
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
        assert_eq!(s.engine.grace, 86_400 * 1_000_000_000);
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
        assert_eq!((r.threshold, r.window, r.action), (1, 2 * 86_400 * 1_000_000_000, RuleAction::Delist));
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
            ("[http]\nadvertise = \"andon-0:9898\"", "http.advertise"),
            ("[http]\nadvertise = \"https://andon-0:9898\"", "http.advertise"),
            ("[topics]\nview = \"andon.state\"", "topics.view"),
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
        assert_eq!(s.engine.grace, 7200 * 1_000_000_000);
        assert_eq!(s.engine.rules.default.threshold, 4);
        assert!(s.processing.create_topics);
        assert_eq!(s.engine.rules.default.route.len(), 2);
        let e = Settings::load_with_env(Some(&path), vec![("ANDON__PROCESSING__GRACE".into(), "x".into())])
            .expect_err("bad env");
        assert!(e.to_string().contains("processing.grace"), "{e}");
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Settings::from_toml(
            "[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"sasl.username\" = \"ann\"\n\"security.protocol\" = \"SASL_SSL\"",
        )
        .expect("valid");
        assert_eq!(s.kafka.properties.get("sasl.password").map(String::as_str), Some("hunter2"));
        let shown = s.redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SASL_SSL"));
        assert!(!format!("{s:?}").contains("hunter2"));
        // The printed form is itself a valid configuration.
        let again = Settings::from_toml(&shown.replace("***redacted***", "x")).expect("round trip");
        assert_eq!(again.engine, s.engine);
    }
}
