//! The headers of a forwarded request and its response (pure): hop-by-hop headers removed,
//! identity headers replaced by the gateway's own, `X-Forwarded-*` set.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::connection::PeerAddr;
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

/// Removes, in one pass over the headers present, the hop-by-hop ones, those named in
/// `Connection` (when `may_strip_named` agrees) and those `also` picks. One pass, because
/// removing each of the ~20 candidate names in turn (most never present) cost more than
/// everything else the gateway does to a request's headers.
fn strip(headers: &mut HeaderMap, may_strip_named: impl Fn(&HeaderName) -> bool, also: impl Fn(&HeaderName) -> bool) {
    let connection = headers.get_all(header::CONNECTION);
    let tokens = || connection.iter().flat_map(|value| value.as_bytes().split(|&b| b == b',')).map(<[u8]>::trim_ascii);
    // `Connection: keep-alive` or `close`, what nearly every peer sends, names no header beyond
    // the hop-by-hop ones; only other tokens need a look at each header.
    let names_more = tokens().any(|token| {
        !token.eq_ignore_ascii_case(b"keep-alive") && !token.eq_ignore_ascii_case(b"close") && !token.is_empty()
    });
    let named_in_connection =
        |name: &HeaderName| names_more && tokens().any(|token| token.eq_ignore_ascii_case(name.as_str().as_bytes()));
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name) || also(name) || (named_in_connection(name) && may_strip_named(name)))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

impl ForwardSettings {
    /// Rewrites the headers of a request about to be forwarded. Headers the gateway owns
    /// (identity, request id, `X-Forwarded-*`) are set after `Connection` processing, so a
    /// client cannot make them disappear by naming them there. `peer` is the TCP peer, or
    /// `None` when unknown (in-process callers).
    pub fn prepare_request(
        &self,
        headers: &mut HeaderMap,
        principal: Option<&Principal>,
        peer: Option<&PeerAddr>,
        request_id: Option<&HeaderValue>,
    ) {
        let host = headers.remove(header::HOST);
        let trusted = peer.is_some_and(|peer| self.trusted_proxies.iter().any(|net| net.contains(&peer.ip())));
        // From a trusted proxy, the chain it sent is kept (and extended below).
        let previous_hops = if trusted { forwarded_for_chain(headers) } else { None };
        strip(
            headers,
            |name| name != header::AUTHORIZATION,
            |name| {
                OVERRIDES.contains(name)
                    || *name == self.identity.user
                    || *name == self.identity.ownership
                    || *name == X_FORWARDED_FOR
                    // RFC 7239 `Forwarded` from an untrusted client is a forgery.
                    || (!trusted && *name == FORWARDED)
                    || self.is_lookalike(name)
            },
        );
        if let Some(id) = request_id {
            headers.insert(crate::request_id::REQUEST_ID, id.clone());
        }
        if let Some(principal) = principal {
            headers.insert(self.identity.user.clone(), principal.user_header().clone());
            headers.insert(self.identity.ownership.clone(), principal.ownership_header().clone());
        }
        match (peer, previous_hops) {
            (Some(peer), Some(chain)) => {
                if let Ok(value) = HeaderValue::from_str(&format!("{chain}, {}", peer.ip())) {
                    headers.insert(X_FORWARDED_FOR, value);
                }
            }
            (Some(peer), None) => {
                headers.insert(X_FORWARDED_FOR, peer.ip_header().clone());
            }
            (None, _) => {}
        }
        if !trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
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

    /// A spelling, with `_` or `.` for `-`, of an identity or override header, which some
    /// servers (CGI, WSGI, nginx with `underscores_in_headers`) treat as the same header.
    fn is_lookalike(&self, name: &HeaderName) -> bool {
        if !name.as_str().contains(['_', '.']) {
            return false;
        }
        let dashed = name.as_str().replace(['_', '.'], "-");
        dashed == self.identity.user.as_str()
            || dashed == self.identity.ownership.as_str()
            || OVERRIDES.iter().any(|o| o.as_str() == dashed)
    }

    /// Rewrites the headers of a response on its way back: hop-by-hop headers removed,
    /// including every header named in `Connection`.
    pub fn prepare_response(&self, headers: &mut HeaderMap) {
        strip(headers, |_| true, |_| false);
    }
}

/// The `X-Forwarded-For` values sent by a trusted proxy, joined; `None` when there are none.
fn forwarded_for_chain(headers: &HeaderMap) -> Option<String> {
    let hops: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!hops.is_empty()).then(|| hops.join(", "))
}

#[cfg(test)]
mod tests;
