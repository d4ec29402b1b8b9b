//! RFID presence: the FEIG inventory poller against the simulated reader, the plain ASCII
//! reader codec and presence tracker, and the tag registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use common::decode_chunks;
use croupier_drivers::feig::{
    encode_response, FrameKind, ResponseCodec, SimulatedReader, Status, BROADCAST_ADR,
};
use croupier_drivers::model::{Card, Decoded, Garbage, RfidEvent, TagUid};
use croupier_drivers::rfid::{
    Antennas, AsciiUidCodec, Chip, Currency, InventoryPoller, PollerConfig, PresenceTracker,
    RfidError, TagMeaning, TagRegistry, UidOrder,
};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

const MS: u64 = 1_000_000;

fn uid(s: &str) -> TagUid {
    s.parse().unwrap()
}

fn arrived(antenna: u8, u: &str) -> RfidEvent {
    RfidEvent::Arrived {
        antenna,
        uid: uid(u),
    }
}

fn departed(antenna: u8, u: &str) -> RfidEvent {
    RfidEvent::Departed {
        antenna,
        uid: uid(u),
    }
}

const A: &str = "E00401501234000A";
const B: &str = "E00401501234000B";
const C: &str = "E00401501234000C";

/// The wire between the poller and the simulated reader.
struct Bench {
    poller: InventoryPoller,
    reader: SimulatedReader,
    codec: ResponseCodec,
    now: u64,
    /// Whether the reader answers.
    online: bool,
}

impl Bench {
    fn new(config: PollerConfig) -> Self {
        Self {
            poller: InventoryPoller::new(config).unwrap(),
            reader: SimulatedReader::new(0x00),
            codec: ResponseCodec::new(),
            now: 1_000 * MS,
            online: true,
        }
    }

    /// Runs the poller for `ms` milliseconds of simulated time, 1 ms at a time.
    fn run(&mut self, ms: u64) -> Vec<RfidEvent> {
        let mut events = Vec::new();
        for _ in 0..ms {
            self.now += MS;
            while let Some(request) = self.poller.poll_due(self.now) {
                if !self.online {
                    break;
                }
                let answer = self.reader.respond(&request);
                let mut buf = BytesMut::from(answer.as_slice());
                while let Some(item) = self.codec.decode(&mut buf).unwrap() {
                    if let Decoded::Frame { frame, .. } = item {
                        events.extend(self.poller.on_response(&frame));
                    }
                }
            }
        }
        events
    }
}

fn config(antennas: Antennas) -> PollerConfig {
    PollerConfig {
        antennas,
        ..PollerConfig::default()
    }
}

#[test]
fn defaults_match_the_documentation() {
    let c = PollerConfig::default();
    assert_eq!(c.poll_interval, Duration::from_millis(200));
    assert_eq!(c.response_timeout, Duration::from_millis(300));
    assert_eq!(c.absent_after, 2);
    assert_eq!(c.com_adr, BROADCAST_ADR);
    assert_eq!(c.antennas, Antennas::Default(1));
}

#[test]
fn arrivals_are_reported_once() {
    let mut bench = Bench::new(PollerConfig::default());
    assert!(bench.run(1000).is_empty());
    bench.reader.place(1, uid(A));
    let events = bench.run(250);
    assert_eq!(events, vec![arrived(1, A)]);
    assert!(
        bench.run(2000).is_empty(),
        "a present tag is not re-announced"
    );
    assert_eq!(bench.poller.present()[&1].len(), 1);
}

#[test]
fn polls_at_the_configured_interval() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.run(1000);
    // One request every 200 ms: 5 a second (the first one at once).
    assert_eq!(bench.poller.stats().requests, 5);
    assert_eq!(bench.poller.stats().responses, 5);
}

#[test]
fn departure_only_after_absent_after_misses() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.reader.place(1, uid(A));
    bench.run(250);
    bench.reader.remove(1, &uid(A));
    // The next inventory misses it once: not gone yet.
    let first = bench.run(200);
    assert!(first.is_empty(), "{first:?}");
    let second = bench.run(200);
    assert_eq!(second, vec![departed(1, A)]);

    // One missed read in between does not flap.
    bench.reader.place(1, uid(B));
    assert_eq!(bench.run(200), vec![arrived(1, B)]);
    bench.reader.remove(1, &uid(B));
    assert!(bench.run(200).is_empty());
    bench.reader.place(1, uid(B));
    assert!(bench.run(2000).is_empty());
}

#[test]
fn absent_after_is_configurable() {
    let mut bench = Bench::new(PollerConfig {
        absent_after: 4,
        ..PollerConfig::default()
    });
    bench.reader.place(1, uid(A));
    bench.run(250);
    bench.reader.remove(1, &uid(A));
    assert!(bench.run(600).is_empty(), "3 misses");
    assert_eq!(bench.run(200), vec![departed(1, A)]);
}

#[test]
fn a_silent_reader_is_not_an_empty_table() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.reader.place(1, uid(A));
    bench.run(250);
    bench.online = false;
    bench.reader.remove(1, &uid(A));
    assert!(bench.run(5000).is_empty(), "timeouts never depart tags");
    let stats = bench.poller.stats();
    assert!(stats.timeouts >= 10, "{stats:?}");
    assert!(stats.consecutive_failures >= 10);
    // Back online: the tag is really gone, and departs after two complete inventories.
    bench.online = true;
    let events = bench.run(1000);
    assert_eq!(events, vec![departed(1, A)]);
    assert_eq!(bench.poller.stats().consecutive_failures, 0);
}

#[test]
fn timeout_then_next_request() {
    let mut poller = InventoryPoller::new(PollerConfig::default()).unwrap();
    let t0 = 5_000 * MS;
    assert!(poller.poll_due(t0).is_some());
    assert!(poller.awaiting_response());
    assert_eq!(poller.next_wakeup(), t0 + 300 * MS);
    assert!(poller.poll_due(t0 + 299 * MS).is_none());
    assert!(
        poller.poll_due(t0 + 300 * MS).is_some(),
        "timed out, and due again"
    );
    assert_eq!(poller.stats().timeouts, 1);
    // A late answer to the given-up request is ignored once nothing is in flight.
    poller.on_disconnect();
    let late = ResponseCodec::new()
        .decode(&mut BytesMut::from(
            encode_response(FrameKind::Standard, 0, 0xB0, Status::NoTransponder, &[])
                .unwrap()
                .as_slice(),
        ))
        .unwrap();
    let Some(Decoded::Frame { frame, .. }) = late else {
        panic!()
    };
    assert!(poller.on_response(&frame).is_empty());
    assert_eq!(poller.stats().ignored, 1);
}

#[test]
fn rf_errors_add_tags_but_never_remove_them() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.reader.place(1, uid(A));
    bench.run(250);
    bench.reader.remove(1, &uid(A));
    for _ in 0..10 {
        bench.reader.inject_status(Status::RfCommunicationError);
    }
    assert!(bench.run(2000).is_empty());
    assert_eq!(
        bench.poller.last_status(),
        Some(Status::RfCommunicationError)
    );
    assert!(bench.poller.stats().partial >= 10);
    assert_eq!(bench.run(400), vec![departed(1, A)]);
}

#[test]
fn error_answers_count_as_failures() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.reader.place(1, uid(A));
    bench.run(250);
    bench.reader.remove(1, &uid(A));
    for _ in 0..5 {
        bench.reader.inject_status(Status::CommandNotAvailable);
    }
    assert!(bench.run(1000).is_empty());
    assert_eq!(bench.poller.stats().failures, 5);
    assert_eq!(bench.poller.stats().consecutive_failures, 5);
}

#[test]
fn antennas_together_are_zones() {
    let mut bench = Bench::new(config(Antennas::Together(vec![1, 2, 3])));
    bench.reader.place(1, uid(A));
    bench.reader.place(2, uid(B));
    bench.reader.place(3, uid(C));
    bench.reader.place(4, uid(C)); // not configured: ignored
    let mut events = bench.run(250);
    events.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(events, vec![arrived(1, A), arrived(2, B), arrived(3, C)]);
    // A chip pushed from zone 1 to zone 2: arrives at once, departs zone 1 after two misses.
    bench.reader.remove(1, &uid(A));
    bench.reader.place(2, uid(A));
    assert_eq!(bench.run(200), vec![arrived(2, A)]);
    assert_eq!(bench.run(200), vec![departed(1, A)]);
    let present = bench.poller.present();
    assert!(!present.contains_key(&1));
    assert_eq!(present[&2].len(), 2);
}

#[test]
fn antennas_in_turn() {
    let mut bench = Bench::new(config(Antennas::InTurn(vec![1, 2])));
    bench.reader.place(1, uid(A));
    bench.reader.place(2, uid(B));
    let events = bench.run(450);
    assert_eq!(events, vec![arrived(1, A), arrived(2, B)]);
    bench.reader.remove(2, &uid(B));
    // Antenna 2 is asked every other poll: two misses take four polls.
    assert!(bench.run(400).is_empty());
    assert_eq!(bench.run(400), vec![departed(2, B)]);
}

#[test]
fn more_data_parts_make_one_inventory() {
    let mut bench = Bench::new(PollerConfig::default());
    bench.reader = SimulatedReader::new(0).with_max_data_sets(3);
    let tags: Vec<TagUid> = (0..10u8)
        .map(|i| TagUid([0xE0, 0x04, 0, 0, 0, 0, 2, i]))
        .collect();
    bench.reader.set_tags(1, tags.clone());
    let events = bench.run(100);
    assert_eq!(events.len(), 10, "{events:?}");
    // Four parts, one inventory; then nothing departs while all stay.
    assert_eq!(bench.poller.stats().requests, 4);
    assert!(bench.run(2000).is_empty());
    bench.reader.remove(1, &tags[7]);
    let gone = bench.run(400);
    assert_eq!(
        gone,
        vec![RfidEvent::Departed {
            antenna: 1,
            uid: tags[7]
        }]
    );
}

#[test]
fn answers_from_another_address_are_ignored() {
    let mut bench = Bench::new(PollerConfig {
        com_adr: 0x00,
        ..PollerConfig::default()
    });
    bench.reader = SimulatedReader::new(0x00);
    bench.reader.place(1, uid(A));
    assert_eq!(bench.run(250), vec![arrived(1, A)]);
    // An answer from reader 5 while a request to reader 0 is in flight.
    let mut poller = InventoryPoller::new(PollerConfig {
        com_adr: 0x00,
        ..PollerConfig::default()
    })
    .unwrap();
    poller.poll_due(MS);
    let mut other = SimulatedReader::new(0x05);
    other.place(1, uid(B));
    let answer = other.respond(&croupier_drivers::feig::inventory_request(0xFF, 0));
    let mut buf = BytesMut::from(answer.as_slice());
    let Some(Decoded::Frame { frame, .. }) = ResponseCodec::new().decode(&mut buf).unwrap() else {
        panic!()
    };
    assert!(poller.on_response(&frame).is_empty());
    assert_eq!(poller.stats().ignored, 1);
    assert!(poller.awaiting_response());
}

#[test]
fn configuration_is_checked() {
    let bad = |antennas, absent_after| {
        InventoryPoller::new(PollerConfig {
            antennas,
            absent_after,
            ..PollerConfig::default()
        })
        .unwrap_err()
    };
    assert!(matches!(
        bad(Antennas::Together(vec![1, 9]), 2),
        RfidError::AntennaOutOfRange(9)
    ));
    assert!(matches!(
        bad(Antennas::InTurn(vec![0]), 2),
        RfidError::AntennaOutOfRange(0)
    ));
    assert!(matches!(
        bad(Antennas::Together(vec![2, 2]), 2),
        RfidError::DuplicateAntenna(2)
    ));
    assert!(matches!(
        bad(Antennas::Together(vec![]), 2),
        RfidError::NoAntennas
    ));
    assert!(matches!(
        bad(Antennas::Default(1), 0),
        RfidError::ZeroAbsentAfter
    ));
    let err = InventoryPoller::new(PollerConfig {
        poll_interval: Duration::ZERO,
        ..PollerConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("poll_interval"));
}

// ---------------------------------------------------------------------------------------------
// ASCII readers
// ---------------------------------------------------------------------------------------------

fn ascii(codec: AsciiUidCodec, chunks: &[&[u8]]) -> Vec<Decoded<TagUid>> {
    decode_chunks(codec, chunks)
}

fn frame(u: &str, wire_len: usize) -> Decoded<TagUid> {
    Decoded::Frame {
        frame: uid(u),
        wire_len,
    }
}

#[test]
fn ascii_lines_in_every_accepted_form() {
    let input =
        b"E00401501234ABCD\r\ne00401501234abce\n 0xE00401501234ABCF \r\r\n\nE00401501234AB00\r";
    let items = ascii(AsciiUidCodec::default(), &[input]);
    assert_eq!(
        items,
        vec![
            frame("E00401501234ABCD", 17),
            frame("E00401501234ABCE", 17),
            frame("E00401501234ABCF", 21),
            frame("E00401501234AB00", 17),
        ]
    );
}

#[test]
fn ascii_garbage_is_reported_never_guessed() {
    let input = b"E0040150\r\nKH\r\nE00401501234ABCD\r\nE00401501234ABCDEF\r\n";
    let items = ascii(AsciiUidCodec::default(), &[input]);
    assert_eq!(
        items,
        vec![
            Decoded::Garbage {
                skipped: 9,
                reason: Garbage::Malformed
            },
            Decoded::Garbage {
                skipped: 3,
                reason: Garbage::Malformed
            },
            frame("E00401501234ABCD", 17),
            Decoded::Garbage {
                skipped: 19,
                reason: Garbage::Malformed
            },
        ]
    );
}

#[test]
fn ascii_overlong_lines_are_bounded() {
    let mut input = vec![b'7'; 200];
    input.extend_from_slice(b"\r\nE00401501234ABCD\r\n");
    let chunks: Vec<&[u8]> = input.chunks(50).collect();
    let items = ascii(AsciiUidCodec::default(), &chunks);
    let too_long: usize = items
        .iter()
        .map(|d| match d {
            Decoded::Garbage {
                skipped,
                reason: Garbage::TooLong,
            } => *skipped,
            _ => 0,
        })
        .sum();
    assert_eq!(too_long, 201, "{items:?}");
    assert_eq!(items.last(), Some(&frame("E00401501234ABCD", 17)));
}

#[test]
fn ascii_partial_line_at_eof_is_garbage() {
    let items = ascii(AsciiUidCodec::default(), &[b"E00401501234ABCD"]);
    assert_eq!(
        items,
        vec![Decoded::Garbage {
            skipped: 16,
            reason: Garbage::Malformed
        }]
    );
}

#[test]
fn ascii_lsb_first_readers_are_turned_round() {
    let items = ascii(
        AsciiUidCodec::new(UidOrder::LsbFirst),
        &[b"CDAB341250010 4E0\r\nCDAB3412500104E0\r\n"],
    );
    assert_eq!(
        items[1],
        frame("E00401501234ABCD", 17),
        "reversed byte order"
    );
    assert!(matches!(items[0], Decoded::Garbage { .. }));
}

#[test]
fn presence_tracker_arrivals_and_departures() {
    let mut t = PresenceTracker::new(Duration::from_millis(500));
    assert_eq!(t.seen(uid(A), 0), Some(arrived(1, A)));
    assert_eq!(t.seen(uid(A), 100 * MS), None);
    assert_eq!(t.seen(uid(B), 200 * MS), Some(arrived(1, B)));
    assert_eq!(t.next_deadline(), Some(600 * MS));
    assert!(t.expire(599 * MS).is_empty());
    assert_eq!(t.expire(600 * MS), vec![departed(1, A)]);
    // The reader was down for a while: hold presence, then the tag is judged afresh.
    t.hold(5_000 * MS);
    assert!(t.expire(5_400 * MS).is_empty());
    assert_eq!(t.expire(5_500 * MS), vec![departed(1, B)]);
    assert_eq!(t.next_deadline(), None);

    let mut zone = PresenceTracker::new(PresenceTracker::DEFAULT_ABSENT_AFTER).with_antenna(3);
    assert_eq!(zone.seen(uid(C), 0), Some(arrived(3, C)));
    assert_eq!(zone.present().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Tag registry
// ---------------------------------------------------------------------------------------------

#[test]
fn the_shipped_example_registry_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../calibration/tags.example.toml");
    let reg = TagRegistry::load(&path).unwrap();
    assert_eq!(reg.len(), 9);
    assert_eq!(
        reg.card(&uid("E00401501234A002")),
        Some("KH".parse::<Card>().unwrap())
    );
    let eur = Currency::parse("EUR").unwrap();
    assert_eq!(
        reg.chip(&uid("E00401501234B003")),
        Some(Chip {
            value_cents: 10_000,
            currency: eur
        })
    );
    assert_eq!(
        reg.chip(&uid("E00401501234B004")).unwrap().to_string(),
        "0.50 EUR"
    );
    assert_eq!(
        reg.get(&uid("E00401501234C001")),
        Some(&TagMeaning::Marker("dealer-button".to_owned()))
    );
    assert_eq!(reg.get(&uid("E00401501234FFFF")), None);
}

#[test]
fn registry_forms_and_lookups() {
    let reg = TagRegistry::parse(
        r#"
[tags]
"e00401501234abcd" = { card = "10d" }
"E00401501234ABCE" = { chip = 2.5, currency = "USD" }

[tags."E00401501234ABCF"]
chip = 1000
currency = "GBP"
"#,
    )
    .unwrap();
    assert_eq!(reg.len(), 3);
    assert_eq!(
        reg.card(&uid("E00401501234ABCD")).unwrap().to_string(),
        "TD"
    );
    assert_eq!(
        reg.chip(&uid("E00401501234ABCE")).unwrap().to_string(),
        "2.50 USD"
    );
    assert_eq!(
        reg.chip(&uid("E00401501234ABCF")).unwrap().value_cents,
        100_000
    );
    assert!(reg.card(&uid("E00401501234ABCE")).is_none());
    assert!(TagRegistry::parse("").unwrap().is_empty());
}

#[test]
fn every_bad_entry_is_reported_with_its_line() {
    let text = r#"version = 2
currency = "eur"
colour = "red"

[tags]
"E00401501234ABCD" = { card = "KH" }
"E0040150" = { card = "KH" }
"E00401501234ABCE" = { card = "KX" }
"E00401501234ABCF" = { chip = -5, currency = "EUR" }
"E00401501234AB00" = { chip = 1.234, currency = "EUR" }
"E00401501234AB01" = { chip = 5 }
"e00401501234abcd" = { card = "QS" }
"E00401501234AB02" = { card = "KH", chip = 5 }
"E00401501234AB03" = { card = "KH", colour = "red" }
"E00401501234AB04" = "KH"
"E00401501234AB05" = { marker = "" }
"E00401501234AB06" = { card = "AS" }
"#;
    let issues = TagRegistry::parse(text).unwrap_err();
    let lines: Vec<usize> = issues.0.iter().map(|i| i.line).collect();
    assert_eq!(
        lines,
        vec![1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        "{issues}"
    );
    let text_of = |line: usize| {
        issues
            .0
            .iter()
            .find(|i| i.line == line)
            .map(|i| i.message.clone())
            .unwrap()
    };
    assert!(text_of(1).contains("version"));
    assert!(text_of(3).contains("unknown key `colour`"));
    assert!(text_of(7).contains("16 hex digits"));
    assert!(text_of(8).contains("not a card"));
    assert!(text_of(10).contains("two decimals"));
    assert!(text_of(11).contains("needs a currency"));
    assert!(text_of(12).contains("listed twice (also on line 6)"));
    assert!(text_of(13).contains("exactly one"));
}

#[test]
fn registry_syntax_errors_name_the_line() {
    let issues = TagRegistry::parse("[tags]\n\"E00401501234ABCD\" = { card = KH }\n").unwrap_err();
    assert_eq!(issues.0.len(), 1);
    assert_eq!(issues.0[0].line, 2);
    assert!(issues.0[0].message.contains("not valid TOML"));
}

#[test]
fn registry_load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tags.toml");
    let err = TagRegistry::load(&missing).unwrap_err();
    assert!(matches!(err, RfidError::RegistryRead { .. }));
    std::fs::write(&missing, "[tags]\n\"E0\" = { card = \"KH\" }\n").unwrap();
    let err = TagRegistry::load(&missing).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tags.toml") && text.contains("line 2"),
        "{text}"
    );
}

proptest! {
    #[test]
    fn ascii_arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512), cut in any::<usize>()) {
        let cut = cut % (input.len() + 1);
        let items = ascii(AsciiUidCodec::default(), &[&input[..cut], &input[cut..]]);
        for item in items {
            if let Decoded::Frame { wire_len, .. } = item {
                prop_assert!(wire_len >= 17);
            }
        }
    }

    #[test]
    fn ascii_valid_lines_decode_identically_under_any_split(
        uids in prop::collection::vec(any::<[u8; 8]>(), 1..10),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = uids.iter().map(|u| format!("{}{eol}", TagUid(*u))).collect();
        let input = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&input[at..c]);
            at = c;
        }
        chunks.push(&input[at..]);
        let split = ascii(AsciiUidCodec::default(), &chunks);
        let whole = ascii(AsciiUidCodec::default(), &[input]);
        prop_assert_eq!(&split, &whole);
        let want: Vec<Decoded<TagUid>> = uids.iter().map(|u| Decoded::Frame { frame: TagUid(*u), wire_len: 17 }).collect();
        prop_assert_eq!(split, want);
    }
}

#[test]
fn broadcast_polling_learns_the_readers_address() {
    let answer_from = |adr: u8, tag: &str| {
        let mut reader = SimulatedReader::new(adr);
        reader.place(1, uid(tag));
        let bytes = reader.respond(&croupier_drivers::feig::inventory_request(0xFF, 0));
        let mut buf = BytesMut::from(bytes.as_slice());
        match ResponseCodec::new().decode(&mut buf).unwrap() {
            Some(Decoded::Frame { frame, .. }) => frame,
            other => panic!("{other:?}"),
        }
    };
    let mut poller = InventoryPoller::new(PollerConfig::default()).unwrap();
    poller.poll_due(MS);
    assert_eq!(
        poller.on_response(&answer_from(0x00, A)),
        vec![arrived(1, A)]
    );
    // Another address now is not this reader (or is line noise): ignored.
    poller.poll_due(300 * MS);
    assert!(poller.on_response(&answer_from(0x07, B)).is_empty());
    assert_eq!(poller.stats().ignored, 1);
    // After a reconnect any reader may answer again.
    poller.on_disconnect();
    poller.poll_due(600 * MS);
    assert_eq!(
        poller.on_response(&answer_from(0x07, B)),
        vec![arrived(1, B)]
    );
}
