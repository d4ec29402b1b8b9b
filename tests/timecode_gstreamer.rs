//! Croupier's timecode against GStreamer's `GstVideoTimeCode`, the
//! implementation the video pipeline stamps frames with (`timecodestamper`).
//!
//! The answers come from GStreamer itself, through `tests/gst_timecode.py`
//! and the system Python's GObject bindings (Debian's python3-gi,
//! gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0, which
//! `scripts/install-deps.sh` installs for `make test`). Without them these
//! tests fail rather than skip: a skipped comparison would let the labels
//! drift from the pipeline's unnoticed.
//!
//! Each test sends all its queries to one Python process and reads one JSON
//! line per query, so that the whole file runs in a few seconds.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use croupier::timecode::*;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

/// The system Python: the one with Debian's `gi` module (a pyenv or venv
/// Python earlier on PATH usually lacks it).
const PYTHON: &str = "/usr/bin/python3";
const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gst_timecode.py");
/// What `tests/gst_timecode.py` exits with when the bindings are missing.
const EXIT_NO_BINDINGS: i32 = 3;
const MISSING: &str = "GStreamer's Python bindings are needed to compare Croupier's timecode \
     with GStreamer's: `make test` installs them (scripts/install-deps.sh installs python3-gi, \
     gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0), or install those Debian packages \
     by hand";

/// Sends `queries` to one oracle process and returns its answers, in order,
/// each checked to echo its query and to carry no error.
fn ask(queries: &[String]) -> Vec<Value> {
    let mut child = Command::new(PYTHON)
        .arg(ORACLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {PYTHON} {ORACLE}: {err}. {MISSING}"));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input: String = queries.iter().map(|q| format!("{q}\n")).collect();
    // Written from a thread so that neither side blocks on a full pipe.
    let writer = std::thread::spawn(move || {
        // A write error means the oracle died; its exit status says why.
        let _ = stdin.write_all(input.as_bytes());
    });
    let stdout = child.stdout.take().expect("stdout piped");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map(|line| line.expect("oracle output is UTF-8"))
        .collect();
    let _ = writer.join();
    let output = child.wait_with_output().expect("oracle exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(EXIT_NO_BINDINGS) {
        panic!("{MISSING}.\n{PYTHON} said: {stderr}");
    }
    assert!(
        output.status.success(),
        "{PYTHON} {ORACLE} failed ({}): {stderr}",
        output.status
    );
    assert_eq!(
        lines.len(),
        queries.len(),
        "the oracle answered {} of {} queries; stderr: {stderr}",
        lines.len(),
        queries.len()
    );
    queries
        .iter()
        .zip(lines)
        .map(|(query, line)| {
            let answer: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("oracle line {line:?} is not JSON: {err}"));
            assert_eq!(answer["q"], query.as_str(), "answers out of order");
            assert!(answer.get("error").is_none(), "oracle refused: {answer}");
            answer
        })
        .collect()
}

/// The rate as the oracle reads it: `30000/1001df`.
fn oracle_rate(rate: TimecodeRate) -> String {
    let (num, den) = rate.fraction();
    let df = if rate.is_drop_frame() { "df" } else { "" };
    format!("{num}/{den}{df}")
}

/// SplitMix64: a fixed seed gives the same "random" cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Collects disagreements and reports them all at once.
#[derive(Default)]
struct Mismatches {
    count: usize,
    shown: Vec<String>,
}

impl Mismatches {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.count += 1;
            if self.shown.len() < 25 {
                self.shown.push(what());
            }
        }
    }

    fn assert_none(self, checked: usize, topic: &str) {
        assert!(
            self.count == 0,
            "{} of {checked} {topic} differ from GStreamer's, for example:\n  {}",
            self.count,
            self.shown.join("\n  ")
        );
    }
}

/// Every frame within 3 of a minute boundary, all 1440 minutes of the day,
/// then `random` frames anywhere in the day and a few past its end.
fn frame_counts(rate: TimecodeRate, rng: &mut Rng, random: usize) -> Vec<u64> {
    let day = rate.frames_per_day();
    let mut frames = Vec::new();
    for minute in 0..1440 {
        let first = Timecode::new(minute / 60, minute % 60, 0, 0, rate)
            .or_else(|_| {
                Timecode::new(
                    minute / 60,
                    minute % 60,
                    0,
                    rate.dropped_labels_per_minute(),
                    rate,
                )
            })
            .expect("a minute's first label")
            .frame_count();
        frames.extend((first.saturating_sub(3)..=first + 3).filter(|&n| n < day));
    }
    frames.extend((0..random).map(|_| rng.below(day)));
    frames.extend([day - 1, day, day + 1, 2 * day + 12_345]);
    frames
}

#[test]
fn frame_counts_to_labels_match_gstreamer() {
    let mut rng = Rng(0x0C0F_FEE0_2026_0001);
    let cases: Vec<(TimecodeRate, u64)> = TimecodeRate::ALL
        .iter()
        .flat_map(|&rate| {
            frame_counts(rate, &mut rng, 2000)
                .into_iter()
                .map(move |n| (rate, n))
        })
        .collect();
    let queries: Vec<String> = cases
        .iter()
        .map(|&(rate, n)| format!("frames {} {n}", oracle_rate(rate)))
        .collect();
    let answers = ask(&queries);
    let mut mismatches = Mismatches::default();
    for (&(rate, n), answer) in cases.iter().zip(&answers) {
        let ours = Timecode::from_frame_count(n, rate);
        let label = ours.to_string();
        mismatches.check(answer["label"] == label.as_str(), || {
            format!("frame {n} at {rate}: Croupier {label}, GStreamer {answer}")
        });
        mismatches.check(answer["frames"] == ours.frame_count(), || {
            format!(
                "frame {n} at {rate}: Croupier counts {label} as {}, GStreamer {answer}",
                ours.frame_count()
            )
        });
    }
    mismatches.assert_none(cases.len(), "frame counts");
}

#[test]
fn labels_to_frame_counts_match_gstreamer() {
    let mut rng = Rng(0x0C0F_FEE0_2026_0002);
    let mut cases: Vec<(TimecodeRate, [u32; 4])> = Vec::new();
    for &rate in TimecodeRate::ALL {
        let nominal = rate.nominal_fps();
        // The labels around every minute boundary and random ones, as
        // Croupier writes them.
        for n in frame_counts(rate, &mut rng, 1000) {
            let t = Timecode::from_frame_count(n, rate);
            cases.push((rate, [t.hours(), t.minutes(), t.seconds(), t.frames()]));
        }
        // Labels that may not exist: the first frames of every minute
        // (skipped at drop-frame rates), and fields one past their range.
        for minute in 0..1440 {
            for frames in 0..4 {
                cases.push((rate, [minute / 60, minute % 60, 0, frames]));
            }
        }
        for fields in [
            [24, 0, 0, 0],
            [0, 60, 0, 0],
            [0, 0, 60, 0],
            [0, 0, 0, nominal],
            [23, 59, 59, nominal - 1],
        ] {
            cases.push((rate, fields));
        }
    }
    let text = |[h, m, s, f]: [u32; 4]| format!("{h:02}:{m:02}:{s:02}:{f:02}");
    let queries: Vec<String> = cases
        .iter()
        .map(|&(rate, fields)| format!("label {} {}", oracle_rate(rate), text(fields)))
        .collect();
    let answers = ask(&queries);
    let mut mismatches = Mismatches::default();
    for (&(rate, fields), answer) in cases.iter().zip(&answers) {
        let [h, m, s, f] = fields;
        let ours = Timecode::new(h, m, s, f, rate);
        let label = text(fields);
        mismatches.check(answer["valid"] == ours.is_ok(), || {
            format!("{label} at {rate}: Croupier {ours:?}, GStreamer {answer}")
        });
        if let (Ok(t), Some(true)) = (ours, answer["valid"].as_bool()) {
            mismatches.check(answer["frames"] == t.frame_count(), || {
                format!(
                    "{label} at {rate}: Croupier frame {}, GStreamer {answer}",
                    t.frame_count()
                )
            });
            let next = t.add_frames(1).to_string();
            mismatches.check(answer["next"] == next.as_str(), || {
                format!("{label} at {rate}: Croupier next {next}, GStreamer {answer}")
            });
        }
    }
    mismatches.assert_none(cases.len(), "labels");
}

/// The examples in issue 4, from GStreamer and from Croupier.
#[test]
fn known_values_match_gstreamer() {
    let df = TimecodeRate::Fps29_97Df;
    let rate = oracle_rate(df);
    let answers = ask(&[
        "version".to_owned(),
        format!("label {rate} 10:10:59;29"),
        format!("label {rate} 01:04:00;02"),
        format!("frames {rate} 115086"),
        format!("label {rate} 10:11:00;00"),
    ]);
    eprintln!("oracle: {}", answers[0]["gstreamer"]);
    assert!(
        answers[0]["gstreamer"]
            .as_str()
            .is_some_and(|v| v.starts_with("GStreamer 1.")),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1]["next"], "10:11:00;02", "{}", answers[1]);
    assert_eq!(answers[2]["frames"], 115_086, "{}", answers[2]);
    assert_eq!(answers[3]["label"], "01:04:00;02", "{}", answers[3]);
    assert_eq!(answers[4]["valid"], false, "{}", answers[4]);

    let tc = |s: &str| Timecode::parse(s, df).expect(s);
    assert_eq!(tc("10:10:59;29").add_frames(1).to_string(), "10:11:00;02");
    assert_eq!(tc("01:04:00;02").frame_count(), 115_086);
    assert_eq!(
        Timecode::from_frame_count(115_086, df).to_string(),
        "01:04:00;02"
    );
    assert!(matches!(
        Timecode::parse("10:11:00;00", df),
        Err(TimecodeError::DroppedLabel { .. })
    ));
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Times of day within a second worth testing at `rate`: the first and
/// last microseconds, and each microsecond around the points where the
/// fraction of the second rounds to the next frame, `(F - ½) / fps`.
fn micros_around_frame_edges(rate: TimecodeRate) -> Vec<u64> {
    let (num, den) = rate.fraction();
    let mut micros = vec![0, 1, 999_998, 999_999];
    for frames in 1..=rate.nominal_fps() {
        let edge = (f64::from(frames) - 0.5) * f64::from(den) * 1e6 / f64::from(num);
        // A float is close enough to pick the microseconds to ask about;
        // GStreamer gives the answers.
        let edge = edge.floor() as i64;
        micros.extend(
            (edge - 1..=edge + 2)
                .filter(|us| (0..1_000_000).contains(us))
                .map(|us| us as u64),
        );
    }
    micros
}

#[test]
fn instants_to_labels_match_gstreamer() {
    let mut rng = Rng(0x0C0F_FEE0_2026_0003);
    // 2000-01-01 to 2099-12-31, in days since the Unix epoch.
    let first_day = 10_957_i128;
    let days = 36_524_u64;
    let random_day = |rng: &mut Rng| first_day + i128::from(rng.below(days));
    let special_seconds = [
        (0, 0, 0),
        (0, 0, 1),
        (0, 0, 59),
        (0, 1, 0),
        (0, 9, 59),
        (0, 10, 0),
        (10, 10, 59),
        (10, 11, 0),
        (12, 34, 56),
        (23, 58, 59),
        (23, 59, 0),
        (23, 59, 59),
    ];
    let offsets = [
        UtcOffset::UTC,
        UtcOffset::from_hms(1, 0, 0).expect("offset"),
        UtcOffset::from_hms(-10, 0, 0).expect("offset"),
        UtcOffset::from_hms(5, 45, 0).expect("offset"),
    ];
    let mut cases: Vec<(TimecodeRate, OffsetDateTime)> = Vec::new();
    for &rate in TimecodeRate::ALL {
        let mut add = |rng: &mut Rng, unix_nanos: i128| {
            let offset = offsets[usize::try_from(rng.below(4)).expect("small")];
            let instant = OffsetDateTime::from_unix_timestamp_nanos(unix_nanos)
                .expect("instant in range")
                .to_offset(offset);
            cases.push((rate, instant));
        };
        // Second, minute and day boundaries, and every frame edge in
        // a few seconds, with random nanoseconds below the microsecond.
        for (h, m, s) in special_seconds {
            let second = random_day(&mut rng) * 86_400 + i128::from((h * 60 + m) * 60 + s);
            for us in micros_around_frame_edges(rate) {
                let nanos = i128::from(us) * 1000 + i128::from(rng.below(1000));
                add(&mut rng, second * NANOS_PER_SECOND + nanos);
            }
        }
        // Random instants.
        for _ in 0..500 {
            let nanos = random_day(&mut rng) * 86_400 * NANOS_PER_SECOND
                + i128::from(rng.below(NANOS_PER_DAY));
            add(&mut rng, nanos);
        }
    }
    let queries: Vec<String> = cases
        .iter()
        .map(|&(rate, instant)| {
            let nanos = instant.unix_timestamp_nanos();
            format!(
                "at {} {} {}",
                oracle_rate(rate),
                nanos.div_euclid(NANOS_PER_SECOND),
                nanos.rem_euclid(NANOS_PER_SECOND) / 1000
            )
        })
        .collect();
    let answers = ask(&queries);
    let mut mismatches = Mismatches::default();
    let mut seen = HashSet::new();
    for (&(rate, instant), answer) in cases.iter().zip(&answers) {
        let ours = Timecode::at_utc(instant, rate);
        let label = ours.to_string();
        mismatches.check(
            answer["label"] == label.as_str() && answer["valid"] == true,
            || format!("{instant} at {rate}: Croupier {label}, GStreamer {answer}"),
        );
        // The range Croupier gives for the label holds the instant.
        let nanos = i64::try_from(utc_nanos_since_midnight(instant)).expect("fits");
        let day = i64::try_from(NANOS_PER_DAY).expect("fits");
        let range = ours.clock_range_nanos();
        mismatches.check(
            range.contains(&nanos) || range.contains(&(nanos - day)),
            || format!("{instant} at {rate}: {label} is given to {range:?} only"),
        );
        seen.insert((rate, label));
    }
    mismatches.assert_none(cases.len(), "instants");
    // The cases did reach the end of the day's wrap and the drop-frame
    // minute starts.
    for (rate, label) in [
        (TimecodeRate::Fps25, "00:00:00:00"),
        (TimecodeRate::Fps25, "23:59:59:24"),
        (TimecodeRate::Fps29_97Df, "10:11:00;02"),
        (TimecodeRate::Fps29_97Df, "10:10:59;29"),
        (TimecodeRate::Fps59_94Df, "00:01:00;04"),
        (TimecodeRate::Fps23_976, "23:59:59:23"),
    ] {
        assert!(
            seen.contains(&(rate, label.to_owned())),
            "no case gave {label} at {rate}"
        );
    }
}
