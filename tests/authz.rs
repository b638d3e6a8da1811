//! Authorization end to end: the rule's permission and resource ref go to the policy, and
//! only ALLOW (or CONDITIONAL on a route that forwards it) reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stagedoor::identity::Principal;
use stagedoor::plugins::local_rules::{IsEntityKind, LocalResource, LocalRules, PermissionRule, RuleError};
use stagedoor::policy::{PermissionPolicy, PolicyDecision, PolicyQuery};
use stagedoor::server::Running;
use support::*;

const POLICY: &str = include_str!("../config/policy.yaml");

fn yaml(backend: &Backend, permission: &str, policy: &str) -> String {
    format!(
        r#"
permission: {{ {permission} }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  catalog: {{ url: "{backend}" }}
routes:
  - prefix: /api/catalog
    upstream: catalog
    rules:
      - methods: [GET]
        path: /entities/by-name/{{kind}}/{{namespace}}/{{name}}
        permission: catalog.entity.read
        action: read
        resource_type: catalog-entity
        resource_ref: "{{kind}}:{{namespace}}/{{name}}"
      - {{ methods: [DELETE], path: "/entities/by-uid/{{uid}}", permission: catalog.entity.delete, action: delete, resource_type: catalog-entity }}
      - {{ methods: [POST], path: "/entities/by-uid/{{uid}}/refresh", permission: catalog.entity.refresh, action: update, resource_type: catalog-entity, on_conditional: forward }}
      - {{ methods: [GET], path: /locations, permission: catalog.location.read, action: read }}
      - {{ methods: [POST], path: /locations, permission: catalog.location.create, action: create }}
policy: {policy}
"#,
        backend = backend.url()
    )
}

fn token(sub: &str, groups: &[&str]) -> String {
    Signer::hs256(SECRET).sign(&claims(sub, groups))
}

/// Sends each (token, method, path) and checks its status; only 200s reach the upstream.
async fn expect_statuses(gw: &Gateway, backend: &Backend, cases: &[(&String, reqwest::Method, &str, u16)]) {
    let mut forwarded = 0;
    for (token, method, path, status) in cases {
        let response = send(gw, method.clone(), path, token).await;
        assert_eq!(response.status().as_u16(), *status, "{method} {path}");
        if *status == 200 {
            forwarded += 1;
        }
        assert_eq!(backend.hits(), forwarded, "only allowed requests reach the upstream ({method} {path})");
    }
}

async fn send(gw: &Gateway, method: reqwest::Method, path: &str, token: &str) -> reqwest::Response {
    client().request(method, gw.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn the_yaml_policy_decides_for_admin_team_member_and_outsider() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start_with(&yaml(&backend, "enabled: true", "{ file: policy.yaml }"), &[("policy.yaml", POLICY)])
        .await;
    let admin = token("user:default/admin", &["group:default/admins"]);
    let carol = token("user:default/carol", &[]);
    let member = token("user:default/dan", &["group:default/team-a"]);
    let outsider = token("user:default/mallory", &[]);
    use reqwest::Method as M;
    let cases = [
        (&admin, M::DELETE, "/api/catalog/entities/by-uid/1", 200),
        (&admin, M::POST, "/api/catalog/locations", 200),
        (&outsider, M::GET, "/api/catalog/entities/by-name/component/default/payments", 200),
        (&outsider, M::GET, "/api/catalog/locations", 403),
        (&outsider, M::DELETE, "/api/catalog/entities/by-uid/1", 403),
        (&carol, M::GET, "/api/catalog/locations", 200),
        (&member, M::GET, "/api/catalog/locations", 200),
        (&member, M::POST, "/api/catalog/locations", 403),
        // team-a's delete is CONDITIONAL (owner only): refused on a route that does not forward it …
        (&member, M::DELETE, "/api/catalog/entities/by-uid/1", 403),
        // … forwarded on a route that says `on_conditional: forward`.
        (&member, M::POST, "/api/catalog/entities/by-uid/1/refresh", 200),
        (&outsider, M::POST, "/api/catalog/entities/by-uid/1/refresh", 403),
    ];
    expect_statuses(&gw, &backend, &cases).await;
}

#[tokio::test]
async fn policies_written_for_the_rbac_plugin_decide_through_the_gateway() {
    // The shipped example, CSV and conditional policies file unchanged.
    let backend = Backend::spawn(Behaviour::Echo).await;
    let files = [
        ("policy.yaml", include_str!("../config/rbac/policy.yaml")),
        ("rbac-policy.csv", include_str!("../config/rbac/rbac-policy.csv")),
        ("conditional-policies.yaml", include_str!("../config/rbac/conditional-policies.yaml")),
    ];
    let gw = Gateway::start_with(&yaml(&backend, "enabled: true", "{ file: policy.yaml }"), &files).await;
    let admin = token("user:default/root", &["group:default/platform"]);
    let carol = token("user:default/carol", &[]);
    let dev = token("user:default/dan", &["group:default/team-a"]);
    let outsider = token("user:default/mallory", &[]);
    use reqwest::Method as M;
    let cases = [
        (&admin, M::POST, "/api/catalog/locations", 200),
        (&dev, M::POST, "/api/catalog/locations", 200),
        // carol holds `everyone` and `contractors`; the contractors' deny line wins.
        (&carol, M::POST, "/api/catalog/locations", 403),
        (&carol, M::GET, "/api/catalog/locations", 200),
        (&carol, M::GET, "/api/catalog/entities/by-name/component/default/payments", 200),
        // No g line binds mallory: no role, no access.
        (&outsider, M::GET, "/api/catalog/locations", 403),
        // Deleting is the owners' conditional policy: refused where the route does not forward it …
        (&dev, M::DELETE, "/api/catalog/entities/by-uid/1", 403),
        // … and refreshing, conditional too (before developers' `catalog-entity, update` line), is forwarded.
        (&dev, M::POST, "/api/catalog/entities/by-uid/1/refresh", 200),
        (&carol, M::POST, "/api/catalog/entities/by-uid/1/refresh", 403),
    ];
    expect_statuses(&gw, &backend, &cases).await;
}

#[tokio::test]
async fn a_configured_group_hierarchy_counts_members_of_child_groups_in_their_parents() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let policy = "roles:\n  - name: role:default/eng\n    members: [group:default/engineering]\n    allow:\n      - permission: catalog.location.create\n";
    let hierarchy = "identity:\n  group_hierarchy:\n    max_depth: 2\n    parents:\n      \"group:default/team-a\": [group:default/backend]\n      \"group:default/backend\": [group:default/engineering]\n      \"group:default/team-z\": [group:default/deep]\n      \"group:default/deep\": [group:default/deeper]\n      \"group:default/deeper\": [group:default/engineering]\n";
    let config = yaml(&backend, "enabled: true", "{ file: policy.yaml }").replacen("identity:\n", hierarchy, 1);
    let gw = Gateway::start_with(&config, &[("policy.yaml", policy)]).await;
    let post = |groups: &[&str]| {
        let token = token("user:default/jane", groups);
        let gw = &gw;
        async move { send(gw, reqwest::Method::POST, "/api/catalog/locations", &token).await.status().as_u16() }
    };
    // team-a → backend → engineering: two levels, within the limit.
    assert_eq!(post(&["group:default/team-a"]).await, 200);
    assert_eq!(
        backend.last().headers.get("x-stagedoor-ownership").unwrap(),
        "user:default/jane,group:default/team-a,group:default/backend,group:default/engineering"
    );
    // team-z → deep → deeper → engineering: three levels, beyond `max_depth: 2`.
    assert_eq!(post(&["group:default/team-z"]).await, 403);
    assert_eq!(post(&["group:default/other"]).await, 403);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn a_denial_names_the_permission_and_the_resource_ref() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let policy = "roles:\n  - name: role:default/nobody\n    members: [\"*\"]\n    deny:\n      - permission: catalog.entity.read\n";
    let gw = Gateway::start_with(&yaml(&backend, "enabled: true", "{ file: policy.yaml }"), &[("policy.yaml", policy)])
        .await;
    let response = send(
        &gw,
        reqwest::Method::GET,
        "/api/catalog/entities/by-name/component/default/payments",
        &token("user:default/jane", &[]),
    )
    .await;
    let message = envelope(response, 403, "NotAllowedError").await;
    assert_eq!(
        message,
        "permission `catalog.entity.read` on `component:default/payments` is denied for `user:default/jane`"
    );
    let response = send(&gw, reqwest::Method::GET, "/api/catalog/locations", &token("user:default/jane", &[])).await;
    let message = envelope(response, 403, "NotAllowedError").await;
    assert_eq!(message, "permission `catalog.location.read` is denied for `user:default/jane`");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn a_conditional_decision_is_refused_unless_the_route_forwards_it() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start_with(&yaml(&backend, "enabled: true", "{ file: policy.yaml }"), &[("policy.yaml", POLICY)])
        .await;
    let member = token("user:default/dan", &["group:default/team-a"]);
    let response = send(&gw, reqwest::Method::DELETE, "/api/catalog/entities/by-uid/7", &member).await;
    let message = envelope(response, 403, "NotAllowedError").await;
    assert!(message.contains("only conditionally allowed"), "{message}");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn permission_disabled_allows_every_authenticated_request_without_the_policy() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    // The policy would deny everything; with `enabled: false` it is not asked.
    let deny_all =
        "roles:\n  - name: role:default/nobody\n    members: [\"*\"]\n    deny:\n      - permission: \"*\"\n";
    let gw =
        Gateway::start_with(&yaml(&backend, "enabled: false", "{ file: policy.yaml }"), &[("policy.yaml", deny_all)])
            .await;
    let response = send(&gw, reqwest::Method::POST, "/api/catalog/locations", &token("user:default/jane", &[])).await;
    assert_eq!(response.status(), 200);
    // Authentication still applies.
    let anonymous = client().post(gw.url("/api/catalog/locations")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(backend.hits(), 1);
}

/// A Rust integrator's own async policy: records what it was asked, allows only reads of
/// resources in the `default` namespace.
/// (permission, resource ref, user, ownership refs) of one question.
type Asked = (String, Option<String>, String, Vec<String>);

#[derive(Debug, Default)]
struct NamespacePolicy {
    asked: Mutex<Vec<Asked>>,
}

#[async_trait]
impl PermissionPolicy for NamespacePolicy {
    async fn handle(&self, query: PolicyQuery<'_>, user: Option<&Principal>) -> PolicyDecision {
        tokio::task::yield_now().await; // really async
        let user = user.expect("the proxy always passes the principal");
        self.asked.lock().unwrap().push((
            query.permission.name.to_string(),
            query.resource_ref.map(str::to_owned),
            user.user_entity_ref.to_string(),
            user.ownership_refs.to_vec(),
        ));
        match query.resource_ref {
            Some(r) if r.contains(":default/") => PolicyDecision::Allow,
            _ => PolicyDecision::Deny,
        }
    }
}

#[tokio::test]
async fn a_custom_rust_policy_is_plugged_in_and_sees_permission_resource_and_user() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = load(&dir, &yaml(&backend, "enabled: true", "allow-all")).unwrap();
    let policy = Arc::new(NamespacePolicy::default());
    config.policy = policy.clone();
    let running = Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = |p: &str| format!("http://{}{p}", running.addr);
    let jane = token("user:default/jane", &["group:default/team-a"]);
    let ok =
        client().get(url("/api/catalog/entities/by-name/component/default/x")).bearer_auth(&jane).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let denied =
        client().get(url("/api/catalog/entities/by-name/component/other/x")).bearer_auth(&jane).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(backend.hits(), 1);
    let asked = policy.asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        (
            "catalog.entity.read".to_string(),
            Some("component:default/x".to_string()),
            "user:default/jane".to_string(),
            vec!["user:default/jane".to_string(), "group:default/team-a".to_string()],
        )
    );
    running.shutdown().await;
}

#[tokio::test]
async fn resource_refs_are_built_from_percent_decoded_path_parameters() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = load(&dir, &yaml(&backend, "enabled: true", "allow-all")).unwrap();
    let policy = Arc::new(NamespacePolicy::default());
    config.policy = policy.clone();
    let running = Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let jane = token("user:default/jane", &[]);
    let url = format!("http://{}/api/catalog/entities/by-name/component/default/my%20service", running.addr);
    assert_eq!(client().get(url).bearer_auth(&jane).send().await.unwrap().status(), 200);
    assert_eq!(policy.asked.lock().unwrap()[0].1.as_deref(), Some("component:default/my service"));
    assert_eq!(backend.last().uri, "/api/catalog/entities/by-name/component/default/my%20service");
}

/// A third-party rule: the entity ref's namespace is one of `namespaces`.
#[derive(Debug)]
struct InNamespace;

impl PermissionRule for InNamespace {
    fn name(&self) -> &str {
        "IN_NAMESPACE"
    }
    fn resource_type(&self) -> &str {
        "catalog-entity"
    }
    fn params_schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"namespaces": {"type": "array"}}})
    }
    fn apply(
        &self,
        resource: &LocalResource<'_>,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, RuleError> {
        let namespace =
            resource.resource_ref.split_once(':').and_then(|(_, rest)| rest.split_once('/')).map(|(ns, _)| ns);
        let wanted = params.get("namespaces").and_then(|v| v.as_array()).ok_or_else(|| RuleError::InvalidParams {
            rule: "IN_NAMESPACE".into(),
            reason: "expected `namespaces`".into(),
        })?;
        Ok(wanted.iter().any(|w| w.as_str() == namespace))
    }
}

#[tokio::test]
async fn conditions_are_applied_by_rules_registered_in_rust_when_no_plugin_is_configured() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let policy = r#"
roles:
  - name: role:default/readers
    members: [group:default/team-a]
    allow:
      - resource_type: catalog-entity
        actions: [read]
        conditions:
          allOf:
            - { rule: IS_ENTITY_KIND, params: { kinds: [Component] } }
            - { rule: IN_NAMESPACE, params: { namespaces: [default] } }
  - name: role:default/strangers
    members: [group:default/strangers]
    allow:
      - resource_type: catalog-entity
        conditions: { rule: IS_ENTITY_OWNER, params: { claims: [$ownerRefs] } }
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let mut config = load(&dir, &yaml(&backend, "enabled: true", "{ file: policy.yaml }")).unwrap();
    let rules = LocalRules::new([Arc::new(IsEntityKind) as Arc<dyn PermissionRule>, Arc::new(InNamespace)]);
    config.plugins = Arc::new((*config.plugins).clone().with_local_rules("catalog", rules));
    let running = Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let get = |path: &str, token: &str| {
        let request =
            client().get(format!("http://{}/api/catalog/entities/by-name{path}", running.addr)).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let jane = token("user:default/jane", &["group:default/team-a"]);
    assert_eq!(get("/component/default/payments", &jane).await, 200);
    assert_eq!(get("/template/default/payments", &jane).await, 403, "wrong kind");
    assert_eq!(get("/component/other/payments", &jane).await, 403, "wrong namespace");
    assert_eq!(backend.hits(), 1);
    // A rule the gateway cannot evaluate (it needs the entity) fails closed with 503.
    let stranger = token("user:default/sam", &["group:default/strangers"]);
    assert_eq!(get("/component/default/payments", &stranger).await, 503);
    assert_eq!(backend.hits(), 1);
}
