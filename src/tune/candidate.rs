//! One candidate replay: the history's complaints through the real engine
//! under candidate rules, with the real work orders' closes standing in for
//! the updates.
//!
//! The real updates name the real work orders (`<key>/<issue>#<n>`); under
//! other rules the work orders open at other times and the engine would
//! refuse them. So each work order a candidate opens is closed by a
//! generated update, as the real investigation would have closed it:
//!
//! - in a real work order's episode ([`super::truth`]): at that work
//!   order's close, with its verdict (the same fix, found at the same time);
//! - in the episode of a work order still open at the end: never;
//! - outside every episode (no real work order judges it): after the time
//!   a work order of its issue typically stays open
//!   ([`super::truth::typical_open`]).
//!
//! The generated closes are merged in as `replay` merges updates: by event
//! time, complaints first on ties. A close is taken only before a
//! complaint later than it, so it can never make a complaint late
//! (docs/semantics.md rule 3): the stream time it sets is below that
//! complaint's own time, and the complaint's lateness is measured against
//! W + grace before it. Stream time, and so every complaint's lateness, is
//! therefore the same in every candidate run as in reality.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::engine::{Engine, EngineConfig, EscalationClock, RecordMeta};
use crate::event::{Complaint, Output, Update, Verdict, WorkOrderEvent};
use crate::time::{Dur, Ts};

use super::truth::{Keys, Pull};

/// Replays `complaints` under `cfg` and returns every pull it made, in
/// order. `open_for[key]` is how long an unjudged work order of that key's
/// issue stays open.
pub fn run(cfg: Arc<EngineConfig>, complaints: &[Complaint], keys: &Keys, open_for: &[Dur]) -> Vec<Pull> {
    // The wall clock escalates only on `tick`, which is never called here:
    // escalations change no pull, and skipping them saves their work.
    let mut engine = Engine::new(cfg, EscalationClock::WallClock);
    let mut out = Vec::with_capacity(16);
    let mut pulls = Vec::new();
    // (close time, sequence, andon_id): the sequence keeps ties in the order the work orders opened.
    let mut closes: BinaryHeap<Reverse<(Ts, u64, String)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for c in complaints {
        while let Some(Reverse((at, _, _))) = closes.peek() {
            if *at >= c.occurred_at {
                break; // complaints first on ties
            }
            let Some(Reverse((at, _, andon_id))) = closes.pop() else { break };
            let close = Update {
                update_id: "andon-tune".into(),
                andon_id,
                // Every generated work order is closed at its first step: a
                // verdict closes whatever steps remain.
                step: 1,
                actor: "andon-tune".into(),
                at,
                verdict: Some(Verdict::DefectConfirmed),
            };
            let _ = engine.on_update(&close, RecordMeta::default(), &mut out);
            out.clear();
        }
        let _ = engine.on_complaint(c, RecordMeta::default(), &mut out);
        for o in out.drain(..) {
            let Output::WorkOrder(WorkOrderEvent::Opened { andon_id, subject_key, issue, trigger, opened_at, .. }) = o
            else {
                continue;
            };
            let Some(key) = keys.get(&subject_key, &issue) else { continue };
            pulls.push(Pull { key, at: opened_at, trigger });
            let k = &keys.keys[key as usize];
            let close_at = match k.episode(opened_at) {
                Some(e) => e.until,
                None => Some(opened_at + open_for[key as usize]),
            };
            if let Some(at) = close_at {
                seq += 1;
                closes.push(Reverse((at, seq, andon_id)));
            }
        }
    }
    pulls
}
