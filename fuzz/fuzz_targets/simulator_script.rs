#![no_main]
//! Simulator script files as a technician writes them: any text parses or is refused, never
//! panics.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = croupier_drivers::scenario::parse_script(text, 1);
        for line in text.lines() {
            let _ = croupier_drivers::scenario::parse_interactive(line, 1);
        }
    }
});
