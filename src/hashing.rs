//! Hash maps for the lookup tables built at load (policy index, RBAC roles, route trie):
//! foldhash instead of the standard SipHash, several times faster on the short string keys
//! every request looks up. Still seeded per process; and since these tables are only ever
//! filled from configuration, request input can look keys up but never add colliding ones.

use std::collections::{HashMap, HashSet};

/// A map for load-time tables.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A set for load-time tables.
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
