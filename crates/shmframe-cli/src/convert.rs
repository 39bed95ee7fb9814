//! Pixel formats and conversions: camera YUYV and MJPEG, RGB from image files, and back to RGB
//! for the window and PNG snapshots.
//!
//! Frames travel as `uint8` arrays: `bgr8` and `rgb8` are HxWx3 (bgr8 is OpenCV's order), `gray8`
//! is HxW (2-d, as `cv2.cvtColor(…, COLOR_BGR2GRAY)` returns). Each frame carries a small
//! [`PixelInfo`] metadata value naming its format and a checksum of its bytes, so a reader knows
//! the channel order and can count torn frames (there should be none).

use anyhow::{bail, Context};
use clap::ValueEnum;
use shmframe::{DType, Frame, Metadata};

/// How pixels are laid out in a frame.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// HxWx3 uint8, blue-green-red (OpenCV's order).
    Bgr8,
    /// HxWx3 uint8, red-green-blue.
    Rgb8,
    /// HxW uint8, luma.
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Bgr8 | PixelFormat::Rgb8 => 3,
            PixelFormat::Gray8 => 1,
        }
    }

    /// The array shape of a `width`×`height` frame.
    pub fn shape(self, width: usize, height: usize) -> Vec<usize> {
        match self {
            PixelFormat::Gray8 => vec![height, width],
            _ => vec![height, width, 3],
        }
    }

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Gray8 => "gray8",
        }
    }

    fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Bgr8 => *b"BGR3",
            PixelFormat::Rgb8 => *b"RGB3",
            PixelFormat::Gray8 => *b"GREY",
        }
    }

    fn from_fourcc(f: [u8; 4]) -> Option<PixelFormat> {
        [PixelFormat::Bgr8, PixelFormat::Rgb8, PixelFormat::Gray8]
            .into_iter()
            .find(|p| p.fourcc() == f)
    }
}

shmframe::metadata! {
    /// Per-frame metadata the `shmframe` command attaches: the pixel format as a V4L2-style
    /// four-character code (`BGR3`, `RGB3`, `GREY`) and a checksum of the frame's bytes.
    pub struct PixelInfo { fourcc: [u8; 4], checksum: u32 }
}

impl PixelInfo {
    /// The metadata for `data` in `format`.
    pub fn new(format: PixelFormat, data: &[u8]) -> PixelInfo {
        PixelInfo {
            fourcc: format.fourcc(),
            checksum: checksum(data),
        }
    }

    /// The value's bytes, as `Writer::write_with_meta` takes them.
    pub fn bytes(&self) -> &[u8] {
        shmframe::__bytemuck::bytes_of(self)
    }

    /// Decodes a frame's metadata if the channel declares this schema.
    pub fn of(frame: &Frame, schema: Option<&shmframe::Schema>) -> Option<PixelInfo> {
        frame.meta_as::<PixelInfo>(schema).ok()
    }

    /// The pixel format it names.
    pub fn format(&self) -> Option<PixelFormat> {
        PixelFormat::from_fourcc(self.fourcc)
    }

    /// `true` if `data` has the checksum recorded by the writer.
    pub fn matches(&self, data: &[u8]) -> bool {
        self.checksum == checksum(data)
    }
}

/// The schema of [`PixelInfo`], declared by writers of the `shmframe` command.
pub fn pixel_schema() -> shmframe::Schema {
    PixelInfo::schema()
}

/// A fast 32-bit checksum (FNV-style over 8-byte words) of a frame's bytes.
pub fn checksum(data: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8-byte chunk"));
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// ITU-R BT.601 luma of an RGB pixel.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

/// Converts interleaved RGB pixels to `format`, replacing `out`'s contents.
pub fn from_rgb(format: PixelFormat, rgb: &[u8], out: &mut Vec<u8>) {
    out.clear();
    match format {
        PixelFormat::Rgb8 => out.extend_from_slice(rgb),
        PixelFormat::Bgr8 => out.extend(rgb.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]])),
        PixelFormat::Gray8 => out.extend(rgb.chunks_exact(3).map(|p| luma(p[0], p[1], p[2]))),
    }
}

fn clamp8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// BT.601 limited-range YUV → RGB in integer arithmetic (as V4L2 cameras deliver it).
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    [
        clamp8((c + 409 * e + 128) >> 8),
        clamp8((c - 100 * d - 208 * e + 128) >> 8),
        clamp8((c + 516 * d + 128) >> 8),
    ]
}

/// Converts a packed YUYV (YUV 4:2:2) image with rows `stride` bytes apart to `format`.
pub fn from_yuyv(
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
    yuyv: &[u8],
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let row = width * 2;
    if width % 2 != 0 || stride < row || yuyv.len() < stride * (height - 1) + row {
        bail!(
            "YUYV buffer of {} bytes is too small for {width}x{height} (stride {stride})",
            yuyv.len()
        );
    }
    out.clear();
    out.reserve(width * height * format.channels());
    for y in 0..height {
        let line = &yuyv[y * stride..y * stride + row];
        for q in line.chunks_exact(4) {
            let (y0, u, y1, v) = (q[0], q[1], q[2], q[3]);
            for luma8 in [y0, y1] {
                let [r, g, b] = yuv_to_rgb(luma8, u, v);
                match format {
                    PixelFormat::Bgr8 => out.extend_from_slice(&[b, g, r]),
                    PixelFormat::Rgb8 => out.extend_from_slice(&[r, g, b]),
                    PixelFormat::Gray8 => {
                        out.push(clamp8((298 * (i32::from(luma8) - 16) + 128) >> 8))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Decodes one MJPEG (JPEG) frame and converts it to `format`; returns its width and height.
pub fn from_mjpeg(
    format: PixelFormat,
    jpeg: &[u8],
    out: &mut Vec<u8>,
) -> anyhow::Result<(usize, usize)> {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .context("camera sent a JPEG frame that does not decode")?
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    from_rgb(format, img.as_raw(), out);
    Ok((w, h))
}

/// How a received frame's pixels are to be shown: the format from its metadata, or guessed from
/// its shape (HxW and HxWx1 are gray, HxWx3 is taken as OpenCV's BGR).
pub fn frame_layout(
    dtype: DType,
    shape: &[usize],
    info: Option<PixelFormat>,
) -> anyhow::Result<(usize, usize, PixelFormat)> {
    let shown = |why: &str| {
        anyhow::anyhow!(
            "cannot show a {dtype} frame of shape {shape:?} as an image ({why}): only uint8 HxW, HxWx1 and HxWx3 frames are images; read it with --headless"
        )
    };
    if dtype != DType::U8 {
        return Err(shown("not uint8"));
    }
    let (h, w, c) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] => (h, w, c),
        _ => return Err(shown("not 2-d or 3-d")),
    };
    let format = match (c, info) {
        (3, Some(f @ (PixelFormat::Bgr8 | PixelFormat::Rgb8))) => f,
        (3, _) => PixelFormat::Bgr8,
        (1, _) => PixelFormat::Gray8,
        _ => return Err(shown("channels must be 1 or 3")),
    };
    if w == 0 || h == 0 {
        return Err(shown("empty"));
    }
    Ok((w, h, format))
}

/// Converts pixels in `format` to interleaved RGB.
pub fn to_rgb(format: PixelFormat, data: &[u8]) -> Vec<u8> {
    match format {
        PixelFormat::Rgb8 => data.to_vec(),
        PixelFormat::Bgr8 => data
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect(),
        PixelFormat::Gray8 => data.iter().flat_map(|&g| [g, g, g]).collect(),
    }
}

/// Converts pixels in `format` to minifb's `0RGB` words, replacing `out`'s contents.
pub fn to_0rgb(format: PixelFormat, data: &[u8], out: &mut Vec<u32>) {
    let px = |r: u8, g: u8, b: u8| (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b);
    out.clear();
    match format {
        PixelFormat::Rgb8 => out.extend(data.chunks_exact(3).map(|p| px(p[0], p[1], p[2]))),
        PixelFormat::Bgr8 => out.extend(data.chunks_exact(3).map(|p| px(p[2], p[1], p[0]))),
        PixelFormat::Gray8 => out.extend(data.iter().map(|&g| px(g, g, g))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverse of [`yuv_to_rgb`] for building fixtures: BT.601 limited range.
    fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
        let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
        let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
        (y as u8, u as u8, v as u8)
    }

    #[test]
    fn yuyv_known_values_to_bgr8_exact() {
        // Two rows of 4 pixels, stride padded to 12 bytes: black, white, pure grey 128, and
        // the reference colours of the BT.601 tables.
        let rows: [[u8; 8]; 2] = [
            [16, 128, 235, 128, 128, 128, 128, 128], // black, white | grey, grey
            [81, 90, 81, 240, 41, 240, 41, 110], // red (81,90,240) twice | blue (41,240,110) twice
        ];
        let mut buf = Vec::new();
        for r in rows {
            buf.extend_from_slice(&r);
            buf.extend_from_slice(&[0xEE; 4]); // padding that must be skipped
        }
        let mut out = Vec::new();
        from_yuyv(PixelFormat::Bgr8, 4, 2, 12, &buf, &mut out).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0, 0, 0,   255, 255, 255,   130, 130, 130,   130, 130, 130,
            0, 0, 255, 0, 0, 255,       255, 0, 0,       255, 0, 0,
        ];
        // Red and blue decode to the exact primaries (within the integer tables' rounding,
        // computed below from the formula and checked against hand values).
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(128, 128, 128), [130, 130, 130]);
        assert_eq!(yuv_to_rgb(81, 90, 240), [255, 0, 0]);
        assert_eq!(yuv_to_rgb(41, 240, 110), [0, 0, 255]);
        assert_eq!(out, want);
        let mut rgb = Vec::new();
        from_yuyv(PixelFormat::Rgb8, 4, 2, 12, &buf, &mut rgb).unwrap();
        assert_eq!(&rgb[12..15], &[255, 0, 0]);
        let mut gray = Vec::new();
        from_yuyv(PixelFormat::Gray8, 4, 2, 12, &buf, &mut gray).unwrap();
        assert_eq!(gray, vec![0, 255, 130, 130, 76, 76, 29, 29]);
    }

    #[test]
    fn yuyv_round_trip_of_many_colours() {
        // Colours → YUV (limited range) → YUYV with equal neighbours → bgr8: within 2 levels.
        let colours: Vec<[u8; 3]> = (0..=255u8)
            .step_by(15)
            .flat_map(|r| [[r, 255 - r, r / 2], [r, r, r], [255 - r, r / 3, r]])
            .collect();
        let mut buf = Vec::new();
        for c in &colours {
            let (y, u, v) = rgb_to_yuv(c[0], c[1], c[2]);
            buf.extend_from_slice(&[y, u, y, v]);
        }
        let mut out = Vec::new();
        let w = colours.len() * 2;
        from_yuyv(PixelFormat::Bgr8, w, 1, w * 2, &buf, &mut out).unwrap();
        for (i, c) in colours.iter().enumerate() {
            for px in [&out[i * 6..i * 6 + 3], &out[i * 6 + 3..i * 6 + 6]] {
                let got = [px[2], px[1], px[0]];
                for k in 0..3 {
                    assert!(
                        got[k].abs_diff(c[k]) <= 2,
                        "colour {c:?} came back as {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn yuyv_too_short_is_an_error() {
        let err = from_yuyv(PixelFormat::Bgr8, 4, 2, 8, &[0; 10], &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("too small"), "{err}");
    }

    /// A 64x48 image of four solid quadrants (JPEG keeps flat areas nearly exact).
    fn quadrants() -> image::RgbImage {
        image::RgbImage::from_fn(64, 48, |x, y| match (x < 32, y < 24) {
            (true, true) => image::Rgb([220, 30, 30]),
            (false, true) => image::Rgb([30, 200, 40]),
            (true, false) => image::Rgb([20, 40, 210]),
            (false, false) => image::Rgb([240, 240, 240]),
        })
    }

    #[test]
    fn mjpeg_to_bgr8_within_tolerance() {
        let src = quadrants();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&src)
            .unwrap();
        let mut out = Vec::new();
        let (w, h) = from_mjpeg(PixelFormat::Bgr8, &jpeg, &mut out).unwrap();
        assert_eq!((w, h), (64, 48));
        assert_eq!(out.len(), 64 * 48 * 3);
        let mut worst = 0u8;
        for (i, p) in src.pixels().enumerate() {
            let (x, y) = (i % 64, i / 64);
            // Away from the quadrant edges (JPEG blocks and chroma subsampling blur those).
            if (28..36).contains(&x) || (20..28).contains(&y) {
                continue;
            }
            let got = &out[i * 3..i * 3 + 3];
            for k in 0..3 {
                worst = worst.max(got[2 - k].abs_diff(p.0[k]));
            }
        }
        assert!(worst <= 8, "JPEG round trip off by {worst} levels");
    }

    #[test]
    fn mjpeg_garbage_is_an_error() {
        let err = from_mjpeg(PixelFormat::Bgr8, b"not a jpeg", &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("JPEG"), "{err:#}");
    }

    #[test]
    fn rgb_conversions_round_trip() {
        let rgb = [10u8, 20, 30, 200, 100, 0];
        let mut bgr = Vec::new();
        from_rgb(PixelFormat::Bgr8, &rgb, &mut bgr);
        assert_eq!(bgr, [30, 20, 10, 0, 100, 200]);
        assert_eq!(to_rgb(PixelFormat::Bgr8, &bgr), rgb);
        let mut gray = Vec::new();
        from_rgb(PixelFormat::Gray8, &rgb, &mut gray);
        assert_eq!(gray, [luma(10, 20, 30), luma(200, 100, 0)]);
        let mut words = Vec::new();
        to_0rgb(PixelFormat::Bgr8, &bgr, &mut words);
        assert_eq!(words, [0x0a141e, 0xc86400]);
    }

    #[test]
    fn layouts() {
        assert_eq!(
            frame_layout(DType::U8, &[4, 5, 3], Some(PixelFormat::Rgb8)).unwrap(),
            (5, 4, PixelFormat::Rgb8)
        );
        assert_eq!(
            frame_layout(DType::U8, &[4, 5, 3], None).unwrap().2,
            PixelFormat::Bgr8
        );
        assert_eq!(
            frame_layout(DType::U8, &[4, 5], None).unwrap().2,
            PixelFormat::Gray8
        );
        assert!(frame_layout(DType::F32, &[4, 5], None).is_err());
        assert!(frame_layout(DType::U8, &[4, 5, 2], None).is_err());
    }

    #[test]
    fn checksum_sees_every_byte() {
        let mut a = vec![7u8; 1001];
        let c = checksum(&a);
        for i in [0, 500, 1000] {
            a[i] ^= 1;
            assert_ne!(checksum(&a), c);
            a[i] ^= 1;
        }
    }
}
