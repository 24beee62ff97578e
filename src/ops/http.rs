//! The HTTP side of a running andon, on `http.listen`:
//!
//! - `GET /metrics`: Prometheus text format (this member's counters);
//! - `GET /healthz`: the process is alive and its loop is not stuck;
//! - `GET /readyz`: assigned partitions restored and processing;
//! - `GET /andons`, `GET /andons/{andon_id}`: the open andons of the whole
//!   cluster, from the view (the `#` of an id percent-encoded as `%23`);
//! - `GET /recent`: the latest pulls, delists, relists, escalations,
//!   closes of the whole cluster;
//! - `GET /subjects/{kind}/{id}`: one subject: off sale or not, its open
//!   andons, and its live counts from its partition's owner;
//! - `GET /owners`: owners' and actors' timeliness; `GET /bad-pulls`: the
//!   bad-pull rate by issue, trigger and channel (30 days);
//! - `GET /cluster`: members, the view's lag, the charts' series;
//! - `GET /`: the status page, and `/assets/` its vendored chart library.
//!
//! Unknown paths are 404, other methods 405 (axum's routing). Every route
//! is behind [`auth::guard`] (`[http.auth]`): the open paths pass, other
//! GETs need the role `read`; a route that writes takes
//! [`auth::Require`] for its role. With `http.tls_cert` set the server
//! speaks HTTPS only.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::query::IssueCount;
use crate::kafka::processor::wall_clock;
use crate::ops::auth::{self, Auth};
use crate::ops::status::Status;
use crate::view::model::subject_of;
use crate::view::remote;

/// How long the processing loop may go without a turn before `/healthz`
/// fails: longer than a batch can legitimately take (a transaction timeout
/// plus a restore), short enough for a liveness probe to act on.
const STUCK_AFTER_MS: i64 = 120_000;

/// How long `/subjects` waits for the live counts: from this member's
/// processing loop (a turn is at most a batch), or from another member.
const LOCAL_ANSWER: Duration = Duration::from_secs(5);
const REMOTE_ANSWER: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct App {
    status: Arc<Status>,
    registry: Registry,
    auth: Arc<Auth>,
    peers: remote::Client,
}

/// Every route, behind `auth`; `peers` asks other members.
pub fn router(status: Arc<Status>, registry: Registry, auth: Arc<Auth>, peers: remote::Client) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/uPlot.iife.min.js", get(uplot_js))
        .route("/assets/uPlot.min.css", get(uplot_css))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/andons", get(andons))
        .route("/andons/{*andon_id}", get(andon))
        .route("/recent", get(recent))
        .route("/subjects/{kind}/{*id}", get(subject))
        .route("/owners", get(owners))
        .route("/bad-pulls", get(bad_pulls))
        .route("/cluster", get(cluster))
        // route_layer: an unknown path stays a 404 for anyone.
        .route_layer(axum::middleware::from_fn_with_state(auth.clone(), auth::guard))
        .with_state(App { status, registry, auth, peers })
}

enum Listener {
    Plain(tokio::net::TcpListener),
    Tls(Box<axum_server::Server<SocketAddr, axum_server::tls_rustls::RustlsAcceptor>>),
}

/// Binds now (so a taken port is a start-up error, not a silent one) and
/// serves on a thread of its own until the process ends: HTTPS when `tls`
/// is given, else HTTP. Either way each request knows the TCP peer's
/// address (`ConnectInfo`), which the proxy check needs.
pub fn serve(listen: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>, app: Router) -> std::io::Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = match tls {
        Some(config) => {
            // axum-server takes the listener over; tokio's needs the runtime.
            let _in_runtime = rt.enter();
            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
            Listener::Tls(Box::new(axum_server::from_tcp_rustls(listener.into_std()?, config)?))
        }
        None => Listener::Plain(listener),
    };
    std::thread::Builder::new().name("http".into()).spawn(move || {
        rt.block_on(async move {
            let served = match server {
                Listener::Tls(server) => server.serve(service).await,
                Listener::Plain(listener) => axum::serve(listener, service).await,
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    })?;
    tracing::info!(%addr, scheme, "serving /metrics /healthz /readyz /andons /subjects /owners the status page, /agent, POST /complaints and /updates");
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
    let status = &app.status;
    if status.ready.load(Ordering::Relaxed) {
        return (StatusCode::OK, format!("ready: {} partitions\n", status.assigned.load(Ordering::Relaxed)))
            .into_response();
    }
    let mut why = String::from("not ready:");
    if let Some(p) = status.problem.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
        why.push_str(&format!(" {p};"));
    }
    let health = status.health.lock().unwrap_or_else(|e| e.into_inner());
    let mut named = false;
    for h in health.iter().filter(|h| h.state != "active" || h.stalled) {
        named = true;
        let stalled = if h.stalled { " (stalled)" } else { "" };
        let error = h.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        why.push_str(&format!(" partition {} {}{stalled}{error};", h.partition, h.state));
    }
    if !named {
        why.push_str(" joining the group or restoring partitions");
    }
    why.push('\n');
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

async fn andons(State(app): State<App>) -> Response {
    let model = app.status.view.model();
    Json(model.andons(wall_clock())).into_response()
}

async fn andon(State(app): State<App>, Path(id): Path<String>) -> Response {
    let model = app.status.view.model();
    match model.andon(&id, wall_clock()) {
        Some(a) => Json(a).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no open andon {id:?} in the cluster\n")).into_response(),
    }
}

async fn recent(State(app): State<App>) -> Response {
    Json(app.status.view.model().recent()).into_response()
}

async fn owners(State(app): State<App>) -> Response {
    Json(app.status.view.model().owners(wall_clock())).into_response()
}

async fn bad_pulls(State(app): State<App>) -> Response {
    Json(app.status.view.model().bad_pulls(wall_clock())).into_response()
}

async fn cluster(State(app): State<App>) -> Response {
    let view = &app.status.view;
    let now = wall_clock();
    let model = view.model();
    let me = view.me.get();
    let lag_ms = view.lag_ms.load(Ordering::Relaxed);
    let members: Vec<Value> = model
        .members()
        .map(|m| {
            json!({
                "member": m.member,
                "advertise": m.advertise,
                "partitions": m.partitions,
                "updated_at": crate::event::format_timestamp(m.updated_at),
                "seconds_since_update": (now - m.updated_at).as_secs().max(0),
            })
        })
        .collect();
    Json(json!({
        "member": me.map(|m| &m.member),
        "advertise": me.map(|m| &m.advertise),
        "partitions": app.status.partitions(),
        "view": {
            "lag_seconds": (lag_ms >= 0).then(|| lag_ms as f64 / 1000.0),
            "caught_up": view.caught_up.load(Ordering::Relaxed),
            "partitions": view.partitions.load(Ordering::Relaxed),
            "open_andons": model.open_count(),
            "off_sale_subjects": model.off_sale_count(),
            "closed_kept": model.closed_count(),
        },
        "members": members,
        "charts": model.charts(now),
    }))
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct SubjectParams {
    /// Answer from this member's own engine only (what members ask each
    /// other): never forwarded again.
    #[serde(default)]
    local: bool,
}

fn unavailable(body: Value) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /subjects/{kind}/{id}`.
async fn subject(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    Query(params): Query<SubjectParams>,
    headers: HeaderMap,
) -> Response {
    let Some(subject) = subject_of(&kind, &id) else {
        let message = "a subject is /subjects/sku/{id} or /subjects/promotion/{id}, the id 1 to 128 characters";
        return (StatusCode::NOT_FOUND, Json(json!({"error": "unknown_subject", "message": message}))).into_response();
    };
    let key = subject.key();
    let view = &app.status.view;
    let partitions = view.partitions.load(Ordering::Relaxed);
    if partitions <= 0 {
        return unavailable(json!({
            "error": "view_not_ready",
            "subject": subject,
            "message": "this member has not read the view topic yet: it does not know the partitions",
        }));
    }
    let partition = view.partitioner.get().copied().unwrap_or_default().partition(key.as_bytes(), partitions);
    let me = view.me.get().cloned();

    // The live counts: this member's engine if it owns the partition, else
    // the owner's, asked over HTTP.
    let (issues, from) = if app.status.owns(partition) {
        let answer = tokio::time::timeout(LOCAL_ANSWER, view.queries.ask(&key, partition)).await;
        match answer {
            Ok(Ok(Some(issues))) => (
                issues,
                json!({"member": me.as_ref().map(|m| &m.member), "advertise": me.as_ref().map(|m| &m.advertise), "local": true}),
            ),
            Ok(Ok(None)) | Ok(Err(_)) => {
                return unavailable(json!({
                    "error": "ownership_moving",
                    "subject": subject,
                    "partition": partition,
                    "message": "this member was handing the partition over; ask again",
                }))
            }
            Err(_) => {
                return unavailable(json!({
                    "error": "owner_busy",
                    "subject": subject,
                    "partition": partition,
                    "owner": me.as_ref().map(|m| json!({"member": m.member, "advertise": m.advertise})),
                    "message": format!("this member owns the partition but its processing loop did not answer within {LOCAL_ANSWER:?}"),
                }))
            }
        }
    } else if params.local {
        return unavailable(json!({
            "error": "not_owner",
            "subject": subject,
            "partition": partition,
            "message": "this member does not own the subject's partition (any more)",
        }));
    } else {
        let owner = view.model().owner_of(partition).cloned();
        let Some(owner) = owner else {
            return unavailable(json!({
                "error": "owner_unknown",
                "subject": subject,
                "partition": partition,
                "message": "no member has said it owns this partition: the live counts cannot be had",
            }));
        };
        let owner_json = json!({"member": owner.member, "advertise": owner.advertise});
        if me.as_ref().is_some_and(|m| m.member == owner.member) {
            return unavailable(json!({
                "error": "ownership_moving",
                "subject": subject,
                "partition": partition,
                "owner": owner_json,
                "message": "this member's last record says it owns the partition, but it no longer does; ask again",
            }));
        }
        let path = format!("/subjects/{kind}/{}?local=true", remote::encode_segment(&subject.id));
        // With authentication on, the owner wants credentials too.
        let authorization = app.auth.peer_authorization(headers.get(header::AUTHORIZATION));
        let authorization = authorization.as_ref().and_then(|v| v.to_str().ok());
        match app.peers.get(&owner.advertise, &path, REMOTE_ANSWER, authorization).await {
            Ok((200, body)) => match serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| serde_json::from_value::<Vec<IssueCount>>(v.get("issues")?.clone()).ok())
            {
                Some(issues) => (issues, json!({"member": owner.member, "advertise": owner.advertise, "local": false})),
                None => {
                    return unavailable(json!({
                        "error": "owner_unreachable",
                        "subject": subject,
                        "partition": partition,
                        "owner": owner_json,
                        "reason": "the owner's answer did not parse",
                    }))
                }
            },
            Ok((code, body)) => {
                let theirs: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                return unavailable(json!({
                    "error": "owner_refused",
                    "subject": subject,
                    "partition": partition,
                    "owner": owner_json,
                    "reason": format!("the owner answered HTTP {code}"),
                    "owner_answer": theirs,
                }));
            }
            Err(e) => {
                return unavailable(json!({
                    "error": "owner_unreachable",
                    "subject": subject,
                    "partition": partition,
                    "owner": owner_json,
                    "reason": e.to_string(),
                }))
            }
        }
    };
    if params.local {
        return Json(json!({"subject": subject, "partition": partition, "issues": issues})).into_response();
    }
    let now = wall_clock();
    let model = view.model();
    Json(json!({
        "subject": subject,
        "partition": partition,
        "off_sale": model.off_sale(&key),
        "open_andons": model.subject_andons(&key, now),
        "issues": issues,
        "counts_from": from,
    }))
    .into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("status_page.html"))
}

async fn uplot_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=86400")],
        include_str!("vendor/uplot/uPlot.iife.min.js"),
    )
        .into_response()
}

async fn uplot_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=86400")],
        include_str!("vendor/uplot/uPlot.min.css"),
    )
        .into_response()
}
