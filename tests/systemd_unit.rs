//! Checks of the files that put Croupier on a table box: the systemd unit
//! (`systemd/croupier.service`), the sysusers file (`systemd/croupier.sysusers`) and
//! the udev rules (`udev/99-croupier.rules`).
//!
//! A mistake in any of them shows up only on a real box, at boot, as a daemon that
//! does not start or a reader it may not open. These tests catch it here instead:
//! `systemd-analyze verify` and `systemd-sysusers` check what the tools themselves
//! accept, and small parsers check the contracts between the three files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = "systemd/croupier.service";
const SYSUSERS: &str = "systemd/croupier.sysusers";
const UDEV_RULES: &str = "udev/99-croupier.rules";

/// The device classes the daemon needs, and only those.
const DEVICE_CLASSES: [&str; 7] = [
    "char-ttyS",
    "char-ttyUSB",
    "char-ttyACM",
    "char-ttyAMA",
    "char-video4linux",
    "char-gpiochip",
    "char-input",
];

/// The groups that own those devices (see the udev rules) and that the daemon joins.
const DEVICE_GROUPS: [&str; 4] = ["dialout", "gpio", "video", "input"];

/// The daemon's own deadline for a graceful shutdown after SIGTERM.
const DAEMON_SHUTDOWN_DEADLINE_S: u64 = 10;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read_repo_file(rel: &str) -> String {
    let path = repo_path(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// True when `tool` can be started; false (the caller skips) when it is not installed.
fn tool_available(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

// ---------------------------------------------------------------------------------
// The unit file, as systemd reads it
// ---------------------------------------------------------------------------------

/// `(section, key, value)` in file order. Keys that may repeat (DeviceAllow=) appear
/// once per line.
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{UNIT}:{}: keep each setting on one line so a technician can grep it",
            number + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{UNIT}:{}: not a key=value line: {raw:?}", number + 1));
        assert!(
            !section.is_empty(),
            "{UNIT}:{}: setting outside of any [section]",
            number + 1
        );
        entries.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    entries
}

fn values<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The single value of `key`, failing the test when it is missing or set twice.
fn single<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
    match values(entries, section, key).as_slice() {
        [one] => one,
        [] => panic!("{UNIT}: [{section}] {key}= is missing"),
        many => panic!("{UNIT}: [{section}] {key}= is set {} times", many.len()),
    }
}

/// A systemd time span such as `20s`, `1min 30s` or `90` (seconds), in milliseconds.
fn timespan_ms(text: &str) -> u64 {
    let mut total = 0;
    let mut rest = text.trim();
    assert!(!rest.is_empty(), "empty time span");
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits]
            .parse()
            .unwrap_or_else(|e| panic!("time span {text:?}: {e}"));
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "" | "s" | "sec" | "second" | "seconds" => 1_000,
            "ms" | "msec" => 1,
            "m" | "min" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            other => panic!("time span {text:?}: unit {other:?} not understood by this test"),
        };
        total += number * factor;
        rest = rest[unit_len..].trim_start();
    }
    total
}

/// Builds a file system root holding the unit and every program it starts, so that
/// `systemd-analyze verify --root=` can check the unit without Croupier being
/// installed on this machine.
///
/// systemd 252's `verify --root=DIR` looks up units, the targets they depend on and
/// the Exec*= programs inside DIR, so the root needs: the unit, the targets (copied
/// from this machine so that a misspelt target name still fails), `/usr/bin/croupier`
/// (this build's binary) and the other Exec*= programs (`/bin/kill`, copied from this
/// machine).
fn verify_root(unit_text: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temporary directory");
    let unit_dir = root.path().join("etc/systemd/system");
    fs::create_dir_all(&unit_dir).expect("create etc/systemd/system");
    fs::write(unit_dir.join("croupier.service"), unit_text).expect("write unit");

    let target_dir = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&target_dir).expect("create usr/lib/systemd/system");
    for host_dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(listing) = fs::read_dir(host_dir) else {
            continue;
        };
        for entry in listing.flatten() {
            let name = entry.file_name();
            let is_target = name.to_string_lossy().ends_with(".target");
            let dest = target_dir.join(&name);
            if is_target && !dest.exists() {
                // fs::copy follows symlinks: aliases become plain copies, which is all
                // verify needs.
                if let Err(e) = fs::copy(entry.path(), &dest) {
                    eprintln!("skipping {}: {e}", entry.path().display());
                }
            }
        }
    }
    // Every service depends on these by default; without them verify fails for
    // reasons that have nothing to do with our unit.
    for target in ["sysinit.target", "basic.target", "shutdown.target"] {
        let dest = target_dir.join(target);
        if !dest.exists() {
            fs::write(&dest, "[Unit]\nDescription=stand-in for verify\n").expect("write target");
        }
    }

    for (_, key, value) in parse_unit(unit_text) {
        if !key.starts_with("Exec") {
            continue;
        }
        // Strip systemd's command prefixes (-, @, :, +, !) to get the program path.
        let program = value
            .trim_start_matches(['-', '@', ':', '+', '!'])
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            program.starts_with('/'),
            "{UNIT}: {key}= must start an absolute path, got {program:?}"
        );
        let source = if program == "/usr/bin/croupier" {
            PathBuf::from(env!("CARGO_BIN_EXE_croupier"))
        } else {
            PathBuf::from(&program)
        };
        let dest = root.path().join(program.trim_start_matches('/'));
        if dest.exists() {
            continue;
        }
        fs::create_dir_all(dest.parent().expect("program path has a parent"))
            .expect("create program directory");
        fs::copy(&source, &dest).unwrap_or_else(|e| {
            panic!(
                "{key}= runs {program}, which cannot be copied from {}: {e}",
                source.display()
            )
        });
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    }
    root
}

/// Runs `systemd-analyze verify` on `unit_text` and returns every complaint about
/// croupier.service. verify exits 0 for many warnings (an unknown key, a misspelt
/// dependency), so its output is read as well as its exit status.
fn verify_complaints(unit_text: &str) -> Vec<String> {
    let root = verify_root(unit_text);
    let unit_path = root.path().join("etc/systemd/system/croupier.service");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit_path)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut complaints: Vec<String> = text
        .lines()
        .filter(|line| line.contains("croupier.service"))
        .map(str::to_string)
        .collect();
    if !output.status.success() {
        complaints.push(format!(
            "systemd-analyze verify exited with {}; full output:\n{text}",
            output.status
        ));
    }
    complaints
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    // `make test` installs systemd (scripts/install-deps.sh): a missing tool is a failure.
    assert!(
        tool_available("systemd-analyze"),
        "systemd-analyze is not installed; run `make test`, which installs it"
    );
    let complaints = verify_complaints(&read_repo_file(UNIT));
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains about {UNIT}:\n{}",
        complaints.join("\n")
    );
}

/// Guards the test above: if verify's complaints stopped reaching us, a broken unit
/// would pass silently.
#[test]
fn systemd_analyze_verify_catches_a_broken_unit() {
    // `make test` installs systemd (scripts/install-deps.sh): a missing tool is a failure.
    assert!(
        tool_available("systemd-analyze"),
        "systemd-analyze is not installed; run `make test`, which installs it"
    );
    let broken = read_repo_file(UNIT).replacen("[Service]\n", "[Service]\nWatchdogSecs=10s\n", 1);
    assert!(
        !verify_complaints(&broken).is_empty(),
        "a misspelt key (WatchdogSecs=) went unreported; the verify test proves nothing"
    );
}

#[test]
fn unit_has_the_required_directives() {
    let entries = parse_unit(&read_repo_file(UNIT));
    let service = |key| single(&entries, "Service", key);

    // Start-up and liveness: the daemon speaks sd_notify and feeds a watchdog.
    assert_eq!(service("Type"), "notify");
    assert_eq!(service("NotifyAccess"), "main");
    assert!(
        timespan_ms(service("WatchdogSec")) > 0,
        "WatchdogSec= must be set"
    );
    assert_eq!(service("Restart"), "on-failure");
    assert!(
        timespan_ms(service("RestartSec")) > 0,
        "RestartSec= must be set"
    );
    let stop_ms = timespan_ms(service("TimeoutStopSec"));
    assert!(
        stop_ms > DAEMON_SHUTDOWN_DEADLINE_S * 1_000,
        "TimeoutStopSec= ({stop_ms} ms) must exceed the daemon's own {DAEMON_SHUTDOWN_DEADLINE_S} s \
         shutdown deadline, or systemd kills it while it flushes the journal"
    );

    // The commands are part of the CLI contract.
    assert_eq!(
        service("ExecStartPre"),
        "/usr/bin/croupier validate --config /etc/croupier/table.toml"
    );
    assert_eq!(
        service("ExecStart"),
        "/usr/bin/croupier run --config /etc/croupier/table.toml"
    );
    assert_eq!(service("ExecReload"), "/bin/kill -HUP $MAINPID");

    // Identity and directories.
    assert_eq!(service("User"), "croupier");
    assert_eq!(service("Group"), "croupier");
    let groups: BTreeSet<&str> = service("SupplementaryGroups").split_whitespace().collect();
    assert_eq!(groups, BTreeSet::from(DEVICE_GROUPS));
    assert_eq!(service("StateDirectory"), "croupier");
    assert_eq!(service("ConfigurationDirectory"), "croupier");
    assert_eq!(service("RuntimeDirectory"), "croupier");
    assert_eq!(service("UMask"), "0027");

    // Devices: closed policy, exactly the classes the readers and cameras use, rw.
    assert_eq!(service("DevicePolicy"), "closed");
    let allowed: BTreeSet<&str> = values(&entries, "Service", "DeviceAllow")
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = DEVICE_CLASSES.iter().map(|c| format!("{c} rw")).collect();
    assert_eq!(
        allowed,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "DeviceAllow= must list exactly the serial, video, GPIO and input classes, rw"
    );

    // Hardening.
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(service(key), value, "[Service] {key}=");
    }
    let families: BTreeSet<&str> = service("RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"])
    );

    // Settings that would break the daemon on a real box (the unit's comments say why).
    for (key, why) in [
        (
            "PrivateDevices",
            "hides the real /dev, so no reader or camera could be opened",
        ),
        (
            "MemoryDenyWriteExecute",
            "breaks GStreamer's ORC run-time compiled video code",
        ),
        (
            "ProtectClock",
            "blocks the read-only adjtimex() that reports clock sync quality",
        ),
    ] {
        assert!(
            values(&entries, "Service", key).is_empty(),
            "[Service] {key}= must not be set: it {why}"
        );
    }

    assert_eq!(single(&entries, "Install", "WantedBy"), "multi-user.target");
}

// ---------------------------------------------------------------------------------
// sysusers.d
// ---------------------------------------------------------------------------------

/// Splits a sysusers.d line into fields; a field in double quotes may hold spaces.
fn sysusers_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut field = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => field.push(ch),
                    None => return Err("unterminated quote".into()),
                }
            }
            if chars.peek().is_some_and(|ch| !ch.is_whitespace()) {
                return Err("text right after a closing quote".into());
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                if ch == '"' {
                    return Err("quote inside a field".into());
                }
                field.push(ch);
                chars.next();
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

#[test]
fn sysusers_file_parses() {
    let text = read_repo_file(SYSUSERS);
    let mut users = BTreeMap::new();
    let mut groups = BTreeSet::new();
    let mut memberships = BTreeSet::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{SYSUSERS}:{}", number + 1);
        let fields = sysusers_fields(line).unwrap_or_else(|e| panic!("{at}: {e}: {raw:?}"));
        // Field counts per type, from sysusers.d(5): Type Name ID GECOS Home Shell.
        let allowed = match fields[0].as_str() {
            "u" => 3..=6,
            "g" => 3..=3,
            "m" => 3..=3,
            other => panic!("{at}: line type {other:?}; this file uses only u, g and m"),
        };
        assert!(
            allowed.contains(&fields.len()),
            "{at}: a {:?} line takes {allowed:?} fields, this one has {}: {raw:?}",
            fields[0],
            fields.len()
        );
        match fields[0].as_str() {
            "u" => {
                users.insert(fields[1].clone(), fields.clone());
            }
            "g" => {
                groups.insert(fields[1].clone());
            }
            _ => {
                memberships.insert((fields[1].clone(), fields[2].clone()));
            }
        }
    }

    // The user the unit runs as exists, lives in the state directory, cannot log in.
    let unit = parse_unit(&read_repo_file(UNIT));
    let user = single(&unit, "Service", "User");
    let line = users
        .get(user)
        .unwrap_or_else(|| panic!("{SYSUSERS} creates no user {user:?}, the unit's User="));
    assert_eq!(line.get(4).map(String::as_str), Some("/var/lib/croupier"));
    assert_eq!(line.get(5).map(String::as_str), Some("/usr/sbin/nologin"));

    // The group Debian lacks is created, and the user joins every group the unit lists.
    assert!(groups.contains("gpio"), "{SYSUSERS} must create group gpio");
    for group in single(&unit, "Service", "SupplementaryGroups").split_whitespace() {
        assert!(
            memberships.contains(&(user.to_string(), group.to_string())),
            "{SYSUSERS} must add {user} to {group} (the unit's SupplementaryGroups=)"
        );
    }
}

#[test]
fn systemd_sysusers_creates_the_user_and_groups() {
    // `make test` installs systemd (scripts/install-deps.sh): a missing tool is a failure.
    assert!(
        tool_available("systemd-sysusers"),
        "systemd-sysusers is not installed; run `make test`, which installs it"
    );
    // An empty /etc in a temporary root: the real one is never touched.
    let root = tempfile::tempdir().expect("temporary directory");
    fs::create_dir(root.path().join("etc")).expect("create etc");
    let output = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo_path(SYSUSERS))
        .output()
        .expect("run systemd-sysusers");
    assert!(
        output.status.success(),
        "systemd-sysusers rejected {SYSUSERS}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passwd = fs::read_to_string(root.path().join("etc/passwd")).expect("read etc/passwd");
    let group = fs::read_to_string(root.path().join("etc/group")).expect("read etc/group");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("croupier:")
                && l.ends_with(":/var/lib/croupier:/usr/sbin/nologin")),
        "no croupier user in:\n{passwd}"
    );
    for name in DEVICE_GROUPS {
        let members = group
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no group {name} in:\n{group}"))
            .rsplit(':')
            .next()
            .unwrap_or_default();
        assert!(
            members.split(',').any(|m| m == "croupier"),
            "croupier is not in group {name}:\n{group}"
        );
    }
}

// ---------------------------------------------------------------------------------
// udev rules
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct UdevItem {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

/// Keys udev 252 knows. `true`: may (or must) carry `{attr}`.
const UDEV_KEYS: [(&str, bool); 29] = [
    ("ACTION", false),
    ("DEVPATH", false),
    ("KERNEL", false),
    ("KERNELS", false),
    ("NAME", false),
    ("SYMLINK", false),
    ("SUBSYSTEM", false),
    ("SUBSYSTEMS", false),
    ("DRIVER", false),
    ("DRIVERS", false),
    ("ATTR", true),
    ("ATTRS", true),
    ("SYSCTL", true),
    ("ENV", true),
    ("CONST", true),
    ("TAG", false),
    ("TAGS", false),
    ("TEST", true),
    ("PROGRAM", false),
    ("RESULT", false),
    ("OWNER", false),
    ("GROUP", false),
    ("MODE", false),
    ("SECLABEL", true),
    ("RUN", true),
    ("LABEL", false),
    ("GOTO", false),
    ("IMPORT", true),
    ("OPTIONS", false),
];

/// Keys that only compare; using `=` on them is a typo for `==` that udev ignores.
const UDEV_MATCH_ONLY: [&str; 14] = [
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTRS",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
    "CONST",
];

/// Keys that only assign.
const UDEV_ASSIGN_ONLY: [&str; 9] = [
    "OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
];

/// Lexes one rule line: `KEY{attr}OP"value"` items separated by commas.
fn lex_udev_rule(line: &str) -> Result<Vec<UdevItem>, String> {
    let bytes = line.as_bytes();
    let mut pos = 0;
    let skip_spaces = |pos: &mut usize| {
        while *pos < bytes.len() && (bytes[*pos] == b' ' || bytes[*pos] == b'\t') {
            *pos += 1;
        }
    };
    let mut items = Vec::new();
    loop {
        skip_spaces(&mut pos);
        let start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_uppercase() || bytes[pos] == b'_') {
            pos += 1;
        }
        let key = &line[start..pos];
        if key.is_empty() {
            return Err(format!("expected a KEY at column {}", start + 1));
        }
        let attr = if bytes.get(pos) == Some(&b'{') {
            let close = line[pos..]
                .find('}')
                .ok_or_else(|| format!("{key}: unclosed '{{'"))?;
            let attr = &line[pos + 1..pos + close];
            if attr.is_empty() || attr.contains(['"', ',', ' ', '{']) {
                return Err(format!("{key}: bad attribute name {attr:?}"));
            }
            pos += close + 1;
            Some(attr.to_string())
        } else {
            None
        };
        skip_spaces(&mut pos);
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| line[pos..].starts_with(op))
            .ok_or_else(|| {
                format!(
                    "{key}: expected one of == != = += -= := at column {}",
                    pos + 1
                )
            })?;
        pos += op.len();
        skip_spaces(&mut pos);
        if bytes.get(pos) != Some(&b'"') {
            return Err(format!("{key}: value must be in double quotes"));
        }
        pos += 1;
        let mut value = String::new();
        loop {
            match bytes.get(pos) {
                None => return Err(format!("{key}: unterminated value")),
                Some(b'"') => break,
                Some(b'\\') if bytes.get(pos + 1) == Some(&b'"') => {
                    value.push('"');
                    pos += 2;
                }
                Some(_) => {
                    let ch = line[pos..].chars().next().ok_or("broken UTF-8")?;
                    value.push(ch);
                    pos += ch.len_utf8();
                }
            }
        }
        pos += 1;
        items.push(UdevItem {
            key: key.to_string(),
            attr,
            op: op.to_string(),
            value,
        });
        skip_spaces(&mut pos);
        match bytes.get(pos) {
            None => break,
            Some(b',') => {
                pos += 1;
                skip_spaces(&mut pos);
                if pos == bytes.len() {
                    return Err("trailing comma".into());
                }
            }
            Some(_) => return Err(format!("expected ',' at column {}", pos + 1)),
        }
    }
    for item in &items {
        let (_, takes_attr) = UDEV_KEYS
            .iter()
            .find(|(k, _)| *k == item.key)
            .ok_or_else(|| format!("unknown key {}", item.key))?;
        let attr_optional = matches!(item.key.as_str(), "TEST" | "RUN" | "IMPORT");
        match (&item.attr, takes_attr) {
            (Some(_), false) => return Err(format!("{} takes no {{attribute}}", item.key)),
            (None, true) if !attr_optional => {
                return Err(format!("{} needs an {{attribute}}", item.key))
            }
            _ => {}
        }
        let is_match = item.op == "==" || item.op == "!=";
        if UDEV_MATCH_ONLY.contains(&item.key.as_str()) && !is_match {
            return Err(format!("{} only compares: use == or !=", item.key));
        }
        if UDEV_ASSIGN_ONLY.contains(&item.key.as_str()) && is_match {
            return Err(format!("{} only assigns: use = or +=", item.key));
        }
    }
    Ok(items)
}

fn udev_rules(text: &str) -> Vec<(usize, Vec<UdevItem>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| {
            assert!(
                !l.trim_end().ends_with('\\'),
                "{UDEV_RULES}:{}: one rule per line, no continuation",
                n + 1
            );
            let items =
                lex_udev_rule(l).unwrap_or_else(|e| panic!("{UDEV_RULES}:{}: {e}\n  {l}", n + 1));
            (n + 1, items)
        })
        .collect()
}

fn find<'a>(items: &'a [UdevItem], key: &str, attr: Option<&str>) -> Option<&'a UdevItem> {
    items
        .iter()
        .find(|i| i.key == key && i.attr.as_deref() == attr)
}

#[test]
fn udev_rules_are_well_formed() {
    let rules = udev_rules(&read_repo_file(UDEV_RULES));
    let mut symlinks = BTreeSet::new();
    for (line, items) in &rules {
        let at = format!("{UDEV_RULES}:{line}");
        assert!(
            items.iter().any(|i| i.op == "==" || i.op == "!="),
            "{at}: a rule without a match applies to every device on the box"
        );
        let group = find(items, "GROUP", None);
        let mode = find(items, "MODE", None);
        let links: Vec<&UdevItem> = items.iter().filter(|i| i.key == "SYMLINK").collect();
        for link in &links {
            assert_eq!(
                link.op, "+=",
                "{at}: SYMLINK must use += so the system's own links (/dev/serial/by-id/...) stay"
            );
            assert!(
                link.value.starts_with("croupier/") && link.value.len() > "croupier/".len(),
                "{at}: symlinks go under /dev/croupier/, got {:?}",
                link.value
            );
            symlinks.insert(link.value.clone());
            assert!(
                find(items, "ATTRS", Some("idVendor")).is_some(),
                "{at}: a named device must be matched by its USB ATTRS{{idVendor}}"
            );
            assert!(
                find(items, "ATTRS", Some("serial")).is_some()
                    || find(items, "ENV", Some("ID_PATH")).is_some(),
                "{at}: match one physical device: ATTRS{{serial}}, or ENV{{ID_PATH}} if it has no serial"
            );
        }
        if !links.is_empty() || group.is_some() || mode.is_some() {
            let group = group.unwrap_or_else(|| panic!("{at}: sets no GROUP"));
            let mode = mode.unwrap_or_else(|| panic!("{at}: sets no MODE"));
            assert_eq!(mode.value, "0660", "{at}: MODE");
            assert_eq!(mode.op, "=", "{at}: MODE");
            assert_eq!(group.op, "=", "{at}: GROUP");
            let subsystem = find(items, "SUBSYSTEM", None)
                .filter(|i| i.op == "==")
                .unwrap_or_else(|| {
                    panic!("{at}: a rule that sets permissions must match SUBSYSTEM==")
                })
                .value
                .as_str();
            let expected_group = match subsystem {
                "tty" | "usb" => "dialout",
                "input" => "input",
                "video4linux" => "video",
                "gpio" => "gpio",
                other => panic!("{at}: unexpected SUBSYSTEM {other:?}"),
            };
            assert_eq!(
                group.value, expected_group,
                "{at}: GROUP for SUBSYSTEM {subsystem}"
            );
        }
        if subsystem_is(items, "input") {
            assert!(
                find(items, "KERNEL", None).is_some_and(|k| k.value == "event*"),
                "{at}: input rules must name the evdev node (KERNEL==\"event*\") the daemon grabs"
            );
        }
    }
    for role in [
        "wheel",
        "shoe",
        "rfid",
        "pedal",
        "shoe-barcode",
        "camera-overhead",
    ] {
        assert!(
            symlinks.contains(&format!("croupier/{role}")),
            "{UDEV_RULES}: no rule creates /dev/croupier/{role}"
        );
    }
    // Every group the rules hand devices to is one the daemon is in.
    let unit = parse_unit(&read_repo_file(UNIT));
    let unit_groups: BTreeSet<&str> = single(&unit, "Service", "SupplementaryGroups")
        .split_whitespace()
        .collect();
    for (line, items) in &rules {
        if let Some(group) = find(items, "GROUP", None) {
            assert!(
                unit_groups.contains(group.value.as_str()),
                "{UDEV_RULES}:{line}: GROUP {:?} is not in the unit's SupplementaryGroups=",
                group.value
            );
        }
    }
}

fn subsystem_is(items: &[UdevItem], subsystem: &str) -> bool {
    find(items, "SUBSYSTEM", None).is_some_and(|i| i.op == "==" && i.value == subsystem)
}

/// Guards the test above: the lexer must refuse what udev would misread.
#[test]
fn udev_lexer_rejects_malformed_rules() {
    let good = r#"SUBSYSTEM=="tty", ATTRS{serial}=="A1", SYMLINK+="croupier/wheel", GROUP="dialout", MODE="0660""#;
    assert_eq!(lex_udev_rule(good).map(|items| items.len()), Ok(5));
    for bad in [
        r#"SUBSYSTEM=="tty" GROUP="dialout""#,        // missing comma
        r#"SUBSYSTEM=="tty", GROUP="dialout","#,      // trailing comma
        r#"SUBSYSTEM==tty, GROUP="dialout""#,         // unquoted value
        r#"SUBSYSTEM=="tty", GROUP="dialout"#,        // unterminated value
        r#"ATRS{idVendor}=="0403", GROUP="dialout""#, // unknown key
        r#"SUBSYSTEM="tty", GROUP="dialout""#,        // = where == was meant
        r#"SUBSYSTEM=="tty", GROUP=="dialout""#,      // == where = was meant
        r#"ATTRS=="0403", GROUP="dialout""#,          // ATTRS without {attribute}
        r#"SUBSYSTEM{x}=="tty", GROUP="dialout""#,    // attribute on a plain key
        r#"SUBSYSTEM=>"tty""#,                        // unknown operator
    ] {
        assert!(
            lex_udev_rule(bad).is_err(),
            "accepted a malformed rule: {bad}"
        );
    }
}
