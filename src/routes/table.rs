//! The route table: (method, normalized path) → one rule, compiled once into radix trees.
//!
//! Per HTTP method, and once more for rules that allow any method, two `matchit` radix trees:
//! one for exact templates (static segments and `{param}`s) and one for templates ending in a
//! `{*catch_all}`. Every rule sits only in the trees of its own methods, so a rule that does not
//! allow the method can never shadow one that does, and a lookup costs at most four tree walks
//! whatever the number of rules.
//!
//! Specificity: an exact template always beats a catch-all; otherwise, comparing segment by
//! segment from the left, a static segment beats a `{param}`, which beats a `{*catch_all}` (so
//! among catch-alls the longer static prefix wins). Between two equally specific templates, a
//! rule that lists the method beats a rule for any method. The order of rules in the file never
//! matters. `HEAD` requests use `GET` rules unless a rule lists `HEAD` for the same template.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;
use matchit::Router;

use super::rule::{Access, OnConditional, Rule};
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
    pub params: matchit::Params<'t, 'p>,
}

/// The two trees of one method.
#[derive(Debug, Default)]
struct Trees {
    exact: Router<Arc<Rule>>,
    catch_all: Router<Arc<Rule>>,
}

impl Trees {
    fn insert(&mut self, rule: &Arc<Rule>) -> Result<(), matchit::InsertError> {
        let tree = if rule.template.contains("{*") { &mut self.catch_all } else { &mut self.exact };
        tree.insert(rule.template.to_string(), rule.clone())
    }
}

type Hit<'t, 'p> = matchit::Match<'t, 'p, &'t Arc<Rule>>;

/// The more specific of a hit in the method's tree and a hit in the any-method tree.
fn more_specific<'t, 'p>(method: Option<Hit<'t, 'p>>, any: Option<Hit<'t, 'p>>) -> Option<Hit<'t, 'p>> {
    match (method, any) {
        (Some(method), Some(any)) => {
            Some(if specificity(&any.value.template) > specificity(&method.value.template) { any } else { method })
        }
        (method, any) => method.or(any),
    }
}

/// Segment kinds left to right: static 2, `{param}` 1, `{*catch_all}` 0; compared
/// lexicographically.
fn specificity(template: &str) -> Vec<u8> {
    template
        .split('/')
        .map(|segment| match segment.as_bytes() {
            [b'{', b'*', ..] => 0,
            [b'{', ..] => 1,
            _ => 2,
        })
        .collect()
}

/// The compiled route table.
#[derive(Debug)]
pub struct RouteTable {
    trees: Vec<Trees>,
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
        let mut trees: Vec<Trees> = (0..=ANY).map(|_| Trees::default()).collect();
        // Which rule owns each (method, template), to name both sides of a duplicate.
        let mut owners: HashMap<(usize, Arc<str>), Arc<str>> = HashMap::new();
        let rule_count = rules.len();
        let needs_tokens = rules.iter().any(|spec| spec.rule.access != Access::Public);
        let mut implicit_head = Vec::new();
        for spec in &rules {
            let slots: Vec<usize> = match &spec.methods {
                None => vec![ANY],
                Some(methods) => methods.iter().map(method_slot).collect(),
            };
            for slot in slots {
                let key = (slot, spec.rule.template.clone());
                // The same template for the same method is ambiguous, also when one of the two
                // rules allows any method.
                let clash = if slot == ANY {
                    (0..=ANY).find_map(|s| owners.get(&(s, spec.rule.template.clone())))
                } else {
                    owners.get(&key).or_else(|| owners.get(&(ANY, spec.rule.template.clone())))
                };
                if let Some(owner) = clash {
                    problems.push(TableProblem {
                        label: spec.rule.label.to_string(),
                        message: format!(
                            "`{}` for {} is already decided by {owner}",
                            spec.rule.template,
                            slot_name(slot)
                        ),
                    });
                    continue;
                }
                if let Err(err) = trees[slot].insert(&spec.rule) {
                    problems.push(TableProblem {
                        label: spec.rule.label.to_string(),
                        message: format!("path `{}` cannot be added: {err}", spec.rule.template),
                    });
                    continue;
                }
                owners.insert(key, spec.rule.label.clone());
            }
            let get = (method_slot(&Method::GET), spec.rule.template.clone());
            let lists_get = spec.methods.as_ref().is_some_and(|m| m.contains(&Method::GET));
            // Only a GET rule that made it into the table lends itself to HEAD.
            if lists_get && owners.get(&get) == Some(&spec.rule.label) {
                implicit_head.push(spec.rule.clone());
            }
        }
        // HEAD follows GET unless HEAD is configured for the same template. Any other conflict
        // is a config error: silently dropping the copy would let another HEAD rule decide.
        let head = method_slot(&Method::HEAD);
        for rule in implicit_head {
            if owners.contains_key(&(head, rule.template.clone())) {
                continue;
            }
            if let Err(err) = trees[head].insert(&rule) {
                problems.push(TableProblem {
                    label: rule.label.to_string(),
                    message: format!(
                        "`{}` for HEAD (which follows GET) conflicts with a HEAD rule: {err}; list HEAD on one of them explicitly",
                        rule.template
                    ),
                });
            }
        }
        let preflight = build_preflight(&prefixes, &mut problems);
        let unmatched_tree = build_unmatched(prefixes, unmatched, &mut problems);
        if problems.is_empty() {
            Ok(Self { trees, unmatched: unmatched_tree, preflight, rule_count, needs_tokens })
        } else {
            Err(problems)
        }
    }

    /// Finds the rule for a method and a normalized path.
    pub fn find<'t, 'p>(&'t self, method: &Method, path: &'p str) -> Option<Found<'t, 'p>> {
        let slot = method_slot(method);
        let own = (slot != ANY).then(|| &self.trees[slot]);
        let any = &self.trees[ANY];
        let exact = more_specific(own.and_then(|t| t.exact.at(path).ok()), any.exact.at(path).ok());
        let hit =
            exact.or_else(|| more_specific(own.and_then(|t| t.catch_all.at(path).ok()), any.catch_all.at(path).ok()));
        match hit {
            Some(found) => Some(Found { rule: found.value, params: found.params }),
            None => {
                self.unmatched.at(path).ok().map(|found| Found { rule: found.value, params: matchit::Params::new() })
            }
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
