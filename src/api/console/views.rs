//! What each console page shows, gathered from the running gateway as plain data for its
//! template: the same figures `/admin/*` and `/v1/catalog` answer with.

use serde_json::{Value, json};

use super::super::AppState;
use super::super::catalog as entries;
use crate::auth::Caller;
use crate::telemetry::totals::Snapshot;

/// The overview's figures: the last minute's rates and latencies, today's tokens and spend.
pub fn overview(state: &AppState) -> Value {
    let window = state.console.series.window(60);
    let now = state.metrics.totals.snapshot();
    let today = today(state, now);
    let pending = state
        .catalog
        .subscriptions()
        .iter()
        .filter(|s| s.status == crate::catalog::Decision::Pending)
        .count();
    json!({
        "rps": format!("{:.2}", window.rps),
        "error_rate": format!("{:.1}%", window.error_rate * 100.0),
        "p50": window.p50_ms.map_or("–".to_owned(), |ms| format!("≤ {ms} ms")),
        "p99": window.p99_ms.map_or("–".to_owned(), |ms| format!("≤ {ms} ms")),
        "tokens_today": today.tokens,
        "spend_today": format!("${:.4}", today.spend_micros as f64 / 1e6),
        "cache": window.cache_hit_ratio.map_or("–".to_owned(), |r| format!("{:.0}%", r * 100.0)),
        "requests_total": now.requests,
        "keys": state.keys.callers().len(),
        "models": state.routes.names().count(),
        "pending": pending,
        "state": state.shared.as_ref().map_or("data directory", |_| "Redis (shared)"),
    })
}

/// Today's tokens and spend: from the ledger when it is this gateway's own (it survives
/// restarts), else what this replica counted since 00:00 UTC.
fn today(state: &AppState, now: Snapshot) -> Snapshot {
    if state.shared.is_some() || state.keys.is_open() {
        return state.console.series.today(now);
    }
    let day = (crate::clock::unix_now() / 86_400) as u32;
    let mut sum = Snapshot::default();
    for (_, account) in state.ledger.accounts() {
        let usage = account.lock().totals.between(day, day);
        sum.tokens += usage.tokens;
        sum.spend_micros += (crate::usage::usd(usage.cost) * 1e6).round() as u64;
    }
    sum
}

/// Every key: usage, limits as bars, 429s, globs and approved subscriptions.
pub async fn keys(state: &AppState) -> Vec<Value> {
    let limited = state.metrics.totals.limited_keys();
    let subscriptions = state.catalog.subscriptions();
    // Asked together: with Redis, each is a round trip.
    let reports = futures_util::future::join_all(state.keys.callers().iter().map(|caller| async {
        match &caller.quota {
            Some(quota) => quota.report().await.unwrap_or(Value::Null),
            None => Value::Null,
        }
    }))
    .await;
    let mut rows = Vec::new();
    for (caller, report) in state.keys.callers().iter().zip(reports) {
        let Some(name) = caller.name.clone() else {
            continue;
        };
        let config = state.loaded.config.keys.iter().find(|k| k.name == name);
        let (count, last) = limited.get(&name).copied().unwrap_or_default();
        let approved: Vec<&str> = subscriptions
            .iter()
            .filter(|s| s.key == name && s.status == crate::catalog::Decision::Approved)
            .map(|s| s.entry.as_str())
            .collect();
        rows.push(json!({
            "name": name,
            "requests": report["requests"].as_u64().unwrap_or(0),
            "tokens": report["input_tokens"].as_u64().unwrap_or(0)
                + report["output_tokens"].as_u64().unwrap_or(0),
            "spend": format!("${:.4}", report["cost_usd"].as_f64().unwrap_or(0.0)),
            "bars": bars(&report["limits"]),
            "limited": count,
            "limited_at": (last > 0).then(|| crate::clock::rfc3339(last)),
            "models": config.and_then(|k| k.models.clone()),
            "tools": config.and_then(|k| k.tools.clone()),
            "approved": approved,
            "grants": config.map(|k| k.grants.iter().map(|g| g.name()).collect::<Vec<_>>()),
        }));
    }
    rows
}

/// A key's limits as bars: what is used of each, out of what.
pub fn bars(limits: &Value) -> Vec<Value> {
    let Some(limits) = limits.as_object() else {
        return Vec::new();
    };
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    limits
        .iter()
        .map(|(name, limit)| {
            let (used, max) = match name.as_str() {
                "max_concurrent" => (number(&limit["in_flight"]), number(&limit["limit"])),
                "budget_usd" => (number(&limit["spent"]), number(&limit["amount"])),
                "tokens_per_day" => (number(&limit["used"]), number(&limit["limit"])),
                _ => {
                    let max = number(&limit["limit"]);
                    (max - number(&limit["remaining"]), max)
                }
            };
            json!({
                "name": name,
                "used": used,
                "max": max,
                "text": if name == "budget_usd" {
                    format!("${used:.4} of ${max:.2}")
                } else {
                    format!("{used:.0} of {max:.0}")
                },
            })
        })
        .collect()
}

/// Routes and instances with their breakers.
pub fn models(state: &AppState) -> Value {
    let report = super::super::admin::upstreams_report(state);
    let mut instances = Vec::new();
    if let Some(providers) = report["providers"].as_object() {
        for (provider, value) in providers {
            for instance in value["instances"].as_array().into_iter().flatten() {
                let mut row = instance.clone();
                row["provider"] = json!(provider);
                row["id"] = json!(format!(
                    "{provider} {}",
                    instance["url"].as_str().unwrap_or("")
                ));
                row["latency"] = match instance["latency_ewma_ms"].as_f64() {
                    Some(ms) => json!(format!("{ms:.0} ms")),
                    None => json!("–"),
                };
                instances.push(row);
            }
        }
    }
    json!({"models": report["models"], "instances": instances})
}

/// Tools by origin, upstream servers, registrations with the TTL they have left.
pub fn mcp(state: &AppState) -> Value {
    let tools: Vec<Value> = state
        .mcp_shared
        .catalog_tools()
        .into_iter()
        .map(
            |t| json!({"name": t.tool.name, "origin": t.origin, "description": t.tool.description}),
        )
        .collect();
    let registrations: Vec<Value> = state
        .mcp_shared
        .registrations()
        .into_iter()
        .map(|r| {
            json!({
                "name": r.tool.name, "url": r.url, "method": r.method, "owner": r.owner,
                "ttl": r.ttl.as_secs(), "remaining": r.remaining.as_secs(),
            })
        })
        .collect();
    json!({
        "tools": tools,
        "servers": state.mcp_shared.server_health(),
        "registrations": registrations,
    })
}

/// Documents shown at most on the context page.
const CONTEXT_SHOWN: usize = 500;

/// Namespaces with their documents, versions and sizes (the first [`CONTEXT_SHOWN`]).
pub async fn context(state: &AppState) -> Value {
    let listed = state
        .context
        .list(None, None, CONTEXT_SHOWN, |_| true)
        .await;
    let (documents, more) = match listed {
        Ok(listed) => listed,
        Err(error) => return json!({"error": error.to_string()}),
    };
    let mut namespaces: std::collections::BTreeMap<&str, (u64, usize)> = Default::default();
    for doc in &documents {
        let entry = namespaces.entry(doc.namespace.as_str()).or_default();
        entry.0 += 1;
        entry.1 += doc.size;
    }
    let namespaces: Vec<Value> = namespaces
        .into_iter()
        .map(|(name, (count, bytes))| json!({"name": name, "documents": count, "bytes": bytes}))
        .collect();
    let documents: Vec<Value> = documents
        .iter()
        .map(|d| json!({"namespace": d.namespace, "key": d.key, "version": d.version, "size": d.size}))
        .collect();
    json!({"namespaces": namespaces, "documents": documents, "more": more})
}

/// The admin's catalog: every entry with its lifecycle, who uses it and who still calls it.
pub fn catalog(state: &AppState) -> Value {
    entries::admin_view(state)
}

/// What a client key sees: its catalog, what it may ask for, its requests, limits and usage.
pub async fn portal(state: &AppState, caller: &Caller) -> Value {
    let mut view = entries::key_view(state, caller)
        .await
        .unwrap_or_else(|error| json!({"error": error.message}));
    view["bars"] = json!(bars(&view["usage"]["limits"]));
    view["models"] = json!(
        state
            .routes
            .names()
            .filter(|name| caller.may_use(name))
            .collect::<Vec<_>>()
    );
    view
}
