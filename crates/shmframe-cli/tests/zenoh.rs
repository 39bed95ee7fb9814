//! `shmframe bridge` over Zenoh (built only with the `zenoh` feature): a native channel goes out
//! over a TCP Zenoh link on localhost and comes back as another native channel, pixels intact.

mod util;

use rustix::process::Signal;
use std::time::Duration;
use util::{json, Dir};

#[test]
fn native_to_zenoh_to_native_over_tcp() {
    let mut d = Dir::new("zenoh");
    let a = d.channel("a");
    let b = d.channel("b");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let key = format!("sft/cli/{}", std::process::id());
    let img = util::pattern(24, 16);
    let src = util::save_png(&d, "src.png", &img);
    let w = d.spawn(&["write", &a, "--source", &src, "--fps", "30"]);
    d.wait_channel(&a);
    let zkey = format!("zenoh:{key}");
    let out = d.spawn(&[
        "bridge",
        "--from",
        &a,
        "--to",
        &zkey,
        "--zenoh-listen",
        &endpoint,
    ]);
    let back = d.spawn(&[
        "bridge",
        "--from",
        &zkey,
        "--to",
        &b,
        "--zenoh-connect",
        &endpoint,
    ]);
    let o = d.run(&[
        "read",
        &b,
        "--headless",
        "--frames",
        "3",
        "--json",
        "--timeout",
        "60",
    ]);
    let j = json(&o);
    assert_eq!(j["shape"], serde_json::json!([16, 24, 3]));
    assert_eq!(
        j["torn"], 0,
        "the metadata's checksums still match after Zenoh"
    );
    let mut r = shmframe::Reader::open(&b).unwrap();
    let f = r.next(Some(Duration::from_secs(10))).unwrap();
    let want: Vec<u8> = img
        .pixels()
        .flat_map(|p| [p.0[2], p.0[1], p.0[0]])
        .collect();
    assert_eq!(f.data, want);
    for p in [back, out, w] {
        d.signal(p, Signal::INT);
        util::ok(&d.wait(p));
    }
}
