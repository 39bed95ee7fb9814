//! Stand-alone runner: `cargo run --release -p shmframe-bench --example bench -- bench --quick`.
//! Any binary that dispatches `bench …` to [`shmframe_bench::run`] works the same way.
use clap::Parser;

#[derive(Parser)]
enum Cli {
    /// Benchmarks side by side.
    Bench(shmframe_bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let Cli::Bench(args) = Cli::parse();
    shmframe_bench::run(args)
}
