//! A table's calibration file: everything the recognisers need to know about one table, its
//! camera and its deck, in one versioned JSON file under `calibration/` (docs/vision.md).
//!
//! ```json
//! {"format": "croupier-calibration/1", "version": 3, "updated_utc": "…",
//!  "table": {"image": {"width": 1280, "height": 720}, "table_mm": {"width": 1000, "height": 600},
//!            "corners_px": [[x,y], [x,y], [x,y], [x,y]], "card_mm": {"width": 63, "height": 88},
//!            "zones": [{"name": "player", "polygon_mm": [[x,y], …]}, …]},
//!  "deck": {"name": "standard", "px_per_mm": 1.5, "index_mm": {…}, "templates": [{"card": "AS", …}]},
//!  "wheel": {"layout": "auto", "centre_px": [x,y], "pocket_ring_px": {"inner": r, "outer": r},
//!            "homography_wheel_to_px": [[…], […], […]]},
//!  "thresholds": {…}}
//! ```
//!
//! `corners_px` are where the table plane's corners (0,0), (width,0), (width,height),
//! (0,height) in millimetres appear in the camera image: the four reference points of the
//! homography. Every `croupier calibrate` run bumps `version`; the daemon journals each change.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::geometry::{point_in_polygon, Homography, Pt};
use crate::VisionError;

pub const FORMAT: &str = "croupier-calibration/1";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SizePx {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SizeMm {
    pub width: f64,
    pub height: f64,
}

/// A named area of the layout: `player`, `banker`, `dealer`, `box1`…
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    pub polygon_mm: Vec<[f64; 2]>,
}

/// The table plane as the camera sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableGeometry {
    pub image: SizePx,
    pub table_mm: SizeMm,
    pub corners_px: [[f64; 2]; 4],
    #[serde(default = "default_card")]
    pub card_mm: SizeMm,
    #[serde(default)]
    pub zones: Vec<Zone>,
}

fn default_card() -> SizeMm {
    SizeMm {
        width: 63.0,
        height: 88.0,
    }
}

impl TableGeometry {
    fn plane_corners(&self) -> [Pt; 4] {
        let (w, h) = (self.table_mm.width, self.table_mm.height);
        [
            Pt::new(0.0, 0.0),
            Pt::new(w, 0.0),
            Pt::new(w, h),
            Pt::new(0.0, h),
        ]
    }

    /// Table millimetres → image pixels.
    pub fn image_from_table(&self) -> Result<Homography, VisionError> {
        let px = self.corners_px.map(|[x, y]| Pt::new(x, y));
        Homography::from_points(&self.plane_corners(), &px).ok_or_else(|| {
            VisionError::Calibration(
                "the four table corners are degenerate (three in a line?); pick them again".into(),
            )
        })
    }

    /// The worst resolution (px per mm) at which the camera sees the zones: the smallest
    /// linear scale of the homography over their bounding box (sampled every 10 mm). The card
    /// reader needs 2.5 px/mm at 1280 × 720 (docs/vision.md, "Card camera"). `None` without
    /// zones.
    pub fn zones_min_px_per_mm(&self) -> Result<Option<f64>, VisionError> {
        let h = self.image_from_table()?;
        let pts: Vec<[f64; 2]> = self
            .zones
            .iter()
            .flat_map(|z| z.polygon_mm.iter().copied())
            .collect();
        if pts.is_empty() {
            return Ok(None);
        }
        let (x0, x1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
        let (y0, y1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
        let steps = |a: f64, b: f64| ((b - a) / 10.0).ceil().clamp(1.0, 1000.0) as usize;
        let (nx, ny) = (steps(x0, x1), steps(y0, y1));
        let mut worst = f64::MAX;
        for i in 0..=nx {
            for j in 0..=ny {
                let p = Pt::new(
                    x0 + (x1 - x0) * i as f64 / nx as f64,
                    y0 + (y1 - y0) * j as f64 / ny as f64,
                );
                // The Jacobian by differences over 0.1 mm, and its smaller singular value.
                let d = 0.1;
                let (c, ex, ey) = (
                    h.apply(p),
                    h.apply(Pt::new(p.x + d, p.y)),
                    h.apply(Pt::new(p.x, p.y + d)),
                );
                let (a, b) = (ex.sub(c).scale(1.0 / d), ey.sub(c).scale(1.0 / d));
                let (e, f, g) = (a.dot(a), a.dot(b), b.dot(b));
                let mean = (e + g) / 2.0;
                let spread = (((e - g) / 2.0).powi(2) + f * f).sqrt();
                worst = worst.min((mean - spread).max(0.0).sqrt());
            }
        }
        Ok(worst.is_finite().then_some(worst))
    }

    /// The zone a point of the table plane (mm) lies in.
    pub fn zone_at(&self, p: Pt) -> Option<&str> {
        self.zones.iter().find_map(|z| {
            let poly: Vec<Pt> = z.polygon_mm.iter().map(|[x, y]| Pt::new(*x, *y)).collect();
            point_in_polygon(p, &poly).then_some(z.name.as_str())
        })
    }
}

/// Where the corner index is on a card, in millimetres from the top-left corner of the face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexArea {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Default for IndexArea {
    fn default() -> Self {
        IndexArea {
            x: 0.5,
            y: 1.0,
            width: 14.0,
            height: 38.0,
        }
    }
}

/// One card's corner index as a small grey picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub card: String,
    pub width: u32,
    pub height: u32,
    /// Grey levels, row by row, as hex.
    pub pixels: String,
    /// Chromaticity (r, g of r/(r+g+b)) of the index's ink: red suits and black suits (and a
    /// four-colour deck's green and blue) are told apart by it before any shape.
    #[serde(default)]
    pub ink: Option<[f64; 2]>,
}

/// The corner indices of a table's own deck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeckTemplates {
    pub name: String,
    pub px_per_mm: f64,
    pub index_mm: IndexArea,
    pub card_mm: SizeMm,
    pub templates: Vec<Template>,
    /// The bottom-right indices, turned upright, where they are not the top-left ones turned
    /// (some decks print the bottom-right rank upright with its suit elsewhere: ancient-
    /// egyptians, jolly-royal); empty where they are, and in files from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bottom_right: Vec<Template>,
    /// The whole faces, grey at 1 px/mm, on a deck with bottom-right templates of its own: there
    /// the two corners of two cards can show the same picture (ancient-egyptians prints its
    /// bottom-right index upright, so a 9's top-left corner looks like a 6's bottom-right one
    /// turned, and a 9♦ lying one way round shows what a 6♦ shows lying the other), and only
    /// the face (the pips' layout) tells them apart. Empty on other decks, and in files from
    /// before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faces: Vec<Template>,
}

/// A roulette wheel as its camera sees it.
///
/// The pocket ring's radii are on the wheel's own plane. Without a homography that plane is
/// taken as the image itself around `centre_px` (a camera straight above the wheel, or tilted
/// so little that the ellipse is nearly a circle: the radii are then pixels); with one, the
/// radii are in the homography's wheel units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WheelGeometry {
    /// `european`, `american`, or `auto` (told by which layout's colours fit the ring better).
    #[serde(default = "auto")]
    pub layout: String,
    pub centre_px: [f64; 2],
    pub pocket_ring_px: Ring,
    /// Wheel plane → image, row-major: the point (x, y) of the wheel plane (its centre at the
    /// origin, y negative towards the image's top) is seen at `H · (x, y, 1)`. Absent in files
    /// written before it existed: the circle around `centre_px` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homography_wheel_to_px: Option<[[f64; 3]; 3]>,
    /// The ball's radius on the wheel plane; absent: a quarter of the pocket ring's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ball_radius: Option<f64>,
}

fn auto() -> String {
    "auto".into()
}

impl WheelGeometry {
    /// A wheel seen as a circle around `centre_px` (no homography).
    pub fn circle(layout: &str, centre_px: [f64; 2], pocket_ring_px: Ring) -> Self {
        WheelGeometry {
            layout: layout.into(),
            centre_px,
            pocket_ring_px,
            homography_wheel_to_px: None,
            ball_radius: None,
        }
    }

    /// A wheel seen through a homography made from four marks a quarter turn apart on a
    /// circle of radius `marks_radius` around the wheel's centre (e.g. four of the bowl's
    /// deflectors), clockwise, the first taken as the wheel's up; `ring` in the same unit.
    pub fn from_marks(
        layout: &str,
        marks_px: [Pt; 4],
        marks_radius: f64,
        pocket_ring: Ring,
    ) -> Result<Self, VisionError> {
        if !(marks_radius.is_finite() && marks_radius > 0.0) {
            return Err(VisionError::Calibration(
                "the marks' radius must be a positive number".into(),
            ));
        }
        let r = marks_radius;
        let plane = [
            Pt::new(0.0, -r),
            Pt::new(r, 0.0),
            Pt::new(0.0, r),
            Pt::new(-r, 0.0),
        ];
        let h = Homography::from_points(&plane, &marks_px).ok_or_else(|| {
            VisionError::Calibration(
                "the four marks are degenerate (three in a line?); click them again".into(),
            )
        })?;
        // Clockwise on the wheel must stay clockwise in the image (a camera above the wheel
        // does not mirror it): marks given anticlockwise would read every pocket backwards.
        let q = marks_px;
        let area: f64 = (0..4).map(|i| q[i].cross(q[(i + 1) % 4])).sum();
        if area <= 0.0 {
            return Err(VisionError::Calibration(
                "give the four marks clockwise as the image shows them".into(),
            ));
        }
        Ok(Self::from_homography(layout, h, pocket_ring))
    }

    /// A wheel seen through `h` (wheel plane → image).
    pub fn from_homography(layout: &str, h: Homography, pocket_ring: Ring) -> Self {
        let c = h.apply(Pt::new(0.0, 0.0));
        let m = h.0;
        WheelGeometry {
            layout: layout.into(),
            centre_px: [c.x, c.y],
            pocket_ring_px: pocket_ring,
            homography_wheel_to_px: Some([
                [m[0], m[1], m[2]],
                [m[3], m[4], m[5]],
                [m[6], m[7], m[8]],
            ]),
            ball_radius: None,
        }
    }

    /// Wheel plane → image pixels.
    pub fn image_from_wheel(&self) -> Result<Homography, VisionError> {
        let h = match self.homography_wheel_to_px {
            Some(m) => Homography([
                m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
            ]),
            None => {
                let [cx, cy] = self.centre_px;
                Homography([1.0, 0.0, cx, 0.0, 1.0, cy, 0.0, 0.0, 1.0])
            }
        };
        if !h.0.iter().all(|v| v.is_finite()) || h.inverse().is_none() {
            return Err(VisionError::Calibration(
                "the wheel's homography is degenerate; run `croupier calibrate wheel` again".into(),
            ));
        }
        Ok(h)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ring {
    pub inner: f64,
    pub outer: f64,
}

/// When a read is good enough to report. Reject rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Normalised correlation of the best template, −1…1.
    pub card_min_score: f64,
    /// How much better the best card must match than any other card, relative to what the
    /// runner-up leaves unexplained: (best − second) / (1 − second), 0…1.
    pub card_min_margin: f64,
    /// A corner index scoring below this is treated as unreadable (occluded), not as a vote.
    pub card_unreadable_below: f64,
    /// Share of a card-sized rectangle that must look like card stock.
    pub card_min_coverage: f64,
    /// Card stock: at most this saturation (0–255 HSV)…
    pub card_max_saturation: f64,
    /// …and at least this much brighter than the felt (0–255).
    pub card_min_brightness_over_felt: f64,
    /// Ball at rest: how far from its pocket's centre it may sit, as a share of a pocket.
    pub pocket_max_offset: f64,
    /// No longer used (the pocket reader before `ball_min_score`); kept so older files load.
    pub ball_min_contrast: f64,
    /// Ball: normalised correlation of a ball-sized disc with the pocket ring's darkest
    /// channel less the empty ring (the median pocket), −1…1: which spots are weighed as the
    /// ball. On the synthetic set balls score 0.65 or more, but so do some glare spots.
    pub ball_min_score: f64,
    /// Ball: how much brighter (0–255, darkest channel) its middle is than the brightest side
    /// of its surroundings, once the empty ring (the median pocket) is taken away: what tells
    /// the ball from glare. On the synthetic set (1000 frames, measured with a prototype that
    /// took the whole ring's median pocket): balls 30 or more but for two under strong glare
    /// (20.5, 22.9); rings without a ball at most 19.7.
    pub ball_min_lift: f64,
    /// Wheel: normalised correlation of the layout's colour sequence with the ring's, −1…1.
    pub wheel_min_fit: f64,
    /// Wheel: how much better the best rotation must fit than any other half a pocket away.
    pub wheel_min_margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            card_min_score: 0.62,
            card_min_margin: 0.35,
            card_unreadable_below: 0.45,
            card_min_coverage: 0.88,
            card_max_saturation: 75.0,
            card_min_brightness_over_felt: 45.0,
            pocket_max_offset: 0.35,
            ball_min_contrast: 60.0,
            ball_min_score: 0.45,
            ball_min_lift: 25.0,
            wheel_min_fit: 0.3,
            wheel_min_margin: 0.005,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub format: String,
    pub version: u64,
    #[serde(default)]
    pub updated_utc: Option<String>,
    #[serde(default)]
    pub table: Option<TableGeometry>,
    #[serde(default)]
    pub deck: Option<DeckTemplates>,
    #[serde(default)]
    pub wheel: Option<WheelGeometry>,
    #[serde(default)]
    pub thresholds: Thresholds,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            format: FORMAT.into(),
            version: 0,
            updated_utc: None,
            table: None,
            deck: None,
            wheel: None,
            thresholds: Thresholds::default(),
        }
    }
}

impl Calibration {
    pub fn load(path: &Path) -> Result<Calibration, VisionError> {
        let text = std::fs::read_to_string(path).map_err(|e| VisionError::file(path, e))?;
        let cal: Calibration = serde_json::from_str(&text).map_err(|e| {
            VisionError::file(
                path,
                format!("not a calibration file ({e}); make one with `croupier calibrate`"),
            )
        })?;
        if cal.format != FORMAT {
            return Err(VisionError::file(
                path,
                format!("format `{}`, expected `{FORMAT}`", cal.format),
            ));
        }
        Ok(cal)
    }

    /// Writes the file with `version` bumped (atomically: a half-written calibration never
    /// replaces a good one).
    pub fn save(&mut self, path: &Path, now_utc: &str) -> Result<(), VisionError> {
        self.version += 1;
        self.updated_utc = Some(now_utc.to_owned());
        let text = serde_json::to_string_pretty(self).map_err(|e| VisionError::file(path, e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| VisionError::file(path, e))
    }
}

/// Card names as the calibration and the events write them: rank `A 2…9 T J Q K`, suit `S H D C`.
pub const RANKS: [char; 13] = [
    'A', '2', '3', '4', '5', '6', '7', '8', '9', 'T', 'J', 'Q', 'K',
];
pub const SUITS: [char; 4] = ['S', 'H', 'D', 'C'];

/// Every card of a 52-card deck, `AS` … `KC`.
pub fn all_cards() -> Vec<String> {
    SUITS
        .iter()
        .flat_map(|s| RANKS.iter().map(move |r| format!("{r}{s}")))
        .collect()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes = vec![0u8, 1, 127, 128, 255];
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }

    #[test]
    fn zones_are_found_through_the_homography() {
        let table = TableGeometry {
            image: SizePx {
                width: 1280,
                height: 720,
            },
            table_mm: SizeMm {
                width: 1000.0,
                height: 600.0,
            },
            corners_px: [
                [100.0, 60.0],
                [1180.0, 70.0],
                [1230.0, 690.0],
                [50.0, 680.0],
            ],
            card_mm: default_card(),
            zones: vec![Zone {
                name: "player".into(),
                polygon_mm: vec![
                    [100.0, 300.0],
                    [400.0, 300.0],
                    [400.0, 550.0],
                    [100.0, 550.0],
                ],
            }],
        };
        let h = table.image_from_table().expect("homography");
        let inv = h.inverse().expect("inverse");
        let in_image = h.apply(Pt::new(250.0, 400.0));
        assert_eq!(table.zone_at(inv.apply(in_image)), Some("player"));
        assert_eq!(table.zone_at(Pt::new(700.0, 100.0)), None);
    }

    #[test]
    fn four_marks_give_the_wheel_plane_and_old_wheel_entries_still_load() {
        let ring = Ring {
            inner: 147.0,
            outer: 188.0,
        };
        // A tilted camera: the marks of a circle of radius 250 seen through a known homography.
        let truth = Homography([1.04, 0.09, 596.5, 0.02, 1.05, 357.7, 7.5e-5, 1.6e-4, 1.0]);
        let marks = [(0.0, -250.0), (250.0, 0.0), (0.0, 250.0), (-250.0, 0.0)]
            .map(|(x, y)| truth.apply(Pt::new(x, y)));
        let w = WheelGeometry::from_marks("auto", marks, 250.0, ring).expect("marks");
        let h = w.image_from_wheel().expect("homography");
        let p = h.apply(Pt::new(100.0, 130.0));
        let t = truth.apply(Pt::new(100.0, 130.0));
        assert!(p.sub(t).len() < 1e-6, "{p:?} {t:?}");
        assert!(w.centre_px[0] > 596.0 && w.centre_px[0] < 597.0);
        let mut backwards = marks;
        backwards.reverse();
        assert!(WheelGeometry::from_marks("auto", backwards, 250.0, ring).is_err());
        assert!(WheelGeometry::from_marks("auto", marks, 0.0, ring).is_err());
        // A format-1 wheel entry from before the homography: a circle around its centre.
        let old: WheelGeometry = serde_json::from_str(
            r#"{"layout": "auto", "centre_px": [640, 360], "pocket_ring_px": {"inner": 100, "outer": 130}}"#,
        )
        .expect("old entry");
        assert_eq!(old.homography_wheel_to_px, None);
        let c = old
            .image_from_wheel()
            .expect("circle")
            .apply(Pt::new(0.0, -100.0));
        assert_eq!((c.x, c.y), (640.0, 260.0));
        let t: Thresholds = serde_json::from_str(r#"{"ball_min_contrast": 60}"#).expect("old");
        assert_eq!(t.ball_min_score, Thresholds::default().ball_min_score);
    }

    #[test]
    fn the_cameras_resolution_over_the_zones_is_its_worst_scale() {
        let mut table = TableGeometry {
            image: SizePx {
                width: 1280,
                height: 720,
            },
            table_mm: SizeMm {
                width: 400.0,
                height: 200.0,
            },
            // 2.5 px/mm across, 3 px/mm down.
            corners_px: [[0.0, 0.0], [1000.0, 0.0], [1000.0, 600.0], [0.0, 600.0]],
            card_mm: default_card(),
            zones: vec![Zone {
                name: "player".into(),
                polygon_mm: vec![[10.0, 10.0], [200.0, 10.0], [200.0, 150.0], [10.0, 150.0]],
            }],
        };
        let worst = table
            .zones_min_px_per_mm()
            .expect("homography")
            .expect("zones");
        assert!((worst - 2.5).abs() < 1e-6, "{worst}");
        table.zones.clear();
        assert_eq!(table.zones_min_px_per_mm().expect("homography"), None);
    }

    #[test]
    fn the_file_format_is_checked_and_versions_count_up() {
        let dir = std::env::temp_dir().join(format!("croupier-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.json");
        let mut cal = Calibration::default();
        cal.save(&path, "2026-11-21T00:00:00Z").expect("save");
        cal.save(&path, "2026-11-21T00:00:01Z").expect("save");
        let back = Calibration::load(&path).expect("load");
        assert_eq!(back.version, 2);
        std::fs::write(&path, r#"{"format":"other/9","version":1}"#).expect("write");
        assert!(Calibration::load(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
