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
}

/// Parses the file; the error is the parser's message (key path, line and column).
pub(super) fn parse(text: &str) -> Result<RawPolicy, String> {
    serde_yaml::from_str(text).map_err(|error| error.to_string())
}
