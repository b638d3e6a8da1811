//! Decisions: precedence, entry matching, aliases, the emitted JSON, and the example file.

use std::collections::HashMap;

use serde_json::json;

use super::{EXAMPLE, basic, kind, policy, resource, user};
use crate::policy::{Action, AllowAllPolicy, PermissionPolicy, PolicyDecision, PolicyQuery, PolicySummary};

const CATALOG: &str = "catalog-entity";

fn catalog(action: Action) -> crate::policy::Permission {
    let name = match action {
        Action::Create => "catalog.entity.create",
        Action::Read => "catalog.entity.read",
        Action::Update => "catalog.entity.refresh",
        Action::Delete => "catalog.entity.delete",
    };
    resource(name, Some(action), CATALOG)
}

fn conditions_json(decision: &PolicyDecision) -> serde_json::Value {
    match decision {
        PolicyDecision::Conditional(c) => json!(c.conditions),
        other => panic!("expected CONDITIONAL, got {other:?}"),
    }
}

#[test]
fn example_file_decides_for_admin_carol_member_and_outsider() {
    let policy = policy(EXAMPLE);
    let admin = user("alice", &["admins"]);
    let carol = user("carol", &[]);
    let dave = user("dave", &["team-a"]);
    let erin = user("erin", &["team-b"]);
    let location_read = basic("catalog.location.read", Some(Action::Read));
    let location_create = basic("catalog.location.create", Some(Action::Create));
    let entity_create = basic("catalog.entity.create", Some(Action::Create));
    let scaffold = resource("scaffolder.action.execute", None, "scaffolder-action");
    #[rustfmt::skip]
    let cases = [
        // (who, permission, admin, carol, dave, erin)
        (catalog(Action::Read),   "AAAA"),
        (catalog(Action::Update), "ACCD"),
        (catalog(Action::Delete), "ACCD"),
        (location_read,           "AAAD"),
        (location_create,         "ADDD"),
        (entity_create,           "ADDD"),
        (scaffold,                "ADDD"),
    ];
    for (permission, expected) in cases {
        let got: String =
            [&admin, &carol, &dave, &erin].into_iter().map(|who| kind(&policy.decide(&permission, who))).collect();
        assert_eq!(got, expected, "{permission}");
    }
}

#[test]
fn conditional_decision_has_backstage_json_shape() {
    let policy = policy(EXAMPLE);
    // Carol is a member directly and through team-a: the role still counts once.
    let carol = user("carol", &["team-a"]);
    let decision = policy.decide(&catalog(Action::Delete), &carol);
    let PolicyDecision::Conditional(conditional) = &decision else {
        panic!("expected CONDITIONAL, got {decision:?}");
    };
    let claims = json!({"anyOf": [{
        "rule": "IS_ENTITY_OWNER",
        "resourceType": "catalog-entity",
        "params": {"claims": ["user:default/carol", "group:default/team-a"]}
    }]});
    assert_eq!(json!(conditional.conditions), claims);
    assert_eq!(
        json!(conditional),
        json!({"pluginId": "catalog", "resourceType": "catalog-entity", "conditions": claims})
    );
}

#[test]
fn precedence() {
    let one_role = |allow: &str, deny: &str| {
        format!("roles:\n  - name: r\n    members: ['*']\n    allow: {allow}\n    deny: {deny}\n")
    };
    let cond = |rule: &str| format!("{{resource_type: {CATALOG}, conditions: {{rule: {rule}, params: {{x: 1}}}}}}");
    let read = "{permission: catalog.entity.read}";
    #[rustfmt::skip]
    let cases: Vec<(&str, String, char)> = vec![
        ("default deny: nothing listed", one_role("[]", "[]"), 'D'),
        ("default deny: other permission", one_role("[{permission: x.y}]", "[]"), 'D'),
        ("allow", one_role(&format!("[{read}]"), "[]"), 'A'),
        ("deny beats allow in one role", one_role(&format!("[{read}]"), &format!("[{read}]")), 'D'),
        ("deny by resource type beats allow by name",
            one_role(&format!("[{read}]"), &format!("[{{resource_type: {CATALOG}}}]")), 'D'),
        ("allow beats conditional",
            one_role(&format!("[{}, {read}]", cond("R")), "[]"), 'A'),
        ("conditional", one_role(&format!("[{}]", cond("R")), "[]"), 'C'),
        ("deny beats conditional",
            one_role(&format!("[{}]", cond("R")), "[{permission: '*'}]"), 'D'),
        ("deny beats allow across roles", format!(
            "roles:\n  - {{name: a, members: ['*'], allow: [{read}]}}\n  - {{name: d, members: [group:default/g], deny: [{read}]}}\n"), 'D'),
        ("deny in a role the user is not in does not count", format!(
            "roles:\n  - {{name: a, members: ['*'], allow: [{read}]}}\n  - {{name: d, members: [group:default/other], deny: [{read}]}}\n"), 'A'),
        ("super user beats deny", format!(
            "super_users: [user:default/u]\n{}", one_role("[]", &format!("[{read}]"))), 'A'),
        ("super user through a group", format!(
            "super_users: [group:default/g]\n{}", one_role("[]", "[{permission: '*'}]")), 'A'),
        ("group membership", format!(
            "roles:\n  - {{name: a, members: [group:default/g], allow: [{read}]}}\n"), 'A'),
        ("user membership", format!(
            "roles:\n  - {{name: a, members: [user:default/u], allow: [{read}]}}\n"), 'A'),
        ("not a member", format!(
            "roles:\n  - {{name: a, members: [user:default/v, group:default/h], allow: [{read}]}}\n"), 'D'),
    ];
    let u = user("u", &["g"]);
    let permission = catalog(Action::Read);
    for (name, yaml, expected) in cases {
        assert_eq!(kind(&policy(&yaml).decide(&permission, &u)), expected, "{name}:\n{yaml}");
    }
}

#[test]
fn several_conditionals_join_with_any_of_in_file_order() {
    let yaml = r#"
roles:
  - name: second-in-refs
    members: [group:default/g]
    allow:
      - { resource_type: catalog-entity, conditions: { rule: A } }
      - { permission: catalog.entity.read, resource_type: catalog-entity,
          conditions: { not: { rule: B } } }
  - name: everyone
    members: ["*"]
    allow:
      - { resource_type: catalog-entity, actions: [read], conditions: { allOf: [{ rule: C }] } }
"#;
    let decision = policy(yaml).decide(&catalog(Action::Read), &user("u", &["g"]));
    let leaf = |rule: &str| json!({"rule": rule, "resourceType": CATALOG});
    assert_eq!(conditions_json(&decision), json!({"anyOf": [leaf("A"), {"not": leaf("B")}, {"allOf": [leaf("C")]}]}));
}

#[test]
fn entry_matching() {
    let read = catalog(Action::Read);
    let delete = catalog(Action::Delete);
    let no_action = resource("catalog.entity.read", None, CATALOG);
    let basic_read = basic("catalog.entity.read", Some(Action::Read));
    let other_type = resource("catalog.entity.read", Some(Action::Read), "other-thing");
    #[rustfmt::skip]
    let cases = [
        // entry → (read, delete, no_action, basic_read, other_type)
        ("{permission: catalog.entity.read}",                           "ADAAA"),
        ("{permission: '*'}",                                           "AAAAA"),
        ("{permission: catalog.entity.delete}",                         "DADDD"),
        ("{resource_type: catalog-entity}",                             "AAADD"),
        ("{permission: '*', resource_type: catalog-entity}",            "AAADD"),
        ("{resource_type: catalog-entity, actions: [read]}",            "ADDDD"),
        ("{resource_type: catalog-entity, actions: [update, delete]}",  "DADDD"),
        ("{permission: '*', actions: [read]}",                          "ADDAA"),
        ("{permission: catalog.entity.read, actions: [read, create]}",  "ADDAA"),
        ("{permission: catalog.entity.read, resource_type: catalog-entity}", "ADADD"),
        ("{permission: catalog.entity.read, resource_type: other-thing}",    "DDDDA"),
    ];
    let u = user("u", &[]);
    for (entry, expected) in cases {
        let policy = policy(&format!("roles:\n  - {{name: r, members: ['*'], allow: [{entry}]}}\n"));
        let got: String = [&read, &delete, &no_action, &basic_read, &other_type]
            .into_iter()
            .map(|p| kind(&policy.decide(p, &u)))
            .collect();
        assert_eq!(got, expected, "{entry}");
    }
}

#[test]
fn aliases_are_substituted() {
    let yaml = r#"
roles:
  - name: r
    members: ["*"]
    allow:
      - resource_type: catalog-entity
        conditions:
          rule: R
          params:
            owners: $ownerRefs
            me: $currentUser
            mixed: [first, $ownerRefs, $currentUser, 7, true, null]
            fixed: [1, 2]
            flag: false
            text: plain
"#;
    let decision = policy(yaml).decide(&catalog(Action::Read), &user("u", &["g1", "g2"]));
    let (u, g1, g2) = ("user:default/u", "group:default/g1", "group:default/g2");
    assert_eq!(
        conditions_json(&decision),
        json!({"rule": "R", "resourceType": CATALOG, "params": {
            "owners": [u, g1, g2],
            "me": u,
            "mixed": ["first", u, g1, g2, u, 7, true, null],
            "fixed": [1, 2],
            "flag": false,
            "text": "plain",
        }})
    );
}

#[test]
fn plugin_ids_can_be_overridden() {
    let yaml = r#"
roles:
  - name: r
    members: ["*"]
    allow:
      - { resource_type: catalog-entity, conditions: { rule: A } }
      - { resource_type: acme-widget, conditions: { rule: B } }
"#;
    let u = user("u", &[]);
    let widget = resource("acme.widget.read", None, "acme-widget");
    let entity = catalog(Action::Read);
    let plugin_of = |policy: &crate::policy::YamlPolicy, p: &crate::policy::Permission| match policy.decide(p, &u) {
        PolicyDecision::Conditional(c) => c.plugin_id,
        other => panic!("expected CONDITIONAL, got {other:?}"),
    };
    let plain = policy(yaml);
    assert_eq!(plugin_of(&plain, &entity), "catalog");
    assert_eq!(plugin_of(&plain, &widget), "acme");
    let overrides = HashMap::from([("acme-widget".to_owned(), "widgets".to_owned())]);
    let custom = policy(yaml).with_plugin_ids(overrides);
    assert_eq!(plugin_of(&custom, &entity), "catalog");
    assert_eq!(plugin_of(&custom, &widget), "widgets");
}

#[test]
fn summary_counts_and_displays_on_one_line() {
    let summary = policy(EXAMPLE).summary();
    assert_eq!(
        summary,
        PolicySummary {
            roles: 2,
            super_users: 1,
            allow_entries: 3,
            deny_entries: 1,
            rbac_rules: 0,
            conditional_policies: 0
        }
    );
    assert_eq!(
        summary.to_string(),
        "roles=2 super_users=1 allow_entries=3 deny_entries=1 rbac_rules=0 conditional_policies=0"
    );
    assert!(format!("{:?}", policy(EXAMPLE)).contains("roles: 2"));
}

#[test]
fn decision_only_walks_the_principals_roles() {
    use std::fmt::Write as _;
    let mut yaml = String::from("roles:\n");
    for i in 0..10_000 {
        let _ = writeln!(yaml, "  - {{name: r{i}, members: [group:default/g{i}], allow: [{{permission: p{i}}}]}}");
    }
    let policy = policy(&yaml);
    let u = user("u", &["g42", "g9999"]);
    assert_eq!(policy.index().roles_of(&u.ownership_refs[..]).count(), 2);
    assert_eq!(kind(&policy.decide(&basic("p42", None), &u)), 'A');
    assert_eq!(kind(&policy.decide(&basic("p9999", None), &u)), 'A');
    assert_eq!(kind(&policy.decide(&basic("p43", None), &u)), 'D');
}

#[tokio::test(flavor = "current_thread")]
async fn policies_answer_through_the_trait() {
    let yaml_policy = policy(EXAMPLE);
    let permission = catalog(Action::Read);
    let query = PolicyQuery { permission: &permission, resource_ref: None };
    let u = user("u", &[]);
    assert_eq!(yaml_policy.handle(query, Some(&u)).await, PolicyDecision::Allow);
    assert_eq!(yaml_policy.handle(query, None).await, PolicyDecision::Deny);
    assert_eq!(AllowAllPolicy.handle(query, None).await, PolicyDecision::Allow);
    let boxed: Box<dyn PermissionPolicy> = Box::<AllowAllPolicy>::default();
    assert_eq!(boxed.handle(query, Some(&u)).await, PolicyDecision::Allow);
}
