//! Loading: every validation message with its key path, syntax errors, and reading files.

use std::path::Path;

use super::{EXAMPLE, policy};
use crate::policy::{PolicyFileError, YamlPolicy};

fn load_error(yaml: &str) -> String {
    match YamlPolicy::from_yaml(yaml, Path::new("policy.yaml")) {
        Ok(policy) => panic!("expected an error, loaded {:?} from:\n{yaml}", policy.summary()),
        Err(error) => error.to_string(),
    }
}

/// A file with one role open to everyone holding `allow` and `deny` (flow YAML lists).
fn role(allow: &str, deny: &str) -> String {
    format!("roles:\n  - name: r\n    members: ['*']\n    allow: {allow}\n    deny: {deny}\n")
}

/// A file with one allow entry for `catalog-entity` carrying `conditions`.
fn conditions(criteria: &str) -> String {
    role(&format!("[{{resource_type: catalog-entity, conditions: {criteria}}}]"), "[]")
}

#[test]
fn the_example_file_loads() {
    let _ = policy(EXAMPLE);
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let c = "roles[0].allow[0].conditions";
    #[rustfmt::skip]
    let cases: Vec<(String, String)> = vec![
        (role("[{permission: catalog.entity.read, conditions: {rule: R}}]", "[]"),
            "roles[0].allow[0]: `conditions` needs `resource_type` (conditions apply to a resource)".into()),
        (role("[]", "[{resource_type: catalog-entity, conditions: {rule: R}}]"),
            "roles[0].deny[0]: `conditions` are not allowed on deny entries (a deny is unconditional)".into()),
        (role("[{permission: p, actions: [read, remove]}]", "[]"),
            "roles[0].allow[0].actions[1]: unknown action `remove` (expected `create`, `read`, `update` or `delete`)".into()),
        (role("[]", "[{permission: p, actions: []}]"),
            "roles[0].deny[0].actions: expected at least one action (omit `actions` to match every action)".into()),
        (role("[{actions: [read]}]", "[]"),
            "roles[0].allow[0]: expected `permission`, `resource_type` or both".into()),
        (role("[{permission: ''}]", "[]"),
            "roles[0].allow[0].permission: expected a permission name like `catalog.entity.read`, or `*` for every permission".into()),
        (role("[{resource_type: ' '}]", "[]"),
            "roles[0].allow[0].resource_type: expected a resource type like `catalog-entity`".into()),
        ("roles:\n  - name: r\n    members: []\n".into(),
            "roles[0].members: expected at least one member (a user or group ref, or `*` for every signed-in user)".into()),
        ("roles:\n  - name: r\n".into(),
            "roles[0].members: expected at least one member (a user or group ref, or `*` for every signed-in user)".into()),
        ("roles:\n  - name: r\n    members: [admins]\n".into(),
            "roles[0].members[0]: expected a user or group entity ref like `group:default/team-a` or `*`, got `admins`".into()),
        ("roles:\n  - members: ['*']\n".into(),
            "roles[0]: missing `name` (e.g. `role:default/team-a`)".into()),
        ("roles:\n  - name: ''\n    members: ['*']\n".into(),
            "roles[0].name: expected a non-empty role name".into()),
        ("roles:\n  - {name: r, members: ['*']}\n  - {name: s, members: ['*']}\n  - {name: r, members: ['*']}\n".into(),
            "roles[2].name: duplicate role name `r` (first used by roles[0])".into()),
        ("super_users: [admin]\n".into(),
            "super_users[0]: expected a user or group entity ref like `group:default/team-a`, got `admin`".into()),
        ("super_users: [user:default/a, '*']\n".into(),
            "super_users[1]: `*` cannot be a super user (list user or group refs)".into()),
        (conditions("{anyOf: []}"),
            format!("{c}.anyOf: expected a non-empty list of criteria")),
        (conditions("{not: {allOf: []}}"),
            format!("{c}.not.allOf: expected a non-empty list of criteria")),
        (conditions("{anyOf: [{rule: R, not: {rule: S}}]}"),
            format!("{c}.anyOf[0]: expected exactly one of `allOf`, `anyOf`, `not` or `rule`, found `not`, `rule`")),
        (conditions("{}"),
            format!("{c}: expected one of `allOf`, `anyOf`, `not` or `rule`")),
        (conditions("{params: {x: 1}}"),
            format!("{c}: `params` needs `rule` (params belong to a rule leaf)")),
        (conditions("{rule: ''}"),
            format!("{c}.rule: expected a rule name like `IS_ENTITY_OWNER`")),
        (conditions("{rule: R, params: {claims: [$owners]}}"),
            format!("{c}.params.claims[0]: unknown alias `$owners` (expected `$currentUser` or `$ownerRefs`)")),
        (conditions("{allOf: [{rule: R, params: {me: $me}}]}"),
            format!("{c}.allOf[0].params.me: unknown alias `$me` (expected `$currentUser` or `$ownerRefs`)")),
        (conditions("{rule: R, params: {claims: {a: 1}}}"),
            format!("{c}.params.claims: expected a JSON primitive or a list of primitives, found a map")),
        (conditions("{rule: R, params: {claims: [[a]]}}"),
            format!("{c}.params.claims[0]: expected a JSON primitive (lists of lists or objects are not rule params)")),
    ];
    for (yaml, expected) in cases {
        assert_eq!(load_error(&yaml), format!("policy.yaml: {expected}"), "{yaml}");
    }
}

#[test]
fn all_problems_are_collected_before_failing() {
    let yaml = r#"
super_users: [admins]
roles:
  - name: r
    members: []
    allow:
      - permission: catalog.entity.read
        conditions: { anyOf: [] }
      - { resource_type: catalog-entity, actions: [remove] }
  - name: r
    members: ["*"]
    deny:
      - { resource_type: catalog-entity, conditions: { rule: R } }
"#;
    let error = YamlPolicy::from_yaml(yaml, Path::new("policy.yaml"));
    let Err(PolicyFileError::Invalid { file, problems }) = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(file, Path::new("policy.yaml"));
    let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "super_users[0]",
            "roles[0].members",
            "roles[0].allow[0]",
            "roles[0].allow[0].conditions.anyOf",
            "roles[0].allow[1].actions[0]",
            "roles[1].name",
            "roles[1].deny[0]",
        ]
    );
    let text = load_error(yaml);
    assert_eq!(text.lines().count(), problems.len());
    assert!(text.lines().all(|line| line.starts_with("policy.yaml: ")), "{text}");
}

#[test]
fn syntax_errors_keep_the_parsers_message() {
    #[rustfmt::skip]
    let cases = [
        ("rolez: []", "policy.yaml: unknown field `rolez`, expected one of `super_users`, `roles`, `rbac_csv_file`, `conditional_policies_file`, `policy_decision_precedence`"),
        ("roles:\n  - name: r\n    members: ['*']\n    allow:\n      - permision: x\n",
            "policy.yaml: roles[0].allow[0]: unknown field `permision`, expected one of `permission`, `resource_type`, `actions`, `conditions` at line 5 column 9"),
        ("roles:\n  - name: r\n    members: group:default/x\n",
            "policy.yaml: roles[0].members: invalid type: string \"group:default/x\", expected a sequence at line 3 column 14"),
        ("super_users: [a\n", "policy.yaml: did not find expected ',' or ']'"),
    ];
    for (yaml, expected) in cases {
        let error = YamlPolicy::from_yaml(yaml, Path::new("policy.yaml"));
        assert!(matches!(error, Err(PolicyFileError::Syntax { .. })), "{error:?}");
        let text = load_error(yaml);
        assert!(text.starts_with(expected), "{text}");
    }
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("stagedoor-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.yaml");
    let bad = dir.join("bad.yaml");
    std::fs::write(&good, EXAMPLE).expect("write");
    std::fs::write(&bad, "roles:\n  - name: r\n    members: []\n").expect("write");

    assert_eq!(YamlPolicy::load(&good).expect("loads").summary().roles, 2);
    let error = YamlPolicy::load(&bad).expect_err("invalid").to_string();
    assert!(error.starts_with(&format!("{}: roles[0].members: ", bad.display())), "{error}");
    let missing = dir.join("missing.yaml");
    let error = YamlPolicy::load(&missing).expect_err("missing");
    assert!(matches!(error, PolicyFileError::Read { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with(&format!("{}: cannot read policy file: ", missing.display())), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
