//! Criterion benchmarks of the request path's pure cores and of token verification.
//!
//! Run: `cargo bench --bench hot_path` (CI only compiles them: `cargo bench --no-run`).
//! Groups:
//! - `route_lookup/{10,1000,10000}`: normalize + table lookup + resource ref, per table size;
//! - `policy_decide/{10,1000,10000}`: YAML policy decision, per number of roles (deny and
//!   conditional entries mixed in);
//! - `route_and_decide/{10,1000,10000}`: both, as one request pays them;
//! - `verify/<alg>/{signature_only,uncached,cached}`: aws-lc-rs signature check alone (the
//!   crypto floor), full verification, and a verified-token cache hit;
//! - `normalize/{typical,hostile}`: path normalization;
//! - `authorize/{1,50}`: the `/api/permission/authorize` handler in process (HS256 token from
//!   the cache, body parse, 1,000-role YAML policy, JSON answer).

#![allow(clippy::expect_used, clippy::unwrap_used)] // setup failures should abort the bench

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Method, Request};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use stagedoor::config::Config;
use stagedoor::identity::Principal;
use stagedoor::policy::{Permission, YamlPolicy};
use stagedoor::routes::{layer::route, path};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A config with `n` routes of four rules each (`n` rules in all when n < 4).
fn routes_config(n: usize) -> Config {
    let mut yaml = String::from(
        "identity:\n  issuers:\n    - { name: bench, secret_env: S, algorithms: [HS256] }\nupstreams:\n  app: { url: \"http://127.0.0.1:9\" }\nroutes:\n",
    );
    for i in 0..n.div_ceil(4) {
        yaml.push_str(&format!(
            "  - prefix: /api/svc{i}\n    upstream: app\n    rules:\n      - {{ path: /health, public: true }}\n      - {{ methods: [GET], path: \"/entities/by-name/{{kind}}/{{namespace}}/{{name}}\", permission: svc{i}.entity.read, action: read, resource_type: svc{i}-entity, resource_ref: \"{{kind}}:{{namespace}}/{{name}}\" }}\n      - {{ methods: [DELETE], path: \"/entities/by-uid/{{uid}}\", permission: svc{i}.entity.delete, action: delete, resource_type: svc{i}-entity }}\n      - {{ methods: [GET], path: \"/{{*rest}}\", public: true }}\n"
        ));
    }
    Config::from_yaml(&yaml, Path::new("bench.yaml"), |_| Some("0123456789abcdef0123456789abcdef".into()))
        .expect("bench config")
}

/// A policy with `n` roles: allow, deny and conditional entries, three members each; the
/// benchmarked principal is in two of them whatever `n` is.
fn policy(n: usize) -> YamlPolicy {
    let mut yaml = String::from("super_users: [group:default/admins]\nroles:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: role:default/r{i}\n    members: [group:default/g{i}, group:default/h{i}, user:default/u{i}]\n    allow:\n      - permission: svc{i}.entity.read\n      - resource_type: svc{i}-entity\n        actions: [update, delete]\n        conditions:\n          anyOf:\n            - rule: IS_ENTITY_OWNER\n              params: {{ claims: [$ownerRefs] }}\n    deny:\n      - permission: svc{i}.location.create\n",
        ));
    }
    YamlPolicy::from_yaml(&yaml, Path::new("bench-policy.yaml")).expect("bench policy")
}

fn member_of(n: usize) -> Principal {
    let group = n / 2;
    Principal::new(
        format!("user:default/u{group}"),
        vec![format!("group:default/g{group}"), "group:default/h3".into(), "group:default/other".into()],
        Arc::from("bench"),
    )
}

fn bench_routes_and_policy(c: &mut Criterion) {
    let mut lookup = c.benchmark_group("route_lookup");
    for n in SIZES {
        let config = routes_config(n);
        let i = n.div_ceil(4) / 2;
        let request = Request::builder()
            .method(Method::GET)
            .header(http::header::HOST, "localhost")
            .uri(format!("/api/svc{i}/entities/by-name/component/default/payments"))
            .body(())
            .expect("request");
        lookup.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(route(&config.routes, black_box(&request)).expect("match")))
        });
    }
    lookup.finish();

    let mut decide = c.benchmark_group("policy_decide");
    for n in SIZES {
        let policy = policy(n);
        let principal = member_of(n);
        let group = n / 2;
        let read = Permission::resource(&format!("svc{group}.entity.read"), None, &format!("svc{group}-entity"));
        let delete = Permission::resource(
            &format!("svc{group}.entity.delete"),
            Some(stagedoor::policy::Action::Delete),
            &format!("svc{group}-entity"),
        );
        decide.bench_with_input(BenchmarkId::new("allow", n), &n, |b, _| {
            b.iter(|| black_box(policy.decide(black_box(&read), black_box(&principal))))
        });
        decide.bench_with_input(BenchmarkId::new("conditional", n), &n, |b, _| {
            b.iter(|| black_box(policy.decide(black_box(&delete), black_box(&principal))))
        });
    }
    decide.finish();

    let mut both = c.benchmark_group("route_and_decide");
    for n in SIZES {
        let config = routes_config(n);
        let policy = policy(n);
        let principal = member_of(n);
        let i = n.div_ceil(4) / 2;
        let request = Request::builder()
            .method(Method::GET)
            .header(http::header::HOST, "localhost")
            .uri(format!("/api/svc{i}/entities/by-name/component/default/payments"))
            .body(())
            .expect("request");
        both.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let found = route(&config.routes, black_box(&request)).expect("match");
                let stagedoor::routes::Access::Permission(permission) = &found.rule.access else {
                    unreachable!("the bench rule needs a permission")
                };
                black_box(policy.decide(permission, &principal))
            })
        });
    }
    both.finish();
}

struct TokenCase {
    name: &'static str,
    token: String,
    config: Config,
    raw: Box<dyn Fn() -> bool>,
}

fn spki_der(file: &str) -> Vec<u8> {
    let pem = std::fs::read_to_string(fixture(file)).expect("fixture");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("pem body")
}

fn token_case(name: &'static str, alg: Algorithm, private: &str, public: &str) -> TokenCase {
    let pem = std::fs::read(fixture(private)).expect("fixture");
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .expect("private key");
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({"sub": "user:default/jane", "ent": ["user:default/jane", "group:default/team-a"], "iat": now, "exp": now + 3600});
    let mut header = Header::new(alg);
    header.typ = Some("vnd.backstage.user".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    let yaml = format!(
        "identity:\n  issuers:\n    - {{ name: bench, keys: [{{ pem_file: \"{}\" }}], algorithms: [{alg:?}] }}\n",
        fixture(public).display()
    );
    let config = Config::from_yaml(&yaml, Path::new("bench.yaml"), |_| None).expect("bench config");
    // The crypto floor: aws-lc-rs verifying the signature over the signing input, nothing else.
    let (input, signature) = token.rsplit_once('.').expect("jws");
    let (input, signature) = (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(signature).expect("sig"));
    let der = spki_der(public);
    let raw: Box<dyn Fn() -> bool> = match alg {
        Algorithm::ES256 => {
            // The SPKI of a P-256 key ends with the 65-byte uncompressed point.
            let point = der[der.len() - 65..].to_vec();
            Box::new(move || {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point).verify(&input, &signature).is_ok()
            })
        }
        Algorithm::RS256 => Box::new(move || {
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &der).verify(&input, &signature).is_ok()
        }),
        _ => {
            let point = der[der.len() - 32..].to_vec();
            Box::new(move || UnparsedPublicKey::new(&signature::ED25519, &point).verify(&input, &signature).is_ok())
        }
    };
    TokenCase { name, token, config, raw }
}

fn hs256_case() -> TokenCase {
    let secret = "0123456789abcdef0123456789abcdef-bench";
    let now = jsonwebtoken::get_current_timestamp();
    let claims =
        serde_json::json!({"sub": "user:default/jane", "ent": ["group:default/team-a"], "iat": now, "exp": now + 3600});
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .expect("sign");
    let yaml = "identity:\n  issuers:\n    - { name: bench, secret_env: S, algorithms: [HS256] }\n";
    let config = Config::from_yaml(yaml, Path::new("bench.yaml"), |_| Some(secret.to_string())).expect("config");
    let (input, signature) = token.rsplit_once('.').expect("jws");
    let (input, signature) = (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(signature).expect("sig"));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let raw: Box<dyn Fn() -> bool> = Box::new(move || aws_lc_rs::hmac::verify(&key, &input, &signature).is_ok());
    TokenCase { name: "HS256", token, config, raw }
}

fn bench_tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let cases = [
        token_case("ES256", Algorithm::ES256, "ec-private.pem", "ec-public.pem"),
        token_case("RS256", Algorithm::RS256, "rsa-private.pem", "rsa-public.pem"),
        token_case("EdDSA", Algorithm::EdDSA, "ed25519-private.pem", "ed25519-public.pem"),
        hs256_case(),
    ];
    let mut group = c.benchmark_group("verify");
    for case in &cases {
        assert!((case.raw)(), "{}: the raw signature check must succeed", case.name);
        let auth = case.config.authenticator.clone();
        runtime.block_on(auth.verify(&case.token)).expect("token verifies");
        group.bench_function(BenchmarkId::new(case.name, "signature_only"), |b| b.iter(|| black_box((case.raw)())));
        group.bench_function(BenchmarkId::new(case.name, "uncached"), |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(auth.verify_uncached(black_box(&case.token)).await.is_ok()) })
        });
        group.bench_function(BenchmarkId::new(case.name, "cached"), |b| {
            b.to_async(&runtime).iter(|| async { black_box(auth.verify(black_box(&case.token)).await.is_ok()) })
        });
    }
    group.finish();
}

fn bench_normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    let typical = "/api/catalog/entities/by-name/component/default/payments-service";
    let hostile = "/api/catalog/./x/../%2e%2E/entities//by-name/%63omponent/default/.%2e/./payments%20service/";
    group.bench_function("typical", |b| b.iter(|| black_box(path::normalize(black_box(typical)).is_ok())));
    group.bench_function("hostile", |b| b.iter(|| black_box(path::normalize(black_box(hostile)).is_ok())));
    group.finish();
}

fn bench_authorize(c: &mut Criterion) {
    use http_body_util::Full;
    use tower::{Service, ServiceExt};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let secret = "0123456789abcdef0123456789abcdef-bench";
    let dir = std::env::temp_dir().join(format!("stagedoor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut policy_yaml = String::from("roles:\n");
    for i in 0..1000 {
        policy_yaml.push_str(&format!(
            "  - name: role:default/r{i}\n    members: [group:default/g{i}]\n    allow:\n      - permission: svc{i}.read\n    deny:\n      - permission: svc{i}.create\n"
        ));
    }
    std::fs::write(dir.join("policy.yaml"), policy_yaml).expect("policy");
    let yaml = "permission_api: { enabled: true }\nidentity:\n  issuers:\n    - { name: bench, secret_env: S, algorithms: [HS256] }\npolicy: { file: policy.yaml }\n";
    let config = Config::from_yaml(yaml, &dir.join("gateway.yaml"), |_| Some(secret.to_string())).expect("config");
    let layer = stagedoor::permission_api::PermissionApiLayer::new(
        config.permission_api.clone().expect("enabled"),
        config.authenticator.clone(),
        config.policy.clone(),
        config.plugins.clone(),
        config.plugin_tokens.clone(),
    );
    let inner = tower::service_fn(|_req: Request<Full<bytes::Bytes>>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(stagedoor::body::empty()))
    });
    let service = tower::Layer::layer(&layer, inner);
    let now = jsonwebtoken::get_current_timestamp();
    let claims =
        serde_json::json!({"sub": "user:default/u500", "ent": ["group:default/g500"], "iat": now, "exp": now + 3600});
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .expect("sign");
    let mut group = c.benchmark_group("authorize");
    for n in [1usize, 50] {
        let items: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"id": format!("id-{i}"), "permission": {"type": "basic", "name": format!("svc{}.read", 480 + i), "attributes": {"action": "read"}}}))
            .collect();
        let body = bytes::Bytes::from(serde_json::to_vec(&serde_json::json!({ "items": items })).expect("json"));
        let request = || {
            Request::post("/api/permission/authorize")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .expect("request")
        };
        let mut warm = service.clone();
        let response =
            runtime.block_on(async { warm.ready().await.expect("ready").call(request()).await }).expect("call");
        assert_eq!(response.status(), 200);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(&runtime).iter(|| {
                let service = service.clone();
                let request = request();
                async move { black_box(service.oneshot(request).await.expect("call").status()) }
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_routes_and_policy, bench_tokens, bench_normalize, bench_authorize);
criterion_main!(benches);
