//! What the upstream receives, and what happens when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use support::*;

fn yaml(backend_url: &str, timeout: &str, server: &str) -> String {
    format!(
        r#"
server: {{ {server} }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend_url}", timeout: {timeout} }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: /public, public: true }}
      - {{ path: "/{{*rest}}", authenticated: true }}
"#
    )
}

fn jane() -> String {
    Signer::hs256(SECRET).sign(&claims("user:default/jane", &["group:default/team-a"]))
}

#[tokio::test]
async fn identity_headers_are_set_and_spoofed_copies_never_reach_the_upstream() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend.url(), "5s", "")).await;
    let token = jane();
    let request = format!(
        "GET /api/app/things?x=1 HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer {token}\r\n\
         X-Stagedoor-User: user:default/admin\r\nx-stagedoor-ownership: group:default/admins\r\n\
         x_stagedoor_user: user:default/admin\r\nX_STAGEDOOR_OWNERSHIP: group:default/admins\r\n\
         Connection: close, x-secret\r\nx-secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-HTTP-Method-Override: DELETE\r\n\
         X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n\r\n"
    );
    let response = raw(gw.running.addr, &request).await;
    assert_eq!(raw_status(&response), 200, "{response}");
    let seen = backend.last();
    assert_eq!(seen.uri, "/api/app/things?x=1");
    let values =
        |name: &str| seen.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(values("x-stagedoor-user"), ["user:default/jane"]);
    assert_eq!(values("x-stagedoor-ownership"), ["user:default/jane,group:default/team-a"]);
    for gone in [
        "x_stagedoor_user",
        "x_stagedoor_ownership",
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-http-method-override",
    ] {
        assert!(!seen.headers.contains_key(gone), "`{gone}` reached the upstream");
    }
    assert_eq!(values("authorization"), [format!("Bearer {token}")]);
    assert_eq!(values("x-forwarded-for"), ["127.0.0.1"], "an untrusted peer's X-Forwarded-For is replaced");
    assert_eq!(values("x-forwarded-host"), ["gw.example"]);
    assert_eq!(values("x-forwarded-proto"), ["http"]);
    assert_eq!(values("host"), [backend.addr.to_string()]);
    assert_eq!(seen.method, "GET");
    assert!(seen.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn public_routes_forward_without_identity_and_strip_spoofed_identity() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend.url(), "5s", "")).await;
    let response = client()
        .get(gw.url("/api/app/public"))
        .header("x-stagedoor-user", "user:default/admin")
        .header("x-stagedoor-ownership", "group:default/admins")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = backend.last();
    assert!(!seen.headers.contains_key("x-stagedoor-user"));
    assert!(!seen.headers.contains_key("x-stagedoor-ownership"));
}

#[tokio::test]
async fn x_forwarded_for_is_appended_for_trusted_proxies() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend.url(), "5s", "trusted_proxies: [127.0.0.0/8]")).await;
    let response = client()
        .get(gw.url("/api/app/x"))
        .bearer_auth(jane())
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = backend.last();
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn custom_identity_header_names_are_used_and_their_spoofs_stripped() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let text = yaml(&backend.url(), "5s", "")
        .replace("identity:\n", "identity:\n  headers: { user: x-auth-user, ownership: x-auth-groups }\n");
    let gw = Gateway::start(&text).await;
    let response = client()
        .get(gw.url("/api/app/x"))
        .bearer_auth(jane())
        .header("x-auth-groups", "group:default/admins")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = backend.last();
    assert_eq!(seen.headers["x-auth-user"], "user:default/jane");
    assert_eq!(seen.headers["x-auth-groups"], "user:default/jane,group:default/team-a");
    assert!(!seen.headers.contains_key("x-stagedoor-user"));
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_a_slow_one_504_and_the_gateway_keeps_serving() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gw = Gateway::start(&yaml(&dead, "5s", "")).await;
    let message =
        envelope(client().get(gw.url("/api/app/x")).bearer_auth(jane()).send().await.unwrap(), 502, "BadGatewayError")
            .await;
    assert_eq!(message, "upstream `app` is unavailable");

    let slow = Backend::spawn(Behaviour::Slow(Duration::from_secs(5))).await;
    let gw = Gateway::start(&yaml(&slow.url(), "300ms", "")).await;
    let started = std::time::Instant::now();
    let message = envelope(
        client().get(gw.url("/api/app/x")).bearer_auth(jane()).send().await.unwrap(),
        504,
        "GatewayTimeoutError",
    )
    .await;
    assert_eq!(message, "upstream `app` did not answer in time");
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout applies: {:?}", started.elapsed());
    // Still serving: the gateway answers the next requests at once, itself or by timing out again.
    let response = client().get(gw.url("/api/app/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let again = std::time::Instant::now();
    let response = client().get(gw.url("/api/app/public")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(again.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn http2_clients_are_served_and_forwarded_over_http1() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend.url(), "5s", "")).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = h2.get(gw.url("/api/app/x")).bearer_auth(jane()).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(backend.last().headers["x-stagedoor-user"], "user:default/jane");
}

#[tokio::test]
async fn an_upstream_configured_for_http2_is_spoken_to_in_http2_on_one_connection() {
    let connections = Arc::new(AtomicUsize::new(0));
    let addr = serve(move |request: Request<Incoming>| async move {
        let version = format!("{:?}", request.version());
        let user = request.headers().get("x-stagedoor-user").map(|v| v.to_str().unwrap().to_owned());
        json_response(StatusCode::OK, &json!({"version": version, "path": request.uri().path(), "user": user}))
    })
    .await;
    // Count connections with a TCP relay in front of the h2c server.
    let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = relay.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(addr).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let config =
        yaml(&format!("http://{relay_addr}"), "5s", "").replace("timeout: 5s }", "timeout: 5s, protocol: http2 }");
    assert!(config.contains("protocol: http2"));
    let gw = Gateway::start(&config).await;
    let token = jane();
    let client = client();
    for _ in 0..2 {
        let answers = futures_util::future::join_all(
            (0..8).map(|i| client.get(gw.url(&format!("/api/app/item/{i}"))).bearer_auth(&token).send()),
        )
        .await;
        for (i, response) in answers.into_iter().enumerate() {
            let response = response.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["version"], "HTTP/2.0");
            assert_eq!(body["path"], format!("/api/app/item/{i}"));
            assert_eq!(body["user"], "user:default/jane");
        }
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "every request shares one connection");
}

#[tokio::test]
async fn an_unknown_upstream_protocol_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = yaml("http://127.0.0.1:1", "5s", "").replace("timeout: 5s }", "timeout: 5s, protocol: http3 }");
    let err = load(&dir, &config).expect_err("http3 accepted").to_string();
    assert!(err.contains("upstreams.app.protocol") || err.contains("upstreams.app"), "{err}");
    assert!(err.contains("http1") && err.contains("http2"), "{err}");
}

/// Sends one request on `stream` and reads its whole response (by `Content-Length`); the
/// connection stays open. Returns the status.
async fn exchange(stream: &mut TcpStream, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection");
        received.extend_from_slice(&chunk[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection mid-body");
        received.extend_from_slice(&chunk[..n]);
    }
    raw_status(&head)
}

#[tokio::test]
async fn a_reload_applies_to_requests_on_connections_opened_before_it() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let before = yaml(&backend.url(), "5s", "");
    let gw = Gateway::start(&before).await;
    let mut stream = TcpStream::connect(gw.running.addr).await.unwrap();
    let request = "GET /api/app/public HTTP/1.1\r\nHost: gw.example\r\n\r\n";
    assert_eq!(exchange(&mut stream, request).await, 200);
    assert_eq!(exchange(&mut stream, request).await, 200);
    // The new configuration drops the public rule: the path now falls to the catch-all rule,
    // which wants a token, on this same keep-alive connection too.
    let after = before.replace("      - { path: /public, public: true }\n", "");
    assert_ne!(after, before);
    gw.running.gateway.reload(&load(&gw.dir, &after).unwrap()).await.unwrap();
    assert_eq!(exchange(&mut stream, request).await, 401);
    assert_eq!(backend.hits(), 2);
}
