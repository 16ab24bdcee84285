//! The headset's recording as the backend keeps it: one WAV file per stream in the output folder
//! (bounded by a size cap), and a counter-pattern check per stream for bit-exact verdicts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sideband_device::usb::uac::{RecordSink, RecordedChunk, StreamFormat};

use super::counter::CounterCheck;
use super::picture::{self, Picture};
use super::wav::WavWriter;

/// Default cap of one stream's WAV data (a minute of 8-channel 32-bit 384 kHz audio is 737 MB;
/// CI streams are seconds long).
pub const DEFAULT_CAP: u64 = 256 << 20;

/// One stream's file and figures.
#[derive(Debug)]
pub struct StreamFile {
    /// Stream number as the device counts them.
    pub stream: u64,
    /// Its format.
    pub format: StreamFormat,
    /// The WAV file.
    pub path: PathBuf,
    /// Counter-pattern progress.
    pub counter: Option<CounterCheck>,
    writer: Option<WavWriter>,
    /// Bytes written, once finished.
    pub bytes: u64,
    /// Bytes past the cap, once finished.
    pub dropped: u64,
    /// The picture next to the WAV (waveform, zoom on the first glitch, spectrum), once
    /// finished; or why there is none.
    pub picture: Option<Result<Picture, String>>,
}

/// Every stream the headset recorded in one boot.
#[derive(Debug)]
pub struct Recording {
    dir: PathBuf,
    cap: u64,
    streams: Vec<StreamFile>,
    errors: Vec<String>,
}

impl Recording {
    /// Records into `dir` (created if needed) with `cap` bytes per stream.
    pub fn new(dir: &Path, cap: u64) -> Self {
        Recording {
            dir: dir.to_path_buf(),
            cap,
            streams: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn accept(&mut self, chunk: RecordedChunk) {
        if self.streams.last().map(|s| s.stream) != Some(chunk.stream) {
            self.finish_last();
            let f = chunk.format;
            let path = self.dir.join(format!(
                "headset-stream{}-{}hz-{}bit-{}ch.wav",
                chunk.stream, f.rate, f.bits, f.channels
            ));
            let writer = std::fs::create_dir_all(&self.dir).and_then(|()| {
                WavWriter::create(
                    &path,
                    f.rate,
                    u16::from(f.channels),
                    u16::from(f.bits),
                    self.cap,
                )
            });
            let writer = match writer {
                Ok(w) => Some(w),
                Err(e) => {
                    self.errors
                        .push(format!("cannot write {}: {e}", path.display()));
                    None
                }
            };
            self.streams.push(StreamFile {
                stream: chunk.stream,
                format: f,
                path,
                counter: matches!(f.bits, 16 | 24 | 32)
                    .then(|| CounterCheck::new(usize::from(f.bits / 8))),
                writer,
                bytes: 0,
                dropped: 0,
                picture: None,
            });
        }
        let Some(s) = self.streams.last_mut() else {
            return;
        };
        if let Some(c) = s.counter.as_mut() {
            c.feed(&chunk.data);
        }
        if let Some(w) = s.writer.as_mut() {
            if let Err(e) = w.write(&chunk.data) {
                self.errors
                    .push(format!("writing {}: {e}", s.path.display()));
                s.writer = None;
            }
        }
    }

    fn finish_last(&mut self) {
        let Some(s) = self.streams.last_mut() else {
            return;
        };
        if let Some(w) = s.writer.take() {
            match w.finish() {
                Ok((bytes, dropped)) => {
                    s.bytes = bytes;
                    s.dropped = dropped;
                }
                Err(e) => self
                    .errors
                    .push(format!("finishing {}: {e}", s.path.display())),
            }
        }
    }

    /// Finishes the open file and draws the picture of every stream that has none yet (here,
    /// not as each stream ends: drawing takes longer than a service interval, and streams end
    /// on the bus's clock); the streams recorded so far.
    pub fn finish(&mut self) -> &[StreamFile] {
        self.finish_last();
        for s in &mut self.streams {
            if s.picture.is_none() && s.writer.is_none() && s.bytes > 0 {
                let f = s.format;
                s.picture = Some(picture::draw_wav(
                    &s.path,
                    u32::from(f.bits),
                    usize::from(f.channels),
                    f.rate,
                ));
            }
        }
        &self.streams
    }

    /// Ok when the most recent stream holds exactly `expected` counter samples in a row,
    /// unbroken (earlier streams do not count: each check is about what was just sent).
    pub fn check_counter(&self, expected: u64) -> Result<String, String> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        let Some(s) = self.streams.last() else {
            return Err("the headset recorded no stream".into());
        };
        match s.counter.as_ref().map(|c| c.verdict(expected)) {
            Some(Ok(msg)) => Ok(format!("stream {}: {msg}", s.stream)),
            Some(Err(why)) => Err(format!("stream {}: {why}", s.stream)),
            None => Err(format!(
                "stream {}: {}-bit samples are not checked",
                s.stream, s.format.bits
            )),
        }
    }
}

/// The recorder's sink: chunks go into a shared [`Recording`].
#[derive(Clone, Debug)]
pub struct RecordingSink(pub Arc<Mutex<Recording>>);

impl RecordSink for RecordingSink {
    fn chunk(&mut self, chunk: RecordedChunk) {
        if let Some(mut r) = crate::fatal::lock(&self.0, "recording") {
            r.accept(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideband_device::usb::BusTime;

    fn chunk(stream: u64, values: std::ops::Range<u16>) -> RecordedChunk {
        RecordedChunk {
            stream,
            format: StreamFormat {
                bits: 16,
                channels: 2,
                rate: 48000,
            },
            first_frame: 0,
            start: BusTime(0),
            data: values.flat_map(u16::to_le_bytes).collect(),
        }
    }

    #[test]
    fn streams_become_files_and_the_counter_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Mutex::new(Recording::new(dir.path(), DEFAULT_CAP)));
        let mut sink = RecordingSink(rec.clone());
        sink.chunk(chunk(1, 0..3));
        sink.chunk(chunk(2, 1..100));
        sink.chunk(chunk(2, 100..201));
        let r = rec.lock().unwrap();
        assert_eq!(
            r.check_counter(200),
            Ok("stream 2: 200 samples bit-exact (200 recorded in all, silence around them)".into())
        );
        assert!(r.check_counter(201).is_err());
        drop(r);
        sink.chunk(chunk(3, 0..3));
        let mut r = rec.lock().unwrap();
        let e = r.check_counter(200).unwrap_err();
        assert!(
            e.starts_with("stream 3:"),
            "only the latest stream counts: {e}"
        );
        let files = r.finish();
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].bytes, 400);
        assert!(files[1]
            .path
            .ends_with("headset-stream2-48000hz-16bit-2ch.wav"));
        assert_eq!(std::fs::metadata(&files[1].path).unwrap().len(), 444);
        let pic = files[1].picture.as_ref().unwrap().as_ref().unwrap();
        assert!(pic.path.ends_with("headset-stream2-48000hz-16bit-2ch.png"));
        assert!(pic.path.exists());
    }
}
