//! Policies written for Backstage's community RBAC plugin, run unchanged: the Casbin CSV
//! (`rbac_csv_file`) and the conditional policies file (`conditional_policies_file`).
//!
//! Loaded once into [`Rbac`]: subject ref → roles, and per role its `p` lines keyed by object
//! (a permission name or a resource type) and its conditional policies keyed by resource type.
//! A decision follows the plugin's `RBACPermissionPolicy.handle` (§7 of the reference):
//! - the roles are those bound by `g` lines to any of the principal's ownership refs (the
//!   user ref and its groups, as the token or userinfo give them);
//! - the action is `attributes.action`, or `use` for a permission without one;
//! - a basic permission is enforced against the `p` lines naming it;
//! - a resource permission is enforced against the `p` lines naming the permission if any of
//!   the roles has one for this action, else against those naming its resource type;
//! - conditional policies of the roles that cover (resource type, action, name) are returned
//!   as CONDITIONAL `{anyOf: [...]}` — before the `p` lines (`policy_decision_precedence:
//!   conditional`, the default) or only when no `p` line names the permission or its type
//!   (`basic`);
//! - the effect is Casbin's: some allow and no deny.
//!
//! Super users come from the policy file's `super_users`, checked before this module.

mod conditional;
mod csv;

use crate::hashing::FastMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::conditions::CriteriaTemplate;
use super::error::{PolicyFileError, Problems};
use super::{Action, Criteria, Permission};
use crate::identity::Principal;

/// Position of a role in [`Rbac::roles`].
type RoleId = usize;

/// The largest RBAC file read; a config error beyond it.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Which rule wins when a conditional policy and a `p` line both match a resource permission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Precedence {
    /// The conditional policy (the RBAC plugin's default).
    #[default]
    Conditional,
    /// The `p` lines, when any names the permission or its resource type.
    Basic,
}

/// The compiled RBAC files.
#[derive(Debug, Default)]
pub(super) struct Rbac {
    /// Member ref (`user:` or `group:`) → its roles, ascending, no duplicates.
    members: FastMap<Box<str>, Vec<RoleId>>,
    /// Roles by id.
    roles: Vec<RbacRole>,
    /// Role name → id.
    role_ids: FastMap<Box<str>, RoleId>,
    precedence: Precedence,
    /// Counts for the startup log.
    pub(super) rules: usize,
    /// Counts for the startup log.
    pub(super) conditional_policies: usize,
}

/// One role's `p` lines and conditional policies.
#[derive(Debug)]
struct RbacRole {
    /// Object (permission name or resource type) → effects per action.
    rules: FastMap<Box<str>, Effects>,
    /// Resource type → conditional policies, in file order, never two covering the same
    /// (action, permission name).
    conditional: FastMap<Box<str>, Vec<ConditionalPolicy>>,
}

/// What the RBAC files say about one request.
#[derive(Debug)]
pub(super) enum Verdict<'a> {
    /// No `p` line or conditional policy applies.
    NoMatch,
    /// A `p` line allows, none denies.
    Allow,
    /// A `p` line denies.
    Deny,
    /// Conditional policies apply (one per role, in role order).
    Conditional(Vec<&'a ConditionalPolicy>),
}

/// A conditional policy document.
#[derive(Debug)]
pub(super) struct ConditionalPolicy {
    /// The plugin that applies the conditions.
    pub(super) plugin_id: Box<str>,
    /// What the policy covers.
    mapping: Vec<Mapping>,
    /// The criteria, aliases resolved per principal.
    criteria: CriteriaTemplate,
    /// Where it was written, for overlap messages.
    document: usize,
}

/// A `permissionMapping` item: an action (every permission of the resource type with it),
/// or a permission name with its action.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    name: Option<Box<str>>,
    action: RbacAction,
}

/// An RBAC action: Backstage's four, or `use` for a permission without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RbacAction {
    Create,
    Read,
    Update,
    Delete,
    Use,
}

impl RbacAction {
    fn of(action: Option<Action>) -> Self {
        match action {
            Some(Action::Create) => Self::Create,
            Some(Action::Read) => Self::Read,
            Some(Action::Update) => Self::Update,
            Some(Action::Delete) => Self::Delete,
            None => Self::Use,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => Self::Create,
            "read" => Self::Read,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "use" => Self::Use,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The allow and deny bits of one object's `p` lines, one bit per [`RbacAction`].
#[derive(Debug, Clone, Copy, Default)]
struct Effects {
    allow: u8,
    deny: u8,
}

impl Effects {
    fn mentions(self, action: RbacAction) -> bool {
        (self.allow | self.deny) & action.bit() != 0
    }
}

impl ConditionalPolicy {
    fn covers(&self, name: &str, action: RbacAction) -> bool {
        self.mapping.iter().any(|m| m.action == action && m.name.as_deref().is_none_or(|n| n == name))
    }

    fn overlaps(&self, other: &[Mapping]) -> Option<&Mapping> {
        self.mapping.iter().find(|mine| {
            other.iter().any(|theirs| {
                mine.action == theirs.action
                    && match (&mine.name, &theirs.name) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            })
        })
    }

    /// The criteria for `principal`.
    pub(super) fn render(&self, principal: &Principal) -> Criteria {
        self.criteria.render(principal)
    }
}

impl RbacRole {
    fn conditional_for(&self, resource_type: &str, name: &str, action: RbacAction) -> Option<&ConditionalPolicy> {
        self.conditional.get(resource_type)?.iter().find(|policy| policy.covers(name, action))
    }

    fn mentions(&self, object: &str, action: RbacAction) -> bool {
        self.rules.get(object).is_some_and(|effects| effects.mentions(action))
    }
}

impl Rbac {
    /// Reads and compiles the files named in the policy file `policy_file` (paths relative
    /// to its folder). Every problem in a file is reported at once, with its line.
    pub(super) fn load(
        policy_file: &Path,
        csv_file: Option<&str>,
        conditional_file: Option<&str>,
        precedence: Precedence,
    ) -> Result<Self, PolicyFileError> {
        let base = policy_file.parent().unwrap_or(Path::new(""));
        let mut rbac = Self { precedence, ..Self::default() };
        if let Some(name) = csv_file {
            let path = base.join(name);
            let text = read(&path)?;
            let mut problems = Problems::default();
            csv::compile(&text, &mut rbac, &mut problems);
            problems.into_result(&path, ())?;
        }
        if let Some(name) = conditional_file {
            let path = base.join(name);
            let text = read(&path)?;
            let mut problems = Problems::default();
            conditional::compile(&text, csv_file.is_some(), &mut rbac, &mut problems)
                .map_err(|message| PolicyFileError::Syntax { file: path.clone(), message })?;
            problems.into_result(&path, ())?;
        }
        Ok(rbac)
    }

    /// The id of role `name`, created empty on first use.
    fn role_id(&mut self, name: &str) -> RoleId {
        if let Some(&id) = self.role_ids.get(name) {
            return id;
        }
        let id = self.roles.len();
        self.roles.push(RbacRole { rules: FastMap::default(), conditional: FastMap::default() });
        self.role_ids.insert(name.into(), id);
        id
    }

    /// What the files say about `permission` for someone holding `refs`.
    pub(super) fn decide(&self, permission: &Permission, refs: &[String]) -> Verdict<'_> {
        let mut ids: Vec<RoleId> =
            refs.iter().filter_map(|r| self.members.get(r.as_str())).flatten().copied().collect();
        if ids.is_empty() {
            return Verdict::NoMatch;
        }
        ids.sort_unstable();
        ids.dedup();
        let roles: Vec<&RbacRole> = ids.iter().filter_map(|&id| self.roles.get(id)).collect();
        let action = RbacAction::of(permission.action);
        let name = &*permission.name;
        let Some(resource_type) = permission.resource_type.as_deref() else {
            return enforce(&roles, name, action);
        };
        let named = roles.iter().any(|role| role.mentions(name, action));
        let object = if named { name } else { resource_type };
        let conditional: Vec<&ConditionalPolicy> =
            roles.iter().filter_map(|role| role.conditional_for(resource_type, name, action)).collect();
        if !conditional.is_empty() {
            let basic_first = self.precedence == Precedence::Basic
                && (named || roles.iter().any(|role| role.mentions(resource_type, action)));
            if !basic_first {
                return Verdict::Conditional(conditional);
            }
        }
        enforce(&roles, object, action)
    }

    /// Names of the roles bound to `member`, for tests.
    #[cfg(test)]
    pub(super) fn roles_of(&self, member: &str) -> Vec<&str> {
        let ids = self.members.get(member).map(Vec::as_slice).unwrap_or_default();
        let mut names: Vec<&str> =
            self.role_ids.iter().filter(|(_, id)| ids.contains(id)).map(|(name, _)| &**name).collect();
        names.sort_unstable();
        names
    }
}

/// Casbin's effect over `roles`' `p` lines for (`object`, `action`): some allow and no deny.
fn enforce<'a>(roles: &[&RbacRole], object: &str, action: RbacAction) -> Verdict<'a> {
    let mut allowed = false;
    for effects in roles.iter().filter_map(|role| role.rules.get(object)) {
        if effects.deny & action.bit() != 0 {
            return Verdict::Deny;
        }
        allowed |= effects.allow & action.bit() != 0;
    }
    if allowed { Verdict::Allow } else { Verdict::NoMatch }
}

/// Reads a policy file of at most [`MAX_FILE_BYTES`].
fn read(path: &PathBuf) -> Result<String, PolicyFileError> {
    let error = |error| PolicyFileError::Read { file: path.clone(), error };
    let file = std::fs::File::open(path).map_err(error)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(error(std::io::Error::other(format!("larger than {MAX_FILE_BYTES} bytes"))));
    }
    Ok(text)
}

/// Checks `text` is a role ref: `role:<namespace>/<name>`.
fn check_role(text: &str) -> Result<(), String> {
    let valid = text.strip_prefix("role:").and_then(|rest| rest.split_once('/')).is_some_and(|(namespace, name)| {
        !namespace.is_empty() && !name.is_empty() && !name.contains('/') && !text.contains(char::is_whitespace)
    });
    if valid { Ok(()) } else { Err(format!("expected a role ref like `role:default/team-a`, got `{text}`")) }
}

#[cfg(test)]
mod tests;
