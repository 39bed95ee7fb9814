//! `shmframe ls`: every channel in /dev/shm, and the objects with our prefix that are broken.

use crate::cli::LsArgs;
use shmframe::channels::{self, BrokenChannel, ChannelStatus};

/// Runs `shmframe ls`.
pub fn run(a: LsArgs) -> anyhow::Result<()> {
    let (good, bad) = channels::list();
    if a.json {
        let j = serde_json::json!({
            "channels": good.iter().map(channel_json).collect::<Vec<_>>(),
            "broken": bad.iter().map(broken_json).collect::<Vec<_>>(),
        });
        println!("{j}");
        return Ok(());
    }
    if good.is_empty() && bad.is_empty() {
        eprintln!("no channels (start one with `shmframe write NAME`)");
        return Ok(());
    }
    if !good.is_empty() {
        println!(
            "{:<24} {:>8} {:<6} {:<7} {:<7} {:<16} {:>7} {:>9} {:>11}",
            "NAME", "PID", "WRITER", "STATE", "DTYPE", "SHAPE", "FPS", "AGE", "BYTES"
        );
    }
    for c in &good {
        let (dtype, shape) = match &c.last_frame {
            Some((_, d, s)) => (d.name().to_string(), shape_str(s)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<24} {:>8} {:<6} {:<7} {:<7} {:<16} {:>7.1} {:>9} {:>11}",
            c.name,
            c.writer_pid,
            if c.writer_alive { "alive" } else { "gone" },
            c.state,
            dtype,
            shape,
            c.fps,
            c.age_s.map_or("-".into(), |a| format!("{a:.1}s")),
            c.bytes
        );
    }
    for b in &bad {
        println!("broken: /dev/shm/{}: {}", b.object, b.error);
    }
    if !bad.is_empty() || good.iter().any(|c| !c.writer_alive) {
        eprintln!("(`shmframe rm --stale` removes channels whose writer is gone)");
    }
    if !bad.is_empty() {
        eprintln!(
            "(`shmframe rm --stale` leaves broken entries alone; `shmframe rm /dev/shm/OBJECT`, as listed, removes one)"
        );
    }
    Ok(())
}

fn shape_str(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// The JSON form of a channel's status (also used by `info`).
pub fn channel_json(c: &ChannelStatus) -> serde_json::Value {
    let (index, dtype, shape) = match &c.last_frame {
        Some((i, d, s)) => (Some(*i), Some(d.name()), Some(s.clone())),
        None => (None, None, None),
    };
    serde_json::json!({
        "name": c.name,
        "writer_pid": c.writer_pid,
        "writer_alive": c.writer_alive,
        "state": c.state,
        "dtype": dtype,
        "shape": shape,
        "last_index": index,
        "frames": c.frames,
        "fps": c.fps,
        "age_s": c.age_s,
        "bytes": c.bytes,
        "mode": format!("0o{:o}", c.mode),
        "uid": c.uid,
        "version": c.version,
        "generation": c.generation,
        "slots": c.slots,
        "slot_capacity": c.slot_capacity,
        "slot_frames": c.slot_frames,
        "socket": c.socket,
        "schema": c.schema.as_ref().map(|s| serde_json::json!({
            "type_name": s.type_name,
            "size": s.size,
            "align": s.align,
            "fields": s.fields.iter().map(|f| serde_json::json!({
                "name": f.name, "dtype": f.dtype.name(), "count": f.count, "offset": f.offset,
            })).collect::<Vec<_>>(),
        })),
    })
}

fn broken_json(b: &BrokenChannel) -> serde_json::Value {
    serde_json::json!({ "object": b.object, "error": b.error })
}
