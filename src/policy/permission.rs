//! Backstage's permission model: a named permission with an optional action and resource type.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The `attributes.action` of a Backstage permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `create`
    Create,
    /// `read`
    Read,
    /// `update`
    Update,
    /// `delete`
    Delete,
}

impl Action {
    /// The wire name (`create`, `read`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// A permission as Backstage defines it: `basic` when it has no resource type,
/// `resource` when it has one. Two permissions are the same permission when their names are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    /// Permission name, e.g. `catalog.entity.read`.
    pub name: Arc<str>,
    /// Optional action attribute.
    pub action: Option<Action>,
    /// Resource type for resource permissions, e.g. `catalog-entity`.
    pub resource_type: Option<Arc<str>>,
}

impl Permission {
    /// A basic permission (no resource type).
    pub fn basic(name: &str, action: Option<Action>) -> Self {
        Self { name: name.into(), action, resource_type: None }
    }

    /// A resource permission.
    pub fn resource(name: &str, action: Option<Action>, resource_type: &str) -> Self {
        Self { name: name.into(), action, resource_type: Some(resource_type.into()) }
    }

    /// True for resource permissions.
    pub fn is_resource(&self) -> bool {
        self.resource_type.is_some()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
