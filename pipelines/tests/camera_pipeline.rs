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

/// A solid-colour PNG written by GStreamer itself (`0xAARRGGBB`), replaced by rename as the
/// `image://` source expects.
fn write_png(path: &std::path::Path, argb: u32) {
    use croupier_pipelines::gstreamer as gst;
    use gst::prelude::*;
    croupier_pipelines::video::init().unwrap();
    let tmp = path.with_extension("tmp");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color={argb} ! video/x-raw,width=160,height=120 ! videoconvert ! pngenc ! filesink location={}",
        tmp.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The middle pixel of the newest frame from a BGR tap.
fn centre_bgr(tap: &croupier_pipelines::gstreamer_app::AppSink) -> Option<[u8; 3]> {
    let frame = croupier_pipelines::camera::pull_frame(tap, Duration::from_millis(500))?;
    assert_eq!(frame.pixel_bytes, 3);
    assert!(
        frame.capture_utc.is_some(),
        "a tapped frame carries its capture time"
    );
    assert!(
        frame.timecode.is_some(),
        "a tapped frame carries its timecode"
    );
    let (w, h) = (frame.width as usize, frame.height as usize);
    let i = ((h / 2) * w + w / 2) * 3;
    Some([frame.data[i], frame.data[i + 1], frame.data[i + 2]])
}

#[test]
fn an_image_source_shows_the_file_and_follows_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.png");
    // Absent at start: the camera is down, naming the file.
    let mut settings = CameraSettings::new("still", CameraSource::Image { path: path.clone() });
    settings.width = 320;
    settings.height = 240;
    settings.recording = None;
    let states = Arc::new(Mutex::new(Vec::new()));
    let s2 = states.clone();
    let cam = Camera::start(
        settings,
        Arc::new(Tod25),
        Arc::new(move |st, why: &str| s2.lock().unwrap().push((st, why.to_owned()))),
    )
    .expect("camera starts");
    assert!(
        wait_for(Duration::from_secs(10), || cam.state().0
            == CameraState::Down),
        "{:?}",
        cam.state()
    );
    assert!(cam.state().1.contains("table.png"), "{:?}", cam.state());

    write_png(&path, 0xffff0000);
    assert!(
        wait_for(Duration::from_secs(20), || cam.state().0 == CameraState::Up),
        "{:?}",
        states.lock().unwrap()
    );
    let tap = cam
        .tap_raw(Some(64), Some(48), Some(10), Some("BGR"))
        .unwrap();
    let red = |p: [u8; 3]| p[2] > 200 && p[1] < 60 && p[0] < 60;
    let blue = |p: [u8; 3]| p[0] > 200 && p[1] < 60 && p[2] < 60;
    assert!(
        wait_for(Duration::from_secs(5), || centre_bgr(&tap).is_some_and(red)),
        "the picture is the file's (red)"
    );
    // A new picture by rename is shown within a second or so.
    write_png(&path, 0xff0000ff);
    assert!(
        wait_for(Duration::from_secs(5), || centre_bgr(&tap)
            .is_some_and(blue)),
        "the new picture (blue) is shown"
    );
    // A file that goes away keeps the last good picture on screen, and says so.
    std::fs::remove_file(&path).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || cam
            .state()
            .1
            .contains("last good picture")),
        "{:?}",
        cam.state()
    );
    assert_eq!(cam.state().0, CameraState::Up);
    assert!(centre_bgr(&tap).is_some_and(blue));
    cam.stop();
}
