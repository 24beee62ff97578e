//! Loading, validation, printing and redaction of the configuration.

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
        (
            "[kafka.properties]\n\"group.protocol\" = \"consumer\"\n\"session.timeout.ms\" = \"6000\"",
            "kafka.properties.session.timeout.ms",
        ),
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
    assert_eq!(s.kafka.input_partitioner, Partitioner::Murmur2);

    let s = Settings::load_with_env(
        None,
        vec![
            ("ANDON__PROCESSING__STALL_AFTER".into(), "5m".into()),
            ("ANDON__PROCESSING__THREADS".into(), "3".into()),
            ("ANDON__HTTP__ADVERTISE".into(), "http://andon-1.andon.prod.svc:9898/".into()),
            ("ANDON__KAFKA__INPUT_PARTITIONER".into(), "consistent".into()),
        ],
    )
    .expect("valid");
    assert_eq!(s.kafka.input_partitioner, Partitioner::Consistent);
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
        ("[kafka]\ninput_partitioner = \"crc32\"", "kafka.input_partitioner"),
        ("[kafka]\ninput_partitioner = 1", "kafka.input_partitioner"),
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
    let s = Settings::from_toml("[kafka.properties]\nsasl.oauthbearer.client.secret = \"s3cr3t\"\n").expect("nested");
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
        "input_partitioner = \"murmur2\"",
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
