//! The config schema: every section and key, its default, its range, and the words a technician
//! reads when it is wrong. `docs/config.md` documents the same keys; keep the two together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use croupier_drivers::DeviceRole;
use croupier_pipelines::video::EncoderKind;
use croupier_pipelines::CameraSource;

use super::duration::{format_duration, parse_duration};
use super::tree::{self, Checker, Entry, Kind, Node, Section};
use super::*;

const DEFAULT_MQTT_URL: &str = "mqtt://127.0.0.1:1883";
const DEFAULT_STORAGE_DIR: &str = "/var/lib/croupier";
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
const STANDARD_BAUDS: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600,
];

/// Checks the whole file. Returns the config when it could be built, and every problem found.
pub(super) fn check(text: &str, base_dir: &Path) -> (Option<Config>, Vec<ConfigIssue>) {
    let mut c = Checker::new(text);
    let doc = match toml_edit::Document::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            let span = err.span();
            let message = err.message().trim().to_owned();
            c.error(
                "(syntax)",
                span.as_ref(),
                format!("the file is not valid TOML: {message}"),
                "fix the syntax at this line; every value needs `key = value`, strings need quotes, durations are strings like \"15s\"",
            );
            return (None, c.issues);
        }
    };
    let root = match tree::from_item(doc.as_item()) {
        Some(Node {
            kind: Kind::Table(entries),
            ..
        }) => entries,
        _ => Vec::new(),
    };
    let mut top = Section::new("", &root, None);
    let table = table_section(&mut c, &mut top);
    let timing = timing_section(&mut c, &mut top);
    let mqtt = mqtt_section(&mut c, &mut top, base_dir, table.as_ref());
    let storage = storage_section(&mut c, &mut top, base_dir);
    let http = http_section(&mut c, &mut top);
    let log = log_section(&mut c, &mut top);
    let daemon = daemon_section(&mut c, &mut top);
    let devices = device_sections(&mut c, &mut top, base_dir);
    let cameras = camera_sections(&mut c, &mut top, base_dir);
    let video = video_section(&mut c, &mut top, storage.as_ref());
    let crosscheck = crosscheck_section(&mut c, &mut top);
    let blackjack = blackjack_section(&mut c, &mut top);
    let signing = signing_section(&mut c, &mut top, base_dir);
    top.finish(&mut c);

    let config = (|| {
        Some(Config {
            table: table?,
            timing: timing?,
            mqtt: mqtt?,
            storage: storage?,
            http: http?,
            log: log?,
            daemon: daemon?,
            devices: devices?,
            cameras: cameras?,
            video: video?,
            crosscheck: crosscheck?,
            blackjack: blackjack?,
            signing: signing?,
        })
    })();
    (config, c.issues)
}

/// Returns the entries of `[name]`, or an empty table if it is absent.
fn sub_table<'a>(
    c: &mut Checker<'_>,
    top: &mut Section<'a>,
    name: &'static str,
) -> Option<Section<'a>> {
    match top.get(name) {
        None => Some(Section::new(name, &[], None)),
        Some(Node {
            kind: Kind::Table(entries),
            span,
        }) => Some(Section::new(name, entries, span.clone())),
        Some(other) => {
            c.error(
                name,
                other.span.as_ref(),
                format!("`{name}` must be a table, found {}", other.kind.type_name()),
                format!("write it as a section: `[{name}]` followed by its keys"),
            );
            None
        }
    }
}

// ---- typed readers: each reports its own problem and returns None on error -------------------

fn read_str(c: &mut Checker<'_>, s: &mut Section<'_>, key: &'static str) -> Option<Option<String>> {
    match s.get(key) {
        None => Some(None),
        Some(Node {
            kind: Kind::Str(v), ..
        }) => Some(Some(v.clone())),
        Some(n) => {
            c.error(
                &s.key_path(key),
                n.span.as_ref(),
                format!("expected a string, found {}", n.kind.type_name()),
                format!("put the value in double quotes: {key} = \"…\""),
            );
            None
        }
    }
}

fn required_str(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    example: &str,
) -> Option<String> {
    match read_str(c, s, key)? {
        Some(v) => Some(v),
        None => {
            let span = s.span.clone();
            c.error(
                &s.key_path(key),
                span.as_ref(),
                "this key is required and missing",
                format!("add `{key} = \"{example}\"` to [{}]", s.path),
            );
            None
        }
    }
}

fn read_bool(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    default: bool,
) -> Option<bool> {
    match s.get(key) {
        None => Some(default),
        Some(Node {
            kind: Kind::Bool(v),
            ..
        }) => Some(*v),
        Some(n) => {
            c.error(
                &s.key_path(key),
                n.span.as_ref(),
                format!("expected true or false, found {}", n.kind.type_name()),
                format!("write `{key} = true` or `{key} = false` (no quotes)"),
            );
            None
        }
    }
}

fn read_int(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
) -> Option<Option<(i64, Node)>> {
    match s.get(key) {
        None => Some(None),
        Some(
            n @ Node {
                kind: Kind::Int(v), ..
            },
        ) => Some(Some((*v, n.clone()))),
        Some(n) => {
            c.error(
                &s.key_path(key),
                n.span.as_ref(),
                format!("expected a whole number, found {}", n.kind.type_name()),
                format!("write a number without quotes, like `{key} = 9600`"),
            );
            None
        }
    }
}

fn read_duration(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    default: Duration,
    range: (Duration, Duration),
) -> Option<Duration> {
    let path = s.key_path(key);
    let node = match s.get(key) {
        None => return Some(default),
        Some(n) => n,
    };
    let text = match &node.kind {
        Kind::Str(v) => v,
        Kind::Int(v) => {
            c.error(
                &path,
                node.span.as_ref(),
                format!("`{v}` has no unit"),
                format!(
                    "write durations as strings with a unit, like `{key} = \"{v}s\"` or \"{v}ms\""
                ),
            );
            return None;
        }
        other => {
            c.error(
                &path,
                node.span.as_ref(),
                format!("expected a duration, found {}", other.type_name()),
                format!("write it like `{key} = \"{}\"`", format_duration(default)),
            );
            return None;
        }
    };
    match parse_duration(text) {
        Err(why) => {
            c.error(
                &path,
                node.span.as_ref(),
                why,
                format!(
                    "write it like `{key} = \"{}\"` (units: ms, s, m, h)",
                    format_duration(default)
                ),
            );
            None
        }
        Ok(d) if d < range.0 || d > range.1 => {
            c.error(
                &path,
                node.span.as_ref(),
                format!("{} is out of range", format_duration(d)),
                format!(
                    "use a value from {} to {} (default {})",
                    format_duration(range.0),
                    format_duration(range.1),
                    format_duration(default)
                ),
            );
            None
        }
        Ok(d) => Some(d),
    }
}

fn read_choice<T: Copy>(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    names: &[&str],
    from: impl Fn(&str) -> Option<T>,
    default: Option<T>,
) -> Option<T> {
    let path = s.key_path(key);
    let span = s.get(key).and_then(|n| n.span.clone());
    let value = read_str(c, s, key)?;
    match value {
        None => {
            if default.is_none() {
                let span = s.span.clone();
                c.error(
                    &path,
                    span.as_ref(),
                    "this key is required and missing",
                    format!("add `{key} = \"…\"` with one of: {}", names.join(", ")),
                );
            }
            default
        }
        Some(v) => {
            let found = from(&v);
            if found.is_none() {
                c.error(
                    &path,
                    span.as_ref(),
                    format!("`{v}` is not one of the accepted values"),
                    format!("use one of: {}", names.join(", ")),
                );
            }
            found
        }
    }
}

fn read_path(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    base_dir: &Path,
) -> Option<Option<(PathBuf, Node)>> {
    let node = s.get(key).cloned();
    let value = read_str(c, s, key)?;
    Some(value.map(|v| {
        (
            resolve(base_dir, &v),
            node.unwrap_or(Node {
                span: None,
                kind: Kind::Str(String::new()),
            }),
        )
    }))
}

fn resolve(base_dir: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// A name that goes into MQTT topics and URLs: no `/`, `+`, `#` or spaces, so one table can never
/// publish into another's topic tree.
fn check_slug(
    c: &mut Checker<'_>,
    path: &str,
    span: Option<&std::ops::Range<usize>>,
    value: &str,
) -> bool {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_')
        && !value.starts_with(['-', '_']);
    if !ok {
        c.error(
            path,
            span,
            format!("`{value}` cannot be used as a name in MQTT topics and URLs"),
            "use 1–64 lowercase letters, digits, `-` or `_`, starting with a letter or digit, like \"riga-1\"",
        );
    }
    ok
}

// ---- sections ----------------------------------------------------------------------------------

fn table_section(c: &mut Checker<'_>, top: &mut Section<'_>) -> Option<TableConfig> {
    let mut s = sub_table(c, top, "table")?;
    let studio_span = s.get("studio").and_then(|n| n.span.clone());
    let studio = required_str(c, &mut s, "studio", "riga-1");
    let id_span = s.get("id").and_then(|n| n.span.clone());
    let id = required_str(c, &mut s, "id", "rl-01");
    let studio_ok = studio
        .as_deref()
        .is_some_and(|v| check_slug(c, "table.studio", studio_span.as_ref(), v));
    let id_ok = id
        .as_deref()
        .is_some_and(|v| check_slug(c, "table.id", id_span.as_ref(), v));
    let game = read_choice(c, &mut s, "game", Game::NAMES, Game::from_name, None);
    let name = read_str(c, &mut s, "name");
    let wheel_span = s.get("wheel").and_then(|n| n.span.clone());
    let wheel = read_choice(
        c,
        &mut s,
        "wheel",
        &["european", "american"],
        |w| match w {
            "european" => Some(crate::engine::roulette::WheelType::European),
            "american" => Some(crate::engine::roulette::WheelType::American),
            _ => None,
        },
        Some(crate::engine::roulette::WheelType::European),
    );
    if wheel_span.is_some() && game.is_some_and(|g| g != Game::Roulette) {
        c.error(
            "table.wheel",
            wheel_span.as_ref(),
            "`wheel` only applies to roulette tables",
            "remove it, or set game = \"roulette\"",
        );
    }
    s.finish(c);
    if !(studio_ok && id_ok) {
        return None;
    }
    Some(TableConfig {
        studio: studio?,
        id: id?,
        game: game?,
        name: name?,
        wheel: wheel?,
    })
}

fn timing_section(c: &mut Checker<'_>, top: &mut Section<'_>) -> Option<TimingConfig> {
    let mut s = sub_table(c, top, "timing")?;
    let bet_window = read_duration(
        c,
        &mut s,
        "bet_window",
        Duration::from_secs(15),
        (Duration::from_secs(5), Duration::from_secs(60)),
    );
    let rate_span = s.get("timecode_rate").and_then(|n| n.span.clone());
    let rate = match read_str(c, &mut s, "timecode_rate") {
        None => None,
        Some(None) => Some(TimecodeRate::Fps25),
        Some(Some(v)) => match v.parse::<TimecodeRate>() {
            Ok(r) => Some(r),
            Err(err) => {
                c.error(
                    "timing.timecode_rate",
                    rate_span.as_ref(),
                    err.to_string(),
                    "use the frame rate of the table's cameras: 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 (29.97 and 59.94 are drop-frame)",
                );
                None
            }
        },
    };
    let early_close = read_bool(c, &mut s, "early_close", true);
    s.finish(c);
    Some(TimingConfig {
        bet_window: bet_window?,
        timecode_rate: rate?,
        early_close: early_close?,
    })
}

fn mqtt_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    base_dir: &Path,
    table: Option<&TableConfig>,
) -> Option<MqttConfig> {
    let mut s = sub_table(c, top, "mqtt")?;
    let url_span = s.get("url").and_then(|n| n.span.clone());
    let url = read_str(c, &mut s, "url").map(|u| u.unwrap_or_else(|| DEFAULT_MQTT_URL.to_owned()));
    let parsed = url.as_deref().and_then(|u| match url::Url::parse(u) {
        Ok(parsed)
            if matches!(parsed.scheme(), "mqtt" | "mqtts")
                && parsed.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Some(parsed)
        }
        Ok(parsed) if !matches!(parsed.scheme(), "mqtt" | "mqtts") => {
            c.error(
                "mqtt.url",
                url_span.as_ref(),
                format!("scheme `{}` is not supported", parsed.scheme()),
                "use mqtt://host:1883 for plain TCP or mqtts://host:8883 for TLS",
            );
            None
        }
        Ok(_) => {
            c.error(
                "mqtt.url",
                url_span.as_ref(),
                format!("`{u}` has no host"),
                "write the broker's address, like mqtt://127.0.0.1:1883",
            );
            None
        }
        Err(err) => {
            c.error(
                "mqtt.url",
                url_span.as_ref(),
                format!("`{u}` is not a URL: {err}"),
                "write the broker's address, like mqtt://127.0.0.1:1883",
            );
            None
        }
    });
    if let Some(p) = &parsed {
        if !p.username().is_empty() || p.password().is_some() {
            c.error("mqtt.url", url_span.as_ref(), "the URL carries credentials", "move them to `username` and `password_file`, so the password is not in a world-readable config");
        }
    }
    let tls = parsed.as_ref().map(|p| p.scheme() == "mqtts");
    let client_id = read_str(c, &mut s, "client_id");
    let username = read_str(c, &mut s, "username");
    let password_file = read_path(c, &mut s, "password_file", base_dir);
    let ca = read_path(c, &mut s, "ca", base_dir);
    let cert = read_path(c, &mut s, "cert", base_dir);
    let key = read_path(c, &mut s, "key", base_dir);
    let keep_alive = read_duration(
        c,
        &mut s,
        "keep_alive",
        Duration::from_secs(15),
        // The MQTT client refuses keep-alives under 5 s.
        (Duration::from_secs(5), Duration::from_secs(300)),
    );
    let telemetry_interval = read_duration(
        c,
        &mut s,
        "telemetry_interval",
        Duration::from_secs(10),
        (Duration::from_secs(1), Duration::from_secs(3600)),
    );
    let outbox_max_events = read_u_ranged(
        c,
        &mut s,
        "outbox_max_events",
        100..=100_000_000,
        1_000_000,
        "unacknowledged events kept before new rounds are refused",
    );
    if s.get("password").is_some() {
        // Read so `finish` does not call it unknown; refused with a specific reason instead.
        let span = s.get("password").and_then(|n| n.span.clone());
        c.error("mqtt.password", span.as_ref(), "passwords are not written in the config", "put the password alone in a file readable only by the croupier user and set `password_file` to its path");
    }
    s.finish(c);

    let files = [
        ("password_file", &password_file),
        ("ca", &ca),
        ("cert", &cert),
        ("key", &key),
    ];
    for (name, value) in files {
        if let Some(Some((path, node))) = value {
            if !path.is_file() {
                c.error(
                    &format!("mqtt.{name}"),
                    node.span.as_ref(),
                    format!("{} does not exist or is not a file", path.display()),
                    "give the path of an existing PEM file (relative paths are read from the config file's directory)",
                );
            }
        }
    }
    let has = |v: &Option<Option<(PathBuf, Node)>>| matches!(v, Some(Some(_)));
    if has(&cert) != has(&key) {
        c.error(
            "mqtt.cert",
            None,
            "a client certificate needs its key, and a key its certificate",
            "set both `cert` and `key` for mutual TLS, or neither",
        );
    }
    if tls == Some(true) && !has(&ca) {
        c.error(
            "mqtt.ca",
            url_span.as_ref(),
            "mqtts:// needs the CA that signed the broker's certificate",
            "set ca = \"/etc/croupier/tls/ca.pem\" (the studio's CA, PEM)",
        );
    }
    if tls == Some(false) && (has(&ca) || has(&cert) || has(&key)) {
        c.error(
            "mqtt.url",
            url_span.as_ref(),
            "TLS files are set but the URL is plain mqtt://",
            "use mqtts://host:8883 to connect with TLS, or remove ca/cert/key",
        );
    }
    if has(&password_file) && !matches!(username, Some(Some(_))) {
        c.error(
            "mqtt.username",
            None,
            "a password_file is set without a username",
            "add `username = \"…\"` to [mqtt]",
        );
    }

    let parsed = parsed?;
    let tls = tls?;
    let default_client_id = table.map(|t| format!("croupier-{}-{}", t.studio, t.id));
    Some(MqttConfig {
        url: url?,
        tls,
        host: parsed.host_str()?.trim_matches(['[', ']']).to_owned(),
        port: parsed.port().unwrap_or(if tls { 8883 } else { 1883 }),
        client_id: client_id?.or(default_client_id)?,
        username: username?,
        password_file: password_file?.map(|(p, _)| p),
        ca: ca?.map(|(p, _)| p),
        cert: cert?.map(|(p, _)| p),
        key: key?.map(|(p, _)| p),
        keep_alive: keep_alive?,
        telemetry_interval: telemetry_interval?,
        outbox_max_events: u64::try_from(outbox_max_events?).unwrap_or(1_000_000),
    })
}

fn storage_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    base_dir: &Path,
) -> Option<StorageConfig> {
    let mut s = sub_table(c, top, "storage")?;
    let dir = read_path(c, &mut s, "dir", base_dir)?;
    s.finish(c);
    let dir = match dir {
        None => PathBuf::from(DEFAULT_STORAGE_DIR),
        Some((dir, node)) => {
            if dir.exists() && !dir.is_dir() {
                c.error("storage.dir", node.span.as_ref(), format!("{} exists and is not a directory", dir.display()), "point it at a directory; the daemon creates it if it is missing (systemd's StateDirectory does under the unit)");
                return None;
            }
            dir
        }
    };
    Some(StorageConfig { dir })
}

fn http_section(c: &mut Checker<'_>, top: &mut Section<'_>) -> Option<HttpConfig> {
    let mut s = sub_table(c, top, "http")?;
    let span = s.get("listen").and_then(|n| n.span.clone());
    let listen = read_str(c, &mut s, "listen")?.unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_owned());
    s.finish(c);
    match listen.parse::<SocketAddr>() {
        Ok(addr) => Some(HttpConfig { listen: addr }),
        Err(_) => {
            c.error("http.listen", span.as_ref(), format!("`{listen}` is not an address and port"), "write an IP address and a port, like \"127.0.0.1:8080\" or \"0.0.0.0:8080\" (host names are not resolved)");
            None
        }
    }
}

fn log_section(c: &mut Checker<'_>, top: &mut Section<'_>) -> Option<LogConfig> {
    let mut s = sub_table(c, top, "log")?;
    let span = s.get("filter").and_then(|n| n.span.clone());
    let filter = read_str(c, &mut s, "filter").map(|f| f.unwrap_or_else(|| "info".to_owned()));
    let format = read_choice(
        c,
        &mut s,
        "format",
        LogFormat::NAMES,
        |n| match n {
            "auto" => Some(LogFormat::Auto),
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            "journald" => Some(LogFormat::Journald),
            _ => None,
        },
        Some(LogFormat::Auto),
    );
    s.finish(c);
    let filter = filter?;
    if let Err(err) = tracing_subscriber::EnvFilter::builder().parse(&filter) {
        c.error("log.filter", span.as_ref(), format!("`{filter}` is not a log filter: {err}"), "use a level (error, warn, info, debug, trace) or directives like \"info,croupier::devices=debug\"");
        return None;
    }
    Some(LogConfig {
        filter,
        format: format?,
    })
}

fn daemon_section(c: &mut Checker<'_>, top: &mut Section<'_>) -> Option<DaemonConfig> {
    let mut s = sub_table(c, top, "daemon")?;
    let secs = Duration::from_secs;
    let shutdown_timeout = read_duration(
        c,
        &mut s,
        "shutdown_timeout",
        secs(10),
        (secs(1), secs(120)),
    );
    let ready_timeout = read_duration(
        c,
        &mut s,
        "ready_timeout",
        secs(10),
        (Duration::ZERO, secs(600)),
    );
    let min = read_duration(
        c,
        &mut s,
        "restart_backoff_min",
        Duration::from_millis(500),
        (Duration::from_millis(10), secs(60)),
    );
    let max = read_duration(
        c,
        &mut s,
        "restart_backoff_max",
        secs(30),
        (Duration::from_millis(10), secs(600)),
    );
    s.finish(c);
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            c.error(
                "daemon.restart_backoff_min",
                None,
                format!(
                    "restart_backoff_min ({}) is above restart_backoff_max ({})",
                    format_duration(lo),
                    format_duration(hi)
                ),
                "make restart_backoff_min the smaller of the two",
            );
            return None;
        }
    }
    Some(DaemonConfig {
        shutdown_timeout: shutdown_timeout?,
        ready_timeout: ready_timeout?,
        restart_backoff_min: min?,
        restart_backoff_max: max?,
    })
}

/// One `[[name]]` table: its key path (`device[2]`), its entries and where it was written.
type TableAt<'a> = (String, &'a [Entry], Option<std::ops::Range<usize>>);

/// The entries of an array of tables like `[[device]]`, each with its index path `device[N]`.
fn array_of_tables<'a>(
    c: &mut Checker<'_>,
    top: &mut Section<'a>,
    name: &'static str,
) -> Option<Vec<TableAt<'a>>> {
    match top.get(name) {
        None => Some(Vec::new()),
        Some(Node {
            kind: Kind::Array(items),
            span,
        }) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match &item.kind {
                    Kind::Table(entries) => out.push((
                        format!("{name}[{i}]"),
                        entries.as_slice(),
                        item.span.clone(),
                    )),
                    other => {
                        ok = false;
                        c.error(
                            &format!("{name}[{i}]"),
                            item.span.as_ref().or(span.as_ref()),
                            format!("expected a table, found {}", other.type_name()),
                            format!("write each entry as a `[[{name}]]` section"),
                        );
                    }
                }
            }
            ok.then_some(out)
        }
        Some(other) => {
            c.error(
                name,
                other.span.as_ref(),
                format!(
                    "`{name}` must be a list of `[[{name}]]` sections, found {}",
                    other.kind.type_name()
                ),
                format!("write one `[[{name}]]` section per {name}"),
            );
            None
        }
    }
}

fn device_sections(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    base_dir: &Path,
) -> Option<Vec<DeviceConfig>> {
    let tables = array_of_tables(c, top, "device")?;
    let mut devices = Vec::new();
    let mut all_ok = true;
    for (index, (path, entries, span)) in tables.into_iter().enumerate() {
        let mut s = Section::new(path.clone(), entries, span);
        match one_device(c, &mut s, base_dir) {
            Some(d) => devices.push((index, d)),
            None => all_ok = false,
        }
        s.finish(c);
    }
    for (pos, (i, d)) in devices.iter().enumerate() {
        let earlier = &devices[..pos];
        if let Some((first, _)) = earlier.iter().find(|(_, o)| o.name == d.name) {
            all_ok = false;
            c.error(&format!("device[{i}].name"), None, format!("device name `{}` is already used by device[{first}]", d.name), "give each device its own `name` (it defaults to the role, so two readers of one role need names like \"shoe-a\" and \"shoe-b\")");
        }
        if let Some(port) = &d.port {
            if let Some((first, _)) = earlier.iter().find(|(_, o)| o.port.as_ref() == Some(port)) {
                all_ok = false;
                c.error(
                    &format!("device[{i}].port"),
                    None,
                    format!("{} is already used by device[{first}]", port.display()),
                    "each device needs its own port; check the udev symlinks under /dev/croupier/",
                );
            }
        }
    }
    all_ok.then(|| devices.into_iter().map(|(_, d)| d).collect())
}

fn one_device(c: &mut Checker<'_>, s: &mut Section<'_>, base_dir: &Path) -> Option<DeviceConfig> {
    let path = s.path.clone();
    let section_span = s.span.clone();
    let role_span = s.get("role").and_then(|n| n.span.clone());
    let role_names: Vec<&str> = DeviceRole::ALL.iter().map(|r| r.as_str()).collect();
    let role = read_choice(
        c,
        s,
        "role",
        &role_names,
        |n| n.parse::<DeviceRole>().ok(),
        None,
    );
    let driver_span = s.get("driver").and_then(|n| n.span.clone());
    let driver = read_choice(c, s, "driver", Driver::NAMES, Driver::from_name, None);
    let name_span = s.get("name").and_then(|n| n.span.clone());
    let name = read_str(c, s, "name");
    let enabled_span = s.get("enabled").and_then(|n| n.span.clone());
    let enabled = read_bool(c, s, "enabled", true);
    if enabled == Some(false) {
        c.warning(
            &format!("{path}.enabled"),
            enabled_span.as_ref(),
            "this device is disabled and will not be opened",
            "set `enabled = true` (or remove the line) when the device is back",
        );
    }
    let port = read_path(c, s, "port", base_dir);
    let baud = read_int(c, s, "baud");

    let (role, driver) = (role?, driver?);
    let mut ok = true;
    let fits = Driver::for_role(role).contains(&driver);
    if !fits {
        ok = false;
        let fits: Vec<_> = Driver::for_role(role).iter().map(|d| d.as_str()).collect();
        c.error(
            &format!("{path}.driver"),
            driver_span.as_ref().or(role_span.as_ref()),
            format!(
                "driver `{}` cannot serve role `{}`",
                driver.as_str(),
                role.as_str()
            ),
            format!("for a {} use driver {}", role.as_str(), fits.join(" or ")),
        );
        // Without a fitting driver the driver keys cannot be checked; mark them read.
        for key in ALL_DRIVER_KEYS {
            s.get(key);
        }
    }
    let name = match name? {
        Some(n) => {
            ok &= check_slug(c, &format!("{path}.name"), name_span.as_ref(), &n);
            n
        }
        None => role.as_str().to_owned(),
    };
    let port = port?;
    let baud = baud?;

    let mut baud_value = 9600;
    if driver.is_serial() || driver == Driver::Evdev {
        if port.is_none() {
            ok = false;
            let example = if driver == Driver::Evdev {
                "/dev/croupier/shoe-barcode"
            } else {
                "/dev/croupier/wheel"
            };
            c.error(
                &format!("{path}.port"),
                section_span.as_ref(),
                format!("driver `{}` needs the device's port", driver.as_str()),
                format!("add `port = \"{example}\"` (a udev symlink, see docs/udev.md)"),
            );
        }
    } else if let Some((_, node)) = &port {
        ok = false;
        c.error(
            &format!("{path}.port"),
            node.span.as_ref(),
            format!("driver `{}` has no port", driver.as_str()),
            "remove `port`; a GPIO pedal is set with `chip` and `line` (gpio) or `pin` (rpi)",
        );
    }
    match (&baud, driver.is_serial()) {
        (Some((b, node)), true) => {
            if let Some(b) = u32::try_from(*b)
                .ok()
                .filter(|b| STANDARD_BAUDS.contains(b))
            {
                baud_value = b;
            } else {
                ok = false;
                c.error(
                    &format!("{path}.baud"),
                    node.span.as_ref(),
                    format!("{b} is not a standard baud rate"),
                    format!(
                        "use the device's rate, one of {}",
                        STANDARD_BAUDS
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        (Some((_, node)), false) => {
            ok = false;
            c.error(
                &format!("{path}.baud"),
                node.span.as_ref(),
                format!("driver `{}` is not a serial port", driver.as_str()),
                "remove `baud`",
            );
        }
        (None, _) => {}
    }
    let parity_span = s.get("parity").and_then(|n| n.span.clone());
    let parity = read_choice(
        c,
        s,
        "parity",
        &["none", "even", "odd"],
        |p| match p {
            "none" => Some(Parity::None),
            "even" => Some(Parity::Even),
            "odd" => Some(Parity::Odd),
            _ => None,
        },
        Some(Parity::None),
    );
    if parity_span.is_some() && !driver.is_serial() {
        ok = false;
        c.error(
            &format!("{path}.parity"),
            parity_span.as_ref(),
            format!("driver `{}` is not a serial port", driver.as_str()),
            "remove `parity`",
        );
    }

    let settings = if fits {
        driver_settings(c, s, &path, role, driver, base_dir, section_span.as_ref())
    } else {
        None
    };
    let (Some(settings), Some(parity), true) = (settings, parity, ok) else {
        return None;
    };
    Some(DeviceConfig {
        name,
        role,
        driver,
        port: port.map(|(p, _)| p),
        baud: baud_value,
        parity,
        enabled: enabled.unwrap_or(true),
        settings,
    })
}

/// Every driver-specific key, and the drivers it applies to (for "does not apply" errors).
const ALL_DRIVER_KEYS: &[&str] = &[
    "layout",
    "mode",
    "format",
    "pattern",
    "barcodes",
    "burn",
    "max_len",
    "max_key_gap",
    "end_on_tab",
    "uid_order",
    "absent_timeout",
    "registry",
    "com_adr",
    "antennas",
    "antenna_mode",
    "poll_interval",
    "response_timeout",
    "absent_after",
    "frame",
    "debounce",
    "long_press",
    "double_press",
    "modem_line",
    "active_low",
    "keys",
    "chip",
    "line",
    "bias",
    "kernel_debounce",
    "pin",
];

fn keys_for(role: DeviceRole, driver: Driver) -> &'static [&'static str] {
    const PEDAL_TIMING: [&str; 3] = ["debounce", "long_press", "double_press"];
    match (role, driver) {
        (_, Driver::Cammegh) => &["layout", "mode"],
        (_, Driver::Line) => &["format", "pattern", "barcodes", "burn"],
        (DeviceRole::Shoe, Driver::Evdev) => &[
            "format",
            "pattern",
            "barcodes",
            "burn",
            "max_len",
            "max_key_gap",
            "end_on_tab",
        ],
        (_, Driver::Ascii) => &["uid_order", "absent_timeout", "registry"],
        (_, Driver::Feig) => &[
            "com_adr",
            "antennas",
            "antenna_mode",
            "poll_interval",
            "response_timeout",
            "absent_after",
            "frame",
            "registry",
        ],
        (_, Driver::Serial) => &[
            PEDAL_TIMING[0],
            PEDAL_TIMING[1],
            PEDAL_TIMING[2],
            "modem_line",
            "active_low",
        ],
        (_, Driver::Evdev) => &[PEDAL_TIMING[0], PEDAL_TIMING[1], PEDAL_TIMING[2], "keys"],
        (_, Driver::Gpio) => &[
            PEDAL_TIMING[0],
            PEDAL_TIMING[1],
            PEDAL_TIMING[2],
            "chip",
            "line",
            "active_low",
            "bias",
            "kernel_debounce",
        ],
        (_, Driver::Rpi) => &[
            PEDAL_TIMING[0],
            PEDAL_TIMING[1],
            PEDAL_TIMING[2],
            "pin",
            "active_low",
            "bias",
            "kernel_debounce",
        ],
    }
}

fn read_string_list(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
) -> Option<Option<Vec<String>>> {
    let path = s.key_path(key);
    match s.get(key) {
        None => Some(None),
        Some(Node {
            kind: Kind::Array(items),
            span,
        }) => {
            let mut out = Vec::new();
            for item in items {
                match &item.kind {
                    Kind::Str(v) => out.push(v.clone()),
                    other => {
                        c.error(
                            &path,
                            item.span.as_ref().or(span.as_ref()),
                            format!("expected strings, found {}", other.type_name()),
                            format!("write it like `{key} = [\"KEY_B\"]`"),
                        );
                        return None;
                    }
                }
            }
            Some(Some(out))
        }
        Some(n) => {
            c.error(
                &path,
                n.span.as_ref(),
                format!("expected a list, found {}", n.kind.type_name()),
                format!("write it like `{key} = [\"KEY_B\"]`"),
            );
            None
        }
    }
}

fn read_u_ranged(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    hint: &str,
) -> Option<i64> {
    match read_int(c, s, key)? {
        None => Some(default),
        Some((v, node)) if range.contains(&v) => {
            let _ = node;
            Some(v)
        }
        Some((v, node)) => {
            c.error(
                &s.key_path(key),
                node.span.as_ref(),
                format!("{v} is out of range"),
                format!("use {} to {} ({hint})", range.start(), range.end()),
            );
            None
        }
    }
}

fn driver_settings(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    path: &str,
    role: DeviceRole,
    driver: Driver,
    base_dir: &Path,
    section_span: Option<&std::ops::Range<usize>>,
) -> Option<DriverSettings> {
    use croupier_drivers::{evdev, gpio, pedal, rfid, wheel};
    let allowed = keys_for(role, driver);
    let mut ok = true;
    for key in ALL_DRIVER_KEYS {
        if allowed.contains(key) {
            continue;
        }
        if let Some(node) = s.get(key) {
            ok = false;
            let owners: Vec<&str> = Driver::NAMES
                .iter()
                .filter(|d| {
                    Driver::from_name(d).is_some_and(|d| {
                        DeviceRole::ALL.iter().any(|r| {
                            Driver::for_role(*r).contains(&d) && keys_for(*r, d).contains(key)
                        })
                    })
                })
                .copied()
                .collect();
            let span = node.span.clone();
            c.error(
                &s.key_path(key),
                span.as_ref(),
                format!(
                    "`{key}` does not apply to a {} with driver `{}`",
                    role.as_str(),
                    driver.as_str()
                ),
                format!(
                    "remove it (it is a setting of driver {})",
                    owners.join(", ")
                ),
            );
        }
    }
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let pedal_timing = |c: &mut Checker<'_>, s: &mut Section<'_>| -> Option<pedal::PedalTiming> {
        let d = pedal::PedalTiming::default();
        let debounce = read_duration(c, s, "debounce", d.debounce, (Duration::ZERO, ms(500)));
        let long_press =
            read_duration(c, s, "long_press", d.long_press, (Duration::ZERO, secs(10)));
        let double_press = read_duration(
            c,
            s,
            "double_press",
            d.double_press,
            (Duration::ZERO, secs(2)),
        );
        let timing = pedal::PedalTiming {
            debounce: debounce?,
            long_press: long_press?,
            double_press: double_press?,
        };
        if let Err(err) = timing.validate() {
            let span = s.get("debounce").and_then(|n| n.span.clone());
            c.error(
                &s.key_path("debounce"),
                span.as_ref().or(s.span.as_ref()),
                err.to_string(),
                "make long_press and double_press longer than debounce (or 0s to turn them off)",
            );
            return None;
        }
        Some(timing)
    };
    let cards = |c: &mut Checker<'_>, s: &mut Section<'_>| -> Option<CardSettings> {
        let format_span = s.get("format").and_then(|n| n.span.clone());
        let format = read_str(c, s, "format")?.unwrap_or_else(|| "default".to_owned());
        let pattern = read_str(c, s, "pattern")?;
        let barcodes = read_path(c, s, "barcodes", base_dir)?.map(|(p, _)| p);
        let burn = read_str(c, s, "burn")?;
        // Build the real format now, so a bad regex or barcode table is refused at validate.
        if let Err(err) = croupier_drivers::cards::CardFormat::from_config(
            &format,
            pattern.as_deref(),
            barcodes.as_deref(),
        ) {
            c.error(&s.key_path("format"), format_span.as_ref().or(s.span.as_ref()), err.to_string(), "see docs/devices.md: format = \"default\", or \"regex\" with `pattern`, or \"barcode\" with `barcodes`");
            return None;
        }
        Some(CardSettings {
            format,
            pattern,
            barcodes,
            burn,
        })
    };
    let registry = |c: &mut Checker<'_>, s: &mut Section<'_>| -> Option<Option<PathBuf>> {
        let span = s.get("registry").and_then(|n| n.span.clone());
        let registry = read_path(c, s, "registry", base_dir)?.map(|(p, _)| p);
        if let Some(path) = &registry {
            if let Err(err) = rfid::TagRegistry::load(path) {
                c.error(
                    &s.key_path("registry"),
                    span.as_ref(),
                    err.to_string(),
                    "fix the tag registry file (format: calibration/tags.example.toml)",
                );
                return None;
            }
        }
        Some(registry)
    };
    let choice_of = |c: &mut Checker<'_>,
                     s: &mut Section<'_>,
                     key: &'static str,
                     names: &[&str]|
     -> Option<Option<String>> {
        let span = s.get(key).and_then(|n| n.span.clone());
        let v = read_str(c, s, key)?;
        if let Some(v) = &v {
            if !names.contains(&v.as_str()) {
                c.error(
                    &s.key_path(key),
                    span.as_ref(),
                    format!("`{v}` is not one of the accepted values"),
                    format!("use one of: {}", names.join(", ")),
                );
                return None;
            }
        }
        Some(v)
    };
    let bias_of = |c: &mut Checker<'_>, s: &mut Section<'_>| -> Option<gpio::Bias> {
        let v = choice_of(c, s, "bias", &["pull-up", "pull-down", "none"])?;
        Some(v.and_then(|v| v.parse().ok()).unwrap_or(gpio::Bias::PullUp))
    };
    let settings = match (role, driver) {
        (_, Driver::Cammegh) => {
            let layout = choice_of(c, s, "layout", &["single-zero", "double-zero"])?;
            let layout = layout
                .and_then(|l| l.parse::<wheel::WheelLayout>().ok())
                .unwrap_or_default();
            let mode = read_u_ranged(
                c,
                s,
                "mode",
                0..=999,
                -1,
                "the mode value from the wheel's handbook",
            )?;
            DriverSettings::Wheel {
                layout,
                mode: u16::try_from(mode).ok(),
            }
        }
        (_, Driver::Line) => DriverSettings::CardLines {
            cards: cards(c, s)?,
        },
        (DeviceRole::Shoe, Driver::Evdev) => {
            let d = evdev::KeyLineConfig::default();
            let cards = cards(c, s);
            let max_len = read_u_ranged(c, s, "max_len", 1..=1024, d.max_len as i64, "characters");
            let max_key_gap = read_duration(c, s, "max_key_gap", d.max_key_gap, (ms(10), secs(10)));
            let end_on_tab = read_bool(c, s, "end_on_tab", d.end_on_tab);
            DriverSettings::CardKeys {
                cards: cards?,
                keys: evdev::KeyLineConfig {
                    max_len: usize::try_from(max_len?).unwrap_or(d.max_len),
                    max_key_gap: max_key_gap?,
                    end_on_tab: end_on_tab?,
                },
            }
        }
        (_, Driver::Ascii) => {
            let order = choice_of(c, s, "uid_order", &["msb-first", "lsb-first"])?;
            let order = match order.as_deref() {
                Some("lsb-first") => rfid::UidOrder::LsbFirst,
                _ => rfid::UidOrder::MsbFirst,
            };
            let absent_timeout =
                read_duration(c, s, "absent_timeout", ms(1500), (ms(100), secs(60)));
            let registry = registry(c, s);
            DriverSettings::RfidAscii {
                order,
                absent_timeout: absent_timeout?,
                registry: registry?,
            }
        }
        (_, Driver::Feig) => {
            let d = rfid::PollerConfig::default();
            let com_adr = read_u_ranged(
                c,
                s,
                "com_adr",
                0..=255,
                i64::from(d.com_adr),
                "the reader's bus address; 255 reaches any reader",
            );
            let antennas_span = s.get("antennas").and_then(|n| n.span.clone());
            let antennas = match s.get("antennas") {
                None => Some(vec![1u8]),
                Some(Node {
                    kind: Kind::Array(items),
                    ..
                }) => {
                    let list: Option<Vec<u8>> = items
                        .iter()
                        .map(|i| match i.kind {
                            Kind::Int(v) => u8::try_from(v).ok().filter(|v| (1..=8).contains(v)),
                            _ => None,
                        })
                        .collect();
                    if list.as_ref().is_none_or(|l| l.is_empty()) {
                        c.error(
                            &s.key_path("antennas"),
                            antennas_span.as_ref(),
                            "antennas must be a list of antenna numbers 1 to 8",
                            "write it like `antennas = [1, 2, 3]`",
                        );
                    }
                    list.filter(|l| !l.is_empty())
                }
                Some(n) => {
                    c.error(
                        &s.key_path("antennas"),
                        n.span.as_ref(),
                        format!("expected a list, found {}", n.kind.type_name()),
                        "write it like `antennas = [1, 2]`",
                    );
                    None
                }
            };
            let mode = choice_of(c, s, "antenna_mode", &["default", "together", "in-turn"]);
            let poll_interval =
                read_duration(c, s, "poll_interval", d.poll_interval, (ms(20), secs(10)));
            let response_timeout = read_duration(
                c,
                s,
                "response_timeout",
                d.response_timeout,
                (ms(20), secs(10)),
            );
            let absent_after = read_u_ranged(
                c,
                s,
                "absent_after",
                1..=100,
                i64::from(d.absent_after),
                "inventories a tag must be missing from before it departs",
            );
            let frame = choice_of(c, s, "frame", &["standard", "advanced"]);
            let registry = registry(c, s);
            let antennas = antennas?;
            let antennas = match mode?.as_deref() {
                Some("together") => rfid::Antennas::Together(antennas),
                Some("in-turn") => rfid::Antennas::InTurn(antennas),
                _ => rfid::Antennas::Default(antennas.first().copied().unwrap_or(1)),
            };
            let poller = rfid::PollerConfig {
                com_adr: u8::try_from(com_adr?).unwrap_or(d.com_adr),
                antennas,
                poll_interval: poll_interval?,
                response_timeout: response_timeout?,
                absent_after: u32::try_from(absent_after?).unwrap_or(d.absent_after),
                frame: if frame?.as_deref() == Some("advanced") {
                    croupier_drivers::feig::FrameKind::Advanced
                } else {
                    croupier_drivers::feig::FrameKind::Standard
                },
            };
            if let Err(err) = rfid::InventoryPoller::new(poller.clone()) {
                c.error(
                    path,
                    section_span,
                    err.to_string(),
                    "check antennas, poll_interval and response_timeout",
                );
                return None;
            }
            DriverSettings::RfidFeig {
                poller,
                registry: registry?,
            }
        }
        (_, Driver::Serial) => {
            let timing = pedal_timing(c, s);
            let line = choice_of(c, s, "modem_line", &["cts", "dsr", "dcd", "ri"])?;
            let active_low = read_bool(c, s, "active_low", false);
            DriverSettings::PedalSerial {
                timing: timing?,
                modem_line: line.and_then(|l| l.parse::<pedal::ModemLine>().ok()),
                active_low: active_low?,
            }
        }
        (_, Driver::Evdev) => {
            let timing = pedal_timing(c, s);
            let keys_span = s.get("keys").and_then(|n| n.span.clone());
            let keys = read_string_list(c, s, "keys")?
                .unwrap_or_else(|| vec!["KEY_B".into(), "KEY_PAGEDOWN".into()]);
            let unknown: Vec<&String> = keys
                .iter()
                .filter(|k| evdev::key_code(k).is_none())
                .collect();
            if !unknown.is_empty() || keys.is_empty() {
                c.error(&s.key_path("keys"), keys_span.as_ref(), format!("not key names: {unknown:?}"), "use Linux key names as `evtest` prints them, like \"KEY_B\" or \"KEY_PAGEDOWN\", or key numbers");
                return None;
            }
            DriverSettings::PedalKeys {
                timing: timing?,
                keys,
            }
        }
        (_, Driver::Gpio) => {
            let timing = pedal_timing(c, s);
            let chip = read_path(c, s, "chip", base_dir)?
                .map(|(p, _)| p)
                .unwrap_or_else(|| PathBuf::from("/dev/gpiochip0"));
            let line = match s.get("line") {
                None => {
                    c.error(&format!("{path}.line"), section_span, "a GPIO pedal needs its line", "add `line = 17` (the offset on the chip; `gpioinfo` lists them) or `line = \"GPIO17\"`");
                    None
                }
                Some(Node {
                    kind: Kind::Int(v),
                    span,
                }) => match u32::try_from(*v) {
                    Ok(v) => Some(gpio::LineId::Offset(v)),
                    Err(_) => {
                        c.error(&format!("{path}.line"), span.as_ref(), format!("{v} is not a GPIO line offset"), "use the line's offset on its chip (`gpioinfo` lists them), like `line = 17`");
                        None
                    }
                },
                Some(Node {
                    kind: Kind::Str(v), ..
                }) => Some(gpio::LineId::Name(v.clone())),
                Some(n) => {
                    c.error(
                        &format!("{path}.line"),
                        n.span.as_ref(),
                        format!("expected a number or a name, found {}", n.kind.type_name()),
                        "write `line = 17` or `line = \"GPIO17\"`",
                    );
                    None
                }
            };
            let active_low = read_bool(c, s, "active_low", true);
            let bias = bias_of(c, s);
            let kernel_debounce = read_duration(
                c,
                s,
                "kernel_debounce",
                Duration::ZERO,
                (Duration::ZERO, ms(100)),
            );
            DriverSettings::PedalGpio {
                timing: timing?,
                gpio: gpio::GpioPedalConfig {
                    chip,
                    line: line?,
                    active_low: active_low?,
                    bias: bias?,
                    kernel_debounce: kernel_debounce?
                        .gt(&Duration::ZERO)
                        .then_some(kernel_debounce?),
                },
            }
        }
        (_, Driver::Rpi) => {
            let timing = pedal_timing(c, s);
            let pin = match read_int(c, s, "pin")? {
                Some((v, node)) => match u8::try_from(v).ok().filter(|p| *p <= 53) {
                    Some(p) => Some(p),
                    None => {
                        c.error(
                            &format!("{path}.pin"),
                            node.span.as_ref(),
                            format!("{v} is not a BCM GPIO number"),
                            "use the BCM number of the pin, 0 to 53 (GPIO17 is header pin 11)",
                        );
                        None
                    }
                },
                None => {
                    c.error(
                        &format!("{path}.pin"),
                        section_span,
                        "a Raspberry Pi pedal needs its pin",
                        "add `pin = 17` (the BCM GPIO number)",
                    );
                    None
                }
            };
            let active_low = read_bool(c, s, "active_low", true);
            let bias = bias_of(c, s);
            let kernel_debounce = read_duration(
                c,
                s,
                "kernel_debounce",
                Duration::ZERO,
                (Duration::ZERO, ms(100)),
            );
            let kernel_debounce = kernel_debounce?;
            DriverSettings::PedalRpi {
                timing: timing?,
                pin: pin?,
                active_low: active_low?,
                bias: bias?,
                kernel_debounce: (kernel_debounce > Duration::ZERO).then_some(kernel_debounce),
            }
        }
    };
    ok.then_some(settings)
}

fn camera_sections(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    base_dir: &Path,
) -> Option<Vec<CameraConfig>> {
    let tables = array_of_tables(c, top, "camera")?;
    let mut cameras = Vec::new();
    let mut all_ok = true;
    for (path, entries, span) in tables {
        let mut s = Section::new(path.clone(), entries, span);
        let name_span = s.get("name").and_then(|n| n.span.clone());
        let name = required_str(c, &mut s, "name", "overhead");
        let source_span = s.get("source").and_then(|n| n.span.clone());
        let source = required_str(c, &mut s, "source", "test");
        let settings = camera_settings(c, &mut s, base_dir);
        s.finish(c);
        let name_ok = name
            .as_deref()
            .is_some_and(|n| check_slug(c, &format!("{path}.name"), name_span.as_ref(), n));
        let source = source.and_then(|src| match src.parse::<CameraSource>() {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                c.error(&format!("{path}.source"), source_span.as_ref(), err.to_string(), "use `test` for the test pattern, `v4l2:///dev/video0` for a USB/HDMI capture device, or the camera's `rtsp://` URL");
                None
            }
        });
        match (name, source, name_ok, settings) {
            (Some(name), Some(source), true, Some(f)) => cameras.push(f(name, source)),
            _ => all_ok = false,
        }
    }
    for (i, cam) in cameras.iter().enumerate() {
        // Indices match the file only when every camera parsed; otherwise all_ok is already false.
        if let Some(first) = cameras[..i].iter().position(|o| o.name == cam.name) {
            all_ok = false;
            c.error(
                &format!("camera[{i}].name"),
                None,
                format!(
                    "camera name `{}` is already used by camera[{first}]",
                    cam.name
                ),
                "give each camera its own name; it appears in /whep/<camera> and /hls/<camera>",
            );
        }
    }
    all_ok.then_some(cameras)
}

fn source_list(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    allowed: &[(&str, crate::engine::Source)],
) -> Option<std::collections::BTreeSet<crate::engine::Source>> {
    let span = s.get(key).and_then(|n| n.span.clone());
    let list = read_string_list(c, s, key)?.unwrap_or_default();
    let mut out = std::collections::BTreeSet::new();
    for item in &list {
        match allowed.iter().find(|(name, _)| name == item) {
            Some((_, source)) => {
                out.insert(*source);
            }
            None => {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                c.error(
                    &s.key_path(key),
                    span.as_ref(),
                    format!("`{item}` cannot confirm here"),
                    format!("use any of: {}", names.join(", ")),
                );
                return None;
            }
        }
    }
    Some(out)
}

fn crosscheck_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
) -> Option<crate::engine::CrossCheck> {
    use crate::engine::Source;
    let mut s = sub_table(c, top, "crosscheck")?;
    let d = crate::engine::CrossCheck::default();
    let window = read_duration(
        c,
        &mut s,
        "window",
        d.window,
        (Duration::from_millis(200), Duration::from_secs(60)),
    );
    let wheel = source_list(c, &mut s, "wheel", &[("vision", Source::Vision)]);
    let cards = source_list(
        c,
        &mut s,
        "cards",
        &[("vision", Source::Vision), ("rfid", Source::Rfid)],
    );
    s.finish(c);
    Some(crate::engine::CrossCheck {
        window: window?,
        wheel: wheel?,
        cards: cards?,
    })
}

fn blackjack_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
) -> Option<crate::engine::blackjack::Rules> {
    use crate::engine::blackjack::{Peek, Rules};
    let mut s = sub_table(c, top, "blackjack")?;
    let d = Rules::default();
    let h17 = read_bool(c, &mut s, "dealer_hits_soft_17", d.dealer_hits_soft_17);
    let peek = read_choice(
        c,
        &mut s,
        "peek",
        &["none", "ace", "ace-or-ten"],
        |p| match p {
            "none" => Some(Peek::None),
            "ace" => Some(Peek::AceOnly),
            "ace-or-ten" => Some(Peek::AceOrTen),
            _ => None,
        },
        Some(d.peek),
    );
    let hole_card = read_bool(c, &mut s, "hole_card", d.hole_card);
    let boxes = read_u_ranged(
        c,
        &mut s,
        "boxes",
        1..=7,
        i64::from(d.boxes),
        "player boxes on the table",
    );
    let span = s.span.clone();
    s.finish(c);
    let rules = Rules {
        dealer_hits_soft_17: h17?,
        peek: peek?,
        hole_card: hole_card?,
        boxes: u8::try_from(boxes?).unwrap_or(d.boxes),
    };
    if let Err(err) = rules.validate() {
        c.error(
            "blackjack",
            span.as_ref(),
            err.to_string(),
            "a dealer can only peek at a hole card: set hole_card = true, or peek = \"none\"",
        );
        return None;
    }
    Some(rules)
}

fn signing_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    base_dir: &Path,
) -> Option<Option<SigningConfig>> {
    if top.get("signing").is_none() {
        return Some(None);
    }
    let mut s = sub_table(c, top, "signing")?;
    let span = s.span.clone();
    let keys = read_path(c, &mut s, "keys", base_dir)?;
    let key_id_span = s.get("key_id").and_then(|n| n.span.clone());
    let key_id = read_str(c, &mut s, "key_id")?;
    s.finish(c);
    let (Some((keys, keys_node)), Some(key_id)) = (keys, key_id) else {
        c.error("signing", span.as_ref(), "[signing] needs both `keys` and `key_id`", "set keys = \"/etc/croupier/keys\" (the key directory, docs/signing.md) and key_id = the key that signs this table's events");
        return None;
    };
    match crate::signing::KeyRing::load(&keys) {
        Err(err) => {
            c.error(
                "signing.keys",
                keys_node.span.as_ref(),
                err.to_string(),
                "fix or remove the bad key files (docs/signing.md)",
            );
            None
        }
        Ok(ring) if !ring.can_sign(&key_id) => {
            c.error("signing.key_id", key_id_span.as_ref(), format!("no private key `{key_id}` in {}", keys.display()), format!("put {key_id}.hmac or {key_id}.ed25519 in the key directory, or name one of: {}", ring.key_ids().join(", ")));
            None
        }
        Ok(_) => Some(Some(SigningConfig { keys, key_id })),
    }
}

type CameraBuilder = Box<dyn FnOnce(String, CameraSource) -> CameraConfig>;

/// The optional keys of one `[[camera]]`.
fn camera_settings(
    c: &mut Checker<'_>,
    s: &mut Section<'_>,
    base_dir: &Path,
) -> Option<CameraBuilder> {
    let width = read_u_ranged(
        c,
        s,
        "width",
        16..=7680,
        1280,
        "pixels; 1280 for 720p, 1920 for 1080p",
    );
    let height = read_u_ranged(c, s, "height", 16..=4320, 720, "pixels; 720 or 1080");
    let fps_span = s.get("fps").and_then(|n| n.span.clone());
    let fps = read_str(c, s, "fps");
    let fps = match fps {
        Some(Some(text)) => match text.parse::<TimecodeRate>() {
            Ok(rate) => Some(Some(rate)),
            Err(_) => {
                c.error(&s.key_path("fps"), fps_span.as_ref(), format!("`{text}` is not a camera frame rate"), "use one of 23.976, 24, 25, 29.97, 30, 50, 59.94, 60 (leave it out to use [timing] timecode_rate)");
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    let caps_span = s.get("caps").and_then(|n| n.span.clone());
    let caps = match read_str(c, s, "caps") {
        Some(Some(text)) => match croupier_pipelines::video::check_caps(&text) {
            Ok(()) if !text.contains('!') => Some(Some(text)),
            Ok(()) => {
                c.error(&s.key_path("caps"), caps_span.as_ref(), "caps cannot contain `!`", "write one format only, like \"image/jpeg,width=1920,height=1080,framerate=30/1\"");
                None
            }
            Err(why) => {
                c.error(&s.key_path("caps"), caps_span.as_ref(), why, "write the format the camera offers, like \"image/jpeg,width=1920,height=1080,framerate=30/1\" (list them with `v4l2-ctl --list-formats-ext`)");
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    let names: Vec<&str> = EncoderKind::ALL.iter().map(|(n, _)| *n).collect();
    let encoder = read_choice(
        c,
        s,
        "encoder",
        &names,
        |v| v.parse::<EncoderKind>().ok(),
        Some(EncoderKind::X264),
    );
    let bitrate = read_u_ranged(
        c,
        s,
        "bitrate_kbps",
        200..=50_000,
        2500,
        "kbit/s; 2500 suits 720p30, 5000 1080p30",
    );
    let overlay = read_bool(c, s, "overlay", true);
    let qr = read_bool(c, s, "qr_timestamp", false);
    let max_viewers = read_u_ranged(
        c,
        s,
        "max_viewers",
        1..=256,
        16,
        "WebRTC viewers served at once; more get the LL-HLS fallback",
    );
    let recording = read_bool(c, s, "recording", true);
    let whip_span = s.get("whip_url").and_then(|n| n.span.clone());
    let whip_url = read_str(c, s, "whip_url");
    let whip_url = match whip_url {
        Some(Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            c.error(
                &s.key_path("whip_url"),
                whip_span.as_ref(),
                format!("`{u}` is not an http(s) URL"),
                "write the media server's WHIP endpoint, like \"https://sfu.example/whip/table-1\"",
            );
            None
        }
        other => other,
    };
    let token = read_path(c, s, "whip_token_file", base_dir);
    let vision = read_choice(
        c,
        s,
        "vision",
        &["cards", "wheel"],
        |v| match v {
            "cards" => Some(Some(crate::config::VisionKind::Cards)),
            "wheel" => Some(Some(crate::config::VisionKind::Wheel)),
            _ => None,
        },
        Some(None),
    );
    let vision_fps = read_u_ranged(
        c,
        s,
        "vision_fps",
        1..=30,
        5,
        "frames a second the recogniser reads; 5 is plenty for cards and a ball at rest",
    );
    let calibration_span = s.get("calibration").and_then(|n| n.span.clone());
    let calibration = read_path(c, s, "calibration", base_dir);
    let calibration = match (vision, calibration) {
        (Some(Some(kind)), Some(Some((path, _)))) => match check_calibration(kind, &path) {
            Ok(()) => Some(Some(path)),
            Err((problem, fix)) => {
                c.error(
                    &s.key_path("calibration"),
                    calibration_span.as_ref(),
                    problem,
                    fix,
                );
                None
            }
        },
        (Some(Some(kind)), Some(None)) => {
            c.error(
                &s.key_path("calibration"),
                None,
                format!("`vision = \"{}\"` needs the table's calibration file", kind.as_str()),
                "make one with `croupier calibrate …` (docs/vision.md) and set calibration = \"calibration/<table>.json\"",
            );
            None
        }
        (_, Some(Some((path, _)))) => Some(Some(path)),
        (_, other) => other.map(|_| None),
    };
    let (
        width,
        height,
        fps,
        caps,
        encoder,
        bitrate,
        overlay,
        qr,
        max_viewers,
        recording,
        whip_url,
        token,
    ) = (
        width?,
        height?,
        fps?,
        caps?,
        encoder?,
        bitrate?,
        overlay?,
        qr?,
        max_viewers?,
        recording?,
        whip_url?,
        token?,
    );
    let (vision, vision_fps, calibration) = (vision?, vision_fps?, calibration?);
    Some(Box::new(move |name, source| CameraConfig {
        name,
        source,
        width: u32::try_from(width).unwrap_or(1280),
        height: u32::try_from(height).unwrap_or(720),
        fps,
        caps,
        encoder,
        bitrate_kbps: u32::try_from(bitrate).unwrap_or(2500),
        overlay,
        qr_timestamp: qr,
        max_viewers: usize::try_from(max_viewers).unwrap_or(16),
        recording,
        whip_url,
        whip_token_file: token.map(|(p, _)| p),
        vision,
        calibration,
        vision_fps: u32::try_from(vision_fps).unwrap_or(5),
    }))
}

/// Whether a calibration file can drive the reader `kind`: `Err((problem, fix))` if not.
fn check_calibration(kind: crate::config::VisionKind, path: &Path) -> Result<(), (String, String)> {
    use croupier_vision::calibration::Calibration;
    let cal = Calibration::load(path).map_err(|e| {
        (
            e.to_string(),
            "make it with `croupier calibrate deck|table|wheel --out <file>` (docs/vision.md), or fix the path".to_owned(),
        )
    })?;
    let missing = |part: &str, command: &str| {
        Err((
            format!("{} has no {part} calibration", path.display()),
            format!("run `croupier {command}` on it first (docs/vision.md)"),
        ))
    };
    match kind {
        crate::config::VisionKind::Cards if cal.deck.is_none() => missing("deck", "calibrate deck"),
        crate::config::VisionKind::Cards if cal.table.is_none() => {
            missing("table", "calibrate table")
        }
        crate::config::VisionKind::Wheel if cal.wheel.is_none() => {
            missing("wheel", "calibrate wheel")
        }
        _ => Ok(()),
    }
}

/// `[video]`: ICE servers and the recording's place, length and retention.
fn video_section(
    c: &mut Checker<'_>,
    top: &mut Section<'_>,
    storage: Option<&StorageConfig>,
) -> Option<VideoConfig> {
    let mut s = sub_table(c, top, "video")?;
    let stun_span = s.get("stun").and_then(|n| n.span.clone());
    let stun = read_str(c, &mut s, "stun");
    let stun = match stun {
        Some(Some(u)) if !u.starts_with("stun://") => {
            c.error(
                "video.stun",
                stun_span.as_ref(),
                format!("`{u}` is not a stun:// URL"),
                "write it like \"stun://stun.example:3478\", or leave it out (none by default)",
            );
            None
        }
        other => other,
    };
    let turn = read_string_list(c, &mut s, "turn");
    if let Some(Some(list)) = &turn {
        for t in list {
            if !(t.starts_with("turn://") || t.starts_with("turns://")) {
                let span = s.get("turn").and_then(|n| n.span.clone());
                c.error(
                    "video.turn",
                    span.as_ref(),
                    format!("`{t}` is not a turn:// URL"),
                    "write each like \"turn://user:password@turn.example:3478\"",
                );
            }
        }
    }
    let dir_node = s.get("recording_dir").cloned();
    let dir = read_str(c, &mut s, "recording_dir");
    let segment = read_duration(
        c,
        &mut s,
        "recording_segment",
        Duration::from_secs(60),
        (Duration::from_secs(2), Duration::from_secs(3600)),
    );
    let retention = read_duration(
        c,
        &mut s,
        "recording_retention",
        Duration::from_secs(72 * 3600),
        (Duration::from_secs(60), Duration::from_secs(90 * 24 * 3600)),
    );
    s.finish(c);
    let _ = dir_node;
    let base = storage
        .map(|st| st.dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORAGE_DIR));
    let recording_dir = match dir? {
        Some(d) => resolve(&base, &d),
        None => base.join("recordings"),
    };
    let turn = turn?.unwrap_or_default();
    if turn
        .iter()
        .any(|t| !(t.starts_with("turn://") || t.starts_with("turns://")))
    {
        return None;
    }
    Some(VideoConfig {
        stun: stun?,
        turn,
        recording_dir,
        recording_segment: segment?,
        recording_retention: retention?,
    })
}
