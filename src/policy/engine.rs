//! [`YamlPolicy`]: super users and roles from a YAML file, decided by index lookups.
//!
//! Precedence, for a principal that is not a super user, over the roles that apply to it:
//! any matching deny → DENY; else any matching unconditional allow → ALLOW; else the
//! matching conditional allows → CONDITIONAL (several are joined with `anyOf`, in file
//! order); else DENY. Super users are allowed everything.
//!
//! The file may also name the community RBAC plugin's files (`rbac_csv_file`,
//! `conditional_policies_file`), decided with that plugin's rules (see [`rbac`]). The two
//! sources are combined deny-wins: a deny from either → DENY; else an allow from either →
//! ALLOW; else the conditions of both → CONDITIONAL; else DENY. A file with only the RBAC
//! keys (and `super_users`) decides exactly as the plugin does.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use async_trait::async_trait;

use super::error::Problems;
use super::index::{Entry, Index, RoleId};
use super::rbac::{self, ConditionalPolicy, Precedence, Rbac};
use super::{
    ConditionalDecision, Criteria, Permission, PermissionPolicy, PolicyDecision, PolicyFileError, PolicyQuery,
};
use super::{compile, file, plugin_id_for_resource_type};
use crate::identity::Principal;

/// A policy loaded from a YAML file of `super_users` and `roles`, indexed for lookup.
pub struct YamlPolicy {
    index: Index,
    /// The RBAC plugin's files, when the policy file names them.
    rbac: Option<Rbac>,
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
    /// Number of `p` lines in `rbac_csv_file`.
    pub rbac_rules: usize,
    /// Number of documents in `conditional_policies_file`.
    pub conditional_policies: usize,
}

impl fmt::Display for PolicySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "roles={} super_users={} allow_entries={} deny_entries={} rbac_rules={} conditional_policies={}",
            self.roles,
            self.super_users,
            self.allow_entries,
            self.deny_entries,
            self.rbac_rules,
            self.conditional_policies
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
        let mut raw =
            file::parse(text).map_err(|message| PolicyFileError::Syntax { file: file.to_owned(), message })?;
        let mut problems = Problems::default();
        let precedence = match raw.policy_decision_precedence.as_deref() {
            None | Some("conditional") => Precedence::Conditional,
            Some("basic") => Precedence::Basic,
            Some(other) => {
                problems
                    .push("policy_decision_precedence", format!("expected `conditional` or `basic`, got `{other}`"));
                Precedence::Conditional
            }
        };
        let (csv_file, conditional_file) = (raw.rbac_csv_file.take(), raw.conditional_policies_file.take());
        let index = compile::compile(raw, &mut problems);
        let index = problems.into_result(file, index)?;
        let rbac = if csv_file.is_some() || conditional_file.is_some() {
            Some(Rbac::load(file, csv_file.as_deref(), conditional_file.as_deref(), precedence)?)
        } else {
            None
        };
        let summary = PolicySummary {
            roles: index.roles.len(),
            super_users: index.super_users.len(),
            allow_entries: index.roles.iter().map(|role| role.allow.len()).sum(),
            deny_entries: index.roles.iter().map(|role| role.deny.len()).sum(),
            rbac_rules: rbac.as_ref().map_or(0, |rbac| rbac.rules),
            conditional_policies: rbac.as_ref().map_or(0, |rbac| rbac.conditional_policies),
        };
        Ok(Self { index, rbac, summary, plugin_ids: HashMap::new() })
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

    /// The RBAC files, for tests that check what they hold.
    #[cfg(test)]
    pub(super) fn rbac(&self) -> Option<&Rbac> {
        self.rbac.as_ref()
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
        let roles = self.roles_verdict(permission, refs);
        let rbac = match &self.rbac {
            Some(rbac) => rbac.decide(permission, refs),
            None => rbac::Verdict::NoMatch,
        };
        // Deny wins across the two sources, then allow, then their conditions together.
        match (roles, rbac) {
            (RolesVerdict::Deny, _) | (_, rbac::Verdict::Deny) => PolicyDecision::Deny,
            (RolesVerdict::Allow, _) | (_, rbac::Verdict::Allow) => PolicyDecision::Allow,
            (RolesVerdict::Conditional(entries), rbac) => {
                let rbac = match rbac {
                    rbac::Verdict::Conditional(policies) => policies,
                    _ => Vec::new(),
                };
                self.conditional(permission, principal, entries, &rbac)
            }
            (RolesVerdict::NoMatch, rbac::Verdict::Conditional(policies)) => {
                self.conditional(permission, principal, Vec::new(), &policies)
            }
            (RolesVerdict::NoMatch, rbac::Verdict::NoMatch) => PolicyDecision::Deny,
        }
    }

    /// What the `roles` of the file say.
    fn roles_verdict<'a>(&'a self, permission: &'a Permission, refs: &'a [String]) -> RolesVerdict<'a> {
        let mut allowed = false;
        // Allocated only when a conditional entry matches.
        let mut conditional: Vec<(RoleId, &Entry)> = Vec::new();
        for (role_id, role) in self.index.roles_of(refs) {
            if role.deny.matching(permission).next().is_some() {
                return RolesVerdict::Deny;
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
            RolesVerdict::Allow
        } else if conditional.is_empty() {
            RolesVerdict::NoMatch
        } else {
            RolesVerdict::Conditional(conditional)
        }
    }

    /// CONDITIONAL with the matched criteria, or DENY if none. The roles' entries alone
    /// give their one criteria or `anyOf` them, in file order; with RBAC conditional
    /// policies everything is joined by `anyOf` (as the RBAC plugin always does) and the
    /// plugin id is the RBAC policy's.
    fn conditional(
        &self,
        permission: &Permission,
        principal: &Principal,
        mut entries: Vec<(RoleId, &Entry)>,
        rbac: &[&ConditionalPolicy],
    ) -> PolicyDecision {
        // INVARIANT: conditional entries and policies have a resource type and only match
        // permissions of that type; fail closed if that ever breaks.
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
            .chain(rbac.iter().map(|policy| policy.render(principal)))
            .collect();
        let plugin_id = match rbac.last() {
            Some(policy) => &*policy.plugin_id,
            None => self.plugin_id(resource_type),
        };
        let conditions = match criteria.len() {
            0 => return PolicyDecision::Deny,
            1 if rbac.is_empty() => criteria.swap_remove(0),
            _ => Criteria::AnyOf { any_of: criteria },
        };
        PolicyDecision::Conditional(ConditionalDecision {
            plugin_id: plugin_id.to_owned(),
            resource_type: resource_type.to_owned(),
            conditions,
        })
    }
}

/// What the file's `roles` say about one request.
enum RolesVerdict<'a> {
    NoMatch,
    Allow,
    Deny,
    /// The matching conditional allow entries.
    Conditional(Vec<(RoleId, &'a Entry)>),
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

    /// The whole batch in one call: decisions are synchronous.
    async fn handle_batch(&self, queries: &[PolicyQuery<'_>], user: Option<&Principal>) -> Vec<PolicyDecision> {
        match user {
            Some(principal) => queries.iter().map(|query| self.decide(query.permission, principal)).collect(),
            None => vec![PolicyDecision::Deny; queries.len()],
        }
    }
}
