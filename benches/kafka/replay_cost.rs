//! Section 3: replay's CPU per event on the same complaints, in this
//! process on one thread, the floor andon's CPU at work is held to.

use std::time::Instant;

use andon::config::Settings;

use crate::procs::thread_cpu_secs;
use crate::traffic::Rec;
use crate::R;

/// Replay's CPU µs per complaint (this thread, best of three) and its
/// complaints/s, over `input` as JSON lines with the throughput rules.
pub fn replay_cost(input: &[Rec]) -> R<(f64, f64)> {
    let settings =
        Settings::from_toml("[rules.default]\nthreshold = 3\nwindow = \"1h\"\n").map_err(|e| e.to_string())?;
    let lines = input.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join("\n");
    let n = input.len() as f64;
    let mut best = (f64::MAX, 0.0);
    for _ in 0..3 {
        let (cpu, t) = (thread_cpu_secs(), Instant::now());
        let complaints = andon::replay::Input { name: "complaints".into(), reader: lines.as_bytes() };
        let summary = andon::replay::replay(
            &settings,
            complaints,
            None::<andon::replay::Input<&[u8]>>,
            std::io::sink(),
            &mut |_| {},
        )
        .map_err(|e| format!("replay: {e}"))?;
        let (cpu, wall) = (thread_cpu_secs() - cpu, t.elapsed().as_secs_f64());
        if summary.complaints_read != input.len() as u64 {
            return Err(format!("replay read {} of {n}", summary.complaints_read));
        }
        if cpu < best.0 {
            best = (cpu, wall);
        }
    }
    Ok((best.0 / n * 1e6, n / best.1))
}
