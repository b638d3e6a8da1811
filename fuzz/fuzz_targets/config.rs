//! Configuration and policy files.
//!
//! Input: arbitrary bytes as YAML text (when UTF-8). `Config::from_yaml` (with an env lookup that
//! knows no variable) and `YamlPolicy::from_yaml` must never panic. When a configuration or a
//! policy compiles, it is used a little: its summary is printed, a few requests are routed, and
//! the policy decides a few permissions for a few principals.
//!
//! A config can name files (`pem_file`, `policy.file`); relative names resolve against
//! `/stagedoor-fuzz-nonexistent/`, so they never exist. An input that names an existing file that
//! is not a small regular file (`/dev/zero`, a FIFO, `/proc/…`) is skipped: reading it would hang
//! or exhaust memory, which is the input's doing, not a stagedoor bug.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use http::{Method, Request, header};
use libfuzzer_sys::fuzz_target;
use serde_yaml::Value;
use stagedoor::config::Config;
use stagedoor::identity::Principal;
use stagedoor::policy::{Action, Permission, PolicyDecision, YamlPolicy};
use stagedoor::routes::layer::route;

const BASE: &str = "/stagedoor-fuzz-nonexistent";

/// True when some string in the document is the absolute path of an existing file that
/// is not a regular file of at most 1 MiB.
fn names_unsafe_file(value: &Value) -> bool {
    match value {
        Value::String(s) => {
            let path = Path::new(s);
            path.is_absolute() && std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() || meta.len() > 1 << 20)
        }
        Value::Sequence(items) => items.iter().any(names_unsafe_file),
        Value::Mapping(map) => map.iter().any(|(k, v)| names_unsafe_file(k) || names_unsafe_file(v)),
        Value::Tagged(tagged) => names_unsafe_file(&tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn principals() -> &'static [Principal] {
    static PRINCIPALS: OnceLock<Vec<Principal>> = OnceLock::new();
    PRINCIPALS.get_or_init(|| {
        vec![
            Principal::new("user:default/jane".into(), vec!["group:default/team-a".into()], "fuzz".into()),
            Principal::new("user:default/root".into(), vec!["group:default/admins".into()], "fuzz".into()),
            Principal::new("user:default/nobody".into(), Vec::new(), "fuzz".into()),
        ]
    })
}

fn permissions() -> &'static [Permission] {
    static PERMISSIONS: OnceLock<Vec<Permission>> = OnceLock::new();
    PERMISSIONS.get_or_init(|| {
        vec![
            Permission::basic("catalog.entity.read", Some(Action::Read)),
            Permission::basic("catalog.location.create", Some(Action::Create)),
            Permission::resource("catalog.entity.delete", Some(Action::Delete), "catalog-entity"),
            Permission::resource("catalog.entity.update", Some(Action::Update), "catalog-entity"),
            Permission::basic("app.admin", None),
        ]
    })
}

fn exercise_policy(policy: &YamlPolicy) {
    let _ = policy.summary();
    for permission in permissions() {
        for principal in principals() {
            let decision = policy.decide(permission, principal);
            if let PolicyDecision::Conditional(conditional) = &decision {
                // What is sent on to Backstage-style consumers must serialize.
                let _ = serde_json::to_string(conditional);
            }
        }
    }
}

fn exercise_config(config: &Config) {
    let _ = config.summary.to_string();
    for target in ["/", "/api/catalog/entities/by-name/component/default/x", "/api/app/items/1", "/a/b/../c"] {
        for method in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
            if let Ok(req) = Request::builder().method(method).uri(target).header(header::HOST, "gateway.test").body(())
            {
                let _ = route(&config.routes, &req);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    // The text Config::from_yaml will parse: skip inputs that point it at unsafe files.
    if let Ok(substituted) = stagedoor::config::env::substitute(text, |_| None) {
        if serde_yaml::from_str::<Value>(&substituted).is_ok_and(|doc| names_unsafe_file(&doc)) {
            return;
        }
    }

    let path = Path::new(BASE).join("gateway.yaml");
    match Config::from_yaml(text, &path, |_| None) {
        Ok(config) => exercise_config(&config),
        // Rendering every error must not panic either.
        Err(err) => {
            let _ = err.to_string();
        }
    }

    match YamlPolicy::from_yaml(text, &Path::new(BASE).join("policy.yaml")) {
        Ok(policy) => exercise_policy(&policy),
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
