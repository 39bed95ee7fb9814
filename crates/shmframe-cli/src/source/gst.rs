//! Video files and network streams (RTSP, HTTP, …) as a source, decoded by the system's
//! GStreamer: `uridecodebin ! videoconvert ! appsink` with caps in the requested pixel format.

use super::Source;
use crate::convert::PixelFormat;
use anyhow::{anyhow, bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

/// A playing GStreamer pipeline.
pub struct Video {
    uri: String,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    format: PixelFormat,
}

/// `gst:` sources may be URIs (`rtsp://…`, `file:///…`) or paths.
fn to_uri(s: &str) -> anyhow::Result<String> {
    if s.contains("://") {
        return Ok(s.to_string());
    }
    let path = std::fs::canonicalize(s)
        .with_context(|| format!("video `{s}` is neither a URI nor an existing file"))?;
    Ok(gst::glib::filename_to_uri(&path, None)
        .with_context(|| format!("cannot make a URI of `{}`", path.display()))?
        .to_string())
}

impl Video {
    /// Starts decoding `uri_or_path`.
    pub fn open(uri_or_path: &str, format: PixelFormat) -> anyhow::Result<Video> {
        gst::init().context("cannot initialise GStreamer: are its libraries installed?")?;
        let uri = to_uri(uri_or_path)?;
        let caps = match format {
            PixelFormat::Bgr8 => "BGR",
            PixelFormat::Rgb8 => "RGB",
            PixelFormat::Gray8 => "GRAY8",
        };
        let desc = format!(
            "uridecodebin name=src ! videoconvert ! appsink name=sink sync=true max-buffers=4 caps=video/x-raw,format={caps}"
        );
        let pipeline = gst::parse::launch(&desc)
            .context(
                "cannot build the GStreamer pipeline: install gstreamer1.0-plugins-base and -good",
            )?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("GStreamer did not return a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .context("pipeline without a source")?;
        src.set_property("uri", &uri);
        let sink = pipeline
            .by_name("sink")
            .context("pipeline without a sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| anyhow!("the sink is not an appsink"))?;
        let playing = pipeline.set_state(gst::State::Playing);
        let video = Video {
            uri,
            pipeline,
            sink,
            format,
        };
        // The bus says why playing failed (no such file, no decoder, …).
        video.check_bus()?;
        if playing.is_err() {
            bail!(
                "GStreamer cannot play `{}`: is it a video file or stream URI?",
                video.uri
            );
        }
        Ok(video)
    }

    /// Turns an error posted on the bus into ours.
    fn check_bus(&self) -> anyhow::Result<()> {
        let bus = self.pipeline.bus().context("pipeline without a bus")?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                bail!(
                    "GStreamer cannot play `{}`: {} ({})",
                    self.uri,
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}

impl Source for Video {
    fn next_frame(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<(usize, usize)>> {
        let sample = loop {
            if crate::stop::requested() {
                return Ok(None);
            }
            if let Some(s) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(200))
            {
                break s;
            }
            self.check_bus()?;
            if self.sink.is_eos() {
                return Ok(None);
            }
        };
        let caps = sample.caps().context("a video sample without caps")?;
        let info = gst_video::VideoInfo::from_caps(caps).context("video caps without a size")?;
        let buffer = sample.buffer().context("a video sample without a buffer")?;
        let map = buffer.map_readable().context("cannot map a video buffer")?;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let row = w * self.format.channels();
        let stride = info.stride()[0] as usize;
        let offset = info.offset()[0];
        if stride < row || map.len() < offset + stride * (h - 1) + row {
            bail!(
                "GStreamer delivered a {}-byte buffer for {w}x{h}",
                map.len()
            );
        }
        out.clear();
        for y in 0..h {
            let start = offset + y * stride;
            out.extend_from_slice(&map[start..start + row]);
        }
        Ok(Some((w, h)))
    }

    fn paced(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("video {}", self.uri)
    }
}

impl Drop for Video {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
