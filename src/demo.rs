//! `stagedoor demo`: the real gateway (the same code path as `serve`) on `config/demo.yaml`,
//! in front of a small in-process sample backend, with a signing key generated at start and
//! ready-to-paste curl commands for three people.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::mint::{Claims, Minter};
use crate::server::Gateway;

/// Where the sample backend serves the auth JWKS (as Backstage's auth backend would).
const AUTH_ADDR: &str = "127.0.0.1:7007";
/// Where the sample backend serves the catalog-like echo API.
const CATALOG_ADDR: &str = "127.0.0.1:7008";
const KID: &str = "demo-key-1";

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("cannot generate a signing key")]
    Key,
    #[error("cannot build the JWKS: {0}")]
    Jwk(#[from] jsonwebtoken::errors::Error),
    #[error("cannot listen on {0}: {1} (is another demo running?)")]
    Bind(String, std::io::Error),
    #[error("cannot mint a token: {0}")]
    Mint(#[from] crate::mint::MintError),
}

/// Runs the demo until Ctrl-C.
pub async fn run(config_path: PathBuf) -> ExitCode {
    match start(config_path).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn start(config_path: PathBuf) -> Result<ExitCode, DemoError> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| DemoError::Key)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| DemoError::Key)?;
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
    jwk.common.key_id = Some(KID.into());
    let jwks = Bytes::from(serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap_or_default());
    let minter = Minter::new(key, Algorithm::ES256, Some(KID.into()));

    spawn_backend(AUTH_ADDR, Arc::new(move |_req: &Request<Incoming>| json(StatusCode::OK, jwks.clone()))).await?;
    spawn_backend(CATALOG_ADDR, Arc::new(echo)).await?;

    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            return Ok(ExitCode::from(crate::cli::EXIT_CONFIG));
        }
    };
    let listener = TcpListener::bind(config.listen).await.map_err(|e| DemoError::Bind(config.listen.to_string(), e))?;
    let gateway = match Gateway::new(&config).await {
        Ok(gateway) => gateway,
        Err(err) => {
            eprintln!("demo failed: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    print_instructions(&config, &minter)?;
    gateway.serve(listener, config.shutdown_grace, crate::cli::shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

fn print_instructions(config: &Config, minter: &Minter) -> Result<(), DemoError> {
    let ttl = Duration::from_secs(8 * 3600);
    let token = |sub: &str, groups: &[&str]| {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        minter.mint(&Claims::new(sub, &groups, ttl, None, None))
    };
    let admin = token("user:default/admin", &["group:default/admins"])?;
    let carol = token("user:default/carol", &["group:default/team-a"])?;
    let mallory = token("user:default/mallory", &[])?;
    let gw = format!("http://{}", config.listen);
    println!("stagedoor demo: gateway on {gw}, sample backend on {CATALOG_ADDR} (JWKS on {AUTH_ADDR})");
    println!(
        "policy: config/policy.yaml (admins are super users, everyone reads entities, team-a may read locations)\n"
    );
    println!("export ADMIN={admin}\nexport CAROL={carol}\nexport MALLORY={mallory}\n");
    let lines = [
        ("public health check, no token", "200", format!("curl -i {gw}/api/catalog/health")),
        (
            "no token on a protected route",
            "401",
            format!("curl -i {gw}/api/catalog/entities/by-name/component/default/payments"),
        ),
        (
            "a forged token",
            "401",
            format!(
                "curl -i -H 'Authorization: Bearer not.a.token' {gw}/api/catalog/entities/by-name/component/default/payments"
            ),
        ),
        (
            "mallory reads an entity (role everyone)",
            "200",
            format!(
                "curl -i -H \"Authorization: Bearer $MALLORY\" {gw}/api/catalog/entities/by-name/component/default/payments"
            ),
        ),
        (
            "mallory reads locations",
            "403",
            format!("curl -i -H \"Authorization: Bearer $MALLORY\" {gw}/api/catalog/locations"),
        ),
        (
            "carol (team-a) reads locations",
            "200",
            format!("curl -i -H \"Authorization: Bearer $CAROL\" {gw}/api/catalog/locations"),
        ),
        (
            "carol creates a location (explicit deny)",
            "403",
            format!("curl -i -X POST -H \"Authorization: Bearer $CAROL\" {gw}/api/catalog/locations"),
        ),
        (
            "carol deletes an entity (conditional: owner only)",
            "403",
            format!("curl -i -X DELETE -H \"Authorization: Bearer $CAROL\" {gw}/api/catalog/entities/by-uid/1234"),
        ),
        (
            "admin deletes an entity (super user)",
            "200",
            format!("curl -i -X DELETE -H \"Authorization: Bearer $ADMIN\" {gw}/api/catalog/entities/by-uid/1234"),
        ),
        (
            "an unconfigured route",
            "404",
            format!("curl -i -H \"Authorization: Bearer $ADMIN\" {gw}/api/scaffolder/v2/tasks"),
        ),
    ];
    for (what, status, command) in lines {
        println!("# {what} → {status}\n{command}\n");
    }
    println!(
        "The backend echoes what it received, including the x-stagedoor-user and x-stagedoor-ownership headers. Ctrl-C stops the demo."
    );
    Ok(())
}

type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

async fn spawn_backend(addr: &str, handler: Handler) -> Result<(), DemoError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| DemoError::Bind(addr.to_owned(), e))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = handler(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(())
}

fn echo(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = serde_json::json!({
        "backend": "stagedoor demo catalog",
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "x-stagedoor-user": header("x-stagedoor-user"),
        "x-stagedoor-ownership": header("x-stagedoor-ownership"),
        "x-forwarded-for": header("x-forwarded-for"),
        "x-request-id": header("x-request-id"),
    });
    json(StatusCode::OK, Bytes::from(serde_json::to_vec_pretty(&body).unwrap_or_default()))
}

fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// The demo's fixed addresses, for tests.
pub fn backend_addrs() -> (SocketAddr, SocketAddr) {
    (
        AUTH_ADDR.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7007))),
        CATALOG_ADDR.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7008))),
    )
}
