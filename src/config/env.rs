//! `${VAR}` substitution in the config text, before YAML parsing.
//!
//! `${VAR}` is replaced by the variable's value (an error names the variable and the line when
//! it is not set), `${VAR:-default}` falls back to `default`, and `$${` stands for a literal `${`.
//! Hand-written: the crates that do this (`shellexpand`, `envsubst`) expand more syntax than
//! a config file should, or report no line.

use std::collections::HashMap;

/// A variable that is referenced but not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar {
    /// Variable name.
    pub name: String,
    /// 1-based line of the reference.
    pub line: usize,
}

/// Substitutes variables using `lookup`.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, MissingVar> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut line = 1;
    while let Some(at) = rest.find('$') {
        let (before, from) = rest.split_at(at);
        line += before.matches('\n').count();
        out.push_str(before);
        if let Some(after) = from.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = from.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                out.push_str("${");
                rest = after;
                continue;
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(MissingVar { name: name.to_owned(), line }),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &from[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitution from a fixed map (tests, and callers that pass variables as data).
pub fn from_map(vars: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| vars.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        HashMap::from([("HOST".to_string(), "127.0.0.1".to_string())])
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let text = "a: ${HOST}\nb: ${PORT:-7000}\nc: $${HOST}\nd: $5";
        assert_eq!(substitute(text, from_map(&vars())).unwrap(), "a: 127.0.0.1\nb: 7000\nc: ${HOST}\nd: $5");
    }

    #[test]
    fn names_the_missing_variable_and_its_line() {
        let err = substitute("a: 1\nb: ${NOPE}\n", from_map(&vars())).unwrap_err();
        assert_eq!(err, MissingVar { name: "NOPE".into(), line: 2 });
    }
}
