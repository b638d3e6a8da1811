use std::time::Duration;

use super::*;
use crate::policy::Permission;

fn upstream() -> Arc<Upstream> {
    Arc::new(Upstream::parse("catalog", "http://127.0.0.1:1", Duration::from_secs(1)).unwrap())
}

fn rule(label: &str, template: &str, methods: Option<&[Method]>) -> RuleSpec {
    RuleSpec {
        methods: methods.map(<[Method]>::to_vec),
        rule: Arc::new(Rule {
            label: label.into(),
            template: template.into(),
            access: Access::Permission(Permission::basic(label, None)),
            upstream: upstream(),
            resource_ref: None,
            on_conditional: OnConditional::Deny,
            max_body_bytes: None,
            plugin: None,
        }),
    }
}

fn table(rules: Vec<RuleSpec>) -> RouteTable {
    RouteTable::build(rules, Vec::new(), Unmatched::Deny).unwrap()
}

fn found(table: &RouteTable, method: Method, path: &str) -> Option<String> {
    table.find(&method, path).map(|f| f.rule.label.to_string())
}

#[test]
fn the_most_specific_rule_wins_whatever_the_order() {
    let rules = || {
        vec![
            rule("catch-all", "/api/catalog/{*rest}", Some(&[Method::GET])),
            rule("by-param", "/api/catalog/entities/{id}", Some(&[Method::GET])),
            rule("static", "/api/catalog/entities/special", Some(&[Method::GET])),
        ]
    };
    let mut reversed = rules();
    reversed.reverse();
    for table in [table(rules()), table(reversed)] {
        assert_eq!(found(&table, Method::GET, "/api/catalog/entities/special").as_deref(), Some("static"));
        assert_eq!(found(&table, Method::GET, "/api/catalog/entities/42").as_deref(), Some("by-param"));
        assert_eq!(found(&table, Method::GET, "/api/catalog/entities/42/x").as_deref(), Some("catch-all"));
        assert_eq!(found(&table, Method::GET, "/api/catalog").as_deref(), None);
    }
}

#[test]
fn a_rule_for_another_method_never_shadows_one_that_allows_the_method() {
    let table = table(vec![
        rule("delete", "/api/catalog/entities/by-uid/{uid}", Some(&[Method::DELETE])),
        rule("read-any", "/api/catalog/{*rest}", Some(&[Method::GET])),
    ]);
    assert_eq!(found(&table, Method::GET, "/api/catalog/entities/by-uid/1").as_deref(), Some("read-any"));
    assert_eq!(found(&table, Method::DELETE, "/api/catalog/entities/by-uid/1").as_deref(), Some("delete"));
    assert_eq!(found(&table, Method::POST, "/api/catalog/entities/by-uid/1"), None);
}

#[test]
fn static_segments_match_case_sensitively() {
    let table = table(vec![rule("admin", "/admin", None)]);
    assert_eq!(found(&table, Method::GET, "/admin").as_deref(), Some("admin"));
    assert_eq!(found(&table, Method::GET, "/ADMIN"), None);
    assert_eq!(found(&table, Method::GET, "/Admin"), None);
}

#[test]
fn head_follows_get_unless_configured() {
    let table = table(vec![
        rule("get", "/a", Some(&[Method::GET])),
        rule("get-b", "/b", Some(&[Method::GET])),
        rule("head-b", "/b", Some(&[Method::HEAD])),
    ]);
    assert_eq!(found(&table, Method::HEAD, "/a").as_deref(), Some("get"));
    assert_eq!(found(&table, Method::HEAD, "/b").as_deref(), Some("head-b"));
}

#[test]
fn rules_without_methods_cover_extension_methods() {
    let table = table(vec![rule("any", "/a", None), rule("get", "/b", Some(&[Method::GET]))]);
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert_eq!(found(&table, purge.clone(), "/a").as_deref(), Some("any"));
    assert_eq!(found(&table, purge, "/b"), None);
}

#[test]
fn duplicate_and_conflicting_templates_are_refused() {
    let problems = RouteTable::build(
        vec![
            rule("routes[0].rules[0]", "/a/{id}", Some(&[Method::GET])),
            rule("routes[0].rules[1]", "/a/{id}", Some(&[Method::GET, Method::POST])),
            rule("routes[0].rules[2]", "/a/{other}", Some(&[Method::GET])),
        ],
        Vec::new(),
        Unmatched::Deny,
    )
    .unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].label, "routes[0].rules[1]");
    assert_eq!(problems[0].message, "`/a/{id}` for GET is already decided by routes[0].rules[0]");
    assert_eq!(problems[1].label, "routes[0].rules[2]");
    assert_eq!(
        problems[1].message,
        "`/a/{other}` for GET is already decided by routes[0].rules[0] (`/a/{id}`: the same path with other parameter names)"
    );
}

#[test]
fn unmatched_requests_reach_their_prefix_only_when_configured() {
    let prefixes = || {
        vec![PrefixSpec {
            prefix: "/api/catalog".into(),
            upstream: upstream(),
            max_body_bytes: None,
            pass_preflight: false,
        }]
    };
    let rules = || vec![rule("health", "/api/catalog/health", None)];
    let deny = RouteTable::build(rules(), prefixes(), Unmatched::Deny).unwrap();
    assert!(deny.find(&Method::GET, "/api/catalog/other").is_none());
    let allow = RouteTable::build(rules(), prefixes(), Unmatched::Allow).unwrap();
    let other = allow.find(&Method::GET, "/api/catalog/other").unwrap();
    assert_eq!(other.rule.access, Access::Public);
    assert!(allow.find(&Method::GET, "/api/catalog").is_some());
    assert!(allow.find(&Method::GET, "/api/catalogue").is_none());
    assert!(allow.find(&Method::GET, "/elsewhere").is_none());
    let authenticated = RouteTable::build(rules(), prefixes(), Unmatched::Authenticated).unwrap();
    assert_eq!(authenticated.find(&Method::GET, "/api/catalog/x").unwrap().rule.access, Access::Authenticated);
}

#[test]
fn groups_may_share_a_prefix_when_they_share_its_upstream() {
    // A config file's own group and an included preset's, both under `/api/catalog`.
    let group = |upstream: Arc<Upstream>| PrefixSpec {
        prefix: "/api/catalog".into(),
        upstream,
        max_body_bytes: None,
        pass_preflight: true,
    };
    let rules = || vec![rule("health", "/api/catalog/health", None), rule("x", "/api/catalog/x", None)];
    for unmatched in [Unmatched::Allow, Unmatched::Authenticated] {
        let table = RouteTable::build(rules(), vec![group(upstream()), group(upstream())], unmatched).unwrap();
        assert!(table.find(&Method::GET, "/api/catalog/other").is_some());
        assert!(table.find_preflight("/api/catalog/other").is_some());
    }
    let other = Arc::new(Upstream::parse("mirror", "http://127.0.0.1:2", Duration::from_secs(1)).unwrap());
    let problems =
        RouteTable::build(rules(), vec![group(upstream()), group(other.clone())], Unmatched::Allow).unwrap_err();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "prefix `/api/catalog` has groups for upstreams `catalog` and `mirror`: CORS preflights under it cannot go to both",
            "prefix `/api/catalog` has groups for upstreams `catalog` and `mirror`: requests no rule matches under it cannot go to both",
        ]
    );
    // With `unmatched: deny` and no preflight passing, nothing is forwarded by prefix alone.
    let quiet = |upstream| PrefixSpec { pass_preflight: false, ..group(upstream) };
    assert!(RouteTable::build(rules(), vec![quiet(upstream()), quiet(other)], Unmatched::Deny).is_ok());
}

#[test]
fn an_exact_template_beats_a_catch_all_at_the_same_segment() {
    let table = table(vec![
        rule("catch-all", "/things/{*rest}", Some(&[Method::GET])),
        rule("param", "/things/{id}", Some(&[Method::GET])),
    ]);
    assert_eq!(found(&table, Method::GET, "/things/1").as_deref(), Some("param"));
    assert_eq!(found(&table, Method::GET, "/things/1/more").as_deref(), Some("catch-all"));
}

#[test]
fn head_never_silently_loses_the_get_rule() {
    // A public HEAD catch-all must not decide HEAD for a protected GET path.
    let first = table(vec![
        rule("get", "/x/{id}", Some(&[Method::GET])),
        rule("head-catch-all", "/x/{*rest}", Some(&[Method::HEAD])),
    ]);
    assert_eq!(found(&first, Method::HEAD, "/x/1").as_deref(), Some("get"));
    // A HEAD rule for the same shape is the configured HEAD rule; GET keeps its own.
    let same_shape =
        table(vec![rule("get", "/y/{id}", Some(&[Method::GET])), rule("head", "/y/{other}", Some(&[Method::HEAD]))]);
    assert_eq!(found(&same_shape, Method::HEAD, "/y/1").as_deref(), Some("head"));
    assert_eq!(found(&same_shape, Method::GET, "/y/1").as_deref(), Some("get"));
}

#[test]
fn the_walk_backtracks_past_deeper_templates_without_a_rule_for_the_method() {
    let table = table(vec![
        rule("delete-static", "/a/b/{y}", Some(&[Method::DELETE])),
        rule("get-param", "/a/{x}/z", Some(&[Method::GET])),
        rule("get-catch-all", "/a/b/{*rest}", Some(&[Method::GET])),
    ]);
    assert_eq!(found(&table, Method::DELETE, "/a/b/z").as_deref(), Some("delete-static"));
    assert_eq!(found(&table, Method::GET, "/a/b/z").as_deref(), Some("get-param"));
    // No exact GET template matches: the catch-all pass finds the longest static prefix.
    assert_eq!(found(&table, Method::GET, "/a/b/q").as_deref(), Some("get-catch-all"));
    let params = table.find(&Method::GET, "/a/b/q/r%2Fs").unwrap().params;
    assert_eq!(params.get("rest"), Some("q/r%2Fs"));
    let params = table.find(&Method::GET, "/a/x%20y/z").unwrap().params;
    assert_eq!(params.get("x"), Some("x%20y"));
    assert_eq!(params.get("y"), None);
}

#[test]
fn malformed_templates_are_refused_with_the_reason() {
    let problems = RouteTable::build(
        vec![
            rule("partial", "/a/x{id}", None),
            rule("not-last", "/b/{*rest}/c", None),
            rule("twice", "/c/{id}/{id}", None),
            rule("empty", "/d/{}", None),
        ],
        Vec::new(),
        Unmatched::Deny,
    )
    .unwrap_err();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "path `/a/x{id}` cannot be added: a parameter must be a whole segment, `{name}` or a final `{*name}`, got `x{id}`",
            "path `/b/{*rest}/c` cannot be added: `{*rest}` must be the last segment",
            "path `/c/{id}/{id}` cannot be added: parameter `id` is captured twice",
            "path `/d/{}` cannot be added: a parameter must be a whole segment, `{name}` or a final `{*name}`, got `{}`",
        ]
    );
}

#[test]
fn any_method_rules_compete_on_specificity_and_lose_ties_to_listed_methods() {
    let table = table(vec![
        rule("any-static", "/api/x/health", None),
        rule("get-param", "/api/x/{id}", Some(&[Method::GET])),
        rule("any-param", "/api/y/{id}", None),
        rule("get-param-y", "/api/y/{other}", Some(&[Method::GET])),
        rule("any-catch-all", "/api/{*rest}", None),
        rule("get-catch-all", "/api/x/{*rest}", Some(&[Method::GET])),
    ]);
    // A static any-method rule beats a GET param rule.
    assert_eq!(found(&table, Method::GET, "/api/x/health").as_deref(), Some("any-static"));
    assert_eq!(found(&table, Method::GET, "/api/x/7").as_deref(), Some("get-param"));
    // Equally specific: the rule that lists the method wins; other methods get the any rule.
    assert_eq!(found(&table, Method::GET, "/api/y/7").as_deref(), Some("get-param-y"));
    assert_eq!(found(&table, Method::POST, "/api/y/7").as_deref(), Some("any-param"));
    // Among catch-alls the longer static prefix wins, across trees.
    assert_eq!(found(&table, Method::GET, "/api/x/7/8").as_deref(), Some("get-catch-all"));
    assert_eq!(found(&table, Method::POST, "/api/x/7/8").as_deref(), Some("any-catch-all"));
}
