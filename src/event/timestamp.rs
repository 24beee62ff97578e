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
    let dt = DateTime::parse_from_rfc3339(s)
        .map_err(|e| Reject::schema(format!("{field}: {s:?} is not an RFC 3339 date-time with a UTC offset ({e})")))?;
    dt.timestamp_nanos_opt()
        .map(Ts::from_nanos)
        .ok_or_else(|| Reject::schema(format!("{field}: {s:?} is outside the supported range (years 1677..2262)")))
}

/// Formats event time as RFC 3339 in UTC (`Z`), with a fraction only when
/// there is one: 3, 6 or 9 digits, as few as hold it (chrono's
/// `SecondsFormat::AutoSi`, which the tests hold it to).
///
/// By hand rather than through chrono's formatter: every output and view
/// record carries several timestamps, and chrono's `fmt` machinery cost
/// about 1,100 instructions each (callgrind), this under 500 with its
/// allocation.
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
