//! Tower adapter for stage 3: [`AuthorizeLayer`] / [`Authorize`], and the [`Permit`] it issues.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, Either};
use http::request::Parts;
use http::{Request, Response};
use tower::{Layer, Service};

use super::{PermissionPolicy, PolicyDecision, PolicyQuery};
use crate::body::Body;
use crate::errors::{Rejection, reject_parts};
use crate::identity::Principal;
use crate::plugins::{Applied, ApplyItem, Plugins, Verdict};
use crate::routes::{Access, OnConditional, RouteMatch};

/// Proof that a request passed authorization; only this module can make one, and the proxy
/// refuses to forward without it.
#[derive(Debug, Clone)]
pub struct Permit {
    _private: (),
}

/// Asks the policy about the matched rule's permission.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    policy: Arc<dyn PermissionPolicy>,
    plugins: Arc<Plugins>,
    enabled: bool,
}

impl AuthorizeLayer {
    /// A layer over `policy`; with `enabled == false` every authenticated request is allowed
    /// without asking the policy (Backstage's `permission.enabled: false`).
    pub fn new(policy: Arc<dyn PermissionPolicy>, plugins: Arc<Plugins>, enabled: bool) -> Self {
        Self { policy, plugins, enabled }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authorize { inner, policy: self.policy.clone(), plugins: self.plugins.clone(), enabled: self.enabled }
    }
}

/// Service of [`AuthorizeLayer`].
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Arc<dyn PermissionPolicy>,
    plugins: Arc<Plugins>,
    enabled: bool,
}

impl<S, B> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    /// Requests decided without the policy (public and authenticated-only rules, permissions
    /// switched off) go straight to the inner service's own future; the rest are boxed.
    type Future = Either<BoxFuture<'static, Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        match settle_without_policy(self.enabled, &parts) {
            Some(Ok(permit)) => {
                parts.extensions.insert(permit);
                return Either::Right(self.inner.call(Request::from_parts(parts, body)));
            }
            Some(Err(rejection)) => {
                let response = reject_parts(&parts, rejection);
                return Either::Left(Box::pin(async move { Ok(response) }));
            }
            None => {}
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        let plugins = self.plugins.clone();
        let enabled = self.enabled;
        Either::Left(Box::pin(async move {
            match decide(&*policy, &plugins, enabled, &parts).await {
                Ok(permit) => {
                    parts.extensions.insert(permit);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(rejection) => Ok(reject_parts(&parts, rejection)),
            }
        }))
    }
}

/// The decision when the policy need not be asked: `Some` for public and authenticated-only
/// rules and for `permission.enabled: false`, `None` when the policy decides.
fn settle_without_policy(enabled: bool, request: &Parts) -> Option<Result<Permit, Rejection>> {
    // INVARIANT: MatchRoute and Authenticate ran before; a missing extension fails closed.
    let Some(found) = request.extensions.get::<RouteMatch>() else { return Some(Err(Rejection::Internal)) };
    let principal = request.extensions.get::<Principal>();
    match &found.rule.access {
        Access::Public => Some(Ok(Permit { _private: () })),
        Access::Authenticated | Access::Permission(_) if principal.is_none() => Some(Err(Rejection::Internal)),
        Access::Authenticated => Some(Ok(Permit { _private: () })),
        Access::Permission(_) if !enabled => Some(Ok(Permit { _private: () })),
        Access::Permission(_) => None,
    }
}

async fn decide(
    policy: &dyn PermissionPolicy,
    plugins: &Plugins,
    enabled: bool,
    request: &Parts,
) -> Result<Permit, Rejection> {
    let permit = Permit { _private: () };
    // INVARIANT: MatchRoute and Authenticate ran before; a missing extension fails closed.
    let found = request.extensions.get::<RouteMatch>().ok_or(Rejection::Internal)?;
    let permission = match &found.rule.access {
        Access::Public => return Ok(permit),
        Access::Authenticated => {
            request.extensions.get::<Principal>().ok_or(Rejection::Internal)?;
            return Ok(permit);
        }
        Access::Permission(permission) => permission,
    };
    let principal = request.extensions.get::<Principal>().ok_or(Rejection::Internal)?;
    if !enabled {
        return Ok(permit);
    }
    let query = PolicyQuery { permission, resource_ref: found.resource_ref.as_deref() };
    let decision = policy.handle(query, Some(principal)).await;
    let on = match found.resource_ref.as_deref() {
        Some(resource) => format!("`{permission}` on `{resource}`"),
        None => format!("`{permission}`"),
    };
    let span = tracing::Span::current();
    match decision {
        PolicyDecision::Allow => {
            span.record("decision", "ALLOW");
            tracing::debug!(permission = &*permission.name, "allowed");
            Ok(permit)
        }
        PolicyDecision::Deny => {
            span.record("decision", "DENY");
            Err(Rejection::Forbidden(format!("permission {on} is denied for `{}`", principal.user_entity_ref)))
        }
        PolicyDecision::Conditional(conditional) => {
            span.record("decision", "CONDITIONAL");
            // A named resource whose owning plugin is configured: let the plugin apply the
            // conditions, exactly as Backstage's permission backend would.
            let owner = if plugins.contains(&conditional.plugin_id) {
                Some(conditional.plugin_id.clone())
            } else {
                found.rule.plugin.clone().filter(|plugin| plugins.contains(plugin))
            };
            if let (Some(resource), Some(plugin)) = (found.resource_ref.as_deref(), owner) {
                let item = ApplyItem {
                    id: "0".into(),
                    resource_ref: serde_json::Value::from(resource),
                    resource_type: conditional.resource_type,
                    conditions: conditional.conditions,
                };
                return match plugins.apply_conditions(&plugin, std::slice::from_ref(&item)).await {
                    Ok(results) if results.first() == Some(&Applied::One(Verdict::Allow)) => {
                        span.record("decision", "CONDITIONAL→ALLOW");
                        Ok(permit)
                    }
                    Ok(_) => {
                        span.record("decision", "CONDITIONAL→DENY");
                        Err(Rejection::Forbidden(format!(
                            "permission {on} is denied for `{}` (conditions applied by plugin `{plugin}`)",
                            principal.user_entity_ref
                        )))
                    }
                    Err(err) => Err(Rejection::DependencyUnavailable(format!(
                        "permission {on} is conditional and its conditions could not be applied: {err}"
                    ))),
                };
            }
            match found.rule.on_conditional {
                OnConditional::Forward => Ok(permit),
                OnConditional::Deny => Err(Rejection::Forbidden(format!(
                    "permission {on} is only conditionally allowed for `{}`, and this route does not forward conditional decisions",
                    principal.user_entity_ref
                ))),
            }
        }
    }
}
