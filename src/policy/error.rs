//! Why a policy file was refused: it could not be read, it is not valid YAML for the
//! schema, or it broke one or more rules (all of them are listed).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a policy file could not be loaded. Every message starts with the file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("{}: cannot read policy file: {error}", file.display())]
    Read {
        /// The policy file.
        file: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// Not YAML, an unknown key, or a value of the wrong type. The message is the YAML
    /// parser's own, with the key path and the line and column.
    #[error("{}: {message}", file.display())]
    Syntax {
        /// The policy file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The file parsed but broke one or more rules; rendered one problem per line.
    #[error("{}", ProblemLines { file, problems })]
    Invalid {
        /// The policy file.
        file: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<PolicyProblem>,
    },
}

/// One rule a policy file broke, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Key path, e.g. `roles[1].allow[0].conditions`.
    pub at: String,
    /// What was expected, lowercase, user input in backticks.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Renders `file: at: message` lines, joined by newlines.
struct ProblemLines<'a> {
    file: &'a Path,
    problems: &'a [PolicyProblem],
}

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", self.file.display())?;
        }
        Ok(())
    }
}

/// Collects problems while compiling, so that one load reports all of them.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<PolicyProblem>);

impl Problems {
    /// Records a problem at key path `at`.
    pub(super) fn push(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(PolicyProblem { at: at.into(), message: message.into() });
    }

    /// Number of problems so far.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(value)` when nothing was recorded, else every problem.
    pub(super) fn into_result<T>(self, file: &Path, value: T) -> Result<T, PolicyFileError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(PolicyFileError::Invalid { file: file.to_owned(), problems: self.0 })
        }
    }
}
