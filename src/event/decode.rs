//! What both input decoders share: the size limit, the JSON parse that
//! tells a syntax error (`invalid_json`) from a value of the wrong shape
//! (`schema_violation`, naming the field), and the length checks.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Reject, RejectReason};

pub(super) const MAX_ID: usize = 128;
pub(super) const MAX_NOTE: usize = 4096;

/// Parses JSON into `T`, telling a syntax error (`invalid_json`) from a value
/// of the wrong shape (`schema_violation`, with the path of the field).
pub(super) fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], max_bytes: usize) -> Result<T, Reject> {
    if bytes.len() > max_bytes {
        return Err(Reject::new(
            RejectReason::TooLarge,
            format!("record is {} bytes, more than max_event_bytes = {max_bytes}", bytes.len()),
        ));
    }
    // JSON is UTF-8. Checked once for the whole record, so that the parser
    // reads a `str` and does not check every string again (from a byte
    // slice, serde_json validates each key and value it borrows: a fifth
    // of a complaint's decoding).
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Reject::new(RejectReason::InvalidJson, format!("not valid JSON: not UTF-8: {e}")))?;
    // Records are JSON objects; serde's derive would also read a struct
    // from an array of its fields.
    if let Some(first) = text.bytes().find(|b| !b.is_ascii_whitespace()) {
        if first != b'{' && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            return Err(Reject::schema("the record must be a JSON object"));
        }
    }
    // Fast path without path tracking; redo with it only to explain a failure.
    match serde_json::from_str::<T>(text) {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => {
            Err(Reject::new(RejectReason::InvalidJson, format!("not valid JSON: {e}")))
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Ok(_) => Err(Reject::schema("record does not match its schema")),
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if inner.is_syntax() || inner.is_eof() {
                        return Err(Reject::new(RejectReason::InvalidJson, format!("not valid JSON: {inner}")));
                    }
                    let msg = strip_position(&inner.to_string());
                    if path == "." || path.is_empty() {
                        Err(Reject::schema(msg))
                    } else {
                        Err(Reject::schema(format!("{path}: {msg}")))
                    }
                }
            }
        }
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

pub(super) fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), Reject> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(Reject::schema(format!("{field}: length {n} is outside {min}..{max}")));
    }
    Ok(())
}

pub(super) fn check_opt_len(field: &str, v: &Option<Cow<'_, str>>, max: usize) -> Result<(), Reject> {
    match v {
        Some(v) => check_len(field, v, 0, max),
        None => Ok(()),
    }
}
