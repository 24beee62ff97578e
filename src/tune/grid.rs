//! The candidate rules: thresholds × windows, from `--threshold`,
//! `--window` and `--issue` or their defaults, checked before any history
//! is read. A mistake names its flag and is a usage error (exit code 2).

use std::fmt;

use crate::event::is_valid_issue;
use crate::time::Dur;

/// Thresholds tried when `--threshold` is not given.
pub const DEFAULT_THRESHOLDS: [u32; 5] = [1, 2, 3, 4, 5];

/// Windows tried when `--window` is not given: an hour to two weeks.
pub const DEFAULT_WINDOWS: [&str; 6] = ["1h", "6h", "24h", "3d", "7d", "14d"];

/// The same bounds as `[rules]` (docs/configuration.md#rules): a candidate
/// must be a rule the configuration would accept.
const MAX_THRESHOLD: u32 = 1_000_000;
const MAX_WINDOW: Dur = Dur::from_secs(100 * 365 * 86_400);

/// A usage mistake in the grid, naming its flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct GridError {
    pub flag: &'static str,
    pub message: String,
}

fn err(flag: &'static str, message: impl Into<String>) -> GridError {
    GridError { flag, message: message.into() }
}

/// One candidate: N distinct customers within W.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Candidate {
    pub threshold: u32,
    pub window: Dur,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.threshold, format_window(self.window))
    }
}

/// A window as the configuration writes it: `24h`, `7d`, `90m`.
pub fn format_window(w: Dur) -> String {
    crate::config::format_duration(w.to_std())
}

/// The grid: every threshold with every window, for the issues named (all
/// issues of the history when none is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub thresholds: Vec<u32>,
    pub windows: Vec<Dur>,
    /// Empty: every issue the history holds.
    pub issues: Vec<String>,
}

impl Grid {
    /// Checks the flags as given (`None`: the default). Values are sorted
    /// and repeats dropped.
    pub fn parse(
        thresholds: Option<&[String]>,
        windows: Option<&[String]>,
        issues: &[String],
    ) -> Result<Grid, GridError> {
        let mut ts = match thresholds {
            None => DEFAULT_THRESHOLDS.to_vec(),
            Some(list) => list.iter().map(|s| parse_threshold(s)).collect::<Result<Vec<_>, _>>()?,
        };
        if ts.is_empty() {
            return Err(err("--threshold", "no threshold given"));
        }
        ts.sort_unstable();
        ts.dedup();
        let mut ws = match windows {
            None => DEFAULT_WINDOWS.iter().map(|s| parse_window(s)).collect::<Result<Vec<_>, _>>()?,
            Some(list) => list.iter().map(|s| parse_window(s)).collect::<Result<Vec<_>, _>>()?,
        };
        if ws.is_empty() {
            return Err(err("--window", "no window given"));
        }
        ws.sort_unstable();
        ws.dedup();
        let mut is = Vec::new();
        for name in issues {
            let name = name.trim();
            if !is_valid_issue(name) {
                return Err(err("--issue", format!("{name:?} is not an issue name (^[a-z0-9][a-z0-9_.-]{{0,63}}$)")));
            }
            is.push(name.to_owned());
        }
        is.sort();
        is.dedup();
        Ok(Grid { thresholds: ts, windows: ws, issues: is })
    }

    /// Every candidate, thresholds first: (1, 1h), (1, 6h), ..., (5, 14d).
    pub fn candidates(&self) -> Vec<Candidate> {
        self.thresholds
            .iter()
            .flat_map(|&threshold| self.windows.iter().map(move |&window| Candidate { threshold, window }))
            .collect()
    }
}

fn parse_threshold(s: &str) -> Result<u32, GridError> {
    let n: u32 =
        s.trim().parse().map_err(|_| err("--threshold", format!("{s:?} is not a whole number of customers")))?;
    if n == 0 || n > MAX_THRESHOLD {
        return Err(err("--threshold", format!("{n} is not between 1 and {MAX_THRESHOLD}")));
    }
    Ok(n)
}

fn parse_window(s: &str) -> Result<Dur, GridError> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| err("--window", format!("{s:?} is not a duration like \"6h\" or \"7d\" ({e})")))?;
    let d = Dur::from_std(d)
        .filter(|d| *d <= MAX_WINDOW)
        .ok_or_else(|| err("--window", format!("{s:?} is longer than 100 years")))?;
    if d < Dur::SECOND {
        return Err(err("--window", format!("{s:?} is shorter than one second")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_five_thresholds_by_six_windows() {
        let g = Grid::parse(None, None, &[]).expect("defaults are valid");
        assert_eq!(g.candidates().len(), 30);
        assert_eq!(g.windows.first(), Some(&Dur::from_secs(3600)));
        assert_eq!(g.windows.last(), Some(&Dur::from_secs(14 * 86_400)));
    }

    #[test]
    fn lists_are_sorted_and_repeats_dropped() {
        let g =
            Grid::parse(Some(&strings(&["3", "2", "3"])), Some(&strings(&["7d", "24h", "1d"])), &strings(&["b", "a"]))
                .expect("valid");
        assert_eq!(g.thresholds, vec![2, 3]);
        assert_eq!(g.windows, vec![Dur::from_secs(86_400), Dur::from_secs(7 * 86_400)]);
        assert_eq!(g.issues, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(g.candidates().len(), 4);
        assert_eq!(g.candidates()[0].to_string(), "2 in 1d");
    }

    /// --threshold, --window, --issue, and the flag the error must name.
    type Case = (Option<Vec<String>>, Option<Vec<String>>, Vec<String>, &'static str);

    #[test]
    fn absurd_grids_name_their_flag() {
        let cases: [Case; 7] = [
            (Some(strings(&["0"])), None, vec![], "--threshold"),
            (Some(strings(&["two"])), None, vec![], "--threshold"),
            (Some(vec![]), None, vec![], "--threshold"),
            (None, Some(strings(&["0s"])), vec![], "--window"),
            (None, Some(strings(&["banana"])), vec![], "--window"),
            (None, Some(vec![]), vec![], "--window"),
            (None, None, strings(&["Not An Issue"]), "--issue"),
        ];
        for (t, w, i, flag) in cases {
            let e = Grid::parse(t.as_deref(), w.as_deref(), &i).expect_err("refused");
            assert_eq!(e.flag, flag, "{e}");
        }
    }
}
