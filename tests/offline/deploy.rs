//! `deploy/` checked without a container engine (none runs here or in CI):
//! every YAML and JSON file parses; Prometheus's own `promtool` accepts the
//! rules and the scrape config, and runs the rules' unit tests
//! (`prometheus/rules.test.yaml`: each alert on partitions, batch failures
//! and the view fired by one case and not by another); every alert has a
//! summary, a description and a runbook naming a section that exists in
//! the repository's docs, and docs/metrics.md lists it; every metric the
//! dashboard and the rules query is one andon really exports (read off a
//! registry andon filled) or a recording rule; the compose file's andon config passes
//! `andon check-config` and the Kubernetes ConfigMap carries that same file;
//! the probes and scrape targets point at andon's real port and paths.
//!
//! `promtool` comes from Debian's `prometheus` package, installed by
//! `scripts/test`: its test is ignored by a plain `cargo test` and run by
//! `scripts/test`; run without it, it fails, it does not skip.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use andon::config::Settings;
use andon::ops::metrics::Metrics;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read deploy/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).expect("read");
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_yaml_and_json_file_in_deploy_parses() {
    let mut all = Vec::new();
    files(&deploy(), &mut all);
    let mut seen = 0;
    for path in &all {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => {
                assert!(!yaml(path).is_badvalue(), "{}", path.display());
                seen += 1;
            }
            Some("json") => {
                json(path);
                seen += 1;
            }
            _ => {}
        }
    }
    // compose, prometheus ×3 (config, rules, their tests), grafana ×3,
    // kubernetes ×4.
    assert!(seen >= 11, "found {seen} YAML/JSON files in deploy/");
}

#[test]
#[ignore = "needs promtool (Prometheus): scripts/test installs it"]
fn promtool_accepts_the_rules_and_the_prometheus_config() {
    let promtool = common::need_tool("promtool");
    for args in [vec!["check", "rules", "prometheus/rules.yaml"], vec!["check", "config", "prometheus/prometheus.yml"]]
    {
        let out = Command::new(&promtool).args(&args).current_dir(deploy()).output().expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The alerts whose unit tests `prometheus/rules.test.yaml` holds.
const TESTED_ALERTS: [&str; 5] = [
    "AndonPartitionFailed",
    "AndonPartitionStalled",
    "AndonBatchFailuresPermanent",
    "AndonViewLagging",
    "AndonInputsMisplaced",
];

#[test]
#[ignore = "needs promtool (Prometheus): scripts/test installs it"]
fn promtool_runs_the_rules_unit_tests() {
    let promtool = common::need_tool("promtool");
    // As `promtool check` above, from deploy/ (the test file names
    // rules.yaml relative to itself).
    let out = Command::new(&promtool)
        .args(["test", "rules", "prometheus/rules.test.yaml"])
        .current_dir(deploy())
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_unit_tests_fire_each_alert_once_and_leave_it_quiet_once() {
    let tests = yaml(&deploy().join("prometheus/rules.test.yaml"));
    assert_eq!(tests["rule_files"][0].as_str(), Some("rules.yaml"));
    for alert in TESTED_ALERTS {
        let cases: Vec<&Yaml> = tests["tests"]
            .as_vec()
            .expect("tests")
            .iter()
            .flat_map(|t| t["alert_rule_test"].as_vec().map(|v| v.iter()).into_iter().flatten())
            .filter(|c| c["alertname"].as_str() == Some(alert))
            .collect();
        let fired = |c: &&Yaml| c["exp_alerts"].as_vec().is_some_and(|v| !v.is_empty());
        assert!(cases.iter().any(fired), "a case fires {alert}");
        assert!(cases.iter().any(|c| !fired(c)), "a case leaves {alert} quiet");
    }
}

/// The headings of a Markdown file, without their `#`s and backticks.
fn headings(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#').trim().replace('`', "")).collect()
}

#[test]
fn every_alert_has_a_summary_a_description_and_a_runbook_section_that_exists_and_the_docs_list_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = yaml(&deploy().join("prometheus/rules.yaml"));
    let listed = std::fs::read_to_string(root.join("docs/metrics.md")).expect("docs/metrics.md");
    let mut alerts = 0;
    for group in rules["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let Some(alert) = rule["alert"].as_str() else { continue };
            alerts += 1;
            let notes = &rule["annotations"];
            for key in ["summary", "description", "runbook"] {
                assert!(notes[key].as_str().is_some_and(|v| !v.trim().is_empty()), "{alert} has a {key}");
            }
            assert!(
                ["page", "ticket"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                "{alert}: severity"
            );
            // A file of the repository and its section, as andon's own
            // messages cite the docs: `README.md, "A stalled partition"`.
            let runbook = notes["runbook"].as_str().unwrap_or_default();
            let (file, section) = runbook
                .split_once(", ")
                .and_then(|(f, s)| Some((f, s.strip_prefix('"')?.strip_suffix('"')?)))
                .unwrap_or_else(|| panic!("{alert}: the runbook names a file and a section: {runbook}"));
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{alert}: {file}: {e}"));
            let sections = headings(&text);
            assert!(sections.iter().any(|h| h == section), "{alert}: no section \"{section}\" in {file}: {sections:?}");
            assert!(listed.contains(&format!("| `{alert}` |")), "docs/metrics.md lists {alert} in its alerts table");
        }
    }
    assert!(alerts >= 9, "{alerts} alerts");
}

/// Names andon exports: every family a registry holds after andon's
/// `Metrics` registered on it (each labelled series is created up front,
/// but a partition's series only exist once it is assigned: one is set
/// here).
fn exported() -> BTreeSet<String> {
    let settings = Settings::load_with_env(Some(&deploy().join("andon.toml")), Vec::new()).expect("deploy/andon.toml");
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry, &settings.engine).expect("metrics");
    for partition in [&metrics.consumer_lag, &metrics.partition_stalled, &metrics.partition_failed] {
        partition.with_label_values(&["0"]).set(0);
    }
    let mut names = BTreeSet::new();
    for family in registry.gather() {
        let name = family.name().to_owned();
        if family.get_field_type() == prometheus::proto::MetricType::HISTOGRAM {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name);
    }
    names
}

/// Identifiers in a PromQL expression that name andon's series: metric
/// names `andon_*` and recording rules `andon:*`.
fn andon_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("andon_") || word.starts_with("andon:") {
                out.push(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn rule_exprs() -> (Vec<String>, BTreeSet<String>) {
    let rules = yaml(&deploy().join("prometheus/rules.yaml"));
    let mut exprs = Vec::new();
    let mut records = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            exprs.push(rule["expr"].as_str().expect("expr").to_owned());
            if let Some(r) = rule["record"].as_str() {
                records.insert(r.to_owned());
            }
            if let Some(a) = rule["alert"].as_str() {
                alerts.insert(a.to_owned());
            }
        }
    }
    for alert in
        ["AndonBadPullRatioHigh", "AndonConsumerLagGrowing", "AndonDLQRate", "AndonWorkOrdersOverdue", "AndonNotReady"]
            .into_iter()
            .chain(TESTED_ALERTS)
    {
        assert!(alerts.contains(alert), "rules.yaml has the alert {alert}");
    }
    assert!(records.contains("andon:bad_pull_ratio:30d"), "rules.yaml records the 30-day bad-pull ratio");
    (exprs, records)
}

#[test]
fn the_dashboard_and_the_rules_query_only_metrics_andon_exports() {
    let exported = exported();
    for must in ["andon_pulls_total", "andon_work_orders_closed_total", "andon_consumer_lag", "andon_dlq_total"] {
        assert!(exported.contains(must), "andon exports {must}: {exported:?}");
    }
    let (mut exprs, records) = rule_exprs();
    let dashboard = json(&deploy().join("grafana/andon.json"));
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "a dashboard worth the name");
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} queries something", panel["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().expect("expr").to_owned());
        }
    }
    let mut used = BTreeSet::new();
    for expr in &exprs {
        for name in andon_names(expr) {
            assert!(
                exported.contains(&name) || records.contains(&name),
                "{name} (in `{expr}`) is neither a metric andon exports nor a recording rule"
            );
            used.insert(name);
        }
    }
    // The dashboard and rules between them look at what matters.
    for name in
        ["andon:bad_pull_ratio:30d", "andon_consumer_lag", "andon_dlq_total", "andon_pulls_total", "andon_ready"]
    {
        assert!(used.contains(name), "{name} is queried somewhere");
    }
}

#[test]
fn the_checker_catches_a_misspelt_metric() {
    // The check above could pass by finding no names at all.
    assert_eq!(andon_names("sum(rate(andon_pull_total[5m])) / andon:x"), vec!["andon_pull_total", "andon:x"]);
    assert!(!exported().contains("andon_pull_total"));
}

#[test]
fn the_deployed_config_passes_check_config_and_the_configmap_carries_it() {
    let file = deploy().join("andon.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_andon"))
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("ANDON__HTTP__LISTEN")
        .output()
        .expect("andon check-config");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check-config: {printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("0.0.0.0:9898"), "reachable from Prometheus and the kubelet: {printed}");

    let configmap = yaml(&deploy().join("kubernetes/configmap.yaml"));
    let carried = configmap["data"]["andon.toml"].as_str().expect("data.andon.toml");
    assert_eq!(
        carried.trim(),
        std::fs::read_to_string(&file).expect("andon.toml").trim(),
        "ConfigMap = deploy/andon.toml"
    );

    let compose = yaml(&deploy().join("compose.yaml"));
    let andon = &compose["services"]["andon"];
    let volumes: Vec<&str> = andon["volumes"].as_vec().expect("volumes").iter().filter_map(Yaml::as_str).collect();
    assert!(
        volumes.contains(&"./andon.toml:/etc/andon/andon.toml:ro"),
        "compose mounts deploy/andon.toml: {volumes:?}"
    );
    for service in ["kafka", "kafka-init", "andon", "prometheus", "grafana"] {
        assert!(!compose["services"][service].is_badvalue(), "compose has {service}");
    }
}

#[test]
fn kubernetes_probes_and_scrapes_point_at_andons_port_and_paths() {
    let deployment = yaml(&deploy().join("kubernetes/deployment.yaml"));
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    assert!(deployment["spec"]["replicas"].as_i64().unwrap_or(0) >= 2, "several replicas of one group");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    assert_eq!(container["ports"][0]["containerPort"].as_i64(), Some(9898));
    assert!(!container["resources"]["requests"]["cpu"].is_badvalue(), "resource requests");
    assert_eq!(deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"].as_bool(), Some(true));

    let pdb = yaml(&deploy().join("kubernetes/pdb.yaml"));
    assert_eq!(pdb["kind"].as_str(), Some("PodDisruptionBudget"));
    let service = yaml(&deploy().join("kubernetes/service.yaml"));
    assert_eq!(service["spec"]["ports"][0]["port"].as_i64(), Some(9898));

    let prometheus = yaml(&deploy().join("prometheus/prometheus.yml"));
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["job_name"].as_str(), Some("andon"), "the alerts select job=\"andon\"");
    assert_eq!(job["static_configs"][0]["targets"][0].as_str(), Some("andon:9898"));

    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
    assert!(dockerfile.lines().any(|l| l.starts_with("USER ") && !l.contains("root")), "runs as a non-root user");
}

/// The compose file runs the Apache Kafka the tests run
/// (`scripts/kafka.pom.xml`): what the suite proves is what an operator
/// starting `deploy/` gets.
#[test]
fn the_compose_file_runs_the_kafka_release_the_tests_pin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pom = std::fs::read_to_string(root.join("scripts/kafka.pom.xml")).expect("pom");
    let pinned = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|s| s.split("</kafka.version>").next())
        .expect("<kafka.version> in scripts/kafka.pom.xml");
    let compose = std::fs::read_to_string(deploy().join("compose.yaml")).expect("compose.yaml");
    let images: Vec<&str> =
        compose.lines().filter_map(|l| l.trim().strip_prefix("image: apache/kafka:")).map(str::trim).collect();
    assert!(!images.is_empty(), "compose.yaml runs apache/kafka");
    for tag in images {
        assert_eq!(tag, pinned, "deploy/compose.yaml's apache/kafka:{tag}, the tests' {pinned}");
    }
}
