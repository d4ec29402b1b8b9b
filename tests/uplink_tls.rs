//! The uplink over mutual TLS, against a real mosquitto with two listeners: a plain one on
//! loopback for the test's own subscriber, and a TLS one that requires a client certificate
//! signed by the test's CA (the certificate's CN becomes the MQTT user name).
//!
//! The certificates are made fresh for every test with the `openssl` command line tool: a CA,
//! a server certificate for 127.0.0.1 / localhost (in the subjectAltName, which is what the
//! client checks), a client certificate from the same CA, and a second client certificate from
//! a different CA that the broker must refuse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const EVENTS: &str = "croupier/v1/test/t-01/events";
const STATUS: &str = "croupier/v1/test/t-01/status";
/// The CN of the good client certificate; with `use_identity_as_username` it is the user name.
const CLIENT_CN: &str = "croupier-test-t-01";

/// The X.509 v3 extensions of each kind of certificate. rustls (the daemon's TLS) refuses a CA
/// without `CA:TRUE` and a server certificate whose subjectAltName lacks the address dialled.
const EXTENSIONS: &str = "\
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A certificate and its private key (PEM files).
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// Everything the broker and the daemons need, under one directory.
struct Pki {
    ca: PathBuf,
    server: Pair,
    client: Pair,
    /// Signed by another CA the broker does not know.
    rogue: Pair,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the `openssl` tool is not installed; `make test` installs it (scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA named `name`: `<name>.pem` and `<name>.key`.
fn make_ca(dir: &Path, name: &str, cn: &str) -> Pair {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-config",
            "ext.cnf",
            "-extensions",
            "ca",
        ],
    );
    Pair {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A certificate for `cn` signed by `ca`, with the extensions of section `kind`.
fn make_leaf(dir: &Path, ca: &Pair, name: &str, cn: &str, kind: &str, serial: u32) -> Pair {
    let (cert, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
            "-config",
            "ext.cnf",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca.cert.to_str().unwrap(),
            "-CAkey",
            ca.key.to_str().unwrap(),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-out",
            &cert,
            "-extfile",
            "ext.cnf",
            "-extensions",
            kind,
        ],
    );
    Pair {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

fn make_pki(dir: &Path) -> Pki {
    std::fs::write(dir.join("ext.cnf"), EXTENSIONS).expect("ext.cnf");
    let ca = make_ca(dir, "ca", "Croupier test CA");
    let server = make_leaf(dir, &ca, "server", "localhost", "server", 2);
    let client = make_leaf(dir, &ca, "client", CLIENT_CN, "client", 3);
    let other_ca = make_ca(dir, "other-ca", "Some other CA");
    let rogue = make_leaf(dir, &other_ca, "rogue", CLIENT_CN, "client", 4);
    Pki {
        ca: ca.cert,
        server,
        client,
        rogue,
    }
}

/// mosquitto with a plain listener (anonymous, for the test's subscriber) and a TLS listener
/// that requires a client certificate from the test's CA. Its log goes to `mosquitto.log`.
struct TlsBroker {
    plain: u16,
    tls: u16,
    log: PathBuf,
    _proc: Proc,
}

impl TlsBroker {
    fn start(dir: &Path, pki: &Pki) -> TlsBroker {
        let (plain, tls) = (free_port(), free_port());
        let conf = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings true\n\
                 persistence false\n\
                 log_dest stderr\n\
                 # Keeps a broker started as root from dropping to the `mosquitto` user, which\n\
                 # could not read the keys in the test's directory.\n\
                 user {user}\n\
                 \n\
                 listener {plain} 127.0.0.1\n\
                 allow_anonymous true\n\
                 \n\
                 listener {tls} 127.0.0.1\n\
                 allow_anonymous false\n\
                 cafile {ca}\n\
                 certfile {cert}\n\
                 keyfile {key}\n\
                 require_certificate true\n\
                 use_identity_as_username true\n",
                user = std::env::var("USER").unwrap_or_else(|_| "root".into()),
                ca = pki.ca.display(),
                cert = pki.server.cert.display(),
                key = pki.server.key.display(),
            ),
        )
        .expect("mosquitto.conf");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("mosquitto.log"))
            .spawn()
            .expect("mosquitto");
        let proc = Proc {
            child,
            name: "mosquitto",
        };
        for port in [plain, tls] {
            wait_for(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).ok()
            })
            .unwrap_or_else(|| {
                panic!(
                    "mosquitto is not listening on {port}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        }
        TlsBroker {
            plain,
            tls,
            log,
            _proc: proc,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `mosquitto_sub` on the plain listener, writing every event to `out`.
    fn subscribe_events(&self, out: &Path) -> Proc {
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.plain.to_string()])
            .args(["-q", "1", "-t", EVENTS])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).expect("out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        // Subscribed before the daemon publishes anything.
        std::thread::sleep(Duration::from_millis(300));
        Proc {
            child,
            name: "mosquitto_sub",
        }
    }

    /// The retained message of `topic`, read on the plain listener.
    fn retained(&self, topic: &str) -> Option<String> {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.plain.to_string()])
            .args(["-t", topic, "-C", "1", "-W", "3", "--retained-only"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

/// A table whose pedal simulator presses away, and whose uplink dials the TLS listener with
/// `client` as its certificate.
struct Table {
    config: PathBuf,
    http: u16,
    dir: PathBuf,
    _pedal: Proc,
}

fn table_config(dir: &Path, mqtt: &str) -> (PathBuf, u16) {
    let http = free_port();
    let devices = format!(
        "[[device]]\nrole = \"pedal\"\ndriver = \"serial\"\nport = \"{}\"\n",
        dir.join("pedal").display()
    );
    // The harness's broker port is a placeholder: the [mqtt] url line is replaced.
    let text = config_with_devices(1, http, &devices).replace(
        "url = \"mqtt://127.0.0.1:1\"\n",
        &format!("{mqtt}keep_alive = \"5s\"\n"),
    );
    assert!(
        text.contains("mqtts://"),
        "the url line was replaced:\n{text}"
    );
    let config = dir.join("table.toml");
    std::fs::write(&config, text).expect("config");
    (config, http)
}

fn mqtts(broker: &TlsBroker, ca: &Path, client: &Pair) -> String {
    format!(
        "url = \"mqtts://127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        broker.tls,
        ca.display(),
        client.cert.display(),
        client.key.display()
    )
}

impl Table {
    fn new(dir: &Path, mqtt: &str) -> Table {
        let pedal = simulator("pedal", &dir.join("pedal"), 25.0);
        let (config, http) = table_config(dir, mqtt);
        Table {
            config,
            http,
            dir: dir.to_owned(),
            _pedal: pedal,
        }
    }

    /// How many events the daemon wrote to its outbox (the event log).
    fn logged(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("state/events/events.jsonl"))
            .unwrap_or_default()
            .lines()
            .count() as u64
    }
}

/// The seqs in `file`, one per event_id, in arrival order.
fn received_seqs(file: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut ids = BTreeSet::new();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| ids.insert(v["event_id"].as_str().unwrap_or("").to_owned()))
        .map(|v| v["seq"].as_u64().unwrap_or(0))
        .collect()
}

fn validate(config: &Path) -> (Option<i32>, String) {
    let out = Command::new(croupier())
        .args(["validate", "--config"])
        .arg(config)
        .output()
        .expect("croupier validate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn events_flow_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let broker = TlsBroker::start(dir.path(), &pki);
    let received = dir.path().join("received.jsonl");
    let _sub = broker.subscribe_events(&received);
    let table = Table::new(dir.path(), &mqtts(&broker, &pki.ca, &pki.client));
    let (code, stderr) = validate(&table.config);
    assert_eq!(code, Some(0), "the mTLS config is valid: {stderr}");

    let daemon = Daemon::start(&table.config, &[]);
    let mut last = String::new();
    let seqs = wait_for(Duration::from_secs(12), || {
        let logged = table.logged();
        let seqs = received_seqs(&received);
        last = format!("logged {logged}, received {seqs:?}");
        (logged >= 5 && seqs.len() as u64 >= logged).then_some(seqs)
    })
    .unwrap_or_else(|| {
        panic!(
            "the events did not arrive over TLS: {last}\ndaemon log:\n{}\nbroker log:\n{}",
            daemon.log_text(),
            broker.log_text()
        )
    });
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq, in order, no gap");

    let status = broker.retained(STATUS).expect("a retained status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    assert_eq!(status["state"], "online", "{status}");
    assert_eq!(
        component_state(table.http, "uplink").as_deref(),
        Some("up"),
        "/status shows the uplink up"
    );
    // The broker took the user name from the client certificate: the identity is the cert's.
    let log = broker.log_text();
    assert!(
        log.contains(&format!("u'{CLIENT_CN}'")),
        "the broker saw the certificate's CN as the user name:\n{log}"
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let broker = TlsBroker::start(dir.path(), &pki);
    let received = dir.path().join("received.jsonl");
    let _sub = broker.subscribe_events(&received);
    // The daemon trusts the broker (right CA) but presents a certificate the broker does not.
    let table = Table::new(dir.path(), &mqtts(&broker, &pki.ca, &pki.rogue));
    let mut daemon = Daemon::start(&table.config, &[]);

    let mut last = String::new();
    wait_for(Duration::from_secs(12), || {
        let state = component_state(table.http, "uplink");
        let logged = table.logged();
        let log = daemon.log_text();
        let refused = log
            .lines()
            .filter(|l| l.contains("uplink disconnected"))
            .count();
        last = format!("uplink {state:?}, {logged} event(s) logged, {refused} refusal(s) logged");
        (state.as_deref() == Some("degraded") && logged >= 3 && refused >= 2).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "expected a degraded, buffering uplink: {last}\ndaemon log:\n{}\nbroker log:\n{}",
            daemon.log_text(),
            broker.log_text()
        )
    });

    assert!(daemon.proc.is_running(), "the daemon keeps running");
    let seqs = received_seqs(&received);
    assert!(seqs.is_empty(), "nothing got through: {seqs:?}");
    assert!(
        broker.retained(STATUS).is_none(),
        "no status was published either"
    );

    let (_, body) = http_get(table.http, "/status").expect("/status");
    let status: serde_json::Value = serde_json::from_str(&body).expect("/status is JSON");
    let detail = status["components"]["uplink"].to_string();
    assert!(detail.contains("buffering"), "{detail}");

    // The broker refused the handshake itself...
    let broker_log = broker.log_text();
    assert!(
        broker_log.contains("certificate verify failed"),
        "the broker refused the client certificate:\n{broker_log}"
    );
    // ...and the daemon's log says why: the TLS handshake, not a broker that is down.
    let log = daemon.log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains("uplink disconnected"))
        .expect("a refusal in the log")
        .to_lowercase();
    assert!(
        ["tls", "certificate", "alert", "handshake"]
            .iter()
            .any(|w| refusal.contains(w)),
        "the log names the TLS error: {refusal}"
    );
}

#[test]
fn validate_refuses_mqtts_with_a_missing_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let missing = dir.path().join("no-such-ca.pem");
    let mqtt = format!(
        "url = \"mqtts://127.0.0.1:8883\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        missing.display(),
        pki.client.cert.display(),
        pki.client.key.display()
    );
    let (config, _) = table_config(dir.path(), &mqtt);
    let (code, stderr) = validate(&config);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("mqtt.ca"), "names the key: {stderr}");
    assert!(
        stderr.contains("no-such-ca.pem"),
        "names the file: {stderr}"
    );
    assert!(
        !stderr.contains("mqtt.cert") && !stderr.contains("mqtt.key"),
        "only the CA is wrong: {stderr}"
    );
}

/// Username and password (the password read from `password_file`): the right password
/// connects, a wrong one is refused by the broker and the table keeps buffering.
#[test]
fn username_and_password_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let passwords = dir.path().join("passwords");
    let made = std::process::Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwords)
        .args(["rl-01", "s3cret-table"])
        .status()
        .expect("mosquitto_passwd");
    assert!(made.success());
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nuser {}\n",
            passwords.display(),
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        ),
    )
    .expect("conf");
    let broker = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto");
    let _broker = Proc {
        child: broker,
        name: "mosquitto",
    };
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("broker up");
    for (password, expected) in [("s3cret-table\n", "up"), ("wrong", "degraded")] {
        let run = dir.path().join(format!("run-{expected}"));
        std::fs::create_dir_all(&run).expect("dir");
        std::fs::write(run.join("mqtt.password"), password).expect("password file");
        let http_port = free_port();
        let url = format!("url = \"mqtt://127.0.0.1:{port}\"\n");
        let text = config_with_devices(port, http_port, "").replace(
            &url,
            &format!("{url}username = \"rl-01\"\npassword_file = \"mqtt.password\"\n"),
        );
        std::fs::write(run.join("table.toml"), text).expect("config");
        let daemon = Daemon::start(&run.join("table.toml"), &[]);
        if expected == "up" {
            let up = wait_for(Duration::from_secs(10), || {
                component_state(http_port, "uplink").filter(|s| s == "up")
            });
            assert!(up.is_some(), "uplink never up:\n{}", daemon.log_text());
        } else {
            // Refused by the broker: the uplink counts failed connections and keeps buffering.
            let refused = wait_for(Duration::from_secs(10), || {
                let (_, body) = http_get(http_port, "/status")?;
                let status: serde_json::Value = serde_json::from_str(&body).ok()?;
                (status["components"]["uplink"]["counters"]["connection_errors"]
                    .as_u64()
                    .unwrap_or(0)
                    >= 1)
                    .then_some(status)
            })
            .unwrap_or_else(|| {
                panic!("a wrong password was never refused:\n{}", daemon.log_text())
            });
            assert_eq!(
                refused["components"]["uplink"]["state"], "degraded",
                "{refused}"
            );
            // The counter and the state are set before the warning is written, so the log
            // line may land a moment after /status shows the refusal.
            wait_for(Duration::from_secs(5), || {
                daemon
                    .log_text()
                    .contains("uplink disconnected; buffering")
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("no buffering warning:\n{}", daemon.log_text()));
        }
    }
}
