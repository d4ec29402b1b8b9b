//! Croupier's camera side: where each table camera's frames come from, and (with the video and
//! vision issues) the GStreamer pipelines that encode them once and the OpenCV stage that reads
//! cards and the roulette pocket from them.
//!
//! For now this crate knows how a camera source is written in the config (`[[camera]] source`),
//! so that `croupier validate` can refuse a bad one before anything starts, and it holds the
//! LL-HLS fallback's playlist logic ([`llhls`]), which the GStreamer pipelines will feed.

#![forbid(unsafe_code)]

/// GStreamer, as this crate builds against it (for taps and tests).
pub use gstreamer;
pub use gstreamer_app;

pub mod camera;
pub mod fmp4;
pub mod hls;
pub mod llhls;
pub mod recording;
pub mod video;
pub mod webrtc;
pub mod whip;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSource {
    /// GStreamer's moving test pattern: the demo and the tests use it in place of a camera.
    Test,
    /// A V4L2 capture device, written `v4l2:///dev/video0`.
    V4l2 { device: PathBuf },
    /// An IP camera over RTSP (or RTSPS), written as its full URL.
    Rtsp { url: String },
    /// A still image shown as a live camera, re-read whenever the file changes, written
    /// `image:///path/frame.png`: for checking a calibration on a photograph, and for the
    /// demo's rendered table.
    Image { path: PathBuf },
}

/// A camera source that cannot be understood, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraSourceError {
    #[error(
        "`{0}` is not a camera source; write `test`, `v4l2:///dev/videoN`, `rtsp://host/path` or `image:///path/frame.png`"
    )]
    Unknown(String),
    #[error(
        "`{0}` names no device; write the device path after `v4l2://`, like `v4l2:///dev/video0`"
    )]
    V4l2NoDevice(String),
    #[error("`{0}` has no host; write the camera's URL like `rtsp://192.0.2.10:554/stream1`")]
    RtspNoHost(String),
    #[error("`{0}` names no file; write the image's absolute path after `image://`, like `image:///var/lib/croupier/table.png`")]
    ImageNoPath(String),
}

impl FromStr for CameraSource {
    type Err = CameraSourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "test" {
            return Ok(CameraSource::Test);
        }
        if let Some(path) = s.strip_prefix("v4l2://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(CameraSourceError::V4l2NoDevice(s.to_owned()));
            }
            return Ok(CameraSource::V4l2 {
                device: PathBuf::from(path),
            });
        }
        if let Some(path) = s.strip_prefix("image://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(CameraSourceError::ImageNoPath(s.to_owned()));
            }
            return Ok(CameraSource::Image {
                path: PathBuf::from(path),
            });
        }
        if let Some(rest) = s
            .strip_prefix("rtsp://")
            .or_else(|| s.strip_prefix("rtsps://"))
        {
            let authority = rest.split('/').next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if host.is_empty() || host.starts_with(':') {
                return Err(CameraSourceError::RtspNoHost(s.to_owned()));
            }
            return Ok(CameraSource::Rtsp { url: s.to_owned() });
        }
        Err(CameraSourceError::Unknown(s.to_owned()))
    }
}

impl fmt::Display for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSource::Test => f.write_str("test"),
            CameraSource::V4l2 { device } => write!(f, "v4l2://{}", device.display()),
            CameraSource::Rtsp { url } => f.write_str(url),
            CameraSource::Image { path } => write!(f, "image://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_form() {
        assert_eq!("test".parse(), Ok(CameraSource::Test));
        assert_eq!(
            "image:///srv/table.png".parse(),
            Ok(CameraSource::Image {
                path: PathBuf::from("/srv/table.png")
            })
        );
        assert_eq!(
            "image://table.png".parse::<CameraSource>(),
            Err(CameraSourceError::ImageNoPath("image://table.png".into()))
        );
        assert_eq!(
            "v4l2:///dev/video0".parse(),
            Ok(CameraSource::V4l2 {
                device: PathBuf::from("/dev/video0")
            })
        );
        assert_eq!(
            "rtsp://user:pw@192.0.2.10:554/s1".parse(),
            Ok(CameraSource::Rtsp {
                url: "rtsp://user:pw@192.0.2.10:554/s1".into()
            })
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        assert!(matches!(
            "v4l2://".parse::<CameraSource>(),
            Err(CameraSourceError::V4l2NoDevice(_))
        ));
        assert!(matches!(
            "rtsp:///x".parse::<CameraSource>(),
            Err(CameraSourceError::RtspNoHost(_))
        ));
        assert!(matches!(
            "usb0".parse::<CameraSource>(),
            Err(CameraSourceError::Unknown(_))
        ));
    }

    #[test]
    fn displays_as_written() {
        for s in ["test", "v4l2:///dev/video2", "rtsp://cam.local/stream"] {
            let parsed: CameraSource = s.parse().expect("valid");
            assert_eq!(parsed.to_string(), s);
        }
    }
}
