//! Byte-vector and property tests of the roulette wheel decoder (`croupier_drivers::wheel`).

mod common;

use bytes::BytesMut;
use common::decode_split;
use croupier_drivers::model::{Decoded, Garbage};
use croupier_drivers::wheel::{
    mode_command, Direction, WarningFlags, WheelCodec, WheelEvent, WheelLayout, WheelMode,
    WheelState, MAX_FRAME,
};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

type Item = Decoded<WheelEvent>;

fn decode(bytes: &[u8]) -> Vec<Item> {
    decode_split(&mut WheelCodec::default(), bytes, &[])
}

fn frame(event: WheelEvent, wire_len: usize) -> Item {
    Decoded::Frame {
        frame: event,
        wire_len,
    }
}

fn garbage(skipped: usize, reason: Garbage) -> Item {
    Decoded::Garbage { skipped, reason }
}

fn status(state: WheelState, number: u8, warnings: u8) -> WheelEvent {
    WheelEvent::Status {
        state,
        spin_count: 42,
        number,
        warnings: WarningFlags(warnings),
        rotor_speed: 27,
        direction: Direction::CounterClockwise,
    }
}

/// A status frame so that the decoder knows where lines start, and its decoded form.
const OPENER: &[u8] = b"*X;2;042;17;0;027;1\r\n";

fn opener() -> Item {
    frame(status(WheelState::PlaceBets, 17, 0), OPENER.len())
}

fn after_opener(bytes: &[u8]) -> Vec<Item> {
    let mut all = OPENER.to_vec();
    all.extend_from_slice(bytes);
    let mut items = decode(&all);
    assert_eq!(items.remove(0), opener());
    items
}

#[test]
fn documented_example_frame() {
    assert_eq!(
        decode(b"*X;5;042;17;0;027;1\r\n"),
        vec![frame(status(WheelState::WinningNumber, 17, 0), 21)]
    );
}

#[test]
fn colon_separators_are_accepted_too() {
    let expected = vec![frame(status(WheelState::WinningNumber, 17, 0), 21)];
    assert_eq!(decode(b"*X:5:042:17:0:027:1\r\n"), expected);
    assert_eq!(decode(b"*X;5:042;17:0;027:1\r\n"), expected);
}

#[test]
fn bare_lf_ends_a_frame_too() {
    assert_eq!(
        decode(b"*X;5;042;17;0;027;1\n"),
        vec![frame(status(WheelState::WinningNumber, 17, 0), 20)]
    );
}

#[test]
fn every_state() {
    for (code, state) in (1u8..).zip(WheelState::ALL) {
        let bytes = format!("*X;{code};042;17;0;027;1\r\n");
        assert_eq!(
            decode(bytes.as_bytes()),
            vec![frame(status(state, 17, 0), 21)],
            "{bytes:?}"
        );
        assert_eq!(WheelState::from_code(code), Some(state));
    }
    for code in [0, 7, 8, 9] {
        let bytes = format!("*X;{code};042;17;0;027;1\r\n");
        assert_eq!(
            decode(bytes.as_bytes()),
            vec![garbage(21, Garbage::Malformed)],
            "{bytes:?}"
        );
    }
}

#[test]
fn every_warning_flag() {
    for (flags, hex) in (0u8..16).zip("0123456789ABCDEF".chars()) {
        for hex in [hex, hex.to_ascii_lowercase()] {
            let bytes = format!("*X;3;042;17;{hex};027;1\r\n");
            let items = decode(bytes.as_bytes());
            assert_eq!(
                items,
                vec![frame(status(WheelState::BallInRim, 17, flags), 21)]
            );
        }
        let w = WarningFlags(flags);
        assert_eq!(w.ball_removed(), flags & 1 != 0);
        assert_eq!(w.launched_with_rotor(), flags & 2 != 0);
        assert_eq!(w.sensor_fault(), flags & 4 != 0);
        assert_eq!(w.void_game(), flags & 8 != 0);
        assert_eq!(w.is_empty(), flags == 0);
    }
    assert!(WarningFlags(WarningFlags::BALL_REMOVED).ball_removed());
    assert!(WarningFlags(WarningFlags::SAME_DIRECTION).launched_with_rotor());
    assert!(WarningFlags(WarningFlags::SENSOR_FAULT).sensor_fault());
    assert!(WarningFlags(WarningFlags::VOID_GAME).void_game());
    for bad in ["G", "g", " ", "10", ""] {
        let bytes = format!("*X;3;042;17;{bad};027;1\r\n");
        assert_eq!(
            decode(bytes.as_bytes()),
            vec![garbage(bytes.len(), Garbage::Malformed)],
            "{bytes:?}"
        );
    }
}

#[test]
fn directions() {
    let cw = decode(b"*X;2;001;00;0;030;0\r\n");
    assert_eq!(
        cw,
        vec![frame(
            WheelEvent::Status {
                state: WheelState::PlaceBets,
                spin_count: 1,
                number: 0,
                warnings: WarningFlags(0),
                rotor_speed: 30,
                direction: Direction::Clockwise,
            },
            21
        )]
    );
    assert_eq!(
        decode(b"*X;2;001;00;0;030;2\r\n"),
        vec![garbage(21, Garbage::Malformed)]
    );
}

#[test]
fn numbers_up_to_36_and_37_for_double_zero() {
    for n in 0..=37u8 {
        let bytes = format!("*X;5;042;{n:02};0;027;1\r\n");
        assert_eq!(
            decode(bytes.as_bytes()),
            vec![frame(status(WheelState::WinningNumber, n, 0), 21)]
        );
    }
    let single =
        |bytes: &[u8]| decode_split(&mut WheelCodec::new(WheelLayout::SingleZero), bytes, &[]);
    assert_eq!(
        single(b"*X;5;042;36;0;027;1\r\n"),
        vec![frame(status(WheelState::WinningNumber, 36, 0), 21)]
    );
    assert_eq!(
        single(b"*X;5;042;37;0;027;1\r\n"),
        vec![garbage(21, Garbage::Malformed)]
    );
    for n in [38, 50, 99] {
        let bytes = format!("*X;5;042;{n};0;027;1\r\n");
        assert_eq!(
            decode(bytes.as_bytes()),
            vec![garbage(21, Garbage::Malformed)]
        );
    }
}

#[test]
fn wrong_fields_are_malformed() {
    for bad in [
        "*X;5;042;17;0;027\r\n",     // a field missing
        "*X;5;042;17;0;027;1;9\r\n", // a field too many
        "*X;5;42;17;0;027;1\r\n",    // spin count not 3 digits
        "*X;5;042;7;0;027;1\r\n",    // number not 2 digits
        "*X;5;042;17;0;27;1\r\n",    // speed not 3 digits
        "*X;5;0a2;17;0;027;1\r\n",   // not a digit
        "*X;5;042;17;0;027;1 \r\n",  // trailing space
        "*X5;042;17;0;027;1\r\n",    // no separator after X
        "*X,5,042,17,0,027,1\r\n",   // another separator
        "*X;;042;17;0;027;1\r\n",    // empty state
        "*X;5;042;17;0;027;1\r\r\n", // two CRs
        "*X\r\n",
        "*\r\n",
        "*1\r\n",
        "*X;-1;042;17;0;027;1\r\n",
    ] {
        assert_eq!(
            decode(bad.as_bytes()),
            vec![garbage(bad.len(), Garbage::Malformed)],
            "{bad:?}"
        );
    }
}

#[test]
fn power_error_and_warning_frames_keep_their_text() {
    let cases: [(&[u8], WheelEvent); 9] = [
        (b"*P 1\r\n", WheelEvent::Power { text: "1".into() }),
        (b"*P 0\r\n", WheelEvent::Power { text: "0".into() }),
        (b"*P OK\r\n", WheelEvent::Power { text: "OK".into() }),
        (b"*F 11\r\n", WheelEvent::Error { text: "11".into() }),
        (b"*F;2\r\n", WheelEvent::Error { text: "2".into() }),
        (b"*W 4\r\n", WheelEvent::Warning { text: "4".into() }),
        (
            b"*W:ball not sensed\r\n",
            WheelEvent::Warning {
                text: "ball not sensed".into(),
            },
        ),
        (
            b"*o 3\r\n",
            WheelEvent::Other {
                code: 'o',
                text: "3".into(),
            },
        ),
        (
            b"*M 12 34\n",
            WheelEvent::Other {
                code: 'M',
                text: "12 34".into(),
            },
        ),
    ];
    for (bytes, event) in cases {
        assert_eq!(decode(bytes), vec![frame(event, bytes.len())], "{bytes:?}");
    }
    // Control characters or non-ASCII in the text: not a frame we can trust.
    for bad in [&b"*F 1\x072\r\n"[..], b"*W \xC3\xA9\r\n", b"*\x01 1\r\n"] {
        assert_eq!(
            decode(bad),
            vec![garbage(bad.len(), Garbage::Malformed)],
            "{bad:?}"
        );
    }
}

#[test]
fn bare_winning_numbers_at_a_line_start() {
    let wn = |number| WheelEvent::WinningNumber { number };
    assert_eq!(after_opener(b"17\r\n"), vec![frame(wn(17), 4)]);
    assert_eq!(after_opener(b"07\r\n"), vec![frame(wn(7), 4)]);
    assert_eq!(after_opener(b"7\r\n"), vec![frame(wn(7), 3)]);
    assert_eq!(after_opener(b"0\n"), vec![frame(wn(0), 2)]);
    assert_eq!(after_opener(b"37\r\n"), vec![frame(wn(37), 4)]);
    for bad in [
        &b"38\r\n"[..],
        b"123\r\n",
        b"1a\r\n",
        b"17 \r\n",
        b"017\r\n",
    ] {
        assert_eq!(
            after_opener(bad),
            vec![garbage(bad.len(), Garbage::Malformed)],
            "{bad:?}"
        );
    }
    // Digits and then a frame start with no line end: the digits are cut garbage.
    assert_eq!(
        after_opener(b"17*P 1\r\n"),
        vec![
            garbage(2, Garbage::Malformed),
            frame(WheelEvent::Power { text: "1".into() }, 6)
        ]
    );
}

#[test]
fn digits_at_an_unknown_line_start_are_not_a_number() {
    // The first bytes after the port opens may be the tail of `*X;…;027;1` or of `*F 11`.
    assert_eq!(
        decode(b"1\r\n*P 1\r\n"),
        vec![
            garbage(3, Garbage::NoFrameStart),
            frame(WheelEvent::Power { text: "1".into() }, 6)
        ]
    );
    // After that line end, a line start is known again.
    assert_eq!(
        decode(b"11\r\n17\r\n"),
        vec![
            garbage(4, Garbage::NoFrameStart),
            frame(WheelEvent::WinningNumber { number: 17 }, 4)
        ]
    );
    // After a reconnect (end of input), the decoder forgets where lines start.
    let mut codec = WheelCodec::default();
    let first = decode_split(&mut codec, b"*P 1\r\n", &[]);
    assert_eq!(first.len(), 1);
    assert_eq!(
        decode_split(&mut codec, b"17\r\n", &[]),
        vec![garbage(4, Garbage::NoFrameStart)]
    );
}

#[test]
fn garbage_before_inside_and_after_frames() {
    let example = || frame(status(WheelState::WinningNumber, 17, 0), 21);
    // Before: skipped up to the `*`.
    assert_eq!(
        decode(b"\x00\xFFnoise*X;5;042;17;0;027;1\r\n"),
        vec![garbage(7, Garbage::NoFrameStart), example()]
    );
    // Inside: a frame cut by a new `*` is garbage, the new frame is read.
    assert_eq!(
        decode(b"*X;5;04*X;5;042;17;0;027;1\r\n"),
        vec![garbage(7, Garbage::Malformed), example()]
    );
    // A corrupted byte inside a frame spoils that frame only.
    assert_eq!(
        decode(b"*X;5;0\x8242;17;0;027;1\r\n*X;5;042;17;0;027;1\r\n"),
        vec![garbage(22, Garbage::Malformed), example()]
    );
    // After: trailing noise at end of input is garbage.
    assert_eq!(
        decode(b"*X;5;042;17;0;027;1\r\nzz"),
        vec![example(), garbage(2, Garbage::NoFrameStart)]
    );
    // A blank line between frames is skipped.
    assert_eq!(
        decode(b"*X;5;042;17;0;027;1\r\n\r\n*X;5;042;17;0;027;1\r\n"),
        vec![example(), garbage(2, Garbage::NoFrameStart), example()]
    );
}

#[test]
fn over_long_frames_are_skipped_and_reading_resumes() {
    let mut bytes = b"*W ".to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 200));
    bytes.extend_from_slice(b"\r\n*X;5;042;17;0;027;1\r\n");
    let items = decode(&bytes);
    let (last, skipped) = items.split_last().expect("items");
    assert_eq!(*last, frame(status(WheelState::WinningNumber, 17, 0), 21));
    assert_eq!(skipped.first(), Some(&garbage(MAX_FRAME, Garbage::TooLong)));
    let total: usize = skipped
        .iter()
        .map(|item| match item {
            Decoded::Garbage {
                skipped,
                reason: Garbage::TooLong,
            } => *skipped,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(total, 3 + 200 + 2);

    // An over-long run that ends in a new `*`: reading resumes there.
    let mut bytes = vec![b'*'; 1];
    bytes.extend(std::iter::repeat_n(b'9', 100));
    bytes.extend_from_slice(b"*P 1\r\n");
    let items = decode(&bytes);
    assert_eq!(
        items.last(),
        Some(&frame(WheelEvent::Power { text: "1".into() }, 6))
    );

    // A frame of exactly MAX_FRAME bytes is still read.
    let text = "x".repeat(MAX_FRAME - 5);
    let bytes = format!("*W {text}\r\n");
    assert_eq!(bytes.len(), MAX_FRAME);
    assert_eq!(
        decode(bytes.as_bytes()),
        vec![frame(WheelEvent::Warning { text }, MAX_FRAME)]
    );
}

#[test]
fn a_frame_cut_at_end_of_input_is_never_a_frame() {
    let whole = b"*X;5;042;17;0;027;1\r\n";
    for cut in 1..whole.len() {
        let items = decode(&whole[..cut]);
        assert_eq!(
            items,
            vec![garbage(cut, Garbage::Malformed)],
            "cut at {cut}"
        );
    }
    // A bare number cut before its line end: `1` of `17`, or `17` without its CR LF.
    assert_eq!(after_opener(b"1"), vec![garbage(1, Garbage::Malformed)]);
    assert_eq!(after_opener(b"17\r"), vec![garbage(3, Garbage::Malformed)]);
}

#[test]
fn a_partial_frame_waits_for_more_bytes() {
    let mut codec = WheelCodec::default();
    let mut buf = BytesMut::from(&b"*X;5;042;17"[..]);
    assert_eq!(codec.decode(&mut buf).expect("no error"), None);
    assert_eq!(buf.len(), 11, "nothing consumed yet");
    buf.extend_from_slice(b";0;027;1\r\n");
    assert_eq!(
        codec.decode(&mut buf).expect("no error"),
        Some(frame(status(WheelState::WinningNumber, 17, 0), 21))
    );
    assert!(buf.capacity() < 64 * 1024, "no huge reservation");
}

#[test]
fn encoder_and_decoder_agree() {
    let events = [
        status(WheelState::GameStart, 3, 0),
        status(WheelState::Idle, 0, 0xF),
        WheelEvent::WinningNumber { number: 5 },
        WheelEvent::Power { text: "OK".into() },
        WheelEvent::Error { text: "11".into() },
        WheelEvent::Warning { text: "".into() },
        WheelEvent::Other {
            code: 'Y',
            text: "1;032".into(),
        },
    ];
    let bytes: Vec<u8> = events.iter().flat_map(WheelEvent::encode).collect();
    let expected: Vec<Item> = events
        .iter()
        .map(|e| frame(e.clone(), e.encode().len()))
        .collect();
    assert_eq!(decode(&bytes), expected);
    assert_eq!(WheelEvent::WinningNumber { number: 5 }.encode(), b"05\r\n");
}

#[test]
fn mode_command_bytes() {
    assert_eq!(mode_command(WheelMode(0)), b"*o 0\r\n");
    assert_eq!(mode_command(WheelMode(13)), b"*o 13\r\n");
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn arb_state() -> impl Strategy<Value = WheelState> {
    proptest::sample::select(WheelState::ALL.to_vec())
}

fn arb_text() -> impl Strategy<Value = String> {
    // Printable ASCII without `*`, which would start a new frame.
    "[ -)+-~]{0,40}"
}

fn arb_event() -> impl Strategy<Value = WheelEvent> {
    prop_oneof![
        4 => arb_status(),
        1 => (0u8..=37).prop_map(|number| WheelEvent::WinningNumber { number }),
        1 => arb_text().prop_map(|text| WheelEvent::Power { text }),
        1 => arb_text().prop_map(|text| WheelEvent::Error { text }),
        1 => arb_text().prop_map(|text| WheelEvent::Warning { text }),
        1 => ("[A-EG-OQ-VYZa-z]", arb_text()).prop_map(|(code, text)| WheelEvent::Other {
            code: code.chars().next().unwrap_or('o'),
            text,
        }),
    ]
}

fn arb_status() -> impl Strategy<Value = WheelEvent> {
    (
        arb_state(),
        0u16..1000,
        0u8..=37,
        0u8..16,
        0u16..1000,
        any::<bool>(),
    )
        .prop_map(
            |(state, spin_count, number, w, rotor_speed, ccw)| WheelEvent::Status {
                state,
                spin_count,
                number,
                warnings: WarningFlags(w),
                rotor_speed,
                direction: if ccw {
                    Direction::CounterClockwise
                } else {
                    Direction::Clockwise
                },
            },
        )
}

/// Bytes that look like the wheel's traffic gone wrong: frames, pieces of frames, separators,
/// line ends, digits and random bytes, in any order.
fn arb_noisy_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        arb_event().prop_map(|e| e.encode()),
        arb_event().prop_flat_map(|e| {
            let bytes = e.encode();
            let len = bytes.len();
            (Just(bytes), 0..len).prop_map(|(b, cut)| b[..cut].to_vec())
        }),
        proptest::collection::vec(any::<u8>(), 0..12),
        proptest::sample::select(vec![
            b"*".to_vec(),
            b"\r\n".to_vec(),
            b"\n".to_vec(),
            b";".to_vec(),
            b":".to_vec(),
            b"17".to_vec(),
            b"*X;".to_vec(),
        ]),
        proptest::collection::vec(Just(b'x'), 50..150),
    ];
    proptest::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
}

proptest! {
    /// Any bytes at all: no panic, no error, and every byte is either part of exactly one frame
    /// or counted as skipped; a frame is only ever reported with its line end.
    #[test]
    fn any_bytes_are_accounted_for(
        bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..600), arb_noisy_stream()],
        reads in proptest::collection::vec(1usize..40, 0..8),
    ) {
        let items = decode_split(&mut WheelCodec::default(), &bytes, &reads);
        let mut at = 0usize;
        for item in &items {
            match item {
                Decoded::Frame { wire_len, .. } => {
                    prop_assert!(*wire_len > 0 && *wire_len <= MAX_FRAME);
                    prop_assert_eq!(bytes.get(at + wire_len - 1), Some(&b'\n'));
                    at += wire_len;
                }
                Decoded::Garbage { skipped, .. } => {
                    prop_assert!(*skipped > 0);
                    at += skipped;
                }
            }
        }
        prop_assert_eq!(at, bytes.len());
    }

    /// Valid frames decode to exactly what was sent, however the bytes are split into reads.
    #[test]
    fn valid_frames_decode_identically_under_any_split(
        first in arb_status(),
        rest in proptest::collection::vec((arb_event(), any::<bool>(), any::<bool>()), 0..30),
        reads in proptest::collection::vec(1usize..30, 1..10),
    ) {
        let mut bytes = first.encode();
        let mut expected = vec![frame(first.clone(), bytes.len())];
        for (event, colons, bare_lf) in rest {
            let mut wire = event.encode();
            if colons && matches!(event, WheelEvent::Status { .. }) {
                for b in &mut wire {
                    if *b == b';' {
                        *b = b':';
                    }
                }
            }
            if bare_lf {
                wire.remove(wire.len() - 2);
            }
            expected.push(frame(event, wire.len()));
            bytes.extend_from_slice(&wire);
        }
        let whole = decode_split(&mut WheelCodec::default(), &bytes, &[]);
        prop_assert_eq!(&whole, &expected);
        let split = decode_split(&mut WheelCodec::default(), &bytes, &reads);
        prop_assert_eq!(&split, &expected);
        let bytewise = decode_split(&mut WheelCodec::default(), &bytes, &[1]);
        prop_assert_eq!(&bytewise, &expected);
    }
}
