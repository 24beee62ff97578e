//! The operators' side of a running andon: what `andon run` and
//! `andon demo` show the outside, started from one place ([`serve`]).
//!
//! - [`metrics`]: the Prometheus metrics (names and bounded labels).
//! - [`status`]: readiness, liveness, the open andons and recent outputs,
//!   written by the processor and read by HTTP and the demo.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/andons`, `/recent`,
//!   `/subjects`, `/owners`, `/bad-pulls`, `/cluster` and the status page
//!   (`status_page.html` and the vendored uPlot in `vendor/`, compiled
//!   into the binary).
//! - [`ingress`]: `POST /complaints` and `POST /updates`, the inputs over
//!   HTTP for webhook callers.
//! - [`agent`]: `/agent`, the page for a person on a call
//!   (`agent_page.html`), which reads `/subjects` and posts complaints.

pub mod agent;
pub mod http;
pub mod ingress;
pub mod metrics;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Settings;
pub use metrics::Metrics;
pub use status::Status;

/// Why the operators' side could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("http.listen {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("starting the view's threads: {0}")]
    View(std::io::Error),
    #[error("the ingress's producer: {0}")]
    Ingress(#[from] rdkafka::error::KafkaError),
}

/// Creates the metrics (on a registry of their own, with the issue labels
/// of `settings`' rules) and the shared [`Status`], serves HTTP on
/// `http.listen`, and starts the cluster-wide view (its reader and this
/// member's record, advertised at `http.advertise` or the bound address).
/// Returns the status the processor writes into and the address actually
/// bound (`http.listen` may ask for port 0).
pub fn serve(settings: &Settings) -> Result<(Arc<Status>, SocketAddr), ServeError> {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry, &settings.engine)?;
    let status = Arc::new(Status::default());
    *status.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(metrics);
    let ingress = ingress::Ingress::new(Arc::new(settings.clone()), status.clone())?;
    let extra = agent::router(settings).merge(ingress.router());
    let addr = http::serve(settings.http.listen, status.clone(), registry, extra)
        .map_err(|source| ServeError::Listen { addr: settings.http.listen, source })?;
    let me =
        crate::view::Me { member: crate::view::member_id(settings), advertise: crate::view::advertise(settings, addr) };
    tracing::info!(member = %me.member, advertise = %me.advertise, "this member in the cluster-wide view");
    crate::view::start(Arc::new(settings.clone()), status.clone(), me).map_err(ServeError::View)?;
    Ok((status, addr))
}
