//! The gateway's reqwest client as rmcp's Streamable HTTP client, with a server's `max_result`:
//! an answer over it becomes an error for that request alone, naming the limit.
//!
//! rmcp enforces the limit itself (per SSE event and per JSON body) but reports it as a closed
//! stream or a transport failure; here that one answer is replaced and the session goes on.
//! Any request the server answers 404 (it forgot the session: it restarted) is told to the
//! supervisor at once, which reconnects and lists the tools again. Every message heard passes
//! the connection's [`Tap`] first; a request the gateway wants answered whole is sent here
//! rather than by rmcp, which parses a JSON answer before anyone could see it as written.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::ErrorData;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::{Sse, SseStream};

use super::oversize;
use super::verbatim::Tap;

type Headers = HashMap<HeaderName, HeaderValue>;
type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;
type Events = BoxStream<'static, Result<Sse, SseError>>;
type StreamResult = Result<Events, StreamableHttpError<reqwest::Error>>;

/// reqwest, answering an oversized result of one server with an error.
#[derive(Clone)]
pub struct BoundedHttp {
    pub client: reqwest::Client,
    pub server: Arc<str>,
    pub limit: u64,
    /// Woken when the server does not know the session.
    pub forgotten: Arc<tokio::sync::Notify>,
    pub tap: Arc<Tap>,
}

impl BoundedHttp {
    /// Passes `result` on, telling the supervisor if the session was forgotten.
    fn heard<T>(
        &self,
        result: Result<T, StreamableHttpError<reqwest::Error>>,
    ) -> Result<T, StreamableHttpError<reqwest::Error>> {
        let forgotten = match &result {
            Err(StreamableHttpError::SessionExpired) => true,
            // A notification stream reopened after the break: rmcp reports its 404 as is.
            Err(StreamableHttpError::Client(error)) => {
                error.status() == Some(reqwest::StatusCode::NOT_FOUND)
            }
            _ => false,
        };
        if forgotten {
            self.forgotten.notify_one();
        }
        result
    }

    fn refusal(&self, id: RequestId) -> ServerJsonRpcMessage {
        tracing::warn!(server = %self.server, limit = self.limit, "refused a result over max_result");
        let message = oversize::too_large(&self.server, self.limit);
        ServerJsonRpcMessage::error(ErrorData::internal_error(message, None), Some(id))
    }

    /// The answer to `id`, with what rmcp reports as too large replaced by the refusal.
    fn bounded(&self, id: Option<RequestId>, answer: PostResult) -> PostResult {
        let answer = self.heard(answer);
        let Some(id) = id else { return answer };
        match answer {
            Err(StreamableHttpError::ResponseBodyTooLarge { .. }) => {
                Ok(StreamableHttpPostResponse::Json(self.refusal(id), None))
            }
            Ok(StreamableHttpPostResponse::Sse(events, session)) => {
                let this = self.clone();
                let events = self.tapped(events, Some(id.clone()));
                let mut id = Some(id);
                // Events may come before the answer (a priming event, progress): the id is spent
                // only on the error that stands for the answer.
                let events = events.map(move |event| match event {
                    Err(error) if event_too_large(&error) => match id.take() {
                        Some(id) => serde_json::to_string(&this.refusal(id))
                            .map(|data| Sse::default().data(data))
                            .map_err(|_| error),
                        None => Err(error),
                    },
                    event => event,
                });
                Ok(StreamableHttpPostResponse::Sse(events.boxed(), session))
            }
            other => other,
        }
    }

    /// `events`, each heard by the tap on its way to rmcp; `on`: the request whose response
    /// stream they are.
    fn tapped(&self, events: Events, on: Option<RequestId>) -> Events {
        let tap = self.tap.clone();
        let heard = events.inspect(move |event| {
            if let Ok(Sse {
                data: Some(data), ..
            }) = event
            {
                tap.heard_on(on.as_ref(), data.as_bytes());
            }
        });
        heard.boxed()
    }

    /// A request sent and its answer read here: JSON is heard by the tap as the server wrote
    /// it, events as they come; within the server's limit either way.
    async fn post_whole(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        (auth, headers): (Option<String>, Headers),
    ) -> PostResult {
        let body = serde_json::to_vec(&message)?;
        let mut request = self
            .client
            .post(uri.as_ref())
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let attached = session_id.is_some();
        if let Some(id) = session_id {
            request = request.header(crate::mcp::SESSION_ID, id.as_ref());
        }
        let response = (request.body(body).send().await).map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && attached {
            return Err(StreamableHttpError::SessionExpired);
        }
        if matches!(status.as_u16(), 202 | 204) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let session = header(crate::mcp::SESSION_ID.as_str()).map(str::to_owned);
        let kind = header(http::header::CONTENT_TYPE.as_str())
            .unwrap_or_default()
            .to_owned();
        if kind.starts_with("text/event-stream") && status.is_success() {
            let bytes = within(response.bytes_stream(), self.limit);
            let events = SseStream::from_bytes_stream(bytes).boxed();
            return Ok(StreamableHttpPostResponse::Sse(events, session));
        }
        if kind.starts_with("application/json") {
            let whole = read_within(response, self.limit).await?;
            self.tap.heard(&whole);
            let message = serde_json::from_slice(&whole)?;
            return Ok(StreamableHttpPostResponse::Json(message, session));
        }
        let text = format!("HTTP {status} with content type {kind:?}");
        Err(StreamableHttpError::UnexpectedServerResponse(text.into()))
    }
}

/// A body's bytes, failing once more than `limit` came, in the words rmcp's bounded reader uses
/// (so [`event_too_large`] knows it).
fn within(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    limit: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let mut total = 0u64;
    body.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        total += chunk.len() as u64;
        if total > limit {
            let message = format!("the answer exceeded the maximum size of {limit} bytes");
            return Err(std::io::Error::other(message));
        }
        Ok(chunk)
    })
}

async fn read_within(
    response: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, StreamableHttpError<reqwest::Error>> {
    let mut body = std::pin::pin!(within(response.bytes_stream(), limit));
    let mut whole = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => whole.extend_from_slice(&chunk),
            Err(_) => {
                let max_size = usize::try_from(limit).unwrap_or(usize::MAX);
                return Err(StreamableHttpError::ResponseBodyTooLarge { max_size });
            }
        }
    }
    Ok(whole)
}

/// Whether the gateway wants `message`'s answer whole: it sent it as a `CustomRequest`.
fn wanted_whole(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, ClientJsonRpcMessage::Request(request)
        if matches!(request.request, ClientRequest::CustomRequest(_)))
}

/// rmcp's bounded SSE reader reports an event over the limit as a body error; its type is
/// private, so its message is what tells it apart (a test holds it to that).
fn event_too_large(error: &SseError) -> bool {
    matches!(error, SseError::Body(body) if body.to_string().contains("maximum size"))
}

fn request_id(message: &ClientJsonRpcMessage) -> Option<RequestId> {
    match message {
        ClientJsonRpcMessage::Request(request) => Some(request.id.clone()),
        _ => None,
    }
}

/// rmcp's worker sends through `post_message_with_response_limits` and reads streams through
/// `get_stream_with_max_sse_event_size`, so those carry the limits; the plain forms are what
/// the trait requires besides.
impl StreamableHttpClient for BoundedHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth: Option<String>,
        headers: Headers,
    ) -> PostResult {
        let id = request_id(&message);
        let answer = if wanted_whole(&message) {
            self.post_whole(uri, message, session_id, (auth, headers))
                .await
        } else {
            self.client
                .post_message(uri, message, session_id, auth, headers)
                .await
        };
        self.bounded(id, answer)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth: Option<String>,
        headers: Headers,
        limits: StreamableHttpResponseLimits,
    ) -> PostResult {
        let id = request_id(&message);
        let answer = if wanted_whole(&message) {
            self.post_whole(uri, message, session_id, (auth, headers))
                .await
        } else {
            self.client
                .post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
                .await
        };
        self.bounded(id, answer)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth: Option<String>,
        headers: Headers,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let deleted = self
            .client
            .delete_session(uri, session_id, auth, headers)
            .await;
        self.heard(deleted)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth: Option<String>,
        headers: Headers,
    ) -> StreamResult {
        let stream = self
            .client
            .get_stream(uri, session_id, last_event_id, auth, headers)
            .await;
        self.heard(stream).map(|events| self.tapped(events, None))
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth: Option<String>,
        headers: Headers,
        max_sse_event_size: usize,
    ) -> StreamResult {
        let stream = self
            .client
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth,
                headers,
                max_sse_event_size,
            )
            .await;
        self.heard(stream).map(|events| self.tapped(events, None))
    }
}
