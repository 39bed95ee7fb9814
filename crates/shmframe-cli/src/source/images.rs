//! Image files (PNG, JPEG) as a source: one path or a glob, decoded once and published in a
//! loop. Pixels are published exactly, at the image's own size, converted to `--format`.

use super::Source;
use crate::convert::{self, PixelFormat};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// `true` if `spec` has glob characters.
pub fn is_pattern(spec: &str) -> bool {
    spec.contains(['*', '?', '['])
}

/// Decoded images played in a loop.
pub struct Images {
    frames: Vec<(usize, usize, Vec<u8>)>,
    next: usize,
    what: String,
}

impl Images {
    /// Decodes the file `spec`, or every file matching the glob `spec` (sorted by name).
    pub fn open(spec: &str, format: PixelFormat) -> anyhow::Result<Images> {
        let paths: Vec<PathBuf> = if is_pattern(spec) {
            let mut v: Vec<PathBuf> = glob::glob(spec)
                .with_context(|| format!("`{spec}` is not a valid glob pattern"))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            v
        } else {
            vec![PathBuf::from(spec)]
        };
        if paths.is_empty() {
            bail!("no file matches `{spec}`: check the pattern (quote it so the shell leaves it alone)");
        }
        let frames = paths
            .iter()
            .map(|p| load(p, format))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Images {
            what: if paths.len() == 1 {
                format!("image {}", paths[0].display())
            } else {
                format!("{} images matching {spec}", paths.len())
            },
            frames,
            next: 0,
        })
    }
}

fn load(path: &Path, format: PixelFormat) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image `{}`", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image `{}`", path.display()))?
        .decode()
        .with_context(|| {
            format!(
                "cannot decode `{}`: give a PNG or JPEG file",
                path.display()
            )
        })?
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = Vec::new();
    convert::from_rgb(format, img.as_raw(), &mut out);
    Ok((w, h, out))
}

impl Source for Images {
    fn next_frame(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<(usize, usize)>> {
        let (w, h, px) = &self.frames[self.next];
        self.next = (self.next + 1) % self.frames.len();
        out.clear();
        out.extend_from_slice(px);
        Ok(Some((*w, *h)))
    }

    fn paced(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}
