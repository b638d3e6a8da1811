//! Authentication end to end: real keys, real JWKS server, real upstream. Every rejection
//! also proves the upstream was never contacted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use support::*;

fn yaml(backend: &Backend, issuers: &str) -> String {
    format!(
        r#"
identity:
  issuers:
{issuers}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: /health, public: true }}
      - {{ path: "/{{*rest}}", authenticated: true }}
"#,
        backend = backend.url()
    )
}

fn jwks_issuer(jwks: &JwksServer, algorithms: &str, extra: &str) -> String {
    format!("    - {{ name: backstage, jwks_url: \"{}\", algorithms: [{algorithms}]{extra} }}", jwks.url())
}

async fn get(gw: &Gateway, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(gw.url("/api/app/things"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn assert_401(gw: &Gateway, backend: &Backend, token: &str, expected_message: &str) {
    assert_401_after(gw, backend, token, expected_message, 0).await;
}

/// `hits_before`: requests the backend saw before (control cases), which must not grow.
async fn assert_401_after(gw: &Gateway, backend: &Backend, token: &str, expected_message: &str, hits_before: usize) {
    let response = get(gw, Some(token)).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    let message = envelope(response, 401, "AuthenticationError").await;
    assert!(message.contains(expected_message), "expected `{expected_message}` in `{message}`");
    assert!(!message.contains(token), "the token must never be echoed");
    assert_eq!(backend.hits(), hits_before, "a rejected request reached the upstream");
}

#[tokio::test]
async fn es256_rs256_and_eddsa_tokens_verify_through_jwks() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let (es, rs, ed) = (Signer::es256("es"), Signer::rs256("rs"), Signer::eddsa("ed"));
    let jwks = JwksServer::spawn(&[&es, &rs, &ed]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256, RS256, EdDSA", ""))).await;
    for signer in [&es, &rs, &ed] {
        let token = signer.sign(&claims("user:default/jane", &["group:default/team-a"]));
        let response = get(&gw, Some(&token)).await;
        let status = response.status();
        assert_eq!(status, 200, "{:?}: {}", signer.alg, response.text().await.unwrap());
        let seen = backend.last();
        assert_eq!(seen.headers["x-stagedoor-user"], "user:default/jane");
        assert_eq!(seen.headers["x-stagedoor-ownership"], "user:default/jane,group:default/team-a");
        assert_eq!(seen.headers["authorization"], format!("Bearer {token}"));
    }
    assert_eq!(backend.hits(), 3);
}

#[tokio::test]
async fn hs256_tokens_verify_with_a_secret_from_the_environment() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let issuer = "    - { name: local, secret_env: SECRET_ENV, algorithms: [HS256] }";
    let gw = Gateway::start(&yaml(&backend, issuer)).await;
    let token = Signer::hs256(SECRET).sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    let forged = Signer::hs256("another-secret-of-at-least-32-bytes!!").sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&forged)).await.status(), 401);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn pem_key_files_verify_tokens() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let issuer = format!(
        "    - {{ name: pem, keys: [{{ pem_file: \"{}\" }}, {{ pem_file: \"{}\" }}], algorithms: [RS256, ES256] }}",
        fixture("rsa-public.pem").display(),
        fixture("ec-public.pem").display()
    );
    let gw = Gateway::start(&yaml(&backend, &issuer)).await;
    for signer in [Signer::rs256(""), Signer::es256("")] {
        let token = signer.sign(&claims("user:default/jane", &[]));
        let response = get(&gw, Some(&token)).await;
        let status = response.status();
        assert_eq!(status, 200, "{:?}: {}", signer.alg, response.text().await.unwrap());
    }
    let other = Signer::es256_other("").sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&other)).await.status(), 401);
}

#[tokio::test]
async fn a_missing_token_is_401_without_an_error_hint() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let jwks = JwksServer::spawn(&[&Signer::es256("k")]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let response = get(&gw, None).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let message = envelope(response, 401, "AuthenticationError").await;
    assert!(message.contains("missing bearer token"), "{message}");
    // A public route needs no token.
    assert_eq!(client().get(gw.url("/api/app/health")).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn tokens_failing_a_check_are_401_and_name_the_check() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let extra = ", issuer: \"https://backstage.example/api/auth\", audience: backstage, leeway: 30s";
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", extra))).await;
    let good = |patch: serde_json::Value| {
        let mut c = claims("user:default/jane", &[]);
        c["iss"] = json!("https://backstage.example/api/auth");
        c["aud"] = json!("backstage");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    // The control case passes, so each failure below is caused by its one change.
    assert_eq!(get(&gw, Some(&es.sign(&good(json!({}))))).await.status(), 200);
    let hits = backend.hits();

    let cases: Vec<(String, &str)> = vec![
        (es.sign(&good(json!({"exp": now() - 120}))), "token expired"),
        (es.sign(&good(json!({"nbf": now() + 600}))), "not valid yet"),
        (es.sign(&good(json!({"iat": now() + 600}))), "issued in the future"),
        (es.sign(&good(json!({"exp": null}))), "required claim `exp` is missing"),
        (es.sign(&good(json!({"aud": "someone-else"}))), "audience"),
        (es.sign(&good(json!({"aud": ["a", "b"]}))), "audience"),
        (es.sign(&good(json!({"aud": null}))), "required claim `aud` is missing"),
        (es.sign(&good(json!({"iss": "https://evil.example"}))), "issuer `https://evil.example` is not trusted"),
        (es.sign(&good(json!({"sub": null}))), "required claim `sub` is missing"),
        (es.sign(&good(json!({"sub": "user:default/jane,group:default/admins"}))), "claim `sub`"),
        (es.sign(&good(json!({"ent": ["group:default/a\r\nx-injected: 1"]}))), "claim `ent`"),
        (Signer::es256_other("k1").sign(&good(json!({}))), "signature verification failed"),
        (Signer::es256_other("unknown-kid").sign(&good(json!({}))), "no key with id `unknown-kid`"),
        (Signer::rs256("k1").sign(&good(json!({}))), "algorithm `RS256` is not accepted"),
        (unsigned(&json!({"alg": "none", "kid": "k1"}), &good(json!({})), ""), "algorithm `none` is not accepted"),
        (unsigned(&json!({"alg": "nOnE", "kid": "k1"}), &good(json!({})), "x"), "algorithm `nOnE` is not accepted"),
        (
            unsigned(&json!({"alg": "ES256", "kid": "k1"}), &good(json!({})), "bm90LWEtc2ln"),
            "signature verification failed",
        ),
        ("a.b".to_string(), "malformed token"),
        ("!!!.e30.sig".to_string(), "malformed token"),
    ];
    for (token, expected) in &cases {
        assert_401_after(&gw, &backend, token, expected, hits).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    // The classic HS/RS confusion: sign with HS256 using the public key bytes as the secret.
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let public = std::fs::read_to_string(fixture("ec-public.pem")).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = Signer::hs256(&public).sign_with(header, &claims("user:default/jane", &[]));
    assert_401(&gw, &backend, &token, "algorithm `HS256` is not accepted").await;
}

#[tokio::test]
async fn audience_is_not_checked_when_none_is_configured() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let mut c = claims("user:default/jane", &[]);
    c["aud"] = json!("anything");
    assert_eq!(get(&gw, Some(&es.sign(&c))).await.status(), 200);
}

#[tokio::test]
async fn jwks_rotation_picks_up_a_new_kid_and_refetches_at_most_once_per_interval() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let (old, new) = (Signer::es256("old"), Signer::es256_other("new"));
    let jwks = JwksServer::spawn(&[&old]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");
    assert_eq!(get(&gw, Some(&old.sign(&claims("user:default/a", &[])))).await.status(), 200);

    // The issuer rotates: the new key appears in the JWKS; a token with the new kid triggers
    // one refetch and is accepted.
    jwks.set(&[&old, &new]);
    assert_eq!(get(&gw, Some(&new.sign(&claims("user:default/a", &[])))).await.status(), 200);
    assert_eq!(jwks.fetches(), 2);

    // Unknown kids within the next 10 s do not refetch again (no amplification).
    for i in 0..5 {
        let stray = Signer::es256_other(&format!("stray-{i}")).sign(&claims("user:default/a", &[]));
        assert_eq!(get(&gw, Some(&stray)).await.status(), 401);
    }
    assert_eq!(jwks.fetches(), 2);
    // Cached keys keep working.
    assert_eq!(get(&gw, Some(&old.sign(&claims("user:default/a", &[])))).await.status(), 200);
}

#[tokio::test]
async fn a_jwks_that_is_down_at_start_does_not_stop_the_gateway_and_cached_keys_survive_outages() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    // A port with nothing listening: the JWKS is down.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let issuer = format!("    - {{ name: down, jwks_url: \"http://{dead}/jwks.json\", algorithms: [ES256] }}");
    let gw = Gateway::start(&yaml(&backend, &issuer)).await;
    let token = es.sign(&claims("user:default/jane", &[]));
    let response = get(&gw, Some(&token)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(client().get(gw.url("/api/app/health")).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn groups_come_from_a_configurable_dotted_claim() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let extra = ", user_claim: preferred_username, groups_claim: realm_access.roles";
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", extra))).await;
    let token = es.sign(&json!({
        "sub": "f81d4fae-7dec", "preferred_username": "user:default/kim",
        "realm_access": {"roles": ["group:default/ops", "group:default/dev"]},
        "iat": now(), "exp": now() + 600,
    }));
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    let seen = backend.last();
    assert_eq!(seen.headers["x-stagedoor-user"], "user:default/kim");
    assert_eq!(seen.headers["x-stagedoor-ownership"], "user:default/kim,group:default/ops,group:default/dev");
}

#[tokio::test]
async fn issuers_are_chosen_by_iss() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let (a, b) = (Signer::es256("a"), Signer::es256_other("b"));
    let (jwks_a, jwks_b) = (JwksServer::spawn(&[&a]).await, JwksServer::spawn(&[&b]).await);
    let issuers = format!(
        "    - {{ name: a, jwks_url: \"{}\", algorithms: [ES256], issuer: \"https://a\" }}\n    - {{ name: b, jwks_url: \"{}\", algorithms: [ES256], issuer: \"https://b\" }}",
        jwks_a.url(),
        jwks_b.url()
    );
    let gw = Gateway::start(&yaml(&backend, &issuers)).await;
    let mut c = claims("user:default/x", &[]);
    c["iss"] = json!("https://b");
    assert_eq!(get(&gw, Some(&b.sign(&c))).await.status(), 200);
    // b's token claiming to be from a: a's keys are used, and the signature fails.
    c["iss"] = json!("https://a");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("a".into());
    assert_eq!(get(&gw, Some(&b.sign_with(header, &c))).await.status(), 401);
}

#[tokio::test]
async fn two_authorization_headers_are_refused_with_400() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let token = es.sign(&claims("user:default/jane", &[]));
    let response = client()
        .get(gw.url("/api/app/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let message = envelope(response, 400, "InputError").await;
    assert!(message.contains("more than one `Authorization` header"), "{message}");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn a_jwks_that_breaks_later_keeps_cached_keys_working() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let token = es.sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    // The endpoint starts serving garbage; an unknown kid forces a refetch, which fails.
    jwks.set_raw(json!({"not": "a jwks"}));
    let stray = Signer::es256_other("k2").sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&stray)).await.status(), 401);
    assert_eq!(jwks.fetches(), 2);
    // The cached key still verifies.
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ", leeway: 1s"))).await;
    let mut c = claims("user:default/jane", &[]);
    c["exp"] = json!(now() + 1);
    let token = es.sign(&c);
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    assert_eq!(get(&gw, Some(&token)).await.status(), 200, "served from the cache");
    // Whole seconds: after 3.1 s the clock is past `exp` plus the 1 s leeway.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_401_after(&gw, &backend, &token, "token expired", 2).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_leaves_the_jwks() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let (old, new) = (Signer::es256("old"), Signer::es256_other("new"));
    let jwks = JwksServer::spawn(&[&old]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ""))).await;
    let token = old.sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    // The issuer withdraws the old key; a token with the new kid makes the gateway refetch.
    jwks.set(&[&new]);
    assert_eq!(get(&gw, Some(&new.sign(&claims("user:default/kim", &[])))).await.status(), 200);
    assert_401_after(&gw, &backend, &token, "no key with id `old`", 2).await;
}

#[tokio::test]
async fn a_reload_flushes_the_token_cache() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let issuer = "    - { name: local, secret_env: SECRET_ENV, algorithms: [HS256] }";
    let gw = Gateway::start(&yaml(&backend, issuer)).await;
    let token = Signer::hs256(SECRET).sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    // The new config trusts a different secret: the cached verification must not survive.
    let rotated = "0123456789abcdef0123456789abcdef-rotated";
    let text = yaml(&backend, "    - { name: local, secret_env: ROTATED, algorithms: [HS256] }");
    let path = gw.dir.path().join("gateway.yaml");
    let config =
        stagedoor::config::Config::from_yaml(&text, &path, |name| (name == "ROTATED").then(|| rotated.to_string()))
            .unwrap();
    gw.running.gateway.reload(&config).await.unwrap();
    assert_401_after(&gw, &backend, &token, "signature verification failed", 1).await;
    let fresh = Signer::hs256(rotated).sign(&claims("user:default/jane", &[]));
    assert_eq!(get(&gw, Some(&fresh)).await.status(), 200);
}

#[tokio::test]
async fn a_token_with_a_fractional_exp_leaves_the_cache_when_it_expires() {
    // Found by fuzzing: a fractional `exp` was cached as "never expires".
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let gw = Gateway::start(&yaml(&backend, &jwks_issuer(&jwks, "ES256", ", leeway: 1s"))).await;
    let mut c = claims("user:default/jane", &[]);
    c["exp"] = json!(now() as f64 + 1.5);
    let token = es.sign(&c);
    assert_eq!(get(&gw, Some(&token)).await.status(), 200);
    // jsonwebtoken may round `exp` up to the next second; after 4.6 s the clock is past it plus
    // the 1 s leeway whatever the rounding.
    tokio::time::sleep(std::time::Duration::from_millis(4600)).await;
    assert_401_after(&gw, &backend, &token, "token expired", 1).await;
}
