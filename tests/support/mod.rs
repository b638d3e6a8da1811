//! Shared test harness: real upstream and JWKS servers on 127.0.0.1 ephemeral ports, real keys
//! from `tests/fixtures/`, real signed tokens, and the real gateway started from YAML.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use stagedoor::config::Config;
use stagedoor::server::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

// ---------------------------------------------------------------- keys and tokens

/// A private key that signs tokens, with its public JWK.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    pub alg: Algorithm,
    pub kid: String,
    pub jwk: Value,
}

impl Signer {
    pub fn es256(kid: &str) -> Self {
        Self::from_pem("ec-private.pem", Algorithm::ES256, kid)
    }
    pub fn es256_other(kid: &str) -> Self {
        Self::from_pem("ec2-private.pem", Algorithm::ES256, kid)
    }
    pub fn rs256(kid: &str) -> Self {
        Self::from_pem("rsa-private.pem", Algorithm::RS256, kid)
    }
    pub fn eddsa(kid: &str) -> Self {
        let pem = std::fs::read(fixture("ed25519-private.pem")).unwrap();
        let key = EncodingKey::from_ed_pem(&pem).unwrap();
        // The JWK of an Ed25519 key is its 32 raw public bytes: the tail of the SPKI DER.
        let public = std::fs::read_to_string(fixture("ed25519-public.pem")).unwrap();
        let der: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(der).unwrap();
        let x = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        Self { key, alg: Algorithm::EdDSA, kid: kid.into(), jwk }
    }
    pub fn hs256(secret: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            alg: Algorithm::HS256,
            kid: String::new(),
            jwk: Value::Null,
        }
    }
    fn from_pem(file: &str, alg: Algorithm, kid: &str) -> Self {
        let pem = std::fs::read(fixture(file)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        Self { key, alg, kid: kid.into(), jwk: serde_json::to_value(jwk).unwrap() }
    }

    /// Signs `claims` with a Backstage user token header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("vnd.backstage.user".into());
        if !self.kid.is_empty() {
            header.kid = Some(self.kid.clone());
        }
        self.sign_with(header, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

pub fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Backstage-shaped user claims valid for an hour.
pub fn claims(sub: &str, groups: &[&str]) -> Value {
    let mut ent: Vec<&str> = vec![sub];
    ent.extend_from_slice(groups);
    json!({"sub": sub, "ent": ent, "iat": now(), "exp": now() + 3600})
}

/// A token assembled by hand (for `alg: none` and malformed cases).
pub fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

// ---------------------------------------------------------------- servers

/// What a backend saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body_bytes: usize,
}

/// How the test backend answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Reads the whole body (counting bytes, keeping none), answers a small JSON echo.
    Echo,
    /// Answers with `n` bytes produced in 64 KiB chunks, never held at once.
    Download(usize),
    /// Waits before answering.
    Slow(Duration),
}

/// A real HTTP server on 127.0.0.1:0 that records every request.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    pub async fn spawn(behaviour: Behaviour) -> Backend {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let addr = serve(move |request: Request<Incoming>| {
            let record = record.clone();
            async move {
                let method = request.method().to_string();
                let uri = request.uri().to_string();
                let headers = request.headers().clone();
                let mut body = request.into_body();
                let mut body_bytes = 0;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.map(|f| f.into_data()) {
                        body_bytes += data.map(|d| d.len()).unwrap_or(0);
                    } else {
                        break;
                    }
                }
                record.lock().unwrap().push(Seen { method: method.clone(), uri: uri.clone(), headers, body_bytes });
                match behaviour {
                    Behaviour::Echo => {
                        json_response(StatusCode::OK, &json!({"method": method, "uri": uri, "received": body_bytes}))
                    }
                    Behaviour::Download(n) => Response::new(BodyExt::boxed(Repeat { remaining: n })),
                    Behaviour::Slow(delay) => {
                        tokio::time::sleep(delay).await;
                        json_response(StatusCode::OK, &json!({"slow": true}))
                    }
                }
            }
        })
        .await;
        Backend { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the backend saw no request")
    }
}

/// A JWKS endpoint whose document can be replaced, counting fetches.
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn spawn(signers: &[&Signer]) -> JwksServer {
        let doc = Arc::new(Mutex::new(Self::document(signers)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, f) = (doc.clone(), fetches.clone());
        let addr = serve(move |_request: Request<Incoming>| {
            let (d, f) = (d.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                let doc = d.lock().unwrap().clone();
                json_response(StatusCode::OK, &doc)
            }
        })
        .await;
        JwksServer { addr, doc, fetches }
    }
    pub fn document(signers: &[&Signer]) -> Value {
        json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()})
    }
    pub fn set(&self, signers: &[&Signer]) {
        *self.doc.lock().unwrap() = Self::document(signers);
    }
    pub fn set_raw(&self, doc: Value) {
        *self.doc.lock().unwrap() = doc;
    }
    pub fn url(&self) -> String {
        format!("http://{}/api/auth/.well-known/jwks.json", self.addr)
    }
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Serves `handler` on 127.0.0.1:0 until the test ends.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<BoxBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| {
                    let f = handler(r);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

pub fn json_response(status: StatusCode, value: &Value) -> Response<BoxBody> {
    let mut response = Response::new(BodyExt::boxed(http_body_util::Full::new(Bytes::from(value.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    response
}

/// A body of `remaining` zero bytes, produced chunk by chunk.
struct Repeat {
    remaining: usize,
}

impl http_body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(64 * 1024);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n])))))
    }
}

// ---------------------------------------------------------------- the gateway

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

/// A running gateway started from YAML (with `SECRET_ENV` set to [`SECRET`]); files named in
/// `extra_files` are written beside the config first.
pub struct Gateway {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(yaml: &str) -> Gateway {
        Self::start_with(yaml, &[]).await
    }

    pub async fn start_with(yaml: &str, extra_files: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in extra_files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let config = load(&dir, yaml).unwrap_or_else(|e| panic!("config refused: {e}"));
        let running = Running::spawn(&config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Gateway { running, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running.addr, path)
    }
}

pub fn load(dir: &tempfile::TempDir, yaml: &str) -> Result<Config, stagedoor::config::ConfigError> {
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let vars = HashMap::from([("SECRET_ENV".to_string(), SECRET.to_string())]);
    Config::from_yaml(yaml, &path, |name| vars.get(name).cloned())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Sends raw bytes and returns the whole raw response (for request targets a client library
/// would normalize away).
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Status code of a raw response.
pub fn raw_status(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Asserts a Backstage error envelope and returns its message.
pub async fn envelope(response: reqwest::Response, status: u16, name: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["name"], name, "{body}");
    assert_eq!(body["response"]["statusCode"], status, "{body}");
    assert!(body["request"]["method"].is_string(), "{body}");
    assert!(body["request"]["url"].is_string(), "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}
