//! `include:`: route groups read from other files (the presets in `config/presets/`), merged
//! after the config file's own groups.
//!
//! An included file holds only `routes:`, in exactly the config file's shape, with `${VAR}`
//! substituted the same way; its problems name it and the key path inside it. Nested includes
//! are refused: with one level, the config file lists every file its routes come from, and
//! there is no cycle to detect.

use std::path::{Path, PathBuf};

use super::{ConfigError, Problem, raw};

/// The route groups of one included file.
#[derive(Debug)]
pub(super) struct Included {
    /// The resolved path, as errors and rule labels show it.
    pub(super) file: String,
    /// Its `routes:`.
    pub(super) routes: Vec<raw::Route>,
}

/// Reads every file `list` names (relative to `base`, the config file's folder). A file that
/// cannot be read, is listed twice or includes others is a problem (all are collected); a
/// syntax error or an unset `${VAR}` in an included file is returned at once, naming that file.
pub(super) fn load(
    list: &[String],
    config_file: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Included>, Vec<Problem>), ConfigError> {
    let mut included = Vec::new();
    let mut problems = Vec::new();
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let key = format!("include[{i}]");
        let path = base.join(entry);
        let file = path.display().to_string();
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == path) {
            problems.push(problem(None, key, format!("`{file}` is already included by include[{first}]")));
            continue;
        }
        seen.push((path.clone(), i));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) => {
                problems.push(problem(None, key, format!("cannot read `{file}`: {err}")));
                continue;
            }
        };
        let raw: raw::Included = super::parse(&text, &file, env)?;
        if raw.include.is_some() {
            problems.push(problem(
                Some(&file),
                "include".into(),
                format!("an included file cannot include others (nested includes are not supported); list every file in the `include` of `{config_file}`"),
            ));
        }
        included.push(Included { file, routes: raw.routes });
    }
    Ok((included, problems))
}

fn problem(file: Option<&str>, key: String, message: String) -> Problem {
    Problem { file: file.map(str::to_owned), key, message }
}

#[cfg(test)]
mod preset_tests;
#[cfg(test)]
mod tests;
