//! The `shmframe` command: publish frames to a shared-memory channel (`write`), show or record
//! them (`read`), manage channels (`ls`, `info`, `rm`), run a two-process `demo`, the `bench`mark,
//! and `bridge` channels to the article's protocol or over Zenoh.
//!
//! `main` only parses the command line, installs the Ctrl-C handler and maps errors to an exit
//! code; each subcommand lives in `cmd/`.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod convert;
mod sink;
mod source;
mod stop;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    stop::install();
    match cmd::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
