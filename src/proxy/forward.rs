//! The headers of a forwarded request and its response (pure): hop-by-hop headers removed,
//! identity headers replaced by the gateway's own, `X-Forwarded-*` set.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::identity::Principal;

/// Names of the identity headers the gateway sets.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    /// The user entity ref (default `x-stagedoor-user`).
    pub user: HeaderName,
    /// Comma-separated ownership refs (default `x-stagedoor-ownership`).
    pub ownership: HeaderName,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            user: HeaderName::from_static("x-stagedoor-user"),
            ownership: HeaderName::from_static("x-stagedoor-ownership"),
        }
    }
}

/// How requests are rewritten on their way upstream.
#[derive(Debug, Clone, Default)]
pub struct ForwardSettings {
    /// Identity header names.
    pub identity: IdentityHeaders,
    /// Peers whose `X-Forwarded-For` is extended rather than replaced.
    pub trusted_proxies: Vec<IpNet>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the non-standard ones proxies also drop.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers some frameworks use to override the method or the path; never forwarded, so the
/// method and path decided on are the ones the backend runs.
const OVERRIDES: [HeaderName; 6] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-original-method"),
];

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Removes hop-by-hop headers, including every header named in `Connection`, except the ones
/// in `protected` (a client must not be able to make the gateway drop what it vouches for).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, protected: &[&HeaderName]) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !protected.contains(&name))
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

impl ForwardSettings {
    /// Rewrites the headers of a request about to be forwarded. Headers the gateway owns
    /// (identity, request id, `X-Forwarded-*`) are set after `Connection` processing, so a
    /// client cannot make them disappear by naming them there.
    pub fn prepare_request(
        &self,
        headers: &mut HeaderMap,
        principal: Option<&Principal>,
        peer: Option<IpAddr>,
        request_id: Option<&HeaderValue>,
    ) {
        let host = headers.get(header::HOST).cloned();
        strip_hop_by_hop(headers, &[&header::AUTHORIZATION]);
        for name in &OVERRIDES {
            headers.remove(name);
        }
        self.strip_identity(headers);
        if let Some(id) = request_id {
            headers.insert(crate::request_id::REQUEST_ID, id.clone());
        }
        if let Some(host) = host {
            headers.insert(header::HOST, host);
        }
        if let Some(principal) = principal {
            headers.insert(self.identity.user.clone(), principal.user_header().clone());
            headers.insert(self.identity.ownership.clone(), principal.ownership_header().clone());
        }
        self.set_forwarded(headers, peer);
    }

    /// Removes every incoming copy of the identity headers, and spellings of them and of the
    /// override headers with `_` or `.` for `-`, which some servers (CGI, WSGI, nginx with
    /// `underscores_in_headers`) treat as the same header.
    fn strip_identity(&self, headers: &mut HeaderMap) {
        headers.remove(&self.identity.user);
        headers.remove(&self.identity.ownership);
        let lookalikes: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().contains(['_', '.']))
            .filter(|name| {
                let dashed = name.as_str().replace(['_', '.'], "-");
                dashed == self.identity.user.as_str()
                    || dashed == self.identity.ownership.as_str()
                    || OVERRIDES.iter().any(|o| o.as_str() == dashed)
            })
            .cloned()
            .collect();
        for name in lookalikes {
            headers.remove(name);
        }
    }

    fn set_forwarded(&self, headers: &mut HeaderMap, peer: Option<IpAddr>) {
        let trusted = peer.is_some_and(|ip| self.trusted_proxies.iter().any(|net| net.contains(&ip)));
        let previous: Vec<String> = if trusted {
            headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        headers.remove(&X_FORWARDED_FOR);
        if !trusted {
            // RFC 7239 `Forwarded` from an untrusted client is a forgery; drop it.
            headers.remove(&FORWARDED);
        }
        if let Some(ip) = peer {
            let mut chain = previous.join(", ");
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(&ip.to_string());
            if let Ok(value) = HeaderValue::from_str(&chain) {
                headers.insert(X_FORWARDED_FOR, value);
            }
        }
        if !trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        let host = headers.remove(header::HOST);
        if !trusted || !headers.contains_key(&X_FORWARDED_HOST) {
            match host {
                Some(host) => {
                    headers.insert(X_FORWARDED_HOST, host);
                }
                None => {
                    headers.remove(&X_FORWARDED_HOST);
                }
            }
        }
    }

    /// Rewrites the headers of a response on its way back.
    pub fn prepare_response(&self, headers: &mut HeaderMap) {
        strip_hop_by_hop(headers, &[]);
    }
}

#[cfg(test)]
mod tests;
