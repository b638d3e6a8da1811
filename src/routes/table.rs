//! The route table: (method, normalized path) → one rule, compiled once.
//!
//! Rules live in one segment trie ([`super::tree`]), each template once whatever its methods,
//! and a lookup walks it to the most specific template with a rule for the request's method,
//! so a rule that does not allow the method can never shadow one that does, and the cost of a
//! lookup depends on the path, not on the number of rules.
//!
//! Specificity: an exact template always beats a catch-all; otherwise, comparing segment by
//! segment from the left, a static segment beats a `{param}`, which beats a `{*catch_all}` (so
//! among catch-alls the longer static prefix wins). Between two templates of the same shape, a
//! rule that lists the method beats a rule for any method. The order of rules in the file never
//! matters. `HEAD` requests use `GET` rules unless a rule lists `HEAD` for the same template
//! shape.
//!
//! Requests no rule matches may still be forwarded by route prefix (`permission.unmatched`,
//! `cors_preflight: pass`); those two small tables are `matchit` trees of the prefixes.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;
use matchit::Router;

use super::rule::{Access, OnConditional, Rule};
use super::tree::{self, MethodChoice, Params, RuleTree, RuleTreeBuilder, Slot};
use crate::proxy::Upstream;

/// Methods with trees of their own; `ANY` holds the rules without a `methods` list, which is
/// all that extension methods (`PURGE`, …) can match.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];
const ANY: usize = METHODS.len();

fn method_slot(method: &Method) -> usize {
    METHODS.iter().position(|m| m == method).unwrap_or(ANY)
}

/// A rule before it joins the table.
#[derive(Debug)]
pub struct RuleSpec {
    /// Methods the rule covers; `None` = any method.
    pub methods: Option<Vec<Method>>,
    /// The compiled rule (its `template` is the full path template).
    pub rule: Arc<Rule>,
}

/// What happens to requests no rule matches (`permission.unmatched`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Refused with 404 before authentication.
    #[default]
    Deny,
    /// Forwarded without a token to the upstream whose prefix covers the path.
    Allow,
    /// Forwarded with any valid token to the upstream whose prefix covers the path.
    Authenticated,
}

/// A route prefix with its upstream, used for requests no rule matches.
#[derive(Debug)]
pub struct PrefixSpec {
    /// The prefix, e.g. `/api/catalog`.
    pub prefix: String,
    /// The upstream behind it.
    pub upstream: Arc<Upstream>,
    /// Body limit of requests no rule matches.
    pub max_body_bytes: Option<u64>,
    /// `cors_preflight: pass`: CORS preflight requests under the prefix are forwarded without
    /// a token.
    pub pass_preflight: bool,
}

/// A problem found while building the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProblem {
    /// The rule's label (`routes[0].rules[1]`).
    pub label: String,
    /// What is wrong.
    pub message: String,
}

/// The result of a lookup.
#[derive(Debug)]
pub struct Found<'t, 'p> {
    /// The rule that decides the request.
    pub rule: &'t Arc<Rule>,
    /// Captured path parameters (raw, still percent-encoded).
    pub params: Params<'t, 'p>,
}

/// The compiled route table.
#[derive(Debug)]
pub struct RouteTable {
    rules: RuleTree,
    /// The rules in config order, for [`RouteTable::rule_lines`].
    in_order: Box<[Arc<Rule>]>,
    unmatched: Router<Arc<Rule>>,
    preflight: Router<Arc<Rule>>,
    rule_count: usize,
    needs_tokens: bool,
}

impl RouteTable {
    /// Builds the table, collecting every conflict.
    pub fn build(
        rules: Vec<RuleSpec>,
        prefixes: Vec<PrefixSpec>,
        unmatched: Unmatched,
    ) -> Result<Self, Vec<TableProblem>> {
        let mut problems = Vec::new();
        let mut tree = RuleTreeBuilder::new();
        // Which rule owns each (method, template), to name both sides of a duplicate.
        let mut owners: HashMap<(usize, Arc<str>), Arc<str>> = HashMap::new();
        let rule_count = rules.len();
        let needs_tokens = rules.iter().any(|spec| spec.rule.access != Access::Public);
        for spec in &rules {
            let template = &spec.rule.template;
            let segments = match tree::parse(template) {
                Ok(segments) => segments,
                Err(err) => {
                    problems.push(TableProblem {
                        label: spec.rule.label.to_string(),
                        message: format!("path `{template}` cannot be added: {err}"),
                    });
                    continue;
                }
            };
            let slots: Vec<usize> = match &spec.methods {
                None => vec![ANY],
                Some(methods) => methods.iter().map(method_slot).collect(),
            };
            for slot in slots {
                let key = (slot, template.clone());
                // The same template for the same method is ambiguous, also when one of the two
                // rules allows any method.
                let clash = if slot == ANY {
                    (0..=ANY).find_map(|s| owners.get(&(s, template.clone())))
                } else {
                    owners.get(&key).or_else(|| owners.get(&(ANY, template.clone())))
                };
                if let Some(owner) = clash {
                    problems.push(TableProblem {
                        label: spec.rule.label.to_string(),
                        message: format!("`{template}` for {} is already decided by {owner}", slot_name(slot)),
                    });
                    continue;
                }
                // INVARIANT: slots are below `METHODS.len() + 1`, far below `u8::MAX`.
                if let Err(existing) = tree.insert(&segments, slot as Slot, spec.rule.clone()) {
                    problems.push(TableProblem {
                        label: spec.rule.label.to_string(),
                        message: format!(
                            "`{template}` for {} is already decided by {} (`{}`: the same path with other parameter names)",
                            slot_name(slot),
                            existing.label,
                            existing.template
                        ),
                    });
                    continue;
                }
                owners.insert(key, spec.rule.label.clone());
            }
        }
        let preflight = build_preflight(&prefixes, &mut problems);
        let unmatched_tree = build_unmatched(prefixes, unmatched, &mut problems);
        if problems.is_empty() {
            let in_order = rules.into_iter().map(|spec| spec.rule).collect();
            Ok(Self { rules: tree.build(), in_order, unmatched: unmatched_tree, preflight, rule_count, needs_tokens })
        } else {
            Err(problems)
        }
    }

    /// Finds the rule for a method and a normalized path.
    pub fn find<'t, 'p>(&'t self, method: &Method, path: &'p str) -> Option<Found<'t, 'p>> {
        let slot = method_slot(method);
        let choice = MethodChoice {
            own: slot as Slot,
            fallback: (*method == Method::HEAD).then_some(method_slot(&Method::GET) as Slot),
            any: ANY as Slot,
        };
        match self.rules.find(choice, path) {
            Some((entry, params)) => Some(Found { rule: &entry.rule, params }),
            None => self.unmatched.at(path).ok().map(|found| Found { rule: found.value, params: Params::empty() }),
        }
    }

    /// The public rule for a CORS preflight under a prefix with `cors_preflight: pass`.
    pub fn find_preflight(&self, path: &str) -> Option<&Arc<Rule>> {
        self.preflight.at(path).ok().map(|found| found.value)
    }

    /// True when some rule needs a verified token.
    pub fn needs_tokens(&self) -> bool {
        self.needs_tokens
    }

    /// One line per rule, in config order: methods, template, what it demands, upstream.
    /// Built on demand from the table (for `stagedoor check`), so nothing is kept for it.
    pub fn rule_lines(&self) -> Vec<String> {
        let mut slots: HashMap<*const Rule, Vec<usize>> = HashMap::new();
        for (slot, rule) in self.rules.entries() {
            slots.entry(Arc::as_ptr(rule)).or_default().push(usize::from(slot));
        }
        self.in_order
            .iter()
            .map(|rule| {
                let mut methods = slots.remove(&Arc::as_ptr(rule)).unwrap_or_default();
                methods.sort_unstable();
                let methods = methods.iter().map(|&slot| slot_name(slot)).collect::<Vec<_>>().join(",");
                let methods = if methods == slot_name(ANY) { "ANY" } else { &methods };
                format!("{methods:<8} {} → {} [{}]", rule.template, rule.access.describe(), rule.upstream.name)
            })
            .collect()
    }

    /// Number of configured rules.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }
}

fn slot_name(slot: usize) -> &'static str {
    METHODS.get(slot).map_or("any method", |m| m.as_str())
}

/// Prefixes with `cors_preflight: pass` get a public rule for preflight requests.
fn build_preflight(prefixes: &[PrefixSpec], problems: &mut Vec<TableProblem>) -> Router<Arc<Rule>> {
    let mut tree = Router::new();
    let passing: Vec<&PrefixSpec> = prefixes.iter().filter(|spec| spec.pass_preflight).collect();
    for spec in distinct(&passing, "CORS preflights", problems) {
        let label = format!("CORS preflight under `{}`", spec.prefix);
        // Preflights carry no body.
        add_prefix_rule(&mut tree, spec, label, Access::Public, Some(0), problems);
    }
    tree
}

/// With `unmatched: allow|authenticated`, every route prefix gets a synthetic rule that
/// forwards to its upstream; with `deny` the tree stays empty.
fn build_unmatched(
    prefixes: Vec<PrefixSpec>,
    unmatched: Unmatched,
    problems: &mut Vec<TableProblem>,
) -> Router<Arc<Rule>> {
    let mut tree = Router::new();
    let access = match unmatched {
        Unmatched::Deny => return tree,
        Unmatched::Allow => Access::Public,
        Unmatched::Authenticated => Access::Authenticated,
    };
    let all: Vec<&PrefixSpec> = prefixes.iter().collect();
    for spec in distinct(&all, "requests no rule matches", problems) {
        let label = format!("unmatched under `{}`", spec.prefix);
        add_prefix_rule(&mut tree, spec, label, access.clone(), spec.max_body_bytes, problems);
    }
    tree
}

/// Each prefix once: route groups may share one (a config file's own group and an included
/// preset's), as long as they name the same upstream for what no rule covers.
fn distinct<'s>(specs: &[&'s PrefixSpec], what: &str, problems: &mut Vec<TableProblem>) -> Vec<&'s PrefixSpec> {
    let mut first: HashMap<&str, &PrefixSpec> = HashMap::new();
    let mut out = Vec::new();
    for spec in specs {
        match first.get(spec.prefix.as_str()) {
            None => {
                first.insert(&spec.prefix, spec);
                out.push(*spec);
            }
            Some(earlier) if earlier.upstream.name == spec.upstream.name => {}
            Some(earlier) => problems.push(TableProblem {
                label: "routes".into(),
                message: format!(
                    "prefix `{}` has groups for upstreams `{}` and `{}`: {what} under it cannot go to both",
                    spec.prefix, earlier.upstream.name, spec.upstream.name
                ),
            }),
        }
    }
    out
}

/// Adds a synthetic rule covering a prefix and everything below it.
fn add_prefix_rule(
    tree: &mut Router<Arc<Rule>>,
    spec: &PrefixSpec,
    label: String,
    access: Access,
    max_body_bytes: Option<u64>,
    problems: &mut Vec<TableProblem>,
) {
    let root = if spec.prefix == "/" { "" } else { spec.prefix.as_str() };
    let below = format!("{root}/{{*rest}}");
    let rule = Arc::new(Rule {
        label: label.into(),
        template: below.as_str().into(),
        access,
        upstream: spec.upstream.clone(),
        resource_ref: None,
        on_conditional: OnConditional::Deny,
        max_body_bytes,
        plugin: None,
    });
    for template in [spec.prefix.clone(), below] {
        if let Err(err) = tree.insert(template, rule.clone()) {
            problems.push(TableProblem {
                label: "routes".into(),
                message: format!("prefix `{}` is configured twice or overlaps: {err}", spec.prefix),
            });
            break;
        }
    }
}

#[cfg(test)]
mod tests;
