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
//! 3. Each card is warped straight from the original frame; both corner indices (top left, and
//!    bottom right turned upright) are compared with the deck's 52 templates by normalised
//!    correlation. A card is reported only when a readable index matches one card clearly
//!    better than every other and no readable index says otherwise.

use opencv::core::{self, Mat, Point, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Serialize;

use crate::calibration::{
    from_hex, to_hex, Calibration, DeckTemplates, IndexArea, SizeMm, Template, Thresholds,
};
use crate::geometry::{centroid, portrait_order, Homography, Pt};
use crate::VisionError;

/// Resolution the corner indices are compared at.
pub const INDEX_PX_PER_MM: f64 = 1.5;
/// Ink redness above this is red, below [`BLACK_INK`] black, between: unclear.
const RED_INK: f64 = 0.05;
const BLACK_INK: f64 = 0.02;
/// What a suit of the wrong colour loses.
const INK_PENALTY: f64 = 0.3;
/// Extra blur (σ, px) on the templates, for the camera's softness.
const TEMPLATE_SOFTEN: f64 = 0.9;
/// How far (mm) the index may sit from where the card's outline puts it.
const SEARCH_MM: f64 = 2.0;

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
    /// (card, rank part, suit part).
    templates: Vec<(String, Mat, Mat)>,
    whole: Vec<(String, Mat)>,
    /// Mean ink chromaticity per suit (S, H, D, C), when the faces gave it.
    suit_ink: [Option<[f64; 2]>; 4],
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
            let cut = crop_index(&scaled, &index)?;
            let mut colour_scaled = Mat::default();
            imgproc::resize(
                &colour,
                &mut colour_scaled,
                size,
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )?;
            let ink = ink_chroma(&crop_index(&colour_scaled, &index)?)?;
            let mut blurred = Mat::default();
            imgproc::gaussian_blur_def(&cut, &mut blurred, Size::new(3, 3), 0.6)?;
            let bytes = blurred.data_bytes()?.to_vec();
            templates.push(Template {
                card: code,
                width: blurred.cols() as u32,
                height: blurred.rows() as u32,
                pixels: to_hex(&bytes),
                ink,
            });
        }
        if !missing.is_empty() {
            return Err(VisionError::Deck(format!(
                "{}: no face for {} (name each image by its card: AS.png, TD.png, 9H.png…)",
                dir.display(),
                missing.join(" ")
            )));
        }
        Ok(DeckTemplates {
            name: name.to_owned(),
            px_per_mm: INDEX_PX_PER_MM,
            index_mm: index,
            card_mm: card,
            templates,
        })
    }

    /// The templates of a calibration, decoded.
    pub fn load(t: &DeckTemplates) -> Result<Deck, VisionError> {
        let mut whole = Vec::new();
        for tpl in &t.templates {
            let bytes = from_hex(&tpl.pixels)
                .filter(|b| b.len() == (tpl.width * tpl.height) as usize)
                .ok_or_else(|| {
                    VisionError::Deck(format!(
                        "template {} is damaged; rebuild the deck",
                        tpl.card
                    ))
                })?;
            let flat = Mat::from_slice(&bytes)?;
            let m = flat.reshape(1, tpl.height as i32)?.try_clone()?;
            // A camera sees the index softer than the face files show it.
            let mut soft = Mat::default();
            imgproc::gaussian_blur_def(&m, &mut soft, Size::new(5, 5), TEMPLATE_SOFTEN)?;
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
        let mut templates = Vec::new();
        for (card, m) in &whole {
            let (w, h) = (m.cols(), m.rows());
            let rank = Mat::roi(m, core::Rect::new(0, 0, w, split))?.try_clone()?;
            let suit = Mat::roi(m, core::Rect::new(0, split, w, h - split))?.try_clone()?;
            templates.push((card.clone(), rank, suit));
        }
        Ok(Deck {
            name: t.name.clone(),
            index: t.index_mm,
            card: t.card_mm,
            templates,
            whole,
            suit_ink,
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

    /// The card one index picture (a search window) shows: its best rank and best suit, each
    /// with its score and its margin over the runner-up. Returns (card, score, margin) where
    /// score and margin are the weaker of the two.
    fn best(
        &self,
        window: &Mat,
        ink: Option<[f64; 2]>,
    ) -> Result<Option<(String, f64, f64)>, VisionError> {
        let mut rank_best: [f64; 13] = [-1.0; 13];
        let mut suit_best: [f64; 4] = [-1.0; 4];
        let mut result = Mat::default();
        for ((card, rank, suit), (_, whole)) in self.templates.iter().zip(&self.whole) {
            let mut chars = card.chars();
            let (Some(r), Some(s)) = (chars.next(), chars.next()) else {
                continue;
            };
            let (Some(ri), Some(si)) = (
                crate::calibration::RANKS.iter().position(|x| *x == r),
                crate::calibration::SUITS.iter().position(|x| *x == s),
            ) else {
                continue;
            };
            if whole.cols() > window.cols() || whole.rows() > window.rows() {
                continue;
            }
            // Align on the whole index first; then judge rank and suit at that one place, so
            // neither part can drift to a spurious match of its own.
            imgproc::match_template_def(window, whole, &mut result, imgproc::TM_CCOEFF_NORMED)?;
            let mut at = Point::default();
            core::min_max_loc(&result, None, None, None, Some(&mut at), &core::no_array())?;
            let part = |tpl: &Mat, dy: i32| -> Result<f64, VisionError> {
                let roi = Mat::roi(
                    window,
                    core::Rect::new(at.x, at.y + dy, tpl.cols(), tpl.rows()),
                )?;
                let mut one = Mat::default();
                imgproc::match_template_def(&roi, tpl, &mut one, imgproc::TM_CCOEFF_NORMED)?;
                let v = *one.at_2d::<f32>(0, 0)?;
                Ok(if v.is_finite() { f64::from(v) } else { -1.0 })
            };
            rank_best[ri] = rank_best[ri].max(part(rank, 0)?);
            suit_best[si] = suit_best[si].max(part(suit, rank.rows())?);
        }
        let top2 = |v: &[f64]| -> (usize, f64, f64) {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|a, b| v[*b].total_cmp(&v[*a]));
            (idx[0], v[idx[0]], v[idx[0]] - v[idx[1]])
        };
        // Red suits against black ones by the ink's colour, before any shape: at a millimetre
        // a pixel, ♥/♠ and ♦/♣ outlines are close, their colours are not. A window whose
        // colour is unclear (glare, shadow) leaves the suits to their shapes.
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
        let (ri, rs, rm) = top2(&rank_best);
        let (si, ss, sm) = top2(&suit_best);
        let card = format!(
            "{}{}",
            crate::calibration::RANKS[ri],
            crate::calibration::SUITS[si]
        );
        Ok(Some((card, rs.min(ss), rm.min(sm))))
    }

    /// Number of whole-index templates (52 for a full deck).
    pub fn len(&self) -> usize {
        self.whole.len()
    }

    pub fn is_empty(&self) -> bool {
        self.whole.is_empty()
    }
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
    /// Where the rank part ends, in template rows (for the report).
    pub fn split_row(&self) -> i32 {
        self.templates.first().map_or(0, |t| t.1.rows())
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

/// A card-sized rectangle proposed by a corner of a blob (table plane, mm).
#[derive(Debug, Clone, Copy)]
struct Proposal {
    quad: [Pt; 4],
    coverage: f64,
}

/// The card reader for one table.
#[derive(Debug)]
pub struct CardReader {
    deck: Deck,
    table: crate::calibration::TableGeometry,
    image_from_table: Homography,
    thresholds: Thresholds,
}

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
        Ok(CardReader {
            deck: Deck::load(deck)?,
            image_from_table: table.image_from_table()?,
            table,
            thresholds: cal.thresholds,
        })
    }

    /// Reads every card of one BGR frame.
    pub fn read(&self, frame: &Mat) -> Result<FrameReads, VisionError> {
        let (w, h) = (self.table.table_mm.width, self.table.table_mm.height);
        let plane = warp(
            frame,
            &self.image_from_table,
            Size::new(w.round() as i32, h.round() as i32),
        )?;
        let mask = self.card_stock(&plane)?;
        let proposals = self.propose(&mask)?;
        if let Ok(dir) = std::env::var("CROUPIER_VISION_DEBUG") {
            // For a technician tuning thresholds: the table plane and what counted as card stock.
            let _ = opencv::imgcodecs::imwrite_def(&format!("{dir}/plane.png"), &plane);
            let _ = opencv::imgcodecs::imwrite_def(&format!("{dir}/stock.png"), &mask);
        }
        let mut out = FrameReads::default();
        for p in proposals {
            let c = centroid(&p.quad);
            out.found_mm.push([c.x, c.y]);
            match self.read_card(frame, &p.quad)? {
                Some(read) => out.cards.push(read),
                None => out.rejected += 1,
            }
        }
        Ok(out)
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
        let mut mask = Mat::default();
        core::in_range(
            &hsv,
            &Scalar::new(0.0, 0.0, min_v, 0.0),
            &Scalar::new(180.0, self.thresholds.card_max_saturation, 255.0, 0.0),
            &mut mask,
        )?;
        // Pips and court pictures leave holes; closing fills them, opening drops specks.
        let kernel = imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(5, 5))?;
        let mut closed = Mat::default();
        imgproc::morphology_ex_def(&mask, &mut closed, imgproc::MORPH_CLOSE, &kernel)?;
        let mut opened = Mat::default();
        let small = imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(3, 3))?;
        imgproc::morphology_ex_def(&closed, &mut opened, imgproc::MORPH_OPEN, &small)?;
        Ok(opened)
    }

    fn propose(&self, mask: &Mat) -> Result<Vec<Proposal>, VisionError> {
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
        let bytes = solid.data_bytes()?;
        let cols = mask.cols().max(1) as usize;
        let rows = mask.rows().max(1) as usize;
        let covered = |quad: &[Pt; 4]| -> f64 {
            // Sample the rectangle on a 2 mm grid, a little inside its edges.
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
        };
        let mut proposals: Vec<Proposal> = Vec::new();
        for contour in contours.iter() {
            let area = imgproc::contour_area_def(&contour)?;
            if area < 0.4 * card_area || area > 12.0 * card_area {
                continue;
            }
            let mut poly = Vector::<Point>::new();
            imgproc::approx_poly_dp(&contour, &mut poly, 3.0, true)?;
            let pts: Vec<Pt> = poly
                .iter()
                .map(|p| Pt::new(f64::from(p.x), f64::from(p.y)))
                .collect();
            let n = pts.len();
            if n < 3 {
                continue;
            }
            let orientation: f64 = (0..n)
                .map(|i| pts[i].cross(pts[(i + 1) % n]))
                .sum::<f64>()
                .signum();
            let dense: Vec<Pt> = contour
                .iter()
                .map(|p| Pt::new(f64::from(p.x), f64::from(p.y)))
                .collect();
            for i in 0..n {
                let (prev, at, next) = (pts[(i + n - 1) % n], pts[i], pts[(i + 1) % n]);
                let (a, b) = (prev.sub(at), next.sub(at));
                if a.len() < 8.0 || b.len() < 8.0 {
                    continue;
                }
                let cos = a.dot(b) / (a.len() * b.len());
                // Convex corners only: the turn has the contour's own orientation.
                let turn = at.sub(prev).cross(next.sub(at));
                if cos.abs() > 0.30 || turn * orientation <= 0.0 {
                    continue;
                }
                // The simplified polygon's vertices are a few pixels off; the edges' own points
                // (all of them, least squares) give the card's directions to a fraction of a
                // degree, which the index reading needs.
                let (at, du) = match (fit_edge(&dense, at, next), fit_edge(&dense, at, prev)) {
                    (Some((pb, db)), Some((pa, da))) => {
                        let db = if db.dot(b) < 0.0 { db.scale(-1.0) } else { db };
                        let _ = da;
                        match intersect(pb, db, pa, da) {
                            Some(corner) if corner.sub(at).len() < 6.0 => (corner, db),
                            _ => (at, b.scale(1.0 / b.len())),
                        }
                    }
                    _ => (at, b.scale(1.0 / b.len())),
                };
                // The other edge, made exactly perpendicular, on a's side.
                let mut dv = Pt::new(-du.y, du.x);
                if dv.dot(a) < 0.0 {
                    dv = dv.scale(-1.0);
                }
                let long_b = b.len() > (cw + ch) / 2.0 + 4.0;
                let long_a = a.len() > (cw + ch) / 2.0 + 4.0;
                let mut options = Vec::new();
                if !long_a {
                    options.push((ch, cw));
                }
                if !long_b {
                    options.push((cw, ch));
                }
                if long_a && long_b {
                    continue;
                }
                for (lu, lv) in options {
                    let quad = [
                        at,
                        at.add(du.scale(lu)),
                        at.add(du.scale(lu)).add(dv.scale(lv)),
                        at.add(dv.scale(lv)),
                    ];
                    let coverage = covered(&quad);
                    if coverage >= self.thresholds.card_min_coverage {
                        proposals.push(Proposal { quad, coverage });
                    }
                }
            }
        }
        // One proposal per card: the best covered among those with about the same centre.
        proposals.sort_by(|a, b| b.coverage.total_cmp(&a.coverage));
        let mut kept: Vec<Proposal> = Vec::new();
        for p in proposals {
            let c = centroid(&p.quad);
            if kept.iter().all(|k| centroid(&k.quad).sub(c).len() > 25.0) {
                kept.push(p);
            }
        }
        Ok(kept)
    }

    /// Reads one proposed card; `None` when it cannot be read with confidence.
    fn read_card(&self, frame: &Mat, quad_mm: &[Pt; 4]) -> Result<Option<CardRead>, VisionError> {
        let q = portrait_order(*quad_mm);
        let (cw, ch) = (self.deck.card.width, self.deck.card.height);
        let canonical = [
            Pt::new(0.0, 0.0),
            Pt::new(cw, 0.0),
            Pt::new(cw, ch),
            Pt::new(0.0, ch),
        ];
        let Some(table_from_card) = Homography::from_points(&canonical, &q) else {
            return Ok(None);
        };
        let image_from_card = self.image_from_table.then_after(&table_from_card);
        let idx = self.deck.index;
        let m = SEARCH_MM;
        let win = Size::new(
            ((idx.width + 2.0 * m) * INDEX_PX_PER_MM).round() as i32,
            ((idx.height + 2.0 * m) * INDEX_PX_PER_MM).round() as i32,
        );
        let px = scale(1.0 / INDEX_PX_PER_MM);
        // Top-left index: window pixels → card mm.
        let tl = translate(idx.x - m, idx.y - m).then_after(&px);
        // Bottom-right index, turned upright: the card rotated by 180° about its centre.
        let rot = Homography([-1.0, 0.0, cw, 0.0, -1.0, ch, 0.0, 0.0, 1.0]);
        let br = rot.then_after(&tl);
        let mut reads = Vec::new();
        for corner in [tl, br] {
            let colour = warp(frame, &image_from_card.then_after(&corner), win)?;
            // Ink from inside the index only: the window's margin can reach past the card's
            // edge onto the felt, whose colour would pass for ink.
            let inner = core::Rect::new(
                (m * INDEX_PX_PER_MM).round() as i32,
                (m * INDEX_PX_PER_MM).round() as i32,
                (idx.width * INDEX_PX_PER_MM).round() as i32,
                (idx.height * INDEX_PX_PER_MM).round() as i32,
            );
            let ink = ink_chroma(&Mat::roi(&colour, inner)?.try_clone()?)?;
            let window = grey(&colour)?;
            let mut blurred = Mat::default();
            imgproc::gaussian_blur_def(&window, &mut blurred, Size::new(3, 3), 0.6)?;
            let best = self.deck.best(&blurred, ink)?;
            if let Ok(dir) = std::env::var("CROUPIER_VISION_DEBUG") {
                let c = centroid(&q);
                let name = format!("{dir}/index-{:.0}-{:.0}-{}.png", c.x, c.y, reads.len());
                let _ = opencv::imgcodecs::imwrite_def(&name, &blurred);
                eprintln!("{name}: {best:?} ink {ink:?}");
            }
            reads.push(best);
        }
        let t = &self.thresholds;
        let readable: Vec<&(String, f64, f64)> = reads
            .iter()
            .flatten()
            .filter(|(_, score, _)| *score >= t.card_unreadable_below)
            .collect();
        let Some(best) = readable.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            return Ok(None);
        };
        // Reject rather than guess: a readable index that says another card vetoes.
        if readable.iter().any(|r| r.0 != best.0) {
            return Ok(None);
        }
        // Two indices agreeing are two independent witnesses; one alone must be clear.
        let agreeing = readable.len() >= 2;
        let (min_score, min_margin) = if agreeing {
            (t.card_min_score, t.card_min_margin / 4.0)
        } else {
            (t.card_min_score + 0.1, t.card_min_margin)
        };
        if best.1 < min_score || best.2 < min_margin {
            return Ok(None);
        }
        let centre = centroid(&q);
        let corners = q.map(|p| {
            let i = self.image_from_table.apply(p);
            [i.x, i.y]
        });
        Ok(Some(CardRead {
            card: best.0.clone(),
            zone: self.table.zone_at(centre).map(str::to_owned),
            confidence: best.1.clamp(0.0, 1.0),
            margin: best.2,
            corners_px: corners,
            centre_mm: [centre.x, centre.y],
        }))
    }
}

/// The line through the contour points that lie along the segment `from → to` (within 2 px,
/// away from both ends): a point on it and its unit direction.
fn fit_edge(dense: &[Pt], from: Pt, to: Pt) -> Option<(Pt, Pt)> {
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
            along > 4.0 && along < len - 4.0 && v.cross(u).abs() < 2.0
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
    // Principal direction of the scatter.
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    Some((c, Pt::new(angle.cos(), angle.sin())))
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

/// The median of a single-channel 8-bit image.
fn median_u8(img: &Mat) -> Result<f64, VisionError> {
    let mut hist = [0u64; 256];
    let m = if img.is_continuous() {
        img.clone()
    } else {
        img.try_clone()?
    };
    for b in m.data_bytes()? {
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
