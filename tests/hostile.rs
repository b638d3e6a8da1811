//! The hostile-input corpus: every case of `tests/hostile/corpus.tsv` is sent as raw bytes to a
//! real gateway in front of two real recording upstreams, and checked for the status of every
//! response on the connection, the exact requests the upstreams received (method and
//! normalized path+query, or none at all), and, where the case says so, the headers they carried.
//!
//! The format of the corpus is documented in its header comment. Cases run concurrently; each
//! forwarded request is attributed to its case by the `x-hostile-case` header, so the shared
//! upstreams can be checked per case, and any request no case accounts for (a smuggled one that
//! lost its marker) fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CORPUS: &str = include_str!("hostile/corpus.tsv");

/// The header that ties a forwarded request to its case.
const CASE_HEADER: &str = "x-hostile-case";

/// The `Host` of short-form requests.
const HOST: &str = "gateway.test";

/// How long a case may wait for the gateway to close the connection.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Everyone may read; nobody but the super users administers or deletes.
const POLICY: &str = r#"
super_users: [group:default/admins]
roles:
  - name: role:default/everyone
    members: ["*"]
    allow:
      - permission: app.read
"#;

fn gateway_yaml(app: SocketAddr, other: SocketAddr) -> String {
    format!(
        r#"
permission: {{ enabled: true, unmatched: deny }}
identity:
  issuers:
    - {{ name: local, secret_env: SECRET_ENV, algorithms: [HS256] }}
upstreams:
  app: {{ url: "http://{app}", timeout: 5s }}
  other: {{ url: "http://{other}", timeout: 5s }}
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
    rules:
      - {{ methods: [GET], path: "/{{*rest}}", public: true }}
policy: {{ file: policy.yaml }}
"#
    )
}

// ---------------------------------------------------------------- recording upstreams

/// One request an upstream received.
#[derive(Debug, Clone)]
struct Recorded {
    backend: &'static str,
    method: String,
    target: String,
    headers: HeaderMap,
}

/// The requests both upstreams received, in arrival order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    /// A real HTTP server on 127.0.0.1:0 that reads each body and records the request.
    async fn spawn(&self, backend: &'static str) -> SocketAddr {
        let log = self.0.clone();
        serve(move |request: Request<Incoming>| {
            let log = log.clone();
            async move {
                let (parts, body) = request.into_parts();
                let _ = body.collect().await;
                // An authority-form target (CONNECT) has no path: record the whole target then.
                let target =
                    parts.uri.path_and_query().map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned());
                log.lock().unwrap().push(Recorded {
                    backend,
                    method: parts.method.to_string(),
                    target,
                    headers: parts.headers,
                });
                json_response(StatusCode::OK, &json!({"backend": backend}))
            }
        })
        .await
    }

    fn of_case(&self, id: &str) -> Vec<Recorded> {
        self.0.lock().unwrap().iter().filter(|r| case_of(r) == Some(id)).cloned().collect()
    }

    fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }
}

fn case_of(recorded: &Recorded) -> Option<&str> {
    recorded.headers.get(CASE_HEADER).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------- the corpus

/// Bearer tokens the corpus can name.
struct Tokens {
    user: String,
    admin: String,
    forged: String,
    expired: String,
}

impl Tokens {
    fn new() -> Self {
        let signer = Signer::hs256(SECRET);
        let expired = json!({
            "sub": "user:default/jane", "ent": ["user:default/jane"],
            "iat": now() - 7200, "exp": now() - 3600,
        });
        Tokens {
            user: signer.sign(&claims("user:default/jane", &["group:default/team-a"])),
            admin: signer.sign(&claims("user:default/root", &["group:default/admins"])),
            forged: Signer::hs256("another-secret-of-at-least-32-bytes!!")
                .sign(&claims("user:default/root", &["group:default/admins"])),
            expired: signer.sign(&expired),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "none" => None,
            "user" => Some(&self.user),
            "admin" => Some(&self.admin),
            "forged" => Some(&self.forged),
            "expired" => Some(&self.expired),
            other => panic!("unknown token `{other}`"),
        }
    }
}

/// What placeholders expand to.
struct Context {
    tokens: Tokens,
    app: SocketAddr,
    other: SocketAddr,
}

/// A header expectation on every upstream request of a case.
#[derive(Debug)]
enum Expect {
    /// Exactly one copy, with this value.
    Equals(String, String),
    /// No copy at all.
    Absent(String),
}

#[derive(Debug)]
struct Case {
    line: usize,
    id: String,
    statuses: Vec<u16>,
    /// `(method, target)` of each request the upstreams must receive, in order.
    upstream: Vec<(String, String)>,
    request: Vec<u8>,
    expect: Vec<Expect>,
}

/// Expands `\r \n \t \\ \xHH` escapes and `{…}` placeholders into bytes.
fn expand(text: &str, context: &Context, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let escape = *bytes.get(i + 1).unwrap_or_else(|| panic!("dangling `\\` in {text:?}"));
                i += 2;
                match escape {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = text.get(i..i + 2).unwrap_or_else(|| panic!("bad `\\x` in {text:?}"));
                        out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad `\\x{hex}` in {text:?}")));
                        i += 2;
                    }
                    other => panic!("unknown escape `\\{}` in {text:?}", other as char),
                }
            }
            b'{' => {
                let close = text[i..].find('}').unwrap_or_else(|| panic!("unclosed `{{` in {text:?}")) + i;
                let inner = &text[i + 1..close];
                i = close + 1;
                let token = |name| context.tokens.get(name).unwrap().as_bytes().to_vec();
                let expanded = match inner {
                    "user" | "admin" | "forged" | "expired" => token(inner),
                    "case" => id.as_bytes().to_vec(),
                    "app" => context.app.to_string().into_bytes(),
                    "other" => context.other.to_string().into_bytes(),
                    _ => {
                        let (count, unit) = inner.split_once('*').unwrap_or_else(|| panic!("unknown `{{{inner}}}`"));
                        let count: usize = count.parse().unwrap_or_else(|_| panic!("bad count in `{{{inner}}}`"));
                        expand(unit, context, id).repeat(count)
                    }
                };
                out.extend_from_slice(&expanded);
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn expand_text(text: &str, context: &Context, id: &str) -> String {
    String::from_utf8(expand(text, context, id)).unwrap_or_else(|_| panic!("{text:?} is not UTF-8 once expanded"))
}

/// Builds the bytes of a short-form request: `METHOD TARGET` and optional header lines.
fn short_form(expanded: &[u8], token: Option<&str>, id: &str) -> Vec<u8> {
    let (line, headers) = match expanded.windows(2).position(|w| w == b"\r\n") {
        Some(at) => (&expanded[..at], Some(&expanded[at + 2..])),
        None => (expanded, None),
    };
    let mut out = Vec::new();
    out.extend_from_slice(line);
    out.extend_from_slice(format!(" HTTP/1.1\r\nHost: {HOST}\r\n{CASE_HEADER}: {id}\r\n").as_bytes());
    if let Some(headers) = headers {
        out.extend_from_slice(headers);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(token) = token {
        out.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

fn parse_corpus(context: &Context) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut ids = HashSet::new();
    for (index, line) in CORPUS.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert!((5..=6).contains(&fields.len()), "line {line_no}: expected 5 or 6 tab-separated fields: {line:?}");
        let id = fields[0].to_owned();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "line {line_no}: bad id {id:?}"
        );
        assert!(ids.insert(id.clone()), "line {line_no}: duplicate id {id}");
        let statuses = match fields[1] {
            "-" => Vec::new(),
            list => list
                .split(',')
                .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("line {line_no}: bad status {s:?}")))
                .collect(),
        };
        let upstream = match fields[2] {
            "no" => Vec::new(),
            list => list
                .split(" | ")
                .map(|entry| {
                    let entry = expand_text(entry, context, &id);
                    let (method, target) =
                        entry.split_once(' ').unwrap_or_else(|| panic!("line {line_no}: bad upstream {entry:?}"));
                    assert!(target.starts_with('/'), "line {line_no}: upstream target must be a path: {target:?}");
                    (method.to_owned(), target.to_owned())
                })
                .collect(),
        };
        let token = context.tokens.get(fields[3]);
        let request = match fields[4].strip_prefix("@raw ") {
            Some(raw) => {
                assert!(token.is_none(), "line {line_no}: a raw request names its tokens with placeholders");
                expand(raw, context, &id)
            }
            None => short_form(&expand(fields[4], context, &id), token, &id),
        };
        let expect = match fields.get(5).copied().unwrap_or("") {
            "" | "-" => Vec::new(),
            list => list
                .split(" | ")
                .map(|entry| match entry.strip_prefix('!') {
                    Some(name) => Expect::Absent(name.to_ascii_lowercase()),
                    None => {
                        let (name, value) = entry
                            .split_once('=')
                            .unwrap_or_else(|| panic!("line {line_no}: bad expectation {entry:?}"));
                        Expect::Equals(name.to_ascii_lowercase(), expand_text(value, context, &id))
                    }
                })
                .collect(),
        };
        assert!(
            expect.is_empty() || !upstream.is_empty(),
            "line {line_no}: header expectations need an upstream request to check"
        );
        cases.push(Case { line: line_no, id, statuses, upstream, request, expect });
    }
    cases
}

// ---------------------------------------------------------------- sending and reading

/// Writes the request and reads until the gateway closes the connection (or [`READ_TIMEOUT`]).
/// With `end_input`, the sending side is closed after the request: the gateway must decide on
/// what it has (used when no answer is expected, so the case need not wait for a timeout).
async fn exchange(addr: SocketAddr, request: &[u8], end_input: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A write may fail once the gateway has answered and closed mid-request; the answer counts.
    let _ = stream.write_all(request).await;
    if end_input {
        let _ = stream.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.read_to_end(&mut out)).await;
    out
}

/// One response read back from the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits the bytes of a connection into responses (interim 1xx responses dropped). A response
/// without a body (to `HEAD`) is recognized by the next status line following its head.
fn parse_answers(mut bytes: &[u8]) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("incomplete response head: {:?}", String::from_utf8_lossy(bytes)))?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "response head is not UTF-8".to_owned())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        if !status_line.starts_with("HTTP/1.") {
            return Err(format!("not a status line: {status_line:?}"));
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut rest = &bytes[end + 4..];
        let answer_header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let body = if (100..200).contains(&status) || status == 204 || status == 304 || rest.starts_with(b"HTTP/1.") {
            Vec::new()
        } else if answer_header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let at = rest.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk size line")?;
                let size = std::str::from_utf8(&rest[..at]).map_err(|_| "bad chunk size")?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)
                    .map_err(|_| format!("bad chunk size {size:?}"))?;
                rest = &rest[at + 2..];
                if size == 0 {
                    let trailer_end = rest.windows(2).position(|w| w == b"\r\n").ok_or("bad last chunk")?;
                    rest = &rest[trailer_end + 2..];
                    break body;
                }
                body.extend_from_slice(rest.get(..size).ok_or("truncated chunk")?);
                rest = rest.get(size + 2..).ok_or("truncated chunk")?;
            }
        } else if let Some(length) = answer_header("content-length") {
            let length: usize = length.parse().map_err(|_| format!("bad content-length {length:?}"))?;
            // A HEAD response announces a length it does not send.
            let body = rest[..length.min(rest.len())].to_vec();
            rest = &rest[length.min(rest.len())..];
            body
        } else {
            let body = rest.to_vec();
            rest = &[];
            body
        };
        bytes = rest;
        if !(100..200).contains(&status) {
            answers.push(Answer { status, headers, body });
        }
    }
    Ok(answers)
}

/// Backstage's error name for the statuses the gateway itself answers with.
fn error_name(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "InputError",
        401 => "AuthenticationError",
        403 => "NotAllowedError",
        404 => "NotFoundError",
        500 => "Error",
        502 => "BadGatewayError",
        504 => "GatewayTimeoutError",
        _ => return None,
    })
}

/// Checks that a gateway rejection is a well-formed envelope. hyper's own answers to malformed
/// HTTP (400, 414, 431, …) have no body and are left alone; 401, 403 and 404 only ever come
/// from the gateway.
fn check_envelope(answer: &Answer) -> Result<(), String> {
    let json = answer.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    if matches!(answer.status, 401 | 403 | 404) && !json {
        return Err(format!("{} without a JSON envelope", answer.status));
    }
    let Some(name) = error_name(answer.status) else { return Ok(()) };
    if !json || answer.body.is_empty() {
        return Ok(());
    }
    if answer.header("x-request-id").is_none() {
        return Err(format!("{} rejection without x-request-id", answer.status));
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|e| format!("envelope is not JSON: {e}"))?;
    if body["error"]["name"] != name || body["response"]["statusCode"] != answer.status {
        return Err(format!("envelope does not match status {}: {body}", answer.status));
    }
    Ok(())
}

// ---------------------------------------------------------------- checking one case

fn expected_backend(target: &str) -> &'static str {
    if target == "/api/other" || target.starts_with("/api/other/") || target.starts_with("/api/other?") {
        "other"
    } else {
        "app"
    }
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
}

/// Runs one case; returns what went wrong, if anything.
async fn run_case(gateway: SocketAddr, recorder: &Recorder, case: &Case, verbose: bool) -> Vec<String> {
    let bytes = exchange(gateway, &case.request, case.statuses.is_empty()).await;
    if verbose {
        let seen: Vec<String> = recorder.of_case(&case.id).iter().map(|r| format!("{r:?}")).collect();
        println!(
            "---- {}\n>>> {}\n<<< {}\n=== upstream: {seen:#?}",
            case.id,
            shorten(&String::from_utf8_lossy(&case.request)),
            shorten(&String::from_utf8_lossy(&bytes))
        );
    }
    let mut problems = Vec::new();
    match parse_answers(&bytes) {
        Ok(answers) => {
            let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
            if statuses != case.statuses {
                let first = answers.first().map(|a| String::from_utf8_lossy(&a.body).into_owned()).unwrap_or_default();
                problems.push(format!("statuses {statuses:?}, expected {:?} (first body: {first})", case.statuses));
            }
            for answer in &answers {
                if let Err(problem) = check_envelope(answer) {
                    problems.push(problem);
                }
            }
        }
        Err(err) => problems.push(format!("unreadable answer ({err}), expected statuses {:?}", case.statuses)),
    }
    // A forwarded request is recorded before its response is sent, so it is there by now.
    let seen = recorder.of_case(&case.id);
    let got: Vec<(String, String, &str)> =
        seen.iter().map(|r| (r.method.clone(), r.target.clone(), r.backend)).collect();
    let want: Vec<(String, String, &str)> =
        case.upstream.iter().map(|(m, t)| (m.clone(), t.clone(), expected_backend(t))).collect();
    if got != want {
        let show = |list: &[(String, String, &str)]| {
            if list.is_empty() {
                "nothing".to_owned()
            } else {
                list.iter().map(|(m, t, b)| format!("{m} {} on {b}", shorten(t))).collect::<Vec<_>>().join(" | ")
            }
        };
        problems.push(format!("upstream received {}, expected {}", show(&got), show(&want)));
    }
    for recorded in &seen {
        for expect in &case.expect {
            match expect {
                Expect::Equals(name, value) => {
                    let got = values(&recorded.headers, name);
                    if got != [value.clone()] {
                        problems.push(format!("upstream header `{name}`: {got:?}, expected [{value:?}]"));
                    }
                }
                Expect::Absent(name) => {
                    let got = values(&recorded.headers, name);
                    if !got.is_empty() {
                        problems.push(format!("upstream header `{name}` must be absent, got {got:?}"));
                    }
                }
            }
        }
    }
    problems
}

fn shorten(text: &str) -> String {
    if text.len() > 120 { format!("{}…({} bytes)", &text[..100], text.len()) } else { text.to_owned() }
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hostile_corpus_is_decided_safely() {
    let recorder = Recorder::default();
    let app = recorder.spawn("app").await;
    let other = recorder.spawn("other").await;
    let gw = Gateway::start_with(&gateway_yaml(app, other), &[("policy.yaml", POLICY)]).await;
    let addr = gw.running.addr;
    let context = Context { tokens: Tokens::new(), app, other };
    let mut cases = parse_corpus(&context);
    assert!(cases.len() >= 150, "the corpus has only {} cases", cases.len());
    // `HOSTILE_ONLY=<part of an id>` runs the matching cases only and prints their exchanges.
    let only = std::env::var("HOSTILE_ONLY").ok();
    if let Some(only) = &only {
        cases.retain(|case| case.id.contains(only.as_str()));
    }
    let cases = Arc::new(cases);
    let verbose = only.is_some();

    let limit = Arc::new(tokio::sync::Semaphore::new(48));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..cases.len() {
        let (cases, recorder, limit) = (cases.clone(), recorder.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let case = &cases[index];
            (index, run_case(addr, &recorder, case, verbose).await)
        });
    }
    let mut failures = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, problems) = joined.unwrap();
        if !problems.is_empty() {
            failures.insert(index, problems);
        }
    }

    // Every request the upstreams saw belongs to exactly the case that expected it.
    let known: HashSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    let strays: Vec<String> = recorder
        .all()
        .iter()
        .filter(|r| !case_of(r).is_some_and(|id| known.contains(id)))
        .map(|r| format!("{} {} on {} (case {:?})", r.method, shorten(&r.target), r.backend, case_of(r)))
        .collect();
    let expected_total: usize = cases.iter().map(|c| c.upstream.len()).sum();

    let mut report = String::new();
    for (index, problems) in &failures {
        let case = &cases[*index];
        report.push_str(&format!("\n  line {} `{}`:", case.line, case.id));
        for problem in problems {
            report.push_str(&format!("\n      {problem}"));
        }
    }
    for stray in &strays {
        report.push_str(&format!("\n  a request no case accounts for reached an upstream: {stray}"));
    }
    assert!(
        report.is_empty() && recorder.all().len() == expected_total,
        "{} of {} hostile cases failed ({} upstream requests, {expected_total} expected):{report}",
        failures.len(),
        cases.len(),
        recorder.all().len(),
    );
}
