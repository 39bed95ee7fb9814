//! One module per subcommand; [`run`] dispatches.

mod bridge;
mod demo;
mod endpoint;
mod info;
mod ls;
mod read;
mod rm;
mod write;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Write(a) => write::run(a),
        Command::Read(a) => read::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Info(a) => info::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => shmframe_bench::run(a),
        Command::Bridge(a) => bridge::run(a),
    }
}
