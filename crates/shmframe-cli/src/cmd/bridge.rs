//! `shmframe bridge --from EP --to EP`: copies frames between a native channel (`NAME`), the
//! article's protocol (`seed:NAME`), a socket-served channel (`socket:PATH`) and Zenoh
//! (`zenoh:KEYEXPR`, with the `zenoh` feature).

use super::endpoint::{Input, Next, Output, Place};
use crate::cli::BridgeArgs;
use crate::stop;
use anyhow::bail;
use shmframe::WriterOptions;
use std::time::Duration;

/// How long a bridge waits for its source channel to appear.
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// One end of a bridge.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Local(Place),
    Zenoh(String),
}

fn parse(s: &str) -> anyhow::Result<Endpoint> {
    let ep = if let Some(n) = s.strip_prefix("seed:") {
        Endpoint::Local(Place::Seed(n.to_string()))
    } else if let Some(k) = s.strip_prefix("zenoh:") {
        Endpoint::Zenoh(k.to_string())
    } else if let Some(p) = s.strip_prefix("socket:") {
        Endpoint::Local(Place::Socket(p.into()))
    } else if let Some(n) = s.strip_prefix("shm:") {
        Endpoint::Local(Place::Named(n.to_string()))
    } else if s.contains(':') {
        bail!("endpoint `{s}`: write NAME (a shmframe channel), seed:NAME, socket:PATH or zenoh:KEYEXPR");
    } else {
        Endpoint::Local(Place::Named(s.to_string()))
    };
    match &ep {
        Endpoint::Local(Place::Named(n)) | Endpoint::Local(Place::Seed(n)) => {
            shmframe::Name::new(n)?;
        }
        Endpoint::Local(Place::Socket(p)) if p.as_os_str().is_empty() => {
            bail!("endpoint `{s}`: the socket path is empty")
        }
        Endpoint::Local(Place::Socket(_)) => {}
        Endpoint::Zenoh(k) if k.is_empty() => bail!("endpoint `{s}`: the key expression is empty"),
        Endpoint::Zenoh(_) => {}
    }
    Ok(ep)
}

/// Runs `shmframe bridge`.
pub fn run(a: BridgeArgs) -> anyhow::Result<()> {
    let from = parse(&a.from)?;
    let to = parse(&a.to)?;
    match (&from, &to) {
        (Endpoint::Zenoh(_), Endpoint::Zenoh(_)) => {
            bail!("both endpoints are Zenoh: use a Zenoh router for that")
        }
        (Endpoint::Zenoh(k), Endpoint::Local(p @ (Place::Named(_) | Place::Socket(_)))) => {
            zenoh(&a, false, k, p)
        }
        (Endpoint::Local(p @ (Place::Named(_) | Place::Socket(_))), Endpoint::Zenoh(k)) => {
            zenoh(&a, true, k, p)
        }
        (Endpoint::Zenoh(_), Endpoint::Local(_)) | (Endpoint::Local(_), Endpoint::Zenoh(_)) => bail!(
            "Zenoh bridges to native channels only: bridge seed:NAME to a native channel first, and that channel to Zenoh"
        ),
        (Endpoint::Local(f), Endpoint::Local(t)) => local(&a, f, t),
    }
}

fn local(a: &BridgeArgs, from: &Place, to: &Place) -> anyhow::Result<()> {
    if from == to {
        bail!("--from and --to are the same channel");
    }
    let Some(mut input) = Input::open(from, OPEN_WAIT, "shmframe bridge")? else {
        eprintln!(
            "shmframe bridge: stopped before {} appeared; 0 frames copied",
            a.from
        );
        return Ok(());
    };
    let mut opts = WriterOptions::new();
    if let Some(schema) = input.schema() {
        opts = opts.schema(schema);
    }
    let mut out = match to {
        Place::Named(n) => Output::create(n, false, opts, 0o600)?,
        Place::Seed(n) => Output::create(n, true, opts, 0o600)?,
        // A socket-served destination carries the source channel's name.
        Place::Socket(p) => Output::create(&input.name(), false, opts.socket(p), 0o600)?,
    };
    eprintln!("shmframe bridge: {} → {} (Ctrl-C stops)", a.from, a.to);
    let mut copied = 0u64;
    let mut warned = false;
    let result = loop {
        if stop::requested() || a.frames.is_some_and(|n| copied >= n) {
            break Ok(());
        }
        match input.next(Duration::from_millis(200)) {
            Ok(Next::Frame(f)) => {
                warned = false;
                // Frames from a seed channel carry no metadata, so none is attached downstream.
                if let Err(e) = out.write(f.dtype, f.shape, f.data, f.meta) {
                    break Err(e);
                }
                copied += 1;
            }
            Ok(Next::Idle) => {}
            Ok(Next::Gone(msg)) => {
                // A bridge outlives its source's writer: the next writer of that name is
                // picked up by later calls.
                if !warned {
                    eprintln!("shmframe bridge: {msg}");
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(Next::Ended(msg)) => {
                eprintln!("shmframe bridge: {msg}");
                break Ok(());
            }
            Err(e) => break Err(e),
        }
    };
    out.close()?;
    eprintln!("shmframe bridge: {copied} frames copied");
    result
}

#[cfg(feature = "zenoh")]
/// The channel name a socket-served channel made by a bridge carries: the socket file's stem
/// (`cam0.sock` → `cam0`) if that is a valid name.
fn served_name(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| shmframe::Name::new(s).is_ok())
        .unwrap_or("bridge")
        .to_string()
}

#[cfg(feature = "zenoh")]
fn zenoh(a: &BridgeArgs, to_zenoh: bool, key: &str, local: &Place) -> anyhow::Result<()> {
    if a.frames.is_some() {
        bail!("--frames is not supported with Zenoh endpoints: stop the bridge with Ctrl-C");
    }
    let (channel, local_socket) = match local {
        Place::Socket(p) => (served_name(p), Some(p.clone())),
        Place::Named(n) | Place::Seed(n) => (n.clone(), None),
    };
    let channel = channel.as_str();
    let opts = shmframe_zenoh::ZenohOptions {
        connect: a.zenoh_connect.clone(),
        listen: a.zenoh_listen.clone(),
        config: a.zenoh_config.clone(),
        local_socket,
    };
    if to_zenoh {
        shmframe_zenoh::channel_to_zenoh(channel, key, &opts, stop::flag())?;
    } else {
        shmframe_zenoh::zenoh_to_channel(key, channel, &opts, stop::flag())?;
    }
    Ok(())
}

#[cfg(not(feature = "zenoh"))]
fn zenoh(_a: &BridgeArgs, _to_zenoh: bool, key: &str, _local: &Place) -> anyhow::Result<()> {
    bail!(
        "endpoint `zenoh:{key}` needs Zenoh support: rebuild with `cargo build -p shmframe-cli --features zenoh`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse("cam0").unwrap(),
            Endpoint::Local(Place::Named("cam0".into()))
        );
        assert_eq!(
            parse("seed:cam0").unwrap(),
            Endpoint::Local(Place::Seed("cam0".into()))
        );
        assert_eq!(
            parse("socket:/run/cam.sock").unwrap(),
            Endpoint::Local(Place::Socket("/run/cam.sock".into()))
        );
        assert!(parse("socket:").is_err());
        assert_eq!(
            parse("zenoh:a/b/*").unwrap(),
            Endpoint::Zenoh("a/b/*".into())
        );
        assert!(parse("http:x")
            .unwrap_err()
            .to_string()
            .contains("seed:NAME"));
        assert!(parse("seed:bad name").is_err());
        assert!(parse("zenoh:").is_err());
    }
}
