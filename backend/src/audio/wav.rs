//! A streaming WAV (RIFF, PCM) writer: the header is written first with placeholder sizes and
//! patched when the file is finished, so memory stays flat however long the recording.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Writes one PCM stream to a file, up to a byte cap.
#[derive(Debug)]
pub struct WavWriter {
    out: BufWriter<File>,
    data_bytes: u64,
    cap: u64,
    dropped: u64,
}

/// Largest data chunk a RIFF file can describe.
const RIFF_MAX: u64 = u32::MAX as u64 - 36;

impl WavWriter {
    /// Creates `path` for `channels` × `bits` at `rate`, keeping at most `cap` data bytes.
    pub fn create(path: &Path, rate: u32, channels: u16, bits: u16, cap: u64) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        let block = channels * (bits / 8);
        out.write_all(b"RIFF\0\0\0\0WAVEfmt ")?;
        out.write_all(&16u32.to_le_bytes())?;
        out.write_all(&1u16.to_le_bytes())?; // PCM
        out.write_all(&channels.to_le_bytes())?;
        out.write_all(&rate.to_le_bytes())?;
        out.write_all(&(rate * u32::from(block)).to_le_bytes())?;
        out.write_all(&block.to_le_bytes())?;
        out.write_all(&bits.to_le_bytes())?;
        out.write_all(b"data\0\0\0\0")?;
        Ok(WavWriter {
            out,
            data_bytes: 0,
            cap: cap.min(RIFF_MAX),
            dropped: 0,
        })
    }

    /// Appends samples (little-endian, interleaved); bytes past the cap are counted, not kept.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let room = self.cap.saturating_sub(self.data_bytes) as usize;
        let keep = data.len().min(room);
        self.out.write_all(&data[..keep])?;
        self.data_bytes += keep as u64;
        self.dropped += (data.len() - keep) as u64;
        Ok(())
    }

    /// Patches the sizes; returns (bytes kept, bytes dropped by the cap).
    pub fn finish(mut self) -> io::Result<(u64, u64)> {
        self.out.flush()?;
        let mut f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(4))?;
        f.write_all(&((36 + self.data_bytes) as u32).to_le_bytes())?;
        f.seek(SeekFrom::Start(40))?;
        f.write_all(&(self.data_bytes as u32).to_le_bytes())?;
        Ok((self.data_bytes, self.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_describes_the_data_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = WavWriter::create(&path, 48000, 2, 16, 6).unwrap();
        w.write(&[1, 2, 3, 4]).unwrap();
        w.write(&[5, 6, 7, 8]).unwrap();
        assert_eq!(w.finish().unwrap(), (6, 2));
        let b = std::fs::read(&path).unwrap();
        assert_eq!(b.len(), 44 + 6);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(
            u16::from_le_bytes(b[22..24].try_into().unwrap()),
            2,
            "channels"
        );
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 48000);
        assert_eq!(
            u32::from_le_bytes(b[28..32].try_into().unwrap()),
            48000 * 4,
            "byte rate"
        );
        assert_eq!(u32::from_le_bytes(b[40..44].try_into().unwrap()), 6);
        assert_eq!(&b[44..], &[1, 2, 3, 4, 5, 6]);
    }
}
