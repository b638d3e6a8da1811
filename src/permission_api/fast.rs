//! The fast path for `/authorize` bodies: typed deserialization straight into [`Item`]s,
//! without building a `serde_json::Value` tree first (which cost half of a 50-item request).
//!
//! It only ever *accepts*: any body it does not fully understand (a type mismatch, a `null`
//! where zod refuses one, a duplicate key, an invalid value) yields `None`, and the caller falls
//! back to [`super::request::parse`], which finds and reports every issue as Backstage does. So
//! whenever this returns `Some`, the items are the ones the full validation would return (a test
//! below checks that on tricky bodies).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer};

use super::request::{Item, ResourceRef};
use crate::policy::{Action, Permission};

/// `T` from a JSON object only. A derived `Deserialize` for a struct also takes an array (its
/// fields in order), which zod never accepts for an object (found by fuzzing).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(ObjectOnly)
    }
}

/// The values of keys the fast path does not read. `#[serde(flatten)]` makes serde parse them
/// fully (into its buffer) instead of skipping them: serde_json's skipping does not check that a
/// number is in `f64` range or that a `\u` escape is not a lone surrogate, and the full
/// validation refuses both, so an unchecked skip answered 200 where it answers 400 (found by
/// fuzzing). Bodies from Backstage clients have no such keys, so this costs them nothing.
#[derive(Deserialize)]
struct Unread {}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    items: Vec<ObjectOnly<RawItem<'a>>>,
    #[serde(flatten)]
    _unread: Unread,
}

#[derive(Deserialize)]
struct RawItem<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    permission: ObjectOnly<RawPermission<'a>>,
    #[serde(rename = "resourceRef", default, deserialize_with = "present")]
    resource_ref: Option<RawRef>,
    #[serde(flatten)]
    _unread: Unread,
}

#[derive(Deserialize)]
struct RawPermission<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    attributes: ObjectOnly<Attributes<'a>>,
    #[serde(rename = "resourceType", default, deserialize_with = "present", borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(flatten)]
    _unread: Unread,
}

#[derive(Deserialize)]
struct Attributes<'a> {
    #[serde(default, deserialize_with = "present", borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(flatten)]
    _unread: Unread,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRef {
    One(String),
    Many(Vec<String>),
}

/// An optional key whose value, when present, must deserialize as `T` (so `null` is refused,
/// as zod's `.optional()` refuses it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The items of a valid body, or `None` to fall back to the full validation.
pub(super) fn parse(bytes: &[u8]) -> Option<Vec<Item>> {
    // serde_json skips the strings of ignored keys without checking their UTF-8; the full
    // validation refuses such a body, so the fast path must too (found by fuzzing).
    let text = std::str::from_utf8(bytes).ok()?;
    let ObjectOnly(body): ObjectOnly<Body<'_>> = serde_json::from_str(text).ok()?;
    body.items.into_iter().map(|ObjectOnly(raw)| item(raw)).collect()
}

fn item(raw: RawItem<'_>) -> Option<Item> {
    let ObjectOnly(p) = raw.permission;
    let action = match p.attributes.0.action.as_deref() {
        None => None,
        Some("create") => Some(Action::Create),
        Some("read") => Some(Action::Read),
        Some("update") => Some(Action::Update),
        Some("delete") => Some(Action::Delete),
        Some(_) => return None,
    };
    let permission = match (&*p.kind, p.resource_type) {
        ("resource", Some(resource_type)) => Permission::resource(&p.name, action, &resource_type),
        ("basic", _) => Permission::basic(&p.name, action),
        _ => return None,
    };
    let resource_ref = match raw.resource_ref {
        None => None,
        Some(_) if !permission.is_resource() => return None,
        Some(RawRef::One(one)) => Some(ResourceRef::One(one)),
        Some(RawRef::Many(many)) if many.is_empty() => return None,
        Some(RawRef::Many(many)) => Some(ResourceRef::Many(many)),
    };
    Some(Item { id: raw.id.into_owned(), permission, resource_ref })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(body: &str) -> Result<Vec<Item>, String> {
        let value: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        super::super::request::parse(&value).map_err(|issues| format!("{issues:?}"))
    }

    #[test]
    fn whenever_the_fast_path_accepts_it_agrees_with_the_full_validation() {
        let basic = r#"{"type":"basic","name":"catalog.location.read","attributes":{"action":"read"}}"#;
        let resource = r#"{"type":"resource","name":"catalog.entity.read","attributes":{"action":"read"},"resourceType":"catalog-entity"}"#;
        let bodies = [
            format!(r#"{{"items":[{{"id":"1","permission":{basic}}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","permission":{resource},"resourceRef":"component:default/x"}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","permission":{resource},"resourceRef":["a","b"]}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","permission":{resource}}}]}}"#),
            r#"{"items":[]}"#.to_string(),
            // Unknown keys are ignored by both.
            format!(r#"{{"extra":1,"items":[{{"id":"\u0031","x":null,"permission":{basic}}}]}}"#),
            // Refused, or left to the full validation (which ignores a basic permission's
            // `resourceType` whatever its type):
            r#"{"items":[{"id":"1","permission":{"type":"basic","name":"n","attributes":{},"resourceType":7}}]}"#
                .into(),
            format!(r#"{{"items":[{{"id":"1","permission":{resource},"resourceRef":null}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","permission":{resource},"resourceRef":[]}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","permission":{basic},"resourceRef":"x"}}]}}"#),
            format!(r#"{{"items":[{{"id":"1","id":"2","permission":{basic}}}]}}"#),
            r#"{"items":[{"id":"1","permission":{"type":"basic","name":"n","attributes":{"action":null}}}]}"#.into(),
            r#"{"items":[{"id":"1","permission":{"type":"basic","name":"n","attributes":{"action":"use"}}}]}"#.into(),
            r#"{"items":[{"id":"1","permission":{"type":"resource","name":"n","attributes":{}}}]}"#.into(),
            r#"{"items":[{"id":1,"permission":{"type":"basic","name":"n","attributes":{}}}]}"#.into(),
            r#"{"items":{}}"#.into(),
            // Arrays where objects belong (fuzzer-found): serde would read them as fields in order.
            r#"[[]]"#.into(),
            r#"[[["1",["basic","x",{}]]]]"#.into(),
            r#"{"items":[["1",{"type":"basic","name":"n","attributes":{}}]]}"#.into(),
            r#"{"items":[{"id":"1","permission":["basic","n",{}]}]}"#.into(),
            r#"{"items":[{"id":"1","permission":{"type":"basic","name":"n","attributes":[]}}]}"#.into(),
        ];
        let mut accepted = 0;
        for body in &bodies {
            if let Some(items) = parse(body.as_bytes()) {
                accepted += 1;
                assert_eq!(slow(body).as_ref(), Ok(&items), "{body}");
            }
        }
        // The valid shapes take the fast path.
        assert_eq!(accepted, 6);
        // Invalid UTF-8 in an ignored value (fuzzer-found) is left to the full validation.
        assert_eq!(parse(b"{\"items\":[],\"x\":\"\xff\"}"), None);
        // Nor are an out-of-range number or a lone surrogate, at any depth (fuzzer-found).
        for unread in [r"1e400", r"-2e402", r#""\ud800""#, r#"{"y":[1,"\udc00"]}"#, r"[[1e999]]"] {
            for body in [
                format!(r#"{{"items":[],"x":{unread}}}"#),
                format!(r#"{{"items":[{{"id":"1","x":{unread},"permission":{basic}}}]}}"#),
                format!(
                    r#"{{"items":[{{"id":"1","permission":{{"type":"basic","name":"n","x":{unread},"attributes":{{}}}}}}]}}"#
                ),
                format!(
                    r#"{{"items":[{{"id":"1","permission":{{"type":"basic","name":"n","attributes":{{"x":{unread}}}}}}}]}}"#
                ),
            ] {
                assert!(slow(&body).is_err(), "{body}");
                assert_eq!(parse(body.as_bytes()), None, "{body}");
            }
        }
        assert_eq!(parse(br#"{"items":[],"\ud800":1}"#), None);
        assert_eq!(parse(b"{\"items\":[]}").map(|items| items.len()), Some(0));
    }

    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// A value for a key, or no key at all (`None`).
    fn field(choices: Vec<Option<Value>>) -> impl Strategy<Value = Option<Value>> {
        proptest::sample::select(choices)
    }

    fn item_strategy() -> impl Strategy<Value = Value> {
        let s = |v: &str| Some(json!(v));
        (
            field(vec![s("1"), s("\u{e9}"), Some(json!(1)), Some(Value::Null), None]),
            field(vec![s("basic"), s("resource"), s("other"), Some(Value::Null), None]),
            field(vec![s("catalog.entity.read"), Some(json!(3)), None]),
            field(vec![
                Some(json!({})),
                Some(json!({"action": "read"})),
                Some(json!({"action": "delete", "x": 1})),
                Some(json!({"action": "use"})),
                Some(json!({"action": null})),
                Some(json!("read")),
                None,
            ]),
            field(vec![s("catalog-entity"), Some(json!(7)), Some(Value::Null), None]),
            field(vec![
                s("component:default/x"),
                Some(json!([])),
                Some(json!(["a", "b"])),
                Some(json!([1])),
                Some(Value::Null),
                None,
            ]),
        )
            .prop_map(|(id, kind, name, attributes, resource_type, resource_ref)| {
                let mut permission = Map::new();
                for (key, value) in
                    [("type", kind), ("name", name), ("attributes", attributes), ("resourceType", resource_type)]
                {
                    if let Some(value) = value {
                        permission.insert(key.into(), value);
                    }
                }
                let mut item = Map::new();
                for (key, value) in
                    [("id", id), ("permission", Some(Value::Object(permission))), ("resourceRef", resource_ref)]
                {
                    if let Some(value) = value {
                        item.insert(key.into(), value);
                    }
                }
                Value::Object(item)
            })
    }

    proptest! {
        #[test]
        fn the_fast_path_never_accepts_what_the_full_validation_refuses_or_reads_it_differently(
            items in proptest::collection::vec(item_strategy(), 0..4)
        ) {
            let body = json!({ "items": items }).to_string();
            if let Some(fast) = parse(body.as_bytes()) {
                prop_assert_eq!(slow(&body), Ok(fast), "{}", body);
            }
        }
    }
}
