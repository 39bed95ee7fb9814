//! PNG snapshots of frames (`read --save DIR --every N`), always written as RGB (or gray), so a
//! bgr8 frame looks right in any image viewer.

use crate::convert::{self, PixelFormat};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Saves frames as PNG files in one directory.
pub struct Snapshots {
    dir: PathBuf,
    prefix: String,
    every: u64,
    /// The newest file written.
    pub last: Option<PathBuf>,
}

impl Snapshots {
    /// Creates `dir` if needed; files are named `PREFIX-INDEX.png`.
    pub fn new(dir: &Path, prefix: &str, every: u64) -> anyhow::Result<Snapshots> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create snapshot directory `{}`", dir.display()))?;
        Ok(Snapshots {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            every: every.max(1),
            last: None,
        })
    }

    /// Saves the frame if it is the `received`th one (0-based) and a multiple of `--every`.
    pub fn offer(
        &mut self,
        received: u64,
        index: u64,
        width: usize,
        height: usize,
        format: PixelFormat,
        data: &[u8],
    ) -> anyhow::Result<()> {
        if received % self.every != 0 {
            return Ok(());
        }
        let path = self.dir.join(format!("{}-{index:08}.png", self.prefix));
        save_png(&path, width, height, format, data)?;
        self.last = Some(path);
        Ok(())
    }
}

/// Writes one frame as a PNG file: RGB for colour formats, 8-bit gray for gray8.
pub fn save_png(
    path: &Path,
    width: usize,
    height: usize,
    format: PixelFormat,
    data: &[u8],
) -> anyhow::Result<()> {
    let (w, h) = (width as u32, height as u32);
    let result = match format {
        PixelFormat::Gray8 => image::save_buffer(path, data, w, h, image::ExtendedColorType::L8),
        _ => image::save_buffer(
            path,
            &convert::to_rgb(format, data),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    result.with_context(|| format!("cannot write snapshot `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_frame_becomes_an_rgb_png() {
        let dir = std::env::temp_dir().join(format!("sft-snap-{}", std::process::id()));
        let mut s = Snapshots::new(&dir, "t", 2).unwrap();
        let bgr = [255u8, 0, 0, 0, 0, 255]; // blue, red
        s.offer(1, 1, 2, 1, PixelFormat::Bgr8, &bgr).unwrap();
        assert!(s.last.is_none(), "only every 2nd frame is saved");
        s.offer(2, 7, 2, 1, PixelFormat::Bgr8, &bgr).unwrap();
        let path = s.last.clone().unwrap();
        let img = image::open(&path).unwrap().into_rgb8();
        assert_eq!(img.as_raw(), &vec![0, 0, 255, 255, 0, 0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
