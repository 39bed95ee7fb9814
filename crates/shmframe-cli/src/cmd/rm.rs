//! `shmframe rm NAME…` and `shmframe rm --stale`.

use crate::cli::RmArgs;
use shmframe::channels;

/// Runs `shmframe rm`.
pub fn run(a: RmArgs) -> anyhow::Result<()> {
    if a.stale {
        let removed = channels::remove_stale();
        for o in &removed {
            println!("removed /dev/shm/{o}");
        }
        eprintln!("{} stale object(s) removed", removed.len());
        return Ok(());
    }
    let mut failed = 0;
    for name in &a.names {
        match channels::remove(name) {
            Ok(()) => println!("removed {name}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} channel(s) not removed", a.names.len());
    }
    Ok(())
}
