//! Minting signed test tokens shaped like Backstage user tokens (`stagedoor token`, `demo`).

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The key file could not be read.
    #[error("cannot read `{0}`: {1}")]
    Read(String, std::io::Error),
    /// The key file is not a supported private key.
    #[error("`{0}` is not a PEM private key of type EC P-256, RSA or Ed25519")]
    Key(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Claims of a Backstage-style user token.
#[derive(Debug, Clone, Serialize)]
pub struct Claims {
    /// User entity ref.
    pub sub: String,
    /// Ownership refs (the user ref first).
    pub ent: Vec<String>,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Claims {
    /// Claims valid from now for `ttl`; `ent` gets the user ref in front, as Backstage does.
    pub fn new(sub: &str, groups: &[String], ttl: Duration, iss: Option<String>, aud: Option<String>) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        let mut ent = vec![sub.to_owned()];
        ent.extend(groups.iter().filter(|g| *g != sub).cloned());
        Self { sub: sub.to_owned(), ent, iat: now, exp: now + ttl.as_secs(), iss, aud }
    }
}

/// A signing key with its algorithm and key id.
pub struct Minter {
    key: EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter").field("algorithm", &self.algorithm).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter over a ready key.
    pub fn new(key: EncodingKey, algorithm: Algorithm, kid: Option<String>) -> Self {
        Self { key, algorithm, kid }
    }

    /// Reads a PEM private key and picks ES256, RS256 or EdDSA from its type.
    pub fn from_pem_file(path: &Path, kid: Option<String>) -> Result<Self, MintError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| MintError::Read(name.clone(), e))?;
        let (key, algorithm) = if let Ok(key) = EncodingKey::from_ec_pem(&pem) {
            (key, Algorithm::ES256)
        } else if let Ok(key) = EncodingKey::from_rsa_pem(&pem) {
            (key, Algorithm::RS256)
        } else if let Ok(key) = EncodingKey::from_ed_pem(&pem) {
            (key, Algorithm::EdDSA)
        } else {
            return Err(MintError::Key(name));
        };
        Ok(Self { key, algorithm, kid })
    }

    /// Signs `claims` with header `typ: vnd.backstage.user`.
    pub fn mint(&self, claims: &impl Serialize) -> Result<String, MintError> {
        let mut header = Header::new(self.algorithm);
        header.typ = Some("vnd.backstage.user".into());
        header.kid = self.kid.clone();
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}
