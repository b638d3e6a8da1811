//! Criteria templates: the `conditions` of an allow entry, checked once at load and filled
//! in per principal at decide time.
//!
//! Two aliases may appear as rule parameter values: `$currentUser` (the user entity ref)
//! and `$ownerRefs` (the ownership refs, spliced into the surrounding list). They are
//! resolved when the file loads, so rendering a decision never parses a string.

use serde_json::{Map, Value};

use super::error::Problems;
use super::file::RawCriteria;
use super::{Condition, Criteria};
use crate::identity::Principal;

const CURRENT_USER: &str = "$currentUser";
const OWNER_REFS: &str = "$ownerRefs";

/// A compiled criteria tree; leaves carry their resource type already.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CriteriaTemplate {
    /// `allOf`, non-empty.
    AllOf(Vec<CriteriaTemplate>),
    /// `anyOf`, non-empty.
    AnyOf(Vec<CriteriaTemplate>),
    /// `not`
    Not(Box<CriteriaTemplate>),
    /// A rule leaf; params in file order.
    Leaf { rule: String, resource_type: String, params: Option<Vec<(String, Param)>> },
}

/// A rule parameter value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    /// A primitive or a list of primitives, with no alias in it.
    Fixed(Value),
    /// `$currentUser`
    CurrentUser,
    /// `$ownerRefs`
    OwnerRefs,
    /// A list holding at least one alias.
    List(Vec<Param>),
}

impl CriteriaTemplate {
    /// Checks `raw` (found at key path `at`) and compiles it; `None` if anything in it is
    /// wrong, after recording every problem.
    pub(super) fn compile(raw: RawCriteria, resource_type: &str, at: &str, problems: &mut Problems) -> Option<Self> {
        let shapes: Vec<&str> = [
            ("allOf", raw.all_of.is_some()),
            ("anyOf", raw.any_of.is_some()),
            ("not", raw.not.is_some()),
            ("rule", raw.rule.is_some()),
        ]
        .into_iter()
        .filter_map(|(shape, present)| present.then_some(shape))
        .collect();
        if shapes.len() > 1 {
            let found = shapes.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
            problems.push(at, format!("expected exactly one of `allOf`, `anyOf`, `not` or `rule`, found {found}"));
            return None;
        }
        if raw.params.is_some() && raw.rule.is_none() {
            problems.push(at, "`params` needs `rule` (params belong to a rule leaf)");
            return None;
        }
        if let Some(leaf_type) = &raw.resource_type {
            if raw.rule.is_none() {
                problems.push(at, "`resourceType` needs `rule` (it belongs to a rule leaf)");
                return None;
            }
            if leaf_type != resource_type {
                problems.push(
                    format!("{at}.resourceType"),
                    format!(
                        "expected `{resource_type}` (the resource type the conditions apply to), got `{leaf_type}`"
                    ),
                );
                return None;
            }
        }
        if let Some(children) = raw.all_of {
            list(children, resource_type, &format!("{at}.allOf"), problems).map(Self::AllOf)
        } else if let Some(children) = raw.any_of {
            list(children, resource_type, &format!("{at}.anyOf"), problems).map(Self::AnyOf)
        } else if let Some(child) = raw.not {
            Self::compile(*child, resource_type, &format!("{at}.not"), problems).map(|child| Self::Not(Box::new(child)))
        } else if let Some(rule) = raw.rule {
            leaf(rule, raw.params, resource_type, at, problems)
        } else {
            problems.push(at, "expected one of `allOf`, `anyOf`, `not` or `rule`");
            None
        }
    }

    /// The criteria for `principal`, aliases replaced.
    pub(super) fn render(&self, principal: &Principal) -> Criteria {
        match self {
            Self::AllOf(children) => Criteria::AllOf { all_of: children.iter().map(|c| c.render(principal)).collect() },
            Self::AnyOf(children) => Criteria::AnyOf { any_of: children.iter().map(|c| c.render(principal)).collect() },
            Self::Not(child) => Criteria::Not { not: Box::new(child.render(principal)) },
            Self::Leaf { rule, resource_type, params } => Criteria::Condition(Condition {
                rule: rule.clone(),
                resource_type: resource_type.clone(),
                params: params.as_ref().map(|params| {
                    params
                        .iter()
                        .map(|(name, param)| (name.clone(), param.render(principal)))
                        .collect::<Map<String, Value>>()
                }),
            }),
        }
    }
}

impl Param {
    fn render(&self, principal: &Principal) -> Value {
        match self {
            Self::Fixed(value) => value.clone(),
            Self::CurrentUser => Value::String(principal.user_entity_ref.to_string()),
            Self::OwnerRefs => Value::Array(principal.ownership_refs.iter().cloned().map(Value::String).collect()),
            Self::List(items) => {
                let mut out = Vec::with_capacity(items.len() + principal.ownership_refs.len());
                for item in items {
                    match item {
                        // INVARIANT: `$ownerRefs` is the only item that expands to several values.
                        Self::OwnerRefs => out.extend(principal.ownership_refs.iter().cloned().map(Value::String)),
                        other => out.push(other.render(principal)),
                    }
                }
                Value::Array(out)
            }
        }
    }
}

/// An `allOf` / `anyOf` list: non-empty, every child valid.
fn list(
    children: Vec<RawCriteria>,
    resource_type: &str,
    at: &str,
    problems: &mut Problems,
) -> Option<Vec<CriteriaTemplate>> {
    if children.is_empty() {
        problems.push(at, "expected a non-empty list of criteria");
        return None;
    }
    let mut compiled = Vec::with_capacity(children.len());
    let mut ok = true;
    for (i, child) in children.into_iter().enumerate() {
        match CriteriaTemplate::compile(child, resource_type, &format!("{at}[{i}]"), problems) {
            Some(child) => compiled.push(child),
            None => ok = false,
        }
    }
    ok.then_some(compiled)
}

/// A `{rule, params}` leaf.
fn leaf(
    rule: String,
    params: Option<Map<String, Value>>,
    resource_type: &str,
    at: &str,
    problems: &mut Problems,
) -> Option<CriteriaTemplate> {
    let mut ok = true;
    if rule.trim().is_empty() {
        problems.push(format!("{at}.rule"), "expected a rule name like `IS_ENTITY_OWNER`");
        ok = false;
    }
    let params = params.map(|params| {
        params
            .into_iter()
            .filter_map(|(name, value)| {
                let param = param(value, &format!("{at}.params.{name}"), problems);
                ok &= param.is_some();
                Some((name, param?))
            })
            .collect()
    });
    ok.then(|| CriteriaTemplate::Leaf { rule, resource_type: resource_type.to_owned(), params })
}

/// A parameter value: a JSON primitive or a list of primitives, aliases resolved.
fn param(value: Value, at: &str, problems: &mut Problems) -> Option<Param> {
    match value {
        Value::Array(items) => {
            let mut compiled = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.into_iter().enumerate() {
                let at = format!("{at}[{i}]");
                if matches!(item, Value::Array(_) | Value::Object(_)) {
                    problems.push(at, "expected a JSON primitive (lists of lists or objects are not rule params)");
                    ok = false;
                    continue;
                }
                match primitive(item, &at, problems) {
                    Some(item) => compiled.push(item),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            if compiled.iter().all(|item| matches!(item, Param::Fixed(_))) {
                let values = compiled
                    .into_iter()
                    .filter_map(|item| match item {
                        Param::Fixed(value) => Some(value),
                        _ => None,
                    })
                    .collect();
                Some(Param::Fixed(Value::Array(values)))
            } else {
                Some(Param::List(compiled))
            }
        }
        Value::Object(_) => {
            problems.push(at, "expected a JSON primitive or a list of primitives, found a map");
            None
        }
        primitive_value => primitive(primitive_value, at, problems),
    }
}

/// A primitive; strings starting with `$` must be a known alias.
fn primitive(value: Value, at: &str, problems: &mut Problems) -> Option<Param> {
    match value {
        Value::String(s) if s == CURRENT_USER => Some(Param::CurrentUser),
        Value::String(s) if s == OWNER_REFS => Some(Param::OwnerRefs),
        Value::String(s) if s.starts_with('$') => {
            problems.push(at, format!("unknown alias `{s}` (expected `{CURRENT_USER}` or `{OWNER_REFS}`)"));
            None
        }
        other => Some(Param::Fixed(other)),
    }
}
