//! Tower adapter: answers requests under the permission API's mount point, passes every other
//! request on.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{BoxFuture, Either};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

use super::ApiSettings;
use super::evaluate::{Answer, EvaluateError, evaluate};
use super::request::parse;
use crate::auth::plugin_token::{PluginTokens, is_plugin_token};
use crate::auth::{AuthFailure, Authenticator};
use crate::body::{self, Body, BoxError};
use crate::errors::{Rejection, reject_parts};
use crate::identity::Principal;
use crate::plugins::Plugins;
use crate::policy::PermissionPolicy;

/// Serves the permission API in front of `inner`.
#[derive(Debug, Clone)]
pub struct PermissionApiLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: ApiSettings,
    authorize_path: String,
    health_path: String,
    authenticator: Arc<Authenticator>,
    policy: Arc<dyn PermissionPolicy>,
    plugins: Arc<Plugins>,
    plugin_tokens: Arc<PluginTokens>,
}

impl PermissionApiLayer {
    /// A layer answering `{path}/authorize` and `{path}/health`.
    pub fn new(
        settings: ApiSettings,
        authenticator: Arc<Authenticator>,
        policy: Arc<dyn PermissionPolicy>,
        plugins: Arc<Plugins>,
        plugin_tokens: Arc<PluginTokens>,
    ) -> Self {
        let authorize_path = format!("{}/authorize", settings.path);
        let health_path = format!("{}/health", settings.path);
        let shared = Shared { settings, authorize_path, health_path, authenticator, policy, plugins, plugin_tokens };
        Self { shared: Arc::new(shared) }
    }
}

impl<S> Layer<S> for PermissionApiLayer {
    type Service = PermissionApi<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PermissionApi { inner, shared: self.shared.clone() }
    }
}

/// Service of [`PermissionApiLayer`].
#[derive(Debug, Clone)]
pub struct PermissionApi<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> Service<Request<B>> for PermissionApi<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    /// Requests for the API are answered here (boxed); every other request is the inner
    /// service's own future, unboxed, since most requests pass through.
    type Future = Either<BoxFuture<'static, Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let shared = self.shared.clone();
        if path == shared.health_path && request.method() == Method::GET {
            return Either::Left(Box::pin(async { Ok(json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())) }));
        }
        if path == shared.authorize_path && request.method() == Method::POST {
            return Either::Left(Box::pin(async move { Ok(authorize(&shared, request).await) }));
        }
        Either::Right(self.inner.call(request))
    }
}

async fn authorize<B>(shared: &Shared, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    // Credentials first, as Backstage does: a user's own token (a direct caller), or a plugin
    // token, which must act for a user (`obo`); service principals are refused.
    let (user, direct) = match credentials(shared, &parts.headers).await {
        Ok(caller) => caller,
        Err(rejection) => return reject_parts(&parts, rejection),
    };
    let limit = shared.settings.max_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return reject_parts(&parts, Rejection::PayloadTooLarge(Some(limit as u64)));
        }
        Err(_) => return reject_parts(&parts, Rejection::BadRequest("the request body could not be read".into())),
    };
    let items = match super::fast::parse(&bytes) {
        Some(items) => items,
        // Not a body the fast path accepts: the full validation says exactly what is wrong.
        None => {
            let value: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(err) => {
                    return reject_parts(&parts, Rejection::BadRequest(format!("request body is not JSON: {err}")));
                }
            };
            match parse(&value) {
                Ok(items) => items,
                Err(issues) => {
                    let message = serde_json::to_string_pretty(&issues).unwrap_or_default();
                    return reject_parts(&parts, Rejection::BadRequest(message));
                }
            }
        }
    };
    match evaluate(&*shared.policy, &shared.plugins, &user, direct, &items).await {
        Ok(answers) => {
            #[derive(serde::Serialize)]
            struct Answers {
                items: Vec<Answer>,
            }
            match serde_json::to_vec(&Answers { items: answers }) {
                Ok(body) => json(StatusCode::OK, body),
                Err(err) => {
                    reject_parts(&parts, Rejection::PolicyError(format!("the answer could not be encoded: {err}")))
                }
            }
        }
        Err(EvaluateError::Input(message)) => reject_parts(&parts, Rejection::BadRequest(message)),
        Err(EvaluateError::Internal(message)) => reject_parts(&parts, Rejection::PolicyError(message)),
        Err(EvaluateError::Upstream(status, message)) => reject_parts(&parts, Rejection::PluginStatus(status, message)),
    }
}

/// The user the request is for, and whether they called directly.
async fn credentials(shared: &Shared, headers: &http::HeaderMap) -> Result<(Principal, bool), Rejection> {
    let raw = match Authenticator::bearer(headers) {
        Ok(raw) => raw,
        Err(AuthFailure::Missing) => return Err(Rejection::MissingCredentials),
        Err(AuthFailure::Duplicate) => {
            return Err(Rejection::BadRequest("more than one `Authorization` header was sent".into()));
        }
        Err(AuthFailure::Invalid(err)) => return Err(Rejection::from_auth(err)),
    };
    if is_plugin_token(raw) {
        let caller = shared.plugin_tokens.verify(raw, &shared.authenticator).await.map_err(Rejection::from_auth)?;
        return match caller.on_behalf_of {
            Some(user) => Ok((user, false)),
            None => Err(Rejection::Forbidden("This endpoint does not allow 'service' credentials".into())),
        };
    }
    let user = shared.authenticator.verify(raw).await.map_err(Rejection::from_auth)?;
    Ok((user, true))
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}
