//! Facts about the client connection a request arrived on, inserted by the server.

use std::net::SocketAddr;

/// The address of the TCP peer (the client, or a proxy in front of stagedoor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);
