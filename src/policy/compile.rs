//! Raw policy file → [`Index`], recording every problem with its key path.
//!
//! Nothing here returns early on a problem: each one is pushed to [`Problems`] and
//! compilation carries on, so one load reports all of them. The index built from a file
//! with problems is thrown away by the caller.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

use super::Action;
use super::conditions::CriteriaTemplate;
use super::error::Problems;
use super::file::{RawEntry, RawPolicy, RawRole};
use super::index::{Actions, Entry, Index, Role, RoleId};

const EVERYONE: &str = "*";

/// Whether an entry allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Allow,
    Deny,
}

/// Compiles the whole file.
pub(super) fn compile(raw: RawPolicy, problems: &mut Problems) -> Index {
    let mut index = Index::default();
    for (i, user) in raw.super_users.into_iter().enumerate() {
        let at = format!("super_users[{i}]");
        if user == EVERYONE {
            problems.push(at, "`*` cannot be a super user (list user or group refs)");
        } else if let Err(message) = check_ref(&user, "") {
            problems.push(at, message);
        } else {
            index.super_users.insert(user.into());
        }
    }
    let mut names: HashMap<String, RoleId> = HashMap::new();
    for (id, raw_role) in raw.roles.into_iter().enumerate() {
        let role = role(id, raw_role, &mut index, &mut names, problems);
        index.roles.push(role);
    }
    index
}

/// Compiles `roles[id]` and registers its members.
fn role(
    id: RoleId,
    raw: RawRole,
    index: &mut Index,
    names: &mut HashMap<String, RoleId>,
    problems: &mut Problems,
) -> Role {
    let at = format!("roles[{id}]");
    match raw.name {
        None => problems.push(&at, "missing `name` (e.g. `role:default/team-a`)"),
        Some(name) if name.trim().is_empty() => problems.push(format!("{at}.name"), "expected a non-empty role name"),
        Some(name) => match names.entry(name) {
            MapEntry::Occupied(first) => problems.push(
                format!("{at}.name"),
                format!("duplicate role name `{}` (first used by roles[{}])", first.key(), first.get()),
            ),
            MapEntry::Vacant(slot) => {
                slot.insert(id);
            }
        },
    }

    let members = raw.members.unwrap_or_default();
    if members.is_empty() {
        problems.push(
            format!("{at}.members"),
            "expected at least one member (a user or group ref, or `*` for every signed-in user)",
        );
    }
    for (j, member) in members.into_iter().enumerate() {
        if member == EVERYONE {
            // INVARIANT: roles are compiled in id order, so `last()` spots repeats.
            if index.everyone.last() != Some(&id) {
                index.everyone.push(id);
            }
        } else if let Err(message) = check_ref(&member, " or `*`") {
            problems.push(format!("{at}.members[{j}]"), message);
        } else {
            let roles = index.members.entry(member.into()).or_default();
            if roles.last() != Some(&id) {
                roles.push(id);
            }
        }
    }

    let mut role = Role::default();
    for (side, entries, list) in [(Side::Allow, raw.allow, &mut role.allow), (Side::Deny, raw.deny, &mut role.deny)] {
        let key = if side == Side::Allow { "allow" } else { "deny" };
        for (order, raw_entry) in entries.into_iter().enumerate() {
            if let Some(entry) = entry(raw_entry, side, order, &format!("{at}.{key}[{order}]"), problems) {
                list.insert(entry);
            }
        }
    }
    role
}

/// Compiles one allow or deny entry found at `at`; `None` if it has a problem.
fn entry(raw: RawEntry, side: Side, order: usize, at: &str, problems: &mut Problems) -> Option<Entry> {
    let before = problems.len();
    if raw.permission.is_none() && raw.resource_type.is_none() {
        problems.push(at, "expected `permission`, `resource_type` or both");
    }
    let name = match raw.permission {
        Some(name) if name.trim().is_empty() => {
            problems.push(
                format!("{at}.permission"),
                "expected a permission name like `catalog.entity.read`, or `*` for every permission",
            );
            None
        }
        Some(name) if name == EVERYONE => None,
        other => other.map(String::into_boxed_str),
    };
    let resource_type = match raw.resource_type {
        Some(t) if t.trim().is_empty() => {
            problems.push(format!("{at}.resource_type"), "expected a resource type like `catalog-entity`");
            None
        }
        other => other.map(String::into_boxed_str),
    };
    let actions = raw.actions.map(|names| actions(names, &format!("{at}.actions"), problems));
    let conditions = raw.conditions.and_then(|raw| {
        if side == Side::Deny {
            problems.push(at, "`conditions` are not allowed on deny entries (a deny is unconditional)");
            return None;
        }
        if resource_type.is_none() {
            problems.push(at, "`conditions` needs `resource_type` (conditions apply to a resource)");
        }
        // Compiled even without a resource type, to report the problems inside too.
        let resource_type = resource_type.as_deref().unwrap_or_default();
        CriteriaTemplate::compile(raw, resource_type, &format!("{at}.conditions"), problems)
    });
    (problems.len() == before).then_some(Entry { order, name, resource_type, actions, conditions })
}

/// Compiles a non-empty list of action names found at `at`.
fn actions(names: Vec<String>, at: &str, problems: &mut Problems) -> Actions {
    if names.is_empty() {
        problems.push(at, "expected at least one action (omit `actions` to match every action)");
    }
    let mut actions = Actions::default();
    for (i, name) in names.iter().enumerate() {
        match name.as_str() {
            "create" => actions.insert(Action::Create),
            "read" => actions.insert(Action::Read),
            "update" => actions.insert(Action::Update),
            "delete" => actions.insert(Action::Delete),
            other => problems.push(
                format!("{at}[{i}]"),
                format!("unknown action `{other}` (expected `create`, `read`, `update` or `delete`)"),
            ),
        }
    }
    actions
}

/// Checks that `entity_ref` is a `user:` or `group:` ref with a namespace and a name.
pub(super) fn check_ref(entity_ref: &str, or_else: &str) -> Result<(), String> {
    let valid = entity_ref.split_once(':').is_some_and(|(kind, rest)| {
        (kind == "user" || kind == "group")
            && rest
                .split_once('/')
                .is_some_and(|(namespace, name)| !namespace.is_empty() && !name.is_empty() && !name.contains('/'))
    });
    if valid {
        Ok(())
    } else {
        Err(format!("expected a user or group entity ref like `group:default/team-a`{or_else}, got `{entity_ref}`"))
    }
}
