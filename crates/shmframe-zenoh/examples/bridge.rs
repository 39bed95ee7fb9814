//! One side of a bridge as its own process, without the `shmframe` command:
//!
//! ```text
//! bridge send CHANNEL KEY [--connect E]... [--listen E]... [--config FILE] [--frames N]
//! bridge recv KEY CHANNEL [--connect E]... [--listen E]... [--config FILE] [--frames N]
//! ```
//!
//! It stops cleanly when its standard input closes (or after N frames) and prints its counters as
//! one JSON object on stdout.

use shmframe_zenoh::{receive, send, BridgeStats, ZenohOptions};
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn usage() -> ExitCode {
    eprintln!("usage: bridge send CHANNEL KEY | recv KEY CHANNEL [--connect E]... [--listen E]... [--config FILE] [--frames N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return usage();
    }
    let mut opts = ZenohOptions::default();
    let mut frames = None;
    let mut it = args[3..].iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return usage();
        };
        match flag.as_str() {
            "--connect" => opts.connect.push(value.clone()),
            "--listen" => opts.listen.push(value.clone()),
            "--config" => opts.config = Some(value.into()),
            "--frames" => match value.parse() {
                Ok(n) => frames = Some(n),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        flag.store(true, Ordering::Relaxed);
    });
    let result = match args[0].as_str() {
        "send" => send(&args[1], &args[2], &opts, &stop, frames),
        "recv" => receive(&args[1], &args[2], &opts, &stop, frames),
        _ => return usage(),
    };
    match result {
        Ok(s) => {
            let BridgeStats {
                frames,
                bytes,
                skipped,
                dropped,
                lost,
                rejected,
                errors,
            } = s;
            println!(
                "{{\"frames\":{frames},\"bytes\":{bytes},\"skipped\":{skipped},\"dropped\":{dropped},\"lost\":{lost},\"rejected\":{rejected},\"errors\":{errors}}}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
