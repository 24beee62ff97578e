//! The work-order update record: [`Update`] and [`decode_update`].

use std::borrow::Cow;

use serde::Deserialize;

use super::decode::{check_len, check_opt_len, parse, MAX_ID, MAX_NOTE};
use super::{parse_timestamp, Reject, Ts, Verdict};

/// A decoded work-order update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub update_id: String,
    pub andon_id: String,
    pub step: u32,
    pub actor: String,
    pub at: Ts,
    pub verdict: Option<Verdict>,
}

impl Update {
    /// The subject key this update must be keyed by: `andon_id` up to its last `/`.
    pub fn subject_key(&self) -> &str {
        self.andon_id.rsplit_once('/').map_or("", |(k, _)| k)
    }
}

#[derive(Deserialize)]
struct RawUpdate<'a> {
    #[serde(borrow)]
    update_id: Cow<'a, str>,
    #[serde(borrow)]
    andon_id: Cow<'a, str>,
    step: u64,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(default, borrow)]
    verdict: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    note: Option<Cow<'a, str>>,
}

/// Decodes a work-order update from the bytes of a record value.
pub fn decode_update(bytes: &[u8], max_bytes: usize) -> Result<Update, Reject> {
    let raw: RawUpdate<'_> = parse(bytes, max_bytes)?;
    check_len("update_id", &raw.update_id, 1, MAX_ID)?;
    // An andon_id is `<subject key>/<issue>#<n>`, at most 128 + 10 + 1 + 64 + 1 + 10 chars.
    check_len("andon_id", &raw.andon_id, 1, 256)?;
    if raw.step < 1 || raw.step > u64::from(u32::MAX) {
        return Err(Reject::schema(format!("step: {} is not an integer from 1", raw.step)));
    }
    check_len("actor", &raw.actor, 1, MAX_ID)?;
    let at = parse_timestamp("at", &raw.at)?;
    let verdict = match raw.verdict.as_deref() {
        None => None,
        Some("defect_confirmed") => Some(Verdict::DefectConfirmed),
        Some("no_defect") => Some(Verdict::NoDefect),
        Some(other) => {
            return Err(Reject::schema(format!("verdict: {other:?} is not one of \"defect_confirmed\", \"no_defect\"")))
        }
    };
    check_opt_len("note", &raw.note, MAX_NOTE)?;
    Ok(Update {
        update_id: raw.update_id.into_owned(),
        andon_id: raw.andon_id.into_owned(),
        step: raw.step as u32,
        actor: raw.actor.into_owned(),
        at,
        verdict,
    })
}
