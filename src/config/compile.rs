//! Raw config → ready domain objects. Records every problem instead of stopping at the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::include::{self, Included};
use super::{Config, ConfigError, Problem, Summary, raw};
use crate::auth::cache::CacheLimits;
use crate::auth::claims::ClaimPath;
use crate::auth::hierarchy::GroupHierarchy;
use crate::auth::jwks::{JwksCache, JwksTiming};
use crate::auth::keys::{Key, KeyRing};
use crate::auth::plugin_token::PluginTokens;
use crate::auth::{Authenticator, DEFAULT_MAX_TOKEN_BYTES, Issuer, IssuerSettings, KeySource};
use crate::connection::Limits;
use crate::plugins::{Plugin, Plugins};
use crate::policy::{Action, AllowAllPolicy, Permission, PermissionPolicy, YamlPolicy};
use crate::proxy::pool::Protocol;
use crate::proxy::upstream::DEFAULT_TIMEOUT;
use crate::proxy::{ForwardSettings, IdentityHeaders, Upstream};
use crate::routes::template::{RefTemplate, path_params};
use crate::routes::{Access, OnConditional, PrefixSpec, RouteTable, Rule, RuleSpec, Unmatched};

/// Collected problems.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { file: None, key: key.into(), message: message.into() });
    }

    /// Takes over `other`'s problems, found in the included `file` (`None`: the config file).
    fn absorb(&mut self, file: Option<&str>, other: Problems) {
        self.0.extend(other.0.into_iter().map(|p| Problem { file: file.map(str::to_owned), ..p }));
    }
}

pub(super) fn gateway(
    raw: raw::Gateway,
    path: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let file = path.display().to_string();

    let listen = match raw.server.listen.as_deref().unwrap_or("127.0.0.1:7000").parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            problems.add("server.listen", "expected `host:port` with an IP address, e.g. `127.0.0.1:7000`");
            SocketAddr::from(([127, 0, 0, 1], 7000))
        }
    };
    if raw.server.worker_threads == Some(0) {
        problems.add("server.worker_threads", "expected at least 1");
    }
    let shutdown_grace = duration(&mut problems, "server.shutdown_grace", raw.server.shutdown_grace.as_deref(), 10);
    let trusted_proxies = raw
        .server
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            match text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(Into::into)) {
                Ok(net) => Some(net),
                Err(_) => {
                    problems.add(
                        format!("server.trusted_proxies[{i}]"),
                        format!("expected an IP address or CIDR, got `{text}`"),
                    );
                    None
                }
            }
        })
        .collect();

    let identity = identity_headers(&mut problems, &raw.identity.headers);
    let hierarchy = raw.identity.group_hierarchy.as_ref().and_then(|raw| group_hierarchy(&mut problems, raw));
    let (issuers, issuer_lines) = issuers(&mut problems, raw.identity.issuers, base, env, hierarchy);
    let defaults = CacheLimits::default();
    let cache = CacheLimits {
        max_entries: raw.identity.token_cache.max_entries.unwrap_or(defaults.max_entries),
        max_bytes: raw.identity.token_cache.max_bytes.unwrap_or(defaults.max_bytes),
    };
    let max_token_bytes = raw.identity.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    let authenticator = Arc::new(Authenticator::new(issuers, max_token_bytes, cache));

    let mut upstream_lines = Vec::new();
    let mut upstreams: BTreeMap<String, Arc<Upstream>> = BTreeMap::new();
    for (name, upstream) in &raw.upstreams {
        let key = format!("upstreams.{name}");
        let timeout =
            duration(&mut problems, &format!("{key}.timeout"), upstream.timeout.as_deref(), DEFAULT_TIMEOUT.as_secs());
        let protocol = match upstream.protocol {
            None | Some(raw::UpstreamProtocol::Http1) => Protocol::Http1,
            Some(raw::UpstreamProtocol::Http2) => Protocol::Http2,
        };
        match Upstream::parse_with(name, &upstream.url, timeout, protocol) {
            Ok(parsed) => {
                upstream_lines.push(format!(
                    "{name} → {} (timeout {}{})",
                    upstream.url,
                    humantime::format_duration(timeout),
                    if protocol == Protocol::Http2 { ", HTTP/2" } else { "" }
                ));
                upstreams.insert(name.clone(), Arc::new(parsed));
            }
            Err(err) => problems.add(format!("{key}.url"), err.to_string()),
        }
    }

    let unmatched = match raw.permission.unmatched {
        None | Some(raw::Unmatched::Deny) => Unmatched::Deny,
        Some(raw::Unmatched::Allow) => Unmatched::Allow,
        Some(raw::Unmatched::Authenticated) => Unmatched::Authenticated,
    };
    let limits = limits(&mut problems, &raw.server.limits);
    let permission_api = match &raw.permission_api {
        Some(api) if api.enabled => {
            let path = api.path.clone().unwrap_or_else(|| crate::permission_api::DEFAULT_PATH.into());
            if path == "/" || !is_clean_prefix(&path) {
                problems.add(
                    "permission_api.path",
                    format!("expected a normalized path such as `/api/permission`, got `{path}`"),
                );
            }
            let max_body_bytes = api.max_body_bytes.unwrap_or(crate::permission_api::DEFAULT_MAX_BODY_BYTES);
            Some(crate::permission_api::ApiSettings { path, max_body_bytes })
        }
        _ => None,
    };
    let (included, include_problems) = include::load(&raw.include, &file, base, env)?;
    problems.0.extend(include_problems);
    let include_lines = included
        .iter()
        .map(|inc| {
            let rules: usize = inc.routes.iter().map(|r| r.rules.len()).sum();
            format!("{} ({} route group(s), {rules} rule(s))", inc.file, inc.routes.len())
        })
        .collect();
    let routes = routes(&mut problems, &file, raw.routes, included, &upstreams, unmatched, &limits);
    if authenticator.issuers().is_empty()
        && (needs_tokens(&routes, unmatched) || raw.permission_api.as_ref().is_some_and(|a| a.enabled))
    {
        problems.add("identity.issuers", "routes need tokens, but no issuer is configured to verify them");
    }

    let plugins = Arc::new(plugins(&mut problems, &raw.plugins, env));
    let plugin_tokens = Arc::new(plugin_tokens(&raw.plugins));
    let (policy, policy_line): (Arc<dyn PermissionPolicy>, String) = match raw.policy {
        None => (Arc::new(AllowAllPolicy), "allow-all (default)".into()),
        Some(raw::Policy::Named(name)) if name == "allow-all" => (Arc::new(AllowAllPolicy), "allow-all".into()),
        Some(raw::Policy::Named(name)) => {
            problems.add("policy", format!("expected `allow-all` or `{{ file: policy.yaml }}`, got `{name}`"));
            (Arc::new(AllowAllPolicy), String::new())
        }
        Some(raw::Policy::File(policy)) => {
            let policy_path: PathBuf = base.join(&policy.file);
            if !problems.0.is_empty() {
                // Report config problems first; the policy is checked once they are fixed.
                (Arc::new(AllowAllPolicy), String::new())
            } else {
                let yaml = YamlPolicy::load(&policy_path)?.with_plugin_ids(plugins.owners().clone());
                let line = format!("{} ({})", policy_path.display(), yaml.summary());
                (Arc::new(yaml), line)
            }
        }
    };

    if !problems.0.is_empty() {
        return Err(ConfigError::Invalid { file, problems: problems.0 });
    }
    let routes = Arc::new(routes.ok_or_else(|| ConfigError::Invalid { file: file.clone(), problems: Vec::new() })?);
    Ok(Config {
        source: path.to_path_buf(),
        listen,
        worker_threads: raw.server.worker_threads,
        shutdown_grace,
        permission_enabled: raw.permission.enabled.unwrap_or(true),
        unmatched,
        authenticator,
        routes: routes.clone(),
        policy,
        forward: ForwardSettings { identity, trusted_proxies },
        limits,
        permission_api,
        plugins,
        plugin_tokens,
        summary: Summary {
            upstreams: upstream_lines,
            issuers: issuer_lines,
            includes: include_lines,
            routes: Some(routes),
            policy: policy_line,
        },
    })
}

fn limits(problems: &mut Problems, raw: &raw::Limits) -> Limits {
    let defaults = Limits::default();
    let header_read_timeout = duration(
        problems,
        "server.limits.header_read_timeout",
        raw.header_read_timeout.as_deref(),
        defaults.header_read_timeout.as_secs(),
    );
    let max_header_bytes = raw.max_header_bytes.unwrap_or(defaults.max_header_bytes);
    if max_header_bytes < 8192 {
        problems.add("server.limits.max_header_bytes", format!("expected at least 8192, got {max_header_bytes}"));
    }
    let positive = |problems: &mut Problems, key: &str, value: Option<usize>, default: usize| match value {
        Some(0) => {
            problems.add(key, "expected at least 1");
            default
        }
        Some(value) => value,
        None => default,
    };
    Limits {
        header_read_timeout,
        max_header_bytes,
        max_headers: positive(problems, "server.limits.max_headers", raw.max_headers, defaults.max_headers),
        // 0 means unlimited.
        max_body_bytes: match raw.max_body_bytes {
            Some(0) => None,
            Some(limit) => Some(limit),
            None => defaults.max_body_bytes,
        },
        max_connections: positive(
            problems,
            "server.limits.max_connections",
            raw.max_connections,
            defaults.max_connections,
        ),
        http2_max_concurrent_streams: raw.http2_max_concurrent_streams.unwrap_or(defaults.http2_max_concurrent_streams),
        http2_max_pending_accept_reset_streams: raw
            .http2_max_pending_accept_reset_streams
            .unwrap_or(defaults.http2_max_pending_accept_reset_streams),
        http2_max_local_error_reset_streams: raw
            .http2_max_local_error_reset_streams
            .unwrap_or(defaults.http2_max_local_error_reset_streams),
    }
}

fn plugins(
    problems: &mut Problems,
    raw: &BTreeMap<String, raw::Plugin>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Plugins {
    let mut list = Vec::new();
    let mut owners = HashMap::new();
    for (id, plugin) in raw {
        let key = format!("plugins.{id}");
        let base = plugin.url.trim_end_matches('/');
        let apply_conditions = match format!("{base}/.well-known/backstage/permissions/apply-conditions").parse::<Uri>()
        {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => uri,
            _ => {
                problems.add(
                    format!("{key}.url"),
                    format!("expected an `http://host:port/api/{id}` URL, got `{}`", plugin.url),
                );
                continue;
            }
        };
        let authorization = match &plugin.token_env {
            None => None,
            Some(var) => match env(var).map(|token| HeaderValue::from_str(&format!("Bearer {token}"))) {
                Some(Ok(value)) => Some(value),
                Some(Err(_)) => {
                    problems
                        .add(format!("{key}.token_env"), format!("the token in `{var}` is not a valid header value"));
                    None
                }
                None => {
                    problems.add(format!("{key}.token_env"), format!("environment variable `{var}` is not set"));
                    None
                }
            },
        };
        let timeout = duration(problems, &format!("{key}.timeout"), plugin.timeout.as_deref(), 10);
        for resource_type in &plugin.resource_types {
            owners.insert(resource_type.clone(), id.clone());
        }
        list.push(Plugin { id: id.clone(), apply_conditions, authorization, timeout });
    }
    Plugins::new(list, owners)
}

/// Each configured plugin may call the permission API with plugin tokens signed by the keys it
/// publishes at `{url}/.backstage/auth/v1/jwks.json` (fetched when a token first needs them).
fn plugin_tokens(raw: &BTreeMap<String, raw::Plugin>) -> PluginTokens {
    let keys = raw
        .iter()
        .filter_map(|(id, plugin)| {
            let url = format!("{}/.backstage/auth/v1/jwks.json", plugin.url.trim_end_matches('/'));
            let uri = url.parse::<Uri>().ok()?;
            Some((id.clone(), Arc::new(JwksCache::new(format!("plugin:{id}").into(), uri, JwksTiming::default()))))
        })
        .collect();
    PluginTokens::new("permission", keys)
}

fn needs_tokens(routes: &Option<RouteTable>, unmatched: Unmatched) -> bool {
    unmatched == Unmatched::Authenticated || routes.as_ref().is_some_and(RouteTable::needs_tokens)
}

fn duration(problems: &mut Problems, key: &str, text: Option<&str>, default_secs: u64) -> Duration {
    match text {
        None => Duration::from_secs(default_secs),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                problems.add(key, format!("expected a duration such as `30s` or `500ms`, got `{text}`"));
                Duration::from_secs(default_secs)
            }
        },
    }
}

fn identity_headers(problems: &mut Problems, raw: &raw::IdentityHeaders) -> IdentityHeaders {
    let defaults = IdentityHeaders::default();
    let mut header = |key: &str, value: &Option<String>, default: HeaderName| match value {
        None => default,
        Some(name) => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(_) => {
                problems.add(key, format!("expected an HTTP header name, got `{name}`"));
                default
            }
        },
    };
    let user = header("identity.headers.user", &raw.user, defaults.user);
    let ownership = header("identity.headers.ownership", &raw.ownership, defaults.ownership);
    if user == ownership {
        problems.add("identity.headers", "`user` and `ownership` must be different headers");
    }
    IdentityHeaders { user, ownership }
}

fn issuers(
    problems: &mut Problems,
    raw: Vec<raw::Issuer>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    hierarchy: Option<Arc<GroupHierarchy>>,
) -> (Vec<Arc<Issuer>>, Vec<String>) {
    let mut names = HashSet::new();
    let mut issuers = Vec::new();
    let mut lines = Vec::new();
    for (i, issuer) in raw.into_iter().enumerate() {
        let key = format!("identity.issuers[{i}]");
        if !names.insert(issuer.name.clone()) {
            problems.add(format!("{key}.name"), format!("issuer name `{}` is used twice", issuer.name));
        }
        let before = problems.0.len();
        let algorithms = algorithms(problems, &key, &issuer);
        let sources = [issuer.jwks_url.is_some(), issuer.keys.is_some(), issuer.secret_env.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            problems.add(&key, "expected exactly one of `jwks_url`, `keys` (PEM files) or `secret_env`");
            continue;
        }
        let name: Arc<str> = issuer.name.as_str().into();
        let keys = if let Some(url) = &issuer.jwks_url {
            match url.parse::<Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {
                    let defaults = JwksTiming::default();
                    let secs = |d: std::time::Duration| d.as_secs_f64().ceil() as u64;
                    let timing = JwksTiming {
                        refresh_interval: duration(
                            problems,
                            &format!("{key}.jwks_refresh_interval"),
                            issuer.jwks_refresh_interval.as_deref(),
                            secs(defaults.refresh_interval),
                        ),
                        unknown_kid_wait: duration(
                            problems,
                            &format!("{key}.jwks_unknown_kid_wait"),
                            issuer.jwks_unknown_kid_wait.as_deref(),
                            secs(defaults.unknown_kid_wait),
                        ),
                        min_refetch_interval: duration(
                            problems,
                            &format!("{key}.jwks_min_refetch_interval"),
                            issuer.jwks_min_refetch_interval.as_deref(),
                            secs(defaults.min_refetch_interval),
                        ),
                        required_at_start: issuer.jwks_required_at_start,
                    };
                    KeySource::Jwks(Arc::new(JwksCache::new(name.clone(), uri, timing)))
                }
                _ => {
                    problems.add(format!("{key}.jwks_url"), format!("expected an `http://` URL, got `{url}`"));
                    continue;
                }
            }
        } else if let Some(pems) = &issuer.keys {
            KeySource::Static(Arc::new(pem_keys(problems, &key, pems, base, &algorithms)))
        } else {
            let var = issuer.secret_env.as_deref().unwrap_or_default();
            match env(var) {
                // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
                Some(secret) if secret.len() >= 32 => KeySource::Static(Arc::new(KeyRing::from_keys(vec![(
                    None,
                    Key { decoding: DecodingKey::from_secret(secret.as_bytes()), algorithm: None },
                )]))),
                Some(_) => {
                    problems
                        .add(format!("{key}.secret_env"), format!("the secret in `{var}` must be at least 32 bytes"));
                    continue;
                }
                None => {
                    problems.add(format!("{key}.secret_env"), format!("environment variable `{var}` is not set"));
                    continue;
                }
            }
        };
        let user_claim =
            claim_path(problems, &format!("{key}.user_claim"), issuer.user_claim.as_deref().unwrap_or("sub"));
        let groups_claim =
            claim_path(problems, &format!("{key}.groups_claim"), issuer.groups_claim.as_deref().unwrap_or("ent"));
        let leeway = duration(problems, &format!("{key}.leeway"), issuer.leeway.as_deref(), 60);
        let userinfo_timeout =
            duration(problems, &format!("{key}.userinfo_timeout"), issuer.userinfo_timeout.as_deref(), 2);
        let userinfo = match issuer.userinfo_url.as_deref().map(|u| (u, u.parse::<Uri>())) {
            None => None,
            Some((_, Ok(uri))) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {
                Some(crate::auth::userinfo::Userinfo::new(uri, userinfo_timeout))
            }
            Some((text, _)) => {
                problems.add(format!("{key}.userinfo_url"), format!("expected an `http://` URL, got `{text}`"));
                None
            }
        };
        if problems.0.len() > before {
            continue;
        }
        let (Some(user_claim), Some(groups_claim)) = (user_claim, groups_claim) else { continue };
        if issuer.insecure_allow_missing_exp {
            tracing::warn!(issuer = %issuer.name, "insecure_allow_missing_exp: tokens without `exp` never expire");
        }
        lines.push(format!(
            "{} ({}; algorithms {}; iss {}; aud {})",
            issuer.name,
            match &keys {
                KeySource::Jwks(_) => format!("JWKS {}", issuer.jwks_url.as_deref().unwrap_or_default()),
                KeySource::Static(_) if issuer.secret_env.is_some() => {
                    format!("secret from `{}`", issuer.secret_env.as_deref().unwrap_or_default())
                }
                KeySource::Static(ring) => format!("{} PEM key(s)", ring.len()),
            },
            issuer.algorithms.join(", "),
            issuer.issuer.as_deref().unwrap_or("any"),
            issuer.audience.as_deref().unwrap_or("not checked"),
        ));
        let settings = IssuerSettings {
            name,
            iss: issuer.issuer,
            audience: issuer.audience,
            algorithms,
            user_claim,
            groups_claim,
            leeway_seconds: leeway.as_secs(),
            allow_missing_exp: issuer.insecure_allow_missing_exp,
            max_ownership_refs: issuer.max_ownership_refs.unwrap_or(1000),
            userinfo,
            group_hierarchy: hierarchy.clone(),
        };
        issuers.push(Arc::new(Issuer::new(settings, keys)));
    }
    (issuers, lines)
}

/// Most levels of parent groups followed, unless configured.
const DEFAULT_GROUP_DEPTH: usize = 5;
/// The largest `max_depth` accepted.
const MAX_GROUP_DEPTH: usize = 32;

fn group_hierarchy(problems: &mut Problems, raw: &raw::GroupHierarchy) -> Option<Arc<GroupHierarchy>> {
    let key = "identity.group_hierarchy";
    let before = problems.0.len();
    let max_depth = raw.max_depth.unwrap_or(DEFAULT_GROUP_DEPTH);
    if !(1..=MAX_GROUP_DEPTH).contains(&max_depth) {
        problems.add(format!("{key}.max_depth"), format!("expected 1 to {MAX_GROUP_DEPTH} levels, got {max_depth}"));
    }
    let is_group = |text: &str| {
        text.strip_prefix("group:")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(namespace, name)| !namespace.is_empty() && !name.is_empty() && !name.contains('/'))
    };
    for (group, parents) in &raw.parents {
        let at = format!("{key}.parents.{group}");
        if !is_group(group) {
            problems
                .add(&at, format!("expected a group entity ref like `group:default/team-a` as the key, got `{group}`"));
        }
        if parents.is_empty() {
            problems.add(&at, "expected at least one parent group");
        }
        for (i, parent) in parents.iter().enumerate() {
            if !is_group(parent) {
                problems.add(
                    format!("{at}[{i}]"),
                    format!("expected a group entity ref like `group:default/engineering`, got `{parent}`"),
                );
            }
        }
    }
    (problems.0.len() == before).then(|| Arc::new(GroupHierarchy::new(&raw.parents, max_depth)))
}

fn algorithms(problems: &mut Problems, key: &str, issuer: &raw::Issuer) -> Vec<Algorithm> {
    if issuer.algorithms.is_empty() {
        problems.add(format!("{key}.algorithms"), "expected a non-empty list such as `[ES256]`");
    }
    let symmetric_source = issuer.secret_env.is_some();
    let mut out = Vec::new();
    for (i, name) in issuer.algorithms.iter().enumerate() {
        let alg_key = format!("{key}.algorithms[{i}]");
        let Ok(alg) = name.parse::<Algorithm>() else {
            problems.add(alg_key, format!("unknown algorithm `{name}` (expected ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, HS256, HS384 or HS512)"));
            continue;
        };
        let symmetric = matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        if symmetric != symmetric_source {
            // Never let one issuer accept both families: that is the HS/RS confusion attack.
            let expected = if symmetric_source {
                "an HMAC algorithm (HS256, HS384, HS512) for `secret_env`"
            } else {
                "a public-key algorithm for `jwks_url` or `keys` (HMAC needs `secret_env`)"
            };
            problems.add(alg_key, format!("`{name}` does not fit the key source: expected {expected}"));
            continue;
        }
        out.push(alg);
    }
    out
}

fn pem_keys(
    problems: &mut Problems,
    key: &str,
    pems: &[raw::PemKey],
    base: &Path,
    algorithms: &[Algorithm],
) -> KeyRing {
    if pems.is_empty() {
        problems.add(format!("{key}.keys"), "expected at least one `{ pem_file: … }`");
    }
    let mut keys = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let pem_key = format!("{key}.keys[{i}].pem_file");
        let file = base.join(&pem.pem_file);
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(err) => {
                problems.add(pem_key, format!("cannot read `{}`: {err}", file.display()));
                continue;
            }
        };
        let parsed = algorithms.iter().find_map(|alg| {
            let decoding = match alg {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&bytes),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&bytes),
                _ => DecodingKey::from_rsa_pem(&bytes),
            };
            decoding.ok().map(|decoding| Key { decoding, algorithm: Some(*alg) })
        });
        match parsed {
            Some(parsed) => keys.push((pem.kid.clone(), parsed)),
            None => problems.add(
                pem_key,
                format!("`{}` is not a PEM public key for any of the issuer's algorithms", file.display()),
            ),
        }
    }
    KeyRing::from_keys(keys)
}

fn claim_path(problems: &mut Problems, key: &str, text: &str) -> Option<ClaimPath> {
    let path = ClaimPath::parse(text);
    if path.is_none() {
        problems.add(key, format!("expected a claim name or dotted path such as `realm_access.roles`, got `{text}`"));
    }
    path
}

/// The config file's route groups, then each included file's; one table for all. Problems in an
/// included file name it; with includes, every rule label names its file (so a conflict names
/// both places).
fn routes(
    problems: &mut Problems,
    config_file: &str,
    own: Vec<raw::Route>,
    included: Vec<Included>,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
    unmatched: Unmatched,
    limits: &Limits,
) -> Option<RouteTable> {
    let mut specs = Vec::new();
    let mut prefixes = Vec::new();
    // Rule label → (included file, key): where a route-table problem is reported.
    let mut places: HashMap<Arc<str>, (Option<String>, String)> = HashMap::new();
    let qualify = !included.is_empty();
    let sources = std::iter::once((None, own)).chain(included.into_iter().map(|inc| (Some(inc.file), inc.routes)));
    for (file, groups) in sources {
        let mut found = Problems::default();
        let label_file = file.as_deref().or(qualify.then_some(config_file));
        let source = RouteSource { file: label_file, upstreams, limits };
        for (r, route) in groups.into_iter().enumerate() {
            for (spec, key) in route_group(&mut found, &source, r, route, &mut prefixes) {
                places.insert(spec.rule.label.clone(), (file.clone(), key));
                specs.push(spec);
            }
        }
        problems.absorb(file.as_deref(), found);
    }
    match RouteTable::build(specs, prefixes, unmatched) {
        Ok(table) => Some(table),
        Err(table_problems) => {
            for p in table_problems {
                let (file, key) = places.get(p.label.as_str()).cloned().unwrap_or((None, p.label));
                problems.0.push(Problem { file, key: format!("{key}.path"), message: p.message });
            }
            None
        }
    }
}

/// Where a group of routes comes from.
struct RouteSource<'a> {
    /// The file rule labels name (`None`: plain `routes[0].rules[1]`).
    file: Option<&'a str>,
    upstreams: &'a BTreeMap<String, Arc<Upstream>>,
    limits: &'a Limits,
}

/// Compiles `routes[r]` of one file: its prefix (pushed to `prefixes`) and its rules, each with
/// its key in the file.
fn route_group(
    problems: &mut Problems,
    source: &RouteSource<'_>,
    r: usize,
    route: raw::Route,
    prefixes: &mut Vec<PrefixSpec>,
) -> Vec<(RuleSpec, String)> {
    let (upstreams, limits) = (source.upstreams, source.limits);
    let key = format!("routes[{r}]");
    let prefix_ok = is_clean_prefix(&route.prefix);
    if !prefix_ok {
        problems.add(format!("{key}.prefix"), format!("expected a normalized path such as `/api/catalog` (starts with `/`, no trailing `/`, no `.`/`..` or empty segments, no `{{`, `%`, `;`), got `{}`", route.prefix));
    }
    let Some(upstream) = upstreams.get(&route.upstream) else {
        let known = upstreams.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        problems.add(
            format!("{key}.upstream"),
            format!(
                "unknown upstream `{}` (expected one of: {})",
                route.upstream,
                if known.is_empty() { "none configured" } else { &known }
            ),
        );
        return Vec::new();
    };
    if !prefix_ok {
        return Vec::new();
    }
    prefixes.push(PrefixSpec {
        prefix: route.prefix.clone(),
        upstream: upstream.clone(),
        max_body_bytes: limits.max_body_bytes,
        pass_preflight: matches!(route.cors_preflight, Some(raw::CorsPreflight::Pass)),
    });
    let root = if route.prefix == "/" { "" } else { route.prefix.as_str() };
    let mut specs = Vec::new();
    for (i, rule) in route.rules.into_iter().enumerate() {
        let rule_key = format!("{key}.rules[{i}]");
        let label = match source.file {
            Some(file) => format!("{file}: {rule_key}"),
            None => rule_key.clone(),
        };
        if let Some(spec) = compile_rule(problems, &rule_key, &label, rule, root, upstream, limits) {
            specs.push((spec, rule_key));
        }
    }
    specs
}

/// The first segment after `/api/` of a route prefix (`/api/catalog` → `catalog`).
fn default_plugin(prefix: &str) -> Option<String> {
    prefix.strip_prefix("/api/").and_then(|rest| rest.split('/').next()).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn is_clean_prefix(prefix: &str) -> bool {
    prefix == "/"
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains(['{', '}', '%', ';', '\\', '?', '#'])
            && prefix[1..].split('/').all(|s| !s.is_empty() && s != "." && s != ".."))
}

fn compile_rule(
    problems: &mut Problems,
    key: &str,
    label: &str,
    rule: raw::Rule,
    root: &str,
    upstream: &Arc<Upstream>,
    limits: &Limits,
) -> Option<RuleSpec> {
    let before = problems.0.len();
    let methods = rule.methods.as_ref().map(|methods| {
        if methods.is_empty() {
            problems
                .add(format!("{key}.methods"), "expected at least one method, or leave `methods` out for any method");
        }
        methods
            .iter()
            .enumerate()
            .filter_map(|(m, name)| {
                const KNOWN: [&str; 9] =
                    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
                if KNOWN.contains(&name.as_str()) {
                    Method::from_bytes(name.as_bytes()).ok()
                } else {
                    problems.add(
                        format!("{key}.methods[{m}]"),
                        format!("expected one of {}, got `{name}`", KNOWN.join(", ")),
                    );
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let path = if rule.path == "/" { String::new() } else { rule.path.clone() };
    let path_ok = path.is_empty()
        || (path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains(['%', ';', '\\', '?', '#'])
            && path[1..].split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
    if !path_ok {
        problems.add(format!("{key}.path"), format!("expected a normalized path template such as `/entities/{{uid}}` (no trailing `/`, no `.`/`..` or empty segments, no `%`, `;`, `?`), got `{}`", rule.path));
    }
    let template = if root.is_empty() && path.is_empty() { "/".to_owned() } else { format!("{root}{path}") };
    let access = access(problems, key, &rule);
    let resource_ref = rule.resource_ref.as_deref().and_then(|text| {
        if rule.resource_type.is_none() {
            problems.add(
                format!("{key}.resource_ref"),
                "needs `resource_type` (a resource ref names a resource of that type)",
            );
            return None;
        }
        RefTemplate::compile(text, &path_params(&template))
            .map_err(|err| problems.add(format!("{key}.resource_ref"), err.to_string()))
            .ok()
    });
    if problems.0.len() > before {
        return None;
    }
    Some(RuleSpec {
        methods,
        rule: Arc::new(Rule {
            label: label.into(),
            template: template.into(),
            access: access?,
            upstream: upstream.clone(),
            resource_ref,
            on_conditional: match rule.on_conditional {
                Some(raw::OnConditional::Forward) => OnConditional::Forward,
                _ => OnConditional::Deny,
            },
            max_body_bytes: rule.max_body_bytes.or(limits.max_body_bytes),
            plugin: rule.plugin.clone().or_else(|| default_plugin(root)),
        }),
    })
}

fn access(problems: &mut Problems, key: &str, rule: &raw::Rule) -> Option<Access> {
    let permission_fields = rule.permission.is_some()
        || rule.action.is_some()
        || rule.resource_type.is_some()
        || rule.resource_ref.is_some();
    match (rule.public, rule.authenticated, &rule.permission) {
        (true, true, _) => {
            problems.add(key, "`public` and `authenticated` exclude each other");
            None
        }
        (true, false, _) | (false, true, _) if permission_fields => {
            problems.add(
                key,
                "a `public` or `authenticated` rule takes no `permission`, `action`, `resource_type` or `resource_ref`",
            );
            None
        }
        (true, false, _) => Some(Access::Public),
        (false, true, _) => Some(Access::Authenticated),
        (false, false, None) => {
            problems.add(key, "expected `permission: <name>`, `public: true` or `authenticated: true`");
            None
        }
        (false, false, Some(name)) => {
            if name.is_empty() || name.contains(char::is_whitespace) {
                problems.add(
                    format!("{key}.permission"),
                    format!("expected a permission name such as `catalog.entity.read`, got `{name}`"),
                );
                return None;
            }
            let action = match rule.action.as_deref() {
                None => None,
                Some("create") => Some(Action::Create),
                Some("read") => Some(Action::Read),
                Some("update") => Some(Action::Update),
                Some("delete") => Some(Action::Delete),
                Some(other) => {
                    problems.add(
                        format!("{key}.action"),
                        format!("expected one of create, read, update, delete, got `{other}`"),
                    );
                    return None;
                }
            };
            Some(Access::Permission(match &rule.resource_type {
                Some(resource_type) => Permission::resource(name, action, resource_type),
                None => Permission::basic(name, action),
            }))
        }
    }
}

#[cfg(test)]
mod tests;
