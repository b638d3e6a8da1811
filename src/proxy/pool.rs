//! Connections to one upstream, reused across requests: a stack of idle HTTP/1.1 connections,
//! or one shared HTTP/2 connection when the upstream is configured with `protocol: http2`
//! (cleartext, prior knowledge).
//!
//! Built on hyper's `client::conn` rather than hyper-util's legacy `Client`, whose pool is
//! general-purpose: it looks the pool up in a SipHash map per request, and for HTTP/1.1 spawns a
//! task per request that waits for the response body to end to put the connection back. Here
//! the pool belongs to its upstream (no lookup), and the response body returns its connection
//! itself when it ends. Measured with `bench/load.sh` (c): about 1.5 µs less CPU per proxied
//! request, the largest single cost stagedoor had over nginx.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::body::Body;

/// How long a connection may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are closed rather than reused. Below Node's default
/// `server.keepAliveTimeout` (5 s), which Backstage backends keep: a connection the upstream is
/// about to close is never picked, so a request is not lost to that race (once written, a
/// request is never sent twice, so such a loss would be a 502).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// TCP keep-alive probes on upstream connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Idle HTTP/1.1 connections kept per upstream; more are closed when their response ends.
const MAX_IDLE: usize = 256;
/// A connection idle at least this long may have been closed by the upstream's own idle
/// timeout (Node, gunicorn, Apache: 2–5 s) in the instant before it is reused; the request is
/// then kept for a replay. Connections reused sooner, as under load, cannot have been, and skip
/// the copy.
const REPLAY_AFTER_IDLE: Duration = Duration::from_millis(250);

/// The HTTP version spoken to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive, one request per connection at a time.
    Http1,
    /// HTTP/2 over cleartext TCP (prior knowledge): every request multiplexed on one connection.
    Http2,
}

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The TCP connection could not be established.
    #[error("could not connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The connection did not establish within the connect timeout.
    #[error("could not connect within {0:?}")]
    ConnectTimeout(Duration),
    /// The HTTP handshake or exchange failed (invalid HTTP, closed connection, body error).
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

/// The connections of one upstream; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Connections {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// `host:port`, resolved at connect time (so DNS changes are followed).
    address: String,
    protocol: Protocol,
    idle_timeout: Duration,
    max_idle: usize,
    /// HTTP/1.1: idle connections, most recently used at the back (reused first).
    idle: Mutex<VecDeque<Idle>>,
    /// HTTP/2: the connection every request shares, once made.
    multiplexed: Mutex<Option<http2::SendRequest<Body>>>,
    /// HTTP/2: held while connecting, so that a burst of requests makes one connection.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Idle {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

impl Connections {
    /// An empty pool for the upstream at `address` (`host:port`).
    pub fn new(address: String, protocol: Protocol) -> Self {
        Self::with_idle_limits(address, protocol, IDLE_TIMEOUT, MAX_IDLE)
    }

    /// An empty pool that keeps at most `max_idle` idle HTTP/1.1 connections and reuses none
    /// idle longer than `idle_timeout`.
    pub fn with_idle_limits(address: String, protocol: Protocol, idle_timeout: Duration, max_idle: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                address,
                protocol,
                idle_timeout,
                max_idle,
                idle: Mutex::new(VecDeque::new()),
                multiplexed: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The protocol spoken to this upstream.
    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// Idle HTTP/1.1 connections kept now (for tests and diagnostics).
    pub fn idle_count(&self) -> usize {
        self.shared.lock_idle().len()
    }

    /// Sends `request` (origin-form target for HTTP/1.1, absolute for HTTP/2) on a pooled or new
    /// connection and returns the response head; the body streams from the connection.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<PooledBody>, SendError> {
        match self.shared.protocol {
            Protocol::Http1 => self.send_http1(request).await,
            Protocol::Http2 => self.send_http2(request).await,
        }
    }

    async fn send_http1(&self, mut request: Request<Body>) -> Result<Response<PooledBody>, SendError> {
        // A reused connection may have been closed by the upstream while idle, before its task
        // saw the close. If the request was not written, hyper hands it back. If it was, and the
        // connection closed without an answer, a request that is safe to repeat (idempotent
        // method, no body) is sent again, as nginx does; any other fails (502), never sent twice.
        while let Some((mut sender, idle_for)) = self.shared.checkout().await {
            let replay = if idle_for >= REPLAY_AFTER_IDLE { replayable_copy(&request) } else { None };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(response, sender)),
                Err(mut failed) => match (failed.take_message(), replay) {
                    (Some(unsent), _) => request = unsent,
                    (None, Some(copy)) if failed.error().is_incomplete_message() => request = copy,
                    (None, _) => return Err(SendError::Http(failed.into_error())),
                },
            }
        }
        let mut sender = self.shared.connect_http1().await?;
        let response = sender.send_request(request).await.map_err(SendError::Http)?;
        Ok(self.pooled(response, sender))
    }

    fn pooled(&self, response: Response<Incoming>, sender: http1::SendRequest<Body>) -> Response<PooledBody> {
        let mut give_back = Some(GiveBack { sender, shared: self.shared.clone() });
        if response.body().is_end_stream() {
            // No body to wait for (HEAD, 204, 304, `Content-Length: 0`): reusable now.
            if let Some(give_back) = give_back.take() {
                give_back.give();
            }
        }
        response.map(|inner| PooledBody { inner, give_back })
    }

    async fn send_http2(&self, request: Request<Body>) -> Result<Response<PooledBody>, SendError> {
        let request = match self.shared.open_multiplexed() {
            Some(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => return Ok(response.map(|inner| PooledBody { inner, give_back: None })),
                // Unsent (the connection is going away): on a new connection.
                Err(mut failed) => failed.take_message().ok_or_else(|| SendError::Http(failed.into_error()))?,
            },
            None => request,
        };
        let mut sender = {
            // One connects; the requests that arrived meanwhile use its connection.
            let _connecting = self.shared.connecting.lock().await;
            match self.shared.open_multiplexed() {
                Some(sender) => sender,
                None => {
                    let sender = self.shared.connect_http2().await?;
                    *self.shared.multiplexed.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
                    sender
                }
            }
        };
        let response = sender.send_request(request).await.map_err(SendError::Http)?;
        Ok(response.map(|inner| PooledBody { inner, give_back: None }))
    }
}

impl Shared {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_multiplexed(&self) -> Option<http2::SendRequest<Body>> {
        let slot = self.multiplexed.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().filter(|sender| !sender.is_closed()).cloned()
    }

    /// The most recently used idle connection that is still open and ready, and how long it
    /// was idle.
    async fn checkout(&self) -> Option<(http1::SendRequest<Body>, Duration)> {
        loop {
            let Idle { mut sender, since } = self.lock_idle().pop_back()?;
            let idle_for = since.elapsed();
            if sender.is_closed() || idle_for > self.idle_timeout {
                continue;
            }
            // The connection task may not have seen the end of the previous exchange yet.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Some((sender, idle_for));
            }
        }
    }

    fn put_back(&self, sender: http1::SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock_idle();
        // The oldest are at the front: close the ones idle too long, and make room.
        while idle.front().is_some_and(|oldest| now.duration_since(oldest.since) > self.idle_timeout)
            || idle.len() >= self.max_idle
        {
            idle.pop_front();
        }
        idle.push_back(Idle { sender, since: now });
    }

    async fn connect(&self) -> Result<TokioIo<TcpStream>, SendError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.address.as_str()))
            .await
            .map_err(|_| SendError::ConnectTimeout(CONNECT_TIMEOUT))?
            .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        Ok(TokioIo::new(stream))
    }

    async fn connect_http1(&self) -> Result<http1::SendRequest<Body>, SendError> {
        let io = self.connect().await?;
        let (sender, connection) = http1::handshake(io).await.map_err(SendError::Http)?;
        self.drive(connection);
        Ok(sender)
    }

    async fn connect_http2(&self) -> Result<http2::SendRequest<Body>, SendError> {
        let io = self.connect().await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        self.drive(connection);
        Ok(sender)
    }

    /// Runs a connection's I/O in its own task until it closes.
    fn drive(&self, connection: impl Future<Output = hyper::Result<()>> + Send + 'static) {
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(upstream = %address, error = %err, "upstream connection ended with an error");
            }
        });
    }
}

/// A copy of `request` to send again if its connection closes before answering, when that is
/// safe: an idempotent method (RFC 9110 §9.2.2) and no body (the body is consumed by sending).
fn replayable_copy(request: &Request<Body>) -> Option<Request<Body>> {
    if !request.method().is_idempotent() || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(crate::body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// An HTTP/1.1 connection to hand back to its pool.
struct GiveBack {
    sender: http1::SendRequest<Body>,
    shared: Arc<Shared>,
}

impl GiveBack {
    fn give(self) {
        self.shared.put_back(self.sender);
    }
}

/// An upstream response body. When it has been read to the end, its HTTP/1.1 connection goes
/// back to the pool; dropped before that, the connection is closed (HTTP/1.1 cannot abandon
/// a response and stay usable).
pub struct PooledBody {
    inner: Incoming,
    give_back: Option<GiveBack>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").field("pooled", &self.give_back.is_some()).finish_non_exhaustive()
    }
}

impl PooledBody {
    fn give_back_connection(&mut self) {
        if let Some(give_back) = self.give_back.take() {
            give_back.give();
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back_connection(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.give_back_connection(),
            Poll::Ready(Some(Err(_))) => self.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Read to the end without a final poll (the server stops at `is_end_stream`).
        if self.inner.is_end_stream() {
            self.give_back_connection();
        }
    }
}

#[cfg(test)]
mod tests;
