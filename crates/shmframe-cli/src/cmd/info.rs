//! `shmframe info NAME` (or `--socket PATH`): header, metadata schema and slots of one channel.

use super::ls::channel_json;
use crate::cli::InfoArgs;
use shmframe::channels;

/// Runs `shmframe info`.
pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let c = match (&a.socket, &a.name) {
        (Some(path), _) => channels::inspect_socket(path)?,
        (None, Some(name)) => {
            // A FIFO, directory or link under the name is named as such (and never opened).
            super::endpoint::refuse_non_regular(name, false)?;
            channels::inspect(name)?
        }
        (None, None) => anyhow::bail!("give a channel name or --socket PATH"),
    };
    if a.json {
        println!("{}", channel_json(&c));
        return Ok(());
    }
    println!("channel      {}", c.name);
    match &c.socket {
        Some(path) => println!(
            "memory       anonymous (memfd, {} bytes, uid {}), served on {path}",
            c.bytes, c.uid
        ),
        None => println!(
            "object       {}/{}{} ({} bytes, mode 0o{:o}, uid {})",
            shmframe::SHM_DIR,
            shmframe::OBJECT_PREFIX,
            c.name,
            c.bytes,
            c.mode,
            c.uid
        ),
    }
    println!(
        "writer       pid {} ({})",
        c.writer_pid,
        if c.writer_alive { "alive" } else { "gone" }
    );
    println!("state        {}", c.state);
    println!(
        "layout       version {}, generation {}",
        c.version, c.generation
    );
    println!("frames       {} published, {:.1} fps", c.frames, c.fps);
    match &c.last_frame {
        Some((i, d, s)) => println!(
            "newest       #{i}: {d} {s:?}{}",
            c.age_s.map_or(String::new(), |a| format!(", {a:.2} s ago"))
        ),
        None => println!("newest       (no frame yet)"),
    }
    match &c.schema {
        Some(s) => println!("schema       {s}"),
        None => println!("schema       (no metadata)"),
    }
    println!("slots        {} × {} bytes", c.slots, c.slot_capacity);
    for (i, f) in c.slot_frames.iter().enumerate() {
        match f {
            Some(idx) => println!("  slot {i}     frame #{idx}"),
            None => println!("  slot {i}     (empty or being written)"),
        }
    }
    Ok(())
}
