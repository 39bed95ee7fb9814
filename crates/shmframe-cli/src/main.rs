//! The `shmframe` command (being built: see the CLI issue).
fn main() -> std::process::ExitCode {
    eprintln!("shmframe: the command-line front end is not built yet");
    std::process::ExitCode::FAILURE
}
