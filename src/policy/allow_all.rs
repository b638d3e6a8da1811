//! The allow-all policy: every request is allowed.
//!
//! The counterpart of Backstage's `@backstage/plugin-permission-backend-module-allow-all-policy`,
//! for development setups or gateways that only need authentication.

use async_trait::async_trait;

use super::{PermissionPolicy, PolicyDecision, PolicyQuery};
use crate::identity::Principal;

/// A policy that answers [`PolicyDecision::Allow`] to every query, with or without a user.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAllPolicy;

#[async_trait]
impl PermissionPolicy for AllowAllPolicy {
    async fn handle(&self, _query: PolicyQuery<'_>, _user: Option<&Principal>) -> PolicyDecision {
        PolicyDecision::Allow
    }

    async fn handle_batch(&self, queries: &[PolicyQuery<'_>], _user: Option<&Principal>) -> Vec<PolicyDecision> {
        vec![PolicyDecision::Allow; queries.len()]
    }
}
