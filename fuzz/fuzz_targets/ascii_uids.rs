#![no_main]
//! Simple RFID readers' UID lines: any bytes, any split.

#[path = "common.rs"]
mod common;

use croupier_drivers::rfid::{AsciiUidCodec, UidOrder};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(AsciiUidCodec::new(UidOrder::MsbFirst), data);
    common::check(AsciiUidCodec::new(UidOrder::LsbFirst), data);
});
