//! [`YamlPolicy`]: super users and roles from a YAML file, decided by index lookups.
//!
//! Precedence, for a principal that is not a super user, over the roles that apply to it:
//! any matching deny → DENY; else any matching unconditional allow → ALLOW; else the
//! matching conditional allows → CONDITIONAL (several are joined with `anyOf`, in file
//! order); else DENY. Super users are allowed everything.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use async_trait::async_trait;

use super::error::Problems;
use super::index::{Entry, Index, RoleId};
use super::{
    ConditionalDecision, Criteria, Permission, PermissionPolicy, PolicyDecision, PolicyFileError, PolicyQuery,
};
use super::{compile, file, plugin_id_for_resource_type};
use crate::identity::Principal;

/// A policy loaded from a YAML file of `super_users` and `roles`, indexed for lookup.
pub struct YamlPolicy {
    index: Index,
    summary: PolicySummary,
    /// Resource type → plugin id, consulted before [`plugin_id_for_resource_type`].
    plugin_ids: HashMap<Box<str>, Box<str>>,
}

/// What a loaded policy holds, for a startup log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySummary {
    /// Number of roles.
    pub roles: usize,
    /// Number of distinct super users.
    pub super_users: usize,
    /// Number of allow entries over all roles.
    pub allow_entries: usize,
    /// Number of deny entries over all roles.
    pub deny_entries: usize,
}

impl fmt::Display for PolicySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "roles={} super_users={} allow_entries={} deny_entries={}",
            self.roles, self.super_users, self.allow_entries, self.deny_entries
        )
    }
}

impl fmt::Debug for YamlPolicy {
    // The index can be huge; the summary says what matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YamlPolicy")
            .field("summary", &self.summary)
            .field("plugin_ids", &self.plugin_ids)
            .finish_non_exhaustive()
    }
}

impl YamlPolicy {
    /// Parses and compiles a policy; `file` only names the source in errors.
    ///
    /// Every rule problem in the file is reported at once, each with its key path.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, PolicyFileError> {
        let raw = file::parse(text).map_err(|message| PolicyFileError::Syntax { file: file.to_owned(), message })?;
        let mut problems = Problems::default();
        let index = compile::compile(raw, &mut problems);
        let index = problems.into_result(file, index)?;
        let summary = PolicySummary {
            roles: index.roles.len(),
            super_users: index.super_users.len(),
            allow_entries: index.roles.iter().map(|role| role.allow.len()).sum(),
            deny_entries: index.roles.iter().map(|role| role.deny.len()).sum(),
        };
        Ok(Self { index, summary, plugin_ids: HashMap::new() })
    }

    /// Reads and compiles the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| PolicyFileError::Read { file: path.to_owned(), error })?;
        Self::from_yaml(&text, path)
    }

    /// Overrides the plugin id of CONDITIONAL decisions per resource type
    /// (resource type → plugin id); other types keep [`plugin_id_for_resource_type`].
    pub fn with_plugin_ids(mut self, plugin_ids: HashMap<String, String>) -> Self {
        self.plugin_ids = plugin_ids.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str())).collect();
        self
    }

    /// The plugin that owns `resource_type`, overrides first.
    pub fn plugin_id<'a>(&'a self, resource_type: &'a str) -> &'a str {
        match self.plugin_ids.get(resource_type) {
            Some(plugin_id) => plugin_id,
            None => plugin_id_for_resource_type(resource_type),
        }
    }

    /// The index, for tests that check what a decision walks.
    #[cfg(test)]
    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    /// Counts of what the policy holds.
    pub fn summary(&self) -> PolicySummary {
        self.summary
    }

    /// Decides `permission` for `principal`: pure, synchronous, infallible, deny by default.
    ///
    /// Costs lookups for the principal's refs and the roles they are in, never a scan of
    /// every role.
    pub fn decide(&self, permission: &Permission, principal: &Principal) -> PolicyDecision {
        let refs = &principal.ownership_refs[..];
        if self.index.is_super_user(refs) {
            return PolicyDecision::Allow;
        }
        let mut allowed = false;
        // Allocated only when a conditional entry matches; becomes the result.
        let mut conditional: Vec<(RoleId, &Entry)> = Vec::new();
        for (role_id, role) in self.index.roles_of(refs) {
            if role.deny.matching(permission).next().is_some() {
                return PolicyDecision::Deny;
            }
            if allowed {
                continue; // Still looking for a deny in the other roles.
            }
            for entry in role.allow.matching(permission) {
                if entry.conditions.is_none() {
                    allowed = true;
                    break;
                }
                conditional.push((role_id, entry));
            }
        }
        if allowed {
            return PolicyDecision::Allow;
        }
        self.conditional(permission, principal, conditional)
    }

    /// CONDITIONAL with the matched entries' criteria (joined by `anyOf`), or DENY if none.
    fn conditional(
        &self,
        permission: &Permission,
        principal: &Principal,
        mut entries: Vec<(RoleId, &Entry)>,
    ) -> PolicyDecision {
        // INVARIANT: conditional entries have a resource type and only match permissions
        // of that type; fail closed if that ever breaks.
        let Some(resource_type) = permission.resource_type.as_deref() else {
            return PolicyDecision::Deny;
        };
        // A role reached through several refs contributes once; order is file order.
        entries.sort_unstable_by_key(|(role, entry)| (*role, entry.order));
        entries.dedup_by_key(|(role, entry)| (*role, entry.order));
        let mut criteria: Vec<Criteria> = entries
            .iter()
            .filter_map(|(_, entry)| entry.conditions.as_ref())
            .map(|template| template.render(principal))
            .collect();
        let conditions = match criteria.len() {
            0 => return PolicyDecision::Deny,
            1 => criteria.swap_remove(0),
            _ => Criteria::AnyOf { any_of: criteria },
        };
        PolicyDecision::Conditional(ConditionalDecision {
            plugin_id: self.plugin_id(resource_type).to_owned(),
            resource_type: resource_type.to_owned(),
            conditions,
        })
    }
}

#[async_trait]
impl PermissionPolicy for YamlPolicy {
    /// The YAML policy only knows users: a query without one is denied.
    async fn handle(&self, query: PolicyQuery<'_>, user: Option<&Principal>) -> PolicyDecision {
        match user {
            Some(principal) => self.decide(query.permission, principal),
            None => PolicyDecision::Deny,
        }
    }
}
