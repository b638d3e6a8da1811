//! Tests for the policy stage: decisions, loading, and property tests.

use std::path::Path;

use super::{Action, Permission, PolicyDecision, YamlPolicy};
use crate::identity::Principal;

mod decide;
mod load;
mod props;

/// The example file from the design brief.
const EXAMPLE: &str = r#"
super_users: [group:default/admins]
roles:
  - name: role:default/everyone
    members: ["*"]
    allow:
      - permission: catalog.entity.read
  - name: role:default/team-a
    members: [group:default/team-a, user:default/carol]
    allow:
      - resource_type: catalog-entity
        actions: [update, delete]
        conditions:
          anyOf:
            - rule: IS_ENTITY_OWNER
              params: { claims: [$ownerRefs] }
      - permission: catalog.location.read
    deny:
      - permission: catalog.location.create
"#;

fn policy(yaml: &str) -> YamlPolicy {
    match YamlPolicy::from_yaml(yaml, Path::new("policy.yaml")) {
        Ok(policy) => policy,
        Err(error) => panic!("policy should load:\n{error}"),
    }
}

fn user(name: &str, groups: &[&str]) -> Principal {
    Principal::new(
        format!("user:default/{name}"),
        groups.iter().map(|g| format!("group:default/{g}")).collect(),
        "test".into(),
    )
}

fn basic(name: &str, action: Option<Action>) -> Permission {
    Permission::basic(name, action)
}

fn resource(name: &str, action: Option<Action>, resource_type: &str) -> Permission {
    Permission::resource(name, action, resource_type)
}

/// `A`, `D` or `C` (conditional), for compact tables.
fn kind(decision: &PolicyDecision) -> char {
    match decision {
        PolicyDecision::Allow => 'A',
        PolicyDecision::Deny => 'D',
        PolicyDecision::Conditional(_) => 'C',
    }
}
