//! `shmframe demo`: a writer and a reader as two separate processes (this executable started
//! twice) on the test pattern; prints what the reader measured and where its snapshot is.

use crate::cli::DemoArgs;
use crate::sink::window;
use crate::stop;
use anyhow::{bail, Context};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Asks `child` to stop as Ctrl-C would, and waits for it.
fn interrupt(child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).context("child without a pid")?;
    // The child may have exited already (then there is nobody to signal).
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `shmframe demo`.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .context("cannot find this executable to start the demo's processes")?;
    let pid = std::process::id();
    let name = format!("demo-{pid}");
    let dir = std::env::temp_dir().join(format!("shmframe-demo-{pid}"));
    let headless = window::unavailable();
    if let Some(why) = &headless {
        eprintln!("demo: {why}: the reader runs headless for {} s", a.seconds);
    }

    let mut writer = Command::new(&exe)
        .args(["write", &name, "--source", "testsrc", "--fps", "30"])
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start the writer process")?;
    let mut reader_cmd = Command::new(&exe);
    reader_cmd
        .args(["read", &name, "--json", "--every", "30", "--timeout", "10"])
        .arg("--seconds")
        .arg(a.seconds.to_string())
        .arg("--save")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if headless.is_some() {
        reader_cmd.arg("--headless");
    }
    let mut reader = match reader_cmd.spawn() {
        Ok(r) => r,
        Err(e) => {
            interrupt(&mut writer)?;
            return Err(e).context("cannot start the reader process");
        }
    };
    eprintln!(
        "demo: writer pid {} and reader pid {} share channel `{name}`",
        writer.id(),
        reader.id()
    );
    // Wait for the reader, but stop both processes at once on Ctrl-C or SIGTERM (a SIGTERM sent
    // to this process alone does not reach them).
    while reader
        .try_wait()
        .context("waiting for the reader")?
        .is_none()
    {
        if stop::requested() {
            interrupt(&mut reader)?;
            interrupt(&mut writer)?;
            bail!("interrupted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = reader
        .wait_with_output()
        .context("waiting for the reader")?;
    let wstatus = interrupt(&mut writer)?;
    if stop::requested() {
        bail!("interrupted");
    }
    if !out.status.success() {
        bail!("the reader failed ({}); see its message above", out.status);
    }
    if !wstatus.success() {
        bail!("the writer failed ({}); see its message above", wstatus);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let j: serde_json::Value = serde_json::from_str(text.trim())
        .with_context(|| format!("the reader printed something other than its summary: {text}"))?;
    let us = |k: &str| {
        j[k].as_u64()
            .map_or("n/a".to_string(), |v| format!("{v} µs"))
    };
    println!("demo summary (two processes, channel `{name}`):");
    println!("  frames      {}", j["frames"]);
    println!("  fps         {}", j["fps"]);
    println!(
        "  latency     p50 {}, p99 {}",
        us("latency_us_p50"),
        us("latency_us_p99")
    );
    println!("  missed      {}", j["missed"]);
    println!("  torn        {}", j["torn"]);
    println!(
        "  shape       {} {}",
        j["shape"],
        j["dtype"].as_str().unwrap_or("?")
    );
    match j["snapshot"].as_str() {
        Some(p) => println!("  snapshot    {p}"),
        None => println!("  snapshot    (none: no frame arrived)"),
    }
    if shmframe::channels::inspect(&name).is_ok() {
        bail!("the writer exited but channel `{name}` is still there");
    }
    if j["frames"].as_u64().unwrap_or(0) == 0 {
        bail!("the reader received no frame");
    }
    Ok(())
}
