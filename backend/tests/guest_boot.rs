//! End-to-end: the real guest kernel boots in QEMU and the harness judges it.
//!
//! These tests need the image (`sideband setup` builds it; `scripts/test` runs that first). Boots
//! are serialised: the machine has two cores and TCG uses both.

mod common;

use common::{number_after, sideband, text, BootLock};

/// The ordinary snd-usb-audio path is tested on the kernel variant that fixes its two races
/// (images/kernel/variants/snd-usb-fixes): on stock, playback now and then swaps two URBs at
/// stream start and capture now and then reads a chunk before it is written.
const FIXED_AUDIO: &str = "7.3+snd-usb-fixes";

#[test]
fn smoke_passes_with_every_offload_module_and_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "smoke"], dir.path());
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "smoke failed:\n{stdout}\n{}",
        text(&o.stderr)
    );
    for case in [
        "ok 1 offload_modules_loaded",
        "ok 2 q6usb_platform_device",
        "ok 3 virtio_iommu_builtin",
        "ok 6 q6usb_iommu_domain",
        "ok 7 offload_aux_device_bound",
        "ok 8 dmesg_clean",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    assert!(stdout.contains("ok 1 smoke"));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let console = std::fs::read_to_string(dir.path().join("smoke.console.log")).unwrap();
    assert!(console.contains("SIDEBAND-READY"));
}

#[test]
fn main_job_plays_an_offloaded_stream_and_prints_a_pass_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["run"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    assert!(stdout.contains("boot to ready"), "{stdout}");
    assert!(stdout.contains("96000 samples bit-exact"), "{stdout}");
    // q6usb's domain came through the backend's virtio-iommu (PROBE, ATTACH for the DT's
    // endpoint), the driver mapped the stream's memory and unmapped all of it again.
    assert!(
        stdout.contains("adsp-smmu: probe 1 attach 1 detach 0 map 4 unmap 4 errors 0, endpoints [0x2000f], 0 mapping(s) left"),
        "{stdout}"
    );
    // Every case of the scenario passed, the DSP's stream left the guest's own interrupter idle
    // (the guest stayed out of it), and the kernel reported nothing.
    for line in [
        "  ok    guest_stayed_responsive",
        "primary interrupter during the stream: 0 events, 0 IRQs",
        "  kernel reports 0",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn emulated_xhci_enumerates_headset_and_loops_back_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "usb"], dir.path());
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "usb scenario failed:\n{stdout}\n{}",
        text(&o.stderr)
    );
    for case in [
        "ok 1 xhci_bound",
        "ok 2 root_hubs",
        "ok 3 headset_enumerated",
        "ok 4 loopback_enumerated",
        "ok 5 headset_sound_card",
        "ok 6 offload_controls",
        "ok 7 loopback_1mib",
        "ok 8 dmesg_clean",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    assert!(stdout.contains("Driver=snd-usb-audio, 480M"), "{stdout}");
}

#[test]
fn backend_unplug_and_replug_are_seen_and_the_device_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "hotplug"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    for case in [
        "ok 2 unplug_seen",
        "ok 3 replug_enumerated",
        "ok 4 loopback_after_replug",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    let console = std::fs::read_to_string(dir.path().join("hotplug.console.log")).unwrap();
    assert!(console.contains("[sideband] unplug 2: port 2 unplugged"));
    assert!(console.contains("usb 1-2: USB disconnect"));
}

#[test]
fn ordinary_playback_reaches_the_headset_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &["test", "-s", "playback", "--kernel", FIXED_AUDIO],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let console = std::fs::read_to_string(dir.path().join("playback.console.log")).unwrap();
    assert!(
        console.contains("check-counter 96000: stream")
            && console.contains("96000 samples bit-exact"),
        "{console}"
    );
    assert!(
        console.contains("check-counter 192000: stream")
            && console.contains("192000 samples bit-exact"),
        "96 kHz/24-bit: {console}"
    );
    assert!(stdout.contains("ok 2 stream_formats_listed"), "{stdout}");
    let wavs: Vec<_> = std::fs::read_dir(dir.path().join("playback"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-48000hz-16bit-2ch.wav")
        })
        .collect();
    assert!(!wavs.is_empty(), "no WAV of the stream");
}

#[test]
fn a_recording_that_does_not_match_fails_the_run() {
    assert_fails_with(
        &[
            "test",
            "-s",
            "selftest-counter-mismatch",
            "--kernel",
            FIXED_AUDIO,
        ],
        &[
            "backend request `check-counter 48001` failed",
            "counter samples in a row, the guest sent 48001",
        ],
    );
}

#[test]
fn dsp_enables_an_offloaded_stream_over_qmi_and_its_memory_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "offload-enable"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("ok 3 pcm_busy_while_offloaded"), "{stdout}");
    assert!(stdout.contains("ok 4 pcm_free_after_disable"), "{stdout}");
    let console = std::fs::read_to_string(dir.path().join("offload-enable.console.log")).unwrap();
    let enable = console
        .lines()
        .find(|l| l.starts_with("[sideband] stream-enable"))
        .unwrap_or_default();
    // The driver's answer: the secondary interrupter the DT asks for, the event ring at its
    // fixed IOVA, and every region mapped through the SMMU to the address the xHCI uses
    // (the backend fails the request otherwise).
    for needle in [
        "interrupter 2",
        "event ring iova 0x1000 ->",
        "transfer ring iova",
        "transfer buffer iova",
        "interrupter 2: 1 segment of 256 TRBs",
    ] {
        assert!(enable.contains(needle), "missing `{needle}` in: {enable}");
    }
    assert!(
        console.contains("[sideband] stream-disable: disabled"),
        "{console}"
    );
}

/// What a passing `offload-playback` run left: its console log, the DSP's `stream-play` answer
/// and sideband's stderr (the devices' summaries).
struct OffloadRun {
    console: String,
    play: String,
    stderr: String,
}

fn offload_playback(extra: &[&str]) -> OffloadRun {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["test", "-s", "offload-playback"];
    args.extend_from_slice(extra);
    let o = sideband(&args, dir.path());
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{extra:?}: {stdout}\n{stderr}");
    let console = std::fs::read_to_string(dir.path().join("offload-playback.console.log")).unwrap();
    let play = console
        .lines()
        .find(|l| l.starts_with("[sideband] stream-play"))
        .unwrap_or_default()
        .to_string();
    OffloadRun {
        console,
        play,
        stderr,
    }
}

#[test]
fn dsp_streams_through_the_handed_over_rings_bit_exact() {
    let OffloadRun {
        console,
        play,
        stderr,
    } = offload_playback(&[]);
    assert!(
        play.contains("96000 samples in 8000 TDs of 24 bytes"),
        "{play}"
    );
    assert!(play.contains("8000 completed"), "{play}");
    // The point of offload: no interrupt on the guest's primary interrupter while the DSP streams.
    assert!(
        play.contains("primary interrupter during the stream: 0 events, 0 IRQs"),
        "{play}"
    );
    assert!(
        console.contains("check-counter 96000: stream")
            && console.contains("96000 samples bit-exact")
    );
    assert!(console.contains("0 SMMU faults; disabled"), "{console}");
    // The DSP's events went to interrupter 2 and raised no interrupt (IE clear).
    let xhci = stderr
        .lines()
        .find(|l| l.contains("xhci: "))
        .unwrap_or_default();
    // 8000 completions plus an underrun or two when the ring runs dry (at the end, or when
    // the host is busy): at least 8000 events, and never an interrupt.
    let secondary = xhci
        .split("#2 ")
        .nth(1)
        .and_then(|r| r.split_once(" ev/"))
        .and_then(|(ev, rest)| Some((ev.parse::<u64>().ok()?, rest.starts_with("0 irq"))));
    assert!(
        matches!(secondary, Some((ev, true)) if ev >= 8000),
        "{xhci}"
    );
    assert!(
        stderr.contains("0 mapping(s) left"),
        "the driver unmapped everything: {stderr}"
    );
}

/// The same offloaded stream with the DSP behind the emulated MHI function: mhi_pci_generic and
/// qrtr-mhi carry every QMI message in the kernel, and the stream is as bit-exact as on the relay.
#[test]
fn the_dsp_streams_bit_exact_over_the_mhi_link() {
    let OffloadRun {
        console,
        play,
        stderr,
    } = offload_playback(&["--adsp-link", "mhi"]);
    assert!(console.contains("sideband.adsp_link=mhi"), "{console}");
    assert!(
        console.contains("MHI PCI device found: qcom-sdx35m"),
        "{console}"
    );
    assert!(play.contains("8000 completed"), "{play}");
    assert!(console.contains("96000 samples bit-exact"), "{console}");
    let mhi = stderr
        .lines()
        .find(|l| l.contains("mhi: state"))
        .unwrap_or_else(|| panic!("no MHI summary: {stderr}"));
    // IPCR was started with two commands, packets crossed both ways, nothing was refused and
    // every interrupt found its eventfd.
    assert!(
        mhi.contains("2 command(s)") && mhi.contains("0 refused"),
        "{mhi}"
    );
    assert!(mhi.contains("0 without an eventfd"), "{mhi}");
    assert!(!mhi.contains(" 0 packet(s) up"), "{mhi}");
}

/// Guide §5g on stock 7.3, over the MHI link so the DSP answers while user space is frozen: the
/// DSP's disable is answered, the stream and the SMMU are released, and a new stream works; but the
/// usage count survives (usb_offload_put refuses while offload_pm_locked), so the root hub still
/// counts as offloaded and xhci-pci fails the next suspend too. Reported as a known failure with
/// the kernel's own lines; the `offload-suspend-put` variant passes.
#[test]
fn a_suspend_while_streaming_keeps_the_offload_usage_count_on_stock() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "suspend-offload"], dir.path());
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(
        o.status.success(),
        "a known failure does not fail the run:
{stdout}
{stderr}"
    );
    let verdict = stdout
        .lines()
        .find(|l| l.contains(" suspend-offload # TODO known failure"))
        .unwrap_or_else(|| {
            panic!(
                "suspend-offload is not a known failure:
{stdout}"
            )
        });
    assert!(verdict.starts_with("not ok "), "{verdict}");
    for case in [
        "ok 1 idle_suspend_suspends_headset",
        "ok 5 indication_answered",
        "ok 6 dsp_released",
        "ok 8 new_stream_bit_exact",
        "not ok 9 headset_suspended_again",
    ] {
        assert!(stdout.contains(case), "missing `{case}`:\n{stdout}");
    }
    let again = stdout
        .lines()
        .find(|l| l.contains("# headset_suspended_again:"))
        .unwrap_or_default();
    assert!(
        again.contains("usb usb1: device offloaded, skip suspend.")
            && again.contains("Root hub is not suspended"),
        "{again}"
    );
    let mhi = stderr
        .lines()
        .find(|l| l.contains("mhi: state"))
        .unwrap_or_default();
    assert!(
        !mhi.contains(" 0 M3 entr"),
        "the link went to M3 and back: {mhi}"
    );
    // The variant that lets usb_offload_put drop the count while offload_pm_locked passes every
    // case: the refused put is where the count leaks.
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "suspend-offload",
            "--kernel",
            "7.3+offload-suspend-put",
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("ok 4 suspended_and_resumed"), "{stdout}");
    assert!(stdout.contains("ok 9 headset_suspended_again"), "{stdout}");
    assert!(stdout.contains("# 1 passed, 0 failed"), "{stdout}");
}

// On the stock kernel this capture fails now and then (about 1 run in 20): snd-usb-audio's
// retire_capture_urb publishes hwptr_done before it copies the packet, so arecord on the other
// vCPU can read the chunk before it is written (zeros just after a period boundary). The
// variant copies first; on it the device's counter must arrive bit-exact every time, which is
// what this test holds the model to.
#[test]
fn ordinary_capture_of_the_counter_source_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "capture",
            "--kernel",
            FIXED_AUDIO,
            "--repeat",
            "3",
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(
        stdout.contains("96000 samples count up without a break"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("ok 3 capture_counter_bit_exact").count(),
        3,
        "{stdout}"
    );
}

/// The ordinary snd-usb-audio path with the other profiles: UAC1 at full speed and UAC2 whose
/// capture endpoint is the playback's implicit feedback. Both directions are bit-exact.
#[test]
fn ordinary_playback_and_capture_work_on_uac1_and_implicit_feedback_headsets() {
    for headset in ["headset-uac1", "uac2-implicit"] {
        let dir = tempfile::tempdir().unwrap();
        let o = sideband(
            &[
                "test",
                "-s",
                "ordinary-duplex",
                "--headset",
                headset,
                "--kernel",
                FIXED_AUDIO,
            ],
            dir.path(),
        );
        let stdout = text(&o.stdout);
        assert!(
            o.status.success(),
            "{headset}: {stdout}\n{}",
            text(&o.stderr)
        );
        assert!(
            stdout.contains("96000 samples count up without a break"),
            "{headset}: {stdout}"
        );
        let console =
            std::fs::read_to_string(dir.path().join("ordinary-duplex.console.log")).unwrap();
        assert!(
            console.contains(": 96000 samples bit-exact"),
            "{headset}: {console}"
        );
    }
}

/// Ordinary (not offloaded) playback for 30 s with the headset's clock 100 ppm fast: aplay sees
/// no xrun and the headset recorded every sample in order, so snd-usb-audio followed the
/// feedback instead of under- or overrunning the device.
#[test]
fn thirty_seconds_of_ordinary_playback_at_plus_100_ppm_have_no_xrun_or_gap() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "playback-30s",
            "--headset",
            "headset-uac2:ppm=+100",
            "--kernel",
            FIXED_AUDIO,
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("ok 1 aplay_30s_without_xrun"), "{stdout}");
    let console = std::fs::read_to_string(dir.path().join("playback-30s.console.log")).unwrap();
    let check = console
        .lines()
        .find(|l| l.starts_with("[sideband] check-counter 2880000:"))
        .unwrap_or_else(|| panic!("no check-counter answer:\n{console}"));
    assert!(check.contains(": 2880000 samples bit-exact"), "{check}");
}

#[test]
fn offloaded_formats_are_bit_exact_over_twenty_starts_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "offload-matrix"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let console = std::fs::read_to_string(dir.path().join("offload-matrix.console.log")).unwrap();
    let checks: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("[sideband] check-counter"))
        .collect();
    assert_eq!(checks.len(), 20, "{console}");
    assert!(checks.iter().all(|l| l.contains("bit-exact")), "{checks:?}");
    for packet in ["TDs of 24 bytes", "TDs of 72 bytes", "TDs of 192 bytes"] {
        assert!(
            console.contains(packet),
            "48k/16, 96k/24 and 192k/32 stereo: missing {packet}"
        );
    }
    let disables = console
        .matches("0 SMMU faults; disabled, q6usb SMMU domain empty")
        .count();
    assert_eq!(
        disables, 20,
        "every stop leaves the q6usb SMMU domain empty"
    );
}

#[test]
fn mixer_changes_reach_the_headset() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "mixer"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let console = std::fs::read_to_string(dir.path().join("mixer.console.log")).unwrap();
    assert!(
        console.contains("[sideband] expect-headset mute=1: mute=1"),
        "{console}"
    );
    assert!(
        console.contains("[sideband] expect-headset mute=0 volume=-6: mute=0 volume=-6.00dB"),
        "{console}"
    );
}

#[test]
fn a_bad_headset_profile_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &["test", "-s", "smoke", "--headset", "uac2:bits=20"],
        dir.path(),
    );
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("headset profile 'uac2:bits=20'"),
        "{stderr}"
    );
}

fn offloaded_stream_with(headset: &str, append: &[&str], packet: &str, samples: &str) {
    let mut extra = vec!["--headset", headset];
    for a in append {
        extra.extend(["--append", a]);
    }
    let OffloadRun { console, play, .. } = offload_playback(&extra);
    assert!(play.contains(packet), "{headset}: {play}");
    assert!(
        console.contains(&format!("{samples} samples bit-exact")),
        "{headset}: {console}"
    );
}

#[test]
fn sixty_seconds_offloaded_have_no_missed_interval() {
    let OffloadRun { console, play, .. } = offload_playback(&["--append", "sideband.seconds=60"]);
    assert!(play.contains("5760000 samples in 480000 TDs"), "{play}");
    assert!(
        play.contains("0 events, 0 IRQs; headset: 0 missed intervals"),
        "{play}"
    );
    assert!(console.contains("5760000 samples bit-exact"), "{console}");
}

/// The host stops the whole controller (its clock, the DSP on it, its MMIO) for 60 ms, six
/// times, while the DSP streams: longer than the DSP keeps queued. The clock catches the time
/// up with the DSP serving between every 8 microframes, so the headset hears no gap.
#[test]
fn host_stalls_longer_than_the_dsp_queue_cost_no_interval() {
    let OffloadRun {
        console,
        play,
        stderr,
    } = offload_playback(&[
        "--append",
        "sideband.seconds=10",
        "--append",
        "sideband.host_stalls=6",
    ]);
    assert!(
        console.contains("6 host stall(s) of 60 ms, one every 1000 ms"),
        "{console}"
    );
    let longest_ms: f64 = number_after(&stderr, "longest gap ");
    assert!(
        longest_ms >= 60.0,
        "the stalls did not stop the clock: {stderr}"
    );
    assert!(play.contains("headset: 0 missed intervals"), "{play}");
    assert!(console.contains("960000 samples bit-exact"), "{console}");
}

#[test]
fn the_dsp_follows_feedback_from_a_headset_clock_off_by_100_ppm() {
    let OffloadRun { console, play, .. } = offload_playback(&[
        "--headset",
        "headset-uac2:ppm=+100",
        "--append",
        "sideband.seconds=10",
    ]);
    assert!(console.contains("960000 samples bit-exact"), "{console}");
    assert!(play.contains("headset: 0 missed intervals"), "{play}");
    // 48004.8 frames/s reported as 6.0006 frames per microframe; the DSP sends a 7-frame
    // packet now and then, so fewer than the nominal 80000 TDs carry the 10 s...
    assert!(
        play.contains("last 6.0006 frames per interval unit"),
        "{play}"
    );
    let tds: u64 = number_after(&play, " samples in ");
    assert!((79_980..80_000).contains(&tds), "{tds} TDs: {play}");
    // ...and the headset's buffer stays level (without feedback it drifts by about 48 frames).
    let ahead = play
        .split("frames ahead ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    let (lo, hi) = ahead.split_once("..").unwrap_or(("", ""));
    let (lo, hi): (i64, i64) = (
        lo.parse().unwrap_or(i64::MIN),
        hi.parse().unwrap_or(i64::MAX),
    );
    assert!(lo >= -3 && hi <= 3, "frames ahead {ahead}: {play}");
}

#[test]
fn offloaded_eight_channels_are_bit_exact() {
    offloaded_stream_with(
        "uac2:ch=8",
        &["sideband.ch=8"],
        "8000 TDs of 96 bytes",
        "384000",
    );
}

#[test]
fn offloaded_uac1_full_speed_is_bit_exact() {
    offloaded_stream_with("headset-uac1", &[], "1000 TDs of 192 bytes", "96000");
}

#[test]
fn offloaded_capture_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "offload-capture"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let console = std::fs::read_to_string(dir.path().join("offload-capture.console.log")).unwrap();
    assert!(
        console.contains("data ep 0x82"),
        "the capture endpoint was handed over: {console}"
    );
    assert!(
        console.contains("stream-capture 96000: 96000 captured samples count up unbroken"),
        "{console}"
    );
    assert!(
        console.contains("0 SMMU faults; disabled, q6usb SMMU domain empty"),
        "{console}"
    );
}

#[test]
fn bare_machine_loads_the_stack_and_skips_the_smmu_checks() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "smoke", "--bare"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok 6 q6usb_iommu_domain # SKIP booted without the ADSP SMMU"),
        "{stdout}"
    );
}

fn assert_fails_with(args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(args, dir.path());
    let stdout = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a failed run for {args:?}:\n{stdout}"
    );
    for n in needles {
        assert!(
            stdout.contains(n),
            "missing `{n}` for {args:?} in:\n{stdout}"
        );
    }
}

#[test]
fn kernel_panic_fails_with_the_panic_lines() {
    assert_fails_with(
        &["test", "-s", "selftest-panic"],
        &[
            "not ok 1 selftest-panic",
            "the guest kernel panicked",
            "Kernel panic - not syncing",
            "lkdtm",
        ],
    );
}

#[test]
fn bad_init_on_the_command_line_fails_as_a_panic() {
    assert_fails_with(
        &["test", "-s", "smoke", "--append", "rdinit=/no/such/init"],
        &["the guest kernel panicked", "Kernel panic - not syncing"],
    );
}

#[test]
fn guest_that_never_gets_ready_times_out_with_console_tail() {
    assert_fails_with(
        &[
            "test",
            "-s",
            "smoke",
            "--append",
            "sideband.stall=ready",
            "--ready-timeout",
            "15",
        ],
        &[
            "no ready marker within 15s",
            "stalling before the ready marker",
            "last console lines",
        ],
    );
}

/// A panic in a backend thread (here the bus clock, holding the controller's lock, on the
/// scenario's `selftest-panic` request) ends the run at once with the panic's message, thread
/// and place, and the console's last lines: not minutes later as an unrelated timeout.
#[test]
fn backend_panic_ends_the_run_at_once_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let _lock = BootLock::take();
    let started = std::time::Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sideband"))
        .args(["test", "-s", "selftest-backend-panic", "--out"])
        .arg(dir.path())
        .output()
        .expect("cannot run sideband");
    let wall = started.elapsed();
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    eprintln!("--- sideband test -s selftest-backend-panic ({wall:?})\n{stdout}\n{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    for needle in [
        "not ok 1 selftest-backend-panic",
        "the backend failed: selftest-panic: the bus clock panics on request while it holds the controller lock (thread xhci-clock at backend/src/devices/xhci.rs:",
        "last console lines:",
        "SIDEBAND-ASK selftest-panic",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    // The default panic message still reaches stderr.
    assert!(stderr.contains("thread 'xhci-clock'"), "{stderr}");
    let console =
        std::fs::read_to_string(dir.path().join("selftest-backend-panic.console.log")).unwrap();
    assert!(
        console.contains("[sideband] the backend failed: selftest-panic"),
        "{console}"
    );
    // Boot (about 3 s) plus a moment: far below the scenario's own 120 s wait and the 300 s
    // run timeout.
    assert!(
        wall < std::time::Duration::from_secs(60),
        "the run took {wall:?}"
    );
}

/// The devices judge too: a DSP that goes on streaming after the guest unmapped its rings faults
/// in its SMMU, and that fails the run although every KTAP case of the guest passed.
#[test]
fn an_smmu_fault_by_the_dsp_fails_a_scenario_the_guest_passed() {
    let dir = tempfile::tempdir().unwrap();
    let _lock = BootLock::take();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sideband"))
        .args(["test", "-s", "selftest-smmu-fault", "--out"])
        .arg(dir.path())
        .output()
        .expect("cannot run sideband");
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    eprintln!("--- sideband test -s selftest-smmu-fault\n{stdout}\n{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    for needle in [
        "ok 5 dsp_faulted",
        "not ok 1 selftest-smmu-fault",
        "smmu-fault: adsp-smmu: ",
        "translation fault(s) by the DSP",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    assert!(!stdout.contains("not ok 5 dsp_faulted"), "{stdout}");
}

#[test]
fn kernel_warning_fails_the_run() {
    assert_fails_with(
        &["test", "-s", "selftest-warning"],
        &["kernel WARNING (warning) at console line", "lkdtm_WARNING"],
    );
}

#[test]
fn hung_task_fails_the_run() {
    assert_fails_with(
        &["test", "-s", "selftest-hung-task"],
        &[
            "hung task (hung-task) at console line",
            "blocked for more than",
            "lkdtm_HUNG_TASK",
        ],
    );
}

#[test]
fn failing_guest_test_fails_the_run() {
    assert_fails_with(
        &["test", "-s", "selftest-fail"],
        &["not ok 2 always_fails", "guest test always_fails failed"],
    );
}

#[test]
fn unknown_scenario_fails_before_boot_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "no-such-scenario"], dir.path());
    let stderr = text(&o.stderr);
    // Exit 2: sideband could not run what was asked (nothing booted).
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for needle in [
        "no scenario matches 'no-such-scenario'",
        "fault-usbfs-reset",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

#[test]
fn lockdep_report_fails_the_run() {
    assert_fails_with(
        &["test", "-s", "selftest-lockdep"],
        &[
            "lockdep report (lockdep) at console line",
            "possible circular locking dependency",
            "sideband_fixture_",
        ],
    );
}

/// Every console detector fails the run when its kind of line reaches the kernel log: the
/// scenario writes one canned line (the same as in guest-tests/scenarios/selftest-kmsg.sh) to
/// /dev/kmsg, and the failure names the kind and quotes the line. The guest's own check
/// (lib/dmesg.sh) flags it too. An ordinary informational line passes. One boot per kind.
#[test]
fn each_console_detector_fails_the_run_on_its_line_and_an_info_line_passes() {
    // (detector name, how the failure names it, the line)
    let kinds = [
        ("rcu-stall", "RCU stall", "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
        (
            "xhci-error",
            "xHCI driver error",
            "xhci_hcd 0000:00:03.0: ERROR Transfer event for disabled endpoint slot 1 ep 2",
        ),
        (
            "usb-enum-error",
            "USB enumeration error",
            "usb 1-1: device descriptor read/64, error -71",
        ),
        ("refcount", "refcount_t report", "refcount_t: underflow; use-after-free."),
        (
            "list-corruption",
            "list corruption",
            "list_del corruption, ffff000004f8a0c8->next is LIST_POISON1 (dead000000000100)",
        ),
        (
            "ubsan",
            "UBSAN report",
            "UBSAN: array-index-out-of-bounds in sound/usb/qcom/qc_audio_offload.c:812:23",
        ),
        (
            "initramfs",
            "initramfs unpacking failed",
            "Initramfs unpacking failed: no cpio magic",
        ),
        (
            "oops",
            "kernel oops",
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
        ),
        (
            "warning",
            "kernel WARNING",
            "WARNING: drivers/usb/host/xhci-sideband.c:100 at xhci_sideband_remove_endpoint+0x3c/0x70, CPU#1: kworker/1:2/57",
        ),
        ("lockdep", "lockdep report", "WARNING: possible circular locking dependency detected"),
        (
            "hung-task",
            "hung task",
            "INFO: task kworker/0:1:40 blocked for more than 15 seconds.",
        ),
        ("bug", "kernel BUG", "BUG: scheduling while atomic: kworker/0:1/40/0x00000002"),
        (
            "kasan",
            "KASAN report",
            "BUG: KASAN: slab-out-of-bounds in qmi_decode_basic_elem+0x4c/0xa8",
        ),
        (
            "atomic-sleep",
            "sleep in atomic context",
            "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
        ),
        (
            "soft-lockup",
            "soft lockup",
            "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:40]",
        ),
        (
            "workqueue-lockup",
            "workqueue lockup",
            "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!",
        ),
    ];
    for (kind, named, line) in kinds {
        let append = format!("sideband.kmsg={kind}");
        let at = format!("{named} ({kind}) at console line");
        assert_fails_with(
            &["test", "-s", "selftest-kmsg", "--append", &append],
            &[
                "ok 3 line_in_kernel_log",
                "ok 4 guest_check_agrees",
                &at,
                line,
            ],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "selftest-kmsg",
            "--append",
            "sideband.kmsg=info",
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "the info line failed the run:\n{stdout}"
    );
    assert!(stdout.contains("ok 4 guest_check_agrees"), "{stdout}");
    let console = std::fs::read_to_string(dir.path().join("selftest-kmsg.console.log")).unwrap();
    assert!(
        console
            .lines()
            .any(|l| l.starts_with('[') && l.contains("] sideband selftest-kmsg: an ordinary")),
        "the info line did not reach the console as a kernel line:\n{console}"
    );
}

/// Every fault scenario on the stock kernel, in one `sideband test` run: each passes, or fails
/// only where its header names a known 7.3 defect, and then reports it as a KTAP TODO.
#[test]
fn fault_scenarios_recover_on_the_stock_kernel_or_report_known_defects() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "fault-*"], dir.path());
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    eprintln!("fault set: {summary}");
    for s in [
        "fault-usbfs-reset",
        "fault-unbind",
        "fault-unplug",
        "fault-usbfs-release",
        "fault-hc-gone",
        "fault-iso-drops",
        "fault-dsp-late",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok ") && l.ends_with(&format!(" {s}"))),
            "{s} did not pass:\n{stdout}"
        );
    }
    // The known defects of guide §5e are reported with their evidence, not hidden.
    let crash = stdout
        .lines()
        .find(|l| l.contains(" fault-dsp-crash # TODO"))
        .unwrap_or_else(|| panic!("fault-dsp-crash is not a known failure:\n{stdout}"));
    assert!(crash.starts_with("not ok "), "{crash}");
    let console = std::fs::read_to_string(dir.path().join("fault-dsp-crash.console.log")).unwrap();
    assert!(
        console.contains("internal status -16 (-EBUSY)"),
        "{console}"
    );
    let console = std::fs::read_to_string(dir.path().join("fault-unplug.console.log")).unwrap();
    assert!(
        console.contains("expect-indication: indication dev_event 1 (DISCONNECT) slot 1; the DSP's disable: disabled"),
        "{console}"
    );
    assert!(dir.path().join("fault-unplug/backend.log").exists());
    // A controller that halts on HSE never tells the DSP; its removal does.
    let hse = stdout
        .lines()
        .find(|l| l.contains(" fault-hc-hse # TODO"))
        .unwrap_or_else(|| panic!("fault-hc-hse is not a known failure:\n{stdout}"));
    assert!(hse.starts_with("not ok "), "{hse}");
    assert!(stdout.contains("not ok 5 dsp_told_after_hse"), "{stdout}");
    assert!(stdout.contains("ok 6 dsp_told_on_remove"), "{stdout}");
    // A broken request from the DSP is granted a stream: the evidence names it.
    assert!(
        stdout.contains("refused_tlv-overrun: accepted: tlv-overrun request"),
        "{stdout}"
    );
    assert!(stdout.contains("ok 2 refused_unknown-message"), "{stdout}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("known failure on 7.3"), "{junit}");
}

/// The seed-001 deadlock, re-created by the fixture kernel: the same logical unbind passes on
/// the stock kernel and hangs on the fixture, where the hung-task report (with its blocker line)
/// is the evidence in KTAP and JUnit.
#[test]
fn fixture_kernel_deadlocks_on_logical_unbind_while_stock_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "fault-usbfs-reset",
            "fault-unbind",
            "at-disable-unplug",
            "fault-deauthorize",
            "fault-usbfs-disconnect",
            "timer-disable-unplug",
            "at-enable-reset",
            "--kernel",
            "7.3",
            "--kernel",
            "7.3+fixture",
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            (l.starts_with("# fault-") || l.starts_with("# at-") || l.starts_with("# timer-"))
                && !l.contains('@')
                && !l.contains(':')
        })
        .collect();
    assert_eq!(table.len(), 7, "{stdout}");
    for row in &table {
        let cells: Vec<&str> = row.split_whitespace().collect();
        if cells[1] == "timer-disable-unplug" {
            // A race on the fixture (where the timer lands): either verdict, never a failure.
            assert_eq!(cells[2], "pass", "{row}");
            assert!(["pass", "known-fail"].contains(&cells[3]), "{row}");
            continue;
        }
        assert_eq!(&cells[2..], ["pass", "known-fail"], "{row}");
    }
    for s in [
        "fault-usbfs-reset",
        "fault-unbind",
        "fault-deauthorize",
        "fault-usbfs-disconnect",
    ] {
        let report = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("# {s}@7.3+fixture: ")))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(report.contains("the guest deadlocked"), "{s}: {report}");
        assert!(report.contains("blocked for more than"), "{s}: {report}");
        assert!(report.contains("usb_offload_put"), "{s}: {report}");
        assert!(
            report.contains("is blocked on a mutex likely owned by task"),
            "{s}: {report}"
        );
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("blocked for more than"), "{junit}");
    assert!(junit.contains("7.3+fixture.fault-usbfs-reset"), "{junit}");
}

/// Issue 9: the TCG plugin holds the QMI worker at `usb_offload_put` while the backend unplugs
/// the headset, so the fixture kernel's AB-BA deadlock happens on every run, not by luck.
#[test]
fn a_fault_at_usb_offload_put_deadlocks_the_fixture_kernel_ten_times_out_of_ten() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "at-disable-unplug",
            "--repeat",
            "10",
            "--kernel",
            "7.3+fixture",
        ],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let deadlocked = (1..=10)
        .filter(|i| {
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("# at-disable-unplug#{i}: the guest deadlocked")))
        })
        .count();
    assert_eq!(deadlocked, 10, "{stdout}");
    assert!(
        stderr.contains("at usb_offload_put+1: hit 1 on vCPU"),
        "the plugin names what it hit: {stderr}"
    );
}

/// The KASAN variant (a full kernel build, cached like the others) runs the scenario only it can
/// judge: the UAUDIO decoder's out-of-bounds write when the enable carries TLV 0x14 is a known
/// failure there, matched by KASAN's own report.
#[test]
fn kasan_variant_reports_the_service_interval_decoder_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &["test", "-s", "kasan-si-tlv", "--kernel", "7.3+kasan"],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(" kasan-si-tlv # TODO known failure on 7.3+kasan"))
        .unwrap_or_else(|| panic!("kasan-si-tlv is not a matched known failure:\n{stdout}"));
    assert!(line.contains("qmi_decode"), "{line}");
}

/// The first link of the ADSP's doorbell interrupt: the backend writes into the guest's
/// reserved message RAM as the xHCI's bus master (a server-initiated vfio-user DMA_WRITE that
/// QEMU performs) and reads the value back through its own map of guest RAM.
#[test]
fn a_server_initiated_dma_write_reaches_the_adsp_message_ram() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "adsp-dma-write"], dir.path());
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(
        stdout.contains("reached guest RAM at 0x7ff00000 in"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok 2 dma_write_reaches_guest_ram"),
        "{stdout}"
    );
}

/// The DSP's GLINK edge on the kernel variant that has qcom_glink_rpm: the driver probes on the
/// reserved message RAM, the version and channel handshakes complete both ways (each answer
/// rung in by a DMA_WRITE to the GICv2m), and APR registers the q6core service.
#[test]
fn the_dsp_glink_edge_comes_up_and_apr_registers_q6core_on_the_q6_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &["test", "-s", "apr-glink-link", "--kernel", "7.3+q6"],
        dir.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(!stdout.contains("# SKIP"), "{stdout}");
    for case in [
        "ok 1 glink_rpm_probed",
        "ok 2 apr_bound_to_apr_audio_svc",
        "ok 3 q6core_service_registered",
        "ok 4 doorbell_interrupts_counted",
        "ok 5 q6afe_bound",
        "ok 6 core_answered_over_apr",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    assert!(
        text(&o.stderr).contains("channel apr_audio_svc up"),
        "{}",
        text(&o.stderr)
    );
}

/// The real trigger: on the platform card (sm8250 machine driver, q6asm/q6adm/q6routing/q6afe
/// DAIs, q6usb as the USB back end's codec), aplay's counter pattern makes q6afe start the DSP's
/// USB port over APR, the DSP asks the offload driver for the stream over QMI, reads aplay's
/// buffers through the SMMU and the headset records them bit for bit. Stock 7.3's lockdep report
/// (q6usb_hw_params against a USB audio probe) is the known failure, matched by its evidence;
/// the q6-fixes variant, which drops q6usb's mutex before asking snd-usb-audio, passes.
#[test]
fn aplay_on_the_platform_card_starts_the_offloaded_stream_and_the_headset_hears_it_bit_exact() {
    for (variant, verdict) in [
        ("7.3+q6", "# TODO known failure on 7.3+q6: lockdep"),
        ("7.3+q6-fixes", "ok 1 apr-q6-card"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = sideband(
            &["test", "-s", "apr-q6-card", "--kernel", variant],
            dir.path(),
        );
        let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
        assert!(o.status.success(), "{variant}: {stdout}\n{stderr}");
        assert!(stdout.contains(verdict), "{variant}: {stdout}");
        for case in [
            "ok 1 platform_card_registered",
            "ok 2 multimedia1_pcm_present",
            "ok 3 route_set",
            "ok 4 offload_jack_plugged",
            "ok 5 afe_port_started",
            "ok 6 stream_quiet_and_released",
            "ok 7 second_play_heard",
        ] {
            assert!(
                stdout.contains(case),
                "{variant}: missing `{case}` in:\n{stdout}"
            );
        }
        for line in [
            "adsp-afe: port start (card 0 pcm 0, 48000 Hz, 16 bit, 2 ch) -> stream enable: slot 1",
            "adsp-afe: port stop -> DSP stream stopped after",
            "2 EOS rendered; ADM 2 COPP(s) opened, 2 route(s)",
        ] {
            assert!(
                stderr.contains(line),
                "{variant}: missing `{line}` in:\n{stderr}"
            );
        }
        assert!(!stderr.contains("adsp-afe: FAILED"), "{variant}: {stderr}");
        assert!(
            !stdout.contains("check-counter 96000` failed"),
            "{variant}: the headset did not hear aplay's pattern: {stdout}"
        );
    }
}

/// Faults while aplay drives the stream on the platform card: an unplug is recovered (the DSP
/// lets the stream go, aplay ends, the jack reads unplugged, a second aplay after the replug is
/// heard bit for bit); a DSP crash shows 7.3's -EBUSY on the next enable (guide §5e), which the
/// header marks with its evidence: here user space cannot tell, the second aplay plays into
/// nothing.
#[test]
fn faults_while_aplay_drives_the_stream_recover_or_show_their_known_defect() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "fault-unplug-aplay",
            "-s",
            "fault-dsp-crash-aplay",
            "--kernel",
            "7.3+q6-fixes",
        ],
        dir.path(),
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for line in [
        "ok 1 fault-unplug-aplay",
        "ok 9 second_aplay_started",
        "not ok 2 fault-dsp-crash-aplay # TODO known failure on 7.3+q6-fixes: qmi_stop_session",
        "[evidence seen: ktap second_stream_heard /internal status -16/]",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(
        stderr.contains("adsp-afe: FAILED: the guest refused the stream: status 1 (FAILURE), internal status -16 (-EBUSY)"),
        "{stderr}"
    );
}

/// A request that never returns (a lock-order deadlock in the backend, say) holds the console
/// loop, so only the boot watchdog can end the run: it kills QEMU and exits 1 with a reason,
/// soon after the boot's own deadlines, instead of hanging the job.
#[test]
fn a_request_that_never_returns_ends_the_run_through_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let o = sideband(
        &[
            "test",
            "-s",
            "selftest-stuck",
            "--ready-timeout",
            "40",
            "--run-timeout",
            "5",
        ],
        dir.path(),
    );
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the backend is stuck"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40 + 5 + 15 + 30 + 30),
        "took {:?}",
        started.elapsed()
    );
}
