//! The distinct-customer sliding window of one (subject, issue) key.
//!
//! A key keeps its counted complaints sorted by event time (arrival order
//! among equal times). After a counted complaint `c` arrives, the key pulls
//! when some interval of length W, ends included, that contains `c` holds
//! complaints from at least N distinct customers (docs/semantics.md, rule 2).
//!
//! Only intervals that start at a complaint's time need checking: any
//! qualifying interval can slide right until its start meets the first
//! complaint inside it, keeping every complaint and still containing `c`.
//! Of the qualifying intervals we take the earliest start, and from it one
//! complaint per customer: `c` for its own customer, the earliest for the
//! others. That choice is deterministic, so a replay and a restored engine
//! give the same evidence. At most [`EVIDENCE_LISTED`] are listed (the
//! earliest, `c` always among them); the count stays exact.
//!
//! Two representations, one behaviour. A key holds a handful of complaints
//! almost always: a sorted `Vec` and a scan of the complaints within W of
//! `c` are the smallest and fastest there is. A key flooded with complaints
//! (one customer complaining 100,000 times never pulls a threshold of 2)
//! would make that scan, and the insert, linear per complaint. Past
//! [`FLOOD_FROM`] complaints the window switches to [`Flood`]: a B-tree of
//! the complaints, each customer's complaint times, and a [`Coverage`] of
//! how many distinct customers an interval starting at each point holds,
//! so that insert, evict and the pull check are O(log n).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::coverage::Coverage;
use super::FxHashMap;
use crate::time::{Dur, Ts};

/// Evidence ids listed in an `opened` event at most.
pub const EVIDENCE_LISTED: usize = 100;

/// Complaints past which a key switches to the flooded representation,
/// and below which it switches back (apart, so a key at the edge does not
/// flip on every complaint).
const FLOOD_FROM: usize = 64;
const FLOOD_UNTIL: usize = 16;

/// A counted complaint, as much of it as the window needs: its time and
/// its two ids. Most keys hold one complaint or two, so the ids share one
/// allocation: 32 bytes and one string a complaint, not 40 and two.
/// Serialises as `{at, customer, event_id}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Counted {
    pub at: Ts,
    ids: Ids,
}

impl Counted {
    pub fn new(at: Ts, customer: &str, event_id: &str) -> Self {
        Self { at, ids: Ids::new(customer, event_id) }
    }

    pub fn customer(&self) -> &str {
        self.ids.customer()
    }

    pub fn event_id(&self) -> &str {
        self.ids.event_id()
    }
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("at", &self.at)
            .field("customer", &self.customer())
            .field("event_id", &self.event_id())
            .finish()
    }
}

/// The wire form of [`Counted`] (the changelog's and snapshots' format
/// since before the ids shared a string).
#[derive(Serialize, Deserialize)]
#[serde(rename = "Counted")]
struct CountedWire<'a> {
    at: Ts,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
}

impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CountedWire { at: self.at, customer: Cow::Borrowed(self.customer()), event_id: Cow::Borrowed(self.event_id()) }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = CountedWire::deserialize(d)?;
        Ok(Counted::new(w.at, &w.customer, &w.event_id))
    }
}

/// A customer id and an event id in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ids {
    /// The customer id, then the event id.
    both: Box<str>,
    /// Where the event id starts. A customer id is at most 128 characters
    /// (the decoder's `MAX_ID`), and one read back from the changelog came
    /// from a record under 2 GiB (Kafka's sizes are `int32`s): it fits.
    split: u32,
}

impl Ids {
    fn new(customer: &str, event_id: &str) -> Self {
        let mut both = String::with_capacity(customer.len() + event_id.len());
        both.push_str(customer);
        both.push_str(event_id);
        Self { both: both.into_boxed_str(), split: customer.len() as u32 }
    }

    fn customer(&self) -> &str {
        &self.both[..self.split as usize]
    }

    fn event_id(&self) -> &str {
        &self.both[self.split as usize..]
    }
}

/// What a threshold pull rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// At most [`EVIDENCE_LISTED`] event ids in event-time order: the
    /// earliest, the pulling complaint always among them.
    pub listed: Vec<Box<str>>,
    /// Distinct customers in the interval: the full evidence count.
    pub total: u32,
}

/// The counted complaints of one key. Serialises as the sequence of its
/// complaints in order, whichever representation holds them.
#[derive(Debug, Clone, Default)]
pub struct Window {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Exactly as long as it is: a key holds one complaint or two almost
    /// always, and a `Vec`'s capacity would be 8 bytes more in every key.
    /// Changing it reallocates, which a key under [`FLOOD_FROM`] can afford
    /// (both [`Window::insert`] and [`Window::push_back`] flood a key past it).
    Small(Box<[Counted]>),
    Flood(Box<Flood>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Small(Box::default())
    }
}

/// Where a complaint stands in its window, for [`Window::threshold_evidence`].
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Small(usize),
    Flood((Ts, u64)),
}

impl Window {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len(),
            Repr::Flood(f) => f.items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the flooded representation holds this key (tests, metrics).
    pub fn is_flooded(&self) -> bool {
        matches!(self.repr, Repr::Flood(_))
    }

    pub fn clear(&mut self) {
        self.repr = Repr::default();
    }

    /// The complaints in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Counted> + '_> {
        match &self.repr {
            Repr::Small(v) => Box::new(v.iter().cloned()),
            Repr::Flood(f) => Box::new(f.items.iter().map(|(&(at, _), ids)| Counted { at, ids: ids.clone() })),
        }
    }

    /// The complaints in order, borrowed: (time, customer, event id).
    pub fn entries(&self) -> Box<dyn Iterator<Item = (Ts, &str, &str)> + '_> {
        match &self.repr {
            Repr::Small(v) => Box::new(v.iter().map(|c| (c.at, c.customer(), c.event_id()))),
            Repr::Flood(f) => Box::new(f.items.iter().map(|(&(at, _), ids)| (at, ids.customer(), ids.event_id()))),
        }
    }

    /// Inserts `c` after every complaint at the same or an earlier time.
    /// `window` is the key's W (the flooded representation indexes by it).
    pub fn insert(&mut self, c: Counted, window: Dur) -> Place {
        if let Repr::Small(v) = &mut self.repr {
            if v.len() < FLOOD_FROM {
                let i = v.partition_point(|x| x.at <= c.at);
                insert_exact(v, i, c);
                return Place::Small(i);
            }
            let flood = Flood::from_sorted(std::mem::take(v).into_vec(), window);
            self.repr = Repr::Flood(Box::new(flood));
        }
        let Repr::Flood(f) = &mut self.repr else { unreachable!("just made flooded") };
        if f.window != window {
            // The rule's window changed (a new configuration): re-index.
            let items: Vec<Counted> = self.iter().collect();
            self.repr = Repr::Flood(Box::new(Flood::from_sorted(items, window)));
            return self.insert(c, window);
        }
        Place::Flood(f.insert(c))
    }

    /// Inserts `c` by the rule of [`Window::insert`] without its index:
    /// for rebuilding a window from the changelog, where W is not known.
    /// A key past [`FLOOD_FROM`] is flooded here too, indexed by no window
    /// at all: the slice reallocates on every insert, which would make
    /// rebuilding a flooded key quadratic, and the key's next
    /// [`Window::insert`] re-indexes it by its W (as for a changed rule).
    pub fn push_back(&mut self, c: Counted) {
        match &mut self.repr {
            Repr::Small(v) if v.len() >= FLOOD_FROM => {
                self.repr = Repr::Flood(Box::new(Flood::from_sorted(std::mem::take(v).into_vec(), Dur::ZERO)));
                self.push_back(c);
            }
            Repr::Small(v) => {
                let i =
                    if v.last().is_none_or(|x| x.at <= c.at) { v.len() } else { v.partition_point(|x| x.at <= c.at) };
                insert_exact(v, i, c);
            }
            Repr::Flood(f) => {
                f.insert(c);
            }
        }
    }

    /// Drops complaints older than `cutoff`: they can no longer share an
    /// interval of length W with any complaint that is not too late.
    pub fn evict_before(&mut self, cutoff: Ts) {
        match &mut self.repr {
            Repr::Small(v) => {
                let n = v.partition_point(|x| x.at < cutoff);
                if n > 0 {
                    let mut kept = std::mem::take(v).into_vec();
                    kept.drain(..n);
                    *v = kept.into_boxed_slice();
                }
            }
            Repr::Flood(f) => {
                f.evict_before(cutoff);
                if f.items.len() < FLOOD_UNTIL {
                    let items =
                        std::mem::take(&mut f.items).into_iter().map(|((at, _), ids)| Counted { at, ids }).collect();
                    self.repr = Repr::Small(items);
                }
            }
        }
    }

    /// The evidence for a threshold pull right after the complaint at
    /// `place` was inserted, or `None` when no interval of length `window`
    /// containing it reaches `threshold` distinct customers.
    pub fn threshold_evidence(&mut self, place: Place, window: Dur, threshold: u32) -> Option<Evidence> {
        match (&mut self.repr, place) {
            (Repr::Small(v), Place::Small(i)) => small_evidence(v, i, window, threshold),
            (Repr::Flood(f), Place::Flood(key)) => f.evidence(key, threshold),
            _ => None,
        }
    }
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Window {}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.repr {
            Repr::Small(v) => v.serialize(s),
            Repr::Flood(_) => s.collect_seq(self.iter()),
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    /// Always the small representation: the index is built, knowing W, at
    /// the key's next insert.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Vec::<Counted>::deserialize(d)?;
        // Sorted by time is an invariant the search rests on; a stable sort
        // keeps arrival order among equal times.
        if !v.is_sorted_by_key(|c| c.at) {
            v.sort_by_key(|c| c.at);
        }
        Ok(Window { repr: Repr::Small(v.into_boxed_slice()) })
    }
}

impl From<Vec<Counted>> for Window {
    fn from(mut v: Vec<Counted>) -> Self {
        v.sort_by_key(|c| c.at);
        Window { repr: Repr::Small(v.into_boxed_slice()) }
    }
}

/// Inserts `c` at `i` of a slice kept exactly as long as it is.
fn insert_exact(v: &mut Box<[Counted]>, i: usize, c: Counted) {
    let mut grown = std::mem::take(v).into_vec();
    grown.reserve_exact(1);
    grown.insert(i, c);
    *v = grown.into_boxed_slice();
}

/// The pull check over a sorted vector: scans the complaints within W of
/// `counted[i]`, linear in their number (the vector is short).
fn small_evidence(counted: &[Counted], i: usize, window: Dur, threshold: u32) -> Option<Evidence> {
    let c = counted.get(i)?;
    if threshold <= 1 {
        return Some(Evidence { listed: vec![c.event_id().into()], total: 1 });
    }
    let start_from = c.at - window;
    let mut j = counted.partition_point(|x| x.at < start_from);
    // Fast path, the common case: fewer complaints than the threshold
    // within W either side of c cannot hold enough distinct customers.
    let reach = counted.partition_point(|x| x.at <= c.at + window);
    if ((reach - j) as u64) < u64::from(threshold) {
        return None;
    }
    let mut end = j; // exclusive end of the interval [counted[j].at, counted[j].at + W]
    let mut per_customer: FxHashMap<&str, u32> = FxHashMap::default();
    let mut distinct = 0u32;
    while j < counted.len() && counted[j].at <= c.at {
        let until = counted[j].at + window;
        while end < counted.len() && counted[end].at <= until {
            let n = per_customer.entry(counted[end].customer()).or_insert(0);
            if *n == 0 {
                distinct += 1;
            }
            *n += 1;
            end += 1;
        }
        if distinct >= threshold {
            let picked = pick(counted[j..end].iter().map(|x| (x.customer(), x.event_id())), c.customer(), c.event_id());
            return Some(Evidence { listed: picked, total: distinct });
        }
        let t = counted[j].at;
        while j < counted.len() && counted[j].at == t {
            if let Some(n) = per_customer.get_mut(counted[j].customer()) {
                *n -= 1;
                if *n == 0 {
                    distinct -= 1;
                }
            }
            j += 1;
        }
    }
    None
}

/// One complaint per customer of an interval, in order: the pulling
/// complaint (`own`, `own_id`) for its own customer, the earliest for each
/// other, at most [`EVIDENCE_LISTED`] in all (the earliest others, the
/// pulling complaint always among them). Stops reading once it has enough.
fn pick<'a>(interval: impl Iterator<Item = (&'a str, &'a str)>, own: &str, own_id: &str) -> Vec<Box<str>> {
    let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    seen.insert(own);
    let mut picked = Vec::new();
    let mut own_placed = false;
    for (customer, id) in interval {
        if id == own_id && customer == own {
            picked.push(id.into());
            own_placed = true;
        } else if seen.insert(customer) && picked.len() + usize::from(!own_placed) < EVIDENCE_LISTED {
            picked.push(id.into());
        }
        if own_placed && picked.len() >= EVIDENCE_LISTED {
            break;
        }
    }
    picked
}

/// A flooded key: see the module documentation.
#[derive(Debug, Clone)]
struct Flood {
    /// The W the coverage is indexed by.
    window: Dur,
    /// The complaints' ids by (event time, arrival).
    items: BTreeMap<(Ts, u64), Ids>,
    next_seq: u64,
    /// Each customer's complaint times, with multiplicity.
    customers: FxHashMap<Box<str>, BTreeMap<Ts, u32>>,
    /// For each start s: customers with a complaint in [s, s + W].
    coverage: Coverage,
}

impl Flood {
    fn from_sorted(items: Vec<Counted>, window: Dur) -> Self {
        let mut f = Flood {
            window,
            items: BTreeMap::new(),
            next_seq: 0,
            customers: FxHashMap::default(),
            coverage: Coverage::new(),
        };
        for c in items {
            f.insert(c);
        }
        f
    }

    fn insert(&mut self, c: Counted) -> (Ts, u64) {
        let key = (c.at, self.next_seq);
        self.next_seq += 1;
        let (_, times) = self
            .customers
            .raw_entry_mut()
            .from_key(c.customer())
            .or_insert_with(|| (c.customer().into(), BTreeMap::new()));
        let n = times.entry(c.at).or_insert(0);
        *n += 1;
        if *n == 1 {
            let (from, to) = uncovered(times, c.at, self.window);
            self.coverage.add(from, to, 1);
        }
        self.items.insert(key, c.ids);
        key
    }

    fn evict_before(&mut self, cutoff: Ts) {
        while let Some(entry) = self.items.first_entry() {
            if entry.key().0 >= cutoff {
                break;
            }
            let ((at, _), ids) = entry.remove_entry();
            let Some(times) = self.customers.get_mut(ids.customer()) else { continue };
            let Some(n) = times.get_mut(&at) else { continue };
            *n -= 1;
            if *n == 0 {
                times.remove(&at);
                // What only `at` covered is what its neighbours leave over.
                let (from, to) = uncovered(times, at, self.window);
                self.coverage.add(from, to, -1);
                if times.is_empty() {
                    self.customers.remove(ids.customer());
                }
            }
        }
    }

    fn evidence(&mut self, key: (Ts, u64), threshold: u32) -> Option<Evidence> {
        let own = self.items.get(&key)?;
        if threshold <= 1 {
            return Some(Evidence { listed: vec![own.event_id().into()], total: 1 });
        }
        let t = key.0;
        // Every start s in [t − W, t] gives an interval holding t; the
        // earliest where enough customers are covered, then the first
        // complaint at or after it, is the small scan's answer.
        let s = self.coverage.first_reaching((t - self.window).as_nanos(), t.as_nanos(), i64::from(threshold))?;
        let (&(start, _), _) = self.items.range((Ts::from_nanos(s), 0)..).next()?;
        let total = self.coverage.value_at(start.as_nanos()).max(0) as u32;
        let until = start + self.window;
        let interval = self.items.range((start, 0)..).take_while(|(&(at, _), _)| at <= until);
        let listed = pick(interval.map(|(_, ids)| (ids.customer(), ids.event_id())), own.customer(), own.event_id());
        Some(Evidence { listed, total })
    }
}

/// The starts `[from, to]` that a complaint at `at` covers and no other
/// complaint time in `times` (which may or may not hold `at` itself) does:
/// `[at − W, at]` less its neighbours' `[p − W, p]` and `[q − W, q]`.
fn uncovered(times: &BTreeMap<Ts, u32>, at: Ts, window: Dur) -> (i64, i64) {
    let mut from = (at - window).as_nanos();
    let mut to = at.as_nanos();
    if let Some((&p, _)) = times.range(..at).next_back() {
        from = from.max(p.as_nanos().saturating_add(1));
    }
    if let Some((&q, _)) = times.range(at + Dur::from_nanos(1)..).next() {
        to = to.min((q - window).as_nanos().saturating_sub(1));
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(at: i64, customer: &str, id: &str) -> Counted {
        Counted::new(Ts::from_nanos(at), customer, id)
    }

    fn w(nanos: i64) -> Dur {
        Dur::from_nanos(nanos)
    }

    /// Inserts `items` into a fresh window and checks the last one.
    fn check(items: &[Counted], window: i64, threshold: u32) -> Option<(Vec<String>, u32)> {
        let mut win = Window::default();
        let mut place = None;
        for x in items {
            place = Some(win.insert(x.clone(), w(window)));
        }
        win.threshold_evidence(place?, w(window), threshold)
            .map(|e| (e.listed.iter().map(|s| s.to_string()).collect(), e.total))
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_counted_complaint_keeps_its_ids_apart_and_its_serialised_form() {
        let x = c(7, "cust-1", "ev-1");
        assert_eq!((x.customer(), x.event_id()), ("cust-1", "ev-1"));
        let empty = c(7, "", "ev-1");
        assert_eq!((empty.customer(), empty.event_id()), ("", "ev-1"));
        let json = serde_json::to_value(&x).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"at": serde_json::to_value(Ts::from_nanos(7)).expect("ts"), "customer": "cust-1", "event_id": "ev-1"})
        );
        assert_eq!(serde_json::from_value::<Counted>(json).expect("deserialises"), x);
    }

    #[test]
    fn a_window_rebuilt_from_the_changelog_floods_past_the_limit_and_answers_as_one_built_live() {
        let items: Vec<Counted> =
            (0..5_000).map(|i| c(i * 7 % 5_000, &format!("c{}", i % 40), &format!("e{i}"))).collect();
        let (mut rebuilt, mut live) = (Window::default(), Window::default());
        for x in &items {
            rebuilt.push_back(x.clone());
            live.insert(x.clone(), w(300));
        }
        // Flooded, not a slice reallocated 5,000 times.
        assert!(rebuilt.is_flooded());
        assert!(rebuilt.iter().eq(live.iter()), "the same complaints in the same order");
        let (p, q) = (rebuilt.insert(c(2_500, "new", "n1"), w(300)), live.insert(c(2_500, "new", "n1"), w(300)));
        assert_eq!(rebuilt.threshold_evidence(p, w(300), 30), live.threshold_evidence(q, w(300), 30));
        assert!(rebuilt.threshold_evidence(p, w(300), 30).is_some(), "the check is not vacuous");
    }

    #[test]
    fn exactly_one_window_apart_pulls_ends_included() {
        assert_eq!(check(&[c(0, "a", "e1"), c(10, "b", "e2")], 10, 2), Some((ids(&["e1", "e2"]), 2)));
        assert_eq!(check(&[c(0, "a", "e1"), c(11, "b", "e2")], 10, 2), None);
    }

    #[test]
    fn same_customer_counts_once() {
        assert_eq!(check(&[c(0, "a", "e1"), c(1, "a", "e2"), c(2, "a", "e3")], 10, 2), None);
    }

    #[test]
    fn late_complaint_bridges_into_the_past() {
        // The late one arrives last at t=5; the pair (a@0, b@5) is within W=5.
        assert_eq!(
            check(&[c(0, "a", "e1"), c(20, "c", "e3"), c(5, "b", "late")], 5, 2),
            Some((ids(&["e1", "late"]), 2))
        );
    }

    #[test]
    fn evidence_takes_the_pulling_complaint_for_its_customer() {
        let v = [c(0, "b", "b-early"), c(1, "a", "a1"), c(2, "b", "b-pull")];
        assert_eq!(check(&v, 10, 2), Some((ids(&["a1", "b-pull"]), 2)));
    }

    #[test]
    fn insert_keeps_arrival_order_among_equal_times() {
        let mut win = Window::default();
        win.insert(c(5, "a", "1"), w(10));
        win.insert(c(5, "b", "2"), w(10));
        win.insert(c(0, "b", "3"), w(10));
        assert_eq!(win.iter().map(|x| x.event_id().to_string()).collect::<Vec<_>>(), ids(&["3", "1", "2"]));
        win.evict_before(Ts::from_nanos(5));
        assert_eq!(win.len(), 2);
    }

    #[test]
    fn evidence_lists_at_most_a_hundred_and_counts_them_all() {
        // 150 customers within W, threshold 150: the 150th pulls.
        let v: Vec<Counted> = (0..150).map(|i| c(i, &format!("c{i}"), &format!("e{i}"))).collect();
        let (listed, total) = check(&v, 1_000, 150).expect("pulls");
        assert_eq!(total, 150);
        assert_eq!(listed.len(), EVIDENCE_LISTED);
        assert_eq!(listed[0], "e0", "the earliest first");
        assert_eq!(listed.last().map(String::as_str), Some("e149"), "the pulling complaint is always listed");
        assert_eq!(listed[98], "e98");
    }

    #[test]
    fn a_flood_from_one_customer_never_pulls_and_a_second_customer_does() {
        let mut win = Window::default();
        for i in 0..10_000 {
            let p = win.insert(c(i, "flood", &format!("f{i}")), w(1_000_000));
            assert!(win.threshold_evidence(p, w(1_000_000), 2).is_none());
        }
        assert!(win.is_flooded());
        let p = win.insert(c(5_000, "other", "o1"), w(1_000_000));
        let e = win.threshold_evidence(p, w(1_000_000), 2).expect("pulls");
        assert_eq!(e.total, 2);
        assert_eq!(e.listed, vec!["f0".into(), "o1".into()] as Vec<Box<str>>);
    }

    fn arb_counted() -> impl Strategy<Value = Vec<(i64, u8, bool)>> {
        // (time, customer, evict-before-this-insert)
        prop::collection::vec((0i64..400, 0u8..12, prop::bool::weighted(0.05)), 1..300)
    }

    proptest! {
        /// The flooded representation answers exactly as the plain scan,
        /// whatever the order of arrival, evictions and thresholds.
        #[test]
        fn flooded_agrees_with_the_scan(items in arb_counted(), window in 1i64..80, threshold in 1u32..6) {
            let mut flooded = Window::default();
            let mut plain: Vec<Counted> = Vec::new();
            let mut cutoff = 0;
            for (k, (at, who, evict)) in items.into_iter().enumerate() {
                if evict {
                    cutoff += 20;
                    flooded.evict_before(Ts::from_nanos(cutoff));
                    let n = plain.partition_point(|x| x.at < Ts::from_nanos(cutoff));
                    plain.drain(..n);
                }
                let at = at.max(cutoff);
                let x = c(at, &format!("c{who}"), &format!("e{k}"));
                let i = plain.partition_point(|y| y.at <= x.at);
                plain.insert(i, x.clone());
                let place = flooded.insert(x, w(window));
                let want = small_evidence(&plain, i, w(window), threshold);
                let got = flooded.threshold_evidence(place, w(window), threshold);
                prop_assert_eq!(got, want);
                prop_assert!(flooded.iter().eq(plain.iter().cloned()));
            }
        }
    }
}
