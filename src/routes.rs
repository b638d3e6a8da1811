//! Stage 1: normalize the path and select the rule that decides the request.
//!
//! Reads the request's method and path; adds a [`RouteMatch`] extension holding the rule,
//! the resource ref built from path parameters, and the exact path and query that will be
//! forwarded. Emits 400 `InputError` for paths it refuses to decide on and 404
//! `NotFoundError` when no rule matches and `permission.unmatched` is `deny`.

pub mod layer;
pub mod path;
pub mod rule;
pub mod table;
pub mod template;
pub mod tree;

use std::sync::Arc;

use http::uri::PathAndQuery;

pub use layer::{MatchRoute, MatchRouteLayer};
pub use rule::{Access, OnConditional, Rule};
pub use table::{PrefixSpec, RouteTable, RuleSpec, TableProblem, Unmatched};
pub use template::RefTemplate;

/// The rule that decides a request, added to its extensions by [`MatchRoute`].
#[derive(Debug, Clone)]
pub struct RouteMatch {
    /// The deciding rule.
    pub rule: Arc<Rule>,
    /// The resource ref, when the rule builds one.
    pub resource_ref: Option<String>,
    /// The normalized path plus the original query: exactly what the upstream receives.
    pub forward_path: PathAndQuery,
}
