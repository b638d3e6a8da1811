//! What a policy answers: ALLOW, DENY or CONDITIONAL with Backstage permission criteria.

use serde::Serialize;
use serde_json::{Map, Value};

/// A policy's answer, as Backstage's `PolicyDecision`.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyDecision {
    /// `{"result":"ALLOW"}`
    Allow,
    /// `{"result":"DENY"}`
    Deny,
    /// `{"result":"CONDITIONAL", pluginId, resourceType, conditions}`
    Conditional(ConditionalDecision),
}

/// A conditional decision: the owning plugin applies `conditions` to the resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalDecision {
    /// The plugin that owns the resource type, e.g. `catalog`.
    pub plugin_id: String,
    /// The resource type the conditions apply to, e.g. `catalog-entity`.
    pub resource_type: String,
    /// The criteria tree.
    pub conditions: Criteria,
}

/// Backstage `PermissionCriteria`: exactly one shape per node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Criteria {
    /// `{"allOf": [...]}`
    AllOf {
        /// Every one must hold.
        #[serde(rename = "allOf")]
        all_of: Vec<Criteria>,
    },
    /// `{"anyOf": [...]}`
    AnyOf {
        /// At least one must hold.
        #[serde(rename = "anyOf")]
        any_of: Vec<Criteria>,
    },
    /// `{"not": ...}`
    Not {
        /// Must not hold.
        not: Box<Criteria>,
    },
    /// `{"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {...}}`
    Condition(Condition),
}

/// A leaf of a criteria tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Rule name, e.g. `IS_ENTITY_OWNER`.
    pub rule: String,
    /// Resource type the rule belongs to.
    pub resource_type: String,
    /// Rule parameters (JSON primitives or arrays of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
}
