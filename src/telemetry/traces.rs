//! Traces: a span per request, per upstream try, per MCP tool call and upstream MCP request,
//! and per Redis call, exported over OTLP (HTTP/protobuf or gRPC) with the attributes of the
//! OpenTelemetry GenAI conventions; W3C trace context read from clients and passed on to
//! providers, HTTP tools and upstream MCP servers.
//!
//! Spans are made with the OpenTelemetry API directly: the gateway has few spans of its own,
//! and a bridge from `tracing` would keep OpenTelemetry state for every `tracing` span. Off (no
//! `telemetry.otlp`), nothing here does any work beyond one relaxed load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use crate::config::{OtlpProtocol, TelemetryConfig};

/// The instrumentation scope of every span.
const SCOPE: &str = "switchboard";
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);
/// `telemetry.capture_content`: prompts and answers on spans.
static CAPTURE: AtomicBool = AtomicBool::new(false);
/// The most of a prompt or an answer a span carries.
const MAX_CONTENT: usize = 64 * 1024;

/// Whether spans are being exported: every span site asks first.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter cannot be built from `telemetry.otlp`.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp: {0}")]
pub struct TracesError(String);

/// The running export; [`shutdown`](Traces::shutdown) sends what is left.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting as `config` says (`None` when it has no `otlp`). Must run inside the
    /// runtime: the gRPC channel and the HTTP client's requests run on it.
    pub fn start(
        config: &TelemetryConfig,
        client: reqwest::Client,
    ) -> Result<Option<Traces>, TracesError> {
        let Some(otlp) = &config.otlp else {
            return Ok(None);
        };
        let headers: HashMap<String, String> = otlp
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect();
        let exporter = match otlp.protocol {
            OtlpProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(&otlp.endpoint)
                .with_headers(headers)
                .with_http_client(ExportClient {
                    client,
                    runtime: tokio::runtime::Handle::current(),
                })
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            OtlpProtocol::Grpc => {
                let mut metadata = HeaderMap::new();
                for (name, value) in &headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        http::HeaderValue::from_str(value),
                    ) {
                        metadata.insert(name, value);
                    }
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(&otlp.endpoint)
                    .with_metadata(
                        opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(
                            metadata,
                        ),
                    )
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
            }
        }
        .map_err(|e| TracesError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                otlp.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        global::set_text_map_propagator(TraceContextPropagator::new());
        global::set_tracer_provider(provider.clone());
        ENABLED.store(true, Ordering::Relaxed);
        CAPTURE.store(config.capture_content, Ordering::Relaxed);
        Ok(Some(Traces { provider }))
    }

    /// Exports the spans still buffered and stops; blocks, so it runs off the runtime's
    /// workers.
    pub async fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        let provider = self.provider;
        let ended = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = ended {
            tracing::warn!(%error, "traces not all exported at shutdown");
        }
    }
}

/// OTLP/HTTP through the gateway's own HTTP client. The batch exporter runs on a thread of its
/// own with no runtime, so the request is run on the gateway's.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
            let response = tokio::time::timeout(EXPORT_TIMEOUT, client.execute(request)).await??;
            let status = response.status();
            let body = response.bytes().await?;
            let answer = http::Response::builder().status(status).body(body)?;
            Ok::<_, opentelemetry_http::HttpError>(answer)
        });
        sent.await?
    }
}

/// The trace context a request carries (`traceparent`, `tracestate`); empty when off.
pub fn extract(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Adds the current trace context to an outgoing request's headers, when spans are exported.
pub fn inject(headers: &mut HeaderMap) {
    if enabled() {
        let current = Context::current();
        global::get_text_map_propagator(|p| {
            p.inject_context(&current, &mut HeaderInjector(headers))
        });
    }
}

/// Puts content (`gen_ai.input.messages`, `gen_ai.output.messages`) on the current span, when
/// `telemetry.capture_content` asks for it; `content` is only made then.
pub fn capture(key: &'static str, content: impl FnOnce() -> String) {
    if capturing() {
        capture_on(&Context::current(), key, content());
    }
}

/// Puts content on `context`'s span, cut to [`MAX_CONTENT`] bytes.
pub fn capture_on(context: &Context, key: &'static str, mut text: String) {
    if text.len() > MAX_CONTENT {
        let mut cut = MAX_CONTENT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    context.span().set_attribute(KeyValue::new(key, text));
}

/// Whether content is captured, so callers can skip collecting it.
pub fn capturing() -> bool {
    enabled() && CAPTURE.load(Ordering::Relaxed)
}

/// Adds `context`'s trace context to `headers`.
pub fn inject_from(context: &Context, headers: &mut HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(context, &mut HeaderInjector(headers)));
}

/// A span started under `parent`, as the context it is current in.
pub fn start(parent: &Context, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> Context {
    let tracer = global::tracer(SCOPE);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// A child of the current span, or `None` when spans are off.
pub fn child(name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> Option<Context> {
    enabled().then(|| start(&Context::current(), name, kind, attributes))
}

/// The trace id of a context's span in hex, if it has a valid one.
pub fn trace_id(context: &Context) -> Option<String> {
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Ends a context's span when dropped: held by a response body, a stream's span ends with its
/// last byte.
pub struct Ending(pub Context);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.span().end();
    }
}

/// Marks a context's span failed with `error_type` (`error.type`), ending nothing.
pub fn failed(context: &Context, error_type: String, message: String) {
    let span = context.span();
    span.set_attribute(KeyValue::new("error.type", error_type));
    span.set_status(Status::error(message));
}

/// A finished child span: ok, or failed with `error.type`.
pub fn end(context: Option<Context>, error: Option<(String, String)>) {
    if let Some(context) = context {
        if let Some((error_type, message)) = error {
            failed(&context, error_type, message);
        }
        context.span().end();
    }
}

/// Sets attributes on the span current in `context`.
pub fn annotate(context: &Context, attributes: Vec<KeyValue>) {
    let span = context.span();
    for attribute in attributes {
        span.set_attribute(attribute);
    }
}

pub use opentelemetry::context::WithContext as WithContextFuture;
pub use opentelemetry::trace::FutureExt as WithContext;
pub use opentelemetry::trace::SpanKind as Kind;
pub use opentelemetry::{Context as TraceContext, KeyValue as Attribute};
