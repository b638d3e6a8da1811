//! A static group hierarchy from config: a group's members also count as members of its
//! parent groups, up to a depth limit, so a policy written for `group:default/engineering`
//! covers a token that names only `group:default/team-a` (Backstage itself never assumes
//! transitive membership; users ask for it, §8.4 of the reference).
//!
//! The ancestors of every configured group are computed once at load (breadth first, cycles
//! cut, at most `max_depth` levels), so expanding a token's groups is one map lookup per group.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Group → its ancestors within the depth limit, nearest first.
#[derive(Debug, Default)]
pub struct GroupHierarchy {
    ancestors: HashMap<Box<str>, Box<[Box<str>]>>,
}

impl GroupHierarchy {
    /// Computes every group's ancestors from `parents` (group → its direct parents),
    /// following at most `max_depth` levels.
    pub fn new(parents: &BTreeMap<String, Vec<String>>, max_depth: usize) -> Self {
        let mut ancestors = HashMap::with_capacity(parents.len());
        for group in parents.keys() {
            let mut seen: HashSet<&str> = HashSet::from([group.as_str()]);
            let mut found: Vec<Box<str>> = Vec::new();
            let mut level: Vec<&str> = vec![group.as_str()];
            for _ in 0..max_depth {
                let mut next = Vec::new();
                for parent in level.iter().filter_map(|g| parents.get(*g)).flatten() {
                    if seen.insert(parent.as_str()) {
                        found.push(parent.as_str().into());
                        next.push(parent.as_str());
                    }
                }
                if next.is_empty() {
                    break;
                }
                level = next;
            }
            ancestors.insert(group.as_str().into(), found.into_boxed_slice());
        }
        Self { ancestors }
    }

    /// `groups` followed by their ancestors not already present.
    pub fn expand(&self, mut groups: Vec<String>) -> Vec<String> {
        let direct = groups.len();
        let mut present: HashSet<String> = HashSet::new();
        for i in 0..direct {
            let Some(ancestors) = self.ancestors.get(groups[i].as_str()) else { continue };
            if present.is_empty() {
                present.extend(groups.iter().cloned());
            }
            for ancestor in ancestors.iter() {
                if present.insert(ancestor.to_string()) {
                    groups.push(ancestor.to_string());
                }
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hierarchy(edges: &[(&str, &[&str])], max_depth: usize) -> GroupHierarchy {
        let parents = edges
            .iter()
            .map(|(group, parents)| (group.to_string(), parents.iter().map(|p| p.to_string()).collect()))
            .collect();
        GroupHierarchy::new(&parents, max_depth)
    }

    fn expand(h: &GroupHierarchy, groups: &[&str]) -> Vec<String> {
        h.expand(groups.iter().map(|g| g.to_string()).collect())
    }

    #[test]
    fn ancestors_are_added_nearest_first_up_to_the_depth_limit() {
        let edges: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c", "d"]), ("c", &["e"])];
        assert_eq!(expand(&hierarchy(edges, 5), &["a"]), ["a", "b", "c", "d", "e"]);
        assert_eq!(expand(&hierarchy(edges, 2), &["a"]), ["a", "b", "c", "d"]);
        assert_eq!(expand(&hierarchy(edges, 1), &["a"]), ["a", "b"]);
        assert_eq!(expand(&hierarchy(edges, 5), &["x"]), ["x"], "unknown groups are kept as they are");
    }

    #[test]
    fn cycles_end_and_nothing_is_listed_twice() {
        let edges: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a", "c"]), ("c", &["b"])];
        assert_eq!(expand(&hierarchy(edges, 50), &["a"]), ["a", "b", "c"]);
        assert_eq!(expand(&hierarchy(edges, 50), &["c", "a"]), ["c", "a", "b"]);
    }
}
