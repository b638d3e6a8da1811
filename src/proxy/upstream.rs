//! A named upstream: base URL, timeout and protocol, parsed once at load, and its pool of
//! connections (a new pool per loaded configuration).

use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};

use super::pool::{Connections, Protocol};

/// Default time an upstream has to answer with response headers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An upstream backend.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Config name, e.g. `catalog`.
    pub name: String,
    scheme: Scheme,
    authority: Authority,
    /// Base path prepended to forwarded paths, without trailing slash (often empty).
    base_path: String,
    /// Time to response headers; exceeded → 504.
    pub timeout: Duration,
    /// `Host` of forwarded HTTP/1.1 requests: the upstream's authority.
    host: HeaderValue,
    connections: Connections,
}

/// Why an upstream URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamUrlError {
    /// Not an absolute http URL.
    #[error("expected an absolute `http://host:port[/base]` URL, got `{0}`")]
    NotHttp(String),
    /// Query or fragment present.
    #[error("the URL `{0}` must not have a query")]
    HasQuery(String),
}

impl Upstream {
    /// Parses a base URL of an HTTP/1.1 upstream.
    pub fn parse(name: &str, url: &str, timeout: Duration) -> Result<Self, UpstreamUrlError> {
        Self::parse_with(name, url, timeout, Protocol::Http1)
    }

    /// Parses a base URL of an upstream spoken to in `protocol`.
    pub fn parse_with(name: &str, url: &str, timeout: Duration, protocol: Protocol) -> Result<Self, UpstreamUrlError> {
        let uri: Uri = url.parse().map_err(|_| UpstreamUrlError::NotHttp(url.to_owned()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(UpstreamUrlError::NotHttp(url.to_owned()));
        };
        if scheme != &Scheme::HTTP {
            return Err(UpstreamUrlError::NotHttp(url.to_owned()));
        }
        if uri.query().is_some() {
            return Err(UpstreamUrlError::HasQuery(url.to_owned()));
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| UpstreamUrlError::NotHttp(url.to_owned()))?;
        let address = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
        };
        Ok(Self {
            name: name.to_owned(),
            scheme: scheme.clone(),
            authority: authority.clone(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            timeout,
            host,
            connections: Connections::new(address, protocol),
        })
    }

    /// The absolute URI a request for `path` is sent to.
    pub fn uri_for(&self, path: &PathAndQuery) -> Result<Uri, http::Error> {
        let builder = Uri::builder().scheme(self.scheme.clone()).authority(self.authority.clone());
        builder.path_and_query(self.path_for(path)?).build()
    }

    /// The request target sent upstream: origin-form (`/path?query`) over HTTP/1.1, where the
    /// authority goes in `Host`; absolute over HTTP/2, where it becomes `:authority`.
    pub fn target_for(&self, path: &PathAndQuery) -> Result<Uri, http::Error> {
        match self.connections.protocol() {
            Protocol::Http1 => Ok(Uri::from(self.path_for(path)?)),
            Protocol::Http2 => self.uri_for(path),
        }
    }

    fn path_for(&self, path: &PathAndQuery) -> Result<PathAndQuery, http::Error> {
        if self.base_path.is_empty() {
            Ok(path.clone())
        } else {
            Ok(PathAndQuery::try_from(format!("{}{}", self.base_path, path.as_str()))?)
        }
    }

    /// The `Host` header of forwarded HTTP/1.1 requests.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host
    }

    /// The upstream's connection pool.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// `host:port` of the upstream.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_path_and_request_path() {
        let upstream = Upstream::parse("c", "http://127.0.0.1:7008/base/", DEFAULT_TIMEOUT).unwrap();
        let path = PathAndQuery::from_static("/api/catalog/entities?filter=kind=component");
        assert_eq!(
            upstream.uri_for(&path).unwrap().to_string(),
            "http://127.0.0.1:7008/base/api/catalog/entities?filter=kind=component"
        );
    }

    #[test]
    fn refuses_urls_that_are_not_plain_http() {
        assert!(Upstream::parse("c", "127.0.0.1:7008", DEFAULT_TIMEOUT).is_err());
        assert!(Upstream::parse("c", "ftp://x", DEFAULT_TIMEOUT).is_err());
        assert!(Upstream::parse("c", "http://x/?a=1", DEFAULT_TIMEOUT).is_err());
    }
}
