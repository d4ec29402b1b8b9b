//! A camera pulled and returned: an RTSP camera (GStreamer's RTSP server in a child process) is
//! killed mid-stream and started again. The daemon keeps running, reports the camera down and
//! then up, its LL-HLS playlist keeps growing through the loss (the "camera lost" picture), and
//! a second camera on the same table never stops.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn rtsp_camera(port: u16) -> Proc {
    let child = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rtsp_camera.py"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the RTSP camera (python3-gi and gir1.2-gst-rtsp-server-1.0; make test installs them)");
    let proc = Proc {
        child,
        name: "rtsp camera",
    };
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("the RTSP camera did not listen");
    proc
}

fn camera_fact(http: u16, camera: &str, key: &str) -> Option<String> {
    let (_, body) = http_get(http, "/status")?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["components"][format!("camera:{camera}")]["facts"][key]
        .as_str()
        .map(str::to_owned)
}

/// The highest part the playlist lists, as (msn, part).
fn live_edge(http: u16, camera: &str) -> Option<(u64, u64)> {
    let (code, body) = http_get(http, &format!("/hls/{camera}/index.m3u8"))?;
    if code != 200 {
        return None;
    }
    body.lines()
        .filter_map(|l| l.split("URI=\"part").nth(1))
        .filter_map(|rest| {
            let name = rest.split(".m4s").next()?;
            let (m, p) = name.split_once('.')?;
            Some((m.parse().ok()?, p.parse().ok()?))
        })
        .max()
}

#[test]
fn a_lost_camera_recovers_and_the_others_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rtsp_port = free_port();
    let http = free_port();
    let mut config = table_config(free_port(), http, &[]);
    config.push_str(&format!(
        "\n[video]\nrecording_segment = \"4s\"\n\n[[camera]]\nname = \"ip\"\nsource = \"rtsp://127.0.0.1:{rtsp_port}/cam\"\nwidth = 320\nheight = 240\n\n[[camera]]\nname = \"overhead\"\nsource = \"test\"\nwidth = 320\nheight = 240\n\n[[camera]]\nname = \"usb\"\nsource = \"v4l2:///dev/video-croupier-absent\"\ncaps = \"image/jpeg,width=1280,height=720\"\nwidth = 320\nheight = 240\n"
    ));
    let path = dir.path().join("table.toml");
    std::fs::write(&path, config).expect("config");
    let mut camera = rtsp_camera(rtsp_port);
    let mut daemon = Daemon::start(&path, &[]);

    let up = |name: &str| component_state(http, &format!("camera:{name}")).as_deref() == Some("up");
    wait_for(Duration::from_secs(20), || up("ip").then_some(()))
        .unwrap_or_else(|| panic!("the RTSP camera never came up:\n{}", daemon.log_text()));
    wait_for(Duration::from_secs(20), || up("overhead").then_some(()))
        .unwrap_or_else(|| panic!("the test camera never came up:\n{}", daemon.log_text()));
    let before = wait_for(Duration::from_secs(10), || live_edge(http, "ip")).expect("ip playlist");

    // Pull the camera.
    drop(camera);
    wait_for(Duration::from_secs(15), || {
        (component_state(http, "camera:ip").as_deref() == Some("down")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the lost camera was not reported down:\n{}",
            daemon.log_text()
        )
    });
    assert!(daemon.proc.is_running(), "the daemon died with its camera");
    assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
    assert!(up("overhead"), "the other camera stopped with the lost one");
    // A V4L2 camera that is not plugged in is down with the device's error, and retried.
    let (_, body) = http_get(http, "/status").expect("status");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let usb = &json["components"]["camera:usb"];
    assert_eq!(usb["state"], "down", "{usb}");
    assert!(
        usb["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("video-croupier-absent"),
        "{usb}"
    );
    // Viewers keep getting video: the playlist grows while the camera is away.
    let during = live_edge(http, "ip").expect("playlist while lost");
    let later = wait_for(Duration::from_secs(5), || {
        live_edge(http, "ip").filter(|edge| *edge > during)
    });
    assert!(
        later.is_some() && during >= before,
        "playlist stalled while the camera was lost: {before:?} {during:?} {later:?}"
    );

    // Plug it back.
    camera = rtsp_camera(rtsp_port);
    wait_for(Duration::from_secs(30), || up("ip").then_some(()))
        .unwrap_or_else(|| panic!("the camera did not come back:\n{}", daemon.log_text()));
    let reconnects: u64 = {
        let (_, body) = http_get(http, "/status").expect("status");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        json["components"]["camera:ip"]["counters"]["reconnects"]
            .as_u64()
            .unwrap_or(0)
    };
    let _ = camera_fact(http, "ip", "fps");
    assert!(
        reconnects >= 1 || daemon.log_text().contains("camera lost"),
        "no reconnect counted"
    );
    assert!(
        daemon.log_text().contains("camera lost"),
        "the loss was not logged"
    );
    assert!(up("overhead"));
    drop(camera);
    // Both cameras kept their rolling recording, named by UTC and start timecode.
    for cam in ["ip", "overhead"] {
        let files =
            croupier_pipelines::recording::list(&dir.path().join("state/recordings").join(cam));
        assert!(!files.is_empty(), "no recording of {cam}");
        let age = std::time::SystemTime::now()
            .duration_since(files[0].started)
            .expect("past");
        assert!(
            age < Duration::from_secs(120),
            "{cam}'s first file starts {age:?} ago"
        );
        let name = files[0]
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.len() == "20261121T142310.120Z_14-23-10-03.mp4".len(),
            "{name}"
        );
    }
}
