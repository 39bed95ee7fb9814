//! Video files through GStreamer (built only with the `gstreamer` feature): a clip made with
//! `gst-launch-1.0` is published by `shmframe write` and read back.

mod util;

use util::{json, ok, read_json, Dir};

/// Encodes 30 frames of `videotestsrc` at 160x120 into `name` with `encoder ! muxer`.
fn make_clip(d: &Dir, name: &str, encoder: &str, muxer: &str) -> String {
    let path = d.join(name).display().to_string();
    let pipeline = format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! videoconvert ! {encoder} ! {muxer} ! filesink location={path}"
    );
    let st = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .status()
        .expect("gst-launch-1.0 not found: install gstreamer1.0-tools");
    assert!(st.success(), "gst-launch-1.0 failed to make {name}");
    path
}

fn publish_and_read(source: &str, format: &str, shape: serde_json::Value) {
    let mut d = Dir::new("gst");
    let ch = d.channel("gst");
    let r = d.spawn(&read_json(&ch, "10"));
    let w = d.spawn(&[
        "write", &ch, "--source", source, "--format", format, "--slots", "40",
    ]);
    let j = json(&d.wait(r));
    assert_eq!(j["frames"], 10);
    assert_eq!(j["shape"], shape);
    assert_eq!(j["torn"], 0);
    // The writer stops by itself at the end of the clip and removes its channel.
    let o = d.wait(w);
    ok(&o);
    assert!(
        util::stderr(&o).contains("30 frames"),
        "{}",
        util::stderr(&o)
    );
    assert!(shmframe::channels::inspect(&ch).is_err());
}

#[test]
fn mjpeg_avi_file_is_published_as_bgr8() {
    let d = Dir::new("mk-avi");
    let clip = make_clip(&d, "clip.avi", "jpegenc", "avimux");
    publish_and_read(&clip, "bgr8", serde_json::json!([120, 160, 3]));
}

#[test]
fn vp8_webm_uri_is_published_as_gray8() {
    let d = Dir::new("mk-webm");
    let clip = make_clip(&d, "clip.webm", "vp8enc", "webmmux");
    publish_and_read(
        &format!("gst:file://{clip}"),
        "gray8",
        serde_json::json!([120, 160]),
    );
}

#[test]
fn missing_video_is_a_clear_error() {
    let mut d = Dir::new("gst-missing");
    let ch = d.channel("gst");
    util::fails_with(
        &d.run(&["write", &ch, "--source", "gst:file:///nonexistent/clip.mkv"]),
        &["error:", "GStreamer"],
    );
}
