//! Byte-vector and property tests of the card readers (`croupier_drivers::cards`).

mod common;

use std::collections::HashMap;
use std::io::Write;

use common::decode_split;
use croupier_drivers::cards::{
    card_line, BarcodeTable, CardFormat, CardLineCodec, CardPattern, CardsError, LineCodec, Shoe,
    DEFAULT_MAX_LINE,
};
use croupier_drivers::model::{Card, CardEvent, Decoded, Garbage, Rank, Suit};
use proptest::prelude::*;

type Item = Decoded<CardEvent>;

fn decode_with(format: CardFormat, burn: Option<&str>, bytes: &[u8]) -> Vec<Item> {
    decode_split(&mut CardLineCodec::new(format, burn), bytes, &[])
}

fn decode(bytes: &[u8]) -> Vec<Item> {
    decode_with(CardFormat::Default, None, bytes)
}

fn card(rank: Rank, suit: Suit) -> Card {
    Card { rank, suit }
}

fn drawn(card: Card, index: u64, wire_len: usize) -> Item {
    Decoded::Frame {
        frame: CardEvent::Drawn { card, index },
        wire_len,
    }
}

fn unreadable(text: &str, wire_len: usize) -> Item {
    Decoded::Frame {
        frame: CardEvent::Unreadable { text: text.into() },
        wire_len,
    }
}

fn garbage(skipped: usize, reason: Garbage) -> Item {
    Decoded::Garbage { skipped, reason }
}

#[test]
fn all_52_cards_in_the_default_format() {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for suit in Suit::ALL {
        for rank in Rank::ALL {
            let c = card(rank, suit);
            let line = card_line(c);
            assert_eq!(line.len(), 4);
            expected.push(drawn(c, expected.len() as u64 + 1, 4));
            bytes.extend_from_slice(&line);
        }
    }
    assert_eq!(expected.len(), 52);
    assert_eq!(decode(&bytes), expected);
}

#[test]
fn ten_may_be_written_10_and_case_and_padding_do_not_matter() {
    let items = decode(b"10H\r\n10s\r\nkd\n  QC \r\n");
    assert_eq!(
        items,
        vec![
            drawn(card(Rank::Ten, Suit::Hearts), 1, 5),
            drawn(card(Rank::Ten, Suit::Spades), 2, 5),
            drawn(card(Rank::King, Suit::Diamonds), 3, 3),
            drawn(card(Rank::Queen, Suit::Clubs), 4, 7),
        ]
    );
}

#[test]
fn lines_that_are_no_card_are_reported_never_guessed() {
    let items = decode(b"KH\r\nXX\r\n1H\r\nKHH\r\n11D\r\n0S\r\nAS\r\n");
    assert_eq!(
        items,
        vec![
            drawn(card(Rank::King, Suit::Hearts), 1, 4),
            unreadable("XX", 4),
            unreadable("1H", 4),
            unreadable("KHH", 5),
            unreadable("11D", 5),
            unreadable("0S", 4),
            // Unreadable lines take no number.
            drawn(card(Rank::Ace, Suit::Spades), 2, 4),
        ]
    );
}

#[test]
fn burn_marker_gives_a_burn_card_in_the_count() {
    let items = decode_with(CardFormat::Default, Some("BURN"), b"burn\r\nKH\r\nBURN\n");
    assert_eq!(
        items,
        vec![
            Decoded::Frame {
                frame: CardEvent::Burn { index: 1 },
                wire_len: 6
            },
            drawn(card(Rank::King, Suit::Hearts), 2, 4),
            Decoded::Frame {
                frame: CardEvent::Burn { index: 3 },
                wire_len: 5
            },
        ]
    );
    // Without a marker, BURN is just an unreadable line.
    assert_eq!(decode(b"BURN\r\n"), vec![unreadable("BURN", 6)]);
}

#[test]
fn blank_lines_are_skipped_bytes_not_cards() {
    assert_eq!(
        decode(b"\r\nKH\r\n\n  \r\n"),
        vec![
            garbage(2, Garbage::NoFrameStart),
            drawn(card(Rank::King, Suit::Hearts), 1, 4),
            garbage(1, Garbage::NoFrameStart),
            garbage(4, Garbage::NoFrameStart),
        ]
    );
}

#[test]
fn over_long_lines_are_skipped_and_reading_resumes() {
    let mut bytes = vec![b'7'; 300];
    bytes.extend_from_slice(b"\r\nKH\r\n");
    let items = decode(&bytes);
    assert_eq!(
        items.first(),
        Some(&garbage(DEFAULT_MAX_LINE, Garbage::TooLong))
    );
    assert_eq!(
        items.last(),
        Some(&drawn(card(Rank::King, Suit::Hearts), 1, 4))
    );
    let skipped: usize = items
        .iter()
        .map(|i| match i {
            Decoded::Garbage {
                skipped,
                reason: Garbage::TooLong,
            } => *skipped,
            _ => 0,
        })
        .sum();
    assert_eq!(skipped, 302);

    // A smaller bound, set per reader.
    let mut codec = CardLineCodec::new(CardFormat::Default, None).with_max_line(8);
    let items = decode_split(&mut codec, b"0123456789\r\nAH\r\n", &[]);
    assert_eq!(
        items,
        vec![
            garbage(8, Garbage::TooLong),
            garbage(4, Garbage::TooLong),
            drawn(card(Rank::Ace, Suit::Hearts), 1, 4),
        ]
    );
}

#[test]
fn non_utf8_lines_are_malformed() {
    assert_eq!(
        decode(b"K\xFF\r\nKH\r\n"),
        vec![
            garbage(4, Garbage::Malformed),
            drawn(card(Rank::King, Suit::Hearts), 1, 4)
        ]
    );
}

#[test]
fn a_line_cut_at_end_of_input_is_never_a_card() {
    // `1` of `10H`, or `KH` whose line end never came: either could be a different card.
    assert_eq!(decode(b"1"), vec![garbage(1, Garbage::Malformed)]);
    assert_eq!(decode(b"10"), vec![garbage(2, Garbage::Malformed)]);
    assert_eq!(
        decode(b"QS\r\nKH"),
        vec![
            drawn(card(Rank::Queen, Suit::Spades), 1, 4),
            garbage(2, Garbage::Malformed)
        ]
    );
    assert_eq!(decode(b"KH\r"), vec![garbage(3, Garbage::Malformed)]);
}

#[test]
fn regex_format_with_named_groups() {
    let format = CardFormat::from_config(
        "regex",
        Some(r"(?P<suit>[SHDC])-(?P<rank>10|[2-9AJQKT])"),
        None,
    )
    .expect("valid pattern");
    let items = decode_with(format, None, b"H-10\r\nS-A\r\nxH-10\r\nH-10x\r\nKH\r\n");
    assert_eq!(
        items,
        vec![
            drawn(card(Rank::Ten, Suit::Hearts), 1, 6),
            drawn(card(Rank::Ace, Suit::Spades), 2, 5),
            // The pattern must match the whole line: no card is picked out of a longer one.
            unreadable("xH-10", 7),
            unreadable("H-10x", 7),
            unreadable("KH", 4),
        ]
    );
    // Groups that match something that is no rank or suit: unreadable, not guessed.
    let loose = CardPattern::new(r"(?P<rank>\w+) of (?P<suit>\w+)").expect("valid");
    assert_eq!(loose.card("K of H"), Some(card(Rank::King, Suit::Hearts)));
    assert_eq!(loose.card("King of Hearts"), None);
    assert_eq!(loose.as_str(), r"(?P<rank>\w+) of (?P<suit>\w+)");
}

#[test]
fn regex_without_both_groups_is_refused_at_construction() {
    match CardPattern::new(r"(?P<rank>[A2-9TJQK])[SHDC]") {
        Err(CardsError::MissingGroup { group: "suit", .. }) => {}
        other => panic!("{other:?}"),
    }
    match CardPattern::new(r"(?P<suit>[SHDC])") {
        Err(e @ CardsError::MissingGroup { group: "rank", .. }) => {
            assert!(e.to_string().contains("(?P<rank>"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match CardPattern::new(r"(?P<rank>[A-Z]") {
        Err(e @ CardsError::BadPattern { .. }) => {
            assert!(
                e.to_string().contains("not a valid regular expression"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

const TABLE: &str = r#"# blue shoe, deck 1
[barcodes]
"0123456789012" = "KH"
"0123456789029" = "10D"
4006381333931 = "as"
"#;

#[test]
fn barcode_format_from_a_table_file() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(TABLE.as_bytes()).expect("write");
    let codec =
        CardLineCodec::from_config("barcode", None, Some(file.path()), Some("9990000000001"))
            .expect("table loads");
    match codec.shoe().format() {
        CardFormat::Barcodes(table) => assert_eq!(table.len(), 3),
        other => panic!("{other:?}"),
    }
    let items = decode_split(
        &mut codec.clone(),
        b"0123456789012\r\n9990000000001\r\n4006381333931\r\n0123456789029\n5555\r\nKH\r\n",
        &[],
    );
    assert_eq!(
        items,
        vec![
            drawn(card(Rank::King, Suit::Hearts), 1, 15),
            Decoded::Frame {
                frame: CardEvent::Burn { index: 2 },
                wire_len: 15
            },
            drawn(card(Rank::Ace, Suit::Spades), 3, 15),
            drawn(card(Rank::Ten, Suit::Diamonds), 4, 14),
            unreadable("5555", 6),
            // Under the barcode format a card name is not a barcode.
            unreadable("KH", 4),
        ]
    );
}

#[test]
fn barcode_table_reports_every_bad_entry_with_its_line() {
    let text = r#"[barcodes]
"111" = "KH"
"222" = "ZZ"
"333" = 7
" 444" = "AS"
"555" = "QD"

[extra]
x = "KH"
"#;
    let problems = BarcodeTable::parse(text).expect_err("bad entries");
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 8], "{problems:?}");
    assert!(
        problems[0].message.contains("`ZZ` is not a card"),
        "{problems:?}"
    );
    assert!(
        problems[1].message.contains("quoted string"),
        "{problems:?}"
    );
    assert!(problems[2].message.contains("spaces"), "{problems:?}");
    assert!(problems[3].message.contains("[barcodes]"), "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        format!("line 3: {}", problems[0].message)
    );
}

#[test]
fn barcode_table_with_syntax_errors_still_names_every_bad_line() {
    let text = r#"[barcodes]
"111" = "KH"
"222" = KH
"111" = "QS"
"333" "AS"
"444" = "XX"
"#;
    let problems = BarcodeTable::parse(text).expect_err("bad file");
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{problems:?}");
    assert!(
        problems[1].message.contains("already given on line 2"),
        "{problems:?}"
    );
}

#[test]
fn barcode_file_errors_name_the_file() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"[barcodes]\n\"1\" = \"KX\"\n")
        .expect("write");
    match CardFormat::from_config("barcode", None, Some(file.path())) {
        Err(e @ CardsError::BarcodeTable { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&file.path().display().to_string()), "{text}");
            assert!(text.contains("line 2:"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let missing = std::path::Path::new("/nonexistent/calibration/barcodes.toml");
    match CardFormat::from_config("barcode", None, Some(missing)) {
        Err(e @ CardsError::BarcodeFile { .. }) => {
            assert!(e.to_string().contains("barcodes.toml"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_keys_are_checked() {
    assert!(matches!(
        CardFormat::from_config("default", None, None),
        Ok(CardFormat::Default)
    ));
    assert!(matches!(
        CardFormat::from_config(" Default ", None, None),
        Ok(CardFormat::Default)
    ));
    assert!(matches!(
        CardFormat::from_config("csv", None, None),
        Err(CardsError::UnknownFormat { .. })
    ));
    assert!(matches!(
        CardFormat::from_config("regex", None, None),
        Err(CardsError::MissingKey { key: "pattern", .. })
    ));
    assert!(matches!(
        CardFormat::from_config("barcode", None, None),
        Err(CardsError::MissingKey {
            key: "barcodes",
            ..
        })
    ));
    assert!(matches!(
        CardFormat::from_config("default", Some("(?P<rank>.)(?P<suit>.)"), None),
        Err(CardsError::UnusedKey { key: "pattern", .. })
    ));
    assert!(matches!(
        CardFormat::from_config("regex", Some("x"), Some(std::path::Path::new("b.toml"))),
        Err(CardsError::UnusedKey {
            key: "barcodes",
            ..
        })
    ));
}

#[test]
fn line_codec_splits_lines() {
    let mut lines = LineCodec::new(16);
    assert_eq!(lines.max_len(), 16);
    let items = decode_split(&mut lines, b"one\r\ntwo\n\r\nthree", &[2]);
    assert_eq!(
        items,
        vec![
            Decoded::Frame {
                frame: "one".to_owned(),
                wire_len: 5
            },
            Decoded::Frame {
                frame: "two".to_owned(),
                wire_len: 4
            },
            Decoded::Frame {
                frame: String::new(),
                wire_len: 2
            },
            Decoded::Garbage {
                skipped: 5,
                reason: Garbage::Malformed
            },
        ]
    );
}

#[test]
fn the_shoe_is_sans_io() {
    let mut shoe = Shoe::new(CardFormat::Default, Some("BURN"));
    assert_eq!(shoe.read_line(""), None);
    assert_eq!(shoe.read_line("BURN"), Some(CardEvent::Burn { index: 1 }));
    assert_eq!(
        shoe.read_line("9c"),
        Some(CardEvent::Drawn {
            card: card(Rank::Nine, Suit::Clubs),
            index: 2
        })
    );
    assert_eq!(
        shoe.read_line(" ?? "),
        Some(CardEvent::Unreadable {
            text: " ?? ".into()
        })
    );
    assert_eq!(shoe.cards_read(), 2);
    let table = BarcodeTable::from_map(HashMap::from([(
        "42".to_owned(),
        card(Rank::Two, Suit::Diamonds),
    )]));
    assert_eq!(
        CardFormat::Barcodes(table).card("42"),
        Some(card(Rank::Two, Suit::Diamonds))
    );
}

// ---------------------------------------------------------------------------------------------
// Properties.

#[derive(Debug, Clone)]
enum Line {
    Card(Card, bool),
    Burn,
    Text(String),
}

fn arb_card() -> impl Strategy<Value = Card> {
    (
        proptest::sample::select(Rank::ALL.to_vec()),
        proptest::sample::select(Suit::ALL.to_vec()),
    )
        .prop_map(|(rank, suit)| Card { rank, suit })
}

fn arb_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => (arb_card(), any::<bool>()).prop_map(|(c, ten)| Line::Card(c, ten)),
        1 => Just(Line::Burn),
        1 => "[!-~][ -~]{0,30}".prop_map(Line::Text),
    ]
}

impl Line {
    fn wire(&self, bare_lf: bool) -> Vec<u8> {
        let text = match self {
            Line::Card(card, true) if card.rank == Rank::Ten => format!("10{}", card.suit.symbol()),
            Line::Card(card, _) => card.to_string(),
            Line::Burn => "BURN".to_owned(),
            Line::Text(text) => text.clone(),
        };
        let end = if bare_lf { "\n" } else { "\r\n" };
        format!("{text}{end}").into_bytes()
    }
}

proptest! {
    /// Any bytes: no panic, no error, every byte part of exactly one item, and a card only ever
    /// reported with its line end.
    #[test]
    fn any_bytes_are_accounted_for(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            proptest::collection::vec(
                prop_oneof![
                    arb_line().prop_map(|l| l.wire(false)),
                    proptest::collection::vec(any::<u8>(), 0..8),
                    Just(b"\r\n".to_vec()),
                    proptest::collection::vec(Just(b'K'), 100..200),
                ],
                0..30,
            ).prop_map(|pieces| pieces.concat()),
        ],
        reads in proptest::collection::vec(1usize..40, 0..8),
    ) {
        let mut codec = CardLineCodec::new(CardFormat::Default, Some("BURN"));
        let items = decode_split(&mut codec, &bytes, &reads);
        let mut at = 0usize;
        for item in &items {
            match item {
                Decoded::Frame { wire_len, .. } => {
                    prop_assert!(*wire_len > 0 && *wire_len <= DEFAULT_MAX_LINE);
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

    /// A sequence of reader lines decodes to the same events, in the same order, however the
    /// bytes are split into reads.
    #[test]
    fn valid_lines_decode_identically_under_any_split(
        lines in proptest::collection::vec((arb_line(), any::<bool>()), 0..40),
        reads in proptest::collection::vec(1usize..20, 1..10),
    ) {
        let mut reference = Shoe::new(CardFormat::Default, Some("BURN"));
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (line, bare_lf) in &lines {
            let wire = line.wire(*bare_lf);
            let text = std::str::from_utf8(&wire).expect("ASCII").trim_end_matches(['\r', '\n']);
            let event = reference.read_line(text).expect("not blank");
            if let (Line::Card(card, _), CardEvent::Drawn { card: read, .. }) = (line, &event) {
                prop_assert_eq!(card, read);
            }
            expected.push(Decoded::Frame { frame: event, wire_len: wire.len() });
            bytes.extend_from_slice(&wire);
        }
        let new = || CardLineCodec::new(CardFormat::Default, Some("BURN"));
        prop_assert_eq!(&decode_split(&mut new(), &bytes, &[]), &expected);
        prop_assert_eq!(&decode_split(&mut new(), &bytes, &reads), &expected);
        prop_assert_eq!(&decode_split(&mut new(), &bytes, &[1]), &expected);
    }
}
