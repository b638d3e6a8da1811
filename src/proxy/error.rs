//! Infrastructure failures of the proxy stage; the rescue layer turns them into 502/504.

/// A failure talking to an upstream.
#[derive(Debug, thiserror::Error)]
#[error("upstream `{upstream}`: {kind}")]
pub struct ProxyError {
    upstream: String,
    #[source]
    kind: Kind,
}

#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("no response within {0:?}")]
    Timeout(std::time::Duration),
    #[error("request failed: {0}")]
    Request(#[source] super::pool::SendError),
    #[error("could not build the upstream request: {0}")]
    Build(#[source] http::Error),
}

impl ProxyError {
    pub(crate) fn timeout(upstream: &str, after: std::time::Duration) -> Self {
        Self { upstream: upstream.to_owned(), kind: Kind::Timeout(after) }
    }

    pub(crate) fn request(upstream: &str, err: super::pool::SendError) -> Self {
        Self { upstream: upstream.to_owned(), kind: Kind::Request(err) }
    }

    pub(crate) fn build(upstream: &str, err: http::Error) -> Self {
        Self { upstream: upstream.to_owned(), kind: Kind::Build(err) }
    }

    /// True when the upstream did not answer in time (→ 504).
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(_))
    }

    /// True when the request could not even be built (→ 500).
    pub fn is_internal(&self) -> bool {
        matches!(self.kind, Kind::Build(_))
    }

    /// True when the request body went over its limit while streaming (→ 413).
    pub fn is_body_too_large(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return true;
            }
            source = err.source();
        }
        false
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }
}
