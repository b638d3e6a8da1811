//! Stage 2: the bearer token → a verified [`Principal`].
//!
//! Reads the `Authorization` header and the [`RouteMatch`](crate::routes::RouteMatch) (public
//! rules skip this stage); adds a [`Principal`] extension. Emits 401 `AuthenticationError`
//! (with `WWW-Authenticate`) for a missing or failing token and 400 for two `Authorization`
//! headers.

pub mod cache;
pub mod claims;
pub mod error;
pub mod hierarchy;
pub mod issuer;
pub mod jwks;
pub mod keys;
pub mod layer;
pub mod plugin_token;
pub mod token;
pub mod userinfo;

use std::sync::Arc;

use http::{HeaderMap, header};

pub use error::AuthError;
pub use issuer::{Issuer, IssuerSettings, KeySource};
pub use layer::{Authenticate, AuthenticateLayer};

use crate::identity::Principal;
use cache::{CacheLimits, CachedToken, TokenCache, token_digest};
use token::UnverifiedToken;

/// Default limit on the size of a bearer token (Backstage refuses to issue more than 32,768).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 32 * 1024;

/// Why a request did not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization` header.
    #[error("no bearer token")]
    Missing,
    /// More than one `Authorization` header.
    #[error("more than one `Authorization` header")]
    Duplicate,
    /// The token was refused.
    #[error(transparent)]
    Invalid(#[from] AuthError),
}

/// Verifies bearer tokens against the configured issuers.
#[derive(Debug)]
pub struct Authenticator {
    issuers: Vec<Arc<Issuer>>,
    max_token_bytes: usize,
    cache: Option<TokenCache>,
}

impl Authenticator {
    /// An authenticator over compiled issuers, with an empty verified-token cache.
    pub fn new(issuers: Vec<Arc<Issuer>>, max_token_bytes: usize, cache: CacheLimits) -> Self {
        Self { issuers, max_token_bytes, cache: TokenCache::new(cache) }
    }

    /// The verified-token cache, if enabled.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// The issuers.
    pub fn issuers(&self) -> &[Arc<Issuer>] {
        &self.issuers
    }

    /// The bearer token of a request, if any (Backstage's `/^Bearer[ ]+(\S+)$/i`).
    pub fn bearer(headers: &HeaderMap) -> Result<&str, AuthFailure> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let value = values.next().ok_or(AuthFailure::Missing)?;
        if values.next().is_some() {
            return Err(AuthFailure::Duplicate);
        }
        let text = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let (scheme, rest) = text.split_at_checked(6).ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with(' ') {
            return Err(AuthError::NotBearer.into());
        }
        let token = rest.trim_start_matches(' ');
        if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(AuthError::NotBearer.into());
        }
        Ok(token)
    }

    /// Verifies the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        let raw = Self::bearer(headers)?;
        Ok(self.verify(raw).await?)
    }

    /// Verifies one token, answering from the verified-token cache when it can.
    pub async fn verify(&self, raw: &str) -> Result<Principal, AuthError> {
        if raw.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge { size: raw.len(), limit: self.max_token_bytes });
        }
        let Some(cache) = &self.cache else {
            return self.verify_uncached(raw).await.map(|entry| entry.principal);
        };
        let digest = token_digest(raw);
        cache.get_or_verify(&digest, |entry| self.is_current(entry), self.verify_uncached(raw)).await
    }

    /// A cached entry is used only before its `exp` and while its key is still published.
    fn is_current(&self, entry: &CachedToken) -> bool {
        jsonwebtoken::get_current_timestamp() < entry.expires_at
            && self.issuers.get(entry.issuer).is_some_and(|issuer| issuer.still_publishes(entry.kid.as_deref()))
    }

    /// Verifies one token: pick the issuer by `iss` (or try issuers without `issuer:` in
    /// order), check the algorithm, find the key (refetching the JWKS once for an unknown
    /// `kid`), verify signature and claims.
    pub async fn verify_uncached(&self, raw: &str) -> Result<CachedToken, AuthError> {
        self.verify_as(raw, false).await
    }

    /// Verifies the `obo` user token of a plugin token: a limited user token is expected.
    /// Never cached, so a limited token can never be replayed as a direct bearer token.
    pub async fn verify_on_behalf_of(&self, raw: &str) -> Result<Principal, AuthError> {
        if raw.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge { size: raw.len(), limit: self.max_token_bytes });
        }
        self.verify_as(raw, true).await.map(|entry| entry.principal)
    }

    async fn verify_as(&self, raw: &str, on_behalf_of: bool) -> Result<CachedToken, AuthError> {
        let token = UnverifiedToken::parse(raw)?;
        let claimed = if self.issuers.iter().any(|i| i.iss().is_some()) { token.claimed_issuer()? } else { None };
        let by_iss = claimed.as_deref().and_then(|iss| self.issuers.iter().find(|i| i.iss() == Some(iss)));
        let candidates: Vec<(usize, &Arc<Issuer>)> = match by_iss {
            Some(issuer) => self.issuers.iter().enumerate().filter(|(_, i)| Arc::ptr_eq(i, issuer)).collect(),
            None => self.issuers.iter().enumerate().filter(|(_, i)| i.iss().is_none()).collect(),
        };
        if candidates.is_empty() {
            return Err(AuthError::UnknownIssuer(claimed.as_deref().map(keys::truncate).unwrap_or_default()));
        }
        let mut last = None;
        for (index, issuer) in candidates {
            match verify_with(issuer, &token, on_behalf_of).await {
                Ok(verified) => {
                    let principal = if verified.needs_userinfo {
                        issuer.with_userinfo_groups(verified.principal, raw).await?
                    } else {
                        verified.principal
                    };
                    let expires_at = verified.expires_at.unwrap_or(u64::MAX);
                    return Ok(CachedToken::new(principal, expires_at, index, token.header.kid.as_deref()));
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or(AuthError::NoKey(String::new())))
    }
}

async fn verify_with(
    issuer: &Issuer,
    token: &UnverifiedToken<'_>,
    on_behalf_of: bool,
) -> Result<issuer::Verified, AuthError> {
    match &issuer.keys {
        KeySource::Static(ring) => issuer.verify(token, ring, on_behalf_of),
        KeySource::Jwks(cache) => {
            let ring = cache.current();
            if ring.knows(token.header.kid.as_deref()) {
                return issuer.verify(token, &ring, on_behalf_of);
            }
            // Refuse a token with a bad algorithm before it can trigger a fetch.
            issuer.check_algorithm(token)?;
            let ring = cache.refetch_for_unknown_key().await;
            issuer.verify(token, &ring, on_behalf_of)
        }
    }
}
