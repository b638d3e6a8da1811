//! The policy file as written: a private serde mirror of the YAML that refuses unknown keys.
//!
//! Fields that the compiler checks itself (names, members, actions) are kept loose here
//! (`Option`, `String`) so that one load reports every problem with its key path, instead
//! of stopping at the first one serde meets. This is the only place that names
//! `serde_yaml` (STYLE G20), so the parser can be swapped without touching the rest.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    /// User or group refs that are allowed everything.
    #[serde(default)]
    pub(super) super_users: Vec<String>,
    /// The roles, in file order.
    #[serde(default)]
    pub(super) roles: Vec<RawRole>,
    /// A community-RBAC Casbin CSV (`p` and `g` lines), relative to this file's folder.
    pub(super) rbac_csv_file: Option<String>,
    /// A community-RBAC conditional policies file (multi-document YAML), relative to this
    /// file's folder.
    pub(super) conditional_policies_file: Option<String>,
    /// `conditional` (default, as the RBAC plugin) or `basic`: which of the RBAC files wins
    /// when both a conditional policy and a `p` line match a resource permission.
    pub(super) policy_decision_precedence: Option<String>,
}

/// One `roles[]` item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    /// Required, unique.
    pub(super) name: Option<String>,
    /// Required, non-empty: user or group refs, or `*`.
    pub(super) members: Option<Vec<String>>,
    /// What the role allows.
    #[serde(default)]
    pub(super) allow: Vec<RawEntry>,
    /// What the role denies.
    #[serde(default)]
    pub(super) deny: Vec<RawEntry>,
}

/// One `allow[]` or `deny[]` item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    /// A permission name, or `*` for every permission.
    pub(super) permission: Option<String>,
    /// A resource type, e.g. `catalog-entity`.
    pub(super) resource_type: Option<String>,
    /// Action names: `create`, `read`, `update`, `delete`.
    pub(super) actions: Option<Vec<String>>,
    /// Backstage criteria; allow entries with a `resource_type` only.
    pub(super) conditions: Option<RawCriteria>,
}

/// A criteria node. Backstage allows exactly one shape per node; all are optional here
/// so the compiler can say which ones were mixed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCriteria {
    /// `allOf: [...]`
    #[serde(rename = "allOf")]
    pub(super) all_of: Option<Vec<RawCriteria>>,
    /// `anyOf: [...]`
    #[serde(rename = "anyOf")]
    pub(super) any_of: Option<Vec<RawCriteria>>,
    /// `not: {...}`
    pub(super) not: Option<Box<RawCriteria>>,
    /// Leaf rule name, e.g. `IS_ENTITY_OWNER`.
    pub(super) rule: Option<String>,
    /// Leaf parameters.
    pub(super) params: Option<Map<String, Value>>,
    /// The leaf's resource type, as Backstage writes it; must be the entry's own if given.
    #[serde(rename = "resourceType")]
    pub(super) resource_type: Option<String>,
}

/// One document of a conditional policies file, as the community RBAC plugin writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConditionalPolicy {
    /// Must be `CONDITIONAL`.
    pub(super) result: Option<String>,
    /// The role the policy applies to, e.g. `role:default/team-a`.
    #[serde(rename = "roleEntityRef")]
    pub(super) role_entity_ref: Option<String>,
    /// The plugin that applies the conditions, e.g. `catalog`.
    #[serde(rename = "pluginId")]
    pub(super) plugin_id: Option<String>,
    /// The resource type, e.g. `catalog-entity`.
    #[serde(rename = "resourceType")]
    pub(super) resource_type: Option<String>,
    /// Action names, or `{name, action}` maps; checked by the compiler.
    #[serde(rename = "permissionMapping")]
    pub(super) permission_mapping: Option<Vec<Value>>,
    /// The criteria.
    pub(super) conditions: Option<RawCriteria>,
}

/// Parses every document of a conditional policies file, in order. An empty document is
/// `None`. An error is `(document number from 1, the parser's message)`.
pub(super) fn parse_conditional_documents(text: &str) -> Result<Vec<Option<RawConditionalPolicy>>, (usize, String)> {
    serde_yaml::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, document)| {
            Option::<RawConditionalPolicy>::deserialize(document).map_err(|error| (i + 1, error.to_string()))
        })
        .collect()
}

/// Parses the file; the error is the parser's message (key path, line and column).
pub(super) fn parse(text: &str) -> Result<RawPolicy, String> {
    serde_yaml::from_str(text).map_err(|error| error.to_string())
}
