//! How configuration fields are read and written: durations as `100ms`,
//! `12h`, `7d`; numbers, booleans and lists also from the strings the
//! environment gives; `[kafka.properties]` as flat dotted names, written
//! with secret values redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::secrets::redact;
use crate::time::Dur;

/// Longer than any window or SLA needs; `i64` nanoseconds reach 292 years.
const MAX_SPAN: Duration = Duration::from_secs(100 * 365 * 86_400);

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"100ms\", \"12h\" or \"7d\" ({e})"))
}

/// The largest unit that says it exactly: `7d`, `36h`, `100ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(&str, u128); 7] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_owned();
    }
    let (unit, size) = UNITS.iter().find(|(_, size)| n % size == 0).copied().unwrap_or(("ns", 1));
    format!("{}{unit}", n / size)
}

/// The text of a duration, with an error that says what is expected.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like \"100ms\", \"12h\" or \"7d\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_owned())
        }
    }
    d.deserialize_str(V)
}

/// A wall-clock duration (`std::time::Duration`).
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&duration_text(d)?).map_err(de::Error::custom)
    }
}

/// A span of event time, at most 100 years.
pub mod span {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Dur, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(d.to_std()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = duration_text(d)?;
        let std = parse_duration(&text).map_err(de::Error::custom)?;
        match Dur::from_std(std) {
            Some(span) if std <= MAX_SPAN => Ok(span),
            _ => Err(de::Error::custom(format!("{text:?} is longer than 100 years"))),
        }
    }
}

pub mod opt_span {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Dur>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => span::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
        span::deserialize(d).map(Some)
    }
}

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
        s.trim().parse().map_err(|_| E::custom(format!("{s:?} is not an integer")))
    }
}

/// An integer, or a string holding one (the environment's form).
pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    let v = d.deserialize_any(IntVisitor)?;
    T::try_from(v).map_err(|_| de::Error::custom(format!("{v} is out of range")))
}

/// Distinct customers: 1 to 1,000,000.
pub fn threshold<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let t: i64 = integer(d)?;
    match u32::try_from(t) {
        Ok(t) if (1..=1_000_000).contains(&t) => Ok(t),
        _ => Err(de::Error::custom(format!("{t} is not between 1 and 1000000"))),
    }
}

pub fn opt_threshold<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    threshold(d).map(Some)
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(E::custom(format!("{s:?} is not true or false"))),
        }
    }
}

/// `true`/`false`, or a string holding one.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(BoolVisitor)
}

/// A list of names, or a string of them separated by commas (the
/// environment's form: `ANDON__RULES__DEFAULT__ROUTE=product,operations`).
pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
    }
    match Names::deserialize(d) {
        Ok(Names::List(names)) => Ok(names),
        Ok(Names::Text(text)) => {
            Ok(text.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
        }
        Err(_) => Err(de::Error::custom("expected a list of names like [\"product\", \"operations\"]")),
    }
}

pub fn opt_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    names(d).map(Some)
}

/// `host:port`, an IP address and a port.
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.trim().parse().map_err(|_| de::Error::custom(format!("{s:?} is not an address like 127.0.0.1:9898")))
}

/// One value of `[kafka.properties]`: a scalar, or a table of more
/// (`ssl.key.location = ...` unquoted is a nested table in TOML).
enum Property {
    Value(String),
    Table(BTreeMap<String, Property>),
}

impl<'de> Deserialize<'de> for Property {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Property;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Property, E> {
                Ok(Property::Value(s.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Property, E> {
                Ok(Property::Value(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Property, E> {
                Ok(Property::Value(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Property, E> {
                Ok(Property::Value(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Property, E> {
                Ok(Property::Value(v.to_string()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Property, A::Error> {
                let mut table = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Property>()? {
                    table.insert(k, v);
                }
                Ok(Property::Table(table))
            }
        }
        d.deserialize_any(V)
    }
}

fn flatten(prefix: &str, table: BTreeMap<String, Property>, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
        match v {
            Property::Value(v) => {
                out.insert(name, v);
            }
            Property::Table(t) => flatten(&name, t, out),
        }
    }
}

pub fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let mut out = BTreeMap::new();
    flatten("", BTreeMap::<String, Property>::deserialize(d)?, &mut out);
    Ok(out)
}

/// The properties with secret values replaced ([`super::secrets`]).
pub fn redacted<S: Serializer>(properties: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    redact(properties).serialize(s)
}
