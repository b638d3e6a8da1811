//! The plugins that own resources, and the one call stagedoor makes to them: applying the
//! conditions of a CONDITIONAL decision to named resources
//! (`POST {url}/.well-known/backstage/permissions/apply-conditions`, Backstage §3.2).
//!
//! The credential sent is a Backstage static external-access token from `token_env`, which the
//! plugin's auth layer accepts as a service principal (a user's own token would get 403).
//!
//! A plugin id with no configured URL may instead have rules registered in Rust
//! ([`local_rules`]), evaluated in process from the resource ref alone.

pub mod local_rules;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::policy::Criteria;
use local_rules::{LocalResource, LocalRules};

/// Largest apply-conditions answer accepted.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Resource types owned by Backstage's core plugins, known without configuration.
pub const CORE_RESOURCE_TYPES: [(&str, &str); 6] = [
    ("catalog-entity", "catalog"),
    ("scaffolder-template", "scaffolder"),
    ("scaffolder-action", "scaffolder"),
    ("scaffolder-task", "scaffolder"),
    ("kubernetes-cluster", "kubernetes"),
    ("kubernetes-resource", "kubernetes"),
];

/// One resource (or batch of resources) whose conditions the plugin evaluates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyItem {
    /// Echoed by the plugin.
    pub id: String,
    /// A ref, or several (answered by an array).
    pub resource_ref: serde_json::Value,
    /// The resource type.
    pub resource_type: String,
    /// The conditions.
    pub conditions: Criteria,
}

/// The plugin's answer for one item: one result per ref.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Applied {
    /// `"result": "ALLOW"`
    One(Verdict),
    /// `"result": ["ALLOW", "DENY"]`
    Many(Vec<Verdict>),
}

/// ALLOW or DENY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// ALLOW
    Allow,
    /// DENY
    Deny,
}

#[derive(Deserialize)]
struct Answer {
    items: Vec<AnswerItem>,
}

#[derive(Deserialize)]
struct AnswerItem {
    id: String,
    result: Applied,
}

/// Why conditions could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// No plugin with that id is configured.
    #[error("no plugin `{0}` is configured to apply conditions")]
    Unknown(String),
    /// The plugin answered with an error status (passed on to `/authorize` callers).
    #[error("plugin `{plugin}` answered {status} to apply-conditions")]
    Status {
        /// Plugin id.
        plugin: String,
        /// Its status.
        status: u16,
    },
    /// The plugin could not be reached or did not answer in time.
    #[error("plugin `{plugin}` is unavailable: {reason}")]
    Unavailable {
        /// Plugin id.
        plugin: String,
        /// What happened.
        reason: String,
    },
    /// The answer is not what Backstage's schema requires.
    #[error("plugin `{plugin}` sent an invalid apply-conditions answer: {reason}")]
    Invalid {
        /// Plugin id.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
}

/// A configured plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Plugin id, e.g. `catalog`.
    pub id: String,
    /// The apply-conditions URL.
    pub apply_conditions: Uri,
    /// `Authorization` value sent, if a token is configured.
    pub authorization: Option<HeaderValue>,
    /// How long the plugin has to answer.
    pub timeout: Duration,
}

/// The configured plugins, and which plugin owns each resource type.
#[derive(Debug, Clone)]
pub struct Plugins {
    by_id: HashMap<String, Plugin>,
    /// Plugin id → rules evaluated in process, for ids not in `by_id`.
    local: HashMap<String, LocalRules>,
    owners: HashMap<String, String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Plugins {
    fn default() -> Self {
        Self::new(Vec::new(), HashMap::new())
    }
}

impl Plugins {
    /// Plugins plus resource-type ownership (core types are added unless overridden).
    pub fn new(plugins: Vec<Plugin>, mut owners: HashMap<String, String>) -> Self {
        for (resource_type, plugin) in CORE_RESOURCE_TYPES {
            owners.entry(resource_type.to_owned()).or_insert_with(|| plugin.to_owned());
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { by_id: plugins.into_iter().map(|p| (p.id.clone(), p)).collect(), local: HashMap::new(), owners, client }
    }

    /// Evaluates the conditions for `plugin`'s resources in process with `rules`, when no URL
    /// is configured for it (a configured plugin is always asked instead).
    pub fn with_local_rules(mut self, plugin: &str, rules: LocalRules) -> Self {
        self.local.insert(plugin.to_owned(), rules);
        self
    }

    /// Resource type → owning plugin id.
    pub fn owners(&self) -> &HashMap<String, String> {
        &self.owners
    }

    /// True when a plugin with this id is configured, or has local rules.
    pub fn contains(&self, plugin: &str) -> bool {
        self.by_id.contains_key(plugin) || self.local.contains_key(plugin)
    }

    /// Sends one apply-conditions request with every item for `plugin`, answers in item order.
    pub async fn apply_conditions(&self, plugin: &str, items: &[ApplyItem]) -> Result<Vec<Applied>, PluginError> {
        let Some(target) = self.by_id.get(plugin) else {
            return match self.local.get(plugin) {
                Some(rules) => apply_locally(plugin, rules, items),
                None => Err(PluginError::Unknown(plugin.to_owned())),
            };
        };
        let unavailable = |reason: String| PluginError::Unavailable { plugin: plugin.to_owned(), reason };
        let invalid = |reason: String| PluginError::Invalid { plugin: plugin.to_owned(), reason };
        let body = serde_json::to_vec(&serde_json::json!({ "items": items })).map_err(|e| invalid(e.to_string()))?;
        let mut request = Request::post(target.apply_conditions.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unavailable(e.to_string()))?;
        if let Some(authorization) = &target.authorization {
            request.headers_mut().insert(header::AUTHORIZATION, authorization.clone());
        }
        let call = async {
            let response = self.client.request(request).await.map_err(|e| unavailable(e.to_string()))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes();
            Ok::<_, PluginError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(target.timeout, call)
            .await
            .map_err(|_| unavailable(format!("no answer within {:?}", target.timeout)))??;
        if !status.is_success() {
            return Err(PluginError::Status { plugin: plugin.to_owned(), status: status.as_u16() });
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let mut by_id: HashMap<String, Applied> = answer.items.into_iter().map(|i| (i.id, i.result)).collect();
        items
            .iter()
            .map(|item| by_id.remove(&item.id).ok_or_else(|| invalid(format!("no answer for item `{}`", item.id))))
            .collect()
    }
}

/// Applies `items` with rules registered in Rust; an unknown rule or bad params fail the batch.
fn apply_locally(plugin: &str, rules: &LocalRules, items: &[ApplyItem]) -> Result<Vec<Applied>, PluginError> {
    let invalid = |reason: String| PluginError::Invalid { plugin: plugin.to_owned(), reason };
    let verdict = |item: &ApplyItem, resource_ref: &serde_json::Value| {
        let resource_ref = resource_ref.as_str().ok_or_else(|| invalid("a resource ref is not a string".into()))?;
        let resource = LocalResource { resource_ref, resource_type: &item.resource_type };
        match rules.evaluate(&item.conditions, &resource) {
            Ok(true) => Ok(Verdict::Allow),
            Ok(false) => Ok(Verdict::Deny),
            Err(error) => Err(invalid(error.to_string())),
        }
    };
    items
        .iter()
        .map(|item| match &item.resource_ref {
            serde_json::Value::Array(refs) => {
                refs.iter().map(|r| verdict(item, r)).collect::<Result<Vec<_>, _>>().map(Applied::Many)
            }
            one => verdict(item, one).map(Applied::One),
        })
        .collect()
}
