//! The pool against real servers on 127.0.0.1: reuse, when a connection must not be reused,
//! and HTTP/2 multiplexing.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::body;

/// Listens on 127.0.0.1, counts the connections it accepts and serves each with `serve`.
async fn counting_server<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (address, accepted)
}

/// An upstream that answers `/` with a body of `size` bytes (`/empty`: 204) in `protocol`.
async fn upstream(protocol: Protocol, size: usize) -> (String, Arc<AtomicUsize>) {
    counting_server(move |stream| async move {
        let service = service_fn(move |request: Request<Incoming>| async move {
            let response = if request.uri().path() == "/empty" {
                Response::builder().status(StatusCode::NO_CONTENT).body(body::empty())
            } else {
                Response::builder().body(body::full(vec![b'x'; size]))
            };
            Ok::<_, Infallible>(response.unwrap())
        });
        let io = TokioIo::new(stream);
        let _ = match protocol {
            Protocol::Http1 => hyper::server::conn::http1::Builder::new().serve_connection(io, service).await,
            Protocol::Http2 => {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service).await
            }
        };
    })
    .await
}

fn get(address: &str, path: &str, protocol: Protocol) -> Request<Body> {
    let uri = match protocol {
        Protocol::Http1 => path.to_owned(),
        Protocol::Http2 => format!("http://{address}{path}"),
    };
    let mut request = Request::builder().method(Method::GET).uri(uri);
    if protocol == Protocol::Http1 {
        request = request.header(http::header::HOST, address);
    } else {
        request = request.version(http::Version::HTTP_2);
    }
    request.body(body::empty()).unwrap()
}

async fn read_all(response: Response<PooledBody>) -> usize {
    response.into_body().collect().await.unwrap().to_bytes().len()
}

/// Sends `n` requests at once and reads every answer: (version, body length) each.
async fn send_together(pool: &Connections, address: &str, n: usize, protocol: Protocol) -> Vec<(http::Version, usize)> {
    let responses = futures_util::future::join_all((0..n).map(|_| pool.send(get(address, "/", protocol)))).await;
    let mut answers = Vec::new();
    for response in responses {
        let response = response.unwrap();
        answers.push((response.version(), read_all(response).await));
    }
    answers
}

#[tokio::test]
async fn a_connection_is_reused_once_its_response_has_been_read() {
    let (address, accepted) = upstream(Protocol::Http1, 100_000).await;
    let pool = Connections::new(address.clone(), Protocol::Http1);
    for _ in 0..5 {
        let response = pool.send(get(&address, "/", Protocol::Http1)).await.unwrap();
        assert_eq!(read_all(response).await, 100_000);
    }
    // Bodiless answers go back at once.
    for _ in 0..3 {
        let response = pool.send(get(&address, "/empty", Protocol::Http1)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        drop(response);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "every request went on the first connection");
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_connection_idle_beyond_the_idle_timeout_is_not_reused() {
    let (address, accepted) = upstream(Protocol::Http1, 10).await;
    let pool = Connections::with_idle_limits(address.clone(), Protocol::Http1, Duration::from_millis(100), MAX_IDLE);
    read_all(pool.send(get(&address, "/", Protocol::Http1)).await.unwrap()).await;
    read_all(pool.send(get(&address, "/", Protocol::Http1)).await.unwrap()).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "reused within the idle timeout");
    tokio::time::sleep(Duration::from_millis(200)).await;
    read_all(pool.send(get(&address, "/", Protocol::Http1)).await.unwrap()).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "a connection idle too long was reused");
    assert_eq!(pool.idle_count(), 1, "the stale connection was dropped, not kept");
}

#[tokio::test]
async fn a_response_abandoned_before_its_end_closes_its_connection() {
    let (address, accepted) = upstream(Protocol::Http1, 1_000_000).await;
    let pool = Connections::new(address.clone(), Protocol::Http1);
    let mut response = pool.send(get(&address, "/", Protocol::Http1)).await.unwrap();
    let first = response.body_mut().frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(response);
    assert_eq!(pool.idle_count(), 0, "a half-read connection must not be reused");
    let response = pool.send(get(&address, "/", Protocol::Http1)).await.unwrap();
    assert_eq!(read_all(response).await, 1_000_000);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_http1_connection_then_share_them() {
    let (address, accepted) = upstream(Protocol::Http1, 10).await;
    let pool = Connections::new(address.clone(), Protocol::Http1);
    for (_, length) in send_together(&pool, &address, 4, Protocol::Http1).await {
        assert_eq!(length, 10);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    assert_eq!(pool.idle_count(), 4);
    for _ in 0..8 {
        read_all(pool.send(get(&address, "/", Protocol::Http1)).await.unwrap()).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "idle connections are reused");
}

#[tokio::test]
async fn no_more_idle_connections_are_kept_than_the_limit() {
    let (address, accepted) = upstream(Protocol::Http1, 10).await;
    let pool = Connections::with_idle_limits(address.clone(), Protocol::Http1, IDLE_TIMEOUT, 2);
    for (_, length) in send_together(&pool, &address, 5, Protocol::Http1).await {
        assert_eq!(length, 10);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
    assert_eq!(pool.idle_count(), 2, "the connections beyond the limit were closed");
}

/// An upstream that closes every connection right after one answer, without saying so.
async fn one_answer_per_connection() -> (String, Arc<AtomicUsize>) {
    counting_server(|mut stream: TcpStream| async move {
        let mut buffer = vec![0; 4096];
        let mut read = 0;
        while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer[read..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let _ = stream.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn a_connection_the_upstream_closes_after_answering_is_not_reused() {
    let (address, accepted) = one_answer_per_connection().await;
    let pool = Connections::new(address.clone(), Protocol::Http1);
    for round in 1..=3 {
        let response = pool.send(get(&address, "/", Protocol::Http1)).await.unwrap();
        assert_eq!(read_all(response).await, 2, "round {round}");
        // Let the connection task see the close.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let pool = Connections::new(address.clone(), Protocol::Http1);
    let err = pool.send(get(&address, "/", Protocol::Http1)).await.unwrap_err();
    assert!(matches!(err, SendError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn http2_requests_share_one_connection() {
    let (address, accepted) = upstream(Protocol::Http2, 1000).await;
    let pool = Connections::new(address.clone(), Protocol::Http2);
    for _ in 0..2 {
        for (version, length) in send_together(&pool, &address, 10, Protocol::Http2).await {
            assert_eq!(version, http::Version::HTTP_2);
            assert_eq!(length, 1000);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "a burst on an empty pool makes one connection, then reuses it");
    }
}

/// An upstream on its own thread (so it keeps running while the test blocks the runtime) that
/// answers one request per connection with keep-alive, then closes it after 30 ms idle.
fn closing_when_idle() -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buffer = vec![0; 4096];
            let mut read = 0;
            while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer[read..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    (address, accepted)
}

/// Sends `request` on a connection that `closing_when_idle` has closed while it sat in the pool,
/// unnoticed: the test blocks the runtime meanwhile, so the connection's task cannot see the
/// close and hyper writes the request onto the dead connection. Returns the result and the
/// connections the upstream accepted.
async fn send_after_unnoticed_close(request: impl Fn(&str) -> Request<Body>) -> (Result<usize, SendError>, usize) {
    let (address, accepted) = closing_when_idle();
    let pool = Connections::new(address.clone(), Protocol::Http1);
    assert_eq!(read_all(pool.send(get(&address, "/", Protocol::Http1)).await.unwrap()).await, 2);
    assert_eq!(pool.idle_count(), 1);
    std::thread::sleep(REPLAY_AFTER_IDLE + Duration::from_millis(100));
    let result = match pool.send(request(&address)).await {
        Ok(response) => Ok(read_all(response).await),
        Err(err) => Err(err),
    };
    (result, accepted.load(Ordering::SeqCst))
}

#[tokio::test]
async fn an_idempotent_request_meeting_a_connection_closed_while_idle_is_sent_again() {
    let (result, accepted) = send_after_unnoticed_close(|address| get(address, "/", Protocol::Http1)).await;
    assert_eq!(result.expect("the request was lost with the closed connection"), 2);
    assert_eq!(accepted, 2, "sent again on a new connection");
}

#[tokio::test]
async fn a_request_with_a_body_meeting_a_connection_closed_while_idle_is_never_sent_twice() {
    let post = |address: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(http::header::HOST, address)
            .body(body::full("once"))
            .unwrap()
    };
    let (result, accepted) = send_after_unnoticed_close(post).await;
    let err = result.expect_err("a POST was sent again");
    assert!(matches!(&err, SendError::Http(e) if e.is_incomplete_message()), "{err:?}");
    assert_eq!(accepted, 1, "no second connection for a POST");
}
