//! Who is asking: the principal that authentication produces and every later stage reads.
//!
//! A [`Principal`] carries no jsonwebtoken types; it is what Backstage calls the user's
//! `info`: the user entity ref and the ownership entity refs (the user ref itself plus
//! the groups the user belongs to). It is cheap to clone (shared, immutable parts), so the
//! verified-token cache can hand out copies without allocating.

use std::sync::Arc;

use http::HeaderValue;

/// An authenticated caller, as Backstage's `BackstageUserInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user entity ref, e.g. `user:default/jane` (from `sub` by default).
    pub user_entity_ref: Arc<str>,
    /// Ownership refs, always including [`Principal::user_entity_ref`] first, no duplicates.
    pub ownership_refs: Arc<[String]>,
    /// Name of the configured issuer that verified the token.
    pub issuer: Arc<str>,
    /// The identity header values, built once per verified token.
    user_header: HeaderValue,
    ownership_header: HeaderValue,
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
        // Refs from tokens are checked to be entity-ref characters before they get here, so
        // these conversions succeed; a value that would not is sent as an empty header.
        let user_header = HeaderValue::from_str(&user_entity_ref).unwrap_or(HeaderValue::from_static(""));
        let ownership_header = HeaderValue::from_str(&ownership_refs.join(",")).unwrap_or(HeaderValue::from_static(""));
        Self {
            user_entity_ref: user_entity_ref.into(),
            ownership_refs: ownership_refs.into(),
            issuer,
            user_header,
            ownership_header,
        }
    }

    /// The value of the user identity header.
    pub fn user_header(&self) -> &HeaderValue {
        &self.user_header
    }

    /// The value of the ownership identity header (comma-separated refs).
    pub fn ownership_header(&self) -> &HeaderValue {
        &self.ownership_header
    }
}
