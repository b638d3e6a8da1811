//! The proxy service: forwards a permitted request on its upstream's pooled connections and
//! streams bodies both ways.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, Version};
use tower::Service;

use super::pool::Protocol;
use super::{ForwardSettings, ProxyError};
use crate::body::{self, Body, BoxError};
use crate::connection::PeerAddr;
use crate::errors::{Rejection, reject};
use crate::identity::Principal;
use crate::policy::Permit;
use crate::request_id::RequestId;
use crate::routes::RouteMatch;

/// Forwards permitted requests; cheap to clone. The connection pools belong to the upstreams
/// (see [`super::pool`]).
#[derive(Debug, Clone)]
pub struct Proxy {
    settings: Arc<ForwardSettings>,
}

impl Proxy {
    /// A proxy rewriting requests as `settings` say.
    pub fn new(settings: ForwardSettings) -> Self {
        Self { settings: Arc::new(settings) }
    }
}

impl<B> Service<Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // INVARIANT: only the authorize stage makes a Permit; without one, never forward.
        if request.extensions().get::<Permit>().is_none() || request.extensions().get::<RouteMatch>().is_none() {
            tracing::error!("request reached the proxy without a permit; refusing");
            let response = reject(&request, Rejection::Internal);
            return Box::pin(async move { Ok(response) });
        }
        let mut request = request;
        // Taken, not cloned: the extensions are not forwarded anyway.
        let Some(found) = request.extensions_mut().remove::<RouteMatch>() else {
            return Box::pin(async move { Ok(reject(&request, Rejection::Internal)) });
        };
        let upstream = found.rule.upstream.clone();
        let limit = found.rule.max_body_bytes;
        if let Some(limit) = limit {
            let declared = request.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
            if declared.and_then(|v| v.parse::<u64>().ok()).is_some_and(|length| length > limit) {
                let response = reject(&request, Rejection::PayloadTooLarge(Some(limit)));
                return Box::pin(async move { Ok(response) });
            }
        }
        let (mut parts, body) = request.into_parts();
        let peer = parts.extensions.get::<PeerAddr>();
        let request_id = parts.extensions.get::<RequestId>().map(RequestId::header_value);
        self.settings.prepare_request(&mut parts.headers, parts.extensions.get::<Principal>(), peer, request_id);
        let uri = match upstream.target_for(&found.forward_path) {
            Ok(uri) => uri,
            Err(err) => return Box::pin(async move { Err(ProxyError::build(&upstream.name, err).into()) }),
        };
        parts.uri = uri;
        match upstream.connections().protocol() {
            Protocol::Http1 => {
                parts.version = Version::HTTP_11;
                parts.headers.insert(http::header::HOST, upstream.host_header().clone());
            }
            Protocol::Http2 => parts.version = Version::HTTP_2,
        }
        parts.extensions = http::Extensions::new();
        // A body without a declared length is cut off mid-stream at the limit: the upstream
        // request fails and the client gets an error, never a silently truncated request.
        let body = match limit {
            Some(limit) => {
                body::boxed(http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)))
            }
            None => body::boxed(body),
        };
        let outgoing = Request::from_parts(parts, body);
        let settings = self.settings.clone();
        Box::pin(async move {
            let sent = upstream.connections().send(outgoing);
            let response = match tokio::time::timeout(upstream.timeout, sent).await {
                Err(_) => return Err(ProxyError::timeout(&upstream.name, upstream.timeout).into()),
                Ok(Err(err)) => return Err(ProxyError::request(&upstream.name, err).into()),
                Ok(Ok(response)) => response,
            };
            let (mut parts, incoming) = response.into_parts();
            settings.prepare_response(&mut parts.headers);
            Ok(Response::from_parts(parts, body::boxed(incoming)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http::{Method, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::proxy::Upstream;
    use crate::routes::{Access, OnConditional, Rule};

    fn route_match(upstream: &str) -> RouteMatch {
        RouteMatch {
            rule: Arc::new(Rule {
                label: "routes[0].rules[0]".into(),
                template: "/x".into(),
                access: Access::Public,
                upstream: Arc::new(Upstream::parse("app", upstream, Duration::from_secs(1)).unwrap()),
                resource_ref: None,
                on_conditional: OnConditional::Deny,
                max_body_bytes: None,
                plugin: None,
            }),
            resource_ref: None,
            forward_path: http::uri::PathAndQuery::from_static("/x"),
        }
    }

    #[tokio::test]
    async fn without_a_permit_nothing_is_forwarded() {
        // A listener that counts connections: the proxy must never connect.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut request = Request::builder().method(Method::GET).uri("/x").body(body::empty()).unwrap();
        request.extensions_mut().insert(route_match(&format!("http://{addr}")));
        let response = Proxy::new(ForwardSettings::default()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "the proxy connected to the upstream without a permit");
    }
}
