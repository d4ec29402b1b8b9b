//! The roulette pocket, from a camera looking down on the wheel: a second witness for the
//! wheel's own number.
//!
//! The wheel turns, so no pocket has a fixed place in the picture. Around the calibrated pocket
//! ring the reader samples colour at every half degree: the green pocket (two, opposite, on an
//! American wheel) gives the wheel's rotation, and the ball (the whitest arc of the ring, much
//! whiter than the ring's median) gives its angle. The pocket is the ball's angle from zero,
//! counted in pockets clockwise along the layout's order. On an American wheel, 0 is told from
//! 00 by its clockwise neighbour (28, black, after 0; 27, red, after 00).
//!
//! Nothing is reported when no ball sits in the ring (it is still on the track, or gone), when
//! the ball sits on a separator rather than in a pocket, or when the greens cannot be found.

use opencv::core::{Mat, Vec3b};
use opencv::prelude::*;
use serde::Serialize;

use crate::calibration::{Thresholds, WheelGeometry};
use crate::VisionError;

/// Pocket order clockwise from zero.
pub const EUROPEAN: [&str; 37] = [
    "0", "32", "15", "19", "4", "21", "2", "25", "17", "34", "6", "27", "13", "36", "11", "30",
    "8", "23", "10", "5", "24", "16", "33", "1", "20", "14", "31", "9", "22", "18", "29", "7",
    "28", "12", "35", "3", "26",
];
pub const AMERICAN: [&str; 38] = [
    "0", "28", "9", "26", "30", "11", "7", "20", "32", "17", "5", "22", "34", "15", "3", "24",
    "36", "13", "1", "00", "27", "10", "25", "29", "12", "8", "19", "31", "18", "6", "21", "33",
    "16", "4", "23", "35", "14", "2",
];

const STEPS: usize = 720;

/// The pocket the ball rests in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PocketRead {
    pub number: String,
    pub layout: &'static str,
    /// 0…1: 1 when the ball sits in the middle of its pocket.
    pub confidence: f64,
    pub ball_angle_deg: f64,
    pub zero_angle_deg: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    green: f64,
    white: f64,
    red: f64,
}

/// Reads the pocket of the ball at rest, if there is one.
pub fn read_pocket(
    frame: &Mat,
    wheel: &WheelGeometry,
    thresholds: &Thresholds,
) -> Result<Option<PocketRead>, VisionError> {
    let ring = sample_ring(frame, wheel)?;
    let step = 360.0 / STEPS as f64;
    // Greens: arcs where green dominates; their centres.
    let greens = arcs(&ring.iter().map(|s| s.green > 40.0).collect::<Vec<_>>());
    let layout: &'static str = match (wheel.layout.as_str(), greens.len()) {
        ("european", 1) | ("auto", 1) => "european",
        ("american", 2) | ("auto", 2) => "american",
        _ => return Ok(None),
    };
    let order: &[&str] = if layout == "european" {
        &EUROPEAN
    } else {
        &AMERICAN
    };
    let pocket = 360.0 / order.len() as f64;
    let zero = if layout == "european" {
        greens[0] * step
    } else {
        // Opposite greens; the one followed clockwise by a black pocket is 0.
        let (a, b) = (greens[0] * step, greens[1] * step);
        let redness_after = |angle: f64| {
            let i = ((angle + pocket) / step).round() as usize % STEPS;
            ring[i].red
        };
        if redness_after(a) < redness_after(b) {
            a
        } else {
            b
        }
    };
    // The ball: the whitest arc, far whiter than the ring as a whole.
    let mut whites: Vec<f64> = ring.iter().map(|s| s.white).collect();
    let smooth: Vec<f64> = (0..STEPS)
        .map(|i| {
            let w = (pocket / step / 3.0).max(1.0) as usize;
            let sum: f64 = (0..=2 * w)
                .map(|k| ring[(i + STEPS + k - w) % STEPS].white)
                .sum();
            sum / (2 * w + 1) as f64
        })
        .collect();
    whites.sort_by(f64::total_cmp);
    let median = whites[STEPS / 2];
    let (peak_i, peak) = smooth
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, v)| (i, *v))
        .unwrap_or((0, 0.0));
    if peak - median < thresholds.ball_min_contrast {
        return Ok(None);
    }
    // The ball's centre: the middle of the arc around the peak that stays near the peak.
    let half = (peak + median) / 2.0;
    let (mut lo, mut hi) = (peak_i as isize, peak_i as isize);
    while smooth[(lo - 1).rem_euclid(STEPS as isize) as usize] > half && peak_i as isize - lo < 60 {
        lo -= 1;
    }
    while smooth[(hi + 1).rem_euclid(STEPS as isize) as usize] > half && hi - (peak_i as isize) < 60
    {
        hi += 1;
    }
    let ball = ((lo + hi) as f64 / 2.0 * step).rem_euclid(360.0);
    let from_zero = (ball - zero).rem_euclid(360.0) / pocket;
    let index = from_zero.round();
    let offset = (from_zero - index).abs();
    if offset > thresholds.pocket_max_offset {
        return Ok(None);
    }
    let number = order[(index as usize) % order.len()];
    Ok(Some(PocketRead {
        number: number.to_owned(),
        layout,
        confidence: (1.0 - 2.0 * offset).clamp(0.0, 1.0),
        ball_angle_deg: ball,
        zero_angle_deg: zero,
    }))
}

/// Colour around the pocket ring, at every half degree clockwise from image up.
fn sample_ring(frame: &Mat, wheel: &WheelGeometry) -> Result<Vec<Sample>, VisionError> {
    let [cx, cy] = wheel.centre_px;
    let (r0, r1) = (wheel.pocket_ring_px.inner, wheel.pocket_ring_px.outer);
    let (cols, rows) = (frame.cols(), frame.rows());
    let mut out = vec![Sample::default(); STEPS];
    let radii = 7;
    for (i, s) in out.iter_mut().enumerate() {
        let a = (i as f64 * 360.0 / STEPS as f64).to_radians();
        let (mut g, mut w, mut r, mut n) = (0.0, 0.0f64, 0.0, 0.0);
        for k in 0..radii {
            let rad = r0 + (r1 - r0) * (k as f64 + 0.5) / radii as f64;
            let x = (cx + rad * a.sin()).round() as i32;
            let y = (cy - rad * a.cos()).round() as i32;
            if x < 0 || y < 0 || x >= cols || y >= rows {
                continue;
            }
            let px = frame.at_2d::<Vec3b>(y, x)?;
            let (b, gr, rd) = (f64::from(px[0]), f64::from(px[1]), f64::from(px[2]));
            g += gr - b.max(rd);
            // Whiteness: bright in every channel at once.
            w = w.max(b.min(gr).min(rd));
            r += rd - b.max(gr);
            n += 1.0;
        }
        if n > 0.0 {
            *s = Sample {
                green: g / n,
                white: w,
                red: r / n,
            };
        }
    }
    Ok(out)
}

/// Centres (in steps) of the runs of `true` around the circle, ignoring one-step runs.
fn arcs(flags: &[bool]) -> Vec<f64> {
    let n = flags.len();
    if flags.iter().all(|f| *f) || flags.iter().all(|f| !*f) {
        return Vec::new();
    }
    // Start just after a false so no run wraps.
    let start = (0..n).find(|&i| !flags[i]).unwrap_or(0);
    let mut out = Vec::new();
    let mut run: Option<usize> = None;
    for k in 1..=n {
        let i = (start + k) % n;
        match (flags[i], run) {
            (true, None) => run = Some(k),
            (false, Some(b)) => {
                if k - b >= 2 {
                    out.push(((start + b) as f64 + (k - b - 1) as f64 / 2.0) % n as f64);
                }
                run = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_find_runs_around_the_circle() {
        let mut f = vec![false; 720];
        f[100..111].fill(true);
        f[460..471].fill(true);
        f[300] = true; // a speck
        assert_eq!(arcs(&f), vec![105.0, 465.0]);
        let mut wrap = vec![false; 720];
        for i in (715..720).chain(0..6) {
            wrap[i] = true;
        }
        let got = arcs(&wrap);
        assert_eq!(got.len(), 1);
        assert!(
            (got[0] - 0.0).abs() < 1e-9 || (got[0] - 720.0).abs() < 1e-9,
            "{got:?}"
        );
    }

    #[test]
    fn the_layouts_hold_every_number_once() {
        let mut e: Vec<&str> = EUROPEAN.to_vec();
        e.sort_unstable();
        e.dedup();
        assert_eq!(e.len(), 37);
        let mut a: Vec<&str> = AMERICAN.to_vec();
        a.sort_unstable();
        a.dedup();
        assert_eq!(a.len(), 38);
        // 0 and 00 sit opposite on an American wheel.
        let zz = AMERICAN.iter().position(|n| *n == "00").expect("00");
        assert_eq!(zz, 19);
    }
}
