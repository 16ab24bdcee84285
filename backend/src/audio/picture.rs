//! A picture of what the headset heard, next to each stream's WAV: the waveform of the whole run,
//! a zoom on the first gap or glitch (or on the start, when there is none) and the spectrum.
//! Drawn with `plotters` into a PNG; labels use the DejaVu font when it is installed
//! (`fonts-dejavu-core`, which `scripts/host-deps` installs) and are left out otherwise.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use rustfft::num_complex::Complex;

use super::glitch::{first_glitch, Glitch, Samples};

/// Picture size in pixels.
pub const WIDTH: u32 = 1200;
/// Picture height in pixels.
pub const HEIGHT: u32 = 900;
/// The colour of the glitch marker (nothing else is drawn in it).
pub const MARKER: RGBColor = RGBColor(230, 0, 30);
/// Most WAV data read for a picture (longer recordings are drawn up to here).
const MAX_BYTES: u64 = 64 << 20;
/// FFT length of the spectrum.
const FFT_LEN: usize = 4096;
/// Most FFT windows averaged.
const MAX_WINDOWS: usize = 256;
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// What a picture shows.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The PNG.
    pub path: PathBuf,
    /// The first gap or glitch, if any.
    pub glitch: Option<Glitch>,
    /// Frames drawn.
    pub frames: usize,
}

/// True once a font is registered with plotters (labels can be drawn).
fn fonts() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let Some(bytes) = FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()) else {
            return false;
        };
        // plotters keeps the font for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// Draws the picture of the WAV file `wav` (as [`super::wav::WavWriter`] writes them: 44-byte
/// header, PCM) into the same name with `.png`.
pub fn draw_wav(wav: &Path, bits: u32, channels: usize, rate: u32) -> Result<Picture, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(wav)
        .and_then(|f| f.take(44 + MAX_BYTES).read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", wav.display()))?;
    let data = bytes.get(44..).unwrap_or_default();
    let samples = Samples::decode(data, bits, channels, rate);
    let title = wav
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    draw(&samples, &wav.with_extension("png"), &title)
}

/// Draws `s` into the PNG `path`.
pub fn draw(s: &Samples, path: &Path, title: &str) -> Result<Picture, String> {
    let glitch = first_glitch(s);
    let labels = fonts();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = if labels {
        let caption = match glitch {
            Some(g) => format!(
                "{title}: first {} at {:.4} s (frame {})",
                g.kind,
                g.frame as f64 / f64::from(s.rate.max(1)),
                g.frame
            ),
            None => format!("{title}: no gap or glitch"),
        };
        root.titled(&caption, ("sans-serif", 20))
            .map_err(|e| err(&e))?
    } else {
        root
    };
    let panels = root.split_evenly((3, 1));
    let rate = f64::from(s.rate.max(1));
    let frames = s.frames();
    let marker = glitch.map(|g| g.frame as f64 / rate);
    // The whole run.
    waveform(
        &panels[0],
        s,
        0,
        frames,
        marker,
        labels,
        "whole run (channel 0)",
    )
    .map_err(|e| err(&e))?;
    // The zoom: 20 ms around the first glitch, or the first 20 ms.
    let span = (s.rate as usize / 50).max(16);
    let (from, what) = match glitch {
        Some(g) => (g.frame.saturating_sub(span / 2), "zoom on the first glitch"),
        None => (0, "first 20 ms"),
    };
    let to = (from + span).min(frames);
    waveform(&panels[1], s, from, to, marker, labels, what).map_err(|e| err(&e))?;
    spectrum(&panels[2], s, labels).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(Picture {
        path: path.to_path_buf(),
        glitch,
        frames,
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// Min/max of channel 0 per pixel column between frames `from` and `to`, with the marker.
fn waveform(
    area: &Area<'_>,
    s: &Samples,
    from: usize,
    to: usize,
    marker: Option<f64>,
    labels: bool,
    what: &str,
) -> DrawResult {
    let rate = f64::from(s.rate.max(1));
    let (t0, t1) = (from as f64 / rate, (to.max(from + 1)) as f64 / rate);
    let mut b = ChartBuilder::on(area);
    b.margin(8);
    if labels {
        b.caption(what, ("sans-serif", 16))
            .x_label_area_size(28)
            .y_label_area_size(48);
    }
    let mut chart = b.build_cartesian_2d(t0..t1, -1.05f64..1.05f64)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh();
    if labels {
        mesh.x_desc("s").draw()?;
    }
    let columns = WIDTH as usize;
    let n = to.saturating_sub(from);
    if n > 0 {
        let per = n.div_ceil(columns).max(1);
        let mut bars = Vec::with_capacity(n / per + 1);
        let mut line = Vec::new();
        let mut at = from;
        while at < to {
            let end = (at + per).min(to);
            let (mut lo, mut hi) = (f64::MAX, f64::MIN);
            for f in at..end {
                let v = s.value(f);
                lo = lo.min(v);
                hi = hi.max(v);
            }
            let t = at as f64 / rate;
            if per > 1 {
                bars.push(PathElement::new(vec![(t, lo), (t, hi)], BLUE));
            } else {
                line.push((t, lo));
            }
            at = end;
        }
        chart.draw_series(bars)?;
        chart.draw_series(LineSeries::new(line, BLUE))?;
    }
    if let Some(m) = marker.filter(|m| (t0..=t1).contains(m)) {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(m, -1.05), (m, 1.05)],
            MARKER.stroke_width(3),
        )))?;
    }
    Ok(())
}

/// Averaged magnitude spectrum of channel 0 (Hann windows), in dB of full scale.
fn spectrum(area: &Area<'_>, s: &Samples, labels: bool) -> DrawResult {
    let rate = f64::from(s.rate.max(1));
    let frames = s.frames();
    let mut sum = vec![0f64; FFT_LEN / 2];
    let windows = (frames / FFT_LEN).min(MAX_WINDOWS);
    if let Some(step) = frames.checked_div(windows) {
        let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(FFT_LEN);
        let hann: Vec<f64> = (0..FFT_LEN)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / FFT_LEN as f64).cos())
            .collect();
        let mut buf = vec![Complex::new(0.0, 0.0); FFT_LEN];
        for w in 0..windows {
            let start = w * step;
            for (i, c) in buf.iter_mut().enumerate() {
                *c = Complex::new(s.value(start + i) * hann[i], 0.0);
            }
            fft.process(&mut buf);
            for (acc, c) in sum.iter_mut().zip(&buf) {
                *acc += c.norm();
            }
        }
    }
    // A full-scale sine through a Hann window peaks at FFT_LEN / 4.
    let scale = windows.max(1) as f64 * FFT_LEN as f64 / 4.0;
    let points: Vec<(f64, f64)> = sum
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                i as f64 * rate / FFT_LEN as f64,
                (20.0 * (m / scale).max(1e-9).log10()).max(-160.0),
            )
        })
        .collect();
    let mut b = ChartBuilder::on(area);
    b.margin(8);
    if labels {
        b.caption("spectrum (channel 0, dBFS)", ("sans-serif", 16))
            .x_label_area_size(28)
            .y_label_area_size(48);
    }
    let mut chart = b.build_cartesian_2d(0f64..rate / 2.0, -160f64..5f64)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh();
    if labels {
        mesh.x_desc("Hz").draw()?;
    }
    chart.draw_series(LineSeries::new(points, RGBColor(0, 110, 50)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker_columns(png: &Path) -> Vec<u32> {
        let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let bpp = info.line_size / info.width as usize;
        let mut cols = Vec::new();
        for y in 0..info.height as usize {
            for x in 0..info.width as usize {
                let p = &buf[y * info.line_size + x * bpp..][..3];
                if p == [MARKER.0, MARKER.1, MARKER.2] && !cols.contains(&(x as u32)) {
                    cols.push(x as u32);
                }
            }
        }
        cols
    }

    fn counter_wav(dir: &Path, gap_at: Option<usize>) -> PathBuf {
        let path = dir.join(format!("s{}.wav", gap_at.is_some()));
        let mut w = super::super::wav::WavWriter::create(&path, 48000, 2, 16, 1 << 30).unwrap();
        let mut v = 0u16;
        for frame in 0..96_000usize {
            if gap_at.is_some_and(|g| (g..g + 240).contains(&frame)) {
                w.write(&[0; 4]).unwrap(); // a lost packet the headset filled with silence
                continue;
            }
            for _ in 0..2 {
                v = v.wrapping_add(1);
                w.write(&v.to_le_bytes()).unwrap();
            }
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn an_injected_gap_is_found_and_marked() {
        let dir = tempfile::tempdir().unwrap();
        let clean = draw_wav(&counter_wav(dir.path(), None), 16, 2, 48000).unwrap();
        assert_eq!(clean.glitch, None);
        assert_eq!(clean.frames, 96_000);
        let size = std::fs::metadata(&clean.path).unwrap().len();
        assert!(size > 5_000, "a PNG with content: {size} bytes");
        assert!(marker_columns(&clean.path).is_empty(), "nothing marked");

        let gap = draw_wav(&counter_wav(dir.path(), Some(60_000)), 16, 2, 48000).unwrap();
        assert_eq!(gap.glitch.map(|g| g.frame), Some(60_000));
        assert!(gap.path.ends_with("strue.png"));
        let cols = marker_columns(&gap.path);
        assert!(!cols.is_empty(), "the gap is marked");
        // In the whole-run panel the marker sits 60000/96000 of the way across the plot
        // (the zoom panel's marker is in the middle).
        let expect = (WIDTH as f64 * 60_000.0 / 96_000.0) as u32;
        assert!(
            cols.iter().any(|&c| c.abs_diff(expect) < 80),
            "marker columns {cols:?}, expected near {expect}"
        );
        assert!(cols.iter().any(|&c| c.abs_diff(WIDTH / 2) < 60), "{cols:?}");
    }
}
