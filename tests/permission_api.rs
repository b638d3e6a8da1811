//! The permission backend API served by the gateway: `/api/permission/health` and
//! `/api/permission/authorize`, answered by the same policy that guards proxied routes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use serde_json::{Value, json};
use support::*;

const POLICY: &str = include_str!("../config/policy.yaml");

fn yaml(backend: &Backend) -> String {
    format!(
        r#"
permission_api: {{ enabled: true }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  catalog: {{ url: "{}" }}
routes:
  - prefix: /api/catalog
    upstream: catalog
    rules:
      - {{ methods: [GET], path: /locations, permission: catalog.location.read, action: read }}
policy: {{ file: policy.yaml }}
"#,
        backend.url()
    )
}

async fn start() -> (Gateway, Backend) {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start_with(&yaml(&backend), &[("policy.yaml", POLICY)]).await;
    (gw, backend)
}

fn token(sub: &str, groups: &[&str]) -> String {
    Signer::hs256(SECRET).sign(&claims(sub, groups))
}

async fn authorize(gw: &Gateway, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = client().post(gw.url("/api/permission/authorize")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn basic(id: &str, name: &str, action: &str) -> Value {
    json!({"id": id, "permission": {"type": "basic", "name": name, "attributes": {"action": action}}})
}

fn resource(id: &str, name: &str, action: &str, resource_ref: Value) -> Value {
    json!({"id": id, "permission": {"type": "resource", "name": name, "attributes": {"action": action}, "resourceType": "catalog-entity"}, "resourceRef": resource_ref})
}

#[tokio::test]
async fn health_answers_ok_without_credentials() {
    let (gw, backend) = start().await;
    let response = client().get(gw.url("/api/permission/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn decisions_come_back_in_request_order_with_ids_echoed() {
    let (gw, backend) = start().await;
    let body = json!({"items": [
        basic("a", "catalog.location.read", "read"),
        basic("b", "catalog.location.create", "create"),
        resource("c", "catalog.entity.read", "read", json!("component:default/payments")),
        resource("d", "catalog.entity.read", "read", json!(["component:default/a", "component:default/b"])),
        basic("e", "scaffolder.action.execute", "read"),
    ]});
    let carol = token("user:default/carol", &[]);
    let response = authorize(&gw, Some(&carol), &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"items": [
            {"id": "a", "result": "ALLOW"},
            {"id": "b", "result": "DENY"},
            {"id": "c", "result": "ALLOW"},
            {"id": "d", "result": "ALLOW"},
            {"id": "e", "result": "DENY"},
        ]})
    );
    // The same policy guards the proxied route: carol may read locations, mallory may not.
    let proxied = client().get(gw.url("/api/catalog/locations")).bearer_auth(&carol).send().await.unwrap();
    assert_eq!(proxied.status(), 200);
    let mallory = token("user:default/mallory", &[]);
    let answer: Value = authorize(&gw, Some(&mallory), &body).await.json().await.unwrap();
    assert_eq!(answer["items"][0], json!({"id": "a", "result": "DENY"}));
    let proxied = client().get(gw.url("/api/catalog/locations")).bearer_auth(&mallory).send().await.unwrap();
    assert_eq!(proxied.status(), 403);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn an_empty_batch_answers_an_empty_list() {
    let (gw, _backend) = start().await;
    let response = authorize(&gw, Some(&token("user:default/jane", &[])), &json!({"items": []})).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"items": []}));
}

#[tokio::test]
async fn callers_without_credentials_get_401() {
    let (gw, _backend) = start().await;
    let response = authorize(&gw, None, &json!({"items": []})).await;
    let message = envelope(response, 401, "AuthenticationError").await;
    assert_eq!(message, "Missing credentials");
    let response = authorize(&gw, Some("not.a.token"), &json!({"items": []})).await;
    envelope(response, 401, "AuthenticationError").await;
}

#[tokio::test]
async fn a_direct_user_asking_about_a_resource_permission_without_a_ref_gets_400() {
    let (gw, _backend) = start().await;
    let item = json!({"id": "x", "permission": {"type": "resource", "name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"}});
    let response = authorize(&gw, Some(&token("user:default/jane", &[])), &json!({"items": [item]})).await;
    let message = envelope(response, 400, "InputError").await;
    assert_eq!(
        message,
        "Resource permissions require a resourceRef to be set. Direct user requests without a resourceRef are not allowed."
    );
}

#[tokio::test]
async fn invalid_batches_are_400_with_zod_style_issues() {
    let (gw, _backend) = start().await;
    let jane = token("user:default/jane", &[]);
    let cases = [
        (json!({}), json!(["items"])),
        (
            json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x"}}]}),
            json!(["items", 0, "permission", "attributes"]),
        ),
        (
            json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {}}, "resourceRef": "r"}]}),
            json!(["items", 0, "resourceRef"]),
        ),
        (json!({"items": [resource("1", "x", "read", json!([]))]}), json!(["items", 0, "resourceRef"])),
        (
            json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {"action": "erase"}}}]}),
            json!(["items", 0, "permission", "attributes", "action"]),
        ),
    ];
    for (body, path) in cases {
        let message = envelope(authorize(&gw, Some(&jane), &body).await, 400, "InputError").await;
        let issues: Value = serde_json::from_str(&message).unwrap();
        assert_eq!(issues[0]["path"], path, "{body}");
    }
    let not_json = client()
        .post(gw.url("/api/permission/authorize"))
        .bearer_auth(&jane)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    envelope(not_json, 400, "InputError").await;
}

#[tokio::test]
async fn a_body_over_100_kb_is_413() {
    let (gw, _backend) = start().await;
    let items: Vec<Value> = (0..2000).map(|i| basic(&format!("id-{i}"), "catalog.location.read", "read")).collect();
    let body = json!({ "items": items });
    assert!(body.to_string().len() > 100 * 1024);
    let response = authorize(&gw, Some(&token("user:default/jane", &[])), &body).await;
    envelope(response, 413, "PayloadTooLargeError").await;
}

#[tokio::test]
async fn a_conditional_decision_on_a_named_resource_fails_closed_without_a_plugin() {
    let (gw, _backend) = start().await;
    let member = token("user:default/dan", &["group:default/team-a"]);
    let body =
        json!({"items": [resource("1", "catalog.entity.delete", "delete", json!("component:default/payments"))]});
    let message = envelope(authorize(&gw, Some(&member), &body).await, 500, "Error").await;
    assert_eq!(message, "no plugin `catalog` is configured to apply conditions");
}
