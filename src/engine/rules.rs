//! The rules the engine applies: per issue, how many distinct customers
//! within which window pull the cord, what the pull does, and the route of
//! owners a work order walks through.
//!
//! These types belong to the engine. `config` reads the TOML file and the
//! environment, validates them and converts them into an [`EngineConfig`];
//! the engine never looks at configuration syntax (only its tests do: they
//! write their rules as TOML, as a user would).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::Dur;

/// What a rule does when it pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Take the subject off sale and open a work order.
    Delist,
    /// Open a work order only.
    Notify,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delist => "delist",
            Self::Notify => "notify",
        }
    }
}

/// One step of a route: who owns it and how long they have. Open andons
/// carry their route in the state, so this serialises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStep {
    pub owner: String,
    pub sla: Dur,
}

/// A counting rule for one or more issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Distinct customers within `window` that pull the cord (≥ 1).
    pub threshold: u32,
    /// At least 1 s.
    pub window: Dur,
    pub action: RuleAction,
    /// At least one step.
    pub route: Arc<[RouteStep]>,
}

/// The rules of `[rules]`: first matching `[[rules.issue]]`, else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub default: Rule,
    /// In file order; the first whose `issues` names an issue wins.
    pub by_issue: Vec<(Vec<String>, Rule)>,
}

impl Rules {
    pub fn for_issue(&self, issue: &str) -> &Rule {
        self.by_issue.iter().find(|(issues, _)| issues.iter().any(|i| i == issue)).map_or(&self.default, |(_, r)| r)
    }

    /// The longest window of all rules: it bounds how long duplicates are remembered.
    pub fn longest_window(&self) -> Dur {
        self.by_issue.iter().map(|(_, r)| r.window).fold(self.default.window, Dur::max)
    }

    /// Every issue some rule names, for bounded metric labels.
    pub fn named_issues(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_issue.iter().flat_map(|(i, _)| i.iter().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What the engine needs: rules and time bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub rules: Rules,
    /// How far behind stream time − W a complaint may arrive and still count.
    pub grace: Dur,
    /// How far after its record timestamp an input's event time may lie.
    pub max_future_skew: Dur,
}
