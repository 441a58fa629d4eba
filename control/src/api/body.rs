//! JSON request bodies, with every rejection as an [`ApiError`]: axum's own
//! `Json` answers some failures in plain text and a shape error with 422,
//! which this API keeps for changes that are well-formed but invalid.
//!
//! - body larger than [`BODY_LIMIT`] → 413;
//! - a non-empty body without a JSON content type → 415;
//! - not JSON, not an object, or not the endpoint's shape → 400 (serde
//!   would read a struct from an array too; the API takes objects only).

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The largest request body the admin API reads.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// A required JSON body.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// An optional JSON body: no body at all is `T::default()`.
#[derive(Debug)]
pub(crate) struct OptionalJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match read(req, state).await? {
            Some(bytes) => parse(&bytes).map(Self),
            None => Err(ApiError::BadRequest("a JSON body is required".into())),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match read(req, state).await? {
            // `null` is no body too, as the OpenAPI document says.
            Some(bytes) if bytes.trim_ascii() == b"null" => Ok(Self(T::default())),
            Some(bytes) => parse(&bytes).map(Self),
            None => Ok(Self(T::default())),
        }
    }
}

/// The body, `None` when empty; checks size and content type.
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Option<Bytes>, ApiError> {
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(BODY_LIMIT)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if json_type != Some(true) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(Some(bytes))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}
