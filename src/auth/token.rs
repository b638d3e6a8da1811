//! Splitting a compact JWS and reading the parts needed before a key is chosen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::AuthError;

/// The JOSE header fields stagedoor looks at before verifying.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenHeader {
    /// Algorithm name as sent (checked against the issuer's list before use).
    pub alg: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Token type, e.g. `vnd.backstage.user`.
    #[serde(default)]
    pub typ: Option<String>,
}

#[derive(Deserialize)]
struct IssuerPeek {
    #[serde(default)]
    iss: Option<String>,
}

/// A compact JWS split into its parts; nothing is trusted yet.
#[derive(Debug)]
pub struct UnverifiedToken<'t> {
    /// The whole token.
    pub raw: &'t str,
    /// The decoded header.
    pub header: TokenHeader,
    payload: &'t str,
}

impl<'t> UnverifiedToken<'t> {
    /// Splits and decodes the header.
    pub fn parse(raw: &'t str) -> Result<Self, AuthError> {
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("a JWT has three dot-separated parts".into()));
        };
        let bytes =
            URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::Malformed("header is not base64url".into()))?;
        let header: TokenHeader = serde_json::from_slice(&bytes)
            .map_err(|e| AuthError::Malformed(format!("header is not a JSON object with `alg`: {e}")))?;
        Ok(Self { raw, header, payload })
    }

    /// The unverified `iss` claim, used only to pick which issuer's keys to try.
    pub fn claimed_issuer(&self) -> Result<Option<String>, AuthError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| AuthError::Malformed("payload is not base64url".into()))?;
        let peek: IssuerPeek = serde_json::from_slice(&bytes)
            .map_err(|_| AuthError::Malformed("payload is not a JSON object with a string `iss`".into()))?;
        Ok(peek.iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn parses_header_and_peeks_issuer() {
        let raw = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256","kid":"k1","typ":"vnd.backstage.user"}"#),
            b64(r#"{"iss":"http://a"}"#)
        );
        let token = UnverifiedToken::parse(&raw).unwrap();
        assert_eq!(token.header.alg, "ES256");
        assert_eq!(token.header.kid.as_deref(), Some("k1"));
        assert_eq!(token.claimed_issuer().unwrap().as_deref(), Some("http://a"));
    }

    #[test]
    fn refuses_malformed_tokens() {
        for raw in
            ["", "a.b", "a.b.c.d", "!!!.e30.x", &format!("{}.e30.x", b64("not json")), &format!("{}.e30.x", b64("{}"))]
        {
            assert!(matches!(UnverifiedToken::parse(raw), Err(AuthError::Malformed(_))), "{raw}");
        }
    }
}
