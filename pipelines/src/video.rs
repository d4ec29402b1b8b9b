//! The settings a camera runs with, the timecode it stamps, and the errors of the video layer.
//!
//! A technician writes these in `[[camera]]` (docs/video.md); the daemon turns them into
//! [`CameraSettings`] and starts one [`crate::camera::Camera`] per camera.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::CameraSource;

/// The H.264 encoder a camera uses: one per camera, shared by every viewer and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// `x264enc` in software, tuned for zero latency (the default).
    X264,
    /// `v4l2h264enc`, the stateful V4L2 encoder of SoCs such as the Raspberry Pi.
    V4l2,
    /// `vaapih264enc`, Intel/AMD graphics through VA-API.
    Vaapi,
    /// `nvh264enc`, NVIDIA NVENC.
    Nvh264,
}

impl EncoderKind {
    /// Every encoder, in the spelling the config uses.
    pub const ALL: &'static [(&'static str, EncoderKind)] = &[
        ("x264", EncoderKind::X264),
        ("v4l2h264", EncoderKind::V4l2),
        ("vaapi", EncoderKind::Vaapi),
        ("nvh264", EncoderKind::Nvh264),
    ];

    /// The GStreamer element that implements it.
    pub fn element(self) -> &'static str {
        match self {
            EncoderKind::X264 => "x264enc",
            EncoderKind::V4l2 => "v4l2h264enc",
            EncoderKind::Vaapi => "vaapih264enc",
            EncoderKind::Nvh264 => "nvh264enc",
        }
    }

    /// The name written in the config.
    pub fn as_str(self) -> &'static str {
        EncoderKind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("x264", |(s, _)| s)
    }
}

impl std::str::FromStr for EncoderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncoderKind::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("`{s}` is not an encoder"))
    }
}

/// The rolling recording of a camera (splitmuxsink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    /// Where the camera's files go: `<dir>/<camera>/<UTC>_<timecode>.mp4`.
    pub dir: PathBuf,
    /// Length of one file.
    pub segment: Duration,
    /// Files whose end is older than this are deleted.
    pub retention: Duration,
}

/// Where WebRTC finds its way through NAT. Empty by default: a studio LAN needs neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceSettings {
    /// `stun://host:port`.
    pub stun: Option<String>,
    /// `turn(s)://user:password@host:port`.
    pub turn: Vec<String>,
}

/// Push the camera to a media server or SFU with WHIP (RFC 9725).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipSettings {
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Everything one camera runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSettings {
    pub name: String,
    pub source: CameraSource,
    pub width: u32,
    pub height: u32,
    /// Frame rate as a fraction (25/1, 30000/1001, …).
    pub fps: (i32, i32),
    /// GStreamer caps asked of the source before decoding (a V4L2 camera's format, size and
    /// rate: `image/jpeg,width=1920,height=1080,framerate=30/1`); none: the source's choice.
    pub source_caps: Option<String>,
    pub encoder: EncoderKind,
    pub bitrate_kbps: u32,
    /// Burn the timecode, the table phase and the bet countdown into the picture.
    pub overlay: bool,
    /// Burn a QR code with each frame's timestamp into the picture (`debugqroverlay`), for
    /// glass-to-glass measurements; `/status` gives the offset that turns it into UTC.
    pub qr_timestamp: bool,
    pub recording: Option<RecordingSettings>,
    pub ice: IceSettings,
    pub whip: Option<WhipSettings>,
    /// WebRTC viewers served at once; more get 503.
    pub max_viewers: usize,
}

impl CameraSettings {
    /// A camera with the defaults of docs/video.md.
    pub fn new(name: impl Into<String>, source: CameraSource) -> Self {
        CameraSettings {
            name: name.into(),
            source,
            width: 1280,
            height: 720,
            fps: (25, 1),
            source_caps: None,
            encoder: EncoderKind::X264,
            bitrate_kbps: 2500,
            overlay: true,
            qr_timestamp: false,
            recording: None,
            ice: IceSettings::default(),
            whip: None,
            max_viewers: 16,
        }
    }

    /// One frame's duration.
    pub fn frame_duration(&self) -> Duration {
        let (n, d) = self.fps;
        let n = u64::try_from(n.max(1)).unwrap_or(1);
        let d = u64::try_from(d.max(1)).unwrap_or(1);
        Duration::from_nanos(1_000_000_000 * d / n)
    }

    /// Whole frames in one LL-HLS part: as many as fit in 0.5 s (12 at 25 fps, 15 at 30).
    pub fn frames_per_part(&self) -> u32 {
        let frame = self.frame_duration().as_nanos().max(1);
        u32::try_from((500_000_000 / frame).max(1)).unwrap_or(1)
    }

    /// Frames between keyframes: a whole number of parts close to two seconds, so every
    /// segment (about 2 s) starts on a keyframe and no part is cut short by one.
    pub fn keyframe_interval(&self) -> u32 {
        let part = u128::from(self.frames_per_part()) * self.frame_duration().as_nanos();
        let parts = ((2_000_000_000 + part / 2) / part.max(1)).max(1);
        self.frames_per_part() * u32::try_from(parts).unwrap_or(4)
    }
}

/// A frame's SMPTE label, as the engine computes it for the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameTimecode {
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
    pub frames: u32,
    pub fps_n: i32,
    pub fps_d: i32,
    pub drop_frame: bool,
}

impl std::fmt::Display for FrameTimecode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.drop_frame { ';' } else { ':' };
        write!(
            f,
            "{:02}:{:02}:{:02}{sep}{:02}",
            self.hours, self.minutes, self.seconds, self.frames
        )
    }
}

/// The engine's timecode: frames are stamped with exactly what an event at the same instant
/// carries. The daemon implements it with its `Timecode::at_utc`.
pub trait TimecodeSource: Send + Sync + 'static {
    fn timecode_at(&self, utc: SystemTime) -> FrameTimecode;
}

/// What the overlay and the WebRTC data channel show of the table, pushed by the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableView {
    pub phase: String,
    pub round_id: Option<String>,
    /// The bet window's close, when betting is open.
    pub deadline: Option<SystemTime>,
}

/// Errors of the video layer, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("GStreamer cannot start: {0} (are the GStreamer 1.22 libraries installed? run scripts/install-deps.sh)")]
    Init(String),
    #[error("the GStreamer element `{element}` is missing: {hint}")]
    MissingElement { element: String, hint: String },
    #[error("camera `{camera}`: {what}: {reason}")]
    Pipeline {
        camera: String,
        what: String,
        reason: String,
    },
    #[error("camera `{0}` is not configured")]
    UnknownCamera(String),
    #[error("camera `{camera}` already serves {max} viewers; raise [[camera]] max_viewers or use the LL-HLS fallback")]
    TooManyViewers { camera: String, max: usize },
    #[error("the SDP offer cannot be used: {0}")]
    BadOffer(String),
    #[error("no WebRTC session `{0}`")]
    UnknownSession(String),
    #[error("WebRTC negotiation failed: {0}")]
    Negotiation(String),
    #[error("WHIP push to {url} failed: {reason}")]
    Whip { url: String, reason: String },
    #[error("recording directory {dir}: {source}")]
    Recording {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl VideoError {
    pub(crate) fn pipeline(camera: &str, what: &str, reason: impl std::fmt::Display) -> Self {
        VideoError::Pipeline {
            camera: camera.to_owned(),
            what: what.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Starts GStreamer once for the process.
pub fn init() -> Result<(), VideoError> {
    gstreamer::init().map_err(|e| VideoError::Init(e.to_string()))
}

/// Checks that an element exists, with the Debian package to install when it does not.
pub fn require_element(element: &str) -> Result<(), VideoError> {
    init()?;
    if gstreamer::ElementFactory::find(element).is_some() {
        return Ok(());
    }
    let package = debian_package(element);
    Err(VideoError::MissingElement {
        element: element.to_owned(),
        hint: format!(
            "install the Debian package {package} (scripts/install-deps.sh installs the defaults)"
        ),
    })
}

/// The Debian 12 package that ships a GStreamer element the cameras use.
fn debian_package(element: &str) -> &'static str {
    match element {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "webrtcbin" | "rtpbin" => "gstreamer1.0-plugins-bad and gstreamer1.0-nice",
        "vaapih264enc" => "gstreamer1.0-vaapi",
        "nvh264enc" | "debugqroverlay" | "h264parse" => "gstreamer1.0-plugins-bad",
        "rtspsrc" | "v4l2src" | "v4l2h264enc" | "mp4mux" | "splitmuxsink" | "rtph264pay" => {
            "gstreamer1.0-plugins-good"
        }
        // Debian ships the Pango plugin (the text and time overlays) with the X11 sinks.
        "textoverlay" | "timeoverlay" | "clockoverlay" => "gstreamer1.0-x",
        _ => "gstreamer1.0-plugins-base",
    }
}

/// Checks a caps string as a technician wrote it (`[[camera]] caps`).
pub fn check_caps(text: &str) -> Result<(), String> {
    init().map_err(|e| e.to_string())?;
    let caps = text
        .parse::<gstreamer::Caps>()
        .map_err(|_| format!("`{text}` is not GStreamer caps"))?;
    if caps.is_empty() || caps.is_any() {
        return Err(format!("`{text}` names no format"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::debian_package;

    #[test]
    fn a_missing_element_names_the_debian_package_that_ships_it() {
        // The overlays are Pango's, which Debian 12 ships in gstreamer1.0-x, not in -base:
        // a fresh machine with -base alone has no textoverlay.
        assert_eq!(debian_package("textoverlay"), "gstreamer1.0-x");
        assert_eq!(debian_package("timeoverlay"), "gstreamer1.0-x");
        assert_eq!(debian_package("h264parse"), "gstreamer1.0-plugins-bad");
        assert_eq!(debian_package("x264enc"), "gstreamer1.0-plugins-ugly");
        assert_eq!(debian_package("videoconvert"), "gstreamer1.0-plugins-base");
    }
}
