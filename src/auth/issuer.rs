//! One trusted token issuer: its keys, accepted algorithms, claim checks and claim names.
//! Verification with keys in hand is pure and synchronous.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::Value;

use super::AuthError;
use super::claims::{self, ClaimPath};
use super::hierarchy::GroupHierarchy;
use super::jwks::JwksCache;
use super::keys::{KeyRing, truncate};
use super::token::UnverifiedToken;
use crate::identity::Principal;

/// Where an issuer's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// PEM files or a shared secret, loaded at start.
    Static(Arc<KeyRing>),
    /// A JWKS URL, fetched and refreshed.
    Jwks(Arc<JwksCache>),
}

/// Settings of one issuer, compiled from config.
#[derive(Debug)]
pub struct IssuerSettings {
    /// Config name.
    pub name: Arc<str>,
    /// Expected `iss`, if configured.
    pub iss: Option<String>,
    /// Expected audience, if configured.
    pub audience: Option<String>,
    /// Accepted algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Where the user ref is read.
    pub user_claim: ClaimPath,
    /// Where the groups are read.
    pub groups_claim: ClaimPath,
    /// Clock leeway in seconds.
    pub leeway_seconds: u64,
    /// Accept tokens without `exp` (off by default).
    pub allow_missing_exp: bool,
    /// Most ownership refs a token may carry.
    pub max_ownership_refs: usize,
    /// Where groups come from when a token has no groups claim.
    pub userinfo: Option<super::userinfo::Userinfo>,
    /// Parent groups added to the token's or userinfo's groups, if configured.
    pub group_hierarchy: Option<Arc<GroupHierarchy>>,
}

/// A verified token.
#[derive(Debug)]
pub struct Verified {
    /// Who it proves.
    pub principal: Principal,
    /// Its `exp`.
    pub expires_at: Option<u64>,
    /// It has no groups claim and the issuer has a userinfo endpoint to ask.
    pub needs_userinfo: bool,
}

/// A trusted issuer, ready to verify tokens.
#[derive(Debug)]
pub struct Issuer {
    settings: IssuerSettings,
    /// One validation per accepted algorithm: jsonwebtoken requires every algorithm of a
    /// validation to belong to the key's family.
    validations: Vec<(Algorithm, Validation)>,
    accepted: String,
    /// The issuer's keys.
    pub keys: KeySource,
}

impl Issuer {
    /// Prepares the validation rules once.
    pub fn new(settings: IssuerSettings, keys: KeySource) -> Self {
        let first = settings.algorithms.first().copied().unwrap_or(Algorithm::ES256);
        let mut validation = Validation::new(first);
        validation.algorithms = settings.algorithms.clone();
        validation.leeway = settings.leeway_seconds;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        let mut required: Vec<&str> = Vec::new();
        if !settings.allow_missing_exp {
            required.push("exp");
        }
        match &settings.iss {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &settings.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            // No audience configured: a token's `aud` is not checked.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let accepted = settings.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let validations = settings
            .algorithms
            .iter()
            .map(|alg| {
                let mut pinned = validation.clone();
                pinned.algorithms = vec![*alg];
                (*alg, pinned)
            })
            .collect();
        Self { settings, validations, accepted, keys }
    }

    /// Config name.
    pub fn name(&self) -> &Arc<str> {
        &self.settings.name
    }

    /// True when the key named `kid` is still published (always true for static keys).
    pub fn still_publishes(&self, kid: Option<&str>) -> bool {
        match &self.keys {
            KeySource::Static(_) => true,
            KeySource::Jwks(cache) => cache.current().knows(kid),
        }
    }

    /// Expected `iss`, if configured.
    pub fn iss(&self) -> Option<&str> {
        self.settings.iss.as_deref()
    }

    /// Checks that the token's algorithm is one this issuer accepts.
    pub fn check_algorithm(&self, token: &UnverifiedToken<'_>) -> Result<Algorithm, AuthError> {
        let refuse = || AuthError::AlgorithmNotAccepted {
            alg: truncate(&token.header.alg),
            issuer: format!(" for issuer `{}`", self.settings.name),
            accepted: self.accepted.clone(),
        };
        // `none`, `None`, `nOnE` and anything unknown fail to parse and are refused here.
        let alg: Algorithm = token.header.alg.parse().map_err(|_| refuse())?;
        if self.settings.algorithms.contains(&alg) { Ok(alg) } else { Err(refuse()) }
    }

    /// Verifies the token with keys in hand and reads the principal.
    /// Verifies the token and reads the principal. `on_behalf_of`: the token is the `obo` of a
    /// plugin token, where Backstage's limited user tokens are the expected kind.
    pub fn verify(
        &self,
        token: &UnverifiedToken<'_>,
        ring: &KeyRing,
        on_behalf_of: bool,
    ) -> Result<Verified, AuthError> {
        let alg = self.check_algorithm(token)?;
        let validation = self
            .validations
            .iter()
            .find_map(|(a, v)| (*a == alg).then_some(v))
            .ok_or_else(|| AuthError::Malformed("algorithm has no validation".into()))?;
        match token.header.typ.as_deref() {
            Some("vnd.backstage.limited-user") if on_behalf_of => {}
            Some(typ @ ("vnd.backstage.limited-user" | "vnd.backstage.plugin")) => {
                return Err(AuthError::WrongTokenType(typ.to_owned()));
            }
            _ => {}
        }
        let candidates = ring.candidates(token.header.kid.as_deref()).map_err(|err| match err {
            AuthError::UnknownKey { kid, .. } => AuthError::UnknownKey { kid, issuer: self.settings.name.to_string() },
            AuthError::NoKey(_) => AuthError::NoKey(self.settings.name.to_string()),
            other => other,
        })?;
        let mut last = AuthError::NoKey(self.settings.name.to_string());
        for key in candidates.as_slice() {
            if key.decoding.family() != family(alg) {
                last = AuthError::AlgorithmNotAccepted {
                    alg: format!("{alg:?}"),
                    issuer: " for this key".into(),
                    accepted: format!("{:?} keys", key.decoding.family()),
                };
                continue;
            }
            if key.algorithm.is_some_and(|pinned| pinned != alg) {
                last = AuthError::AlgorithmNotAccepted {
                    alg: format!("{alg:?}"),
                    issuer: " for this key".into(),
                    accepted: key.algorithm.map(|a| format!("{a:?}")).unwrap_or_default(),
                };
                continue;
            }
            match jsonwebtoken::decode::<Value>(token.raw, &key.decoding, validation) {
                Ok(data) => {
                    // `exp` may be fractional (RFC 7519 NumericDate); round down so the cache
                    // never keeps a token past it (found by fuzzing).
                    let exp = data.claims.get("exp");
                    let expires_at =
                        exp.and_then(Value::as_u64).or_else(|| exp.and_then(Value::as_f64).map(|f| f as u64));
                    let needs_userinfo =
                        self.settings.userinfo.is_some() && !claims::has(&data.claims, &self.settings.groups_claim);
                    return Ok(Verified { principal: self.principal(&data.claims)?, expires_at, needs_userinfo });
                }
                Err(err) => {
                    last = map_error(err.kind());
                    if !matches!(last, AuthError::BadSignature) || candidates.as_slice().len() == 1 {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// Completes a principal whose token had no groups claim, from userinfo.
    pub async fn with_userinfo_groups(&self, principal: Principal, token: &str) -> Result<Principal, AuthError> {
        let Some(userinfo) = &self.settings.userinfo else { return Ok(principal) };
        let groups = userinfo.groups(token, &self.settings.groups_claim, self.settings.max_ownership_refs).await?;
        Ok(Principal::new(principal.user_entity_ref.to_string(), self.with_parents(groups), self.settings.name.clone()))
    }

    fn principal(&self, claims: &Value) -> Result<Principal, AuthError> {
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64) {
            let now = jsonwebtoken::get_current_timestamp();
            if iat > now.saturating_add(self.settings.leeway_seconds) {
                return Err(AuthError::IssuedInFuture);
            }
        }
        let user = claims::user(claims, &self.settings.user_claim)?;
        let groups = claims::groups(claims, &self.settings.groups_claim, self.settings.max_ownership_refs)?;
        Ok(Principal::new(user, self.with_parents(groups), self.settings.name.clone()))
    }

    /// `groups` plus their parent groups, when a hierarchy is configured.
    fn with_parents(&self, groups: Vec<String>) -> Vec<String> {
        match &self.settings.group_hierarchy {
            Some(hierarchy) => hierarchy.expand(groups),
            None => groups,
        }
    }
}

fn family(alg: Algorithm) -> AlgorithmFamily {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    }
}

fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::BadClaim { claim: claim.clone(), problem: "has the wrong type".into() }
        }
        ErrorKind::InvalidAlgorithm => AuthError::Malformed("algorithm does not fit the key".into()),
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::Malformed("algorithm does not fit the key".into()),
        ErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url".into()),
        ErrorKind::Json(_) => AuthError::Malformed("payload is not a JSON object".into()),
        ErrorKind::Utf8(_) => AuthError::Malformed("a part is not UTF-8".into()),
        _ => AuthError::Malformed("token could not be decoded".into()),
    }
}
