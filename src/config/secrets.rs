//! Which `[kafka.properties]` values are secret, and their redaction: no
//! secret reaches a log line (`Debug`) or `andon check-config` (the
//! serializer).

use std::collections::BTreeMap;

/// What a secret value is shown as.
pub const REDACTED: &str = "***redacted***";

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
pub const SECRET_PARTS: [&str; 9] =
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

/// `properties` with the values of secret ones replaced by [`REDACTED`].
pub fn redact(properties: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    properties
        .iter()
        .map(|(k, v)| (k.clone(), if is_secret_property(k) { REDACTED.to_owned() } else { v.clone() }))
        .collect()
}
