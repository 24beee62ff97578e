//! What the model answers about open andons, off-sale subjects, recent
//! events and members (`/andons`, `/recent`, who owns a partition), and
//! the subject a `/subjects/{kind}/{id}` path names.

use serde::Serialize;

use super::{Model, Recent};
use crate::event::{format_timestamp, Subject};
use crate::time::Ts;
use crate::view::record::{AndonRecord, MemberRecord};

/// An open andon as served: the stored record and whether its current
/// step is overdue now.
#[derive(Debug, Clone, Serialize)]
pub struct AndonOut<'a> {
    #[serde(flatten)]
    pub andon: &'a AndonRecord,
    pub overdue: bool,
}

impl Model {
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn off_sale_count(&self) -> usize {
        self.delisting.len()
    }

    pub fn closed_count(&self) -> usize {
        self.closed.len()
    }

    /// Every open andon, by due time then id.
    pub fn andons(&self, now: Ts) -> Vec<AndonOut<'_>> {
        let mut v: Vec<AndonOut<'_>> =
            self.open.values().map(|a| AndonOut { andon: a, overdue: a.due_at < now }).collect();
        v.sort_by(|a, b| (a.andon.due_at, &a.andon.andon_id).cmp(&(b.andon.due_at, &b.andon.andon_id)));
        v
    }

    pub fn andon(&self, id: &str, now: Ts) -> Option<AndonOut<'_>> {
        self.open.get(id).map(|a| AndonOut { andon: a, overdue: a.due_at < now })
    }

    /// The open andons of one subject, by due time then id.
    pub fn subject_andons(&self, subject_key: &str, now: Ts) -> Vec<AndonOut<'_>> {
        let mut v = self.andons(now);
        v.retain(|a| a.andon.subject_key() == subject_key);
        v
    }

    pub fn off_sale(&self, subject_key: &str) -> bool {
        self.delisting.contains_key(subject_key)
    }

    /// Ids of the open andons of partition `p` (for an owner to tombstone
    /// those it no longer has open).
    pub fn andon_ids_in(&self, p: i32) -> Vec<String> {
        let mut v: Vec<String> = self.open.values().filter(|a| a.partition == p).map(|a| a.andon_id.clone()).collect();
        v.sort();
        v
    }

    /// (open, overdue now) andons of the given partitions.
    pub fn open_in(&self, partitions: &[i32], now: Ts) -> (u64, u64) {
        self.open
            .values()
            .filter(|a| partitions.contains(&a.partition))
            .fold((0, 0), |(o, d), a| (o + 1, d + u64::from(a.due_at < now)))
    }

    /// The latest events, oldest first.
    pub fn recent(&self) -> Vec<Recent> {
        self.recent
            .iter()
            .map(|((at, _), n)| Recent {
                kind: n.kind,
                id: n.id.clone(),
                subject: n.subject.clone(),
                at: format_timestamp(*at),
                detail: n.detail.clone(),
            })
            .collect()
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.values()
    }

    /// The member that says it owns partition `p` most recently.
    pub fn owner_of(&self, p: i32) -> Option<&MemberRecord> {
        self.members.values().filter(|m| m.partitions.contains(&p)).max_by_key(|m| m.updated_at)
    }
}

/// What `/subjects` says about the view's side of a subject.
pub fn subject_of(kind: &str, id: &str) -> Option<Subject> {
    let n = id.chars().count();
    if !(1..=128).contains(&n) {
        return None;
    }
    Subject::from_key(&format!("{kind}:{id}")).filter(|s| s.kind.as_str() == kind)
}
