//! End-to-end: the headset's HID buttons interface under the real usbhid driver, and the device
//! reset usbhid queues when its interrupt endpoint keeps failing (the path that force-unbinds
//! snd-usb-audio and runs the offload driver's disconnect).
//!
//! These tests need the image (`sideband setup` builds it). Boots are serialised across test
//! binaries with an exclusive lock on a file: two guests never run at once on the two cores.

mod common;

use std::process::Output;

use common::{sideband, text};

fn assert_passed(o: &Output, cases: &[&str]) -> String {
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "failed:\n{stdout}\n{}", text(&o.stderr));
    for case in cases {
        assert!(stdout.contains(case), "missing `{case}` in:\n{stdout}");
    }
    stdout
}

#[test]
fn usbhid_binds_the_buttons_and_a_press_arrives_as_key_events() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "hid-buttons"], dir.path());
    assert_passed(
        &o,
        &[
            "ok 1 audio_bound",
            "ok 2 usbhid_bound",
            "ok 3 input_device",
            "ok 4 vol_up_event",
            "ok 5 mute_event",
            "ok 1 hid-buttons",
        ],
    );
    let console = std::fs::read_to_string(dir.path().join("hid-buttons.console.log")).unwrap();
    assert!(console.contains("[sideband] button vol-up: vol-up pressed"));
    assert!(
        console.contains(
            "[sideband] stall 0x83 off: endpoint 0x83: had no STALLs (1 faults injected in all)"
        ),
        "the one STALL was used before the play-pause press arrived"
    );
}

fn queued_reset(headset: &str, speed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(
        &["test", "-s", "hid-queued-reset", "--headset", headset],
        dir.path(),
    );
    assert_passed(
        &o,
        &[
            "ok 3 usbhid_queued_reset",
            "ok 4 headset_back",
            "ok 5 card_recreated",
            "ok 6 buttons_after_reset",
            "ok 7 dmesg_clean",
            "ok 1 hid-queued-reset",
        ],
    );
    let console = std::fs::read_to_string(dir.path().join("hid-queued-reset.console.log")).unwrap();
    let errors_on = console
        .find("[sideband] xact-errors 0x83 on: endpoint 0x83: transaction errors until cleared")
        .expect("the backend's answer to xact-errors on");
    let reset = format!("usb 1-1: reset {speed} USB device number");
    let reset_at = console
        .find(&reset)
        .unwrap_or_else(|| panic!("no `{reset}`"));
    assert!(errors_on < reset_at, "the reset follows the errors");
    assert!(console
        .contains("[sideband] xact-errors 0x83 off: endpoint 0x83: transaction errors cleared"));
}

#[test]
fn interrupt_transaction_errors_make_usbhid_reset_the_uac2_headset() {
    queued_reset("headset-uac2", "high-speed");
}

#[test]
fn interrupt_transaction_errors_make_usbhid_reset_the_uac1_headset() {
    queued_reset("headset-uac1", "full-speed");
}

#[test]
fn a_queued_reset_during_an_offloaded_stream_sends_the_disconnect_indication() {
    let dir = tempfile::tempdir().unwrap();
    let o = sideband(&["test", "-s", "hid-queued-reset-offload"], dir.path());
    assert_passed(
        &o,
        &[
            "ok 2 usbhid_queued_reset",
            "ok 3 headset_back",
            "ok 4 walked_the_queued_reset_path",
            "ok 5 dmesg_clean",
            "ok 1 hid-queued-reset-offload",
        ],
    );
    let console =
        std::fs::read_to_string(dir.path().join("hid-queued-reset-offload.console.log")).unwrap();
    assert!(console.contains("usb 1-1: reset high-speed USB device number"));
    // The kernel's own stack at qc_usb_audio_offload_disconnect runs through the queued reset.
    for frame in [
        "=> usb_forced_unbind_intf",
        "=> usb_reset_device",
        "=> __usb_queue_reset_device",
    ] {
        assert!(
            console.contains(frame),
            "{frame} missing from the recorded stack"
        );
    }
    assert!(
        console.contains("indication dev_event 1 (DISCONNECT)"),
        "qc_usb_audio_offload_disconnect ran from the reset"
    );
}
