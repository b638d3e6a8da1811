//! Backstage's permission backend API, served by the gateway itself (`permission_api`), so
//! unmodified Backstage plugins and clients can use stagedoor as their permission backend:
//!
//! - `GET {path}/health` → `{"status":"ok"}`, unauthenticated;
//! - `POST {path}/authorize` → the batch evaluation of Backstage's §2.2–2.4, answered by the
//!   same embedded policy that guards the proxied routes (one policy, two doors).
//!
//! Reads the request before the route table does; everything else under `{path}` is 404.

pub mod evaluate;
mod fast;
pub mod layer;
pub mod request;

pub use layer::{PermissionApi, PermissionApiLayer};

/// Default mount point, as Backstage's.
pub const DEFAULT_PATH: &str = "/api/permission";
/// Default body limit: express.json()'s 100 kB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 100 * 1024;

/// Settings of the permission API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Mount point, e.g. `/api/permission`.
    pub path: String,
    /// Largest `/authorize` body.
    pub max_body_bytes: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self { path: DEFAULT_PATH.into(), max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }
}
