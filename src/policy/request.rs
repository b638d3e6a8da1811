//! What a policy is asked, and the trait every policy implements.

use std::fmt::Debug;

use async_trait::async_trait;
use futures_util::future::join_all;

use super::{Permission, PolicyDecision};
use crate::identity::Principal;

/// Backstage's `PolicyQuery`: the permission being requested.
#[derive(Debug, Clone, Copy)]
pub struct PolicyQuery<'a> {
    /// The permission.
    pub permission: &'a Permission,
    /// The resource ref the gateway derived from the request path, if the rule builds one.
    /// Backstage policies never see it; stagedoor passes it for Rust integrators who want it.
    pub resource_ref: Option<&'a str>,
}

/// A permission policy, mirroring Backstage's `PermissionPolicy.handle(request, user)`.
///
/// `user` is `None` for callers that are not users. Implementations must be cheap to call
/// concurrently and should deny on any internal problem rather than fail.
#[async_trait]
pub trait PermissionPolicy: Send + Sync + Debug {
    /// Decides one permission request.
    async fn handle(&self, query: PolicyQuery<'_>, user: Option<&Principal>) -> PolicyDecision;

    /// Decides a batch for one user (an `/authorize` request), answers in order. By default
    /// every query goes to [`handle`](Self::handle), concurrently; a policy that decides in
    /// memory answers the whole batch in one call instead.
    async fn handle_batch(&self, queries: &[PolicyQuery<'_>], user: Option<&Principal>) -> Vec<PolicyDecision> {
        join_all(queries.iter().map(|query| self.handle(*query, user))).await
    }
}
