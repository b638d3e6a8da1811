//! Reading the user and the groups out of verified claims.

use serde_json::Value;

use super::AuthError;

/// A claim path such as `ent` or `realm_access.roles`, split once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    text: String,
    segments: Vec<String>,
}

impl ClaimPath {
    /// Parses a dotted claim path.
    pub fn parse(text: &str) -> Option<Self> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return None;
        }
        Some(Self { text: text.to_owned(), segments })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn lookup<'v>(&self, claims: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(claims, |value, segment| value.get(segment))
    }
}

/// True when `value` can travel in an identity header intact and is made only of characters
/// an entity ref may hold (letters, digits, `:`, `/`, `.`, `_`, `-`, `@`, `+`), so no ref can
/// smuggle a separator into the comma-separated ownership header.
pub fn is_safe_ref(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 512
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'_' | b'-' | b'@' | b'+'))
}

/// True when the claim is present (and not null).
pub fn has(claims: &Value, path: &ClaimPath) -> bool {
    !matches!(path.lookup(claims), None | Some(Value::Null))
}

/// The user entity ref.
pub fn user(claims: &Value, path: &ClaimPath) -> Result<String, AuthError> {
    match path.lookup(claims) {
        None | Some(Value::Null) => Err(AuthError::MissingClaim(path.as_str().to_owned())),
        Some(Value::String(user)) if is_safe_ref(user) => Ok(user.clone()),
        Some(Value::String(_)) => Err(bad(path, "holds characters an entity ref cannot contain")),
        Some(_) => Err(bad(path, "must be a string")),
    }
}

/// The groups: a missing claim is no groups; a string is one group; an array of strings is many.
pub fn groups(claims: &Value, path: &ClaimPath, max: usize) -> Result<Vec<String>, AuthError> {
    let values: &[Value] = match path.lookup(claims) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(single @ Value::String(_)) => std::slice::from_ref(single),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad(path, "must be a string or an array of strings")),
    };
    if values.len() > max {
        return Err(bad(path, &format!("holds {} refs, over the limit of {max}", values.len())));
    }
    values
        .iter()
        .map(|value| match value {
            Value::String(group) if is_safe_ref(group) => Ok(group.clone()),
            Value::String(_) => Err(bad(path, "holds a ref with characters an entity ref cannot contain")),
            _ => Err(bad(path, "must hold only strings")),
        })
        .collect()
}

fn bad(path: &ClaimPath, problem: &str) -> AuthError {
    AuthError::BadClaim { claim: path.as_str().to_owned(), problem: problem.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_groups_from_dotted_paths_strings_and_arrays() {
        let claims = json!({"sub": "user:default/jane", "realm_access": {"roles": ["group:default/a", "group:default/b"]}, "g": "group:default/c"});
        let roles = ClaimPath::parse("realm_access.roles").unwrap();
        assert_eq!(groups(&claims, &roles, 10).unwrap(), vec!["group:default/a", "group:default/b"]);
        assert_eq!(groups(&claims, &ClaimPath::parse("g").unwrap(), 10).unwrap(), vec!["group:default/c"]);
        assert!(groups(&claims, &ClaimPath::parse("missing").unwrap(), 10).unwrap().is_empty());
        assert_eq!(user(&claims, &ClaimPath::parse("sub").unwrap()).unwrap(), "user:default/jane");
    }

    #[test]
    fn refuses_refs_that_could_smuggle_identities() {
        let claims = json!({"sub": "user:default/jane,group:default/admins", "ent": ["group:default/a\n"], "n": 5});
        let sub = ClaimPath::parse("sub").unwrap();
        assert!(matches!(user(&claims, &sub), Err(AuthError::BadClaim { .. })));
        let ent = ClaimPath::parse("ent").unwrap();
        assert!(matches!(groups(&claims, &ent, 10), Err(AuthError::BadClaim { .. })));
        assert!(matches!(user(&claims, &ClaimPath::parse("n").unwrap()), Err(AuthError::BadClaim { .. })));
        assert!(matches!(user(&claims, &ClaimPath::parse("x").unwrap()), Err(AuthError::MissingClaim(_))));
    }

    #[test]
    fn bounds_the_number_of_groups() {
        let many: Vec<String> = (0..5).map(|i| format!("group:default/g{i}")).collect();
        let claims = json!({ "ent": many });
        let err = groups(&claims, &ClaimPath::parse("ent").unwrap(), 4).unwrap_err();
        assert_eq!(err.to_string(), "claim `ent` holds 5 refs, over the limit of 4");
    }

    #[test]
    fn rejects_empty_path_segments() {
        assert!(ClaimPath::parse("a..b").is_none());
        assert!(ClaimPath::parse("").is_none());
    }
}
