//! The operators' view against a running `andon demo` (the real binary):
//! the status page in a real headless Chromium (loads, shows at least one
//! pull, draws its four charts, no console errors; a screenshot kept in
//! `tests/artifacts/`), and a
//! real Prometheus scraping it, queried for `andon_pulls_total` and the
//! recording rule of `deploy/prometheus/rules.yaml`.
//!
//! Chromium and Prometheus come from Debian's packages, installed by
//! `scripts/test` (the README's test command): these tests are ignored by a
//! plain `cargo test` (which lists them as such) and run by `scripts/test`;
//! run without the tools, they fail, they do not skip.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{self, chromium, http_get, Proc};

/// A reader's token the demo is given (authentication stays on, as in the
/// demo a user runs; the page takes it from its `#token=`).
const TOKEN: &str = "ops-test-reader-token";

/// Starts `andon demo` with its HTTP server on a free port; returns the
/// process and the address it serves on.
fn demo(seconds: u32) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_andon"))
        .args(["demo", "--duration", &format!("{seconds}s")])
        .env("ANDON__HTTP__LISTEN", "127.0.0.1:0")
        .env("ANDON__HTTP__AUTH__TOKENS__OPS__SHA256", andon::ops::auth::sha256_hex(TOKEN))
        .env("ANDON__HTTP__AUTH__TOKENS__OPS__ROLES", "read")
        .env("RUST_LOG", "info,librdkafka=error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn andon demo");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default().trim_matches('"').to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the demo says where it serves");
    (Proc(child), addr.parse().expect("an address"))
}

/// Waits until the demo has committed at least one pull.
fn wait_for_pulls(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, body) = http_get(addr, "/metrics");
        let pulls: f64 = body
            .lines()
            .filter(|l| l.starts_with("andon_pulls_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if pulls > 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "no pull within 90 s:\n{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs Chromium: scripts/test installs it"]
fn the_status_page_in_headless_chromium_shows_pulls_without_console_errors() {
    let _parallel = common::parallel();
    let (_demo, addr) = demo(150);
    wait_for_pulls(addr);
    let url = format!("http://{addr}/#token={TOKEN}");
    let dom = chromium(&["--dump-dom"], &url);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    let pulls: u64 = html
        .split("id=\"pulls\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("the page shows a pull count:\n{html}\n{log}"));
    assert!(pulls >= 1, "at least one pull on the page");
    assert!(html.contains("ready"), "the page reached the instance:\n{html}");
    assert_eq!(html.matches("class=\"uplot").count(), 4, "four charts drawn by uPlot:\n{html}");
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("ERROR"))).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let shot = dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1280,1100"], &url);
    assert!(shot.exists(), "screenshot written: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata(&shot).expect("png").len() > 10_000, "a real picture");
}

#[test]
#[ignore = "needs Prometheus: scripts/test installs it"]
fn a_real_prometheus_scrapes_the_demo_and_evaluates_the_recording_rule() {
    let _parallel = common::parallel();
    let (_demo, addr) = demo(150);
    wait_for_pulls(addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yaml");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: andon\n    static_configs:\n      - targets: ['{addr}']\n",
            rules.display()
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let _prom = Proc(
        Command::new(common::need_tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let query = |q: &str| -> String {
        let q: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"_:".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        http_get(prom_addr, &format!("/api/v1/query?query={q}")).1
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pulls = String::new();
    let mut ratio = String::new();
    while Instant::now() < deadline {
        pulls = query("sum(andon_pulls_total)");
        ratio = query("andon:bad_pull_ratio:30d");
        if finite_value(&pulls).is_some_and(|v| v >= 1.0) && finite_value(&ratio).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(finite_value(&pulls).is_some_and(|v| v >= 1.0), "Prometheus scraped andon_pulls_total: {pulls}");
    // 0/0 (nothing closed yet) would be NaN: a number means closed work
    // orders were scraped and the rule's ratio computed over them.
    let r = finite_value(&ratio);
    assert!(
        r.is_some_and(|r| (0.0..=1.0).contains(&r)),
        "the recording rule has a ratio (work orders closed in the demo): {ratio}"
    );
}

/// The first sample's value of a Prometheus instant-query answer, if it
/// is a finite number.
fn finite_value(body: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let sample = v["data"]["result"].get(0)?;
    let value: f64 = sample["value"].get(1)?.as_str()?.parse().ok()?;
    value.is_finite().then_some(value)
}
