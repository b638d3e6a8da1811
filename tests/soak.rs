//! A bounded soak: 2,000 concurrent keep-alive connections through the real `stagedoor serve`
//! process; every request gets its correct answer and the process's RSS returns to within
//! 32 MiB of its baseline afterwards. Prints the RSS figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpStream;

const CONNECTIONS: usize = 2_000;
const REQUESTS_PER_CONNECTION: usize = 3;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_keep_alive_connections_get_correct_answers_and_memory_comes_back() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
server: {{ listen: "127.0.0.1:{port}", limits: {{ header_read_timeout: 30s }} }}
identity:
  issuers:
    - {{ name: local, secret_env: SOAK_SECRET, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", authenticated: true }}
"#,
            backend.url()
        ),
    )
    .unwrap();
    let server = Server(
        Command::new(std::env::var("STAGEDOOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_stagedoor").to_string()))
            .args(["serve", "--config"])
            .arg(&config)
            .env("SOAK_SECRET", SECRET)
            .env("STAGEDOOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).await.is_err() {
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = Signer::hs256(SECRET).sign(&claims("user:default/jane", &[]));
    // Warm up, then take the baseline.
    for _ in 0..20 {
        let r = client().get(format!("http://{addr}/api/app/warm")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_kib(pid);

    // Open every connection first, so all 2,000 are alive at once.
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(&addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        senders.push(sender);
    }
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for (i, mut sender) in senders.into_iter().enumerate() {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for j in 0..REQUESTS_PER_CONNECTION {
                sender.ready().await.unwrap();
                // Every fifth connection sends its last request without a token: it must get 401.
                let anonymous = i % 5 == 0 && j == REQUESTS_PER_CONNECTION - 1;
                let mut request = http::Request::get(format!("/api/app/c{i}/r{j}")).header("host", "gw");
                if !anonymous {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                let response = sender.send_request(request.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let expected = if anonymous { 401 } else { 200 };
                assert_eq!(status, expected, "connection {i} request {j}");
                if !anonymous {
                    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(echo["uri"], format!("/api/app/c{i}/r{j}"), "answer belongs to its request");
                }
                answers.push(status);
            }
            (sender, answers.len())
        }));
    }
    let mut held = Vec::with_capacity(CONNECTIONS);
    let mut answered = 0;
    for task in tasks {
        let (sender, n) = task.await.unwrap();
        answered += n;
        held.push(sender);
    }
    assert_eq!(answered, CONNECTIONS * REQUESTS_PER_CONNECTION);
    // Let the burst's extra upstream connections close and their memory be purged: what is
    // left is the cost of 2,000 idle client keep-alive connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_connections = rss_kib(pid);
    drop(held);
    // Give the gateway a moment to notice the closed connections and free their buffers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    println!(
        "gateway RSS: baseline {} MiB, with {CONNECTIONS} idle keep-alive connections {} MiB, after closing them {} MiB",
        baseline / 1024,
        with_connections / 1024,
        after / 1024
    );
    assert!(after <= baseline + 32 * 1024, "RSS stayed {} MiB above baseline", (after - baseline) / 1024);
}
