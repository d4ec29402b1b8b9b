//! Plane geometry without images: homographies, polygons, quadrilaterals. Unit-tested here so
//! the image code only has to get pixels right.

use serde::{Deserialize, Serialize};

/// A point, in pixels or millimetres depending on the plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
}

// Named methods rather than operator traits: the arithmetic reads left to right in chains.
#[allow(clippy::should_implement_trait)]
impl Pt {
    pub const fn new(x: f64, y: f64) -> Self {
        Pt { x, y }
    }
    pub fn sub(self, o: Pt) -> Pt {
        Pt::new(self.x - o.x, self.y - o.y)
    }
    pub fn add(self, o: Pt) -> Pt {
        Pt::new(self.x + o.x, self.y + o.y)
    }
    pub fn scale(self, k: f64) -> Pt {
        Pt::new(self.x * k, self.y * k)
    }
    pub fn len(self) -> f64 {
        self.x.hypot(self.y)
    }
    pub fn dot(self, o: Pt) -> f64 {
        self.x * o.x + self.y * o.y
    }
    pub fn cross(self, o: Pt) -> f64 {
        self.x * o.y - self.y * o.x
    }
}

/// A 3×3 projective transform, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// The transform taking the four `from` points to the four `to` points (exact: the
    /// direct linear solution of the 8×8 system by Gaussian elimination).
    #[allow(clippy::needless_range_loop)] // Gaussian elimination reads best with indices.
    pub fn from_points(from: &[Pt; 4], to: &[Pt; 4]) -> Option<Homography> {
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y, u, v) = (from[i].x, from[i].y, to[i].x, to[i].y);
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        for col in 0..8 {
            let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
            if a[pivot][col].abs() < 1e-12 {
                return None;
            }
            a.swap(col, pivot);
            for row in 0..8 {
                if row != col {
                    let f = a[row][col] / a[col][col];
                    for k in col..9 {
                        a[row][k] -= f * a[col][k];
                    }
                }
            }
        }
        let mut h = [0.0; 9];
        for i in 0..8 {
            h[i] = a[i][8] / a[i][i];
        }
        h[8] = 1.0;
        Some(Homography(h))
    }

    pub fn apply(&self, p: Pt) -> Pt {
        let h = &self.0;
        let w = h[6] * p.x + h[7] * p.y + h[8];
        Pt::new(
            (h[0] * p.x + h[1] * p.y + h[2]) / w,
            (h[3] * p.x + h[4] * p.y + h[5]) / w,
        )
    }

    pub fn inverse(&self) -> Option<Homography> {
        let m = &self.0;
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6]);
        if det.abs() < 1e-15 {
            return None;
        }
        let inv = [
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ];
        Some(Homography(inv.map(|v| v / det)))
    }

    /// `self` after `first`: p ↦ self(first(p)).
    pub fn then_after(&self, first: &Homography) -> Homography {
        let (a, b) = (&self.0, &first.0);
        let mut out = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                out[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(out)
    }
}

/// Whether `p` lies inside the polygon (even-odd rule).
pub fn point_in_polygon(p: Pt, poly: &[Pt]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
    }
    inside
}

/// The centre of a quadrilateral's corners.
pub fn centroid(q: &[Pt]) -> Pt {
    let n = q.len().max(1) as f64;
    let (sx, sy) = q.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
    Pt::new(sx / n, sy / n)
}

/// A card's corners ordered TL, TR, BR, BL of a portrait card whose long side runs top to
/// bottom, starting from `first` and going clockwise in image coordinates (y down). Which of
/// the two portrait orientations comes out does not matter: both corner indices are read.
pub fn portrait_order(mut q: [Pt; 4]) -> [Pt; 4] {
    // Clockwise in image coordinates (y down) means a positive shoelace sum.
    let area: f64 = (0..4).map(|i| q[i].cross(q[(i + 1) % 4])).sum();
    if area < 0.0 {
        q.reverse();
    }
    // TL→TR must be a short side.
    if q[0].sub(q[1]).len() > q[1].sub(q[2]).len() {
        q.rotate_left(1);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_homography_maps_its_points_and_inverts() {
        let from = [
            Pt::new(0.0, 0.0),
            Pt::new(1000.0, 0.0),
            Pt::new(1000.0, 600.0),
            Pt::new(0.0, 600.0),
        ];
        let to = [
            Pt::new(102.0, 80.0),
            Pt::new(1180.0, 95.0),
            Pt::new(1250.0, 690.0),
            Pt::new(40.0, 660.0),
        ];
        let h = Homography::from_points(&from, &to).expect("solvable");
        for (f, t) in from.iter().zip(&to) {
            let m = h.apply(*f);
            assert!(
                (m.x - t.x).abs() < 1e-6 && (m.y - t.y).abs() < 1e-6,
                "{m:?} vs {t:?}"
            );
        }
        let inv = h.inverse().expect("invertible");
        let back = inv.apply(h.apply(Pt::new(321.0, 123.0)));
        assert!((back.x - 321.0).abs() < 1e-6 && (back.y - 123.0).abs() < 1e-6);
        let id = inv.then_after(&h);
        let p = id.apply(Pt::new(5.0, 7.0));
        assert!((p.x - 5.0).abs() < 1e-6 && (p.y - 7.0).abs() < 1e-6);
        assert!(Homography::from_points(&[Pt::new(0.0, 0.0); 4], &to).is_none());
    }

    #[test]
    fn polygons_contain_what_they_should() {
        let square = [
            Pt::new(0.0, 0.0),
            Pt::new(10.0, 0.0),
            Pt::new(10.0, 10.0),
            Pt::new(0.0, 10.0),
        ];
        assert!(point_in_polygon(Pt::new(5.0, 5.0), &square));
        assert!(!point_in_polygon(Pt::new(15.0, 5.0), &square));
        assert!(!point_in_polygon(Pt::new(5.0, -1.0), &square));
    }

    #[test]
    fn portrait_order_puts_a_short_side_first_clockwise() {
        // A landscape card given counter-clockwise.
        let q = [
            Pt::new(0.0, 0.0),
            Pt::new(0.0, 63.0),
            Pt::new(88.0, 63.0),
            Pt::new(88.0, 0.0),
        ];
        let o = portrait_order(q);
        let top = o[0].sub(o[1]).len();
        let side = o[1].sub(o[2]).len();
        assert!(
            (top - 63.0).abs() < 1e-9 && (side - 88.0).abs() < 1e-9,
            "{o:?}"
        );
        let area: f64 = (0..4).map(|i| o[i].cross(o[(i + 1) % 4])).sum();
        assert!(area > 0.0);
    }
}
