//! `[http.auth]`: who may use the HTTP endpoints, and its validation.
//!
//! The settings say *what* is allowed; `ops::auth` enforces it per
//! request. Token hashes and the peer token are secrets: the serializer
//! writes them as `***redacted***` (`check-config`) and `Debug` hides them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use super::fields;
use super::secrets::REDACTED;
use super::ConfigError;

/// How a request proves who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `Authorization: Bearer <token>`, checked against `tokens`.
    Tokens,
    /// A header set by an authenticating proxy, believed only from
    /// `trusted_proxies`; bearer tokens are accepted as well.
    Proxy,
    /// No authentication: every caller has every role.
    None,
}

/// What a caller may do. `read`: the GET endpoints; `report` and `update`:
/// posting complaints and work-order updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Read,
    Report,
    Update,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Report, Role::Update];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Report => "report",
            Self::Update => "update",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// `[http.auth.tokens.<name>]`: one bearer token, by the SHA-256 of its text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Lower-case hex of SHA-256 over the token's text (64 characters).
    #[serde(serialize_with = "redacted")]
    pub sha256: String,
    /// `read`, `report`, `update`; a list or a comma-separated string.
    #[serde(deserialize_with = "fields::names")]
    pub roles: Vec<String>,
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings").field("sha256", &REDACTED).field("roles", &self.roles).finish()
    }
}

/// `[http.auth]`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// Paths anyone may GET, exactly as written (no prefixes).
    #[serde(deserialize_with = "fields::names")]
    pub open: Vec<String>,
    /// Keyed by name, so that the environment can add one:
    /// `ANDON__HTTP__AUTH__TOKENS__CRM__SHA256=...`.
    pub tokens: BTreeMap<String, TokenSettings>,
    /// The token this member sends when it asks another member; every
    /// member accepts it with the role `read`. Empty: the caller's own
    /// `Authorization` header is passed on.
    #[serde(serialize_with = "redacted_unless_empty")]
    pub peer_token: String,
    /// The header the proxy sets to the user's name (`mode = "proxy"`).
    pub proxy_header: String,
    /// IP addresses or CIDR ranges the proxy header is believed from.
    #[serde(deserialize_with = "fields::names")]
    pub trusted_proxies: Vec<String>,
    /// The roles of a user the proxy names.
    #[serde(deserialize_with = "fields::names")]
    pub proxy_roles: Vec<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Tokens,
            open: ["/", "/agent", "/assets/*", "/healthz", "/readyz", "/metrics"].map(String::from).to_vec(),
            tokens: BTreeMap::new(),
            peer_token: String::new(),
            proxy_header: "X-Forwarded-User".into(),
            trusted_proxies: Vec::new(),
            proxy_roles: vec!["read".into()],
        }
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("mode", &self.mode)
            .field("open", &self.open)
            .field("tokens", &self.tokens)
            .field("peer_token", &if self.peer_token.is_empty() { "" } else { REDACTED })
            .field("proxy_header", &self.proxy_header)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("proxy_roles", &self.proxy_roles)
            .finish()
    }
}

fn redacted<S: Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

fn redacted_unless_empty<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_empty() { "" } else { REDACTED })
}

/// Roles by name, naming `field` when one is unknown.
pub fn roles(field: &str, names: &[String]) -> Result<Vec<Role>, ConfigError> {
    names
        .iter()
        .map(|n| {
            Role::parse(n.trim()).ok_or_else(|| {
                ConfigError::new(field, format!("{n:?} is not a role: use \"read\", \"report\" or \"update\""))
            })
        })
        .collect()
}

/// A trusted proxy: `10.0.0.7` or `10.0.0.0/8`.
pub fn proxy_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

impl AuthSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, path) in self.open.iter().enumerate() {
            if !path.starts_with('/') {
                return Err(ConfigError::new(
                    format!("http.auth.open[{i}]"),
                    format!("{path:?} is not a path starting with /"),
                ));
            }
        }
        for (name, token) in &self.tokens {
            let field = format!("http.auth.tokens.{name}");
            let hash = token.sha256.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    format!("{field}.sha256"),
                    "is not 64 hex digits: write the SHA-256 of the token, e.g. \
                     `printf %s \"$TOKEN\" | sha256sum`, not the token",
                ));
            }
            if roles(&format!("{field}.roles"), &token.roles)?.is_empty() {
                return Err(ConfigError::new(format!("{field}.roles"), "must name at least one role"));
            }
        }
        roles("http.auth.proxy_roles", &self.proxy_roles)?;
        for (i, p) in self.trusted_proxies.iter().enumerate() {
            if proxy_net(p).is_none() {
                return Err(ConfigError::new(
                    format!("http.auth.trusted_proxies[{i}]"),
                    format!("{p:?} is not an IP address or a CIDR range like 10.0.0.0/8"),
                ));
            }
        }
        if self.mode == AuthMode::Proxy {
            let name = self.proxy_header.trim();
            if name.is_empty() || axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::new("http.auth.proxy_header", format!("{name:?} is not a header name")));
            }
            if self.trusted_proxies.is_empty() {
                return Err(ConfigError::new(
                    "http.auth.trusted_proxies",
                    "must name the proxy's addresses when mode = \"proxy\" (the header is believed only from them)",
                ));
            }
        }
        if !self.peer_token.is_empty() && self.peer_token.trim().len() < 16 {
            return Err(ConfigError::new("http.auth.peer_token", "must be at least 16 characters"));
        }
        Ok(())
    }
}
