//! Evaluating a validated `/authorize` batch with the embedded policy (Backstage's
//! `handleRequest`): every item asked concurrently, answers in request order with ids echoed.

use std::collections::HashMap;

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::request::{Item, ResourceRef};
use crate::identity::Principal;
use crate::plugins::{Applied, ApplyItem, PluginError, Plugins};
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
    /// The owning plugin answered apply-conditions with this error status; Backstage passes it on.
    #[error("{1}")]
    Upstream(u16, String),
}

/// Backstage's message for a direct user asking about a resource permission without a ref.
pub const DIRECT_WITHOUT_REF: &str =
    "Resource permissions require a resourceRef to be set. Direct user requests without a resourceRef are not allowed.";

/// Answers every item. `direct` is true for a user calling with their own token (not a plugin
/// acting for them): such callers must name a resource for resource permissions. CONDITIONAL
/// decisions on named resources are resolved by the owning plugin: one apply-conditions request
/// per plugin for the whole batch.
pub async fn evaluate(
    policy: &dyn PermissionPolicy,
    plugins: &Plugins,
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
    let mut answers = Vec::with_capacity(items.len());
    // Items waiting for their plugin: plugin id → (answer index, apply item).
    let mut pending: HashMap<String, Vec<(usize, ApplyItem)>> = HashMap::new();
    for (index, (item, decision)) in items.iter().zip(decisions).enumerate() {
        match answer(item, decision)? {
            Answer::Ready(value) => answers.push(value),
            Answer::Apply(plugin, apply) => {
                answers.push(Value::Null);
                pending.entry(plugin).or_default().push((index, apply));
            }
        }
    }
    let calls = pending.into_iter().map(|(plugin, entries)| async move {
        let (indexes, apply): (Vec<usize>, Vec<ApplyItem>) = entries.into_iter().unzip();
        let results = plugins.apply_conditions(&plugin, &apply).await;
        (indexes, apply, results)
    });
    for (indexes, apply, results) in join_all(calls).await {
        let results = results.map_err(|err| match err {
            PluginError::Status { status, .. } => EvaluateError::Upstream(status, err.to_string()),
            other => EvaluateError::Internal(other.to_string()),
        })?;
        for ((index, item), result) in indexes.into_iter().zip(apply).zip(results) {
            let result = match result {
                Applied::One(verdict) => json!(verdict),
                Applied::Many(verdicts) => json!(verdicts),
            };
            answers[index] = json!({"id": item.id, "result": result});
        }
    }
    Ok(answers)
}

enum Answer {
    Ready(Value),
    Apply(String, ApplyItem),
}

fn answer(item: &Item, decision: PolicyDecision) -> Result<Answer, EvaluateError> {
    match decision {
        PolicyDecision::Allow => Ok(Answer::Ready(json!({"id": item.id, "result": "ALLOW"}))),
        PolicyDecision::Deny => Ok(Answer::Ready(json!({"id": item.id, "result": "DENY"}))),
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
            let resource_ref = match &item.resource_ref {
                None => {
                    return Ok(Answer::Ready(json!({
                        "id": item.id,
                        "result": "CONDITIONAL",
                        "pluginId": conditional.plugin_id,
                        "resourceType": conditional.resource_type,
                        "conditions": conditional.conditions,
                    })));
                }
                Some(ResourceRef::One(one)) => json!(one),
                Some(ResourceRef::Many(many)) => json!(many),
            };
            let apply = ApplyItem {
                id: item.id.clone(),
                resource_ref,
                resource_type: conditional.resource_type,
                conditions: conditional.conditions,
            };
            Ok(Answer::Apply(conditional.plugin_id, apply))
        }
    }
}
