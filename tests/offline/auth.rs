//! Authentication and TLS of the HTTP side over real sockets: the server is
//! andon's own router and listener (`ops::http::serve`), the clients are
//! raw TCP (any header we like) and andon's peer client (TLS with a CA made
//! here by rcgen). Each test starts its own server on port 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use andon::config::{AuthMode, Http, Settings, TokenSettings};
use andon::ops::auth::{sha256_hex, Auth};
use andon::ops::{http, tls, Status};
use andon::view::remote;

use crate::common::pki;

const READER: &str = "reader-token-0123456789";
const CRM: &str = "crm-token-0123456789";

/// `[http]` with a reader and a CRM (`report` only) token, plus `change`.
fn settings(change: impl FnOnce(&mut Http)) -> Http {
    let mut h = Settings::from_toml("").expect("defaults").http;
    h.listen = "127.0.0.1:0".parse().expect("addr");
    h.auth.tokens.insert("reader".into(), TokenSettings { sha256: sha256_hex(READER), roles: vec!["read".into()] });
    h.auth.tokens.insert("crm".into(), TokenSettings { sha256: sha256_hex(CRM), roles: vec!["report".into()] });
    change(&mut h);
    h
}

/// Serves andon's router with `http`'s auth and TLS; the bound address.
fn serve(h: &Http) -> SocketAddr {
    let auth = Arc::new(Auth::from_settings(&h.auth).expect("auth"));
    let peers = remote::Client::new(tls::client_config(h).expect("client tls"));
    let app = http::router(Arc::new(Status::default()), prometheus::Registry::new(), auth, peers);
    http::serve(h.listen, tls::server_config(h).expect("server tls"), app).expect("serve")
}

/// One plain HTTP/1.1 GET with `headers`: (status, headers and body).
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    request(addr, "GET", path, headers)
}

/// One plain HTTP/1.1 request without a body.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let code = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, raw)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn missing_or_wrong_tokens_are_401_and_a_reader_reads() {
    let addr = serve(&settings(|_| {}));
    for path in ["/andons", "/owners", "/recent", "/cluster", "/bad-pulls", "/subjects/sku/X1"] {
        let (code, raw) = get(addr, path, &[]);
        assert_eq!(code, 401, "{path} without a token:\n{raw}");
        assert!(raw.to_ascii_lowercase().contains("www-authenticate: bearer"), "{raw}");
        assert!(raw.contains("\"error\":\"unauthorized\""), "a JSON body like the other errors:\n{raw}");
        let (code, raw) = get(addr, path, &[("Authorization", &bearer("nope"))]);
        assert_eq!(code, 401, "{path} with a wrong token:\n{raw}");
        let (code, raw) = get(addr, path, &[("Authorization", &sha256_hex(READER))]);
        assert_eq!(code, 401, "{path}: the hash is not a token, and not Bearer:\n{raw}");
    }
    let (code, raw) = get(addr, "/owners", &[("Authorization", &bearer(READER))]);
    assert_eq!(code, 200, "{raw}");
    assert!(raw.ends_with('}') || raw.ends_with(']'), "JSON:\n{raw}");
    let (code, raw) = get(addr, "/andons", &[("authorization", &format!("bearer {READER}"))]);
    assert_eq!(code, 200, "the scheme is case-insensitive:\n{raw}");
}

#[test]
fn a_token_without_read_is_403_naming_the_role() {
    let addr = serve(&settings(|_| {}));
    let (code, raw) = get(addr, "/owners", &[("Authorization", &bearer(CRM))]);
    assert_eq!(code, 403, "{raw}");
    assert!(raw.contains("\"role\":\"read\"") && raw.contains("\\\"crm\\\""), "{raw}");
}

/// What the POST routes to come will do: one `Require<role::Report>`
/// argument behind the same guard.
#[test]
fn require_keeps_a_route_that_writes_to_its_role() {
    use andon::ops::auth::{guard, role, Require};
    async fn post(allowed: Require<role::Report>) -> String {
        format!("written by {}", allowed.0.name)
    }
    let auth = Arc::new(Auth::from_settings(&settings(|_| {}).auth).expect("auth"));
    let app = axum::Router::new()
        .route("/complaints", axum::routing::post(post))
        .route_layer(axum::middleware::from_fn_with_state(auth, guard));
    let addr = http::serve("127.0.0.1:0".parse().expect("addr"), None, app).expect("serve");
    let (code, raw) = request(addr, "POST", "/complaints", &[]);
    assert_eq!(code, 401, "{raw}");
    let (code, raw) = request(addr, "POST", "/complaints", &[("Authorization", &bearer(READER))]);
    assert_eq!(code, 403, "a read token cannot post:\n{raw}");
    assert!(raw.contains("\"role\":\"report\""), "{raw}");
    let (code, raw) = request(addr, "POST", "/complaints", &[("Authorization", &bearer(CRM))]);
    assert_eq!(code, 200, "{raw}");
    assert!(raw.ends_with("written by crm"), "{raw}");
}

#[test]
fn open_paths_stay_open_and_can_be_closed() {
    let addr = serve(&settings(|_| {}));
    for path in ["/healthz", "/metrics", "/", "/assets/uPlot.min.css"] {
        let (code, raw) = get(addr, path, &[]);
        assert_eq!(code, 200, "{path} is open:\n{raw}");
    }
    let (code, _) = get(addr, "/readyz", &[]);
    assert_eq!(code, 503, "open, and not ready: no partitions");
    let (code, _) = get(addr, "/no-such-path", &[]);
    assert_eq!(code, 404);

    let closed = serve(&settings(|h| h.auth.open = vec!["/healthz".into()]));
    assert_eq!(get(closed, "/healthz", &[]).0, 200);
    assert_eq!(get(closed, "/metrics", &[]).0, 401, "closed by configuration");
    assert_eq!(get(closed, "/", &[]).0, 401);
    assert_eq!(get(closed, "/metrics", &[("Authorization", &bearer(READER))]).0, 200);
}

#[test]
fn no_token_configured_means_nothing_but_the_open_paths() {
    let addr = serve(&settings(|h| h.auth.tokens.clear()));
    let (code, raw) = get(addr, "/andons", &[("Authorization", &bearer(READER))]);
    assert_eq!(code, 401, "{raw}");
    assert!(raw.contains("no token configured"), "says why:\n{raw}");
    assert_eq!(get(addr, "/healthz", &[]).0, 200);
}

#[test]
fn mode_none_lets_everyone_read() {
    let addr = serve(&settings(|h| h.auth.mode = AuthMode::None));
    assert_eq!(get(addr, "/owners", &[]).0, 200);
}

#[test]
fn the_proxy_header_is_believed_only_from_trusted_proxies() {
    let proxy = |trusted: &str| {
        settings(|h| {
            h.auth.mode = AuthMode::Proxy;
            h.auth.trusted_proxies = vec![trusted.into()];
        })
    };
    // The test connects from 127.0.0.1.
    let trusting = serve(&proxy("127.0.0.0/8"));
    let (code, raw) = get(trusting, "/owners", &[("X-Forwarded-User", "ana@example.com")]);
    assert_eq!(code, 200, "{raw}");
    assert_eq!(get(trusting, "/owners", &[]).0, 401, "no header, no token");
    assert_eq!(get(trusting, "/owners", &[("Authorization", &bearer(READER))]).0, 200, "tokens too");

    let distrusting = serve(&proxy("10.0.0.0/8"));
    let (code, raw) = get(distrusting, "/owners", &[("X-Forwarded-User", "ana@example.com")]);
    assert_eq!(code, 401, "{raw}");
    assert!(raw.contains("trusted_proxies"), "says why:\n{raw}");
    let (code, _) = get(distrusting, "/owners", &[("X-Forwarded-User", "ana"), ("Authorization", &bearer(READER))]);
    assert_eq!(code, 401, "a forged header is refused even beside a good token");

    let reporters = serve(&settings(|h| {
        h.auth.mode = AuthMode::Proxy;
        h.auth.trusted_proxies = vec!["127.0.0.1".into()];
        h.auth.proxy_roles = vec!["report".into()];
    }));
    assert_eq!(get(reporters, "/owners", &[("X-Forwarded-User", "ana")]).0, 403, "proxy_roles apply");
}

#[test]
fn tls_with_a_ca_made_here() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = pki(dir.path());
    let h = settings(|h| {
        h.tls_cert = cert.clone();
        h.tls_key = key.clone();
        h.tls_ca = ca.clone();
    });
    let addr = serve(&h);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let trusting = remote::Client::new(tls::client_config(&h).expect("client"));
    let base = format!("https://{addr}");
    let t = Duration::from_secs(5);
    let (code, body) = rt.block_on(trusting.get(&base, "/owners", t, Some(&bearer(READER)))).expect("https GET");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let (code, _) = rt.block_on(trusting.get(&base, "/owners", t, None)).expect("https GET");
    assert_eq!(code, 401, "TLS does not replace the token");
    let (code, _) =
        rt.block_on(trusting.get(&format!("https://localhost:{}", addr.port()), "/healthz", t, None)).expect("by name");
    assert_eq!(code, 200);

    // A client that trusts another CA refuses the server.
    let other = tempfile::tempdir().expect("dir");
    let (other_ca, _, _) = pki(other.path());
    let stranger = settings(|h| h.tls_ca = other_ca);
    let stranger = remote::Client::new(tls::client_config(&stranger).expect("client"));
    let r = rt.block_on(stranger.get(&base, "/healthz", t, None));
    assert!(r.is_err(), "an unknown CA is refused: {r:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "plain HTTP is not served: {:?}", String::from_utf8_lossy(&raw));
}

#[test]
fn bad_pem_files_name_their_field() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = pki(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem\n").expect("write");
    let junk = junk.display().to_string();
    let cases = [
        (junk.clone(), key.clone(), "http.tls_cert"),
        ("/no/such/cert.pem".to_owned(), key.clone(), "http.tls_cert"),
        (cert.clone(), junk.clone(), "http.tls_key"),
        (cert.clone(), "/no/such/key.pem".to_owned(), "http.tls_key"),
        // A key that is not the certificate's.
        (cert.clone(), pki(tempfile::tempdir().expect("dir").path()).2, "http.tls_key"),
    ];
    for (c, k, field) in cases {
        let h = settings(|h| {
            h.tls_cert = c.clone();
            h.tls_key = k.clone();
        });
        let e = tls::server_config(&h).err().unwrap_or_else(|| panic!("{c} + {k} must fail"));
        assert_eq!(e.field, field, "{c} + {k}: {e}");
    }
    let e = tls::client_config(&settings(|h| h.tls_ca = junk.clone())).expect_err("junk CA");
    assert_eq!(e.field, "http.tls_ca");
    assert!(tls::client_config(&settings(|h| h.tls_ca = ca.clone())).expect("good CA").is_some());
}

#[test]
fn andon_run_with_a_bad_pem_stops_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_andon"))
        .args(["run"])
        .env("ANDON__HTTP__LISTEN", "127.0.0.1:0")
        .env("ANDON__HTTP__TLS_CERT", &junk)
        .env("ANDON__HTTP__TLS_KEY", &junk)
        .env("ANDON__KAFKA__BROKERS", "127.0.0.1:1")
        .output()
        .expect("andon run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a configuration error:\n{stderr}");
    assert!(stderr.contains("http.tls_cert"), "names the field:\n{stderr}");
}

#[test]
fn check_config_redacts_every_secret() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_andon"))
        .arg("check-config")
        .env("ANDON__HTTP__AUTH__TOKENS__CRM__SHA256", sha256_hex(CRM))
        .env("ANDON__HTTP__AUTH__TOKENS__CRM__ROLES", "report,update")
        .env("ANDON__HTTP__AUTH__PEER_TOKEN", "peer-secret-0123456789")
        .env("ANDON__KAFKA__PROPERTIES__SASL__PASSWORD", "kafka-s3cr3t")
        .env("ANDON__KAFKA__PROPERTIES__SSL__KEY__PASSWORD", "key-s3cr3t")
        .output()
        .expect("andon check-config");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}{}", String::from_utf8_lossy(&out.stderr));
    for secret in [sha256_hex(CRM).as_str(), "peer-secret", "kafka-s3cr3t", "key-s3cr3t"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert!(shown.contains("[http.auth.tokens.crm]"), "the token is listed:\n{shown}");
    assert!(
        shown.contains("roles = [\n    \"report\",\n    \"update\",\n]") || shown.contains("\"report\", \"update\""),
        "{shown}"
    );
    assert!(shown.matches("***redacted***").count() >= 4, "{shown}");
}
