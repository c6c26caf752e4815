//! The `facegate` command: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    facegate::cli::run(facegate::cli::Cli::parse())
}
