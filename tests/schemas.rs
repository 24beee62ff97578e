//! The JSON Schemas in `schemas/` against the real thing (spec, "Topics":
//! "tests check real outputs against them").
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
//! Formats are validated (`date-time` included), not just annotated.

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
    // Spec, "Topics": unknown input fields are ignored; outputs carry
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

// ---------------------------------------------------------------------------
// d. Invalid and valid inputs: decoder and schema agree

fn complaint() -> Value {
    json!({
        "event_id": "e-1",
        "occurred_at": "2026-11-02T09:15:00Z",
        "subject": {"kind": "sku", "id": "B000123"},
        "issue": "print_defect",
        "customer_id": "cust-1"
    })
}

fn update() -> Value {
    json!({
        "update_id": "u-1",
        "andon_id": "sku:B000123/print_defect#1",
        "step": 1,
        "actor": "pm-1",
        "at": "2026-11-02T09:15:00Z"
    })
}

/// `base` with the field at JSON pointer `ptr` set to `new` (created if absent).
fn set(mut base: Value, ptr: &str, new: Value) -> Value {
    let (parent, key) = ptr.rsplit_once('/').expect("a pointer");
    match base.pointer_mut(parent).and_then(Value::as_object_mut) {
        Some(obj) => {
            obj.insert(key.to_owned(), new);
        }
        None => panic!("no object at {parent}"),
    }
    base
}

/// `base` without the field at JSON pointer `ptr`.
fn del(mut base: Value, ptr: &str) -> Value {
    let (parent, key) = ptr.rsplit_once('/').expect("a pointer");
    let removed = base.pointer_mut(parent).and_then(Value::as_object_mut).and_then(|o| o.remove(key));
    assert!(removed.is_some(), "nothing at {ptr}");
    base
}

fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// Both the decoder (as `schema_violation`) and the schema reject every case.
fn assert_both_reject(which: In, cases: Vec<(&str, Value)>) {
    let mut failures = Vec::new();
    for (label, v) in &cases {
        let bytes = serde_json::to_vec(v).expect("serialisable");
        let decoded = which.decode(&bytes);
        let errs = errors(which.validator(), v);
        let decoder_ok = matches!(&decoded, Err(e) if e.reason == RejectReason::SchemaViolation);
        if !decoder_ok || errs.is_empty() {
            failures.push(format!(
                "{which:?} {label}: decoder {:?}, schema {} — {}",
                decoded.map_err(|e| e.to_string()),
                if errs.is_empty() { "accepts".to_owned() } else { format!("rejects ({})", errs[0]) },
                short(v)
            ));
        }
    }
    assert!(failures.is_empty(), "decoder and schema must both reject:\n{}", failures.join("\n"));
}

/// Both the decoder and the schema accept every case.
fn assert_both_accept(which: In, cases: Vec<(&str, Value)>) {
    let mut failures = Vec::new();
    for (label, v) in &cases {
        let bytes = serde_json::to_vec(v).expect("serialisable");
        let decoded = which.decode(&bytes);
        let errs = errors(which.validator(), v);
        if decoded.is_err() || !errs.is_empty() {
            failures.push(format!(
                "{which:?} {label}: decoder {:?}, schema {errs:?} — {}",
                decoded.map_err(|e| e.to_string()),
                short(v)
            ));
        }
    }
    assert!(failures.is_empty(), "decoder and schema must both accept:\n{}", failures.join("\n"));
}

/// Timestamps that break "RFC 3339 date-time with a UTC offset".
const BAD_TIMESTAMPS: [(&str, &str); 14] = [
    ("no offset", "2026-11-02T09:15:00"),
    ("no offset, fraction", "2026-11-02T09:15:00.5"),
    ("date only", "2026-11-02"),
    ("space for T", "2026-11-02 09:15:00Z"),
    ("no seconds", "2026-11-02T09:15Z"),
    ("offset without colon", "2026-11-02T09:15:00+0100"),
    ("offset hours only", "2026-11-02T09:15:00+01"),
    ("empty fraction", "2026-11-02T09:15:00.Z"),
    ("no such day", "2026-02-30T09:15:00Z"),
    ("hour 24", "2026-11-02T24:00:00Z"),
    ("month 13", "2026-13-02T09:15:00Z"),
    ("basic format", "20261102T091500Z"),
    ("trailing text", "2026-11-02T09:15:00Z garbage"),
    ("empty", ""),
];

#[test]
fn invalid_complaints_are_rejected_by_decoder_and_schema() {
    let c = complaint;
    let mut cases: Vec<(&str, Value)> = vec![
        // Spec: "Values are UTF-8 JSON objects".
        (
            "complaint as an array",
            json!(["e1", "2026-11-02T09:15:00Z", {"kind": "sku", "id": "B1"}, "print_defect", "c1"]),
        ),
        ("subject as an array", set(c(), "/subject", json!(["sku", "B1"]))),
        ("missing event_id", del(c(), "/event_id")),
        ("missing occurred_at", del(c(), "/occurred_at")),
        ("missing subject", del(c(), "/subject")),
        ("missing subject.kind", del(c(), "/subject/kind")),
        ("missing subject.id", del(c(), "/subject/id")),
        ("missing issue", del(c(), "/issue")),
        ("missing customer_id", del(c(), "/customer_id")),
        ("event_id empty", set(c(), "/event_id", json!(""))),
        ("event_id 129 chars", set(c(), "/event_id", json!(chars('e', 129)))),
        ("event_id 129 astral chars", set(c(), "/event_id", json!(chars('😀', 129)))),
        ("event_id a number", set(c(), "/event_id", json!(17))),
        ("event_id null", set(c(), "/event_id", Value::Null)),
        ("occurred_at a number", set(c(), "/occurred_at", json!(1_762_074_900))),
        ("subject a string", set(c(), "/subject", json!("sku:B000123"))),
        ("subject kind bundle", set(c(), "/subject/kind", json!("bundle"))),
        ("subject kind SKU", set(c(), "/subject/kind", json!("SKU"))),
        ("subject id empty", set(c(), "/subject/id", json!(""))),
        ("subject id 129 chars", set(c(), "/subject/id", json!(chars('x', 129)))),
        ("subject id a number", set(c(), "/subject/id", json!(123))),
        ("issue uppercase", set(c(), "/issue", json!("Print_defect"))),
        ("issue empty", set(c(), "/issue", json!(""))),
        ("issue leading underscore", set(c(), "/issue", json!("_print"))),
        ("issue with a space", set(c(), "/issue", json!("print defect"))),
        ("issue 65 chars", set(c(), "/issue", json!(chars('a', 65)))),
        ("issue non-ASCII", set(c(), "/issue", json!("défaut"))),
        ("issue a number", set(c(), "/issue", json!(7))),
        ("customer_id empty", set(c(), "/customer_id", json!(""))),
        ("customer_id 129 chars", set(c(), "/customer_id", json!(chars('c', 129)))),
        ("pull a string", set(c(), "/pull", json!("yes"))),
        ("pull a number", set(c(), "/pull", json!(1))),
        ("order_id 129 chars", set(c(), "/order_id", json!(chars('o', 129)))),
        ("order_id a number", set(c(), "/order_id", json!(5521))),
        ("agent_id 129 chars", set(c(), "/agent_id", json!(chars('a', 129)))),
        ("region 129 chars", set(c(), "/region", json!(chars('r', 129)))),
        ("channel fax", set(c(), "/channel", json!("fax"))),
        ("channel Phone", set(c(), "/channel", json!("Phone"))),
        ("channel a number", set(c(), "/channel", json!(1))),
        ("note 4097 chars", set(c(), "/note", json!(chars('n', 4097)))),
        ("note 4097 two-byte chars", set(c(), "/note", json!(chars('é', 4097)))),
        ("note an object", set(c(), "/note", json!({"text": "x"}))),
        ("not an object: string", json!("e-1")),
        ("not an object: number", json!(42)),
        ("not an object: null", Value::Null),
        ("not an object: empty array", json!([])),
    ];
    for (label, ts) in BAD_TIMESTAMPS {
        cases.push((label, set(c(), "/occurred_at", json!(ts))));
    }
    assert_both_reject(In::Complaint, cases);
}

#[test]
fn valid_complaint_variants_are_accepted_by_decoder_and_schema() {
    let c = complaint;
    let full = json!({
        "event_id": "e-2",
        "occurred_at": "2026-11-02T09:15:00.123456789+02:00",
        "subject": {"kind": "promotion", "id": "SPRING-10"},
        "issue": "promo_price_mismatch",
        "customer_id": "cust-2",
        "pull": true,
        "order_id": "o-1",
        "agent_id": "agent-1",
        "region": "eu-west",
        "channel": "social",
        "note": "all the optional fields"
    });
    let mut cases: Vec<(&str, Value)> = vec![
        ("minimal", c()),
        ("every optional field", full),
        ("lowercase t and z", set(c(), "/occurred_at", json!("2026-11-02t09:15:00z"))),
        ("+02:00 offset", set(c(), "/occurred_at", json!("2026-11-02T11:15:00+02:00"))),
        ("-05:30 offset", set(c(), "/occurred_at", json!("2026-11-02T03:45:00-05:30"))),
        ("-00:00 offset", set(c(), "/occurred_at", json!("2026-11-02T09:15:00-00:00"))),
        ("fractional seconds", set(c(), "/occurred_at", json!("2026-11-02T09:15:00.5Z"))),
        ("nanoseconds", set(c(), "/occurred_at", json!("2026-11-02T09:15:00.000000001Z"))),
        ("leap day", set(c(), "/occurred_at", json!("2028-02-29T09:15:00Z"))),
        ("unknown field", set(c(), "/future_field", json!("ignored"))),
        ("unknown object field", set(c(), "/context", json!({"a": [1, 2, 3]}))),
        ("unknown field in subject", set(c(), "/subject/name", json!("Printer"))),
        ("pull false", set(c(), "/pull", json!(false))),
        ("event_id 1 char", set(c(), "/event_id", json!("e"))),
        ("event_id 128 chars", set(c(), "/event_id", json!(chars('e', 128)))),
        ("customer_id 128 astral chars", set(c(), "/customer_id", json!(chars('😀', 128)))),
        ("subject id 128 chars", set(c(), "/subject/id", json!(chars('x', 128)))),
        ("subject id with / and #", set(c(), "/subject/id", json!("a/b#c"))),
        ("issue 64 chars", set(c(), "/issue", json!(chars('a', 64)))),
        ("issue digits, dot, dash", set(c(), "/issue", json!("0.a-b_c"))),
        ("empty order_id", set(c(), "/order_id", json!(""))),
        ("region 128 chars", set(c(), "/region", json!(chars('r', 128)))),
        ("note 4096 chars", set(c(), "/note", json!(chars('n', 4096)))),
        ("note 4096 two-byte chars", set(c(), "/note", json!(chars('é', 4096)))),
        ("empty note", set(c(), "/note", json!(""))),
    ];
    for ch in ["phone", "chat", "email", "social", "other"] {
        cases.push(("each channel", set(c(), "/channel", json!(ch))));
    }
    assert_both_accept(In::Complaint, cases);
}

#[test]
fn invalid_updates_are_rejected_by_decoder_and_schema() {
    let u = update;
    let mut cases: Vec<(&str, Value)> = vec![
        // Spec: "Values are UTF-8 JSON objects" (serde's derive would also
        // take an array of the fields in order; the decoder refuses it).
        ("update as an array", json!(["u1", "sku:B1/x#1", 1, "a", "2026-11-02T09:15:00Z"])),
        ("missing update_id", del(u(), "/update_id")),
        ("missing andon_id", del(u(), "/andon_id")),
        ("missing step", del(u(), "/step")),
        ("missing actor", del(u(), "/actor")),
        ("missing at", del(u(), "/at")),
        ("update_id empty", set(u(), "/update_id", json!(""))),
        ("update_id 129 chars", set(u(), "/update_id", json!(chars('u', 129)))),
        ("update_id a number", set(u(), "/update_id", json!(1))),
        ("andon_id empty", set(u(), "/andon_id", json!(""))),
        ("andon_id a number", set(u(), "/andon_id", json!(1))),
        ("step 0", set(u(), "/step", json!(0))),
        ("step -1", set(u(), "/step", json!(-1))),
        ("step \"1\"", set(u(), "/step", json!("1"))),
        ("step 1.5", set(u(), "/step", json!(1.5))),
        ("step null", set(u(), "/step", Value::Null)),
        ("step true", set(u(), "/step", json!(true))),
        ("actor empty", set(u(), "/actor", json!(""))),
        ("actor 129 chars", set(u(), "/actor", json!(chars('a', 129)))),
        ("at a number", set(u(), "/at", json!(0))),
        ("verdict maybe", set(u(), "/verdict", json!("maybe"))),
        ("verdict empty", set(u(), "/verdict", json!(""))),
        ("verdict uppercase", set(u(), "/verdict", json!("NO_DEFECT"))),
        ("verdict true", set(u(), "/verdict", json!(true))),
        ("note 4097 chars", set(u(), "/note", json!(chars('n', 4097)))),
        ("not an object", json!("u-1")),
    ];
    for (label, ts) in BAD_TIMESTAMPS {
        cases.push((label, set(u(), "/at", json!(ts))));
    }
    assert_both_reject(In::Update, cases);
}

#[test]
fn valid_update_variants_are_accepted_by_decoder_and_schema() {
    let u = update;
    let cases: Vec<(&str, Value)> = vec![
        ("minimal", u()),
        ("step 3", set(u(), "/step", json!(3))),
        ("verdict defect_confirmed", set(u(), "/verdict", json!("defect_confirmed"))),
        ("verdict no_defect", set(u(), "/verdict", json!("no_defect"))),
        ("lowercase t and z", set(u(), "/at", json!("2026-11-02t09:15:00z"))),
        ("+02:00 offset", set(u(), "/at", json!("2026-11-02T11:15:00+02:00"))),
        ("fractional seconds", set(u(), "/at", json!("2026-11-02T09:15:00.250Z"))),
        ("unknown field", set(u(), "/future_field", json!({"ignored": true}))),
        ("andon_id not known here", set(u(), "/andon_id", json!("nope"))),
        ("update_id 128 chars", set(u(), "/update_id", json!(chars('u', 128)))),
        ("actor 128 chars", set(u(), "/actor", json!(chars('a', 128)))),
        ("note 4096 chars", set(u(), "/note", json!(chars('n', 4096)))),
        ("empty note", set(u(), "/note", json!(""))),
    ];
    assert_both_accept(In::Update, cases);
}

// ---------------------------------------------------------------------------
// Outputs: the schemas are strict enough to catch a drift

/// One real value of each output shape, as in `examples/expected.jsonl`.
fn delist() -> Value {
    json!({"command_id":"sku:B0PRINT01#delist#1","action":"delist","subject":{"kind":"sku","id":"B0PRINT01"},"andon_id":"sku:B0PRINT01/print_defect#1","issued_at":"2026-11-03T07:45:00Z","reason":{"issue":"print_defect","trigger":"threshold","distinct_customers":2,"window_seconds":604800}})
}
fn relist() -> Value {
    json!({"command_id":"sku:B0PRINT01#relist#1","action":"relist","subject":{"kind":"sku","id":"B0PRINT01"},"andon_id":"sku:B0PRINT01/print_defect#1","issued_at":"2026-11-05T14:00:00Z"})
}
fn opened() -> Value {
    json!({"type":"opened","andon_id":"sku:B0PRINT01/print_defect#1","subject":{"kind":"sku","id":"B0PRINT01"},"issue":"print_defect","trigger":"threshold","delisted":true,"opened_at":"2026-11-03T07:45:00Z","evidence":["c-0001","c-0004"],"evidence_total":2,"steps":[{"step":1,"owner":"product","due_at":"2026-11-04T07:45:00Z"},{"step":2,"owner":"operations","due_at":"2026-11-04T19:45:00Z"}]})
}
fn step_completed() -> Value {
    json!({"type":"step_completed","andon_id":"sku:B0PRINT01/print_defect#1","step":1,"owner":"product","actor":"pm-lena","at":"2026-11-03T15:00:00Z"})
}
fn escalated() -> Value {
    json!({"type":"escalated","andon_id":"sku:B0PRINT01/print_defect#1","step":2,"owner":"operations","due_at":"2026-11-04T03:00:00Z","escalated_at":"2026-11-04T09:30:00Z"})
}
fn closed() -> Value {
    json!({"type":"closed","andon_id":"sku:B0PRINT01/print_defect#1","verdict":"defect_confirmed","closed_at":"2026-11-05T14:00:00Z","complaints_attached":1})
}

#[test]
fn output_schemas_reject_what_the_spec_forbids() {
    let s = schemas();
    for v in [delist(), relist()] {
        assert!(errors(&s.delist, &v).is_empty(), "{v}");
    }
    for v in [opened(), step_completed(), escalated(), closed()] {
        assert!(errors(&s.work_order, &v).is_empty(), "{v}");
    }
    let bad_commands: Vec<(&str, Value)> = vec![
        ("unknown field", set(delist(), "/extra", json!(1))),
        ("unknown field in subject", set(delist(), "/subject/name", json!("x"))),
        ("unknown field in reason", set(delist(), "/reason/extra", json!(1))),
        ("delist without reason", del(delist(), "/reason")),
        ("relist with reason", set(relist(), "/reason", delist()["reason"].clone())),
        ("action pause", set(delist(), "/action", json!("pause"))),
        ("command_id of the other action", set(delist(), "/command_id", json!("sku:B0PRINT01#relist#1"))),
        ("command_id counting from 0", set(relist(), "/command_id", json!("sku:B0PRINT01#relist#0"))),
        ("andon_id without n", set(delist(), "/andon_id", json!("sku:B0PRINT01/print_defect"))),
        ("issued_at with an offset", set(delist(), "/issued_at", json!("2026-11-03T08:45:00+01:00"))),
        ("issued_at lowercase z", set(relist(), "/issued_at", json!("2026-11-05t14:00:00z"))),
        ("trigger auto", set(delist(), "/reason/trigger", json!("auto"))),
        ("distinct_customers 0", set(delist(), "/reason/distinct_customers", json!(0))),
        ("window_seconds 0", set(delist(), "/reason/window_seconds", json!(0))),
        ("window_seconds a string", set(delist(), "/reason/window_seconds", json!("604800"))),
        ("missing subject", del(relist(), "/subject")),
        ("subject kind bundle", set(relist(), "/subject/kind", json!("bundle"))),
    ];
    let bad_events: Vec<(&str, Value)> = vec![
        ("type reopened", set(closed(), "/type", json!("reopened"))),
        ("no type", del(closed(), "/type")),
        ("closed with a field of opened", set(closed(), "/issue", json!("print_defect"))),
        ("closed without verdict", del(closed(), "/verdict")),
        ("closed verdict maybe", set(closed(), "/verdict", json!("maybe"))),
        ("complaints_attached -1", set(closed(), "/complaints_attached", json!(-1))),
        ("opened without evidence", del(opened(), "/evidence")),
        ("opened with empty evidence", set(opened(), "/evidence", json!([]))),
        (
            "opened with 101 evidence ids",
            set(opened(), "/evidence", json!((0..101).map(|i| format!("e{i}")).collect::<Vec<_>>())),
        ),
        ("opened without evidence_total", del(opened(), "/evidence_total")),
        ("opened evidence_total 0", set(opened(), "/evidence_total", json!(0))),
        ("opened with empty steps", set(opened(), "/steps", json!([]))),
        ("opened step with an extra field", set(opened(), "/steps/0/sla", json!("24h"))),
        ("opened step 0", set(opened(), "/steps/0/step", json!(0))),
        ("opened delisted as a string", set(opened(), "/delisted", json!("true"))),
        ("opened subject with an extra field", set(opened(), "/subject/x", json!(1))),
        ("opened issue uppercase", set(opened(), "/issue", json!("Print"))),
        ("step_completed without actor", del(step_completed(), "/actor")),
        ("step_completed at without offset", set(step_completed(), "/at", json!("2026-11-03T15:00:00"))),
        ("escalated without escalated_at", del(escalated(), "/escalated_at")),
        ("escalated with an extra field", set(escalated(), "/actor", json!("x"))),
        ("escalated owner empty", set(escalated(), "/owner", json!(""))),
    ];
    let mut failures = Vec::new();
    for (schema, cases) in [(&s.delist, bad_commands), (&s.work_order, bad_events)] {
        for (label, v) in cases {
            if errors(schema, &v).is_empty() {
                failures.push(format!("{label}: {v}"));
            }
        }
    }
    assert!(failures.is_empty(), "the output schemas accept:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Where the decoder and the schemas disagree

/// Inputs on which the decoder and the schema are known to disagree. The
/// schema follows the spec here (see each note); the decoder's verdict is
/// printed, not asserted, so that fixing the decoder does not break this
/// test (then move the case to the tables above).
fn divergences() -> Vec<(In, &'static str, Value, bool)> {
    let c = complaint;
    let u = update;
    let raw = |s: &str| -> Value { serde_json::from_str(s).expect("JSON") };
    vec![
        // Spec: the optional fields are strings / a bool / an enum; null is
        // none of them. The decoder treats null as absent.
        (In::Complaint, "note null", set(c(), "/note", Value::Null), false),
        (In::Complaint, "pull null", set(c(), "/pull", Value::Null), false),
        (In::Complaint, "channel null", set(c(), "/channel", Value::Null), false),
        (In::Complaint, "order_id null", set(c(), "/order_id", Value::Null), false),
        (In::Update, "verdict null", set(u(), "/verdict", Value::Null), false),
        (In::Update, "note null", set(u(), "/note", Value::Null), false),
        // RFC 3339 allows second 60 only for a leap second (23:59:60 UTC);
        // the decoder (chrono) takes :60 in any minute.
        (In::Complaint, "second 60 at 12:30 UTC", set(c(), "/occurred_at", json!("2026-11-02T12:30:60Z")), false),
        // An integer in JSON Schema's data model; serde's u64 wants no fraction.
        (
            In::Update,
            "step 1.0",
            raw(r#"{"update_id":"u","andon_id":"a","step":1.0,"actor":"a","at":"2026-11-02T09:15:00Z"}"#),
            true,
        ),
        (
            In::Update,
            "step 1e0",
            raw(r#"{"update_id":"u","andon_id":"a","step":1e0,"actor":"a","at":"2026-11-02T09:15:00Z"}"#),
            true,
        ),
        // Spec: step is an integer ≥ 1 (a wrong one is step_out_of_order);
        // the decoder stops at u32::MAX with schema_violation.
        (In::Update, "step 2^32", set(u(), "/step", json!(4_294_967_296u64)), true),
        // Spec: andon_id is a string (an unknown one is unknown_andon); the
        // decoder stops at 256 chars with schema_violation (no real andon_id
        // is longer than 214).
        (In::Update, "andon_id 257 chars", set(u(), "/andon_id", json!(chars('a', 257))), true),
        // Valid RFC 3339, outside what i64 nanoseconds hold (documented in
        // the schemas' timestamp description).
        (In::Complaint, "year 1600", set(c(), "/occurred_at", json!("1600-01-01T00:00:00Z")), true),
        (In::Complaint, "year 2300", set(c(), "/occurred_at", json!("2300-01-01T00:00:00Z")), true),
    ]
}

#[test]
fn schemas_follow_the_spec_where_the_decoder_does_not() {
    let mut wrong = Vec::new();
    for (which, label, v, schema_valid) in divergences() {
        let errs = errors(which.validator(), &v);
        if errs.is_empty() != schema_valid {
            wrong.push(format!("{which:?} {label}: schema errors {errs:?}"));
        }
        let decoded = which.decode(&serde_json::to_vec(&v).expect("serialisable"));
        let agree = decoded.is_ok() == schema_valid
            && decoded.as_ref().err().is_none_or(|e| e.reason == RejectReason::SchemaViolation);
        eprintln!(
            "{which:?} {label}: schema {}, decoder {} ({})",
            if schema_valid { "accepts" } else { "rejects" },
            match &decoded {
                Ok(()) => "accepts".to_owned(),
                Err(e) => format!("rejects: {e}"),
            },
            if agree { "now agree: move this case to the tables" } else { "known divergence" },
        );
    }
    assert!(wrong.is_empty(), "the schema's verdict changed:\n{}", wrong.join("\n"));
}
