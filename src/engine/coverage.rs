//! A step function over time, edited by range additions, that answers "the
//! first point in [lo, hi] where the function reaches n" in O(log n).
//!
//! The flooded-key window ([`super::window`]) keeps, for every window start
//! `s`, how many distinct customers have a counted complaint in
//! `[s, s + W]`: each customer adds 1 over the starts their complaints
//! cover. Stored as a difference array (+v at `from`, −v just after `to`)
//! in a treap keyed by time whose nodes carry their subtree's sum and
//! largest prefix sum, so both the edit and the search are logarithmic.
//!
//! Nodes live in a `Vec` and point at each other by index: no `unsafe`, no
//! `Rc`, and freed slots are reused.

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    key: i64,
    delta: i64,
    /// Sum of `delta` over the subtree.
    sum: i64,
    /// Largest sum of a non-empty in-order prefix of the subtree.
    best: i64,
    prio: u32,
    left: u32,
    right: u32,
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    rng: u32,
}

impl Coverage {
    pub fn new() -> Self {
        Self { nodes: Vec::new(), free: Vec::new(), root: NIL, rng: 0x9E37_79B9 }
    }

    /// Whether no breakpoint is held (every range added was taken back).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.nodes.len() == self.free.len()
    }

    /// Adds `v` at every point of `[from, to]` (nothing when `from > to`).
    pub fn add(&mut self, from: i64, to: i64, v: i64) {
        if from > to || v == 0 {
            return;
        }
        self.add_at(from, v);
        if to < i64::MAX {
            self.add_at(to + 1, -v);
        }
    }

    /// The value at point `s`: the sum of the deltas at or before it.
    pub fn value_at(&self, s: i64) -> i64 {
        let (mut t, mut acc) = (self.root, 0);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if n.key <= s {
                acc += self.sum(n.left) + n.delta;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        acc
    }

    /// The first point of `[lo, hi]` where the value is at least `n`.
    pub fn first_reaching(&mut self, lo: i64, hi: i64, n: i64) -> Option<i64> {
        if lo > hi {
            return None;
        }
        let base = self.value_at(lo);
        if base >= n {
            return Some(lo);
        }
        // The value only changes at breakpoints: search those in (lo, hi].
        let (a, rest) = self.split(self.root, lo.saturating_add(1));
        let (b, c) = if hi < i64::MAX { self.split(rest, hi + 1) } else { (rest, NIL) };
        let found = self.descend(b, base, n);
        let bc = self.merge(b, c);
        self.root = self.merge(a, bc);
        found
    }

    /// In the subtree `t`, whose prefix starts at `acc`, the key of the first
    /// node where the running sum reaches `n`.
    fn descend(&self, mut t: u32, mut acc: i64, n: i64) -> Option<i64> {
        if t == NIL || acc + self.nodes[t as usize].best < n {
            return None;
        }
        loop {
            let node = &self.nodes[t as usize];
            if node.left != NIL && acc + self.nodes[node.left as usize].best >= n {
                t = node.left;
                continue;
            }
            acc += self.sum(node.left) + node.delta;
            if acc >= n {
                return Some(node.key);
            }
            t = node.right;
            if t == NIL {
                return None;
            }
        }
    }

    fn add_at(&mut self, key: i64, v: i64) {
        let (a, rest) = self.split(self.root, key);
        let (mut mid, c) = if key < i64::MAX { self.split(rest, key + 1) } else { (rest, NIL) };
        if mid == NIL {
            mid = self.alloc(key, v);
        } else {
            let node = &mut self.nodes[mid as usize];
            node.delta += v;
            if node.delta == 0 {
                self.free.push(mid);
                mid = NIL;
            } else {
                self.update(mid);
            }
        }
        let left = self.merge(a, mid);
        self.root = self.merge(left, c);
    }

    fn alloc(&mut self, key: i64, delta: i64) -> u32 {
        // xorshift32: priorities need only be spread, not secret.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let node = Node { key, delta, sum: delta, best: delta, prio: self.rng, left: NIL, right: NIL };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn sum(&self, t: u32) -> i64 {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].sum
        }
    }

    fn update(&mut self, t: u32) {
        let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        let delta = self.nodes[t as usize].delta;
        let (ls, rs) = (self.sum(l), self.sum(r));
        let mut best = ls + delta;
        if l != NIL {
            best = best.max(self.nodes[l as usize].best);
        }
        if r != NIL {
            best = best.max(ls + delta + self.nodes[r as usize].best);
        }
        let node = &mut self.nodes[t as usize];
        node.sum = ls + delta + rs;
        node.best = best;
    }

    /// Splits `t` into keys `< key` and keys `>= key`.
    fn split(&mut self, t: u32, key: i64) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.nodes[t as usize].key < key {
            let (a, b) = self.split(self.nodes[t as usize].right, key);
            self.nodes[t as usize].right = a;
            self.update(t);
            (t, b)
        } else {
            let (a, b) = self.split(self.nodes[t as usize].left, key);
            self.nodes[t as usize].left = b;
            self.update(t);
            (a, t)
        }
    }

    /// Joins two treaps whose keys are all smaller in `a` than in `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.update(b);
            b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious version: a value per point of a small domain.
    struct Naive(Vec<i64>);

    impl Naive {
        fn add(&mut self, from: i64, to: i64, v: i64) {
            for s in from.max(0)..=to.min(self.0.len() as i64 - 1) {
                self.0[s as usize] += v;
            }
        }
        fn first_reaching(&self, lo: i64, hi: i64, n: i64) -> Option<i64> {
            (lo..=hi).find(|&s| self.0[s as usize] >= n)
        }
    }

    #[test]
    fn ranges_add_up_and_cancel() {
        let mut c = Coverage::new();
        c.add(10, 20, 1);
        c.add(15, 30, 1);
        assert_eq!((c.value_at(9), c.value_at(10), c.value_at(15), c.value_at(21), c.value_at(31)), (0, 1, 2, 1, 0));
        assert_eq!(c.first_reaching(0, 100, 2), Some(15));
        assert_eq!(c.first_reaching(16, 100, 2), Some(16));
        assert_eq!(c.first_reaching(21, 100, 2), None);
        c.add(15, 30, -1);
        c.add(10, 20, -1);
        assert!(c.is_empty(), "cancelled breakpoints are freed");
    }

    proptest! {
        #[test]
        fn agrees_with_a_value_per_point(
            edits in prop::collection::vec((0i64..60, 0i64..20, prop::bool::ANY), 1..80),
            queries in prop::collection::vec((0i64..60, 0i64..30, 1i64..5), 1..20),
        ) {
            let mut c = Coverage::new();
            let mut naive = Naive(vec![0; 100]);
            let mut applied = Vec::new();
            for (from, len, undo) in edits {
                // Undo an earlier edit now and then, as evictions do.
                if undo && !applied.is_empty() {
                    let (f, t) = applied.remove(0);
                    c.add(f, t, -1);
                    naive.add(f, t, -1);
                } else {
                    c.add(from, from + len, 1);
                    naive.add(from, from + len, 1);
                    applied.push((from, from + len));
                }
            }
            for s in 0..100 {
                prop_assert_eq!(c.value_at(s), naive.0[s as usize]);
            }
            for (lo, len, n) in queries {
                prop_assert_eq!(c.first_reaching(lo, lo + len, n), naive.first_reaching(lo, lo + len, n));
            }
        }
    }
}
