//! The simulators and PTYs read back through a real serial port stack (`tokio-serial`), the way
//! the daemon opens `/dev/ttyUSB0`.

use std::path::Path;
use std::time::Duration;

use croupier_drivers::pty::PtyPair;
use croupier_drivers::simulator::{Simulator, SimulatorOptions};
use croupier_drivers::DeviceRole;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tokio_util::sync::CancellationToken;

const WITHIN: Duration = Duration::from_secs(10);

fn open_port(path: &Path) -> SerialStream {
    let path = path.to_str().expect("UTF-8 path");
    tokio_serial::new(path, 9600)
        .open_native_async()
        .expect("open the slave as a serial port")
}

async fn read_line(port: &mut BufReader<SerialStream>) -> Vec<u8> {
    let mut line = Vec::new();
    timeout(WITHIN, port.read_until(b'\n', &mut line))
        .await
        .expect("a line in time")
        .expect("read");
    line
}

#[tokio::test]
async fn a_line_written_to_the_master_comes_out_of_the_serial_port() {
    let pair = PtyPair::open().expect("openpty");
    let mut port = BufReader::new(open_port(pair.slave_path()));
    let mut master = pair.into_master().expect("master");

    master.write_all(b"KH\r\n").await.expect("write");
    assert_eq!(
        read_line(&mut port).await,
        b"KH\r\n",
        "CR LF must pass untouched"
    );

    // And the other way: what the daemon sends reaches the master.
    port.get_mut()
        .write_all(b"ping\r\n")
        .await
        .expect("write to port");
    let mut back = [0u8; 6];
    timeout(WITHIN, master.read_exact(&mut back))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&back, b"ping\r\n");
}

#[tokio::test]
async fn the_master_survives_the_reader_closing_and_reopening() {
    let pair = PtyPair::open().expect("openpty");
    let path = pair.slave_path().to_owned();
    let mut master = pair.into_master().expect("master");

    let mut port = BufReader::new(open_port(&path));
    master.write_all(b"first\r\n").await.expect("write");
    assert_eq!(read_line(&mut port).await, b"first\r\n");
    drop(port);

    // Nobody has the slave open now: writes must still succeed (no EIO).
    master
        .write_all(b"unread\r\n")
        .await
        .expect("write with no reader");
    master.discard_unread().expect("discard");

    let mut port = BufReader::new(open_port(&path));
    master.write_all(b"second\r\n").await.expect("write");
    assert_eq!(read_line(&mut port).await, b"second\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_wheel_simulator_plays_a_full_round_on_its_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("wheel");
    let opts = SimulatorOptions {
        link: Some(link.clone()),
        pace: 200.0,
        seed: 17,
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(DeviceRole::Wheel, opts).expect("start");
    assert_eq!(sim.port_path(), link);
    let text = sim.to_string();
    assert!(text.starts_with("wheel simulator on /dev/pts/"), "{text}");
    assert!(
        text.ends_with(&format!("(linked at {})", link.display())),
        "{text}"
    );

    // Open the link before the first frame (START_DELAY / pace = 2.5 ms later).
    let mut port = BufReader::new(open_port(&link));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sim.run(shutdown.clone()));

    // Read until a full round: game start (1) through winning number (5).
    let mut states = Vec::new();
    let mut lines = 0;
    loop {
        let line = read_line(&mut port).await;
        lines += 1;
        assert!(lines < 200, "no full round in 200 lines: {states:?}");
        let text = String::from_utf8(line).expect("ASCII");
        let body = text.strip_suffix("\r\n").expect("CR LF");
        let fields: Vec<&str> = body.split(';').collect();
        assert_eq!(fields.len(), 7, "{text:?}");
        assert_eq!(fields[0], "*X");
        assert_eq!(fields[2].len(), 3, "spin count has 3 digits: {text:?}");
        let number: u8 = fields[3].parse().expect("number");
        assert!(number <= 36);
        let state: u8 = fields[1].parse().expect("state");
        if state == 1 {
            states.clear();
        }
        states.push(state);
        if state == 5 && states.first() == Some(&1) {
            break;
        }
    }
    let mut expected = vec![1];
    expected.extend([2; 15]);
    expected.extend([3, 4, 5]);
    assert_eq!(states, expected);

    shutdown.cancel();
    let summary = timeout(WITHIN, task)
        .await
        .expect("stops in time")
        .expect("task")
        .expect("simulator");
    assert!(summary.frames >= 19, "{summary:?}");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link is removed when the simulator stops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_nobody_reads_neither_wedges_nor_fails() {
    let opts = SimulatorOptions {
        pace: 1e9,
        rounds: Some(1_000),
        write_timeout: Duration::from_millis(50),
        linger: Duration::ZERO,
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(DeviceRole::Wheel, opts).expect("start");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sim.run(shutdown.clone()));
    // 1 000 rounds are about 400 KiB: far more than the kernel queues for a PTY nobody reads.
    let summary = timeout(Duration::from_secs(60), task)
        .await
        .expect("finishes despite no reader")
        .expect("task")
        .expect("simulator");
    assert_eq!(summary.rounds, 1_000);
    assert!(summary.dropped > 0, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_runs_and_stops_on_cancel() {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut ports = Vec::new();
    for role in DeviceRole::ALL {
        let opts = SimulatorOptions {
            pace: 500.0,
            ..SimulatorOptions::default()
        };
        let sim = Simulator::start(role, opts).expect("start");
        ports.push((role, BufReader::new(open_port(sim.slave_path()))));
        tasks.push(tokio::spawn(sim.run(shutdown.clone())));
    }
    for (role, port) in &mut ports {
        let mut first = [0u8; 1];
        timeout(WITHIN, port.read_exact(&mut first))
            .await
            .expect("a byte in time")
            .expect("read");
        match role {
            DeviceRole::Wheel => assert_eq!(first[0], b'*'),
            DeviceRole::Pedal => assert_eq!(first[0], b'P'),
            DeviceRole::Rfid => assert_eq!(first[0], b'E'),
            DeviceRole::Shoe => assert!(b"A23456789TJQK".contains(&first[0])),
        }
    }
    shutdown.cancel();
    for task in tasks {
        timeout(WITHIN, task)
            .await
            .expect("stops in time")
            .expect("task")
            .expect("simulator");
    }
}
