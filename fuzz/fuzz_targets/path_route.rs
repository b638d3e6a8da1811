//! Path normalization and route lookup.
//!
//! Input: arbitrary bytes, used as a request target when they are UTF-8.
//! Checks:
//! - `normalize` never panics; when it accepts a path, the result starts with `/`, has no `//`,
//!   no `.`/`..` segment, no trailing `/` (but the root), no encoded `/`, `\` or `;`
//!   (case-insensitively), no raw `\`, `;`, control or non-ASCII byte, only upper-case
//!   escapes of bytes that must stay escaped, decodes (fully) to UTF-8, and normalizing it again
//!   gives it back unchanged;
//! - `route` never panics, for 8 method variants (one a CORS preflight) on two fixed tables,
//!   for a request carrying the raw target (when `http` accepts it) and one carrying the input
//!   normalized as a whole; an accepted request forwards exactly the normalized path plus the
//!   original query; and the forwarded target, decided again, is decided exactly as the
//!   original (same rule, resource ref and forward path, or the same rejection).
//!
//! Assertion ids for STAGEDOOR_FUZZ_TOLERATE: `utf8`, `idempotent` (both fixed in 0c76a05).
#![no_main]

use std::sync::OnceLock;

use http::{Method, Request, header};
use libfuzzer_sys::fuzz_target;
use stagedoor::config::Config;
use stagedoor::routes::layer::route;
use stagedoor::routes::path::normalize;
use stagedoor_fuzz::{SECRET_ENV, compile, tolerated};

/// The hostile-input corpus's gateway (tests/hostile.rs), with CORS pass-through on one prefix.
fn deny_table() -> String {
    format!(
        r#"
permission: {{ enabled: true, unmatched: deny }}
identity:
  issuers:
    - {{ name: local, secret_env: {SECRET_ENV}, algorithms: [HS256] }}
upstreams:
  app: {{ url: "http://127.0.0.1:9", timeout: 5s }}
  other: {{ url: "http://127.0.0.1:9", timeout: 5s }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/public/{{*rest}}", public: true }}
      - {{ methods: [GET], path: /admin, permission: app.admin, action: read }}
      - {{ methods: [GET], path: "/items/{{id}}", authenticated: true }}
      - {{ methods: [DELETE], path: "/items/{{id}}", permission: app.item.delete, action: delete }}
      - {{ methods: [GET], path: "/{{*rest}}", authenticated: true }}
  - prefix: /api/other
    upstream: other
    cors_preflight: pass
    rules:
      - {{ methods: [GET], path: "/{{*rest}}", public: true }}
"#
    )
}

/// A catalog-like table: resource refs from path parameters, static beats param, HEAD rules,
/// and `unmatched: authenticated` (a synthetic rule per prefix).
fn catalog_table() -> String {
    format!(
        r#"
permission: {{ enabled: true, unmatched: authenticated }}
identity:
  issuers:
    - {{ name: local, secret_env: {SECRET_ENV}, algorithms: [HS256] }}
upstreams:
  catalog: {{ url: "http://127.0.0.1:9" }}
  files: {{ url: "http://127.0.0.1:9" }}
routes:
  - prefix: /api/catalog
    upstream: catalog
    cors_preflight: authenticate
    rules:
      - {{ path: /health, public: true }}
      - {{ methods: [GET], path: "/entities/by-name/{{kind}}/{{namespace}}/{{name}}", permission: catalog.entity.read, action: read, resource_type: catalog-entity, resource_ref: "{{kind}}:{{namespace}}/{{name}}" }}
      - {{ methods: [GET], path: /entities/special, permission: catalog.entity.read, action: read }}
      - {{ methods: [DELETE], path: "/entities/by-uid/{{uid}}", permission: catalog.entity.delete, action: delete, resource_type: catalog-entity, resource_ref: "uid:{{uid}}" }}
      - {{ methods: [HEAD], path: "/entities/by-uid/{{uid}}", public: true }}
      - {{ methods: [GET], path: "/locations/{{*rest}}", permission: catalog.location.read, action: read, resource_type: catalog-location, resource_ref: "location:{{rest}}" }}
      - {{ methods: [GET, POST], path: "/{{*rest}}", authenticated: true }}
  - prefix: /files
    upstream: files
    cors_preflight: pass
    rules:
      - {{ methods: [GET], path: "/{{owner}}/{{*file}}", permission: files.read, action: read, resource_type: file, resource_ref: "{{owner}}/{{file}}" }}
      - {{ methods: [PUT], path: "/{{owner}}/{{*file}}", permission: files.write, action: update, resource_type: file, resource_ref: "{{owner}}/{{file}}", on_conditional: forward }}
"#
    )
}

fn tables() -> &'static [Config; 2] {
    static TABLES: OnceLock<[Config; 2]> = OnceLock::new();
    TABLES.get_or_init(|| [compile("deny.yaml", &deny_table()), compile("catalog.yaml", &catalog_table())])
}

/// `(method, is CORS preflight)`.
const VARIANTS: [(Method, bool); 8] = [
    (Method::GET, false),
    (Method::HEAD, false),
    (Method::POST, false),
    (Method::PUT, false),
    (Method::DELETE, false),
    (Method::PATCH, false),
    (Method::OPTIONS, false),
    (Method::OPTIONS, true),
];

fn request(method: &Method, preflight: bool, target: &str) -> Option<Request<()>> {
    let mut builder = Request::builder().method(method.clone()).uri(target).header(header::HOST, "gateway.test");
    if preflight {
        builder = builder
            .header(header::ORIGIN, "https://backstage.test")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "DELETE");
    }
    builder.body(()).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Full percent-decoding of an accepted path (escapes are valid there).
fn percent_decode(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let value = hex(bytes[i + 1]).unwrap_or(0) << 4 | hex(bytes[i + 2]).unwrap_or(0);
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The invariants of a normalized path; `raw` is the input, for the messages.
fn check_normalized(raw: &str, n: &str) {
    assert!(n.starts_with('/'), "normalize({raw:?}) = {n:?} does not start with `/`");
    assert!(!n.contains("//"), "normalize({raw:?}) = {n:?} has an empty segment");
    assert!(n == "/" || !n.ends_with('/'), "normalize({raw:?}) = {n:?} keeps a trailing slash");
    for segment in n.split('/').skip(1) {
        assert!(segment != "." && segment != "..", "normalize({raw:?}) = {n:?} keeps a dot segment");
    }
    let upper = n.to_ascii_uppercase();
    for forbidden in ["%2F", "%5C", "%3B"] {
        assert!(!upper.contains(forbidden), "normalize({raw:?}) = {n:?} contains {forbidden}");
    }
    for b in n.bytes() {
        assert!(
            (0x20..0x7f).contains(&b) && b != b'\\' && b != b';',
            "normalize({raw:?}) = {n:?} holds the raw byte {b:#04x}"
        );
    }
    let bytes = n.as_bytes();
    for (i, _) in n.match_indices('%') {
        let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
            panic!("normalize({raw:?}) = {n:?} has a truncated escape at {i}");
        };
        let upper_hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
        assert!(upper_hex(hi) && upper_hex(lo), "normalize({raw:?}) = {n:?} has a non-upper-case escape at {i}");
        let value = hex(hi).unwrap_or(0) << 4 | hex(lo).unwrap_or(0);
        assert!(
            !(value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~')),
            "normalize({raw:?}) = {n:?} keeps an escaped unreserved character at {i}"
        );
        assert!(value >= 0x20 && value != 0x7f, "normalize({raw:?}) = {n:?} keeps an escaped control at {i}");
    }
    // README / path.rs: escaped bytes must decode to UTF-8 (no overlong, stray continuation, …).
    if !tolerated("utf8") {
        assert!(
            std::str::from_utf8(&percent_decode(n)).is_ok(),
            "[utf8] normalize({raw:?}) = {n:?} does not percent-decode to UTF-8"
        );
    }
    match normalize(n) {
        Ok(again) => assert_eq!(again, n, "normalize is not idempotent: {raw:?} → {n:?} → {again:?}"),
        Err(err) if tolerated("idempotent") => {
            let _ = err;
        }
        Err(err) => panic!("[idempotent] normalize({raw:?}) = {n:?}, but normalize({n:?}) refuses it: {err:?}"),
    }
}

/// What `route` decided, comparable across the raw and the normalized request.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Rule { label: String, resource_ref: Option<String>, forward: String },
    Refused(String),
}

fn decide(config: &Config, request: &Request<()>) -> Decision {
    match route(&config.routes, request) {
        Ok(found) => {
            let uri = request.uri();
            let expected = match normalize(uri.path()) {
                Ok(n) => n.into_owned(),
                Err(err) => panic!("route accepted {} {uri}, whose path normalize refuses: {err:?}", request.method()),
            };
            let forward = found.forward_path.path().to_owned();
            assert_eq!(
                forward,
                expected,
                "route forwards {:?} for {} {uri}, not the normalized path",
                found.forward_path,
                request.method()
            );
            assert_eq!(
                found.forward_path.query(),
                uri.query(),
                "route changed the query of {} {uri}",
                request.method()
            );
            Decision::Rule { label: found.rule.label.to_string(), resource_ref: found.resource_ref, forward }
        }
        Err(rejection) => Decision::Refused(format!("{rejection:?}")),
    }
}

/// True when `n` normalizes to itself (always, unless STAGEDOOR_FUZZ_TOLERATE=idempotent).
fn stable(n: &str) -> bool {
    normalize(n).ok().as_deref() == Some(n)
}

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else { return };
    // The whole input as a path (`?` and `#` are ordinary bytes to normalize).
    let normalized = normalize(target);
    if let Ok(n) = &normalized {
        check_normalized(target, n);
    }
    // The input as a request target, when http accepts it: `route` normalizes `uri.path()`.
    let raw_uri = http::Uri::try_from(target).ok();
    let raw_path_normalized = raw_uri.as_ref().map(|uri| normalize(uri.path()).map(|n| n.into_owned()));
    if let Some(Ok(n)) = &raw_path_normalized {
        check_normalized(target, n);
    }

    for config in tables() {
        for (method, preflight) in &VARIANTS {
            if let Some(req) = raw_uri.as_ref().and_then(|_| request(method, *preflight, target)) {
                let decision = decide(config, &req);
                // What the upstream would receive (normalized path + original query), decided
                // again, is decided the same way: stagedoor decides on what it forwards.
                if let Some(Ok(n)) = &raw_path_normalized {
                    if stable(n) {
                        let forwarded = match req.uri().query() {
                            Some(query) => format!("{n}?{query}"),
                            None => n.clone(),
                        };
                        let Some(again) = request(method, *preflight, &forwarded) else {
                            panic!("http accepts {target:?} but not its normalized form {forwarded:?}")
                        };
                        assert_eq!(
                            decision,
                            decide(config, &again),
                            "{method} {target:?} and {method} {forwarded:?} (its normalized form) are decided differently"
                        );
                    } else {
                        // Only with STAGEDOOR_FUZZ_TOLERATE=idempotent.
                        let _ = request(method, *preflight, n).map(|again| route(&config.routes, &again));
                    }
                }
            }
            // The input normalized as a whole, as a target of its own (also covers inputs http
            // refuses as they are).
            if let Ok(n) = &normalized {
                if let Some(req) = request(method, *preflight, n) {
                    if stable(n) {
                        let _ = decide(config, &req);
                    } else {
                        let _ = route(&config.routes, &req);
                    }
                }
            }
        }
    }
});
