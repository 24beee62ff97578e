//! The complaint record: what the engine keeps of one ([`Complaint`]) and
//! [`decode_complaint`], which checks every field `schemas/` describes
//! (the optional ones too, though it keeps only `channel` of them).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use super::decode::{check_len, check_opt_len, parse, MAX_ID, MAX_NOTE};
use super::{is_valid_issue, parse_timestamp, Channel, Reject, Subject, SubjectKind, Ts};

/// A decoded complaint: only what the engine needs. The other optional
/// fields are validated by [`decode_complaint`] but not kept; `channel` is
/// kept for the bad-pull breakdown by channel (it never names an agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub event_id: String,
    pub occurred_at: Ts,
    pub subject: Subject,
    pub subject_key: String,
    pub issue: String,
    pub customer_id: String,
    pub pull: bool,
    pub channel: Option<Channel>,
}

struct RawSubject<'a> {
    kind: Cow<'a, str>,
    id: Cow<'a, str>,
}

/// A subject must be a JSON object: serde's derive would also take an
/// array of its fields in order, which the schema does not allow.
impl<'de: 'a, 'a> Deserialize<'de> for RawSubject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawSubject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with \"kind\" and \"id\"")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut kind, mut id) = (None, None);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "kind" => kind = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                        "id" => id = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawSubject {
                    kind: kind.ok_or_else(|| serde::de::Error::missing_field("kind"))?,
                    id: id.ok_or_else(|| serde::de::Error::missing_field("id"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A string borrowed from the input where it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct W<'a>(#[serde(borrow)] Cow<'a, str>);
        W::deserialize(d).map(|w| BorrowedStr(w.0))
    }
}

#[derive(Deserialize)]
struct RawComplaint<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    subject: RawSubject<'a>,
    #[serde(borrow)]
    issue: Cow<'a, str>,
    #[serde(borrow)]
    customer_id: Cow<'a, str>,
    #[serde(default)]
    pull: Option<bool>,
    #[serde(default, borrow)]
    order_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    agent_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    note: Option<Cow<'a, str>>,
}

/// Decodes a complaint from the bytes of a record value.
pub fn decode_complaint(bytes: &[u8], max_bytes: usize) -> Result<Complaint, Reject> {
    let raw: RawComplaint<'_> = parse(bytes, max_bytes)?;
    check_len("event_id", &raw.event_id, 1, MAX_ID)?;
    let occurred_at = parse_timestamp("occurred_at", &raw.occurred_at)?;
    let kind = match &*raw.subject.kind {
        "sku" => SubjectKind::Sku,
        "promotion" => SubjectKind::Promotion,
        other => return Err(Reject::schema(format!("subject.kind: {other:?} is not one of \"sku\", \"promotion\""))),
    };
    check_len("subject.id", &raw.subject.id, 1, MAX_ID)?;
    if !is_valid_issue(&raw.issue) {
        return Err(Reject::schema(format!("issue: {:?} does not match ^[a-z0-9][a-z0-9_.-]{{0,63}}$", raw.issue)));
    }
    check_len("customer_id", &raw.customer_id, 1, MAX_ID)?;
    check_opt_len("order_id", &raw.order_id, MAX_ID)?;
    check_opt_len("agent_id", &raw.agent_id, MAX_ID)?;
    check_opt_len("region", &raw.region, MAX_ID)?;
    check_opt_len("note", &raw.note, MAX_NOTE)?;
    let channel = match &raw.channel {
        None => None,
        Some(ch) => Some(Channel::parse(ch).ok_or_else(|| {
            Reject::schema(format!(
                "channel: {ch:?} is not one of \"phone\", \"chat\", \"email\", \"social\", \"other\""
            ))
        })?),
    };
    let subject = Subject { kind, id: raw.subject.id.into_owned() };
    Ok(Complaint {
        event_id: raw.event_id.into_owned(),
        occurred_at,
        subject_key: subject.key(),
        subject,
        issue: raw.issue.into_owned(),
        customer_id: raw.customer_id.into_owned(),
        pull: raw.pull.unwrap_or(false),
        channel,
    })
}
