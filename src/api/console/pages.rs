//! The console's pages and actions: login and logout, the admin's pages and decisions, the
//! portal's pages and requests, the playground's chat and the charts' series.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{self, Role, Signed, Who};
use super::{post_refusal, refused, to_login, views};
use crate::api::{AppState, Served, catalog, chat, serve_admitted};
use crate::auth::Caller;
use crate::quota::Door;

/// Every template, compiled once; HTML escaped by its `.html` name.
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let templates = [
        (
            "base.html",
            include_str!("../../../assets/console/templates/base.html"),
        ),
        (
            "login.html",
            include_str!("../../../assets/console/templates/login.html"),
        ),
        (
            "error.html",
            include_str!("../../../assets/console/templates/error.html"),
        ),
        (
            "admin_overview.html",
            include_str!("../../../assets/console/templates/admin_overview.html"),
        ),
        (
            "admin_keys.html",
            include_str!("../../../assets/console/templates/admin_keys.html"),
        ),
        (
            "admin_models.html",
            include_str!("../../../assets/console/templates/admin_models.html"),
        ),
        (
            "admin_mcp.html",
            include_str!("../../../assets/console/templates/admin_mcp.html"),
        ),
        (
            "admin_context.html",
            include_str!("../../../assets/console/templates/admin_context.html"),
        ),
        (
            "admin_subscriptions.html",
            include_str!("../../../assets/console/templates/admin_subscriptions.html"),
        ),
        (
            "admin_catalog.html",
            include_str!("../../../assets/console/templates/admin_catalog.html"),
        ),
        (
            "portal_catalog.html",
            include_str!("../../../assets/console/templates/portal_catalog.html"),
        ),
        (
            "portal_usage.html",
            include_str!("../../../assets/console/templates/portal_usage.html"),
        ),
        (
            "portal_playground.html",
            include_str!("../../../assets/console/templates/portal_playground.html"),
        ),
    ];
    for (name, source) in templates {
        // A template that does not compile is a bug the page tests catch; the page then
        // answers 500 naming it.
        if let Err(error) = env.add_template(name, source) {
            tracing::error!(%name, %error, "a console template does not compile");
        }
    }
    env.add_filter("time", |seconds: u64| crate::clock::rfc3339(seconds));
    env.add_filter("usd", |usd: f64| format!("${usd:.4}"));
    env
});

/// A page, or the answer that refuses it (the login, a 403, an error page).
type Page = Result<Response, Response>;

/// Where an action sends the browser back to once done, or the error page saying why not.
fn acted<T>(done: Result<T, crate::error::ApiError>, back: &str) -> Response {
    match done {
        Ok(_) => see_other(back),
        Err(error) => refused(error.status, &error.message),
    }
}

/// A page rendered whole.
fn render(name: &str, status: StatusCode, context: Value) -> Response {
    let rendered = TEMPLATES
        .get_template(name)
        .and_then(|template| template.render(context));
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%name, %error, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page failed to render; the failure is logged.",
            )
                .into_response()
        }
    }
}

/// An error page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    render(
        "error.html",
        status,
        json!({"title": title, "message": message}),
    )
}

const ADMIN_NAV: [(&str, &str, &str); 7] = [
    ("overview", "/ui/admin", "Overview"),
    ("keys", "/ui/admin/keys", "Keys"),
    ("models", "/ui/admin/models", "Models"),
    ("mcp", "/ui/admin/mcp", "MCP"),
    ("context", "/ui/admin/context", "Context"),
    ("subscriptions", "/ui/admin/subscriptions", "Subscriptions"),
    ("catalog", "/ui/admin/catalog", "Catalog"),
];

const PORTAL_NAV: [(&str, &str, &str); 3] = [
    ("catalog", "/ui/portal", "Catalog"),
    ("usage", "/ui/portal/usage", "Usage"),
    ("playground", "/ui/portal/playground", "Playground"),
];

/// The context every signed-in page starts from: who, the CSRF token, the navigation.
fn frame(signed: &Signed, page: &str, title: &str) -> Value {
    let nav = match signed.session.role {
        Role::Admin => &ADMIN_NAV[..],
        Role::Client => &PORTAL_NAV[..],
    };
    let nav: Vec<Value> = nav
        .iter()
        .map(|(page, href, label)| json!({"page": page, "href": href, "label": label}))
        .collect();
    json!({
        "role": match signed.session.role { Role::Admin => "admin", Role::Client => "client" },
        "csrf": signed.session.csrf,
        "who": signed.name(),
        "nav": nav,
        "page": page,
        "title": title,
    })
}

/// `GET /ui`: to the caller's home, or to the login.
pub async fn index(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session::signed_in(&state, &headers).await {
        Some(signed) => Redirect::to(home(signed.session.role)).into_response(),
        None => to_login(),
    }
}

fn home(role: Role) -> &'static str {
    match role {
        Role::Admin => "/ui/admin",
        Role::Client => "/ui/portal",
    }
}

/// `GET /ui/login`.
pub async fn login_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(signed) = session::signed_in(&state, &headers).await {
        return Redirect::to(home(signed.session.role)).into_response();
    }
    login_form(StatusCode::OK, None)
}

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    render(
        "login.html",
        status,
        json!({"title": "Log in", "error": error}),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

/// `POST /ui/login`: the key exchanged for a session cookie.
pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !session::same_origin(&headers) {
        return refused(StatusCode::FORBIDDEN, "Cross-origin login refused.");
    }
    let Some((role, digest)) = session::login_role(&state, &form.key) else {
        return login_form(
            StatusCode::UNAUTHORIZED,
            Some("That key is not the admin key nor a configured API key."),
        );
    };
    let ttl = state.loaded.config.server.console.session_ttl.0;
    match state.console.sessions.open(role, &digest, ttl).await {
        Ok(id) => {
            let mut response = Redirect::to(home(role)).into_response();
            *response.status_mut() = StatusCode::SEE_OTHER;
            let cookie = session::set_cookie(&id, ttl, &headers);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(failure) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Sessions are kept in Redis, which cannot be reached: {failure}"),
        ),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /ui/logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    let Some(signed) = session::signed_in(&state, &headers).await else {
        return Err(refused(StatusCode::UNAUTHORIZED, "Log in first."));
    };
    if let Some(refusal) = post_refusal(&headers, &signed, form.csrf.as_deref()) {
        return Err(refusal);
    }
    state.console.sessions.close(&signed.id).await;
    let mut response = see_other("/ui/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::cleared_cookie());
    Ok(response)
}

fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The admin's session, or the answer for anyone else.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    match session::signed_in(state, headers).await {
        None => Err(to_login()),
        Some(signed) if matches!(signed.who, Who::Admin) => Ok(signed),
        Some(_) => Err(refused(
            StatusCode::FORBIDDEN,
            "This page is for the admin key; log in with it to see it.",
        )),
    }
}

/// A client key's session, or the answer for anyone else.
async fn client(state: &AppState, headers: &HeaderMap) -> Result<(Signed, Arc<Caller>), Response> {
    match session::signed_in(state, headers).await {
        None => Err(to_login()),
        Some(signed) => match &signed.who {
            Who::Client(caller) => {
                let caller = caller.clone();
                Ok((signed, caller))
            }
            Who::Admin => Err(refused(
                StatusCode::FORBIDDEN,
                "The developer portal is for API keys; log in with one to see it.",
            )),
        },
    }
}

/// `GET /ui/admin`.
pub async fn admin_overview(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let signed = admin(&state, &headers).await?;
    let mut context = frame(&signed, "overview", "Overview");
    context["o"] = views::overview(&state);
    Ok(render("admin_overview.html", StatusCode::OK, context))
}

#[derive(Deserialize)]
pub struct Selected {
    #[serde(default)]
    key: Option<String>,
}

/// `GET /ui/admin/{page}`.
pub async fn admin_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(page): Path<String>,
    Query(selected): Query<Selected>,
) -> Page {
    let signed = admin(&state, &headers).await?;
    let Some((_, _, title)) = ADMIN_NAV.iter().find(|(p, _, _)| *p == page) else {
        return Err(refused(StatusCode::NOT_FOUND, "No such page."));
    };
    let mut context = frame(&signed, &page, title);
    match page.as_str() {
        "keys" => {
            context["keys"] = json!(views::keys(&state).await);
            let known = |name: &String| {
                state
                    .keys
                    .callers()
                    .iter()
                    .any(|c| c.name.as_ref() == Some(name))
            };
            context["selected"] = json!(selected.key.filter(known));
        }
        "models" => context["m"] = views::models(&state),
        "mcp" => context["mcp"] = views::mcp(&state),
        "context" => context["ctx"] = views::context(&state).await,
        "subscriptions" => context["subscriptions"] = json!(state.catalog.subscriptions()),
        "catalog" => context["catalog"] = views::catalog(&state),
        _ => {}
    }
    Ok(render(
        &format!("admin_{page}.html"),
        StatusCode::OK,
        context,
    ))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    decision: String,
}

/// `POST /ui/admin/subscriptions/{id}`.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Page {
    let signed = admin(&state, &headers).await?;
    if let Some(refusal) = post_refusal(&headers, &signed, form.csrf.as_deref()) {
        return Err(refusal);
    }
    let decided = catalog::decide_on(&state, &id, &form.decision, &signed.name()).await;
    Ok(acted(decided, "/ui/admin/subscriptions"))
}

#[derive(Deserialize)]
pub struct LifecycleForm {
    #[serde(default)]
    csrf: Option<String>,
    status: crate::config::Status,
    #[serde(default)]
    successor: Option<String>,
    #[serde(default)]
    sunset: Option<String>,
}

/// `POST /ui/admin/catalog/{entry}`.
pub async fn lifecycle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(entry): Path<String>,
    Form(form): Form<LifecycleForm>,
) -> Page {
    let signed = admin(&state, &headers).await?;
    if let Some(refusal) = post_refusal(&headers, &signed, form.csrf.as_deref()) {
        return Err(refusal);
    }
    let lifecycle = catalog::Lifecycle {
        status: form.status,
        successor: form.successor,
        sunset: form.sunset,
    };
    let changed = catalog::change_lifecycle(&state, &entry, lifecycle, &signed.name()).await;
    Ok(acted(changed, "/ui/admin/catalog"))
}

/// The base URL clients reach the gateway at, as this request did.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:8080");
    let tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if tls { "https" } else { "http" })
}

/// `GET /ui/portal`.
pub async fn portal_catalog(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    portal(&state, &headers, "catalog").await
}

/// `GET /ui/portal/{page}`.
pub async fn portal_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(page): Path<String>,
) -> Page {
    portal(&state, &headers, &page).await
}

async fn portal(state: &AppState, headers: &HeaderMap, page: &str) -> Page {
    let (signed, caller) = client(state, headers).await?;
    let Some((_, _, title)) = PORTAL_NAV.iter().find(|(p, _, _)| *p == page) else {
        return Err(refused(StatusCode::NOT_FOUND, "No such page."));
    };
    let mut context = frame(&signed, page, title);
    let view = views::portal(state, &caller).await;
    context["model"] = view["models"].get(0).cloned().unwrap_or(json!("MODEL"));
    context["view"] = view;
    context["base"] = json!(base_url(headers));
    Ok(render(
        &format!("portal_{page}.html"),
        StatusCode::OK,
        context,
    ))
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /ui/portal/subscribe/{entry}`.
pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(entry): Path<String>,
    Form(form): Form<SubscribeForm>,
) -> Page {
    let (signed, caller) = client(&state, &headers).await?;
    if let Some(refusal) = post_refusal(&headers, &signed, form.csrf.as_deref()) {
        return Err(refusal);
    }
    let note = form.note.filter(|n| !n.trim().is_empty());
    let asked = catalog::request_access(&state, &caller, &entry, note).await;
    Ok(acted(asked, "/ui/portal"))
}

/// `GET /ui/api/series`: the gateway's series (admin), or a key's: an admin names it with
/// `?key=NAME`; a client key always gets its own.
pub async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(selected): Query<Selected>,
) -> Response {
    let Some(signed) = session::signed_in(&state, &headers).await else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "log in first"})),
        )
            .into_response();
    };
    let body = match (&signed.who, selected.key) {
        (Who::Client(caller), _) => {
            let name = caller.name.clone().unwrap_or_default();
            state.console.series.key_json(&name)
        }
        (Who::Admin, Some(key)) => state.console.series.key_json(&key),
        (Who::Admin, None) => state.console.series.json(),
    };
    // `no-store`, as every console answer but the assets (`guarded`).
    Json(body).into_response()
}

/// `POST /ui/api/chat`: the playground's request, sent as the session's key, counted
/// against its limits like any other.
pub async fn chat(State(state): State<Arc<AppState>>, request: Request) -> Page {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (signed, caller) = client(&state, &parts.headers).await?;
    if let Some(refusal) = post_refusal(&parts.headers, &signed, None) {
        return Err(refusal);
    }
    let admitted = caller
        .admit(Door::Model)
        .await
        .map(|admission| (caller.clone(), admission));
    let answer = async |caller: &Caller, headers: &HeaderMap, body, served: &mut Served| {
        chat::answer(&state, caller, headers, body, served).await
    };
    let answered = serve_admitted(
        &state,
        "chat",
        started,
        (&parts.headers, body),
        admitted,
        answer,
    );
    Ok(Box::pin(answered).await)
}
