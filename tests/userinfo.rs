//! Group membership from a userinfo endpoint when the token has no groups claim (Backstage's
//! default since auth-backend 0.28): fetched once per token, coalesced, failing closed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use support::*;

/// A userinfo endpoint answering team-a membership for every caller, after `delay`.
async fn userinfo(calls: Arc<AtomicUsize>, delay: Duration) -> String {
    let addr = serve(move |request: http::Request<hyper::body::Incoming>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            if !request.headers().contains_key("authorization") {
                return json_response(StatusCode::UNAUTHORIZED, &json!({}));
            }
            json_response(
                StatusCode::OK,
                &json!({"claims": {"sub": "user:default/dan", "ent": ["user:default/dan", "group:default/team-a"]}}),
            )
        }
    })
    .await;
    format!("http://{addr}/api/auth/v1/userinfo")
}

fn yaml(backend: &Backend, jwks: &JwksServer, userinfo: &str, extra: &str) -> String {
    format!(
        r#"
identity:
  issuers:
    - {{ name: backstage, jwks_url: "{}", algorithms: [ES256], userinfo_url: "{userinfo}"{extra} }}
upstreams:
  app: {{ url: "{}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", authenticated: true }}
"#,
        jwks.url(),
        backend.url()
    )
}

fn token_without_ent(es: &Signer) -> String {
    es.sign(&json!({"sub": "user:default/dan", "iat": now(), "exp": now() + 600}))
}

#[tokio::test]
async fn groups_come_from_userinfo_once_per_token_even_under_concurrency() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let url = userinfo(calls.clone(), Duration::from_millis(100)).await;
    let gw = Gateway::start(&yaml(&backend, &jwks, &url, "")).await;
    let token = token_without_ent(&es);
    let requests = (0..10).map(|_| client().get(gw.url("/api/app/x")).bearer_auth(&token).send());
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "ten concurrent first uses, one userinfo call");
    assert_eq!(backend.last().headers["x-stagedoor-ownership"], "user:default/dan,group:default/team-a");
    // A token that carries `ent` never needs userinfo.
    let with_ent = es.sign(&claims("user:default/kim", &["group:default/ops"]));
    assert_eq!(client().get(gw.url("/api/app/x")).bearer_auth(&with_ent).send().await.unwrap().status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(backend.last().headers["x-stagedoor-ownership"], "user:default/kim,group:default/ops");
}

#[tokio::test]
async fn a_failing_or_slow_userinfo_fails_closed_with_503_within_the_bound() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let jwks = JwksServer::spawn(&[&es]).await;
    // Down: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = Gateway::start(&yaml(&backend, &jwks, &format!("http://{dead}/userinfo"), "")).await;
    let response = client().get(gw.url("/api/app/x")).bearer_auth(token_without_ent(&es)).send().await.unwrap();
    let message = envelope(response, 503, "ServiceUnavailableError").await;
    assert!(message.contains("userinfo"), "{message}");
    // Slow: answers after 5 s, the bound is 300 ms.
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = userinfo(calls, Duration::from_secs(5)).await;
    let gw = Gateway::start(&yaml(&backend, &jwks, &slow, ", userinfo_timeout: 300ms")).await;
    let started = Instant::now();
    let response = client().get(gw.url("/api/app/x")).bearer_auth(token_without_ent(&es)).send().await.unwrap();
    envelope(response, 503, "ServiceUnavailableError").await;
    assert!(started.elapsed() < Duration::from_secs(2), "waited {:?}", started.elapsed());
    assert_eq!(backend.hits(), 0, "never forwarded without knowing the groups");
}
