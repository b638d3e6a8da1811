//! Bearer token parsing and verification.
//!
//! Input, by its first byte:
//! - `0x01`: structured, unsigned: `header JSON \0 payload JSON \0 signature bytes`, each part
//!   base64url-encoded by the harness (reaches the JSON parsing behind the base64 layer);
//! - `0x02`, `0x03`, `0x04`: `header JSON \0 payload JSON`, base64url-encoded and **correctly
//!   signed** by the harness with, in turn, the configured HS secret, the EC P-256 fixture key
//!   (`ec-private.pem`) or the Ed25519 fixture key: reaches the claim checks behind the
//!   signature, where an `Ok` is legitimate and is checked against the claims;
//! - anything else: the whole input is the token text (when UTF-8).
//!
//! Checks: `UnverifiedToken::parse`, `claimed_issuer`, `Authenticator::bearer` and
//! `Authenticator::verify_uncached` (two fixed configurations) never panic; an `Ok` for a token
//! the harness did not sign is a forgery; an `Ok` for a signed one must come from the issuer of
//! that key and respect `alg`, `typ`, `exp`, `nbf`, `iat`, `iss`, `aud` and the principal's
//! invariants; an error message never contains the token.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stagedoor::auth::Authenticator;
use stagedoor::auth::claims::is_safe_ref;
use stagedoor::auth::token::UnverifiedToken;
use stagedoor::config::Config;
use stagedoor_fuzz::{SECRET, SECRET_ENV, compile, fixture, runtime, tolerated};

const LEEWAY: f64 = 60.0;
/// Seconds of slack for the clock moving between the verification and these checks.
const SLACK: f64 = 5.0;

/// Per configuration: the expected `iss`/`aud` of the HS issuer and its ownership-ref limit.
struct Fixed {
    config: Config,
    hs_iss: Option<&'static str>,
    hs_aud: Option<&'static str>,
    hs_groups_claim: &'static [&'static str],
    hs_max_refs: usize,
}

fn configs() -> &'static [Fixed; 2] {
    static CONFIGS: OnceLock<[Fixed; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let routes = r#"
upstreams: { app: { url: "http://127.0.0.1:9" } }
routes:
  - { prefix: /api, upstream: app, rules: [ { methods: [GET], path: "/{*rest}", authenticated: true } ] }
"#;
        // `iss` picks the issuer: the HS issuer expects one, the PEM issuer takes the rest.
        let with_iss = format!(
            r#"
identity:
  issuers:
    - {{ name: hs, secret_env: {SECRET_ENV}, algorithms: [HS256], issuer: "https://hs.test", audience: backstage }}
    - {{ name: ec, keys: [{{ pem_file: "{ec}" }}], algorithms: [ES256] }}
{routes}"#,
            ec = fixture("ec-public.pem"),
        );
        // No `iss` anywhere: every issuer is tried in order; kids, several families.
        let without_iss = format!(
            r#"
identity:
  issuers:
    - {{ name: hs, secret_env: {SECRET_ENV}, algorithms: [HS256, HS384, HS512], groups_claim: realm_access.roles, max_ownership_refs: 4 }}
    - {{ name: ec, keys: [{{ pem_file: "{ec}", kid: ec1 }}, {{ pem_file: "{ec2}", kid: ec2 }}], algorithms: [ES256] }}
    - {{ name: ed, keys: [{{ pem_file: "{ed}" }}], algorithms: [EdDSA] }}
    - {{ name: rsa, keys: [{{ pem_file: "{rsa}" }}], algorithms: [RS256, PS256] }}
{routes}"#,
            ec = fixture("ec-public.pem"),
            ec2 = fixture("ec2-public.pem"),
            ed = fixture("ed25519-public.pem"),
            rsa = fixture("rsa-public.pem"),
        );
        [
            Fixed {
                config: compile("token-iss.yaml", &with_iss),
                hs_iss: Some("https://hs.test"),
                hs_aud: Some("backstage"),
                hs_groups_claim: &["ent"],
                hs_max_refs: 1000,
            },
            Fixed {
                config: compile("token-plain.yaml", &without_iss),
                hs_iss: None,
                hs_aud: None,
                hs_groups_claim: &["realm_access", "roles"],
                hs_max_refs: 4,
            },
        ]
    })
}

/// The signing keys of the signed modes: (issuer name, key, algorithms the key can sign).
fn signers() -> &'static [(&'static str, EncodingKey, &'static [Algorithm]); 3] {
    static SIGNERS: OnceLock<[(&'static str, EncodingKey, &'static [Algorithm]); 3]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        let pem = |name: &str| {
            std::fs::read(stagedoor_fuzz::fixtures().join(name))
                .unwrap_or_else(|err| panic!("cannot read fixture {name}: {err}"))
        };
        let ec = EncodingKey::from_ec_pem(&pem("ec-private.pem")).unwrap_or_else(|err| panic!("ec key: {err}"));
        let ed = EncodingKey::from_ed_pem(&pem("ed25519-private.pem")).unwrap_or_else(|err| panic!("ed key: {err}"));
        [
            (
                "hs",
                EncodingKey::from_secret(SECRET.as_bytes()),
                &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            ),
            ("ec", ec, &[Algorithm::ES256]),
            ("ed", ed, &[Algorithm::EdDSA]),
        ]
    })
}

/// `STAGEDOOR_FUZZ_DEBUG=1` prints every verification result (for checking seeds).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("STAGEDOOR_FUZZ_DEBUG").is_some())
}

fn now() -> f64 {
    jsonwebtoken::get_current_timestamp() as f64
}

/// Builds the token of a structured input; `Some(signer index)` when the harness signed it.
fn build(mode: u8, rest: &[u8]) -> (String, Option<usize>) {
    let mut parts = rest.splitn(3, |b| *b == 0);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    if mode == 1 {
        let signature = parts.next().unwrap_or_default();
        return (format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)), None);
    }
    let index = usize::from(mode - 2);
    let (_, key, algorithms) = &signers()[index];
    // Sign with the algorithm the header names when this key can, else with the key's first.
    let named = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|h| h.get("alg").and_then(Value::as_str).and_then(|a| a.parse::<Algorithm>().ok()));
    let alg = named.filter(|a| algorithms.contains(a)).unwrap_or(algorithms[0]);
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, alg)
        .unwrap_or_else(|err| panic!("signing with {alg:?} failed: {err}"));
    (format!("{signing_input}.{signature}"), Some(index))
}

fn lookup<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, segment| v.get(*segment))
}

/// An accepted token the harness signed with `signer`: everything stagedoor promised to check.
fn check_accepted(fixed: &Fixed, token: &str, signer: usize, entry: &stagedoor::auth::cache::CachedToken) {
    let (signer_name, _, algorithms) = &signers()[signer];
    let principal = &entry.principal;
    let ctx = format!("accepted token {token:?} as {principal:?}");
    assert_eq!(&*principal.issuer, *signer_name, "{ctx}: verified by another issuer than the signer's");

    let mut parts = token.split('.');
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap_or_default()).unwrap_or_default())
            .unwrap_or_else(|err| panic!("{ctx}: header is not JSON: {err}"));
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap_or_default()).unwrap_or_default())
            .unwrap_or_else(|err| panic!("{ctx}: payload is not JSON: {err}"));
    assert!(payload.is_object(), "{ctx}: payload is not an object");

    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    assert!(algorithms.iter().any(|a| format!("{a:?}") == alg), "{ctx}: header alg {alg:?} is not the signer's");
    let typ = header.get("typ").and_then(Value::as_str);
    assert!(
        !matches!(typ, Some("vnd.backstage.limited-user" | "vnd.backstage.plugin")),
        "{ctx}: token type {typ:?} must be refused"
    );

    let now = now();
    let exp = payload.get("exp").and_then(Value::as_f64);
    let Some(exp) = exp else { panic!("{ctx}: no numeric `exp`, and missing exp is not allowed") };
    assert!(exp + LEEWAY + SLACK >= now, "{ctx}: expired (exp {exp}, now {now})");
    if let Some(exp) = payload.get("exp").and_then(Value::as_u64) {
        assert_eq!(entry.expires_at, exp, "{ctx}: cache expiry is not the token's exp");
    }
    // jsonwebtoken accepts a fractional NumericDate (RFC 7519 §2) and rounds it; the cache
    // must not keep the token past it.
    if !tolerated("cache-exp") {
        assert!(
            entry.expires_at as f64 <= exp.ceil(),
            "[cache-exp] {ctx}: the verified-token cache keeps it until {} although exp is {exp}",
            entry.expires_at
        );
    }
    if let Some(nbf) = payload.get("nbf").and_then(Value::as_f64) {
        assert!(nbf - LEEWAY - SLACK <= now, "{ctx}: not yet valid (nbf {nbf}, now {now})");
    }
    if let Some(iat) = payload.get("iat").and_then(Value::as_u64) {
        assert!(iat as f64 <= now + LEEWAY + SLACK, "{ctx}: issued in the future (iat {iat}, now {now})");
    }
    if signer == 0 {
        if let Some(iss) = fixed.hs_iss {
            assert_eq!(payload.get("iss").and_then(Value::as_str), Some(iss), "{ctx}: wrong or missing iss");
        }
        if let Some(aud) = fixed.hs_aud {
            let ok = match payload.get("aud") {
                Some(Value::String(a)) => a == aud,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
                _ => false,
            };
            assert!(ok, "{ctx}: wrong or missing aud");
        }
    }

    // The principal.
    let user = &*principal.user_entity_ref;
    assert!(is_safe_ref(user), "{ctx}: unsafe user ref");
    assert_eq!(payload.get("sub").and_then(Value::as_str), Some(user), "{ctx}: user is not `sub`");
    let refs = &principal.ownership_refs;
    assert_eq!(refs.first().map(String::as_str), Some(user), "{ctx}: user ref is not the first ownership ref");
    for (i, r) in refs.iter().enumerate() {
        assert!(is_safe_ref(r), "{ctx}: unsafe ownership ref {r:?}");
        assert!(!refs[..i].contains(r), "{ctx}: duplicate ownership ref {r:?}");
    }
    let groups_claim: &[&str] = if signer == 0 { fixed.hs_groups_claim } else { &["ent"] };
    let max = if signer == 0 { fixed.hs_max_refs } else { 1000 };
    match lookup(&payload, groups_claim) {
        None | Some(Value::Null) => assert_eq!(refs.len(), 1, "{ctx}: groups without a groups claim"),
        Some(Value::Array(items)) => assert!(items.len() <= max, "{ctx}: more groups than max_ownership_refs"),
        Some(Value::String(_)) => {}
        Some(other) => panic!("{ctx}: accepted a groups claim of the wrong type: {other:?}"),
    }
    assert_eq!(principal.user_header().as_bytes(), user.as_bytes(), "{ctx}: user header");
    assert_eq!(principal.ownership_header().as_bytes(), refs.join(",").as_bytes(), "{ctx}: ownership header");
}

fn check_error_does_not_leak(token: &str, message: &str) {
    if tolerated("leak") || token.len() < 24 || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return;
    }
    assert!(!message.contains(token), "[leak] error message contains the token: {message:?}");
}

fuzz_target!(|data: &[u8]| {
    let (token, signer) = match data.first() {
        Some(&mode @ 1..=4) => build(mode, &data[1..]),
        _ => match std::str::from_utf8(data) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => return,
        },
    };

    if let Ok(parsed) = UnverifiedToken::parse(&token) {
        let _ = parsed.claimed_issuer();
    }
    // The header parser, on `Bearer <token>` when it is a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        // `Bearer[ ]+(\S+)`: spaces after the scheme are skipped.
        let expected = token.trim_start_matches(' ');
        let acceptable =
            !expected.is_empty() && expected.is_ascii() && !expected.bytes().any(|b| b.is_ascii_whitespace());
        match Authenticator::bearer(&headers) {
            Ok(found) => {
                assert!(acceptable, "bearer() accepted `Bearer {token:?}`");
                assert_eq!(found, expected, "bearer() returned another token");
            }
            Err(_) => assert!(!acceptable, "bearer() refused `Bearer {token:?}`"),
        }
    }

    for fixed in configs() {
        let result = runtime().block_on(fixed.config.authenticator.verify_uncached(&token));
        if debug() {
            eprintln!("token {token:?} (signer {signer:?}) → {result:?}");
        }
        match (result, signer) {
            (Ok(entry), Some(index)) => check_accepted(fixed, &token, index, &entry),
            (Ok(entry), None) => panic!("[forged] accepted a token the harness did not sign: {token:?} as {entry:?}"),
            (Err(err), _) => check_error_does_not_leak(&token, &err.to_string()),
        }
    }
});
