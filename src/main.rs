//! The `stagedoor` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stagedoor::cli::run(stagedoor::cli::Cli::parse())
}
