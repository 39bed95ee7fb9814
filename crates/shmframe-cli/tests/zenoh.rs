#![cfg(feature = "zenoh")]
//! End-to-end tests of `shmframe bridge` with Zenoh endpoints: a local writer in this process on
//! one channel, two `shmframe bridge` processes (Zenoh peers over TCP on loopback, or in two
//! network namespaces joined by a veth pair), and a local reader in this process on the recreated
//! channel checking every byte and the metadata.
//!
//! Run: `cargo test -p shmframe-cli --features zenoh --test zenoh`.

mod util;

use rustix::process::{kill_process, Pid, Signal};
use shmframe::{DType, Reader, Writer, WriterOptions};
use shmframe_zenoh::zenoh::{self, Wait};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

shmframe::metadata! {
    /// Written with every test frame: which pattern the pixels follow.
    struct Stamp { seq: u64, sent_ns: u64, kind: u32, check: [u8; 4] }
}

/// Generous bound so a broken bridge fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `shmframe bridge` process; its stderr lines are echoed and forwarded to `lines`.
struct Side {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Side {
    fn start(prefix: &[&str], args: &[String]) -> Side {
        let bin = env!("CARGO_BIN_EXE_shmframe");
        let mut cmd = if prefix.is_empty() {
            Command::new(bin)
        } else {
            let mut c = Command::new(prefix[0]);
            c.args(&prefix[1..]).arg(bin);
            c
        };
        let mut child = cmd
            .arg("bridge")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmframe bridge");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  [bridge] {line}");
                let _ = tx.send(line);
            }
        });
        Side { child, lines }
    }

    /// Waits for a stderr line containing `what`.
    fn expect(&self, what: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line containing {what:?} from the bridge: {e}"),
            }
        }
    }

    /// Stops the bridge as Ctrl-C does (SIGTERM), checks it exits with success, and returns the
    /// counters line it prints last.
    fn finish(mut self) -> String {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        kill_process(pid, Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "bridge exited with {status}");
        let mut last = String::new();
        while let Ok(l) = self.lines.recv_timeout(PATIENCE) {
            if l.contains(" frames ") {
                last = l;
            }
        }
        assert!(!last.is_empty(), "no counters printed at exit");
        last
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The number before `word` in a counters line, e.g. `count(line, "rejected")`.
fn count(line: &str, word: &str) -> u64 {
    let at = line
        .find(&format!(" {word}"))
        .unwrap_or_else(|| panic!("{word} in {line}"));
    line[..at]
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number before {word} in {line}"))
}

/// The frame the writer publishes for `seq`: a few shapes and dtypes, one large enough to be
/// fragmented by Zenoh and to grow the channels.
fn pattern(seq: u64) -> (DType, Vec<usize>, Vec<u8>) {
    let (dtype, shape) = match seq % 4 {
        0 => (DType::U8, vec![48, 64, 3]),
        1 => (DType::U16, vec![16, 32]),
        2 => (DType::F32, vec![5, 7, 2, 3]),
        _ => (DType::U8, vec![720, 1280, 3]),
    };
    let n: usize = shape.iter().product::<usize>() * dtype.size();
    let data = (0..n)
        .map(|i| {
            (i as u64)
                .wrapping_mul(7)
                .wrapping_add(seq.wrapping_mul(131)) as u8
        })
        .collect();
    (dtype, shape, data)
}

/// Writes frames to `name` until `stop`; `written` follows the next sequence number.
fn spawn_writer(
    name: &str,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    spawn_writer_with(name, WriterOptions::new(), stop, written)
}

/// As [`spawn_writer`], the channel created with `opts` (a socket, say).
fn spawn_writer_with(
    name: &str,
    opts: WriterOptions,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    let name = name.to_string();
    let mut w = Writer::create(&name, opts.metadata::<Stamp>()).unwrap();
    std::thread::spawn(move || {
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let (dtype, shape, data) = pattern(seq);
            let meta = Stamp {
                seq,
                sent_ns: shmframe::monotonic_ns(),
                kind: (seq % 4) as u32,
                check: [1, 2, 3, 4],
            };
            w.write_with_meta(dtype, &shape, &data, bytemuck_bytes(&meta))
                .unwrap();
            seq += 1;
            written.store(seq, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(10));
        }
        w.close().unwrap();
        seq
    })
}

fn bytemuck_bytes(m: &Stamp) -> &[u8] {
    shmframe::__bytemuck::bytes_of(m)
}

/// Reads `count` frames from the recreated channel and checks each bit for bit.
fn read_and_check(r: &mut Reader, count: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        let f = match r.next(Some(PATIENCE)) {
            Ok(f) => f,
            Err(shmframe::ReadError::WriterGone { .. } | shmframe::ReadError::Closed { .. }) => {
                continue
            }
            Err(e) => panic!("reading the recreated channel: {e}"),
        };
        let m: Stamp = r.meta_of(&f).expect("metadata with the writer's schema");
        let (dtype, shape, data) = pattern(m.seq);
        assert_eq!((f.dtype, &f.shape), (dtype, &shape), "frame {}", m.seq);
        assert!(
            f.data == data,
            "frame {} differs from what was written",
            m.seq
        );
        assert_eq!((m.kind, m.check), ((m.seq % 4) as u32, [1, 2, 3, 4]));
        seqs.push(m.seq);
    }
    seqs
}

/// Reads until `count` checked frames with a sequence number of at least `from` arrived: frames
/// written after a given moment, so they can only have come through bridges started before it.
fn read_from(r: &mut Reader, from: u64, count: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        seqs.extend(read_and_check(r, 1).into_iter().filter(|&s| s >= from));
    }
    seqs
}

/// Two channels, a key and two ports for one test; the channels and the Zenoh configuration
/// file live as long as the test's [`util::Dir`].
struct Pair {
    src: String,
    dst: String,
    key: String,
    dir: util::Dir,
    send_port: u16,
    recv_port: u16,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let mut dir = util::Dir::new(tag);
        let (src, dst) = (dir.channel("src"), dir.channel("dst"));
        // No multicast scouting: only the endpoints given connect.
        let scouting_off = "{ scouting: { multicast: { enabled: false } } }";
        std::fs::write(dir.join("zenoh.json5"), scouting_off).unwrap();
        Pair {
            key: format!("shmframe-test/{src}"),
            src,
            dst,
            dir,
            send_port: free_port(),
            recv_port: free_port(),
        }
    }

    /// `shmframe bridge --from FROM --to TO` with the test's Zenoh configuration and the
    /// `zenoh` endpoint options, run under `prefix` (e.g. `ip netns exec NS`).
    fn bridge(&self, prefix: &[&str], from: &str, to: &str, zenoh: &[&str]) -> Side {
        let cfg = self.dir.join("zenoh.json5");
        let mut a = args(&["--from", from, "--to", to]);
        a.extend(args(zenoh));
        a.extend(args(&["--zenoh-config", cfg.to_str().unwrap()]));
        Side::start(prefix, &a)
    }

    /// The bridge from the source channel to Zenoh, once it publishes.
    fn sender_at(&self, prefix: &[&str], zenoh: &[&str]) -> Side {
        let s = self.bridge(prefix, &self.src, &format!("zenoh:{}", self.key), zenoh);
        s.expect("publishing");
        s
    }

    /// The bridge from Zenoh to the destination channel, once it is subscribed.
    fn receiver_at(&self, prefix: &[&str], zenoh: &[&str]) -> Side {
        let s = self.bridge(prefix, &format!("zenoh:{}", self.key), &self.dst, zenoh);
        s.expect("subscribed");
        s
    }

    fn sender(&self) -> Side {
        let listen = format!("tcp/127.0.0.1:{}", self.send_port);
        self.sender_at(&[], &["--zenoh-listen", &listen])
    }

    fn receiver(&self) -> Side {
        let connect = format!("tcp/127.0.0.1:{}", self.send_port);
        let listen = format!("tcp/127.0.0.1:{}", self.recv_port);
        self.receiver_at(
            &[],
            &["--zenoh-connect", &connect, "--zenoh-listen", &listen],
        )
    }
}

#[test]
fn frames_and_metadata_arrive_bit_identical() {
    let p = Pair::new("ident");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = spawn_writer(&p.src, stop.clone(), written.clone());
    let tx = p.sender();
    let rx = p.receiver();
    let mut r = Reader::open_wait(&p.dst, PATIENCE).unwrap();
    let seqs = read_and_check(&mut r, 24);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Every shape/dtype, the fragmented 2.7 MB one included, went through.
    for kind in 0..4 {
        assert!(seqs.iter().any(|s| s % 4 == kind), "{seqs:?}");
    }
    use shmframe::Metadata;
    assert_eq!(r.schema(), Some(&Stamp::schema()));
    let sent = count(&tx.finish(), "frames");
    let got = rx.finish();
    assert!(count(&got, "frames") >= 24 && sent >= 24, "{got}");
    assert_eq!(count(&got, "rejected"), 0, "{got}");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn socket_served_channels_bridge_to_and_from_zenoh() {
    let p = Pair::new("sock");
    let (from, to) = (p.dir.join("src.sock"), p.dir.join("dst.sock"));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = spawn_writer_with(
        &p.src,
        WriterOptions::new().socket(&from),
        stop.clone(),
        written.clone(),
    );
    let key = format!("zenoh:{}", p.key);
    let listen = format!("tcp/127.0.0.1:{}", p.send_port);
    let from_ep = format!("socket:{}", from.display());
    let tx = p.bridge(&[], &from_ep, &key, &["--zenoh-listen", &listen]);
    tx.expect("publishing");
    let to_ep = format!("socket:{}", to.display());
    let rx = p.bridge(&[], &key, &to_ep, &["--zenoh-connect", &listen]);
    rx.expect("subscribed");
    let mut r = Reader::connect_wait(&to, PATIENCE).unwrap();
    assert_eq!(r.name().as_str(), "dst", "named after the socket file");
    let seqs = read_and_check(&mut r, 12);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    drop(r);
    rx.finish();
    tx.finish();
    assert!(
        !to.exists(),
        "the receiving bridge removed its socket on exit"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn the_flow_resumes_after_either_side_restarts() {
    let p = Pair::new("restart");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = spawn_writer(&p.src, stop.clone(), written.clone());
    let tx = p.sender();
    let rx = p.receiver();
    let mut r = Reader::open_wait(&p.dst, PATIENCE).unwrap();
    read_and_check(&mut r, 5);

    // The receiving side dies and comes back: it takes the stale local channel over, and the
    // local reader follows it.
    rx.kill();
    let rx = p.receiver();
    read_from(&mut r, written.load(Ordering::Relaxed), 5);

    // The sending side (the listening peer) dies and comes back on the same port: the receiver
    // reconnects by itself and frames flow again.
    tx.kill();
    let tx = p.sender();
    read_from(&mut r, written.load(Ordering::Relaxed), 5);
    rx.expect("the sender restarted");

    tx.finish();
    let got = rx.finish();
    assert!(count(&got, "frames") >= 5, "{got}");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn malformed_messages_are_refused_counted_and_survived() {
    let p = Pair::new("garbage");
    let rx = p.receiver();

    // A raw Zenoh peer of our own, connected straight to the receiving bridge.
    let mut config = zenoh::Config::default();
    config
        .insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    config
        .insert_json5(
            "connect/endpoints",
            &format!("[\"tcp/127.0.0.1:{}\"]", p.recv_port),
        )
        .unwrap();
    let session = zenoh::open(config).wait().unwrap();
    let publisher = session.declare_publisher(p.key.clone()).wait().unwrap();

    let good = shmframe_zenoh::wire::WireFrame {
        stream: 1,
        index: 0,
        timestamp_ns: 0,
        dtype: DType::U8,
        shape: vec![2, 3],
        schema: &[],
        meta: &[],
        payload: &[1, 2, 3, 4, 5, 6],
    }
    .encode();
    let mut wrong_version = good.clone();
    wrong_version[4] = 9;
    let mut bad_length = good.clone();
    bad_length[40] = 3; // shape [3, 3] for 6 bytes
    let cases: [(&[u8], &str); 4] = [
        (b"hello, not a frame", "not a shmframe frame"),
        (&wrong_version, "wire version 9"),
        (&bad_length, "inconsistent frame"),
        (&good[..30], "too short"),
    ];
    // One at a time, each seen refused before the next (so none is replaced unseen).
    for (n, (bytes, why)) in cases.iter().enumerate() {
        publisher.put(bytes.to_vec()).wait().unwrap();
        let line = rx.expect("refused a message");
        assert!(line.contains(why), "case {n}: {line}");
    }
    // The bridge is alive and still works: a valid frame creates the local channel.
    publisher.put(good.clone()).wait().unwrap();
    let mut r = Reader::open_wait(&p.dst, PATIENCE).unwrap();
    let f = r.next(Some(PATIENCE)).unwrap();
    assert_eq!(
        (f.shape.as_slice(), f.data.as_slice()),
        (&[2usize, 3][..], &[1u8, 2, 3, 4, 5, 6][..])
    );
    drop(publisher);
    session.close().wait().unwrap();
    let got = rx.finish();
    assert_eq!(count(&got, "rejected"), 4, "{got}");
    assert_eq!(count(&got, "frames"), 1, "{got}");
}

/// Two network namespaces joined by a veth pair: the bridge crosses a real (virtual) link between
/// two network stacks. Needs root and `ip`, so it is ignored by a plain `cargo test`;
/// `scripts/test.d/80-zenoh.sh` runs it where network namespaces can be created.
#[test]
#[ignore = "needs root and iproute2 for network namespaces; run by scripts/test.d/80-zenoh.sh"]
fn frames_cross_a_veth_link_between_network_namespaces() {
    let net = Netns::create().expect(
        "cannot create network namespaces (`ip netns add`): run as root with iproute2 installed",
    );
    let p = Pair::new("netns");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = spawn_writer(&p.src, stop.clone(), written.clone());
    let listen = format!("tcp/{}:{}", net.addr_a, p.send_port);
    let tx = p.sender_at(
        &["ip", "netns", "exec", &net.a],
        &["--zenoh-listen", &listen],
    );
    let rx = p.receiver_at(
        &["ip", "netns", "exec", &net.b],
        &["--zenoh-connect", &listen],
    );
    let mut r = Reader::open_wait(&p.dst, PATIENCE).unwrap();
    let seqs = read_and_check(&mut r, 12);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    tx.finish();
    rx.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

/// Two namespaces `a` and `b` joined by a veth pair with 10.x addresses; removed on drop.
struct Netns {
    a: String,
    b: String,
    addr_a: String,
    addr_b: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    fn create() -> Option<Netns> {
        let id = std::process::id();
        let net = format!("10.{}.{}", 200 + id % 50, (id / 50) % 250);
        let n = Netns {
            a: format!("sfz-a-{id}"),
            b: format!("sfz-b-{id}"),
            addr_a: format!("{net}.1"),
            addr_b: format!("{net}.2"),
        };
        if !ip(&["netns", "add", &n.a]) {
            return None;
        }
        if !ip(&["netns", "add", &n.b]) {
            return None;
        }
        let (va, vb) = (
            format!("sfa{}", id % 100_000),
            format!("sfb{}", id % 100_000),
        );
        let ok = ip(&[
            "link", "add", &va, "netns", &n.a, "type", "veth", "peer", "name", &vb, "netns", &n.b,
        ]) && ip(&[
            "-n",
            &n.a,
            "addr",
            "add",
            &format!("{}/24", n.addr_a),
            "dev",
            &va,
        ]) && ip(&[
            "-n",
            &n.b,
            "addr",
            "add",
            &format!("{}/24", n.addr_b),
            "dev",
            &vb,
        ]) && ip(&["-n", &n.a, "link", "set", &va, "up"])
            && ip(&["-n", &n.b, "link", "set", &vb, "up"])
            && ip(&["-n", &n.a, "link", "set", "lo", "up"])
            && ip(&["-n", &n.b, "link", "set", "lo", "up"]);
        ok.then_some(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

/// The commands together: `shmframe write` from a PNG, out and back through two bridges, and
/// `shmframe read --json` on the far side.
#[test]
fn native_to_zenoh_to_native_over_tcp() {
    let mut d = util::Dir::new("zenoh");
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
    let o = d.run(&util::read_json(&b, "3"));
    let j = util::json(&o);
    assert_eq!(j["shape"], serde_json::json!([16, 24, 3]));
    assert_eq!(
        j["torn"], 0,
        "the metadata's checksums still match after Zenoh"
    );
    let mut r = shmframe::Reader::open(&b).unwrap();
    let f = r.next(Some(Duration::from_secs(10))).unwrap();
    let want = util::swap_rb(img.as_raw());
    assert_eq!(f.data, want);
    for p in [back, out, w] {
        d.signal(p, Signal::INT);
        util::ok(&d.wait(p));
    }
}
