//! `GET /agent`: the page for a person on a call. Type a SKU or promotion,
//! see at once whether it is off sale, its open andons and where their
//! work orders stand, and per issue how many customers have complained in
//! the window and how many more pull; then *report this complaint* or
//! *pull the cord now* (a manual pull, no approval). The page reads
//! `/subjects` and writes through `POST /complaints` ([`super::ingress`]);
//! the issues the rules name are offered as it is served.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::config::Settings;

const PAGE: &str = include_str!("agent_page.html");

/// `GET /agent`, with the rules' issues written into the page.
pub fn router(settings: &Settings) -> Router {
    let issues = serde_json::to_string(&settings.engine.rules.named_issues()).unwrap_or_else(|_| "[]".into());
    let page = PAGE.replacen("/*ISSUES*/[]", &issues, 1);
    Router::new().route(
        "/agent",
        get(move || {
            let page = page.clone();
            async move { Html(page) }
        }),
    )
}
