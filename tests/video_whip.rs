//! The WHIP client pushes a camera to a media server: a WHIP endpoint (tests/whip_server.py,
//! GStreamer's webrtcbin as the receiving peer) inside a network namespace. The daemon starts
//! before the server exists, keeps retrying, connects with its bearer token once the server is
//! up, and the server decodes the frames. A camera with a wrong token is refused (401) and says
//! so on /status.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::netns::NetNs;
use common::*;
use serde_json::Value;

fn server_stats(ns: &NetNs, port: u16) -> Option<Value> {
    let out = ns
        .command("curl")
        .args([
            "-s",
            "--max-time",
            "2",
            &format!("http://{}:{port}/stats", ns.ns_ip()),
        ])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn whip_fact(http: u16, camera: &str) -> String {
    http_get(http, "/status")
        .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
        .and_then(|j| {
            j["components"][format!("camera:{camera}")]["facts"]["whip"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

#[test]
fn the_whip_push_reaches_a_media_server_and_retries_until_it_can() {
    let ns = NetNs::create().expect("network namespace (run as root; make test does)");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let http = free_port();
    std::fs::write(dir.path().join("good.token"), "s3cret\n").expect("token");
    std::fs::write(dir.path().join("bad.token"), "wrong\n").expect("token");
    let url = format!("http://{}:{port}/whip", ns.ns_ip());
    let config = table_config(free_port(), http, &[])
        + &format!(
            "\n[[camera]]\nname = \"pushed\"\nsource = \"test\"\nwidth = 320\nheight = 240\nrecording = false\nwhip_url = \"{url}\"\nwhip_token_file = \"good.token\"\n\n[[camera]]\nname = \"refused\"\nsource = \"test\"\nwidth = 320\nheight = 240\nrecording = false\nwhip_url = \"{url}\"\nwhip_token_file = \"bad.token\"\n"
        );
    let path = dir.path().join("table.toml");
    std::fs::write(&path, config).expect("config");
    let daemon = Daemon::start(&path, &[]);

    // No server yet: the push fails and is retried.
    wait_for(Duration::from_secs(20), || {
        whip_fact(http, "pushed").starts_with("down:").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no failed push reported: {:?}\n{}",
            whip_fact(http, "pushed"),
            daemon.log_text()
        )
    });

    let server = ns
        .command("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/whip_server.py"))
        .args([&ns.ns_ip().to_string(), &port.to_string(), "s3cret"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the WHIP server (python3-gi, gir1.2-gst-plugins-bad-1.0)");
    let _server = Proc {
        child: server,
        name: "whip server",
    };

    let stats = wait_for(Duration::from_secs(40), || {
        server_stats(&ns, port).filter(|s| s["frames"].as_u64().unwrap_or(0) >= 50)
    })
    .unwrap_or_else(|| {
        panic!(
            "the server decoded no pushed video: {:?}\n{}",
            server_stats(&ns, port),
            daemon.log_text()
        )
    });
    assert!(stats["sessions"].as_u64().unwrap_or(0) >= 1);
    wait_for(Duration::from_secs(10), || {
        (whip_fact(http, "pushed") == "connected").then_some(())
    })
    .unwrap_or_else(|| panic!("status says {:?}", whip_fact(http, "pushed")));
    // The wrong token is refused, and the technician sees why.
    wait_for(Duration::from_secs(30), || {
        whip_fact(http, "refused").contains("401").then_some(())
    })
    .unwrap_or_else(|| panic!("refused camera says {:?}", whip_fact(http, "refused")));
    assert!(
        server_stats(&ns, port).expect("stats")["refused"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    assert!(daemon.log_text().contains("WHIP offer accepted"));
}
