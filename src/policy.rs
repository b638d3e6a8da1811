//! Stage 3: (principal, permission) → decision.
//!
//! Reads the [`Principal`](crate::identity::Principal) that authentication produced and the
//! [`Permission`] the matched route names, and answers with Backstage's three results:
//! [`PolicyDecision::Allow`], [`PolicyDecision::Deny`] or [`PolicyDecision::Conditional`]
//! (criteria the owning plugin applies to the resource).
//!
//! Two policies ship here:
//! - [`AllowAllPolicy`], which allows everything, like Backstage's allow-all policy module;
//! - [`YamlPolicy`], loaded from a YAML file of super users and roles. It is indexed at
//!   load time, so a decision costs the same with 10 roles or 10,000, and it denies by
//!   default.
//!
//! Every policy implements [`PermissionPolicy`]; the pure core of the YAML policy is the
//! synchronous, infallible [`YamlPolicy::decide`].

mod allow_all;
mod compile;
mod conditions;
mod decision;
mod engine;
mod error;
mod file;
mod index;
pub mod layer;
mod permission;
mod plugin_id;
mod rbac;
mod request;

pub use allow_all::AllowAllPolicy;
pub use decision::{Condition, ConditionalDecision, Criteria, PolicyDecision};
pub use engine::{PolicySummary, YamlPolicy};
pub use error::{PolicyFileError, PolicyProblem};
pub use layer::{Authorize, AuthorizeLayer, Permit};
pub use permission::{Action, Permission};
pub use plugin_id::plugin_id_for_resource_type;
pub use request::{PermissionPolicy, PolicyQuery};

#[cfg(test)]
mod tests;
