//! SIGINT / SIGTERM into a flag the processing loops poll between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag set by the first SIGINT or SIGTERM; a second one exits at once.
pub fn on_signal() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = flag.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        rt.block_on(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            for i in 0.. {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                if i > 0 {
                    tracing::warn!("second signal: exiting now");
                    std::process::exit(130);
                }
                tracing::info!("signal received: finishing the current batch");
                set.store(true, Ordering::SeqCst);
            }
        });
    })?;
    Ok(flag)
}
