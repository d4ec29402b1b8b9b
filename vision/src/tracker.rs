//! From per-frame reads to one `card.seen` per card that stays on the table (sans-IO).
//!
//! A card must be read in [`TrackerSettings::confirm_frames`] frames in a row at about the same
//! place before it is reported, so a card sliding across the felt or a one-frame misread is
//! not; once reported it is not reported again while it stays. It is forgotten after
//! [`TrackerSettings::forget_frames`] frames without it (the table was cleared), so the same
//! card in a later round is reported again.

use crate::cards::CardRead;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerSettings {
    pub confirm_frames: u32,
    pub forget_frames: u32,
    /// How far (mm) a card may move between frames and still be the same card.
    pub same_place_mm: f64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        TrackerSettings {
            confirm_frames: 2,
            forget_frames: 10,
            same_place_mm: 20.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    card: String,
    centre: [f64; 2],
    seen_in_a_row: u32,
    missing: u32,
    reported: bool,
    last: CardRead,
}

/// The cards on the table, frame after frame.
#[derive(Debug, Default)]
pub struct CardTracker {
    settings: TrackerSettings,
    tracks: Vec<Track>,
}

impl CardTracker {
    pub fn new(settings: TrackerSettings) -> Self {
        CardTracker {
            settings,
            tracks: Vec::new(),
        }
    }

    /// Feeds one frame's reads; returns the cards to report now (each once).
    pub fn observe(&mut self, reads: &[CardRead]) -> Vec<CardRead> {
        let mut matched = vec![false; self.tracks.len()];
        for read in reads {
            let near = self.tracks.iter().enumerate().position(|(i, t)| {
                !matched[i]
                    && t.card == read.card
                    && (t.centre[0] - read.centre_mm[0]).hypot(t.centre[1] - read.centre_mm[1])
                        <= self.settings.same_place_mm
            });
            match near {
                Some(i) => {
                    matched[i] = true;
                    let t = &mut self.tracks[i];
                    t.seen_in_a_row += 1;
                    t.missing = 0;
                    t.centre = read.centre_mm;
                    t.last = read.clone();
                }
                None => {
                    matched.push(true);
                    self.tracks.push(Track {
                        card: read.card.clone(),
                        centre: read.centre_mm,
                        seen_in_a_row: 1,
                        missing: 0,
                        reported: false,
                        last: read.clone(),
                    });
                }
            }
        }
        for (t, seen) in self.tracks.iter_mut().zip(&matched) {
            if !seen {
                t.missing += 1;
                t.seen_in_a_row = 0;
            }
        }
        let forget = self.settings.forget_frames;
        self.tracks.retain(|t| t.missing < forget);
        let confirm = self.settings.confirm_frames;
        let mut out = Vec::new();
        for t in &mut self.tracks {
            if !t.reported && t.seen_in_a_row >= confirm {
                t.reported = true;
                out.push(t.last.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(card: &str, x: f64) -> CardRead {
        CardRead {
            card: card.into(),
            zone: Some("player".into()),
            confidence: 0.9,
            margin: 0.3,
            corners_px: [[0.0; 2]; 4],
            centre_mm: [x, 100.0],
        }
    }

    #[test]
    fn a_card_that_stays_is_reported_once() {
        let mut t = CardTracker::new(TrackerSettings::default());
        assert!(
            t.observe(&[read("AS", 100.0)]).is_empty(),
            "one frame is not enough"
        );
        assert_eq!(t.observe(&[read("AS", 101.0)]).len(), 1);
        for _ in 0..50 {
            assert!(t.observe(&[read("AS", 101.0)]).is_empty());
        }
    }

    #[test]
    fn a_one_frame_misread_is_never_reported() {
        let mut t = CardTracker::new(TrackerSettings::default());
        let mut reported = Vec::new();
        for i in 0..20 {
            let card = if i == 7 { "8S" } else { "AS" };
            reported.extend(t.observe(&[read(card, 100.0)]));
        }
        let cards: Vec<_> = reported.iter().map(|r| r.card.as_str()).collect();
        assert_eq!(cards, ["AS"]);
    }

    #[test]
    fn a_cleared_table_forgets_and_a_new_round_reports_again() {
        let mut t = CardTracker::new(TrackerSettings::default());
        t.observe(&[read("KH", 50.0)]);
        assert_eq!(t.observe(&[read("KH", 50.0)]).len(), 1);
        for _ in 0..10 {
            assert!(t.observe(&[]).is_empty());
        }
        t.observe(&[read("KH", 50.0)]);
        assert_eq!(
            t.observe(&[read("KH", 50.0)]).len(),
            1,
            "reported again after the clear"
        );
    }

    #[test]
    fn two_cards_of_the_same_rank_in_two_places_are_two_cards() {
        let mut t = CardTracker::new(TrackerSettings::default());
        t.observe(&[read("QS", 50.0), read("QS", 300.0)]);
        assert_eq!(t.observe(&[read("QS", 50.0), read("QS", 300.0)]).len(), 2);
    }
}
