//! Resource ref templates such as `"{kind}:{namespace}/{name}"`, compiled once at load.

use super::path::decode_param;

/// A compiled resource ref template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTemplate {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Param(Box<str>),
}

/// Why a template did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{` without `}` or the reverse.
    #[error("unbalanced `{{` or `}}` in `{0}`")]
    Unbalanced(String),
    /// `{}`.
    #[error("empty parameter name in `{0}`")]
    EmptyName(String),
    /// A parameter the path template does not capture.
    #[error("parameter `{{{name}}}` is not captured by the rule's path (it captures: {captured})")]
    UnknownParam {
        /// The unknown name.
        name: String,
        /// The names the path captures.
        captured: String,
    },
}

impl RefTemplate {
    /// Compiles `template`; every `{param}` must be one of `path_params`.
    pub fn compile(template: &str, path_params: &[String]) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(TemplateError::Unbalanced(template.to_owned()));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].into()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| TemplateError::Unbalanced(template.to_owned()))?;
            let name = after[..close].trim_start_matches('*');
            if name.is_empty() {
                return Err(TemplateError::EmptyName(template.to_owned()));
            }
            if name.contains('{') {
                return Err(TemplateError::Unbalanced(template.to_owned()));
            }
            if !path_params.iter().any(|p| p == name) {
                return Err(TemplateError::UnknownParam {
                    name: name.to_owned(),
                    captured: if path_params.is_empty() { "nothing".into() } else { path_params.join(", ") },
                });
            }
            parts.push(Part::Param(name.into()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.into()));
        }
        Ok(Self { parts: parts.into_boxed_slice() })
    }

    /// Fills the template from matched parameters (percent-decoded); `None` when a value is
    /// missing or does not decode to UTF-8.
    pub fn render<'p>(&self, lookup: impl Fn(&str) -> Option<&'p str>) -> Option<String> {
        let mut out = String::new();
        for part in self.parts.iter() {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(name) => out.push_str(&decode_param(lookup(name)?)?),
            }
        }
        Some(out)
    }
}

/// The parameter names a path template captures, in order.
pub fn path_params(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(after[..close].trim_start_matches('*').to_owned());
        rest = &after[close + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<String> {
        vec!["kind".into(), "namespace".into(), "name".into()]
    }

    #[test]
    fn renders_entity_refs_from_params() {
        let template = RefTemplate::compile("{kind}:{namespace}/{name}", &params()).unwrap();
        let values = [("kind", "component"), ("namespace", "default"), ("name", "my%2Dservice")];
        let lookup = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(template.render(lookup).as_deref(), Some("component:default/my-service"));
    }

    #[test]
    fn rejects_unknown_and_malformed_params() {
        assert_eq!(
            RefTemplate::compile("{kind}:{ns}/{name}", &params()),
            Err(TemplateError::UnknownParam { name: "ns".into(), captured: "kind, namespace, name".into() })
        );
        assert!(matches!(RefTemplate::compile("{kind", &params()), Err(TemplateError::Unbalanced(_))));
        assert!(matches!(RefTemplate::compile("kind}", &params()), Err(TemplateError::Unbalanced(_))));
        assert!(matches!(RefTemplate::compile("{}", &params()), Err(TemplateError::EmptyName(_))));
    }

    #[test]
    fn lists_path_params() {
        assert_eq!(path_params("/a/{kind}/{namespace}/x/{*rest}"), vec!["kind", "namespace", "rest"]);
    }
}
