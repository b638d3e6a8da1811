//! The load-time index a decision walks.
//!
//! Member ref → roles (plus the roles open to everyone), and per role the entries bucketed
//! by permission name, by resource type, or as wildcards. A decision only touches the
//! buckets for the principal's refs and the permission asked about, so its cost never
//! depends on how many roles the file holds.

use crate::hashing::{FastMap, FastSet};

use super::conditions::CriteriaTemplate;
use super::{Action, Permission};

/// Position of a role in the file.
pub(super) type RoleId = usize;

/// Everything a decision needs, built once by `compile`.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// User or group refs allowed everything.
    pub(super) super_users: FastSet<Box<str>>,
    /// Member ref → the roles it is a member of, ascending, no duplicates.
    pub(super) members: FastMap<Box<str>, Vec<RoleId>>,
    /// Roles with the `*` member, ascending.
    pub(super) everyone: Vec<RoleId>,
    /// Roles by id.
    pub(super) roles: Vec<Role>,
}

impl Index {
    /// True when one of `refs` is a super user.
    pub(super) fn is_super_user(&self, refs: &[String]) -> bool {
        refs.iter().any(|r| self.super_users.contains(r.as_str()))
    }

    /// The roles that apply to someone holding `refs`; a role may come more than once.
    pub(super) fn roles_of<'a>(&'a self, refs: &'a [String]) -> impl Iterator<Item = (RoleId, &'a Role)> + 'a {
        let by_ref = refs.iter().filter_map(|r| self.members.get(r.as_str())).flatten();
        self.everyone.iter().chain(by_ref).filter_map(|&id| self.roles.get(id).map(|role| (id, role)))
    }
}

/// One role's allow and deny entries.
#[derive(Debug, Default)]
pub(super) struct Role {
    /// What the role allows.
    pub(super) allow: Entries,
    /// What the role denies.
    pub(super) deny: Entries,
}

/// Entries bucketed for lookup. Each entry sits in exactly one bucket.
#[derive(Debug, Default)]
pub(super) struct Entries {
    /// Entries naming one permission.
    by_name: FastMap<Box<str>, Vec<Entry>>,
    /// Entries for every permission (`*` or no `permission`) of one resource type.
    by_resource_type: FastMap<Box<str>, Vec<Entry>>,
    /// Entries for every permission of any resource type (`permission: "*"`).
    any: Vec<Entry>,
    len: usize,
}

impl Entries {
    /// Adds `entry` to the one bucket its most specific field selects.
    pub(super) fn insert(&mut self, entry: Entry) {
        self.len += 1;
        if let Some(name) = &entry.name {
            self.by_name.entry(name.clone()).or_default().push(entry);
        } else if let Some(resource_type) = &entry.resource_type {
            self.by_resource_type.entry(resource_type.clone()).or_default().push(entry);
        } else {
            self.any.push(entry);
        }
    }

    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The entries that match `permission`.
    pub(super) fn matching<'a>(&'a self, permission: &'a Permission) -> impl Iterator<Item = &'a Entry> + 'a {
        let by_name = self.by_name.get(&*permission.name);
        let by_type = permission.resource_type.as_deref().and_then(|t| self.by_resource_type.get(t));
        by_name
            .into_iter()
            .flatten()
            .chain(by_type.into_iter().flatten())
            .chain(&self.any)
            .filter(move |entry| entry.matches(permission))
    }
}

/// A compiled allow or deny entry. `None` fields match anything.
#[derive(Debug)]
pub(super) struct Entry {
    /// Position in its role's `allow` or `deny` list.
    pub(super) order: usize,
    /// Permission name; `None` for `*` or no `permission`.
    pub(super) name: Option<Box<str>>,
    /// Resource type the permission must have.
    pub(super) resource_type: Option<Box<str>>,
    /// Actions the permission must have one of.
    pub(super) actions: Option<Actions>,
    /// Criteria for a conditional allow; `None` for an unconditional entry.
    pub(super) conditions: Option<CriteriaTemplate>,
}

impl Entry {
    /// True when every field present matches `permission`.
    pub(super) fn matches(&self, permission: &Permission) -> bool {
        self.name.as_deref().is_none_or(|name| name == &*permission.name)
            && self.resource_type.as_deref().is_none_or(|t| permission.resource_type.as_deref() == Some(t))
            && self.actions.is_none_or(|actions| {
                // A permission without an action never matches an entry that lists actions.
                permission.action.is_some_and(|action| actions.contains(action))
            })
    }
}

/// A set of [`Action`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Actions(u8);

impl Actions {
    /// Adds `action`.
    pub(super) fn insert(&mut self, action: Action) {
        self.0 |= Self::bit(action);
    }

    /// True when `action` is in the set.
    pub(super) fn contains(self, action: Action) -> bool {
        self.0 & Self::bit(action) != 0
    }

    fn bit(action: Action) -> u8 {
        match action {
            Action::Create => 1,
            Action::Read => 2,
            Action::Update => 4,
            Action::Delete => 8,
        }
    }
}
