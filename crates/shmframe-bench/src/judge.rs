//! The verdict column: one small function per target, each comparing a shmframe row with rows
//! of the same run, each returning `"✓/✗ what (the other side's value)"`, or `None` where the
//! target does not apply (or the row it compares with is missing).

use crate::peer::{ReadMode, Transport, WaitMode};
use crate::report::{us, Kind, Row};
use crate::PAYLOADS;

/// Zero-copy frames/s must reach this fraction of the writer's own fill bound.
pub const FILL_SHARE: f64 = 0.9;
/// Verified copy-out at 1920x1080x3 must reach this fraction of a cold memcpy.
pub const COPY_SHARE: f64 = 0.8;
/// Copy-out frames/s at 1920x1080x3 must reach this multiple of the article's protocol.
pub const ARTICLE_COPY: f64 = 5.0;
/// Latency an awaiting (tokio) reader may add over the blocking (futex) reader, p50, µs.
pub const ASYNC_ADDED_US: f64 = 10.0;
/// How far a socket-served channel's p50 (plus 2 µs) and frames/s may be from the named
/// channel's in the same run: the spread of one row between runs on a 2-core machine (the
/// named 64 B futex p50 ranged over 8.5 to 16.8 µs in four `shmframe bench --quick` runs of one
/// afternoon).
pub const SERVED_NOISE: f64 = 0.35;

/// The rows of one payload of one run that a shmframe row is judged against.
struct Others<'a> {
    /// iceoryx2, same read mode and same way of waiting.
    ice: Option<&'a Row>,
    /// The shmframe writer alone (`Kind::FillBound`).
    fill: Option<&'a Row>,
    cold: Option<&'a Row>,
    warm: Option<&'a Row>,
    seed: Option<&'a Row>,
    /// shmframe, same read mode, blocking (futex): what an async row is compared with.
    blocking: Option<&'a Row>,
}

fn find<'a>(rows: &'a [Row], kind: Kind, payload: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.kind == kind && r.payload == payload && r.error.is_none())
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

fn item(ok: bool, what: &str, theirs: String) -> String {
    format!("{} {what} ({theirs})", mark(ok))
}

/// Fills the verdict column of shmframe's rows.
pub fn judge(rows: &mut [Row]) {
    let all = rows.to_vec();
    for row in rows.iter_mut() {
        if row.error.is_some() {
            continue;
        }
        if let Kind::Peer(Transport::ShmframeSocket, read, wait) = row.kind {
            let named = find(
                &all,
                Kind::Peer(Transport::Shmframe, read, wait),
                row.payload,
            );
            row.verdict = [served_like_named(row, named), no_torn(row)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            continue;
        }
        let Kind::Peer(Transport::Shmframe, read, wait) = row.kind else {
            continue;
        };
        let p = row.payload;
        let o = Others {
            ice: find(&all, Kind::Peer(Transport::Iceoryx2, read, wait), p),
            fill: find(&all, Kind::FillBound, p),
            cold: find(&all, Kind::Memcpy { cold: true }, p),
            warm: find(&all, Kind::Memcpy { cold: false }, p),
            seed: find(
                &all,
                Kind::Peer(Transport::Seed, ReadMode::Copy, WaitMode::Sleep),
                p,
            ),
            blocking: find(
                &all,
                Kind::Peer(Transport::Shmframe, read, WaitMode::Sleep),
                p,
            ),
        };
        let verdicts = [
            latency(row, &o),
            rate(row, &o),
            writer_cpu(row, &o),
            reader_cpu(row, &o),
            fill_bound(row, &o),
            copy_vs_memcpy(row, &o),
            copy_vs_article(row, &o),
            async_added(row, &o),
            no_torn(row),
        ];
        row.verdict = verdicts
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
    }
}

/// p50 ≤ iceoryx2's, same read mode and way of waiting: zero-copy spin (vs busy poll) and every
/// sleeping row (futex vs event).
fn latency(row: &Row, o: &Others) -> Option<String> {
    let Kind::Peer(_, read, wait) = row.kind else {
        return None;
    };
    if wait == WaitMode::Spin && read != ReadMode::View {
        return None;
    }
    let (mine, theirs) = (row.lat?[0], o.ice?.lat?[0]);
    Some(item(mine <= theirs, "p50 ≤ iceoryx2", us(theirs as f64)))
}

/// An awaiting reader's p50 ≤ the blocking reader's + [`ASYNC_ADDED_US`] (same read mode).
fn async_added(row: &Row, o: &Others) -> Option<String> {
    if !matches!(row.kind, Kind::Peer(_, _, WaitMode::Async)) {
        return None;
    }
    let (mine, blocking) = (row.lat?[0] as f64, o.blocking?.lat?[0] as f64);
    Some(item(
        mine - blocking <= ASYNC_ADDED_US * 1e3,
        &format!("adds ≤ {ASYNC_ADDED_US:.0} µs p50 over futex"),
        format!("{:+.1} µs", (mine - blocking) / 1e3),
    ))
}

/// Frames/s at full rate ≥ iceoryx2's (same read mode and way of waiting).
fn rate(row: &Row, o: &Others) -> Option<String> {
    let ice = o.ice?;
    Some(item(
        row.fps >= ice.fps,
        "frames/s ≥ iceoryx2",
        format!("{:.0}", ice.fps),
    ))
}

/// The writer's CPU per frame ≤ iceoryx2's writer's.
fn writer_cpu(row: &Row, o: &Others) -> Option<String> {
    let (mine, theirs) = (row.cpu_w_us?, o.ice?.cpu_w_us?);
    Some(item(
        mine <= theirs,
        "writer CPU ≤ iceoryx2",
        us(theirs * 1e3),
    ))
}

/// The reader's CPU per frame ≤ iceoryx2's reader's.
fn reader_cpu(row: &Row, o: &Others) -> Option<String> {
    let (mine, theirs) = (row.cpu_r_us?, o.ice?.cpu_r_us?);
    Some(item(
        mine <= theirs,
        "reader CPU ≤ iceoryx2",
        us(theirs * 1e3),
    ))
}

/// Zero-copy frames/s ≥ [`FILL_SHARE`] × the frames/s of the same writer with no reader: what
/// is left when the writer's own loan + fill + publish is the limit.
fn fill_bound(row: &Row, o: &Others) -> Option<String> {
    if !matches!(row.kind, Kind::Peer(_, ReadMode::View, _)) {
        return None;
    }
    let fill = o.fill?;
    Some(item(
        row.fps >= FILL_SHARE * fill.fps,
        &format!("frames/s ≥ {FILL_SHARE}× fill bound"),
        format!("{:.0}", fill.fps),
    ))
}

/// Copy-out at 1920x1080x3: the reader's verified copy speed (frames per second of its CPU time)
/// ≥ [`COPY_SHARE`] × a cold memcpy of the frame (the ratio to a warm one printed too).
fn copy_vs_memcpy(row: &Row, o: &Others) -> Option<String> {
    if row.payload != PAYLOADS[2].0 || !matches!(row.kind, Kind::Peer(_, ReadMode::Copy, _)) {
        return None;
    }
    let read_fps = 1e6 / row.cpu_r_us?.max(1e-9);
    let (rc, rw) = (read_fps / o.cold?.fps, read_fps / o.warm?.fps);
    Some(format!(
        "{} read {rc:.2}× memcpy cold, {rw:.2}× warm (≥ {COPY_SHARE} cold)",
        mark(rc >= COPY_SHARE)
    ))
}

/// Copy-out frames/s at 1920x1080x3 ≥ [`ARTICLE_COPY`] × the article's protocol.
fn copy_vs_article(row: &Row, o: &Others) -> Option<String> {
    if row.payload != PAYLOADS[2].0 || !matches!(row.kind, Kind::Peer(_, ReadMode::Copy, _)) {
        return None;
    }
    let seed = o.seed?;
    let ratio = row.fps / seed.fps.max(1e-9);
    Some(item(
        ratio >= ARTICLE_COPY,
        &format!("{ratio:.1}× article, ≥ {ARTICLE_COPY}×"),
        format!("{:.0}", seed.fps),
    ))
}

/// A socket-served channel's p50 and frames/s equal the named channel's (same read and wait)
/// within [`SERVED_NOISE`]: after the handshake both run the same code on the same kind of memory.
fn served_like_named(row: &Row, named: Option<&Row>) -> Option<String> {
    let named = named?;
    let (mine, theirs) = (row.lat?[0] as f64, named.lat?[0] as f64);
    let lat_ok = mine <= theirs * (1.0 + SERVED_NOISE) + 2_000.0;
    let fps_ok = row.fps >= named.fps * (1.0 - SERVED_NOISE);
    Some(item(
        lat_ok && fps_ok,
        &format!(
            "p50 and frames/s within {:.0}% of the named channel",
            SERVED_NOISE * 100.0
        ),
        format!("{} µs, {:.0}/s", us(theirs), named.fps),
    ))
}

/// No torn frame.
fn no_torn(row: &Row) -> Option<String> {
    Some(format!("{} torn = 0", mark(row.torn == 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: Kind, payload: &'static str, p50: u64, fps: f64, cpu: f64) -> Row {
        let mut r = Row::new(kind, payload, 64);
        r.lat = Some([p50, p50, p50]);
        r.fps = fps;
        r.cpu_w_us = Some(cpu);
        r.cpu_r_us = Some(cpu);
        r
    }

    fn verdict_of(rows: &mut [Row], kind: Kind) -> String {
        judge(rows);
        rows.iter()
            .find(|r| r.kind == kind)
            .map(|r| r.verdict.clone())
            .unwrap()
    }

    #[test]
    fn each_target_compares_with_the_same_read_and_wait_row_of_the_run() {
        use ReadMode::*;
        use Transport::*;
        use WaitMode::*;
        let p = PAYLOADS[0].0;
        let mine = Kind::Peer(Shmframe, View, Spin);
        let mut rows = vec![
            row(Kind::FillBound, p, 0, 1000.0, 1.0),
            row(mine, p, 300, 950.0, 2.0),
            row(Kind::Peer(Iceoryx2, View, Spin), p, 200, 900.0, 3.0),
            // Another wait mode: must not be used for the spin row.
            row(Kind::Peer(Iceoryx2, View, Sleep), p, 1000, 1.0, 0.5),
        ];
        rows[0].lat = None;
        let v = verdict_of(&mut rows, mine);
        assert_eq!(
            v,
            "✗ p50 ≤ iceoryx2 (0.20); ✓ frames/s ≥ iceoryx2 (900); \
             ✓ writer CPU ≤ iceoryx2 (3.00); ✓ reader CPU ≤ iceoryx2 (3.00); \
             ✓ frames/s ≥ 0.9× fill bound (1000); ✓ torn = 0"
        );
    }

    #[test]
    fn copy_out_spin_has_no_latency_target_and_no_fill_bound() {
        use ReadMode::*;
        use Transport::*;
        use WaitMode::*;
        let p = PAYLOADS[0].0;
        let mine = Kind::Peer(Shmframe, Copy, Spin);
        let mut rows = vec![
            row(Kind::FillBound, p, 0, 1000.0, 1.0),
            row(mine, p, 300, 800.0, 2.0),
            row(Kind::Peer(Iceoryx2, Copy, Spin), p, 200, 900.0, 1.0),
        ];
        let v = verdict_of(&mut rows, mine);
        assert_eq!(
            v,
            "✗ frames/s ≥ iceoryx2 (900); ✗ writer CPU ≤ iceoryx2 (1.00); \
             ✗ reader CPU ≤ iceoryx2 (1.00); ✓ torn = 0"
        );
    }

    #[test]
    fn a_socket_served_row_is_judged_against_the_named_row() {
        use ReadMode::*;
        use Transport::*;
        use WaitMode::*;
        let p = PAYLOADS[1].0;
        let mine = Kind::Peer(ShmframeSocket, View, Sleep);
        let named = row(Kind::Peer(Shmframe, View, Sleep), p, 10_000, 1000.0, 1.0);
        let mut close = vec![named.clone(), row(mine, p, 13_000, 700.0, 1.0)];
        assert_eq!(
            verdict_of(&mut close, mine),
            "✓ p50 and frames/s within 35% of the named channel (10.0 µs, 1000/s); ✓ torn = 0"
        );
        let mut slow = vec![named, row(mine, p, 16_000, 1000.0, 1.0)];
        assert!(verdict_of(&mut slow, mine).starts_with('✗'));
    }

    #[test]
    fn a_failed_row_is_not_compared_with() {
        use ReadMode::*;
        use Transport::*;
        use WaitMode::*;
        let p = PAYLOADS[0].0;
        let mine = Kind::Peer(Shmframe, View, Sleep);
        let mut ice = row(Kind::Peer(Iceoryx2, View, Sleep), p, 1, 1e9, 0.0);
        ice.error = Some("failed".into());
        let mut rows = vec![row(mine, p, 300, 800.0, 2.0), ice];
        assert_eq!(verdict_of(&mut rows, mine), "✓ torn = 0");
    }
}
