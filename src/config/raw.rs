//! The YAML shape of the config file, exactly as written; private to `config`.
//! Every struct refuses unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Gateway {
    #[serde(default)]
    pub(super) server: Server,
    #[serde(default)]
    pub(super) permission: Permission,
    #[serde(default)]
    pub(super) identity: Identity,
    #[serde(default)]
    pub(super) upstreams: BTreeMap<String, Upstream>,
    #[serde(default)]
    pub(super) routes: Vec<Route>,
    #[serde(default)]
    pub(super) policy: Option<Policy>,
    #[serde(default)]
    pub(super) permission_api: Option<PermissionApi>,
    #[serde(default)]
    pub(super) plugins: BTreeMap<String, Plugin>,
    /// Files holding more route groups (paths relative to the config file's folder).
    #[serde(default)]
    pub(super) include: Vec<String>,
}

/// A file listed under `include:`: route groups only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Included {
    pub(super) routes: Vec<Route>,
    /// Read only to refuse nested includes with a clear message.
    pub(super) include: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Plugin {
    pub(super) url: String,
    pub(super) token_env: Option<String>,
    #[serde(default)]
    pub(super) resource_types: Vec<String>,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PermissionApi {
    #[serde(default)]
    pub(super) enabled: bool,
    pub(super) path: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Server {
    pub(super) listen: Option<String>,
    pub(super) worker_threads: Option<usize>,
    pub(super) shutdown_grace: Option<String>,
    #[serde(default)]
    pub(super) trusted_proxies: Vec<String>,
    #[serde(default)]
    pub(super) limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Limits {
    pub(super) header_read_timeout: Option<String>,
    pub(super) max_header_bytes: Option<usize>,
    pub(super) max_headers: Option<usize>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) max_connections: Option<usize>,
    pub(super) http2_max_concurrent_streams: Option<u32>,
    pub(super) http2_max_pending_accept_reset_streams: Option<usize>,
    pub(super) http2_max_local_error_reset_streams: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Permission {
    pub(super) enabled: Option<bool>,
    pub(super) unmatched: Option<Unmatched>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Unmatched {
    Deny,
    Allow,
    Authenticated,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Identity {
    #[serde(default)]
    pub(super) issuers: Vec<Issuer>,
    #[serde(default)]
    pub(super) headers: IdentityHeaders,
    pub(super) max_token_bytes: Option<usize>,
    #[serde(default)]
    pub(super) token_cache: TokenCache,
    pub(super) group_hierarchy: Option<GroupHierarchy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupHierarchy {
    pub(super) max_depth: Option<usize>,
    #[serde(default)]
    pub(super) parents: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenCache {
    pub(super) max_entries: Option<usize>,
    pub(super) max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityHeaders {
    pub(super) user: Option<String>,
    pub(super) ownership: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Issuer {
    pub(super) name: String,
    pub(super) jwks_url: Option<String>,
    pub(super) keys: Option<Vec<PemKey>>,
    pub(super) secret_env: Option<String>,
    #[serde(default)]
    pub(super) algorithms: Vec<String>,
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) user_claim: Option<String>,
    pub(super) groups_claim: Option<String>,
    pub(super) leeway: Option<String>,
    #[serde(default)]
    pub(super) insecure_allow_missing_exp: bool,
    pub(super) max_ownership_refs: Option<usize>,
    pub(super) jwks_refresh_interval: Option<String>,
    pub(super) jwks_unknown_kid_wait: Option<String>,
    pub(super) jwks_min_refetch_interval: Option<String>,
    #[serde(default)]
    pub(super) jwks_required_at_start: bool,
    pub(super) userinfo_url: Option<String>,
    pub(super) userinfo_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PemKey {
    pub(super) pem_file: String,
    pub(super) kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Upstream {
    pub(super) url: String,
    pub(super) timeout: Option<String>,
    /// `http1` (default) or `http2` (cleartext, prior knowledge).
    pub(super) protocol: Option<UpstreamProtocol>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum UpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Route {
    pub(super) prefix: String,
    pub(super) upstream: String,
    #[serde(default)]
    pub(super) rules: Vec<Rule>,
    pub(super) cors_preflight: Option<CorsPreflight>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum CorsPreflight {
    Authenticate,
    Pass,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rule {
    pub(super) methods: Option<Vec<String>>,
    pub(super) path: String,
    pub(super) permission: Option<String>,
    pub(super) action: Option<String>,
    pub(super) resource_type: Option<String>,
    pub(super) resource_ref: Option<String>,
    #[serde(default)]
    pub(super) public: bool,
    #[serde(default)]
    pub(super) authenticated: bool,
    pub(super) on_conditional: Option<OnConditional>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) plugin: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum OnConditional {
    Deny,
    Forward,
}

/// `policy: allow-all` or `policy: { file: policy.yaml }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Policy {
    Named(String),
    File(PolicyFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub(super) file: String,
}
