//! Compatibility with Backstage's own npm packages: the real `PermissionClient` from
//! `@backstage/plugin-permission-common` (pinned in `tests/compat/package-lock.json`) talks to
//! stagedoor's `/api/permission/authorize` and gets the answers the policy file gives.
//!
//! Needs Node.js ≥ 20 and `npm ci` in `tests/compat`; without them the tests print why they
//! did not run and pass, unless `STAGEDOOR_REQUIRE_NODE=1` (set by `.ci/run`) makes that a
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

#[path = "compat/node_harness.rs"]
mod node_harness;

use node_harness::NodeEnv;
use serde_json::{Value, json};
use support::*;

const POLICY: &str = include_str!("../config/policy.yaml");

async fn gateway(es: &Signer) -> (Gateway, JwksServer) {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let jwks = JwksServer::spawn(&[es]).await;
    let yaml = format!(
        r#"
permission_api: {{ enabled: true }}
identity:
  issuers:
    - {{ name: backstage, jwks_url: "{}", algorithms: [ES256] }}
upstreams:
  catalog: {{ url: "{}" }}
routes:
  - prefix: /api/catalog
    upstream: catalog
    rules:
      - {{ path: /health, public: true }}
policy: {{ file: policy.yaml }}
"#,
        jwks.url(),
        backend.url()
    );
    (Gateway::start_with(&yaml, &[("policy.yaml", POLICY)]).await, jwks)
}

fn scenario() -> Value {
    let read =
        json!({"name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"});
    let delete =
        json!({"name": "catalog.entity.delete", "attributes": {"action": "delete"}, "resourceType": "catalog-entity"});
    json!({"authorize": [
        {"permission": {"name": "catalog.location.read", "attributes": {"action": "read"}}},
        {"permission": {"name": "catalog.location.create", "attributes": {"action": "create"}}},
        {"permission": read, "resourceRef": "component:default/payments"},
        {"permission": read, "resourceRef": "component:default/secret-stuff"},
        {"permission": delete, "resourceRef": "component:default/payments"},
        {"permission": {"name": "scaffolder.template.parameter.read", "attributes": {"action": "read"}}},
    ]})
}

/// Runs the real PermissionClient (client-smoke.js) against the gateway.
async fn client_smoke(node: &NodeEnv, url: &str, token: &str, batched: bool, scenario: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.json");
    std::fs::write(&file, scenario.to_string()).unwrap();
    let (node, url, token) = (node.clone(), url.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        let batched = if batched { "1" } else { "0" };
        node.run_json(
            "client-smoke.js",
            &[file.to_str().unwrap()],
            &[("STAGEDOOR_URL", &url), ("STAGEDOOR_TOKEN", &token), ("STAGEDOOR_BATCHED", batched)],
        )
        .unwrap()
    })
    .await
    .unwrap()
}

fn results(output: &Value, call: &str) -> Vec<Value> {
    assert_eq!(output[call]["ok"], true, "{output}");
    output[call]["results"].as_array().unwrap().iter().map(|r| r["result"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_permission_client_gets_the_policy_answers_batched_and_unbatched() {
    let Some(node) = NodeEnv::detect() else { return };
    let es = Signer::es256("backstage-key");
    let (gw, _jwks) = gateway(&es).await;
    let url = format!("http://{}", gw.running.addr);
    // carol is in team-a: she reads locations and entities, may never create locations, and
    // her delete is CONDITIONAL (owner only) — which needs the catalog to apply, so for a
    // named resource it must not come back as ALLOW.
    let carol = es.sign(&claims("user:default/carol", &[]));
    let outsider = es.sign(&claims("user:default/mallory", &[]));
    let admin = es.sign(&claims("user:default/root", &["group:default/admins"]));
    let definitive = json!({"authorize": scenario()["authorize"].as_array().unwrap()[..4].to_vec()});
    for batched in [false, true] {
        let out = client_smoke(&node, &url, &carol, batched, &definitive).await;
        assert_eq!(
            results(&out, "authorize"),
            [json!("ALLOW"), json!("DENY"), json!("ALLOW"), json!("ALLOW")],
            "batched={batched}"
        );
        let out = client_smoke(&node, &url, &outsider, batched, &definitive).await;
        assert_eq!(
            results(&out, "authorize"),
            [json!("DENY"), json!("DENY"), json!("ALLOW"), json!("ALLOW")],
            "batched={batched}"
        );
        let out = client_smoke(&node, &url, &admin, batched, &scenario()).await;
        assert_eq!(results(&out, "authorize"), vec![json!("ALLOW"); 6], "batched={batched}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_sees_backstage_errors_for_direct_conditional_requests_and_bad_tokens() {
    let Some(node) = NodeEnv::detect() else { return };
    let es = Signer::es256("backstage-key");
    let (gw, _jwks) = gateway(&es).await;
    let url = format!("http://{}", gw.running.addr);
    let carol = es.sign(&claims("user:default/carol", &[]));
    // authorizeConditional with a user's own token: Backstage answers 400 (only plugins acting
    // for a user may receive raw conditions).
    let conditional = json!({"authorizeConditional": [
        {"permission": {"name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"}}
    ]});
    let out = client_smoke(&node, &url, &carol, false, &conditional).await;
    assert_eq!(out["authorizeConditional"]["ok"], false, "{out}");
    assert_eq!(out["authorizeConditional"]["error"]["statusCode"], 400, "{out}");
    assert_eq!(out["authorizeConditional"]["error"]["body"]["error"]["name"], "InputError", "{out}");
    // A token signed by a key the JWKS does not publish: 401, recognised by the client as a
    // Backstage error envelope.
    let forged = Signer::es256_other("backstage-key").sign(&claims("user:default/carol", &[]));
    let out = client_smoke(
        &node,
        &url,
        &forged,
        false,
        &json!({"authorize": scenario()["authorize"].as_array().unwrap()[..1].to_vec()}),
    )
    .await;
    assert_eq!(out["authorize"]["ok"], false, "{out}");
    assert_eq!(out["authorize"]["error"]["statusCode"], 401, "{out}");
    assert_eq!(out["authorize"]["error"]["body"]["error"]["name"], "AuthenticationError", "{out}");
}
