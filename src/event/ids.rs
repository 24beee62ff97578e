//! The identities records carry and are keyed by: a [`Subject`] and its
//! key `"<kind>:<id>"`, issues, and andon ids `<subject key>/<issue>#<n>`.

use serde::{Deserialize, Serialize};

use super::SubjectKind;

/// `{kind, id}` exactly, as in every output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

impl Subject {
    /// `"<kind>:<id>"`, the record key of everything about this subject.
    pub fn key(&self) -> String {
        // Built by hand: every complaint makes one, and `format!` costs
        // several times the copy.
        let kind = self.kind.as_str();
        let mut key = String::with_capacity(kind.len() + 1 + self.id.len());
        key.push_str(kind);
        key.push(':');
        key.push_str(&self.id);
        key
    }

    /// The inverse of [`Subject::key`]; `None` for anything that is not one.
    pub fn from_key(key: &str) -> Option<Subject> {
        let (kind, id) = key.split_once(':')?;
        let kind = match kind {
            "sku" => SubjectKind::Sku,
            "promotion" => SubjectKind::Promotion,
            _ => return None,
        };
        (!id.is_empty()).then(|| Subject { kind, id: id.to_owned() })
    }
}

/// `^[a-z0-9][a-z0-9_.-]{0,63}$`
pub fn is_valid_issue(issue: &str) -> bool {
    let b = issue.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'))
}

/// The subject key part of an `andon_id` (everything before its last `/`).
pub fn andon_subject_key(andon_id: &str) -> &str {
    andon_id.rsplit_once('/').map_or("", |(k, _)| k)
}

/// Splits `<subject key>/<issue>#<n>` into its parts.
pub fn parse_andon_id(andon_id: &str) -> Option<(&str, &str, u32)> {
    let (key, rest) = andon_id.rsplit_once('/')?;
    let (issue, n) = rest.split_once('#')?;
    let n: u32 = n.parse().ok()?;
    if n == 0
        || !is_valid_issue(issue)
        || Subject::from_key(key).is_none()
        || n.to_string().len() != rest.len() - issue.len() - 1
    {
        return None;
    }
    Some((key, issue, n))
}
