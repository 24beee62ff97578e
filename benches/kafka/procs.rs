//! Child processes and what /proc says of them: [`Proc`] (spawned with
//! its output to a log, stopped when dropped), CPU seconds of a process or
//! of this thread, the Unix clock every process here shares, and a bare
//! HTTP GET for /metrics.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::R;

/// Unix time now, in seconds: the clock all processes here share.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

pub fn now_micros() -> i64 {
    (now() * 1e6) as i64
}

/// Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`;
/// 100 where it cannot be asked).
pub fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds a process has used, all its threads (exited ones
/// included): utime + stime from `/proc/{pid}/stat` (`pid` "self" for this
/// process). None once it is gone. Resolution: one clock tick (10 ms).
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its closing
    // parenthesis. utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// CPU seconds of the calling thread, to the nanosecond
/// (`/proc/thread-self/schedstat`, first field).
pub fn thread_cpu_secs() -> f64 {
    // The kernel brings the running thread's figure up to date when it
    // is switched out: a yield makes it current.
    std::thread::yield_now();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// A child process whose stdout and stderr go to a log file; stopped
/// (SIGTERM, then SIGKILL) if still running when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    /// Unix time just before the spawn.
    pub started: f64,
}

impl Proc {
    /// Spawns `cmd` (stdin closed, stdout and stderr to `log`).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> R<Proc> {
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let started = now();
        let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Proc { name: name.to_owned(), child, log: log.to_owned(), started })
    }

    /// Its CPU seconds so far (see [`cpu_secs`]).
    pub fn cpu(&self) -> Option<f64> {
        cpu_secs(&self.child.id().to_string())
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> R<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not finish within {timeout:?} (log {})", self.name, self.log.display()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asks it to stop (SIGTERM), waits up to `grace`, then kills it
    /// (SIGKILL): its exit status (None if it had to be killed) and the
    /// seconds it took.
    pub fn stop(&mut self, grace: Duration) -> (Option<ExitStatus>, f64) {
        let t = Instant::now();
        if let Some(s) = self.exited() {
            return (Some(s), 0.0);
        }
        signal(self.child.id(), "TERM");
        while t.elapsed() < grace {
            if let Some(s) = self.exited() {
                return (Some(s), t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, t.elapsed().as_secs_f64())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// Sends `SIG{sig}` to process `pid` (one of ours) with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `GET http://{addr}{path}` (HTTP/1.0, so the body is never chunked):
/// status and body, or None when nothing answers within 2 s.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sock: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
