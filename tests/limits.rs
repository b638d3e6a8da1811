//! Limits and failing dependencies: slow clients, greedy clients, connection caps, CORS
//! preflights, JWKS outages and slowness, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn yaml(backend: &Backend, server: &str, extra_rule: &str, route_extra: &str) -> String {
    format!(
        r#"
server: {{ {server} }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}", timeout: 5s }}
routes:
  - prefix: /api/app
    upstream: app{route_extra}
    rules:
      - {{ path: /upload, methods: [POST], public: true, max_body_bytes: 1024 }}
      - {{ path: "/{{*rest}}", authenticated: true }}
      {extra_rule}
"#,
        backend = backend.url()
    )
}

fn token() -> String {
    Signer::hs256(SECRET).sign(&claims("user:default/jane", &[]))
}

#[tokio::test]
async fn a_declared_body_over_the_rule_limit_is_413_before_the_upstream_is_contacted() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "", "", "")).await;
    let response = client().post(gw.url("/api/app/upload")).body(vec![0u8; 2048]).send().await.unwrap();
    let message = envelope(response, 413, "PayloadTooLargeError").await;
    assert_eq!(message, "request body exceeds the limit of 1024 bytes");
    assert_eq!(backend.hits(), 0);
    let small = client().post(gw.url("/api/app/upload")).body(vec![0u8; 1024]).send().await.unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(backend.last().body_bytes, 1024);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_cut_and_answered_413() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "", "", "")).await;
    let chunks =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1024]))));
    let response =
        client().post(gw.url("/api/app/upload")).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(response.status(), 413);
    // Whatever reached the upstream before the cut, it never saw the whole body.
    if backend.hits() > 0 {
        assert!(backend.last().body_bytes < 64 * 1024);
    }
}

#[tokio::test]
async fn oversized_and_too_many_headers_are_431() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "limits: { max_header_bytes: 16384, max_headers: 20 }", "", "")).await;
    let huge =
        format!("GET /api/app/x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000));
    assert_eq!(raw_status(&raw(gw.running.addr, &huge).await), 431);
    let many: String = (0..30).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let many = format!("GET /api/app/x HTTP/1.1\r\nHost: a\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(raw_status(&raw(gw.running.addr, &many).await), 431);
    // A 64 KiB token never gets as far as verification.
    let giant = format!(
        "GET /api/app/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "x".repeat(65_536)
    );
    assert_eq!(raw_status(&raw(gw.running.addr, &giant).await), 431);
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn a_token_over_max_token_bytes_is_401_without_verification() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let text = yaml(&backend, "", "", "").replace("identity:\n", "identity:\n  max_token_bytes: 4096\n");
    let gw = Gateway::start(&text).await;
    let mut c = claims("user:default/jane", &[]);
    c["padding"] = json!("p".repeat(5000));
    let response = client().get(gw.url("/api/app/x")).bearer_auth(Signer::hs256(SECRET).sign(&c)).send().await.unwrap();
    let message = envelope(response, 401, "AuthenticationError").await;
    assert!(message.contains("over the limit of 4096"), "{message}");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_at_the_header_read_timeout() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "limits: { header_read_timeout: 1s }", "", "")).await;
    let mut stream = TcpStream::connect(gw.running.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /api/app/x HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    // Trickle one header byte every 200 ms, never finishing the head.
    let mut closed_after = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"X").await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
            if n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408") {
                closed_after = Some(started.elapsed());
                break;
            }
        }
    }
    let closed_after = closed_after.expect("the slow client was never cut off");
    assert!(closed_after < Duration::from_millis(2500), "cut off after {closed_after:?}");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn a_client_stalling_inside_the_http2_preface_is_cut_off_at_the_header_read_timeout() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "limits: { header_read_timeout: 1s }", "", "")).await;
    for sent in [&b"PRI * HTTP/2.0\r\n"[..], b"P"] {
        let mut stream = TcpStream::connect(gw.running.addr).await.unwrap();
        let started = Instant::now();
        stream.write_all(sent).await.unwrap();
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        let closed_after = started.elapsed();
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}: the connection was not closed");
        assert!(closed_after >= Duration::from_millis(900), "closed after {closed_after:?}");
        assert!(closed_after < Duration::from_millis(2500), "cut off after {closed_after:?}");
    }
    // And a complete preface is HTTP/2: a real HTTP/2 client is answered.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = h2.get(gw.url("/api/app/x")).bearer_auth(token()).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn beyond_max_connections_new_clients_wait_and_existing_ones_keep_working() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = Gateway::start(&yaml(&backend, "limits: { max_connections: 2 }", "", "")).await;
    let request = format!("GET /api/app/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\n\r\n", token());
    async fn ask(stream: &mut TcpStream, request: &str) -> String {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let mut first = TcpStream::connect(gw.running.addr).await.unwrap();
    let mut second = TcpStream::connect(gw.running.addr).await.unwrap();
    assert_eq!(raw_status(&ask(&mut first, &request).await), 200);
    assert_eq!(raw_status(&ask(&mut second, &request).await), 200);
    // The third connection is not served while two are open …
    let mut third = TcpStream::connect(gw.running.addr).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a connection beyond the limit was served");
    // … the existing ones still are …
    assert_eq!(raw_status(&ask(&mut first, &request).await), 200);
    // … and once one closes, the waiting client is served.
    drop(second);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(raw_status(&String::from_utf8_lossy(&buf[..n])), 200);
}

#[tokio::test]
async fn cors_preflights_pass_without_a_token_only_where_configured() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let preflight = |gw: &Gateway| {
        client()
            .request(reqwest::Method::OPTIONS, gw.url("/api/app/entities"))
            .header("origin", "https://backstage.example")
            .header("access-control-request-method", "DELETE")
            .header("x-stagedoor-user", "user:default/admin")
            .send()
    };
    let closed = Gateway::start(&yaml(&backend, "", "", "")).await;
    assert_eq!(preflight(&closed).await.unwrap().status(), 401, "without pass-through a preflight needs a token");
    let open = Gateway::start(&yaml(&backend, "", "", "\n    cors_preflight: pass")).await;
    assert_eq!(preflight(&open).await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
    let seen = backend.last();
    assert_eq!(seen.method, "OPTIONS");
    assert!(!seen.headers.contains_key("x-stagedoor-user"), "spoofed identity stripped on preflights too");
    // An OPTIONS that is not a preflight gets no free pass.
    let plain = client().request(reqwest::Method::OPTIONS, open.url("/api/app/entities")).send().await.unwrap();
    assert_eq!(plain.status(), 401);
    assert_eq!(backend.hits(), 1);
}

/// A JWKS endpoint that can be made slow.
async fn slow_jwks(signer: &Signer, slow: Arc<AtomicBool>, fetches: Arc<AtomicUsize>) -> String {
    let doc = JwksServer::document(&[signer]);
    let addr = serve(move |_request| {
        let (doc, slow, fetches) = (doc.clone(), slow.clone(), fetches.clone());
        async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            if slow.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            json_response(StatusCode::OK, &doc)
        }
    })
    .await;
    format!("http://{addr}/jwks.json")
}

fn jwks_yaml(backend: &Backend, url: &str, extra: &str) -> String {
    format!(
        r#"
identity:
  issuers:
    - {{ name: idp, jwks_url: "{url}", algorithms: [ES256]{extra} }}
upstreams:
  app: {{ url: "{}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", authenticated: true }}
"#,
        backend.url()
    )
}

#[tokio::test]
async fn a_slow_jwks_delays_only_unknown_keys_and_only_up_to_the_bound() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let (slow, fetches) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let url = slow_jwks(&es, slow.clone(), fetches.clone()).await;
    let gw = Gateway::start(&jwks_yaml(&backend, &url, ", jwks_unknown_kid_wait: 500ms")).await;
    slow.store(true, Ordering::SeqCst);
    let get = |token: String| client().get(gw.url("/api/app/x")).bearer_auth(token).send();
    // Unknown kid: waits for the refetch at most 500 ms, then 401.
    let started = Instant::now();
    let unknown = get(Signer::es256_other("k2").sign(&claims("user:default/a", &[]))).await.unwrap();
    assert_eq!(unknown.status(), 401);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_millis(2000), "waited {waited:?}");
    // A cached key never waits, even while the JWKS is stuck.
    let started = Instant::now();
    assert_eq!(get(es.sign(&claims("user:default/a", &[]))).await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_millis(300), "a cached key waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_jwks_down_at_start_is_retried_until_keys_arrive() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let es = Signer::es256("k1");
    let (slow, fetches) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    // Reserve a port, start the gateway against it while nothing listens.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let url = format!("http://{addr}/jwks.json");
    let gw = Gateway::start(&jwks_yaml(&backend, &url, "")).await;
    let token = es.sign(&claims("user:default/a", &[]));
    let get = || client().get(gw.url("/api/app/x")).bearer_auth(token.clone()).send();
    assert_eq!(get().await.unwrap().status(), 401, "no keys yet: fail closed");
    // The JWKS comes up on that port; the background retry (backoff from 0.5 s) finds it.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let doc = JwksServer::document(&[&es]);
    let counter = fetches.clone();
    let _ = slow;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (doc, counter) = (doc.clone(), counter.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_r| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let doc = doc.clone();
                    async move { Ok::<_, std::convert::Infallible>(json_response(StatusCode::OK, &doc)) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if get().await.unwrap().status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "keys never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fetches.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_required_jwks_that_is_down_stops_the_start() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", reserved.local_addr().unwrap());
    drop(reserved);
    let dir = tempfile::tempdir().unwrap();
    let config = load(&dir, &jwks_yaml(&backend, &url, ", jwks_required_at_start: true")).unwrap();
    let err = stagedoor::server::Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("JWKS required at start"), "{err}");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let backend = Backend::spawn(Behaviour::Slow(Duration::from_millis(700))).await;
    let gw = Gateway::start(&yaml(&backend, "", "", "")).await;
    let addr = gw.running.addr;
    let in_flight = tokio::spawn({
        let url = gw.url("/api/app/slow");
        async move { client().get(url).bearer_auth(token()).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Gateway { running, dir: _dir } = gw;
    running.shutdown().await;
    assert_eq!(in_flight.await.unwrap().unwrap(), 200, "the in-flight request finished");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

/// A raw TCP "upstream" that answers every connection with `reply` and then closes.
async fn raw_upstream(reply: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn raw_backend_yaml(url: &str) -> String {
    format!(
        r#"
upstreams:
  app: {{ url: "{url}", timeout: 2s }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", public: true }}
"#
    )
}

#[tokio::test]
async fn an_upstream_that_closes_mid_response_cuts_the_client_response() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly-a-little"[..],
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"[..],
    ] {
        let reply: &'static [u8] = reply;
        let gw = Gateway::start(&raw_backend_yaml(&raw_upstream(reply).await)).await;
        let response = client().get(gw.url("/api/app/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "the head arrived before the cut");
        assert!(response.bytes().await.is_err(), "a truncated body must surface as an error, not a short 200");
        // The gateway keeps serving.
        let again = client().get(gw.url("/api/app/y")).send().await.unwrap();
        assert_eq!(again.status(), 200);
    }
}

#[tokio::test]
async fn an_upstream_speaking_garbage_is_502() {
    let gw = Gateway::start(&raw_backend_yaml(&raw_upstream(b"this is not http\r\n\r\n").await)).await;
    let message = envelope(client().get(gw.url("/api/app/x")).send().await.unwrap(), 502, "BadGatewayError").await;
    assert_eq!(message, "upstream `app` is unavailable");
}
