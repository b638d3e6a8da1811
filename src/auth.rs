//! Stage 2: the bearer token → a verified [`Principal`].
//!
//! Reads the `Authorization` header and the [`RouteMatch`](crate::routes::RouteMatch) (public
//! rules skip this stage); adds a [`Principal`] extension. Emits 401 `AuthenticationError`
//! (with `WWW-Authenticate`) for a missing or failing token and 400 for two `Authorization`
//! headers.

pub mod claims;
pub mod error;
pub mod issuer;
pub mod jwks;
pub mod keys;
pub mod layer;
pub mod token;

use std::sync::Arc;

use http::{HeaderMap, header};

pub use error::AuthError;
pub use issuer::{Issuer, IssuerSettings, KeySource};
pub use layer::{Authenticate, AuthenticateLayer};

use crate::identity::Principal;
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
}

impl Authenticator {
    /// An authenticator over compiled issuers.
    pub fn new(issuers: Vec<Arc<Issuer>>, max_token_bytes: usize) -> Self {
        Self { issuers, max_token_bytes }
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

    /// Verifies one token: pick the issuer by `iss` (or try issuers without `issuer:` in
    /// order), check the algorithm, find the key (refetching the JWKS once for an unknown
    /// `kid`), verify signature and claims.
    pub async fn verify(&self, raw: &str) -> Result<Principal, AuthError> {
        if raw.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge { size: raw.len(), limit: self.max_token_bytes });
        }
        let token = UnverifiedToken::parse(raw)?;
        let claimed = if self.issuers.iter().any(|i| i.iss().is_some()) { token.claimed_issuer()? } else { None };
        let by_iss = claimed.as_deref().and_then(|iss| self.issuers.iter().find(|i| i.iss() == Some(iss)));
        let candidates: Vec<&Arc<Issuer>> = match by_iss {
            Some(issuer) => vec![issuer],
            None => self.issuers.iter().filter(|i| i.iss().is_none()).collect(),
        };
        if candidates.is_empty() {
            return Err(AuthError::UnknownIssuer(claimed.as_deref().map(keys::truncate).unwrap_or_default()));
        }
        let mut last = None;
        for issuer in candidates {
            match verify_with(issuer, &token).await {
                Ok(principal) => return Ok(principal),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or(AuthError::NoKey(String::new())))
    }
}

async fn verify_with(issuer: &Issuer, token: &UnverifiedToken<'_>) -> Result<Principal, AuthError> {
    match &issuer.keys {
        KeySource::Static(ring) => issuer.verify(token, ring),
        KeySource::Jwks(cache) => {
            let ring = cache.current();
            if ring.knows(token.header.kid.as_deref()) {
                return issuer.verify(token, &ring);
            }
            // Refuse a token with a bad algorithm before it can trigger a fetch.
            issuer.check_algorithm(token)?;
            let ring = cache.refetch_for_unknown_key().await;
            issuer.verify(token, &ring)
        }
    }
}
