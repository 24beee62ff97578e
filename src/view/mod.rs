//! The cluster-wide read model: every member answers for all open andons.
//!
//! (Filled in by the following commits; the design is in the README
//! section "The cluster-wide view".)

/// How long the view topic keeps a record that nobody re-puts: 30 days,
/// the history that `/owners` and `/bad-pulls` look back over.
pub const RETENTION_MS: &str = "2592000000";
