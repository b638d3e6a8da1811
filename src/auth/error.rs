//! Why a bearer token was not accepted. Messages name the failed check, never the token.

/// A token verification failure; every variant becomes a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header is not `Bearer <token>`.
    #[error("the `Authorization` header is not a bearer token (`Bearer <token>`)")]
    NotBearer,
    /// The token is larger than the configured limit.
    #[error("token is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Token length.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not three base64url parts, or a part is not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is not one the issuer accepts.
    #[error("algorithm `{alg}` is not accepted{issuer} (accepted: {accepted})")]
    AlgorithmNotAccepted {
        /// The token's algorithm.
        alg: String,
        /// ` for issuer `x`` or empty.
        issuer: String,
        /// The accepted list.
        accepted: String,
    },
    /// No configured issuer matches the token's `iss`.
    #[error("issuer `{0}` is not trusted")]
    UnknownIssuer(String),
    /// No key with the token's `kid`, even after refreshing the issuer's keys.
    #[error("no key with id `{kid}` for issuer `{issuer}`")]
    UnknownKey {
        /// The token's key id (truncated).
        kid: String,
        /// The issuer name.
        issuer: String,
    },
    /// The issuer has no usable key for this token yet.
    #[error("issuer `{0}` has no usable key for this token")]
    NoKey(String),
    /// The `kid` is published twice with different keys, so it is unusable.
    #[error("key id `{0}` is published more than once with different keys and is not trusted")]
    AmbiguousKey(String),
    /// Signature verification failed.
    #[error("signature verification failed")]
    BadSignature,
    /// `exp` is in the past beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future beyond the leeway.
    #[error("token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    /// `iat` is in the future beyond the leeway.
    #[error("token was issued in the future (`iat`)")]
    IssuedInFuture,
    /// `iss` does not match.
    #[error("token issuer (`iss`) does not match")]
    WrongIssuer,
    /// `aud` does not match.
    #[error("token audience (`aud`) does not match")]
    WrongAudience,
    /// A required claim is missing.
    #[error("required claim `{0}` is missing")]
    MissingClaim(String),
    /// A claim has the wrong type or content.
    #[error("claim `{claim}` {problem}")]
    BadClaim {
        /// Claim path.
        claim: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The userinfo endpoint needed for the user's groups did not answer usefully (→ 503).
    #[error("group membership could not be fetched from userinfo: {0}")]
    UserinfoUnavailable(String),
    /// The token type cannot be used here.
    #[error("token type `{0}` is not accepted here")]
    WrongTokenType(String),
}
