//! Event time on the wire: RFC 3339 in, RFC 3339 in UTC out.

use chrono::DateTime;
use serde::Serializer;

use super::{Reject, Ts};

/// RFC 3339 date-time with a mandatory offset, `T`/`Z` in either case, as
/// nanoseconds since the epoch. Dates alone, times without an offset and
/// instants outside what nanoseconds in an i64 can hold are rejected.
pub fn parse_timestamp(field: &str, s: &str) -> Result<Ts, Reject> {
    let b = s.as_bytes();
    // chrono also takes a space between date and time; RFC 3339 (and JSON
    // Schema's date-time) does not.
    if b.len() < 20 || !matches!(b[10], b'T' | b't') {
        return Err(Reject::schema(format!("{field}: {s:?} is not an RFC 3339 date-time with a UTC offset")));
    }
    if let Some(n) = canonical_nanos(b) {
        return Ok(Ts::from_nanos(n));
    }
    let dt = DateTime::parse_from_rfc3339(s)
        .map_err(|e| Reject::schema(format!("{field}: {s:?} is not an RFC 3339 date-time with a UTC offset ({e})")))?;
    dt.timestamp_nanos_opt()
        .map(Ts::from_nanos)
        .ok_or_else(|| Reject::schema(format!("{field}: {s:?} is outside the supported range (years 1677..2262)")))
}

/// The common shape, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (what andon and most
/// producers write), read without chrono: every complaint has one, and
/// chrono's parser cost ~450 instructions a time (callgrind), this about a
/// fifth. `None` for anything else (offsets, lowercase, a leap second, a
/// date that does not exist, out of range), which chrono then reads or
/// refuses; a property test holds the two to the same answers.
pub(super) fn canonical_nanos(b: &[u8]) -> Option<i64> {
    let (&last, head) = b.split_last()?;
    if last != b'Z' || head.len() < 19 || head[4] != b'-' || head[7] != b'-' || head[10] != b'T' {
        return None;
    }
    if head[13] != b':' || head[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        head[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let frac = match &head[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let f = num(20..19 + digits.len() + 1)?;
            f * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), m, d);
    let secs = days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss);
    secs.checked_mul(1_000_000_000)?.checked_add(i64::from(frac))
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats event time as RFC 3339 in UTC (`Z`), with a fraction only when
/// there is one: 3, 6 or 9 digits, as few as hold it (chrono's
/// `SecondsFormat::AutoSi`, which the tests hold it to).
///
/// By hand rather than through chrono's formatter: every output and view
/// record carries several timestamps, and chrono's `fmt` machinery cost
/// about 1,100 instructions each (callgrind), this a tenth of that.
pub fn format_timestamp(ts: Ts) -> String {
    let n = ts.as_nanos();
    let (secs, frac) = (n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) as u32);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (y, m, d) = civil_from_days(days);
    // Years of an i64 of nanoseconds: 1677..=2262, always four digits.
    let mut b = [0u8; 30];
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y as u32, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, sod / 3600, 2);
    put(14, sod / 60 % 60, 2);
    put(17, sod % 60, 2);
    let (frac, digits) = match frac {
        0 => (0, 0),
        f if f % 1_000_000 == 0 => (f / 1_000_000, 3),
        f if f % 1_000 == 0 => (f / 1_000, 6),
        f => (f, 9),
    };
    let mut len = 19;
    if digits > 0 {
        put(20, frac, digits);
        b[19] = b'.';
        len = 20 + digits;
    }
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (len, b'Z')] {
        b[i] = c;
    }
    // ASCII digits and separators only: never the default.
    std::str::from_utf8(&b[..=len]).unwrap_or_default().to_owned()
}

/// Year, month and day of the `z`th day after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub(super) fn ser_ts<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*ts))
}
