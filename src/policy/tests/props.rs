//! Property tests: the index agrees with a naive model, default deny, and deny monotonicity.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{kind, policy};
use crate::identity::Principal;
use crate::policy::{Action, Condition, Criteria, Permission, PolicyDecision};

const NAMES: [&str; 4] = ["a.read", "a.write", "b.read", "c.use"];
const TYPES: [&str; 2] = ["res-a", "res-b"];
const ACTIONS: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];
const USERS: [&str; 3] = ["user:default/u1", "user:default/u2", "user:default/u3"];
const GROUPS: [&str; 3] = ["group:default/g1", "group:default/g2", "group:default/g3"];

#[derive(Debug, Clone)]
struct GenEntry {
    /// `*` included.
    permission: Option<&'static str>,
    resource_type: Option<&'static str>,
    actions: Option<Vec<Action>>,
    conditional: bool,
}

#[derive(Debug, Clone)]
struct GenRole {
    members: Vec<&'static str>,
    allow: Vec<GenEntry>,
    deny: Vec<GenEntry>,
}

#[derive(Debug, Clone)]
struct GenPolicy {
    super_users: Vec<&'static str>,
    roles: Vec<GenRole>,
}

fn entry(allow: bool) -> impl Strategy<Value = GenEntry> {
    // Weighted so that every outcome, conditional ones included, comes up often.
    let permission = prop_oneof![
        4 => Just(None),
        5 => prop::sample::select(NAMES.to_vec()).prop_map(Some),
        1 => Just(Some("*")),
    ];
    (
        permission,
        prop::option::weighted(0.7, prop::sample::select(TYPES.to_vec())),
        prop::option::of(prop::sample::subsequence(ACTIONS.to_vec(), 1..=4)),
        prop::bool::weighted(0.85),
    )
        .prop_map(move |(permission, resource_type, actions, conditional)| GenEntry {
            permission: if permission.is_none() && resource_type.is_none() { Some("*") } else { permission },
            resource_type,
            actions,
            conditional: allow && conditional && resource_type.is_some(),
        })
}

fn role() -> impl Strategy<Value = GenRole> {
    let refs: Vec<&'static str> = USERS.iter().chain(&GROUPS).copied().chain(["*"]).collect();
    (
        prop::sample::subsequence(refs, 1..=3),
        prop::collection::vec(entry(true), 0..4),
        prop::collection::vec(entry(false), 0..2),
    )
        .prop_map(|(members, allow, deny)| GenRole { members, allow, deny })
}

fn policy_strategy() -> impl Strategy<Value = GenPolicy> {
    let refs: Vec<&'static str> = USERS.iter().chain(&GROUPS).copied().collect();
    (prop::sample::subsequence(refs, 0..=1), prop::collection::vec(role(), 1..6))
        .prop_map(|(super_users, roles)| GenPolicy { super_users, roles })
}

fn permission() -> impl Strategy<Value = Permission> {
    let names: Vec<&'static str> = NAMES.iter().copied().chain(["z.none"]).collect();
    let types: Vec<&'static str> = TYPES.iter().copied().chain(["res-z"]).collect();
    (
        prop::sample::select(names),
        prop::option::of(prop::sample::select(ACTIONS.to_vec())),
        prop::option::weighted(0.8, prop::sample::select(types)),
    )
        .prop_map(|(name, action, resource_type)| match resource_type {
            Some(t) => Permission::resource(name, action, t),
            None => Permission::basic(name, action),
        })
}

fn principal() -> impl Strategy<Value = Principal> {
    (prop::sample::select(USERS.to_vec()), prop::sample::subsequence(GROUPS.to_vec(), 0..=3)).prop_map(|(u, groups)| {
        Principal::new(u.to_owned(), groups.into_iter().map(str::to_owned).collect(), "t".into())
    })
}

/// The leaf each conditional entry emits: it names its role and entry.
fn leaf(role: usize, entry: usize, resource_type: &str) -> Criteria {
    let params = json!({"id": format!("{role}/{entry}")});
    Criteria::Condition(Condition {
        rule: "R".into(),
        resource_type: resource_type.into(),
        params: params.as_object().cloned(),
    })
}

fn to_yaml(policy: &GenPolicy) -> String {
    let entry = |role: usize, (i, e): (usize, &GenEntry)| {
        let mut map = serde_json::Map::new();
        if let Some(p) = e.permission {
            map.insert("permission".into(), json!(p));
        }
        if let Some(t) = e.resource_type {
            map.insert("resource_type".into(), json!(t));
        }
        if let Some(actions) = &e.actions {
            map.insert("actions".into(), json!(actions));
        }
        if e.conditional {
            let leaf = leaf(role, i, e.resource_type.unwrap_or_default());
            let Criteria::Condition(c) = leaf else { unreachable!() };
            map.insert("conditions".into(), json!({"rule": c.rule, "params": c.params}));
        }
        Value::Object(map)
    };
    let roles: Vec<Value> = policy
        .roles
        .iter()
        .enumerate()
        .map(|(r, role)| {
            json!({
                "name": format!("role-{r}"),
                "members": role.members,
                "allow": role.allow.iter().enumerate().map(|e| entry(r, e)).collect::<Vec<_>>(),
                "deny": role.deny.iter().enumerate().map(|e| entry(r, e)).collect::<Vec<_>>(),
            })
        })
        .collect();
    // JSON is YAML.
    json!({"super_users": policy.super_users, "roles": roles}).to_string()
}

/// The spec's matching rule, written independently of the index.
fn matches(e: &GenEntry, p: &Permission) -> bool {
    let name_ok = match e.permission {
        None | Some("*") => true,
        Some(name) => name == &*p.name,
    };
    let type_ok = e.resource_type.is_none_or(|t| p.resource_type.as_deref() == Some(t));
    let action_ok = match (&e.actions, p.action) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(actions), Some(action)) => actions.contains(&action),
    };
    name_ok && type_ok && action_ok
}

/// A naive decision: scans every role and entry.
fn model(policy: &GenPolicy, p: &Permission, who: &Principal) -> PolicyDecision {
    let refs: HashSet<&str> = who.ownership_refs.iter().map(String::as_str).collect();
    if policy.super_users.iter().any(|s| refs.contains(s)) {
        return PolicyDecision::Allow;
    }
    let applies = |role: &&GenRole| role.members.iter().any(|m| *m == "*" || refs.contains(m));
    let roles: Vec<(usize, &GenRole)> = policy.roles.iter().enumerate().filter(|(_, r)| applies(r)).collect();
    if roles.iter().any(|(_, r)| r.deny.iter().any(|e| matches(e, p))) {
        return PolicyDecision::Deny;
    }
    if roles.iter().any(|(_, r)| r.allow.iter().any(|e| !e.conditional && matches(e, p))) {
        return PolicyDecision::Allow;
    }
    let mut leaves: Vec<Criteria> = Vec::new();
    for (r, role) in &roles {
        for (i, e) in role.allow.iter().enumerate() {
            if e.conditional && matches(e, p) {
                leaves.push(leaf(*r, i, e.resource_type.unwrap_or_default()));
            }
        }
    }
    let conditions = match leaves.len() {
        0 => return PolicyDecision::Deny,
        1 => leaves.remove(0),
        _ => Criteria::AnyOf { any_of: leaves },
    };
    let resource_type = p.resource_type.as_deref().unwrap_or_default().to_owned();
    PolicyDecision::Conditional(crate::policy::ConditionalDecision {
        plugin_id: crate::policy::plugin_id_for_resource_type(&resource_type).to_owned(),
        resource_type,
        conditions,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn index_agrees_with_a_naive_scan(file in policy_strategy(), p in permission(), who in principal()) {
        let compiled = policy(&to_yaml(&file));
        prop_assert_eq!(compiled.decide(&p, &who), model(&file, &p, &who));
    }

    #[test]
    fn a_permission_no_entry_grants_is_never_allowed(
        mut file in policy_strategy(), p in permission(), who in principal(),
    ) {
        // Not a super user, and no allow entry anywhere matches `p`.
        file.super_users.retain(|s| !who.ownership_refs.iter().any(|r| r == s));
        for role in &mut file.roles {
            role.allow.retain(|e| !matches(e, &p));
        }
        let decision = policy(&to_yaml(&file)).decide(&p, &who);
        prop_assert_eq!(kind(&decision), 'D');
    }

    #[test]
    fn adding_a_deny_never_grants_more(
        file in policy_strategy(), extra in entry(false), at in any::<prop::sample::Index>(),
        p in permission(), who in principal(),
    ) {
        let before = policy(&to_yaml(&file)).decide(&p, &who);
        let mut more = file.clone();
        if more.roles.is_empty() {
            more.roles.push(GenRole { members: vec!["*"], allow: vec![], deny: vec![] });
        }
        let i = at.index(more.roles.len());
        more.roles[i].deny.push(extra);
        let after = policy(&to_yaml(&more)).decide(&p, &who);
        if kind(&before) == 'D' {
            prop_assert_eq!(kind(&after), 'D');
        }
        if kind(&after) == 'A' {
            prop_assert_eq!(kind(&before), 'A');
        }
        if kind(&after) == 'C' {
            prop_assert_eq!(&after, &before);
        }
    }
}
