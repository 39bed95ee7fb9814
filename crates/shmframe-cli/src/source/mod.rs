//! Where `shmframe write` gets its frames: the test pattern, a V4L2 camera, image files, or (with
//! the `gstreamer` feature) a video file or network stream.

mod camera;
#[cfg(feature = "gstreamer")]
mod gst;
mod images;
mod testsrc;

use crate::convert::PixelFormat;
use anyhow::bail;
use std::path::Path;

/// A producer of frames in one pixel format.
pub trait Source {
    /// Fills `out` with the next frame's pixels and returns its width and height; `None` at the
    /// end of the stream (a video file's end).
    fn next_frame(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<(usize, usize)>>;

    /// `true` if the source sets its own pace (a camera, a live stream); otherwise the writer
    /// publishes at `--fps`.
    fn paced(&self) -> bool;

    /// What the source is, for the start-up line.
    fn describe(&self) -> String;
}

/// Video containers recognised by extension as GStreamer sources.
const VIDEO_EXTENSIONS: [&str; 6] = ["mkv", "webm", "avi", "mp4", "mov", "ogv"];

/// Opens the source named by `--source`.
pub fn open(
    spec: &str,
    size: (usize, usize),
    format: PixelFormat,
    fps: f64,
) -> anyhow::Result<Box<dyn Source>> {
    if spec == "testsrc" {
        return Ok(Box::new(testsrc::TestSrc::new(size.0, size.1, format, fps)));
    }
    if spec == "camera" {
        return Ok(Box::new(camera::Camera::open(
            Path::new("/dev/video0"),
            size,
            format,
        )?));
    }
    if let Some(dev) = spec.strip_prefix("camera:") {
        return Ok(Box::new(camera::Camera::open(
            Path::new(dev),
            size,
            format,
        )?));
    }
    let ext = Path::new(spec)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if let Some(uri) = spec.strip_prefix("gst:") {
        return video(uri, format);
    }
    if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        if !Path::new(spec).is_file() {
            bail!("video file `{spec}` does not exist");
        }
        return video(spec, format);
    }
    if images::is_pattern(spec) || Path::new(spec).exists() {
        return Ok(Box::new(images::Images::open(spec, format)?));
    }
    bail!(
        "source `{spec}` is not a file: use testsrc, camera, camera:/dev/videoN, a PNG/JPEG path or glob (quote it), a video file, or gst:URI"
    )
}

#[cfg(feature = "gstreamer")]
fn video(uri: &str, format: PixelFormat) -> anyhow::Result<Box<dyn Source>> {
    Ok(Box::new(gst::Video::open(uri, format)?))
}

#[cfg(not(feature = "gstreamer"))]
fn video(uri: &str, _format: PixelFormat) -> anyhow::Result<Box<dyn Source>> {
    bail!(
        "`{uri}`: video files and streams need GStreamer: rebuild with `cargo build -p shmframe-cli --features gstreamer` (needs libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev, pkg-config)"
    )
}
