use std::collections::HashMap;
use std::path::Path;

use crate::config::{Config, ConfigError};

const EXAMPLE: &str = include_str!("../../../config/gateway.yaml");

fn load(text: &str) -> Result<Config, ConfigError> {
    let vars = HashMap::from([("SECRET".to_string(), "0123456789abcdef0123456789abcdef".to_string())]);
    Config::from_yaml(text, Path::new("config/test.yaml"), |name| vars.get(name).cloned())
}

fn error(text: &str) -> String {
    load(text).expect_err("config should be refused").to_string()
}

const MINIMAL: &str = r#"
identity:
  issuers:
    - { name: local, secret_env: SECRET, algorithms: [HS256] }
upstreams:
  catalog: { url: "http://127.0.0.1:7008" }
routes:
  - prefix: /api/catalog
    upstream: catalog
    rules:
      - { path: /health, public: true }
"#;

#[test]
fn the_example_config_loads_as_written() {
    let config = Config::from_yaml(EXAMPLE, Path::new("config/gateway.yaml"), |_| None).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
    assert!(config.permission_enabled);
    assert_eq!(config.routes.rule_count(), 4);
    assert_eq!(config.authenticator.issuers().len(), 1);
}

#[test]
fn a_minimal_config_loads() {
    let config = load(MINIMAL).unwrap();
    assert_eq!(config.routes.rule_lines().len(), 1);
}

#[test]
fn unknown_keys_are_errors_with_their_location() {
    let message = error(&MINIMAL.replace("public: true", "public: true, methdos: [GET]"));
    assert!(message.starts_with("config/test.yaml: routes[0].rules[0]: unknown field `methdos`"), "{message}");
    assert!(message.contains("line 11 column 40"), "{message}");
}

#[test]
fn each_problem_names_its_key_and_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "upstream: catalog",
            "upstream: catalgo",
            "config/test.yaml: routes[0].upstream: unknown upstream `catalgo` (expected one of: catalog)",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: /health }",
            "config/test.yaml: routes[0].rules[0]: expected `permission: <name>`, `public: true` or `authenticated: true`",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: /health, public: true, authenticated: true }",
            "config/test.yaml: routes[0].rules[0]: `public` and `authenticated` exclude each other",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: /health, permission: x.y, action: erase }",
            "config/test.yaml: routes[0].rules[0].action: expected one of create, read, update, delete, got `erase`",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: /health, methods: [FETCH], public: true }",
            "config/test.yaml: routes[0].rules[0].methods[0]: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT, got `FETCH`",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: \"/e/{name}\", permission: x.y, resource_type: t, resource_ref: \"{kind}:{name}\" }",
            "config/test.yaml: routes[0].rules[0].resource_ref: parameter `{kind}` is not captured by the rule's path (it captures: name)",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: \"/e/{name}\", permission: x.y, resource_ref: \"{name}\" }",
            "config/test.yaml: routes[0].rules[0].resource_ref: needs `resource_type` (a resource ref names a resource of that type)",
        ),
        (
            "{ path: /health, public: true }",
            "{ path: /health/, public: true }",
            "config/test.yaml: routes[0].rules[0].path: expected a normalized path template",
        ),
        (
            "prefix: /api/catalog",
            "prefix: /api/catalog/",
            "config/test.yaml: routes[0].prefix: expected a normalized path",
        ),
        (
            "url: \"http://127.0.0.1:7008\"",
            "url: \"127.0.0.1:7008\"",
            "config/test.yaml: upstreams.catalog.url: expected an absolute `http://host:port[/base]` URL, got `127.0.0.1:7008`",
        ),
        (
            "url: \"http://127.0.0.1:7008\" }",
            "url: \"http://127.0.0.1:7008\", timeout: soon }",
            "config/test.yaml: upstreams.catalog.timeout: expected a duration such as `30s` or `500ms`, got `soon`",
        ),
        (
            "algorithms: [HS256]",
            "algorithms: [RS256]",
            "config/test.yaml: identity.issuers[0].algorithms[0]: `RS256` does not fit the key source: expected an HMAC algorithm (HS256, HS384, HS512) for `secret_env`",
        ),
        (
            "algorithms: [HS256]",
            "algorithms: [none]",
            "config/test.yaml: identity.issuers[0].algorithms[0]: unknown algorithm `none`",
        ),
        (
            "secret_env: SECRET",
            "secret_env: NOT_SET",
            "config/test.yaml: identity.issuers[0].secret_env: environment variable `NOT_SET` is not set",
        ),
        (
            "secret_env: SECRET",
            "secret_env: SECRET, jwks_url: \"http://x/jwks\"",
            "config/test.yaml: identity.issuers[0]: expected exactly one of `jwks_url`, `keys` (PEM files) or `secret_env`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(MINIMAL.contains(from), "fixture lacks {from}");
        let message = error(&MINIMAL.replace(from, to));
        assert!(message.starts_with(expected), "\nexpected: {expected}\n     got: {message}");
    }
}

#[test]
fn all_problems_are_reported_together() {
    let text = MINIMAL.replace("upstream: catalog", "upstream: nope").replace("algorithms: [HS256]", "algorithms: []");
    let ConfigError::Invalid { problems, .. } = load(&text).unwrap_err() else { panic!("expected Invalid") };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["identity.issuers[0].algorithms", "routes[0].upstream"]);
}

#[test]
fn missing_environment_variables_name_the_line() {
    let message = error("server:\n  listen: ${NOT_SET_ANYWHERE}\n");
    assert_eq!(
        message,
        "config/test.yaml: line 2: environment variable `NOT_SET_ANYWHERE` is not set (use `${NOT_SET_ANYWHERE:-default}` for a default)"
    );
}

#[test]
fn conflicting_rules_are_refused() {
    let text = MINIMAL.replace(
        "- { path: /health, public: true }",
        "- { path: /health, public: true }\n      - { path: /health, methods: [GET], authenticated: true }",
    );
    let message = error(&text);
    assert_eq!(
        message,
        "config/test.yaml: routes[0].rules[1].path: `/api/catalog/health` for GET is already decided by routes[0].rules[0]"
    );
}

#[test]
fn a_bad_policy_file_names_the_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), "roles:\n  - name: r\n    members: []\n").unwrap();
    let text = format!("{MINIMAL}policy: {{ file: policy.yaml }}\n");
    let path = dir.path().join("gateway.yaml");
    let vars = HashMap::from([("SECRET".to_string(), "0123456789abcdef0123456789abcdef".to_string())]);
    let message = Config::from_yaml(&text, &path, |n| vars.get(n).cloned()).unwrap_err().to_string();
    assert!(message.contains("policy.yaml"), "{message}");
    assert!(message.contains("roles[0].members"), "{message}");
}

#[test]
fn group_hierarchy_problems_name_their_key() {
    let with =
        |hierarchy: &str| MINIMAL.replacen("identity:\n", &format!("identity:\n  group_hierarchy: {hierarchy}\n"), 1);
    let message = error(&with(
        "{ max_depth: 0, parents: { team-a: [group:default/eng], \"group:default/b\": [eng], \"group:default/c\": [] } }",
    ));
    for expected in [
        "identity.group_hierarchy.max_depth: expected 1 to 32 levels, got 0",
        "identity.group_hierarchy.parents.team-a: expected a group entity ref like `group:default/team-a` as the key, got `team-a`",
        "identity.group_hierarchy.parents.group:default/b[0]: expected a group entity ref like `group:default/engineering`, got `eng`",
        "identity.group_hierarchy.parents.group:default/c: expected at least one parent group",
    ] {
        assert!(message.contains(expected), "`{expected}` missing from:\n{message}");
    }
    assert!(load(&with("{ parents: { \"group:default/a\": [group:default/b] } }")).is_ok());
}
