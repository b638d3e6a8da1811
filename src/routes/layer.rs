//! Tower adapter for stage 1: [`MatchRouteLayer`] / [`MatchRoute`].

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::uri::PathAndQuery;
use http::{Request, Response};
use tower::{Layer, Service};

use super::{RouteMatch, RouteTable, path};
use crate::body::Body;
use crate::errors::{Rejection, reject};

/// Adds [`RouteMatch`] or refuses the request.
#[derive(Debug, Clone)]
pub struct MatchRouteLayer {
    table: Arc<RouteTable>,
}

impl MatchRouteLayer {
    /// A layer over a compiled table.
    pub fn new(table: Arc<RouteTable>) -> Self {
        Self { table }
    }
}

impl<S> Layer<S> for MatchRouteLayer {
    type Service = MatchRoute<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MatchRoute { inner, table: self.table.clone() }
    }
}

/// Service of [`MatchRouteLayer`].
#[derive(Debug, Clone)]
pub struct MatchRoute<S> {
    inner: S,
    table: Arc<RouteTable>,
}

impl<S, B> Service<Request<B>> for MatchRoute<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match route(&self.table, &request) {
            Ok(found) => {
                tracing::Span::current().record("route", &*found.rule.label);
                request.extensions_mut().insert(found);
                Either::Right(self.inner.call(request))
            }
            Err(rejection) => Either::Left(ready(Ok(reject(&request, rejection)))),
        }
    }
}

/// The pure part: normalize, look up, render the resource ref.
pub fn route<B>(table: &RouteTable, request: &Request<B>) -> Result<RouteMatch, Rejection> {
    check_framing(request)?;
    let uri = request.uri();
    let normalized =
        path::normalize(uri.path()).map_err(|err| Rejection::BadRequest(format!("invalid path: {err}")))?;
    if is_cors_preflight(request) {
        if let Some(rule) = table.find_preflight(&normalized) {
            let forward_path = forward_path(uri, &normalized, matches!(normalized, Cow::Borrowed(_)))?;
            return Ok(RouteMatch { rule: rule.clone(), resource_ref: None, forward_path });
        }
    }
    let found = table
        .find(request.method(), &normalized)
        .ok_or_else(|| Rejection::NoRoute { method: request.method().clone(), path: normalized.to_string() })?;
    let resource_ref =
        match &found.rule.resource_ref {
            None => None,
            Some(template) => Some(template.render(|name| found.params.get(name)).ok_or_else(|| {
                Rejection::BadRequest("path parameters of the resource ref are not valid UTF-8".into())
            })?),
        };
    let forward_path = forward_path(uri, &normalized, matches!(normalized, Cow::Borrowed(_)))?;
    Ok(RouteMatch { rule: found.rule.clone(), resource_ref, forward_path })
}

/// The normalized path plus the original query.
/// `unchanged`: normalization kept the path as it was, so the original bytes can be reused.
fn forward_path(uri: &http::Uri, normalized: &str, unchanged: bool) -> Result<PathAndQuery, Rejection> {
    match (unchanged, uri.path_and_query()) {
        // Unchanged path: reuse the request's own bytes.
        (true, Some(original)) => Ok(original.clone()),
        _ => {
            let text = match uri.query() {
                Some(query) => format!("{normalized}?{query}"),
                None => normalized.to_string(),
            };
            PathAndQuery::try_from(text)
                .map_err(|_| Rejection::BadRequest("normalized path is not a valid request target".into()))
        }
    }
}

/// Requests no rule may decide: `CONNECT` (stagedoor does not tunnel), an HTTP/1.1 request
/// without exactly one `Host` (RFC 9112 §3.2), and two `Authorization` headers (which one a
/// backend reads is anyone's guess).
fn check_framing<B>(request: &Request<B>) -> Result<(), Rejection> {
    if request.method() == http::Method::CONNECT {
        return Err(Rejection::BadRequest("CONNECT is not supported: stagedoor does not tunnel".into()));
    }
    if request.version() == http::Version::HTTP_11 && request.headers().get_all(http::header::HOST).iter().count() != 1
    {
        return Err(Rejection::BadRequest("an HTTP/1.1 request needs exactly one `Host` header".into()));
    }
    if request.headers().get_all(http::header::AUTHORIZATION).iter().count() > 1 {
        return Err(Rejection::BadRequest("more than one `Authorization` header was sent".into()));
    }
    Ok(())
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight<B>(request: &Request<B>) -> bool {
    request.method() == http::Method::OPTIONS
        && request.headers().contains_key(http::header::ORIGIN)
        && request.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}
