//! Who is asking: the principal that authentication produces and every later stage reads.
//!
//! A [`Principal`] carries no jsonwebtoken types; it is what Backstage calls the user's
//! `info`: the user entity ref and the ownership entity refs (the user ref itself plus
//! the groups the user belongs to).

use std::sync::Arc;

/// An authenticated caller, as Backstage's `BackstageUserInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user entity ref, e.g. `user:default/jane` (from `sub` by default).
    pub user_entity_ref: String,
    /// Ownership refs, always including [`Principal::user_entity_ref`] first, no duplicates.
    pub ownership_refs: Vec<String>,
    /// Name of the configured issuer that verified the token.
    pub issuer: Arc<str>,
}

impl Principal {
    /// Builds a principal; the user ref is put first among the ownership refs and
    /// duplicates are dropped, as Backstage does.
    pub fn new(user_entity_ref: String, groups: Vec<String>, issuer: Arc<str>) -> Self {
        let mut ownership_refs = Vec::with_capacity(groups.len() + 1);
        ownership_refs.push(user_entity_ref.clone());
        for group in groups {
            if !ownership_refs.contains(&group) {
                ownership_refs.push(group);
            }
        }
        Self { user_entity_ref, ownership_refs, issuer }
    }
}
