//! Tower adapter for stage 2: [`AuthenticateLayer`] / [`Authenticate`].

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, Either};
use http::{Request, Response};
use tower::{Layer, Service};

use super::{AuthFailure, Authenticator};
use crate::body::Body;
use crate::errors::{Rejection, reject, reject_parts};
use crate::routes::{Access, RouteMatch};

/// Adds a [`Principal`](crate::identity::Principal) or answers 401.
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthenticateLayer {
    /// A layer over the configured issuers.
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, authenticator: self.authenticator.clone() }
    }
}

/// Service of [`AuthenticateLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S, B> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    /// Public routes go straight to the inner service's own future; the rest are boxed.
    type Future = Either<BoxFuture<'static, Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let public = match request.extensions().get::<RouteMatch>() {
            Some(found) => found.rule.access == Access::Public,
            // INVARIANT: MatchRoute runs first; without its extension, fail closed.
            None => {
                let response = reject(&request, Rejection::Internal);
                return Either::Left(Box::pin(async move { Ok(response) }));
            }
        };
        if public {
            return Either::Right(self.inner.call(request));
        }
        // The readied service is the one that gets called (tower's clone-and-replace idiom).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        Either::Left(Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let request = &parts;
            match authenticator.authenticate(&parts.headers).await {
                Ok(principal) => {
                    tracing::Span::current().record("user", &*principal.user_entity_ref);
                    parts.extensions.insert(principal);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(AuthFailure::Missing) => Ok(reject_parts(request, Rejection::MissingToken)),
                Err(AuthFailure::Duplicate) => Ok(reject_parts(
                    request,
                    Rejection::BadRequest("more than one `Authorization` header was sent".into()),
                )),
                Err(AuthFailure::Invalid(err)) => Ok(reject_parts(request, Rejection::from_auth(err))),
            }
        }))
    }
}
