//! Profile parsing: named profiles, overrides, and errors that name the bad field.

use sideband_device::usb::uac::{
    AltFormat, AudioProfile, AudioProfileArgs, PlaybackSync, ProfileError, UacVersion, VENDOR_ID,
};

fn parse(s: &str) -> Result<AudioProfile, ProfileError> {
    s.parse()
}

#[test]
fn the_issue_example_parses() {
    let p = parse("uac2:rates=48000,96000:bits=16,24:ch=2").unwrap();
    assert_eq!(p.version, UacVersion::Uac2);
    assert_eq!(p.rates, vec![48000, 96000]);
    assert_eq!(
        p.formats,
        vec![
            AltFormat {
                bits: 16,
                channels: 2
            },
            AltFormat {
                bits: 24,
                channels: 2
            }
        ]
    );
    assert_eq!(p.sync, PlaybackSync::ExplicitFeedback);
    assert_eq!((p.ppm, p.interval_uframes, p.capture), (0, 1, true));
    assert_eq!(p.vendor_id, VENDOR_ID);
}

#[test]
fn named_profiles() {
    let h2 = parse("headset-uac2").unwrap();
    assert_eq!(h2.rates.len(), 8);
    assert_eq!(h2.formats.len(), 3);
    let h1 = parse("headset-uac1").unwrap();
    assert_eq!(
        (h1.version, h1.sync),
        (UacVersion::Uac1, PlaybackSync::Adaptive)
    );
    assert_eq!(h1.rates, vec![44100, 48000]);
    assert_eq!(h1.interval_uframes, 8);
    let imp = parse("uac2-implicit").unwrap();
    assert_eq!(imp.sync, PlaybackSync::ImplicitFeedback);
    assert_eq!(
        parse("uac2:implicit").unwrap().sync,
        PlaybackSync::ImplicitFeedback
    );
    assert_eq!(
        parse("uac2-implicit:explicit").unwrap().sync,
        PlaybackSync::ExplicitFeedback
    );
    assert_eq!(parse("headset-uac2:ppm=-250").unwrap().ppm, -250);
    assert!(!parse("headset-uac2:capture=off").unwrap().capture);
    assert_eq!(
        parse("headset-uac2:bits=24,16,24").unwrap().formats.len(),
        2,
        "deduplicated"
    );
}

#[test]
fn args_and_validation_are_separate_steps() {
    let args: AudioProfileArgs = "uac1:rates=96000:bits=32".parse().unwrap();
    assert_eq!(args.bits, vec![32]);
    assert_eq!(
        AudioProfile::try_from(args),
        Err(ProfileError::UnsupportedBits { bits: 32 })
    );
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, ProfileError, &str)] = &[
        ("uac3", ProfileError::UnknownBase("uac3".into()), "uac3"),
        (
            "uac2:colour=red",
            ProfileError::UnknownOption("colour=red".into()),
            "colour",
        ),
        (
            "uac2:rates=48k",
            ProfileError::BadValue {
                field: "rates",
                value: "48k".into(),
            },
            "rates",
        ),
        (
            "uac2:rates=",
            ProfileError::Empty { field: "rates" },
            "rates",
        ),
        (
            "uac2:rates=12345",
            ProfileError::UnsupportedRate { rate: 12345 },
            "rates",
        ),
        (
            "uac1:rates=192000",
            ProfileError::UnsupportedRate { rate: 192000 },
            "rates",
        ),
        (
            "uac2:bits=20",
            ProfileError::UnsupportedBits { bits: 20 },
            "bits",
        ),
        ("uac2:ch=0", ProfileError::Channels { channels: 0 }, "ch"),
        ("uac2:ch=9", ProfileError::Channels { channels: 9 }, "ch"),
        (
            "uac2:ch=300",
            ProfileError::BadValue {
                field: "ch",
                value: "300".into(),
            },
            "ch",
        ),
        ("uac2:ppm=20000", ProfileError::Ppm { ppm: 20000 }, "ppm"),
        (
            "uac2:ppm=fast",
            ProfileError::BadValue {
                field: "ppm",
                value: "fast".into(),
            },
            "ppm",
        ),
        (
            "uac2:interval=3",
            ProfileError::Interval { uframes: 3 },
            "interval",
        ),
        (
            "uac1:interval=1",
            ProfileError::Interval { uframes: 1 },
            "interval",
        ),
        ("uac1:implicit", ProfileError::ImplicitFeedback, "implicit"),
        (
            "uac2-implicit:no-capture",
            ProfileError::ImplicitFeedback,
            "implicit",
        ),
        (
            "uac2:capture=maybe",
            ProfileError::BadValue {
                field: "capture",
                value: "maybe".into(),
            },
            "capture",
        ),
    ];
    for (text, error, field) in cases {
        let got = parse(text).unwrap_err();
        assert_eq!(&got, error, "{text}");
        assert!(
            got.to_string().contains(field),
            "{text}: `{got}` does not name {field}"
        );
    }
}

#[test]
fn packets_must_fit_the_bus() {
    // 384 kHz × 1 ms × 8 ch × 4 bytes is far beyond 3 × 1024 bytes per interval.
    let e = parse("uac2:rates=384000:bits=32:ch=8:interval=8").unwrap_err();
    assert!(
        matches!(e, ProfileError::PacketTooLarge { limit: 3072, .. }),
        "{e}"
    );
    assert!(
        parse("uac2:rates=384000:bits=32:ch=8").is_ok(),
        "per-microframe fits"
    );
    let e = parse("uac1:rates=96000:bits=24:ch=8").unwrap_err();
    assert!(
        matches!(e, ProfileError::PacketTooLarge { limit: 1023, .. }),
        "{e}"
    );
}
