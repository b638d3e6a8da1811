//! Shared fixtures of the stagedoor fuzz targets: the fixed configurations (compiled once per
//! process), the HS256 secret they read through `secret_env`, and one current-thread tokio
//! runtime per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stagedoor::config::Config;

/// Name of the variable that `secret_env` reads in the fixed configurations.
pub const SECRET_ENV: &str = "FUZZ_HS_SECRET";
/// The HS256 secret (at least 32 bytes, as stagedoor requires).
pub const SECRET: &str = "stagedoor-fuzz-secret-0123456789-abcdefghijklmnop";

/// The env lookup of the fixed configurations: only [`SECRET_ENV`] is set.
pub fn env_lookup(name: &str) -> Option<String> {
    (name == SECRET_ENV).then(|| SECRET.to_owned())
}

/// `tests/fixtures` of the main repository, as an absolute path.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// One PEM fixture by name, as an absolute path string for a YAML config.
pub fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// The process's current-thread runtime, created once.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("cannot build the tokio runtime: {err}"))
    })
}

/// Compiles a fixed configuration; a fixed configuration that does not compile is a harness bug.
pub fn compile(name: &str, yaml: &str) -> Config {
    // The path only names the file in errors (and anchors relative paths, which these configs
    // do not use).
    let path = Path::new("/stagedoor-fuzz").join(name);
    Config::from_yaml(yaml, &path, env_lookup)
        .unwrap_or_else(|err| panic!("fixed fuzz config `{name}` does not compile: {err}"))
}

/// Set `STAGEDOOR_FUZZ_TOLERATE=<id>[,<id>…]` to keep fuzzing past a known, already reported
/// invariant violation (ids are named in each target's assertions). Default: every check is on.
pub fn tolerated(id: &str) -> bool {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("STAGEDOOR_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|known| known == id)
}
