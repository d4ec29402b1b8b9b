//! FEIG ISO-Host frames: CRC, request encoding, response decoding, resynchronisation, splits,
//! inventory parsing and the simulated reader.
//!
//! The byte vectors below were built from the frame layout of the FEIG system manuals (LEN,
//! COM-ADR, CONTROL, STATUS, DATA, CRC16 LSB first) and checked with an independent
//! implementation of the manuals' C CRC routine, not with this crate's encoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::decode_chunks;
use croupier_drivers::feig::{
    crc16, encode_request, encode_request_as, encode_response, inventory_request, parse_inventory,
    AntennaInfo, FeigError, FrameKind, InventoryRequest, RequestCodec, Response, ResponseCodec,
    SimulatedReader, Status,
};
use croupier_drivers::model::{Decoded, Garbage, TagUid};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn uid(s: &str) -> TagUid {
    s.parse().unwrap()
}

fn frames<T: Clone>(items: &[Decoded<T>]) -> Vec<T> {
    items
        .iter()
        .filter_map(|d| match d {
            Decoded::Frame { frame, .. } => Some(frame.clone()),
            Decoded::Garbage { .. } => None,
        })
        .collect()
}

// One ISO 15693 tag E00401501234ABCD, reader address 0, standard frame, no antenna numbers.
const ONE_TAG: &str = "11 00 B0 00 01 03 00 E0 04 01 50 12 34 AB CD EC 6E";
// Status 0x01: no transponder.
const NO_TAG: &str = "06 00 B0 01 5C 63";
// Two tags with antenna numbers: ABCD on antennas 1 (RSSI 0x40) and 2 (0x38), ABCE on 3.
const TWO_TAGS_ANT: &str = "36 00 B0 00 02 \
    11 03 00 08 E0 04 01 50 12 34 AB CD 02 01 00 40 00 00 00 00 02 00 38 00 00 00 00 \
    11 03 00 08 E0 04 01 50 12 34 AB CE 01 03 00 20 00 00 00 00 \
    30 D6";

#[test]
fn crc_check_value_is_crc16_mcrf4xx() {
    // CRC-16/MCRF4XX: poly 0x1021 reflected (0x8408), init 0xFFFF, no xorout; check 0x6F91.
    assert_eq!(crc16(b"123456789"), 0x6F91);
    assert_eq!(crc16(&[]), 0xFFFF);
}

#[test]
fn crc_over_a_whole_frame_is_zero() {
    // With the CRC appended LSB first, the reflected CRC of the whole frame is 0.
    for f in [ONE_TAG, NO_TAG, TWO_TAGS_ANT] {
        assert_eq!(crc16(&hex(f)), 0, "{f}");
    }
}

#[test]
fn crc_matches_an_independent_advanced_frame_vector() {
    // An advanced inventory request `02 00 09 FF B0 01 00` with CRC 0x4318, from a third-party
    // OBID implementation's tests.
    assert_eq!(crc16(&hex("02 00 09 FF B0 01 00")), 0x4318);
    let frame = encode_request_as(FrameKind::Advanced, 0xFF, 0xB0, &[0x01, 0x00]).unwrap();
    assert_eq!(frame, hex("02 00 09 FF B0 01 00 18 43"));
}

#[test]
fn inventory_requests_encode() {
    // [0xB0][0x01] MODE 0x00, broadcast address: LEN 7.
    assert_eq!(inventory_request(0xFF, 0), hex("07 FF B0 01 00 1C 56"));
    // MODE bit 4 (ANT) and ANT_SEL for antennas 1 and 2.
    assert_eq!(
        inventory_request(0xFF, 0b11),
        hex("08 FF B0 01 10 03 38 40")
    );
    let more = InventoryRequest {
        com_adr: 0x00,
        antennas: 0,
        more: true,
        kind: FrameKind::Standard,
    };
    assert_eq!(more.data(), vec![0x01, 0x80]);
    let frame = more.encode();
    assert_eq!(frame.len(), 7);
    assert_eq!(&frame[..5], &[0x07, 0x00, 0xB0, 0x01, 0x80]);
    assert_eq!(crc16(&frame), 0);
}

#[test]
fn long_requests_switch_to_the_advanced_frame() {
    let short = encode_request(0x01, 0x80, &[0x03]).unwrap();
    assert_eq!(short[0], 6);
    let long = encode_request(0x01, 0xB0, &[0xAA; 300]).unwrap();
    assert_eq!(long[0], 0x02);
    assert_eq!(u16::from_be_bytes([long[1], long[2]]) as usize, long.len());
    assert_eq!(long.len(), 3 + 2 + 300 + 2);
    assert_eq!(crc16(&long), 0);
    assert!(matches!(
        encode_request_as(FrameKind::Standard, 0, 0xB0, &[0; 300]),
        Err(FeigError::FrameTooLong { .. })
    ));
    assert!(matches!(
        encode_request(0, 0xB0, &[0; 70_000]),
        Err(FeigError::FrameTooLong { .. })
    ));
}

#[test]
fn decodes_the_documented_responses() {
    let items = decode_chunks(ResponseCodec::new(), &[&hex(ONE_TAG)]);
    assert_eq!(
        items,
        vec![Decoded::Frame {
            frame: Response {
                com_adr: 0,
                control: 0xB0,
                status: Status::Ok,
                data: hex("01 03 00 E0 04 01 50 12 34 AB CD"),
                kind: FrameKind::Standard,
            },
            wire_len: 17,
        }]
    );
    let items = decode_chunks(ResponseCodec::new(), &[&hex(NO_TAG)]);
    let [Decoded::Frame { frame, wire_len: 6 }] = items.as_slice() else {
        panic!("{items:?}");
    };
    assert_eq!(frame.status, Status::NoTransponder);
    assert!(frame.data.is_empty());
}

#[test]
fn parses_inventories() {
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&hex(ONE_TAG)]))[0];
    let inv = parse_inventory(resp, AntennaInfo::NotRequested).unwrap();
    assert!(inv.is_complete());
    assert_eq!(inv.tags.len(), 1);
    assert_eq!(inv.tags[0].uid, uid("E00401501234ABCD"));
    assert_eq!(inv.tags[0].tr_type, 0x03);
    assert!(inv.tags[0].antennas.is_empty());
    assert_eq!(
        inv.per_antenna(1),
        [(1, vec![uid("E00401501234ABCD")])].into_iter().collect()
    );

    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&hex(TWO_TAGS_ANT)]))[0];
    let inv = parse_inventory(resp, AntennaInfo::Requested).unwrap();
    assert_eq!(inv.tags.len(), 2);
    assert_eq!(inv.tags[0].antennas.len(), 2);
    assert_eq!(inv.tags[0].antennas[1].antenna, 2);
    assert_eq!(inv.tags[0].antennas[1].rssi, 0x38);
    let per = inv.per_antenna(1);
    assert_eq!(per[&1], vec![uid("E00401501234ABCD")]);
    assert_eq!(per[&2], vec![uid("E00401501234ABCD")]);
    assert_eq!(per[&3], vec![uid("E00401501234ABCE")]);

    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&hex(NO_TAG)]))[0];
    let inv = parse_inventory(resp, AntennaInfo::Requested).unwrap();
    assert!(inv.tags.is_empty() && inv.is_complete());
}

#[test]
fn inventory_errors_are_never_an_empty_field() {
    let mut resp = Response {
        com_adr: 0,
        control: 0xB0,
        status: Status::CommandNotAvailable,
        data: Vec::new(),
        kind: FrameKind::Standard,
    };
    assert_eq!(
        parse_inventory(&resp, AntennaInfo::Requested),
        Err(FeigError::ReaderStatus(Status::CommandNotAvailable))
    );
    resp.status = Status::Ok;
    resp.data = hex("02 03 00 E0 04 01 50 12 34 AB CD");
    assert!(matches!(
        parse_inventory(&resp, AntennaInfo::NotRequested),
        Err(FeigError::Truncated { .. })
    ));
    resp.data = hex("01 03 00 E0 04 01 50 12 34 AB CD 00");
    assert_eq!(
        parse_inventory(&resp, AntennaInfo::NotRequested),
        Err(FeigError::TrailingBytes { count: 1 })
    );
    resp.data = hex("01 42 00");
    assert_eq!(
        parse_inventory(&resp, AntennaInfo::NotRequested),
        Err(FeigError::UnsupportedTransponder { tr_type: 0x42 })
    );
    resp.control = 0x65;
    assert_eq!(
        parse_inventory(&resp, AntennaInfo::NotRequested),
        Err(FeigError::NotIsoHost { control: 0x65 })
    );
    // An ISO 14443-A card in the field is skipped, not misread.
    resp.control = 0xB0;
    resp.data = hex("02 04 00 00 01 02 03 04 05 06 07 03 00 E0 04 01 50 12 34 AB CD");
    let inv = parse_inventory(&resp, AntennaInfo::NotRequested).unwrap();
    assert_eq!(inv.other_transponders, 1);
    assert_eq!(inv.tags.len(), 1);
}

#[test]
fn status_descriptions() {
    assert_eq!(Status::from_byte(0x94), Status::MoreData);
    assert_eq!(Status::from_byte(0x42), Status::Other(0x42));
    assert_eq!(
        Status::RfCommunicationError.to_string(),
        "status 0x83 (RF communication error (antenna or interference))"
    );
    assert!(Status::MoreData.carries_data());
    assert!(!Status::LengthError.carries_data());
}

#[test]
fn bad_crc_is_garbage_then_the_next_frame_decodes() {
    let mut bad = hex(ONE_TAG);
    *bad.last_mut().unwrap() ^= 0xFF;
    let good = hex(TWO_TAGS_ANT);
    let input = [bad.clone(), good.clone()].concat();
    let items = decode_chunks(ResponseCodec::new(), &[&input]);
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0],
        Decoded::Garbage {
            skipped: bad.len(),
            reason: Garbage::BadChecksum
        }
    );
    assert!(matches!(&items[1], Decoded::Frame { wire_len, .. } if *wire_len == good.len()));
}

#[test]
fn bad_crc_then_the_good_frame_in_a_later_read() {
    // The corrupted frame's CONTROL byte (0xB0 = 176) looks like a long length; the decoder
    // must not wait for 176 bytes once it knows it is out of sync.
    let mut bad = hex(ONE_TAG);
    bad[8] ^= 0x01;
    let good = hex(NO_TAG);
    let items = decode_chunks(ResponseCodec::new(), &[&bad, &good]);
    let skipped: usize = items
        .iter()
        .map(|d| match d {
            Decoded::Garbage { skipped, .. } => *skipped,
            Decoded::Frame { .. } => 0,
        })
        .sum();
    assert_eq!(skipped, bad.len(), "{items:?}");
    assert_eq!(frames(&items).len(), 1);
    assert_eq!(frames(&items)[0].status, Status::NoTransponder);
    assert!(matches!(
        items.first(),
        Some(Decoded::Garbage {
            reason: Garbage::BadChecksum,
            ..
        })
    ));
}

#[test]
fn noise_between_frames_is_skipped_and_counted() {
    let noise = hex("00 01 FF 00 03");
    let input = [hex(NO_TAG), noise.clone(), hex(ONE_TAG)].concat();
    let items = decode_chunks(ResponseCodec::new(), &[&input]);
    assert_eq!(frames(&items).len(), 2);
    let skipped: usize = items
        .iter()
        .map(|d| match d {
            Decoded::Garbage { skipped, .. } => *skipped,
            Decoded::Frame { .. } => 0,
        })
        .sum();
    assert_eq!(skipped, noise.len());
}

#[test]
fn frames_split_across_reads_decode_whole() {
    let input = [hex(ONE_TAG), hex(TWO_TAGS_ANT), hex(NO_TAG)].concat();
    let whole = decode_chunks(ResponseCodec::new(), &[&input]);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(
            decode_chunks(ResponseCodec::new(), &[a, b]),
            whole,
            "split at {at}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_chunks(ResponseCodec::new(), &bytes), whole);
}

#[test]
fn a_partial_frame_at_eof_is_garbage_never_a_frame() {
    let f = hex(ONE_TAG);
    for cut in 1..f.len() {
        let items = decode_chunks(ResponseCodec::new(), &[&f[..cut]]);
        assert_eq!(
            items,
            vec![Decoded::Garbage {
                skipped: cut,
                reason: Garbage::Malformed
            }],
            "cut at {cut}"
        );
    }
}

#[test]
fn advanced_frames_decode_and_lengths_are_bounded() {
    let data = vec![0x5A; 400];
    let frame = encode_response(FrameKind::Standard, 7, 0xB0, Status::Ok, &data).unwrap();
    assert_eq!(frame[0], 0x02, "over 255 bytes goes advanced");
    assert_eq!(frame.len(), 3 + 3 + 400 + 2);
    let items = decode_chunks(ResponseCodec::new(), &[&frame]);
    let got = frames(&items);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, FrameKind::Advanced);
    assert_eq!(got[0].com_adr, 7);
    assert_eq!(got[0].data, data);

    // An advanced length above the bound is skipped at once, not waited for.
    let mut huge = vec![0x02, 0xF0, 0x00];
    huge.extend(hex(NO_TAG));
    let items = decode_chunks(ResponseCodec::new(), &[&huge]);
    assert_eq!(
        items[0],
        Decoded::Garbage {
            skipped: 3,
            reason: Garbage::TooLong
        }
    );
    assert_eq!(frames(&items).len(), 1);
    let items = decode_chunks(ResponseCodec::with_max_frame_len(65_535), &[&huge]);
    assert!(
        frames(&items).is_empty(),
        "with a big bound it is a cut frame"
    );
}

#[test]
fn request_codec_reads_what_the_host_sends() {
    let input = [inventory_request(0xFF, 0), inventory_request(0x03, 0x0F)].concat();
    let items = decode_chunks(RequestCodec::new(), &[&input]);
    let reqs = frames(&items);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].data, vec![0x01, 0x00]);
    assert_eq!(reqs[1].com_adr, 0x03);
    assert_eq!(reqs[1].data, vec![0x01, 0x10, 0x0F]);
}

#[test]
fn simulated_reader_answers_inventories() {
    let mut reader = SimulatedReader::new(0x00);
    assert_eq!(reader.respond(&inventory_request(0xFF, 0)), hex(NO_TAG));
    reader.place(1, uid("E00401501234ABCD"));
    // Byte for byte the documented one-tag answer.
    assert_eq!(reader.respond(&inventory_request(0xFF, 0)), hex(ONE_TAG));
    assert_eq!(reader.respond(&inventory_request(0x00, 0)), hex(ONE_TAG));
    assert!(
        reader.respond(&inventory_request(0x05, 0)).is_empty(),
        "other address"
    );
    let mut bad = inventory_request(0xFF, 0);
    bad[5] ^= 1;
    assert!(reader.respond(&bad).is_empty(), "bad CRC: silence");

    reader.place(2, uid("E00401501234ABCD"));
    reader.place(3, uid("E00401501234ABCE"));
    let answer = reader.respond(&inventory_request(0xFF, 0b111));
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
    let inv = parse_inventory(resp, AntennaInfo::Requested).unwrap();
    let per = inv.per_antenna(0);
    assert_eq!(per[&1], vec![uid("E00401501234ABCD")]);
    assert_eq!(per[&2], vec![uid("E00401501234ABCD")]);
    assert_eq!(per[&3], vec![uid("E00401501234ABCE")]);
    // Only antenna 3 selected.
    let answer = reader.respond(&inventory_request(0xFF, 0b100));
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
    let per = parse_inventory(resp, AntennaInfo::Requested)
        .unwrap()
        .per_antenna(0);
    assert_eq!(per.keys().copied().collect::<Vec<_>>(), vec![3]);

    reader.inject_status(Status::RfCommunicationError);
    let answer = reader.respond(&inventory_request(0xFF, 0b1));
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
    assert_eq!(resp.status, Status::RfCommunicationError);
    // Not an inventory command.
    let answer = reader.respond(&encode_request(0xFF, 0x65, &[]).unwrap());
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
    assert_eq!(resp.status, Status::UnknownCommand);
}

#[test]
fn simulated_reader_pages_with_more_data() {
    let mut reader = SimulatedReader::new(0x00).with_max_data_sets(2);
    let uids: Vec<TagUid> = (0..5u8)
        .map(|i| TagUid([0xE0, 0x04, 0, 0, 0, 0, 0, i]))
        .collect();
    reader.set_tags(1, uids.clone());
    let mut got = Vec::new();
    let mut more = false;
    for _ in 0..3 {
        let req = InventoryRequest {
            com_adr: 0xFF,
            antennas: 0,
            more,
            kind: FrameKind::Standard,
        };
        let answer = reader.respond(&req.encode());
        let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
        let inv = parse_inventory(resp, AntennaInfo::NotRequested).unwrap();
        got.extend(inv.tags.iter().map(|t| t.uid));
        more = resp.status == Status::MoreData;
    }
    assert!(!more);
    assert_eq!(got, uids);
}

#[test]
fn many_tags_arrive_in_an_advanced_frame() {
    let mut reader = SimulatedReader::new(0x00);
    reader.set_tags(1, (0..60u8).map(|i| TagUid([0xE0, 0x04, 0, 0, 0, 0, 1, i])));
    let answer = reader.respond(&inventory_request(0xFF, 0));
    assert_eq!(answer[0], 0x02);
    let resp = &frames(&decode_chunks(ResponseCodec::new(), &[&answer]))[0];
    let inv = parse_inventory(resp, AntennaInfo::NotRequested).unwrap();
    assert_eq!(inv.tags.len(), 60);
}

fn arb_response() -> impl Strategy<Value = Response> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(com_adr, control, status, data)| {
            let kind = if data.len() + 6 > 255 {
                FrameKind::Advanced
            } else {
                FrameKind::Standard
            };
            Response {
                com_adr,
                control,
                status: Status::from_byte(status),
                data,
                kind,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&input[at..c]);
            at = c;
        }
        chunks.push(&input[at..]);
        let items = decode_chunks(ResponseCodec::new(), &chunks);
        let consumed: usize = items.iter().map(|d| match d {
            Decoded::Frame { wire_len, .. } => *wire_len,
            Decoded::Garbage { skipped, .. } => *skipped,
        }).sum();
        prop_assert_eq!(consumed, input.len(), "every byte is a frame or counted garbage");
        let _ = decode_chunks(RequestCodec::new(), &chunks);
    }

    #[test]
    fn valid_frames_decode_identically_under_any_split(
        responses in prop::collection::vec(arb_response(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let input: Vec<u8> = responses
            .iter()
            .flat_map(|r| encode_response(r.kind, r.com_adr, r.control, r.status, &r.data).unwrap())
            .collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&input[at..c]);
            at = c;
        }
        chunks.push(&input[at..]);
        let split = decode_chunks(ResponseCodec::new(), &chunks);
        let whole = decode_chunks(ResponseCodec::new(), &[&input]);
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(frames(&split), responses);
    }

    #[test]
    fn simulated_answers_parse_back(
        tags in prop::collection::btree_map(1u8..=4, prop::collection::btree_set(any::<[u8; 8]>(), 0..8), 0..4),
    ) {
        let mut reader = SimulatedReader::new(1);
        for (antenna, uids) in &tags {
            reader.set_tags(*antenna, uids.iter().map(|u| TagUid(*u)));
        }
        let answer = reader.respond(&inventory_request(1, 0x0F));
        let resp = frames(&decode_chunks(ResponseCodec::new(), &[&answer]));
        prop_assert_eq!(resp.len(), 1);
        let per = parse_inventory(&resp[0], AntennaInfo::Requested).unwrap().per_antenna(0);
        for (antenna, uids) in &tags {
            let want: Vec<TagUid> = uids.iter().map(|u| TagUid(*u)).collect();
            prop_assert_eq!(per.get(antenna).cloned().unwrap_or_default(), want);
        }
    }
}
