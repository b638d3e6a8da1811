//! Permission rules evaluated in the gateway itself, for resource types whose owning plugin is
//! not configured: the Rust extension point mirroring Backstage's `PermissionRule`
//! (`name`, `resourceType`, `paramsSchema`, `apply(resource, params)`).
//!
//! The gateway only sees a resource's ref and type, never the resource, so a local rule can
//! only decide from those; the one shipped, [`IsEntityKind`], reads the kind out of a catalog
//! entity ref. Rules that need the resource (`IS_ENTITY_OWNER`, ...) belong to the plugin that
//! owns it: configure it under `plugins:`. A criteria tree naming a rule that is not
//! registered fails closed.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::policy::{Condition, Criteria};

/// What a local rule sees of a resource.
#[derive(Debug, Clone, Copy)]
pub struct LocalResource<'a> {
    /// The resource ref, e.g. `component:default/payments`.
    pub resource_ref: &'a str,
    /// The resource type, e.g. `catalog-entity`.
    pub resource_type: &'a str,
}

/// Why a rule could not be applied; the request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No rule of that name is registered for the resource type.
    #[error("no local rule `{rule}` for resource type `{resource_type}`")]
    Unknown {
        /// Rule name.
        rule: String,
        /// Resource type.
        resource_type: String,
    },
    /// The params do not fit the rule.
    #[error("rule `{rule}`: invalid params: {reason}")]
    InvalidParams {
        /// Rule name.
        rule: String,
        /// What is wrong.
        reason: String,
    },
}

/// A permission rule evaluated in process, as Backstage's `PermissionRule`.
pub trait PermissionRule: Send + Sync + std::fmt::Debug {
    /// Rule name, e.g. `IS_ENTITY_KIND`.
    fn name(&self) -> &str;
    /// The resource type it applies to, e.g. `catalog-entity`.
    fn resource_type(&self) -> &str;
    /// JSON schema of its params (Backstage's `paramsSchema`), for documentation and tooling.
    fn params_schema(&self) -> Value;
    /// Whether `resource` satisfies the rule with `params`; `Err` when the params are unusable.
    fn apply(&self, resource: &LocalResource<'_>, params: &Map<String, Value>) -> Result<bool, RuleError>;
}

/// Rules by resource type and name.
#[derive(Debug, Clone, Default)]
pub struct LocalRules {
    rules: HashMap<(String, String), Arc<dyn PermissionRule>>,
}

impl LocalRules {
    /// Registers `rules` (a later rule of the same type and name replaces an earlier one).
    pub fn new(rules: impl IntoIterator<Item = Arc<dyn PermissionRule>>) -> Self {
        let rules =
            rules.into_iter().map(|rule| ((rule.resource_type().to_owned(), rule.name().to_owned()), rule)).collect();
        Self { rules }
    }

    /// Evaluates `criteria` for `resource`.
    pub fn evaluate(&self, criteria: &Criteria, resource: &LocalResource<'_>) -> Result<bool, RuleError> {
        match criteria {
            Criteria::AllOf { all_of } => {
                for child in all_of {
                    if !self.evaluate(child, resource)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Criteria::AnyOf { any_of } => {
                for child in any_of {
                    if self.evaluate(child, resource)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Criteria::Not { not } => Ok(!self.evaluate(not, resource)?),
            Criteria::Condition(Condition { rule, resource_type, params }) => {
                let unknown = || RuleError::Unknown { rule: rule.clone(), resource_type: resource_type.clone() };
                let found = self.rules.get(&(resource_type.clone(), rule.clone())).ok_or_else(unknown)?;
                let empty = Map::new();
                found.apply(resource, params.as_ref().unwrap_or(&empty))
            }
        }
    }
}

/// `IS_ENTITY_KIND {kinds: string[]}` for `catalog-entity`, decided from the entity ref's kind
/// (case-insensitive, as catalog kinds are).
#[derive(Debug, Clone, Copy, Default)]
pub struct IsEntityKind;

impl PermissionRule for IsEntityKind {
    fn name(&self) -> &str {
        "IS_ENTITY_KIND"
    }

    fn resource_type(&self) -> &str {
        "catalog-entity"
    }

    fn params_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": { "kinds": { "type": "array", "items": { "type": "string" } } },
            "required": ["kinds"],
            "additionalProperties": false
        })
    }

    fn apply(&self, resource: &LocalResource<'_>, params: &Map<String, Value>) -> Result<bool, RuleError> {
        let invalid = |reason: &str| RuleError::InvalidParams { rule: self.name().into(), reason: reason.into() };
        let kinds =
            params.get("kinds").and_then(Value::as_array).ok_or_else(|| invalid("expected `kinds`: string[]"))?;
        let Some((kind, _)) = resource.resource_ref.split_once(':') else { return Ok(false) };
        let mut matched = false;
        for wanted in kinds {
            let wanted = wanted.as_str().ok_or_else(|| invalid("expected `kinds`: string[]"))?;
            matched |= wanted.eq_ignore_ascii_case(kind);
        }
        Ok(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(rule: &str, params: Value) -> Criteria {
        Criteria::Condition(Condition {
            rule: rule.into(),
            resource_type: "catalog-entity".into(),
            params: params.as_object().cloned(),
        })
    }

    #[test]
    fn criteria_trees_are_evaluated_with_registered_rules() {
        let rules = LocalRules::new([Arc::new(IsEntityKind) as Arc<dyn PermissionRule>]);
        let template = LocalResource { resource_ref: "template:default/new-service", resource_type: "catalog-entity" };
        let component = LocalResource { resource_ref: "component:default/payments", resource_type: "catalog-entity" };
        let is_template = leaf("IS_ENTITY_KIND", json!({"kinds": ["Template"]}));
        assert_eq!(rules.evaluate(&is_template, &template), Ok(true));
        assert_eq!(rules.evaluate(&is_template, &component), Ok(false));
        let not = Criteria::Not { not: Box::new(is_template.clone()) };
        assert_eq!(rules.evaluate(&not, &component), Ok(true));
        let either = Criteria::AnyOf {
            any_of: vec![is_template.clone(), leaf("IS_ENTITY_KIND", json!({"kinds": ["component"]}))],
        };
        assert_eq!(rules.evaluate(&either, &component), Ok(true));
        let both =
            Criteria::AllOf { all_of: vec![is_template, leaf("IS_ENTITY_KIND", json!({"kinds": ["component"]}))] };
        assert_eq!(rules.evaluate(&both, &component), Ok(false));
    }

    #[test]
    fn unknown_rules_and_bad_params_fail() {
        let rules = LocalRules::new([Arc::new(IsEntityKind) as Arc<dyn PermissionRule>]);
        let resource = LocalResource { resource_ref: "component:default/payments", resource_type: "catalog-entity" };
        assert_eq!(
            rules.evaluate(&leaf("IS_ENTITY_OWNER", json!({"claims": []})), &resource),
            Err(RuleError::Unknown { rule: "IS_ENTITY_OWNER".into(), resource_type: "catalog-entity".into() })
        );
        assert!(matches!(
            rules.evaluate(&leaf("IS_ENTITY_KIND", json!({"kinds": "Template"})), &resource),
            Err(RuleError::InvalidParams { .. })
        ));
    }
}
