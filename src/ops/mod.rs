//! The operators' side of a running andon: what `andon run` and
//! `andon demo` show the outside, started from one place ([`serve`]).
//!
//! - [`metrics`]: the Prometheus metrics (names and bounded labels).
//! - [`status`]: readiness, liveness, the open andons and recent outputs,
//!   written by the processor and read by HTTP and the demo.
//! - [`auth`]: who may use the endpoints (`[http.auth]`: tokens, a proxy's
//!   header, roles), a middleware and an extractor for the routes.
//! - [`tls`]: the server's and the peer client's TLS from PEM files.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/andons`, `/recent`,
//!   `/subjects`, `/owners`, `/bad-pulls`, `/cluster` and the status page
//!   (`status_page.html` and the vendored uPlot in `vendor/`, compiled
//!   into the binary).
//! - [`ingress`]: `POST /complaints` and `POST /updates`, the inputs over
//!   HTTP for webhook callers.
//! - [`agent`]: `/agent`, the page for a person on a call
//!   (`agent_page.html`), which reads `/subjects` and posts complaints.

pub mod agent;
pub mod auth;
pub mod http;
pub mod ingress;
pub mod metrics;
pub mod status;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{AuthMode, ConfigError, Settings};
pub use metrics::Metrics;
pub use status::Status;

/// Why the operators' side could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("http.listen {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("starting the view's threads: {0}")]
    View(std::io::Error),
}

/// What [`serve`] reads besides the settings, read now: the TLS PEM files
/// and the tokens' hashes. A mistake names its field (`http.tls_key`).
pub fn check(settings: &Settings) -> Result<(), ConfigError> {
    auth::Auth::from_settings(&settings.http.auth)?;
    tls::server_config(&settings.http)?;
    tls::client_config(&settings.http)?;
    Ok(())
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
    let auth = Arc::new(auth::Auth::from_settings(&settings.http.auth)?);
    match auth.mode() {
        AuthMode::None => tracing::warn!(
            "http.auth.mode = \"none\": anyone who reaches the HTTP port can read everything, \
             per-person figures included"
        ),
        AuthMode::Tokens if auth.token_count() == 0 => tracing::warn!(
            "http.auth.mode = \"tokens\" and no token is configured (http.auth.tokens): \
             every path but the open ones answers 401"
        ),
        AuthMode::Proxy if settings.http.auth.peer_token.is_empty() => tracing::warn!(
            "http.auth.mode = \"proxy\" without http.auth.peer_token: a /subjects forwarded to another \
             member carries only a caller's bearer token, and the proxy's users have none"
        ),
        _ => {}
    }
    let peers = crate::view::remote::Client::new(tls::client_config(&settings.http)?);
    let server_tls = tls::server_config(&settings.http)?;
    // The agent page and the ingress, behind the same authentication:
    // posting needs the role `report` (complaints) or `update` (updates).
    let ingress = ingress::Ingress::new(Arc::new(settings.clone()), status.clone());
    let extra = agent::router(settings)
        .merge(ingress.router())
        .route_layer(axum::middleware::from_fn_with_state(auth.clone(), auth::guard));
    let app = http::router(status.clone(), registry, auth, peers).merge(extra);
    let addr = http::serve(settings.http.listen, server_tls, app)
        .map_err(|source| ServeError::Listen { addr: settings.http.listen, source })?;
    let me =
        crate::view::Me { member: crate::view::member_id(settings), advertise: crate::view::advertise(settings, addr) };
    tracing::info!(member = %me.member, advertise = %me.advertise, "this member in the cluster-wide view");
    crate::view::start(Arc::new(settings.clone()), status.clone(), me).map_err(ServeError::View)?;
    Ok((status, addr))
}
