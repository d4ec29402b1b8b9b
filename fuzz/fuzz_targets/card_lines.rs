#![no_main]
//! Card readers' lines (default format, and a regex format): any bytes, any split.

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use croupier_drivers::cards::CardLineCodec;

/// Built once: compiling the regex per input would make the fuzzer crawl.
fn codecs() -> &'static [CardLineCodec] {
    static CODECS: OnceLock<Vec<CardLineCodec>> = OnceLock::new();
    CODECS.get_or_init(|| {
        [
            CardLineCodec::from_config("default", None, None, Some("BURN")),
            CardLineCodec::from_config(
                "regex",
                Some("(?P<suit>[SHDC])-(?P<rank>10|[2-9AJQKT])"),
                None,
                None,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for codec in codecs() {
        common::check(codec.clone(), data);
    }
});
