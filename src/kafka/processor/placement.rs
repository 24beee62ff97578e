//! Inputs on the partition their key belongs on. andon processes a record
//! wherever it arrives, and a subject whose records all go to one
//! partition is counted right whatever the partitioner; but `/subjects`
//! (and the ingress) put a key where `[kafka] input_partitioner` says, so
//! a producer on another partitioner makes those lookups silently wrong,
//! and a subject whose complaints and updates are placed by two different
//! partitioners is split. Each keyed input is checked against the setting:
//! a misplaced one is counted (`andon_input_misplaced_total{input}`), and
//! the first on each partition and input is logged, naming the setting.

use prometheus::IntCounterVec;

use crate::merge::Side;
use crate::view::partition::Partitioner;

/// The check, the same for every partition of this member.
#[derive(Clone, Copy)]
pub(super) struct Placement {
    pub(super) partitioner: Partitioner,
    /// The input topics' partition count.
    pub(super) partitions: i32,
}

impl Placement {
    /// Whether `key`, arriving on `partition` of `side`, is where the
    /// setting puts it (a record without a key is: a producer places it
    /// where it likes). A misplaced one is counted, and logged when
    /// `warned` (per partition and input) is not yet set.
    pub(super) fn check(
        self,
        side: Side,
        partition: i32,
        key: Option<&[u8]>,
        warned: &mut bool,
        counter: &IntCounterVec,
    ) -> bool {
        let Some(key) = key else { return true };
        let expected = self.partitioner.partition(key, self.partitions);
        if expected == partition {
            return true;
        }
        counter.with_label_values(&[side.input()]).inc();
        if !std::mem::replace(warned, true) {
            tracing::warn!(
                input = side.input(),
                partition,
                key = %String::from_utf8_lossy(key),
                expected,
                input_partitioner = self.partitioner.as_str(),
                "an input record is not on the partition [kafka] input_partitioner gives its key: its producer uses \
                 another partitioner; /subjects looks keys up on the wrong partition until the producers or the \
                 setting change (logged once per partition and input; andon_input_misplaced_total counts them all)"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("misplaced", "test"), &["input"]).expect("a counter")
    }

    #[test]
    fn a_key_on_its_partition_passes_and_a_misplaced_one_is_counted_under_its_input() {
        let placement = Placement { partitioner: Partitioner::Murmur2, partitions: 16 };
        let c = counter();
        let mut warned = false;
        let key = b"sku:A";
        let home = Partitioner::Murmur2.partition(key, 16);
        assert!(placement.check(Side::Complaints, home, Some(key), &mut warned, &c));
        assert!(placement.check(Side::Complaints, (home + 1) % 16, None, &mut warned, &c), "no key: not checked");
        assert!(!warned);
        assert_eq!(c.with_label_values(&["complaints"]).get(), 0);
        assert!(!placement.check(Side::Updates, (home + 1) % 16, Some(key), &mut warned, &c));
        assert!(!placement.check(Side::Updates, (home + 1) % 16, Some(key), &mut warned, &c));
        assert!(warned, "the first one is logged");
        assert_eq!(c.with_label_values(&["updates"]).get(), 2);
        assert_eq!(c.with_label_values(&["complaints"]).get(), 0);
    }

    #[test]
    fn the_setting_decides_which_partition_is_right() {
        // A key the two partitioners place apart (there are many).
        let key = (0..100)
            .map(|i| format!("sku:K{i}"))
            .find(|k| {
                Partitioner::Murmur2.partition(k.as_bytes(), 8) != Partitioner::Consistent.partition(k.as_bytes(), 8)
            })
            .expect("murmur2 and crc32 disagree on some key");
        let c = counter();
        let mut warned = false;
        let consistent = Placement { partitioner: Partitioner::Consistent, partitions: 8 };
        let home = Partitioner::Consistent.partition(key.as_bytes(), 8);
        assert!(consistent.check(Side::Complaints, home, Some(key.as_bytes()), &mut warned, &c));
        let murmur2 = Placement { partitioner: Partitioner::Murmur2, partitions: 8 };
        assert!(!murmur2.check(Side::Complaints, home, Some(key.as_bytes()), &mut warned, &c));
    }
}
