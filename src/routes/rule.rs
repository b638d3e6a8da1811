//! A compiled route rule: what a matched request needs before it may be forwarded.

use std::sync::Arc;

use crate::policy::Permission;
use crate::proxy::Upstream;

use super::template::RefTemplate;

/// What a rule demands of the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// No token, no policy (`public: true`).
    Public,
    /// Any valid token, no policy (`authenticated: true`).
    Authenticated,
    /// A valid token and a policy decision on this permission.
    Permission(Permission),
}

impl Access {
    /// `public`, `authenticated`, or the permission with its resource type.
    pub fn describe(&self) -> String {
        match self {
            Access::Public => "public".into(),
            Access::Authenticated => "authenticated".into(),
            Access::Permission(p) => match &p.resource_type {
                Some(rt) => format!("{} ({rt})", p.name),
                None => p.name.to_string(),
            },
        }
    }
}

/// What the proxy does with a CONDITIONAL decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConditional {
    /// Refuse with 403 (default).
    #[default]
    Deny,
    /// Forward, leaving the conditions to the backend.
    Forward,
}

/// One compiled rule of the route table.
#[derive(Debug)]
pub struct Rule {
    /// Where the rule came from, e.g. `routes[0].rules[2]` (with `include:`, prefixed by its
    /// file: `config/presets/catalog.yaml: routes[0].rules[2]`), for logs and summaries.
    pub label: Arc<str>,
    /// The full path template, prefix included.
    pub template: Arc<str>,
    /// What the caller needs.
    pub access: Access,
    /// Where an allowed request goes.
    pub upstream: Arc<Upstream>,
    /// Resource ref template built from path parameters.
    pub resource_ref: Option<RefTemplate>,
    /// What to do with a CONDITIONAL decision.
    pub on_conditional: OnConditional,
    /// Largest request body forwarded (`None`: unlimited); larger → 413.
    pub max_body_bytes: Option<u64>,
    /// The plugin that owns the rule's resources (`plugin:`, default: the first segment after
    /// `/api/` of the route prefix), asked to apply CONDITIONAL decisions.
    pub plugin: Option<String>,
}
