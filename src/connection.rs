//! The client connection: facts about it that the server inserts into each request, and the
//! limits that protect the gateway from slow or greedy clients.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::HeaderValue;

/// The address of the TCP peer (the client, or a proxy in front of stagedoor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    addr: SocketAddr,
    /// The peer's IP as an `X-Forwarded-For` value, made once per connection.
    ip_header: HeaderValue,
}

impl PeerAddr {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let ip_header =
            HeaderValue::from_str(&addr.ip().to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { addr, ip_header }
    }

    /// The peer's IP.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// The peer's IP as a header value.
    pub fn ip_header(&self) -> &HeaderValue {
        &self.ip_header
    }
}

/// Connection and request limits (`server.limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a complete request head; it also bounds how long an idle
    /// HTTP/1.1 keep-alive connection waits for its next request (10 s).
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (64 KiB); larger → 431.
    pub max_header_bytes: usize,
    /// Most request headers (100); more → 431.
    pub max_headers: usize,
    /// Default largest request body in bytes (100 MiB), overridable per rule; larger → 413.
    pub max_body_bytes: Option<u64>,
    /// Most client connections served at once (10,000); beyond it new connections wait in
    /// the listen backlog until one closes, existing ones are unaffected.
    pub max_connections: usize,
    /// HTTP/2 streams per connection (256).
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before being accepted, kept in flight (20).
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server may reset because of client errors before the connection is
    /// closed (1,024): the "rapid reset" and "MadeYouReset" floods.
    pub http2_max_local_error_reset_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: Some(100 * 1024 * 1024),
            max_connections: 10_000,
            http2_max_concurrent_streams: 256,
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 1024,
        }
    }
}
