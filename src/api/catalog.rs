//! The catalog on the HTTP surface: `GET /v1/catalog` (what a key may use and may ask for, or
//! everything with who uses it for the admin), subscription requests and decisions, lifecycle
//! changes, and the headers or refusal a model answer gets from its entry's lifecycle.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{admin_only_body, authorize};
use super::path::Segments;
use crate::auth::Caller;
use crate::catalog::{
    CatalogError, Change, Decision, Described, Kind, entry_id, headers as lifecycle_headers,
    parse_entry, retired_message,
};
use crate::config::{EntryMeta, Status};
use crate::error::ApiError;

/// 410 for a retired model, naming its successor.
pub(super) fn refuse_retired(state: &AppState, model: &str) -> Result<(), ApiError> {
    match state.catalog.unpublished(Kind::Model, model, None) {
        Some(described) if described.meta.status == Status::Retired => Err(ApiError::gone(
            "model",
            retired_message(Kind::Model, model, &described.meta),
        )),
        _ => Ok(()),
    }
}

/// Whether a model is retired (and so not listed).
pub(super) fn is_retired(state: &AppState, model: &str) -> bool {
    let unpublished = state.catalog.unpublished(Kind::Model, model, None);
    unpublished.is_some_and(|d| d.meta.status == Status::Retired)
}

/// A deprecated model's answer gets its lifecycle headers, and the call is counted.
pub(super) fn mark_deprecated(
    state: &AppState,
    caller: &Caller,
    model: &str,
    headers: &mut HeaderMap,
) {
    let Some(described) = state.catalog.unpublished(Kind::Model, model, None) else {
        return;
    };
    if described.meta.status != Status::Deprecated {
        return;
    }
    for (name, value) in lifecycle_headers(Kind::Model, &described.meta, described.deprecated_since)
    {
        headers.append(name, value);
    }
    let key = caller.name.as_deref().unwrap_or("anonymous");
    state
        .catalog
        .deprecated_call(&entry_id(Kind::Model, model), key);
}

/// One catalog entry as a viewer sees it.
pub(super) struct Entry {
    pub kind: Kind,
    pub name: String,
    pub described: Described,
    /// A tool's input schema.
    pub schema: Option<Value>,
    /// `yaml`, `openapi`, `builtin`, `registered`, `server:NAME`; models: `config`.
    pub origin: String,
}

impl Entry {
    pub fn id(&self) -> String {
        entry_id(self.kind, &self.name)
    }
}

/// Every entry there is now: the models, then the tools.
pub(super) fn every_entry(state: &AppState) -> Vec<Entry> {
    let models = state.routes.names().map(|name| model_entry(state, name));
    let tools = state.mcp_shared.catalog_tools().into_iter();
    models.chain(tools.map(|t| tool_entry(state, t))).collect()
}

fn model_entry(state: &AppState, name: &str) -> Entry {
    Entry {
        kind: Kind::Model,
        name: name.to_owned(),
        described: state.catalog.describe(Kind::Model, name, None),
        schema: None,
        origin: "config".to_owned(),
    }
}

fn tool_entry(state: &AppState, tool: crate::mcp::ToolOrigin) -> Entry {
    let name = tool.tool.name.as_ref();
    let mut described = state.catalog.describe(Kind::Tool, name, tool.meta.as_ref());
    // The catalog's words first, else what the tool says of itself.
    let own = tool.tool.description.as_deref().map(str::to_owned);
    described.meta.description = described.meta.description.or(own);
    Entry {
        kind: Kind::Tool,
        described,
        name: name.to_owned(),
        schema: Some(Value::Object(tool.tool.input_schema.as_ref().clone())),
        origin: tool.origin,
    }
}

/// Whether the key may use an entry now: `yes` (its globs), `subscribed` (an approved
/// request), `pending` (a request waits), or `request` (it may ask). `pending` holds the ids of
/// the entries the key's waiting requests name.
pub(super) fn access(
    state: &AppState,
    caller: &Caller,
    entry: &Entry,
    pending: &HashSet<String>,
) -> &'static str {
    let key = caller.name.as_deref().unwrap_or_default();
    let id = entry.id();
    if caller.globs_allow(entry.kind, &entry.name) {
        "yes"
    } else if state.catalog.approved(key, &id) {
        "subscribed"
    } else if pending.contains(&id) {
        "pending"
    } else {
        "request"
    }
}

/// The entries `key`'s waiting requests name.
fn pending_of(state: &AppState, key: Option<&str>) -> HashSet<String> {
    state
        .catalog
        .subscriptions()
        .into_iter()
        .filter(|s| Some(s.key.as_str()) == key && s.status == Decision::Pending)
        .map(|s| s.entry)
        .collect()
}

/// The names of the keys that may use an entry: by their globs, or by an approved request.
pub(super) fn used_by(state: &AppState, entry: &Entry) -> Vec<String> {
    let id = entry.id();
    state
        .keys
        .callers()
        .iter()
        .filter_map(|caller| {
            let name = caller.name.as_deref()?;
            let allowed =
                caller.globs_allow(entry.kind, &entry.name) || state.catalog.approved(name, &id);
            allowed.then(|| name.to_owned())
        })
        .collect()
}

/// An entry's JSON: its metadata, lifecycle and schema.
pub(super) fn entry_json(entry: &Entry) -> Value {
    let meta = &entry.described.meta;
    let mut json = json!({
        "id": entry.id(),
        "kind": match entry.kind { Kind::Model => "model", Kind::Tool => "tool" },
        "name": entry.name,
        "status": meta.status.name(),
        "origin": entry.origin,
    });
    let fields = [
        ("description", &meta.description),
        ("owner", &meta.owner),
        ("docs", &meta.docs),
        ("version", &meta.version),
        ("successor", &meta.successor),
        ("sunset", &meta.sunset),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            json[field] = json!(value);
        }
    }
    if meta.status == Status::Deprecated {
        json["deprecated_since"] = json!(entry.described.deprecated_since);
    }
    if let Some(schema) = &entry.schema {
        json["input_schema"] = schema.clone();
    }
    json
}

/// Whether the request carries the admin key (which sees the whole catalog).
fn from_admin(state: &AppState, headers: &HeaderMap) -> bool {
    (state.admin_key.as_ref()).is_some_and(|digest| crate::auth::is_admin(headers, digest))
}

/// `GET /v1/catalog`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if from_admin(&state, &headers) {
        return Ok(Json(admin_view(&state)));
    }
    let caller = state.keys.authenticate(&headers).await?;
    key_view(&state, &caller).await.map(Json)
}

/// `GET /v1/catalog/{entry}`: one entry, where a `successor-version` link points. A key sees
/// it with its access (a retired one is 410 naming its successor); the admin, as in the list.
pub async fn one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(id): Segments<String>,
) -> Result<Json<Value>, ApiError> {
    if from_admin(&state, &headers) {
        let found = find_entry(&state, &id)?;
        let mut json = entry_json(&found);
        json["used_by"] = json!(used_by(&state, &found));
        return Ok(Json(json));
    }
    let caller = state.keys.authenticate(&headers).await?;
    let found = find_entry(&state, &id)?;
    if found.described.meta.status == Status::Retired {
        let message = retired_message(found.kind, &found.name, &found.described.meta);
        return Err(ApiError::gone("entry", message));
    }
    let pending = pending_of(&state, caller.name.as_deref());
    let mut json = entry_json(&found);
    let access = access(&state, &caller, &found, &pending);
    if !matches!(access, "yes" | "subscribed")
        && let Some(object) = json.as_object_mut()
    {
        object.remove("input_schema");
    }
    json["access"] = json!(access);
    Ok(Json(json))
}

/// Everything, retired entries included, with the keys that use each and the calls still made
/// to deprecated ones.
pub(super) fn admin_view(state: &AppState) -> Value {
    let calls = state.catalog.deprecated_calls();
    let entries: Vec<Value> = every_entry(state)
        .iter()
        .map(|entry| {
            let mut json = entry_json(entry);
            json["used_by"] = json!(used_by(state, entry));
            let id = entry.id();
            let calls: serde_json::Map<String, Value> = calls
                .iter()
                .filter(|((e, _), _)| *e == id)
                .map(|((_, key), n)| (key.clone(), json!(n)))
                .collect();
            if !calls.is_empty() {
                json["deprecated_calls"] = Value::Object(calls);
            }
            if let Some(change) = &entry.described.change {
                json["changed"] = json!({"by": change.by, "at": change.at});
            }
            json
        })
        .collect();
    json!({"entries": entries, "subscriptions": state.catalog.subscriptions()})
}

/// What one key may use (with schemas), what it may ask for, its requests, its limits and usage.
pub(super) async fn key_view(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let mut usable = Vec::new();
    let mut requestable = Vec::new();
    let pending = pending_of(state, caller.name.as_deref());
    for entry in every_entry(state) {
        if entry.described.meta.status == Status::Retired {
            continue;
        }
        let mut json = entry_json(&entry);
        match access(state, caller, &entry, &pending) {
            access @ ("yes" | "subscribed") => {
                json["access"] = json!(access);
                usable.push(json);
            }
            access => {
                json["access"] = json!(access);
                if let Some(object) = json.as_object_mut() {
                    object.remove("input_schema");
                }
                requestable.push(json);
            }
        }
    }
    let key = caller.name.as_deref().unwrap_or_default();
    let subscriptions: Vec<_> = state
        .catalog
        .subscriptions()
        .into_iter()
        .filter(|s| s.key == key)
        .collect();
    let usage = match &caller.quota {
        Some(quota) => quota.report().await.map_err(|failure| {
            ApiError::state_unavailable(format!("Usage is kept in Redis: {failure}"))
        })?,
        None => Value::Null,
    };
    Ok(json!({
        "key": caller.name,
        "entries": usable,
        "requestable": requestable,
        "subscriptions": subscriptions,
        "usage": usage,
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Asked {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /v1/catalog/{entry}/subscription`: 201 with the request (200 with the one already
/// waiting).
pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(entry): Segments<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = state.keys.authenticate(&headers).await?;
    let body = state.bodies.read_up_to(body, 64 * 1024).await?;
    let asked: Asked = if body.iter().all(u8::is_ascii_whitespace) {
        Asked::default()
    } else {
        super::body::parse(&body)?
    };
    let (status, subscription) = request_access(&state, &caller, &entry, asked.note).await?;
    Ok((status, Json(json!(subscription))))
}

/// Records a key's request for `entry`, after checking the entry exists and is not yet usable.
pub(super) async fn request_access(
    state: &AppState,
    caller: &Caller,
    entry: &str,
    note: Option<String>,
) -> Result<(StatusCode, crate::catalog::Subscription), ApiError> {
    let Some(key) = caller.name.as_deref().filter(|_| caller.may_subscribe()) else {
        return Err(ApiError::invalid_request(
            "Only a configured key may subscribe; this caller has none.",
            None,
        ));
    };
    let found = find_entry(state, entry)?;
    if found.described.meta.status == Status::Retired {
        return Err(ApiError::gone(
            "entry",
            retired_message(found.kind, &found.name, &found.described.meta),
        ));
    }
    let usable = match found.kind {
        Kind::Model => caller.may_use(&found.name),
        Kind::Tool => caller.may_use_tool(&found.name),
    };
    if usable {
        return Err(ApiError::conflict(format!(
            "The key '{key}' may already use '{entry}'."
        )));
    }
    let (subscription, new) = state
        .catalog
        .request(key, &found.id(), note)
        .await
        .map_err(refusal)?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, subscription))
}

/// The entry an id names, if it exists now.
fn find_entry(state: &AppState, id: &str) -> Result<Entry, ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "No catalog entry '{id}'; ids are model:NAME or tool:NAME."
        ))
    };
    match parse_entry(id).ok_or_else(unknown)? {
        (Kind::Model, name) if state.routes.names().any(|n| n == name) => {
            Ok(model_entry(state, name))
        }
        (Kind::Model, _) => Err(unknown()),
        (Kind::Tool, name) => {
            let mut tools = state.mcp_shared.catalog_tools().into_iter();
            let tool = tools.find(|t| t.tool.name == name);
            tool.map(|t| tool_entry(state, t)).ok_or_else(unknown)
        }
    }
}

fn refusal(error: CatalogError) -> ApiError {
    match error {
        CatalogError::UnknownSubscription(id) => {
            ApiError::not_found(format!("No subscription {id}."))
        }
        CatalogError::Refused(message) => ApiError::rate_limited(message),
        CatalogError::Unavailable(failure) => ApiError::state_unavailable(format!(
            "The catalog's records cannot be kept now: {failure}"
        )),
    }
}

/// `GET /admin/subscriptions`: every request, newest first.
pub async fn subscriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &[])?;
    Ok(Json(
        json!({"subscriptions": state.catalog.subscriptions()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decided {
    decision: String,
}

/// `POST /admin/subscriptions/{id}` with `{"decision": "approve" | "reject"}`.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(id): Segments<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let body = admin_only_body(&state, &headers, body).await?;
    let decided: Decided = super::body::parse(&body)?;
    let subscription = decide_on(&state, &id, &decided.decision, "admin").await?;
    Ok(Json(json!(subscription)))
}

/// Approves or rejects subscription `id` as `by`.
pub(super) async fn decide_on(
    state: &AppState,
    id: &str,
    decision: &str,
    by: &str,
) -> Result<crate::catalog::Subscription, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("No subscription '{id}'.")))?;
    let decision = match decision {
        "approve" | "approved" => Decision::Approved,
        "reject" | "rejected" => Decision::Rejected,
        other => {
            return Err(ApiError::invalid_request(
                format!("'decision' is 'approve' or 'reject', not '{other}'."),
                Some("decision".into()),
            ));
        }
    };
    state
        .catalog
        .decide(id, decision, by)
        .await
        .map_err(refusal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lifecycle {
    pub status: Status,
    #[serde(default)]
    pub successor: Option<String>,
    #[serde(default)]
    pub sunset: Option<String>,
}

/// `POST /admin/catalog/{entry}` with `{"status", "successor", "sunset"}`: the entry's
/// lifecycle from now on, on every replica, over what the config says.
pub async fn change(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(entry): Segments<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let body = admin_only_body(&state, &headers, body).await?;
    let lifecycle: Lifecycle = super::body::parse(&body)?;
    let change = change_lifecycle(&state, &entry, lifecycle, "admin").await?;
    Ok(Json(json!({"entry": entry, "change": change})))
}

/// Checks and keeps a lifecycle change made by `by`.
pub(super) async fn change_lifecycle(
    state: &AppState,
    id: &str,
    lifecycle: Lifecycle,
    by: &str,
) -> Result<Change, ApiError> {
    let entry = find_entry(state, id)?;
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let meta = EntryMeta {
        status: lifecycle.status,
        successor: blank(lifecycle.successor),
        sunset: blank(lifecycle.sunset),
        ..EntryMeta::default()
    };
    if let Some(problem) = meta.problems("", &entry.name).into_iter().next() {
        let field = problem.path.trim_start_matches('.').to_owned();
        return Err(ApiError::invalid_request(problem.message, Some(field)));
    }
    if let Some(successor) = &meta.successor
        && entry.kind == Kind::Model
        && !state.routes.names().any(|n| n == successor)
    {
        return Err(ApiError::invalid_request(
            format!("No model named '{successor}' to succeed '{}'.", entry.name),
            Some("successor".into()),
        ));
    }
    let change = Change {
        status: meta.status,
        successor: meta.successor,
        sunset: meta.sunset,
        by: by.to_owned(),
        at: crate::clock::unix_now(),
    };
    state
        .catalog
        .change(&entry.id(), change)
        .await
        .map_err(refusal)
}
