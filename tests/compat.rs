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

/// Only team-a may read catalog entities, and only those it owns: every read is CONDITIONAL.
const OWNER_POLICY: &str = r#"
roles:
  - name: role:default/team-a
    members: [group:default/team-a]
    allow:
      - resource_type: catalog-entity
        actions: [read]
        conditions:
          anyOf:
            - rule: IS_ENTITY_OWNER
              params: { claims: [$ownerRefs] }
"#;

const STATIC_TOKEN: &str = "stagedoor-static-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_are_applied_by_a_real_backstage_plugin_on_both_doors() {
    let Some(node) = NodeEnv::detect() else { return };
    // The plugin: Backstage's real createPermissionIntegrationRouter, behind the same auth rules
    // backend-defaults puts in front of a plugin, accepting stagedoor's static token.
    let es = Signer::es256("backstage-key");
    let jwks = JwksServer::spawn(&[&es]).await;
    // The plugin verifies the forwarded user token itself (its JWKS is the same auth JWKS).
    let discovery = format!("http://{}", jwks.addr);
    let plugin = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || {
            node.start(
                "plugin-backend.js",
                &[
                    ("AUTH_MODE", "backstage"),
                    ("DISCOVERY_URL", &discovery),
                    ("STATIC_TOKENS", &format!("{STATIC_TOKEN}=stagedoor")),
                ],
            )
            .unwrap()
        })
        .await
        .unwrap()
    };
    let plugin_root = plugin.info["url"].as_str().unwrap().to_owned();
    let plugin_base = plugin.info["baseUrl"].as_str().unwrap().to_owned();
    let yaml = format!(
        r#"
permission_api: {{ enabled: true }}
plugins:
  catalog: {{ url: "{plugin_base}", token_env: CATALOG_TOKEN, resource_types: [catalog-entity] }}
identity:
  issuers:
    - {{ name: backstage, jwks_url: "{}", algorithms: [ES256] }}
upstreams:
  catalog: {{ url: "{plugin_root}" }}
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
policy: {{ file: policy.yaml }}
"#,
        jwks.url()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), OWNER_POLICY).unwrap();
    let path = dir.path().join("gateway.yaml");
    let config = stagedoor::config::Config::from_yaml(&yaml, &path, |name| {
        (name == "CATALOG_TOKEN").then(|| STATIC_TOKEN.to_string())
    })
    .unwrap();
    let running = stagedoor::server::Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", running.addr);
    let dan = es.sign(&claims("user:default/dan", &["group:default/team-a"]));
    let get = |name: &str| {
        client().get(format!("{url}/api/catalog/entities/by-name/component/default/{name}")).bearer_auth(&dan).send()
    };

    // The proxy door: the owner reads, a non-owner and a missing entity get 403.
    let owned = get("payments").await.unwrap();
    assert_eq!(owned.status(), 200);
    assert_eq!(owned.json::<Value>().await.unwrap()["metadata"]["name"], "payments");
    let other = get("search").await.unwrap();
    let message = envelope(other, 403, "NotAllowedError").await;
    assert!(message.contains("conditions applied by plugin `catalog`"), "{message}");
    assert_eq!(get("does-not-exist").await.unwrap().status(), 403);

    // The /authorize door, through the real PermissionClient, single and batched.
    let read =
        json!({"name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"});
    let scenario = json!({"authorize": [
        {"permission": read, "resourceRef": "component:default/payments"},
        {"permission": read, "resourceRef": "component:default/search"},
        {"permission": read, "resourceRef": "component:default/does-not-exist"},
    ]});
    for batched in [false, true] {
        let out = client_smoke(&node, &url, &dan, batched, &scenario).await;
        assert_eq!(
            results(&out, "authorize"),
            [json!("ALLOW"), json!("DENY"), json!("DENY")],
            "batched={batched}: {out}"
        );
    }

    // Every apply-conditions call carried stagedoor's own credential, never the user's token.
    let log: Value = client().get(format!("{plugin_root}/__requests")).send().await.unwrap().json().await.unwrap();
    let calls: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["url"].as_str().is_some_and(|u| u.ends_with("/apply-conditions")))
        .collect();
    assert!(calls.len() >= 5, "{log}");
    for call in calls {
        assert_eq!(call["headers"]["authorization"], format!("Bearer {STATIC_TOKEN}"), "{call}");
    }
    running.shutdown().await;
    drop(plugin);
}

/// POSTs JSON to mint.js and returns the answer.
async fn mint(mint_url: &str, path: &str, body: Value) -> Value {
    client().post(format!("{mint_url}{path}")).json(&body).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_plugin_tokens_with_and_without_obo_are_handled_like_the_permission_backend() {
    let Some(node) = NodeEnv::detect() else { return };
    // mint.js signs user, limited and plugin tokens exactly as Backstage does and serves their
    // JWKS where Backstage would: /api/auth/.well-known/jwks.json and
    // /api/<plugin>/.backstage/auth/v1/jwks.json.
    let minter = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || node.start("mint.js", &[])).await.unwrap().unwrap()
    };
    let mint_url = minter.info["url"].as_str().unwrap().to_owned();
    let backend = Backend::spawn(Behaviour::Echo).await;
    let yaml = format!(
        r#"
permission_api: {{ enabled: true }}
plugins:
  catalog: {{ url: "{mint_url}/api/catalog" }}
identity:
  issuers:
    - {{ name: backstage, jwks_url: "{mint_url}/api/auth/.well-known/jwks.json", algorithms: [ES256], userinfo_url: "{mint_url}/api/auth/v1/userinfo" }}
upstreams:
  app: {{ url: "{}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: /health, public: true }}
policy: {{ file: policy.yaml }}
"#,
        backend.url()
    );
    let gw = Gateway::start_with(&yaml, &[("policy.yaml", POLICY)]).await;
    let user = mint(
        &mint_url,
        "/__mint/user",
        json!({"sub": "user:default/dan", "ent": ["user:default/dan", "group:default/team-a"]}),
    )
    .await;
    let user_token = user["token"].as_str().unwrap().to_owned();
    let on_behalf =
        mint(&mint_url, "/__mint/plugin", json!({"sub": "catalog", "aud": "permission", "obo": user_token})).await;
    let service = mint(&mint_url, "/__mint/plugin", json!({"sub": "catalog", "aud": "permission"})).await;
    let stranger =
        mint(&mint_url, "/__mint/plugin", json!({"sub": "scaffolder", "aud": "permission", "obo": user_token})).await;
    let wrong_aud =
        mint(&mint_url, "/__mint/plugin", json!({"sub": "catalog", "aud": "catalog", "obo": user_token})).await;

    let item = json!({"id": "1", "permission": {"type": "resource", "name": "catalog.entity.delete", "attributes": {"action": "delete"}, "resourceType": "catalog-entity"}});
    let body = json!({"items": [item, {"id": "2", "permission": {"type": "basic", "name": "catalog.location.read", "attributes": {"action": "read"}}}]});
    let ask = |token: &str| {
        client().post(gw.url("/api/permission/authorize")).bearer_auth(token.to_owned()).json(&body).send()
    };
    // A plugin acting for dan (obo) receives the raw CONDITIONAL decision, with dan's refs —
    // resolved from the limited obo token through userinfo, since limited tokens carry no `ent`.
    let answer: Value = ask(on_behalf["token"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["items"][0]["result"], "CONDITIONAL", "{answer}");
    assert_eq!(answer["items"][0]["pluginId"], "catalog");
    assert_eq!(
        answer["items"][0]["conditions"],
        json!({"anyOf": [{"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["user:default/dan", "group:default/team-a"]}}]})
    );
    assert_eq!(answer["items"][1], json!({"id": "2", "result": "ALLOW"}));
    // A service principal (no obo) is refused, as Backstage does.
    let message = envelope(ask(service["token"].as_str().unwrap()).await.unwrap(), 403, "NotAllowedError").await;
    assert_eq!(message, "This endpoint does not allow 'service' credentials");
    // A plugin stagedoor does not know, or a token addressed to another plugin: 401.
    envelope(ask(stranger["token"].as_str().unwrap()).await.unwrap(), 401, "AuthenticationError").await;
    envelope(ask(wrong_aud["token"].as_str().unwrap()).await.unwrap(), 401, "AuthenticationError").await;
    // The user's own token is a direct caller: a resource permission without a ref is 400.
    envelope(ask(&user_token).await.unwrap(), 400, "InputError").await;
    // A limited token is only good inside `obo`, never as a bearer token of its own.
    let limited = user["limitedToken"].as_str().unwrap();
    let message = envelope(ask(limited).await.unwrap(), 401, "AuthenticationError").await;
    assert!(message.contains("vnd.backstage.limited-user"), "{message}");
    drop(minter);
}
