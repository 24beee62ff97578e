//! The closed sets of values records carry (subject kinds, verdicts,
//! triggers, channels, actions), each with its wire spelling (`as_str`,
//! also the metric label) and, where callers list them, `ALL`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Sku,
    Promotion,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sku => "sku",
            Self::Promotion => "promotion",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    DefectConfirmed,
    NoDefect,
}

impl Verdict {
    pub const ALL: [Verdict; 2] = [Self::DefectConfirmed, Self::NoDefect];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DefectConfirmed => "defect_confirmed",
            Self::NoDefect => "no_defect",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Threshold,
    Manual,
}

impl Trigger {
    pub const ALL: [Trigger; 2] = [Self::Threshold, Self::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Manual => "manual",
        }
    }
}

/// The channel a complaint came in through (`channel` of a complaint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Chat,
    Email,
    Social,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 5] = [Self::Phone, Self::Chat, Self::Email, Self::Social, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Chat => "chat",
            Self::Email => "email",
            Self::Social => "social",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Delist,
    Relist,
}

impl Action {
    pub const ALL: [Action; 2] = [Self::Delist, Self::Relist];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delist => "delist",
            Self::Relist => "relist",
        }
    }
}
