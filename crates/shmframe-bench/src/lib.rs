//! The benchmark behind `shmframe bench`.
//!
//! Interface used by the CLI: `shmframe bench` embeds [`BenchArgs`] and calls [`run`]; peer
//! processes are started by re-running the current executable with `bench --peer …`.

/// Options of `shmframe bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Finish in under a minute (fewer frames, fewer payloads).
    #[arg(long)]
    pub quick: bool,
}

/// Runs the benchmark and prints its table.
pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is not built yet")
}
