//! Stage 0: the request id and the request's tracing span.
//!
//! Keeps a client's `x-request-id` when it is well formed (1–128 characters of
//! `[A-Za-z0-9._:-]`), otherwise generates a UUID v4. The id is inserted as a [`RequestId`]
//! extension, forwarded upstream, echoed on every response, and recorded on the span.

use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

/// The request id header name.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request, as sent upstream and back to the client.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Keeps a well-formed client id, else generates one.
    pub fn from_client(value: Option<&HeaderValue>) -> Self {
        match value {
            Some(value) if is_well_formed(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    fn generate() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        // A hyphenated UUID is always a valid header value.
        Self(HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid")))
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }
}

fn is_well_formed(bytes: &[u8]) -> bool {
    (1..=128).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Adds [`RequestId`] and the request span.
#[derive(Debug, Clone, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = AssignRequestId<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AssignRequestId { inner }
    }
}

/// Service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct AssignRequestId<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for AssignRequestId<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = RequestId::from_client(request.headers().get(REQUEST_ID));
        request.headers_mut().insert(REQUEST_ID, id.header_value().clone());
        let span = tracing::info_span!(
            "request",
            request_id = id.as_str(),
            method = %request.method(),
            path = request.uri().path(),
            route = tracing::field::Empty,
            user = tracing::field::Empty,
            decision = tracing::field::Empty,
        );
        let header = id.header_value().clone();
        request.extensions_mut().insert(id);
        // The clock is read only for the `request finished` line, when it is logged.
        let started = tracing::enabled!(tracing::Level::INFO).then(Instant::now);
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                if let (Ok(response), Some(started)) = (&result, started) {
                    tracing::info!(
                        status = response.status().as_u16(),
                        micros = started.elapsed().as_micros() as u64,
                        "request finished"
                    );
                }
                result.map(|mut response| {
                    response.headers_mut().insert(REQUEST_ID, header);
                    response
                })
            }
            .instrument(span),
        )
    }
}
