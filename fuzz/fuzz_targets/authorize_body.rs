//! The permission API's `/authorize` body.
//!
//! Input: arbitrary bytes as the request body, read as the layer reads it: the fast path
//! (`permission_api::fast::parse`, typed deserialization), and when it declines, the full
//! validation (`serde_json::from_slice`, then `permission_api::request::parse`).
//! Checks:
//! - nothing panics; a body that is not JSON gives a non-empty message;
//! - whenever the fast path accepts a body, it is JSON (`[fast-json]`), and the full validation
//!   accepts it too and yields the same items (`[fast]`), as `fast.rs` promises; when `fast` is
//!   tolerated, the checks below go on with the full validation's result;
//! - `[count]` an accepted body yields exactly one item per element of its `items` array, in order;
//! - `[fields]` each accepted item carries the element's `id` and `permission.name` strings
//!   unchanged (they may be empty: Backstage's `z.string()` accepts `""`), its action, its type
//!   (`resource` ⇔ a resource type, equal to `resourceType`) and its `resourceRef` (a string, or
//!   a non-empty array of strings, only on a resource permission);
//! - `[roundtrip]` the items written back as a canonical body parse to the same items;
//! - `[message]` a rejected body gives at least one issue, every issue a non-empty message and a
//!   path under `items`, and the 400 message the layer builds from them is non-empty;
//! - `[zod]` the parser accepts exactly the bodies Backstage's zod schema
//!   (`evaluatePermissionRequestBatchSchema`, restated independently below) accepts;
//! - `[evaluate]` an accepted batch, evaluated with the allow-all policy, answers one `ALLOW` per
//!   item with the ids in order (plugin caller), and a direct caller is refused exactly when a
//!   resource permission has no `resourceRef`.
//!
//! Assertion ids for STAGEDOOR_FUZZ_TOLERATE: `fast-json`, `fast`, `count`, `fields`, `roundtrip`, `message`,
//! `zod`, `evaluate`.
//!
//! `permission_api::fast` is private to stagedoor, so its source file is compiled into this
//! target as is (`#[path]`), next to the `request` and `policy` names it imports; no change to
//! stagedoor is needed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use stagedoor::identity::Principal;
use stagedoor::permission_api::evaluate::{DIRECT_WITHOUT_REF, EvaluateError, evaluate};
use stagedoor::permission_api::request::{Item, ResourceRef, parse};
use stagedoor::plugins::Plugins;
use stagedoor::policy::{Action, AllowAllPolicy};
use stagedoor_fuzz::{runtime, tolerated};

/// What `fast.rs` imports as `super::request` (its parent here is the crate root).
use stagedoor::permission_api::request;

/// What `fast.rs` imports as `crate::policy`.
mod policy {
    pub(crate) use stagedoor::policy::{Action, Permission};
}

/// `src/permission_api/fast.rs`, compiled into this target.
#[path = "../../src/permission_api/fast.rs"]
mod fast;

/// Fails check `id` unless it is tolerated.
macro_rules! check {
    ($id:literal, $cond:expr, $($msg:tt)+) => {
        if !$cond && !tolerated($id) {
            panic!("[{}] {}", $id, format!($($msg)+));
        }
    };
}

/// Backstage's schema, restated from its source (plugin-permission-backend `router.ts`):
///
/// ```ts
/// attributes = z.object({ action: z.union([literal create|read|update|delete]).optional() })
/// basic      = z.object({ type: z.literal('basic'), name: z.string(), attributes })
/// resource   = z.object({ type: z.literal('resource'), name: z.string(), attributes, resourceType: z.string() })
/// item = z.union([
///   z.object({ id: z.string(), resourceRef: z.undefined().optional(), permission: basic }),
///   z.object({ id: z.string(), resourceRef: z.union([z.string(), z.array(z.string()).nonempty()]).optional(),
///              permission: resource }),
/// ])
/// body = z.object({ items: z.array(item) })     // unknown keys are stripped, never an error
/// ```
///
/// `.optional()` admits a missing key (undefined) only; JSON `null` is not undefined.
fn zod_accepts(body: &Value) -> bool {
    let Some(items) = body.as_object().and_then(|b| b.get("items")).and_then(Value::as_array) else {
        return false;
    };
    items.iter().all(zod_item)
}

fn zod_item(item: &Value) -> bool {
    let Some(item) = item.as_object() else { return false };
    if !item.get("id").is_some_and(Value::is_string) {
        return false;
    }
    let Some(permission) = item.get("permission").and_then(Value::as_object) else { return false };
    let common = permission.get("name").is_some_and(Value::is_string) && zod_attributes(permission);
    let resource_ref = item.get("resourceRef");
    match permission.get("type").and_then(Value::as_str) {
        Some("basic") => common && resource_ref.is_none(),
        Some("resource") => {
            common
                && permission.get("resourceType").is_some_and(Value::is_string)
                && match resource_ref {
                    None | Some(Value::String(_)) => true,
                    Some(Value::Array(refs)) => !refs.is_empty() && refs.iter().all(Value::is_string),
                    Some(_) => false,
                }
        }
        _ => false,
    }
}

fn zod_attributes(permission: &Map<String, Value>) -> bool {
    match permission.get("attributes") {
        Some(Value::Object(attributes)) => match attributes.get("action") {
            None => true,
            Some(Value::String(action)) => matches!(action.as_str(), "create" | "read" | "update" | "delete"),
            Some(_) => false,
        },
        _ => false,
    }
}

fn action_name(action: Option<Action>) -> Option<&'static str> {
    action.map(Action::as_str)
}

/// Checks one accepted item against the JSON element it came from.
fn check_item(index: usize, item: &Item, element: &Value) {
    let ctx = format!("items[{index}] = {element}, parsed as {item:?}");
    check!("fields", element.get("id").and_then(Value::as_str) == Some(item.id.as_str()), "id not echoed: {ctx}");
    let permission = element.get("permission");
    let field = |key: &str| permission.and_then(|p| p.get(key)).and_then(Value::as_str);
    check!("fields", field("name") == Some(&*item.permission.name), "name changed: {ctx}");
    let action = permission.and_then(|p| p.get("attributes")).and_then(|a| a.get("action")).and_then(Value::as_str);
    check!("fields", action == action_name(item.permission.action), "action changed: {ctx}");
    match field("type") {
        Some("basic") => check!("fields", item.permission.resource_type.is_none(), "basic became resource: {ctx}"),
        Some("resource") => check!(
            "fields",
            item.permission.resource_type.as_deref().is_some_and(|rt| Some(rt) == field("resourceType")),
            "resource type lost or changed: {ctx}"
        ),
        other => check!("fields", false, "accepted a permission of type {other:?}: {ctx}"),
    }
    let sent = element.get("resourceRef");
    match &item.resource_ref {
        None => check!("fields", sent.is_none(), "resourceRef dropped or null accepted: {ctx}"),
        Some(ResourceRef::One(one)) => {
            check!("fields", sent.and_then(Value::as_str) == Some(one.as_str()), "resourceRef changed: {ctx}")
        }
        Some(ResourceRef::Many(many)) => {
            check!("fields", !many.is_empty(), "an empty resourceRef array was accepted: {ctx}");
            let sent: Option<Vec<&str>> =
                sent.and_then(Value::as_array).map(|refs| refs.iter().filter_map(Value::as_str).collect());
            check!(
                "fields",
                sent.is_some_and(|sent| sent.iter().copied().eq(many.iter().map(String::as_str))),
                "resourceRef array changed: {ctx}"
            );
        }
    }
    if item.resource_ref.is_some() {
        check!("fields", item.permission.is_resource(), "a basic permission kept a resourceRef: {ctx}");
    }
}

/// The canonical body for parsed items (what a well-behaved client would send).
fn canonical(items: &[Item]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut attributes = Map::new();
            if let Some(action) = item.permission.action {
                attributes.insert("action".into(), json!(action.as_str()));
            }
            let mut permission = json!({"name": &*item.permission.name, "attributes": attributes});
            match &item.permission.resource_type {
                Some(rt) => {
                    permission["type"] = json!("resource");
                    permission["resourceType"] = json!(&**rt);
                }
                None => permission["type"] = json!("basic"),
            }
            let mut out = json!({"id": item.id, "permission": permission});
            match &item.resource_ref {
                None => {}
                Some(ResourceRef::One(one)) => out["resourceRef"] = json!(one),
                Some(ResourceRef::Many(many)) => out["resourceRef"] = json!(many),
            }
            out
        })
        .collect();
    json!({ "items": items })
}

fn check_evaluate(items: &[Item]) {
    let user = Principal::new("user:default/jane".into(), vec!["group:default/team-a".into()], "fuzz".into());
    let plugins = Plugins::default();
    let (as_plugin, as_user) = runtime().block_on(async {
        (
            evaluate(&AllowAllPolicy, &plugins, &user, false, items).await,
            evaluate(&AllowAllPolicy, &plugins, &user, true, items).await,
        )
    });
    match as_plugin {
        Ok(answers) => {
            // As the layer sends them.
            let answers =
                serde_json::to_value(&answers).unwrap_or_else(|err| panic!("answers do not serialize: {err}"));
            let expected: Vec<Value> = items.iter().map(|i| json!({"id": i.id, "result": "ALLOW"})).collect();
            check!("evaluate", answers == Value::from(expected), "allow-all answered {answers} for {items:?}");
        }
        Err(err) => check!("evaluate", false, "allow-all failed for a plugin caller: {err:?} on {items:?}"),
    }
    let refused = items.iter().any(|i| i.permission.is_resource() && i.resource_ref.is_none());
    match as_user {
        Ok(answers) => check!("evaluate", !refused && answers.len() == items.len(), "direct caller got {answers:?}"),
        Err(EvaluateError::Input(message)) => {
            check!("evaluate", refused && message == DIRECT_WITHOUT_REF, "direct caller refused: {message}")
        }
        Err(err) => check!("evaluate", false, "direct caller: {err:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // What the layer does with the collected body: the fast path, else the full validation.
    let fast = fast::parse(data);
    let body: Value = match serde_json::from_slice(data) {
        Ok(body) => body,
        Err(err) => {
            check!("fast-json", fast.is_none(), "the fast path accepted a body that is not JSON ({err}): {fast:?}");
            let message = format!("request body is not JSON: {err}");
            check!("message", !err.to_string().is_empty(), "empty JSON error: {message}");
            return;
        }
    };
    let zod = zod_accepts(&body);
    let full = parse(&body);
    let layer = match fast {
        Some(items) => {
            let agrees = full.as_ref().is_ok_and(|full| *full == items);
            check!("fast", agrees, "fast path: {items:?}, full validation: {full:?}, body {body}");
            if agrees { Ok(items) } else { full }
        }
        None => full,
    };
    match layer {
        Ok(items) => {
            check!("zod", zod, "accepted a body Backstage rejects: {body}");
            let elements = body.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            check!(
                "count",
                items.len() == elements.len(),
                "{} items from {} elements: {body}",
                items.len(),
                elements.len()
            );
            for (index, (item, element)) in items.iter().zip(elements).enumerate() {
                check_item(index, item, element);
            }
            let again = canonical(&items);
            match parse(&again) {
                Ok(reparsed) => check!("roundtrip", reparsed == items, "{again} parsed as {reparsed:?}, not {items:?}"),
                Err(issues) => check!("roundtrip", false, "canonical body {again} refused: {issues:?}"),
            }
            check_evaluate(&items);
        }
        Err(issues) => {
            check!("zod", !zod, "refused a body Backstage accepts: {body}; issues {issues:?}");
            check!("message", !issues.is_empty(), "refused without an issue: {body}");
            for issue in &issues {
                check!("message", !issue.message.is_empty(), "issue without a message: {issue:?} for {body}");
                check!(
                    "message",
                    issue.path.first() == Some(&json!("items")),
                    "issue path outside items: {issue:?} for {body}"
                );
            }
            // The 400 body the layer sends (it falls back to "" if serializing fails).
            let message = serde_json::to_string_pretty(&issues).unwrap_or_default();
            check!("message", !message.is_empty() && message != "[]", "empty 400 message for {body}");
        }
    }
});
