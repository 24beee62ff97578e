//! Who may use the HTTP endpoints: the per-request side of `[http.auth]`.
//!
//! [`guard`] runs before every route. It lets the `open` paths through,
//! finds out who the caller is (a bearer token, or the header of a trusted
//! proxy), refuses a GET without the role `read`, and leaves the [`Caller`]
//! in the request for the handlers. A handler that needs another role takes
//! [`Require`] as an argument, one line:
//!
//! ```text
//! async fn post_complaints(_: Require<role::Report>, ...) -> Response
//! ```
//!
//! Missing or wrong credentials are `401` with `WWW-Authenticate: Bearer`;
//! a known caller without the role is `403` naming the role. Neither reaches
//! the handler, so neither can write anything.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{proxy_net, roles, AuthMode, AuthSettings, ConfigError, Role};

/// The caller's name when authentication is off.
const ANYONE: &str = "anonymous";
/// The caller's name when it is another member (the peer token).
const PEER: &str = "peer";

/// One accepted bearer token.
struct Token {
    name: String,
    sha256: [u8; 32],
    roles: Vec<Role>,
}

/// `[http.auth]`, ready to check requests against.
pub struct Auth {
    mode: AuthMode,
    open: Vec<String>,
    tokens: Vec<Token>,
    proxy_header: Option<HeaderName>,
    trusted: Vec<ipnet::IpNet>,
    proxy_roles: Vec<Role>,
    /// What this member sends when it asks another (`Bearer <peer_token>`).
    peer_authorization: Option<HeaderValue>,
}

/// Who sent a request, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, the proxy's user, `peer` or `anonymous`.
    pub name: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `Ok` if the caller has `role`, else the `403`.
    pub fn require(&self, role: Role) -> Result<(), Denied> {
        if self.has(role) {
            Ok(())
        } else {
            Err(Denied::Forbidden { role, caller: self.name.clone() })
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// `401`: no credentials, or none that andon accepts.
    Unauthenticated(String),
    /// `403`: a known caller without the role.
    Forbidden { role: Role, caller: String },
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Unauthenticated(message) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"andon\""))],
                Json(json!({"error": "unauthorized", "message": message})),
            )
                .into_response(),
            Denied::Forbidden { role, caller } => (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "error": "forbidden",
                    "role": role.as_str(),
                    "message": format!("{caller:?} does not have the role {:?} this needs", role.as_str()),
                })),
            )
                .into_response(),
        }
    }
}

/// Lower-case hex of SHA-256 over `text`: what `[http.auth.tokens.*]` hold.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl Auth {
    /// From validated settings; a field that does not convert is named.
    pub fn from_settings(s: &AuthSettings) -> Result<Auth, ConfigError> {
        let mut tokens = Vec::new();
        for (name, t) in &s.tokens {
            let field = format!("http.auth.tokens.{name}");
            let sha256 = unhex(&t.sha256).ok_or_else(|| ConfigError {
                field: format!("{field}.sha256"),
                message: "is not 64 hex digits".into(),
            })?;
            tokens.push(Token { name: name.clone(), sha256, roles: roles(&format!("{field}.roles"), &t.roles)? });
        }
        let peer = s.peer_token.trim();
        let peer_authorization = if peer.is_empty() {
            None
        } else {
            // Another member asking is a reader, nothing more.
            tokens.push(Token {
                name: PEER.into(),
                sha256: Sha256::digest(peer.as_bytes()).into(),
                roles: vec![Role::Read],
            });
            Some(HeaderValue::from_str(&format!("Bearer {peer}")).map_err(|_| ConfigError {
                field: "http.auth.peer_token".into(),
                message: "must be printable ASCII".into(),
            })?)
        };
        let proxy_header = match s.mode {
            AuthMode::Proxy => Some(HeaderName::from_bytes(s.proxy_header.trim().as_bytes()).map_err(|_| {
                ConfigError { field: "http.auth.proxy_header".into(), message: "is not a header name".into() }
            })?),
            _ => None,
        };
        Ok(Auth {
            mode: s.mode,
            open: s.open.clone(),
            tokens,
            proxy_header,
            trusted: s.trusted_proxies.iter().filter_map(|p| proxy_net(p)).collect(),
            proxy_roles: roles("http.auth.proxy_roles", &s.proxy_roles)?,
            peer_authorization,
        })
    }

    /// No authentication at all (`mode = "none"`).
    pub fn none() -> Auth {
        Auth::from_settings(&AuthSettings { mode: AuthMode::None, ..AuthSettings::default() })
            .unwrap_or_else(|_| unreachable!("the default settings convert"))
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Tokens accepted, the peer token included.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// An `open` path: `/healthz`, or a prefix written `/assets/*`.
    pub fn is_open(&self, path: &str) -> bool {
        self.open.iter().any(|o| match o.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == o,
        })
    }

    /// The `Authorization` to send when this member asks another: the peer
    /// token if one is set, else the one the caller sent us (it had `read`
    /// here; the members share their tokens).
    pub fn peer_authorization(&self, incoming: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self.mode {
            AuthMode::None => None,
            _ => self.peer_authorization.clone().or_else(|| incoming.cloned()),
        }
    }

    /// Who sent a request with these headers from `peer`.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Caller, Denied> {
        if self.mode == AuthMode::None {
            return Ok(Caller { name: ANYONE.into(), roles: Role::ALL.to_vec() });
        }
        if let Some(name) = &self.proxy_header {
            if let Some(user) = headers.get(name) {
                let trusted = peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)));
                if !trusted {
                    let from = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                    return Err(Denied::Unauthenticated(format!(
                        "the {name} header is believed only from http.auth.trusted_proxies, not from {from}"
                    )));
                }
                let user = user.to_str().map(str::trim).unwrap_or_default();
                if user.is_empty() {
                    return Err(Denied::Unauthenticated(format!("the {name} header names no user")));
                }
                return Ok(Caller { name: user.to_owned(), roles: self.proxy_roles.clone() });
            }
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Denied::Unauthenticated(self.missing()));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| Denied::Unauthenticated("the Authorization header is not \"Bearer <token>\"".into()))?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every stored hash is compared, each in constant time: neither the
        // time nor the order says which one matched or how nearly.
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.sha256.ct_eq(&presented)) {
                found = Some(t);
            }
        }
        match found {
            Some(t) => Ok(Caller { name: t.name.clone(), roles: t.roles.clone() }),
            None if self.tokens.is_empty() => Err(Denied::Unauthenticated(self.missing())),
            None => Err(Denied::Unauthenticated("the token is not one this andon accepts".into())),
        }
    }

    fn missing(&self) -> String {
        match (self.mode, self.tokens.is_empty()) {
            (AuthMode::Tokens, true) => "this andon has no token configured (http.auth.tokens): nothing but the open \
                                         paths can be read until one is, or until http.auth.mode = \"none\""
                .into(),
            (AuthMode::Proxy, _) => {
                "this needs the authenticating proxy's header or \"Authorization: Bearer <token>\"".into()
            }
            _ => "this needs \"Authorization: Bearer <token>\"".into(),
        }
    }
}

/// The middleware of every route: open paths pass (as `anonymous` with
/// every role); everything else needs a caller ([`Caller`], put in the
/// request's extensions), and GET/HEAD the role `read`.
pub async fn guard(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    if auth.mode != AuthMode::None && auth.is_open(req.uri().path()) {
        // Open means open: as with mode "none", whatever the handler asks.
        req.extensions_mut().insert(Caller { name: ANYONE.into(), roles: Role::ALL.to_vec() });
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let caller = match auth.authenticate(req.headers(), peer) {
        Ok(caller) => caller,
        Err(denied) => return denied.into_response(),
    };
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Err(denied) = caller.require(Role::Read) {
            return denied.into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The roles [`Require`] can ask for.
pub mod role {
    use crate::config::Role;

    pub trait Needed: Send + Sync + 'static {
        const ROLE: Role;
    }
    pub struct Read;
    pub struct Report;
    pub struct Update;
    impl Needed for Read {
        const ROLE: Role = Role::Read;
    }
    impl Needed for Report {
        const ROLE: Role = Role::Report;
    }
    impl Needed for Update {
        const ROLE: Role = Role::Update;
    }
}

/// A handler argument that refuses callers without role `R` (`403`), or
/// any request the [`guard`] did not authenticate (`401`: fail closed).
pub struct Require<R: role::Needed>(pub Caller, PhantomData<R>);

impl<S: Send + Sync, R: role::Needed> FromRequestParts<S> for Require<R> {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Denied> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Denied::Unauthenticated("this path is not behind andon's authentication".into()))?;
        caller.require(R::ROLE)?;
        Ok(Require(caller, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenSettings;

    fn settings() -> AuthSettings {
        let mut s = AuthSettings::default();
        s.tokens.insert("reader".into(), TokenSettings { sha256: sha256_hex("r-token"), roles: vec!["read".into()] });
        s.tokens.insert("crm".into(), TokenSettings { sha256: sha256_hex("c-token"), roles: vec!["report".into()] });
        s
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {t}")).expect("value"));
        h
    }

    #[test]
    fn tokens_are_known_by_their_hash_only() {
        let auth = Auth::from_settings(&settings()).expect("auth");
        let c = auth.authenticate(&bearer("r-token"), None).expect("reader");
        assert_eq!((c.name.as_str(), c.has(Role::Read), c.has(Role::Report)), ("reader", true, false));
        assert!(matches!(auth.authenticate(&bearer("r-tokeN"), None), Err(Denied::Unauthenticated(_))));
        assert!(matches!(auth.authenticate(&HeaderMap::new(), None), Err(Denied::Unauthenticated(_))));
        let hash = sha256_hex("r-token");
        assert!(auth.authenticate(&bearer(&hash), None).is_err(), "the hash itself is not a token");
        assert_eq!(
            auth.authenticate(&bearer("c-token"), None).and_then(|c| c.require(Role::Read)),
            Err(Denied::Forbidden { role: Role::Read, caller: "crm".into() })
        );
    }

    #[test]
    fn proxy_header_only_from_trusted_addresses() {
        let mut s = settings();
        s.mode = AuthMode::Proxy;
        s.trusted_proxies = vec!["10.1.0.0/16".into(), "127.0.0.1".into()];
        let auth = Auth::from_settings(&s).expect("auth");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-user", HeaderValue::from_static("ana"));
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(auth.authenticate(&h, ip("10.1.2.3")).map(|c| c.name), Ok("ana".into()));
        assert_eq!(auth.authenticate(&h, ip("127.0.0.1")).map(|c| c.roles), Ok(vec![Role::Read]));
        assert!(auth.authenticate(&h, ip("10.2.0.1")).is_err());
        assert!(auth.authenticate(&h, None).is_err());
        // Tokens still work beside the proxy (CRMs, scripts, other members).
        assert_eq!(auth.authenticate(&bearer("c-token"), ip("10.2.0.1")).map(|c| c.name), Ok("crm".into()));
    }

    #[test]
    fn open_paths_and_peer_token() {
        let mut s = settings();
        s.open.push("/assets/*".into());
        s.peer_token = "a-long-shared-peer-token".into();
        let auth = Auth::from_settings(&s).expect("auth");
        assert!(auth.is_open("/healthz") && auth.is_open("/assets/x.js"));
        assert!(!auth.is_open("/healthz/x") && !auth.is_open("/owners"));
        let c = auth.authenticate(&bearer("a-long-shared-peer-token"), None).expect("peer");
        assert_eq!(c, Caller { name: "peer".into(), roles: vec![Role::Read] });
        let theirs = HeaderValue::from_static("Bearer r-token");
        assert_eq!(
            auth.peer_authorization(Some(&theirs)),
            Some(HeaderValue::from_static("Bearer a-long-shared-peer-token"))
        );
        let without = Auth::from_settings(&settings()).expect("auth");
        assert_eq!(without.peer_authorization(Some(&theirs)), Some(theirs.clone()));
        assert_eq!(Auth::none().peer_authorization(Some(&theirs)), None);
    }
}
