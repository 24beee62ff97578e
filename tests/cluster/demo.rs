//! `andon demo` as a user runs it: the real binary, stdout piped (so the
//! one-line mode), for 40 s. The final summary must show the whole cycle:
//! pulls, delists and at least one relist, and the exit code must be 0.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::serial;

#[test]
fn demo_runs_the_whole_cycle_and_exits_cleanly() {
    // Timed: tens of complaints a second for 40 s.
    let _serial = serial();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_andon"));
    // A developer's own ANDON__ variables must not change what the test sees.
    for (k, _) in std::env::vars() {
        if k.starts_with("ANDON__") {
            cmd.env_remove(k);
        }
    }
    let started = Instant::now();
    let mut child = cmd
        .args(["demo", "--duration", "40s"])
        .env("RUST_LOG", "warn")
        // Any free port, should the processor serve HTTP.
        .env("ANDON__HTTP__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the andon binary starts");
    // Both pipes are drained on threads so that neither can fill up and stall the demo.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // A hang must fail the test, not the test run.
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for andon") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    let tail: String =
        stderr.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let status = status
        .unwrap_or_else(|| panic!("andon demo did not stop within 90 s\nstdout:\n{stdout}\nstderr (tail):\n{tail}"));
    assert!(status.success(), "andon demo exited with {status}\nstdout:\n{stdout}\nstderr (tail):\n{tail}");

    // Non-terminal mode: periodic one-line summaries, no screen clearing.
    assert!(!stdout.contains('\x1b'), "no ANSI escapes when stdout is not a terminal:\n{stdout}");
    assert!(stdout.lines().filter(|l| l.starts_with('[')).count() >= 5, "a line every 5 s:\n{stdout}");

    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let get = |key: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in summary: {summary}"))
    };
    assert!(get("complaints") > 40 * 40, "traffic at tens per second: {summary}");
    assert!(get("pulls") > 0, "pulls: {summary}");
    assert!(get("delists") > 0, "delists: {summary}");
    assert!(get("relists") >= 1, "at least one relist: {summary}");
    assert!(get("dlq") > 0, "malformed records reach the DLQ: {summary}");
    assert!(get("closed") >= get("relists"), "every relist comes from a closed work order: {summary}");
    eprintln!("andon demo: {summary} (test took {:.1} s)", started.elapsed().as_secs_f64());
}
