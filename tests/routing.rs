//! Routing end to end: path normalization, rule lookup, `permission.unmatched` and the request
//! id, against a real gateway and a recording backend. Request targets a client library would
//! rewrite are sent as raw bytes. Every rejection also proves the upstream was never contacted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use reqwest::Method;
use support::*;

/// The policy for [`app_yaml`]: everyone reads, nobody administers.
const POLICY: &str = r#"
roles:
  - name: role:default/everyone
    members: ["*"]
    allow:
      - permission: app.read
"#;

/// One prefix with a public catch-all under `/public`, a protected `/admin` (denied by
/// [`POLICY`]) and a protected `/items/{id}` (allowed by it).
fn app_yaml(backend: &Backend) -> String {
    format!(
        r#"
permission: {{ enabled: true, unmatched: deny }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ path: "/public/{{*rest}}", public: true }}
      - {{ methods: [GET], path: /admin, permission: app.admin, action: read }}
      - {{ methods: [GET], path: "/items/{{id}}", permission: app.read, action: read }}
policy: {{ file: policy.yaml }}
"#,
        backend = backend.url()
    )
}

async fn app_gateway(backend: &Backend) -> Gateway {
    Gateway::start_with(&app_yaml(backend), &[("policy.yaml", POLICY)]).await
}

fn token() -> String {
    Signer::hs256(SECRET).sign(&claims("user:default/jane", &["group:default/team-a"]))
}

/// Sends one raw HTTP/1.1 request (`Connection: close`) and turns the answer into a
/// `reqwest::Response`, so [`envelope`] can check it like any other.
async fn send_raw(gw: &Gateway, method: &str, target: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let text = raw(gw.running.addr, &request).await;
    parse_raw(&text)
}

async fn get_raw(gw: &Gateway, target: &str, token: Option<&str>) -> reqwest::Response {
    match token {
        Some(token) => send_raw(gw, "GET", target, &[("Authorization", &format!("Bearer {token}"))]).await,
        None => send_raw(gw, "GET", target, &[]).await,
    }
}

fn parse_raw(text: &str) -> reqwest::Response {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("incomplete response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = raw_status(lines.next().unwrap_or_default());
    assert_ne!(status, 0, "no status line in {text:?}");
    let mut builder = http::Response::builder().status(status);
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("bad header line {line:?}"));
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
            continue;
        }
        builder = builder.header(name, value);
    }
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    reqwest::Response::from(builder.body(body).unwrap())
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").unwrap_or_else(|| panic!("bad chunk in {rest:?}"));
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
}

async fn get(gw: &Gateway, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(gw.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

// ---------------------------------------------------------------- normalization

/// Spellings of `/api/app/admin` that a naive prefix match would see as something else
/// (most of them as the public `/api/app/public/...`).
const ADMIN_SPELLINGS: [&str; 9] = [
    "/api/app/public/../admin",
    "/api/app/public/%2e%2e/admin",
    "/api/app/public/.%2E/admin",
    "/api/app/public/%2E./admin",
    "//api//app//admin",
    "/api/app/admin/",
    "/api/app/./admin",
    "/../../api/app/admin",
    "/api/app/public/x/../../%61dmin",
];

#[tokio::test]
async fn every_spelling_of_a_protected_path_is_decided_as_that_path() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    // Control: the public catch-all forwards without a token, so a spelling misread as
    // `/api/app/public/...` would have reached the backend.
    assert_eq!(get_raw(&gw, "/api/app/public/x", None).await.status(), 200);
    assert_eq!(backend.hits(), 1);
    let token = token();
    for spelling in ADMIN_SPELLINGS {
        // Without a token: the protected rule asks for one.
        let response = get_raw(&gw, spelling, None).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{spelling}");
        let message = envelope(response, 401, "AuthenticationError").await;
        assert!(message.contains("missing bearer token"), "{spelling}: {message}");
        // With a token: the `/admin` rule's permission is what the policy denies.
        let message = envelope(get_raw(&gw, spelling, Some(&token)).await, 403, "NotAllowedError").await;
        assert!(message.contains("app.admin"), "{spelling}: {message}");
        assert_eq!(backend.hits(), 1, "{spelling} reached the upstream");
    }
    // The absolute form of the request target is decided on its path too.
    let absolute = format!("http://{}/api/app/public/../admin", gw.running.addr);
    envelope(get_raw(&gw, &absolute, None).await, 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn the_upstream_receives_exactly_the_normalized_path_and_the_original_query() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    let token = token();
    let cases = [
        ("/api/app/public/../items/42?b=%2F&a=1", "/api/app/items/42?b=%2F&a=1"),
        ("/api/app/public/%2e%2e/items/42?q=..%2F..", "/api/app/items/42?q=..%2F.."),
        ("/api/app/public/.%2E/items/42", "/api/app/items/42"),
        ("//api//app//items//42?x", "/api/app/items/42?x"),
        ("/api/app/items/42/?x=1", "/api/app/items/42?x=1"),
        ("/api/app/./items/./42", "/api/app/items/42"),
        ("/api/app/items/%34%32?y=%34", "/api/app/items/42?y=%34"),
        // Reserved and non-ASCII escapes stay encoded, with upper-case hex.
        ("/api/app/items/a%20b%c3%a9%3f", "/api/app/items/a%20b%C3%A9%3F"),
        // Unreserved escapes are decoded.
        ("/api/app/items/%7e%2D%5f%2E1", "/api/app/items/~-_.1"),
    ];
    for (i, (sent, forwarded)) in cases.into_iter().enumerate() {
        let response = get_raw(&gw, sent, Some(&token)).await;
        assert_eq!(response.status(), 200, "{sent}: {}", response.text().await.unwrap());
        assert_eq!(backend.hits(), i + 1);
        let seen = backend.last();
        assert_eq!(seen.uri, forwarded, "sent {sent}");
        assert_eq!(seen.method, "GET");
    }
    // An already-normal path is forwarded byte for byte.
    get_raw(&gw, "/api/app/public/a/b?c=d&e", None).await;
    assert_eq!(backend.last().uri, "/api/app/public/a/b?c=d&e");
}

#[tokio::test]
async fn refused_spellings_are_400_and_never_forwarded() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    // Control: the public catch-all would forward any of these if normalization let them by.
    assert_eq!(get_raw(&gw, "/api/app/public/a/b", None).await.status(), 200);
    let cases = [
        ("/api/app/public/a%2Fb", "encoded `/`"),
        ("/api/app/public/a%2fb", "encoded `/`"),
        ("/api/app/public/..%2F..%2Fadmin", "encoded `/`"),
        ("/api/app/public/a%5Cb", "`\\`"),
        ("/api/app/public/a%5cb", "`\\`"),
        ("/api/app/public/a\\b", "backslash"),
        ("/api/app/public/..\\admin", "backslash"),
        ("/api/app/public/a%00b", "control character"),
        ("/api/app/public/a%0Ab", "control character"),
        ("/api/app/public/a%7Fb", "control character"),
        ("/api/app/public/a%zzb", "invalid percent-escape"),
        ("/api/app/public/a%2", "invalid percent-escape"),
        ("/api/app/public/a%", "invalid percent-escape"),
        ("/api/app/public/%c0%ae%c0%ae/admin", "overlong"),
        ("/api/app/public/%C1%9C", "overlong"),
        ("/api/app/public/%F5", "do not decode to valid UTF-8"),
        ("/api/app/public/%e0%80%ae", "overlong"),
        ("/api/app/admin%3Bx=1", "`;` path parameters"),
        ("/api/app/public/a;x=1", "`;` path parameters"),
        ("/api/app/public/..;/admin", "`;` path parameters"),
        ("/api/app/admin;x=1", "`;` path parameters"),
    ];
    for (target, expected) in cases {
        let response = get_raw(&gw, target, Some(&token())).await;
        let message = envelope(response, 400, "InputError").await;
        assert!(message.contains(expected), "{target}: expected `{expected}` in `{message}`");
        assert_eq!(backend.hits(), 1, "{target} reached the upstream");
    }
    // A target that is not a path at all.
    let message = envelope(send_raw(&gw, "OPTIONS", "*", &[]).await, 400, "InputError").await;
    assert!(message.contains("absolute path"), "{message}");
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn static_segments_match_case_sensitively() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    let token = token();
    // Control: the exact spelling is the admin rule (403 from the policy).
    envelope(get(&gw, "/api/app/admin", Some(&token)).await, 403, "NotAllowedError").await;
    for path in ["/API/app/admin", "/api/app/ADMIN", "/api/app/Admin", "/api/App/admin", "/api/app/PUBLIC/x"] {
        let message = envelope(get(&gw, path, Some(&token)).await, 404, "NotFoundError").await;
        assert!(message.contains("no route rule matches"), "{path}: {message}");
        assert!(message.contains(&format!("GET {path}")), "{path}: {message}");
    }
    assert_eq!(backend.hits(), 0);
}

// ---------------------------------------------------------------- permission.unmatched

fn unmatched_yaml(mode: &str, app: &Backend, other: &Backend) -> String {
    format!(
        r#"
permission: {{ enabled: true, unmatched: {mode} }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{app}" }}
  other: {{ url: "{other}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ methods: [GET], path: /known, authenticated: true }}
  - prefix: /api/other
    upstream: other
    rules: []
policy: allow-all
"#,
        app = app.url(),
        other = other.url()
    )
}

/// Paths no rule matches, the backend (0 = app, 1 = other) whose prefix covers them, and the
/// path it receives.
const UNMATCHED_UNDER_A_PREFIX: [(&str, usize, &str); 5] = [
    ("/api/app/unknown", 0, "/api/app/unknown"),
    ("/api/app/known/deeper", 0, "/api/app/known/deeper"),
    ("/api/other", 1, "/api/other"),
    ("/api/other/x/y", 1, "/api/other/x/y"),
    ("/api/other/x/../z/", 1, "/api/other/z"),
];

/// Paths outside every prefix.
const OUTSIDE_EVERY_PREFIX: [&str; 5] = ["/", "/api", "/api/application", "/api/otherwise/x", "/elsewhere"];

async fn assert_404_outside_every_prefix(gw: &Gateway, backends: [&Backend; 2], token: &str) {
    let before = [backends[0].hits(), backends[1].hits()];
    for path in OUTSIDE_EVERY_PREFIX {
        for token in [None, Some(token)] {
            let message = envelope(get(gw, path, token).await, 404, "NotFoundError").await;
            assert!(message.contains("no route rule matches"), "{path}: {message}");
        }
    }
    assert_eq!([backends[0].hits(), backends[1].hits()], before, "a path outside every prefix was forwarded");
}

#[tokio::test]
async fn unmatched_deny_answers_404_and_never_forwards() {
    let (app, other) = (Backend::spawn(Behaviour::Echo).await, Backend::spawn(Behaviour::Echo).await);
    let gw = Gateway::start(&unmatched_yaml("deny", &app, &other)).await;
    let token = token();
    for (path, _, _) in UNMATCHED_UNDER_A_PREFIX {
        for token in [None, Some(token.as_str())] {
            let message = envelope(get(&gw, path, token).await, 404, "NotFoundError").await;
            assert!(message.contains("no route rule matches"), "{path}: {message}");
        }
    }
    // A method no rule lists is unmatched too.
    let response = client().post(gw.url("/api/app/known")).bearer_auth(&token).send().await.unwrap();
    let message = envelope(response, 404, "NotFoundError").await;
    assert!(message.contains("POST /api/app/known"), "{message}");
    assert_eq!((app.hits(), other.hits()), (0, 0));
    assert_404_outside_every_prefix(&gw, [&app, &other], &token).await;
    // Control: the configured rule itself still works.
    assert_eq!(get(&gw, "/api/app/known", Some(&token)).await.status(), 200);
    assert_eq!((app.hits(), other.hits()), (1, 0));
}

#[tokio::test]
async fn unmatched_allow_forwards_without_a_token_to_the_prefix_upstream() {
    let (app, other) = (Backend::spawn(Behaviour::Echo).await, Backend::spawn(Behaviour::Echo).await);
    let gw = Gateway::start(&unmatched_yaml("allow", &app, &other)).await;
    let backends = [&app, &other];
    for (path, target, forwarded) in UNMATCHED_UNDER_A_PREFIX {
        let before = [app.hits(), other.hits()];
        let response = get(&gw, path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(backends[target].hits(), before[target] + 1, "{path} went to the wrong upstream");
        assert_eq!(backends[1 - target].hits(), before[1 - target], "{path} went to the wrong upstream");
        let seen = backends[target].last();
        assert!(!seen.headers.contains_key("x-stagedoor-user"), "{path}: an anonymous request has no user");
        assert_eq!(seen.uri, forwarded, "{path}");
    }
    // A configured rule still applies: `unmatched` is only for what no rule matches.
    let hits = app.hits();
    envelope(get(&gw, "/api/app/known", None).await, 401, "AuthenticationError").await;
    assert_eq!(app.hits(), hits);
    assert_404_outside_every_prefix(&gw, [&app, &other], &token()).await;
}

#[tokio::test]
async fn unmatched_authenticated_needs_any_valid_token() {
    let (app, other) = (Backend::spawn(Behaviour::Echo).await, Backend::spawn(Behaviour::Echo).await);
    let gw = Gateway::start(&unmatched_yaml("authenticated", &app, &other)).await;
    let token = token();
    let forged = Signer::hs256("another-secret-of-at-least-32-bytes!!").sign(&claims("user:default/jane", &[]));
    let backends = [&app, &other];
    for (path, target, forwarded) in UNMATCHED_UNDER_A_PREFIX {
        let before = [app.hits(), other.hits()];
        let response = get(&gw, path, None).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{path}");
        envelope(response, 401, "AuthenticationError").await;
        envelope(get(&gw, path, Some(&forged)).await, 401, "AuthenticationError").await;
        assert_eq!([app.hits(), other.hits()], before, "{path}: a rejected request was forwarded");

        assert_eq!(get(&gw, path, Some(&token)).await.status(), 200, "{path}");
        assert_eq!(backends[target].hits(), before[target] + 1, "{path} went to the wrong upstream");
        assert_eq!(backends[1 - target].hits(), before[1 - target], "{path} went to the wrong upstream");
        assert_eq!(backends[target].last().headers["x-stagedoor-user"], "user:default/jane");
        assert_eq!(backends[target].last().uri, forwarded, "{path}");
    }
    assert_404_outside_every_prefix(&gw, [&app, &other], &token).await;
}

// ---------------------------------------------------------------- rule specificity

/// Rules written least specific first: order in the file must not matter.
fn specificity_yaml(backend: &Backend) -> String {
    format!(
        r#"
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ methods: [GET], path: "/{{*rest}}", public: true }}
      - {{ methods: [GET], path: "/things/{{id}}", authenticated: true }}
      - {{ methods: [GET], path: /things/special, permission: app.special, action: read }}
      - {{ methods: [DELETE], path: "/stuff/{{id}}", permission: app.stuff.delete, action: delete }}
      - {{ methods: [GET], path: /head-special, authenticated: true }}
      - {{ methods: [HEAD], path: /head-special, public: true }}
  - prefix: /api/two
    upstream: app
    rules:
      - {{ methods: [POST], path: /post-only, public: true }}
policy: {{ file: policy.yaml }}
"#,
        backend = backend.url()
    )
}

async fn specificity_gateway(backend: &Backend) -> Gateway {
    Gateway::start_with(&specificity_yaml(backend), &[("policy.yaml", POLICY)]).await
}

#[tokio::test]
async fn a_static_rule_beats_a_param_rule_beats_a_catch_all_whatever_the_order() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = specificity_gateway(&backend).await;
    let token = token();

    // Static: the permission rule, denied by the policy, not the param rule nor the catch-all.
    envelope(get(&gw, "/api/app/things/special", None).await, 401, "AuthenticationError").await;
    let message = envelope(get(&gw, "/api/app/things/special", Some(&token)).await, 403, "NotAllowedError").await;
    assert!(message.contains("app.special"), "{message}");
    assert_eq!(backend.hits(), 0);

    // Param: authenticated, not the public catch-all.
    envelope(get(&gw, "/api/app/things/42", None).await, 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 0);
    assert_eq!(get(&gw, "/api/app/things/42", Some(&token)).await.status(), 200);
    assert_eq!(backend.last().uri, "/api/app/things/42");
    assert_eq!(backend.last().headers["x-stagedoor-user"], "user:default/jane");

    // Catch-all: public, for what the more specific rules do not cover.
    for path in ["/api/app/things/42/more", "/api/app/things/special/more", "/api/app/things", "/api/app/other"] {
        assert_eq!(get(&gw, path, None).await.status(), 200, "{path}");
        assert_eq!(backend.last().uri, path);
        assert!(!backend.last().headers.contains_key("x-stagedoor-user"));
    }
    assert_eq!(backend.hits(), 5);
}

/// README: "a `{param}` beats a `{*catch_all}`", whatever the order. A param rule and a
/// catch-all rule on the same segment are two different templates that match different paths
/// (`/things/42` and `/things/42/more`), so the config must load and the param must win.
#[tokio::test]
async fn a_param_rule_beats_a_catch_all_on_the_same_segment() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let yaml = format!(
        r#"
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ methods: [GET], path: "/things/{{*rest}}", public: true }}
      - {{ methods: [GET], path: "/things/{{id}}", authenticated: true }}
"#,
        backend = backend.url()
    );
    let dir = tempfile::tempdir().unwrap();
    if let Err(err) = load(&dir, &yaml) {
        panic!("a param rule and a catch-all rule on the same segment must both load: {err}");
    }
    let gw = Gateway::start(&yaml).await;
    envelope(get(&gw, "/api/app/things/42", None).await, 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 0);
    assert_eq!(get(&gw, "/api/app/things/42/more", None).await.status(), 200);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn a_rule_for_another_method_does_not_shadow_a_catch_all() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = specificity_gateway(&backend).await;
    let token = token();
    // GET: the DELETE-only `/stuff/{id}` does not apply, the public GET catch-all does.
    assert_eq!(get(&gw, "/api/app/stuff/1", None).await.status(), 200);
    assert_eq!(backend.hits(), 1);
    assert_eq!(backend.last().method, "GET");
    assert_eq!(backend.last().uri, "/api/app/stuff/1");
    // DELETE: the DELETE rule applies (denied by the policy) ...
    let response = client().delete(gw.url("/api/app/stuff/1")).send().await.unwrap();
    envelope(response, 401, "AuthenticationError").await;
    let response = client().delete(gw.url("/api/app/stuff/1")).bearer_auth(&token).send().await.unwrap();
    let message = envelope(response, 403, "NotAllowedError").await;
    assert!(message.contains("app.stuff.delete"), "{message}");
    // ... and the GET catch-all does not cover DELETE.
    let response = client().delete(gw.url("/api/app/stuff/1/2")).bearer_auth(&token).send().await.unwrap();
    envelope(response, 404, "NotFoundError").await;
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn head_uses_the_get_rule_unless_head_is_configured() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = specificity_gateway(&backend).await;
    let token = token();
    let head = |path: &str, token: Option<&str>| {
        let mut request = client().head(gw.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // `/things/{id}` lists only GET: HEAD follows it (authenticated), not the public catch-all.
    let response = head("/api/app/things/42", None).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(response.headers().contains_key("x-request-id"));
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(backend.hits(), 0);
    assert_eq!(head("/api/app/things/42", Some(&token)).await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
    assert_eq!(backend.last().method, "HEAD");
    assert_eq!(backend.last().uri, "/api/app/things/42");

    // The static GET rule's permission applies to HEAD too.
    assert_eq!(head("/api/app/things/special", Some(&token)).await.unwrap().status(), 403);
    assert_eq!(backend.hits(), 1);

    // A rule listing HEAD for the template wins over the GET rule for HEAD only.
    assert_eq!(head("/api/app/head-special", None).await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 2);
    assert_eq!(backend.last().method, "HEAD");
    envelope(get(&gw, "/api/app/head-special", None).await, 401, "AuthenticationError").await;

    // No GET rule: HEAD is unmatched.
    let response = head("/api/two/post-only", None).await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(backend.hits(), 2);
    // Control: the POST rule exists.
    assert_eq!(client().post(gw.url("/api/two/post-only")).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 3);
}

/// README: "A `HEAD` request uses the `GET` rule of the same path unless a rule lists `HEAD`
/// for that path template", and among the rules for a method the most specific wins. No rule
/// lists HEAD for `/x/{id}`, so `HEAD /x/1` must be decided by the protected GET rule (a param
/// beats the HEAD catch-all), never by the public HEAD catch-all.
#[tokio::test]
async fn head_uses_the_get_rule_even_when_a_head_catch_all_covers_the_path() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let yaml = format!(
        r#"
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "{backend}" }}
routes:
  - prefix: /api/app
    upstream: app
    rules:
      - {{ methods: [GET], path: "/x/{{id}}", permission: app.admin, action: read }}
      - {{ methods: [HEAD], path: "/x/{{*rest}}", public: true }}
policy: {{ file: policy.yaml }}
"#,
        backend = backend.url()
    );
    let gw = Gateway::start_with(&yaml, &[("policy.yaml", POLICY)]).await;
    // Control: GET is protected, and the HEAD catch-all serves what `/x/{id}` does not cover.
    envelope(get(&gw, "/api/app/x/1", None).await, 401, "AuthenticationError").await;
    assert_eq!(backend.hits(), 0);
    assert_eq!(client().head(gw.url("/api/app/x/1/meta")).send().await.unwrap().status(), 200);
    assert_eq!(backend.hits(), 1);
    // HEAD /x/1 must be protected like GET /x/1.
    let response = client().head(gw.url("/api/app/x/1")).send().await.unwrap();
    assert_eq!(response.status(), 401, "HEAD /api/app/x/1 escaped the GET rule");
    assert_eq!(backend.hits(), 1, "HEAD /api/app/x/1 reached the upstream without a token");
}

// ---------------------------------------------------------------- request id

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|u| u.get_version_num() == 4) && text.len() == 36
}

fn response_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_well_formed_request_id_is_kept_forwarded_and_returned() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    let token = token();
    let max = "a".repeat(128);
    for id in ["abc-123_X.y:z", "1", max.as_str(), "0f8fad5b-d9cb-469f-a165-70867728950e"] {
        let response = client()
            .get(gw.url("/api/app/items/42"))
            .bearer_auth(&token)
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response_id(&response), id);
        assert_eq!(backend.last().headers["x-request-id"], id);
        assert_eq!(backend.last().headers.get_all("x-request-id").iter().count(), 1);
    }
    let hits = backend.hits();
    // Rejections carry it too: 401, 403, 404 and (raw) 400.
    let id = "client-id-1";
    let rejections = [
        (client().get(gw.url("/api/app/items/42")), 401, "AuthenticationError"),
        (client().get(gw.url("/api/app/admin")).bearer_auth(&token), 403, "NotAllowedError"),
        (client().get(gw.url("/api/app/nowhere")).bearer_auth(&token), 404, "NotFoundError"),
    ];
    for (request, status, name) in rejections {
        let response = request.header("x-request-id", id).send().await.unwrap();
        assert_eq!(response_id(&response), id, "{status}");
        envelope(response, status, name).await;
    }
    let response = send_raw(&gw, "GET", "/api/app/public/a%2Fb", &[("X-Request-Id", id)]).await;
    assert_eq!(response_id(&response), id);
    envelope(response, 400, "InputError").await;
    assert_eq!(backend.hits(), hits);
}

#[tokio::test]
async fn a_malformed_or_missing_request_id_is_replaced_by_a_generated_one() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    let token = token();
    let too_long = "a".repeat(129);
    let very_long = "b".repeat(200);
    let malformed = [too_long.as_str(), very_long.as_str(), "has spaces", "semi;colon", "slash/id", "é", "a,b", ""];
    let mut ids = Vec::new();
    for id in malformed.iter().map(Some).chain([None]) {
        let mut request = client().get(gw.url("/api/app/items/42")).bearer_auth(&token);
        if let Some(id) = id {
            request = request.header("x-request-id", *id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{id:?}");
        let returned = response_id(&response);
        assert!(is_uuid(&returned), "{id:?} → {returned}");
        assert_eq!(backend.last().headers["x-request-id"], returned.as_str(), "{id:?}");
        assert_eq!(backend.last().headers.get_all("x-request-id").iter().count(), 1);
        ids.push(returned);
    }
    // Rejections get a generated id too.
    let hits = backend.hits();
    let response = client().get(gw.url("/api/app/items/42")).header("x-request-id", "has spaces").send().await.unwrap();
    ids.push(response_id(&response));
    envelope(response, 401, "AuthenticationError").await;
    let response = client().get(gw.url("/api/app/nowhere")).send().await.unwrap();
    ids.push(response_id(&response));
    envelope(response, 404, "NotFoundError").await;
    let response = send_raw(&gw, "GET", "/api/app/public/a%00b", &[("X-Request-Id", &very_long)]).await;
    ids.push(response_id(&response));
    envelope(response, 400, "InputError").await;
    assert_eq!(backend.hits(), hits);
    assert!(ids.iter().all(|id| is_uuid(id)), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "generated ids repeat: {ids:?}");
}

#[tokio::test]
async fn requests_with_other_methods_are_routed_by_their_own_rules() {
    let backend = Backend::spawn(Behaviour::Echo).await;
    let gw = app_gateway(&backend).await;
    // The public rule lists no methods: every method, the custom ones included, uses it.
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = client().request(method.clone(), gw.url("/api/app/public/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(backend.last().method, method.as_str());
    }
    let hits = backend.hits();
    // `/admin` lists only GET.
    for method in [Method::POST, Method::DELETE, Method::from_bytes(b"PURGE").unwrap()] {
        let response = client().request(method.clone(), gw.url("/api/app/admin")).send().await.unwrap();
        envelope(response, 404, "NotFoundError").await;
    }
    assert_eq!(backend.hits(), hits);
}
