//! The shipped presets end to end: `stagedoor check` accepts config/backstage.yaml, and a real
//! gateway including config/presets/catalog.yaml decides real signed requests in front of a
//! real recording backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use support::*;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_accepts_the_backstage_example_with_its_three_presets() {
    let output = Command::new(env!("CARGO_BIN_EXE_stagedoor"))
        .args(["check", "--config", "config/backstage.yaml"])
        .current_dir(manifest_dir())
        .env("NO_COLOR", "1")
        .env_remove("STAGEDOOR_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("config/backstage.yaml: ok"), "{stdout}");
    let lines: Vec<String> = stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for expected in [
        "include (3):",
        "config/presets/catalog.yaml (1 route group(s), 21 rule(s))",
        "config/presets/scaffolder.yaml (1 route group(s), 12 rule(s))",
        "config/presets/kubernetes.yaml (1 route group(s), 5 rule(s))",
        "rules (38):",
        "DELETE /api/catalog/entities/by-uid/{uid} → catalog.entity.delete (catalog-entity) [catalog]",
        "GET /api/scaffolder/v2/actions → authenticated [scaffolder]",
        "ANY /api/kubernetes/proxy/{*rest} → kubernetes.proxy [kubernetes]",
    ] {
        assert!(lines.iter().any(|l| l == expected), "`{expected}` missing from:\n{stdout}");
    }
}

/// Readers may read every entity, owners only theirs (CONDITIONAL), cleaners may delete.
const POLICY: &str = r#"
super_users: [group:default/admins]
roles:
  - name: role:default/readers
    members: [group:default/readers]
    allow:
      - permission: catalog.entity.read
  - name: role:default/owners
    members: [group:default/owners]
    allow:
      - permission: catalog.entity.read
        resource_type: catalog-entity
        conditions:
          anyOf:
            - rule: IS_ENTITY_OWNER
              params: { claims: [$ownerRefs] }
  - name: role:default/cleaners
    members: [group:default/cleaners]
    allow:
      - permission: catalog.entity.delete
"#;

async fn catalog_gateway(backend: &Backend) -> Gateway {
    let preset = manifest_dir().join("config/presets/catalog.yaml");
    let yaml = format!(
        r#"
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  catalog: {{ url: "{backend}" }}
include: ["{preset}"]
policy: {{ file: policy.yaml }}
"#,
        backend = backend.url(),
        preset = preset.display()
    );
    Gateway::start_with(&yaml, &[("policy.yaml", POLICY)]).await
}

fn token(sub: &str, groups: &[&str]) -> String {
    Signer::hs256(SECRET).sign(&claims(sub, groups))
}

async fn send(gw: &Gateway, method: Method, path: &str, token: &str) -> reqwest::Response {
    client().request(method, gw.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn an_entity_by_name_is_read_only_when_the_policy_allows_it() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = catalog_gateway(&backend).await;
    let path = "/api/catalog/entities/by-name/component/default/payments";

    let response = send(&gw, Method::GET, path, &token("user:default/rita", &["group:default/readers"])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(backend.hits(), 1);
    let seen = backend.last();
    assert_eq!((seen.method.as_str(), seen.uri.as_str()), ("GET", path));
    assert_eq!(seen.headers["x-stagedoor-user"], "user:default/rita");

    let response = send(&gw, Method::GET, path, &token("user:default/mallory", &[])).await;
    let message = envelope(response, 403, "NotAllowedError").await;
    assert_eq!(
        message,
        "permission `catalog.entity.read` on `component:default/payments` is denied for `user:default/mallory`"
    );
    let anonymous = client().get(gw.url(path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(backend.hits(), 1, "a refused request reached the catalog");
}

#[tokio::test]
async fn deleting_an_entity_by_uid_needs_catalog_entity_delete() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = catalog_gateway(&backend).await;
    let path = "/api/catalog/entities/by-uid/0f6e3c1a";

    // Reading every entity does not allow deleting one.
    let response = send(&gw, Method::DELETE, path, &token("user:default/rita", &["group:default/readers"])).await;
    let message = envelope(response, 403, "NotAllowedError").await;
    assert_eq!(message, "permission `catalog.entity.delete` is denied for `user:default/rita`");
    assert_eq!(backend.hits(), 0);

    let response = send(&gw, Method::DELETE, path, &token("user:default/cleo", &["group:default/cleaners"])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(backend.hits(), 1);
    assert_eq!((backend.last().method.as_str(), backend.last().uri.as_str()), ("DELETE", path));
}

#[tokio::test]
async fn list_routes_forward_a_conditional_decision_for_the_catalog_to_filter() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = catalog_gateway(&backend).await;
    let owner = token("user:default/olga", &["group:default/owners"]);

    // CONDITIONAL (owners read only their entities): forwarded, the catalog filters.
    for (method, path) in [
        (Method::GET, "/api/catalog/entities?filter=kind=component"),
        (Method::GET, "/api/catalog/entities/by-query"),
        (Method::POST, "/api/catalog/entities/by-refs"),
        (Method::GET, "/api/catalog/entity-facets?facet=kind"),
    ] {
        let before = backend.hits();
        let response = send(&gw, method.clone(), path, &owner).await;
        assert_eq!(response.status(), 200, "{method} {path}");
        assert_eq!(backend.hits(), before + 1, "{method} {path}");
        assert_eq!(backend.last().uri, path);
        assert_eq!(backend.last().headers["x-stagedoor-ownership"], "user:default/olga,group:default/owners");
    }

    // DENY is still refused here.
    let forwarded = backend.hits();
    let response = send(&gw, Method::GET, "/api/catalog/entities", &token("user:default/mallory", &[])).await;
    envelope(response, 403, "NotAllowedError").await;
    assert_eq!(backend.hits(), forwarded);
}

#[tokio::test]
async fn a_route_the_preset_does_not_list_is_not_found_and_never_forwarded() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = catalog_gateway(&backend).await;
    let admin = token("user:default/ada", &["group:default/admins"]);
    for (method, path) in [
        (Method::GET, "/api/catalog/secrets"),
        // A listed path with a method the preset does not list.
        (Method::POST, "/api/catalog/entities"),
        (Method::PATCH, "/api/catalog/locations/7"),
        (Method::GET, "/api/scaffolder/v2/tasks"),
    ] {
        let response = send(&gw, method.clone(), path, &admin).await;
        envelope(response, 404, "NotFoundError").await;
    }
    assert_eq!(backend.hits(), 0);
    // The super user passes the listed routes.
    assert_eq!(send(&gw, Method::GET, "/api/catalog/locations/7", &admin).await.status(), 200);
    assert_eq!(backend.hits(), 1);
}
