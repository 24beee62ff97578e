//! Two members with authentication and TLS on, as an operator would run
//! them: `/subjects` asked of one member is forwarded over HTTPS to the
//! member that owns the subject's partition, with credentials (here the
//! caller's token, passed on; `http.auth.peer_token` unset), and the owner
//! answers. The fast checks of tokens, roles, the proxy header and TLS are
//! in `tests/offline/auth.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use andon::config::Settings;
use andon::view::remote;
use serde_json::Value;

use crate::common::*;

const TOKEN: &str = "cluster-auth-reader-token";

struct Member {
    _proc: Proc,
    addr: SocketAddr,
}

fn member(config: &Path, log: std::path::PathBuf) -> Member {
    let proc = spawn_andon(&["run", "--config", config.to_str().expect("path")], &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = served_addr(&text) {
            return Member { _proc: proc, addr };
        }
        assert!(Instant::now() < deadline, "member did not start serving:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn subjects_are_forwarded_between_members_over_https_with_the_callers_token() {
    let _parallel = parallel();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, bootstrap) = cluster_process(On::Mock, dir.path(), 2);
    let (ca, cert, key) = pki(dir.path());
    let toml = settings_toml(&bootstrap, "")
        .replace(
            "[http.auth]\n",
            &format!("tls_cert = \"{cert}\"\ntls_key = \"{key}\"\ntls_ca = \"{ca}\"\n[http.auth]\n"),
        )
        .replace("mode = \"none\"\n", "mode = \"tokens\"\n")
        + &format!(
            "[http.auth.tokens.reader]\nsha256 = \"{}\"\nroles = [\"read\"]\n",
            andon::ops::auth::sha256_hex(TOKEN)
        );
    let settings = Settings::from_toml(&toml).expect("settings");
    let config = dir.path().join("andon.toml");
    std::fs::write(&config, &toml).expect("config");
    let members: Vec<Member> = (0..2).map(|i| member(&config, dir.path().join(format!("m{i}.log")))).collect();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let client = remote::Client::new(andon::ops::tls::client_config(&settings.http).expect("client tls"));
    let auth = format!("Bearer {TOKEN}");
    let get = |addr: SocketAddr, path: &str, auth: Option<&str>| -> (u16, Value) {
        match rt.block_on(client.get(&format!("https://{addr}"), path, Duration::from_secs(10), auth)) {
            Ok((code, body)) => (code, serde_json::from_slice(&body).unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        }
    };

    // Each member owns one partition, and each knows the other's https://
    // URL and partition (from the view's member records).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let views: Vec<Value> = members.iter().map(|m| get(m.addr, "/cluster", Some(&auth)).1).collect();
        let settled = views.iter().all(|v| {
            v["partitions"].as_array().is_some_and(|p| p.len() == 1)
                && v["members"].as_array().is_some_and(|m| {
                    m.len() == 2
                        && m.iter().all(|m| {
                            m["advertise"].as_str().is_some_and(|a| a.starts_with("https://"))
                                && m["partitions"].as_array().is_some_and(|p| p.len() == 1)
                        })
                })
        });
        if settled {
            break;
        }
        assert!(Instant::now() < deadline, "two members, one partition each, https:// advertised: {views:?}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let (code, v) = get(members[0].addr, "/subjects/sku/A1", None);
    assert_eq!(code, 401, "no token, no answer: {v}");
    // Enough subjects that both partitions are hit; each asked of both
    // members, so one of the two answers is forwarded.
    let mut forwarded = 0;
    for i in 0..8 {
        let path = format!("/subjects/sku/AUTH-{i}");
        for m in &members {
            let (code, v) = get(m.addr, &path, Some(&auth));
            assert_eq!(code, 200, "{path} at {}: {v}", m.addr);
            if v["counts_from"]["local"] == Value::Bool(false) {
                forwarded += 1;
            }
        }
    }
    assert_eq!(forwarded, 8, "each subject answered once by its owner, once forwarded to it");
}
