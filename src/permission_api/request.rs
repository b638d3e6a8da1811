//! Parsing and validating an `/authorize` body exactly as Backstage's zod schema does
//! (`evaluatePermissionRequestBatchSchema`): required `attributes`, the action enum, no
//! `resourceRef` on basic permissions, non-empty `resourceRef` arrays, unknown keys ignored.
//! Problems are reported as zod-style issues (`code`, `path`, `message`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::policy::{Action, Permission};

/// One item to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Echoed in the answer.
    pub id: String,
    /// The permission.
    pub permission: Permission,
    /// The resource ref(s), if any.
    pub resource_ref: Option<ResourceRef>,
}

/// A single ref, or the batched form (an array answered by an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceRef {
    /// `"resourceRef": "component:default/x"`
    One(String),
    /// `"resourceRef": ["a", "b"]` (non-empty)
    Many(Vec<String>),
}

/// A zod-style validation issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// Issue code (`invalid_type`, `invalid_enum_value`, `too_small`, `unrecognized_keys`…).
    pub code: &'static str,
    /// Where, as a path of keys and indexes.
    pub path: Vec<Value>,
    /// What is wrong.
    pub message: String,
}

fn issue(code: &'static str, path: &[Value], message: impl Into<String>) -> Issue {
    Issue { code, path: path.to_vec(), message: message.into() }
}

/// Parses a body; on failure returns every issue found.
pub fn parse(body: &Value) -> Result<Vec<Item>, Vec<Issue>> {
    let mut issues = Vec::new();
    let Some(items) = body.get("items") else {
        return Err(vec![issue("invalid_type", &[Value::from("items")], "Required")]);
    };
    let Some(items) = items.as_array() else {
        return Err(vec![issue("invalid_type", &[Value::from("items")], "Expected array")]);
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = [Value::from("items"), Value::from(i)];
        match parse_item(item, &at) {
            Ok(item) => parsed.push(item),
            Err(mut found) => issues.append(&mut found),
        }
    }
    if issues.is_empty() { Ok(parsed) } else { Err(issues) }
}

fn parse_item(item: &Value, at: &[Value]) -> Result<Item, Vec<Issue>> {
    let mut issues = Vec::new();
    let Some(object) = item.as_object() else {
        return Err(vec![issue("invalid_type", at, "Expected object")]);
    };
    let path = |key: &str| [at, &[Value::from(key)]].concat();
    let id = match object.get("id") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => {
            issues.push(issue("invalid_type", &path("id"), "Expected string"));
            None
        }
        None => {
            issues.push(issue("invalid_type", &path("id"), "Required"));
            None
        }
    };
    let permission = match object.get("permission") {
        Some(Value::Object(p)) => permission(p, &path("permission"), &mut issues),
        Some(_) => {
            issues.push(issue("invalid_type", &path("permission"), "Expected object"));
            None
        }
        None => {
            issues.push(issue("invalid_type", &path("permission"), "Required"));
            None
        }
    };
    // zod's `.optional()` admits a missing key only: JSON `null` is a value, refused below.
    let resource_ref = match object.get("resourceRef") {
        None => None,
        Some(Value::String(r)) => Some(ResourceRef::One(r.clone())),
        Some(Value::Array(refs)) if refs.is_empty() => {
            issues.push(issue("too_small", &path("resourceRef"), "Array must contain at least 1 element(s)"));
            None
        }
        Some(Value::Array(refs)) => {
            let strings: Vec<String> = refs.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect();
            if strings.len() != refs.len() {
                issues.push(issue("invalid_type", &path("resourceRef"), "Expected string"));
            }
            Some(ResourceRef::Many(strings))
        }
        Some(_) => {
            issues.push(issue("invalid_union", &path("resourceRef"), "Expected string or array of strings"));
            None
        }
    };
    if let (Some(p), Some(_)) = (&permission, &resource_ref) {
        if !p.is_resource() {
            issues.push(issue(
                "invalid_union",
                &path("resourceRef"),
                "A basic permission cannot have a resourceRef (expected undefined)",
            ));
        }
    }
    match (id, permission, issues.is_empty()) {
        (Some(id), Some(permission), true) => Ok(Item { id, permission, resource_ref }),
        _ => Err(issues),
    }
}

fn permission(p: &Map<String, Value>, at: &[Value], issues: &mut Vec<Issue>) -> Option<Permission> {
    let path = |key: &str| [at, &[Value::from(key)]].concat();
    let name = match p.get("name") {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(_) => {
            issues.push(issue("invalid_type", &path("name"), "Expected string"));
            None
        }
        None => {
            issues.push(issue("invalid_type", &path("name"), "Required"));
            None
        }
    };
    let action = match p.get("attributes") {
        Some(Value::Object(attributes)) => {
            match attributes.get("action") {
                // Missing only; `null` is refused as zod's `.optional()` refuses it.
                None => Some(None),
                Some(Value::String(action)) => match action.as_str() {
                    "create" => Some(Some(Action::Create)),
                    "read" => Some(Some(Action::Read)),
                    "update" => Some(Some(Action::Update)),
                    "delete" => Some(Some(Action::Delete)),
                    other => {
                        issues.push(issue(
                        "invalid_enum_value",
                        &[at, &[Value::from("attributes"), Value::from("action")]].concat(),
                        format!("Invalid enum value. Expected 'create' | 'read' | 'update' | 'delete', received '{other}'"),
                    ));
                        None
                    }
                },
                Some(_) => {
                    issues.push(issue(
                        "invalid_type",
                        &[at, &[Value::from("attributes"), Value::from("action")]].concat(),
                        "Expected string",
                    ));
                    None
                }
            }
        }
        Some(_) => {
            issues.push(issue("invalid_type", &path("attributes"), "Expected object"));
            None
        }
        None => {
            issues.push(issue("invalid_type", &path("attributes"), "Required"));
            None
        }
    };
    let kind = match p.get("type") {
        Some(Value::String(kind)) if kind == "basic" || kind == "resource" => Some(kind.as_str()),
        Some(_) => {
            issues.push(issue("invalid_union_discriminator", &path("type"), "Expected 'basic' | 'resource'"));
            None
        }
        None => {
            issues.push(issue("invalid_type", &path("type"), "Required"));
            None
        }
    };
    let resource_type = match (kind, p.get("resourceType")) {
        (Some("resource"), Some(Value::String(rt))) => Some(Some(rt.as_str())),
        (Some("resource"), _) => {
            issues.push(issue("invalid_type", &path("resourceType"), "Required"));
            None
        }
        _ => Some(None),
    };
    match (name, action, kind, resource_type) {
        (Some(name), Some(action), Some(_), Some(Some(rt))) => Some(Permission::resource(name, action, rt)),
        (Some(name), Some(action), Some(_), Some(None)) => Some(Permission::basic(name, action)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn codes(body: Value) -> Vec<(&'static str, Value)> {
        parse(&body).unwrap_err().into_iter().map(|i| (i.code, Value::from(i.path))).collect()
    }

    #[test]
    fn parses_basic_resource_and_batched_items_ignoring_unknown_keys() {
        let body = json!({"items": [
            {"id": "1", "permission": {"type": "basic", "name": "catalog.location.read", "attributes": {"action": "read"}}, "extra": 1},
            {"id": "2", "permission": {"type": "resource", "name": "catalog.entity.delete", "attributes": {}, "resourceType": "catalog-entity"}, "resourceRef": "component:default/x"},
            {"id": "3", "permission": {"type": "resource", "name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"}, "resourceRef": ["a", "b"]},
        ]});
        let items = parse(&body).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].permission, Permission::basic("catalog.location.read", Some(Action::Read)));
        assert_eq!(items[1].resource_ref, Some(ResourceRef::One("component:default/x".into())));
        assert_eq!(items[2].resource_ref, Some(ResourceRef::Many(vec!["a".into(), "b".into()])));
        assert!(parse(&json!({"items": []})).unwrap().is_empty());
    }

    #[test]
    fn reports_what_zod_reports() {
        assert_eq!(codes(json!({})), vec![("invalid_type", json!(["items"]))]);
        let basic_with_ref = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {}}, "resourceRef": "r"}]});
        assert_eq!(codes(basic_with_ref), vec![("invalid_union", json!(["items", 0, "resourceRef"]))]);
        let no_attributes = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x"}}]});
        assert_eq!(codes(no_attributes), vec![("invalid_type", json!(["items", 0, "permission", "attributes"]))]);
        let bad_action = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {"action": "erase"}}}]});
        assert_eq!(
            codes(bad_action),
            vec![("invalid_enum_value", json!(["items", 0, "permission", "attributes", "action"]))]
        );
        let empty_refs = json!({"items": [{"id": "1", "permission": {"type": "resource", "name": "x", "attributes": {}, "resourceType": "t"}, "resourceRef": []}]});
        assert_eq!(codes(empty_refs), vec![("too_small", json!(["items", 0, "resourceRef"]))]);
        let no_id = json!({"items": [{"permission": {"type": "basic", "name": "x", "attributes": {}}}]});
        assert_eq!(codes(no_id), vec![("invalid_type", json!(["items", 0, "id"]))]);
        let no_resource_type =
            json!({"items": [{"id": "1", "permission": {"type": "resource", "name": "x", "attributes": {}}}]});
        assert_eq!(codes(no_resource_type), vec![("invalid_type", json!(["items", 0, "permission", "resourceType"]))]);
    }

    /// Caught by the `authorize_body` fuzz target's zod check (on hand-written inputs, kept in
    /// fuzz/regressions/authorize_body/null-*): `null` was taken for a missing `resourceRef` or
    /// `action`, but zod's `.optional()` admits `undefined` only, so Backstage answers 400.
    #[test]
    fn null_is_not_a_missing_key() {
        let basic_null_ref = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {}}, "resourceRef": null}]});
        assert_eq!(codes(basic_null_ref), vec![("invalid_union", json!(["items", 0, "resourceRef"]))]);
        let resource_null_ref = json!({"items": [{"id": "1", "permission": {"type": "resource", "name": "x", "attributes": {}, "resourceType": "t"}, "resourceRef": null}]});
        assert_eq!(codes(resource_null_ref), vec![("invalid_union", json!(["items", 0, "resourceRef"]))]);
        let null_action = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "x", "attributes": {"action": null}}}]});
        assert_eq!(
            codes(null_action),
            vec![("invalid_type", json!(["items", 0, "permission", "attributes", "action"]))]
        );
    }
}
