//! Backstage plugin (service-to-service) tokens, as sent to the permission API by backend
//! plugins (§4.4): header `typ: vnd.backstage.plugin`, claims `sub` = the calling plugin,
//! `aud` = `permission`, optional `obo` = the limited token of the user the plugin acts for.
//!
//! The calling plugin's keys come from `{its base URL}/.backstage/auth/v1/jwks.json`; only
//! plugins configured under `plugins:` are accepted as callers, so a token cannot make the
//! gateway fetch keys from anywhere else.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::jwks::JwksCache;
use super::keys::truncate;
use super::token::UnverifiedToken;
use super::{AuthError, Authenticator};
use crate::identity::Principal;

/// The JOSE `typ` of a plugin token.
pub const PLUGIN_TOKEN_TYPE: &str = "vnd.backstage.plugin";

/// Who is calling with a plugin token.
#[derive(Debug, Clone)]
pub struct PluginCaller {
    /// The calling plugin's id (`sub`).
    pub plugin: String,
    /// The user the plugin acts for (`obo`), if any.
    pub on_behalf_of: Option<Principal>,
}

/// Verifies plugin tokens addressed to one audience (`permission`).
#[derive(Debug)]
pub struct PluginTokens {
    keys: HashMap<String, Arc<JwksCache>>,
    validation: Validation,
}

impl PluginTokens {
    /// A verifier for tokens addressed to `audience`, from the plugins whose JWKS are given.
    pub fn new(audience: &str, keys: HashMap<String, Arc<JwksCache>>) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.algorithms = vec![Algorithm::ES256];
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 30;
        Self { keys, validation }
    }

    /// The JWKS caches, for the server to refresh.
    pub fn caches(&self) -> impl Iterator<Item = &Arc<JwksCache>> {
        self.keys.values()
    }

    /// Verifies a plugin token and, when it carries `obo`, the user token inside.
    pub async fn verify(&self, raw: &str, users: &Authenticator) -> Result<PluginCaller, AuthError> {
        let token = UnverifiedToken::parse(raw)?;
        if token.header.typ.as_deref() != Some(PLUGIN_TOKEN_TYPE) {
            return Err(AuthError::WrongTokenType(token.header.typ.clone().unwrap_or_default()));
        }
        let claimed = peek_sub(raw)?;
        if claimed.is_empty() || !claimed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(AuthError::BadClaim { claim: "sub".into(), problem: "is not a plugin id".into() });
        }
        let Some(cache) = self.keys.get(&claimed) else {
            return Err(AuthError::UnknownIssuer(format!("plugin:{}", truncate(&claimed))));
        };
        if token.header.alg != "ES256" {
            return Err(AuthError::AlgorithmNotAccepted {
                alg: truncate(&token.header.alg),
                issuer: format!(" for plugin `{claimed}`"),
                accepted: "ES256".into(),
            });
        }
        let kid = token.header.kid.as_deref();
        let mut ring = cache.current();
        if !ring.knows(kid) {
            ring = cache.refetch_for_unknown_key().await;
        }
        let candidates = ring.candidates(kid).map_err(|err| match err {
            AuthError::UnknownKey { kid, .. } => AuthError::UnknownKey { kid, issuer: format!("plugin:{claimed}") },
            other => other,
        })?;
        let mut last = AuthError::NoKey(format!("plugin:{claimed}"));
        for key in candidates.as_slice() {
            match jsonwebtoken::decode::<Value>(raw, &key.decoding, &self.validation) {
                Ok(data) => return Self::caller(claimed, &data.claims, users).await,
                Err(err) => {
                    last = match err.kind() {
                        jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::BadSignature,
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                        jsonwebtoken::errors::ErrorKind::InvalidAudience => AuthError::WrongAudience,
                        jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
                        _ => AuthError::Malformed("plugin token could not be verified".into()),
                    };
                }
            }
        }
        Err(last)
    }

    async fn caller(plugin: String, claims: &Value, users: &Authenticator) -> Result<PluginCaller, AuthError> {
        let on_behalf_of = match claims.get("obo") {
            None | Some(Value::Null) => None,
            Some(Value::String(obo)) => Some(users.verify_on_behalf_of(obo).await?),
            Some(_) => return Err(AuthError::BadClaim { claim: "obo".into(), problem: "must be a token".into() }),
        };
        Ok(PluginCaller { plugin, on_behalf_of })
    }
}

/// True when the bearer token is a plugin token (by its JOSE `typ`).
pub fn is_plugin_token(raw: &str) -> bool {
    UnverifiedToken::parse(raw).is_ok_and(|t| t.header.typ.as_deref() == Some(PLUGIN_TOKEN_TYPE))
}

fn peek_sub(raw: &str) -> Result<String, AuthError> {
    let payload = raw.split('.').nth(1).ok_or_else(|| AuthError::Malformed("a JWT has three parts".into()))?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed("payload is not base64url".into()))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed("payload is not a JSON object".into()))?;
    value.get("sub").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| AuthError::MissingClaim("sub".into()))
}
