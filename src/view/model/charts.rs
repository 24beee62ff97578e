//! The status page's charts: the last hour of the whole cluster, summed
//! over the series the members publish.

use serde::Serialize;

use super::{Model, MEMBER_EXPIRY};
use crate::time::{Dur, Ts};
use crate::view::record::{MemberRecord, BUCKETS, BUCKET_SECONDS};

/// A member heard from this recently is taken to be running.
const MEMBER_LIVE: Dur = Dur::from_secs(30);

impl Model {
    /// The last hour of the whole cluster, summed over the members'
    /// published series, up to the last bucket every running member has
    /// published (so the newest point is never a partial sum).
    pub fn charts(&self, now: Ts) -> Charts {
        let recent = now - MEMBER_EXPIRY;
        let members: Vec<&MemberRecord> = self.members.values().filter(|m| m.updated_at >= recent).collect();
        let last = |m: &MemberRecord| m.series.first_bucket + m.series.complaints.len() as i64 - 1;
        let live = now - MEMBER_LIVE;
        let end = members
            .iter()
            .filter(|m| m.updated_at >= live && !m.series.complaints.is_empty())
            .map(|m| last(m))
            .min()
            .or_else(|| members.iter().map(|m| last(m)).max())
            .unwrap_or((now - Ts::EPOCH).as_secs() / BUCKET_SECONDS);
        let first = end - BUCKETS as i64 + 1;
        let mut c = Charts {
            bucket_seconds: BUCKET_SECONDS,
            first_bucket_at: first * BUCKET_SECONDS,
            complaints_per_second: vec![0.0; BUCKETS],
            pulls: vec![0; BUCKETS],
            open_andons: vec![None; BUCKETS],
            overdue_steps: vec![None; BUCKETS],
        };
        for m in members {
            let s = &m.series;
            for (i, b) in (s.first_bucket..).take(s.complaints.len()).enumerate() {
                if b < first || b > end {
                    continue;
                }
                let k = (b - first) as usize;
                c.complaints_per_second[k] += s.complaints[i] as f64 / BUCKET_SECONDS as f64;
                c.pulls[k] += s.pulls.get(i).copied().unwrap_or(0);
                if let Some(v) = s.open.get(i) {
                    *c.open_andons[k].get_or_insert(0) += v;
                }
                if let Some(v) = s.overdue.get(i) {
                    *c.overdue_steps[k].get_or_insert(0) += v;
                }
            }
        }
        c
    }
}

/// The status page's charts: one value per bucket, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charts {
    pub bucket_seconds: i64,
    /// Unix seconds at which the first bucket starts.
    pub first_bucket_at: i64,
    pub complaints_per_second: Vec<f64>,
    /// Andons pulled in each bucket.
    pub pulls: Vec<u64>,
    /// `None` where no member sampled (nobody was running).
    pub open_andons: Vec<Option<u64>>,
    pub overdue_steps: Vec<Option<u64>>,
}
