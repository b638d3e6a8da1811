//! The outermost safety net: turns infrastructure errors from below into 502/504/500
//! responses, so the service handed to hyper never fails.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Method, Request, Response};
use tower::{Layer, Service};

use crate::body::{Body, BoxError};
use crate::errors::Rejection;
use crate::proxy::ProxyError;
use crate::request_id::RequestId;

/// Maps `Err` to a rejection response.
#[derive(Debug, Clone, Default)]
pub struct RescueLayer;

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Rescue { inner }
    }
}

/// Service of [`RescueLayer`].
#[derive(Debug, Clone)]
pub struct Rescue<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Below the rescue layer nothing applies backpressure with an error; treat a failure
        // as ready and let the call report it.
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Kept for the error body; clones share the request's buffers (no copy on success).
        let method: Method = request.method().clone();
        let uri = request.uri().clone();
        let request_id = request.extensions().get::<RequestId>().cloned();
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(match future.await {
                Ok(response) => response,
                Err(err) => {
                    let rejection = classify(&*err);
                    tracing::warn!(error = %err, status = rejection.status().as_u16(), "request failed");
                    let url = uri.path_and_query().map_or("/", |p| p.as_str());
                    rejection.into_response(&method, url, request_id.as_ref())
                }
            })
        })
    }
}

fn classify(err: &(dyn std::error::Error + 'static)) -> Rejection {
    match err.downcast_ref::<ProxyError>() {
        Some(proxy) if proxy.is_timeout() => Rejection::GatewayTimeout(proxy.upstream().to_owned()),
        Some(proxy) if proxy.is_internal() => Rejection::Internal,
        Some(proxy) if proxy.is_body_too_large() => Rejection::PayloadTooLarge(None),
        Some(proxy) => Rejection::BadGateway(proxy.upstream().to_owned()),
        None => Rejection::Internal,
    }
}
