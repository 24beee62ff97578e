//! `andon demo` (placeholder until the demo lands).
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;

pub fn run(_settings: Settings, _duration: Option<Duration>, _shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    anyhow::bail!("demo not built yet")
}
