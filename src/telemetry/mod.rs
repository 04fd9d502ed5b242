//! Logs, request ids and metrics: what an operator sees of each request.
//!
//! Every request runs inside a span that carries its `x-request-id` (the caller's, or a new one),
//! and the id is echoed on the response.

mod audit;
mod genai;
pub mod metrics;
mod reloads;
mod state;
pub mod totals;
pub mod traces;

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub use audit::AuditMetrics;
pub use genai::GenAiMetrics;
pub use metrics::{Metrics, RequestLabels};
pub use reloads::ReloadMetrics;
pub use state::StateMetrics;
pub use totals::Totals;

/// The header that correlates a request across client, gateway and logs.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber; the level comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    // rmcp logs every session id at info; a session id is a bearer credential for its stream.
    // Its service logs every error a handler answered (a client's unknown tool) at warn, in
    // Rust's debug form: the gateway says those in words at debug instead.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn,rmcp::service=error"));
    // Colours only for a person at a terminal; files and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    // A second call (as in tests) keeps the first subscriber; that is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    std::panic::set_hook(Box::new(log_panic));
}

/// Logs a panic once, as one line in the log's format and inside the span of the request it
/// happened in, instead of the default hook's lines on stderr.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    let location = info.location().map(ToString::to_string);
    tracing::error!(
        panic = message,
        location,
        "a bug: the request is answered 500"
    );
}

/// Middleware: assigns the request id, runs the request in its span (and, with traces, in its
/// trace span, continued from the client's `traceparent`), logs the outcome.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let trace = traces::enabled().then(|| server_span(&request));
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| valid_id(v.as_bytes()))
        .cloned()
        // With traces, a request the client did not name is known by its trace id.
        .or_else(|| {
            trace
                .as_ref()
                .and_then(traces::trace_id)
                .and_then(|t| HeaderValue::from_str(&t).ok())
        })
        .unwrap_or_else(new_id);
    request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    if let Some(context) = &trace {
        // Handlers that run outside this task (MCP's) find their parent here.
        traces::inject_from(context, request.headers_mut());
    }
    let span = tracing::info_span!(
        "request",
        id = id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = request.uri().path(),
        key = tracing::field::Empty,
    );
    let started = Instant::now();
    let served = next.run(request).instrument(span.clone());
    let mut response = match &trace {
        Some(context) => {
            traces::annotate(
                context,
                vec![traces::Attribute::new(
                    "switchboard.request_id",
                    id.to_str().unwrap_or_default().to_owned(),
                )],
            );
            traces::WithContext::with_context(served, context.clone()).await
        }
        None => served.await,
    };
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            // Microseconds are noise in a log line a person reads.
            elapsed_ms = (started.elapsed().as_secs_f64() * 1e5).round() / 1e2,
            "answered"
        );
    });
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    if let Some(context) = trace {
        let status = response.status();
        traces::annotate(
            &context,
            vec![traces::Attribute::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            )],
        );
        if status.is_server_error() || status.is_client_error() {
            traces::failed(&context, status.as_u16().to_string(), String::new());
        }
        // A stream's span lasts to its last byte.
        response = crate::held_body::hold_until_sent(response, traces::Ending(context));
    }
    response
}

/// The request's server span, a child of the client's trace when it sent one.
fn server_span(request: &Request) -> traces::TraceContext {
    let parent = traces::extract(request.headers());
    let method = request.method().as_str();
    let route = route_of(request.uri().path());
    traces::start(
        &parent,
        format!("{method} {route}"),
        traces::Kind::Server,
        vec![
            traces::Attribute::new("http.request.method", method.to_owned()),
            traces::Attribute::new("http.route", route),
            traces::Attribute::new("url.path", request.uri().path().to_owned()),
        ],
    )
}

/// The route a path matched, with its variable parts as placeholders: span names stay few.
fn route_of(path: &str) -> String {
    for (prefix, template) in [
        ("/v1/context/", "/v1/context/{namespace}/{key}"),
        ("/v1/responses/", "/v1/responses/{id}"),
        ("/v1/models/", "/v1/models/{id}"),
        ("/admin/tools/", "/admin/tools/{name}"),
    ] {
        if path.starts_with(prefix) {
            return template.to_owned();
        }
    }
    const EXACT: [&str; 16] = [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/models",
        "/mcp",
        "/health",
        "/ready",
        "/metrics",
        "/admin/cache",
        "/admin/usage",
        "/admin/upstreams",
        "/admin/tools",
        "/admin/reload",
        "/admin/config",
    ];
    match EXACT.iter().find(|known| **known == path) {
        Some(known) => (*known).to_owned(),
        // A path a client made up must not make a span name.
        None => "unknown".to_owned(),
    }
}

/// Accepts caller ids that are short and printable, so they are safe to log and echo.
fn valid_id(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().simple().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
