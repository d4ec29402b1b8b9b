//! The dealer's foot pedal: one sans-IO state machine fed by timestamped edges (from GPIO,
//! evdev or a serial line) gives debounce, press, release, long press and double press.
//!
//! (Being written: the state machine lands here. The event type below is the contract.)

/// What the dealer did with the pedal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PedalEvent {
    Press,
    Release,
    LongPress,
    DoublePress,
}
