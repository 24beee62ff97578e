//! The event-time merge of a partition's two inputs
//! (docs/semantics.md#0-input-order): complaints and work-order updates are
//! taken in the order of their event times, complaints first on ties.
//! `andon replay` merges its two files with it and the Kafka task its two
//! partitions, so they cannot disagree.
//!
//! Records that did not decode have no event time: they take no part in
//! the merge and leave their queue as soon as they reach its front (to the
//! DLQ). When one side has nothing queued, the caller says whether it may
//! be passed over ([`Merge::next`]'s `may_skip`): `replay` when that file is
//! read to its end, the Kafka task when that partition is known to be at
//! its end and has stayed quiet for `max_task_idle`.

use std::collections::VecDeque;

use crate::time::Ts;

/// One of the two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Complaints = 0,
    Updates = 1,
}

impl Side {
    /// The input's name in metric labels and logs.
    pub fn input(self) -> &'static str {
        match self {
            Side::Complaints => "complaints",
            Side::Updates => "updates",
        }
    }
}

/// A queued record's event time (`None`: it did not decode).
pub trait Timed {
    fn event_time(&self) -> Option<Ts>;
}

/// What comes next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<C, U> {
    Complaint(C),
    Update(U),
    /// The side named has nothing queued and may not be passed over yet.
    Wait(Side),
    /// Nothing queued at all.
    Empty,
}

/// The two queues of one partition (or of `replay`'s two files).
#[derive(Debug)]
pub struct Merge<C, U> {
    complaints: VecDeque<C>,
    updates: VecDeque<U>,
}

impl<C, U> Default for Merge<C, U> {
    fn default() -> Self {
        Self { complaints: VecDeque::new(), updates: VecDeque::new() }
    }
}

impl<C: Timed, U: Timed> Merge<C, U> {
    pub fn push_complaint(&mut self, c: C) {
        self.complaints.push_back(c);
    }

    pub fn push_update(&mut self, u: U) {
        self.updates.push_back(u);
    }

    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Complaints => self.complaints.len(),
            Side::Updates => self.updates.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.complaints.is_empty() && self.updates.is_empty()
    }

    pub fn front_complaint(&self) -> Option<&C> {
        self.complaints.front()
    }

    pub fn front_update(&self) -> Option<&U> {
        self.updates.front()
    }

    /// The next record to process (see the module documentation).
    pub fn next(&mut self, may_skip: impl Fn(Side) -> bool) -> Next<C, U> {
        let c = self.complaints.front().map(Timed::event_time);
        let u = self.updates.front().map(Timed::event_time);
        let take = match (c, u) {
            // Undecodable records leave first, complaints' first.
            (Some(None), _) => Side::Complaints,
            (_, Some(None)) => Side::Updates,
            (Some(Some(c)), Some(Some(u))) => {
                if c <= u {
                    Side::Complaints
                } else {
                    Side::Updates
                }
            }
            (Some(_), None) if may_skip(Side::Updates) => Side::Complaints,
            (Some(_), None) => return Next::Wait(Side::Updates),
            (None, Some(_)) if may_skip(Side::Complaints) => Side::Updates,
            (None, Some(_)) => return Next::Wait(Side::Complaints),
            (None, None) => return Next::Empty,
        };
        match take {
            Side::Complaints => self.complaints.pop_front().map_or(Next::Empty, Next::Complaint),
            Side::Updates => self.updates.pop_front().map_or(Next::Empty, Next::Update),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct R(Option<i64>, &'static str);

    impl Timed for R {
        fn event_time(&self) -> Option<Ts> {
            self.0.map(Ts::from_nanos)
        }
    }

    fn drain(m: &mut Merge<R, R>, may_skip: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        loop {
            match m.next(|_| may_skip) {
                Next::Complaint(r) | Next::Update(r) => out.push(r.1),
                Next::Wait(_) | Next::Empty => return out,
            }
        }
    }

    #[test]
    fn by_event_time_complaints_first_on_ties_undecodable_at_once() {
        let mut m = Merge::default();
        for r in [R(Some(1), "c1"), R(None, "c-bad"), R(Some(5), "c5")] {
            m.push_complaint(r);
        }
        for r in [R(Some(1), "u1"), R(Some(3), "u3")] {
            m.push_update(r);
        }
        assert_eq!(drain(&mut m, false), ["c1", "c-bad", "u1", "u3"], "waits for updates before c5");
        assert_eq!(m.next(|_| false), Next::Wait(Side::Updates));
        assert_eq!(drain(&mut m, true), ["c5"]);
        assert_eq!(m.next(|_| true), Next::Empty);
    }
}
