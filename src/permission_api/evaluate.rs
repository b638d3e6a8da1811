//! Evaluating a validated `/authorize` batch with the embedded policy (Backstage's
//! `handleRequest`): every item asked concurrently, answers in request order with ids echoed.

use std::collections::HashMap;

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::json;

use super::request::{Item, ResourceRef};
use crate::identity::Principal;
use crate::plugins::{Applied, ApplyItem, PluginError, Plugins, Verdict};
use crate::policy::{Criteria, PermissionPolicy, PolicyDecision, PolicyQuery};

/// One answer of the batch, serialized as Backstage's response item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// `{"id", "result": "ALLOW" | "DENY"}`
    Decided {
        /// The item's id.
        id: String,
        /// The decision.
        result: Verdict,
    },
    /// `{"id", "result": ["ALLOW", "DENY", …]}` for an array `resourceRef`.
    DecidedEach {
        /// The item's id.
        id: String,
        /// One decision per ref.
        result: Vec<Verdict>,
    },
    /// `{"id", "result": "CONDITIONAL", "pluginId", "resourceType", "conditions"}`
    Conditional {
        /// The item's id.
        id: String,
        /// Always `CONDITIONAL`.
        result: &'static str,
        /// The plugin that applies the conditions.
        #[serde(rename = "pluginId")]
        plugin_id: String,
        /// The resource type.
        #[serde(rename = "resourceType")]
        resource_type: String,
        /// The criteria.
        conditions: Criteria,
    },
}

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
) -> Result<Vec<Answer>, EvaluateError> {
    if direct && items.iter().any(|item| item.permission.is_resource() && item.resource_ref.is_none()) {
        return Err(EvaluateError::Input(DIRECT_WITHOUT_REF.into()));
    }
    let queries: Vec<PolicyQuery<'_>> =
        items.iter().map(|item| PolicyQuery { permission: &item.permission, resource_ref: None }).collect();
    let decisions = policy.handle_batch(&queries, Some(user)).await;
    if decisions.len() != items.len() {
        return Err(EvaluateError::Internal(format!(
            "the policy answered {} decisions for {} items",
            decisions.len(),
            items.len()
        )));
    }
    let mut answers = Vec::with_capacity(items.len());
    // Items waiting for their plugin: plugin id → (answer index, apply item).
    let mut pending: HashMap<String, Vec<(usize, ApplyItem)>> = HashMap::new();
    for (index, (item, decision)) in items.iter().zip(decisions).enumerate() {
        match answer(item, decision)? {
            Pending::Ready(answer) => answers.push(answer),
            Pending::Apply(plugin, apply) => {
                // Replaced below by the plugin's answer.
                answers.push(Answer::Decided { id: String::new(), result: Verdict::Deny });
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
            answers[index] = match result {
                Applied::One(verdict) => Answer::Decided { id: item.id, result: verdict },
                Applied::Many(verdicts) => Answer::DecidedEach { id: item.id, result: verdicts },
            };
        }
    }
    Ok(answers)
}

enum Pending {
    Ready(Answer),
    Apply(String, ApplyItem),
}

fn answer(item: &Item, decision: PolicyDecision) -> Result<Pending, EvaluateError> {
    match decision {
        PolicyDecision::Allow => Ok(Pending::Ready(Answer::Decided { id: item.id.clone(), result: Verdict::Allow })),
        PolicyDecision::Deny => Ok(Pending::Ready(Answer::Decided { id: item.id.clone(), result: Verdict::Deny })),
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
                    return Ok(Pending::Ready(Answer::Conditional {
                        id: item.id.clone(),
                        result: "CONDITIONAL",
                        plugin_id: conditional.plugin_id,
                        resource_type: conditional.resource_type,
                        conditions: conditional.conditions,
                    }));
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
            Ok(Pending::Apply(conditional.plugin_id, apply))
        }
    }
}
