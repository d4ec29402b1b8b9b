//! Simulator scenarios: scripted steps from a file or typed interactively, and faults injected
//! into the built-in rounds — garbage bytes, frames split across writes, bad checksums and
//! disconnects — so a technician (or a test) can replay exactly what broke a table.
//!
//! # Script files
//!
//! One step per line: a delay since the previous step, a verb, its arguments. `#` starts a
//! comment. Delays are written like config durations (`500ms`, `1s`, `0`).
//!
//! ```text
//! # a roulette spin with a garbled line and an unplug in the middle
//! 0      wheel 1 042 17          # status frame: state, spin count, number [flags speed dir]
//! 1s     wheel 2 042 17
//! 200ms  garbage 12              # 12 random bytes
//! 1s     split 4 *X;3;042;17;0;027;1   # a frame written in 4-byte pieces
//! 500ms  disconnect 2s           # the cable is pulled for 2 s (the pseudo-terminal closes)
//! 0      wheel 5 042 23
//! 1s     card KH                 # shoe: one card line
//! 1s     tag E00401501234ABCD    # rfid (ASCII mode): one UID line
//! 1s     press                   # pedal: one press
//! 0      frame *P 1              # any text line (CR LF added)
//! 0      hex 2A 58 0D 0A         # raw bytes
//! ```
//!
//! Interactive mode (`croupier simulate wheel --interactive`) reads the same lines from the
//! terminal; the delay may be left out there.

use std::time::Duration;

use crate::cards::card_line;
use crate::model::{Card, TagUid};
use crate::wheel::{Direction, WarningFlags, WheelEvent, WheelState};

/// One thing the simulator does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes in one go.
    Write(Vec<u8>),
    /// Write these bytes in pieces of `piece` bytes, `gap` apart: a frame split across reads.
    Split {
        bytes: Vec<u8>,
        piece: usize,
        gap: Duration,
    },
    /// Close the pseudo-terminal (the reader sees the device vanish), wait, then open a new one
    /// at the same link.
    Disconnect(Duration),
    /// Corrupt the checksum of the next response (protocols with checksums: FEIG).
    BadChecksum,
}

/// An action after a delay (since the previous action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub delay: Duration,
    pub action: Action,
}

/// A line of a script that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole script, reporting every bad line.
pub fn parse_script(text: &str, seed: u64) -> Result<Vec<Timed>, Vec<ScriptError>> {
    let mut rng = XorShift::new(seed);
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match parse_line(raw, true, &mut rng) {
            Ok(Some(step)) => steps.push(step),
            Ok(None) => {}
            Err(message) => errors.push(ScriptError {
                line: i + 1,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(errors)
    }
}

/// Parses one line typed interactively: the delay is optional there.
pub fn parse_interactive(line: &str, rng_seed: u64) -> Result<Option<Timed>, String> {
    parse_line(line, false, &mut XorShift::new(rng_seed))
}

fn parse_line(
    raw: &str,
    delay_required: bool,
    rng: &mut XorShift,
) -> Result<Option<Timed>, String> {
    // `#` always starts a comment, so frame text cannot hold one (use `hex` for that).
    let line = raw.split('#').next().unwrap_or_default().trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut words = line.split_whitespace().peekable();
    let first = words.peek().copied().unwrap_or_default();
    let delay = match parse_delay(first) {
        Some(d) => {
            words.next();
            d
        }
        None if delay_required => {
            return Err(format!(
                "`{first}` is not a delay; start each step with one, like `500ms` or `0`"
            ))
        }
        None => Duration::ZERO,
    };
    let verb = words
        .next()
        .ok_or_else(|| "a delay with no step after it".to_owned())?;
    let args: Vec<&str> = words.collect();
    let rest = || {
        // The text after the verb, as typed (spacing inside kept).
        let after_verb = line
            .find(verb)
            .map(|p| p + verb.len())
            .unwrap_or(line.len());
        line.get(after_verb..).unwrap_or_default().trim().to_owned()
    };
    let action = match verb {
        "frame" => {
            let text = rest();
            if text.is_empty() {
                return Err("`frame` needs the text to send".into());
            }
            Action::Write(with_crlf(text.as_bytes()))
        }
        "hex" => Action::Write(parse_hex(&args)?),
        "garbage" => {
            let n = one_number(&args, "garbage", "how many bytes, like `garbage 12`")?;
            Action::Write(garbage(rng, n))
        }
        "split" => {
            let piece = args
                .first()
                .and_then(|a| a.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| "`split` needs a piece size then the frame, like `split 4 *X;5;042;17;0;027;1`".to_owned())?;
            let text = rest();
            let text = text
                .split_once(char::is_whitespace)
                .map(|(_, t)| t.trim())
                .unwrap_or_default();
            if text.is_empty() {
                return Err("`split` needs the frame text after the piece size".into());
            }
            Action::Split {
                bytes: with_crlf(text.as_bytes()),
                piece,
                gap: Duration::from_millis(5),
            }
        }
        "disconnect" => {
            let pause = args
                .first()
                .and_then(|a| parse_delay(a))
                .ok_or_else(|| "`disconnect` needs how long the device stays away, like `disconnect 2s`".to_owned())?;
            Action::Disconnect(pause)
        }
        "badcrc" => Action::BadChecksum,
        "wheel" => Action::Write(wheel_status(&args)?),
        "number" => {
            let n = one_number(&args, "number", "the winning number, like `number 17`")?;
            if n > 37 {
                return Err(format!("{n} is not a wheel number (0-36, 37 for 00)"));
            }
            Action::Write(WheelEvent::WinningNumber { number: n as u8 }.encode())
        }
        "card" => {
            let card: Card = args
                .first()
                .ok_or_else(|| "`card` needs a card, like `card KH`".to_owned())?
                .parse()?;
            Action::Write(card_line(card))
        }
        "tag" => {
            let uid: TagUid = args
                .first()
                .ok_or_else(|| "`tag` needs a UID, like `tag E00401501234ABCD`".to_owned())?
                .parse()?;
            Action::Write(with_crlf(uid.to_string().as_bytes()))
        }
        "press" => Action::Write(crate::simulator::PEDAL_PRESS.to_vec()),
        other => {
            return Err(format!(
                "unknown step `{other}`; use frame, hex, garbage, split, disconnect, badcrc, wheel, number, card, tag or press"
            ))
        }
    };
    Ok(Some(Timed { delay, action }))
}

fn parse_delay(word: &str) -> Option<Duration> {
    if word == "0" {
        return Some(Duration::ZERO);
    }
    let (number, scale) = if let Some(n) = word.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = word.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = word.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    if !(value.is_finite() && value >= 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(value * scale).ok()
}

fn one_number(args: &[&str], verb: &str, hint: &str) -> Result<usize, String> {
    args.first()
        .and_then(|a| a.parse::<usize>().ok())
        .ok_or_else(|| format!("`{verb}` needs {hint}"))
}

fn parse_hex(args: &[&str]) -> Result<Vec<u8>, String> {
    if args.is_empty() {
        return Err("`hex` needs bytes, like `hex 2A 58 0D 0A`".into());
    }
    args.iter()
        .map(|a| u8::from_str_radix(a, 16).map_err(|_| format!("`{a}` is not a hex byte")))
        .collect()
}

fn wheel_status(args: &[&str]) -> Result<Vec<u8>, String> {
    let usage = "`wheel` needs state, spin count and number, then optionally flags, speed and direction: `wheel 5 042 17 0 027 1`";
    let field = |i: usize, default: Option<u16>| -> Result<u16, String> {
        match args.get(i) {
            Some(a) => a
                .parse::<u16>()
                .map_err(|_| format!("`{a}` is not a number; {usage}")),
            None => default.ok_or_else(|| usage.to_owned()),
        }
    };
    let state = WheelState::from_code(u8::try_from(field(0, None)?).unwrap_or(0))
        .ok_or_else(|| "the wheel state is 1 to 6".to_owned())?;
    let spin_count = field(1, None)?;
    let number = u8::try_from(field(2, None)?).unwrap_or(u8::MAX);
    if number > 37 || spin_count > 999 {
        return Err("the number is 0-37 and the spin count 0-999".into());
    }
    let flags = match args.get(3) {
        Some(a) => u8::from_str_radix(a, 16)
            .ok()
            .filter(|f| *f < 16)
            .ok_or_else(|| format!("`{a}` is not a warning flag digit (0-F)"))?,
        None => 0,
    };
    let rotor_speed = field(4, Some(27))?;
    let direction = Direction::from_code(u8::try_from(field(5, Some(0))?).unwrap_or(9))
        .ok_or_else(|| "the direction is 0 (clockwise) or 1".to_owned())?;
    Ok(WheelEvent::Status {
        state,
        spin_count,
        number,
        warnings: WarningFlags(flags),
        rotor_speed,
        direction,
    }
    .encode())
}

fn with_crlf(text: &[u8]) -> Vec<u8> {
    let mut v = text.to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

fn garbage(rng: &mut XorShift, n: usize) -> Vec<u8> {
    (0..n).map(|_| (rng.next_u64() >> 24) as u8).collect()
}

/// A kind of fault injected into the built-in rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Garbage,
    Split,
    BadChecksum,
    Disconnect,
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "garbage" => Ok(Fault::Garbage),
            "split" => Ok(Fault::Split),
            "badcrc" => Ok(Fault::BadChecksum),
            "disconnect" => Ok(Fault::Disconnect),
            _ => Err(format!(
                "`{s}` is not a fault; use garbage, split, badcrc or disconnect"
            )),
        }
    }
}

/// Which faults to inject into the built-in rounds, and how often: every `every`-th step gets
/// the next fault of the list, in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
    pub every: u32,
    /// How long a disconnect lasts (real time before pacing).
    pub disconnect_for: Duration,
}

/// Turns plain steps into timed actions with faults injected as the plan says.
#[derive(Debug, Clone)]
pub struct Injector {
    plan: FaultPlan,
    rng: XorShift,
    steps: u64,
    next_fault: usize,
}

impl Injector {
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        Self {
            plan,
            rng: XorShift::new(seed ^ 0xFA17),
            steps: 0,
            next_fault: 0,
        }
    }

    /// The actions for one step of `bytes` after `delay`.
    pub fn step(&mut self, delay: Duration, bytes: Vec<u8>) -> Vec<Timed> {
        self.steps += 1;
        let due = self.plan.every > 0
            && !self.plan.faults.is_empty()
            && self.steps % u64::from(self.plan.every) == 0;
        if !due {
            return vec![Timed {
                delay,
                action: Action::Write(bytes),
            }];
        }
        let fault = self.plan.faults[self.next_fault % self.plan.faults.len()];
        self.next_fault += 1;
        match fault {
            Fault::Garbage => {
                let n = 1 + (self.rng.next_u64() % 24) as usize;
                vec![
                    Timed {
                        delay,
                        action: Action::Write(garbage(&mut self.rng, n)),
                    },
                    Timed {
                        delay: Duration::ZERO,
                        action: Action::Write(bytes),
                    },
                ]
            }
            Fault::Split => {
                let piece = 1 + (self.rng.next_u64() % 4) as usize;
                vec![Timed {
                    delay,
                    action: Action::Split {
                        bytes,
                        piece,
                        gap: Duration::from_millis(5),
                    },
                }]
            }
            Fault::BadChecksum => vec![
                Timed {
                    delay,
                    action: Action::BadChecksum,
                },
                Timed {
                    delay: Duration::ZERO,
                    action: Action::Write(bytes),
                },
            ],
            Fault::Disconnect => {
                // Pull the cable in the middle of the frame: the first half goes out, the rest
                // never does. A reader must not turn the half into a frame.
                let half = bytes.len() / 2;
                vec![
                    Timed {
                        delay,
                        action: Action::Write(bytes.get(..half).unwrap_or_default().to_vec()),
                    },
                    Timed {
                        delay: Duration::from_millis(2),
                        action: Action::Disconnect(self.plan.disconnect_for),
                    },
                ]
            }
        }
    }
}

/// A tiny deterministic generator (xorshift64*): repeatable faults for a seed.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_verb() {
        let script = "\
# comment line
0      wheel 1 042 17          # status
1s     wheel 5 042 23 8 030 1
200ms  garbage 12
1s     split 4 *X;3;042;17;0;027;1
500ms  disconnect 2s
0      number 7
1s     card KH
1s     tag E00401501234ABCD
1s     press
0      frame *P 1
0      hex 2A 58 0D 0A
0      badcrc
";
        let steps = parse_script(script, 1).expect("valid script");
        assert_eq!(steps.len(), 12);
        assert_eq!(
            steps[0].action,
            Action::Write(b"*X;1;042;17;0;027;0\r\n".to_vec())
        );
        assert_eq!(steps[1].delay, Duration::from_secs(1));
        assert_eq!(
            steps[1].action,
            Action::Write(b"*X;5;042;23;8;030;1\r\n".to_vec())
        );
        assert!(matches!(&steps[2].action, Action::Write(b) if b.len() == 12));
        assert_eq!(
            steps[3].action,
            Action::Split {
                bytes: b"*X;3;042;17;0;027;1\r\n".to_vec(),
                piece: 4,
                gap: Duration::from_millis(5)
            }
        );
        assert_eq!(steps[4].action, Action::Disconnect(Duration::from_secs(2)));
        assert_eq!(steps[5].action, Action::Write(b"07\r\n".to_vec()));
        assert_eq!(steps[6].action, Action::Write(b"KH\r\n".to_vec()));
        assert_eq!(
            steps[7].action,
            Action::Write(b"E00401501234ABCD\r\n".to_vec())
        );
        assert_eq!(steps[8].action, Action::Write(b"P".to_vec()));
        assert_eq!(steps[9].action, Action::Write(b"*P 1\r\n".to_vec()));
        assert_eq!(steps[10].action, Action::Write(b"*X\r\n".to_vec()));
        assert_eq!(steps[11].action, Action::BadChecksum);
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let errors = parse_script(
            "0 card KH\nsoon card KH\n0 card ZZ\n0 fly\n0 wheel 9 1 1\n",
            1,
        )
        .expect_err("bad script");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(errors[0].message.contains("not a delay"));
    }

    #[test]
    fn interactive_lines_need_no_delay() {
        let step = parse_interactive("card QS", 1)
            .expect("ok")
            .expect("a step");
        assert_eq!(step.delay, Duration::ZERO);
        assert_eq!(step.action, Action::Write(b"QS\r\n".to_vec()));
        assert_eq!(parse_interactive("   # nothing", 1), Ok(None));
    }

    #[test]
    fn injector_puts_faults_every_nth_step_in_turn() {
        let mut inj = Injector::new(
            FaultPlan {
                faults: vec![Fault::Garbage, Fault::Disconnect],
                every: 2,
                disconnect_for: Duration::from_secs(1),
            },
            7,
        );
        let frame = b"KH\r\n".to_vec();
        let a = inj.step(Duration::ZERO, frame.clone());
        assert_eq!(a.len(), 1);
        let b = inj.step(Duration::ZERO, frame.clone());
        assert_eq!(b.len(), 2, "garbage then the frame");
        assert_eq!(b[1].action, Action::Write(frame.clone()));
        inj.step(Duration::ZERO, frame.clone());
        let d = inj.step(Duration::ZERO, frame);
        assert_eq!(d[0].action, Action::Write(b"KH".to_vec()), "half a frame");
        assert_eq!(d[1].action, Action::Disconnect(Duration::from_secs(1)));
    }
}
