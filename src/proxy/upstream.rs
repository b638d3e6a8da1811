//! A named upstream: base URL and timeout, parsed once at load.

use std::time::Duration;

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};

/// Default time an upstream has to answer with response headers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An upstream backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Config name, e.g. `catalog`.
    pub name: String,
    scheme: Scheme,
    authority: Authority,
    /// Base path prepended to forwarded paths, without trailing slash (often empty).
    base_path: String,
    /// Time to response headers; exceeded → 504.
    pub timeout: Duration,
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
    /// Parses a base URL.
    pub fn parse(name: &str, url: &str, timeout: Duration) -> Result<Self, UpstreamUrlError> {
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
        Ok(Self {
            name: name.to_owned(),
            scheme: scheme.clone(),
            authority: authority.clone(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The URI a request for `path` is sent to.
    pub fn uri_for(&self, path: &PathAndQuery) -> Result<Uri, http::Error> {
        let builder = Uri::builder().scheme(self.scheme.clone()).authority(self.authority.clone());
        if self.base_path.is_empty() {
            builder.path_and_query(path.clone()).build()
        } else {
            builder.path_and_query(format!("{}{}", self.base_path, path.as_str())).build()
        }
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
