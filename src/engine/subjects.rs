//! The subjects' table: every subject's key and state in a box of its own,
//! the table holding only the box.
//!
//! A hash table grows by doubling, so it is between half and seven eighths
//! full, and a million keys spread over 16 partitions leave each table
//! just under half full. A slot holding the key and the state inline (40
//! bytes, and a control byte) then cost a subject 86 bytes; a slot
//! holding a pointer costs 19, and the box its 40, full. A lookup follows
//! the pointer once more than before, to compare keys; the table's control
//! bytes (7 bits of each hash) keep that to the subject looked for, almost
//! always.
//!
//! Serialises as a map from key to state, as the `HashMap` it replaces did.

use std::fmt;

use hashbrown::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{str_hash as hash, SubjectState};

/// The subjects by key.
#[derive(Clone, Default)]
pub struct Subjects {
    table: HashTable<Box<Subject>>,
}

#[derive(Clone)]
struct Subject {
    key: Box<str>,
    state: SubjectState,
}

impl Subjects {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&SubjectState> {
        self.table.find(hash(key), |s| *s.key == *key).map(|s| &s.state)
    }

    pub fn get_key_value(&self, key: &str) -> Option<(&str, &SubjectState)> {
        self.table.find(hash(key), |s| *s.key == *key).map(|s| (&*s.key, &s.state))
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut SubjectState> {
        self.table.find_mut(hash(key), |s| *s.key == *key).map(|s| &mut s.state)
    }

    /// `key`'s state, added empty if the table has none.
    pub fn get_or_default(&mut self, key: &str) -> &mut SubjectState {
        let entry = self.table.entry(hash(key), |s| *s.key == *key, |s| hash(&s.key));
        let subject = entry.or_insert_with(|| Box::new(Subject { key: key.into(), state: SubjectState::default() }));
        &mut subject.into_mut().state
    }

    /// Keeps the subjects for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut SubjectState) -> bool) {
        self.table.retain(|s| keep(&s.key, &mut s.state));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &SubjectState)> {
        self.table.iter().map(|s| (&*s.key, &s.state))
    }

    pub fn values(&self) -> impl Iterator<Item = &SubjectState> {
        self.table.iter().map(|s| &s.state)
    }
}

impl std::ops::Index<&str> for Subjects {
    type Output = SubjectState;

    /// Panics when `key` is not in the table, like a map's index.
    fn index(&self, key: &str) -> &SubjectState {
        self.get(key).expect("a subject in the table")
    }
}

impl PartialEq for Subjects {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, s)| other.get(k) == Some(s))
    }
}

impl Eq for Subjects {}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Subjects {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Subjects {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Subjects;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from subject key to subject state")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Subjects, A::Error> {
                let mut subjects = Subjects::default();
                while let Some((key, state)) = map.next_entry::<Box<str>, SubjectState>()? {
                    // A repeated key keeps the last, as a map's would.
                    *subjects.get_or_default(&key) = state;
                }
                Ok(subjects)
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_delists(n: u32) -> SubjectState {
        SubjectState { delists: n, ..SubjectState::default() }
    }

    #[test]
    fn behaves_as_a_map_and_serialises_as_one() {
        let mut subjects = Subjects::default();
        let mut map = std::collections::BTreeMap::new();
        for i in 0..2_000u32 {
            let key = format!("sku:{}", i % 700);
            subjects.get_or_default(&key).delists += 1;
            *map.entry(key).or_insert(0) += 1;
        }
        subjects.retain(|k, _| !k.ends_with('7'));
        map.retain(|k, _| !k.ends_with('7'));
        assert_eq!(subjects.len(), map.len());
        for (k, n) in &map {
            assert_eq!(subjects.get(k).map(|s| s.delists), Some(*n));
            assert_eq!(subjects[k.as_str()].delists, *n);
        }
        assert!(subjects.get("sku:7").is_none() && subjects.get_mut("sku:17").is_none());
        assert_eq!(subjects.get_key_value("sku:3").map(|(k, _)| k), Some("sku:3"));

        let json = serde_json::to_value(&subjects).expect("serialises");
        let as_map: std::collections::BTreeMap<String, SubjectState> =
            map.iter().map(|(k, n)| (k.clone(), with_delists(*n))).collect();
        assert_eq!(json, serde_json::to_value(&as_map).expect("a map serialises"), "the same form as a map");
        let back: Subjects = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, subjects);
        let mut other = back.clone();
        other.get_or_default("sku:3").delists += 1;
        assert_ne!(other, subjects);
    }
}
