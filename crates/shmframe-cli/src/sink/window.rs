//! The reader's window (minifb on X11): shows the newest frame 1:1, rate and latency in the
//! title; `q` or Esc closes it.

use crate::convert::{self, PixelFormat};
use minifb::{Key, WindowOptions};

/// An open window.
pub struct Window {
    win: minifb::Window,
    buf: Vec<u32>,
    name: String,
}

/// Why there is no window, if the environment already says so (no `DISPLAY`).
pub fn unavailable() -> Option<String> {
    match std::env::var_os("DISPLAY") {
        Some(d) if !d.is_empty() => None,
        _ => Some("no display (DISPLAY is not set)".to_string()),
    }
}

impl Window {
    /// Opens a `width`×`height` window for channel `name`.
    pub fn open(name: &str, width: usize, height: usize) -> Result<Window, String> {
        let title = format!("shmframe {name}");
        let mut win = minifb::Window::new(&title, width, height, WindowOptions::default())
            .map_err(|e| format!("cannot open a window ({e})"))?;
        // Frames pace the loop; never sleep inside update().
        win.set_target_fps(0);
        Ok(Window {
            win,
            buf: Vec::new(),
            name: name.to_string(),
        })
    }

    /// Shows a frame.
    pub fn show(
        &mut self,
        format: PixelFormat,
        width: usize,
        height: usize,
        data: &[u8],
    ) -> Result<(), String> {
        convert::to_0rgb(format, data, &mut self.buf);
        self.win
            .update_with_buffer(&self.buf, width, height)
            .map_err(|e| format!("cannot draw the frame ({e})"))
    }

    /// Handles window events while no frame arrives.
    pub fn idle(&mut self) {
        self.win.update();
    }

    /// `true` once the window was closed or `q`/Esc pressed.
    pub fn closed(&self) -> bool {
        !self.win.is_open() || self.win.is_key_down(Key::Escape) || self.win.is_key_down(Key::Q)
    }

    /// Puts rate and latency in the title.
    pub fn set_status(&mut self, fps: f64, p50_us: Option<u64>, p99_us: Option<u64>, missed: u64) {
        let lat = match (p50_us, p99_us) {
            (Some(a), Some(b)) => format!("latency p50 {a} µs p99 {b} µs"),
            _ => "latency n/a".to_string(),
        };
        self.win.set_title(&format!(
            "shmframe {} — {fps:.1} fps, {lat}, missed {missed} (q quits)",
            self.name
        ));
    }
}
