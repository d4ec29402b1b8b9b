//! The LL-HLS fallback's media playlist: which parts and segments exist, what
//! `GET /hls/<camera>/index.m3u8` says about them, and when a blocking playlist reload may be
//! answered.
//!
//! GStreamer's `hlssink2` writes whole segments only, so the low-latency playlist is ours. This
//! module is sans-IO: the pipeline edge tells it "a fragment of this long was cut, starting at
//! this UTC instant, and it does (or does not) start on a keyframe", writes the bytes under the
//! names it is given, deletes the files it is told are gone, and serves [`LlHlsPlaylist::render`].
//! A viewer that asks for `_HLS_msn`/`_HLS_part` is held until [`LlHlsPlaylist::blocking_request`]
//! says the part exists, so a player learns about a new half-second of video the moment it is cut.
//!
//! What the technician sees: parts of at most 0.5 s (`EXT-X-PART-INF:PART-TARGET`), players told
//! to stay three parts behind the live edge (`PART-HOLD-BACK`), and every segment stamped with
//! the UTC of its first frame (`EXT-X-PROGRAM-DATE-TIME`), the same clock the events use. A camera
//! that restarts shows up as `EXT-X-DISCONTINUITY`, never as a wedged playlist.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The longest part LL-HLS viewers are promised; the latency budget rests on it.
pub const MAX_PART_TARGET: Duration = Duration::from_millis(500);

/// How the playlist cuts and keeps the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSettings {
    /// The longest a part may be; at most [`MAX_PART_TARGET`].
    pub part_target: Duration,
    /// The length a segment is closed at (on the next keyframe after it is reached).
    pub segment_target: Duration,
    /// Whole segments kept in the playlist (and on disk) behind the live edge; at least 3, so a
    /// player holding back three target durations still finds its segment.
    pub window_segments: usize,
    /// The fMP4 initialisation segment (`EXT-X-MAP`) of the stream as it starts.
    pub init_uri: String,
}

impl Default for PlaylistSettings {
    fn default() -> Self {
        PlaylistSettings {
            part_target: Duration::from_millis(500),
            segment_target: Duration::from_secs(2),
            window_segments: 6,
            init_uri: "init.mp4".to_owned(),
        }
    }
}

/// A playlist setting or a fragment the playlist cannot accept, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlHlsError {
    #[error("the part target is {0:?}; use more than 0 and at most 500ms")]
    PartTarget(Duration),
    #[error("the segment target {segment:?} is shorter than the part target {part:?}; make segments at least one part long")]
    SegmentShorterThanPart { segment: Duration, part: Duration },
    #[error("a window of {0} segments is too short; keep at least 3 so players holding back can find their segment")]
    Window(usize),
    #[error("a part of {got:?} is longer than the part target {target:?}; cut fragments at the part target")]
    PartTooLong { got: Duration, target: Duration },
    #[error("a part of zero length cannot be played; drop empty fragments before they reach the playlist")]
    EmptyPart,
}

/// A blocking playlist reload the server must refuse at once (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockingRequestError {
    #[error("_HLS_part needs _HLS_msn; ask for `?_HLS_msn=M&_HLS_part=P`")]
    PartWithoutMsn,
    #[error("_HLS_msn={asked} is more than two segments past the live edge ({last}); reload the playlist without it")]
    TooFarAhead { asked: u64, last: u64 },
}

/// Whether a blocking reload can be answered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Render and send the playlist.
    Ready,
    /// Hold the request until the playlist changes, and at most [`LlHlsPlaylist::hold_limit`].
    Wait,
}

/// Where the edge must write a fragment it has just cut, and what it may now delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlacement {
    /// Media sequence number of the segment the part belongs to.
    pub msn: u64,
    /// The part's index within its segment, from 0.
    pub part: u32,
    /// File name to write the part under.
    pub part_uri: String,
    /// File name of the whole segment; the part's bytes are appended to it as well.
    pub segment_uri: String,
    /// Files no longer named by the playlist, to delete.
    pub evicted: Vec<String>,
}

#[derive(Debug, Clone)]
struct Part {
    duration: Duration,
    independent: bool,
    uri: String,
}

#[derive(Debug, Clone)]
struct Segment {
    msn: u64,
    uri: String,
    started_at: SystemTime,
    discontinuity: bool,
    map: Arc<str>,
    parts: Vec<Part>,
    /// Parts are dropped from old segments (only whole segments are listed there) but the
    /// segment's length stays.
    duration: Duration,
    closed: bool,
}

/// One camera's LL-HLS media playlist.
#[derive(Debug)]
pub struct LlHlsPlaylist {
    settings: PlaylistSettings,
    target_duration_s: u64,
    /// Closed segments, oldest first, then at most one open segment (the live edge).
    segments: VecDeque<Segment>,
    next_msn: u64,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    map: Arc<str>,
    /// Bumped on every change, so held requests know when to look again.
    version: u64,
}

impl LlHlsPlaylist {
    /// A playlist with no media yet.
    pub fn new(settings: PlaylistSettings) -> Result<Self, LlHlsError> {
        if settings.part_target.is_zero() || settings.part_target > MAX_PART_TARGET {
            return Err(LlHlsError::PartTarget(settings.part_target));
        }
        if settings.segment_target < settings.part_target {
            return Err(LlHlsError::SegmentShorterThanPart {
                segment: settings.segment_target,
                part: settings.part_target,
            });
        }
        if settings.window_segments < 3 {
            return Err(LlHlsError::Window(settings.window_segments));
        }
        // A segment may run one part past its target while waiting for a keyframe.
        let longest = settings.segment_target + settings.part_target;
        let target_duration_s = round_half_up_secs(longest).max(1);
        let map: Arc<str> = Arc::from(settings.init_uri.as_str());
        Ok(LlHlsPlaylist {
            settings,
            target_duration_s,
            segments: VecDeque::new(),
            next_msn: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            map,
            version: 0,
        })
    }

    /// `EXT-X-TARGETDURATION`, in whole seconds.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(self.target_duration_s)
    }

    /// How long a blocking reload may be held before the server answers 503: three target
    /// durations, as RFC 8216bis asks.
    pub fn hold_limit(&self) -> Duration {
        self.target_duration() * 3
    }

    /// Changes on every new part, segment or discontinuity.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records a fragment the muxer has cut. `independent` is true when it starts on a keyframe;
    /// `started_at` is the UTC of its first frame.
    pub fn push_part(
        &mut self,
        duration: Duration,
        independent: bool,
        started_at: SystemTime,
    ) -> Result<PartPlacement, LlHlsError> {
        if duration.is_zero() {
            return Err(LlHlsError::EmptyPart);
        }
        if duration > self.settings.part_target {
            return Err(LlHlsError::PartTooLong {
                got: duration,
                target: self.settings.part_target,
            });
        }
        let limit = Duration::from_secs(self.target_duration_s);
        let close_open = match self.segments.back() {
            Some(open) if !open.closed => {
                let reached = open.duration + duration > self.settings.segment_target;
                // Without a keyframe the segment still may not outgrow EXT-X-TARGETDURATION.
                let forced = round_half_up_secs(open.duration + duration) > limit.as_secs();
                (reached && independent) || forced
            }
            _ => false,
        };
        if close_open {
            self.close_open_segment();
        }
        let mut evicted = Vec::new();
        if !matches!(self.segments.back(), Some(s) if !s.closed) {
            let msn = self.next_msn;
            self.next_msn += 1;
            self.segments.push_back(Segment {
                msn,
                uri: format!("seg{msn}.m4s"),
                started_at,
                discontinuity: std::mem::take(&mut self.pending_discontinuity),
                map: self.map.clone(),
                parts: Vec::new(),
                duration: Duration::ZERO,
                closed: false,
            });
            evicted = self.evict();
        }
        let Some(open) = self.segments.back_mut() else {
            unreachable!("a segment was just opened")
        };
        let index = u32::try_from(open.parts.len()).unwrap_or(u32::MAX);
        let part_uri = format!("part{}.{index}.m4s", open.msn);
        open.parts.push(Part {
            duration,
            independent,
            uri: part_uri.clone(),
        });
        open.duration += duration;
        let placement = PartPlacement {
            msn: open.msn,
            part: index,
            part_uri,
            segment_uri: open.uri.clone(),
            evicted: {
                evicted.extend(self.drop_old_parts());
                evicted
            },
        };
        self.version += 1;
        Ok(placement)
    }

    /// The source stopped (unplug, RTSP drop, EOS) or restarts with new caps: the open segment
    /// ends here, and the next one is marked `EXT-X-DISCONTINUITY` with `init_uri` as its map.
    pub fn discontinuity(&mut self, init_uri: &str) {
        self.close_open_segment();
        if self.next_msn > 0 {
            self.pending_discontinuity = true;
        }
        self.map = Arc::from(init_uri);
        self.version += 1;
    }

    /// Whether a reload with `_HLS_msn`/`_HLS_part` may be answered now.
    pub fn blocking_request(
        &self,
        msn: Option<u64>,
        part: Option<u32>,
    ) -> Result<Readiness, BlockingRequestError> {
        let Some(msn) = msn else {
            return match part {
                Some(_) => Err(BlockingRequestError::PartWithoutMsn),
                None => Ok(Readiness::Ready),
            };
        };
        let last = self.next_msn.saturating_sub(1);
        if msn > last + 2 {
            return Err(BlockingRequestError::TooFarAhead { asked: msn, last });
        }
        let ready = self.segments.iter().any(|s| match part {
            _ if s.msn > msn => true,
            None => s.msn == msn && s.closed,
            Some(p) => s.msn == msn && (s.closed || s.parts.len() > p as usize),
        }) || self.segments.front().is_some_and(|s| msn < s.msn);
        Ok(if ready {
            Readiness::Ready
        } else {
            Readiness::Wait
        })
    }

    /// The media playlist as served at `/hls/<camera>/index.m3u8`.
    pub fn render(&self) -> String {
        let part_target = self.settings.part_target;
        let mut out = String::with_capacity(2048);
        out.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration_s);
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            secs3(part_target * 3)
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", secs3(part_target));
        let first_msn = self.segments.front().map_or(self.next_msn, |s| s.msn);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        let mut map: Option<&str> = None;
        for seg in &self.segments {
            if seg.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(&*seg.map) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", seg.map);
                map = Some(&seg.map);
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_pdt(seg.started_at)
            );
            for part in &seg.parts {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    secs3(part.duration),
                    part.uri
                );
                out.push_str(if part.independent {
                    ",INDEPENDENT=YES\n"
                } else {
                    "\n"
                });
            }
            if seg.closed {
                let _ = writeln!(out, "#EXTINF:{},\n{}", secs3(seg.duration), seg.uri);
            }
        }
        if let Some(hint) = self.next_part_uri() {
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
        }
        out
    }

    /// The name the next part will get, for `EXT-X-PRELOAD-HINT`. The edge cannot know yet
    /// whether it will open a new segment, so the hint names the continuation of the open one;
    /// players treat a hint that does not come true as a miss and reload.
    fn next_part_uri(&self) -> Option<String> {
        match self.segments.back() {
            Some(open) if !open.closed => {
                Some(format!("part{}.{}.m4s", open.msn, open.parts.len()))
            }
            Some(_) if !self.pending_discontinuity => Some(format!("part{}.0.m4s", self.next_msn)),
            _ => None,
        }
    }

    fn close_open_segment(&mut self) {
        if let Some(open) = self.segments.back_mut() {
            if !open.closed {
                open.closed = true;
                self.version += 1;
            }
        }
    }

    /// Drops whole segments beyond the window; returns their files and their parts' files.
    fn evict(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        let closed = self.segments.iter().filter(|s| s.closed).count();
        for _ in self.settings.window_segments..closed {
            let Some(old) = self.segments.pop_front() else {
                break;
            };
            gone.extend(old.parts.into_iter().map(|p| p.uri));
            gone.push(old.uri);
            if self.segments.front().is_some_and(|s| s.discontinuity) {
                // The tag leaves the playlist with the segment before it; the count keeps
                // players' discontinuity numbering stable (RFC 8216bis 4.4.3.3).
                self.discontinuity_sequence += 1;
                if let Some(front) = self.segments.front_mut() {
                    front.discontinuity = false;
                }
            }
        }
        gone
    }

    /// Parts are listed only for the last three target durations of the playlist; older
    /// segments are listed whole and their part files can go.
    fn drop_old_parts(&mut self) -> Vec<String> {
        let keep = self.target_duration() * 3;
        let mut from_end = Duration::ZERO;
        let mut gone = Vec::new();
        for seg in self.segments.iter_mut().rev() {
            if from_end > keep && seg.closed {
                gone.extend(seg.parts.drain(..).map(|p| p.uri));
            }
            from_end += seg.duration;
        }
        gone
    }
}

fn round_half_up_secs(d: Duration) -> u64 {
    (d.as_millis() as u64 + 500) / 1000
}

/// Seconds with three decimals, the precision playlists conventionally carry.
fn secs3(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn format_pdt(at: SystemTime) -> String {
    let dt = OffsetDateTime::from(at);
    let millis = dt.millisecond();
    let whole = dt.replace_nanosecond(0).unwrap_or(dt);
    match whole.format(&Rfc3339) {
        Ok(s) => format!("{}.{millis:03}Z", s.trim_end_matches('Z')),
        Err(_) => String::from("1970-01-01T00:00:00.000Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const HALF: Duration = Duration::from_millis(500);

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_270_992_250)
    }

    /// Feeds `n` half-second parts with a keyframe every `gop` parts.
    fn feed(pl: &mut LlHlsPlaylist, n: u32, gop: u32) -> Vec<PartPlacement> {
        (0..n)
            .map(|i| {
                pl.push_part(HALF, i % gop == 0, t0() + HALF * i)
                    .expect("valid part")
            })
            .collect()
    }

    fn playlist() -> LlHlsPlaylist {
        LlHlsPlaylist::new(PlaylistSettings::default()).expect("default settings are valid")
    }

    #[test]
    fn refuses_settings_that_break_the_latency_budget() {
        let bad = |f: fn(&mut PlaylistSettings)| {
            let mut s = PlaylistSettings::default();
            f(&mut s);
            LlHlsPlaylist::new(s).expect_err("must refuse")
        };
        assert_eq!(
            bad(|s| s.part_target = Duration::from_millis(600)),
            LlHlsError::PartTarget(Duration::from_millis(600))
        );
        assert!(matches!(
            bad(|s| s.segment_target = Duration::from_millis(100)),
            LlHlsError::SegmentShorterThanPart { .. }
        ));
        assert_eq!(bad(|s| s.window_segments = 2), LlHlsError::Window(2));
    }

    #[test]
    fn refuses_parts_longer_than_the_target_or_empty() {
        let mut pl = playlist();
        assert!(matches!(
            pl.push_part(Duration::from_millis(501), true, t0()),
            Err(LlHlsError::PartTooLong { .. })
        ));
        assert_eq!(
            pl.push_part(Duration::ZERO, true, t0()),
            Err(LlHlsError::EmptyPart)
        );
        assert_eq!(pl.version(), 0, "a refused part changes nothing");
    }

    #[test]
    fn cuts_segments_on_the_first_keyframe_past_the_target() {
        let mut pl = playlist();
        let placed = feed(&mut pl, 9, 2);
        let at: Vec<(u64, u32)> = placed.iter().map(|p| (p.msn, p.part)).collect();
        assert_eq!(
            at,
            [
                (0, 0),
                (0, 1),
                (0, 2),
                (0, 3),
                (1, 0),
                (1, 1),
                (1, 2),
                (1, 3),
                (2, 0)
            ]
        );
        assert_eq!(placed[4].part_uri, "part1.0.m4s");
        assert_eq!(placed[4].segment_uri, "seg1.m4s");
        let text = pl.render();
        assert!(text.contains("#EXTINF:2.000,\nseg0.m4s\n"), "{text}");
        assert!(text.contains("#EXTINF:2.000,\nseg1.m4s\n"), "{text}");
        assert!(!text.contains("seg2.m4s"), "seg2 is still open:\n{text}");
    }

    #[test]
    fn a_missing_keyframe_cannot_stretch_a_segment_past_the_target_duration() {
        let mut pl = playlist();
        // One keyframe, then none: the segment must still close before EXTINF rounds above 3.
        let placed = feed(&mut pl, 12, 1000);
        let max_parts = placed.iter().map(|p| p.part).max().unwrap_or(0);
        assert_eq!(pl.target_duration(), Duration::from_secs(3));
        assert!(max_parts < 7, "7 parts would be 3.5 s: {max_parts}");
        for line in pl.render().lines().filter(|l| l.starts_with("#EXTINF:")) {
            let secs: f64 = line[8..line.len() - 1].parse().expect("number");
            assert!(secs.round() <= 3.0, "{line}");
        }
    }

    #[test]
    fn renders_the_low_latency_tags_a_player_needs() {
        let mut pl = playlist();
        feed(&mut pl, 5, 2);
        let text = pl.render();
        let expected = "#EXTM3U\n\
            #EXT-X-VERSION:9\n\
            #EXT-X-TARGETDURATION:3\n\
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n\
            #EXT-X-PART-INF:PART-TARGET=0.500\n\
            #EXT-X-MEDIA-SEQUENCE:0\n\
            #EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-21T14:23:12.250Z\n\
            #EXT-X-PART:DURATION=0.500,URI=\"part0.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.500,URI=\"part0.1.m4s\"\n\
            #EXT-X-PART:DURATION=0.500,URI=\"part0.2.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.500,URI=\"part0.3.m4s\"\n\
            #EXTINF:2.000,\n\
            seg0.m4s\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-21T14:23:14.250Z\n\
            #EXT-X-PART:DURATION=0.500,URI=\"part1.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part1.1.m4s\"\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn keeps_a_sliding_window_and_tells_the_edge_what_to_delete() {
        let mut pl = playlist();
        let placed = feed(&mut pl, 4 * 10 + 1, 2);
        let evicted: Vec<&String> = placed.iter().flat_map(|p| &p.evicted).collect();
        // 10 closed segments, a window of 6: segments 0..=3 are gone with their parts.
        for msn in 0..4 {
            assert!(evicted.contains(&&format!("seg{msn}.m4s")), "seg{msn}");
            for part in 0..4 {
                assert!(evicted.contains(&&format!("part{msn}.{part}.m4s")));
            }
        }
        assert!(!evicted.contains(&&"seg4.m4s".to_owned()));
        let text = pl.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{text}");
        assert!(!text.contains("seg3.m4s"));
        // Parts only for the last 9 s (three target durations): old segments are whole.
        assert!(!text.contains("part4."), "{text}");
        assert!(text.contains("part9.0.m4s"), "{text}");
        // Every file the playlist still names was never reported deleted.
        for line in text.lines() {
            let name = line.split('"').nth(1).unwrap_or(line);
            if !line.starts_with("#EXT-X-PRELOAD-HINT") && name.ends_with(".m4s") {
                assert!(
                    !evicted.contains(&&name.to_owned()),
                    "{name} listed but deleted"
                );
            }
        }
    }

    #[test]
    fn a_restarted_camera_is_a_discontinuity_with_its_new_map() {
        let mut pl = playlist();
        feed(&mut pl, 3, 2);
        pl.discontinuity("init-1.mp4");
        let after = pl
            .push_part(HALF, true, t0() + Duration::from_secs(30))
            .expect("valid");
        assert_eq!((after.msn, after.part), (1, 0));
        let text = pl.render();
        assert!(
            text.contains(
                "#EXTINF:1.500,\nseg0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"
            ),
            "{text}"
        );
        // Once the segment before the discontinuity leaves the window, the sequence counts it.
        feed(&mut pl, 4 * 8, 2);
        let text = pl.render();
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(text.starts_with("#EXTM3U") && text.contains("#EXT-X-MAP:URI=\"init-1.mp4\""));
    }

    #[test]
    fn blocking_reload_waits_for_the_asked_part_and_refuses_nonsense() {
        let mut pl = playlist();
        feed(&mut pl, 2, 2); // seg0: parts 0 and 1, open
        assert_eq!(pl.blocking_request(None, None), Ok(Readiness::Ready));
        assert_eq!(pl.blocking_request(Some(0), Some(1)), Ok(Readiness::Ready));
        assert_eq!(pl.blocking_request(Some(0), Some(2)), Ok(Readiness::Wait));
        assert_eq!(
            pl.blocking_request(Some(0), None),
            Ok(Readiness::Wait),
            "segment 0 is not complete"
        );
        assert_eq!(pl.blocking_request(Some(1), Some(0)), Ok(Readiness::Wait));
        assert_eq!(
            pl.blocking_request(None, Some(0)),
            Err(BlockingRequestError::PartWithoutMsn)
        );
        assert_eq!(
            pl.blocking_request(Some(3), None),
            Err(BlockingRequestError::TooFarAhead { asked: 3, last: 0 })
        );
        let before = pl.version();
        feed(&mut pl, 3, 2); // part0.2, 0.3 then seg1 opens
        assert!(pl.version() > before);
        assert_eq!(pl.blocking_request(Some(0), Some(2)), Ok(Readiness::Ready));
        assert_eq!(pl.blocking_request(Some(0), None), Ok(Readiness::Ready));
        assert_eq!(pl.blocking_request(Some(1), Some(0)), Ok(Readiness::Ready));
        assert_eq!(pl.blocking_request(Some(1), Some(1)), Ok(Readiness::Wait));
        assert_eq!(pl.hold_limit(), Duration::from_secs(9));
    }

    #[test]
    fn an_evicted_segment_is_ready_at_once() {
        let mut pl = playlist();
        feed(&mut pl, 4 * 12, 2);
        assert_eq!(pl.blocking_request(Some(0), Some(0)), Ok(Readiness::Ready));
    }
}
