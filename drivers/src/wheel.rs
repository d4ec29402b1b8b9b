//! Roulette wheel controllers: the Cammegh SlingShot-style ASCII protocol (9600 8N1).
//!
//! (Being written: the codec lands here. The event types below are the contract.)

/// The wheel's game state, as the controller reports it in a status frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WheelState {
    /// 1: game start.
    GameStart,
    /// 2: place bets, rotor turning.
    PlaceBets,
    /// 3: ball in rim.
    BallInRim,
    /// 4: no more bets.
    NoMoreBets,
    /// 5: winning number.
    WinningNumber,
    /// 6: idle, table closed.
    Idle,
}

/// The controller's warning flags (one hex digit): bit 1 ball removed, 2 ball launched in the
/// rotor's direction, 4 in-rim sensor / motor / encoder fault, 8 void game / failed launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WarningFlags(pub u8);

/// Which way the rotor turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Clockwise,
    CounterClockwise,
}

/// What the wheel said, faithfully; mapping states to table phases is the engine's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelEvent {
    /// A `*X` status frame.
    Status {
        state: WheelState,
        spin_count: u16,
        /// The number field as sent (0–36; on a double-zero wheel the controller's code for 00).
        number: u8,
        warnings: WarningFlags,
        rotor_speed: u16,
        direction: Direction,
    },
    /// A bare winning-number frame.
    WinningNumber { number: u8 },
    /// A `*P` power frame, with its text.
    Power { text: String },
    /// A `*F` error frame, with its text.
    Error { text: String },
    /// A `*W` warning frame, with its text.
    Warning { text: String },
}
