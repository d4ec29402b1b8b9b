#![no_main]
//! FEIG ISO-Host frames both ways, and the inventory parser on whatever decodes.

#[path = "common.rs"]
mod common;

use croupier_drivers::feig::{parse_inventory, AntennaInfo, RequestCodec, ResponseCodec};
use tokio_util::codec::Decoder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(ResponseCodec::new(), data);
    common::check(RequestCodec::new(), data);
    let mut codec = ResponseCodec::new();
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(item)) = codec.decode(&mut buf) {
        if let croupier_drivers::model::Decoded::Frame { frame, .. } = item {
            let _ = parse_inventory(&frame, AntennaInfo::NotRequested);
            let _ = parse_inventory(&frame, AntennaInfo::Requested);
        }
    }
});
