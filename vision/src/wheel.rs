//! The roulette pocket, from a camera looking down on the wheel: a second witness for the
//! wheel's own number.
//!
//! The wheel turns, so no pocket has a fixed place in the picture. Everything is sampled on the
//! wheel's own plane, through the calibrated wheel-to-image map (a homography when the
//! calibration has one, else a circle around the calibrated centre), so a tilted camera's
//! ellipse is read as the circle it is.
//!
//! 1. **Rotation.** Around the pocket ring, each half degree's colour is scored for red and for
//!    green. The layout's whole colour sequence (red, black, green, pocket by pocket) is slid
//!    around the ring and the best fit gives the zero's angle. The whole sequence, not the green
//!    pocket alone, decides: glare over the zero, or the ball in it, leaves 36 other pockets to
//!    place the wheel, and 0 is told from 00 by where the red/black alternation breaks. With
//!    `auto`, both layouts are tried and the better fit names the layout.
//! 2. **Ball.** The ring is unrolled (one pixel per wheel unit, radius by arc length) in the
//!    darkest channel, where red, black and green pockets are all dark and the ivory ball is
//!    bright; a ball-sized disc is matched there by normalised correlation. Normalising makes
//!    the match blind to glare (which lifts a patch towards white, an offset and a gain), and a
//!    disc barely matches the frets and ring edges, which are thin lines.
//! 3. **Pocket.** The ball's angle from zero, counted in pockets clockwise along the layout's
//!    order; a ball too close to a fret to be sure of its pocket gives nothing.
//!
//! Nothing is reported when no ball sits in the ring (it is still on the track, or gone), when
//! the colour sequence does not fit well enough, or when the ball sits on a fret. One frame says
//! nothing about rest: [`SettledFilter`] reports a pocket once it holds over several frames.

use opencv::core::{Mat, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Serialize;

use crate::calibration::{Thresholds, WheelGeometry};
use crate::geometry::{Homography, Pt};
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

const RED_NUMBERS: [u8; 18] = [
    1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36,
];

/// Angular steps of the colour ring (half a degree: about 19 per pocket).
const STEPS: usize = 720;
/// Radii sampled across the pocket ring for its colour.
const COLOUR_RADII: usize = 8;
/// The green score counts this much more than the red one: it is the only direct sign of the
/// zero, where red/black only show it by a break in their alternation.
const GREEN_WEIGHT: f64 = 2.0;

/// The pocket the ball rests in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PocketRead {
    pub number: String,
    pub layout: &'static str,
    /// 0…1: the lowest of how centred the ball is in its pocket (1 in the middle, 0 on a fret),
    /// how ball-like the ball is, and how well the wheel's colours fit.
    pub confidence: f64,
    pub ball_angle_deg: f64,
    pub zero_angle_deg: f64,
}

/// How the wheel sits in this frame: the layout and where its zero is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    pub layout: &'static str,
    /// The middle of the zero pocket, degrees clockwise from the wheel's up.
    pub zero_deg: f64,
    /// Normalised correlation of the layout's colours with the ring's, −1…1.
    pub fit: f64,
    /// How much better than the best fit at least half a pocket away.
    pub margin: f64,
}

/// The ball as found on the ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ball {
    /// Degrees clockwise from the wheel's up.
    pub angle_deg: f64,
    /// Radius on the wheel plane, in the calibration's units.
    pub radius: f64,
    /// Normalised correlation with a ball-sized disc, −1…1.
    pub score: f64,
}

/// The layout's pocket order.
pub fn layout_order(layout: &str) -> Option<&'static [&'static str]> {
    match layout {
        "european" => Some(&EUROPEAN),
        "american" => Some(&AMERICAN),
        _ => None,
    }
}

/// Reads the pocket of the ball in this frame, if there is one and it is sure.
pub fn read_pocket(
    frame: &Mat,
    wheel: &WheelGeometry,
    thresholds: &Thresholds,
) -> Result<Option<PocketRead>, VisionError> {
    let copy;
    let frame = if frame.is_continuous() {
        frame
    } else {
        // A region of a larger frame: one copy, so rows can be indexed directly.
        copy = frame.try_clone()?;
        &copy
    };
    let image = Image::new(frame)?;
    let to_image = wheel.image_from_wheel()?;
    let (r0, r1) = (wheel.pocket_ring_px.inner, wheel.pocket_ring_px.outer);
    if !(r0 > 0.0 && r1 > r0) {
        return Err(VisionError::Calibration(
            "the wheel's pocket ring needs 0 < inner < outer; run `croupier calibrate wheel`"
                .into(),
        ));
    }
    let layouts: &[&'static str] = match wheel.layout.as_str() {
        "european" => &["european"],
        "american" => &["american"],
        _ => &["european", "american"],
    };
    let (red, green) = colour_ring(&image, &to_image, r0, r1);
    let Some(rot) = fit_rotation(&red, &green, layouts) else {
        return Ok(None);
    };
    if rot.fit < thresholds.wheel_min_fit || rot.margin < thresholds.wheel_min_margin {
        return Ok(None);
    }
    let Some(order) = layout_order(rot.layout) else {
        return Ok(None);
    };
    let ball_r = wheel.ball_radius.unwrap_or(0.25 * (r1 - r0));
    // The ball is looked for at about one image pixel per strip pixel, whatever the
    // calibration's unit (pixels, millimetres).
    let (px_plane, k) = pixel_units(&to_image, (r0 + r1) / 2.0);
    let Some(mut ball) = find_ball(
        &image,
        &px_plane,
        r0 * k,
        r1 * k,
        ball_r * k,
        &rot,
        order.len(),
        thresholds,
    )?
    else {
        return Ok(None);
    };
    ball.radius /= k;
    let (index, offset) = pocket_at(order.len(), rot.zero_deg, ball.angle_deg);
    if offset > thresholds.pocket_max_offset {
        return Ok(None);
    }
    let confidence = (1.0 - 2.0 * offset)
        .min(ball.score)
        .min(rot.fit)
        .clamp(0.0, 1.0);
    Ok(Some(PocketRead {
        number: order[index].to_owned(),
        layout: rot.layout,
        confidence,
        ball_angle_deg: ball.angle_deg,
        zero_angle_deg: rot.zero_deg,
    }))
}

/// The pocket (index in the layout's order) at `ball_deg` on a wheel whose zero is at
/// `zero_deg`, and how far from that pocket's middle the ball is, as a share of a pocket
/// (0 in the middle, 0.5 on a fret).
pub fn pocket_at(pockets: usize, zero_deg: f64, ball_deg: f64) -> (usize, f64) {
    let n = pockets.max(1) as f64;
    let from_zero = (ball_deg - zero_deg).rem_euclid(360.0) / (360.0 / n);
    let nearest = from_zero.round();
    (
        (nearest as usize) % pockets.max(1),
        (from_zero - nearest).abs(),
    )
}

/// A BGR frame's pixels, for bilinear samples at any point.
struct Image<'a> {
    data: &'a [u8],
    cols: usize,
    rows: usize,
    step: usize,
}

impl<'a> Image<'a> {
    fn new(frame: &'a Mat) -> Result<Self, VisionError> {
        if frame.typ() != CV_8UC3 || !frame.is_continuous() {
            return Err(VisionError::Calibration(
                "the wheel reader takes 8-bit BGR frames".into(),
            ));
        }
        let (cols, rows) = (frame.cols(), frame.rows());
        Ok(Image {
            data: frame.data_bytes()?,
            cols: usize::try_from(cols).unwrap_or(0),
            rows: usize::try_from(rows).unwrap_or(0),
            step: usize::try_from(cols).unwrap_or(0) * 3,
        })
    }

    /// B, G, R at `p` (bilinear); `None` outside the frame.
    fn sample(&self, p: Pt) -> Option<[f32; 3]> {
        if !(p.x >= 0.0 && p.y >= 0.0) {
            return None;
        }
        let (x0, y0) = (p.x.floor() as usize, p.y.floor() as usize);
        if x0 + 1 >= self.cols || y0 + 1 >= self.rows {
            return None;
        }
        let (fx, fy) = ((p.x - x0 as f64) as f32, (p.y - y0 as f64) as f32);
        let at = |x: usize, y: usize, c: usize| f32::from(self.data[y * self.step + x * 3 + c]);
        let mut out = [0.0f32; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
            let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
            *o = top * (1.0 - fy) + bottom * fy;
        }
        Some(out)
    }
}

/// The wheel plane rescaled so that one of its units is about one image pixel at radius
/// `r_mid` (the mean over eight directions of the radial scale there), and the factor `k`:
/// a point q of the given plane is the point k·q of the rescaled one.
fn pixel_units(to_image: &Homography, r_mid: f64) -> (Homography, f64) {
    let d = (0.05 * r_mid).max(1e-9);
    let mut sum = 0.0;
    for i in 0..8 {
        let dir = polar(1.0, f64::from(i) * 45.0);
        let a = to_image.apply(dir.scale(r_mid - d));
        let b = to_image.apply(dir.scale(r_mid + d));
        sum += b.sub(a).len() / (2.0 * d);
    }
    let k = sum / 8.0;
    if !(k.is_finite() && k > 1e-6) {
        return (*to_image, 1.0);
    }
    let m = to_image.0;
    (
        Homography([
            m[0] / k,
            m[1] / k,
            m[2],
            m[3] / k,
            m[4] / k,
            m[5],
            m[6] / k,
            m[7] / k,
            m[8],
        ]),
        k,
    )
}

/// The point of the wheel plane at `radius` and `deg` clockwise from up.
fn polar(radius: f64, deg: f64) -> Pt {
    let a = deg.to_radians();
    Pt::new(radius * a.sin(), -radius * a.cos())
}

/// Redness and greenness of the pocket ring, every half degree: the median over radii (so a
/// ball or a fret's edge in part of the pocket does not colour it), as chroma, (R − max(G, B))
/// over brightness, which dims with the light but keeps its sign under glare. Each is returned
/// less its mean around the ring.
fn colour_ring(image: &Image, to_image: &Homography, r0: f64, r1: f64) -> (Vec<f64>, Vec<f64>) {
    let w = r1 - r0;
    let mut red = vec![0.0; STEPS];
    let mut green = vec![0.0; STEPS];
    let mut rs = Vec::with_capacity(COLOUR_RADII);
    let mut gs = Vec::with_capacity(COLOUR_RADII);
    for i in 0..STEPS {
        let dir = polar(1.0, i as f64 * 360.0 / STEPS as f64);
        rs.clear();
        gs.clear();
        for k in 0..COLOUR_RADII {
            let r = r0 + w * (0.1 + 0.8 * (k as f64 + 0.5) / COLOUR_RADII as f64);
            if let Some([b, g, rd]) = image.sample(to_image.apply(dir.scale(r))) {
                let sum = f64::from(b + g + rd) + 30.0;
                rs.push(f64::from(rd - g.max(b)) / sum);
                gs.push(f64::from(g - rd.max(b)) / sum);
            }
        }
        red[i] = median(&mut rs);
        green[i] = median(&mut gs);
    }
    centre(&mut red);
    centre(&mut green);
    (red, green)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn centre(v: &mut [f64]) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    v.iter_mut().for_each(|x| *x -= mean);
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The layout's colours around the ring, zero in the middle of step 0: red +1, black −1, green
/// 0 (red template), and green 1, others 0 (green template), each less its mean.
fn colour_template(order: &[&str]) -> (Vec<f64>, Vec<f64>) {
    let n = order.len() as f64;
    let pocket = 360.0 / n;
    let mut red = Vec::with_capacity(STEPS);
    let mut green = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        let deg = i as f64 * 360.0 / STEPS as f64;
        let idx =
            (((deg + pocket / 2.0).rem_euclid(360.0) / pocket).floor() as usize) % order.len();
        let name = order[idx];
        let is_red = name.parse::<u8>().is_ok_and(|v| RED_NUMBERS.contains(&v));
        let is_green = name == "0" || name == "00";
        red.push(if is_green {
            0.0
        } else if is_red {
            1.0
        } else {
            -1.0
        });
        green.push(if is_green { 1.0 } else { 0.0 });
    }
    centre(&mut red);
    centre(&mut green);
    (red, green)
}

/// The layout and zero angle whose colour sequence best fits the ring's (`red`, `green`: one
/// value per step, as `colour_ring` gives them). Pure, for tests.
pub fn fit_rotation(red: &[f64], green: &[f64], layouts: &[&'static str]) -> Option<Rotation> {
    if red.len() != STEPS || green.len() != STEPS {
        return None;
    }
    let (nr, ng) = (norm(red), norm(green));
    let mut best: Option<Rotation> = None;
    for &layout in layouts {
        let order = layout_order(layout)?;
        let (tr, tg) = colour_template(order);
        let denom = nr * norm(&tr) + GREEN_WEIGHT * ng * norm(&tg);
        if denom <= 1e-12 {
            continue;
        }
        // score[k]: the template turned so that zero sits at step k. The template is laid out
        // twice so the inner loop runs over plain slices (no wrapping index): it vectorises.
        let t2: Vec<f64> = tr.iter().chain(&tr).copied().collect();
        let g2: Vec<f64> = tg.iter().chain(&tg).copied().collect();
        let score: Vec<f64> = (0..STEPS)
            .map(|k| {
                let (t, g) = (&t2[STEPS - k..2 * STEPS - k], &g2[STEPS - k..2 * STEPS - k]);
                let r: f64 = red.iter().zip(t).map(|(a, b)| a * b).sum();
                let q: f64 = green.iter().zip(g).map(|(a, b)| a * b).sum();
                (r + GREEN_WEIGHT * q) / denom
            })
            .collect();
        let (k, top) = score
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let half_pocket = STEPS as f64 / order.len() as f64 / 2.0;
        let second = score
            .iter()
            .enumerate()
            .filter(|(i, _)| circular_distance(*i, k, STEPS) as f64 > half_pocket)
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        let frac = parabola(score[(k + STEPS - 1) % STEPS], top, score[(k + 1) % STEPS]);
        let rot = Rotation {
            layout,
            zero_deg: ((k as f64 + frac) * 360.0 / STEPS as f64).rem_euclid(360.0),
            fit: top,
            margin: top - second,
        };
        if best.is_none_or(|b| rot.fit > b.fit) {
            best = Some(rot);
        }
    }
    best
}

fn circular_distance(a: usize, b: usize, n: usize) -> usize {
    let d = a.abs_diff(b) % n;
    d.min(n - d)
}

/// Where the peak of a parabola through three equally spaced values lies, −0.5…0.5 from the
/// middle one.
fn parabola(left: f64, mid: f64, right: f64) -> f64 {
    let den = left - 2.0 * mid + right;
    if den < 0.0 {
        (0.5 * (left - right) / den).clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

/// The most ball-like spot of the pocket ring, if any is ball-like enough.
///
/// The ring is unrolled at one unit of `to_image`'s plane per pixel (rows: radius, columns: arc
/// length at the ring's middle; the caller makes that unit about an image pixel) in its
/// darkest channel. Every pocket looks alike there (frets, edges, the
/// pocket's depth, and their blur when the head turns during the exposure), so the median over
/// the pockets, at each radius and each place across a pocket, is the empty ring; the ball is
/// what stands out of it. On that remainder a disc of the ball's radius is matched by
/// normalised correlation, and of the few best spots the one that stands out most from every
/// side of its surroundings is the ball: glare is a broad or long smooth patch, brighter on
/// some side of any ball-sized spot in it; the ball is darker pocket all around.
#[allow(clippy::too_many_arguments)] // one geometry, spelled out; bundling it would hide it
fn find_ball(
    image: &Image,
    to_image: &Homography,
    r0: f64,
    r1: f64,
    ball_r: f64,
    rot: &Rotation,
    pockets: usize,
    thresholds: &Thresholds,
) -> Result<Option<Ball>, VisionError> {
    let k = (1.2 * ball_r).round().max(2.0) as usize;
    let side = 2 * k + 1;
    // A little beyond the ring, so a ball resting against its edge is matched whole.
    let (ra, rb) = (r0 - 0.3 * ball_r, r1 + 0.3 * ball_r);
    let rows = (rb - ra).ceil() as usize;
    let cols = (std::f64::consts::TAU * (r0 + r1) / 2.0).round() as usize;
    if rows < side || cols < 4 * side || pockets == 0 {
        return Ok(None);
    }
    let mut strip = vec![0.0f32; rows * cols];
    let dirs: Vec<Pt> = (0..cols)
        .map(|x| polar(1.0, x as f64 * 360.0 / cols as f64))
        .collect();
    for y in 0..rows {
        let r = ra + y as f64 + 0.5;
        for (x, d) in dirs.iter().enumerate() {
            strip[y * cols + x] = image
                .sample(to_image.apply(d.scale(r)))
                .map_or(0.0, |[b, g, rd]| b.min(g).min(rd));
        }
    }
    // The empty ring: per radius and place across a pocket, the median over the pocket and
    // its neighbours (`NEIGHBOURS` each side). Neighbours rather than the whole ring, so that
    // what changes slowly around it (light, broad glare, and a circle calibration's
    // mismatch with the ellipse it stands for, which shifts the ring's edges in and out) is
    // taken away too; the ball is in one pocket of the 2·NEIGHBOURS + 1.
    let pocket = 360.0 / pockets as f64;
    let bins = (cols as f64 / pockets as f64).round().max(8.0) as usize;
    let place: Vec<(usize, usize)> = (0..cols)
        .map(|x| {
            let deg = x as f64 * 360.0 / cols as f64;
            let from_zero = (deg - rot.zero_deg + pocket / 2.0).rem_euclid(360.0) / pocket;
            let p = (from_zero.floor() as usize).min(pockets - 1);
            let b = (((from_zero - from_zero.floor()) * bins as f64) as usize).min(bins - 1);
            (p, b)
        })
        .collect();
    // Mean per (row, pocket, place), then the median across neighbouring pockets.
    let cell = |y: usize, p: usize, b: usize| (y * pockets + p) * bins + b;
    let mut sum = vec![0.0f32; rows * pockets * bins];
    let mut count = vec![0u16; pockets * bins];
    for &(p, b) in &place {
        count[p * bins + b] += 1;
    }
    for y in 0..rows {
        let row = &strip[y * cols..(y + 1) * cols];
        for (v, &(p, b)) in row.iter().zip(&place) {
            sum[cell(y, p, b)] += v;
        }
    }
    // A place no column fell in (bins are rounded) takes its neighbour's mean.
    let mut means = vec![0.0f32; rows * pockets * bins];
    for y in 0..rows {
        for p in 0..pockets {
            let mut last = None;
            for b in (0..bins).chain(0..bins) {
                let n = count[p * bins + b];
                if n > 0 {
                    last = Some(sum[cell(y, p, b)] / f32::from(n));
                }
                if let Some(v) = last {
                    means[cell(y, p, b)] = v;
                }
            }
        }
    }
    // The window's median, slid pocket by pocket: one value leaves, one comes in, the window
    // stays sorted.
    const W: usize = 2 * NEIGHBOURS + 1;
    let mut empty = vec![0.0f32; rows * pockets * bins];
    for y in 0..rows {
        for b in 0..bins {
            let at = |q: usize| means[cell(y, q % pockets, b)];
            let mut window = [0.0f32; W];
            for (i, w) in window.iter_mut().enumerate() {
                *w = at(pockets - NEIGHBOURS + i);
            }
            window.sort_unstable_by(f32::total_cmp);
            for p in 0..pockets {
                empty[cell(y, p, b)] = window[NEIGHBOURS];
                let (out, inn) = (at(p + pockets - NEIGHBOURS), at(p + NEIGHBOURS + 1));
                slide(&mut window, out, inn);
            }
        }
    }
    let mut rest = vec![0.0f32; rows * cols];
    for y in 0..rows {
        for (x, &(p, b)) in place.iter().enumerate() {
            // Plus a faint fixed dither (±0.75 of a grey level): where the remainder is exactly
            // flat (a clipped white patch of glare, a synthetic frame without noise) the
            // normalised correlation of a zero-variance window is whatever rounding makes it
            // (OpenCV gives ±1 there), and such spots would crowd out the ball.
            let dither = ((x * 7 + y * 13) % 4) as f32 * 0.5 - 0.75;
            rest[y * cols + x] = strip[y * cols + x] - empty[cell(y, p, b)] + dither;
        }
    }
    // Matched with the ring wrapping: the first `side − 1` columns repeated after the last.
    let width = cols + side - 1;
    let mut padded = vec![0.0f32; rows * width];
    for y in 0..rows {
        for x in 0..width {
            padded[y * width + x] = rest[y * cols + x % cols];
        }
    }
    let mut disc = vec![0.0f32; side * side];
    for y in 0..side {
        for x in 0..side {
            let d = ((y as f64 - k as f64).powi(2) + (x as f64 - k as f64).powi(2)).sqrt();
            disc[y * side + x] = (ball_r - d + 0.5).clamp(0.0, 1.0) as f32;
        }
    }
    let padded = Mat::from_slice(&padded)?
        .reshape(1, rows as i32)?
        .try_clone()?;
    let disc = Mat::from_slice(&disc)?
        .reshape(1, side as i32)?
        .try_clone()?;
    let mut scores = Mat::default();
    imgproc::match_template_def(&padded, &disc, &mut scores, imgproc::TM_CCOEFF_NORMED)?;
    let out_rows = usize::try_from(scores.rows()).unwrap_or(0);
    let out_cols = usize::try_from(scores.cols()).unwrap_or(0);
    if out_cols != cols || out_rows == 0 {
        return Ok(None);
    }
    let mut s: Vec<f32> = scores.data_typed::<f32>()?.to_vec();
    // The ball's centre stays inside the ring.
    for y in 0..out_rows {
        let r = ra + (y + k) as f64 + 0.5;
        if r < r0 + 0.5 * ball_r || r > r1 - 0.5 * ball_r {
            s[y * cols..(y + 1) * cols].fill(f32::NEG_INFINITY);
        }
    }
    let score_at = |s: &[f32], y: usize, x: usize| f64::from(s[y * cols + x % cols]);
    let mut best: Option<(Ball, f64)> = None;
    let blank = (2.0 * ball_r).ceil() as usize;
    for _ in 0..CANDIDATES {
        let Some((i, v)) = s
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        if f64::from(v) < thresholds.ball_min_score {
            break;
        }
        let (y, x) = (i / cols, i % cols);
        let frac = parabola(
            score_at(&s, y, x + cols - 1),
            f64::from(v),
            score_at(&s, y, x + 1),
        );
        let lift = stand_out(&rest, rows, cols, y + k, x + k, ball_r);
        let ball = Ball {
            angle_deg: ((x + k) as f64 + frac) * 360.0 / cols as f64 % 360.0,
            radius: ra + (y + k) as f64 + 0.5,
            score: f64::from(v),
        };
        if best.as_ref().is_none_or(|(_, l)| lift > *l) {
            best = Some((ball, lift));
        }
        // The next candidate at least a ball's width away along the ring.
        for yy in 0..out_rows {
            for dx in 0..=2 * blank {
                let xx = (x + cols + dx - blank) % cols;
                s[yy * cols + xx] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(best
        .filter(|(_, lift)| *lift >= thresholds.ball_min_lift)
        .map(|(b, _)| b))
}

/// In a sorted window, replaces one value equal to `out` by `inn`, keeping it sorted.
fn slide(window: &mut [f32], out: f32, inn: f32) {
    let Some(mut i) = window.iter().position(|v| v.total_cmp(&out).is_eq()) else {
        return;
    };
    window[i] = inn;
    while i > 0 && window[i - 1] > window[i] {
        window.swap(i - 1, i);
        i -= 1;
    }
    while i + 1 < window.len() && window[i + 1] < window[i] {
        window.swap(i, i + 1);
        i += 1;
    }
}

/// Pockets each side whose median, with the pocket's own, makes the empty ring.
const NEIGHBOURS: usize = 6;

/// How many of the best disc matches are weighed as the ball.
const CANDIDATES: usize = 5;

/// How much a ball-sized spot at (`cy`, `cx`) of the remainder stands out of its surroundings:
/// the mean over its middle (within 0.7 of the ball's radius) less the brightest of eight
/// sectors of the ring around it (1.4 to 2 radii), so a spot in a long streak of glare, bright
/// along the streak, does not stand out.
fn stand_out(rest: &[f32], rows: usize, cols: usize, cy: usize, cx: usize, ball_r: f64) -> f64 {
    let reach = (2.0 * ball_r).ceil() as isize;
    let (mut mid, mut mid_n) = (0.0f64, 0u32);
    let mut sectors = [(0.0f64, 0u32); 8];
    for dy in -reach..=reach {
        let y = (cy as isize + dy).clamp(0, rows as isize - 1) as usize;
        for dx in -reach..=reach {
            let d = ((dy * dy + dx * dx) as f64).sqrt();
            let x = (cx as isize + dx).rem_euclid(cols as isize) as usize;
            let v = f64::from(rest[y * cols + x]);
            if d <= 0.7 * ball_r {
                mid += v;
                mid_n += 1;
            } else if d >= 1.4 * ball_r && d <= 2.0 * ball_r {
                let a = (dy as f64).atan2(dx as f64) + std::f64::consts::PI;
                let q = ((a / std::f64::consts::FRAC_PI_4) as usize).min(7);
                sectors[q].0 += v;
                sectors[q].1 += 1;
            }
        }
    }
    let brightest = sectors
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(sum, n)| sum / f64::from(*n))
        .fold(f64::NEG_INFINITY, f64::max);
    if mid_n == 0 || !brightest.is_finite() {
        return f64::NEG_INFINITY;
    }
    mid / f64::from(mid_n) - brightest
}

/// The pocket ring and the number ring unrolled as the reader sees them (rows: radius outwards
/// from the ring's inner edge to as far again as the ring is wide beyond its outer edge;
/// columns: clockwise from the wheel's up, one wheel unit each at the ring's middle), BGR. For
/// the calibration report: with a good calibration the frets are vertical and evenly spaced,
/// the pockets fill the band between the two edges, and the numbers stand in a straight row.
pub fn unroll_ring(frame: &Mat, wheel: &WheelGeometry) -> Result<Mat, VisionError> {
    let image = Image::new(frame)?;
    let (r0, r1) = (wheel.pocket_ring_px.inner, wheel.pocket_ring_px.outer);
    let (to_image, k) = pixel_units(&wheel.image_from_wheel()?, (r0 + r1) / 2.0);
    let (r0, r1) = (r0 * k, r1 * k);
    let w = (r1 - r0).max(1.0);
    let rows = (2.0 * w).ceil().min(2000.0) as usize;
    let cols = (std::f64::consts::TAU * (r0 + r1) / 2.0)
        .round()
        .clamp(8.0, 20000.0) as usize;
    let mut out = vec![0u8; rows * cols * 3];
    for x in 0..cols {
        let d = polar(1.0, x as f64 * 360.0 / cols as f64);
        for y in 0..rows {
            // Outwards downwards would put the numbers under the pockets; the image is read
            // top to bottom from the rim, as the technician looks at the wheel.
            let r = r0 + 2.0 * w * (rows - 1 - y) as f64 / rows as f64;
            if let Some(px) = image.sample(to_image.apply(d.scale(r))) {
                for c in 0..3 {
                    out[(y * cols + x) * 3 + c] = px[c].round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    let flat = Mat::from_slice(&out)?;
    Ok(flat.reshape(3, rows as i32)?.try_clone()?)
}

/// A pocket confirmed over consecutive frames: what the daemon reports as `pocket.seen`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settled {
    pub number: String,
    pub layout: &'static str,
    /// The lowest confidence of the frames that confirmed it.
    pub confidence: f64,
    /// How many consecutive frames read it.
    pub frames: u32,
}

/// Sans-IO: turns per-frame reads into one report per resting ball. A pocket is reported once
/// the same number has been read in `need` consecutive frames (a ball still rolling, or a
/// single mistaken frame, changes number or reads nothing and starts the count again). After
/// the report the filter stays quiet while that number holds, across up to `max_gap` frames
/// without a read (a hand or glare over the ball for a moment), and is ready again after a
/// longer gap or another number.
#[derive(Debug, Clone)]
pub struct SettledFilter {
    need: u32,
    max_gap: u32,
    current: Option<(String, &'static str)>,
    streak: u32,
    min_confidence: f64,
    gap: u32,
    reported: bool,
}

impl SettledFilter {
    /// `need` is at least 1.
    pub fn new(need: u32, max_gap: u32) -> Self {
        SettledFilter {
            need: need.max(1),
            max_gap,
            current: None,
            streak: 0,
            min_confidence: 1.0,
            gap: 0,
            reported: false,
        }
    }

    /// One frame's read (`None`: nothing read). Returns the pocket when it has just settled.
    pub fn push(&mut self, read: Option<&PocketRead>) -> Option<Settled> {
        let Some(read) = read else {
            if self.reported {
                self.gap += 1;
                if self.gap > self.max_gap {
                    self.reset();
                }
            } else {
                self.streak = 0;
                self.current = None;
            }
            return None;
        };
        let same = self
            .current
            .as_ref()
            .is_some_and(|(n, l)| *n == read.number && *l == read.layout);
        if same {
            self.streak = self.streak.saturating_add(1);
            self.min_confidence = self.min_confidence.min(read.confidence);
        } else {
            self.current = Some((read.number.clone(), read.layout));
            self.streak = 1;
            self.min_confidence = read.confidence;
            self.reported = false;
        }
        self.gap = 0;
        if !self.reported && self.streak >= self.need {
            self.reported = true;
            return Some(Settled {
                number: read.number.clone(),
                layout: read.layout,
                confidence: self.min_confidence,
                frames: self.streak,
            });
        }
        None
    }

    /// Forgets everything (a new round).
    pub fn reset(&mut self) {
        *self = SettledFilter::new(self.need, self.max_gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pockets_are_counted_clockwise_from_zero() {
        let pw = 360.0 / 37.0;
        assert_eq!(pocket_at(37, 100.0, 100.0), (0, 0.0));
        let (i, off) = pocket_at(37, 100.0, 100.0 + 3.0 * pw + 0.2 * pw);
        assert_eq!(i, 3);
        assert!((off - 0.2).abs() < 1e-9);
        // Across 360°: the pocket just counter-clockwise of zero is the last of the order.
        let (i, off) = pocket_at(37, 2.0, 2.0 - pw);
        assert_eq!((i, EUROPEAN[i]), (36, "26"));
        assert!(off < 1e-9);
        let (_, off) = pocket_at(38, 0.0, 0.5 * 360.0 / 38.0 - 1e-6);
        assert!(off > 0.49);
    }

    /// A ring's colours as `colour_ring` would see them on a clean wheel with zero at `deg`,
    /// green and red scaled by `g`, `r` (glare washes them out), plus a little ripple.
    fn ring(order: &[&str], zero_deg: f64, r: f64, g: f64) -> (Vec<f64>, Vec<f64>) {
        let (tr, tg) = colour_template(order);
        let shift = (zero_deg / 0.5).round() as usize;
        let mut red: Vec<f64> = (0..STEPS)
            .map(|i| r * tr[(i + STEPS - shift) % STEPS] + 0.05 * (i as f64 * 0.37).sin())
            .collect();
        let mut green: Vec<f64> = (0..STEPS)
            .map(|i| g * tg[(i + STEPS - shift) % STEPS])
            .collect();
        centre(&mut red);
        centre(&mut green);
        (red, green)
    }

    #[test]
    fn the_rotation_and_layout_come_from_the_whole_colour_sequence() {
        for (order, name) in [(&EUROPEAN[..], "european"), (&AMERICAN[..], "american")] {
            for zero in [0.0, 47.5, 181.0, 359.5] {
                let (red, green) = ring(order, zero, 0.3, 0.2);
                let rot = fit_rotation(&red, &green, &["european", "american"]).expect("fit");
                assert_eq!(rot.layout, name);
                let err = (rot.zero_deg - zero + 180.0).rem_euclid(360.0) - 180.0;
                assert!(err.abs() < 0.6, "{name} zero {zero}: {rot:?}");
                assert!(rot.fit > 0.8 && rot.margin > 0.05, "{rot:?}");
            }
        }
    }

    #[test]
    fn a_hidden_green_pocket_is_placed_by_the_red_and_black_around_it() {
        // Glare over zero: no green at all. The break in the alternation still places it, and
        // on an American wheel tells 0 from 00 (they are opposite; the red/black pattern is not
        // symmetric under half a turn).
        for (order, name) in [(&EUROPEAN[..], "european"), (&AMERICAN[..], "american")] {
            let (red, green) = ring(order, 90.0, 0.3, 0.0);
            let rot = fit_rotation(&red, &green, &[name]).expect("fit");
            let err = (rot.zero_deg - 90.0 + 180.0).rem_euclid(360.0) - 180.0;
            assert!(err.abs() < 0.6, "{name}: {rot:?}");
        }
    }

    #[test]
    fn a_ring_without_colour_fits_nothing() {
        let flat = vec![0.0; STEPS];
        assert_eq!(fit_rotation(&flat, &flat, &["european"]), None);
        assert_eq!(fit_rotation(&[0.0; 3], &[0.0; 3], &["european"]), None);
    }

    #[test]
    fn a_sliding_window_stays_sorted_and_gives_the_running_median() {
        let values = [5.0f32, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 2.0, 6.0, 4.0];
        let mut w = [values[0], values[1], values[2]];
        w.sort_unstable_by(f32::total_cmp);
        for i in 0..values.len() - 3 {
            let mut direct = [values[i], values[i + 1], values[i + 2]];
            direct.sort_unstable_by(f32::total_cmp);
            assert_eq!(w, direct, "window at {i}");
            slide(&mut w, values[i], values[i + 3]);
        }
    }

    #[test]
    fn parabola_peaks_between_samples() {
        assert!((parabola(1.0, 2.0, 1.0)).abs() < 1e-12);
        assert!(parabola(1.0, 2.0, 1.5) > 0.0);
        assert_eq!(parabola(1.0, 1.0, 1.0), 0.0);
    }

    #[test]
    fn a_ball_stands_out_of_its_surroundings_and_a_streak_of_glare_does_not() {
        let (rows, cols, r) = (50usize, 400usize, 10.0f64);
        let mut ball = vec![0.0f32; rows * cols];
        let mut streak = vec![0.0f32; rows * cols];
        for y in 0..rows {
            for x in 0..cols {
                let dx = x.abs_diff(3).min(cols - x.abs_diff(3)) as f64;
                let d = ((y as f64 - 25.0).powi(2) + dx * dx).sqrt();
                if d <= r {
                    ball[y * cols + x] = 120.0;
                }
                // Glare along the ring, as wide as the ball: bright on two sides of any spot.
                if (y as f64 - 25.0).abs() <= r {
                    streak[y * cols + x] = 120.0;
                }
            }
        }
        // The ball sits across the ring's seam (column 3): the surroundings wrap around.
        let lift = stand_out(&ball, rows, cols, 25, 3, r);
        assert!(lift > 110.0, "{lift}");
        // The sectors along the streak reach past its edges, so a little is left (about a
        // seventh of the glare's height), well under the default `ball_min_lift` of a
        // streak as bright as this ball.
        let lift = stand_out(&streak, rows, cols, 25, 200, r);
        assert!(lift < 0.15 * 120.0, "{lift}");
    }

    /// A clean top-down European wheel on a 640×480 frame: zero at `zero_deg`, pockets from
    /// radius 100 to 130 (numbers ring to 160), metal frets and edges, and the ball in the
    /// pocket `ball` of the order (if any), near the outer edge.
    fn drawn_wheel(zero_deg: f64, ball: Option<usize>) -> Mat {
        use opencv::core::{Point, Scalar, Vector, CV_8UC3};
        let mut img =
            Mat::new_rows_cols_with_default(480, 640, CV_8UC3, Scalar::new(40.0, 70.0, 120.0, 0.0))
                .expect("frame");
        let (cx, cy) = (320.0, 240.0);
        let at = |r: f64, deg: f64| {
            let p = polar(r, deg);
            Point::new((cx + p.x).round() as i32, (cy + p.y).round() as i32)
        };
        let pw = 360.0 / 37.0;
        for (i, n) in EUROPEAN.iter().enumerate() {
            let colour = if *n == "0" {
                Scalar::new(40.0, 120.0, 25.0, 0.0)
            } else if RED_NUMBERS.contains(&n.parse::<u8>().expect("number")) {
                Scalar::new(32.0, 30.0, 175.0, 0.0)
            } else {
                Scalar::new(28.0, 26.0, 26.0, 0.0)
            };
            let mid = zero_deg + i as f64 * pw;
            let mut pts = Vector::<Point>::new();
            for k in 0..=6 {
                pts.push(at(100.0, mid - pw / 2.0 + pw * f64::from(k) / 6.0));
            }
            for k in (0..=6).rev() {
                pts.push(at(160.0, mid - pw / 2.0 + pw * f64::from(k) / 6.0));
            }
            imgproc::fill_convex_poly(&mut img, &pts, colour, imgproc::LINE_AA, 0).expect("pocket");
            let edge = mid - pw / 2.0;
            imgproc::line(
                &mut img,
                at(100.0, edge),
                at(130.0, edge),
                Scalar::new(205.0, 210.0, 215.0, 0.0),
                2,
                imgproc::LINE_AA,
                0,
            )
            .expect("fret");
        }
        for r in [100, 130] {
            imgproc::circle(
                &mut img,
                Point::new(320, 240),
                r,
                Scalar::new(205.0, 210.0, 215.0, 0.0),
                2,
                imgproc::LINE_AA,
                0,
            )
            .expect("edge");
        }
        if let Some(i) = ball {
            imgproc::circle(
                &mut img,
                at(121.0, zero_deg + i as f64 * pw + 1.0),
                7,
                Scalar::new(205.0, 228.0, 238.0, 0.0),
                -1,
                imgproc::LINE_AA,
                0,
            )
            .expect("ball");
        }
        img
    }

    #[test]
    fn a_drawn_wheel_is_read_and_an_empty_one_is_not() {
        let wheel = WheelGeometry::circle(
            "auto",
            [320.0, 240.0],
            crate::calibration::Ring {
                inner: 100.0,
                outer: 130.0,
            },
        );
        let t = Thresholds::default();
        for (zero, ball) in [(0.0, 17usize), (123.4, 0), (250.0, 36)] {
            let read = read_pocket(&drawn_wheel(zero, Some(ball)), &wheel, &t)
                .expect("read")
                .expect("a pocket");
            assert_eq!(
                (read.number.as_str(), read.layout),
                (EUROPEAN[ball], "european")
            );
            let err = (read.zero_angle_deg - zero + 180.0).rem_euclid(360.0) - 180.0;
            assert!(err.abs() < 1.0, "{read:?}");
            assert_eq!(
                read_pocket(&drawn_wheel(zero, None), &wheel, &t).expect("read"),
                None
            );
        }
        // The same wheel calibrated in another unit (a homography from "millimetres", 2.5 mm
        // a pixel): the same read.
        let mm = WheelGeometry::from_homography(
            "auto",
            Homography([0.4, 0.0, 320.0, 0.0, 0.4, 240.0, 0.0, 0.0, 1.0]),
            crate::calibration::Ring {
                inner: 250.0,
                outer: 325.0,
            },
        );
        let read = read_pocket(&drawn_wheel(40.0, Some(5)), &mm, &t)
            .expect("read")
            .expect("a pocket");
        assert_eq!(read.number, EUROPEAN[5]);
        // A frame of another kind is an error, not a guess.
        let grey = Mat::new_rows_cols_with_default(
            480,
            640,
            opencv::core::CV_8UC1,
            opencv::core::Scalar::all(0.0),
        )
        .expect("grey");
        assert!(read_pocket(&grey, &wheel, &t).is_err());
    }

    fn read(n: &str, c: f64) -> PocketRead {
        PocketRead {
            number: n.into(),
            layout: "european",
            confidence: c,
            ball_angle_deg: 0.0,
            zero_angle_deg: 0.0,
        }
    }

    #[test]
    fn a_pocket_settles_after_n_identical_frames_and_is_reported_once() {
        let mut f = SettledFilter::new(3, 2);
        assert_eq!(f.push(Some(&read("17", 0.9))), None);
        assert_eq!(f.push(Some(&read("17", 0.7))), None);
        let s = f.push(Some(&read("17", 0.8))).expect("settled");
        assert_eq!((s.number.as_str(), s.frames), ("17", 3));
        assert!((s.confidence - 0.7).abs() < 1e-12);
        // Still there, a short gap: quiet.
        assert_eq!(f.push(Some(&read("17", 0.9))), None);
        assert_eq!(f.push(None), None);
        assert_eq!(f.push(None), None);
        assert_eq!(f.push(Some(&read("17", 0.9))), None);
        // A longer gap (the ball taken out), then a new round's ball: reported again.
        for _ in 0..3 {
            assert_eq!(f.push(None), None);
        }
        assert_eq!(f.push(Some(&read("17", 0.9))), None);
        assert_eq!(f.push(Some(&read("17", 0.9))), None);
        assert!(f.push(Some(&read("17", 0.9))).is_some());
    }

    #[test]
    fn a_rolling_ball_or_a_missed_frame_restarts_the_count() {
        let mut f = SettledFilter::new(3, 5);
        let seq = ["5", "24", "24", "16", "16"];
        for n in seq {
            assert_eq!(f.push(Some(&read(n, 0.9))), None, "{n}");
        }
        // Nothing read before the report: the streak breaks.
        assert_eq!(f.push(None), None);
        assert_eq!(f.push(Some(&read("16", 0.9))), None);
        assert_eq!(f.push(Some(&read("16", 0.9))), None);
        let s = f.push(Some(&read("16", 0.9))).expect("settled");
        assert_eq!(s.number, "16");
        // The ball jumps to another pocket: that one is reported in its turn.
        assert_eq!(f.push(Some(&read("33", 0.9))), None);
        assert_eq!(f.push(Some(&read("33", 0.9))), None);
        assert_eq!(
            f.push(Some(&read("33", 0.9))).map(|s| s.number),
            Some("33".into())
        );
        f.reset();
        assert_eq!(f.push(Some(&read("33", 0.9))), None);
    }
}
