//! Evaluating a validated `/authorize` batch with the embedded policy (Backstage's
//! `handleRequest`): every item asked concurrently, answers in request order with ids echoed.

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::request::{Item, ResourceRef};
use crate::identity::Principal;
use crate::policy::{PermissionPolicy, PolicyDecision, PolicyQuery};

/// Why a batch could not be answered; each maps to the status Backstage gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// 400 `InputError`.
    #[error("{0}")]
    Input(String),
    /// 500 `Error`: the policy answered something Backstage refuses, or conditions could not
    /// be applied.
    #[error("{0}")]
    Internal(String),
}

/// Backstage's message for a direct user asking about a resource permission without a ref.
pub const DIRECT_WITHOUT_REF: &str =
    "Resource permissions require a resourceRef to be set. Direct user requests without a resourceRef are not allowed.";

/// Answers every item. `direct` is true for a user calling with their own token (not a plugin
/// acting for them): such callers must name a resource for resource permissions.
pub async fn evaluate(
    policy: &dyn PermissionPolicy,
    user: &Principal,
    direct: bool,
    items: &[Item],
) -> Result<Vec<Value>, EvaluateError> {
    if direct && items.iter().any(|item| item.permission.is_resource() && item.resource_ref.is_none()) {
        return Err(EvaluateError::Input(DIRECT_WITHOUT_REF.into()));
    }
    let decisions = join_all(
        items
            .iter()
            .map(|item| policy.handle(PolicyQuery { permission: &item.permission, resource_ref: None }, Some(user))),
    )
    .await;
    items.iter().zip(decisions).map(|(item, decision)| answer(item, decision)).collect()
}

fn answer(item: &Item, decision: PolicyDecision) -> Result<Value, EvaluateError> {
    match decision {
        PolicyDecision::Allow => Ok(json!({"id": item.id, "result": "ALLOW"})),
        PolicyDecision::Deny => Ok(json!({"id": item.id, "result": "DENY"})),
        PolicyDecision::Conditional(conditional) => {
            let Some(resource_type) = item.permission.resource_type.as_deref() else {
                return Err(EvaluateError::Internal(format!(
                    "Conditional decision returned from permission policy for non-resource permission {}",
                    item.permission.name
                )));
            };
            if conditional.resource_type != resource_type {
                return Err(EvaluateError::Internal(format!(
                    "Invalid resource conditions returned from permission policy for permission {}",
                    item.permission.name
                )));
            }
            match &item.resource_ref {
                None => Ok(json!({
                    "id": item.id,
                    "result": "CONDITIONAL",
                    "pluginId": conditional.plugin_id,
                    "resourceType": conditional.resource_type,
                    "conditions": conditional.conditions,
                })),
                // Conditions on a named resource are applied by the plugin that owns it; until
                // stagedoor can call that plugin, refuse rather than guess.
                Some(ResourceRef::One(_) | ResourceRef::Many(_)) => Err(EvaluateError::Internal(format!(
                    "cannot apply conditions for `{}`: no plugin integration for `{}` is configured",
                    item.permission.name, conditional.plugin_id
                ))),
            }
        }
    }
}
