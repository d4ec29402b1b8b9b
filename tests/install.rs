//! `make install DESTDIR=…` as a packager or a technician runs it: every file lands in its FHS
//! place with the right mode, site files are never overwritten, and the installed unit verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn make_install(destdir: &Path) -> String {
    let out = Command::new("make")
        .args(["--no-print-directory", "install"])
        .arg(format!("DESTDIR={}", destdir.display()))
        // The binary this test run built, so the install needs no release build.
        .arg(format!("BIN={}", env!("CARGO_BIN_EXE_croupier")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run make install");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "make install failed:\n{text}");
    text
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} not installed: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn make_install_puts_every_file_in_its_place() {
    let dest = tempfile::tempdir().expect("tempdir");
    let root = dest.path();
    make_install(root);
    for (path, expected) in [
        ("usr/bin/croupier", 0o755),
        ("usr/lib/systemd/system/croupier.service", 0o644),
        ("usr/lib/sysusers.d/croupier.conf", 0o644),
        ("usr/lib/modules-load.d/croupier.conf", 0o644),
        ("etc/udev/rules.d/99-croupier.rules", 0o644),
        ("etc/croupier/table.toml", 0o640),
        ("usr/share/doc/croupier/examples/table.toml", 0o644),
        ("usr/share/doc/croupier/README.md", 0o644),
        ("usr/share/doc/croupier/install.md", 0o644),
        ("usr/share/doc/croupier/config.md", 0o644),
    ] {
        assert_eq!(mode(&root.join(path)), expected, "{path}");
    }
    // The installed binary accepts the installed example config.
    let out = Command::new(root.join("usr/bin/croupier"))
        .args(["validate", "--config"])
        .arg(root.join("etc/croupier/table.toml"))
        .output()
        .expect("run installed croupier");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn make_install_keeps_the_technicians_files() {
    let dest = tempfile::tempdir().expect("tempdir");
    let root = dest.path();
    make_install(root);
    let config = root.join("etc/croupier/table.toml");
    let rules = root.join("etc/udev/rules.d/99-croupier.rules");
    std::fs::write(&config, "# edited for table rl-07\n").expect("edit config");
    std::fs::write(&rules, "# serials of rl-07\n").expect("edit rules");
    let text = make_install(root);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        "# edited for table rl-07\n"
    );
    assert_eq!(
        std::fs::read_to_string(&rules).expect("rules"),
        "# serials of rl-07\n"
    );
    assert!(text.contains("keeping existing"), "{text}");
    // The new rules are still shipped beside the docs for a diff.
    assert!(root
        .join("usr/share/doc/croupier/99-croupier.rules")
        .is_file());
}
