//! The `stagedoor` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc hands freed pages back to the OS (decay-based purging), so the gateway's RSS comes
/// back down after a burst of connections; glibc's malloc kept ~75 MiB after 2,000 connections
/// closed (measured in tests/soak.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    stagedoor::cli::run(stagedoor::cli::Cli::parse())
}
