//! Bodies stream through the gateway both ways: 50 MiB up and 50 MiB down without the
//! process's peak memory growing by anything like that. (Its own test binary, so no other test
//! shares the process whose peak RSS is measured.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use bytes::Bytes;
use futures_util::StreamExt;
use support::*;

const SIZE: usize = 50 * 1024 * 1024;

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn yaml(backend: &Backend) -> String {
    format!(
        r#"
upstreams:
  app: {{ url: "{}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/{{*rest}}", public: true }}
"#,
        backend.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_stream_up_and_down_without_buffering() {
    let echo = Backend::spawn(Behaviour::Echo).await;
    let download = Backend::spawn(Behaviour::Download(SIZE)).await;
    let gw_up = Gateway::start(&yaml(&echo)).await;
    let gw_down = Gateway::start(&yaml(&download)).await;
    // Warm up connections and allocator before taking the baseline.
    client().get(gw_up.url("/api/app/warm")).send().await.unwrap();
    let before = peak_rss_kib();

    let chunks = futures_util::stream::iter(
        (0..SIZE / (64 * 1024)).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 64 * 1024]))),
    );
    let response =
        client().post(gw_up.url("/api/app/upload")).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(echo.last().body_bytes, SIZE, "the upstream received every byte");

    let response = client().get(gw_down.url("/api/app/download")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, SIZE, "the client received every byte");

    let grown_mib = (peak_rss_kib() - before) / 1024;
    println!("peak RSS grew by {grown_mib} MiB while moving 2 × 50 MiB");
    assert!(grown_mib < 20, "peak RSS grew by {grown_mib} MiB: a body was buffered");
}
