//! A stock browser plays each camera from the daemon: Debian's headless Chromium, driven by
//! playwright-core (tests/browser/view.mjs), in a network namespace joined to the host by a veth
//! pair (libnice gathers no loopback candidates). Over WHEP, two viewers at once decode frames
//! without freezes and get the table's data channel while the camera holds one encoder; over
//! LL-HLS (the viewer's Media Source player, with blocking playlist reload) frames play within
//! the latency budget.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::*;
use serde_json::Value;

struct Table {
    _dir: tempfile::TempDir,
    daemon: Daemon,
    http: u16,
}

/// A daemon with one test camera, listening where the namespace can reach it.
fn table(ns: &NetNs) -> Table {
    table_with(ns, "")
}

/// The same, with extra `[[camera]]` keys.
fn table_with(ns: &NetNs, camera_keys: &str) -> Table {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = free_port();
    let config = table_config(free_port(), http, &[]).replace(
        &format!("listen = \"127.0.0.1:{http}\""),
        &format!("listen = \"0.0.0.0:{http}\""),
    ) + "\n[[camera]]\nname = \"overhead\"\nsource = \"test\"\nwidth = 640\nheight = 360\nrecording = false\n"
        + camera_keys;
    let path = dir.path().join("table.toml");
    std::fs::write(&path, config).expect("config");
    let daemon = Daemon::start(&path, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(http, "camera:overhead").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("camera never up:\n{}", daemon.log_text()));
    // The LL-HLS playlist needs a segment or two before a player can hold back from the edge.
    wait_for(Duration::from_secs(10), || {
        http_get(http, "/hls/overhead/index.m3u8")
            .filter(|(c, b)| *c == 200 && b.contains("#EXTINF"))
    })
    .expect("playlist with a whole segment");
    let _ = ns;
    Table {
        _dir: dir,
        daemon,
        http,
    }
}

/// Runs the viewer harness inside the namespace.
fn view(ns: &NetNs, url: &str, mode: &str, pages: u32, seconds: u32) -> std::process::Child {
    ns.command("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/view.mjs"
        ))
        .args([
            "--url",
            url,
            "--mode",
            mode,
            "--pages",
            &pages.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (make test installs it and tests/browser's packages)")
}

fn finish(child: std::process::Child) -> Value {
    let out = child.wait_with_output().expect("viewer harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "viewer harness failed: {stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("harness output {e}: {stdout}\n{stderr}"))
}

fn camera_facts(http: u16) -> Value {
    let (_, body) = http_get(http, "/status").expect("status");
    let json: Value = serde_json::from_str(&body).expect("json");
    json["components"]["camera:overhead"]["facts"].clone()
}

fn request(port: u16, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

#[test]
fn two_whep_viewers_share_one_encode_and_get_the_table_channel() {
    let ns = NetNs::create().expect("network namespace (run as root; make test does)");
    let t = table(&ns);
    let url = format!("http://{}:{}/video/overhead", ns.host_ip(), t.http);
    let child = view(&ns, &url, "whep", 2, 8);
    // While both watch: two viewers, still one encoder.
    let mut most_viewers = 0;
    let mut encoders_seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(9) {
        let facts = camera_facts(t.http);
        let viewers: u32 = facts["viewers"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        most_viewers = most_viewers.max(viewers);
        if viewers == 2 {
            encoders_seen.push(facts["encoders"].as_str().unwrap_or("?").to_owned());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let report = finish(child);
    let pages = report["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 2);
    for page in pages {
        assert_eq!(page["mode"], "whep", "{page}");
        let decoded = page["framesDecoded"].as_u64().unwrap_or(0);
        // 25 fps for ~8 s, minus connection set-up.
        assert!(decoded >= 100, "only {decoded} frames decoded: {page}");
        assert_eq!(page["freezeCount"].as_u64(), Some(0), "freezes: {page}");
        assert!(
            page["messages"].as_u64().unwrap_or(0) >= 3,
            "data channel: {page}"
        );
        let tc = page["lastMessage"]["timecode"].as_str().unwrap_or("");
        assert!(
            tc.len() == 11 && tc.chars().filter(|c| *c == ':').count() == 3,
            "timecode {tc:?}"
        );
        assert_eq!(page["lastMessage"]["phase"], "idle");
    }
    assert_eq!(most_viewers, 2, "viewers counted: {most_viewers}");
    assert!(
        !encoders_seen.is_empty() && encoders_seen.iter().all(|e| e == "1"),
        "encoders with two viewers: {encoders_seen:?}"
    );
    // Both left: their sessions are gone.
    wait_for(Duration::from_secs(10), || {
        (camera_facts(t.http)["sessions"] == "0").then_some(())
    })
    .unwrap_or_else(|| panic!("sessions left behind: {}", camera_facts(t.http)));
    assert!(t.daemon.log_text().contains("WHEP viewer joined"));
}

#[test]
fn whep_refuses_bad_requests_with_a_reason() {
    let ns = NetNs::create().expect("network namespace");
    let t = table(&ns);
    let (code, body) = request(t.http, "POST", "/whep/overhead", "text/plain", "v=0");
    assert_eq!(code, 415, "{body}");
    let (code, body) = request(
        t.http,
        "POST",
        "/whep/overhead",
        "application/sdp",
        "not sdp at all",
    );
    assert_eq!(code, 400, "{body}");
    let audio_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n";
    let (code, body) = request(
        t.http,
        "POST",
        "/whep/overhead",
        "application/sdp",
        audio_only,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("H.264"), "{body}");
    let (code, _) = request(
        t.http,
        "POST",
        "/whep/nosuch",
        "application/sdp",
        audio_only,
    );
    assert_eq!(code, 404);
    let (code, _) = request(t.http, "DELETE", "/whep/overhead/nosuch", "text/plain", "");
    assert_eq!(code, 404);
    assert_eq!(camera_facts(t.http)["encoders"], "1");
}

#[test]
fn ll_hls_plays_in_chromium_with_blocking_reload() {
    let ns = NetNs::create().expect("network namespace");
    let t = table(&ns);
    // Blocking reload, by hand: ask for the part after the live edge and be held until it exists.
    let (_, playlist) = http_get(t.http, "/hls/overhead/index.m3u8").expect("playlist");
    let hint = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"))
        .and_then(|r| r.split(".m4s").next())
        .and_then(|n| n.split_once('.'))
        .map(|(m, p)| {
            (
                m.parse::<u64>().expect("msn"),
                p.parse::<u32>().expect("part"),
            )
        })
        .expect("preload hint");
    let asked = Instant::now();
    let (code, held) = http_get(
        t.http,
        &format!(
            "/hls/overhead/index.m3u8?_HLS_msn={}&_HLS_part={}",
            hint.0, hint.1
        ),
    )
    .expect("blocking reload");
    let waited = asked.elapsed();
    assert_eq!(code, 200);
    assert!(
        held.contains(&format!("part{}.{}.m4s", hint.0, hint.1)),
        "held playlist lacks the part: {held}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "held {waited:?} for one part"
    );
    assert_eq!(
        http_get(t.http, "/hls/overhead/index.m3u8?_HLS_part=1").map(|r| r.0),
        Some(400)
    );
    assert_eq!(
        http_get(t.http, "/hls/overhead/index.m3u8?_HLS_msn=999999").map(|r| r.0),
        Some(400)
    );
    assert_eq!(
        http_get(t.http, "/hls/overhead/nosuch.m4s").map(|r| r.0),
        Some(404)
    );

    let url = format!("http://{}:{}/video/overhead", ns.host_ip(), t.http);
    let report = finish(view(&ns, &url, "hls", 1, 8));
    let page = &report["pages"][0];
    assert_eq!(page["mode"], "hls", "{page}");
    let decoded = page["framesDecoded"].as_u64().unwrap_or(0);
    assert!(decoded >= 120, "only {decoded} frames played: {page}");
    assert!(
        page["hls"]["partsAppended"].as_u64().unwrap_or(0) >= 10,
        "{page}"
    );
    let latency = page["latencyMs"].as_f64().expect("latency");
    assert!(
        latency > 0.0 && latency <= 2500.0,
        "LL-HLS latency {latency} ms is over the 2.5 s budget"
    );
}

#[test]
fn a_viewer_refused_webrtc_falls_back_to_ll_hls_and_plays() {
    let ns = NetNs::create().expect("network namespace");
    // One WebRTC viewer at most: the second page is refused (503) and must fall back.
    let t = table_with(&ns, "max_viewers = 1\n");
    let url = format!("http://{}:{}/video/overhead", ns.host_ip(), t.http);
    let report = finish(view(&ns, &url, "auto", 2, 10));
    let pages = report["pages"].as_array().expect("pages");
    let modes: Vec<&str> = pages
        .iter()
        .map(|p| p["mode"].as_str().unwrap_or(""))
        .collect();
    assert!(
        modes.contains(&"whep") && modes.contains(&"hls"),
        "modes {modes:?}: {report}"
    );
    for page in pages {
        let decoded = page["framesDecoded"].as_u64().unwrap_or(0);
        assert!(
            decoded >= 100,
            "{} decoded only {decoded}: {page}",
            page["mode"]
        );
    }
    assert!(t.daemon.log_text().contains("WHEP viewer joined"));
}
