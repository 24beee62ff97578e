//! `andon replay` and `andon check-config` as a user runs them: the real
//! binary, real files, exit codes and stdout/stderr as docs/cli.md gives them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `andon`, as built, with none of the developer's own `ANDON__`
/// variables (also for [`super::tune_cli`]).
pub(crate) fn andon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_andon"));
    // A developer's own ANDON__ variables must not change what the tests see.
    for (k, _) in std::env::vars() {
        if k.starts_with("ANDON__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the andon binary runs")
}

fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
        .collect()
}

fn replay_example(extra_env: &[(&str, &str)]) -> Output {
    let ex = examples();
    let mut cmd = andon();
    cmd.arg("replay")
        .arg("--config")
        .arg(ex.join("andon.toml"))
        .arg(ex.join("complaints.jsonl"))
        .arg("--updates")
        .arg(ex.join("updates.jsonl"))
        .current_dir(&ex);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// DLQ lines name their source file as given on the command line; the golden
/// file was made with paths relative to the repository root, so compare
/// without the directory.
fn normalise(mut v: Value) -> Value {
    if let Some(file) = v.pointer_mut("/headers/andon.source.file") {
        let name = Path::new(file.as_str().unwrap_or_default()).file_name().map(|f| f.to_string_lossy().into_owned());
        *file = Value::String(name.unwrap_or_default());
    }
    v
}

#[test]
fn replay_of_the_examples_matches_the_golden_file() {
    let out = replay_example(&[]);
    assert!(out.status.success(), "exit {:?}, stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let got: Vec<Value> = stdout_lines(&out).into_iter().map(normalise).collect();
    let want: Vec<Value> = std::fs::read_to_string(examples().join("expected.jsonl"))
        .expect("examples/expected.jsonl")
        .lines()
        .map(|l| normalise(serde_json::from_str(l).expect("golden line is JSON")))
        .collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "output line {} differs", i + 1);
    }
    assert_eq!(got.len(), want.len(), "number of output lines");

    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "inputs read:     19 complaints, 13 updates",
        "rejected (DLQ):  8",
        "delists:         4",
        "relists:         2",
        "escalations:     3",
        "bad-pull rate:   33.33 %",
    ] {
        assert!(stderr.contains(expected), "summary lacks {expected:?}:\n{stderr}");
    }
    // Each rejected line is named with its line number and reason.
    assert!(stderr.contains("line=11") && stderr.contains("invalid_json"), "{stderr}");
}

#[test]
fn dlq_lines_carry_the_raw_line_and_the_headers_and_follow_the_topic_setting() {
    let out = replay_example(&[("ANDON__TOPICS__DLQ", "my.dlq")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = stdout_lines(&out);
    let dlq: Vec<&Value> = lines.iter().filter(|l| l["topic"] == "my.dlq").collect();
    assert_eq!(dlq.len(), 8, "eight rejected lines in the examples");
    assert!(lines.iter().all(|l| l["topic"] != "andon.dlq"), "the override renames the DLQ topic");

    let complaints = std::fs::read_to_string(examples().join("complaints.jsonl")).expect("complaints");
    let updates = std::fs::read_to_string(examples().join("updates.jsonl")).expect("updates");
    let mut reasons = Vec::new();
    for l in dlq {
        assert_eq!(l["key"], Value::Null);
        let h = &l["headers"];
        let file = h["andon.source.file"].as_str().expect("file header");
        let line: usize = h["andon.source.line"].as_str().expect("line header is a string").parse().expect("a number");
        let source = if file.ends_with("complaints.jsonl") { &complaints } else { &updates };
        assert_eq!(l["value"].as_str(), source.lines().nth(line - 1), "value is the raw line {line} of {file}");
        assert!(!h["andon.error.message"].as_str().unwrap_or_default().is_empty());
        reasons.push(h["andon.error.reason"].as_str().expect("reason").to_owned());
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "andon_closed",
            "invalid_json",
            "schema_violation",
            "schema_violation",
            "schema_violation",
            "step_out_of_order",
            "unknown_andon",
            "verdict_required"
        ]
    );
}

#[test]
fn a_file_of_rules_alone_is_enough_and_bad_lines_never_stop_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rules.toml");
    std::fs::write(&config, "[rules.default]\nthreshold = 1\nwindow = \"1h\"\nroute = [\"product\"]\n").expect("write");
    let complaints = dir.path().join("c.jsonl");
    let mut data = Vec::new();
    data.extend_from_slice(b"\xff\xfe not utf-8\n\n");
    data.extend_from_slice(
        br#"{"event_id":"e1","occurred_at":"2026-01-01T00:00:00+01:00","subject":{"kind":"sku","id":"A"},"issue":"x","customer_id":"c1"}"#,
    );
    data.extend_from_slice(b"\n{\"event_id\": 7}\n");
    std::fs::write(&complaints, data).expect("write");
    let out = run(andon().arg("replay").arg("--config").arg(&config).arg(&complaints));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = stdout_lines(&out);
    let topics: Vec<&str> = lines.iter().map(|l| l["topic"].as_str().unwrap_or_default()).collect();
    assert_eq!(topics, ["andon.dlq", "andon.delist-commands", "andon.work-orders", "andon.dlq"]);
    assert_eq!(lines[0]["headers"]["andon.error.reason"], "invalid_json");
    assert_eq!(lines[0]["headers"]["andon.source.line"], "1");
    assert_eq!(lines[3]["headers"]["andon.error.reason"], "schema_violation");
    assert_eq!(lines[3]["headers"]["andon.source.line"], "4", "blank lines still count as lines");
    assert_eq!(lines[1]["value"]["issued_at"], "2025-12-31T23:00:00Z", "outputs are in UTC");
}

#[test]
fn bad_configuration_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str)] = &[
        ("[rules.default]\nthreshold = 0\n", "rules.default.threshold"),
        ("[processing]\ngrace = \"soon\"\n", "processing.grace"),
        ("[processing]\nmystery = 1\n", "mystery"),
        ("[rules.default]\nroute = [\"legal\"]\n", "legal"),
    ];
    let empty = dir.path().join("c.jsonl");
    std::fs::write(&empty, "").expect("write");
    for (i, (toml, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, toml).expect("write");
        for sub in [&["check-config"][..], &["replay"][..]] {
            let mut cmd = andon();
            cmd.args(sub).arg("--config").arg(&path);
            if sub[0] == "replay" {
                cmd.arg(&empty);
            }
            let out = run(&mut cmd);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{sub:?} with {toml:?}: {stderr}");
            assert!(stderr.contains(field), "{sub:?} with {toml:?} should name {field}: {stderr}");
        }
    }
    // The environment is configuration too.
    let out = run(andon().arg("check-config").env("ANDON__PROCESSING__MAX_TASK_IDLE", "fast"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("processing.max_task_idle"), "{out:?}");
    let out = run(andon().arg("check-config").arg("--config").arg(dir.path().join("missing.toml")));
    assert_eq!(out.status.code(), Some(2), "a missing config file is a configuration error");
}

#[test]
fn usage_and_runtime_failures_have_their_own_exit_codes() {
    let out = run(andon().arg("replay"));
    assert_eq!(out.status.code(), Some(2), "missing argument is bad usage");
    let out = run(andon().arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2), "unknown subcommand is bad usage");
    let out = run(andon().arg("replay").arg("/nonexistent/complaints.jsonl"));
    assert_eq!(out.status.code(), Some(1), "an unreadable input is a runtime failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/complaints.jsonl"));
}

#[test]
fn check_config_prints_effective_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("andon.toml");
    std::fs::write(
        &path,
        "[kafka]\nbrokers = \"k1:9093\"\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n",
    )
    .expect("write");
    let out = run(andon()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .env("ANDON__KAFKA__GROUP_ID", "fulfilment")
        .env("ANDON__KAFKA__PROPERTIES__SASL.OAUTHBEARER.CLIENT.SECRET", "0123"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2") && !text.contains("0123"), "secret leaked:\n{text}");
    assert!(text.contains("SCRAM-SHA-512"), "non-secret properties are shown:\n{text}");
    assert!(text.contains("k1:9093") && text.contains("fulfilment"), "{text}");
    // Defaults are part of the effective settings.
    assert!(text.contains("andon.work-order-updates") && text.contains("exactly_once"), "{text}");
    // What it prints is itself a valid configuration.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, text.as_bytes()).expect("write");
    let out = run(andon().arg("check-config").arg("--config").arg(&again));
    assert!(out.status.success(), "check-config output is loadable: {}", String::from_utf8_lossy(&out.stderr));
}
