//! End-to-end: faults at an exact guest kernel function through the TCG plugin
//! (`libsideband_plugin.so`, built with the backend as its dependency).
//!
//! These tests need the image (`sideband setup`). Boots are serialised with a lock file in the
//! temp folder (the machine has two cores and TCG uses both), also across test binaries.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{sideband, text, BootLock};

/// A trigger from the command line, resolved in System.map: the second execution of
/// usb_new_device (enumeration of the second device at boot) is reported with function, hit, vCPU
/// and guest time, the backend's action runs while the vCPU is held, and the guest goes on.
#[test]
fn command_line_trigger_holds_the_vcpu_and_the_guest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "smoke",
            "--at",
            "usb_new_device+2 expect-headset mute=0",
            "--at",
            "usb_new_device:return+1",
            "--at",
            "usb_new_device/0x4+1",
        ],
        dir.path(),
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "smoke failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok 1 smoke"), "{stdout}");
    let hit = stderr
        .lines()
        .find(|l| l.starts_with("[sideband] at usb_new_device+2: hit 2 on vCPU "))
        .unwrap_or_else(|| panic!("no hit reported:\n{stderr}"));
    assert!(hit.contains(", guest time "), "{hit}");
    assert!(
        hit.ends_with(
            "vCPU held while `expect-headset mute=0` ran: applied: mute=0 volume=0.00dB rate=48000"
        ),
        "{hit}"
    );
    assert!(
        stderr.contains("[sideband] at usb_new_device:return+1: hit 1 on vCPU "),
        "{stderr}"
    );
    assert!(
        stderr.contains("[sideband] at usb_new_device/0x4+1: hit 1 on vCPU "),
        "{stderr}"
    );
    let console = std::fs::read_to_string(dir.path().join("smoke.console.log")).unwrap();
    assert!(
        console.contains("libsideband_plugin.so,socket="),
        "QEMU got no -plugin"
    );
    assert!(
        console.contains("sideband-plugin: usb_new_device+2 (entry) on vCPU "),
        "the plugin logs the hit on QEMU's stderr"
    );
    assert!(
        console.contains("held "),
        "the plugin logs how long it held the vCPU"
    );
}

/// A trigger armed by the scenario itself (address from /proc/kallsyms, the way module functions
/// are armed): the loopback device is unplugged exactly when usb_reset_device starts. The function
/// ran once before the arming, so this also shows the translation-cache flush. A command-line
/// trigger with `@` counts hub_port_reset only inside usb_reset_device: the boot's enumeration
/// resets ports too, but the first hit is the scenario's plain reset.
#[test]
fn scenario_armed_trigger_unplugs_exactly_at_usb_reset_device() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &[
            "test",
            "-s",
            "at-reset",
            "--at",
            "hub_port_reset+1@usb_reset_device",
        ],
        dir.path(),
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "at-reset failed:\n{stdout}\n{stderr}");
    for case in [
        "ok 2 plain_reset",
        "ok 3 trigger_armed",
        "ok 4 unplugged_during_reset",
        "ok 5 replug_enumerated",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    assert!(
        stdout.contains("sb-usbfs reset: rc=1"),
        "the reset ran against a device already gone:\n{stdout}"
    );
    let hit = stderr
        .lines()
        .find(|l| l.starts_with("[sideband] at usb_reset_device+1: hit 1 on vCPU "))
        .unwrap_or_else(|| panic!("no hit reported:\n{stderr}"));
    assert!(
        hit.ends_with("`unplug 2` ran: applied: port 2 unplugged"),
        "{hit}"
    );
    let console = std::fs::read_to_string(dir.path().join("at-reset.console.log")).unwrap();
    assert!(
        console.contains("sideband-plugin: translation cache flushed in"),
        "{console}"
    );
    assert!(
        stderr.contains("[sideband] at hub_port_reset+1@usb_reset_device: hit 1 on vCPU "),
        "{stderr}"
    );
    // Counted once (the plain reset; the trigger is one-shot but keeps counting), executed more.
    let counted = console
        .lines()
        .find(|l| l.contains("sideband-plugin: hub_port_reset entry: executed "))
        .unwrap_or_else(|| panic!("no count at exit:\n{console}"));
    assert!(!counted.contains("executed 0 "), "{counted}");
}

/// A trigger on a module function (snd-usb-audio-qmi.ko), armed from the guest once the module
/// is loaded: the hit during the offloaded stream's unplug is reported.
#[test]
fn module_function_is_armed_from_kallsyms() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "at-offload-unplug"], dir.path());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "at-offload-unplug failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok 2 trigger_armed"), "{stdout}");
    let hit = stderr
        .lines()
        .find(|l| l.starts_with("[sideband] at qc_usb_audio_offload_disconnect+1: hit 1 on vCPU "))
        .unwrap_or_else(|| panic!("no hit reported:\n{stderr}"));
    assert!(hit.contains(", guest time "), "{hit}");
}

/// A function that is not in System.map fails before anything boots, and says why.
#[test]
fn missing_symbol_is_an_error_before_boot() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = sideband(
        &[
            "test",
            "-s",
            "smoke",
            "--at",
            "qc_usb_audio_offload_disconnect+1 unplug 1",
        ],
        dir.path(),
    );
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("symbol 'qc_usb_audio_offload_disconnect' is not in"),
        "{stderr}"
    );
    assert!(stderr.contains("in a module"), "{stderr}");
    assert!(
        !dir.path().join("smoke.console.log").exists(),
        "nothing may boot"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    let o = sideband(
        &["test", "-s", "smoke", "--at", "usb_reset_device+0"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("must be 1 or more"));
}

/// The headset is unplugged exactly while the offload driver handles the DSP's stream-enable
/// request (handle_uaudio_stream_req, in a module): the enable fails with -ENODEV every time.
#[test]
fn unplug_inside_the_stream_enable_handler_fails_the_enable() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "at-enable-unplug"], dir.path());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "at-enable-unplug failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("[sideband] at handle_uaudio_stream_req+1: hit 1 on vCPU "),
        "{stderr}"
    );
    let console = std::fs::read_to_string(dir.path().join("at-enable-unplug.console.log")).unwrap();
    assert!(
        console.contains("failed as expected: the guest refused the stream")
            && console.contains("(-ENODEV)"),
        "{console}"
    );
}

/// A plugin built for another API version is refused before the boot, with both versions named.
#[test]
fn plugin_of_another_api_version_is_refused_before_boot() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("v8.c");
    let lib = dir.path().join("libv8.so");
    std::fs::write(
        &src,
        "int qemu_plugin_version = 8;\nint qemu_plugin_install(void) { return 0; }\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status();
    if !cc.is_ok_and(|s| s.success()) {
        eprintln!("no C compiler: skipped");
        return;
    }
    let _lock = BootLock::take();
    let o = Command::new(env!("CARGO_BIN_EXE_sideband"))
        .args(["test", "-s", "smoke", "--plugin", "--out"])
        .arg(dir.path())
        .env("SIDEBAND_PLUGIN", &lib)
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("QEMU refuses the TCG plugin"), "{stderr}");
    assert!(
        stderr
            .contains("plugin requires API version 8, but this QEMU supports only up to version 7"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("smoke.console.log").exists(),
        "nothing may boot"
    );
}

/// The seeds' queued reset inside the DSP's stream-enable: the plugin holds the QMI worker in
/// usb_offload_get while usbhid's reset runs; the kernel's own trace shows the disconnect began
/// (from __usb_queue_reset_device) before the enable handler returned, and the DSP recovers.
#[test]
fn queued_reset_lands_inside_the_stream_enable_handler() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "at-enable-reset"], dir.path());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "at-enable-reset failed:\n{stdout}\n{stderr}"
    );
    for case in [
        "ok 3 reset_inside_enable",
        "ok 4 indication_answered",
        "ok 7 new_stream_bit_exact",
        "ok 8 walked_the_queued_reset_path",
    ] {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    assert!(
        stderr.contains("[sideband] at usb_offload_get+1: hit 1 on vCPU "),
        "{stderr}"
    );
}

/// The DSP dies exactly while the enable sets up its event ring: the hit is reported, the guest
/// takes back what it mapped, and the re-enable meets the known -EBUSY defect (a TODO, with
/// its evidence), not a hang or a splat.
#[test]
fn dsp_crash_inside_the_event_ring_setup_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "at-ring-setup-crash"], dir.path());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("[sideband] at xhci_sideband_create_interrupter+1: hit 1 on vCPU "),
        "{stderr}"
    );
    assert!(stdout.contains("ok 5 dmesg_clean"), "{stdout}");
    let todo = stdout
        .lines()
        .find(|l| l.starts_with("not ok 1 at-ring-setup-crash # TODO known failure"))
        .unwrap_or_else(|| panic!("not a matched known failure:\n{stdout}"));
    // The guest takes back its mappings, except in the race its header declares (2 in 10 runs),
    // which then must be the verdict's explanation.
    if !stdout.contains("    ok 3 dsp_released") {
        assert!(todo.contains("never unmaps the 4 regions"), "{todo}");
    }
}
