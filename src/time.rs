//! Event time and spans of it, as two types that do not mix by accident.
//!
//! [`Ts`] is an instant: nanoseconds since the Unix epoch, UTC. [`Dur`] is a
//! span: nanoseconds. Both are an `i64` inside and serialise as that bare
//! integer (`#[serde(transparent)]`), so the changelog reads and writes the
//! same numbers as before they were types. Nanoseconds keep any fraction an
//! input carries, so `opened_at` repeats `occurred_at` exactly.
//!
//! Only the operations that mean something exist: an instant moved by a span
//! (`Ts ± Dur`), the span between two instants (`Ts - Ts`), spans added,
//! scaled and divided. Every one saturates at the ends of `i64` rather than
//! wrapping or panicking: input times are bounded (years 1677..2262) and
//! spans by configuration (at most 100 years), so saturation only keeps a
//! sum near the limits from overflowing.

use std::ops::{Add, Div, Mul, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// An instant of event time (or wall-clock time): nanoseconds since the
/// Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ts(i64);

/// A span of time in nanoseconds (negative only as the difference of two
/// instants in the wrong order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Dur(i64);

impl Ts {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Ts = Ts(0);
    /// The latest instant there is: what a clock that cannot say reads as.
    pub const MAX: Ts = Ts(i64::MAX);

    pub const fn from_nanos(nanos: i64) -> Ts {
        Ts(nanos)
    }

    /// Milliseconds since the epoch (Kafka record timestamps), saturating.
    pub const fn from_millis(millis: i64) -> Ts {
        Ts(millis.saturating_mul(1_000_000))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }
}

impl Dur {
    pub const ZERO: Dur = Dur(0);
    pub const SECOND: Dur = Dur(NANOS_PER_SEC);
    pub const MAX: Dur = Dur(i64::MAX);

    pub const fn from_nanos(nanos: i64) -> Dur {
        Dur(nanos)
    }

    /// Saturating.
    pub const fn from_secs(secs: i64) -> Dur {
        Dur(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// `None` when it does not fit in `i64` nanoseconds (about 292 years).
    pub fn from_std(d: Duration) -> Option<Dur> {
        i64::try_from(d.as_nanos()).ok().map(Dur)
    }

    /// As a `std` duration; a negative span is zero.
    pub fn to_std(self) -> Duration {
        Duration::from_nanos(self.0.max(0) as u64)
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded toward zero.
    pub const fn as_secs(self) -> i64 {
        self.0 / NANOS_PER_SEC
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
}

impl Add<Dur> for Ts {
    type Output = Ts;
    fn add(self, d: Dur) -> Ts {
        Ts(self.0.saturating_add(d.0))
    }
}

impl Sub<Dur> for Ts {
    type Output = Ts;
    fn sub(self, d: Dur) -> Ts {
        Ts(self.0.saturating_sub(d.0))
    }
}

/// The span from `earlier` to `self`.
impl Sub<Ts> for Ts {
    type Output = Dur;
    fn sub(self, earlier: Ts) -> Dur {
        Dur(self.0.saturating_sub(earlier.0))
    }
}

impl Add for Dur {
    type Output = Dur;
    fn add(self, d: Dur) -> Dur {
        Dur(self.0.saturating_add(d.0))
    }
}

impl Sub for Dur {
    type Output = Dur;
    fn sub(self, d: Dur) -> Dur {
        Dur(self.0.saturating_sub(d.0))
    }
}

impl Mul<i64> for Dur {
    type Output = Dur;
    fn mul(self, n: i64) -> Dur {
        Dur(self.0.saturating_mul(n))
    }
}

impl Mul<Dur> for i64 {
    type Output = Dur;
    fn mul(self, d: Dur) -> Dur {
        d * self
    }
}

/// Rounded toward zero; dividing by zero gives [`Dur::MAX`] (or its negative).
impl Div<i64> for Dur {
    type Output = Dur;
    fn div(self, n: i64) -> Dur {
        match self.0.checked_div(n) {
            Some(q) => Dur(q),
            None if self.0 < 0 => Dur(i64::MIN),
            None => Dur::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Ts::MAX + Dur::SECOND, Ts::MAX);
        assert_eq!(Ts::from_nanos(i64::MIN) - Dur::SECOND, Ts::from_nanos(i64::MIN));
        assert_eq!(Ts::MAX - Ts::from_nanos(-1), Dur::MAX);
        assert_eq!(Dur::MAX * 2, Dur::MAX);
        assert_eq!(Dur::from_secs(i64::MAX), Dur::MAX);
        assert_eq!(Ts::from_millis(i64::MAX), Ts::MAX);
    }

    #[test]
    fn instants_and_spans_combine() {
        let t = Ts::from_nanos(10 * NANOS_PER_SEC);
        assert_eq!(t + Dur::from_secs(5) - t, Dur::from_secs(5));
        assert_eq!(t - Dur::from_secs(10), Ts::EPOCH);
        assert_eq!(Dur::from_secs(7) / 2, Dur::from_nanos(3_500_000_000));
        assert_eq!((Dur::from_secs(3) + Dur::SECOND).as_secs(), 4);
        assert_eq!(Dur::from_nanos(1_500_000_000).as_secs_f64(), 1.5);
        assert_eq!(Dur::from_nanos(-1).to_std(), Duration::ZERO);
        assert_eq!(Dur::from_std(Duration::from_millis(100)), Some(Dur::from_nanos(100_000_000)));
        assert_eq!(Dur::from_std(Duration::MAX), None);
    }

    #[test]
    fn serialised_as_the_bare_integer() {
        let json = serde_json::to_string(&(Ts::from_nanos(-5), Dur::from_secs(1))).expect("serialises");
        assert_eq!(json, "[-5,1000000000]");
        let back: (Ts, Dur) = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, (Ts::from_nanos(-5), Dur::SECOND));
    }
}
