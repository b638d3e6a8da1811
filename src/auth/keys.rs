//! Verification keys of one issuer: parsed once (from PEM files, a secret or a JWKS document)
//! into ready `DecodingKey`s indexed by `kid`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::AuthError;

/// One usable key.
#[derive(Clone)]
pub struct Key {
    /// The ready decoding key.
    pub decoding: DecodingKey,
    /// The algorithm the key is pinned to, when its source says (a JWK's `alg`).
    pub algorithm: Option<Algorithm>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material is never printed.
        f.debug_struct("Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// The keys of one issuer.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
    ambiguous: HashSet<String>,
}

/// A JWKS document that could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JWKS document.
    #[error("not a JWKS document: {0}")]
    Syntax(String),
}

impl KeyRing {
    /// A ring of keys without ids (PEM files, secrets), each tried in turn.
    pub fn from_keys(keys: Vec<(Option<String>, Key)>) -> Self {
        let mut ring = KeyRing::default();
        for (kid, key) in keys {
            ring.add(kid, key);
        }
        ring
    }

    /// Parses a JWKS document. Keys of unsupported types or for encryption are skipped with a
    /// warning; a `kid` listed twice is unusable.
    pub fn from_jwks(document: &[u8], issuer: &str) -> Result<Self, JwksError> {
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|e| JwksError::Syntax(e.to_string()))?;
        let Some(entries) = value.get("keys").and_then(|k| k.as_array()) else {
            return Err(JwksError::Syntax("no `keys` array".into()));
        };
        let mut ring = KeyRing::default();
        let mut seen_kids: HashMap<String, serde_json::Value> = HashMap::new();
        for entry in entries {
            let kid = entry.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            if let Some(kid) = &kid {
                if let Some(previous) = seen_kids.get(kid) {
                    if previous != entry {
                        tracing::warn!(issuer, kid, "JWKS lists this kid twice with different keys; it is not trusted");
                        ring.ambiguous.insert(kid.clone());
                        ring.by_kid.remove(kid);
                    }
                    continue;
                }
                seen_kids.insert(kid.clone(), entry.clone());
            }
            match parse_jwk(entry) {
                Ok(key) => ring.add(kid, key),
                Err(reason) => tracing::warn!(issuer, kid = kid.as_deref(), reason, "skipping JWKS key"),
            }
        }
        Ok(ring)
    }

    fn add(&mut self, kid: Option<String>, key: Key) {
        match kid {
            Some(kid) if !self.ambiguous.contains(&kid) => {
                self.by_kid.insert(kid, key);
            }
            Some(_) => {}
            None => self.without_kid.push(key),
        }
    }

    /// The candidate keys for a token: the one named by `kid`, or every key without an id.
    pub fn candidates(&self, kid: Option<&str>) -> Result<Candidates<'_>, AuthError> {
        match kid {
            Some(kid) if self.ambiguous.contains(kid) => Err(AuthError::AmbiguousKey(truncate(kid))),
            Some(kid) => match self.by_kid.get(kid) {
                Some(key) => Ok(Candidates::One(key)),
                None if self.by_kid.is_empty() && !self.without_kid.is_empty() => {
                    Ok(Candidates::Many(&self.without_kid))
                }
                None => Err(AuthError::UnknownKey { kid: truncate(kid), issuer: String::new() }),
            },
            None if !self.without_kid.is_empty() => Ok(Candidates::Many(&self.without_kid)),
            None if self.by_kid.len() == 1 => Ok(Candidates::Many(std::slice::from_ref(
                self.by_kid.values().next().ok_or(AuthError::NoKey(String::new()))?,
            ))),
            None => Err(AuthError::NoKey(String::new())),
        }
    }

    /// True when `kid` is known (or ambiguous), so a refetch would not help.
    pub fn knows(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.by_kid.contains_key(kid) || self.ambiguous.contains(kid),
            None => !self.without_kid.is_empty() || self.by_kid.len() == 1,
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keys to try for one token.
#[derive(Debug)]
pub enum Candidates<'r> {
    /// The key named by `kid`.
    One(&'r Key),
    /// Keys without ids, tried in order.
    Many(&'r [Key]),
}

impl<'r> Candidates<'r> {
    /// The keys as a slice.
    pub fn as_slice(&self) -> &[Key] {
        match self {
            Candidates::One(key) => std::slice::from_ref(*key),
            Candidates::Many(keys) => keys,
        }
    }
}

/// Keeps attacker-chosen key ids short in messages and logs.
pub fn truncate(kid: &str) -> String {
    let mut end = kid.len().min(64);
    while !kid.is_char_boundary(end) {
        end -= 1;
    }
    kid[..end].escape_debug().to_string()
}

fn parse_jwk(entry: &serde_json::Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("unsupported or malformed key: {e}"))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("key is for encryption (`use: enc`)".into());
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        // Shared secrets never come from a published key set.
        return Err("symmetric (`oct`) keys are not accepted from a JWKS".into());
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(signing_algorithm(alg).ok_or_else(|| format!("unsupported `alg` {alg:?}"))?),
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key: {e}"))?;
    Ok(Key { decoding, algorithm })
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(kid: &str, x: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": x, "y": EC_Y})
    }

    #[test]
    fn indexes_keys_by_kid_and_skips_garbage() {
        let doc =
            serde_json::json!({"keys": [ec("a", EC_X), {"kty": "weird"}, {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]});
        let ring = KeyRing::from_jwks(doc.to_string().as_bytes(), "test").unwrap();
        assert_eq!(ring.len(), 1);
        assert!(matches!(ring.candidates(Some("a")), Ok(Candidates::One(_))));
        assert!(matches!(ring.candidates(Some("s")), Err(AuthError::UnknownKey { .. })));
    }

    #[test]
    fn a_kid_listed_twice_with_different_keys_is_unusable() {
        let other_x = "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis";
        let doc = serde_json::json!({"keys": [ec("a", EC_X), ec("a", other_x)]});
        let ring = KeyRing::from_jwks(doc.to_string().as_bytes(), "test").unwrap();
        assert_eq!(ring.candidates(Some("a")).unwrap_err(), AuthError::AmbiguousKey("a".into()));
        assert!(ring.knows(Some("a")));
    }

    #[test]
    fn refuses_documents_that_are_not_jwks() {
        assert!(KeyRing::from_jwks(b"{}", "t").is_err());
        assert!(KeyRing::from_jwks(b"garbage", "t").is_err());
    }

    #[test]
    fn truncates_long_kids() {
        assert_eq!(truncate(&"k".repeat(500)).len(), 64);
    }
}
