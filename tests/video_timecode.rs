//! The timecode on every frame equals the engine's timecode for the frame's capture instant:
//! a real camera pipeline (GStreamer's test source through the same path a V4L2 or RTSP camera
//! takes) stamped by the daemon's own `Timecode::at_utc`, read back from the frames'
//! `GstVideoTimeCodeMeta` at a raw tap, at a whole rate and a drop-frame rate.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use croupier::timecode::{Timecode, TimecodeRate};
use croupier::video::EngineTimecode;
use croupier_pipelines::camera::{frame_capture_utc, frame_timecode, Camera, CameraState};
use croupier_pipelines::video::CameraSettings;
use croupier_pipelines::CameraSource;
use time::OffsetDateTime;

fn check_rate(rate: TimecodeRate) {
    let (n, d) = rate.fraction();
    let mut settings = CameraSettings::new(format!("tc{n}"), CameraSource::Test);
    settings.width = 320;
    settings.height = 180;
    settings.fps = (n as i32, d as i32);
    let cam = Camera::start(
        settings,
        Arc::new(EngineTimecode(rate)),
        Arc::new(|_, _: &str| {}),
    )
    .expect("camera starts");
    let tap = cam.tap_raw(None, None, None, None).expect("tap");
    let start = Instant::now();
    while cam.state().0 != CameraState::Up && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cam.state().0, CameraState::Up, "{:?}", cam.state());
    let mut labels = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let Some(sample) =
            tap.try_pull_sample(croupier_pipelines::gstreamer::ClockTime::from_mseconds(500))
        else {
            continue;
        };
        let pulled = SystemTime::now();
        let buffer = sample.buffer().expect("buffer");
        let tc = frame_timecode(buffer).expect("every frame carries a timecode meta");
        let captured = frame_capture_utc(buffer).expect("every frame carries its capture UTC");
        // The capture instant is real: before the frame reached us, and not long before.
        let age = pulled
            .duration_since(captured)
            .expect("captured before pulled");
        assert!(age < Duration::from_millis(500), "frame {age:?} old");
        // The label is the engine's for that instant, as an event at that instant carries.
        let engine = Timecode::at_utc(OffsetDateTime::from(captured), rate);
        assert_eq!(
            tc.to_string(),
            engine.to_string(),
            "frame label vs engine label at {captured:?}"
        );
        assert_eq!(
            (tc.fps_n, tc.fps_d, tc.drop_frame),
            (n as i32, d as i32, rate.is_drop_frame())
        );
        labels.push(engine.frame_count());
    }
    cam.stop();
    assert!(
        labels.len() as u32 > 2 * n / d,
        "{} frames in 3 s",
        labels.len()
    );
    // Frames arrive at the rate: consecutive labels, none repeated (a tap may skip when late).
    let steps: Vec<u64> = labels.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let ones = steps.iter().filter(|s| **s == 1).count();
    assert!(
        steps.iter().all(|s| (1..=3).contains(s)),
        "label steps {steps:?}"
    );
    assert!(
        ones * 10 >= steps.len() * 9,
        "most steps are one frame: {steps:?}"
    );
}

#[test]
fn frames_carry_the_engine_timecode_at_25() {
    check_rate(TimecodeRate::Fps25);
}

#[test]
fn frames_carry_the_engine_timecode_at_29_97_drop_frame() {
    check_rate(TimecodeRate::Fps29_97Df);
}
