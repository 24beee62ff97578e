//! Event time on the wire: RFC 3339 in, RFC 3339 in UTC out.

use chrono::{DateTime, SecondsFormat};
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
/// there is one.
pub fn format_timestamp(ts: Ts) -> String {
    DateTime::from_timestamp_nanos(ts.as_nanos()).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn ser_ts<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*ts))
}
