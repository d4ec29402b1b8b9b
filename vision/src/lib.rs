//! Croupier's second witness: the cards on the layout and the roulette pocket, read from the
//! camera frames the video pipeline already decodes, with OpenCV (Debian's 4.6).
//!
//! A wrong read is worse than no read: every reader here rejects rather than guesses. A card is
//! reported only when its corner index matches one card of the table's own deck clearly better
//! than any other; a pocket only when the ball sits inside one pocket of the calibrated ring.
//!
//! - [`calibration`]: the per-table file (`calibration/<table>.json`): the table plane's
//!   homography from four reference points, the zones as polygons, the deck's templates, the
//!   wheel's geometry, the thresholds. Versioned; `croupier calibrate` writes it.
//! - [`cards`]: finds cards, corrects their perspective, reads rank and suit from the corner
//!   index, and assigns each to a zone.
//! - [`wheel`]: finds the ball at rest and the pocket it is in, on European or American wheels.
//! - [`tracker`]: turns per-frame reads into one `card.seen` per card that stays on the table.
//!
//! The image work is OpenCV's (imgproc); the decisions (thresholds, zones, tracking) are plain
//! Rust and unit-tested without images.

#![forbid(unsafe_code)]

pub mod calibration;
pub mod cards;
pub mod geometry;
pub mod tracker;
pub mod wheel;

pub use opencv;

/// Errors of the vision layer, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("deck: {0}")]
    Deck(String),
}

impl VisionError {
    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        VisionError::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Reads an image file (PNG, JPEG) as BGR.
pub fn read_image(path: &std::path::Path) -> Result<opencv::core::Mat, VisionError> {
    use opencv::prelude::*;
    let text = path
        .to_str()
        .ok_or_else(|| VisionError::file(path, "the path is not UTF-8"))?;
    let img = opencv::imgcodecs::imread(text, opencv::imgcodecs::IMREAD_COLOR)?;
    if img.empty() {
        return Err(VisionError::file(path, "not an image OpenCV can read"));
    }
    Ok(img)
}
