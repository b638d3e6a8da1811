//! The RBAC plugin's conditional policies file: YAML documents of `{result: CONDITIONAL,
//! roleEntityRef, pluginId, resourceType, permissionMapping, conditions}`, compiled into the
//! roles of [`Rbac`].
//!
//! Problems are recorded as `document N (line L)` plus the key path inside the document, L
//! being the line the document starts on. As in the plugin, the role must exist (here: be
//! named by the CSV), and one role holds at most one policy per resource type, action and
//! permission; an overlap is a load error rather than the plugin's DENY at decision time.

use serde_json::Value;

use super::{ConditionalPolicy, Mapping, Rbac, RbacAction, check_role};
use crate::policy::conditions::CriteriaTemplate;
use crate::policy::error::Problems;
use crate::policy::file::{RawConditionalPolicy, parse_conditional_documents};

/// Compiles every document of `text` into `rbac`. `Err` is a YAML syntax error (with its
/// document); rule problems go to `problems`.
pub(super) fn compile(text: &str, have_csv: bool, rbac: &mut Rbac, problems: &mut Problems) -> Result<(), String> {
    let documents = parse_conditional_documents(text).map_err(|(n, message)| format!("document {n}: {message}"))?;
    let starts = document_lines(text);
    for (i, document) in documents.into_iter().enumerate() {
        let Some(raw) = document else { continue };
        let n = i + 1;
        let at = match starts.get(i) {
            Some(line) => format!("document {n} (line {line})"),
            None => format!("document {n}"),
        };
        policy(raw, n, &at, have_csv, rbac, problems);
    }
    Ok(())
}

/// One document.
fn policy(
    raw: RawConditionalPolicy,
    document: usize,
    at: &str,
    have_csv: bool,
    rbac: &mut Rbac,
    problems: &mut Problems,
) {
    let before = problems.len();
    match raw.result.as_deref() {
        Some("CONDITIONAL") => {}
        Some(other) => problems.push(format!("{at}.result"), format!("expected `CONDITIONAL`, got `{other}`")),
        None => problems.push(at, "missing `result: CONDITIONAL`"),
    }
    let role = required(raw.role_entity_ref, "roleEntityRef", "a role ref like `role:default/team-a`", at, problems);
    if let Some(role) = &role {
        if let Err(message) = check_role(role) {
            problems.push(format!("{at}.roleEntityRef"), message);
        } else if !rbac.role_ids.contains_key(role.as_str()) {
            let why = if have_csv {
                "is not in `rbac_csv_file` (give it members with `g` lines there)"
            } else {
                "has no members: add `rbac_csv_file` with `g` lines binding users or groups to it"
            };
            problems.push(format!("{at}.roleEntityRef"), format!("role `{role}` {why}"));
        }
    }
    let plugin_id = required(raw.plugin_id, "pluginId", "a plugin id like `catalog`", at, problems);
    let resource_type =
        required(raw.resource_type, "resourceType", "a resource type like `catalog-entity`", at, problems);
    let mapping = mapping(raw.permission_mapping, &format!("{at}.permissionMapping"), problems);
    let criteria = match raw.conditions {
        Some(conditions) => CriteriaTemplate::compile(
            conditions,
            resource_type.as_deref().unwrap_or_default(),
            &format!("{at}.conditions"),
            problems,
        ),
        None => {
            problems.push(at, "missing `conditions`");
            None
        }
    };
    let (Some(role), Some(plugin_id), Some(resource_type), Some(mapping), Some(criteria)) =
        (role, plugin_id, resource_type, mapping, criteria)
    else {
        return;
    };
    if problems.len() != before {
        return;
    }
    let id = rbac.role_id(&role);
    let policies = rbac.roles[id].conditional.entry(resource_type.as_str().into()).or_default();
    for earlier in policies.iter() {
        if let Some(shared) = earlier.overlaps(&mapping) {
            let what = match &shared.name {
                Some(name) => format!("`{name}`"),
                None => format!("action `{}`", action_name(shared.action)),
            };
            problems.push(
                format!("{at}.permissionMapping"),
                format!(
                    "overlaps document {} for role `{role}` and resource type `{resource_type}` on {what} \
                     (a role has at most one conditional policy per permission)",
                    earlier.document
                ),
            );
            return;
        }
    }
    policies.push(ConditionalPolicy { plugin_id: plugin_id.into(), mapping, criteria, document });
    rbac.conditional_policies += 1;
}

/// A required, non-empty string field.
fn required(value: Option<String>, key: &str, expected: &str, at: &str, problems: &mut Problems) -> Option<String> {
    match value {
        Some(value) if !value.trim().is_empty() => Some(value),
        Some(_) => {
            problems.push(format!("{at}.{key}"), format!("expected {expected}"));
            None
        }
        None => {
            problems.push(at, format!("missing `{key}` ({expected})"));
            None
        }
    }
}

/// `permissionMapping`: non-empty; action names or `{name, action}` maps.
fn mapping(raw: Option<Vec<Value>>, at: &str, problems: &mut Problems) -> Option<Vec<Mapping>> {
    const EXPECTED: &str = "expected an action (`create`, `read`, `update`, `delete`, `use`) or `{name, action}`";
    let Some(items) = raw.filter(|items| !items.is_empty()) else {
        problems.push(
            at,
            "expected a non-empty list of actions (`create`, `read`, `update`, `delete`, `use`) or `{name, action}` maps",
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let parsed = match item {
            Value::String(action) => RbacAction::parse(action).map(|action| Mapping { name: None, action }),
            Value::Object(map) if map.keys().all(|k| k == "name" || k == "action") => {
                match (map.get("name").and_then(Value::as_str), map.get("action").and_then(Value::as_str)) {
                    (Some(name), Some(action)) if !name.trim().is_empty() => {
                        RbacAction::parse(action).map(|action| Mapping { name: Some(name.into()), action })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match parsed {
            Some(mapping) => out.push(mapping),
            None => {
                problems.push(at, format!("{EXPECTED}, got `{item}`"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn action_name(action: RbacAction) -> &'static str {
    match action {
        RbacAction::Create => "create",
        RbacAction::Read => "read",
        RbacAction::Update => "update",
        RbacAction::Delete => "delete",
        RbacAction::Use => "use",
    }
}

/// The line (from 1) each document starts on: the first line, and each `---` marker.
/// A marker with nothing but comments and blank lines before it starts the first document.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    let mut content_seen = false;
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            if content_seen {
                starts.push(i + 1);
            } else {
                starts[0] = i + 1;
                content_seen = true;
            }
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            content_seen = true;
        }
    }
    starts
}
