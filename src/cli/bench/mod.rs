//! `facegate bench`: speed and memory, measured (never asserted in tests). Every figure is a
//! median over many runs with the machine's core count beside it: these machines are shared.

mod e2e;
mod vision;

use clap::Subcommand;

use super::{Failure, GlobalArgs};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Per-stage face engine timings and 1:N search time
    Vision(vision::VisionBenchArgs),
    /// Face-to-relay latency, daemon start to READY, and the daemon's peak memory
    E2e(e2e::E2eBenchArgs),
}

pub fn run(global: &GlobalArgs, command: BenchCommand) -> Result<u8, Failure> {
    match command {
        BenchCommand::Vision(args) => vision::run(global, args),
        BenchCommand::E2e(args) => e2e::run(global, args),
    }
}
