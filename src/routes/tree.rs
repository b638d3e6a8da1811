//! The rule trie: path templates by segment, each template once whatever its methods, looked
//! up by a depth-first walk that backtracks past templates with no rule for the method.
//!
//! Written by hand rather than with `matchit` (still used for the small prefix trees): a
//! request must find the most specific template *that has a rule for its method*, and a radix
//! router cannot skip a match whose value does not fit. One `matchit` tree per method did
//! that, but cost about 3 KiB per rule at 10,000 rules (a node per character run, child
//! vectors of four nodes, the same prefixes repeated in every method's tree); here a node is
//! one segment, a few dozen bytes, shared by every method and every template through it.
//!
//! Specificity is that of the route table: an exact template (no catch-all) always beats a
//! catch-all, so they are searched in two passes; within a pass, segment by segment from the
//! left, a static segment beats a `{param}`, which beats a `{*catch_all}`. The first template
//! reached in that order with a rule for the method wins. Within one template shape, a rule
//! listing the method beats one for any method, and `HEAD` uses a `GET` rule unless one lists
//! `HEAD`.
//!
//! The walk backtracks only between a static child and a param child of a node, so its work is
//! bounded by the number of nodes the path can reach, which the config (not the request)
//! decides.

use crate::hashing::FastMap;
use std::sync::Arc;

use super::rule::Rule;

/// Most parameters a template may capture.
pub const MAX_PARAMS: usize = 16;

const NONE: u32 = u32::MAX;

/// A method slot: an index into the route table's method list, or its any-method slot.
pub type Slot = u8;

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal text, matched case-sensitively.
    Static(&'a str),
    /// `{name}`: one whole segment.
    Param(&'a str),
    /// `{*name}`: one or more trailing segments; last.
    CatchAll(&'a str),
}

/// Why a template cannot join the trie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateShapeError {
    /// A `{` or `}` inside a segment that is not exactly `{name}` or `{*name}`.
    #[error("a parameter must be a whole segment, `{{name}}` or a final `{{*name}}`, got `{0}`")]
    Malformed(String),
    /// A catch-all before the last segment.
    #[error("`{{*{0}}}` must be the last segment")]
    CatchAllNotLast(String),
    /// The same name twice.
    #[error("parameter `{0}` is captured twice")]
    DuplicateName(String),
    /// Too many parameters.
    #[error("at most {MAX_PARAMS} parameters")]
    TooManyParams,
}

/// Splits a template (`/a/{b}/{*c}`, or `/` for the root) into segments.
pub fn parse(template: &str) -> Result<Vec<Segment<'_>>, TemplateShapeError> {
    let body = template.strip_prefix('/').unwrap_or(template);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(inner) => {
                let (catch_all, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || name.contains(['{', '}', '*']) {
                    return Err(TemplateShapeError::Malformed((*part).to_owned()));
                }
                if names.contains(&name) {
                    return Err(TemplateShapeError::DuplicateName(name.to_owned()));
                }
                names.push(name);
                if catch_all {
                    if i + 1 != parts.len() {
                        return Err(TemplateShapeError::CatchAllNotLast(name.to_owned()));
                    }
                    Segment::CatchAll(name)
                } else {
                    Segment::Param(name)
                }
            }
            None if part.contains(['{', '}']) => return Err(TemplateShapeError::Malformed((*part).to_owned())),
            None => Segment::Static(part),
        };
        segments.push(segment);
    }
    if names.len() > MAX_PARAMS {
        return Err(TemplateShapeError::TooManyParams);
    }
    Ok(segments)
}

/// A rule as stored at the end of its template, with the names of what the template captures.
#[derive(Debug)]
pub struct Entry {
    /// The rule.
    pub rule: Arc<Rule>,
    /// Parameter names in capture order.
    names: Box<[Box<str>]>,
}

/// The rules of one template shape, by method slot.
#[derive(Debug, Default)]
struct Terminal {
    entries: Vec<(Slot, Entry)>,
}

impl Terminal {
    fn get(&self, slot: Slot) -> Option<&Entry> {
        self.entries.iter().find(|(s, _)| *s == slot).map(|(_, entry)| entry)
    }
}

/// Above this many static children a node hashes them; below, a scan is faster.
const SCAN_LIMIT: usize = 8;

/// A node's static children.
#[derive(Debug)]
enum Statics {
    /// Few: scanned.
    Few(Box<[(Box<str>, u32)]>),
    /// Many (e.g. one per service under `/api`): hashed.
    Many(FastMap<Box<str>, u32>),
}

impl Statics {
    fn get(&self, segment: &str) -> Option<u32> {
        match self {
            Self::Few(children) => children.iter().find(|(text, _)| **text == *segment).map(|(_, id)| *id),
            Self::Many(children) => children.get(segment).copied(),
        }
    }
}

/// A trie node: one segment.
#[derive(Debug)]
struct Node {
    /// Static children.
    statics: Statics,
    /// The `{param}` child.
    param: u32,
    /// Templates ending here.
    exact: u32,
    /// Templates ending here with a `{*catch_all}`.
    catch_all: u32,
}

/// Captured parameters: raw (still percent-encoded) segment values.
#[derive(Debug, Clone)]
pub struct Params<'t, 'p> {
    names: &'t [Box<str>],
    values: [&'p str; MAX_PARAMS],
}

impl<'t, 'p> Params<'t, 'p> {
    /// No parameters.
    pub fn empty() -> Self {
        Self { names: &[], values: [""; MAX_PARAMS] }
    }

    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.names.iter().position(|n| &**n == name).map(|i| self.values[i])
    }
}

/// Which rule to take from a terminal for a request's method.
#[derive(Debug, Clone, Copy)]
pub struct MethodChoice {
    /// The request's slot.
    pub own: Slot,
    /// A slot whose rules also serve the request when the own slot has none (`GET` for `HEAD`).
    pub fallback: Option<Slot>,
    /// The any-method slot.
    pub any: Slot,
}

/// The frozen trie.
#[derive(Debug)]
pub struct RuleTree {
    nodes: Box<[Node]>,
    terminals: Box<[Terminal]>,
}

/// The trie while rules are added.
#[derive(Debug, Default)]
pub struct RuleTreeBuilder {
    nodes: Vec<BuildNode>,
    terminals: Vec<Terminal>,
}

#[derive(Debug, Default)]
struct BuildNode {
    statics: FastMap<Box<str>, u32>,
    param: Option<u32>,
    exact: Option<u32>,
    catch_all: Option<u32>,
}

impl RuleTreeBuilder {
    /// An empty trie (the root node only).
    pub fn new() -> Self {
        Self { nodes: vec![BuildNode::default()], terminals: Vec::new() }
    }

    /// Adds `rule` for `slot` under its parsed template. `Err` holds the rule already there
    /// for that slot and template shape.
    pub fn insert(&mut self, segments: &[Segment<'_>], slot: Slot, rule: Arc<Rule>) -> Result<(), Arc<Rule>> {
        let mut node = 0usize;
        let mut names = Vec::new();
        let mut catch_all = false;
        for segment in segments {
            let next = match segment {
                Segment::Static(text) => self.nodes[node].statics.get(*text).copied(),
                Segment::Param(name) => {
                    names.push(Box::from(*name));
                    self.nodes[node].param
                }
                Segment::CatchAll(name) => {
                    names.push(Box::from(*name));
                    catch_all = true;
                    break;
                }
            };
            node = match next {
                Some(next) => next as usize,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(BuildNode::default());
                    let id32 = id as u32;
                    match segment {
                        Segment::Static(text) => {
                            self.nodes[node].statics.insert(Box::from(*text), id32);
                        }
                        _ => self.nodes[node].param = Some(id32),
                    }
                    id
                }
            };
        }
        let terminals = &mut self.terminals;
        let end = &mut self.nodes[node];
        let slot_of = if catch_all { &mut end.catch_all } else { &mut end.exact };
        let terminal = *slot_of.get_or_insert_with(|| {
            terminals.push(Terminal::default());
            (terminals.len() - 1) as u32
        });
        let terminal = &mut self.terminals[terminal as usize];
        if let Some(existing) = terminal.get(slot) {
            return Err(existing.rule.clone());
        }
        terminal.entries.push((slot, Entry { rule, names: names.into_boxed_slice() }));
        Ok(())
    }

    /// Freezes the trie into its lookup form.
    pub fn build(self) -> RuleTree {
        let nodes = self
            .nodes
            .into_iter()
            .map(|node| {
                let statics = if node.statics.len() > SCAN_LIMIT {
                    let mut children = node.statics;
                    children.shrink_to_fit();
                    Statics::Many(children)
                } else {
                    Statics::Few(node.statics.into_iter().collect())
                };
                Node {
                    statics,
                    param: node.param.unwrap_or(NONE),
                    exact: node.exact.unwrap_or(NONE),
                    catch_all: node.catch_all.unwrap_or(NONE),
                }
            })
            .collect();
        let terminals = self
            .terminals
            .into_iter()
            .map(|mut terminal| {
                terminal.entries.shrink_to_fit();
                terminal
            })
            .collect();
        RuleTree { nodes, terminals }
    }
}

impl RuleTree {
    /// The most specific rule for `choice` and a normalized `path`, with its captures.
    pub fn find<'t, 'p>(&'t self, choice: MethodChoice, path: &'p str) -> Option<(&'t Entry, Params<'t, 'p>)> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut values = [""; MAX_PARAMS];
        for pass in [Pass::Exact, Pass::CatchAll] {
            if let Some(entry) = self.walk(0, rest, 0, &mut values, choice, pass) {
                return Some((entry, Params { names: &entry.names, values }));
            }
        }
        None
    }

    fn walk<'p>(
        &self,
        node: u32,
        rest: &'p str,
        captured: usize,
        values: &mut [&'p str; MAX_PARAMS],
        choice: MethodChoice,
        pass: Pass,
    ) -> Option<&Entry> {
        let here = self.nodes.get(node as usize)?;
        if rest.is_empty() {
            return match pass {
                Pass::Exact => self.pick(here.exact, choice),
                Pass::CatchAll => None,
            };
        }
        let (segment, tail) = match rest.split_once('/') {
            Some((segment, tail)) => (segment, tail),
            None => (rest, ""),
        };
        if let Some(child) = here.statics.get(segment) {
            if let Some(entry) = self.walk(child, tail, captured, values, choice, pass) {
                return Some(entry);
            }
        }
        if here.param != NONE && captured < MAX_PARAMS {
            values[captured] = segment;
            if let Some(entry) = self.walk(here.param, tail, captured + 1, values, choice, pass) {
                return Some(entry);
            }
        }
        if pass == Pass::CatchAll && captured < MAX_PARAMS {
            if let Some(entry) = self.pick(here.catch_all, choice) {
                values[captured] = rest;
                return Some(entry);
            }
        }
        None
    }

    /// Every (slot, rule) pair in the trie, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (Slot, &Arc<Rule>)> {
        self.terminals.iter().flat_map(|terminal| terminal.entries.iter().map(|(slot, entry)| (*slot, &entry.rule)))
    }

    fn pick(&self, terminal: u32, choice: MethodChoice) -> Option<&Entry> {
        let terminal = self.terminals.get(terminal as usize)?;
        terminal
            .get(choice.own)
            .or_else(|| choice.fallback.and_then(|slot| terminal.get(slot)))
            .or_else(|| terminal.get(choice.any))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Exact,
    CatchAll,
}
