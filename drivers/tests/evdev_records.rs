//! evdev `input_event` streams, from recorded fixtures and built records: parsing, barcode
//! readers' key lines, and USB HID pedals.
//!
//! The fixtures under `tests/fixtures/` are byte-exact `/dev/input/eventN` captures in the
//! 64-bit layout (24 bytes a record, little-endian, CLOCK_MONOTONIC stamps), as a reader
//! grabbed by Croupier delivers them:
//!
//! * `evdev_scan_kh.bin`: a USB barcode reader scanning a card coded `KH`: each key as an
//!   `MSC_SCAN` (HID usage), an `EV_KEY` and a `SYN_REPORT`; shift pressed around each
//!   capital (once in its own report, once in the same report as the letter); Enter.
//! * `evdev_pedal_bounce.bin`: a PCsensor-style pedal typing `b`, with contact bounce on
//!   press and release and the kernel's auto-repeat while held.
//!
//! They were written by `write_fixtures` below (run it with `--ignored` to rewrite them).

use bytes::BytesMut;
use croupier_drivers::evdev::{
    parse_records, InputEvent, InputEventCodec, KeyLine, KeyLineAssembler, KeyLineConfig, KeyPedal,
    LineDrop, RecordLayout, ScannedLine, EV_KEY, EV_MSC, EV_SYN, KEY_B, KEY_ENTER, KEY_LEFTSHIFT,
    KEY_RIGHTSHIFT, KEY_VALUE_DOWN, KEY_VALUE_REPEAT, KEY_VALUE_UP, MSC_SCAN, SYN_DROPPED,
    SYN_REPORT,
};
use croupier_drivers::evdev::{EventKind, KEY_KPENTER, KEY_TAB};
use croupier_drivers::pedal::{Edge, PedalEvent, PedalMachine, PedalTiming};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

const SCAN_KH: &[u8] = include_bytes!("fixtures/evdev_scan_kh.bin");
const PEDAL_BOUNCE: &[u8] = include_bytes!("fixtures/evdev_pedal_bounce.bin");

/// CLOCK_MONOTONIC of the recordings: 81234.5 s after boot.
const T0_US: u64 = 81_234_500_000;

// Key codes and HID usages of the keys in the recordings.
const KEY_K: u16 = 37;
const KEY_H: u16 = 35;
const USAGE_LEFTSHIFT: i32 = 0x700e1;
const USAGE_K: i32 = 0x7000e;
const USAGE_H: i32 = 0x7000b;
const USAGE_ENTER: i32 = 0x70028;
const USAGE_B: i32 = 0x70005;

/// One 24-byte `struct input_event` as the kernel lays it out on x86-64 / aarch64, built by
/// hand (not with the crate's encoder) so the parser is checked against the layout itself.
fn record(at_us: u64, kind: u16, code: u16, value: i32) -> [u8; 24] {
    let mut out = [0u8; 24];
    let sec = (at_us / 1_000_000) as i64;
    let usec = (at_us % 1_000_000) as i64;
    out[0..8].copy_from_slice(&sec.to_le_bytes());
    out[8..16].copy_from_slice(&usec.to_le_bytes());
    out[16..18].copy_from_slice(&kind.to_le_bytes());
    out[18..20].copy_from_slice(&code.to_le_bytes());
    out[20..24].copy_from_slice(&value.to_le_bytes());
    out
}

/// A stream of records.
#[derive(Default)]
struct Recording(Vec<u8>);

impl Recording {
    fn ev(&mut self, at_us: u64, kind: u16, code: u16, value: i32) -> &mut Self {
        self.0.extend_from_slice(&record(at_us, kind, code, value));
        self
    }

    /// One HID report's worth for a key: scan code, key, SYN_REPORT.
    fn key(&mut self, at_us: u64, usage: i32, code: u16, value: i32) -> &mut Self {
        self.ev(at_us, EV_MSC, MSC_SCAN, usage)
            .ev(at_us, EV_KEY, code, value)
            .ev(at_us, EV_SYN, SYN_REPORT, 0)
    }

    /// A reader typing `text` (digits, uppercase letters, Enter as `\n`), one report per
    /// key change, 1 ms apart (USB full-speed polling).
    fn typed(at_us: u64, text: &str) -> Recording {
        let mut rec = Recording::default();
        let mut t = at_us;
        for c in text.chars() {
            let (code, shift) = us_key(c);
            if shift {
                rec.key(t, USAGE_LEFTSHIFT, KEY_LEFTSHIFT, KEY_VALUE_DOWN);
                t += 1000;
            }
            rec.key(t, 0, code, KEY_VALUE_DOWN);
            t += 1000;
            rec.key(t, 0, code, KEY_VALUE_UP);
            t += 1000;
            if shift {
                rec.key(t, USAGE_LEFTSHIFT, KEY_LEFTSHIFT, KEY_VALUE_UP);
                t += 1000;
            }
        }
        rec
    }
}

fn us_key(c: char) -> (u16, bool) {
    let digits = [11u16, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let letters = [
        30u16, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47,
        17, 45, 21, 44,
    ];
    match c {
        '0'..='9' => (digits[c as usize - '0' as usize], false),
        'A'..='Z' => (letters[c as usize - 'A' as usize], true),
        'a'..='z' => (letters[c as usize - 'a' as usize], false),
        '-' => (12, false),
        '\n' => (KEY_ENTER, false),
        other => panic!("no key for {other:?}"),
    }
}

fn scan_kh_recording() -> Recording {
    let t = T0_US;
    let mut rec = Recording::default();
    // `K`: shift in a report of its own, then the letter.
    rec.key(t, USAGE_LEFTSHIFT, KEY_LEFTSHIFT, KEY_VALUE_DOWN)
        .key(t + 1_000, USAGE_K, KEY_K, KEY_VALUE_DOWN)
        .key(t + 2_000, USAGE_K, KEY_K, KEY_VALUE_UP)
        .key(t + 3_000, USAGE_LEFTSHIFT, KEY_LEFTSHIFT, KEY_VALUE_UP);
    // `H`: shift and letter in one report.
    rec.ev(t + 4_000, EV_MSC, MSC_SCAN, USAGE_LEFTSHIFT)
        .ev(t + 4_000, EV_KEY, KEY_LEFTSHIFT, KEY_VALUE_DOWN)
        .ev(t + 4_000, EV_MSC, MSC_SCAN, USAGE_H)
        .ev(t + 4_000, EV_KEY, KEY_H, KEY_VALUE_DOWN)
        .ev(t + 4_000, EV_SYN, SYN_REPORT, 0)
        .ev(t + 5_000, EV_MSC, MSC_SCAN, USAGE_LEFTSHIFT)
        .ev(t + 5_000, EV_KEY, KEY_LEFTSHIFT, KEY_VALUE_UP)
        .ev(t + 5_000, EV_MSC, MSC_SCAN, USAGE_H)
        .ev(t + 5_000, EV_KEY, KEY_H, KEY_VALUE_UP)
        .ev(t + 5_000, EV_SYN, SYN_REPORT, 0);
    rec.key(t + 6_000, USAGE_ENTER, KEY_ENTER, KEY_VALUE_DOWN)
        .key(t + 7_000, USAGE_ENTER, KEY_ENTER, KEY_VALUE_UP);
    rec
}

fn pedal_bounce_recording() -> Recording {
    let t = T0_US;
    let mut rec = Recording::default();
    // Foot down at t, the contact bouncing open 3 ms later for 2 ms.
    rec.key(t, USAGE_B, KEY_B, KEY_VALUE_DOWN)
        .key(t + 3_000, USAGE_B, KEY_B, KEY_VALUE_UP)
        .key(t + 5_000, USAGE_B, KEY_B, KEY_VALUE_DOWN);
    // The kernel's auto-repeat: 250 ms delay, then every 33 ms.
    for n in 0..3 {
        rec.ev(t + 255_000 + n * 33_000, EV_KEY, KEY_B, KEY_VALUE_REPEAT)
            .ev(t + 255_000 + n * 33_000, EV_SYN, SYN_REPORT, 1);
    }
    // Foot up at t + 400 ms, bouncing once.
    rec.key(t + 400_000, USAGE_B, KEY_B, KEY_VALUE_UP)
        .key(t + 402_000, USAGE_B, KEY_B, KEY_VALUE_DOWN)
        .key(t + 403_000, USAGE_B, KEY_B, KEY_VALUE_UP);
    rec
}

#[test]
#[ignore = "rewrites tests/fixtures; run on purpose"]
fn write_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("evdev_scan_kh.bin"), scan_kh_recording().0).unwrap();
    std::fs::write(
        dir.join("evdev_pedal_bounce.bin"),
        pedal_bounce_recording().0,
    )
    .unwrap();
}

fn lines(config: KeyLineConfig, events: &[InputEvent]) -> Vec<KeyLine> {
    let mut assembler = KeyLineAssembler::new(config);
    events.iter().filter_map(|e| assembler.push(e)).collect()
}

fn text_lines(out: &[KeyLine]) -> Vec<&str> {
    out.iter()
        .map(|line| match line {
            KeyLine::Line(ScannedLine { text, .. }) => text.as_str(),
            KeyLine::Dropped { .. } => "<dropped>",
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn the_scan_fixture_parses_record_by_record() {
    assert_eq!(SCAN_KH.len() % 24, 0);
    let events = parse_records(RecordLayout::Long64, SCAN_KH);
    assert_eq!(events.len(), SCAN_KH.len() / 24);
    assert_eq!(events.len(), 28);
    assert_eq!(
        events[0],
        InputEvent {
            time_ns: T0_US * 1000,
            kind: EventKind::Msc,
            code: MSC_SCAN,
            value: USAGE_LEFTSHIFT,
        }
    );
    assert_eq!(
        events[4],
        InputEvent::key((T0_US + 1_000) * 1000, KEY_K, KEY_VALUE_DOWN)
    );
    assert_eq!(events[2].kind, EventKind::Syn);
    // The recording is what the recipe says (guards the fixture against edits).
    assert_eq!(SCAN_KH, scan_kh_recording().0.as_slice());
    assert_eq!(PEDAL_BOUNCE, pedal_bounce_recording().0.as_slice());
}

#[test]
fn any_split_into_reads_decodes_the_same() {
    let whole = parse_records(RecordLayout::Long64, SCAN_KH);
    for split in 0..=SCAN_KH.len() {
        let mut codec = InputEventCodec::new(RecordLayout::Long64);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for part in [&SCAN_KH[..split], &SCAN_KH[split..]] {
            buf.extend_from_slice(part);
            while let Some(event) = codec.decode(&mut buf).unwrap() {
                got.push(event);
            }
        }
        assert_eq!(got, whole, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn the_crate_encoder_writes_the_kernel_layout() {
    let events = parse_records(RecordLayout::Long64, SCAN_KH);
    let mut again = Vec::new();
    for event in &events {
        event.encode(RecordLayout::Long64, &mut again);
    }
    assert_eq!(again, SCAN_KH);
}

#[test]
fn a_32_bit_record() {
    // armhf: 32-bit tv_sec and tv_usec, 16 bytes.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&81_234u32.to_le_bytes());
    bytes.extend_from_slice(&500_001u32.to_le_bytes());
    bytes.extend_from_slice(&EV_KEY.to_le_bytes());
    bytes.extend_from_slice(&KEY_ENTER.to_le_bytes());
    bytes.extend_from_slice(&1i32.to_le_bytes());
    assert_eq!(
        parse_records(RecordLayout::Long32, &bytes),
        [InputEvent::key(
            81_234_500_001_000,
            KEY_ENTER,
            KEY_VALUE_DOWN
        )]
    );
}

#[test]
fn a_negative_time_counts_as_zero() {
    let bytes = record(0, EV_KEY, KEY_B, KEY_VALUE_DOWN);
    let mut bad = bytes;
    bad[0..8].copy_from_slice(&(-5i64).to_le_bytes());
    assert_eq!(
        RecordLayout::Long64.parse(&bad),
        Some(InputEvent::key(0, KEY_B, KEY_VALUE_DOWN))
    );
}

// ---------------------------------------------------------------------------------------------
// Barcode readers: key lines
// ---------------------------------------------------------------------------------------------

#[test]
fn the_recorded_scan_is_the_line_kh() {
    let events = parse_records(RecordLayout::Long64, SCAN_KH);
    assert_eq!(
        lines(KeyLineConfig::default(), &events),
        [KeyLine::Line(ScannedLine {
            text: "KH".into(),
            first_key_ns: (T0_US + 1_000) * 1000,
            end_ns: (T0_US + 6_000) * 1000,
        })]
    );
}

#[test]
fn a_13_digit_barcode() {
    let rec = Recording::typed(T0_US, "4006381333931\n");
    let events = parse_records(RecordLayout::Long64, &rec.0);
    let out = lines(KeyLineConfig::default(), &events);
    assert_eq!(text_lines(&out), ["4006381333931"]);
}

#[test]
fn several_scans_in_one_stream() {
    let mut rec = Recording::typed(T0_US, "KH\n");
    rec.0
        .extend(Recording::typed(T0_US + 900_000, "TD\n10S\nqs-1\n").0);
    let events = parse_records(RecordLayout::Long64, &rec.0);
    assert_eq!(
        text_lines(&lines(KeyLineConfig::default(), &events)),
        ["KH", "TD", "10S", "qs-1"]
    );
}

#[test]
fn shift_from_either_side_and_held_across_capitals() {
    let t = 1_000_000u64;
    let events = [
        InputEvent::key(t, KEY_RIGHTSHIFT, KEY_VALUE_DOWN),
        InputEvent::key(t + 1, KEY_K, KEY_VALUE_DOWN),
        InputEvent::key(t + 2, KEY_K, KEY_VALUE_UP),
        InputEvent::key(t + 3, KEY_H, KEY_VALUE_DOWN),
        InputEvent::key(t + 4, KEY_H, KEY_VALUE_UP),
        InputEvent::key(t + 5, KEY_RIGHTSHIFT, KEY_VALUE_UP),
        // Shift released: lowercase and plain symbols again.
        InputEvent::key(t + 6, KEY_K, KEY_VALUE_DOWN),
        InputEvent::key(t + 7, 12, KEY_VALUE_DOWN), // '-'
        InputEvent::key(t + 8, KEY_LEFTSHIFT, KEY_VALUE_DOWN),
        InputEvent::key(t + 9, 12, KEY_VALUE_DOWN), // '_'
        InputEvent::key(t + 10, 3, KEY_VALUE_DOWN), // '@'
        InputEvent::key(t + 11, KEY_LEFTSHIFT, KEY_VALUE_UP),
        InputEvent::key(t + 12, 3, KEY_VALUE_DOWN), // '2'
        InputEvent::key(t + 13, KEY_ENTER, KEY_VALUE_DOWN),
    ];
    assert_eq!(
        text_lines(&lines(KeyLineConfig::default(), &events)),
        ["KHk-_@2"]
    );
}

#[test]
fn repeats_and_releases_type_nothing() {
    let t = 1_000_000u64;
    let events = [
        InputEvent::key(t, KEY_K, KEY_VALUE_DOWN),
        InputEvent::key(t + 250_000_000, KEY_K, KEY_VALUE_REPEAT),
        InputEvent::key(t + 283_000_000, KEY_K, KEY_VALUE_REPEAT),
        InputEvent::key(t + 300_000_000, KEY_K, KEY_VALUE_UP),
        InputEvent::key(t + 301_000_000, KEY_ENTER, KEY_VALUE_DOWN),
        InputEvent::key(t + 302_000_000, KEY_ENTER, KEY_VALUE_REPEAT),
        InputEvent::key(t + 303_000_000, KEY_ENTER, KEY_VALUE_UP),
    ];
    assert_eq!(text_lines(&lines(KeyLineConfig::default(), &events)), ["k"]);
}

#[test]
fn an_overlong_line_is_dropped_whole_and_the_next_scan_reads() {
    let long = "1".repeat(100);
    let mut rec = Recording::typed(T0_US, &format!("{long}\n"));
    rec.0.extend(Recording::typed(T0_US + 1_000_000, "AS\n").0);
    let events = parse_records(RecordLayout::Long64, &rec.0);
    let out = lines(KeyLineConfig::default(), &events);
    assert!(matches!(
        out[0],
        KeyLine::Dropped {
            reason: LineDrop::TooLong { len: 100 },
            ..
        }
    ));
    assert_eq!(text_lines(&out[1..]), ["AS"]);
    // Exactly at the limit is fine.
    let config = KeyLineConfig {
        max_len: 4,
        ..KeyLineConfig::default()
    };
    let rec = Recording::typed(T0_US, "1234\n12345\n");
    let out = lines(config, &parse_records(RecordLayout::Long64, &rec.0));
    assert_eq!(text_lines(&out), ["1234", "<dropped>"]);
}

#[test]
fn keys_without_a_character_drop_the_line() {
    let t = 1_000_000u64;
    let f1 = 59;
    let out = lines(
        KeyLineConfig::default(),
        &[
            InputEvent::key(t, KEY_K, KEY_VALUE_DOWN),
            InputEvent::key(t + 1, f1, KEY_VALUE_DOWN),
            InputEvent::key(t + 2, KEY_ENTER, KEY_VALUE_DOWN),
        ],
    );
    assert_eq!(
        out,
        [KeyLine::Dropped {
            reason: LineDrop::UnmappedKey { code: f1 },
            at_ns: t + 2
        }]
    );
    // Ctrl+J is a control code, not a `j`.
    let ctrl = 29;
    let out = lines(
        KeyLineConfig::default(),
        &[
            InputEvent::key(t, ctrl, KEY_VALUE_DOWN),
            InputEvent::key(t + 1, 36, KEY_VALUE_DOWN),
            InputEvent::key(t + 2, ctrl, KEY_VALUE_UP),
            InputEvent::key(t + 3, KEY_ENTER, KEY_VALUE_DOWN),
        ],
    );
    assert!(matches!(
        out[..],
        [KeyLine::Dropped {
            reason: LineDrop::UnmappedKey { code: 36 },
            ..
        }]
    ));
    // Lock keys some readers send first are ignored.
    let out = lines(
        KeyLineConfig::default(),
        &[
            InputEvent::key(t, 69, KEY_VALUE_DOWN),     // Num Lock
            InputEvent::key(t + 1, 79, KEY_VALUE_DOWN), // keypad 1
            InputEvent::key(t + 2, 82, KEY_VALUE_DOWN), // keypad 0
            InputEvent::key(t + 3, KEY_KPENTER, KEY_VALUE_DOWN),
        ],
    );
    assert_eq!(text_lines(&out), ["10"]);
}

#[test]
fn lost_events_drop_the_partial_line_and_forget_shift() {
    let t = 1_000_000u64;
    let out = lines(
        KeyLineConfig::default(),
        &[
            InputEvent::key(t, KEY_LEFTSHIFT, KEY_VALUE_DOWN),
            InputEvent::key(t + 1, KEY_K, KEY_VALUE_DOWN),
            // The shift release and the rest of the scan are lost.
            InputEvent::new(t + 2, EventKind::Syn, SYN_DROPPED, 0),
            InputEvent::key(t + 3, KEY_H, KEY_VALUE_DOWN),
            InputEvent::key(t + 4, KEY_ENTER, KEY_VALUE_DOWN),
        ],
    );
    assert_eq!(
        out,
        [
            KeyLine::Dropped {
                reason: LineDrop::EventsLost,
                at_ns: t + 2
            },
            KeyLine::Line(ScannedLine {
                text: "h".into(),
                first_key_ns: t + 3,
                end_ns: t + 4
            })
        ]
    );
}

#[test]
fn a_stale_partial_line_is_not_glued_to_the_next_scan() {
    // A reader unplugged mid-scan after `K`; two seconds later a full scan.
    let mut rec = Recording::typed(T0_US, "K");
    rec.0.extend(Recording::typed(T0_US + 2_000_000, "KH\n").0);
    let events = parse_records(RecordLayout::Long64, &rec.0);
    let out = lines(KeyLineConfig::default(), &events);
    assert!(matches!(
        &out[0],
        KeyLine::Dropped { reason: LineDrop::Stale { partial }, .. } if partial == "K"
    ));
    assert_eq!(text_lines(&out[1..]), ["KH"]);
    // An Enter alone long after a partial: the partial is dropped, no empty line.
    let mut rec = Recording::typed(T0_US, "K");
    rec.0.extend(Recording::typed(T0_US + 2_000_000, "\n").0);
    let out = lines(
        KeyLineConfig::default(),
        &parse_records(RecordLayout::Long64, &rec.0),
    );
    assert_eq!(text_lines(&out), ["<dropped>"]);
}

#[test]
fn empty_lines_are_ignored_and_tab_can_end_a_line() {
    let rec = Recording::typed(T0_US, "\n\nKH\n");
    let events = parse_records(RecordLayout::Long64, &rec.0);
    assert_eq!(
        text_lines(&lines(KeyLineConfig::default(), &events)),
        ["KH"]
    );
    let t = 1_000_000u64;
    let events = [
        InputEvent::key(t, KEY_K, KEY_VALUE_DOWN),
        InputEvent::key(t + 1, KEY_TAB, KEY_VALUE_DOWN),
    ];
    let tab = KeyLineConfig {
        end_on_tab: true,
        ..KeyLineConfig::default()
    };
    assert_eq!(text_lines(&lines(tab, &events)), ["k"]);
    // Without the setting, Tab is an unmapped key.
    let mut events = events.to_vec();
    events.push(InputEvent::key(t + 2, KEY_ENTER, KEY_VALUE_DOWN));
    assert_eq!(
        text_lines(&lines(KeyLineConfig::default(), &events)),
        ["<dropped>"]
    );
}

// ---------------------------------------------------------------------------------------------
// USB HID pedals
// ---------------------------------------------------------------------------------------------

#[test]
fn the_recorded_pedal_gives_edges_with_the_kernel_time() {
    let events = parse_records(RecordLayout::Long64, PEDAL_BOUNCE);
    let mut pedal = KeyPedal::default();
    let edges: Vec<Edge> = events.iter().filter_map(|e| pedal.push(e)).collect();
    let us = |n: u64| (T0_US + n) * 1000;
    assert_eq!(
        edges,
        [
            Edge::press(us(0)),
            Edge::release(us(3_000)),
            Edge::press(us(5_000)),
            Edge::release(us(400_000)),
            Edge::press(us(402_000)),
            Edge::release(us(403_000)),
        ]
    );
    // Through the pedal machine: one press, stamped when the foot hit, one release.
    let mut machine = PedalMachine::new(PedalTiming::default());
    let mut out = Vec::new();
    for edge in edges {
        out.extend(machine.edge(edge));
    }
    out.extend(machine.tick(u64::MAX));
    let got: Vec<(u64, PedalEvent)> = out.iter().map(|e| (e.at_ns, e.event)).collect();
    assert_eq!(
        got,
        [
            (us(0), PedalEvent::Press),
            (us(400_000), PedalEvent::Release)
        ]
    );
}

#[test]
fn a_three_pedal_unit_is_down_while_any_configured_key_is() {
    // PCsensor three-pedal default: a, b, c.
    let mut pedal = KeyPedal::from_names(&["KEY_A", "KEY_B", "KEY_C"]).unwrap();
    let (a, b, c) = (30, KEY_B, 46);
    let t = 1_000u64;
    let edges: Vec<Option<Edge>> = [
        InputEvent::key(t, a, KEY_VALUE_DOWN),
        InputEvent::key(t + 1, b, KEY_VALUE_DOWN),
        InputEvent::key(t + 2, a, KEY_VALUE_UP),
        InputEvent::key(t + 3, 99, KEY_VALUE_DOWN), // not a pedal key
        InputEvent::key(t + 4, b, KEY_VALUE_UP),
        InputEvent::key(t + 5, c, KEY_VALUE_UP), // up without down: nothing
    ]
    .iter()
    .map(|e| pedal.push(e))
    .collect();
    assert_eq!(
        edges,
        [
            Some(Edge::press(t)),
            None,
            None,
            None,
            Some(Edge::release(t + 4)),
            None
        ]
    );
}

#[test]
fn lost_events_while_held_release_the_pedal() {
    let mut pedal = KeyPedal::default();
    assert_eq!(
        pedal.push(&InputEvent::key(10, KEY_B, KEY_VALUE_DOWN)),
        Some(Edge::press(10))
    );
    assert_eq!(
        pedal.push(&InputEvent::new(20, EventKind::Syn, SYN_DROPPED, 0)),
        Some(Edge::release(20))
    );
    // The real release, when it comes, changes nothing.
    assert_eq!(pedal.push(&InputEvent::key(30, KEY_B, KEY_VALUE_UP)), None);
    // Not held: nothing to release.
    assert_eq!(
        pedal.push(&InputEvent::new(40, EventKind::Syn, SYN_DROPPED, 0)),
        None
    );
}

#[test]
fn keys_down_at_open_seed_the_level() {
    let mut pedal = KeyPedal::default();
    pedal.seed([KEY_B, KEY_ENTER]);
    assert!(pedal.is_pressed());
    assert_eq!(
        pedal.push(&InputEvent::key(5, KEY_B, KEY_VALUE_UP)),
        Some(Edge::release(5))
    );
    let mut other = KeyPedal::default();
    other.seed([KEY_ENTER]);
    assert!(!other.is_pressed());
}

#[test]
fn pedal_key_names_from_the_config() {
    assert_eq!(
        KeyPedal::from_names(&["KEY_B", "key_pagedown", "BTN_1", "48"])
            .unwrap()
            .codes(),
        &[48, 109, 0x101, 48]
    );
    assert_eq!(KeyPedal::default().codes(), &[KEY_B, 109]);
}

// ---------------------------------------------------------------------------------------------
// Garbage never panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn any_byte_stream_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..2400),
        split in 0usize..2400,
    ) {
        let mut codec = InputEventCodec::new(RecordLayout::Long64);
        let mut buf = BytesMut::new();
        let mut assembler = KeyLineAssembler::new(KeyLineConfig::default());
        let mut pedal = KeyPedal::default();
        let split = split.min(bytes.len());
        for part in [&bytes[..split], &bytes[split..]] {
            buf.extend_from_slice(part);
            while let Some(event) = codec.decode(&mut buf).unwrap() {
                let _ = assembler.push(&event);
                let _ = pedal.push(&event);
            }
        }
        prop_assert!(buf.len() < 24);
    }

    #[test]
    fn random_key_events_keep_lines_bounded(
        keys in prop::collection::vec((0u16..130, 0i32..3, 0u64..2_000_000), 0..400),
    ) {
        let config = KeyLineConfig::default();
        let mut assembler = KeyLineAssembler::new(config);
        let mut t = 0u64;
        for (code, value, gap) in keys {
            t += gap;
            if let Some(KeyLine::Line(line)) = assembler.push(&InputEvent::key(t, code, value)) {
                prop_assert!(!line.text.is_empty());
                prop_assert!(line.text.chars().count() <= config.max_len);
                prop_assert!(line.first_key_ns <= line.end_ns);
            }
        }
    }
}
