//! The test pattern: colour bars that scroll one step per frame, a moving gradient, and the
//! frame index and elapsed time drawn with a built-in 5×7 bitmap font.

use super::Source;
use crate::convert::{self, PixelFormat};
use std::time::Instant;

/// 5×7 glyphs, one byte per row, the low 5 bits are the pixels (bit 4 is the left column).
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        's' => [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E],
        _ => [0; 7],
    }
}

/// The eight bars of a classic test card, RGB.
const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

/// The test pattern generator.
pub struct TestSrc {
    width: usize,
    height: usize,
    format: PixelFormat,
    fps: f64,
    index: u64,
    start: Option<Instant>,
    rgb: Vec<u8>,
}

impl TestSrc {
    /// A `width`×`height` pattern in `format`, labelled for `fps`.
    pub fn new(width: usize, height: usize, format: PixelFormat, fps: f64) -> TestSrc {
        TestSrc {
            width,
            height,
            format,
            fps,
            index: 0,
            start: None,
            rgb: vec![0; width * height * 3],
        }
    }

    /// Draws frame `index` at `seconds` into `self.rgb`.
    fn draw(&mut self, index: u64, seconds: f64) {
        let (w, h) = (self.width, self.height);
        let shift = (index as usize * 4) % w.max(1);
        let bar_w = w.div_ceil(8).max(1);
        let bars_h = h * 2 / 3;
        for y in 0..h {
            let row = &mut self.rgb[y * w * 3..(y + 1) * w * 3];
            for x in 0..w {
                let px = if y < bars_h {
                    BARS[((x + shift) % w) / bar_w % 8]
                } else {
                    // A gradient sweeping sideways under the bars.
                    let g = ((x * 255 / w.max(1)) + index as usize * 2) % 256;
                    let b = (y - bars_h) * 255 / (h - bars_h).max(1);
                    [g as u8, (255 - g) as u8, b as u8]
                };
                row[x * 3..x * 3 + 3].copy_from_slice(&px);
            }
        }
        let text = format!("#{index:06} {seconds:7.2}s");
        let scale = (w / 160).clamp(1, 6);
        self.label(&text, 8, 8, scale);
    }

    /// Draws `text` white on a black box at (`x0`, `y0`), each font pixel `scale`² pixels.
    fn label(&mut self, text: &str, x0: usize, y0: usize, scale: usize) {
        let cell = 6 * scale;
        let box_w = text.chars().count() * cell + 2 * scale;
        let box_h = 9 * scale;
        let (w, h) = (self.width, self.height);
        for y in y0..(y0 + box_h).min(h) {
            for x in x0..(x0 + box_w).min(w) {
                let lit = {
                    let (gx, gy) = ((x - x0) / scale, (y - y0) / scale);
                    let (ci, cx) = (gx.saturating_sub(1) / 6, gx.saturating_sub(1) % 6);
                    gx >= 1
                        && (1..8).contains(&gy)
                        && cx < 5
                        && text
                            .chars()
                            .nth(ci)
                            .is_some_and(|c| glyph(c)[gy - 1] & (0x10 >> cx) != 0)
                };
                let v = if lit { 255 } else { 0 };
                self.rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v, v]);
            }
        }
    }
}

impl Source for TestSrc {
    fn next_frame(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<(usize, usize)>> {
        let start = *self.start.get_or_insert_with(Instant::now);
        let index = self.index;
        self.index += 1;
        self.draw(index, start.elapsed().as_secs_f64());
        convert::from_rgb(self.format, &self.rgb, out);
        Ok(Some((self.width, self.height)))
    }

    fn paced(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("test pattern at {} fps", self.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_and_carry_their_label() {
        let mut t = TestSrc::new(320, 240, PixelFormat::Rgb8, 30.0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(t.next_frame(&mut a).unwrap(), Some((320, 240)));
        t.next_frame(&mut b).unwrap();
        assert_eq!(a.len(), 320 * 240 * 3);
        assert_ne!(a, b, "the pattern moves");
        // The label's box starts black at (8, 8); a lit pixel of '#' is inside it.
        let px = |d: &Vec<u8>, x: usize, y: usize| d[(y * 320 + x) * 3];
        assert_eq!(px(&a, 8, 8), 0);
        assert!((8..40).any(|x| (8..26).any(|y| px(&a, x, y) == 255)));
    }

    #[test]
    fn tiny_sizes_do_not_panic() {
        for (w, h) in [(1, 1), (2, 3), (7, 1), (1, 9)] {
            let mut t = TestSrc::new(w, h, PixelFormat::Gray8, 30.0);
            let mut out = Vec::new();
            t.next_frame(&mut out).unwrap();
            assert_eq!(out.len(), w * h);
        }
    }
}
