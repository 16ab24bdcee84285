//! End-to-end: the bus capture of an offloaded stream, decoded by Debian's tshark, and the
//! pictures of every recorded stream.
//!
//! These tests need the image (`sideband setup` builds it) and tshark (`scripts/host-deps`
//! installs it). Boots are serialised across test processes by a file lock: the machine has two
//! cores and TCG uses both.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{number_after, sideband, text};

/// tshark's fields (`-T fields -e F...`) of the packets `filter` selects, one line each.
fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd
        .output()
        .expect("cannot run tshark (scripts/host-deps installs it)");
    assert!(o.status.success(), "tshark failed: {}", text(&o.stderr));
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// The data chunk of a WAV file.
fn wav_data(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let mut at = 12;
    while at + 8 <= b.len() {
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        if &b[at..at + 4] == b"data" {
            return b[at + 8..(at + 8 + len).min(b.len())].to_vec();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn offloaded_stream_capture_decodes_in_tshark_and_matches_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("bus.pcap");
    let o = sideband(&["run", "--pcap", pcap.to_str().unwrap()], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(stdout.contains("capture: "), "{stdout}");
    let tds = number_after::<u64>(&stdout, "samples in ");
    let packet = number_after::<u64>(&stdout, "TDs of ");
    let interrupter = number_after::<u64>(&stdout, "interrupter ");
    let stream = number_after::<u64>(&stdout, "check-counter 96000: stream ");
    assert_eq!((tds, packet), (8000, 24), "{stdout}");

    // Enumeration: the control transfers decode as standard requests and descriptors.
    let devices = tshark(
        &pcap,
        "usb.urb_type == 'C' && usb.bDescriptorType == 1",
        &["usb.idVendor", "usb.idProduct"],
    );
    assert!(
        devices.iter().any(|l| l == "0x1209\t0x0001"),
        "the headset's device descriptor: {devices:?}"
    );
    let config = tshark(&pcap, "usb.bInterfaceClass == 0x01", &["frame.number"]);
    assert!(
        !config.is_empty(),
        "an audio interface in a configuration descriptor"
    );
    let set_config = tshark(
        &pcap,
        "usb.setup.bRequest == 9 && usb.urb_type == 'S'",
        &["usb.setup.wValue"],
    );
    assert!(!set_config.is_empty(), "SET_CONFIGURATION decodes");
    // The enumeration was the guest's: it is on bus 1, not on the offload bus.
    let primary = tshark(&pcap, "usb.bus_id == 1", &["frame.number"]);
    assert!(primary.len() > 20, "{}", primary.len());

    // The offloaded stream: isochronous OUT submissions on the DSP's interrupter's bus, to the
    // data endpoint, one per TD, each one packet of the TD's length.
    let filter = format!(
        "usb.bus_id == {} && usb.transfer_type == 0 && usb.urb_type == 'S' && usb.endpoint_address == 0x01",
        100 + interrupter
    );
    let iso = tshark(&pcap, &filter, &["usb.iso.iso_len", "usb.iso.data"]);
    assert_eq!(iso.len() as u64, tds, "one isochronous packet per TD");
    let mut payload = Vec::new();
    for line in &iso {
        let (len, data) = line.split_once('\t').expect("two fields");
        assert_eq!(len, packet.to_string(), "{line}");
        let data = hex(data);
        assert_eq!(data.len() as u64, packet);
        payload.extend(data);
    }
    // Their bytes are what the headset recorded.
    let wavs = files_ending(&dir.path().join("offload-playback"), "wav");
    let wav = wavs
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("headset-stream{stream}-"))
        })
        .unwrap_or_else(|| panic!("no WAV of stream {stream} in {wavs:?}"));
    let recorded = wav_data(wav);
    // Every stream has its picture next to its WAV.
    for w in &wavs {
        let png = w.with_extension("png");
        let b = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!(&b[1..4], b"PNG");
        let (width, height) = (
            u32::from_be_bytes(b[16..20].try_into().unwrap()),
            u32::from_be_bytes(b[20..24].try_into().unwrap()),
        );
        assert_eq!((width, height), (1200, 900), "{}", png.display());
        assert!(b.len() > 10_000, "{}: {} bytes", png.display(), b.len());
    }
    assert!(stdout.contains("headset picture: stream"), "{stdout}");
    assert_eq!(payload.len(), recorded.len());
    assert!(payload == recorded, "the captured payload is the recording");
    // Completions on the same bus, none of them errors.
    let completions = tshark(
        &pcap,
        &filter.replace("'S'", "'C'"),
        &["usb.iso.iso_status"],
    );
    assert_eq!(completions.len() as u64, tds);
    assert!(
        completions.iter().all(|s| s == "0"),
        "{:?}",
        &completions[..3]
    );
}
