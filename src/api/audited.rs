//! The audit record of each audited request: begun before its handler runs (which fills it in
//! through `audit::note`), given its status after, and held by the response body, so a stream's
//! line is written after its last byte.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::audit;
use crate::telemetry::REQUEST_ID;

/// Middleware: audits model requests, context writes and admin actions; everything else passes.
pub async fn audited(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(action) = action_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let Some(record) = state
        .audit
        .begin(action, header(request.headers(), REQUEST_ID.as_str()))
    else {
        return next.run(request).await;
    };
    record.note(|line| {
        line.trace_id = header(request.headers(), "traceparent").and_then(|t| audit::trace_id(&t));
        let path = request.uri().path();
        if let Some(document) = path.strip_prefix("/v1/context/") {
            line.document = Some(document.to_owned());
        }
        if let Some(tool) = path.strip_prefix("/admin/tools/") {
            line.tool = Some(tool.to_owned());
        }
    });
    let response = audit::scope(record.clone(), next.run(request)).await;
    let status = response.status();
    record.note(|line| {
        line.status = Some(status.as_u16());
        line.outcome = if status.is_success() { "ok" } else { "error" };
    });
    crate::held_body::hold_until_sent(response, record)
}

/// What a request does, in the audit log's words; `None` for what is not audited (reads of the
/// context, models, health, metrics, MCP traffic, whose tool calls are audited one by one).
fn action_of(method: &Method, path: &str) -> Option<&'static str> {
    let action = match (method, path) {
        (&Method::POST, "/v1/chat/completions") => "chat.completions",
        (&Method::POST, "/v1/embeddings") => "embeddings",
        (&Method::POST, "/v1/messages") => "messages",
        (&Method::POST, "/v1/messages/count_tokens") => "messages.count_tokens",
        (&Method::POST, "/v1/responses") => "responses",
        (&Method::DELETE, p) if p.starts_with("/v1/responses/") => "responses.delete",
        (&Method::PUT, p) if p.starts_with("/v1/context/") => "context.put",
        (&Method::DELETE, p) if p.starts_with("/v1/context/") => "context.delete",
        (_, "/admin/reload") => "admin.reload",
        (_, "/admin/config") => "admin.config",
        (_, "/admin/usage") => "admin.usage",
        (_, "/admin/cache") => "admin.cache_purge",
        (&Method::GET, "/admin/upstreams") => "admin.upstreams",
        (&Method::POST, "/admin/upstreams") => "admin.upstream_register",
        (&Method::DELETE, "/admin/upstreams") => "admin.upstream_remove",
        (&Method::GET, "/admin/tools") => "admin.tools",
        (&Method::POST, "/admin/tools") => "admin.tool_register",
        (&Method::DELETE, p) if p.starts_with("/admin/tools/") => "admin.tool_remove",
        (_, p) if p.starts_with("/admin/") => "admin.other",
        _ => return None,
    };
    Some(action)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
