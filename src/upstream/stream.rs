//! A provider's streamed answer read as canonical items: bytes framed by the provider's stream
//! format (SSE or AWS event stream), decoded by its adapter, timed against idle and deadline.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use switchboard_providers::eventstream::{EventMessage, FrameSplitter, MessageKind};
use switchboard_providers::sse_frames::{SseEvent, SseSplitter};
use switchboard_providers::{ChunkDecoder, NativeEvent, NativeFormat, StreamFormat, StreamItem};

use super::{HttpBackend, Response, TransportError, redact};
use crate::error::ApiError;

/// How long a stream may stay silent, and when it must be over.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Option<Duration>,
    pub deadline: Instant,
}

/// A provider's streamed answer as canonical items: framed by the provider's stream format,
/// decoded by its adapter, scrubbed of its credentials. The decoder hears of the end of the bytes
/// too, so formats without a `[DONE]` can finish. Chunks that name no model (Bedrock's) are
/// labelled with the upstream model asked for.
pub(super) fn upstream_items(
    provider: &str,
    backend: &HttpBackend,
    response: Response,
    pace: Pace,
    model: &str,
    native: Option<NativeFormat>,
) -> impl Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static {
    let decoder = match native {
        Some(format) => backend.adapter.native_stream(format),
        None => backend.adapter.chat_stream(),
    };
    let native = native.is_some();
    let secrets = backend.secrets.clone();
    let model = model.to_owned();
    let provider: Arc<str> = provider.into();
    let events = match backend.adapter.stream_format() {
        StreamFormat::Sse => sse_events(Arc::clone(&provider), response),
        StreamFormat::AwsEventStream => aws_events(Arc::clone(&provider), response),
    };
    let steps = futures_util::stream::unfold(Some((events, decoder, false)), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut events, mut decoder, started) = state?;
            // Until the first item, `first_token` (the caller's timeout) is the limit: a model
            // that sends its headers and then thinks is not a stalled stream.
            let until = match pace.idle {
                Some(idle) if started => (Instant::now() + idle).min(pace.deadline),
                _ => pace.deadline,
            };
            // Reads that complete no event (half an event, bytes dribbled) do not end the
            // silence; a comment does, as the upstream's way of saying it is alive.
            loop {
                let Ok(batch) = tokio::time::timeout_at(until.into(), events.next()).await else {
                    // Dropping the events drops the upstream response: the connection is released.
                    let stalled = ApiError::gateway_timeout(format!(
                        "the stream from provider '{provider}' stalled"
                    ));
                    return Some((vec![Err(stalled)], None));
                };
                let Some(batch) = batch else {
                    let items = match decoder.finish() {
                        Ok(items) => items.into_iter().map(Ok).collect(),
                        Err(error) => vec![Err(error.into())],
                    };
                    return Some((items, None));
                };
                if batch.is_empty() {
                    continue;
                }
                let (items, ok) = decode_batch(decoder.as_mut(), batch, native);
                let started = started
                    || items
                        .iter()
                        .any(|item| !matches!(item, Ok(StreamItem::KeepAlive)));
                return Some((items, ok.then_some((events, decoder, started))));
            }
        }
    });
    steps
        .flat_map(move |items| {
            let items: Vec<_> = items
                .into_iter()
                .map(|item| match item {
                    Ok(item) => Ok(name_model(item, &model)),
                    Err(error) => Err(redact(error, &secrets)),
                })
                .collect();
            futures_util::stream::iter(items)
        })
        .boxed()
}

/// The items of the events one read completed, in order; `false` once one failed, which ends
/// the stream after the items before it.
/// With `native`, each event itself comes first, to be forwarded as it came.
fn decode_batch(
    decoder: &mut dyn ChunkDecoder,
    batch: Vec<Result<UpstreamEvent, ApiError>>,
    native: bool,
) -> (Vec<Result<StreamItem, ApiError>>, bool) {
    let mut items = Vec::with_capacity(batch.len());
    for event in batch {
        if matches!(&event, Ok(event) if event.is_keep_alive()) {
            items.push(Ok(StreamItem::KeepAlive));
            continue;
        }
        let forward = native && !decoder.writes_native();
        let decoded = event.and_then(|event| {
            let decoded = decode_event(decoder, &event);
            // The event itself goes first, moved rather than copied now that it is decoded.
            if forward {
                items.push(Ok(StreamItem::Native(Box::new(NativeEvent {
                    name: event.name.into_owned(),
                    data: event.data,
                }))));
            }
            decoded
        });
        match decoded {
            Ok(decoded) => items.extend(decoded.into_iter().map(Ok)),
            Err(error) => {
                items.push(Err(error));
                return (items, false);
            }
        }
    }
    (items, true)
}

/// One framed upstream event.
struct UpstreamEvent {
    name: Cow<'static, str>,
    data: String,
    /// An AWS exception or error message: the stream fails whatever the decoder makes of it.
    fatal: bool,
}

impl UpstreamEvent {
    /// What a read that brought only SSE comments becomes: a sign of life, not an event.
    const KEEP_ALIVE: &'static str = ":keep-alive";

    fn keep_alive() -> Self {
        UpstreamEvent {
            name: Cow::Borrowed(Self::KEEP_ALIVE),
            data: String::new(),
            fatal: false,
        }
    }

    fn is_keep_alive(&self) -> bool {
        self.name == Self::KEEP_ALIVE
    }
}

/// The events each read of the body completed, one batch per read.
type Events = futures_util::stream::BoxStream<'static, Vec<Result<UpstreamEvent, ApiError>>>;

fn decode_event(
    decoder: &mut dyn ChunkDecoder,
    event: &UpstreamEvent,
) -> Result<Vec<StreamItem>, ApiError> {
    let items = decoder.decode(&event.name, &event.data)?;
    if event.fatal {
        return Err(ApiError::bad_gateway(format!(
            "the provider's stream failed: {}",
            event.name
        )));
    }
    Ok(items)
}

fn name_model(item: StreamItem, model: &str) -> StreamItem {
    match item {
        StreamItem::Chunk(mut chunk) if chunk.model.is_empty() => {
            chunk.model = model.to_owned();
            StreamItem::Chunk(chunk)
        }
        other => other,
    }
}

/// Server-sent events split as bytes arrive; the events of one read are handed on together.
fn sse_events(provider: Arc<str>, response: Response) -> Events {
    let start = (response.bytes_stream(), SseSplitter::new());
    futures_util::stream::unfold(Some(start), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut bytes, mut splitter) = state?;
            let mut events = Vec::new();
            let (events, next) = match bytes.next().await {
                Some(Ok(piece)) => {
                    // Events completed before a bad line still reach the client, then the error.
                    let fed = splitter.feed(&piece, &mut events);
                    let alive = splitter.take_comments() > 0 && events.is_empty();
                    let mut items: Vec<_> = events.into_iter().map(sse_event).collect();
                    if alive {
                        items.push(Ok(UpstreamEvent::keep_alive()));
                    }
                    match fed {
                        Ok(()) => (items, true),
                        Err(error) => {
                            items.push(Err(invalid_stream(&provider, &error)));
                            (items, false)
                        }
                    }
                }
                Some(Err(error)) => (vec![Err(broken(&provider, &error))], false),
                None => (Vec::new(), false),
            };
            let next = next.then_some((bytes, splitter));
            Some((events, next))
        }
    })
    .boxed()
}

fn sse_event(event: SseEvent) -> Result<UpstreamEvent, ApiError> {
    Ok(UpstreamEvent {
        name: event.event,
        data: event.data,
        fatal: false,
    })
}

/// AWS event stream frames split as bytes arrive; a stream cut inside a frame is an error.
fn aws_events(provider: Arc<str>, response: Response) -> Events {
    let start = (response.bytes_stream(), FrameSplitter::new());
    futures_util::stream::unfold(Some(start), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut bytes, mut splitter) = state?;
            let (events, next) = match bytes.next().await {
                Some(Ok(piece)) => match splitter.feed(&piece) {
                    Ok(messages) => (messages.into_iter().map(aws_event).collect(), true),
                    Err(error) => (vec![Err(ApiError::from(error))], false),
                },
                Some(Err(error)) => (vec![Err(broken(&provider, &error))], false),
                None => (
                    splitter
                        .finish()
                        .err()
                        .map(|e| Err(e.into()))
                        .into_iter()
                        .collect(),
                    false,
                ),
            };
            let next = next.then_some((bytes, splitter));
            Some((events, next))
        }
    })
    .boxed()
}

fn aws_event(message: EventMessage) -> Result<UpstreamEvent, ApiError> {
    let data = String::from_utf8(message.payload.to_vec()).map_err(|_| {
        ApiError::bad_gateway("the provider sent an event whose payload is not UTF-8")
    })?;
    Ok(UpstreamEvent {
        fatal: message.kind != MessageKind::Event,
        name: Cow::Owned(message.name),
        data,
    })
}

fn broken(provider: &str, error: &TransportError) -> ApiError {
    match error {
        // The request's `total` ran out while the stream was still going.
        TransportError::Timeout => ApiError::gateway_timeout(format!(
            "the stream from provider '{provider}' ran past the request's deadline"
        )),
        _ => ApiError::bad_gateway(format!(
            "the stream from provider '{provider}' broke: {error}"
        )),
    }
}

fn invalid_stream(provider: &str, error: &impl std::fmt::Display) -> ApiError {
    ApiError::bad_gateway(format!(
        "provider '{provider}' sent an invalid stream: {error}"
    ))
}
