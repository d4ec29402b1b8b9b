//! A real camera pipeline (GStreamer's test source through the same path a V4L2 or RTSP camera
//! takes): frames are stamped with the engine's timecode, encoded once, cut into LL-HLS parts.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use croupier_pipelines::camera::{Camera, CameraState};
use croupier_pipelines::video::{CameraSettings, FrameTimecode, TimecodeSource};
use croupier_pipelines::CameraSource;

/// A timecode at 25 fps from the time of day (non-drop), like the engine's at that rate.
struct Tod25;

impl TimecodeSource for Tod25 {
    fn timecode_at(&self, utc: SystemTime) -> FrameTimecode {
        let ns = utc
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 86_400_000_000_000;
        let frames_total = (ns * 25 + 500_000_000) / 1_000_000_000;
        let f = (frames_total % 25) as u32;
        let s = (frames_total / 25) as u32;
        FrameTimecode {
            hours: s / 3600 % 24,
            minutes: s / 60 % 60,
            seconds: s % 60,
            frames: f,
            fps_n: 25,
            fps_d: 1,
            drop_frame: false,
        }
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn test_camera_reaches_ll_hls_with_parts() {
    let mut settings = CameraSettings::new("t1", CameraSource::Test);
    settings.width = 320;
    settings.height = 240;
    let states = Arc::new(Mutex::new(Vec::new()));
    let s2 = states.clone();
    let cam = Camera::start(
        settings,
        Arc::new(Tod25),
        Arc::new(move |st, why: &str| s2.lock().unwrap().push((st, why.to_owned()))),
    )
    .expect("camera starts");
    assert!(
        wait_for(Duration::from_secs(10), || cam.state().0 == CameraState::Up),
        "camera up: {:?}",
        states.lock().unwrap()
    );
    assert!(
        wait_for(Duration::from_secs(10), || cam
            .hls()
            .render()
            .is_some_and(|p| p.matches("#EXT-X-PART:").count() >= 6)),
        "parts: {:?}",
        cam.hls().render()
    );
    let playlist = cam.hls().render().unwrap();
    println!("{playlist}");
    assert!(cam.hls().file("init.mp4").is_some());
    let frames = cam
        .stats()
        .frames
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(frames > 50, "frames {frames}");
    cam.stop();
}

#[test]
fn whip_push_to_nowhere_reports_down() {
    let mut settings = CameraSettings::new("w1", CameraSource::Test);
    settings.width = 320;
    settings.height = 240;
    settings.whip = Some(croupier_pipelines::video::WhipSettings {
        url: "http://127.0.0.1:9/whip".into(),
        token: None,
    });
    let cam =
        Camera::start(settings, Arc::new(Tod25), Arc::new(|_, _: &str| {})).expect("camera starts");
    let ok = wait_for(Duration::from_secs(15), || {
        cam.whip_state().is_some_and(|s| s.starts_with("down:"))
    });
    assert!(ok, "whip state {:?}", cam.whip_state());
    cam.stop();
}
