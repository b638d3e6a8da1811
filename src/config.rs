//! Configuration: one YAML file (plus the route files it lists under `include:`) parsed into raw
//! serde structs, then compiled into ready domain objects (route table, issuers with keys,
//! policy) while collecting every problem.
//!
//! Errors name the file, the key path and what was expected; serde_yaml's own messages (for
//! syntax errors and unknown keys) carry line and column.

mod compile;
pub mod env;
mod include;
mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::auth::plugin_token::PluginTokens;
use crate::connection::Limits;
use crate::permission_api::ApiSettings;
use crate::plugins::Plugins;
use crate::policy::{PermissionPolicy, PolicyFileError};
use crate::proxy::ForwardSettings;
use crate::routes::{RouteTable, Unmatched};

/// A compiled configuration, ready to serve.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// Listen address (default `127.0.0.1:7000`).
    pub listen: SocketAddr,
    /// Tokio worker threads (default: one per core).
    pub worker_threads: Option<usize>,
    /// How long in-flight requests may take to finish at shutdown (default 10 s).
    pub shutdown_grace: Duration,
    /// `permission.enabled` (default `true`).
    pub permission_enabled: bool,
    /// `permission.unmatched` (default `deny`).
    pub unmatched: Unmatched,
    /// Token verification.
    pub authenticator: Arc<Authenticator>,
    /// The compiled route table.
    pub routes: Arc<RouteTable>,
    /// The policy.
    pub policy: Arc<dyn PermissionPolicy>,
    /// How requests are rewritten when forwarded.
    pub forward: ForwardSettings,
    /// Connection and request limits.
    pub limits: Limits,
    /// The permission backend API, when enabled.
    pub permission_api: Option<ApiSettings>,
    /// The plugins that apply conditions to their resources.
    pub plugins: Arc<Plugins>,
    /// Verifier of plugin tokens sent to the permission API by configured plugins.
    pub plugin_tokens: Arc<PluginTokens>,
    /// A human summary for `stagedoor check`.
    pub summary: Summary,
}

/// What `stagedoor check` prints.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One line per upstream.
    pub upstreams: Vec<String>,
    /// One line per issuer.
    pub issuers: Vec<String>,
    /// One line per included file.
    pub includes: Vec<String>,
    /// The route table, described one line per rule when displayed.
    pub routes: Option<Arc<RouteTable>>,
    /// The policy in one line.
    pub policy: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "upstreams ({}):", self.upstreams.len())?;
        for line in &self.upstreams {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "issuers ({}):", self.issuers.len())?;
        for line in &self.issuers {
            writeln!(f, "  {line}")?;
        }
        if !self.includes.is_empty() {
            writeln!(f, "include ({}):", self.includes.len())?;
            for line in &self.includes {
                writeln!(f, "  {line}")?;
            }
        }
        let lines = self.routes.as_ref().map(|routes| routes.rule_lines()).unwrap_or_default();
        writeln!(f, "rules ({}):", lines.len())?;
        for line in &lines {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "policy: {}", self.policy)
    }
}

/// One problem found while compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The included file the key is in (`None`: the config file itself).
    pub file: Option<String>,
    /// Key path inside that file, e.g. `routes[0].rules[2].upstream`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `${VAR}` is not set.
    #[error("{file}: line {line}: environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)")]
    MissingEnv {
        /// The file.
        file: String,
        /// Line of the reference.
        line: usize,
        /// Variable name.
        name: String,
    },
    /// Not valid YAML, or a key or value of the wrong shape (serde_yaml's message).
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// serde_yaml's message, with key path, line and column.
        message: String,
    },
    /// Values that do not fit together; every problem is listed, each after the file it is in.
    #[error("{}", problems.iter().map(|p| format!("{}: {p}", p.file.as_deref().unwrap_or(file))).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The config file.
        file: String,
        /// All problems.
        problems: Vec<Problem>,
    },
    /// The policy file is unusable.
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
}

impl Config {
    /// Reads, substitutes `${VAR}` from the process environment, parses and compiles `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { file: path.display().to_string(), source })?;
        Self::from_yaml(&text, path, |name| std::env::var(name).ok())
    }

    /// Compiles config text; `path` names the file in errors and anchors relative paths;
    /// `env` resolves `${VAR}`.
    pub fn from_yaml(text: &str, path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let raw: raw::Gateway = parse(text, &path.display().to_string(), &env)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        compile::gateway(raw, path, &base, &env)
    }
}

/// Substitutes `${VAR}` and parses YAML text from `file` (the config file or an included one).
fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let text = env::substitute(text, env).map_err(|missing| ConfigError::MissingEnv {
        file: file.to_owned(),
        line: missing.line,
        name: missing.name,
    })?;
    // The one place YAML is parsed (serde_yaml is archived; keep it swappable).
    serde_yaml::from_str(&text).map_err(|e| ConfigError::Syntax { file: file.to_owned(), message: e.to_string() })
}
