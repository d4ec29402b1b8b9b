#![no_main]
//! The roulette wheel's ASCII protocol: any bytes, any split into reads.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(croupier_drivers::wheel::WheelCodec::default(), data);
});
