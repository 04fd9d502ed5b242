//! The gateway's reqwest client as rmcp's Streamable HTTP client, with a server's `max_result`:
//! an answer over it becomes an error for that request alone, naming the limit.
//!
//! rmcp enforces the limit itself (per SSE event and per JSON body) but reports it as a closed
//! stream or a transport failure; here that one answer is replaced and the session goes on.
//! Any request the server answers 404 (it forgot the session: it restarted) is told to the
//! supervisor at once, which reconnects and lists the tools again.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use http::{HeaderName, HeaderValue};
use rmcp::ErrorData;
use rmcp::model::{ClientJsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use super::oversize;

type Headers = HashMap<HeaderName, HeaderValue>;
type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

/// reqwest, answering an oversized result of one server with an error.
#[derive(Clone)]
pub struct BoundedHttp {
    pub client: reqwest::Client,
    pub server: Arc<str>,
    pub limit: u64,
    /// Woken when the server does not know the session.
    pub forgotten: Arc<tokio::sync::Notify>,
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
                let mut id = Some(id);
                let events = events.map(move |event| match (event, id.take()) {
                    (Err(error), Some(id)) if event_too_large(&error) => {
                        let refusal = serde_json::to_string(&this.refusal(id));
                        refusal
                            .map(|data| Sse::default().data(data))
                            .map_err(|_| error)
                    }
                    (event, _) => event,
                });
                Ok(StreamableHttpPostResponse::Sse(events.boxed(), session))
            }
            other => other,
        }
    }
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
        let answer = self
            .client
            .post_message(uri, message, session_id, auth, headers)
            .await;
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
        let answer = self
            .client
            .post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
            .await;
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
    ) -> Result<
        futures_util::stream::BoxStream<'static, Result<Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        let stream = self
            .client
            .get_stream(uri, session_id, last_event_id, auth, headers)
            .await;
        self.heard(stream)
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth: Option<String>,
        headers: Headers,
        max_sse_event_size: usize,
    ) -> Result<
        futures_util::stream::BoxStream<'static, Result<Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
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
        self.heard(stream)
    }
}
