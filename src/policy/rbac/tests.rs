//! Tests for the RBAC files: loading errors with their file and line, and the RBAC plugin's
//! decision rules (§7 of the reference), each checked against a decision it changes.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::identity::Principal;
use crate::policy::{Action, Permission, PolicyDecision, YamlPolicy};

/// A temporary folder holding `policy.yaml` and the RBAC files.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(policy: &str, csv: &str, conditional: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("policy.yaml"), policy).expect("write policy");
        std::fs::write(dir.path().join("rbac.csv"), csv).expect("write csv");
        std::fs::write(dir.path().join("conditional.yaml"), conditional).expect("write conditional");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn load(&self) -> Result<YamlPolicy, String> {
        YamlPolicy::load(&self.path("policy.yaml")).map_err(|error| error.to_string())
    }
}

const BOTH: &str = "rbac_csv_file: rbac.csv\nconditional_policies_file: conditional.yaml\n";

/// Loads a policy from CSV text and conditional YAML (plus extra policy file lines).
fn rbac(extra: &str, csv: &str, conditional: &str) -> YamlPolicy {
    let files = Files::new(&format!("{BOTH}{extra}"), csv, conditional);
    files.load().unwrap_or_else(|error| panic!("should load:\n{error}"))
}

fn error(extra: &str, csv: &str, conditional: &str) -> (String, Files) {
    let files = Files::new(&format!("{BOTH}{extra}"), csv, conditional);
    match files.load() {
        Ok(policy) => panic!("expected an error, loaded {:?}", policy.summary()),
        Err(error) => (error, files),
    }
}

fn user(name: &str, groups: &[&str]) -> Principal {
    Principal::new(
        format!("user:default/{name}"),
        groups.iter().map(|g| format!("group:default/{g}")).collect(),
        "test".into(),
    )
}

fn entity(name: &str, action: Action) -> Permission {
    Permission::resource(name, Some(action), "catalog-entity")
}

const OWNED: &str = "result: CONDITIONAL\nroleEntityRef: role:default/a\npluginId: catalog\nresourceType: catalog-entity\n\
                     permissionMapping: [delete]\nconditions:\n  rule: IS_ENTITY_OWNER\n  resourceType: catalog-entity\n  \
                     params: { claims: [$ownerRefs] }\n";

/// `message` is exactly `expected`, one `{file}: …` line each.
fn assert_lines(message: &str, file: &str, expected: &[&str]) {
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{message}");
    for (line, want) in lines.iter().zip(expected) {
        assert_eq!(*line, format!("{file}: {want}"));
    }
}

#[test]
fn csv_problems_name_the_file_and_line() {
    let csv = "# comment\n\
               p, role:default/a, catalog.entity.read, read, allow\n\
               p, team-a, catalog.entity.read, read, allow\n\
               p, role:default/a, catalog.entity.read, view, allow\n\
               p, role:default/a, catalog.entity.read, read, permit\n\
               p, role:default/a, catalog.entity.read, read\n\
               g, team-a, role:default/a\n\
               g, group:default/x, a\n\
               x, group:default/x, role:default/a\n\
               p, role:default/a, \"catalog.\"entity\", read, allow\n\
               \n\
               g, group:default/x, role:default/a, extra\n";
    let (message, files) = error("", csv, "");
    let file = files.path("rbac.csv").display().to_string();
    let expected = [
        "line 3: expected a role ref like `role:default/team-a`, got `team-a` (a `p` line grants a role; bind users and groups to it with `g` lines)",
        "line 4: unknown action `view` (expected `create`, `read`, `update`, `delete`, or `use` for a permission without an action)",
        "line 5: unknown effect `permit` (expected `allow` or `deny`)",
        "line 6: a `p` line has 5 values (`p, role, permission-or-resource-type, action, allow|deny`), got 4",
        "line 7: expected a user or group entity ref like `group:default/team-a`, got `team-a` (a `g` line binds a user or group to a role)",
        "line 8: expected a role ref like `role:default/team-a`, got `a`",
        "line 9: expected a `p, role, permission-or-resource-type, action, allow|deny` or `g, member, role` line, got `x, group:default/x, role:default/a`",
        "line 10: a `\"` is not allowed inside a value, got `\"catalog.\"entity\"`",
        "line 12: a `g` line has 3 values (`g, member, role`), got 4",
    ];
    assert_lines(&message, &file, &expected);
}

#[test]
fn conditional_problems_name_the_document_line_and_key() {
    let csv = "g, group:default/x, role:default/a\n";
    let conditional = format!(
        "{OWNED}---\n\
         result: ALLOW\nroleEntityRef: role:default/nobody\npluginId: catalog\nresourceType: catalog-entity\n\
         permissionMapping: [remove, {{name: catalog.entity.read}}]\n\
         conditions: {{ rule: IS_ENTITY_KIND, resourceType: scaffolder-task, params: {{ kinds: [$me] }} }}\n\
         ---\n\
         result: CONDITIONAL\nroleEntityRef: role:default/a\npluginId: catalog\nresourceType: catalog-entity\n\
         permissionMapping: [read, delete]\nconditions: {{ rule: IS_ENTITY_KIND, params: {{ kinds: [Group] }} }}\n\
         ---\n\
         roleEntityRef: role:default/a\n"
    );
    let (message, files) = error("", csv, &conditional);
    let file = files.path("conditional.yaml").display().to_string();
    let expected = [
        "document 2 (line 10).result: expected `CONDITIONAL`, got `ALLOW`",
        "document 2 (line 10).roleEntityRef: role `role:default/nobody` is not in `rbac_csv_file` (give it members with `g` lines there)",
        "document 2 (line 10).permissionMapping[0]: expected an action (`create`, `read`, `update`, `delete`, `use`) or `{name, action}`, got `\"remove\"`",
        "document 2 (line 10).permissionMapping[1]: expected an action (`create`, `read`, `update`, `delete`, `use`) or `{name, action}`, got `{\"name\":\"catalog.entity.read\"}`",
        "document 2 (line 10).conditions.resourceType: expected `catalog-entity` (the resource type the conditions apply to), got `scaffolder-task`",
        "document 3 (line 17).permissionMapping: overlaps document 1 for role `role:default/a` and resource type `catalog-entity` on action `delete` (a role has at most one conditional policy per permission)",
        "document 4 (line 24): missing `result: CONDITIONAL`",
        "document 4 (line 24): missing `pluginId` (a plugin id like `catalog`)",
        "document 4 (line 24): missing `resourceType` (a resource type like `catalog-entity`)",
        "document 4 (line 24).permissionMapping: expected a non-empty list of actions (`create`, `read`, `update`, `delete`, `use`) or `{name, action}` maps",
        "document 4 (line 24): missing `conditions`",
    ];
    assert_lines(&message, &file, &expected);
}

#[test]
fn file_level_errors_name_the_file() {
    // A YAML syntax error names the document.
    let (message, files) = error("", "", "result: CONDITIONAL\n---\nresult: [\n");
    assert!(message.starts_with(&format!("{}: document 2: ", files.path("conditional.yaml").display())), "{message}");
    // An unknown key in a conditional document.
    let (message, _) = error("", "", "result: CONDITIONAL\nroleRef: role:default/a\n");
    assert!(message.contains("document 1: unknown field `roleRef`"), "{message}");
    // A missing file names the resolved path.
    let files = Files::new("rbac_csv_file: missing.csv\n", "", "");
    let message = files.load().unwrap_err();
    assert!(
        message.starts_with(&format!("{}: cannot read policy file", files.path("missing.csv").display())),
        "{message}"
    );
    // A conditional file without a CSV cannot give its role members.
    let files = Files::new("conditional_policies_file: conditional.yaml\n", "", OWNED);
    let message = files.load().unwrap_err();
    assert!(message.contains("role `role:default/a` has no members: add `rbac_csv_file`"), "{message}");
    // A bad precedence is a policy file problem.
    let (message, files) = error("policy_decision_precedence: newest\n", "", "");
    assert_eq!(
        message,
        format!(
            "{}: policy_decision_precedence: expected `conditional` or `basic`, got `newest`",
            files.path("policy.yaml").display()
        )
    );
}

#[test]
fn roles_come_from_g_lines_for_the_user_and_its_groups() {
    let policy = rbac("", "g, user:default/bob, role:default/a\ng, group:default/x, role:default/b\n", "");
    let rbac = policy.rbac().expect("rbac");
    assert_eq!(rbac.roles_of("user:default/bob"), ["role:default/a"]);
    assert_eq!(rbac.roles_of("group:default/x"), ["role:default/b"]);
}

#[test]
fn basic_permissions_follow_p_lines_of_the_roles_held() {
    let csv = "p, role:default/a, catalog.location.create, create, allow\n\
               g, group:default/x, role:default/a\n\
               g, user:default/bob, role:default/a\n";
    let policy = rbac("", csv, "");
    let create = Permission::basic("catalog.location.create", Some(Action::Create));
    assert_eq!(policy.decide(&create, &user("jane", &["x"])), PolicyDecision::Allow, "through a group");
    assert_eq!(policy.decide(&create, &user("bob", &[])), PolicyDecision::Allow, "directly");
    assert_eq!(policy.decide(&create, &user("eve", &["y"])), PolicyDecision::Deny, "no role");
    // The action must match too.
    let read = Permission::basic("catalog.location.create", Some(Action::Read));
    assert_eq!(policy.decide(&read, &user("bob", &[])), PolicyDecision::Deny);
    // A resource-type line never grants a basic permission.
    let policy =
        rbac("", "p, role:default/a, catalog-entity, create, allow\ng, user:default/bob, role:default/a\n", "");
    let basic = Permission::basic("catalog.entity.create", Some(Action::Create));
    assert_eq!(policy.decide(&basic, &user("bob", &[])), PolicyDecision::Deny);
}

#[test]
fn a_deny_in_any_role_wins() {
    let csv = "p, role:default/a, catalog.entity.read, read, allow\n\
               p, role:default/b, catalog.entity.read, read, deny\n\
               g, group:default/x, role:default/a\n\
               g, group:default/y, role:default/b\n";
    let policy = rbac("", csv, "");
    let read = entity("catalog.entity.read", Action::Read);
    assert_eq!(policy.decide(&read, &user("jane", &["x"])), PolicyDecision::Allow);
    assert_eq!(policy.decide(&read, &user("jane", &["x", "y"])), PolicyDecision::Deny);
}

#[test]
fn a_line_naming_the_permission_beats_one_naming_its_resource_type() {
    // Role a may update every entity, but refreshing is named and denied for role b.
    let csv = "p, role:default/a, catalog-entity, update, allow\n\
               p, role:default/b, catalog.entity.refresh, update, deny\n\
               p, role:default/c, catalog-entity, update, deny\n\
               p, role:default/d, catalog.entity.refresh, update, allow\n\
               g, group:default/a, role:default/a\n\
               g, group:default/b, role:default/b\n\
               g, group:default/c, role:default/c\n\
               g, group:default/d, role:default/d\n";
    let policy = rbac("", csv, "");
    let refresh = entity("catalog.entity.refresh", Action::Update);
    assert_eq!(policy.decide(&refresh, &user("u", &["a"])), PolicyDecision::Allow, "type line alone");
    assert_eq!(policy.decide(&refresh, &user("u", &["a", "b"])), PolicyDecision::Deny, "named deny beats type allow");
    // The named allow makes the type-level deny irrelevant, as in the plugin.
    assert_eq!(policy.decide(&refresh, &user("u", &["c", "d"])), PolicyDecision::Allow, "named allow beats type deny");
    assert_eq!(policy.decide(&refresh, &user("u", &["c"])), PolicyDecision::Deny, "type deny alone");
}

#[test]
fn use_is_the_action_of_permissions_without_one() {
    let csv = "p, role:default/a, scaffolder.action.execute, use, allow\n\
               p, role:default/b, scaffolder.task.cancel, read, allow\n\
               g, group:default/a, role:default/a\n\
               g, group:default/b, role:default/b\n";
    let policy = rbac("", csv, "");
    let execute = Permission::resource("scaffolder.action.execute", None, "scaffolder-action");
    let cancel = Permission::resource("scaffolder.task.cancel", None, "scaffolder-task");
    assert_eq!(policy.decide(&execute, &user("u", &["a"])), PolicyDecision::Allow);
    assert_eq!(policy.decide(&cancel, &user("u", &["b"])), PolicyDecision::Deny, "`read` is not `use`");
}

#[test]
fn conditional_policies_become_conditional_decisions_with_aliases_resolved() {
    let policy = rbac("", "g, group:default/x, role:default/a\n", OWNED);
    let decision = policy.decide(&entity("catalog.entity.delete", Action::Delete), &user("jane", &["x"]));
    let PolicyDecision::Conditional(conditional) = decision else { panic!("expected CONDITIONAL, got {decision:?}") };
    assert_eq!(conditional.plugin_id, "catalog");
    assert_eq!(conditional.resource_type, "catalog-entity");
    // The plugin always wraps the roles' conditions in `anyOf`.
    assert_eq!(
        serde_json::to_value(&conditional.conditions).expect("json"),
        json!({"anyOf": [{"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity",
                          "params": {"claims": ["user:default/jane", "group:default/x"]}}]})
    );
    // Another action is not covered.
    let read = policy.decide(&entity("catalog.entity.read", Action::Read), &user("jane", &["x"]));
    assert_eq!(read, PolicyDecision::Deny);
}

#[test]
fn named_mappings_cover_only_that_permission() {
    let conditional = OWNED.replace("[delete]", "[{name: catalog.entity.refresh, action: update}]");
    let policy = rbac("", "g, group:default/x, role:default/a\n", &conditional);
    let jane = user("jane", &["x"]);
    assert!(matches!(
        policy.decide(&entity("catalog.entity.refresh", Action::Update), &jane),
        PolicyDecision::Conditional(_)
    ));
    assert_eq!(policy.decide(&entity("catalog.entity.update", Action::Update), &jane), PolicyDecision::Deny);
}

#[test]
fn conditions_of_several_roles_are_joined_and_precedence_decides_against_p_lines() {
    // Conditions are joined in the order the roles first appear in the CSV.
    let csv = "g, group:default/x, role:default/a\n\
               g, group:default/y, role:default/b\n\
               p, role:default/b, catalog-entity, delete, deny\n";
    let second = OWNED.replace("role:default/a", "role:default/b").replace("IS_ENTITY_OWNER", "IS_ENTITY_KIND");
    let conditional = format!("{OWNED}---\n{second}");
    let delete = entity("catalog.entity.delete", Action::Delete);
    let both = user("jane", &["x", "y"]);

    // Default precedence: the conditional policies come first, even over a deny line.
    let policy = rbac("", csv, &conditional);
    let PolicyDecision::Conditional(decision) = policy.decide(&delete, &both) else { panic!("expected CONDITIONAL") };
    let rules: Vec<String> = serde_json::to_value(&decision.conditions).expect("json")["anyOf"]
        .as_array()
        .expect("anyOf")
        .iter()
        .map(|leaf| leaf["rule"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(rules, ["IS_ENTITY_OWNER", "IS_ENTITY_KIND"]);

    // `basic`: a p line for the resource type wins over the conditions.
    let policy = rbac("policy_decision_precedence: basic\n", csv, &conditional);
    assert_eq!(policy.decide(&delete, &both), PolicyDecision::Deny);
    // ...and without one, the conditions still apply.
    assert!(matches!(policy.decide(&delete, &user("jane", &["x"])), PolicyDecision::Conditional(_)));
}

#[test]
fn super_users_and_the_roles_of_the_policy_file_combine_deny_wins() {
    let csv = "p, role:default/a, catalog.entity.read, read, allow\n\
               p, role:default/a, catalog.location.read, read, deny\n\
               g, group:default/x, role:default/a\n";
    let extra = "super_users: [group:default/admins]\n\
                 roles:\n  - name: yaml\n    members: [group:default/x]\n    allow: [{permission: catalog.location.read}]\n    \
                 deny: [{permission: catalog.entity.read}]\n";
    let policy = rbac(extra, csv, "");
    let jane = user("jane", &["x"]);
    assert_eq!(policy.decide(&entity("catalog.entity.read", Action::Read), &jane), PolicyDecision::Deny, "yaml deny");
    let location = Permission::basic("catalog.location.read", Some(Action::Read));
    assert_eq!(policy.decide(&location, &jane), PolicyDecision::Deny, "rbac deny");
    assert_eq!(policy.decide(&location, &user("root", &["admins", "x"])), PolicyDecision::Allow, "super user");
    let summary = policy.summary();
    assert_eq!((summary.rbac_rules, summary.conditional_policies), (2, 0));
}

#[test]
fn the_shipped_example_loads_and_decides_as_its_comments_say() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rbac/policy.yaml");
    let policy = YamlPolicy::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let dev = user("dan", &["team-a"]);
    let carol = Principal::new("user:default/carol".into(), vec![], "test".into());
    let read = entity("catalog.entity.read", Action::Read);
    let location = Permission::basic("catalog.location.create", Some(Action::Create));
    assert_eq!(policy.decide(&read, &carol), PolicyDecision::Allow);
    assert_eq!(policy.decide(&location, &dev), PolicyDecision::Allow);
    assert_eq!(policy.decide(&location, &carol), PolicyDecision::Deny);
    // Developers update any entity, but refreshing is the owners' conditional policy.
    assert_eq!(policy.decide(&entity("catalog.entity.update", Action::Update), &dev), PolicyDecision::Allow);
    assert!(matches!(
        policy.decide(&entity("catalog.entity.refresh", Action::Update), &dev),
        PolicyDecision::Conditional(_)
    ));
    assert!(matches!(
        policy.decide(&entity("catalog.entity.delete", Action::Delete), &dev),
        PolicyDecision::Conditional(_)
    ));
    assert_eq!(policy.decide(&entity("catalog.entity.delete", Action::Delete), &carol), PolicyDecision::Deny);
    let admin = user("root", &["platform"]);
    assert_eq!(policy.decide(&location, &admin), PolicyDecision::Allow);
}
