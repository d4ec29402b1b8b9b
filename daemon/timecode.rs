//! SMPTE 12M timecode: the frame labels that tie every Croupier event to a
//! picture.
//!
//! # What timecode is for in Croupier
//!
//! Every frame the studio cameras produce carries a label `HH:MM:SS:FF`:
//! hours, minutes, seconds and the number of the frame within that second.
//! The vision mixer, the recorders and the replay station all show the same
//! labels, generated from the time of day.
//!
//! Croupier stamps every event it emits (a card read by the shoe, a wheel
//! result, the dealer's "no more bets") with the timecode of the video at
//! that instant: the label the video pipeline gives a frame taken at that
//! clock time (see [GStreamer's model](#labels-from-the-clock-gstreamers-model)
//! below). A dispute such as "the ball had
//! already dropped when bets closed" is then settled by jumping the
//! recorder to that timecode and looking at the frame, instead of comparing
//! log timestamps from machines whose clocks may disagree.
//!
//! # Why drop-frame exists
//!
//! The rates inherited from NTSC are not whole numbers: "29.97" is exactly
//! 30000/1001 frames per second. A counter that hands out 30 labels per
//! second falls behind the wall clock by 3.6 seconds an hour, 86.4 seconds a
//! day. Drop-frame timecode keeps the labels close to the clock by skipping
//! *labels*, never pictures: at 29.97 the labels `;00` and `;01` are left out
//! at the start of every minute except minutes 00, 10, 20, 30, 40 and 50, so
//! `10:10:59;29` is followed by `10:11:00;02`. At 59.94 the four labels `;00`
//! to `;03` are left out. Drop-frame timecode is written with a `;` before
//! the frames, non-drop-frame with `:`.
//!
//! 23.976 (24000/1001) has no drop-frame form in SMPTE 12M: it counts 24
//! labels a second.
//!
//! # Labels and frame counts
//!
//! A *frame count* is the position of a label in the day: `00:00:00:00` is
//! frame 0 and each label is one more than the one before, skipped
//! drop-frame labels not counted. [`Timecode::from_frame_count`],
//! [`Timecode::frame_count`] and [`Timecode::add_frames`] are GStreamer's
//! `gst_video_time_code_add_frames` and
//! `gst_video_time_code_frames_since_daily_jam`: for example, at 29.97
//! `01:04:00;02` is frame 115086 in both.
//!
//! # Labels from the clock: GStreamer's model
//!
//! The video pipeline stamps frames with GStreamer's `timecodestamper`,
//! whose real-time-clock source labels a frame taken at clock time `t` with
//! `gst_video_time_code_init_from_date_time_full (t)` (GStreamer 1.22,
//! `gst-libs/gst/video/gstvideotimecode.c`). Croupier labels an instant the
//! same way ([`Timecode::from_time_of_day`], [`Timecode::at_utc`]), and
//! `tests/timecode_gstreamer.rs` checks it against GStreamer itself:
//!
//! 1. The time is taken in whole microseconds, as a `GDateTime` holds it.
//! 2. Hours, minutes and seconds are the clock's.
//! 3. The frames are the fraction of the second times the exact rate,
//!    rounded to the nearest frame, halves up:
//!    `(µs × 1000 × fps_num + d / 2) / d` with `d = fps_den × 10^9`.
//! 4. A fraction that rounds to a whole second (the last half frame of the
//!    second) gives the first label of the next second, so the day's last
//!    half frame is already `00:00:00:00`.
//! 5. At drop-frame rates, a fraction that lands on a skipped label (`;00`
//!    or `;01` at the start of a dropping minute at 29.97) gives the first
//!    label of that minute (`;02`).
//!
//! What follows from that:
//!
//! * The label's seconds are the clock's seconds, at every rate: labels
//!   never drift from the clock, neither at drop-frame rates nor at 23.976
//!   (a free-running 23.976 counter would be 86.4 s behind by midnight).
//! * At 24, 25, 30, 50 and 60 the label is the clock rounded to the nearest
//!   frame: at 25, `14:23:12:01` from 14:23:12.020 to 14:23:12.060.
//! * At 23.976, 29.97 and 59.94 the frame field counts periods of the exact
//!   rate within each clock second (1001/30000 s at 29.97), so the labels are
//!   not evenly spaced: the first label of a second is a little shorter than
//!   the others (32.4 ms instead of 33.4 ms at 29.97), and the first label of
//!   a dropping minute lasts about three frame periods at 29.97 (five at
//!   59.94), standing in for the skipped labels. A frame count is then the label's position in
//!   the day, not the number of frames shown since midnight.
//! * [`Timecode::clock_range_nanos`] gives the instants that get a label.
//!
//! GStreamer never refuses a time of day: every instant gets an existing
//! label, and every label of the day is given to some instants.
//!
//! ## The pipeline side
//!
//! `timecodestamper` gives its frames these labels only when configured to:
//! `source=rtc` (the default is an internal counter from 00:00:00:00),
//! `drop-frame=true` at 29.97 and 59.94 (the default is false), and
//! `rtc-max-drift=0`: otherwise it computes the label for the first frame
//! only, then adds one frame per frame, and computes it again only when its
//! count is more than `rtc-max-drift` (250 ms by default) away from the
//! clock's label. It reads the clock in the local time zone
//! (`g_date_time_new_now_local`), so it must also run with `TZ=UTC` for its
//! labels to be the UTC labels computed here.
//!
//! `timecodestamper` labels each frame from the clock time of that frame's
//! timestamp, and an event gets the label of its own instant: the label of
//! a frame taken at that instant. The frame on screen then was taken up to
//! a frame period earlier, so its label can be the one before the event's
//! (at 23.976, 29.97 and 59.94, rarely the one before that, as the first
//! label of a second is shorter than a frame period).
//!
//! # Conventions in this module
//!
//! * A *time of day* is nanoseconds since midnight UTC.
//! * Everything here is pure arithmetic, except [`run`] reading the system
//!   clock when the `croupier timecode` command is asked for "now".

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;
const MICROS_PER_SECOND: u64 = 1_000_000;
/// Nanoseconds in a day without a leap second.
pub const NANOS_PER_DAY: u64 = 86_400 * NANOS_PER_SECOND;

/// Spelled out once so that every error that mentions rates lists the same
/// values; a test checks that it names every entry of [`TimecodeRate::ALL`].
const VALID_RATES: &str = "23.976, 24, 25, 29.97 (drop-frame), 30, 50, 59.94 (drop-frame) or 60, \
                           or the exact fraction such as 30000/1001";

/// A timecode rate supported by the studio.
///
/// The fractional rates are exact fractions: 23.976 is 24000/1001, 29.97 is
/// 30000/1001 and 59.94 is 60000/1001.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimecodeRate {
    /// 24000/1001, non-drop-frame (SMPTE defines no drop-frame form).
    Fps23_976,
    /// 24/1.
    Fps24,
    /// 25/1, the European studio rate.
    Fps25,
    /// 30000/1001, drop-frame.
    Fps29_97Df,
    /// 30/1.
    Fps30,
    /// 50/1.
    Fps50,
    /// 60000/1001, drop-frame.
    Fps59_94Df,
    /// 60/1.
    Fps60,
}

impl TimecodeRate {
    /// Every supported rate, slowest first.
    pub const ALL: &'static [TimecodeRate] = &[
        TimecodeRate::Fps23_976,
        TimecodeRate::Fps24,
        TimecodeRate::Fps25,
        TimecodeRate::Fps29_97Df,
        TimecodeRate::Fps30,
        TimecodeRate::Fps50,
        TimecodeRate::Fps59_94Df,
        TimecodeRate::Fps60,
    ];

    /// The spelling used in configuration files and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimecodeRate::Fps23_976 => "23.976",
            TimecodeRate::Fps24 => "24",
            TimecodeRate::Fps25 => "25",
            TimecodeRate::Fps29_97Df => "29.97",
            TimecodeRate::Fps30 => "30",
            TimecodeRate::Fps50 => "50",
            TimecodeRate::Fps59_94Df => "59.94",
            TimecodeRate::Fps60 => "60",
        }
    }

    /// The exact frame rate as `(numerator, denominator)` frames per second,
    /// in lowest terms, e.g. `(30000, 1001)`.
    pub const fn fraction(self) -> (u32, u32) {
        match self {
            TimecodeRate::Fps23_976 => (24_000, 1001),
            TimecodeRate::Fps24 => (24, 1),
            TimecodeRate::Fps25 => (25, 1),
            TimecodeRate::Fps29_97Df => (30_000, 1001),
            TimecodeRate::Fps30 => (30, 1),
            TimecodeRate::Fps50 => (50, 1),
            TimecodeRate::Fps59_94Df => (60_000, 1001),
            TimecodeRate::Fps60 => (60, 1),
        }
    }

    /// Labels per second: the frame field runs from 0 to `nominal_fps() - 1`.
    pub const fn nominal_fps(self) -> u32 {
        match self {
            TimecodeRate::Fps23_976 | TimecodeRate::Fps24 => 24,
            TimecodeRate::Fps25 => 25,
            TimecodeRate::Fps29_97Df | TimecodeRate::Fps30 => 30,
            TimecodeRate::Fps50 => 50,
            TimecodeRate::Fps59_94Df | TimecodeRate::Fps60 => 60,
        }
    }

    /// Whether labels are skipped at the start of most minutes: true for
    /// 29.97 and 59.94 only.
    pub const fn is_drop_frame(self) -> bool {
        self.dropped_labels_per_minute() != 0
    }

    /// How many labels (frames `00`, `01`, ...) are skipped at the start of
    /// each minute not divisible by ten: 2 at 29.97, 4 at 59.94, else 0.
    pub const fn dropped_labels_per_minute(self) -> u32 {
        match self {
            TimecodeRate::Fps29_97Df => 2,
            TimecodeRate::Fps59_94Df => 4,
            _ => 0,
        }
    }

    /// The number of labels from `00:00:00:00` to the last label of the day
    /// (`23:59:59:FF`), i.e. one more than the largest valid frame count.
    ///
    /// This is not the number of frames that really occur in 24 hours at
    /// 23.976 (more labels than frames) nor at 29.97 and 59.94 (slightly
    /// fewer): the labels follow the clock, not the frames; see the
    /// [module documentation](self#labels-from-the-clock-gstreamers-model).
    pub const fn frames_per_day(self) -> u64 {
        let nominal = self.nominal_fps() as u64;
        // 1440 minutes a day, of which 144 (every tenth) keep all labels.
        nominal * 86_400 - self.dropped_labels_per_minute() as u64 * (1440 - 144)
    }

    /// The supported rate with exactly this frame rate, if any; the fraction
    /// need not be in lowest terms (`50/2` is 25).
    pub fn from_fraction(numerator: u64, denominator: u64) -> Option<Self> {
        if numerator == 0 || denominator == 0 {
            return None;
        }
        TimecodeRate::ALL.iter().copied().find(|rate| {
            let (num, den) = rate.fraction();
            u128::from(numerator) * u128::from(den) == u128::from(num) * u128::from(denominator)
        })
    }
}

impl fmt::Display for TimecodeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimecodeRate {
    type Err = TimecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Some(rate) = TimecodeRate::ALL
            .iter()
            .copied()
            .find(|rate| rate.as_str() == trimmed)
        {
            return Ok(rate);
        }
        // Fractions are how GStreamer caps and ffprobe spell rates, so a
        // technician may paste "30000/1001" straight from them.
        trimmed
            .split_once('/')
            .and_then(|(num, den)| {
                TimecodeRate::from_fraction(parse_digits(num)?, parse_digits(den)?)
            })
            .ok_or_else(|| TimecodeError::UnknownRate {
                input: s.to_owned(),
            })
    }
}

/// Plain unsigned decimal: `u64::from_str` would also take a leading `+`.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl serde::Serialize for TimecodeRate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

// Hand-written rather than derived so that config files get the same
// spellings and the same helpful error as the command line, and so that an
// unquoted `rate = 29.97` or `rate = 25` in TOML is accepted too.
impl<'de> serde::Deserialize<'de> for TimecodeRate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        impl serde::de::Visitor<'_> for RateVisitor {
            type Value = TimecodeRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a timecode rate: {VALID_RATES}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimecodeRate, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimecodeRate, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimecodeRate, E> {
                self.visit_str(&v.to_string())
            }

            // Rust prints the shortest decimal that reads back as the same
            // f64, so 29.97 becomes "29.97" again, not "29.969999...".
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TimecodeRate, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_any(RateVisitor)
    }
}

/// What went wrong with a rate, a timecode, a frame count or an instant.
///
/// The messages are shown to technicians, so each says what was wrong and
/// what a valid value looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimecodeError {
    /// The rate is not one of the supported rates.
    #[error("unknown timecode rate {input:?}: use one of {VALID_RATES}")]
    UnknownRate {
        /// What was given.
        input: String,
    },

    /// The text does not have the shape of a timecode.
    #[error(
        "{input:?} is not a timecode: write HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame \
         (for example 14:23:12:05 or 14:23:12;05)"
    )]
    Malformed {
        /// What was given.
        input: String,
    },

    /// One of the four fields is too large.
    #[error(
        "{field} {value:02} in {input:?} is out of range at {rate} fps: {field} go from 00 to {max:02}"
    )]
    FieldOutOfRange {
        /// The whole timecode as given.
        input: String,
        /// `hours`, `minutes`, `seconds` or `frames`.
        field: &'static str,
        /// The offending value.
        value: u32,
        /// The largest allowed value.
        max: u32,
        /// The rate it was checked against.
        rate: TimecodeRate,
    },

    /// A drop-frame label that is skipped and therefore never exists.
    #[error(
        "{input:?} does not exist at {rate} drop-frame: frames 00 to {last_dropped:02} are skipped \
         at the start of every minute except minutes 00, 10, 20, 30, 40 and 50; \
         the first label of that minute is {first_valid}"
    )]
    DroppedLabel {
        /// The timecode as given.
        input: String,
        /// The drop-frame rate it was checked against.
        rate: TimecodeRate,
        /// The last skipped frame number (1 at 29.97, 3 at 59.94).
        last_dropped: u32,
        /// The label that does exist at the start of that minute.
        first_valid: String,
    },

    /// A frame count past the last label of the day.
    #[error(
        "frame count {frames} is past the end of the day at {rate}: frames since midnight go \
         from 0 (00:00:00:00) to {last} ({last_label})",
        last_label = Timecode::from_frame_count(*.last, *.rate)
    )]
    FrameCountOutOfRange {
        /// The count given.
        frames: u64,
        /// The rate it was checked against.
        rate: TimecodeRate,
        /// The largest valid frame count at that rate.
        last: u64,
    },

    /// Not an RFC 3339 instant.
    #[error(
        "{input:?} is not an RFC 3339 instant ({reason}): write a date, a time and a UTC \
         offset, for example 2026-11-21T14:23:12.000123Z or 2026-11-21T15:23:12+01:00"
    )]
    InvalidInstant {
        /// What was given.
        input: String,
        /// Why the parser rejected it.
        reason: String,
    },

    /// An instant that cannot be shown in UTC with a four-digit year.
    #[error(
        "{input} cannot be written in UTC with a four-digit year; use a date between 0000 and 9999"
    )]
    InstantOutOfRange {
        /// The instant, as far as it could be printed.
        input: String,
    },

    /// More than one of `--frames`, `--tc` and `--at` was given.
    #[error(
        "give at most one of --frames, --tc and --at (with none of them the current time is used)"
    )]
    ConflictingSources,
}

/// A timecode label together with the rate it counts at.
///
/// A value of this type always names a label that exists at its rate: the
/// constructors reject out-of-range fields and skipped drop-frame labels,
/// which is why the fields are private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timecode {
    hours: u32,
    minutes: u32,
    seconds: u32,
    frames: u32,
    rate: TimecodeRate,
}

impl Timecode {
    /// The label `hours:minutes:seconds:frames`, if it exists at `rate`.
    pub fn new(
        hours: u32,
        minutes: u32,
        seconds: u32,
        frames: u32,
        rate: TimecodeRate,
    ) -> Result<Self, TimecodeError> {
        let candidate = Timecode {
            hours,
            minutes,
            seconds,
            frames,
            rate,
        };
        // Not `Display`, which assumes every field has two digits.
        candidate.validate(|| format!("{hours:02}:{minutes:02}:{seconds:02}:{frames:02}"))?;
        Ok(candidate)
    }

    /// Parses `HH:MM:SS:FF` or `HH:MM:SS;FF` (either separator at any rate;
    /// one or two digits per field) and checks that the label exists at
    /// `rate`.
    pub fn parse(s: &str, rate: TimecodeRate) -> Result<Self, TimecodeError> {
        let [hours, minutes, seconds, frames] =
            split_label(s.trim_ascii()).ok_or_else(|| TimecodeError::Malformed {
                input: s.to_owned(),
            })?;
        let candidate = Timecode {
            hours,
            minutes,
            seconds,
            frames,
            rate,
        };
        candidate.validate(|| s.to_owned())?;
        Ok(candidate)
    }

    /// Takes the input only lazily so that parsing valid labels (the common
    /// case, and millions of times in the tests) allocates nothing.
    fn validate(&self, input: impl Fn() -> String) -> Result<(), TimecodeError> {
        let out_of_range = |field, value, max| TimecodeError::FieldOutOfRange {
            input: input(),
            field,
            value,
            max,
            rate: self.rate,
        };
        let max_frames = self.rate.nominal_fps() - 1;
        if self.hours > 23 {
            return Err(out_of_range("hours", self.hours, 23));
        }
        if self.minutes > 59 {
            return Err(out_of_range("minutes", self.minutes, 59));
        }
        if self.seconds > 59 {
            return Err(out_of_range("seconds", self.seconds, 59));
        }
        if self.frames > max_frames {
            return Err(out_of_range("frames", self.frames, max_frames));
        }
        let dropped = self.rate.dropped_labels_per_minute();
        if self.seconds == 0 && self.minutes % 10 != 0 && self.frames < dropped {
            return Err(TimecodeError::DroppedLabel {
                input: input(),
                rate: self.rate,
                last_dropped: dropped - 1,
                first_valid: Timecode {
                    frames: dropped,
                    ..*self
                }
                .to_string(),
            });
        }
        Ok(())
    }

    /// The label shown `frames_since_midnight` frames after `00:00:00:00`.
    ///
    /// Counts wrap modulo [`TimecodeRate::frames_per_day`], so the frame after
    /// the last label of the day is `00:00:00:00` again, as on a timecode
    /// generator.
    pub fn from_frame_count(frames_since_midnight: u64, rate: TimecodeRate) -> Self {
        let nominal = u64::from(rate.nominal_fps());
        let dropped = u64::from(rate.dropped_labels_per_minute());
        let count = frames_since_midnight % rate.frames_per_day();
        // Turn the frame count into a position among *all* labels of the
        // day, skipped ones included, then split it like non-drop-frame.
        let label_index = if dropped == 0 {
            count
        } else {
            // Ten-minute blocks all have the same shape: a full first minute,
            // then nine minutes that each lose `dropped` labels.
            let labels_per_minute = nominal * 60;
            let frames_per_short_minute = labels_per_minute - dropped;
            let frames_per_block = labels_per_minute + 9 * frames_per_short_minute;
            let block = count / frames_per_block;
            let in_block = count % frames_per_block;
            let label_in_block = if in_block < labels_per_minute {
                in_block
            } else {
                let after_first = in_block - labels_per_minute;
                let minute = 1 + after_first / frames_per_short_minute;
                minute * labels_per_minute + dropped + after_first % frames_per_short_minute
            };
            block * 10 * labels_per_minute + label_in_block
        };
        let total_seconds = label_index / nominal;
        // Every quotient below is less than 60 (or 24), so the narrowing
        // cannot lose anything; `frames_per_day` bounds `count`.
        let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Timecode {
            hours: narrow(total_seconds / 3600),
            minutes: narrow(total_seconds / 60 % 60),
            seconds: narrow(total_seconds % 60),
            frames: narrow(label_index % nominal),
            rate,
        }
    }

    /// The number of frames from `00:00:00:00` to this label: the inverse
    /// of [`Timecode::from_frame_count`].
    pub fn frame_count(&self) -> u64 {
        let total_minutes = u64::from(self.hours) * 60 + u64::from(self.minutes);
        let label_index = (total_minutes * 60 + u64::from(self.seconds))
            * u64::from(self.rate.nominal_fps())
            + u64::from(self.frames);
        let minutes_with_drops = total_minutes - total_minutes / 10;
        label_index - u64::from(self.rate.dropped_labels_per_minute()) * minutes_with_drops
    }

    /// The label `delta` frames later (earlier if negative), wrapping around
    /// midnight in either direction.
    #[must_use]
    pub fn add_frames(self, delta: i64) -> Self {
        let day = i128::from(self.rate.frames_per_day());
        let count = (i128::from(self.frame_count()) + i128::from(delta)).rem_euclid(day);
        // rem_euclid leaves 0 <= count < frames_per_day, which fits in u64.
        Timecode::from_frame_count(u64::try_from(count).unwrap_or(0), self.rate)
    }

    /// The label GStreamer gives the time of day `nanos_since_midnight`
    /// (UTC): what `gst_video_time_code_init_from_date_time_full` returns for
    /// it, and so what `timecodestamper` stamps on a frame taken at that
    /// clock time. The [module documentation](self#labels-from-the-clock-gstreamers-model)
    /// lists the steps and what follows from them.
    ///
    /// Only whole microseconds count, as in a `GDateTime`: the nanoseconds
    /// are cut, not rounded. A time past the end of the day (a leap second,
    /// or a caller passing something else) is read as the last microsecond
    /// of the day, which GStreamer labels `00:00:00:00`, like the rest of the
    /// day's last half frame.
    pub fn from_time_of_day(nanos_since_midnight: u64, rate: TimecodeRate) -> Self {
        let micros = nanos_since_midnight.min(NANOS_PER_DAY - 1) / NANOS_PER_MICRO;
        let second_of_day = micros / MICROS_PER_SECOND;
        let nominal = rate.nominal_fps();
        // The fraction of the second in frames, rounded to the nearest, halves
        // up: GStreamer's gst_util_uint64_scale_round (µs × 1000, fps_n,
        // fps_d × GST_SECOND). The result is at most `nominal`, as the
        // fraction is below one second.
        let (num, den) = rate.fraction();
        let denom = u64::from(den) * NANOS_PER_SECOND;
        let rounded =
            (micros % MICROS_PER_SECOND * NANOS_PER_MICRO * u64::from(num) + denom / 2) / denom;
        let rounded = u32::try_from(rounded).unwrap_or(nominal);
        // A fraction that rounds to a whole second gives the next second's
        // first label: GStreamer labels it with the second's last frame and
        // then adds one frame, so it also moves to the next minute, hour or
        // day, and skips the labels that drop-frame leaves out.
        let carry = rounded >= nominal;
        // Every quotient is below 60 (or 24), so the narrowing loses nothing.
        let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let mut label = Timecode {
            hours: narrow(second_of_day / 3600),
            minutes: narrow(second_of_day / 60 % 60),
            seconds: narrow(second_of_day % 60),
            frames: if carry { nominal - 1 } else { rounded },
            rate,
        };
        // At drop-frame rates the labels that do not exist (;00 and ;01 at
        // the start of most minutes at 29.97) become the minute's first one.
        let dropped = rate.dropped_labels_per_minute();
        if label.seconds == 0 && label.minutes % 10 != 0 && label.frames < dropped {
            label.frames = dropped;
        }
        if carry {
            label = Timecode::from_frame_count(label.frame_count() + 1, rate);
        }
        label
    }

    /// The label GStreamer gives `instant`, from its time of day in UTC
    /// whatever offset it carries; see [`Timecode::from_time_of_day`].
    ///
    /// This is the timecode to stamp on an event that happened at `instant`.
    pub fn at_utc(instant: OffsetDateTime, rate: TimecodeRate) -> Self {
        Timecode::from_time_of_day(utc_nanos_since_midnight(instant), rate)
    }

    /// The times of day, in nanoseconds from the midnight that starts this
    /// label's day, to which GStreamer gives this label
    /// ([`Timecode::from_time_of_day`]): a half-open range, ending where the
    /// next label's begins.
    ///
    /// Only `00:00:00:00` starts before its midnight, so its start is
    /// negative: GStreamer already gives it to the last half frame of the day
    /// before. Both ends are whole microseconds.
    pub fn clock_range_nanos(&self) -> std::ops::Range<i64> {
        let next = self.add_frames(1);
        let day = i64::try_from(NANOS_PER_DAY).unwrap_or(i64::MAX);
        // The day's last label ends where the next day's first one begins.
        let wrap = if next.frame_count() == 0 { day } else { 0 };
        self.clock_start_nanos()..next.clock_start_nanos() + wrap
    }

    /// The start of [`Timecode::clock_range_nanos`].
    fn clock_start_nanos(&self) -> i64 {
        let second_of_day =
            (i64::from(self.hours) * 60 + i64::from(self.minutes)) * 60 + i64::from(self.seconds);
        let second = i64::try_from(NANOS_PER_SECOND).unwrap_or(i64::MAX);
        // The first label of a second (which is ;02 or ;04 at the start of a
        // drop-frame minute) starts in the second before, where the fraction
        // rounds up to a whole second.
        let dropped = self.rate.dropped_labels_per_minute();
        let first_of_second = self.frames == 0
            || (self.seconds == 0 && self.minutes % 10 != 0 && self.frames == dropped);
        let (second_of_day, frames) = if first_of_second {
            (second_of_day - 1, self.rate.nominal_fps())
        } else {
            (second_of_day, self.frames)
        };
        let micros = first_micro_rounding_to(frames, self.rate);
        second_of_day * second + i64::try_from(micros * NANOS_PER_MICRO).unwrap_or(i64::MAX)
    }

    /// When GStreamer starts giving this label, in nanoseconds since midnight
    /// UTC; see [`instant_of_frame`].
    pub fn start_nanos_since_midnight(&self) -> u64 {
        u64::try_from(self.clock_start_nanos()).unwrap_or(0)
    }

    /// Hours, 0 to 23.
    pub const fn hours(&self) -> u32 {
        self.hours
    }

    /// Minutes, 0 to 59.
    pub const fn minutes(&self) -> u32 {
        self.minutes
    }

    /// Seconds, 0 to 59.
    pub const fn seconds(&self) -> u32 {
        self.seconds
    }

    /// Frame within the second, 0 to `rate.nominal_fps() - 1`.
    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// The rate this label counts at.
    pub const fn rate(&self) -> TimecodeRate {
        self.rate
    }
}

impl fmt::Display for Timecode {
    /// `HH:MM:SS:FF`, or `HH:MM:SS;FF` at drop-frame rates so that the two
    /// can be told apart at a glance, as on studio equipment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Assembled by hand and written with `pad`, which is both much
        // cheaper than four `{:02}` arguments (the round-trip test prints
        // every label of the day) and honours width and alignment, as in
        // `{:>12}`.
        let separator = if self.rate.is_drop_frame() {
            b';'
        } else {
            b':'
        };
        let [h, m, s, ff] = [
            two_ascii_digits(self.hours),
            two_ascii_digits(self.minutes),
            two_ascii_digits(self.seconds),
            two_ascii_digits(self.frames),
        ];
        let text = [
            h[0], h[1], b':', m[0], m[1], b':', s[0], s[1], separator, ff[0], ff[1],
        ];
        f.pad(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// The four fields of `HH:MM:SS:FF` or `HH:MM:SS;FF`, one or two ASCII
/// digits each (more would only hide typos such as `014:00:00:00`).
///
/// A plain byte loop rather than `split`: the round-trip test parses every
/// label of every rate in an unoptimised build, and the generic string
/// machinery made that several times slower.
fn split_label(s: &str) -> Option<[u32; 4]> {
    // The shape every label printed by this module has, checked first
    // because it is nearly the only one ever seen.
    if let &[h1, h2, b':', m1, m2, b':', s1, s2, separator, f1, f2] = s.as_bytes() {
        return match (
            separator,
            two_digits(h1, h2),
            two_digits(m1, m2),
            two_digits(s1, s2),
            two_digits(f1, f2),
        ) {
            (b':' | b';', Some(h), Some(m), Some(s), Some(f)) => Some([h, m, s, f]),
            _ => None,
        };
    }
    let mut fields = [0u32; 4];
    let mut field = 0;
    let mut digits = 0;
    for &byte in s.as_bytes() {
        match byte {
            b'0'..=b'9' if digits < 2 => {
                fields[field] = fields[field] * 10 + u32::from(byte - b'0');
                digits += 1;
            }
            // ';' marks drop-frame and may only stand before the frames.
            b':' | b';' if digits > 0 && field < 3 && (byte == b':' || field == 2) => {
                field += 1;
                digits = 0;
            }
            _ => return None,
        }
    }
    (field == 3 && digits > 0).then_some(fields)
}

/// Every field of a valid label is below 100, so each digit fits in a u8.
const fn two_ascii_digits(value: u32) -> [u8; 2] {
    [b'0' + (value / 10 % 10) as u8, b'0' + (value % 10) as u8]
}

fn two_digits(tens: u8, units: u8) -> Option<u32> {
    match (tens, units) {
        (b'0'..=b'9', b'0'..=b'9') => Some(u32::from(tens - b'0') * 10 + u32::from(units - b'0')),
        _ => None,
    }
}

/// The frame count since midnight of the label GStreamer gives the time of
/// day `nanos_since_midnight`: `Timecode::from_time_of_day(nanos,
/// rate).frame_count()`.
///
/// This is the label's position in the day, which is not the number of
/// frames shown since midnight at 23.976, 29.97 and 59.94 (see the
/// [module documentation](self#labels-from-the-clock-gstreamers-model)). It
/// grows with the time of day, except in the last half frame of the day,
/// which gets `00:00:00:00`, frame 0.
pub fn frame_at_time_of_day(nanos_since_midnight: u64, rate: TimecodeRate) -> u64 {
    Timecode::from_time_of_day(nanos_since_midnight, rate).frame_count()
}

/// When GStreamer starts giving the label `frame_count` frames after
/// midnight, in nanoseconds since midnight: the earliest time of day at which
/// [`frame_at_time_of_day`] gives that frame, a whole microsecond.
///
/// Counts wrap modulo [`TimecodeRate::frames_per_day`] like
/// [`Timecode::from_frame_count`]. For frame 0, `00:00:00:00`, this is 0,
/// though GStreamer already gives that label to the last half frame of the
/// day before; [`Timecode::clock_range_nanos`] has the whole range.
pub fn instant_of_frame(frame_count: u64, rate: TimecodeRate) -> u64 {
    Timecode::from_frame_count(frame_count, rate).start_nanos_since_midnight()
}

/// The first microsecond of a second whose fraction GStreamer rounds to
/// `frames` (1 to `nominal_fps`): the least `µs` with
/// `(µs × 1000 × fps_num + d / 2) / d >= frames`, where `d = fps_den × 10^9`.
fn first_micro_rounding_to(frames: u32, rate: TimecodeRate) -> u64 {
    let (num, den) = rate.fraction();
    let denom = u64::from(den) * NANOS_PER_SECOND;
    (u64::from(frames) * denom - denom / 2).div_ceil(NANOS_PER_MICRO * u64::from(num))
}

/// The time of day of `instant` in UTC, in nanoseconds since midnight.
///
/// Computed from the offset directly instead of converting the whole date,
/// which could fail for instants near the year 9999.
pub fn utc_nanos_since_midnight(instant: OffsetDateTime) -> u64 {
    let (hours, minutes, seconds, nanos) = instant.to_hms_nano();
    let local = ((i64::from(hours) * 60 + i64::from(minutes)) * 60 + i64::from(seconds))
        * 1_000_000_000
        + i64::from(nanos);
    let offset = i64::from(instant.offset().whole_seconds()) * 1_000_000_000;
    let day = 86_400 * 1_000_000_000_i64;
    // rem_euclid keeps the value in 0..day, which is non-negative.
    u64::try_from((local - offset).rem_euclid(day)).unwrap_or(0)
}

/// `HH:MM:SS.nnnnnnnnn UTC`, for an offset from a midnight within a day on
/// either side of it (as [`Timecode::clock_range_nanos`] gives), saying which
/// day when it is not the label's own.
fn format_time_of_day(nanos: i64) -> String {
    let day = i64::try_from(NANOS_PER_DAY).unwrap_or(i64::MAX);
    let (in_day, which) = match nanos {
        n if n < 0 => (n + day, " (the day before)"),
        n if n >= day => (n - day, " (the day after)"),
        n => (n, ""),
    };
    let in_day = u64::try_from(in_day).unwrap_or(0);
    let seconds = in_day / NANOS_PER_SECOND;
    format!(
        "{:02}:{:02}:{:02}.{:09} UTC{which}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        in_day % NANOS_PER_SECOND
    )
}

/// Arguments of `croupier timecode`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
// The examples and the one-source rule go in `after_help`, not only in
// `long_about`: a doc comment on the subcommand's variant in the CLI enum
// replaces `about` and `long_about`, but leaves `after_help` alone.
#[command(
    about = "Convert between timecodes, frame counts and instants",
    long_about = "Convert between SMPTE timecodes, frame counts since midnight and instants.

Every Croupier event carries the timecode of the video frame on screen when it \
happened. Use this command to find the frame for an instant in a log, the \
instant for a timecode seen on the recorder, or the timecode on screen right now. \
For example, `croupier timecode --rate 29.97 --at 2026-11-21T14:23:12.000123Z` \
prints the frame that was on screen at that instant.",
    after_help = "Give at most one of --frames, --tc and --at; with none of them the \
current time (system clock, UTC) is used. Times of day are UTC. An instant gets the \
label GStreamer's timecodestamper gives a frame taken at that clock time: the \
clock's HH:MM:SS, and the fraction of the second in frames rounded to the nearest; \
'label from' and 'label until' bound the instants that get the label.

Examples:
  croupier timecode --rate 25                     # the frame on screen now
  croupier timecode --rate 29.97 --at 2026-11-21T14:23:12.000123Z
  croupier timecode --rate 29.97 --tc '10:11:00;02'
  croupier timecode --rate 29.97 --frames 115086 --json"
)]
pub struct TimecodeArgs {
    /// Timecode rate of the studio: 23.976, 24, 25, 29.97 (drop-frame), 30, 50,
    /// 59.94 (drop-frame) or 60; an exact fraction such as 30000/1001 also works.
    #[arg(long, value_name = "RATE", default_value = "25")]
    pub rate: TimecodeRate,

    /// Frames since midnight (00:00:00:00 is frame 0) to show as a timecode.
    #[arg(long, value_name = "N", conflicts_with_all = ["tc", "at"])]
    pub frames: Option<u64>,

    /// Timecode to look up, as HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame
    /// (quote it in the shell: ';' ends a command).
    #[arg(long, value_name = "HH:MM:SS:FF", conflicts_with = "at")]
    pub tc: Option<String>,

    /// Instant to look up, in RFC 3339 with a UTC offset, e.g.
    /// 2026-11-21T14:23:12.000123Z; its time of day in UTC is used.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,

    /// Print one JSON object instead of text, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Runs `croupier timecode`, returning the text to print (one JSON object
/// with `--json`). Reads the system clock when no source is given.
pub fn run(args: &TimecodeArgs) -> Result<String, TimecodeError> {
    run_with_now(args, OffsetDateTime::now_utc())
}

/// [`run`] with the current time supplied, so that "now" can be tested.
pub fn run_with_now(args: &TimecodeArgs, now: OffsetDateTime) -> Result<String, TimecodeError> {
    let rate = args.rate;
    let (source, timecode, instant) = match (args.frames, &args.tc, &args.at) {
        (Some(frames), None, None) => {
            let last = rate.frames_per_day() - 1;
            if frames > last {
                return Err(TimecodeError::FrameCountOutOfRange { frames, rate, last });
            }
            ("frames", Timecode::from_frame_count(frames, rate), None)
        }
        (None, Some(tc), None) => ("tc", Timecode::parse(tc, rate)?, None),
        (None, None, Some(at)) => {
            let instant = parse_instant(at)?;
            ("at", Timecode::at_utc(instant, rate), Some(instant))
        }
        (None, None, None) => ("now", Timecode::at_utc(now, rate), Some(now)),
        _ => return Err(TimecodeError::ConflictingSources),
    };

    let frame_count = timecode.frame_count();
    let range = timecode.clock_range_nanos();
    let (num, den) = rate.fraction();
    let instants = instant
        .map(|i| utc_instants(i, &timecode, &range))
        .transpose()?;

    if args.json {
        let (instant_utc, from_utc, until_utc) = match instants {
            Some([instant, from, until]) => (Some(instant), Some(from), Some(until)),
            None => (None, None, None),
        };
        let object = serde_json::json!({
            "source": source,
            "timecode": timecode.to_string(),
            "frames_since_midnight": frame_count,
            "rate": rate.as_str(),
            "fps_num": num,
            "fps_den": den,
            "drop_frame": rate.is_drop_frame(),
            "label_from_nanos_since_midnight": range.start,
            "label_until_nanos_since_midnight": range.end,
            "label_from_utc": from_utc,
            "label_until_utc": until_utc,
            "instant_utc": instant_utc,
        });
        return Ok(object.to_string());
    }

    let kind = if rate.is_drop_frame() {
        "drop-frame"
    } else {
        "non-drop-frame"
    };
    let mut text = format!(
        "timecode:      {timecode}\n\
         frame count:   {frame_count} since midnight\n\
         rate:          {rate} ({num}/{den} fps, {kind})\n"
    );
    // No trailing newline: the caller prints it with `println!`.
    match instants {
        Some([instant_utc, from_utc, until_utc]) => text.push_str(&format!(
            "label from:    {from_utc}\n\
             label until:   {until_utc}\n\
             instant:       {instant_utc}"
        )),
        None => text.push_str(&format!(
            "label from:    {}\n\
             label until:   {}",
            format_time_of_day(range.start),
            format_time_of_day(range.end)
        )),
    }
    Ok(text)
}

/// RFC 3339 with a UTC offset. A space instead of the `T` is also taken,
/// as RFC 3339 allows and as `date --rfc-3339` and many logs print it.
fn parse_instant(input: &str) -> Result<OffsetDateTime, TimecodeError> {
    let trimmed = input.trim();
    let with_t = match trimmed.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &trimmed[..10], &trimmed[11..]),
        _ => trimmed.to_owned(),
    };
    OffsetDateTime::parse(&with_t, &Rfc3339).map_err(|err| TimecodeError::InvalidInstant {
        input: input.to_owned(),
        reason: err.to_string(),
    })
}

/// The instant, and the first and the last instant (excluded) that get its
/// label, `range` ([`Timecode::clock_range_nanos`] of `label`), all in UTC
/// and RFC 3339.
fn utc_instants(
    instant: OffsetDateTime,
    label: &Timecode,
    range: &std::ops::Range<i64>,
) -> Result<[String; 3], TimecodeError> {
    let out_of_range = || TimecodeError::InstantOutOfRange {
        input: instant.to_string(),
    };
    let utc = instant
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(out_of_range)?;
    // The label's day is the instant's, except when the instant is in the
    // last half frame of a day, whose label 00:00:00:00 starts the next day.
    let mut midnight = utc.replace_time(time::Time::MIDNIGHT);
    if label.frame_count() == 0 && utc_nanos_since_midnight(utc) >= NANOS_PER_DAY / 2 {
        midnight = midnight
            .checked_add(time::Duration::DAY)
            .ok_or_else(out_of_range)?;
    }
    let at = |offset: i64| {
        midnight
            .checked_add(time::Duration::nanoseconds(offset))
            .ok_or_else(out_of_range)
    };
    let format = |dt: OffsetDateTime| dt.format(&Rfc3339).map_err(|_| out_of_range());
    Ok([
        format(utc)?,
        format(at(range.start)?)?,
        format(at(range.end)?)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use time::macros::datetime;

    fn tc(s: &str, rate: TimecodeRate) -> Timecode {
        Timecode::parse(s, rate).unwrap_or_else(|e| panic!("{s} at {rate}: {e}"))
    }

    #[test]
    fn rate_properties() {
        use TimecodeRate::*;
        let expected = [
            (Fps23_976, "23.976", (24_000, 1001), 24, false, 2_073_600),
            (Fps24, "24", (24, 1), 24, false, 2_073_600),
            (Fps25, "25", (25, 1), 25, false, 2_160_000),
            (Fps29_97Df, "29.97", (30_000, 1001), 30, true, 2_589_408),
            (Fps30, "30", (30, 1), 30, false, 2_592_000),
            (Fps50, "50", (50, 1), 50, false, 4_320_000),
            (Fps59_94Df, "59.94", (60_000, 1001), 60, true, 5_178_816),
            (Fps60, "60", (60, 1), 60, false, 5_184_000),
        ];
        assert_eq!(TimecodeRate::ALL.len(), expected.len());
        for (rate, (variant, s, fraction, nominal, df, per_day)) in
            TimecodeRate::ALL.iter().copied().zip(expected)
        {
            assert_eq!(rate, variant);
            assert_eq!(rate.as_str(), s);
            assert_eq!(rate.to_string(), s);
            assert_eq!(rate.fraction(), fraction);
            assert_eq!(rate.nominal_fps(), nominal);
            assert_eq!(rate.is_drop_frame(), df);
            assert_eq!(rate.frames_per_day(), per_day);
            assert_eq!(s.parse::<TimecodeRate>(), Ok(rate));
            let (num, den) = fraction;
            assert_eq!(format!("{num}/{den}").parse::<TimecodeRate>(), Ok(rate));
            assert_eq!(
                TimecodeRate::from_fraction(num.into(), den.into()),
                Some(rate)
            );
        }
    }

    #[test]
    fn rate_parsing_accepts_fractions_and_rejects_lookalikes() {
        let ok = [
            ("25/1", TimecodeRate::Fps25),
            ("50/2", TimecodeRate::Fps25),
            ("24000/1001", TimecodeRate::Fps23_976),
            ("30000/1001", TimecodeRate::Fps29_97Df),
            ("60000/1001", TimecodeRate::Fps59_94Df),
            ("60/1", TimecodeRate::Fps60),
            (" 29.97 ", TimecodeRate::Fps29_97Df),
        ];
        for (s, rate) in ok {
            assert_eq!(s.parse::<TimecodeRate>(), Ok(rate), "{s}");
        }
        let bad = [
            "",
            "23.98",
            "23.97",
            "29.976",
            "29.970",
            "30df",
            "2997/100",
            "25/0",
            "0/1",
            "/1",
            "25/",
            "+25",
            "-25",
            "25.0",
            "1/1",
            "30000/1000.5",
            "twenty-five",
            "25/1/1",
        ];
        for s in bad {
            let err = s.parse::<TimecodeRate>().expect_err(s);
            let message = err.to_string();
            for rate in TimecodeRate::ALL {
                assert!(message.contains(rate.as_str()), "{message} lacks {rate}");
            }
            assert!(message.contains(&format!("{s:?}")), "{message}");
        }
    }

    #[test]
    fn rate_serde() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Config {
            rate: TimecodeRate,
        }
        for rate in TimecodeRate::ALL.iter().copied() {
            let json = serde_json::to_string(&Config { rate }).expect("serialize");
            assert_eq!(json, format!("{{\"rate\":\"{rate}\"}}"));
            let back: Config = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back.rate, rate);
            let unquoted: Config =
                serde_json::from_str(&format!("{{\"rate\":{rate}}}")).expect("number");
            assert_eq!(unquoted.rate, rate);
        }
        let fraction: Config = serde_json::from_str(r#"{"rate":"30000/1001"}"#).expect("fraction");
        assert_eq!(fraction.rate, TimecodeRate::Fps29_97Df);
        let err = serde_json::from_str::<Config>(r#"{"rate":29.9}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("59.94"), "{err}");
    }

    #[test]
    fn known_drop_frame_values() {
        let df = TimecodeRate::Fps29_97Df;
        assert_eq!(tc("10:10:59;29", df).add_frames(1), tc("10:11:00;02", df));
        assert_eq!(tc("10:11:00;02", df).add_frames(-1), tc("10:10:59;29", df));
        assert_eq!(tc("01:04:00;02", df).frame_count(), 115_086);
        assert_eq!(tc("00:01:00;02", df).frame_count(), 1800);
        assert_eq!(tc("00:10:00;00", df).frame_count(), 17_982);
        assert_eq!(tc("23:59:59;29", df).frame_count(), 2_589_407);
        assert_eq!(
            Timecode::from_frame_count(115_086, df).to_string(),
            "01:04:00;02"
        );
        assert_eq!(
            Timecode::from_frame_count(1800, df).to_string(),
            "00:01:00;02"
        );
        assert_eq!(
            Timecode::from_frame_count(1799, df).to_string(),
            "00:00:59;29"
        );
        assert_eq!(
            Timecode::from_frame_count(17_982, df).to_string(),
            "00:10:00;00"
        );
        assert_eq!(
            Timecode::from_frame_count(2_589_407, df).to_string(),
            "23:59:59;29"
        );
        assert_eq!(
            Timecode::from_frame_count(2_589_408, df).to_string(),
            "00:00:00;00"
        );

        let df60 = TimecodeRate::Fps59_94Df;
        assert_eq!(
            tc("00:00:59;59", df60).add_frames(1).to_string(),
            "00:01:00;04"
        );
        assert_eq!(tc("00:01:00;04", df60).frame_count(), 3600);
        assert_eq!(tc("00:10:00;00", df60).frame_count(), 35_964);
        assert_eq!(tc("23:59:59;59", df60).frame_count(), 5_178_815);
        assert_eq!(tc("01:04:00;04", df60).frame_count(), 2 * 115_086);
    }

    #[test]
    fn display_separator_follows_drop_frame() {
        for rate in TimecodeRate::ALL.iter().copied() {
            let label = Timecode::from_frame_count(123_456, rate).to_string();
            let separator = if rate.is_drop_frame() { ';' } else { ':' };
            assert_eq!(label.len(), 11);
            assert_eq!(label.as_bytes()[8], separator as u8, "{label} at {rate}");
        }
        assert_eq!(
            Timecode::new(1, 2, 3, 4, TimecodeRate::Fps25).map(|t| t.to_string()),
            Ok("01:02:03:04".to_owned())
        );
    }

    #[test]
    fn parse_accepts_either_separator_and_short_fields() {
        let df = TimecodeRate::Fps29_97Df;
        assert_eq!(tc("10:11:00:02", df), tc("10:11:00;02", df));
        assert_eq!(
            tc("1:2:3;4", TimecodeRate::Fps25),
            tc("01:02:03:04", TimecodeRate::Fps25)
        );
        assert_eq!(
            tc(" 01:02:03:04\n", TimecodeRate::Fps25).frame_count(),
            93_079
        );
        // 23.976 is not drop-frame: every minute starts at frame 00.
        assert_eq!(
            tc("00:01:00:00", TimecodeRate::Fps23_976).frame_count(),
            1440
        );
        assert_eq!(tc("00:01:00:00", TimecodeRate::Fps30).frame_count(), 1800);
    }

    #[test]
    fn parse_rejects_malformed() {
        for s in [
            "",
            "01:02:03",
            "01:02:03:04:05",
            "01;02;03;04",
            "01:02;03:04",
            "001:02:03:04",
            "01:02:03:004",
            "1:2:3:",
            ":1:2:3",
            "aa:bb:cc:dd",
            "+1:02:03:04",
            "01:02:03.04",
            "01-02-03-04",
            "٠١:02:03:04",
            "01 :02:03:04",
        ] {
            match Timecode::parse(s, TimecodeRate::Fps25) {
                Err(TimecodeError::Malformed { input }) => assert_eq!(input, s),
                other => panic!("{s:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn parse_rejects_out_of_range() {
        let cases = [
            ("24:00:00:00", TimecodeRate::Fps25, "hours"),
            ("00:60:00:00", TimecodeRate::Fps25, "minutes"),
            ("00:00:60:00", TimecodeRate::Fps25, "seconds"),
            ("00:00:00:25", TimecodeRate::Fps25, "frames"),
            ("00:00:00:24", TimecodeRate::Fps23_976, "frames"),
            ("00:00:00;30", TimecodeRate::Fps29_97Df, "frames"),
            ("00:00:00:60", TimecodeRate::Fps60, "frames"),
        ];
        for (s, rate, expected_field) in cases {
            match Timecode::parse(s, rate) {
                Err(err @ TimecodeError::FieldOutOfRange { field, .. }) => {
                    assert_eq!(field, expected_field);
                    assert!(err.to_string().contains(s), "{err}");
                }
                other => panic!("{s} at {rate} gave {other:?}"),
            }
        }
        let err = Timecode::new(123, 0, 0, 0, TimecodeRate::Fps25).expect_err("hours 123");
        assert!(
            err.to_string().starts_with("hours 123 in \"123:00:00:00\""),
            "{err}"
        );
        assert!(Timecode::new(0, 0, 0, 49, TimecodeRate::Fps50).is_ok());
        assert!(Timecode::new(0, 0, 0, 50, TimecodeRate::Fps50).is_err());
    }

    #[test]
    fn parse_rejects_dropped_labels() {
        let df = TimecodeRate::Fps29_97Df;
        for s in ["00:01:00;00", "00:01:00;01", "10:11:00;00", "23:59:00:01"] {
            let err = Timecode::parse(s, df).expect_err(s);
            assert!(matches!(err, TimecodeError::DroppedLabel { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains(&s[..6]) && message.contains(":00;02"),
                "{message}"
            );
        }
        for s in [
            "00:00:00;00",
            "00:10:00;00",
            "00:01:00;02",
            "00:01:01;00",
            "00:20:00;01",
        ] {
            assert!(Timecode::parse(s, df).is_ok(), "{s}");
        }
        let df60 = TimecodeRate::Fps59_94Df;
        for frames in 0..4 {
            let s = format!("00:01:00;{frames:02}");
            assert!(Timecode::parse(&s, df60).is_err(), "{s}");
        }
        assert!(Timecode::parse("00:01:00;04", df60).is_ok());
        assert!(Timecode::parse("00:50:00;00", df60).is_ok());
        // Same labels exist at the non-drop-frame rates.
        for rate in [
            TimecodeRate::Fps30,
            TimecodeRate::Fps60,
            TimecodeRate::Fps23_976,
        ] {
            assert!(Timecode::parse("00:01:00:00", rate).is_ok(), "{rate}");
        }
    }

    #[test]
    fn add_frames_wraps_both_ways() {
        for rate in TimecodeRate::ALL.iter().copied() {
            let day = i64::try_from(rate.frames_per_day()).expect("fits");
            let midnight = Timecode::from_frame_count(0, rate);
            let last = Timecode::from_frame_count(rate.frames_per_day() - 1, rate);
            assert_eq!(midnight.add_frames(-1), last);
            assert_eq!(last.add_frames(1), midnight);
            assert_eq!(midnight.add_frames(day), midnight);
            assert_eq!(midnight.add_frames(-3 * day + 5), midnight.add_frames(5));
            assert_eq!(midnight.add_frames(0), midnight);
            // Must not overflow.
            let _ = last.add_frames(i64::MAX);
            let _ = midnight.add_frames(i64::MIN);
            assert_eq!(
                midnight.add_frames(i64::MAX).frame_count(),
                u64::try_from(i64::MAX % day).expect("fits")
            );
        }
    }

    /// The label after `t` by the counting rules alone, independent of the
    /// frame-count arithmetic under test.
    fn successor(t: Timecode) -> Timecode {
        let mut next = t;
        next.frames += 1;
        if next.frames == t.rate.nominal_fps() {
            next.frames = 0;
            next.seconds += 1;
            if next.seconds == 60 {
                next.seconds = 0;
                next.minutes += 1;
                if next.minutes == 60 {
                    next.minutes = 0;
                    next.hours = (next.hours + 1) % 24;
                }
                if next.minutes % 10 != 0 {
                    next.frames = t.rate.dropped_labels_per_minute();
                }
            }
        }
        next
    }

    /// Walks every frame of the day at `rate` and checks, for each, that the
    /// label from the count is the successor of the previous one, that the
    /// count comes back, that the label survives printing and parsing, and
    /// that the time of day gives it exactly from its clock range's start
    /// until the next label's.
    fn exhaustive_day(rate: TimecodeRate) {
        let mut expected = Timecode::new(0, 0, 0, 0, rate).expect("midnight");
        let mut text = String::with_capacity(16);
        let day_nanos = i64::try_from(NANOS_PER_DAY).expect("fits");
        let mut previous = Timecode::from_frame_count(rate.frames_per_day() - 1, rate);
        let mut previous_start = i64::MIN;
        for n in 0..rate.frames_per_day() {
            let label = Timecode::from_frame_count(n, rate);
            if label != expected {
                panic!("frame {n} at {rate}: got {label}, counting gives {expected}");
            }
            if label.frame_count() != n {
                panic!(
                    "{label} at {rate} gives frame {}, not {n}",
                    label.frame_count()
                );
            }
            text.clear();
            let _ = write!(text, "{label}");
            if Timecode::parse(&text, rate) != Ok(label) {
                panic!("{text} at {rate} does not parse back");
            }
            // The clock gives this label from its start on, and the label
            // before it just before.
            let start = label.clock_start_nanos();
            let in_day = u64::try_from(start.rem_euclid(day_nanos)).unwrap_or(0);
            if start <= previous_start
                || Timecode::from_time_of_day(in_day, rate) != label
                || Timecode::from_time_of_day(
                    in_day.checked_sub(1).unwrap_or(NANOS_PER_DAY - 1),
                    rate,
                ) != previous
            {
                panic!("{label} at {rate}: the clock does not give it from {start} ns on");
            }
            previous_start = start;
            previous = label;
            expected = successor(label);
        }
        // The successor of the day's last label is the first one again.
        assert_eq!(expected, Timecode::from_frame_count(0, rate));
        assert_eq!(
            Timecode::from_frame_count(rate.frames_per_day(), rate),
            expected
        );
    }

    #[test]
    fn exhaustive_23_976() {
        exhaustive_day(TimecodeRate::Fps23_976);
    }

    #[test]
    fn exhaustive_24() {
        exhaustive_day(TimecodeRate::Fps24);
    }

    #[test]
    fn exhaustive_25() {
        exhaustive_day(TimecodeRate::Fps25);
    }

    #[test]
    fn exhaustive_29_97_df() {
        exhaustive_day(TimecodeRate::Fps29_97Df);
    }

    #[test]
    fn exhaustive_30() {
        exhaustive_day(TimecodeRate::Fps30);
    }

    #[test]
    fn exhaustive_50() {
        exhaustive_day(TimecodeRate::Fps50);
    }

    #[test]
    fn exhaustive_59_94_df() {
        exhaustive_day(TimecodeRate::Fps59_94Df);
    }

    #[test]
    fn exhaustive_60() {
        exhaustive_day(TimecodeRate::Fps60);
    }

    const fn hms(h: u64, m: u64, s: u64) -> u64 {
        ((h * 60 + m) * 60 + s) * NANOS_PER_SECOND
    }

    fn at(nanos: u64, rate: TimecodeRate) -> String {
        Timecode::from_time_of_day(nanos, rate).to_string()
    }

    #[test]
    fn time_of_day_at_integer_rates_rounds_the_clock_to_the_nearest_frame() {
        let rate = TimecodeRate::Fps25;
        let base = hms(14, 23, 12);
        for (offset, label) in [
            (0, "14:23:12:00"),
            (19_999_999, "14:23:12:00"),
            // Half a frame rounds up.
            (20_000_000, "14:23:12:01"),
            (20_000_999, "14:23:12:01"),
            (59_999_999, "14:23:12:01"),
            (60_000_000, "14:23:12:02"),
            (979_999_999, "14:23:12:24"),
            // The last half frame of a second is the next second's first.
            (980_000_000, "14:23:13:00"),
            (999_999_999, "14:23:13:00"),
        ] {
            assert_eq!(at(base + offset, rate), label, "{offset}");
        }
        // The last half frame of the day is the next day's first label.
        for rate in [
            TimecodeRate::Fps24,
            TimecodeRate::Fps25,
            TimecodeRate::Fps30,
            TimecodeRate::Fps50,
            TimecodeRate::Fps60,
        ] {
            assert_eq!(at(NANOS_PER_DAY - 1, rate), "00:00:00:00", "{rate}");
            assert_eq!(at(u64::MAX, rate), "00:00:00:00", "{rate}");
            let t = Timecode::from_time_of_day(hms(23, 59, 59) + 500_000_000, rate);
            assert_eq!((t.hours(), t.minutes(), t.seconds()), (23, 59, 59));
            // Half a second is 12.5 frames at 25, which rounds up.
            assert_eq!(t.frames(), rate.nominal_fps().div_ceil(2));
        }
        let rate = TimecodeRate::Fps60;
        assert_eq!(at(hms(23, 59, 59) + 991_666_999, rate), "23:59:59:59");
        assert_eq!(at(hms(23, 59, 59) + 991_667_000, rate), "00:00:00:00");
    }

    #[test]
    fn time_of_day_at_drop_frame_rates() {
        let df = TimecodeRate::Fps29_97Df;
        for (nanos, label) in [
            (0, "00:00:00;00"),
            (16_683_999, "00:00:00;00"),
            (16_684_000, "00:00:00;01"),
            (hms(1, 0, 0), "01:00:00;00"),
            // The known pair: ;29 then ;02 of the next minute.
            (hms(10, 10, 59) + 984_316_999, "10:10:59;29"),
            (hms(10, 10, 59) + 984_317_000, "10:11:00;02"),
            // ;00 and ;01 do not exist: their time gets ;02.
            (hms(10, 11, 0), "10:11:00;02"),
            (hms(10, 11, 0) + 50_000_000, "10:11:00;02"),
            (hms(10, 11, 0) + 83_416_999, "10:11:00;02"),
            (hms(10, 11, 0) + 83_417_000, "10:11:00;03"),
            (hms(10, 11, 1), "10:11:01;00"),
            // Every tenth minute keeps them.
            (hms(0, 9, 59) + 984_317_000, "00:10:00;00"),
            (hms(0, 10, 0) + 20_000_000, "00:10:00;01"),
            (hms(23, 59, 59) + 984_316_999, "23:59:59;29"),
            (hms(23, 59, 59) + 984_317_000, "00:00:00;00"),
            (NANOS_PER_DAY - 1, "00:00:00;00"),
            (NANOS_PER_DAY, "00:00:00;00"),
            (u64::MAX, "00:00:00;00"),
        ] {
            assert_eq!(at(nanos, df), label, "{nanos}");
        }
        let df60 = TimecodeRate::Fps59_94Df;
        assert_eq!(at(hms(0, 0, 59) + 992_658_999, df60), "00:00:59;59");
        assert_eq!(at(hms(0, 0, 59) + 992_659_000, df60), "00:01:00;04");
        assert_eq!(at(hms(0, 1, 0), df60), "00:01:00;04");
        assert_eq!(at(hms(0, 10, 0), df60), "00:10:00;00");
        assert_eq!(at(NANOS_PER_DAY - 1, df60), "00:00:00;00");
    }

    #[test]
    fn time_of_day_at_23_976_follows_the_clock() {
        let rate = TimecodeRate::Fps23_976;
        assert_eq!(at(hms(1, 0, 0), rate), "01:00:00:00");
        assert_eq!(at(hms(12, 0, 0) + 500_000_000, rate), "12:00:00:12");
        assert_eq!(at(hms(23, 59, 59) + 980_145_999, rate), "23:59:59:23");
        assert_eq!(at(hms(23, 59, 59) + 980_146_000, rate), "00:00:00:00");
        assert_eq!(at(NANOS_PER_DAY - 1, rate), "00:00:00:00");
    }

    #[test]
    fn clock_ranges() {
        let range = |label: &str, rate| tc(label, rate).clock_range_nanos();
        let i = |n: u64| i64::try_from(n).expect("fits");
        let rate = TimecodeRate::Fps25;
        assert_eq!(range("00:00:00:00", rate), -20_000_000..20_000_000);
        let base = i(hms(14, 23, 12));
        assert_eq!(
            range("14:23:12:01", rate),
            base + 20_000_000..base + 60_000_000
        );
        assert_eq!(
            range("23:59:59:24", rate),
            i(hms(23, 59, 59)) + 940_000_000..i(hms(23, 59, 59)) + 980_000_000
        );
        let df = TimecodeRate::Fps29_97Df;
        assert_eq!(
            range("01:04:00;02", df),
            i(hms(1, 3, 59)) + 984_317_000..i(hms(1, 4, 0)) + 83_417_000
        );
        assert_eq!(
            range("23:59:59;29", df),
            i(hms(23, 59, 59)) + 950_950_000..i(hms(23, 59, 59)) + 984_317_000
        );
        assert_eq!(instant_of_frame(0, df), 0);
        assert_eq!(instant_of_frame(df.frames_per_day(), df), 0);
        assert_eq!(instant_of_frame(115_086, df), hms(1, 3, 59) + 984_317_000);
        assert_eq!(frame_at_time_of_day(hms(1, 4, 0), df), 115_086);
        assert_eq!(frame_at_time_of_day(NANOS_PER_DAY - 1, df), 0);
    }

    #[test]
    fn at_utc_uses_the_utc_time_of_day() {
        let rate = TimecodeRate::Fps25;
        let utc = datetime!(2026-11-21 14:23:12.000123 UTC);
        let paris = datetime!(2026-11-21 15:23:12.000123 +01:00);
        let tokyo = datetime!(2026-11-22 0:23:12.000123 +10:00);
        let hawaii = datetime!(2026-11-21 4:23:12.000123 -10:00);
        for dt in [utc, paris, tokyo, hawaii] {
            assert_eq!(
                Timecode::at_utc(dt, rate).to_string(),
                "14:23:12:00",
                "{dt}"
            );
            assert_eq!(utc_nanos_since_midnight(dt), hms(14, 23, 12) + 123_000);
        }
        let extreme = datetime!(9999-12-31 23:59:59.999999999 -23:59:59);
        assert_eq!(
            utc_nanos_since_midnight(extreme),
            hms(23, 59, 58) + 999_999_999
        );
    }

    fn args(rate: TimecodeRate) -> TimecodeArgs {
        TimecodeArgs {
            rate,
            frames: None,
            tc: None,
            at: None,
            json: false,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-21 14:23:12.000123 UTC);

    #[test]
    fn run_with_each_source() {
        let df = TimecodeRate::Fps29_97Df;
        let out = run_with_now(
            &TimecodeArgs {
                frames: Some(115_086),
                ..args(df)
            },
            NOW,
        )
        .expect("frames");
        assert!(out.contains("01:04:00;02"), "{out}");
        assert!(out.contains("115086"), "{out}");
        assert!(out.contains("30000/1001 fps, drop-frame"), "{out}");
        assert!(
            out.contains("label from:    01:03:59.984317000 UTC\n"),
            "{out}"
        );
        assert!(
            out.ends_with("label until:   01:04:00.083417000 UTC"),
            "{out}"
        );
        assert!(!out.contains("instant"), "{out}");

        let out = run_with_now(
            &TimecodeArgs {
                tc: Some("10:11:00;02".into()),
                ..args(df)
            },
            NOW,
        )
        .expect("tc");
        assert!(
            out.contains("10:11:00;02") && out.contains("1098702"),
            "{out}"
        );

        let at = "2026-11-21T15:23:12.000123+01:00";
        let out = run_with_now(
            &TimecodeArgs {
                at: Some(at.into()),
                ..args(TimecodeRate::Fps25)
            },
            NOW,
        )
        .expect("at");
        assert!(out.contains("14:23:12:00"), "{out}");
        assert!(out.contains("25/1 fps, non-drop-frame"), "{out}");
        assert!(out.contains("2026-11-21T14:23:12.000123Z"), "{out}");
        assert!(
            out.contains("label from:    2026-11-21T14:23:11.98Z"),
            "{out}"
        );
        assert!(
            out.contains("label until:   2026-11-21T14:23:12.02Z"),
            "{out}"
        );

        let spaced = TimecodeArgs {
            at: Some(" 2026-11-21 14:23:12.000123Z ".into()),
            ..args(TimecodeRate::Fps25)
        };
        assert_eq!(run_with_now(&spaced, NOW).expect("space for T"), out);

        // 23.976 labels follow the clock to the end of the day.
        let late = TimecodeArgs {
            frames: Some(2_073_599),
            ..args(TimecodeRate::Fps23_976)
        };
        let out_late = run_with_now(&late, NOW).expect("late 23.976 label");
        assert!(out_late.contains("23:59:59:23"), "{out_late}");
        assert!(
            out_late.contains("from:    23:59:59.938438000 UTC\n"),
            "{out_late}"
        );
        assert!(
            out_late.ends_with("until:   23:59:59.980146000 UTC"),
            "{out_late}"
        );

        // The last half frame of a day has the next day's first label.
        let midnight = TimecodeArgs {
            frames: Some(0),
            ..args(TimecodeRate::Fps25)
        };
        let out_midnight = run_with_now(&midnight, NOW).expect("midnight");
        assert!(
            out_midnight.contains("from:    23:59:59.980000000 UTC (the day before)\n"),
            "{out_midnight}"
        );
        assert!(
            out_midnight.ends_with("until:   00:00:00.020000000 UTC"),
            "{out_midnight}"
        );
        let tail = TimecodeArgs {
            at: Some("2026-11-21T23:59:59.99Z".into()),
            ..args(TimecodeRate::Fps25)
        };
        let out_tail = run_with_now(&tail, NOW).expect("tail");
        for needle in [
            "timecode:      00:00:00:00\n",
            "from:    2026-11-21T23:59:59.98Z\n",
            "until:   2026-11-22T00:00:00.02Z\n",
            "instant:       2026-11-21T23:59:59.99Z",
        ] {
            assert!(out_tail.contains(needle), "{needle} in {out_tail}");
        }

        let now = run_with_now(&args(TimecodeRate::Fps25), NOW).expect("now");
        assert_eq!(now, out);
        assert!(run(&args(TimecodeRate::Fps60)).is_ok());
    }

    #[test]
    fn run_json() {
        let out = run_with_now(
            &TimecodeArgs {
                json: true,
                ..args(TimecodeRate::Fps59_94Df)
            },
            NOW,
        )
        .expect("json");
        assert!(!out.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(value["source"], "now");
        assert_eq!(value["rate"], "59.94");
        assert_eq!(value["fps_num"], 60_000);
        assert_eq!(value["fps_den"], 1001);
        assert_eq!(value["drop_frame"], true);
        assert_eq!(value["instant_utc"], "2026-11-21T14:23:12.000123Z");
        let label = value["timecode"].as_str().expect("timecode string");
        let t = tc(label, TimecodeRate::Fps59_94Df);
        assert_eq!(value["frames_since_midnight"], t.frame_count());
        let range = t.clock_range_nanos();
        assert_eq!(value["label_from_nanos_since_midnight"], range.start);
        assert_eq!(value["label_until_nanos_since_midnight"], range.end);
        assert!(range.contains(&i64::try_from(hms(14, 23, 12) + 123_000).expect("fits")));
        assert_eq!(value["label_from_utc"], "2026-11-21T14:23:11.992659Z");
        assert_eq!(value["label_until_utc"], "2026-11-21T14:23:12.008342Z");

        let out = run_with_now(
            &TimecodeArgs {
                json: true,
                frames: Some(0),
                ..args(TimecodeRate::Fps25)
            },
            NOW,
        )
        .expect("json");
        let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert!(value["instant_utc"].is_null());
        assert!(value["label_from_utc"].is_null());
        assert_eq!(value["label_from_nanos_since_midnight"], -20_000_000);
        assert_eq!(value["label_until_nanos_since_midnight"], 20_000_000);
    }

    #[test]
    fn run_errors() {
        let rate = TimecodeRate::Fps25;
        let err = run_with_now(
            &TimecodeArgs {
                frames: Some(2_160_000),
                ..args(rate)
            },
            NOW,
        );
        assert!(
            matches!(
                err,
                Err(TimecodeError::FrameCountOutOfRange {
                    last: 2_159_999,
                    ..
                })
            ),
            "{err:?}"
        );
        let err = run_with_now(
            &TimecodeArgs {
                at: Some("2026-11-21 14:23:12".into()),
                ..args(rate)
            },
            NOW,
        );
        assert!(
            matches!(err, Err(TimecodeError::InvalidInstant { .. })),
            "{err:?}"
        );
        let err = run_with_now(
            &TimecodeArgs {
                frames: Some(1),
                tc: Some("00:00:00:01".into()),
                ..args(rate)
            },
            NOW,
        );
        assert_eq!(err, Err(TimecodeError::ConflictingSources));
        let err = run_with_now(
            &TimecodeArgs {
                tc: Some("00:01:00;00".into()),
                ..args(TimecodeRate::Fps29_97Df)
            },
            NOW,
        );
        assert!(
            matches!(err, Err(TimecodeError::DroppedLabel { .. })),
            "{err:?}"
        );
        let far = "9999-12-31T23:00:00-05:00";
        let err = run_with_now(
            &TimecodeArgs {
                at: Some(far.into()),
                ..args(rate)
            },
            NOW,
        );
        assert!(
            matches!(err, Err(TimecodeError::InstantOutOfRange { .. })),
            "{err:?}"
        );
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Command {
        Timecode(TimecodeArgs),
        /// A doc comment here replaces the struct's about and long_about, as
        /// in the real CLI.
        Documented(TimecodeArgs),
    }

    fn parse_cli(argv: &[&str]) -> Result<TimecodeArgs, clap::Error> {
        use clap::Parser as _;
        Cli::try_parse_from(["croupier", "timecode"].iter().chain(argv)).map(|cli| {
            match cli.command {
                Command::Timecode(args) | Command::Documented(args) => args,
            }
        })
    }

    #[test]
    fn cli_parsing() {
        let defaults = parse_cli(&[]).expect("no flags");
        assert_eq!(defaults, args(TimecodeRate::Fps25));
        let parsed =
            parse_cli(&["--rate", "30000/1001", "--tc", "10:11:00;02", "--json"]).expect("tc");
        assert_eq!(parsed.rate, TimecodeRate::Fps29_97Df);
        assert_eq!(parsed.tc.as_deref(), Some("10:11:00;02"));
        assert!(parsed.json);
        assert!(parse_cli(&["--frames", "1", "--tc", "00:00:00:01"]).is_err());
        assert!(parse_cli(&["--frames", "1", "--at", "2026-11-21T14:23:12Z"]).is_err());
        assert!(parse_cli(&["--tc", "00:00:00:01", "--at", "2026-11-21T14:23:12Z"]).is_err());
        assert!(parse_cli(&["--frames", "-1"]).is_err());
        let err = parse_cli(&["--rate", "29.976"])
            .expect_err("bad rate")
            .to_string();
        assert!(
            err.contains("29.97 (drop-frame)") && err.contains("23.976"),
            "{err}"
        );
    }

    #[test]
    fn cli_help_has_an_example() {
        use clap::CommandFactory as _;
        let mut command = Cli::command();
        for name in ["timecode", "documented"] {
            let sub = command.find_subcommand_mut(name).expect("subcommand");
            let long = sub.render_long_help().to_string();
            let short = sub.render_help().to_string();
            for help in [&long, &short] {
                for needle in [
                    "--rate",
                    "--frames",
                    "--tc",
                    "--at",
                    "--json",
                    "Examples:",
                    "--tc '10:11:00;02'",
                    "at most one of",
                    "[default: 25]",
                ] {
                    assert!(help.contains(needle), "{needle} missing from:\n{help}");
                }
            }
        }
        let plain = command.find_subcommand_mut("timecode").expect("subcommand");
        let long = plain.render_long_help().to_string();
        assert!(long.contains("For example, `croupier timecode"), "{long}");
    }
}
