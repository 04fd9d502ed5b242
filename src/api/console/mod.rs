//! The web console at `/ui`: an admin dashboard and a developer portal, server-rendered from
//! templates and assets embedded in the binary, behind a login that trades a key for a session.
//!
//! Every page is whole HTML; `app.js` refreshes the parts marked live by fetching the page
//! again, and draws the charts from `/ui/api/series`. No key ever reaches a page or a URL.

mod assets;
mod pages;
mod series;
mod session;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{AppState, Current};
use crate::state::redis::Redis;
use series::{KeyPoint, Series};
use session::Sessions;
pub use session::{cookie_in, same_origin_of};

/// The console's state that outlives reloads: its sessions and the samples of its charts.
pub struct Console {
    sessions: Sessions,
    series: Series,
}

impl Console {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Console {
            sessions: Sessions::new(redis),
            series: Series::default(),
        }
    }

    /// Samples the totals every few seconds, and each key's usage every half minute, for as
    /// long as the gateway runs.
    pub async fn sample(self: Arc<Self>, current: Current) {
        let mut every = tokio::time::interval(Duration::from_secs(series::EVERY));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for tick in 0u64.. {
            every.tick().await;
            let state = current.load();
            // Nobody can see the charts: no sampling (each key's is a Redis call when shared).
            if !state.loaded.config.server.console.enabled {
                continue;
            }
            let now = crate::clock::unix_now();
            self.series.sample(now, state.metrics.totals.snapshot());
            if tick % 6 == 0 {
                self.series.sample_keys(key_points(&state, now).await);
            }
        }
    }
}

/// Each key's usage now (the first [`series::MAX_KEYS`]); a key Redis cannot report is skipped.
async fn key_points(state: &AppState, now: u64) -> Vec<(String, KeyPoint)> {
    let mut points = Vec::new();
    for caller in state.keys.callers().iter().take(series::MAX_KEYS) {
        let (Some(name), Some(quota)) = (&caller.name, &caller.quota) else {
            continue;
        };
        let Ok(report) = quota.report().await else {
            continue;
        };
        let count = |field: &str| report[field].as_u64().unwrap_or(0);
        points.push((
            name.clone(),
            KeyPoint {
                at: now,
                requests: count("requests"),
                tokens: count("input_tokens") + count("output_tokens"),
                cost_usd: report["cost_usd"].as_f64().unwrap_or(0.0),
            },
        ));
    }
    points
}

/// The console's routes, under `/ui`, each answered 404 while `server.console.enabled` is off.
pub(super) fn routes(current: Current) -> Router<Current> {
    Router::new()
        .route("/ui", get(pages::index))
        .route("/ui/", get(pages::index))
        .route("/ui/login", get(pages::login_page).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui/api/series", get(pages::series))
        .route("/ui/api/chat", post(pages::chat))
        .route("/ui/admin", get(pages::admin_overview))
        .route("/ui/admin/{page}", get(pages::admin_page))
        .route("/ui/admin/subscriptions/{id}", post(pages::decide))
        .route("/ui/admin/catalog/{entry}", post(pages::lifecycle))
        .route("/ui/portal", get(pages::portal_catalog))
        .route("/ui/portal/{page}", get(pages::portal_page))
        .route("/ui/portal/subscribe/{entry}", post(pages::subscribe))
        .layer(axum::middleware::from_fn_with_state(current, guarded))
}

/// What every console answer passes through: off unless enabled; a policy that lets a page
/// run only its own scripts and styles, never be framed, and never be cached.
async fn guarded(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if !state.loaded.config.server.console.enabled {
        return crate::error::ApiError::not_found(
            "The console is disabled (server.console.enabled is false).",
        )
        .into_response();
    }
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

/// Where a request without a valid session goes.
fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// A console error page, as HTML.
fn refused(status: StatusCode, message: &str) -> Response {
    pages::error_page(status, message)
}

/// Every POST but the login, from a session already found: it must come from the console's
/// own pages and carry that session's CSRF token (the form's field, else `X-CSRF-Token`).
/// The refusal, when it does not.
fn post_refusal(
    headers: &HeaderMap,
    signed: &session::Signed,
    offered: Option<&str>,
) -> Option<Response> {
    if !session::same_origin(headers) {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "Cross-origin request refused.",
        ));
    }
    let offered = offered.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    (!session::csrf_ok(&signed.session, offered)).then(|| {
        refused(
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or wrong: reload the page.",
        )
    })
}
