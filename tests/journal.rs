//! The journal (WORM) end to end on real files: records rotate across files and the chain
//! continues over restarts; every way of tampering with the files (an edited field, a removed,
//! swapped or forged record, a removed file, a truncated file) is named by `verify` with the
//! file and line; a round's export holds exactly its records and the inputs in its window; a
//! write torn by a power loss is cut off and put on the record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croupier::journal::*;
use serde_json::{json, Value};
use sha2::Digest;

/// 2099-01-01T00:00:00Z: after any real "now", so the files of a test are dated by its entries.
const BASE_SECS: u64 = 4_070_908_800;

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE_SECS) + Duration::from_millis(ms)
}

fn config(boot: &str, max_file_bytes: u64) -> JournalConfig {
    JournalConfig {
        max_file_bytes,
        boot_id: Some(boot.into()),
    }
}

fn entry(kind: Kind, ms: u64, round: Option<&str>, data: Value) -> Entry {
    Entry {
        kind,
        utc: at_ms(ms),
        mono_ns: ms * 1_000_000,
        device: None,
        round_id: round.map(Into::into),
        data,
    }
}

fn input(ms: u64, text: &str) -> Entry {
    Entry::input("wheel", text.as_bytes(), at_ms(ms), ms * 1_000_000)
}

/// A journal of `count` wheel inputs in files of at most 2 KiB (about five records each).
fn fill(dir: &Path, count: u64) -> Journal {
    let mut journal = Journal::open(dir, config("boot-a", 2048)).expect("open");
    for i in 0..count {
        journal
            .append(input(i, &format!("*X;{i};0;32;1\r\n")))
            .expect("append");
    }
    journal
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write");
}

fn records(dir: &Path) -> Vec<Value> {
    files(dir)
        .iter()
        .flat_map(|f| lines(f))
        .map(|l| serde_json::from_str(&l).expect("record"))
        .collect()
}

fn kinds(report: &VerifyReport) -> Vec<ProblemKind> {
    report.problems.iter().map(|p| p.kind).collect()
}

/// A tampered journal: verify must fail and the report must name `kind` at `file:line`.
fn assert_found(report: &VerifyReport, kind: ProblemKind, file: &Path, line: Option<u64>) {
    assert!(!report.is_ok(), "tampering not detected:\n{report}");
    let want = name(file);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == kind && p.file.as_deref() == Some(want.as_str()) && p.line == line),
        "expected {kind:?} at {want}:{line:?}, got:\n{report}"
    );
    let text = report.to_string();
    assert!(text.contains("TAMPERED OR DAMAGED"), "{text}");
}

#[test]
fn records_rotate_across_files_and_the_chain_continues_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = fill(dir.path(), 60);
    let head = journal.head();
    drop(journal);

    let names: Vec<String> = files(dir.path()).iter().map(|f| name(f)).collect();
    assert!(names.len() >= 6, "rotated by size: {names:?}");
    // The genesis file is dated today; the rest carry the entries' date, numbered in order.
    assert!(names[1..]
        .iter()
        .enumerate()
        .all(|(i, n)| *n == format!("journal-20990101-{:06}.jsonl", i + 2)));
    for f in files(dir.path()) {
        let len = std::fs::metadata(&f).expect("metadata").len();
        assert!(len <= 2048, "{} is {len} bytes", name(&f));
    }

    // Restart: the chain continues from the head, with a note of the restart.
    let mut journal = Journal::open(dir.path(), config("boot-a", 2048)).expect("reopen");
    assert_eq!(journal.next_n(), head.n + 2, "one journal_open note");
    let batch = journal
        .append_batch((60..65).map(|i| input(i, "chunk")))
        .expect("batch");
    assert_eq!(batch.end - batch.start, 5);
    for i in 65..70 {
        journal.append(input(i, "chunk")).expect("append");
    }
    journal.flush().expect("flush");
    let head = journal.head();
    drop(journal);

    let all = records(dir.path());
    // Genesis, first open note, 60 inputs, second open note, 10 inputs.
    assert_eq!(all.len(), 73);
    for (i, record) in all.iter().enumerate() {
        assert_eq!(record["n"], i as u64, "n is gap-free across files");
        assert_eq!(record["hash"], record_hash(record).expect("hash").as_str());
        if i == 0 {
            assert_eq!(record["prev"], GENESIS_PREV);
            assert_eq!(record["kind"], "note");
            assert_eq!(record["data"]["note"], "genesis");
        } else {
            assert_eq!(record["prev"], all[i - 1]["hash"], "record {i} links back");
        }
    }
    assert_eq!(all[2]["data"]["text"], "*X;0;0;32;1\r\n");
    assert_eq!(all[2]["boot"], "boot-a");

    let report = verify(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 73);
    assert_eq!(report.head.as_ref(), Some(&head));
    let (text, ok) = cli_verify(dir.path());
    assert!(ok);
    assert!(text.contains("INTACT"), "{text}");
    assert!(text.contains(&head.hash), "{text}");
}

#[test]
fn a_new_utc_day_starts_a_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::open(dir.path(), config("b", DEFAULT_MAX_FILE_BYTES)).expect("open");
    let day = 86_400_000;
    journal.append(input(day - 1, "late")).expect("append");
    journal.append(input(day + 1, "early")).expect("append");
    // A clock stepped back does not date a file before the one before it.
    journal
        .append(input(day - 5, "stepped back"))
        .expect("append");
    drop(journal);
    let names: Vec<String> = files(dir.path()).iter().map(|f| name(f)).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[1], "journal-20990101-000002.jsonl");
    assert_eq!(names[2], "journal-20990102-000003.jsonl");
    assert_eq!(lines(&files(dir.path())[2]).len(), 2);
    assert!(verify(dir.path()).is_ok());
}

#[test]
fn an_edited_field_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let file = files(dir.path())[3].clone();
    let mut content = lines(&file);
    let mut record: Value = serde_json::from_str(&content[1]).expect("json");
    // Still valid JSON, still a well-formed record: the ball landed elsewhere.
    record["data"]["text"] = json!("*X;9;0;17;1\r\n");
    content[1] = serde_json::to_string(&record).expect("json");
    write_lines(&file, &content);

    let report = verify(dir.path());
    assert_found(&report, ProblemKind::BrokenHash, &file, Some(2));
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(report.problems[0].message.contains("edited"), "{report}");
    assert!(report.to_string().contains(&format!("{}:2:", name(&file))));
}

#[test]
fn an_edited_field_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let file = files(dir.path())[3].clone();
    let mut content = lines(&file);
    let mut record: Value = serde_json::from_str(&content[1]).expect("json");
    record["mono_ns"] = json!(1);
    record["hash"] = json!(record_hash(&record).expect("hash"));
    content[1] = serde_json::to_string(&record).expect("json");
    write_lines(&file, &content);

    let report = verify(dir.path());
    assert_found(&report, ProblemKind::BrokenLink, &file, Some(3));
    assert!(
        !kinds(&report).contains(&ProblemKind::BrokenHash),
        "{report}"
    );
}

#[test]
fn a_removed_record_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let file = files(dir.path())[3].clone();
    let mut content = lines(&file);
    let removed: Value = serde_json::from_str(&content.remove(1)).expect("json");
    write_lines(&file, &content);

    let report = verify(dir.path());
    assert_found(&report, ProblemKind::Gap, &file, Some(2));
    assert_found(&report, ProblemKind::BrokenLink, &file, Some(2));
    let n = removed["n"].as_u64().expect("n");
    assert!(
        report
            .to_string()
            .contains(&format!("record n={n} is missing")),
        "{report}"
    );
}

#[test]
fn swapped_records_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let file = files(dir.path())[3].clone();
    let mut content = lines(&file);
    content.swap(1, 2);
    write_lines(&file, &content);

    let report = verify(dir.path());
    assert_found(&report, ProblemKind::OutOfOrder, &file, Some(3));
    assert_found(&report, ProblemKind::BrokenLink, &file, Some(2));
    assert!(report.to_string().contains("out of order"), "{report}");
}

#[test]
fn a_removed_middle_file_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let all = files(dir.path());
    std::fs::remove_file(&all[3]).expect("remove");

    let report = verify(dir.path());
    assert_found(&report, ProblemKind::MissingFile, &all[4], None);
    assert_found(&report, ProblemKind::Gap, &all[4], Some(1));
    assert_found(&report, ProblemKind::BrokenLink, &all[4], Some(1));
    assert!(
        report.to_string().contains(&format!(
            "missing between {} and {}",
            name(&all[2]),
            name(&all[4])
        )),
        "{report}"
    );
}

#[test]
fn a_removed_first_file_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 20));
    let all = files(dir.path());
    std::fs::remove_file(&all[0]).expect("remove");
    let report = verify(dir.path());
    assert_found(&report, ProblemKind::MissingGenesis, &all[1], Some(1));
    assert_found(&report, ProblemKind::MissingFile, &all[1], None);
}

#[test]
fn a_truncated_last_file_is_detected_and_cut_on_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let last = files(dir.path()).last().cloned().expect("files");
    let before = lines(&last);
    let len = std::fs::metadata(&last).expect("metadata").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(len - 40).expect("truncate mid-line");
    drop(file);

    let report = verify(dir.path());
    assert_found(
        &report,
        ProblemKind::TornLine,
        &last,
        Some(before.len() as u64),
    );
    assert!(report.to_string().contains("incomplete"), "{report}");

    // The next start cuts the partial line and says so on the record.
    drop(Journal::open(dir.path(), config("boot-a", 2048)).expect("reopen"));
    let report = verify(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.notices.len(), 1, "{report}");
    assert!(
        report.notices[0].contains("incomplete last line"),
        "{report}"
    );
}

#[test]
fn a_forged_record_with_a_recomputed_hash_but_a_wrong_prev_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 40));
    let last = files(dir.path()).last().cloned().expect("files");
    let mut content = lines(&last);
    let tail: Value = serde_json::from_str(content.last().expect("a record")).expect("json");
    let mut forged = tail.clone();
    forged["n"] = json!(tail["n"].as_u64().expect("n") + 1);
    forged["data"] = json!({ "len": 3, "hex": "2a5831", "text": "*X1" });
    forged["prev"] = json!("ab".repeat(32));
    forged["hash"] = json!(record_hash(&forged).expect("hash"));
    content.push(serde_json::to_string(&forged).expect("json"));
    write_lines(&last, &content);

    let report = verify(dir.path());
    assert_found(
        &report,
        ProblemKind::BrokenLink,
        &last,
        Some(content.len() as u64),
    );
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(report.to_string().contains("forged"), "{report}");
}

#[test]
fn records_cut_from_the_end_are_caught_by_an_anchor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = fill(dir.path(), 40);
    let anchor = Anchor::from(&journal.head());
    drop(journal);
    let last = files(dir.path()).last().cloned().expect("files");
    std::fs::remove_file(&last).expect("remove");

    // Alone, the chain cannot know it once went further...
    assert!(verify(dir.path()).is_ok());
    // ...the head kept elsewhere does.
    let anchor_text = anchor.to_string();
    let report = verify_anchored(dir.path(), &[anchor_text.parse().expect("anchor")]);
    assert!(!report.is_ok());
    assert_eq!(kinds(&report), vec![ProblemKind::AnchorMismatch]);
    assert!(report.to_string().contains("cut from the end"), "{report}");
    let (_, ok) = cli_verify_anchored(dir.path(), &[anchor]);
    assert!(!ok);
}

#[test]
fn opening_refuses_a_journal_whose_last_record_was_edited() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(fill(dir.path(), 10));
    let last = files(dir.path()).last().cloned().expect("files");
    let mut content = lines(&last);
    let mut record: Value = serde_json::from_str(content.last().expect("record")).expect("json");
    record["mono_ns"] = json!(7);
    *content.last_mut().expect("record") = serde_json::to_string(&record).expect("json");
    write_lines(&last, &content);
    let err = Journal::open(dir.path(), config("boot-a", 2048)).expect_err("damaged");
    assert!(matches!(err, JournalError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("journal verify"), "{err}");
}

#[test]
fn a_line_torn_by_a_power_loss_is_cut_off_and_noted() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal =
        Journal::open(dir.path(), config("boot-a", DEFAULT_MAX_FILE_BYTES)).expect("open");
    journal.append(input(1, "one")).expect("append");
    let head = journal.head();
    let path = journal.current_file().to_owned();
    drop(journal);
    // The power went while the next record was being written.
    let torn = br#"{"n":3,"utc":"2099-01-01T00:00:00.002000Z","mono_ns":2000"#;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(torn).expect("torn write");
    drop(file);

    let mut journal =
        Journal::open(dir.path(), config("boot-a", DEFAULT_MAX_FILE_BYTES)).expect("reopen");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.ends_with("}\n"), "the torn line is cut off");
    let all = records(dir.path());
    let note = &all[head.n as usize + 1];
    assert_eq!(note["kind"], "note");
    assert_eq!(
        note["prev"],
        head.hash.as_str(),
        "the chain goes on from the last whole record"
    );
    assert_eq!(note["data"]["note"], "torn_line_cut");
    assert_eq!(note["data"]["bytes"], torn.len());
    assert_eq!(
        note["data"]["text"],
        std::str::from_utf8(torn).expect("utf8")
    );
    assert_eq!(all.last().expect("record")["data"]["note"], "journal_open");
    journal
        .append(input(3, "two"))
        .expect("append after recovery");
    drop(journal);
    let report = verify(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.notices.len(), 1);
}

#[test]
fn a_round_export_holds_its_records_and_the_inputs_in_its_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::open(dir.path(), config("boot-a", 4096)).expect("open");
    let n = |journal: &mut Journal, e: Entry| journal.append(e).expect("append");
    let ev = |t: &str| json!({ "type": t });
    let outside_before = n(&mut journal, input(100, "before"));
    let open = n(
        &mut journal,
        entry(Kind::Event, 200, Some("R1"), ev("round.open")),
    );
    let pedal = n(
        &mut journal,
        Entry::input("pedal", b"\x01", at_ms(250), 250_000_000),
    );
    let command = n(
        &mut journal,
        Entry::command(
            br#"{"cmd":"round.close","id":"c1"}"#,
            at_ms(300),
            300_000_000,
        )
        .with("verdict", json!("ok")),
    );
    let device_down = n(
        &mut journal,
        entry(Kind::Event, 350, None, ev("device.down")),
    );
    let _other_round_event = n(
        &mut journal,
        entry(Kind::Event, 360, Some("R0"), ev("round.void")),
    );
    let close = n(
        &mut journal,
        entry(Kind::Event, 400, Some("R1"), ev("round.close")),
    );
    let tagged_input = n(
        &mut journal,
        input(450, "late chunk").with_round(Some("R0".into())),
    );
    let result = n(
        &mut journal,
        entry(Kind::Event, 500, Some("R1"), ev("round.result")),
    );
    let outside_after = n(&mut journal, input(600, "after"));
    let _next_round = n(
        &mut journal,
        entry(Kind::Event, 700, Some("R2"), ev("round.open")),
    );
    drop(journal);

    // After a reboot, an input whose wall-clock time falls inside the round is in its window...
    let mut journal = Journal::open(dir.path(), config("boot-b", 4096)).expect("reopen");
    let other_boot = n(&mut journal, Entry::input("wheel", b"x", at_ms(300), 5));
    drop(journal);
    // ...but in the round's own boot the monotonic clock decides, whatever the wall clock says.
    let mut journal = Journal::open(dir.path(), config("boot-a", 4096)).expect("reopen");
    let _same_boot_later = n(
        &mut journal,
        Entry::input("wheel", b"y", at_ms(300), 10_000_000_000),
    );
    let head = journal.head();
    drop(journal);

    let mut out = Vec::new();
    let summary = export_round(dir.path(), "R1", &mut out).expect("export");
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let header = &lines[0];
    assert_eq!(header["export"], EXPORT_FORMAT);
    assert_eq!(header["round_id"], "R1");
    assert_eq!(header["journal"]["intact"], true);
    assert_eq!(header["journal"]["head"]["n"], head.n);
    assert_eq!(header["journal"]["head"]["hash"], head.hash.as_str());
    assert!(header["video"].is_null());
    assert_eq!(header["window"]["first_n"], open);
    assert_eq!(header["window"]["last_n"], result);

    let picked = |why: &str| -> Vec<u64> {
        lines[1..]
            .iter()
            .filter(|l| l["why"] == why)
            .map(|l| l["record"]["n"].as_u64().expect("n"))
            .collect()
    };
    assert_eq!(picked("round"), vec![open, close, result]);
    assert_eq!(
        picked("context"),
        vec![pedal, command, device_down, tagged_input, other_boot]
    );
    assert_eq!(lines.len(), 1 + 8);
    assert_eq!(header["counts"]["round"], 3);
    assert_eq!(header["counts"]["context"], 5);
    assert_eq!(summary.round_records, 3);
    assert_eq!(summary.context_records, 5);
    assert!(summary.journal_intact);
    // Every exported record can be checked on its own and against the full journal.
    let full = records(dir.path());
    for line in &lines[1..] {
        let record = &line["record"];
        assert_eq!(record["hash"], record_hash(record).expect("hash").as_str());
        let n = record["n"].as_u64().expect("n") as usize;
        assert_eq!(record, &full[n]);
        let file = dir.path().join(line["file"].as_str().expect("file"));
        let at = line["line"].as_u64().expect("line") as usize;
        let stored: Value = serde_json::from_str(&self::lines(&file)[at - 1]).expect("json");
        assert_eq!(record, &stored);
    }

    // A margin widens the window on both sides.
    let mut out = Vec::new();
    let wide = export_round_with(
        dir.path(),
        "R1",
        &ExportOptions {
            margin: Duration::from_millis(150),
            video: None,
        },
        &mut out,
    )
    .expect("export");
    assert_eq!(
        wide.context_records, 7,
        "adds the inputs at 100 ms and 600 ms"
    );
    let text = String::from_utf8(out).expect("utf8");
    for n in [outside_before, outside_after] {
        assert!(
            text.contains(&format!("\"n\":{n},")),
            "n={n} in the wide export"
        );
    }

    assert!(matches!(
        export_round(dir.path(), "nope", &mut Vec::new()),
        Err(JournalError::RoundNotFound { .. })
    ));
}

#[test]
fn the_cli_export_writes_a_new_file_and_never_overwrites_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::open(dir.path(), config("boot-a", 4096)).expect("open");
    journal
        .append(entry(
            Kind::Event,
            1,
            Some("R9"),
            json!({"type": "round.open"}),
        ))
        .expect("append");
    drop(journal);
    let out = dir.path().join("R9.export.jsonl");
    let summary = cli_export(dir.path(), "R9", Some(&out), None).expect("export");
    assert!(
        summary.contains("exported round R9: 1 round records"),
        "{summary}"
    );
    assert!(summary.contains("verified intact"), "{summary}");
    assert_eq!(lines(&out).len(), 2);
    let again = cli_export(dir.path(), "R9", Some(&out), None);
    assert!(matches!(again, Err(JournalError::Export { .. })));
    // The export file itself is not mistaken for a journal file.
    assert!(verify(dir.path()).is_ok());
}

#[test]
fn verify_reports_an_empty_or_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (text, ok) = cli_verify(dir.path());
    assert!(!ok);
    assert!(text.contains("no journal files"), "{text}");
    let (text, ok) = cli_verify(&dir.path().join("absent"));
    assert!(!ok);
    assert!(text.contains("cannot read the journal directory"), "{text}");
}

#[tokio::test]
async fn the_writer_thread_keeps_what_async_tasks_hand_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(dir.path(), config("boot-a", 4096)).expect("open");
    assert_eq!(journal.last_event_seq().expect("scan"), None);
    let (handle, thread) = journal.spawn(16).expect("spawn");
    for i in 0..100 {
        handle.record(input(i, "chunk")).await.expect("record");
    }
    let envelope: croupier::events::Envelope = serde_json::from_value(json!({
        "event_id": "019aa6b1-1c2e-7ac3-a281-91a8c214f09a", "seq": 7, "type": "round.close",
        "studio": "riga-1", "table": "rl-01", "round_id": "rl-01-20991231T000000Z-0001",
        "source": "timer", "utc": "2099-01-01T00:00:01.000123Z", "mono_ns": 1_000_123_000u64,
        "timecode": {"smpte": "00:00:01:00", "rate": "25/1", "drop_frame": false},
        "clock": {"synchronized": true, "est_error_us": 120}, "payload": {}
    }))
    .expect("envelope");
    let n = handle
        .record_durable(Entry::event(&envelope).expect("entry"))
        .await
        .expect("durable");
    assert_eq!(n, 2 + 100, "genesis, open note, 100 inputs, then the event");
    let head = handle.flush().await.expect("flush");
    assert_eq!(head.n, n);
    assert_eq!(handle.head(), head);
    drop(handle);
    thread.join().expect("thread").expect("writer");

    let report = verify(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.head.as_ref(), Some(&head));
    let event = &records(dir.path())[n as usize];
    assert_eq!(event["kind"], "event");
    assert_eq!(event["utc"], "2099-01-01T00:00:01.000123Z");
    assert_eq!(event["mono_ns"], 1_000_123_000u64);
    assert_eq!(event["round_id"], "rl-01-20991231T000000Z-0001");
    assert_eq!(
        event["data"]["event_id"],
        "019aa6b1-1c2e-7ac3-a281-91a8c214f09a"
    );
    let journal = Journal::open(dir.path(), config("boot-a", 4096)).expect("reopen");
    assert_eq!(journal.last_event_seq().expect("scan"), Some(7));
}

#[test]
fn a_round_export_lists_and_copies_the_recordings_that_cover_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal_dir = dir.path().join("journal");
    let mut journal = Journal::open(&journal_dir, config("boot-a", 4096)).expect("open");
    for (ms, t) in [
        (10_000, "round.open"),
        (25_000, "round.close"),
        (40_000, "round.result"),
    ] {
        journal
            .append(entry(Kind::Event, ms, Some("RV"), json!({ "type": t })))
            .expect("append");
    }
    drop(journal);
    // Two cameras, a file a minute... and 20 s: files at 0 s, 20 s, 40 s, 60 s.
    let recordings = dir.path().join("recordings");
    for camera in ["overhead", "wheel"] {
        std::fs::create_dir_all(recordings.join(camera)).expect("camera dir");
        for s in [0u64, 20, 40, 60] {
            let name = croupier_pipelines::recording::file_name(at_ms(s * 1000), None);
            std::fs::write(recordings.join(camera).join(name), format!("{camera} {s}"))
                .expect("clip");
        }
    }
    let out = dir.path().join("RV.jsonl");
    let copies = dir.path().join("RV.video");
    let summary = cli_export(
        &journal_dir,
        "RV",
        Some(&out),
        Some(VideoExport {
            recordings: recordings.clone(),
            copy_to: Some(copies.clone()),
        }),
    )
    .expect("export");
    assert!(summary.contains("6 video file(s)"), "{summary}");
    let header: Value = serde_json::from_str(lines(&out).first().expect("header")).expect("json");
    let clips = header["video"].as_array().expect("video list");
    // The round runs from 10 s to 40 s: the files starting at 0, 20 and 40 s of each camera.
    let listed: Vec<(String, String)> = clips
        .iter()
        .map(|c| {
            (
                c["camera"].as_str().unwrap().to_owned(),
                c["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 6, "{listed:?}");
    for clip in clips {
        let copy = PathBuf::from(clip["copied_to"].as_str().expect("copied"));
        let bytes = std::fs::read(&copy).expect("copy exists");
        assert_eq!(
            clip["sha256"].as_str(),
            Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str())
        );
        assert!(
            !String::from_utf8_lossy(&bytes).ends_with(" 60"),
            "the file after the round is not included"
        );
    }
}
