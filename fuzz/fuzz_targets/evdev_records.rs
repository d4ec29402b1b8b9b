#![no_main]
//! Linux input_event records from HID readers and pedals, into key lines and pedal edges.

use croupier_drivers::evdev::{
    parse_records, KeyLineAssembler, KeyLineConfig, KeyPedal, RecordLayout,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for layout in [RecordLayout::Long64, RecordLayout::Long32] {
        let events = parse_records(layout, data);
        let mut lines = KeyLineAssembler::new(KeyLineConfig::default());
        let mut pedal = KeyPedal::new(vec![48, 109]);
        for event in &events {
            if let Some(croupier_drivers::evdev::KeyLine::Line(line)) = lines.push(event) {
                assert!(line.text.chars().count() <= KeyLineConfig::default().max_len);
            }
            let _ = pedal.push(event);
        }
    }
});
