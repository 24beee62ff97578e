//! The HTTP side of a running andon, on `http.listen`:
//!
//! - `GET /metrics`: Prometheus text format;
//! - `GET /healthz`: the process is alive and its loop is not stuck;
//! - `GET /readyz`: assigned partitions restored and processing;
//! - `GET /andons`, `GET /andons/{andon_id}`: the open andons this instance
//!   owns (the `#` of an id percent-encoded as `%23`);
//! - `GET /recent`: the latest pulls, delists, relists, escalations, closes;
//! - `GET /`: the status page (one self-contained HTML file).
//!
//! Unknown paths are 404, other methods 405 (axum's routing).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::ops::status::Status;

/// How long the processing loop may go without a turn before `/healthz`
/// fails: longer than a batch can legitimately take (a transaction timeout
/// plus a restore), short enough for a liveness probe to act on.
const STUCK_AFTER_MS: i64 = 120_000;

#[derive(Clone)]
struct App {
    status: Arc<Status>,
    registry: Registry,
}

pub fn router(status: Arc<Status>, registry: Registry) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/andons", get(andons))
        .route("/andons/{*andon_id}", get(andon))
        .route("/recent", get(recent))
        .with_state(App { status, registry })
}

/// Binds now (so a taken port is a start-up error, not a silent one) and
/// serves on a thread of its own until the process ends.
pub fn serve(listen: SocketAddr, status: Arc<Status>, registry: Registry) -> std::io::Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(listen))?;
    let addr = listener.local_addr()?;
    let app = router(status, registry);
    std::thread::Builder::new().name("http".into()).spawn(move || {
        rt.block_on(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    })?;
    tracing::info!(%addr, "serving /metrics /healthz /readyz /andons and the status page");
    Ok(addr)
}

async fn metrics(State(app): State<App>) -> Response {
    // Readiness is a flag the processor flips; read it when scraped.
    if let Some(m) = app.status.metrics() {
        m.ready.set(i64::from(app.status.ready.load(Ordering::Relaxed)));
    }
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&app.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(app): State<App>) -> Response {
    let last = app.status.last_loop_ms.load(Ordering::Relaxed);
    let now = chrono::Utc::now().timestamp_millis();
    // 0: still starting (waiting for the brokers is not being stuck).
    if last == 0 || now - last < STUCK_AFTER_MS {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("processing loop stuck for {} s\n", (now - last) / 1000))
            .into_response()
    }
}

async fn readyz(State(app): State<App>) -> Response {
    if app.status.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, format!("ready: {} partitions\n", app.status.assigned.load(Ordering::Relaxed))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: joining the group or restoring partitions\n").into_response()
    }
}

async fn andons(State(app): State<App>) -> Response {
    let board = app.status.board.lock().unwrap_or_else(|e| e.into_inner());
    Json(&board.andons).into_response()
}

async fn andon(State(app): State<App>, Path(id): Path<String>) -> Response {
    let board = app.status.board.lock().unwrap_or_else(|e| e.into_inner());
    match board.andons.iter().find(|a| a.andon_id == id) {
        Some(a) => Json(a).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no open andon {id:?} on this instance\n")).into_response(),
    }
}

async fn recent(State(app): State<App>) -> Response {
    let board = app.status.board.lock().unwrap_or_else(|e| e.into_inner());
    Json(&board.recent).into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("status_page.html"))
}
