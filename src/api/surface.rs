//! The APIs a client can speak on the chat request path, and what each answer is written in:
//! OpenAI's chat completion, Anthropic's message, or OpenAI's response object (kept when asked).

use bytes::Bytes;
use switchboard_providers::chat::{ChatRequest, ChatResponse};
use switchboard_providers::responses::{self, Echo};

use crate::sse::Dialect;
use crate::stored_responses::Keep;
use crate::tokens;

/// The API a client speaks.
pub(super) enum Surface {
    /// OpenAI's Chat Completions.
    Chat,
    /// Anthropic's Messages.
    Messages,
    /// OpenAI's Responses.
    Responses(Box<ResponsesJob>),
}

/// A Responses request's identity, and where its response is kept when it asked to be stored.
pub(super) struct ResponsesJob {
    pub echo: Echo,
    pub keep: Option<Keep>,
}

impl Surface {
    /// Whether answers go out as the chat completion the path produces.
    pub fn is_chat(&self) -> bool {
        matches!(self, Surface::Chat)
    }

    /// A whole answer in this surface's shape, given its chat completion and that completion's
    /// JSON. A response to store is kept before it is sent, so a follow-up finds it.
    pub async fn whole(self, response: &ChatResponse, chat_json: &Bytes) -> Bytes {
        match self {
            Surface::Chat => chat_json.clone(),
            Surface::Messages => {
                let message = switchboard_providers::messages::encode_answer(response);
                Bytes::from(message.to_string())
            }
            Surface::Responses(job) => {
                let (object, answer) = responses::encode_answer(response, &job.echo);
                if let Some(keep) = job.keep {
                    keep.store(object.clone(), answer).await;
                }
                Bytes::from(object.to_string())
            }
        }
    }

    /// The provider `provider` answers; with `native`, it was sent the client's body as written
    /// and writes the answer itself.
    pub fn answered_by(mut self, provider: &str, native: bool) -> Self {
        if let (true, Surface::Responses(job)) = (native, &mut self)
            && let Some(keep) = &mut job.keep
        {
            keep.written_by(provider);
        }
        self
    }

    /// A whole answer the provider wrote in this surface's shape (`body`, read as `response`),
    /// kept when it asked to be.
    pub async fn written(self, body: &Bytes, response: &ChatResponse) {
        if let Surface::Responses(job) = self
            && let Some(keep) = job.keep
        {
            keep.store_written(body, response).await;
        }
    }

    /// What a stream to this surface is written in. Anthropic's `message_start` reports the
    /// prompt's tokens, which translated providers give only at the end: they are counted here,
    /// unless the provider is `native` and its own `message_start` goes out instead.
    pub fn dialect(self, request: &ChatRequest, native: bool) -> Dialect {
        match self {
            Surface::Chat => Dialect::Chat,
            Surface::Messages if native => Dialect::messages(0),
            Surface::Messages => Dialect::messages(tokens::prompt(request)),
            Surface::Responses(job) => {
                Dialect::Responses(Box::new(responses::EventWriter::new(job.echo)), job.keep)
            }
        }
    }
}
