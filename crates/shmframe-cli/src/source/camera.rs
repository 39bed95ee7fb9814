//! A V4L2 camera (`/dev/videoN`) as a source, through the pure-Rust `linuxvideo` crate. YUYV and
//! MJPEG, the formats every USB (UVC) camera offers, are converted to `--format`.

use super::Source;
use crate::convert::{self, PixelFormat};
use anyhow::{anyhow, bail, Context};
use linuxvideo::format::{PixFormat, PixelFormat as V4l2Format};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, Device};
use std::io;
use std::path::{Path, PathBuf};

/// A capturing camera.
pub struct Camera {
    path: PathBuf,
    stream: ReadStream,
    fourcc: V4l2Format,
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
}

fn open_error(path: &Path, e: io::Error) -> anyhow::Error {
    const EBUSY: i32 = 16;
    let what = match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) => format!(
            "camera `{}` does not exist: is a camera connected? `ls /dev/video*` lists them; pick one with --source camera:/dev/videoN",
            path.display()
        ),
        (_, Some(EBUSY)) => format!(
            "camera `{}` is busy: another program is capturing from it; stop that program or pick another camera",
            path.display()
        ),
        (io::ErrorKind::PermissionDenied, _) => format!(
            "no permission to open camera `{}`: add your user to the `video` group (and log in again)",
            path.display()
        ),
        _ => format!("cannot open camera `{}`: {e}", path.display()),
    };
    anyhow!(what)
}

impl Camera {
    /// Opens `path`, asks for `size` in YUYV (or MJPEG if YUYV is not offered) and starts
    /// streaming. The camera may pick another size; frames have the size it chose.
    pub fn open(path: &Path, size: (usize, usize), format: PixelFormat) -> anyhow::Result<Camera> {
        let device = Device::open(path).map_err(|e| open_error(path, e))?;
        let offered = device
            .formats(BufType::VIDEO_CAPTURE)
            .map(|f| f.map(|f| f.pixel_format()))
            .collect::<io::Result<Vec<_>>>()
            .with_context(|| format!("`{}` is not a video capture device", path.display()))?;
        // MJPEG first at large sizes, where USB 2 bandwidth limits YUYV to a few fps.
        let want_mjpeg = size.0 * size.1 > 640 * 480;
        let order = if want_mjpeg {
            [V4l2Format::MJPG, V4l2Format::YUYV]
        } else {
            [V4l2Format::YUYV, V4l2Format::MJPG]
        };
        let Some(fourcc) = order.into_iter().find(|f| offered.contains(f)) else {
            bail!(
                "camera `{}` offers only {offered:?}; shmframe converts YUYV and MJPG",
                path.display()
            );
        };
        let capture = device
            .video_capture(PixFormat::new(size.0 as u32, size.1 as u32, fourcc))
            .map_err(|e| open_error(path, e))?;
        let got = capture.format();
        let (got_fourcc, width, height, stride) = (
            got.pixel_format(),
            got.width() as usize,
            got.height() as usize,
            got.bytes_per_line() as usize,
        );
        if got_fourcc != fourcc {
            bail!(
                "camera `{}` switched to {:?} when asked for {fourcc:?}",
                path.display(),
                got_fourcc
            );
        }
        let stream = capture.into_stream().map_err(|e| open_error(path, e))?;
        Ok(Camera {
            path: path.to_path_buf(),
            stream,
            fourcc,
            width,
            height,
            stride: stride.max(width * 2),
            format,
        })
    }
}

impl Source for Camera {
    fn next_frame(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<(usize, usize)>> {
        let (fourcc, w, h, stride, format) = (
            self.fourcc,
            self.width,
            self.height,
            self.stride,
            self.format,
        );
        let size = self
            .stream
            .dequeue(|buf| {
                let r = if fourcc == V4l2Format::YUYV {
                    convert::from_yuyv(format, w, h, stride, &buf, out).map(|()| (w, h))
                } else {
                    convert::from_mjpeg(format, &buf, out)
                };
                Ok(r)
            })
            .with_context(|| {
                format!("camera `{}` stopped delivering frames", self.path.display())
            })??;
        Ok(Some(size))
    }

    fn paced(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!(
            "camera {} ({}x{} {:?})",
            self.path.display(),
            self.width,
            self.height,
            self.fourcc
        )
    }
}
