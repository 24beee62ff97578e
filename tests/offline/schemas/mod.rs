//! The JSON Schemas in `schemas/` against the real thing
//! (docs/records.md#schemas).
//!
//! - every schema is a valid draft 2020-12 document, with `$id`, `title` and
//!   a `description` on every field;
//! - every output the engine produces (over `examples/` and over a scenario
//!   that makes every kind of output) validates against its topic's schema,
//!   both as `replay` prints it and as `Output::to_json` writes it to Kafka;
//! - every input line of `examples/` that the decoder accepts validates
//!   against its input schema, and every line it rejects as
//!   `schema_violation` does not;
//! - a table of invalid inputs is rejected by both the decoder (as
//!   `schema_violation`) and the schema, and a table of valid variants is
//!   accepted by both.
//!
//! Formats are validated (`date-time` included), not just annotated. The
//! tables of inputs, and the output schemas against forbidden values, are
//! in `inputs.rs`.

mod inputs;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use andon::config::Settings;
use andon::engine::{Engine, EscalationClock, RecordMeta};
use andon::event::{decode_complaint, decode_update, Output, Reject, RejectReason};
use andon::replay::{replay, Input};
use jsonschema::Validator;
use serde_json::{json, Value};

const MAX_EVENT_BYTES: usize = 65536;
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const SCHEMA_NAMES: [&str; 4] = ["complaint.v1", "work_order_update.v1", "delist_command.v1", "work_order.v1"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn schema_doc(name: &str) -> Value {
    let path = root().join("schemas").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn compile(name: &str, doc: &Value) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(doc)
        .unwrap_or_else(|e| panic!("schemas/{name}.json does not compile as draft 2020-12: {e}"))
}

struct Schemas {
    complaint: Validator,
    update: Validator,
    delist: Validator,
    work_order: Validator,
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        let c = |n: &str| compile(n, &schema_doc(n));
        Schemas {
            complaint: c("complaint.v1"),
            update: c("work_order_update.v1"),
            delist: c("delist_command.v1"),
            work_order: c("work_order.v1"),
        }
    })
}

/// The schema's complaints about `instance`, one line each (empty: valid).
fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    let errs: Vec<String> = v
        .iter_errors(instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("{}: {e}", if path.is_empty() { "/" } else { &path })
        })
        .collect();
    // `is_valid` and `iter_errors` must agree, or the tables below mean nothing.
    assert_eq!(errs.is_empty(), v.is_valid(instance), "is_valid disagrees with iter_errors on {instance}");
    errs
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}... ({} chars)", s.chars().take(200).collect::<String>(), s.len())
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// a. The schemas themselves

/// Every `properties` entry and every `$defs` entry carries a description.
fn undescribed(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for key in ["properties", "$defs"] {
                if let Some(Value::Object(children)) = map.get(key) {
                    for (name, child) in children {
                        let ok = child.get("description").and_then(Value::as_str).is_some_and(|d| !d.trim().is_empty());
                        if !ok {
                            out.push(format!("{at}/{key}/{name}"));
                        }
                    }
                }
            }
            for (k, child) in map {
                undescribed(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                undescribed(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_is_a_described_draft_2020_12_document() {
    for name in SCHEMA_NAMES {
        let doc = schema_doc(name);
        assert_eq!(doc["$schema"], DRAFT_2020_12, "{name}: $schema");
        assert_eq!(doc["$id"], format!("https://andon.dev/schemas/{name}.json"), "{name}: $id");
        assert_eq!(doc["title"], format!("andon.{name}"), "{name}: title");
        assert!(doc["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}: description");
        if let Err(e) = jsonschema::draft202012::meta::validate(&doc) {
            panic!("schemas/{name}.json is not a valid draft 2020-12 schema: {e} at {}", e.instance_path());
        }
        compile(name, &doc);
        let mut missing = Vec::new();
        undescribed(&doc, "", &mut missing);
        assert!(missing.is_empty(), "{name}: fields without a description: {missing:?}");
    }
}

#[test]
fn outputs_are_closed_and_inputs_are_open() {
    // docs/records.md: unknown input fields are ignored; outputs carry
    // nothing their schema does not name.
    for name in ["complaint.v1", "work_order_update.v1"] {
        let doc = schema_doc(name);
        assert_ne!(doc.get("additionalProperties"), Some(&json!(false)), "{name} must accept unknown fields");
    }
    let delist = schema_doc("delist_command.v1");
    assert_eq!(delist["additionalProperties"], false);
    assert_eq!(delist["properties"]["reason"]["additionalProperties"], false);
    assert_eq!(delist["$defs"]["subject"]["additionalProperties"], false);
    let wo = schema_doc("work_order.v1");
    for t in ["opened", "step_completed", "escalated", "closed", "subject"] {
        assert_eq!(wo["$defs"][t]["additionalProperties"], false, "work_order.v1 $defs/{t}");
    }
    assert_eq!(wo["$defs"]["opened"]["properties"]["steps"]["items"]["additionalProperties"], false);
}

// ---------------------------------------------------------------------------
// b. Real outputs

/// The kinds of output a value shows, e.g. `delist/manual`, `opened/notify`.
fn kinds(topic_kind: &str, v: &Value) -> Vec<String> {
    match topic_kind {
        "command" => match v["action"].as_str() {
            Some("delist") => vec![format!("delist/{}", v["reason"]["trigger"].as_str().unwrap_or("?"))],
            Some(a) => vec![a.to_owned()],
            None => vec!["command/?".to_owned()],
        },
        _ => match v["type"].as_str() {
            Some("opened") => vec![
                format!("opened/{}", v["trigger"].as_str().unwrap_or("?")),
                if v["delisted"] == true { "opened/delisting".to_owned() } else { "opened/notify".to_owned() },
            ],
            Some("closed") => vec![format!("closed/{}", v["verdict"].as_str().unwrap_or("?"))],
            Some(t) => vec![t.to_owned()],
            None => vec!["work_order/?".to_owned()],
        },
    }
}

const EVERY_KIND: [&str; 11] = [
    "delist/threshold",
    "delist/manual",
    "relist",
    "opened/threshold",
    "opened/manual",
    "opened/delisting",
    "opened/notify",
    "step_completed",
    "escalated",
    "closed/defect_confirmed",
    "closed/no_defect",
];

/// The subject key an output value is about (its record key must be this).
fn subject_key_of(v: &Value) -> Option<String> {
    if let (Some(kind), Some(id)) = (v["subject"]["kind"].as_str(), v["subject"]["id"].as_str()) {
        return Some(format!("{kind}:{id}"));
    }
    v["andon_id"].as_str().and_then(|a| a.rsplit_once('/')).map(|(k, _)| k.to_owned())
}

/// Validates one output value; `topic_kind` is "command" or "work_order".
fn check_output(topic_kind: &str, v: &Value, seen: &mut BTreeSet<String>, failures: &mut Vec<String>) {
    let s = schemas();
    let validator = if topic_kind == "command" { &s.delist } else { &s.work_order };
    let errs = errors(validator, v);
    if !errs.is_empty() {
        failures.push(format!("{topic_kind} {}:\n    {}", short(v), errs.join("\n    ")));
    }
    seen.extend(kinds(topic_kind, v));
}

/// Runs `replay` over the given inputs and checks every line it prints.
fn replay_and_check(settings: &Settings, complaints: &[u8], updates: &[u8]) -> (Vec<Value>, BTreeSet<String>) {
    let mut out = Vec::new();
    replay(
        settings,
        Input { name: "complaints.jsonl".into(), reader: BufReader::new(complaints) },
        Some(Input { name: "updates.jsonl".into(), reader: BufReader::new(updates) }),
        &mut out,
        &mut |_: u64| {},
    )
    .expect("replay runs");
    let text = String::from_utf8(out).expect("replay prints UTF-8");
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    let mut values = Vec::new();
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let topic = rec["topic"].as_str().unwrap_or_else(|| panic!("no topic: {line}"));
        let value = &rec["value"];
        let topic_kind = if topic == settings.topics.delist_commands {
            "command"
        } else if topic == settings.topics.work_orders {
            "work_order"
        } else if topic == settings.topics.dlq {
            // The DLQ carries the input unchanged (a string here) and says why.
            assert!(value.is_string(), "DLQ value is the raw line: {line}");
            assert!(rec["headers"]["andon.error.reason"].is_string(), "DLQ line without a reason: {line}");
            continue;
        } else {
            panic!("unexpected topic {topic}: {line}");
        };
        assert_eq!(
            rec["key"].as_str(),
            subject_key_of(value).as_deref(),
            "the record key is the subject key of what the output is about: {line}"
        );
        check_output(topic_kind, value, &mut seen, &mut failures);
        values.push(value.clone());
    }
    assert!(failures.is_empty(), "outputs that break their schema:\n{}", failures.join("\n"));
    (values, seen)
}

#[test]
fn example_replay_outputs_match_their_schemas() {
    let ex = root().join("examples");
    let settings = Settings::from_toml(&std::fs::read_to_string(ex.join("andon.toml")).expect("examples/andon.toml"))
        .expect("examples/andon.toml is valid");
    let complaints = std::fs::read(ex.join("complaints.jsonl")).expect("examples/complaints.jsonl");
    let updates = std::fs::read(ex.join("updates.jsonl")).expect("examples/updates.jsonl");
    let (values, seen) = replay_and_check(&settings, &complaints, &updates);
    assert!(!values.is_empty(), "the examples produce outputs");
    assert!(seen.contains("opened/threshold") && seen.contains("delist/threshold"), "examples produced only {seen:?}");
}

const SCENARIO_TOML: &str = r#"
[rules.default]
threshold = 2
window = "1d"
action = "delist"
route = ["product", "operations"]

[[rules.issue]]
issues = ["promo_price_mismatch"]
action = "notify"
route = ["operations"]

[owners.product]
sla = "24h"
[owners.operations]
sla = "12h"
"#;

/// Inputs in event-time order (`true`: complaint), so that feeding them one
/// by one is what `replay`'s merge does too.
const SCENARIO: [(bool, &str); 10] = [
    // Two customers within the window: delist (threshold) + opened (delisting).
    (
        true,
        r#"{"event_id":"c1","occurred_at":"2026-01-01T00:00:00Z","subject":{"kind":"sku","id":"A"},"issue":"print_defect","customer_id":"cust-1"}"#,
    ),
    (
        true,
        r#"{"event_id":"c2","occurred_at":"2026-01-01T01:00:00.250Z","subject":{"kind":"sku","id":"A"},"issue":"print_defect","customer_id":"cust-2","channel":"chat"}"#,
    ),
    // The agent pulls by hand: delist (manual) + opened (manual).
    (
        true,
        r#"{"event_id":"c3","occurred_at":"2026-01-01T03:00:00+01:00","subject":{"kind":"sku","id":"B/1"},"issue":"wrong_item","customer_id":"cust-3","pull":true}"#,
    ),
    // A notify rule: opened, delisted false, no command.
    (
        true,
        r#"{"event_id":"c4","occurred_at":"2026-01-01T03:00:00Z","subject":{"kind":"promotion","id":"P"},"issue":"promo_price_mismatch","customer_id":"cust-4"}"#,
    ),
    (
        true,
        r#"{"event_id":"c5","occurred_at":"2026-01-01t03:30:00z","subject":{"kind":"promotion","id":"P"},"issue":"promo_price_mismatch","customer_id":"cust-5","extra":{"x":1}}"#,
    ),
    // step_completed, then the notify andon closed as a bad pull (no relist).
    (
        false,
        r#"{"update_id":"u1","andon_id":"sku:A/print_defect#1","step":1,"actor":"pm-1","at":"2026-01-01T05:00:00Z"}"#,
    ),
    (
        false,
        r#"{"update_id":"u2","andon_id":"promotion:P/promo_price_mismatch#1","step":1,"actor":"ops-1","at":"2026-01-01T06:00:00Z","verdict":"no_defect"}"#,
    ),
    // Attached to the open andon of sku:A.
    (
        true,
        r#"{"event_id":"c6","occurred_at":"2026-01-01T07:00:00Z","subject":{"kind":"sku","id":"A"},"issue":"print_defect","customer_id":"cust-6"}"#,
    ),
    // Stream time passes both due times: two escalations first; then
    // step_completed, closed (defect_confirmed) and relist.
    (
        false,
        r#"{"update_id":"u3","andon_id":"sku:A/print_defect#1","step":2,"actor":"ops-2","at":"2026-01-02T12:00:00Z","verdict":"defect_confirmed"}"#,
    ),
    // The manual pull was wrong: closed (no_defect) and relist.
    (
        false,
        r#"{"update_id":"u4","andon_id":"sku:B/1/wrong_item#1","step":1,"actor":"pm-2","at":"2026-01-02T13:00:00Z","verdict":"no_defect"}"#,
    ),
];

#[test]
fn scenario_produces_every_kind_of_output_and_all_match_their_schemas() {
    let settings = Settings::from_toml(SCENARIO_TOML).expect("scenario config");

    // The engine itself, outputs as written to Kafka (`Output::to_json`).
    let mut engine = Engine::new(settings.engine.clone(), EscalationClock::StreamTime);
    let mut outputs = Vec::new();
    for (is_complaint, line) in SCENARIO {
        let r = if is_complaint {
            let c = decode_complaint(line.as_bytes(), MAX_EVENT_BYTES).unwrap_or_else(|e| panic!("{line}: {e}"));
            engine.on_complaint(c.clone(), RecordMeta::default(), &mut outputs).map(drop)
        } else {
            let u = decode_update(line.as_bytes(), MAX_EVENT_BYTES).unwrap_or_else(|e| panic!("{line}: {e}"));
            engine.on_update(&u, RecordMeta::default(), &mut outputs).map(drop)
        };
        r.unwrap_or_else(|e| panic!("the scenario's input is rejected: {line}: {e}"));
    }
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    let mut wire = Vec::new();
    for o in &outputs {
        let bytes = o.to_json();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("to_json is not JSON ({e}): {o:?}"));
        assert_eq!(Some(o.key().to_owned()), subject_key_of(&v), "record key of {v}");
        let topic_kind = match o {
            Output::Command(_) => "command",
            Output::WorkOrder(_) => "work_order",
        };
        check_output(topic_kind, &v, &mut seen, &mut failures);
        wire.push(v);
    }
    assert!(failures.is_empty(), "outputs that break their schema:\n{}", failures.join("\n"));
    let missing: Vec<&str> = EVERY_KIND.iter().copied().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "the scenario no longer produces {missing:?} (saw {seen:?})");
    assert_eq!(seen.len(), EVERY_KIND.len(), "an output kind the schemas' tests do not know: {seen:?}");

    // The same inputs through `replay`: the same values, line for line.
    let mut complaints = String::new();
    let mut updates = String::new();
    for (is_complaint, line) in SCENARIO {
        let file = if is_complaint { &mut complaints } else { &mut updates };
        let _ = writeln!(file, "{line}");
    }
    let (printed, replay_seen) = replay_and_check(&settings, complaints.as_bytes(), updates.as_bytes());
    assert_eq!(replay_seen, seen);
    assert_eq!(printed, wire, "replay prints what the engine writes to Kafka");
}

// ---------------------------------------------------------------------------
// c. Example inputs

#[derive(Clone, Copy, Debug)]
enum In {
    Complaint,
    Update,
}

impl In {
    fn decode(self, bytes: &[u8]) -> Result<(), Reject> {
        match self {
            In::Complaint => decode_complaint(bytes, MAX_EVENT_BYTES).map(drop),
            In::Update => decode_update(bytes, MAX_EVENT_BYTES).map(drop),
        }
    }
    fn validator(self) -> &'static Validator {
        match self {
            In::Complaint => &schemas().complaint,
            In::Update => &schemas().update,
        }
    }
}

#[test]
fn example_inputs_that_decode_match_their_schemas() {
    for (file, which) in [("complaints.jsonl", In::Complaint), ("updates.jsonl", In::Update)] {
        let text = std::fs::read_to_string(root().join("examples").join(file)).expect("example file");
        let mut accepted = 0;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = format!("examples/{file}:{}", i + 1);
            let parsed: Result<Value, _> = serde_json::from_str(line);
            match which.decode(line.as_bytes()) {
                Ok(()) => {
                    let v = parsed.unwrap_or_else(|e| panic!("{at}: the decoder took a line that is not JSON ({e})"));
                    let errs = errors(which.validator(), &v);
                    assert!(errs.is_empty(), "{at}: decoded, but the schema rejects it: {errs:?}");
                    accepted += 1;
                }
                Err(e) if e.reason == RejectReason::SchemaViolation => {
                    let v =
                        parsed.unwrap_or_else(|e| panic!("{at}: schema_violation for a line that is not JSON ({e})"));
                    assert!(
                        !errors(which.validator(), &v).is_empty(),
                        "{at}: the decoder says {e}, the schema accepts it"
                    );
                }
                Err(e) if e.reason == RejectReason::InvalidJson => {
                    assert!(parsed.is_err(), "{at}: invalid_json for a line that parses: {e}");
                }
                Err(e) => panic!("{at}: unexpected decode rejection {e}"),
            }
        }
        assert!(accepted > 0, "examples/{file}: no line decodes");
    }
}
