//! Cards on the layout: find them, straighten them, read rank and suit from the corner index,
//! and say which zone each lies in.
//!
//! 1. The frame is warped onto the table plane at 1 px per millimetre (the calibration's
//!    homography), so a card is always about 63 × 88 px whatever the camera's angle.
//! 2. Card stock is what is much brighter than the felt and barely coloured. Each blob's
//!    outline is simplified to a polygon; every convex corner of about 90° proposes a card of
//!    the calibrated size along its two edges, kept when the blob covers it. This finds cards
//!    lying alone, and cards partly under others (their free corners still propose them).
//!    Chips, hands and placards do not fill a card-sized rectangle and propose nothing.
//!    Where card stock is left that no card read explains (glare widening a blob, a picture
//!    or a zone line breaking it), straight edges found there propose more: two edges meeting
//!    at about 90° (an L, or a T where one card's edge ends on another's).
//! 3. Each card is warped straight from the original frame; both corner indices (top left, and
//!    bottom right turned upright) are compared with the deck's 52 templates by normalised
//!    correlation. A card is reported only when a readable index matches one card clearly
//!    better than every other and no readable index says otherwise (an index under another
//!    card read in the same frame is set aside first).

use opencv::core::{self, Mat, Point, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Serialize;

use crate::calibration::{
    from_hex, to_hex, Calibration, DeckTemplates, IndexArea, SizeMm, Template, Thresholds,
};
use crate::geometry::{centroid, point_in_polygon, portrait_order, Homography, Pt};
use crate::VisionError;

/// Resolution the deck's index templates are stored at (the calibration's `px_per_mm`).
pub const INDEX_PX_PER_MM: f64 = 3.0;
/// Resolution the corner indices are compared at: about the card camera's own (docs/vision.md
/// asks for at least 2.5 px/mm on the dealing area), so the index windows are cut from the
/// frame without throwing detail away.
pub const MATCH_PX_PER_MM: f64 = 3.0;
/// Ink redness above this is red, below [`BLACK_INK`] black, between: unclear.
const RED_INK: f64 = 0.05;
const BLACK_INK: f64 = 0.02;
/// What a suit of the wrong colour loses.
const INK_PENALTY: f64 = 0.3;
/// Extra blur (σ, px) on the templates, for the camera's softness.
const TEMPLATE_SOFTEN: f64 = 0.9;
/// An index window scoring between these is read again turned by up to ±4°: below, nothing
/// like the index is there; above, it already matches well.
const RETURN_BELOW: f64 = 0.35;
const RETRY_BELOW: f64 = 0.9;
/// The turns (degrees) an index window is read at, in order, until it matches well, and the
/// score its first read must reach for it to be turned at all.
struct Turns {
    angles: &'static [f64],
    from: f64,
}

/// A blob's corner gives the card's direction to a degree or two, and a card proposed from a
/// short edge can be off by more.
const BLOB_TURNS: Turns = Turns {
    angles: &[0.0, -2.0, 2.0, -4.0, 4.0, -7.0, 7.0],
    from: RETURN_BELOW,
};
/// A straight edge refitted through its points gives it within a degree or two (a J♦
/// proposed from its edges read 0.79 straight and 0.92 turned by 2° on seed 16). An empty
/// table's placards and chips propose many such windows scoring 0.35–0.6, so only one that
/// already looks much like an index is turned.
const EDGE_TURNS: Turns = Turns {
    angles: &[0.0, -2.0, 2.0],
    from: EDGE_TURNED_FROM,
};
const EDGE_TURNED_FROM: f64 = 0.6;
/// A window moved onto an index its outline cut, whichever way the card was proposed: an
/// outline that put the window millimetres off is off in direction too (a J♠ proposed from
/// its edges read 0.82 unturned and 0.92 turned on seed 24).
const MOVED_TURNS: Turns = Turns {
    angles: &[0.0, -2.0, 2.0, -4.0, 4.0],
    from: RETURN_BELOW,
};
/// How much more ink a row of the index column holds on the court cards than on the pip cards
/// where the courts' picture begins (the same step finds the picture's column, in
/// [`index_width`]).
const COURT_PICTURE_INK: f64 = 0.15;
/// What one index alone must score above `card_min_score`: on the synthetic sets the wrong
/// single-index reads scored 0.79–0.83, the right ones mostly above 0.9.
const ALONE_EXTRA_SCORE: f64 = 0.25;
/// …or this much, where it stands out by [`ALONE_CLEAR_MARGINS`] × `card_min_margin`: a court
/// card's index beside its picture's frame (standard's K♣, its other index under another
/// card, at 0.83–0.87 with a margin of 0.88–0.91 on seed 18) is sharp but never fits as
/// closely as a pip card's: the picture's colours turn grey unlike the template's under the
/// table's light.
const ALONE_CLEAR_EXTRA_SCORE: f64 = 0.2;
/// 1.4 read two more court cards on seeds 13–22 (gm-paris's K♣ at 0.86 with 0.52), but also
/// a Q♦'s index seen from a proposal 45 mm off it, at 0.83 with 0.65, over the 5♥ lying there
/// (seed 13's dondorf): a lone index that close to the line may be a neighbour's.
const ALONE_CLEAR_MARGINS: f64 = 2.0;
/// How close (score) to an index that could stand alone a contradicting index must come to
/// veto it.
const VETO_WITHIN: f64 = 0.1;
/// How well the deck's mean index must fit somewhere in a window for it to be read at all.
const MIN_INDEX_LIKENESS: f32 = 0.25;
/// How much of an index must show (not under a card read over it) to be read over what
/// shows.
const INDEX_VISIBLE_MIN: f64 = 0.5;
/// How many of the closest templates are compared within a pixel of the index's place.
const REFINED: usize = 16;
/// How far (mm) the index may sit from where the card's outline puts it.
const SEARCH_MM: f64 = 3.5;
/// Straight edges shorter than this (mm) do not propose corners.
const EDGE_MIN_MM: f64 = 20.0;
/// Shorter straight runs, joined with others on their line when they make an edge together.
const EDGE_PIECE_MIN_MM: f64 = 10.0;
/// Pieces of one edge: at most this far apart along it…
const JOIN_GAP_MM: f64 = 8.0;
/// …and this far off its line.
const JOIN_OFF_LINE_PX: f64 = 2.0;
/// Pieces further apart join when edge pixels run on along their line across nearly all of
/// the gap ([`JOIN_INKED_SHARE`]): there a pip touching the edge bent its chain aside, the edge
/// itself ran on (seed 13: an ace's and a five's edges over the card under them, broken 11 and
/// 16 mm by the lower card's pips).
const JOIN_INKED_GAP_MM: f64 = 20.0;
const JOIN_INKED_SHARE: f64 = 0.9;
/// How far (mm) two edges' meeting point may lie from their ends: a rounded corner's radius
/// (up to ~6 mm) and a little.
const CORNER_REACH_MM: f64 = 12.0;
/// An edge's proposal is read again unless a proposal already read has every corner within
/// this (mm) of its: the index is searched for 3.5 mm around where the outline puts it.
const SAME_PROPOSAL_MM: f64 = 2.0;
/// A proposal listed the other way round from one tried is skipped only when it is all but
/// the same rectangle (it would read the very same windows). One a little off is read again:
/// on seeds 13, 15 and 16 such second reads, never tried on purpose, read 12 cards the first
/// placement had not (skipping them within `SAME_PROPOSAL_MM` lost those cards).
const SAME_READ_MM: f64 = 0.1;
/// How far (mm) short of two edges' meeting point one may end when the other reaches it: an
/// edge broken off before its corner (a neighbour's index beside it, glare). Over a card with
/// another over it, both may end this short (a rounded corner lost in the lower card's
/// shadow), or one…
const CORNER_GAP_MM: f64 = 30.0;
/// …this far short when the other reaches it (the card over it hides the rest).
const CORNER_FAR_GAP_MM: f64 = 65.0;
/// An edge stopping further short of its corner than [`CORNER_GAP_MM`] where no card lies
/// over it still makes the corner when edge pixels run along this share of the gap.
const CORNER_INKED_SHARE: f64 = 0.5;
/// Taken from the order score (coverages and outline share, at most 3) of a proposal whose
/// corner only [`CORNER_INKED_SHARE`] made: it is read after every other.
const INFERRED_LAST: f64 = 3.0;
/// How much of its outline such a proposal must show as an edge: on seed 19's empty tables
/// most of those proposed showed 0.4–0.6 of it (lettering, chips), the cards read from one
/// 0.69–0.91.
const INFERRED_MIN_OUTLINE: f64 = 0.65;
/// A card with another over it: its rectangle grown by this factor about its centre (the card
/// over it reaches past it).
const LIFTED_REACH: f64 = 1.3;
/// Canny's thresholds for the faint edges looked for over such a card (30 and 90 elsewhere).
const FAINT_EDGE: (f64, f64) = (12.0, 36.0);
/// At most this many edge proposals are read in one frame, the best covered first.
const EDGE_READS_MAX: usize = 48;
/// Share of an edge-proposed card that the card-stock mask must cover.
const EDGE_MIN_COVERAGE: f64 = 0.45;
/// How far (grey levels, per channel) from the felt's median colour the felt's own pixels lie:
/// its weave, mottling and a lighting gradient.
const FELT_COLOUR_DISTANCE: f64 = 30.0;
/// A hole in a card-stock blob that is at least this much felt is felt, not a court picture.
const FELT_HOLE_SHARE: f64 = 0.6;
/// Card stock left unexplained by the cards read, as a share of a card's area, above which
/// straight edges are looked for.
const UNEXPLAINED_SHARE: f64 = 0.3;

/// One card read from a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardRead {
    pub card: String,
    pub zone: Option<String>,
    /// 0…1: the correlation of the best matching index.
    pub confidence: f64,
    /// How much better than the next-best card.
    pub margin: f64,
    /// TL, TR, BR, BL in image pixels.
    pub corners_px: [[f64; 2]; 4],
    /// The card's centre on the table plane (mm).
    pub centre_mm: [f64; 2],
}

/// What one frame gave: the cards read, and the card-shaped things that were refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrameReads {
    pub cards: Vec<CardRead>,
    pub rejected: usize,
    /// Centres (table mm) of every card-shaped thing found, read or not.
    pub found_mm: Vec<[f64; 2]>,
}

/// A deck's templates, ready to compare: each index split into its rank part (top) and its
/// suit part (bottom), so that rank and suit are each decided on the pixels that tell them apart
/// (a whole-index match is dominated by the rank, and 6♠ against 6♣ differ only in the suit).
#[derive(Debug)]
pub struct Deck {
    pub name: String,
    index: IndexArea,
    card: SizeMm,
    /// The first template row of the suit part.
    split: i32,
    templates: Vec<CardPattern>,
    /// The deck's mean index: where an index sits in its window, whatever card it is.
    mean: Pattern,
    /// The rows of the mean index that find an index in a window: all of them, or on a deck
    /// with one set whose court cards print their picture below the suit in the index's
    /// column, those above it (a J♥ whose picture glare had washed out fitted the whole mean
    /// index at 0.15 on seed 24, the rows above it at 0.37).
    finder: Pattern,
    /// The finder at half the matching scale, for the first look at a window.
    glance: Pattern,
    /// The whole-index templates as pictures (the calibration report).
    whole: Vec<(String, Mat)>,
    /// Mean ink chromaticity per suit (S, H, D, C), when the faces gave it.
    suit_ink: [Option<[f64; 2]>; 4],
    /// For each rank and each ordered pair of suits (s1, s2): the difference of their suit
    /// parts, normalised, and what a perfect s1 scores against it (see [`Deck::suit_versus`]).
    suit_pairs: Vec<Option<(Pattern, f32)>>,
    /// The bottom-right corner's own templates, where the deck prints another index there.
    bottom_right: Option<Box<Deck>>,
    /// The whole faces, where the deck has them (a deck with bottom-right templates).
    faces: Vec<FacePattern>,
    /// Whether the closest templates climb from the mean index's place (a deck with two sets).
    climb: bool,
    /// For each template, the cards whose indices look like it (correlation at one place of
    /// [`INDEX_LOOK_ALIKE`] or more).
    look_alikes: Vec<Vec<String>>,
}

/// One card's index, prepared for comparison: whole, and its rank and suit parts.
#[derive(Debug)]
struct CardPattern {
    rank: usize,
    suit: usize,
    full: Pattern,
    rank_part: Pattern,
    suit_part: Pattern,
    /// Where the deck's mean index fits best over this index, relative to it (px, x then y):
    /// in a window showing this card, the mean index is found that far from the index itself.
    mean_offset: (isize, isize),
}

/// One card's whole face, upright and turned by 180° (a card may lie either way round).
#[derive(Debug)]
struct FacePattern {
    card: String,
    upright: Pattern,
    turned: Pattern,
}

/// A grey picture as floats (0…1), row by row.
#[derive(Debug, Clone)]
struct Gray {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Gray {
    /// The left `w` columns.
    fn columns(&self, w: usize) -> Gray {
        let w = w.min(self.w);
        let px = self
            .px
            .chunks_exact(self.w.max(1))
            .flat_map(|row| row[..w].iter().copied())
            .collect();
        Gray { w, h: self.h, px }
    }

    /// At half the size: each pixel the mean of a 2 × 2 block (an odd last row or column
    /// dropped).
    fn halved(&self) -> Gray {
        let (w, h) = (self.w / 2, self.h / 2);
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            let (top, below) = (2 * y * self.w, (2 * y + 1) * self.w);
            for x in 0..w {
                let at = |row: usize| self.px[row + 2 * x] + self.px[row + 2 * x + 1];
                px.push((at(top) + at(below)) / 4.0);
            }
        }
        Gray { w, h, px }
    }

    fn from_mat(m: &Mat) -> Result<Gray, VisionError> {
        let g = grey(m)?;
        let g = if g.is_continuous() { g } else { g.try_clone()? };
        if g.depth() != core::CV_8U {
            return Err(VisionError::Deck("expected an 8-bit picture".into()));
        }
        let px = g
            .data_bytes()?
            .iter()
            .map(|b| f32::from(*b) / 255.0)
            .collect();
        Ok(Gray {
            w: g.cols().max(0) as usize,
            h: g.rows().max(0) as usize,
            px,
        })
    }
}

/// A template for normalised correlation: zero mean and unit norm, so that comparing it with a
/// window's patch is one pass of products (OpenCV's `TM_CCOEFF_NORMED`, without its per-call
/// cost, which dominated at 52 templates × 2 indices × every card).
#[derive(Debug, Clone)]
struct Pattern {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Pattern {
    /// The rows `rows` of `g`; `None` when they are empty or flat.
    fn new(g: &Gray, rows: std::ops::Range<usize>) -> Option<Pattern> {
        if rows.start >= rows.end || rows.end > g.h || g.w == 0 {
            return None;
        }
        let h = rows.end - rows.start;
        let mut px: Vec<f32> = g.px[rows.start * g.w..rows.end * g.w].to_vec();
        let n = px.len() as f32;
        let mean = px.iter().sum::<f32>() / n;
        px.iter_mut().for_each(|v| *v -= mean);
        // Without its left-right and top-bottom slopes either: its product with a patch is then
        // blind to any brightness ramp across the patch (glare, a lighting gradient), and the
        // patch's spread is taken the same way (see `Window::residual_sum`).
        let (cx, cy) = ((g.w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let (mut sx, mut sy, mut xx, mut yy) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (i, v) in px.iter().enumerate() {
            let (dx, dy) = ((i % g.w) as f32 - cx, (i / g.w) as f32 - cy);
            sx += dx * v;
            sy += dy * v;
            xx += dx * dx;
            yy += dy * dy;
        }
        let (kx, ky) = (sx / xx.max(1e-6), sy / yy.max(1e-6));
        for (i, v) in px.iter_mut().enumerate() {
            let (dx, dy) = ((i % g.w) as f32 - cx, (i / g.w) as f32 - cy);
            *v -= kx * dx + ky * dy;
        }
        let norm = px.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm < 1e-3 {
            return None;
        }
        px.iter_mut().for_each(|v| *v /= norm);
        Some(Pattern { w: g.w, h, px })
    }

    /// From `from` (x, y and its score), uphill a pixel at a time within the window's places
    /// `0..=max.0 × 0..=max.1`, at most `steps` times: the best place found and its score.
    fn climb(
        &self,
        win: &Window,
        from: (usize, usize, f32),
        steps: usize,
        max: (usize, usize),
    ) -> (usize, usize, f32) {
        uphill(from, steps, max, |x, y| self.ncc(win, x, y))
    }

    /// [`Pattern::ncc`] over the window's pixels flagged in `visible` alone (both sides'
    /// means and spreads taken there).
    /// `differs` flags which of the template's own pixels are compared.
    fn masked_ncc(
        &self,
        win: &Window,
        (x, y): (usize, usize),
        visible: &[bool],
        differs: &[bool],
    ) -> f32 {
        if x + self.w > win.w
            || y + self.h > win.h
            || visible.len() != win.px.len()
            || differs.len() != self.px.len()
        {
            return 0.0;
        }
        let (mut n, mut st, mut sv, mut stt, mut svv, mut stv) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (r, t) in self.px.chunks_exact(self.w).enumerate() {
            let start = (y + r) * win.w + x;
            let (p, seen) = (
                &win.px[start..start + self.w],
                &visible[start..start + self.w],
            );
            let compared = &differs[r * self.w..(r + 1) * self.w];
            for (((&a, &b), _), _) in t
                .iter()
                .zip(p)
                .zip(seen)
                .zip(compared)
                .filter(|((_, seen), compared)| **seen && **compared)
            {
                let (a, b) = (f64::from(a), f64::from(b));
                n += 1.0;
                st += a;
                sv += b;
                stt += a * a;
                svv += b * b;
                stv += a * b;
            }
        }
        if n < 16.0 {
            return 0.0;
        }
        let cov = stv - st * sv / n;
        let (vt, vv) = (stt - st * st / n, svv - sv * sv / n);
        if vt <= 1e-9 || vv <= 1e-6 {
            return 0.0;
        }
        (cov / (vt * vv).sqrt()) as f32
    }

    /// Normalised correlation (−1…1) with the patch of `win` whose top-left is (x, y); 0 where
    /// the patch does not fit or is flat (glare, felt: nothing to read).
    fn ncc(&self, win: &Window, x: usize, y: usize) -> f32 {
        if x + self.w > win.w || y + self.h > win.h {
            return 0.0;
        }
        // The template has zero mean, so the patch's own mean drops out of the product; the
        // patch's spread comes from the window's running sums.
        let mut lanes = [0.0f32; 8];
        let mut dot = 0.0f32;
        for (r, t) in self.px.chunks_exact(self.w).enumerate() {
            let start = (y + r) * win.w + x;
            let p = &win.px[start..start + self.w];
            // Eight running sums, so that the compiler can keep them in one vector register.
            let (t8, p8) = (t.chunks_exact(8), p.chunks_exact(8));
            let (tr, pr) = (t8.remainder(), p8.remainder());
            for (a, b) in t8.zip(p8) {
                for k in 0..8 {
                    lanes[k] += a[k] * b[k];
                }
            }
            for (a, b) in tr.iter().zip(pr) {
                dot += a * b;
            }
        }
        dot += lanes.iter().sum::<f32>();
        let var = win.residual_sum(x, y, self.w, self.h);
        if var <= 1e-4 {
            return 0.0;
        }
        dot / var.sqrt() as f32
    }
}

/// A window to search, with running sums (summed-area tables) of its pixels, their squares,
/// and their products with their column and row.
#[derive(Debug)]
struct Window {
    w: usize,
    h: usize,
    px: Vec<f32>,
    sum: Vec<f64>,
    sq: Vec<f64>,
    by_x: Vec<f64>,
    by_y: Vec<f64>,
}

impl Window {
    fn new(g: Gray) -> Window {
        let (w, h) = (g.w, g.h);
        let table = || vec![0.0f64; (w + 1) * (h + 1)];
        let (mut sum, mut sq, mut by_x, mut by_y) = (table(), table(), table(), table());
        for (y, pixels) in g.px.chunks_exact(w.max(1)).enumerate().take(h) {
            // This row's running sums, added to the table's row above.
            let (mut s, mut s2, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let (above, at) = (y * (w + 1) + 1, (y + 1) * (w + 1) + 1);
            for (x, &p) in pixels.iter().enumerate() {
                let v = f64::from(p);
                s += v;
                s2 += v * v;
                sx += v * x as f64;
                sy += v * y as f64;
                sum[at + x] = sum[above + x] + s;
                sq[at + x] = sq[above + x] + s2;
                by_x[at + x] = by_x[above + x] + sx;
                by_y[at + x] = by_y[above + x] + sy;
            }
        }
        Window {
            w,
            h,
            px: g.px,
            sum,
            sq,
            by_x,
            by_y,
        }
    }

    /// What is left of Σv² over the rectangle once its mean and its left-right and top-bottom
    /// slopes are taken out (the plane fitted to it by least squares): the patch's spread as
    /// a ramp-free template sees it.
    fn residual_sum(&self, x: usize, y: usize, w: usize, h: usize) -> f64 {
        let s = self.w + 1;
        let rect = |t: &[f64]| {
            t[(y + h) * s + x + w] - t[y * s + x + w] - t[(y + h) * s + x] + t[y * s + x]
        };
        let (wf, hf) = (w as f64, h as f64);
        let n = wf * hf;
        let total = rect(&self.sum);
        // Σ(col − mean col)·v and its normaliser Σ(col − mean col)², and the same by rows: on
        // a whole rectangle, constant, column and row are orthogonal.
        let (mid_x, mid_y) = (x as f64 + (wf - 1.0) / 2.0, y as f64 + (hf - 1.0) / 2.0);
        let sx = rect(&self.by_x) - mid_x * total;
        let sy = rect(&self.by_y) - mid_y * total;
        let xx = hf * wf * (wf * wf - 1.0) / 12.0;
        let yy = wf * hf * (hf * hf - 1.0) / 12.0;
        rect(&self.sq) - total * total / n - sx * sx / xx.max(1e-9) - sy * sy / yy.max(1e-9)
    }
}

/// The ink's colour against the paper's: the chromaticity (r, g of r/(r+g+b)) of the darkest
/// fifth of a BGR picture minus that of its brightest half. Relative to the paper, so the
/// light's colour cancels out; a red index gives a clearly positive r shift even when blurred.
fn ink_chroma(img: &Mat) -> Result<Option<[f64; 2]>, VisionError> {
    if img.channels() != 3 {
        return Ok(None);
    }
    let m = if img.is_continuous() {
        img.clone()
    } else {
        img.try_clone()?
    };
    let bytes = m.data_bytes()?;
    let mut px: Vec<(u32, [f64; 3])> = bytes
        .chunks_exact(3)
        .map(|c| {
            let (b, g, r) = (f64::from(c[0]), f64::from(c[1]), f64::from(c[2]));
            (
                u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2]),
                [b, g, r],
            )
        })
        .collect();
    if px.len() < 10 {
        return Ok(None);
    }
    px.sort_by_key(|p| p.0);
    let chroma = |slice: &[(u32, [f64; 3])]| {
        let (mut sb, mut sg, mut sr) = (0.0, 0.0, 0.0);
        for (_, [b, g, r]) in slice {
            sb += b;
            sg += g;
            sr += r;
        }
        let sum = (sb + sg + sr).max(1.0);
        [sr / sum, sg / sum]
    };
    let ink = chroma(&px[..px.len() / 5]);
    let paper = chroma(&px[px.len() / 2..]);
    Ok(Some([ink[0] - paper[0], ink[1] - paper[1]]))
}

/// The ink's colour against the paper's (as [`ink_chroma`]) in the patch of `colour` at (x, y):
/// ink where both templates are darker than their means, paper where both are lighter.
fn ink_where(
    colour: &Mat,
    x: usize,
    y: usize,
    tpl: &Pattern,
    mean: &Pattern,
) -> Result<Option<[f64; 2]>, VisionError> {
    if colour.channels() != 3 || colour.typ() != core::CV_8UC3 || tpl.w != mean.w {
        return Ok(None);
    }
    let m = if colour.is_continuous() {
        colour.clone()
    } else {
        colour.try_clone()?
    };
    let (cols, rows) = (m.cols().max(0) as usize, m.rows().max(0) as usize);
    if x + tpl.w > cols || y + tpl.h > rows || tpl.h > mean.h {
        return Ok(None);
    }
    let bytes = m.data_bytes()?;
    let darkest = tpl.px.iter().copied().fold(0.0f32, f32::min);
    let (mut ink, mut paper) = ([0.0f64; 3], [0.0f64; 3]);
    let (mut n_ink, mut n_paper) = (0u32, 0u32);
    for r in 0..tpl.h {
        for c in 0..tpl.w {
            let (t, a) = (tpl.px[r * tpl.w + c], mean.px[r * mean.w + c]);
            let i = ((y + r) * cols + x + c) * 3;
            let Some(px) = bytes.get(i..i + 3) else {
                continue;
            };
            let bgr = [f64::from(px[0]), f64::from(px[1]), f64::from(px[2])];
            if t < 0.4 * darkest && a < 0.0 {
                ink.iter_mut().zip(bgr).for_each(|(s, v)| *s += v);
                n_ink += 1;
            } else if t > 0.0 && a > 0.0 {
                paper.iter_mut().zip(bgr).for_each(|(s, v)| *s += v);
                n_paper += 1;
            }
        }
    }
    if n_ink < 8 || n_paper < 8 {
        return Ok(None);
    }
    let chroma = |s: [f64; 3]| {
        let sum = (s[0] + s[1] + s[2]).max(1.0);
        [s[2] / sum, s[1] / sum]
    };
    let (i, p) = (chroma(ink), chroma(paper));
    Ok(Some([i[0] - p[0], i[1] - p[1]]))
}

/// How red an ink is (its r shift less its g shift); about 0 for black ink.
fn redness(ink: [f64; 2]) -> f64 {
    ink[0] - ink[1]
}

fn grey(img: &Mat) -> Result<Mat, VisionError> {
    if img.channels() == 1 {
        return Ok(img.clone());
    }
    let mut g = Mat::default();
    imgproc::cvt_color_def(img, &mut g, imgproc::COLOR_BGR2GRAY)?;
    Ok(g)
}

/// Below this correlation (the deck's median card) between a card's top-left index and its
/// bottom-right one turned upright, the bottom-right corner has templates of its own. The
/// decks printing both alike correlate 0.94–1.00, the two that do not 0.49 and 0.60.
const CORNERS_ALIKE: f64 = 0.8;

/// On a deck with a bottom-right set of templates, an index window whose best fit in the other
/// set names another card scoring within this of it is no witness: on ancient-egyptians a 9's
/// top-left index fitted the 6's bottom-right template (its 6 printed upright, turned) at 0.98
/// and its own at 0.85.
const CORNERS_AMBIGUOUS_WITHIN: f64 = 0.2;

/// Two cards of one rank that the two sets of templates leave within
/// [`CORNERS_AMBIGUOUS_WITHIN`] are told apart by the window where their templates differ
/// (each placed where it fits) when the better one fits there by [`SUITS_TOLD_APART`] more,
/// and fits the whole window at [`SUITS_TOLD_SCORE`] or more. On seeds 13–22 (1172 such
/// contests on jolly-royal and ancient-egyptians) this told 1078 windows their card and none
/// another; a window fitting its better card less well is blurred, glared or half under
/// another card, and there 23 told the other suit (3 of them at 0.82 or more, none at 0.9).
/// Ranks other than a 6 against a 9 are not told this way: an ancient-egyptians 5 fits its 3
/// (alike at the top) well enough that 16 windows of 5s were told 3♣ or 3♠.
const SUITS_TOLD_APART: f64 = 0.6;
const SUITS_TOLD_SCORE: f64 = 0.9;

/// A window is moved over an index it cuts at its edge only where the mean index fits there
/// at least this well (half an index showing fits at about 0.5).
const CUT_INDEX_LIKENESS: f64 = 0.5;

/// Two cards whose index templates correlate this well at one place look alike: a lone index
/// read with little margin is taken only where the face tells it from each of them.
const INDEX_LOOK_ALIKE: f64 = 0.85;

/// Below this fit of the mean index at half scale ([`Deck::glance`]) a window is not read. On
/// the synthetic sets (94 000 windows, nine decks) no window that read a card at 0.6 or more
/// glanced below 0.3; on an empty table 64 % of the windows glance below 0.2.
const GLANCE_MIN: f32 = 0.2;

/// Faces are compared at this scale: the pips' layout, not their shapes.
const FACE_PX_PER_MM: f64 = 1.0;
/// The faces' blur (σ, px), both the deck's and the frame's.
const FACE_SOFTEN: f64 = 1.0;
/// How far (px) the face is sought around where the outline puts it.
const FACE_SEARCH_PX: usize = 2;
/// A face tells two cards apart when it fits one at least this well, and by this much more
/// than the other. A face mostly under another card fits both badly: at 0.25 and 0.05 a 9♦
/// under a 5♠ (fitting 0.39 as a 6♦, 0.32 as itself) was read as a 6♦ on seed 15, and at 0.45
/// and 0.1 a 9♠ three-fifths under a 3♥ (0.63 as a 6♠, 0.47 as itself) as a 6♠ on seed 17.
const FACE_MIN: f64 = 0.45;
const FACE_MARGIN: f64 = 0.2;

/// How many pixels the mean index climbs from where the first look found it (which is good to
/// a pixel or two at the full scale, and a window read again turned by a few degrees moves
/// the index by a pixel or so more).
const GLANCED_CLIMB: usize = 6;

/// On such a deck, how many pixels the closest templates may climb from where their own offset
/// from the mean index puts them.
const CLIMB_STEPS: usize = 6;

/// How far (px) the mean index is sought around each template when the deck is loaded.
const MEAN_OFFSET_REACH: usize = 6;

/// A face compared over its visible part alone must show at least this share of itself.
const FACE_VISIBLE_MIN: f64 = 0.25;
/// Two faces differ at a pixel where their templates (of unit norm) differ by more than this
/// many times their pixels' root-mean-square.
const FACE_DIFFERS: f32 = 1.0;

/// A warped face's pixels → card mm.
fn face_px_to_card() -> Homography {
    let m = FACE_SEARCH_PX as f64;
    scale(1.0 / FACE_PX_PER_MM).then_after(&translate(0.5 - m, 0.5 - m))
}

/// One face's index area (`face` grey and `colour` at [`INDEX_PX_PER_MM`]) as a template.
fn index_template(
    code: &str,
    face: &Mat,
    colour: &Mat,
    index: &IndexArea,
) -> Result<Template, VisionError> {
    let cut = crop_index(face, index)?;
    let ink = ink_chroma(&crop_index(colour, index)?)?;
    let mut blurred = Mat::default();
    imgproc::gaussian_blur_def(&cut, &mut blurred, Size::new(3, 3), 0.6)?;
    let bytes = blurred.data_bytes()?.to_vec();
    Ok(Template {
        card: code.to_owned(),
        width: blurred.cols() as u32,
        height: blurred.rows() as u32,
        pixels: to_hex(&bytes),
        ink,
    })
}

/// Normalised correlation of two templates' pixels (0 where they differ in size or are flat).
/// A stored grey picture (a template, a face) as a Mat; `what` names it in the error.
fn decoded(t: &Template, what: &str) -> Result<Mat, VisionError> {
    let bytes = from_hex(&t.pixels)
        .filter(|b| b.len() == (t.width * t.height) as usize && !b.is_empty())
        .ok_or_else(|| {
            VisionError::Deck(format!("{what} {} is damaged; rebuild the deck", t.card))
        })?;
    Ok(Mat::from_slice(&bytes)?
        .reshape(1, t.height as i32)?
        .try_clone()?)
}

fn likeness(a: &Template, b: &Template) -> f64 {
    let (Some(pa), Some(pb)) = (from_hex(&a.pixels), from_hex(&b.pixels)) else {
        return 0.0;
    };
    if pa.len() != pb.len() || pa.is_empty() {
        return 0.0;
    }
    let n = pa.len() as f64;
    let mean = |p: &[u8]| p.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let (ma, mb) = (mean(&pa), mean(&pb));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in pa.iter().zip(&pb) {
        let (x, y) = (f64::from(*x) - ma, f64::from(*y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa * bb <= 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

fn index_size(index: &IndexArea) -> Size {
    Size::new(
        (index.width * INDEX_PX_PER_MM).round() as i32,
        (index.height * INDEX_PX_PER_MM).round() as i32,
    )
}

impl Deck {
    /// Builds a deck's templates from a folder of single-card face images named by card
    /// (`AS.png`, `TD.png`, `9H.png`…): each face is scaled to the card's size, and its top-left
    /// index cut out. Every one of the 52 must be there.
    pub fn from_faces(dir: &std::path::Path, name: &str) -> Result<DeckTemplates, VisionError> {
        let index = IndexArea::default();
        // The card's width follows the faces' own aspect (decks differ: 56–64 mm at 88 mm).
        let mut card = SizeMm {
            width: 63.0,
            height: 88.0,
        };
        let mut aspect_known = false;
        let mut templates = Vec::new();
        let mut bottom_right = Vec::new();
        let mut alike = Vec::new();
        let mut faces = Vec::new();
        let mut missing = Vec::new();
        for code in crate::calibration::all_cards() {
            let path = ["png", "jpg", "jpeg"]
                .iter()
                .map(|ext| dir.join(format!("{code}.{ext}")))
                .find(|p| p.exists());
            let Some(path) = path else {
                missing.push(code);
                continue;
            };
            let colour = crate::read_image(&path)?;
            let face = grey(&colour)?;
            if !aspect_known && face.rows() > 0 {
                card.width = card.height * f64::from(face.cols()) / f64::from(face.rows());
                aspect_known = true;
            }
            let size = Size::new(
                (card.width * INDEX_PX_PER_MM).round() as i32,
                (card.height * INDEX_PX_PER_MM).round() as i32,
            );
            let mut scaled = Mat::default();
            imgproc::resize(&face, &mut scaled, size, 0.0, 0.0, imgproc::INTER_AREA)?;
            let mut colour_scaled = Mat::default();
            imgproc::resize(
                &colour,
                &mut colour_scaled,
                size,
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )?;
            let top_left = index_template(&code, &scaled, &colour_scaled, &index)?;
            // The bottom-right index as the reader sees it: the card turned by 180°.
            let (mut turned, mut colour_turned) = (Mat::default(), Mat::default());
            core::rotate(&scaled, &mut turned, core::ROTATE_180)?;
            core::rotate(&colour_scaled, &mut colour_turned, core::ROTATE_180)?;
            let turned = index_template(&code, &turned, &colour_turned, &index)?;
            alike.push(likeness(&top_left, &turned));
            templates.push(top_left);
            bottom_right.push(turned);
            let mut small = Mat::default();
            let whole = Size::new(
                (card.width * FACE_PX_PER_MM).round() as i32,
                (card.height * FACE_PX_PER_MM).round() as i32,
            );
            imgproc::resize(&face, &mut small, whole, 0.0, 0.0, imgproc::INTER_AREA)?;
            faces.push(Template {
                card: code.clone(),
                width: small.cols() as u32,
                height: small.rows() as u32,
                pixels: to_hex(small.data_bytes()?),
                ink: None,
            });
        }
        if !missing.is_empty() {
            return Err(VisionError::Deck(format!(
                "{}: no face for {} (name each image by its card: AS.png, TD.png, 9H.png…)",
                dir.display(),
                missing.join(" ")
            )));
        }
        // Most decks print the same index in both corners; where the deck's typical card
        // shows another picture there, the bottom-right corner gets templates of its own.
        alike.sort_by(f64::total_cmp);
        let typical = alike.get(alike.len() / 2).copied().unwrap_or(1.0);
        if typical >= CORNERS_ALIKE {
            bottom_right.clear();
            faces.clear();
        }
        Ok(DeckTemplates {
            name: name.to_owned(),
            px_per_mm: INDEX_PX_PER_MM,
            index_mm: index,
            card_mm: card,
            templates,
            bottom_right,
            faces,
        })
    }

    /// The templates of a calibration, decoded and brought to the resolution the reader
    /// compares at (a calibration made at another resolution still loads).
    pub fn load(t: &DeckTemplates) -> Result<Deck, VisionError> {
        Deck::load_set(t, !t.bottom_right.is_empty())
    }

    /// One set of templates; `climb` on a deck with two sets (each template is then compared
    /// at its own offset from the mean index, measured here).
    fn load_set(t: &DeckTemplates, climb: bool) -> Result<Deck, VisionError> {
        if !(t.px_per_mm.is_finite() && t.px_per_mm > 0.1) {
            return Err(VisionError::Deck(format!(
                "templates at {} px/mm; rebuild the deck",
                t.px_per_mm
            )));
        }
        let size = Size::new(
            (t.index_mm.width * MATCH_PX_PER_MM).round() as i32,
            (t.index_mm.height * MATCH_PX_PER_MM).round() as i32,
        );
        let mut whole = Vec::new();
        for tpl in &t.templates {
            let m = decoded(tpl, "template")?;
            let mut sized = Mat::default();
            if m.size()? == size {
                sized = m;
            } else {
                let shrink = m.cols() > size.width;
                let interp = if shrink {
                    imgproc::INTER_AREA
                } else {
                    imgproc::INTER_LINEAR
                };
                imgproc::resize(&m, &mut sized, size, 0.0, 0.0, interp)?;
            }
            // A camera sees the index softer than the face files show it.
            let mut soft = Mat::default();
            imgproc::gaussian_blur_def(&sized, &mut soft, Size::new(5, 5), TEMPLATE_SOFTEN)?;
            whole.push((tpl.card.clone(), soft));
        }
        if whole.is_empty() {
            return Err(VisionError::Deck(
                "the deck has no templates; run `croupier calibrate deck`".into(),
            ));
        }
        let split = rank_suit_split(&whole)?;
        let mut suit_ink: [Option<[f64; 2]>; 4] = [None; 4];
        for (si, suit) in crate::calibration::SUITS.iter().enumerate() {
            let inks: Vec<[f64; 2]> = t
                .templates
                .iter()
                .filter(|tp| tp.card.ends_with(*suit))
                .filter_map(|tp| tp.ink)
                .collect();
            if !inks.is_empty() {
                let n = inks.len() as f64;
                suit_ink[si] = Some([
                    inks.iter().map(|i| i[0]).sum::<f64>() / n,
                    inks.iter().map(|i| i[1]).sum::<f64>() / n,
                ]);
            }
        }
        let (full_w, h) = (size.width as usize, size.height as usize);
        let split = split as usize;
        let w = index_width(&whole, full_w)?;
        let mut mean = vec![0.0f32; w * h];
        let mut templates = Vec::new();
        // Each template's picture, beside it, for its offset from the mean index.
        let mut greys = Vec::new();
        for (card, m) in &whole {
            let g = Gray::from_mat(m)?.columns(w);
            for (acc, v) in mean.iter_mut().zip(&g.px) {
                *acc += v / whole.len() as f32;
            }
            let mut chars = card.chars();
            let (Some(r), Some(s)) = (chars.next(), chars.next()) else {
                continue;
            };
            let (Some(rank), Some(suit)) = (
                crate::calibration::RANKS.iter().position(|x| *x == r),
                crate::calibration::SUITS.iter().position(|x| *x == s),
            ) else {
                continue;
            };
            let (Some(full), Some(rank_part), Some(suit_part)) = (
                Pattern::new(&g, 0..h),
                Pattern::new(&g, 0..split),
                Pattern::new(&g, split..h),
            ) else {
                continue;
            };
            greys.push(g);
            templates.push(CardPattern {
                rank,
                suit,
                full,
                rank_part,
                suit_part,
                mean_offset: (0, 0),
            });
        }
        let mean = Gray { w, h, px: mean };
        let half = mean.halved();
        // On a deck with two sets, each template's offset from the mean index is learnt with
        // the whole of it (below), so the whole of it finds indices there too.
        let finder_rows = if climb {
            h
        } else {
            court_picture_row(&whole, w, split)?.unwrap_or(h)
        };
        let blank = || VisionError::Deck("the templates are blank; rebuild the deck".into());
        let glance = Pattern::new(&half, 0..finder_rows / 2).ok_or_else(blank)?;
        let finder = Pattern::new(&mean, 0..finder_rows).ok_or_else(blank)?;
        let mean = Pattern::new(&mean, 0..h).ok_or_else(blank)?;
        if climb {
            for (t, g) in templates.iter_mut().zip(&greys) {
                t.mean_offset = mean_offset(&mean, g);
            }
        }
        let mut suit_pairs = Vec::with_capacity(13 * 16);
        for rank in 0..13 {
            for s1 in 0..4 {
                for s2 in 0..4 {
                    let find = |suit: usize| {
                        templates
                            .iter()
                            .find(|t| t.rank == rank && t.suit == suit)
                            .map(|t| &t.suit_part)
                    };
                    let pair = match (find(s1), find(s2)) {
                        (Some(a), Some(b)) if s1 != s2 && a.px.len() == b.px.len() => {
                            let same: f32 = a.px.iter().zip(&b.px).map(|(x, y)| x * y).sum();
                            let diff: Vec<f32> =
                                a.px.iter().zip(&b.px).map(|(x, y)| x - y).collect();
                            let norm = diff.iter().map(|v| v * v).sum::<f32>().sqrt();
                            (norm > 1e-3).then(|| {
                                let px = diff.iter().map(|v| v / norm).collect();
                                let perfect = ((1.0 - same) / 2.0).max(1e-6).sqrt();
                                (Pattern { w: a.w, h: a.h, px }, perfect)
                            })
                        }
                        _ => None,
                    };
                    suit_pairs.push(pair);
                }
            }
        }
        let card_name = |t: &CardPattern| {
            format!(
                "{}{}",
                crate::calibration::RANKS[t.rank],
                crate::calibration::SUITS[t.suit]
            )
        };
        let look_alikes = templates
            .iter()
            .map(|a| {
                templates
                    .iter()
                    .filter(|b| !std::ptr::eq(*b, a) && a.full.px.len() == b.full.px.len())
                    .filter(|b| {
                        let same: f32 = a.full.px.iter().zip(&b.full.px).map(|(x, y)| x * y).sum();
                        f64::from(same) >= INDEX_LOOK_ALIKE
                    })
                    .map(card_name)
                    .collect()
            })
            .collect();
        let mut faces = Vec::new();
        for face in &t.faces {
            let m = decoded(face, "face")?;
            // As soft as a camera sees a card at 1 px/mm, and forgiving a millimetre's error
            // in the outline.
            let mut soft = Mat::default();
            imgproc::gaussian_blur_def(&m, &mut soft, Size::new(5, 5), FACE_SOFTEN)?;
            let g = Gray::from_mat(&soft)?;
            let turned = Gray {
                px: g.px.iter().rev().copied().collect(),
                ..g.clone()
            };
            if let (Some(upright), Some(turned)) =
                (Pattern::new(&g, 0..g.h), Pattern::new(&turned, 0..turned.h))
            {
                faces.push(FacePattern {
                    card: face.card.clone(),
                    upright,
                    turned,
                });
            }
        }
        Ok(Deck {
            name: t.name.clone(),
            index: t.index_mm,
            card: t.card_mm,
            split: split as i32,
            templates,
            mean,
            finder,
            glance,
            whole,
            suit_ink,
            suit_pairs,
            faces,
            bottom_right: if t.bottom_right.is_empty() {
                None
            } else {
                let corner = Deck::load_set(
                    &DeckTemplates {
                        templates: t.bottom_right.clone(),
                        bottom_right: Vec::new(),
                        faces: Vec::new(),
                        ..t.clone()
                    },
                    true,
                )?;
                Some(Box::new(corner))
            },
            climb,
            look_alikes,
        })
    }

    /// Every template on one sheet (13 ranks across, 4 suits down), three times enlarged: the
    /// deck calibration's report image.
    pub fn contact_sheet(&self) -> Result<Mat, VisionError> {
        let Some((_, first)) = self.whole.first() else {
            return Err(VisionError::Deck("no templates".into()));
        };
        let (tw, th) = (first.cols() * 3, first.rows() * 3);
        let (gap, label) = (6, 18);
        let cols = 13;
        let rows = (self.whole.len() as i32 + cols - 1) / cols;
        let mut sheet = Mat::new_rows_cols_with_default(
            rows * (th + gap + label) + gap,
            cols * (tw + gap) + gap,
            core::CV_8UC1,
            Scalar::all(255.0),
        )?;
        for (i, (card, tpl)) in self.whole.iter().enumerate() {
            let (c, r) = (i as i32 % cols, i as i32 / cols);
            let mut big = Mat::default();
            imgproc::resize(
                tpl,
                &mut big,
                Size::new(tw, th),
                0.0,
                0.0,
                imgproc::INTER_NEAREST,
            )?;
            let (x, y) = (gap + c * (tw + gap), gap + r * (th + gap + label));
            let mut roi = Mat::roi_mut(&mut sheet, core::Rect::new(x, y + label, tw, th))?;
            big.copy_to(&mut roi)?;
            // The line where the rank part ends and the suit part begins.
            let y_split = y + label + self.split_row() * 3;
            imgproc::line(
                &mut sheet,
                Point::new(x, y_split),
                Point::new(x + tw, y_split),
                Scalar::all(160.0),
                1,
                imgproc::LINE_8,
                0,
            )?;
            imgproc::put_text_def(
                &mut sheet,
                card,
                Point::new(x, y + label - 4),
                imgproc::FONT_HERSHEY_SIMPLEX,
                0.5,
                Scalar::all(0.0),
            )?;
        }
        Ok(sheet)
    }

    /// The card one index window shows: its best rank and best suit, each with its score and
    /// its margin over the runner-up. Returns (card, score, margin) where score and margin are
    /// the weaker of the two, or `None` when the window is too small or blank.
    fn best(
        &self,
        window: &Window,
        colour: &Mat,
        glanced: (usize, usize),
    ) -> Result<Option<(String, f64, f64)>, VisionError> {
        let (tw, th) = (self.mean.w, self.mean.h);
        if window.w < tw || window.h < th {
            return Ok(None);
        }
        let (sx, sy) = (window.w - tw, window.h - th);
        let Some(at) = self.mean_index_at(window, glanced) else {
            return Ok(None);
        };
        // Every template where the mean index fits; the closest ones (which hold the best and
        // the runners-up) then within a pixel of it.
        // On a deck with two sets, whose indices sit less alike, each template is compared
        // where its own offset from the mean index puts it (jolly-royal's 5♠ in the
        // bottom-right set lies 5 px from where that set's mean index fits, and ranked 43rd
        // there).
        let start = |t: &CardPattern| self.start_of(t, at, (sx, sy));
        let mut scored: Vec<(f32, usize, (usize, usize))> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (x, y) = start(t);
                (t.full.ncc(window, x, y), i, (x, y))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut closest: Option<(&CardPattern, usize, usize, f32)> = None;
        let mut rank_best: [f64; 13] = [-1.0; 13];
        let mut suit_of: [[f64; 4]; 13] = [[-1.0; 4]; 13];
        let mut suit_at: [[(usize, usize); 4]; 13] = [[(0, 0); 4]; 13];
        let split = self.split as usize;
        for (n, (score, i, (x, y))) in scored.into_iter().enumerate() {
            let Some(t) = self.templates.get(i) else {
                continue;
            };
            let mut here = (x, y, score);
            if n < REFINED {
                // Within a pixel of the mean index's place; on a deck with two sets, uphill
                // from where the template's offset put it.
                let steps = if self.climb { CLIMB_STEPS } else { 1 };
                here = t.full.climb(window, here, steps, (sx, sy));
            }
            // Rank and suit judged at the place the whole index fits best, so neither part can
            // drift to a spurious match of its own.
            let r = f64::from(t.rank_part.ncc(window, here.0, here.1));
            let s = f64::from(t.suit_part.ncc(window, here.0, here.1 + split));
            rank_best[t.rank] = rank_best[t.rank].max(r);
            suit_of[t.rank][t.suit] = s;
            suit_at[t.rank][t.suit] = (here.0, here.1 + split);
            if closest.is_none_or(|c| here.2 > c.3) {
                closest = Some((t, here.0, here.1, here.2));
            }
        }
        // The ink's colour where the closest template and the deck's mean index both have ink,
        // against the paper where both have none: not the felt past the card's edge, nor a
        // court picture reaching into the index area (red robes on a club).
        let ink = match closest {
            Some((t, x, y, _)) => ink_where(colour, x, y, &t.full, &self.mean)?,
            None => None,
        };
        // Rank first, then the suit among that rank's four cards: their indices differ in the
        // suit alone, so the suit's margin is not blurred by other ranks' layouts.
        let (ri, rs, rm) = best_and_margin(&rank_best);
        let mut suit_best = suit_of[ri];
        // Red suits against black ones by the ink's colour, before any shape: ♥/♠ and ♦/♣
        // outlines are close, their colours are not. A window whose colour is unclear (glare,
        // shadow) leaves the suits to their shapes.
        if let Some(window_ink) = ink {
            let red = redness(window_ink);
            let class = if red > RED_INK {
                Some(true)
            } else if red < BLACK_INK {
                Some(false)
            } else {
                None
            };
            if let Some(window_red) = class {
                for (si, best) in suit_best.iter_mut().enumerate() {
                    if let Some(suit_ink) = self.suit_ink[si] {
                        let suit_red = redness(suit_ink) > RED_INK;
                        if suit_red != window_red {
                            *best -= INK_PENALTY;
                        }
                    }
                }
            }
        }
        let (mut si, _, sm) = best_and_margin(&suit_best);
        // The suit's margin from the pixels where the two likeliest suits differ: the suit
        // parts are mostly the same paper, which dilutes their difference in a plain score.
        let runner_up = |si: usize| {
            (0..4)
                .filter(|s| *s != si)
                .max_by(|a, b| suit_best[*a].total_cmp(&suit_best[*b]))
        };
        let mut sm = match runner_up(si) {
            Some(s2) => self.suit_versus(window, ri, si, s2, suit_at[ri][si]),
            None => sm,
        };
        // Where those pixels say the runner-up (glare or blur flattening ♠ into ♣ in the plain
        // score), the runner-up is the suit if they say it from its own place too, and it must
        // then stand out against every other suit that way.
        if sm < 0.0 {
            if let Some(s2) = runner_up(si) {
                let at = suit_at[ri][s2];
                let against_all = (0..4)
                    .filter(|s| *s != s2)
                    .map(|s| self.suit_versus(window, ri, s2, s, at))
                    .fold(f64::MAX, f64::min);
                if against_all > 0.0 {
                    si = s2;
                    sm = against_all;
                }
            }
        }
        let ss = suit_best[si];
        let card = format!(
            "{}{}",
            crate::calibration::RANKS[ri],
            crate::calibration::SUITS[si]
        );
        Ok(Some((card, rs.min(ss), rm.min(sm))))
    }

    /// Where the deck's mean index sits in the window, and how well it fits there: from where
    /// the first look found it at half scale (`glanced`, this window's pixels), uphill a pixel
    /// at a time (the mean index is smooth: its peak is broad). Every template is then
    /// compared near it: the outline already puts the index within a couple of millimetres,
    /// and one alignment for all 52 keeps the work at 52 × 9 small products. `None` where
    /// the window shows nothing like an index, or one cut by its edge.
    fn mean_index_at(
        &self,
        window: &Window,
        glanced: (usize, usize),
    ) -> Option<(usize, usize, f32)> {
        let (at, room) = self.mean_climbed(window, glanced)?;
        // Nothing like an index anywhere in the window (a proposal the wrong way round, a
        // covered corner): on the synthetic set no window whose mean-index fit was below 0.3
        // ever read a card at `card_min_score`; below 0.25 the 52 comparisons are skipped.
        if at.2 < MIN_INDEX_LIKENESS {
            return None;
        }
        // Where the index fits best at the window's very edge, it may lie beyond it: the
        // outline put the window 3.5 mm or more off, and the templates are then fitted to part
        // of the index (a Q♣ whose index was cut at the top was read as Q♠ on seed 15, at
        // 0.95). Such a window is no witness.
        if on_room_edge(at, room) {
            return None;
        }
        Some(at)
    }

    /// The deck's mean index climbed from `glanced` (this window's pixels) to where it fits
    /// best nearby, and the window's room for it (its last place, x then y); `None` where the
    /// window is smaller than an index.
    fn mean_climbed(
        &self,
        window: &Window,
        glanced: (usize, usize),
    ) -> Option<(Place, (usize, usize))> {
        let (tw, th) = (self.mean.w, self.mean.h);
        if window.w < tw || window.h < th {
            return None;
        }
        let (sx, sy) = (window.w - tw, window.h - th);
        let from = (glanced.0.min(sx), glanced.1.min(sy));
        let from = (from.0, from.1, self.finder.ncc(window, from.0, from.1));
        Some((
            self.finder.climb(window, from, GLANCED_CLIMB, (sx, sy)),
            (sx, sy),
        ))
    }

    /// How far (window px, x then y) the mean index lies from the middle of the window's
    /// search room, where it fits best at the room's very edge ([`Deck::mean_index_at`] finds
    /// no index there) and fits like an index; at most [`SEARCH_MM`] either way. `None` where
    /// it fits best inside the room, or nowhere.
    fn index_off_middle(&self, window: &Window, glanced: (usize, usize)) -> Option<(f64, f64)> {
        let (at, (sx, sy)) = self.mean_climbed(window, glanced)?;
        if sx == 0 || sy == 0 || !on_room_edge(at, (sx, sy)) || f64::from(at.2) < CUT_INDEX_LIKENESS
        {
            return None;
        }
        let reach = SEARCH_MM * MATCH_PX_PER_MM;
        let off = |a: usize, room: usize| (a as f64 - room as f64 / 2.0).clamp(-reach, reach);
        Some((off(at.0, sx), off(at.1, sy)))
    }

    /// The places the mean index can take in the window (x then y, from 0).
    fn search_room(&self, window: &Window) -> (usize, usize) {
        (
            window.w.saturating_sub(self.mean.w),
            window.h.saturating_sub(self.mean.h),
        )
    }

    /// Where template `t` is first compared in a window whose mean index fits at `at`: there,
    /// or on a deck with two sets as far off it as its own offset from the mean index (kept
    /// within the window's `room`).
    fn start_of(&self, t: &CardPattern, at: Place, room: (usize, usize)) -> (usize, usize) {
        if !self.climb {
            return (at.0, at.1);
        }
        let shift =
            |a: usize, e: isize, max: usize| (a as isize - e).clamp(0, max as isize) as usize;
        (
            shift(at.0, t.mean_offset.0, room.0),
            shift(at.1, t.mean_offset.1, room.1),
        )
    }

    /// The template of a card named as `AS`, `TD` …, and its place in the set.
    fn template_of(&self, card: &str) -> Option<(usize, &CardPattern)> {
        let mut chars = card.chars();
        let (r, s) = (chars.next()?, chars.next()?);
        let rank = crate::calibration::RANKS.iter().position(|x| *x == r)?;
        let suit = crate::calibration::SUITS.iter().position(|x| *x == s)?;
        self.templates
            .iter()
            .enumerate()
            .find(|(_, t)| t.rank == rank && t.suit == suit)
    }

    /// Where one card's whole-index template fits best in the window (as [`Deck::best`] places
    /// the closest templates): the template and its place.
    fn placed(
        &self,
        window: &Window,
        card: &str,
        glanced: (usize, usize),
    ) -> Option<(&Pattern, (usize, usize))> {
        let at = self.mean_index_at(window, glanced)?;
        let (_, t) = self.template_of(card)?;
        let (sx, sy) = (window.w - self.mean.w, window.h - self.mean.h);
        let (x, y) = self.start_of(t, at, (sx, sy));
        let steps = if self.climb { CLIMB_STEPS } else { 1 };
        let here = t
            .full
            .climb(window, (x, y, t.full.ncc(window, x, y)), steps, (sx, sy));
        Some((&t.full, (here.0, here.1)))
    }

    /// The card an index window shows over its pixels flagged in `visible` alone (one flag
    /// per window pixel): an index partly under a card read over it. Read as [`Deck::best`]
    /// reads, more simply: the mean index placed where it fits the visible pixels best, each
    /// template compared there (within a pixel, for the closest), rank first, then the suit
    /// among that rank's four; no ink colour. `None` where less than [`INDEX_VISIBLE_MIN`] of
    /// the index shows, or nothing like an index does.
    fn best_visible(&self, window: &Window, visible: &[bool]) -> Option<(String, f64, f64)> {
        let (tw, th) = (self.mean.w, self.mean.h);
        if window.w < tw || window.h < th || visible.len() != window.px.len() {
            return None;
        }
        let (sx, sy) = (window.w - tw, window.h - th);
        let whole = vec![true; tw * th];
        let masked =
            |p: &Pattern, at: (usize, usize), all: &[bool]| p.masked_ncc(window, at, visible, all);
        // Every other place, then uphill a pixel at a time.
        let mut at = (0, 0, f32::MIN);
        for y in (0..=sy).step_by(2) {
            for x in (0..=sx).step_by(2) {
                let v = masked(&self.mean, (x, y), &whole);
                if v > at.2 {
                    at = (x, y, v);
                }
            }
        }
        let at = uphill(at, usize::MAX, (sx, sy), |x, y| {
            masked(&self.mean, (x, y), &whole)
        });
        if at.2 < MIN_INDEX_LIKENESS || at.0 == 0 || at.1 == 0 || at.0 == sx || at.1 == sy {
            return None;
        }
        let shown = (0..th)
            .flat_map(|r| &visible[(at.1 + r) * window.w + at.0..][..tw])
            .filter(|v| **v)
            .count();
        if (shown as f64) < INDEX_VISIBLE_MIN * (tw * th) as f64 {
            return None;
        }
        let split = self.split.max(0) as usize;
        let (rank_all, suit_all) = (vec![true; tw * split], vec![true; tw * (th - split)]);
        let mut scored: Vec<(f32, usize)> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| (masked(&t.full, (at.0, at.1), &whole), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut rank_best = [-1.0f64; 13];
        let mut suit_of = [[-1.0f64; 4]; 13];
        for (n, (score, i)) in scored.into_iter().enumerate() {
            let Some(t) = self.templates.get(i) else {
                continue;
            };
            let mut place = (at.0, at.1);
            if n < REFINED {
                let best = uphill((at.0, at.1, score), 1, (sx, sy), |x, y| {
                    masked(&t.full, (x, y), &whole)
                });
                place = (best.0, best.1);
            }
            let r = f64::from(masked(&t.rank_part, place, &rank_all));
            let s = f64::from(masked(&t.suit_part, (place.0, place.1 + split), &suit_all));
            rank_best[t.rank] = rank_best[t.rank].max(r);
            suit_of[t.rank][t.suit] = s;
        }
        let (ri, rs, rm) = best_and_margin(&rank_best);
        let (si, ss, sm) = best_and_margin(&suit_of[ri]);
        let card = format!(
            "{}{}",
            crate::calibration::RANKS[ri],
            crate::calibration::SUITS[si]
        );
        Some((card, rs.min(ss), rm.min(sm)))
    }

    /// Where the deck's mean index fits best in a window sampled at half the matching scale,
    /// and how well: the first look at a window, about a fifth of the cost of reading it.
    fn glance(&self, window: &Window) -> (usize, usize, f32) {
        let p = &self.glance;
        // The room is the whole mean index's, halved as `Gray::halved` halves it: the finder
        // may be shorter.
        let (pw, ph) = (self.mean.w / 2, self.mean.h / 2);
        let mut best = (0, 0, f32::MIN);
        if window.w < pw || window.h < ph {
            return best;
        }
        let (sx, sy) = (window.w - pw, window.h - ph);
        // Every other place, then uphill: the mean index's peak is broad.
        for y in (0..=sy).step_by(2) {
            for x in (0..=sx).step_by(2) {
                let v = p.ncc(window, x, y);
                if v > best.2 {
                    best = (x, y, v);
                }
            }
        }
        p.climb(window, best, 2, (sx, sy))
    }

    /// Of two cards whose indices look alike in a window (the question's named card and its
    /// rival, each as its set of templates read it), the one whose face the proposal shows
    /// (`image_from_card`: card mm → frame), when it fits clearly better than the other's,
    /// either way round; where the question says which way round each lies, also the named
    /// card when its face fits clearly better that way. `None` when the deck has no faces or
    /// they do not tell. `seen` holds the face once warped.
    ///
    /// With `visible` (one flag per pixel of the warped face, see [`Deck::face_size`]), only
    /// the pixels flagged are compared, and a face less than [`FACE_VISIBLE_MIN`] visible
    /// tells nothing.
    fn told_by_face(
        &self,
        frame: &Mat,
        image_from_card: &Homography,
        question: &FaceQuestion,
        visible: Option<&[bool]>,
        seen: &mut Option<Window>,
    ) -> Result<Option<(String, f64, f64)>, VisionError> {
        let (a, b) = (&question.named, &question.rival);
        let find = |card: &str| self.faces.iter().find(|f| f.card == card);
        let (Some(face_a), Some(face_b)) = (find(&a.0), find(&b.0)) else {
            return Ok(None);
        };
        let m = FACE_SEARCH_PX;
        if let Some(v) = visible {
            let (w, h) = (face_a.upright.w, face_a.upright.h);
            let inside = v.iter().filter(|f| **f).count();
            if (inside as f64) < FACE_VISIBLE_MIN * (w * h) as f64 {
                return Ok(None);
            }
        }
        if seen.is_none() {
            let Some(size) = self.face_size() else {
                return Ok(None);
            };
            let warped = warp(frame, &image_from_card.then_after(&face_px_to_card()), size)?;
            let mut soft = Mat::default();
            imgproc::gaussian_blur_def(&warped, &mut soft, Size::new(5, 5), FACE_SOFTEN)?;
            *seen = Some(Window::new(Gray::from_mat(&soft)?));
        }
        let Some(window) = seen.as_ref() else {
            return Ok(None);
        };
        // The best fit within `m` px of where the outline puts the face, either way round.
        // Over the visible part, only where the two faces differ: what both show alike (the
        // paper, pips in the same places) says nothing of which it is.
        let differs = |p: &Pattern, q: &Pattern| -> Vec<bool> {
            let spread = 1.0 / (p.px.len().max(1) as f32).sqrt();
            p.px.iter()
                .zip(&q.px)
                .map(|(a, b)| (a - b).abs() > FACE_DIFFERS * spread)
                .collect()
        };
        let (up_differs, turned_differs) = match visible {
            Some(_) => (
                differs(&face_a.upright, &face_b.upright),
                differs(&face_a.turned, &face_b.turned),
            ),
            None => (Vec::new(), Vec::new()),
        };
        // Each face's best fit upright and turned.
        let fit = |f: &FacePattern| {
            let mut best = [f32::MIN; 2];
            for y in 0..=2 * m {
                for x in 0..=2 * m {
                    let (upright, turned) = match visible {
                        None => (f.upright.ncc(window, x, y), f.turned.ncc(window, x, y)),
                        Some(v) => (
                            f.upright.masked_ncc(window, (x, y), v, &up_differs),
                            f.turned.masked_ncc(window, (x, y), v, &turned_differs),
                        ),
                    };
                    best = [best[0].max(upright), best[1].max(turned)];
                }
            }
            best.map(f64::from)
        };
        let (fits_a, fits_b) = (fit(face_a), fit(face_b));
        let either = |f: [f64; 2]| f[0].max(f[1]);
        let (fit_a, fit_b) = (either(fits_a), either(fits_b));
        if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
            let how = if visible.is_some() {
                " (visible part)"
            } else {
                ""
            };
            let ways = match question.facing {
                Some(f) => format!(" (turned {f:?}; upright, turned {fits_a:.3?} {fits_b:.3?})"),
                None => String::new(),
            };
            eprintln!(
                "face{how}: {} {fit_a:.3} against {} {fit_b:.3}{ways}",
                a.0, b.0
            );
        }
        // Either way round, the face tells either card.
        let (winner, won, lost) = if fit_a >= fit_b {
            (a, fit_a, fit_b)
        } else {
            (b, fit_b, fit_a)
        };
        if won >= FACE_MIN && won - lost >= FACE_MARGIN {
            return Ok(Some(winner.clone()));
        }
        // Where the windows' sets say which way round each card lies, the named card is also
        // told where its face, the way its set puts it, fits clearly better than the rival's
        // the way the rival's set puts it, and better than the rival's the other way round
        // too (or which way the card lies is in doubt). Jolly-royal's Q♣ and Q♠ differ in
        // their small pips alone, but a Q♠ whose bottom-right index this window would be lies
        // turned, its big Q upside down. The rival is never told this way: over part of a
        // face, glare and the paper's shading tell one way round from the other less surely
        // than the pips tell two cards apart (ancient-egyptians' 8♥, upright, fitted 8♦
        // turned at 0.75 and itself upright at 0.51 on seed 20).
        let Some([named_turned, rival_turned]) = question.facing else {
            return Ok(None);
        };
        let named_fit = fits_a[usize::from(named_turned)];
        let rival_fit = fits_b[usize::from(rival_turned)];
        let rival_other_way = fits_b[usize::from(!rival_turned)];
        Ok((named_fit >= FACE_MIN
            && named_fit - rival_fit >= FACE_MARGIN
            && named_fit > rival_other_way)
            .then(|| a.clone()))
    }

    /// The cards whose indices look like `card`'s in either set of templates.
    fn looking_like(&self, card: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for set in std::iter::once(self).chain(self.bottom_right.as_deref()) {
            let found = set.template_of(card).map(|(i, _)| i);
            for other in found
                .and_then(|i| set.look_alikes.get(i))
                .into_iter()
                .flatten()
            {
                if !out.contains(other) {
                    out.push(other.clone());
                }
            }
        }
        out
    }

    /// Whether the face (its pixels flagged in `visible`) tells `card` from each of `others`,
    /// one by one as [`Deck::told_by_face`] tells two apart.
    fn face_tells_from(
        &self,
        frame: &Mat,
        image_from_card: &Homography,
        card: &str,
        others: &[String],
        visible: &[bool],
        seen: &mut Option<Window>,
    ) -> Result<bool, VisionError> {
        let named = (card.to_owned(), 1.0, 1.0);
        for other in others {
            let question = FaceQuestion::new(0, named.clone(), (other.clone(), 1.0, 1.0), false);
            let told = self.told_by_face(frame, image_from_card, &question, Some(visible), seen)?;
            if told.is_none_or(|t| t.0 != card) {
                return Ok(false);
            }
        }
        Ok(!others.is_empty())
    }

    /// The size of a warped face (the card at [`FACE_PX_PER_MM`], [`FACE_SEARCH_PX`] around
    /// it); `None` when the deck has no faces.
    fn face_size(&self) -> Option<Size> {
        let f = self.faces.first()?;
        let m = FACE_SEARCH_PX;
        Some(Size::new(
            (f.upright.w + 2 * m) as i32,
            (f.upright.h + 2 * m) as i32,
        ))
    }

    /// Number of whole-index templates (52 for a full deck).
    pub fn len(&self) -> usize {
        self.whole.len()
    }

    pub fn is_empty(&self) -> bool {
        self.whole.is_empty()
    }
}

/// How much of the index area's width the index itself takes, learnt from the deck: on some
/// decks (standard, gm-paris) the court pictures reach into the index area, and compared there
/// they would outweigh the rank and suit (a queen of clubs told from a queen of diamonds by the
/// robe). The index ends where the court cards turn clearly darker than the pip cards, at least
/// 8 mm from the card's edge; the whole area when they never do.
fn index_width(whole: &[(String, Mat)], full_w: usize) -> Result<usize, VisionError> {
    // Each column's ink, down the whole index area.
    let columns = |g: &Gray| {
        (g.w == full_w).then(|| {
            let mut ink = vec![0.0f64; g.w];
            for row in g.px.chunks_exact(g.w) {
                for (c, v) in row.iter().enumerate() {
                    ink[c] += (1.0 - f64::from(*v)) / g.h as f64;
                }
            }
            ink
        })
    };
    let Some((court, pip)) = court_and_pip_ink(whole, columns)? else {
        return Ok(full_w);
    };
    let min_w = (8.0 * MATCH_PX_PER_MM).round() as usize;
    let picture_starts =
        (min_w..full_w.min(court.len())).find(|c| court[*c] - pip[*c] > COURT_PICTURE_INK);
    Ok(picture_starts.map_or(full_w, |c| c.saturating_sub(1).max(min_w)))
}

/// Mean ink profiles: the court cards', then the pip cards'.
type CourtAndPip = (Vec<f64>, Vec<f64>);

/// The mean ink profile (`profile` of each template's picture, 0 paper … 1 ink; `None` skips
/// the template) of the court cards and of the pip cards; `None` where either has none.
fn court_and_pip_ink(
    whole: &[(String, Mat)],
    profile: impl Fn(&Gray) -> Option<Vec<f64>>,
) -> Result<Option<CourtAndPip>, VisionError> {
    let (mut court, mut pip) = (Vec::<f64>::new(), Vec::<f64>::new());
    let (mut n_court, mut n_pip) = (0.0f64, 0.0f64);
    for (card, m) in whole {
        let Some(ink) = profile(&Gray::from_mat(m)?) else {
            continue;
        };
        let (sum, n) = if card.starts_with(['J', 'Q', 'K']) {
            (&mut court, &mut n_court)
        } else {
            (&mut pip, &mut n_pip)
        };
        sum.resize(ink.len().max(sum.len()), 0.0);
        for (acc, v) in sum.iter_mut().zip(&ink) {
            *acc += v;
        }
        *n += 1.0;
    }
    if n_court == 0.0 || n_pip == 0.0 {
        return Ok(None);
    }
    let mean = |sum: Vec<f64>, n: f64| sum.into_iter().map(|v| v / n).collect::<Vec<_>>();
    Ok(Some((mean(court, n_court), mean(pip, n_pip))))
}

/// The first template row below the suit (`split` on) from which the deck's court cards print
/// their picture all down the index's column (its `w` columns), where its pip cards show plain
/// paper; `None` where they print none there.
fn court_picture_row(
    whole: &[(String, Mat)],
    w: usize,
    split: usize,
) -> Result<Option<usize>, VisionError> {
    // Each row's ink across the index's columns.
    let rows = |g: &Gray| {
        (g.w >= w).then(|| {
            g.px.chunks_exact(g.w)
                .map(|row| row[..w].iter().map(|v| 1.0 - f64::from(*v)).sum::<f64>() / w as f64)
                .collect()
        })
    };
    let Some((court, pip)) = court_and_pip_ink(whole, rows)? else {
        return Ok(None);
    };
    // The picture fills the column from its first row down, a quarter of the template or
    // more; a court's frame line beside its index (tigullio-international) shows in a few
    // scattered rows.
    let rows = court.len().min(pip.len());
    let plain = (split..rows)
        .rev()
        .find(|r| court[*r] - pip[*r] <= COURT_PICTURE_INK);
    let first = plain.map_or(split, |r| r + 1);
    Ok((rows - first >= rows / 4).then_some(first))
}

/// The row where the rank part of the index ends and the suit part begins, learnt from the
/// deck itself: rows whose pixels change with the rank (same suit) belong to the rank, rows
/// that change with the suit (same rank) to the suit.
#[allow(clippy::needless_range_loop)] // a rank × suit grid, indexed both ways
fn rank_suit_split(whole: &[(String, Mat)]) -> Result<i32, VisionError> {
    use crate::calibration::{RANKS, SUITS};
    let Some((_, first)) = whole.first() else {
        return Err(VisionError::Deck("no templates".into()));
    };
    let (w, h) = (first.cols() as usize, first.rows() as usize);
    let mut grid: Vec<Vec<Option<&[u8]>>> = vec![vec![None; 4]; 13];
    for (card, m) in whole {
        let mut c = card.chars();
        if let (Some(r), Some(s)) = (c.next(), c.next()) {
            if let (Some(ri), Some(si)) = (
                RANKS.iter().position(|x| *x == r),
                SUITS.iter().position(|x| *x == s),
            ) {
                if m.cols() as usize == w && m.rows() as usize == h {
                    grid[ri][si] = Some(m.data_bytes()?);
                }
            }
        }
    }
    let variance = |vals: &[f64]| -> f64 {
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
    };
    let mut rank_row = vec![0.0; h];
    let mut suit_row = vec![0.0; h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            for si in 0..4 {
                let vals: Vec<f64> = (0..13)
                    .filter_map(|ri| grid[ri][si].map(|b| f64::from(b[i])))
                    .collect();
                rank_row[y] += variance(&vals);
            }
            for row in &grid {
                let vals: Vec<f64> = row
                    .iter()
                    .filter_map(|b| b.map(|b| f64::from(b[i])))
                    .collect();
                suit_row[y] += variance(&vals);
            }
        }
    }
    // The split maximising rank-ness above and suit-ness below.
    let mut best = (h / 2, f64::MIN);
    for split in (h / 5)..(h * 4 / 5) {
        let above: f64 = (0..split).map(|y| rank_row[y] - suit_row[y]).sum();
        let below: f64 = (split..h).map(|y| suit_row[y] - rank_row[y]).sum();
        if above + below > best.1 {
            best = (split, above + below);
        }
    }
    Ok(best.0 as i32)
}

impl Deck {
    /// How clearly the window's suit part at `at` is suit `s1` rather than `s2` (same rank): its
    /// correlation with the normalised difference of the two suit parts, scaled so that a
    /// perfect `s1` gives 1, a perfect `s2` −1, and a picture halfway 0.
    fn suit_versus(
        &self,
        window: &Window,
        rank: usize,
        s1: usize,
        s2: usize,
        at: (usize, usize),
    ) -> f64 {
        match self.suit_pairs.get(rank * 16 + s1 * 4 + s2) {
            Some(Some((diff, perfect))) => f64::from(diff.ncc(window, at.0, at.1) / perfect),
            _ => 0.0,
        }
    }

    /// Where the rank part ends, in template rows (for the report).
    pub fn split_row(&self) -> i32 {
        self.split
    }
}

fn crop_index(card_img: &Mat, index: &IndexArea) -> Result<Mat, VisionError> {
    let size = index_size(index);
    let x = (index.x * INDEX_PX_PER_MM).round() as i32;
    let y = (index.y * INDEX_PX_PER_MM).round() as i32;
    let rect = core::Rect::new(
        x.clamp(0, (card_img.cols() - size.width).max(0)),
        y.clamp(0, (card_img.rows() - size.height).max(0)),
        size.width.min(card_img.cols()),
        size.height.min(card_img.rows()),
    );
    Ok(Mat::roi(card_img, rect)?.try_clone()?)
}

fn translate(dx: f64, dy: f64) -> Homography {
    Homography([1.0, 0.0, dx, 0.0, 1.0, dy, 0.0, 0.0, 1.0])
}

fn scale(k: f64) -> Homography {
    Homography([k, 0.0, 0.0, 0.0, k, 0.0, 0.0, 0.0, 1.0])
}

fn to_mat(h: &Homography) -> Result<Mat, VisionError> {
    Ok(Mat::from_slice_2d(&[
        [h.0[0], h.0[1], h.0[2]],
        [h.0[3], h.0[4], h.0[5]],
        [h.0[6], h.0[7], h.0[8]],
    ])?)
}

/// Warps the part of `src` that `dst_to_src` maps the output rectangle onto.
fn warp(src: &Mat, dst_to_src: &Homography, size: Size) -> Result<Mat, VisionError> {
    let mut out = Mat::default();
    imgproc::warp_perspective(
        src,
        &mut out,
        &to_mat(dst_to_src)?,
        size,
        imgproc::INTER_LINEAR | imgproc::WARP_INVERSE_MAP,
        core::BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Ok(out)
}

/// The maps from the searched plane (1 px/mm, its corner at `origin` on the table) to the
/// half-size frame, for `remap`.
fn plane_maps(
    image_from_table: &Homography,
    (origin, size): (Pt, Size),
) -> Result<(Mat, Mat), VisionError> {
    // Small pixel x sees full pixels 2x and 2x + 1 (2 × 2 averages).
    let plane_to_small = translate(-0.25, -0.25)
        .then_after(&scale(0.5))
        .then_after(image_from_table)
        .then_after(&translate(origin.x, origin.y));
    let (w, h) = (size.width.max(1) as usize, size.height.max(1) as usize);
    let (mut xs, mut ys) = (Vec::with_capacity(w * h), Vec::with_capacity(w * h));
    for v in 0..h {
        for u in 0..w {
            let p = plane_to_small.apply(Pt::new(u as f64, v as f64));
            xs.push(p.x as f32);
            ys.push(p.y as f32);
        }
    }
    let xs = Mat::from_slice(&xs)?.reshape(1, h as i32)?.try_clone()?;
    let ys = Mat::from_slice(&ys)?.reshape(1, h as i32)?.try_clone()?;
    let (mut fixed, mut fraction) = (Mat::default(), Mat::default());
    imgproc::convert_maps(&xs, &ys, &mut fixed, &mut fraction, core::CV_16SC2, false)?;
    Ok((fixed, fraction))
}

/// A card-sized rectangle proposed by a corner of a blob (table plane, mm).
#[derive(Debug, Clone, Copy)]
struct Proposal {
    quad: [Pt; 4],
    coverage: f64,
}

/// What one proposal's indices said, before deciding.
struct Attempt {
    /// Top-left index, then bottom-right: (card, score, margin), or `None` where nothing like
    /// an index was there.
    witnesses: Vec<Option<(String, f64, f64)>>,
    /// Each index's area on the table plane (mm), in the same order.
    index_mm: [[Pt; 4]; 2],
    /// The card's outline on the table plane (mm), portrait order.
    quad_mm: [Pt; 4],
    /// Witnesses its face could not tell, to be asked again once the cards read over it are
    /// known.
    face_questions: Vec<FaceQuestion>,
}

/// A window whose two candidate cards the whole face did not tell apart (most of it under
/// other cards): the witness it left contested, by its place in [`Attempt::witnesses`].
#[derive(Debug, Clone)]
struct FaceQuestion {
    witness: usize,
    /// The card the window named, as its set of templates read it.
    named: (String, f64, f64),
    /// The other card it may be.
    rival: (String, f64, f64),
    /// The rival is the named card's turned twin: its face means this window is the twin's
    /// other corner and no witness; the named card's face, the named card.
    twin: bool,
    /// Which way round each card's face must lie, named then rival (`true`: turned by 180°
    /// from the warped face), where the window's set of templates says it; `None`: either.
    facing: Option<[bool; 2]>,
}

impl FaceQuestion {
    fn new(
        witness: usize,
        named: (String, f64, f64),
        rival: (String, f64, f64),
        twin: bool,
    ) -> FaceQuestion {
        FaceQuestion {
            witness,
            named,
            rival,
            twin,
            facing: None,
        }
    }

    /// The question with each card's face lying the way its set of templates puts it.
    fn facing(self, named_turned: bool, rival_turned: bool) -> FaceQuestion {
        FaceQuestion {
            facing: Some([named_turned, rival_turned]),
            ..self
        }
    }
}

/// One frame's reading so far. Quads are on the searched plane, as proposed.
#[derive(Default)]
struct FrameWork {
    out: FrameReads,
    reads: Vec<(CardRead, [Pt; 4])>,
    refused: Vec<([Pt; 4], Option<Attempt>)>,
    /// Index areas of cards read without them (another card's corner, or nothing readable,
    /// there), with the card's quad.
    weak_indices: Vec<([Pt; 4], [Pt; 4])>,
}

/// Two reads whose centres lie closer than this (mm) are of the same place, not one card
/// over another.
const SAME_PLACE_MM: f64 = 10.0;

/// The card reader for one table.
#[derive(Debug)]
pub struct CardReader {
    deck: Deck,
    table: crate::calibration::TableGeometry,
    image_from_table: Homography,
    thresholds: Thresholds,
    /// The part of the table plane searched for cards (mm): the zones' bounding box with a
    /// margin, or the whole plane when no zone is calibrated.
    search_mm: (Pt, Size),
    /// Where each pixel of the searched plane lies in the half-size frame (OpenCV's
    /// fixed-point maps for `remap`): the warp is the same every frame, so it is worked out
    /// once (a perspective warp computes it again per pixel, at twice the cost).
    plane_maps: (Mat, Mat),
}

/// Margin (mm) around the zones searched for cards: a card lying over a zone's edge is still
/// found (its zone is where its centre lies).
const ZONE_MARGIN_MM: f64 = 30.0;

impl CardReader {
    pub fn new(cal: &Calibration) -> Result<CardReader, VisionError> {
        let deck = cal.deck.as_ref().ok_or_else(|| {
            VisionError::Calibration(
                "no deck in the calibration; run `croupier calibrate deck`".into(),
            )
        })?;
        let table = cal.table.clone().ok_or_else(|| {
            VisionError::Calibration(
                "no table in the calibration; run `croupier calibrate table` with the table's four corners".into(),
            )
        })?;
        let (tw, th) = (table.table_mm.width, table.table_mm.height);
        let pts: Vec<[f64; 2]> = table
            .zones
            .iter()
            .flat_map(|z| z.polygon_mm.iter().copied())
            .filter(|[x, y]| x.is_finite() && y.is_finite())
            .collect();
        let (x0, y0, x1, y1) = if pts.is_empty() {
            (0.0, 0.0, tw, th)
        } else {
            let m = ZONE_MARGIN_MM;
            (
                pts.iter().map(|p| p[0]).fold(f64::MAX, f64::min) - m,
                pts.iter().map(|p| p[1]).fold(f64::MAX, f64::min) - m,
                pts.iter().map(|p| p[0]).fold(f64::MIN, f64::max) + m,
                pts.iter().map(|p| p[1]).fold(f64::MIN, f64::max) + m,
            )
        };
        let (w, h) = ((x1 - x0).round(), (y1 - y0).round());
        // A plane bigger than 4 m² at 1 px/mm is a calibration mistake, not a table.
        if !(w >= 10.0 && h >= 10.0 && w * h <= 4.0e6) {
            return Err(VisionError::Calibration(format!(
                "the zones span {w} × {h} mm; check the zones and the table size"
            )));
        }
        let image_from_table = table.image_from_table()?;
        let search_mm = (Pt::new(x0, y0), Size::new(w as i32, h as i32));
        Ok(CardReader {
            deck: Deck::load(deck)?,
            plane_maps: plane_maps(&image_from_table, search_mm)?,
            image_from_table,
            table,
            thresholds: cal.thresholds,
            search_mm,
        })
    }

    /// Reads every card of one BGR frame.
    pub fn read(&self, frame: &Mat) -> Result<FrameReads, VisionError> {
        // Finding cards needs no fine detail: the frame at half size, warped onto the searched
        // part of the table plane at 1 px/mm. Reading them does: the indices are cut from the
        // full frame afterwards.
        let mut small = Mat::default();
        // 2 × 2 averages: the cheapest halving; small pixel x sees full pixels 2x and 2x + 1.
        imgproc::resize(
            frame,
            &mut small,
            Size::new(frame.cols() / 2, frame.rows() / 2),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        let origin = self.search_mm.0;
        let mut plane = Mat::default();
        imgproc::remap(
            &small,
            &mut plane,
            &self.plane_maps.0,
            &self.plane_maps.1,
            imgproc::INTER_LINEAR,
            core::BORDER_REPLICATE,
            Scalar::default(),
        )?;
        let mask = self.card_stock(&plane)?;
        let (proposals, solid) = self.propose(&mask)?;
        if let Ok(dir) = std::env::var("CROUPIER_VISION_DEBUG") {
            // For a technician tuning thresholds: the table plane and what counted as card stock.
            let _ = opencv::imgcodecs::imwrite_def(&format!("{dir}/plane.png"), &plane);
            let _ = opencv::imgcodecs::imwrite_def(&format!("{dir}/stock.png"), &mask);
            eprintln!("plane origin {:.0},{:.0} mm", origin.x, origin.y);
        }
        let mut work = FrameWork::default();
        for p in &proposals {
            self.try_proposal(frame, origin, p.quad, BLOB_TURNS, &mut work)?;
        }
        // A card read from one index whose other index lies under nothing read: another card
        // lies over it there (the middle card of a fanned hand of three, say, whose visible
        // strip lies on the card under it and so looks explained). That card's edges cross
        // the face of the card read.
        let lifted: Vec<[Pt; 4]> = work
            .weak_indices
            .iter()
            .filter(|(area, quad)| {
                let c = centroid(area);
                !work.reads.iter().any(|(_, other)| {
                    centroid(other).sub(centroid(quad)).len() > SAME_PLACE_MM
                        && point_in_polygon(c, other)
                })
            })
            .map(|(_, quad)| *quad)
            .collect();
        // Card stock that no read card explains: a card whose blob outline wandered (glare
        // widening it, a court picture or a zone line breaking it). Only then, or with a card
        // over a card read, are straight edges looked for: most frames need no more than the
        // blobs' corners.
        let rest = match self.unexplained_stock(&solid, &work.reads)? {
            Some(rest) => Some(rest),
            None if !lifted.is_empty() => {
                Some(Mat::zeros(solid.rows(), solid.cols(), solid.typ())?.to_mat()?)
            }
            None => None,
        };
        if let Some(rest) = rest {
            let read_quads: Vec<[Pt; 4]> = work.reads.iter().map(|(_, q)| *q).collect();
            let by_edges =
                Self::edge_proposals(self.deck.card, &plane, &rest, &solid, &read_quads, &lifted)?;
            // The proposals over what is to be explained first: the card stock no card read
            // explains, and the faces of cards read with another card over them.
            let mut wanted = rest.try_clone()?;
            for quad in &lifted {
                imgproc::fill_convex_poly_def(&mut wanted, &to_pixels(quad), Scalar::all(255.0))?;
            }
            // Among proposals alike in that (a frame of three cards has dozens, and only so
            // many are read), those whose outline shows as an edge: a court card's picture
            // frame proposes rectangles whose far sides cross nothing.
            let mut by_edges: Vec<(f64, Proposal)> = by_edges
                .into_iter()
                .map(|(p, outline)| (coverage(&wanted, &p.quad) + p.coverage + outline, p))
                .collect();
            by_edges.sort_by(|a, b| b.0.total_cmp(&a.0));
            let by_edges = by_edges.into_iter().map(|(_, p)| p);
            // An edge's proposal lies within a millimetre or so of the card; the blob's can lie
            // several off: near one of the blob's, an edge's proposal is still read unless it is
            // all but the same rectangle, or lies where a card was read.
            let mut tried: Vec<[Pt; 4]> = proposals.iter().map(|p| p.quad).collect();
            let mut budget = EDGE_READS_MAX;
            let debug = std::env::var_os("CROUPIER_VISION_DEBUG").is_some();
            for p in by_edges {
                if budget == 0 {
                    break;
                }
                let again = tried.iter().any(|t| {
                    same_rectangle(t, &p.quad, SAME_PROPOSAL_MM)
                        || same_rectangle(t, &reversed(&p.quad), SAME_READ_MM)
                }) || work.reads.iter().any(|(_, rq)| overlap(rq, &p.quad) > 0.75);
                if debug {
                    let c = centroid(&p.quad).add(origin);
                    eprintln!(
                        "edge proposal {:.0},{:.0} cov {:.2} again {again}",
                        c.x, c.y, p.coverage
                    );
                }
                if !again {
                    tried.push(p.quad);
                    budget -= 1;
                    self.try_proposal(frame, origin, p.quad, EDGE_TURNS, &mut work)?;
                }
            }
        }
        let FrameWork {
            mut out,
            mut reads,
            refused,
            ..
        } = work;
        let refused = self.decide_again_uncovered(frame, refused, &mut reads, origin)?;
        // Several proposals can read the same card (a corner of each side of it); the most
        // confident read of a place stands, and a weaker one lying over it is dropped, whatever
        // it says: one rectangle is one card.
        reads.sort_by(|a, b| b.0.confidence.total_cmp(&a.0.confidence));
        let mut kept: Vec<(CardRead, [Pt; 4])> = Vec::new();
        for (read, quad) in reads {
            let clash = kept.iter().any(|(k, kq)| {
                let o = overlap(kq, &quad);
                (k.card == read.card && o > 0.1) || o > 0.75
            });
            if !clash {
                kept.push((read, quad));
            }
        }
        // Card-shaped things not read: one per place, and none where a card was read.
        let mut counted: Vec<[Pt; 4]> = Vec::new();
        for quad in refused {
            let read_here = kept.iter().any(|(_, kq)| overlap(kq, &quad) > 0.1);
            if !read_here && counted.iter().all(|c| overlap(c, &quad) < 0.5) {
                counted.push(quad);
            }
        }
        out.rejected = counted.len();
        out.cards = kept.into_iter().map(|(r, _)| r).collect();
        Ok(out)
    }

    /// Reads one proposed card (a quad on the searched plane, whose corner is at `origin`)
    /// and files it: read, or refused with what its indices said.
    fn try_proposal(
        &self,
        frame: &Mat,
        origin: Pt,
        quad: [Pt; 4],
        turns: Turns,
        work: &mut FrameWork,
    ) -> Result<(), VisionError> {
        let c = centroid(&quad).add(origin);
        work.out.found_mm.push([c.x, c.y]);
        let attempt = self.read_card(frame, &quad.map(|q| q.add(origin)), turns)?;
        match attempt
            .as_ref()
            .and_then(|a| Some((a, decide(&a.witnesses, &self.thresholds)?)))
        {
            Some((a, best)) => {
                for (witness, area) in a.witnesses.iter().zip(&a.index_mm) {
                    // Not this card's index: unreadable, or naming another card (what shows
                    // there is the corner of the card lying over it).
                    let weak = witness
                        .as_ref()
                        .is_none_or(|w| w.1 < self.thresholds.card_min_score || w.0 != best.0);
                    if weak {
                        work.weak_indices.push((area.map(|p| p.sub(origin)), quad));
                    }
                }
                work.reads.push((self.card_read(a, best), quad));
            }
            None => work.refused.push((quad, attempt)),
        }
        Ok(())
    }

    /// The card stock left once the cards read are blanked out (slivers along their edges
    /// opened away), when it comes to [`UNEXPLAINED_SHARE`] of a card's area or more.
    fn unexplained_stock(
        &self,
        solid: &Mat,
        reads: &[(CardRead, [Pt; 4])],
    ) -> Result<Option<Mat>, VisionError> {
        let mut unexplained = solid.try_clone()?;
        for (_, quad) in reads {
            imgproc::fill_convex_poly_def(&mut unexplained, &to_pixels(quad), Scalar::all(0.0))?;
        }
        let mut rest = Mat::default();
        imgproc::morphology_ex_def(
            &unexplained,
            &mut rest,
            imgproc::MORPH_OPEN,
            &imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(7, 7))?,
        )?;
        let card_area = self.deck.card.width * self.deck.card.height;
        let left = f64::from(core::count_non_zero(&rest)?);
        Ok((left >= UNEXPLAINED_SHARE * card_area).then_some(rest))
    }

    /// An index half under another card says little: what shows of it is partly the other
    /// card (its edge, a pip, its own index), and on the synthetic sets such an index often
    /// named a neighbour of the card well enough to veto its clear other index. Where a card
    /// was read over one of a refused card's indices, that index is set aside and the card
    /// decided again on the rest (which must then stand alone, as any single index must).
    /// Returns what stays refused; quads are on the searched plane (`origin` its corner).
    fn decide_again_uncovered(
        &self,
        frame: &Mat,
        refused: Vec<([Pt; 4], Option<Attempt>)>,
        reads: &mut Vec<(CardRead, [Pt; 4])>,
        origin: Pt,
    ) -> Result<Vec<[Pt; 4]>, VisionError> {
        let on_top: Vec<[Pt; 4]> = reads
            .iter()
            .map(|(_, q)| q.map(|p| p.add(origin)))
            .collect();
        let mut still_refused = Vec::new();
        for (quad, attempt) in refused {
            let Some(mut attempt) = attempt else {
                still_refused.push(quad);
                continue;
            };
            let centre = centroid(&attempt.quad_mm);
            let mut set_aside = self.ask_face_again(frame, &mut attempt, &on_top)?;
            set_aside |= self.face_vouches_alone(frame, &mut attempt, &on_top)?;
            let over: Vec<[Pt; 4]> = on_top
                .iter()
                .filter(|other| centroid(&other[..]).sub(centre).len() > SAME_PLACE_MM)
                .copied()
                .collect();
            let mut covered = Vec::new();
            for (which, (witness, area)) in attempt
                .witnesses
                .iter_mut()
                .zip(&attempt.index_mm)
                .enumerate()
            {
                let under = over.iter().any(|other| {
                    area.iter()
                        .copied()
                        .chain([centroid(area)])
                        .any(|p| point_in_polygon(p, other))
                });
                if under && witness.is_some() {
                    *witness = None;
                    set_aside = true;
                    covered.push(which);
                }
            }
            // What shows of it is read again, where the card's other index could make a pair
            // with it: a K♣'s lower index, its club's rows clear of the card over it but the
            // court picture below them under it, named K♠ at 0.56 read whole (seed 19).
            for which in covered {
                let pairable = attempt
                    .witnesses
                    .get(1 - which)
                    .and_then(|w| w.as_ref())
                    .is_some_and(|w| w.1 >= self.thresholds.card_min_score);
                if pairable {
                    let read = self.read_index_uncovered(frame, &attempt.quad_mm, which, &over)?;
                    if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                        eprintln!(
                            "index {which} read again uncovered at {:.0},{:.0}: {read:?}",
                            centre.x, centre.y
                        );
                    }
                    if let Some(w) = attempt.witnesses.get_mut(which) {
                        *w = read;
                    }
                }
            }
            match set_aside
                .then(|| decide(&attempt.witnesses, &self.thresholds))
                .flatten()
            {
                Some(best) => reads.push((self.card_read(&attempt, best), quad)),
                None => still_refused.push(quad),
            }
        }
        Ok(still_refused)
    }

    /// Asks an attempt's face questions again over the part of its face that no card read
    /// (`on_top`, table mm) covers: a face mostly under other cards fits both candidates
    /// badly as a whole, and the cards over it can fit the wrong one (a 3♥'s pips where a
    /// 6♠'s lie). Whether any witness changed.
    /// The cards read (in `on_top`) lying over the card at `quad_mm`, itself left out.
    fn read_over(&self, quad_mm: &[Pt; 4], on_top: &[[Pt; 4]]) -> Vec<[Pt; 4]> {
        let centre = centroid(quad_mm);
        on_top
            .iter()
            .filter(|o| {
                centroid(&o[..]).sub(centre).len() > SAME_PLACE_MM && overlap(o, quad_mm) > 0.0
            })
            .copied()
            .collect()
    }

    /// Which pixels of the card's warped face ([`Deck::face_size`]) no card in `over` covers,
    /// and the card's mm → frame; `None` where the deck has no faces.
    fn face_visible(&self, quad_mm: &[Pt; 4], over: &[[Pt; 4]]) -> Option<(Vec<bool>, Homography)> {
        let size = self.deck.face_size()?;
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let table_from_card = self.table_from_card(quad_mm)?;
        let to_card = face_px_to_card();
        let (w, h) = (size.width.max(0) as usize, size.height.max(0) as usize);
        let visible: Vec<bool> = (0..w * h)
            .map(|i| {
                let c = to_card.apply(Pt::new((i % w) as f64, (i / w) as f64));
                let on_card = c.x >= 0.0 && c.y >= 0.0 && c.x <= cw && c.y <= ch;
                let t = table_from_card.apply(c);
                on_card && !over.iter().any(|o| point_in_polygon(t, o))
            })
            .collect();
        Some((visible, self.image_from_table.then_after(&table_from_card)))
    }

    /// A lone witness well fitted but with little margin in its own set (an ancient-egyptians
    /// 5♣ over the 3♣, whose index looks like it) stands with `card_min_margin` where the
    /// face, over what no card read covers, tells it from every card whose index looks like
    /// its own; whether it was raised.
    fn face_vouches_alone(
        &self,
        frame: &Mat,
        attempt: &mut Attempt,
        on_top: &[[Pt; 4]],
    ) -> Result<bool, VisionError> {
        let t = &self.thresholds;
        if self.deck.faces.is_empty() || attempt.witnesses.iter().flatten().count() != 1 {
            return Ok(false);
        }
        let wanted = attempt.witnesses.iter().flatten().next().is_some_and(|w| {
            w.1 >= t.card_min_score + ALONE_EXTRA_SCORE && w.2 < t.card_min_margin
        });
        if !wanted {
            return Ok(false);
        }
        let over = self.read_over(&attempt.quad_mm, on_top);
        let Some((visible, image_from_card)) = self.face_visible(&attempt.quad_mm, &over) else {
            return Ok(false);
        };
        let Some(witness) = attempt.witnesses.iter_mut().flatten().next() else {
            return Ok(false);
        };
        let alike = self.deck.looking_like(&witness.0);
        let told = self.deck.face_tells_from(
            frame,
            &image_from_card,
            &witness.0,
            &alike,
            &visible,
            &mut None,
        )?;
        if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
            eprintln!("face tells {} from {alike:?}: {told}", witness.0);
        }
        if told {
            witness.2 = t.card_min_margin;
        }
        Ok(told)
    }

    fn ask_face_again(
        &self,
        frame: &Mat,
        attempt: &mut Attempt,
        on_top: &[[Pt; 4]],
    ) -> Result<bool, VisionError> {
        if attempt.face_questions.is_empty() {
            return Ok(false);
        }
        let over = self.read_over(&attempt.quad_mm, on_top);
        // Nothing read over it: the whole face was compared already.
        if over.is_empty() {
            return Ok(false);
        }
        let Some((visible, image_from_card)) = self.face_visible(&attempt.quad_mm, &over) else {
            return Ok(false);
        };
        let mut seen = None;
        let mut changed = false;
        for q in std::mem::take(&mut attempt.face_questions) {
            let told =
                self.deck
                    .told_by_face(frame, &image_from_card, &q, Some(&visible), &mut seen)?;
            let Some(told) = told else {
                continue;
            };
            let Some(witness) = attempt.witnesses.get_mut(q.witness) else {
                continue;
            };
            *witness = match (q.twin, told.0 == q.named.0) {
                // The twin's face: this window is the twin's other corner, no witness.
                (true, false) => None,
                _ => Some(told),
            };
            changed = true;
        }
        if changed && std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
            let c = centroid(&attempt.quad_mm);
            eprintln!(
                "face asked again at {:.0},{:.0}: {:?}",
                c.x, c.y, attempt.witnesses
            );
        }
        Ok(changed)
    }

    /// Card stock on the table plane: bright over the felt and barely coloured.
    fn card_stock(&self, plane: &Mat) -> Result<Mat, VisionError> {
        let mut hsv = Mat::default();
        imgproc::cvt_color_def(plane, &mut hsv, imgproc::COLOR_BGR2HSV)?;
        let mut channels = Vector::<Mat>::new();
        core::split(&hsv, &mut channels)?;
        let v = channels.get(2)?;
        // The felt is most of the plane: its median brightness is the reference.
        let felt = median_u8(&v)?;
        let min_v = (felt + self.thresholds.card_min_brightness_over_felt).min(250.0);
        let mut bgr_median = [0.0f64; 3];
        let mut bgr = Vector::<Mat>::new();
        core::split(plane, &mut bgr)?;
        for (c, m) in bgr_median.iter_mut().enumerate() {
            *m = median_u8(&bgr.get(c)?)?;
        }
        let felt_hue = hue_of(bgr_median);
        let h = channels.get(0)?;
        // Where the light falls off across the table the felt is darker, and so is a card
        // lying there (a cream-coloured deck's paper in a dim corner was no brighter than the
        // table's median felt by the margin): there the margin counts from the felt around it.
        let min_v_here = card_min_brightness(
            &h,
            &channels.get(1)?,
            &v,
            felt_hue,
            self.thresholds.card_min_brightness_over_felt,
            min_v,
        )?;
        let mut bright = Mat::default();
        core::compare(&v, &min_v_here, &mut bright, core::CMP_GE)?;
        let mut pale = Mat::default();
        imgproc::threshold(
            &channels.get(1)?,
            &mut pale,
            self.thresholds.card_max_saturation,
            255.0,
            imgproc::THRESH_BINARY_INV,
        )?;
        let mut white = Mat::default();
        core::bitwise_and_def(&bright, &pale, &mut white)?;
        if let Some(paper) = colourless_paper(&channels.get(1)?, &v, &min_v_here)? {
            let mut both = Mat::default();
            core::bitwise_or_def(&white, &paper, &mut both)?;
            white = both;
        }
        // Court pictures reach almost to the edge on some decks (gm-paris): there, what is
        // clearly coloured in another hue than the felt's counts too (their dark parts are
        // holes, filled below). Glare only lightens the felt and keeps its hue: it does not pass.
        let mut diff = Mat::default();
        core::absdiff(&h, &Scalar::all(felt_hue), &mut diff)?;
        let mut wrapped = Mat::default();
        core::subtract_def(&Scalar::all(180.0), &diff, &mut wrapped)?;
        let mut hue_dist = Mat::default();
        core::min(&diff, &wrapped, &mut hue_dist)?;
        let mut other_hue = Mat::default();
        imgproc::threshold(
            &hue_dist,
            &mut other_hue,
            15.0,
            255.0,
            imgproc::THRESH_BINARY,
        )?;
        let mut coloured = Mat::default();
        imgproc::threshold(
            &channels.get(1)?,
            &mut coloured,
            60.0,
            255.0,
            imgproc::THRESH_BINARY,
        )?;
        let mut picture = Mat::default();
        core::bitwise_and_def(&other_hue, &coloured, &mut picture)?;
        let mut mask = Mat::default();
        core::bitwise_or_def(&white, &picture, &mut mask)?;
        let rect =
            |n: i32| imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(n, n));
        // Pips and court pictures leave holes; closing fills the small ones, and a hole no
        // bigger than a card inside a blob is filled too: a court card is mostly picture, held
        // together by its white border. (A zone's printed outline encloses several cards' area
        // and stays open.)
        let mut closed = Mat::default();
        imgproc::morphology_ex_def(&mask, &mut closed, imgproc::MORPH_CLOSE, &rect(5)?)?;
        let mut contours = Vector::<Vector<Point>>::new();
        let mut hierarchy = Vector::<core::Vec4i>::new();
        imgproc::find_contours_with_hierarchy_def(
            &closed,
            &mut contours,
            &mut hierarchy,
            imgproc::RETR_CCOMP,
            imgproc::CHAIN_APPROX_SIMPLE,
        )?;
        let card_area = self.deck.card.width * self.deck.card.height;
        // Felt: close to the felt's median colour.
        let mut felt_like = Mat::default();
        let lo = bgr_median.map(|m| (m - FELT_COLOUR_DISTANCE).max(0.0));
        let hi = bgr_median.map(|m| (m + FELT_COLOUR_DISTANCE).min(255.0));
        core::in_range(
            plane,
            &Scalar::new(lo[0], lo[1], lo[2], 0.0),
            &Scalar::new(hi[0], hi[1], hi[2], 0.0),
            &mut felt_like,
        )?;
        for (i, contour) in contours.iter().enumerate() {
            // In RETR_CCOMP's two levels, holes are the contours with a parent.
            let is_hole = hierarchy.get(i).is_ok_and(|h| h[3] >= 0);
            if !is_hole || imgproc::contour_area_def(&contour)? >= 1.1 * card_area {
                continue;
            }
            // A hole that is mostly felt is not a court picture: it is the felt left between a
            // hand and a zone's printed outline lit as bright as card stock (filling it would
            // make the whole zone one blob).
            // Judged within the hole's bounding box rather than over the whole plane: a
            // cluttered table has dozens of holes (lettering, chips' rings).
            let around = imgproc::bounding_rect(&contour)?;
            let mut hole = Mat::zeros(around.height, around.width, core::CV_8UC1)?.to_mat()?;
            let mut one = Vector::<Vector<Point>>::new();
            one.push(contour.clone());
            imgproc::draw_contours(
                &mut hole,
                &one,
                -1,
                Scalar::all(255.0),
                imgproc::FILLED,
                imgproc::LINE_8,
                &core::no_array(),
                i32::MAX,
                Point::new(-around.x, -around.y),
            )?;
            let mut felt_in_hole = Mat::default();
            core::bitwise_and_def(&Mat::roi(&felt_like, around)?, &hole, &mut felt_in_hole)?;
            let all = f64::from(core::count_non_zero(&hole)?.max(1));
            let felt = f64::from(core::count_non_zero(&felt_in_hole)?);
            if felt / all < FELT_HOLE_SHARE {
                let mut one = Vector::<Vector<Point>>::new();
                one.push(contour);
                imgproc::draw_contours(
                    &mut closed,
                    &one,
                    -1,
                    Scalar::all(255.0),
                    imgproc::FILLED,
                    imgproc::LINE_8,
                    &core::no_array(),
                    i32::MAX,
                    Point::new(0, 0),
                )?;
            }
        }
        // The layout's printed lines (3–5 mm wide) can be as bright and as grey as card stock
        // under strong light, and would join a card's outline where they touch it. Whatever is
        // thinner than 9 mm and more than 6 mm from anything thicker goes: lines and specks,
        // not a card's corners and borders (which an opening alone would notch).
        let mut core_ = Mat::default();
        imgproc::morphology_ex_def(&closed, &mut core_, imgproc::MORPH_OPEN, &rect(9)?)?;
        let mut near = Mat::default();
        imgproc::dilate_def(&core_, &mut near, &rect(13)?)?;
        let mut kept = Mat::default();
        core::bitwise_and_def(&closed, &near, &mut kept)?;
        let mut opened = Mat::default();
        imgproc::morphology_ex_def(&kept, &mut opened, imgproc::MORPH_OPEN, &rect(3)?)?;
        Ok(opened)
    }

    /// Cards proposed by the corners of the card-stock blobs, and the blobs with their holes
    /// filled (what coverage is judged on).
    fn propose(&self, mask: &Mat) -> Result<(Vec<Proposal>, Mat), VisionError> {
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let card_area = cw * ch;
        let mut contours = Vector::<Vector<Point>>::new();
        imgproc::find_contours_def(
            mask,
            &mut contours,
            imgproc::RETR_EXTERNAL,
            imgproc::CHAIN_APPROX_NONE,
        )?;
        // Coverage is judged on the blobs with their holes filled: pips and court pictures are
        // part of the card.
        let mut solid = Mat::zeros(mask.rows(), mask.cols(), core::CV_8UC1)?.to_mat()?;
        imgproc::draw_contours(
            &mut solid,
            &contours,
            -1,
            Scalar::all(255.0),
            imgproc::FILLED,
            imgproc::LINE_8,
            &core::no_array(),
            i32::MAX,
            Point::new(0, 0),
        )?;
        let mut proposals: Vec<Proposal> = Vec::new();
        for contour in contours.iter() {
            let area = imgproc::contour_area_def(&contour)?;
            if area < 0.4 * card_area || area > 12.0 * card_area {
                continue;
            }
            let mut poly = Vector::<Point>::new();
            imgproc::approx_poly_dp(&contour, &mut poly, 3.0, true)?;
            let pts = from_pixels(&poly);
            let n = pts.len();
            if n < 3 {
                continue;
            }
            let orientation: f64 = (0..n)
                .map(|i| pts[i].cross(pts[(i + 1) % n]))
                .sum::<f64>()
                .signum();
            let dense = from_pixels(&contour);
            // A corner is one vertex of the simplified outline, or, where the card's corner is
            // rounded (up to ~6 mm on some decks), two or three vertices joined by short edges
            // (14 px at most in all): the corner is where the long edges' lines meet.
            for (i, k) in (0..n).flat_map(|i| (0..3usize).map(move |k| (i, k))) {
                if k + 2 >= n {
                    continue;
                }
                let (prev, first, last, next) = (
                    pts[(i + n - 1) % n],
                    pts[i],
                    pts[(i + k) % n],
                    pts[(i + k + 1) % n],
                );
                let skipped: f64 = (0..k)
                    .map(|j| pts[(i + j + 1) % n].sub(pts[(i + j) % n]).len())
                    .sum();
                if k > 0 && skipped > 14.0 {
                    continue;
                }
                let at = if k == 0 {
                    first
                } else {
                    match intersect(prev, first.sub(prev), last, next.sub(last)) {
                        Some(c) if c.sub(first).len() < 12.0 => c,
                        _ => continue,
                    }
                };
                let (a, b) = (prev.sub(at), next.sub(at));
                if a.len() < 8.0 || b.len() < 8.0 {
                    continue;
                }
                let cos = a.dot(b) / (a.len() * b.len());
                // Convex corners only: the turn has the contour's own orientation.
                let turn = first.sub(prev).cross(next.sub(last));
                if cos.abs() > 0.30 || turn * orientation <= 0.0 {
                    continue;
                }
                // The simplified polygon's vertices are a few pixels off; the edges' own points
                // (all of them, least squares) give the card's directions to a fraction of a
                // degree, which the index reading needs.
                // The card's direction comes from both edges, the straighter weighing more: one
                // may run on into a neighbouring card's edge at a slightly different angle.
                let (at, du) = match (fit_edge(&dense, at, next), fit_edge(&dense, at, prev)) {
                    (Some((pb, db, rb)), Some((pa, da, ra))) => {
                        let db = if db.dot(b) < 0.0 { db.scale(-1.0) } else { db };
                        let mut from_a = Pt::new(-da.y, da.x);
                        if from_a.dot(b) < 0.0 {
                            from_a = from_a.scale(-1.0);
                        }
                        // Each edge weighs by its straightness (rms distance of its points, px).
                        let (wb, wa) = (1.0 / (rb + 0.3), 1.0 / (ra + 0.3));
                        let sum = db.scale(wb).add(from_a.scale(wa));
                        let du = sum.scale(1.0 / sum.len().max(1e-9));
                        match intersect(pb, db, pa, da) {
                            Some(corner) if corner.sub(at).len() < 6.0 => (corner, du),
                            _ => (at, du),
                        }
                    }
                    _ => (at, b.scale(1.0 / b.len())),
                };
                // The other edge, made exactly perpendicular, on a's side.
                let mut dv = Pt::new(-du.y, du.x);
                if dv.dot(a) < 0.0 {
                    dv = dv.scale(-1.0);
                }
                // Both ways round: an edge longer than a card's short side may be a long side,
                // or a short side running on into the next card of a hand.
                if a.len() > ch + 45.0 && b.len() > ch + 45.0 {
                    continue;
                }
                for (lu, lv) in [(ch, cw), (cw, ch)] {
                    let quad = card_quad(at, du.scale(lu), dv.scale(lv));
                    let coverage = coverage(&solid, &quad);
                    if coverage >= self.thresholds.card_min_coverage {
                        proposals.push(Proposal { quad, coverage });
                    }
                }
            }
        }
        // One proposal per place: the best covered among those that are nearly the same
        // rectangle. Not one per centre: the cards of a dealt hand overlap and their centres can
        // lie 20 mm apart; the reads sort out which proposals were cards (`read`).
        proposals.sort_by(|a, b| b.coverage.total_cmp(&a.coverage));
        let mut kept: Vec<Proposal> = Vec::new();
        for p in proposals {
            if kept.iter().all(|k| overlap(&k.quad, &p.quad) < 0.8) {
                kept.push(p);
            }
        }
        Ok((kept, solid))
    }

    /// Cards proposed by their straight edges rather than by the card-stock mask: where glare
    /// lightens the felt beside a card, or a court picture or a zone line breaks the mask, the
    /// blob's outline wanders but the card's printed edge is still a straight step in
    /// brightness. Two straight edges meeting at about 90° near their ends are a corner; the
    /// card of the calibrated size is proposed along them, both ways round, and kept when the
    /// mask covers it at least [`EDGE_MIN_COVERAGE`] (the reading decides the rest). Each comes
    /// with the share of its outline showing as an edge ([`outline_share`]), less
    /// [`INFERRED_LAST`] where only [`inked_to_corner`] made its corner.
    fn edge_proposals(
        card: SizeMm,
        plane: &Mat,
        unexplained: &Mat,
        solid: &Mat,
        read: &[[Pt; 4]],
        lifted: &[[Pt; 4]],
    ) -> Result<Vec<(Proposal, f64)>, VisionError> {
        let (cw, ch) = (card.width, card.height);
        let mut grey = Mat::default();
        imgproc::cvt_color_def(plane, &mut grey, imgproc::COLOR_BGR2GRAY)?;
        let mut all_edges = Mat::default();
        imgproc::canny(&grey, &mut all_edges, 30.0, 90.0, 3, true)?;
        // Over a card with another over it, the edge of a card lying between them can be a
        // faint shadow, white on white: there, fainter edges count too.
        if !lifted.is_empty() {
            let mut faint = Mat::default();
            imgproc::canny(&grey, &mut faint, FAINT_EDGE.0, FAINT_EDGE.1, 3, true)?;
            let mut over = Mat::zeros(grey.rows(), grey.cols(), core::CV_8UC1)?.to_mat()?;
            for quad in lifted {
                imgproc::fill_convex_poly_def(&mut over, &to_pixels(quad), Scalar::all(255.0))?;
            }
            let mut faint_over = Mat::default();
            core::bitwise_and_def(&faint, &over, &mut faint_over)?;
            let mut both = Mat::default();
            core::bitwise_or_def(&all_edges, &faint_over, &mut both)?;
            all_edges = both;
        }
        // Only edges near card stock no card was read on: the felt's weave, the layout's
        // lettering and lines, and the cards already read would cost time and propose nothing
        // new.
        // The missing card's edges run on under the cards read beside it: the search reaches
        // half a card's width past what is unexplained, within the blobs.
        let rect =
            |n: i32| imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(n, n));
        let reach = (cw / 2.0).round() as i32 | 1;
        let (mut wide, mut blobs, mut near) = (Mat::default(), Mat::default(), Mat::default());
        let mut seeds = unexplained.try_clone()?;
        for quad in lifted {
            imgproc::fill_convex_poly_def(&mut seeds, &to_pixels(quad), Scalar::all(255.0))?;
        }
        imgproc::dilate_def(&seeds, &mut wide, &rect(reach)?)?;
        imgproc::dilate_def(solid, &mut blobs, &rect(7)?)?;
        core::bitwise_and_def(&wide, &blobs, &mut near)?;
        // Inside the cards read (a few millimetres in from their edges) lie their pips and
        // pictures: many straight bits, none of them the missing card's edge. Not so on a
        // card with another lying over it.
        for quad in read.iter().filter(|q| !lifted.contains(q)) {
            let c = centroid(quad);
            let k = 1.0 - 20.0 / cw.min(ch);
            let inner: Vec<Pt> = quad.iter().map(|p| c.add(p.sub(c).scale(k))).collect();
            imgproc::fill_convex_poly_def(&mut near, &to_pixels(&inner), Scalar::all(0.0))?;
        }
        let mut edges = Mat::default();
        core::bitwise_and_def(&all_edges, &near, &mut edges)?;
        // Straight runs of the edge chains: each chain simplified to a polygon (1.5 px off at
        // most, so a card's edge a degree off the plane's axes, a staircase of one-pixel steps,
        // stays one run), its sides 20 mm or longer kept, each refitted through all its chain's
        // points near it. (A probabilistic Hough transform broke such staircases into pieces.)
        let mut chains = Vector::<Vector<Point>>::new();
        imgproc::find_contours_def(
            &edges,
            &mut chains,
            imgproc::RETR_LIST,
            imgproc::CHAIN_APPROX_NONE,
        )?;
        let mut segments: Vec<(Pt, Pt)> = Vec::new();
        let mut pieces: Vec<(Pt, Pt)> = Vec::new();
        for chain in chains.iter() {
            // A chain is traced along both sides of the edge: twice a run's length.
            if (chain.len() as f64) < 2.0 * EDGE_PIECE_MIN_MM {
                continue;
            }
            let mut poly = Vector::<Point>::new();
            imgproc::approx_poly_dp(&chain, &mut poly, 1.5, true)?;
            let corners = from_pixels(&poly);
            let dense = from_pixels(&chain);
            let n = corners.len();
            for i in 0..n {
                let (a, b) = (corners[i], corners[(i + 1) % n]);
                if b.sub(a).len() < EDGE_MIN_MM {
                    if b.sub(a).len() >= EDGE_PIECE_MIN_MM {
                        pieces.push((a, b));
                    }
                    continue;
                }
                // Refitted: the line through the run's points, its ends projected onto it.
                let (a, b) = match fit_edge(&dense, a, b) {
                    Some((c, dir, _)) => (
                        c.add(dir.scale(a.sub(c).dot(dir))),
                        c.add(dir.scale(b.sub(c).dot(dir))),
                    ),
                    None => (a, b),
                };
                let twin = segments.iter().any(|(p, q)| {
                    (p.sub(a).len() < 2.5 && q.sub(b).len() < 2.5)
                        || (p.sub(b).len() < 2.5 && q.sub(a).len() < 2.5)
                });
                if !twin {
                    segments.push((a, b));
                }
            }
        }
        // A faint edge (white card stock on white, the card under it showing only a thin
        // shadow) comes out of Canny in pieces, and pips touching it break it further: short
        // pieces on one line, with small gaps between them, are one edge. Only pieces too
        // short to count alone are joined, so the runs found whole stay as they are; and only
        // on the face of a card with another over it, where such an edge lies (elsewhere, on
        // an empty table, they are placards' lettering and chips' rims).
        let on_lifted = |p: Pt| {
            lifted.iter().any(|q| {
                let c = centroid(q);
                let grown = q.map(|v| c.add(v.sub(c).scale(LIFTED_REACH)));
                point_in_polygon(p, &grown)
            })
        };
        // An edge pixel within a pixel of each point along the line, on the plane's 1 px/mm.
        let inked = |from: Pt, to: Pt| -> f64 {
            let steps = to.sub(from).len().ceil().max(1.0) as usize;
            let hits = (0..=steps)
                .filter(|&i| {
                    let p = from.add(to.sub(from).scale(i as f64 / steps as f64));
                    let (x, y) = (p.x.round() as i32, p.y.round() as i32);
                    (-1..=1).any(|dy| {
                        (-1..=1).any(|dx| edges.at_2d::<u8>(y + dy, x + dx).is_ok_and(|&v| v > 0))
                    })
                })
                .count();
            hits as f64 / (steps + 1) as f64
        };
        // Joined edges count only there: with no card read with another over it, there is
        // nothing to join (an empty table's lettering and chips' rims make hundreds of pieces).
        if lifted.is_empty() {
            pieces.clear();
        }
        for joined in join_collinear(pieces, inked) {
            let middle = joined.0.add(joined.1).scale(0.5);
            // One lying along a run already found adds nothing but proposals a little off
            // that run's, which use up the frame's reads.
            if joined.1.sub(joined.0).len() >= EDGE_MIN_MM
                && on_lifted(middle)
                && !segments.iter().any(|s| runs_along(joined, *s))
            {
                segments.push(joined);
            }
        }
        if let Ok(dir) = std::env::var("CROUPIER_VISION_DEBUG") {
            // The straight runs found, over the edges near card stock.
            let mut seen = Mat::default();
            imgproc::cvt_color_def(&edges, &mut seen, imgproc::COLOR_GRAY2BGR)?;
            for (a, b) in &segments {
                eprintln!(
                    "segment {:.0},{:.0} to {:.0},{:.0} (plane px)",
                    a.x, a.y, b.x, b.y
                );
                imgproc::line(
                    &mut seen,
                    Point::new(a.x.round() as i32, a.y.round() as i32),
                    Point::new(b.x.round() as i32, b.y.round() as i32),
                    Scalar::new(0.0, 0.0, 255.0, 0.0),
                    1,
                    imgproc::LINE_8,
                    0,
                )?;
            }
            let _ = opencv::imgcodecs::imwrite_def(&format!("{dir}/edges.png"), &seen);
        }
        // Within a pixel of any edge: how much of a proposal's outline shows as an edge.
        let mut near_edge = Mat::default();
        imgproc::dilate_def(&all_edges, &mut near_edge, &rect(3)?)?;
        let mut out = Vec::new();
        for (i, &s1) in segments.iter().enumerate() {
            for &s2 in &segments[i + 1..] {
                let (d1, d2) = (s1.1.sub(s1.0), s2.1.sub(s2.0));
                let cos = d1.dot(d2) / (d1.len() * d2.len()).max(1e-9);
                if cos.abs() > 0.17 {
                    continue;
                }
                let Some(x) = intersect(s1.0, d1, s2.0, d2) else {
                    continue;
                };
                let (Some((legs1, meet1)), Some((legs2, meet2))) =
                    (legs_from(x, s1), legs_from(x, s2))
                else {
                    continue;
                };
                // A corner only the inked gap makes is read after every other: its edge is the
                // less certain, and a card proposed both ways is better read from the other.
                let inferred = if makes_corner(meet1, meet2, on_lifted(x)) {
                    false
                } else if inked_to_corner(x, (s1, meet1), (s2, meet2), &inked) {
                    true
                } else {
                    continue;
                };
                for (&u1, &u2) in legs1
                    .iter()
                    .flat_map(|u1| legs2.iter().map(move |u2| (u1, u2)))
                {
                    // The longer edge gives the direction; the other is made exactly
                    // perpendicular, on its own side.
                    let (du, side) = if d1.len() >= d2.len() {
                        (u1, u2)
                    } else {
                        (u2, u1)
                    };
                    let mut dv = Pt::new(-du.y, du.x);
                    if dv.dot(side) < 0.0 {
                        dv = dv.scale(-1.0);
                    }
                    for (lu, lv) in [(ch, cw), (cw, ch)] {
                        let quad = card_quad(x, du.scale(lu), dv.scale(lv));
                        // (The outline, a walk along four lines, is the cheaper test.)
                        let outline = outline_share(&near_edge, &quad)?;
                        if inferred && outline < INFERRED_MIN_OUTLINE {
                            continue;
                        }
                        let coverage = coverage(solid, &quad);
                        if coverage >= EDGE_MIN_COVERAGE {
                            let order = if inferred {
                                outline - INFERRED_LAST
                            } else {
                                outline
                            };
                            out.push((Proposal { quad, coverage }, order));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Card mm (the deck's card, upright) → table mm, for a card lying at `q` (portrait order).
    fn table_from_card(&self, q: &[Pt; 4]) -> Option<Homography> {
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let canonical = [
            Pt::new(0.0, 0.0),
            Pt::new(cw, 0.0),
            Pt::new(cw, ch),
            Pt::new(0.0, ch),
        ];
        Homography::from_points(&canonical, q)
    }

    /// The size of the window an index is searched in (the index and [`SEARCH_MM`] around it,
    /// at [`MATCH_PX_PER_MM`]), and for the top-left and the bottom-right index (turned
    /// upright: the card rotated by 180° about its centre) window pixels → card mm.
    fn index_windows(&self) -> (Size, [Homography; 2]) {
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let idx = self.deck.index;
        let m = SEARCH_MM;
        let win = Size::new(
            ((idx.width + 2.0 * m) * MATCH_PX_PER_MM).round() as i32,
            ((idx.height + 2.0 * m) * MATCH_PX_PER_MM).round() as i32,
        );
        let px = scale(1.0 / MATCH_PX_PER_MM);
        let tl = translate(idx.x - m, idx.y - m).then_after(&px);
        let rot = Homography([-1.0, 0.0, cw, 0.0, -1.0, ch, 0.0, 0.0, 1.0]);
        let br = rot.then_after(&tl);
        (win, [tl, br])
    }

    /// Reads an attempt's index `which` (0 top-left, 1 bottom-right) again over the part of its
    /// window that no card in `over` (table mm) covers ([`Deck::best_visible`]). `None` on a
    /// deck printing another bottom-right index (which set reads it is decided with the whole
    /// window), or where too little of the index shows.
    fn read_index_uncovered(
        &self,
        frame: &Mat,
        quad_mm: &[Pt; 4],
        which: usize,
        over: &[[Pt; 4]],
    ) -> Result<Option<(String, f64, f64)>, VisionError> {
        if self.deck.bottom_right.is_some() {
            return Ok(None);
        }
        let Some(table_from_card) = self.table_from_card(quad_mm) else {
            return Ok(None);
        };
        let (win, corners) = self.index_windows();
        let Some(corner) = corners.get(which) else {
            return Ok(None);
        };
        let image_from_card = self.image_from_table.then_after(&table_from_card);
        let here = warp(frame, &image_from_card.then_after(corner), win)?;
        let window = Window::new(Gray::from_mat(&here)?);
        let table_from_window = table_from_card.then_after(corner);
        let visible: Vec<bool> = (0..window.h)
            .flat_map(|y| (0..window.w).map(move |x| (x, y)))
            .map(|(x, y)| {
                let p = table_from_window.apply(Pt::new(x as f64, y as f64));
                !over.iter().any(|o| point_in_polygon(p, o))
            })
            .collect();
        Ok(self.deck.best_visible(&window, &visible))
    }

    /// Reads one proposed card; `None` when it cannot be read with confidence.
    fn read_card(
        &self,
        frame: &Mat,
        quad_mm: &[Pt; 4],
        turns: Turns,
    ) -> Result<Option<Attempt>, VisionError> {
        let q = portrait_order(*quad_mm);
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let Some(table_from_card) = self.table_from_card(&q) else {
            return Ok(None);
        };
        let image_from_card = self.image_from_table.then_after(&table_from_card);
        let idx = self.deck.index;
        let (win, [tl, br]) = self.index_windows();
        let mut reads = Vec::new();
        let mut questions = Vec::new();
        let (wx, wy) = (f64::from(win.width) / 2.0, f64::from(win.height) / 2.0);
        // The first look: the mean index sought in the window at half the scale. Most windows
        // proposed on an empty table show nothing like an index (a placard's lettering, a
        // chip, glare on the felt) and are read no further.
        let to_half = translate(0.5, 0.5).then_after(&scale(2.0));
        // The card's face, warped when first needed (two cards whose indices look alike).
        let mut face: Option<Window> = None;
        // A question of the whole face, warped once for all the windows that ask one.
        let ask_face = |question: &FaceQuestion, face: &mut Option<Window>| {
            self.deck
                .told_by_face(frame, &image_from_card, question, None, face)
        };
        let score = |r: &Option<(String, f64, f64)>| r.as_ref().map_or(-1.0, |r| r.1);
        for corner in [tl, br] {
            let half = warp(
                frame,
                &image_from_card.then_after(&corner).then_after(&to_half),
                Size::new(win.width / 2, win.height / 2),
            )?;
            let half = Window::new(Gray::from_mat(&half)?);
            // Each set of templates from where its own mean index was glanced, in full-scale
            // pixels.
            let glanced = |deck: &Deck| {
                let (x, y, v) = deck.glance(&half);
                ((2 * x, 2 * y), v)
            };
            let (top_left_at, seen) = glanced(&self.deck);
            let other = self.deck.bottom_right.as_deref().map(glanced);
            if seen.max(other.map_or(f32::MIN, |o| o.1)) < GLANCE_MIN {
                reads.push(None);
                continue;
            }
            let mut best = None;
            let mut contested = None;
            let mut colour = Mat::default();
            // The window as the outline puts it, unturned.
            let mut straight: Option<Window> = None;
            // The outline gives the card's direction to a degree or two; over an index 38 mm
            // tall that is a pixel or more of shear. An index that looks like one but does not
            // match well is read again turned by ±2°, then ±4°, about its window's centre, until
            // it matches well; the best of the turns is kept.
            for &angle in turns.angles {
                let here = warp(
                    frame,
                    &image_from_card
                        .then_after(&corner)
                        .then_after(&turned_about(wx, wy, angle)),
                    win,
                )?;
                let window = Window::new(Gray::from_mat(&here)?);
                // Where the deck prints another index in the bottom-right corner, either
                // corner may show either (a card lying the other way round looks the same
                // from its outline): the better fitting set of templates reads it.
                // Where the two corners' pictures of two cards look alike (a 9 printed upright
                // in the bottom-right corner is a 6 in the top-left one turned), a fit for
                // another card in the other set nearly as good makes the window no witness.
                let mut read = self.deck.best(&window, &here, top_left_at)?;
                if let (Some(bottom_right), Some((at, _))) = (&self.deck.bottom_right, other) {
                    let other = bottom_right.best(&window, &here, at)?;
                    let score = |r: &Option<(String, f64, f64)>| r.as_ref().map_or(-1.0, |r| r.1);
                    let better_is_bottom_right = score(&other) > score(&read);
                    let (better, worse) = if better_is_bottom_right {
                        (other, read)
                    } else {
                        (read, other)
                    };
                    // The face lies turned where the top-left set reads the bottom-right
                    // window, or the bottom-right set the top-left one.
                    let bottom_right_window = !reads.is_empty();
                    let better_turned = better_is_bottom_right != bottom_right_window;
                    let mut ambiguous = match (&better, &worse) {
                        (Some(b), Some(w)) => b.0 != w.0 && b.1 - w.1 < CORNERS_AMBIGUOUS_WITHIN,
                        _ => false,
                    };
                    // Two cards of one rank (their suits alike as the two corners print them),
                    // or a 6 and a 9 (one set's 6 printed upright is the other's 9 turned):
                    // the suit is told where the two templates differ, each where it fits.
                    if let (true, Some(b), Some(w)) = (ambiguous, &better, &worse) {
                        let rank = |card: &str| card.chars().next();
                        let twin_rank = turned_twin(&b.0).and_then(|t| rank(&t));
                        let alike_ranks = rank(&w.0) == rank(&b.0)
                            || (twin_rank.is_some() && rank(&w.0) == twin_rank);
                        if alike_ranks && b.1 >= SUITS_TOLD_SCORE {
                            let (better_set, worse_set, better_glanced, worse_glanced) =
                                if better_is_bottom_right {
                                    (&**bottom_right, &self.deck, at, top_left_at)
                                } else {
                                    (&self.deck, &**bottom_right, top_left_at, at)
                                };
                            let versus = better_set
                                .placed(&window, &b.0, better_glanced)
                                .zip(worse_set.placed(&window, &w.0, worse_glanced))
                                .map(|(pb, pw)| placed_versus(&window, pb, pw));
                            if let Some((vb, vw)) = versus {
                                if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                                    let c = centroid(&q);
                                    eprintln!(
                                        "sets contest at {:.0},{:.0}: {} {vb:.3} against {} {vw:.3} where they differ (scores {:.3} {:.3}, margin {:.3})",
                                        c.x, c.y, b.0, w.0, b.1, w.1, b.2
                                    );
                                }
                                if vb - vw >= SUITS_TOLD_APART {
                                    ambiguous = false;
                                }
                            }
                        }
                    }
                    read = match (ambiguous, better, worse) {
                        (true, Some(b), Some(w)) => {
                            let named = (b.0.clone(), b.1, 0.0);
                            let question = FaceQuestion::new(reads.len(), b, w, false)
                                .facing(better_turned, !better_turned);
                            let told = ask_face(&question, &mut face)?;
                            if told.is_none() && contested.is_none() {
                                contested = Some((named, question));
                            }
                            told
                        }
                        (true, ..) => None,
                        // A 6 or a 9 named by one set while the other found no index at all may
                        // be its twin's other index, turned (the other set would have named the
                        // twin): a 9♦'s upright bottom-right 9, turned, over the pip beside it,
                        // fitted the 6♦ template at 0.93 on seed 17, with nothing to contest it.
                        // The face decides; where it cannot, the window names the card with no
                        // margin.
                        (false, Some(b), None) => match turned_twin(&b.0) {
                            Some(twin) if !self.deck.faces.is_empty() => {
                                let twin = (twin, b.1, b.2);
                                let question =
                                    FaceQuestion::new(reads.len(), b.clone(), twin, true);
                                let told = ask_face(&question, &mut face)?;
                                match told {
                                    Some(told) if told.0 == b.0 => Some(b),
                                    // The twin's face: this is the twin's other corner.
                                    Some(_) => None,
                                    None => {
                                        if contested.is_none() {
                                            let named = (b.0.clone(), b.1, 0.0);
                                            contested = Some((named, question));
                                        }
                                        None
                                    }
                                }
                            }
                            _ => Some(b),
                        },
                        (false, better, _) => better,
                    };
                }
                let first = angle == 0.0;
                if first || score(&read) > score(&best) {
                    best = read;
                    colour = here;
                }
                if first {
                    straight = Some(window);
                }
                let s0 = score(&best);
                if (first && s0 < turns.from) || s0 >= RETRY_BELOW {
                    break;
                }
            }
            // An index the window cuts at its edge (the proposal a few millimetres off, as an
            // edge bent by a court picture touching the border puts it): the window is moved
            // by as much as the mean index lies off its middle, at most the search margin
            // again, and read once more, turned by a few degrees where it does not match well
            // (a J♠ whose window was moved read 0.59 unturned and 0.93 turned on seed 24).
            let off_middle = match (&best, &straight) {
                (None, Some(window)) if self.deck.bottom_right.is_none() => {
                    self.deck.index_off_middle(window, top_left_at)
                }
                _ => None,
            };
            if let Some((dx, dy)) = off_middle {
                let moved = image_from_card
                    .then_after(&corner)
                    .then_after(&translate(dx, dy));
                let mut read = None;
                let mut moved_colour = Mat::default();
                for &angle in MOVED_TURNS.angles {
                    let here = warp(frame, &moved.then_after(&turned_about(wx, wy, angle)), win)?;
                    let window = Window::new(Gray::from_mat(&here)?);
                    let (sx, sy) = self.deck.search_room(&window);
                    let turned = self.deck.best(&window, &here, (sx / 2, sy / 2))?;
                    let first = angle == 0.0;
                    if first || score(&turned) > score(&read) {
                        read = turned;
                        moved_colour = here;
                    }
                    let s0 = score(&read);
                    if (first && s0 < MOVED_TURNS.from) || s0 >= RETRY_BELOW {
                        break;
                    }
                }
                if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                    let c = centroid(&q);
                    eprintln!(
                            "index {} at {:.0},{:.0} cut by its window, moved {dx:.0},{dy:.0} px: {read:?}",
                            reads.len(),
                            c.x,
                            c.y
                        );
                }
                if read.is_some() {
                    best = read;
                    colour = moved_colour;
                }
            }
            // A window its two sets left contested, and no turn of it read: it still names its
            // better card, with no margin. It cannot stand for that card alone, but the card's
            // other index naming a third card is not then taken alone either (a 2♠ whose lower
            // index, its suit under a K♣, showed the K's club pip beside its 2 was read 2♣ on
            // seed 16, its upper index fitting 2♠ at 0.97 and 2♣ at 0.81).
            if best.is_none() {
                if let Some((named, question)) = contested {
                    best = Some(named);
                    questions.push(question);
                }
            }
            if let Ok(dir) = std::env::var("CROUPIER_VISION_DEBUG") {
                let c = centroid(&q);
                let name = format!("{dir}/index-{:.0}-{:.0}-{}.png", c.x, c.y, reads.len());
                let _ = opencv::imgcodecs::imwrite_def(&name, &colour);
                eprintln!("{name}: {best:?}");
            }
            reads.push(best);
        }
        // Each index's area on the table plane, without the search margin.
        let area = |x: f64, y: f64| {
            [
                Pt::new(x, y),
                Pt::new(x + idx.width, y),
                Pt::new(x + idx.width, y + idx.height),
                Pt::new(x, y + idx.height),
            ]
            .map(|p| table_from_card.apply(p))
        };
        Ok(Some(Attempt {
            witnesses: reads,
            face_questions: questions,
            index_mm: [
                area(idx.x, idx.y),
                area(cw - idx.x - idx.width, ch - idx.y - idx.height),
            ],
            quad_mm: q,
        }))
    }

    /// The card an attempt's indices decided on.
    fn card_read(&self, attempt: &Attempt, best: (String, f64, f64)) -> CardRead {
        let q = attempt.quad_mm;
        let centre = centroid(&q);
        let corners = q.map(|p| {
            let i = self.image_from_table.apply(p);
            [i.x, i.y]
        });
        CardRead {
            card: best.0,
            zone: self.table.zone_at(centre).map(str::to_owned),
            confidence: best.1.clamp(0.0, 1.0),
            margin: best.2,
            corners_px: corners,
            centre_mm: [centre.x, centre.y],
        }
    }
}

/// How well the window shows each of two index templates, each at its own place in it,
/// compared over the pixels where the two templates differ (by more than [`FACE_DIFFERS`]
/// times their pixels' root-mean-square) within the part of the window both cover: the
/// paper and the rank both show alike say nothing of which suit it is. Each is a
/// correlation (−1…1); 0 where fewer than 16 pixels differ.
fn placed_versus(
    window: &Window,
    (a, pa): (&Pattern, (usize, usize)),
    (b, pb): (&Pattern, (usize, usize)),
) -> (f64, f64) {
    let (x0, y0) = (pa.0.max(pb.0), pa.1.max(pb.1));
    let x1 = (pa.0 + a.w).min(pb.0 + b.w).min(window.w);
    let y1 = (pa.1 + a.h).min(pb.1 + b.h).min(window.h);
    let spread = FACE_DIFFERS / (a.px.len().max(b.px.len()).max(1) as f32).sqrt();
    // Sums for the window against each template: n, Σv, Σv², then Σt, Σt², Σtv for a and b.
    let (mut n, mut sv, mut svv) = (0.0f64, 0.0f64, 0.0f64);
    let mut sums = [[0.0f64; 3]; 2];
    for y in y0..y1 {
        for x in x0..x1 {
            let ta = a.px[(y - pa.1) * a.w + (x - pa.0)];
            let tb = b.px[(y - pb.1) * b.w + (x - pb.0)];
            if (ta - tb).abs() <= spread {
                continue;
            }
            let v = f64::from(window.px[y * window.w + x]);
            n += 1.0;
            sv += v;
            svv += v * v;
            for (sum, t) in sums.iter_mut().zip([ta, tb]) {
                let t = f64::from(t);
                sum[0] += t;
                sum[1] += t * t;
                sum[2] += t * v;
            }
        }
    }
    if n < 16.0 {
        return (0.0, 0.0);
    }
    let vv = svv - sv * sv / n;
    let corr = |[st, stt, stv]: [f64; 3]| {
        let tt = stt - st * st / n;
        if tt <= 1e-9 || vv <= 1e-6 {
            0.0
        } else {
            (stv - st * sv / n) / (tt * vv).sqrt()
        }
    };
    (corr(sums[0]), corr(sums[1]))
}

/// A place in a window (x, y) and how well a pattern fits there.
type Place = (usize, usize, f32);

/// Turns a window by `degrees` about its centre (`cx`, `cy`, window pixels): window pixels to
/// the unturned window's.
fn turned_about(cx: f64, cy: f64, degrees: f64) -> Homography {
    let (c, s) = (degrees.to_radians().cos(), degrees.to_radians().sin());
    translate(cx, cy)
        .then_after(&Homography([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]))
        .then_after(&translate(-cx, -cy))
}

/// Whether a place found in a window's room (`room`: its last place, x then y) lies on the
/// room's edge, where what fits best there may lie beyond the window.
fn on_room_edge(at: Place, room: (usize, usize)) -> bool {
    at.0 == 0 || at.1 == 0 || at.0 == room.0 || at.1 == room.1
}

/// The rectangle with a corner at `at` and sides `u` and `v` (vectors), in order round it.
fn card_quad(at: Pt, u: Pt, v: Pt) -> [Pt; 4] {
    [at, at.add(u), at.add(u).add(v), at.add(v)]
}

/// OpenCV's integer points as plane points.
fn from_pixels(v: &Vector<Point>) -> Vec<Pt> {
    v.iter()
        .map(|p| Pt::new(f64::from(p.x), f64::from(p.y)))
        .collect()
}

/// Plane points rounded to OpenCV's integer points (for drawing and filling).
fn to_pixels(pts: &[Pt]) -> Vector<Point> {
    pts.iter()
        .map(|p| Point::new(p.x.round() as i32, p.y.round() as i32))
        .collect()
}

/// The share of a card-sized rectangle (table plane, 1 px/mm) that `solid` covers, sampled on
/// a 2 mm grid a little inside its edges.
fn coverage(solid: &Mat, quad: &[Pt; 4]) -> f64 {
    let Ok(bytes) = solid.data_bytes() else {
        return 0.0;
    };
    let cols = solid.cols().max(1) as usize;
    let rows = solid.rows().max(1) as usize;
    let (o, u, v) = (quad[0], quad[1].sub(quad[0]), quad[3].sub(quad[0]));
    let (mut hit, mut all) = (0u32, 0u32);
    let steps_u = (u.len() / 2.0).ceil() as i32;
    let steps_v = (v.len() / 2.0).ceil() as i32;
    for i in 1..steps_u {
        for j in 1..steps_v {
            let p = o
                .add(u.scale(f64::from(i) / f64::from(steps_u)))
                .add(v.scale(f64::from(j) / f64::from(steps_v)));
            all += 1;
            if p.x < 0.0 || p.y < 0.0 {
                continue;
            }
            let (x, y) = (p.x as usize, p.y as usize);
            if x < cols && y < rows && bytes.get(y * cols + x).is_some_and(|b| *b > 0) {
                hit += 1;
            }
        }
    }
    if all == 0 {
        0.0
    } else {
        f64::from(hit) / f64::from(all)
    }
}

/// Whether two card rectangles have every corner within `mm` of one another, in any turn
/// (their corners may be listed from different starting points).
fn same_rectangle(a: &[Pt; 4], b: &[Pt; 4], mm: f64) -> bool {
    (0..4).any(|k| (0..4).all(|i| a[i].sub(b[(i + k) % 4]).len() <= mm))
}

/// A rectangle's corners listed the other way round (clockwise for anticlockwise).
fn reversed(q: &[Pt; 4]) -> [Pt; 4] {
    [q[3], q[2], q[1], q[0]]
}

/// The share of rectangle `a` (a card-sized quadrilateral) that `b` covers, sampled on a 7 × 9
/// grid: enough to tell the same place (≈ 1) from two cards of a hand (≤ 0.55).
fn overlap(a: &[Pt; 4], b: &[Pt; 4]) -> f64 {
    let (o, u, v) = (a[0], a[1].sub(a[0]), a[3].sub(a[0]));
    let mut inside = 0u32;
    for i in 0..7 {
        for j in 0..9 {
            let p = o
                .add(u.scale((f64::from(i) + 0.5) / 7.0))
                .add(v.scale((f64::from(j) + 0.5) / 9.0));
            if point_in_polygon(p, b) {
                inside += 1;
            }
        }
    }
    f64::from(inside) / 63.0
}

/// Where `mean` (the deck's mean index) fits best over one template's picture `g` (the same
/// size), as an offset from it: (0, 0) where they line up. The picture's edge is repeated
/// around it for the search.
fn mean_offset(mean: &Pattern, g: &Gray) -> (isize, isize) {
    let m = MEAN_OFFSET_REACH;
    if g.w == 0 || g.h == 0 || mean.w != g.w || mean.h != g.h {
        return (0, 0);
    }
    let (w, h) = (g.w + 2 * m, g.h + 2 * m);
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        let from = y.saturating_sub(m).min(g.h - 1) * g.w;
        for x in 0..w {
            px.push(g.px[from + x.saturating_sub(m).min(g.w - 1)]);
        }
    }
    let padded = Window::new(Gray { w, h, px });
    let mut best = (m, m, f32::MIN);
    for y in 0..=2 * m {
        for x in 0..=2 * m {
            let v = mean.ncc(&padded, x, y);
            if v > best.2 {
                best = (x, y, v);
            }
        }
    }
    (best.0 as isize - m as isize, best.1 as isize - m as isize)
}

/// From `from` (x, y and its score), uphill by `score` a pixel at a time within the places
/// `0..=max.0 × 0..=max.1`, at most `steps` times: the best place found and its score.
fn uphill(
    from: (usize, usize, f32),
    steps: usize,
    max: (usize, usize),
    score: impl Fn(usize, usize) -> f32,
) -> (usize, usize, f32) {
    let around = |c: usize, max: usize| c.saturating_sub(1)..=(c + 1).min(max);
    let mut best = from;
    for _ in 0..steps {
        let start = best;
        for y in around(start.1, max.1) {
            for x in around(start.0, max.0) {
                let v = score(x, y);
                if v > best.2 {
                    best = (x, y, v);
                }
            }
        }
        if (best.0, best.1) == (start.0, start.1) {
            break;
        }
    }
    best
}

/// The best of `scores` (at least two): its place, its score and its margin over the
/// runner-up, relative: how much of what the runner-up fails to explain the best explains.
/// 0.95 against 0.90 is as telling as 0.60 against 0.20 (a sharp index under noise against a
/// blurred one), and 0.62 against 0.58 is not.
fn best_and_margin(scores: &[f64]) -> (usize, f64, f64) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (first, second) = match (order.first(), order.get(1)) {
        (Some(&a), Some(&b)) => (scores[a], scores[b]),
        _ => return (0, -1.0, 0.0),
    };
    (order[0], first, (first - second) / (1.0 - second).max(1e-3))
}

/// The card whose index, turned by 180°, shows the same rank: a 6's is a 9, a 9's is a 6 (of
/// the same suit). Only a deck printing its bottom-right index upright can show either.
fn turned_twin(card: &str) -> Option<String> {
    let mut chars = card.chars();
    let twin = match chars.next()? {
        '6' => '9',
        '9' => '6',
        _ => return None,
    };
    Some(format!("{twin}{}", chars.as_str()))
}

/// The card both corner indices of one card say, or `None` when they do not say it clearly
/// enough. Reject rather than guess:
/// - an index is a witness when it scores at least `card_unreadable_below` (below, it is
///   covered or washed out and says nothing);
/// - a witness that names another card with some clarity (score ≥ `card_min_score`, margin ≥
///   half of `card_min_margin`) vetoes;
/// - two witnesses agreeing need `card_min_score` each and `card_min_margin` together;
/// - otherwise the best witness needs `card_min_score + ALONE_EXTRA_SCORE` and
///   `card_min_margin` by itself, or `card_min_score + ALONE_CLEAR_EXTRA_SCORE` and
///   [`ALONE_CLEAR_MARGINS`] × `card_min_margin`.
fn decide(reads: &[Option<(String, f64, f64)>], t: &Thresholds) -> Option<(String, f64, f64)> {
    let witnesses: Vec<&(String, f64, f64)> = reads
        .iter()
        .flatten()
        .filter(|(_, score, _)| *score >= t.card_unreadable_below)
        .collect();
    let best = witnesses.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let alone = (best.1 >= t.card_min_score + ALONE_EXTRA_SCORE && best.2 >= t.card_min_margin)
        || (best.1 >= t.card_min_score + ALONE_CLEAR_EXTRA_SCORE
            && best.2 >= ALONE_CLEAR_MARGINS * t.card_min_margin);
    // A witness that could stand alone is vetoed only by one nearly as good: an index half
    // under another card (its suit half hidden, or another card's pip beside it) often names a
    // neighbour of the card at a middling score.
    let vetoed = witnesses.iter().any(|w| {
        w.0 != best.0
            && w.1 >= t.card_min_score
            && w.2 >= t.card_min_margin / 2.0
            && !(alone && w.1 < best.1 - VETO_WITHIN)
    });
    if vetoed {
        return None;
    }
    let agreeing: Vec<&&(String, f64, f64)> = witnesses.iter().filter(|w| w.0 == best.0).collect();
    let pair = agreeing.len() >= 2
        && agreeing.iter().all(|w| w.1 >= t.card_min_score)
        && agreeing.iter().map(|w| w.2).sum::<f64>() >= t.card_min_margin;
    let clear = pair || alone;
    clear.then(|| (*best).clone())
}

/// How a corner `x` meets a straight edge.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Meet {
    /// Within [`CORNER_REACH_MM`] of one of its ends.
    End,
    /// Somewhere along it (a T: the edge of a card lying over another ends on the lower
    /// card's edge, which runs on).
    Along,
    /// Beyond one of its ends by this many mm: an edge broken off before its corner, by a
    /// neighbour's index beside it, by glare, or by the card lying over it.
    Short(f64),
}

/// The unit directions from a corner `x` along the straight edge `(a, b)` (into the edge, or
/// both ways along a T) and how `x` meets it; `None` when it is more than
/// [`CORNER_FAR_GAP_MM`] beyond the edge's ends.
fn legs_from(x: Pt, (a, b): (Pt, Pt)) -> Option<(Vec<Pt>, Meet)> {
    let len = b.sub(a).len();
    let d = b.sub(a).scale(1.0 / len.max(1e-9));
    let t = x.sub(a).dot(d);
    if t.abs() <= CORNER_REACH_MM {
        Some((vec![d], Meet::End))
    } else if (t - len).abs() <= CORNER_REACH_MM {
        Some((vec![d.scale(-1.0)], Meet::End))
    } else if t > 0.0 && t < len {
        Some((vec![d, d.scale(-1.0)], Meet::Along))
    } else if t < 0.0 && -t <= CORNER_FAR_GAP_MM {
        Some((vec![d], Meet::Short(-t)))
    } else if t > len && t - len <= CORNER_FAR_GAP_MM {
        Some((vec![d.scale(-1.0)], Meet::Short(t - len)))
    } else {
        None
    }
}

/// Whether two edges meeting as `m1` and `m2` make a corner (two edges crossing in their
/// middles do not): one must reach it, the other may stop up to [`CORNER_GAP_MM`] short. On
/// the face of a card with another over it (`over_a_card`: the middle card of a fan lies
/// there) more is allowed: the other may stop up to [`CORNER_FAR_GAP_MM`] short (the fan's
/// middle card shows its long edge only past the card lying over it), or both up to
/// [`CORNER_GAP_MM`] (its rounded corner lost in the lower card's shadow eats into both).
fn makes_corner(m1: Meet, m2: Meet, over_a_card: bool) -> bool {
    // Away from a card with another over it, an edge may stop only [`CORNER_GAP_MM`] short,
    // and only if the other reaches the corner.
    let short = |g: f64| g <= CORNER_GAP_MM;
    match (m1, m2) {
        (Meet::End, Meet::Short(g)) | (Meet::Short(g), Meet::End) => over_a_card || short(g),
        (Meet::End, _) | (_, Meet::End) => true,
        (Meet::Short(g1), Meet::Short(g2)) => over_a_card && short(g1) && short(g2),
        _ => false,
    }
}

/// Whether an edge stopping more than [`CORNER_GAP_MM`] (and at most [`CORNER_FAR_GAP_MM`])
/// short of a corner that the other edge reaches runs on to it as edge pixels along its line,
/// across [`CORNER_INKED_SHARE`] of the gap (the rounded corner left out). A court card's
/// picture frame touching its border bends the edge's chain aside, and the straight run
/// found stops there: gm-paris's J♣ on seeds 17 and 19, its long edge found 38 mm short of
/// its only free corner, the gap 59 % inked. Half is enough here, where joining two pieces
/// into one edge needs [`JOIN_INKED_SHARE`]: the other edge already reaches the corner, and
/// a corner only proposes a card, which its index must then read.
fn inked_to_corner(
    x: Pt,
    (s1, m1): ((Pt, Pt), Meet),
    (s2, m2): ((Pt, Pt), Meet),
    inked: &impl Fn(Pt, Pt) -> f64,
) -> bool {
    const ROUNDED_MM: f64 = 6.0;
    let (short, gap) = match (m1, m2) {
        (Meet::End, Meet::Short(g)) => (s2, g),
        (Meet::Short(g), Meet::End) => (s1, g),
        _ => return false,
    };
    if gap > CORNER_FAR_GAP_MM || gap <= ROUNDED_MM {
        return false;
    }
    let end = if short.0.sub(x).len() <= short.1.sub(x).len() {
        short.0
    } else {
        short.1
    };
    let reach = x.sub(end).len();
    let towards = x.sub(end).scale(1.0 / reach.max(1e-9));
    inked(end, end.add(towards.scale(reach - ROUNDED_MM))) >= CORNER_INKED_SHARE
}

/// Joins segments lying on one line (within [`JOIN_OFF_LINE_PX`] of it, directions within
/// about 3°) whose gap along it is at most [`JOIN_GAP_MM`], or at most [`JOIN_INKED_GAP_MM`]
/// where `inked` (the share of a stretch of line with edge pixels along it) finds the edge
/// running on across the gap: each result spans its pieces, on the line of the longest.
fn join_collinear(mut pieces: Vec<(Pt, Pt)>, inked: impl Fn(Pt, Pt) -> f64) -> Vec<(Pt, Pt)> {
    pieces.retain(|(a, b)| b.sub(*a).len() >= 1e-9);
    // Until no two join: which pairs join first must not matter (the pieces of one edge
    // joined from both ends meet in the middle). Each piece in turn takes in every other it
    // joins, looking again at all of them whenever it grew; the pieces it has passed do not
    // change after, so none is left that joins another.
    let mut i = 0;
    while i < pieces.len() {
        let mut grew = false;
        let mut j = 0;
        while j < pieces.len() {
            match (j != i)
                .then(|| joined(pieces[i], pieces[j], &inked))
                .flatten()
            {
                Some(both) => {
                    pieces[i] = both;
                    pieces.remove(j);
                    if j < i {
                        i -= 1;
                    }
                    grew = true;
                }
                None => j += 1,
            }
        }
        if !grew {
            i += 1;
        }
    }
    pieces
}

/// The two segments as one, on the longer one's line, if they lie on one line (see
/// [`join_collinear`]).
fn joined(p: (Pt, Pt), q: (Pt, Pt), inked: &impl Fn(Pt, Pt) -> f64) -> Option<(Pt, Pt)> {
    let (long, short) = if p.1.sub(p.0).len() >= q.1.sub(q.0).len() {
        (p, q)
    } else {
        (q, p)
    };
    let o = long.0;
    let len = long.1.sub(o).len();
    let u = long.1.sub(o).scale(1.0 / len);
    let (a, b) = short;
    let d = b.sub(a).scale(1.0 / b.sub(a).len());
    if d.cross(u).abs() >= 0.05
        || a.sub(o).cross(u).abs() > JOIN_OFF_LINE_PX
        || b.sub(o).cross(u).abs() > JOIN_OFF_LINE_PX
    {
        return None;
    }
    let (ta, tb) = (a.sub(o).dot(u), b.sub(o).dot(u));
    let (from, to) = (ta.min(tb), ta.max(tb));
    // The stretch of line between the two, if any.
    let gap = if from > len {
        Some((len, from))
    } else if to < 0.0 {
        Some((to, 0.0))
    } else {
        None
    };
    let joins = gap.is_none_or(|(g0, g1)| {
        g1 - g0 <= JOIN_GAP_MM
            || (g1 - g0 <= JOIN_INKED_GAP_MM
                && inked(o.add(u.scale(g0)), o.add(u.scale(g1))) >= JOIN_INKED_SHARE)
    });
    joins.then(|| (o.add(u.scale(from.min(0.0))), o.add(u.scale(to.max(len)))))
}

/// The share of a proposed card's straight sides (its rounded corners left out) lying on
/// `near_edge`'s set pixels.
fn outline_share(near_edge: &Mat, quad: &[Pt; 4]) -> Result<f64, VisionError> {
    const CORNER_MM: f64 = 5.0;
    let (cols, rows) = (near_edge.cols(), near_edge.rows());
    let px = near_edge.data_bytes()?;
    let (mut on, mut all) = (0usize, 0usize);
    for i in 0..4 {
        let (a, b) = (quad[i], quad[(i + 1) % 4]);
        let len = b.sub(a).len();
        if len <= 2.0 * CORNER_MM {
            continue;
        }
        let u = b.sub(a).scale(1.0 / len);
        let mut t = CORNER_MM;
        while t <= len - CORNER_MM {
            let p = a.add(u.scale(t));
            let (x, y) = (p.x.round() as i32, p.y.round() as i32);
            all += 1;
            if x >= 0 && y >= 0 && x < cols && y < rows && px[(y * cols + x) as usize] > 0 {
                on += 1;
            }
            t += 1.0;
        }
    }
    Ok(if all == 0 {
        0.0
    } else {
        on as f64 / all as f64
    })
}

/// Whether the segment `a` lies along `b`: both its ends within 2.5 px of `b`'s line and at
/// least half its length beside `b`.
fn runs_along(a: (Pt, Pt), b: (Pt, Pt)) -> bool {
    let len_b = b.1.sub(b.0).len();
    let len_a = a.1.sub(a.0).len();
    if len_b < 1e-9 || len_a < 1e-9 {
        return false;
    }
    let u = b.1.sub(b.0).scale(1.0 / len_b);
    let off = |p: Pt| p.sub(b.0).cross(u).abs();
    if off(a.0) > 2.5 || off(a.1) > 2.5 {
        return false;
    }
    let (t0, t1) = (a.0.sub(b.0).dot(u), a.1.sub(b.0).dot(u));
    let beside = t0.max(t1).min(len_b) - t0.min(t1).max(0.0);
    beside >= 0.5 * len_a
}

/// The line through the contour points that lie along the segment `from → to` (within 2 px,
/// away from both ends): a point on it and its unit direction.
fn fit_edge(dense: &[Pt], from: Pt, to: Pt) -> Option<(Pt, Pt, f64)> {
    let d = to.sub(from);
    let len = d.len();
    if len < 10.0 {
        return None;
    }
    let u = d.scale(1.0 / len);
    let pts: Vec<Pt> = dense
        .iter()
        .copied()
        .filter(|p| {
            let v = p.sub(from);
            let along = v.dot(u);
            along > 6.0 && along < len - 4.0 && v.cross(u).abs() < 2.0
        })
        .collect();
    if pts.len() < 6 {
        return None;
    }
    let c = centroid(&pts);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for p in &pts {
        let q = p.sub(c);
        sxx += q.x * q.x;
        sxy += q.x * q.y;
        syy += q.y * q.y;
    }
    // Principal direction of the scatter, and how far the points stray from that line.
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let dir = Pt::new(angle.cos(), angle.sin());
    let rms =
        (pts.iter().map(|p| p.sub(c).cross(dir).powi(2)).sum::<f64>() / pts.len() as f64).sqrt();
    Some((c, dir, rms))
}

/// Where two lines (point, direction) cross.
fn intersect(p: Pt, d: Pt, q: Pt, e: Pt) -> Option<Pt> {
    let den = d.cross(e);
    if den.abs() < 1e-6 {
        return None;
    }
    let t = q.sub(p).cross(e) / den;
    Some(p.add(d.scale(t)))
}

/// OpenCV's 8-bit hue (0…180) of a BGR colour.
fn hue_of([b, g, r]: [f64; 3]) -> f64 {
    let max = b.max(g).max(r);
    let min = b.min(g).min(r);
    if max - min < 1e-6 {
        return 0.0;
    }
    let h = if max == r {
        60.0 * (g - b) / (max - min)
    } else if max == g {
        120.0 + 60.0 * (b - r) / (max - min)
    } else {
        240.0 + 60.0 * (r - g) / (max - min)
    };
    (h.rem_euclid(360.0)) / 2.0
}

/// Blocks (px of the 1 px/mm plane) over which the felt's own brightness is measured.
const FELT_BLOCK_PX: usize = 32;
/// A felt this saturated (HSV, 0–255) or more is strongly coloured: blue, green or red cloth.
const COLOURED_FELT_SATURATION: f64 = 120.0;
/// On such a felt, how much less than the brightness margin paper needs …
const PAPER_ON_COLOURED_FELT_RELIEF: f64 = 20.0;
/// … where its saturation is at most this share of the felt's.
const PAPER_SATURATION_SHARE: f64 = 0.25;

/// The brightness card stock must reach at each pixel of the plane (HSV value, as a `CV_8U`
/// picture of `v`'s size): `over` the felt's brightness around it, measured block by block
/// over the pixels of the felt's hue and saturation (a block with less than a quarter of them
/// takes its neighbours'), and never more than `global` (the margin over the whole table's
/// median felt). A felt too grey to be told by its colour (saturation below 60) gets `global`
/// everywhere.
fn card_min_brightness(
    h: &Mat,
    s: &Mat,
    v: &Mat,
    felt_hue: f64,
    over: f64,
    global: f64,
) -> Result<Mat, VisionError> {
    const B: usize = FELT_BLOCK_PX;
    let (cols, rows) = (v.cols().max(0) as usize, v.rows().max(0) as usize);
    let mut out = Mat::new_rows_cols_with_default(
        rows as i32,
        cols as i32,
        core::CV_8UC1,
        Scalar::all(global.round()),
    )?;
    let felt_s = median_u8(s)?;
    if felt_s < 60.0 || cols == 0 || rows == 0 {
        return Ok(out);
    }
    let (hp, sp, vp) = (h.data_bytes()?, s.data_bytes()?, v.data_bytes()?);
    let felt_hued: [bool; 256] = std::array::from_fn(|hue| {
        let d = (hue as f64 - felt_hue).abs();
        d.min(180.0 - d) <= 10.0
    });
    let saturated = (0.5 * felt_s).ceil().min(255.0) as u8;
    let (bw, bh) = (cols.div_ceil(B), rows.div_ceil(B));
    let mut level: Vec<Option<f32>> = vec![None; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let mut hist = [0u32; 256];
            let (mut n, mut all) = (0u32, 0u32);
            // Every other pixel both ways: a quarter of the cost, plenty for a median.
            for y in (by * B..((by + 1) * B).min(rows)).step_by(2) {
                for x in (bx * B..((bx + 1) * B).min(cols)).step_by(2) {
                    let i = y * cols + x;
                    all += 1;
                    if felt_hued[usize::from(hp[i])] && sp[i] >= saturated {
                        hist[usize::from(vp[i])] += 1;
                        n += 1;
                    }
                }
            }
            if n > 0 && 4 * n >= all {
                let mut seen = 0;
                if let Some(m) = hist.iter().position(|c| {
                    seen += c;
                    2 * seen >= n
                }) {
                    level[by * bw + bx] = Some(m as f32);
                }
            }
        }
    }
    // Blocks under cards take the mean of their measured neighbours, ring by ring.
    if level.iter().all(Option::is_none) {
        return Ok(out);
    }
    while level.iter().any(Option::is_none) {
        let before = level.clone();
        for by in 0..bh {
            for bx in 0..bw {
                if before[by * bw + bx].is_some() {
                    continue;
                }
                let (mut sum, mut n) = (0.0f32, 0.0f32);
                for ny in by.saturating_sub(1)..=(by + 1).min(bh - 1) {
                    for nx in bx.saturating_sub(1)..=(bx + 1).min(bw - 1) {
                        if let Some(l) = before[ny * bw + nx] {
                            sum += l;
                            n += 1.0;
                        }
                    }
                }
                if n > 0.0 {
                    level[by * bw + bx] = Some(sum / n);
                }
            }
        }
    }
    let grid: Vec<f32> = level
        .iter()
        .map(|l| (l.unwrap_or(0.0) + over as f32).min(global as f32))
        .collect();
    let grid = Mat::new_rows_cols_with_data(bh as i32, bw as i32, &grid)?;
    let mut smooth = Mat::default();
    imgproc::resize(
        &grid,
        &mut smooth,
        Size::new(cols as i32, rows as i32),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )?;
    smooth.convert_to_def(&mut out, core::CV_8U)?;
    Ok(out)
}

/// Where, on a strongly coloured felt, paper shows by its lack of colour though it falls short
/// of the brightness margin (`min_v_here`, see [`card_min_brightness`]) by up to
/// [`PAPER_ON_COLOURED_FELT_RELIEF`]: a cream deck in the dim corner of a blue table (paper at
/// 143–150 against felt at 101 nearby) was otherwise seen only in scraps. `sat` and `val` are
/// the plane's HSV saturation and value. `None` on a felt of little colour, where only light
/// tells paper from it.
fn colourless_paper(sat: &Mat, val: &Mat, min_v_here: &Mat) -> Result<Option<Mat>, VisionError> {
    let felt_saturation = median_u8(sat)?;
    if felt_saturation < COLOURED_FELT_SATURATION {
        return Ok(None);
    }
    let mut dimmer = Mat::default();
    core::subtract_def(
        min_v_here,
        &Scalar::all(PAPER_ON_COLOURED_FELT_RELIEF),
        &mut dimmer,
    )?;
    let mut fairly_bright = Mat::default();
    core::compare(val, &dimmer, &mut fairly_bright, core::CMP_GE)?;
    let mut colourless = Mat::default();
    imgproc::threshold(
        sat,
        &mut colourless,
        felt_saturation * PAPER_SATURATION_SHARE,
        255.0,
        imgproc::THRESH_BINARY_INV,
    )?;
    let mut paper = Mat::default();
    core::bitwise_and_def(&fairly_bright, &colourless, &mut paper)?;
    Ok(Some(paper))
}

/// The median of a single-channel 8-bit image.
fn median_u8(img: &Mat) -> Result<f64, VisionError> {
    let mut hist = [0u64; 256];
    let m = if img.is_continuous() {
        img.clone()
    } else {
        img.try_clone()?
    };
    // Every third pixel is plenty for a median of a whole plane, at a third of the cost.
    for b in m.data_bytes()?.iter().step_by(3) {
        hist[usize::from(*b)] += 1;
    }
    let total: u64 = hist.iter().sum();
    let mut seen = 0;
    for (v, n) in hist.iter().enumerate() {
        seen += n;
        if seen * 2 >= total {
            return Ok(v as f64);
        }
    }
    Ok(128.0)
}

/// Draws the zones and the cards read on a copy of the frame (the calibration report image).
pub fn draw_report(frame: &Mat, cal: &Calibration, reads: &FrameReads) -> Result<Mat, VisionError> {
    let mut out = frame.try_clone()?;
    if let Some(table) = &cal.table {
        let h = table.image_from_table()?;
        for zone in &table.zones {
            let pts: Vector<Point> = zone
                .polygon_mm
                .iter()
                .map(|[x, y]| {
                    let p = h.apply(Pt::new(*x, *y));
                    Point::new(p.x.round() as i32, p.y.round() as i32)
                })
                .collect();
            let mut polys = Vector::<Vector<Point>>::new();
            polys.push(pts.clone());
            imgproc::polylines(
                &mut out,
                &polys,
                true,
                Scalar::new(255.0, 200.0, 0.0, 0.0),
                2,
                imgproc::LINE_AA,
                0,
            )?;
            if let Some(first) = pts.iter().next() {
                imgproc::put_text_def(
                    &mut out,
                    &zone.name,
                    Point::new(first.x + 4, first.y + 18),
                    imgproc::FONT_HERSHEY_SIMPLEX,
                    0.6,
                    Scalar::new(255.0, 200.0, 0.0, 0.0),
                )?;
            }
        }
    }
    for card in &reads.cards {
        let pts: Vector<Point> = card
            .corners_px
            .iter()
            .map(|[x, y]| Point::new(x.round() as i32, y.round() as i32))
            .collect();
        let mut polys = Vector::<Vector<Point>>::new();
        polys.push(pts.clone());
        imgproc::polylines(
            &mut out,
            &polys,
            true,
            Scalar::new(0.0, 255.0, 0.0, 0.0),
            2,
            imgproc::LINE_AA,
            0,
        )?;
        let label = format!("{} {:.2}", card.card, card.confidence);
        if let Some(first) = pts.iter().next() {
            imgproc::put_text_def(
                &mut out,
                &label,
                Point::new(first.x, first.y - 6),
                imgproc::FONT_HERSHEY_SIMPLEX,
                0.6,
                Scalar::new(0.0, 255.0, 0.0, 0.0),
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn witness(card: &str, score: f64, margin: f64) -> Option<(String, f64, f64)> {
        Some((card.to_owned(), score, margin))
    }

    #[test]
    fn a_clear_index_reads_and_a_contradiction_rejects() {
        let t = Thresholds::default();
        // Two agreeing indices.
        let both = [witness("6S", 0.9, 0.3), witness("6S", 0.8, 0.2)];
        assert_eq!(decide(&both, &t).map(|r| r.0), Some("6S".to_owned()));
        // One clear index, the other covered (it says nothing).
        let one = [witness("6S", 0.9, 0.5), witness("2D", 0.2, 0.01)];
        assert_eq!(decide(&one, &t).map(|r| r.0), Some("6S".to_owned()));
        // One index alone, but not clear enough.
        let weak = [witness("6S", 0.7, 0.5), None];
        assert_eq!(decide(&weak, &t), None);
        let close = [witness("6S", 0.95, 0.2), None];
        assert_eq!(decide(&close, &t), None);
        // A little lower, it stands alone only if it stands out twice as far (a court card's
        // index beside its picture's frame).
        let framed = [witness("KC", 0.84, 0.9), None];
        assert_eq!(decide(&framed, &t).map(|r| r.0), Some("KC".to_owned()));
        let framed_close = [witness("KC", 0.84, 0.6), None];
        assert_eq!(decide(&framed_close, &t), None);
        // A readable index naming another card vetoes one that could not stand alone…
        let clash = [witness("6S", 0.85, 0.8), witness("8S", 0.8, 0.5)];
        assert_eq!(decide(&clash, &t), None);
        // …and one that could, when it comes within `VETO_WITHIN` of it…
        let clash = [witness("6S", 0.95, 0.8), witness("8S", 0.88, 0.5)];
        assert_eq!(decide(&clash, &t), None);
        // …but not from further below (a half-covered index naming a neighbour).
        let half_covered = [witness("6S", 0.95, 0.8), witness("8S", 0.8, 0.5)];
        assert_eq!(
            decide(&half_covered, &t).map(|r| r.0),
            Some("6S".to_owned())
        );
        // Nothing readable.
        assert_eq!(decide(&[None, None], &t), None);
    }

    /// A card-sized white rectangle on green felt, turned by `deg` about its centre `c`.
    fn card_at(c: Pt, deg: f64) -> [Pt; 4] {
        let (cs, sn) = (deg.to_radians().cos(), deg.to_radians().sin());
        [(-32.5, -44.0), (32.5, -44.0), (32.5, 44.0), (-32.5, 44.0)]
            .map(|(x, y)| Pt::new(c.x + x * cs - y * sn, c.y + x * sn + y * cs))
    }

    /// A 300 × 200 mm table plane of green felt (1 px/mm).
    fn felt() -> Mat {
        Mat::new_rows_cols_with_default(
            200,
            300,
            core::CV_8UC3,
            Scalar::new(40.0, 110.0, 30.0, 0.0),
        )
        .unwrap()
    }

    /// An empty mask the size of [`felt`].
    fn blank_mask() -> Mat {
        Mat::zeros(200, 300, core::CV_8UC1)
            .unwrap()
            .to_mat()
            .unwrap()
    }

    fn fill(img: &mut Mat, quad: &[Pt], colour: Scalar) {
        imgproc::fill_convex_poly_def(img, &to_pixels(quad), colour).unwrap();
    }

    #[test]
    fn straight_edges_place_a_card_where_its_blob_wandered() {
        let card = SizeMm {
            width: 65.0,
            height: 88.0,
        };
        let truth = card_at(Pt::new(150.0, 100.0), 17.0);
        let mut plane = felt();
        fill(&mut plane, &truth, Scalar::all(235.0));
        // The card-stock blob: the card, and glare-lit felt bulging out of its left side,
        // which sends the blob's corners astray.
        let mut solid = blank_mask();
        fill(&mut solid, &truth, Scalar::all(255.0));
        let bulge = [
            Pt::new(60.0, 60.0),
            Pt::new(130.0, 60.0),
            Pt::new(130.0, 160.0),
            Pt::new(60.0, 160.0),
        ];
        fill(&mut solid, &bulge, Scalar::all(255.0));
        let found = CardReader::edge_proposals(card, &plane, &solid, &solid, &[], &[]).unwrap();
        let centre = centroid(&truth);
        let best = found
            .iter()
            .map(|p| centroid(&p.0.quad).sub(centre).len())
            .fold(f64::MAX, f64::min);
        assert!(best < 1.5, "nearest proposal {best:.2} mm from the card");
    }

    #[test]
    fn card_stock_counts_from_the_felt_around_it_where_the_light_falls_off() {
        // A red felt (hue 0, saturation 200) whose brightness falls from 150 on the left to
        // 100 on the right of a 300 × 200 plane, and a cream card (saturation 40, value 160)
        // on its dark right side: 60 over the felt there, 10 over the plane's median felt.
        let (w, h) = (300usize, 200usize);
        let felt_v = |x: usize| 150.0 - 50.0 * x as f64 / (w - 1) as f64;
        let on_card = |x: usize, y: usize| (220..280).contains(&x) && (60..150).contains(&y);
        let channel = |f: &dyn Fn(usize, usize) -> f64| {
            let px: Vec<u8> = (0..w * h).map(|i| f(i % w, i / w).round() as u8).collect();
            Mat::new_rows_cols_with_data(h as i32, w as i32, &px)
                .unwrap()
                .try_clone()
                .unwrap()
        };
        let hue = channel(&|x, y| if on_card(x, y) { 20.0 } else { 0.0 });
        let sat = channel(&|x, y| if on_card(x, y) { 40.0 } else { 200.0 });
        let val = channel(&|x, y| if on_card(x, y) { 160.0 } else { felt_v(x) });
        let global = median_u8(&val).unwrap() + 45.0;
        let at = |m: &Mat, x: i32, y: i32| f64::from(*m.at_2d::<u8>(y, x).unwrap());
        let min_v = card_min_brightness(&hue, &sat, &val, 0.0, 45.0, global).unwrap();
        // The card passes where it lies; the bright left side still needs the global margin.
        assert!(at(&min_v, 250, 100) <= 160.0, "{}", at(&min_v, 250, 100));
        assert!(at(&val, 250, 100) < global, "{global}");
        assert!((at(&min_v, 10, 100) - global).abs() <= 1.0);
        // The felt beside the card does not.
        assert!(at(&min_v, 290, 100) > at(&val, 290, 100) + 40.0);
        // A grey felt gets the global margin everywhere.
        let grey = channel(&|_, _| 20.0);
        let min_v = card_min_brightness(&hue, &grey, &val, 0.0, 45.0, global).unwrap();
        assert!((at(&min_v, 250, 100) - global).abs() <= 1.0);
    }

    #[test]
    fn on_a_coloured_felt_paper_a_little_short_of_the_brightness_margin_is_card_stock() {
        // A blue felt (saturation 200, value 100), a cream card (saturation 12, value 140: 40
        // over the felt, short of a margin of 45), a pale blue chip as bright (saturation 120)
        // and a dull grey scrap (saturation 12, value 110).
        let (w, h) = (300usize, 200usize);
        let place = |x: usize, y: usize| match (x, y) {
            (20..80, 50..140) => 1,
            (120..160, 50..90) => 2,
            (200..240, 50..90) => 3,
            _ => 0,
        };
        let channel = |f: &dyn Fn(usize) -> f64| {
            let px: Vec<u8> = (0..w * h)
                .map(|i| f(place(i % w, i / w)).round() as u8)
                .collect();
            Mat::new_rows_cols_with_data(h as i32, w as i32, &px)
                .unwrap()
                .try_clone()
                .unwrap()
        };
        let sat = channel(&|p| [200.0, 12.0, 120.0, 12.0][p]);
        let val = channel(&|p| [100.0, 140.0, 140.0, 110.0][p]);
        let margin = channel(&|_| 145.0);
        let paper = colourless_paper(&sat, &val, &margin).unwrap().unwrap();
        let at = |x: i32, y: i32| *paper.at_2d::<u8>(y, x).unwrap();
        assert_eq!(at(50, 100), 255, "the card");
        assert_eq!(at(140, 70), 0, "the chip");
        assert_eq!(at(220, 70), 0, "the grey scrap");
        assert_eq!(at(290, 190), 0, "the felt");
        // On a grey felt only light tells paper.
        let grey = channel(&|p| [20.0, 12.0, 120.0, 12.0][p]);
        assert!(colourless_paper(&grey, &val, &margin).unwrap().is_none());
    }

    #[test]
    fn the_court_pictures_row_is_found_below_the_suit_where_only_courts_have_ink() {
        // Ten-row templates four columns wide: every card inked in rows 1–2 (rank) and 4–5
        // (suit); the courts also from row 7 down.
        let template = |card: &str, court: bool| {
            let px: Vec<u8> = (0..40)
                .map(|i| {
                    let row = i / 4;
                    let inked = matches!(row, 1 | 2 | 4 | 5) || (court && row >= 7);
                    if inked {
                        20
                    } else {
                        235
                    }
                })
                .collect();
            let m = Mat::new_rows_cols_with_data(10, 4, &px)
                .unwrap()
                .try_clone()
                .unwrap();
            (card.to_owned(), m)
        };
        let deck = [
            template("2S", false),
            template("7H", false),
            template("JD", true),
            template("KC", true),
        ];
        assert_eq!(court_picture_row(&deck, 4, 4).unwrap(), Some(7));
        let plain = [
            template("2S", false),
            template("7H", false),
            template("JD", false),
            template("KC", false),
        ];
        assert_eq!(court_picture_row(&plain, 4, 4).unwrap(), None);
        // A frame line across the courts' index column, one row: no picture.
        let template_framed = |card: &str, court: bool| {
            let (name, m) = template(card, false);
            let mut m = m;
            if court {
                for c in 0..4 {
                    *m.at_2d_mut::<u8>(7, c).unwrap() = 20;
                }
            }
            (name, m)
        };
        let framed = [
            template_framed("2S", false),
            template_framed("7H", false),
            template_framed("JD", true),
            template_framed("KC", true),
        ];
        assert_eq!(court_picture_row(&framed, 4, 4).unwrap(), None);
    }

    #[test]
    fn a_card_shows_more_of_its_outline_than_a_rectangle_beside_it() {
        let truth = card_at(Pt::new(150.0, 100.0), 17.0);
        let mut edges = blank_mask();
        imgproc::polylines(
            &mut edges,
            &to_pixels(&truth),
            true,
            Scalar::all(255.0),
            1,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let mut near_edge = Mat::default();
        let three = imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(3, 3));
        imgproc::dilate_def(&edges, &mut near_edge, &three.unwrap()).unwrap();
        let whole = outline_share(&near_edge, &truth).unwrap();
        assert!(whole > 0.95, "{whole:.2}");
        // The same rectangle 8 mm along the card's long side: its short sides cross the card.
        let along = truth[3].sub(truth[0]).scale(8.0 / 88.0);
        let beside = truth.map(|p| p.add(along));
        let off = outline_share(&near_edge, &beside).unwrap();
        assert!(off < 0.75, "{off:.2}");
    }

    #[test]
    fn a_run_lying_along_another_is_told_from_one_beside_or_past_it() {
        let edge = (Pt::new(0.0, 0.0), Pt::new(50.0, 0.0));
        // Along it, a pixel and a half off, reaching 10 mm past its end.
        assert!(runs_along((Pt::new(20.0, 1.5), Pt::new(60.0, 1.0)), edge));
        // Parallel, 4 px off: another card's edge.
        assert!(!runs_along((Pt::new(0.0, 4.0), Pt::new(50.0, 4.0)), edge));
        // On its line but mostly past its end.
        assert!(!runs_along((Pt::new(40.0, 0.0), Pt::new(80.0, 0.0)), edge));
    }

    /// A card read with one index covered (`under`) and a card lying over it (`over`, its face
    /// `grey` on the lower card's 245): the table plane and its card stock.
    fn card_over_a_card(grey: f64) -> ([Pt; 4], [Pt; 4], Mat, Mat) {
        let under = card_at(Pt::new(120.0, 100.0), 0.0);
        let over = card_at(Pt::new(150.0, 102.0), 6.0);
        let mut plane = felt();
        fill(&mut plane, &under, Scalar::all(245.0));
        fill(&mut plane, &over, Scalar::all(grey));
        let mut solid = blank_mask();
        fill(&mut solid, &under, Scalar::all(255.0));
        fill(&mut solid, &over, Scalar::all(255.0));
        (under, over, plane, solid)
    }

    /// How far (mm) the edge proposal nearest to `card` lies from it, with `under` read and no
    /// card stock left unexplained (`lifted`: the cards read with another over them).
    fn nearest_edge_proposal(
        (under, card, plane, solid): &([Pt; 4], [Pt; 4], Mat, Mat),
        lifted: &[[Pt; 4]],
    ) -> f64 {
        let size = SizeMm {
            width: 65.0,
            height: 88.0,
        };
        CardReader::edge_proposals(size, plane, &blank_mask(), solid, &[*under], lifted)
            .unwrap()
            .iter()
            .map(|p| centroid(&p.0.quad).sub(centroid(card)).len())
            .fold(f64::MAX, f64::min)
    }

    #[test]
    fn a_card_lying_over_one_read_is_proposed_from_its_edges_there() {
        // The card over it a little greyer: its whole face lies on the lower card's face or on
        // the felt beside it, so no card stock is left unexplained once the lower card is read.
        let scene = card_over_a_card(210.0);
        let under = scene.0;
        let unlifted = nearest_edge_proposal(&scene, &[]);
        assert!(unlifted > 10.0, "{unlifted:.2}");
        let lifted = nearest_edge_proposal(&scene, &[under]);
        assert!(
            lifted < 1.5,
            "nearest proposal {lifted:.2} mm from the card over the one read"
        );
    }

    #[test]
    fn a_faint_edge_over_a_card_with_another_over_it_still_proposes_that_card() {
        // As above, but the card over it barely greyer (9 levels: white on white, its edge
        // a faint shadow where it lies on the lower card's face).
        let scene = card_over_a_card(236.0);
        let under = scene.0;
        let nearest = nearest_edge_proposal(&scene, &[under]);
        assert!(
            nearest < 1.5,
            "nearest proposal {nearest:.2} mm from the card over the one read"
        );
    }

    #[test]
    fn an_edge_broken_off_short_of_its_corner_still_makes_one() {
        let right = (Pt::new(0.0, 0.0), Pt::new(40.0, 0.0));
        // At an end, along it (a T), short of it by a gap, and too far off.
        assert_eq!(
            legs_from(Pt::new(-5.0, 0.0), right),
            Some((vec![Pt::new(1.0, 0.0)], Meet::End))
        );
        assert_eq!(
            legs_from(Pt::new(20.0, 0.0), right).map(|(legs, meet)| (legs.len(), meet)),
            Some((2, Meet::Along))
        );
        assert_eq!(
            legs_from(Pt::new(60.0, 0.0), right),
            Some((vec![Pt::new(-1.0, 0.0)], Meet::Short(20.0)))
        );
        assert_eq!(
            legs_from(Pt::new(-25.0, 0.0), right),
            Some((vec![Pt::new(1.0, 0.0)], Meet::Short(25.0)))
        );
        assert_eq!(legs_from(Pt::new(120.0, 0.0), right), None);
        // One edge must reach the corner, the other stop at most 30 mm short; over a card with
        // another over it, up to 65 mm, or both up to 30 mm.
        for over in [false, true] {
            assert!(makes_corner(Meet::End, Meet::Short(25.0), over));
            assert!(makes_corner(Meet::Along, Meet::End, over));
            assert!(!makes_corner(Meet::Short(20.0), Meet::Short(45.0), over));
            assert!(!makes_corner(Meet::Along, Meet::Short(5.0), over));
            assert!(!makes_corner(Meet::Along, Meet::Along, over));
        }
        assert!(!makes_corner(Meet::End, Meet::Short(45.0), false));
        assert!(makes_corner(Meet::End, Meet::Short(45.0), true));
        assert!(!makes_corner(Meet::Short(20.0), Meet::Short(25.0), false));
        assert!(makes_corner(Meet::Short(20.0), Meet::Short(25.0), true));
    }

    #[test]
    fn an_edge_far_short_of_its_corner_makes_it_where_it_runs_on_as_edge_pixels() {
        // The corner at the origin: one edge reaches it, the other stops 38 mm short.
        let x = Pt::new(0.0, 0.0);
        let reaching = (Pt::new(0.0, 0.0), Pt::new(0.0, 23.0));
        let short = (Pt::new(38.0, 0.0), Pt::new(78.0, 0.0));
        let meets = |gap| ((short, Meet::Short(gap)), (reaching, Meet::End));
        // The stretch measured runs from the short edge's end towards the corner, the rounded
        // corner's 6 mm left out.
        let stretch = std::cell::Cell::new((Pt::new(0.0, 0.0), Pt::new(0.0, 0.0)));
        let half = |a: Pt, b: Pt| {
            stretch.set((a, b));
            0.5
        };
        let (a, b) = meets(38.0);
        assert!(inked_to_corner(x, a, b, &half));
        let (from, to) = stretch.get();
        assert!(from.sub(Pt::new(38.0, 0.0)).len() < 1e-9, "{from:?}");
        assert!(to.sub(Pt::new(6.0, 0.0)).len() < 1e-9, "{to:?}");
        // Either way round.
        assert!(inked_to_corner(x, b, a, &half));
        // Less than half inked, or beyond the far gap: no corner.
        let (a, b) = meets(38.0);
        assert!(!inked_to_corner(x, a, b, &|_, _| 0.45));
        let (a, b) = meets(70.0);
        assert!(!inked_to_corner(x, a, b, &|_, _| 1.0));
        // Neither edge reaching the corner, or both: not this rule's to decide.
        assert!(!inked_to_corner(
            x,
            (short, Meet::Short(38.0)),
            (reaching, Meet::Short(20.0)),
            &|_, _| 1.0
        ));
        assert!(!inked_to_corner(
            x,
            (short, Meet::End),
            (reaching, Meet::End),
            &|_, _| 1.0
        ));
    }

    #[test]
    fn same_rectangle_is_corner_by_corner_in_any_turn() {
        let a = card_at(Pt::new(100.0, 100.0), 10.0);
        let turned = [a[2], a[3], a[0], a[1]];
        assert!(same_rectangle(&a, &turned, 0.01));
        let anticlockwise = [a[1], a[0], a[3], a[2]];
        assert!(!same_rectangle(&a, &anticlockwise, 0.01));
        assert!(same_rectangle(&a, &reversed(&anticlockwise), 0.01));
        let shifted = a.map(|p| p.add(Pt::new(3.0, 0.0)));
        // 3 mm off is 95 % the same area, and still read again: the index is searched for
        // only 3.5 mm around where the outline puts it.
        assert!(overlap(&a, &shifted) > 0.9);
        assert!(!same_rectangle(&a, &shifted, SAME_PROPOSAL_MM));
    }

    #[test]
    fn overlap_tells_one_place_from_a_dealt_hand() {
        let card = |x: f64, y: f64| {
            [
                Pt::new(x, y),
                Pt::new(x + 63.0, y),
                Pt::new(x + 63.0, y + 88.0),
                Pt::new(x, y + 88.0),
            ]
        };
        assert!(overlap(&card(0.0, 0.0), &card(1.0, 1.0)) > 0.9);
        let hand = overlap(&card(0.0, 0.0), &card(30.0, 0.0));
        assert!(hand > 0.3 && hand < 0.6, "{hand}");
        assert!(overlap(&card(0.0, 0.0), &card(100.0, 0.0)) < 1e-9);
    }

    #[test]
    fn the_plane_maps_warp_as_the_table_homography_does() {
        // A camera looking down at an angle: a textured 640 × 360 half-size frame, and the
        // plane remapped from it against a perspective warp of the same homography.
        let image_from_table = Homography::from_points(
            &[
                Pt::new(0.0, 0.0),
                Pt::new(800.0, 0.0),
                Pt::new(800.0, 450.0),
                Pt::new(0.0, 450.0),
            ],
            &[
                Pt::new(180.0, 90.0),
                Pt::new(1100.0, 70.0),
                Pt::new(1240.0, 690.0),
                Pt::new(60.0, 700.0),
            ],
        )
        .expect("four points");
        let mut small = Mat::new_rows_cols_with_default(360, 640, core::CV_8UC3, Scalar::all(0.0))
            .expect("frame");
        for i in 0..40 {
            let c = Point::new(16 * i, 9 * i);
            imgproc::circle(
                &mut small,
                c,
                7 + i % 13,
                Scalar::new(f64::from(6 * i), f64::from(255 - 6 * i), 128.0, 0.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .expect("circle");
        }
        let (origin, size) = (Pt::new(40.0, 30.0), Size::new(700, 400));
        let (fixed, fraction) = plane_maps(&image_from_table, (origin, size)).expect("maps");
        let mut remapped = Mat::default();
        imgproc::remap(
            &small,
            &mut remapped,
            &fixed,
            &fraction,
            imgproc::INTER_LINEAR,
            core::BORDER_REPLICATE,
            Scalar::default(),
        )
        .expect("remap");
        let plane_to_small = translate(-0.25, -0.25)
            .then_after(&scale(0.5))
            .then_after(&image_from_table)
            .then_after(&translate(origin.x, origin.y));
        let warped = warp(&small, &plane_to_small, size).expect("warp");
        let mut diff = Mat::default();
        core::absdiff(&remapped, &warped, &mut diff).expect("diff");
        let mut worst = 0.0;
        core::min_max_loc(
            &diff.reshape(1, 0).expect("one channel"),
            None,
            Some(&mut worst),
            None,
            None,
            &core::no_array(),
        )
        .expect("max");
        assert_eq!(remapped.size().expect("size"), size);
        // Fixed-point maps round each position to 1/32 px: a few grey levels on the sharpest
        // edges, nothing elsewhere.
        let mean = core::mean_def(&diff).expect("mean");
        assert!(worst <= 8.0, "{worst}");
        assert!((0..3).all(|c| mean[c] < 0.05), "{mean:?}");
    }

    /// 52 faces (126 × 176 px, a 63 × 88 mm card at 2 px/mm) in a fresh folder: each with its
    /// rank's letter and a suit mark in the top-left corner, and in the bottom-right corner
    /// either the same turned (as most decks) or the letter alone, upright.
    fn faces(dir: &std::path::Path, alike: bool) {
        std::fs::create_dir_all(dir).expect("folder");
        for code in crate::calibration::all_cards() {
            let mut face =
                Mat::new_rows_cols_with_default(176, 126, core::CV_8UC3, Scalar::all(245.0))
                    .expect("face");
            let (rank, suit) = code.split_at(1);
            let suit_at = 1 + crate::calibration::SUITS
                .iter()
                .position(|s| suit.starts_with(*s))
                .unwrap_or(0) as i32;
            let text = |img: &mut Mat, at: Point| {
                imgproc::put_text(
                    img,
                    rank,
                    at,
                    imgproc::FONT_HERSHEY_SIMPLEX,
                    0.6,
                    Scalar::all(20.0),
                    2,
                    imgproc::LINE_8,
                    false,
                )
                .expect("text");
            };
            text(&mut face, Point::new(4, 18));
            // As many pips down the middle as the rank's place (A one, K thirteen), by twos,
            // their rows spread over the face (so that a 6's face is not most of a 9's).
            let pips = 1 + crate::calibration::RANKS
                .iter()
                .position(|r| rank.starts_with(*r))
                .unwrap_or(0) as i32;
            let step = 100 / ((pips + 1) / 2).max(1);
            for p in 0..pips {
                let at = Point::new(45 + 36 * (p % 2), 40 + step * (p / 2));
                imgproc::circle(&mut face, at, 7, Scalar::all(20.0), -1, imgproc::LINE_8, 0)
                    .expect("pip");
            }
            imgproc::rectangle_def(
                &mut face,
                core::Rect::new(4, 26, 4 * suit_at, 10),
                Scalar::all(20.0),
            )
            .expect("suit");
            if alike {
                let mut turned = Mat::default();
                core::rotate(&face, &mut turned, core::ROTATE_180).expect("turn");
                let corner = core::Rect::new(96, 130, 30, 46);
                let mut roi = Mat::roi_mut(&mut face, corner).expect("corner");
                Mat::roi(&turned, corner)
                    .expect("corner")
                    .copy_to(&mut roi)
                    .expect("copy");
            } else {
                text(&mut face, Point::new(104, 168));
            }
            opencv::imgcodecs::imwrite_def(
                dir.join(format!("{code}.png")).to_str().expect("path"),
                &face,
            )
            .expect("write");
        }
    }

    /// A deck made from [`faces`] printing another index bottom right (so keeping its faces),
    /// and the face of `card` as drawn (2 px/mm), from a folder removed again.
    fn deck_and_face(name: &str, card: &str) -> (Deck, Mat) {
        let dir = std::env::temp_dir().join(format!("croupier-{name}-{}", std::process::id()));
        faces(&dir, false);
        let templates = Deck::from_faces(&dir, name);
        let face = crate::read_image(&dir.join(format!("{card}.png")));
        let _ = std::fs::remove_dir_all(&dir);
        let deck = Deck::load(&templates.expect("deck")).expect("load");
        (deck, face.expect("face"))
    }

    #[test]
    fn a_face_fitted_the_way_each_set_puts_it_tells_two_cards_differing_in_a_pip() {
        let (deck, spades) = deck_and_face("facing", "6S");
        let card_to_face = scale(2.0);
        let said = |card: &str| (card.to_owned(), 0.9, 0.0);
        let ask = |a: &str, b: &str, facing: Option<(bool, bool)>| {
            let mut question = FaceQuestion::new(0, said(a), said(b), false);
            if let Some((named, rival)) = facing {
                question = question.facing(named, rival);
            }
            deck.told_by_face(&spades, &card_to_face, &question, None, &mut None)
                .expect("told")
                .map(|r| r.0)
        };
        // The 6♠ and the 6♣ differ in their suit mark alone: either way round, the face does
        // not tell them apart.
        assert_eq!(ask("6S", "6C", None), None);
        // The window read 6♠ upright, and 6♣ turned (its other corner): upright, it is the 6♠.
        assert_eq!(ask("6S", "6C", Some((false, true))).as_deref(), Some("6S"));
        // Named the way the face does not lie, the named card is not told, nor is the rival
        // this way.
        assert_eq!(ask("6C", "6S", Some((true, false))), None);
        assert_eq!(ask("6S", "6C", Some((true, false))), None);
    }

    #[test]
    fn a_face_tells_a_card_from_those_whose_indices_look_like_its_own() {
        let (deck, six) = deck_and_face("alike", "6S");
        let alike = deck.looking_like("6S");
        assert!(
            !alike.is_empty() && !alike.contains(&"6S".to_owned()),
            "{alike:?}"
        );
        let size = deck.face_size().expect("faces");
        let all = vec![true; (size.width * size.height) as usize];
        let tells = |card: &str, others: &[String]| {
            deck.face_tells_from(&six, &scale(2.0), card, others, &all, &mut None)
                .expect("told")
        };
        // These faces differ by their pips' layout and a small suit mark: the 6♠'s face
        // tells it from every other rank whose index looks like a 6's…
        let other_ranks: Vec<String> = alike
            .iter()
            .filter(|c| !c.starts_with('6'))
            .cloned()
            .collect();
        assert!(!other_ranks.is_empty());
        assert!(tells("6S", &other_ranks));
        // …but not from the other 6s, so the card is not vouched for.
        assert!(!tells("6S", &alike));
        // Nor does it make the card a 6♣, nor tell it from nothing.
        assert!(!tells("6C", &["6S".to_owned()]));
        assert!(!tells("6S", &[]));
    }

    /// The reader's deck made from [`faces`] (in a folder removed again).
    fn test_deck(name: &str, alike: bool) -> Deck {
        let dir = std::env::temp_dir().join(format!("croupier-{name}-{}", std::process::id()));
        faces(&dir, alike);
        let deck = Deck::from_faces(&dir, name);
        let _ = std::fs::remove_dir_all(&dir);
        Deck::load(&deck.expect("deck")).expect("load")
    }

    /// A grey index on paper as the reader warps its window: `top` and `bottom` px of paper
    /// above and below it, the search margin at its sides.
    fn on_paper(index: &Mat, top: i32, bottom: i32) -> Mat {
        let m = (SEARCH_MM * MATCH_PX_PER_MM).round() as i32;
        let mut padded = Mat::default();
        core::copy_make_border(
            index,
            &mut padded,
            top,
            bottom,
            m,
            m,
            core::BORDER_CONSTANT,
            Scalar::all(240.0),
        )
        .expect("border");
        padded
    }

    #[test]
    fn the_first_look_passes_an_index_and_stops_what_is_none() {
        let deck = test_deck("glance", true);
        // A window as the reader warps it: the index with 3.5 mm of paper round it, at half
        // the matching scale.
        let window = |index: &Mat| {
            let m = (SEARCH_MM * MATCH_PX_PER_MM).round() as i32;
            let padded = on_paper(index, m, m);
            let mut half = Mat::default();
            let size = Size::new(padded.cols() / 2, padded.rows() / 2);
            imgproc::resize(&padded, &mut half, size, 0.0, 0.0, imgproc::INTER_AREA)
                .expect("halve");
            Window::new(Gray::from_mat(&half).expect("grey"))
        };
        let (_, index) = deck.whole.first().expect("a template");
        let (_, _, seen) = deck.glance(&window(index));
        assert!(seen > 0.5, "{seen}");
        // Blank paper, and a chip's rim where the index would be.
        let mut blank = index.try_clone().expect("copy");
        blank.set_to_def(&Scalar::all(240.0)).expect("blank");
        assert!(deck.glance(&window(&blank)).2 < GLANCE_MIN);
        let mut chip = blank.try_clone().expect("copy");
        let (c, r) = (
            Point::new(chip.cols() / 2, chip.rows() / 2),
            chip.cols() / 2,
        );
        imgproc::circle(&mut chip, c, r, Scalar::all(30.0), 3, imgproc::LINE_8, 0).expect("circle");
        let (_, _, chip_seen) = deck.glance(&window(&chip));
        assert!(chip_seen < GLANCE_MIN, "{chip_seen}");
    }

    #[test]
    fn a_deck_printing_another_index_bottom_right_gets_templates_for_that_corner() {
        let root = std::env::temp_dir().join(format!("croupier-faces-{}", std::process::id()));
        let (alike, unlike) = (root.join("alike"), root.join("unlike"));
        faces(&alike, true);
        faces(&unlike, false);
        let both = Deck::from_faces(&alike, "alike");
        let own = Deck::from_faces(&unlike, "unlike");
        let _ = std::fs::remove_dir_all(&root);
        let (both, own) = (both.expect("alike deck"), own.expect("unlike deck"));
        assert!(both.bottom_right.is_empty() && both.faces.is_empty());
        assert_eq!(own.bottom_right.len(), 52);
        assert_eq!(own.faces.len(), 52);
        // And the reader loads a matcher for that corner from them.
        let (both, own) = (
            Deck::load(&both).expect("load"),
            Deck::load(&own).expect("load"),
        );
        assert!(both.bottom_right.is_none() && !both.climb);
        assert!(own.climb && own.bottom_right.as_ref().is_some_and(|b| b.climb));
        assert!(both.faces.is_empty() && own.faces.len() == 52);
    }

    #[test]
    fn an_index_cut_by_the_window_edge_is_no_witness() {
        let deck = test_deck("edge", true);
        let (card, index) = deck.whole.first().expect("a template");
        let m = (SEARCH_MM * MATCH_PX_PER_MM).round() as i32;
        let colour = |grey: &Mat| {
            let mut colour = Mat::default();
            imgproc::cvt_color_def(grey, &mut colour, imgproc::COLOR_GRAY2BGR).expect("bgr");
            colour
        };
        // Each from where a first look would have found its index.
        let read = |colour: &Mat, glanced: (usize, usize)| {
            let window = Window::new(Gray::from_mat(colour).expect("grey"));
            deck.best(&window, colour, glanced).expect("best")
        };
        let whole = read(&colour(&on_paper(index, m, m)), (m as usize, m as usize));
        assert_eq!(whole.as_ref().map(|r| r.0.as_str()), Some(card.as_str()));
        // The same window with the outline 5 mm off: the index's top cut away.
        let shift = (5.0 * MATCH_PX_PER_MM) as i32;
        let cut = Mat::roi(
            index,
            core::Rect::new(0, shift - m, index.cols(), index.rows() - (shift - m)),
        )
        .expect("cut")
        .try_clone()
        .expect("copy");
        let cut_window = colour(&on_paper(&cut, 0, m + shift));
        assert_eq!(read(&cut_window, (m as usize, 0)), None);
        // Such a window is moved up over the index by at most the search margin; the whole
        // one is not moved.
        let grey = |c: &Mat| Window::new(Gray::from_mat(c).expect("grey"));
        let (dx, dy) = deck
            .index_off_middle(&grey(&cut_window), (m as usize, 0))
            .expect("an index cut at the top");
        let reach = SEARCH_MM * MATCH_PX_PER_MM;
        assert!(
            dx.abs() <= 1.0 && dy < -reach / 2.0 && dy >= -reach,
            "{dx}, {dy}"
        );
        let whole_window = colour(&on_paper(index, m, m));
        assert_eq!(
            deck.index_off_middle(&grey(&whole_window), (m as usize, m as usize)),
            None
        );
    }

    #[test]
    fn an_index_half_under_a_card_is_read_over_what_shows_of_it() {
        let deck = test_deck("uncovered", true);
        let (card, index) = deck
            .whole
            .iter()
            .find(|(card, _)| card == "KD")
            .expect("K♦");
        let m = (SEARCH_MM * MATCH_PX_PER_MM).round() as i32;
        let mut window = on_paper(index, m, m);
        // Another card over its lower part: its edge, its paper and a pip of its own.
        let edge = window.rows() * 11 / 20;
        let (w, h) = (window.cols(), window.rows());
        imgproc::rectangle_def(
            &mut window,
            core::Rect::new(0, edge, w, h - edge),
            Scalar::all(250.0),
        )
        .expect("paper");
        imgproc::line_def(
            &mut window,
            Point::new(0, edge),
            Point::new(w, edge),
            Scalar::all(30.0),
        )
        .expect("edge");
        imgproc::circle(
            &mut window,
            Point::new(w / 3, edge + 25),
            12,
            Scalar::all(20.0),
            -1,
            imgproc::LINE_8,
            0,
        )
        .expect("pip");
        let window = Window::new(Gray::from_mat(&window).expect("grey"));
        let visible_from = |row: i32| -> Vec<bool> {
            (0..window.h)
                .flat_map(|y| (0..window.w).map(move |_| (y as i32) < row))
                .collect()
        };
        let seen = deck
            .best_visible(&window, &visible_from(edge))
            .expect("read over what shows");
        assert_eq!(&seen.0, card);
        assert!(seen.1 > 0.9 && seen.2 > 0.3, "{seen:?}");
        // The whole window, the card over it included, fits it worse.
        let whole = deck.best_visible(&window, &vec![true; window.px.len()]);
        assert!(
            whole.as_ref().is_none_or(|w| w.1 < seen.1 - 0.1),
            "{whole:?}"
        );
        // Less than half of it showing is no witness.
        assert_eq!(
            deck.best_visible(&window, &visible_from(m + index.rows() * 2 / 5)),
            None
        );
    }

    #[test]
    fn a_face_tells_apart_two_cards_whose_indices_look_alike() {
        let dir = std::env::temp_dir().join(format!("croupier-face-{}", std::process::id()));
        faces(&dir, false);
        let templates = Deck::from_faces(&dir, "unlike");
        let read = |card: &str| crate::read_image(&dir.join(format!("{card}.png")));
        let (six, nine) = (read("6S"), read("9S"));
        let _ = std::fs::remove_dir_all(&dir);
        let deck = Deck::load(&templates.expect("deck")).expect("load");
        let (six, nine) = (six.expect("6S"), nine.expect("9S"));
        // The faces are drawn at 2 px/mm.
        let card_to_face = scale(2.0);
        let said = |card: &str| (card.to_owned(), 0.9, 0.5);
        let tell_over = |frame: &Mat, a: &str, b: &str, visible: Option<&[bool]>| {
            let question = FaceQuestion::new(0, said(a), said(b), false);
            deck.told_by_face(frame, &card_to_face, &question, visible, &mut None)
                .expect("told")
                .map(|r| r.0)
        };
        let tell = |frame: &Mat, a: &str, b: &str| tell_over(frame, a, b, None);
        assert_eq!(tell(&six, "6S", "9S").as_deref(), Some("6S"));
        assert_eq!(tell(&six, "9S", "6S").as_deref(), Some("6S"));
        // Either way round.
        let mut turned = Mat::default();
        core::rotate(&nine, &mut turned, core::ROTATE_180).expect("turn");
        assert_eq!(tell(&turned, "6S", "9S").as_deref(), Some("9S"));
        // Blank felt tells nothing; nor does a card the deck has no face for.
        let felt = Mat::new_rows_cols_with_default(176, 126, core::CV_8UC3, Scalar::all(60.0))
            .expect("felt");
        assert_eq!(tell(&felt, "6S", "9S"), None);
        assert_eq!(tell(&six, "6S", "XX"), None);
        // A 6♠ whose lower half lies under a 9♠ (the 9's lower half over it, its pips where a
        // 9's lie): compared over its upper half alone, where the two faces differ, it is the
        // 6♠.
        let mut covered = six.try_clone().expect("copy");
        let lower = core::Rect::new(0, 88, 126, 88);
        Mat::roi(&nine, lower)
            .expect("roi")
            .copy_to(&mut Mat::roi_mut(&mut covered, lower).expect("roi"))
            .expect("copy");
        let size = deck.face_size().expect("faces");
        let (w, h) = (size.width as usize, size.height as usize);
        let shown = |above_mm: f64| -> Vec<bool> {
            (0..w * h)
                .map(|i| {
                    let c = face_px_to_card().apply(Pt::new((i % w) as f64, (i / w) as f64));
                    c.y < above_mm
                })
                .collect()
        };
        assert_eq!(
            tell_over(&covered, "9S", "6S", Some(&shown(44.0))).as_deref(),
            Some("6S")
        );
        // A sliver shown tells nothing.
        assert_eq!(tell_over(&covered, "9S", "6S", Some(&shown(15.0))), None);
    }

    #[test]
    fn a_templates_offset_from_the_mean_index_is_where_the_mean_fits_over_it() {
        // A dark block at (5, 10) in the template and at (7, 9) in the mean index: the mean
        // lines up with the template placed 2 px left of it and 1 px lower.
        let picture = |x0: usize, y0: usize| {
            let mut px = vec![0.9f32; 20 * 30];
            for y in y0..y0 + 6 {
                for x in x0..x0 + 4 {
                    px[y * 20 + x] = 0.1;
                }
            }
            Gray { w: 20, h: 30, px }
        };
        let template = picture(5, 10);
        let mean = Pattern::new(&picture(7, 9), 0..30).expect("not flat");
        assert_eq!(mean_offset(&mean, &template), (-2, 1));
        let same = Pattern::new(&template, 0..30).expect("not flat");
        assert_eq!(mean_offset(&same, &template), (0, 0));
    }

    #[test]
    fn only_a_six_and_a_nine_have_a_turned_twin() {
        assert_eq!(turned_twin("6D").as_deref(), Some("9D"));
        assert_eq!(turned_twin("9S").as_deref(), Some("6S"));
        for card in ["TD", "8H", "AS", "QC", ""] {
            assert_eq!(turned_twin(card), None, "{card}");
        }
    }

    #[test]
    fn hues_follow_opencv() {
        assert!((hue_of([0.0, 0.0, 255.0]) - 0.0).abs() < 1e-9); // red
        assert!((hue_of([0.0, 255.0, 0.0]) - 60.0).abs() < 1e-9); // green
        assert!((hue_of([255.0, 0.0, 0.0]) - 120.0).abs() < 1e-9); // blue
        assert!((hue_of([255.0, 0.0, 255.0]) - 150.0).abs() < 1e-9); // magenta
    }

    #[test]
    fn two_templates_each_at_its_own_place_are_told_apart_where_they_differ() {
        // Two 12 × 12 indices with one rank bar alike and a suit mark that differs (a bar
        // across against a bar down), in a 20 × 20 window showing the first at (4, 5).
        let index = |across: bool| {
            let mut px = vec![0.9f32; 144];
            for r in 0..5 {
                for c in 2..10 {
                    px[r * 12 + c] = if c < 4 { 0.1 } else { 0.9 };
                }
            }
            for i in 0..8 {
                for j in 0..3 {
                    let (r, c) = if across {
                        (7 + j, 2 + i)
                    } else {
                        (4 + i, 5 + j)
                    };
                    px[r * 12 + c] = 0.1;
                }
            }
            Gray { w: 12, h: 12, px }
        };
        let (first, second) = (index(true), index(false));
        let mut px = vec![0.9f32; 400];
        for r in 0..12 {
            for c in 0..12 {
                px[(r + 5) * 20 + c + 4] = first.px[r * 12 + c];
            }
        }
        let window = Window::new(Gray { w: 20, h: 20, px });
        let a = Pattern::new(&first, 0..12).expect("not flat");
        let b = Pattern::new(&second, 0..12).expect("not flat");
        // The second placed a pixel off (its own best place): still the first is shown.
        let (fa, fb) = placed_versus(&window, (&a, (4, 5)), (&b, (5, 5)));
        assert!(fa - fb >= SUITS_TOLD_APART, "{fa} against {fb}");
        let (fb, fa) = placed_versus(&window, (&b, (4, 5)), (&a, (4, 5)));
        assert!(fa - fb >= SUITS_TOLD_APART, "{fa} against {fb}");
        // The same template twice differs nowhere and tells nothing.
        assert_eq!(
            placed_versus(&window, (&a, (4, 5)), (&a, (4, 5))),
            (0.0, 0.0)
        );
    }

    #[test]
    fn correlation_finds_a_pattern_and_ignores_brightness() {
        // A 6 × 4 picture with a dark bar, and a 10 × 8 window holding it at (3, 2), brighter.
        let mut tpl = vec![0.9f32; 24];
        for r in 0..4 {
            tpl[r * 6 + 2] = 0.1;
            tpl[r * 6 + 3] = 0.1;
        }
        let pattern = Pattern::new(
            &Gray {
                w: 6,
                h: 4,
                px: tpl.clone(),
            },
            0..4,
        )
        .expect("not flat");
        let mut px = vec![0.95f32; 80];
        for r in 0..4 {
            for c in 0..6 {
                px[(r + 2) * 10 + c + 3] = 0.5 * tpl[r * 6 + c] + 0.4;
            }
        }
        let window = Window::new(Gray { w: 10, h: 8, px });
        let at_place = pattern.ncc(&window, 3, 2);
        assert!((at_place - 1.0).abs() < 1e-4, "{at_place}");
        assert!(pattern.ncc(&window, 1, 1) < 0.9);
        // A patch that does not fit scores nothing.
        assert_eq!(pattern.ncc(&window, 5, 5), 0.0);
    }

    #[test]
    fn correlation_ignores_a_brightness_ramp_across_the_patch() {
        // An index-like picture (a ring and a bar), then the same picture under glare: a
        // ramp brightening it towards one corner, its contrast a little washed out.
        let (w, h) = (12usize, 16usize);
        let ink = |c: usize, r: usize| {
            let (dx, dy) = (c as f32 - 5.5, r as f32 - 5.0);
            let ring = (dx * dx + dy * dy).sqrt();
            (3.0..4.5).contains(&ring) || (r >= 11 && (3..9).contains(&c))
        };
        let picture: Vec<f32> = (0..w * h)
            .map(|i| if ink(i % w, i / w) { 0.15 } else { 0.85 })
            .collect();
        let pattern = Pattern::new(
            &Gray {
                w,
                h,
                px: picture.clone(),
            },
            0..h,
        )
        .expect("not flat");
        let glared: Vec<f32> = picture
            .iter()
            .enumerate()
            .map(|(i, v)| 0.8 * v + 0.012 * (i % w) as f32 + 0.01 * (i / w) as f32)
            .collect();
        let score = pattern.ncc(&Window::new(Gray { w, h, px: glared }), 0, 0);
        assert!((score - 1.0).abs() < 1e-3, "{score}");
        // And a ramp alone is no picture at all.
        let ramp: Vec<f32> = (0..w * h)
            .map(|i| 0.3 + 0.02 * (i % w) as f32 + 0.01 * (i / w) as f32)
            .collect();
        let flat = pattern.ncc(&Window::new(Gray { w, h, px: ramp }), 0, 0);
        assert!(flat.abs() < 0.05, "{flat}");
    }

    #[test]
    fn pieces_of_one_edge_are_joined_and_parallel_edges_are_not() {
        let pieces = vec![
            // One edge broken in three (gaps of 5 and 6 mm), a pixel of wobble.
            (Pt::new(0.0, 0.0), Pt::new(12.0, 0.5)),
            (Pt::new(17.0, 0.6), Pt::new(30.0, 1.0)),
            (Pt::new(36.0, 1.4), Pt::new(48.0, 1.9)),
            // The next card's edge, parallel 5 mm away.
            (Pt::new(0.0, 5.0), Pt::new(14.0, 5.5)),
            // And a piece on the first line but 19 mm on: another card's.
            (Pt::new(67.0, 2.8), Pt::new(80.0, 3.3)),
        ];
        let mut joined = join_collinear(pieces.clone(), |_, _| 0.0);
        joined.sort_by(|a, b| (b.1.sub(b.0).len()).total_cmp(&a.1.sub(a.0).len()));
        assert_eq!(joined.len(), 3, "{joined:?}");
        let longest = joined[0].1.sub(joined[0].0).len();
        assert!((longest - 48.0).abs() < 0.5, "{longest}");
        // With the edge running on across the 19 mm between (a pip bent its chain aside
        // there), the last piece is the same edge; the parallel one is still another.
        let ink_on_first_line = |a: Pt, b: Pt| if a.y < 4.0 && b.y < 4.0 { 1.0 } else { 0.0 };
        let mut joined = join_collinear(pieces.clone(), ink_on_first_line);
        joined.sort_by(|a, b| (b.1.sub(b.0).len()).total_cmp(&a.1.sub(a.0).len()));
        assert_eq!(joined.len(), 2, "{joined:?}");
        let longest = joined[0].1.sub(joined[0].0).len();
        assert!((longest - 80.0).abs() < 0.5, "{longest}");
        // Half inked is not enough: two pieces of two cards' edges, lined up by chance.
        let mut joined = join_collinear(pieces, |_, _| 0.5);
        joined.sort_by(|a, b| (b.1.sub(b.0).len()).total_cmp(&a.1.sub(a.0).len()));
        assert_eq!(joined.len(), 3, "{joined:?}");
    }
}
