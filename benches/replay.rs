//! Replay throughput and memory per key, on one core.
//!
//! `cargo bench --bench replay` prints, for one generated input held in
//! memory (so the disk is not measured):
//! - raw: every line parsed as JSON into nothing (`IgnoredAny`): the floor
//!   any JSON consumer pays;
//! - engine: pre-decoded complaints through `Engine::on_complaint` alone;
//! - full: decode + engine + JSON encoding of every output, as `replay`;
//!
//! with complaints/s for each (best of three, interleaved) and full/raw as a ratio taken in the same run
//! (the machine is shared; absolute numbers wander, ratios less so). Then
//! the engine's heap bytes per active (subject, issue) key at 1,000,000
//! keys (issue 19's size; 2,000 under `cargo test`), counted by a global
//! allocator that tallies the live bytes asked of it, with the sizes of
//! the structs a key holds; and the cost per complaint on
//! one key flooded by 100,000 complaints, at 1,000, 10,000 and 100,000 (it
//! should stay flat: O(log n) per complaint).
//!
//! Then `andon tune`'s cost: 1,000,000 complaints (20,000 under `cargo
//! test`) priced under 25 candidates (thresholds 1 to 5 × windows 1 h to
//! 7 d) plus the baseline, on all cores, as complaints × candidates per
//! second, and against the engine-alone rate times the cores (how much of
//! the machine the parallel replays use). `cargo bench --bench replay --
//! tune` runs that section alone, `-- memory` the memory figures alone.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small input as a
//! smoke test, so the benchmark keeps compiling and its workload keeps
//! producing pulls.

// The counting allocator below is the one place that needs `unsafe`: it
// forwards to andon's allocator (mimalloc, as in src/main.rs) and only adds
// bookkeeping.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use andon::config::Settings;
use andon::engine::{Engine, EngineConfig, EscalationClock, RecordMeta};
use andon::event::{decode_complaint, Complaint, Output};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const ISSUES: [&str; 5] = ["damaged_in_transit", "print_defect", "wrong_item", "missing_parts", "safety_hazard"];
const CHANNELS: [&str; 4] = ["phone", "chat", "email", "social"];

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config() -> Arc<EngineConfig> {
    Settings::from_toml(
        r#"
        [processing]
        grace = "1d"
        [rules.default]
        threshold = 3
        window = "7d"
        route = ["product", "operations", "supply_chain"]
        [[rules.issue]]
        issues = ["safety_hazard"]
        threshold = 1
        "#,
    )
    .expect("benchmark config")
    .engine
}

/// Complaints as JSON lines: a skewed popularity over `skus` subjects (a few
/// hot ones pull, the long tail only counts), a million customers, one
/// complaint every 20 ms of event time, a note on some.
fn generate(n: usize, skus: u64) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n * 260);
    let start = 1_790_000_000i64; // 2026-09-21
    for i in 0..n {
        // Cube of a uniform number: index 0 is hot, the tail is long.
        let u = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
        let sku = (u * u * u * skus as f64) as u64;
        // Safety hazards are rare, or everything would be pulled at once.
        let issue = if rng.below(1000) == 0 { ISSUES[4] } else { ISSUES[rng.below(4) as usize] };
        let secs = start + (i as i64) / 50;
        let ms = (i % 50) * 20;
        let ts = chrono::DateTime::from_timestamp(secs, ms as u32 * 1_000_000).expect("in range");
        let note = if i % 3 == 0 {
            r#","note":"Customer says the box arrived crushed and the item does not work""#
        } else {
            ""
        };
        out.extend_from_slice(
            format!(
                r#"{{"event_id":"ev-{i:010}","occurred_at":"{}","subject":{{"kind":"sku","id":"B{sku:09}"}},"issue":"{issue}","customer_id":"cust-{:07}","channel":"{}","agent_id":"agent-{:03}"{note}}}"#,
                ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                rng.below(1_000_000),
                CHANNELS[rng.below(4) as usize],
                rng.below(500),
            )
            .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

struct Run {
    secs: f64,
    outputs: usize,
}

fn raw(data: &[u8]) -> Run {
    let t = Instant::now();
    let mut n = 0;
    for line in lines(data) {
        let v: serde::de::IgnoredAny = serde_json::from_slice(line).expect("generated JSON");
        black_box(v);
        n += 1;
    }
    Run { secs: t.elapsed().as_secs_f64(), outputs: n }
}

fn engine_only(cfg: &Arc<EngineConfig>, complaints: &[Complaint]) -> Run {
    let mut engine = Engine::new(cfg.clone(), EscalationClock::StreamTime);
    let mut out = Vec::new();
    let mut outputs = 0;
    // The engine takes complaints by value (it keeps their strings).
    let owned = complaints.to_vec();
    let t = Instant::now();
    for c in owned {
        let _ = black_box(engine.on_complaint(c, RecordMeta::default(), &mut out));
        outputs += out.len();
        out.clear();
    }
    Run { secs: t.elapsed().as_secs_f64(), outputs }
}

fn full(cfg: &Arc<EngineConfig>, data: &[u8]) -> Run {
    let mut engine = Engine::new(cfg.clone(), EscalationClock::StreamTime);
    let mut out: Vec<Output> = Vec::new();
    let mut encoded = Vec::with_capacity(1 << 16);
    let mut outputs = 0;
    let t = Instant::now();
    for line in lines(data) {
        if let Ok(c) = decode_complaint(line, 65536) {
            let _ = engine.on_complaint(c.clone(), RecordMeta::default(), &mut out);
        }
        for o in out.drain(..) {
            encoded.extend_from_slice(&o.to_json());
            outputs += 1;
        }
        if encoded.len() > 1 << 16 {
            black_box(&encoded);
            encoded.clear();
        }
    }
    Run { secs: t.elapsed().as_secs_f64(), outputs }
}

/// Live heap bytes per key after `per_key` complaints from distinct
/// customers on each of `keys` keys, none pulling (threshold above it).
fn bytes_per_key(keys: usize, per_key: usize) -> f64 {
    let cfg = Settings::from_toml("[rules.default]\nthreshold = 100\nwindow = \"7d\"\n").expect("config").engine;
    // Counted from before the complaints are decoded: the engine takes
    // them by value and keeps their strings, so what it holds was partly
    // allocated by the decoder (and what it drops of them is freed).
    let before = live();
    let complaints: Vec<Complaint> = (0..keys * per_key)
        .map(|i| {
            let k = i % keys;
            let line = format!(
                r#"{{"event_id":"ev-{i:010}","occurred_at":"2026-11-01T00:00:00Z","subject":{{"kind":"sku","id":"B{k:09}"}},"issue":"{}","customer_id":"cust-{i:07}"}}"#,
                ISSUES[k % 4]
            );
            decode_complaint(line.as_bytes(), 65536).expect("valid")
        })
        .collect();
    let mut engine = Engine::new(cfg, EscalationClock::StreamTime);
    let mut out = Vec::new();
    for c in complaints {
        engine.on_complaint(c, RecordMeta::default(), &mut out).expect("accepted");
    }
    assert_eq!(engine.key_count(), keys);
    drop(out);
    let bytes = (live() - before) as f64;
    drop(engine);
    bytes / keys as f64
}

/// Heap bytes per key at `keys` keys, and the sizes of what a key holds:
/// a subjects' table slot (a pointer) and the subject it points to (key
/// and `SubjectState`), an `IssueState` per issue, a `Counted` per
/// complaint (with its ids' string on the heap), and a slot of the ids'
/// table per complaint.
fn memory_section(keys: usize) {
    use andon::engine::{window::Counted, IdHash, IssueState, SubjectState};
    use std::mem::size_of;
    println!("state per active key, 1 complaint  {:>8.0} bytes ({keys} keys)", bytes_per_key(keys, 1));
    println!("state per active key, 3 complaints {:>8.0} bytes ({keys} keys)", bytes_per_key(keys, 3));
    println!(
        "  of which: subject slot {} + subject {} + issue {} + per complaint {} and an id slot {} (+ strings, table slack)",
        size_of::<Box<()>>(),
        size_of::<(Box<str>, SubjectState)>(),
        size_of::<IssueState>(),
        size_of::<Counted>(),
        size_of::<(IdHash, andon::time::Ts)>(),
    );
}

/// One subject flooded by `n` complaints of one issue, each from a
/// customer of its own, within the window: nanoseconds per complaint over
/// the 1,000 complaints that take the key to each size in `at`, best of
/// three runs. `threshold` 1,000,000 keeps the key counting (never pulls);
/// threshold 2 pulls at the second complaint, and the rest attach to the
/// open andon as evidence.
fn flood(threshold: u32, n: usize, at: &[usize]) -> Vec<f64> {
    let toml = format!("[processing]\ngrace = \"1d\"\n[rules.default]\nthreshold = {threshold}\nwindow = \"7d\"\n");
    let cfg = Settings::from_toml(&toml).expect("config").engine;
    let complaints: Vec<Complaint> = (0..n)
        .map(|i| {
            let line = format!(
                r#"{{"event_id":"fl-{i:09}","occurred_at":"2026-11-01T00:{:02}:{:02}.{:06}Z","subject":{{"kind":"sku","id":"FLOODED"}},"issue":"print_defect","customer_id":"cust-{i:09}"}}"#,
                i / 1_000_000 % 60,
                i / 10_000 % 60,
                i % 10_000 * 100,
            );
            decode_complaint(line.as_bytes(), 65536).expect("valid")
        })
        .collect();
    let mut best = vec![f64::INFINITY; at.len()];
    for _ in 0..3 {
        let mut engine = Engine::new(cfg.clone(), EscalationClock::StreamTime);
        let mut out = Vec::new();
        let mut owned = complaints.clone().into_iter();
        let mut done = 0;
        for (i, &size) in at.iter().enumerate() {
            // Up to 1,000 before the size untimed, the last 1,000 timed.
            for c in owned.by_ref().take(size - 1000 - done) {
                let _ = black_box(engine.on_complaint(c, RecordMeta::default(), &mut out));
                out.clear();
            }
            let t = Instant::now();
            for c in owned.by_ref().take(1000) {
                let _ = black_box(engine.on_complaint(c, RecordMeta::default(), &mut out));
                out.clear();
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e9 / 1000.0);
            done = size;
        }
    }
    best
}

/// `andon tune` on the first `n` complaints of `data`: 25 candidates plus
/// the baseline. Returns (wall seconds, CPU seconds, replays).
fn tune_grid(n: usize, data: &[u8]) -> (f64, f64, usize) {
    use andon::tune::{self, Grid, History, Options};
    let settings = Settings::from_toml(
        r#"
        [rules.default]
        threshold = 3
        window = "7d"
        "#,
    )
    .expect("benchmark config");
    let complaints: Vec<Complaint> =
        lines(data).take(n).map(|l| decode_complaint(l, 65536).expect("generated complaints are valid")).collect();
    let history = History { complaints_read: complaints.len() as u64, complaints, ..History::default() };
    let windows: Vec<String> = ["1h", "6h", "24h", "3d", "7d"].map(String::from).to_vec();
    let grid = Grid::parse(None, Some(&windows), &[]).expect("grid");
    assert_eq!(grid.candidates().len(), 25);
    let (t0, cpu0) = (Instant::now(), cpu_secs());
    let report = tune::tune(&settings, &history, &Options { grid, target: 0.02 }, &|| {}).expect("tune");
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    assert!(report.issues.iter().any(|i| i.candidates.iter().any(|c| c.pulls > 0)), "the workload pulls");
    black_box(&report);
    (secs, cpu, report.replays)
}

/// This process's CPU time (user + system) so far, from /proc (Linux; 0
/// elsewhere): on a shared machine the wall clock says how busy the
/// others were, the CPU time what the work cost.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn tune_section(bench: bool, engine_rate: Option<f64>) {
    let n = if bench { 1_000_000 } else { 20_000 };
    let data = generate(n, if bench { 100_000 } else { 2_000 });
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (secs, cpu, replays) = tune_grid(n, &data);
    let candidates = replays - 1;
    let work = (n * replays) as f64;
    println!(
        "tune: {n} complaints x {candidates} candidates (+ baseline) in {secs:.1} s wall, {cpu:.1} s CPU, on {cores} cores"
    );
    println!("tune, complaint-replays per wall second {:>12.0}", work / secs);
    if cpu > 0.0 {
        // On an idle machine the wall time would be the CPU time spread
        // over the cores (the replays are independent and many).
        let idle = cpu / cores as f64;
        println!(
            "tune, complaint-replays per CPU second  {:>12.0}; on {cores} idle cores: about {idle:.1} s{}",
            work / cpu,
            if n == 1_000_000 {
                if idle < 30.0 {
                    " (aim under 30 s: met)"
                } else {
                    " (aim under 30 s: not met)"
                }
            } else {
                ""
            }
        );
        println!("load average while it ran: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    }
    if let Some(rate) = engine_rate {
        println!("tune per CPU second / engine alone {:>10.2}", work / cpu.max(f64::MIN_POSITIVE) / rate);
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if std::env::args().any(|a| a == "tune") {
        let n = if bench { 1_000_000 } else { 20_000 };
        let data = generate(n, if bench { 100_000 } else { 2_000 });
        let complaints: Vec<Complaint> =
            lines(&data).map(|l| decode_complaint(l, 65536).expect("generated complaints are valid")).collect();
        let cpu0 = cpu_secs();
        let e = engine_only(&config(), &complaints);
        let cpu = cpu_secs() - cpu0;
        // Per CPU second, like tune's: the wall clock of a shared machine says little.
        let rate = n as f64 / if cpu > 0.0 { cpu } else { e.secs };
        println!("engine alone (and its input cloned) {rate:>9.0} complaints per CPU second");
        tune_section(bench, Some(rate));
        return;
    }
    // Memory per key at issue 19's size, 1,000,000 keys: the hash tables
    // have a power-of-two number of slots, so the figure depends on where
    // the count falls (at 1,000,000 they are half full).
    let keys = if bench { 1_000_000 } else { 2_000 };
    if std::env::args().any(|a| a == "memory") {
        memory_section(keys);
        return;
    }
    let (n, skus) = if bench { (2_000_000, 200_000) } else { (20_000, 2_000) };
    let cfg = config();
    let data = generate(n, skus);
    let complaints: Vec<Complaint> =
        lines(&data).map(|l| decode_complaint(l, 65536).expect("generated complaints are valid")).collect();

    // Best of three, interleaved: the first pass of a process pays page
    // faults for heap it has never touched, which is start-up, not
    // throughput.
    let best = |a: Run, b: Run| if b.secs < a.secs { b } else { a };
    let (mut r, mut e, mut f) = (raw(&data), engine_only(&cfg, &complaints), full(&cfg, &data));
    for _ in 1..3 {
        r = best(r, raw(&data));
        e = best(e, engine_only(&cfg, &complaints));
        f = best(f, full(&cfg, &data));
    }
    assert_eq!(e.outputs, f.outputs, "both paths produce the same outputs");
    assert!(e.outputs > 0, "the workload pulls");

    let rate = |r: &Run| n as f64 / r.secs;
    println!(
        "input: {n} complaints, {:.1} MiB of JSON, {skus} subjects x {} issues; {} outputs",
        data.len() as f64 / (1 << 20) as f64,
        ISSUES.len(),
        e.outputs
    );
    println!("raw JSON parse (IgnoredAny)     {:>12.0} complaints/s", rate(&r));
    println!("engine alone                     {:>12.0} complaints/s", rate(&e));
    println!("decode + engine + encode         {:>12.0} complaints/s", rate(&f));
    println!("ratio full / raw parse           {:>12.2}", rate(&f) / rate(&r));
    memory_section(keys);
    // A flooded key: cost per complaint as the key grows (O(log n), not
    // O(n)): the last 1,000 complaints before each size.
    let sizes: &[usize] = if bench { &[1_000, 10_000, 100_000] } else { &[1_000, 5_000] };
    let n = *sizes.last().expect("sizes");
    for (threshold, what) in [(1_000_000, "counting, never pulls"), (2, "pulled, the rest attach")] {
        let ns = flood(threshold, n, sizes);
        let cells: Vec<String> = sizes.iter().zip(&ns).map(|(s, ns)| format!("{ns:.0} ns at {s}")).collect();
        println!("one key flooded ({what}): {}; last/first {:.2}", cells.join(", "), ns[ns.len() - 1] / ns[0]);
    }
    tune_section(bench, None);
    if !bench {
        println!("(smoke run; `cargo bench --bench replay` for the real sizes)");
    }
}
