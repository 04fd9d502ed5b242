//! Path parameters, as axum's `Path` extracts them, with OpenAI-shaped rejections: a segment
//! that is not UTF-8 (`/v1/models/%ff`) gets a JSON 400 like every other bad input.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The route's parameters, deserialized into `T`.
pub struct Segments<T>(pub T);

impl<S, T> FromRequestParts<S> for Segments<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Segments(value)),
            Err(rejection) => Err(ApiError::invalid_request(rejection.body_text(), None)),
        }
    }
}
