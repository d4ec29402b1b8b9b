//! The vision commands a technician runs, on real files through OpenCV: a deck folder missing
//! cards is refused naming them; a calibration without a table says which command makes one;
//! an empty felt yields no card; calibration files count their versions.

mod common;

use std::process::Command;

use common::croupier;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(croupier())
        .args(args)
        .output()
        .expect("run croupier");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A flat felt-green PNG written with OpenCV itself.
fn felt(path: &std::path::Path) {
    use croupier_vision::opencv::core::{Mat, Scalar, CV_8UC3};
    use croupier_vision::opencv::imgcodecs;
    let img =
        Mat::new_rows_cols_with_default(720, 1280, CV_8UC3, Scalar::new(40.0, 110.0, 30.0, 0.0))
            .expect("mat");
    assert!(imgcodecs::imwrite_def(&path.to_string_lossy(), &img).expect("imwrite"));
}

#[test]
fn a_deck_folder_missing_cards_is_refused_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faces = dir.path().join("faces");
    std::fs::create_dir_all(&faces).expect("dir");
    felt(&faces.join("AS.png"));
    let out = dir.path().join("cal.json");
    let (code, _, err) = run(&[
        "calibrate",
        "deck",
        "--cards",
        &faces.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no face for 2S"), "{err}");
    assert!(err.contains("KC"), "{err}");
    assert!(!err.contains(" AS "), "AS was there: {err}");
    assert!(!out.exists(), "a refused calibration must not be written");
}

#[test]
fn the_table_step_needs_four_corners_and_records_a_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("frame.png");
    felt(&image);
    let cal = dir.path().join("cal.json");
    let cal_s = cal.to_string_lossy().into_owned();
    let img_s = image.to_string_lossy().into_owned();
    let (code, _, err) = run(&[
        "calibrate",
        "table",
        "--calibration",
        &cal_s,
        "--image",
        &img_s,
        "--corners",
        "1,2:3,4",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("give four points"), "{err}");
    for expected in [1, 2] {
        let (code, out, err) = run(&[
            "calibrate",
            "table",
            "--calibration",
            &cal_s,
            "--image",
            &img_s,
            "--corners",
            "100,60:1180,70:1230,690:50,680",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("calibration version {expected}")),
            "{out}"
        );
    }
    assert!(dir.path().join("cal.table.png").exists(), "report image");
    // Recognising needs the deck too, and says how to make it.
    let (code, out, err) = run(&["vision", "recognize", "--calibration", &cal_s, &img_s]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("croupier calibrate deck"), "{err}");
}

/// `croupier validate` on a camera with `vision`: the calibration must be named, must load, and
/// must hold the parts the reader needs; each refusal names the key and the command to run.
#[test]
fn a_vision_camera_needs_a_calibration_with_the_readers_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("frame.png");
    felt(&image);
    let cal = dir.path().join("cal.json");
    let (code, _, err) = run(&[
        "calibrate",
        "table",
        "--calibration",
        &cal.to_string_lossy(),
        "--image",
        &image.to_string_lossy(),
        "--corners",
        "100,50:1180,60:1200,700:80,690",
    ]);
    assert_eq!(code, 0, "{err}");
    let validate = |camera: &str| {
        let path = dir.path().join("table.toml");
        std::fs::write(
            &path,
            format!(
                "[table]\nstudio = \"riga-1\"\nid = \"bc-01\"\ngame = \"baccarat\"\n\n[[camera]]\nname = \"cards\"\nsource = \"test\"\n{camera}\n"
            ),
        )
        .expect("write config");
        run(&["validate", "--config", &path.to_string_lossy()])
    };
    let (code, _, err) = validate("vision = \"cards\"");
    assert_ne!(code, 0);
    assert!(err.contains("camera[0].calibration"), "{err}");
    assert!(err.contains("croupier calibrate"), "{err}");

    let (code, _, err) = validate(&format!(
        "vision = \"cards\"\ncalibration = {:?}",
        cal.display().to_string()
    ));
    assert_ne!(code, 0);
    assert!(err.contains("no deck calibration"), "{err}");
    assert!(err.contains("calibrate deck"), "{err}");

    let (code, _, err) = validate(&format!(
        "vision = \"wheel\"\ncalibration = {:?}",
        cal.display().to_string()
    ));
    assert_ne!(code, 0);
    assert!(err.contains("no wheel calibration"), "{err}");

    let (code, _, err) = validate("vision = \"eyes\"");
    assert_ne!(code, 0);
    assert!(err.contains("camera[0].vision"), "{err}");

    let (code, _, err) = validate(&format!(
        "vision = \"cards\"\ncalibration = {:?}",
        dir.path().join("nope.json").display().to_string()
    ));
    assert_ne!(code, 0);
    assert!(err.contains("nope.json"), "{err}");
}

/// `calibrate table` says at once when the camera sees the dealing zones too coarsely for the
/// card reader (under 2.5 px/mm), and not when it does not.
#[test]
fn the_table_step_warns_when_the_zones_are_seen_too_coarsely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("frame.png");
    felt(&image);
    let zones = dir.path().join("zones.json");
    std::fs::write(
        &zones,
        r#"[{"name": "player", "polygon_mm": [[10, 10], [200, 10], [200, 150], [10, 150]]}]"#,
    )
    .expect("zones");
    let calibrate = |corners: &str| {
        run(&[
            "calibrate",
            "table",
            "--calibration",
            &dir.path().join("cal.json").to_string_lossy(),
            "--image",
            &image.to_string_lossy(),
            "--table-mm",
            "400x200",
            "--zones",
            &zones.to_string_lossy(),
            "--corners",
            corners,
        ])
    };
    let (code, out, err) = calibrate("0,0:400,0:400,200:0,200");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("WARNING"), "{out}");
    assert!(out.contains("1.00 px/mm"), "{out}");
    let (code, out, err) = calibrate("0,0:1200,0:1200,600:0,600");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("WARNING"), "{out}");
    assert!(out.contains("3.00 px/mm"), "{out}");
}

/// `make vision-bench`'s own path, on a small set: synth.py makes it, `croupier vision bench`
/// reads it back and prints the table and its JSON. (The command once choked on the layout
/// PNGs synth.py writes beside each table's geometry, and nothing noticed.)
#[test]
fn the_bench_reads_a_synthetic_set_and_prints_its_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("set");
    common::synth(
        3,
        &data,
        &[
            "--decks", "standard", "--tables", "1", "--scenes", "4", "--empty", "2", "--wheel", "4",
        ],
    );
    let (code, stdout, stderr) = run(&[
        "vision",
        "bench",
        "--data",
        &data.to_string_lossy(),
        "--json",
    ]);
    assert_eq!(code, 0, "vision bench failed: {stderr}");
    assert!(
        stdout.contains("| **all decks** |"),
        "no table in: {stdout}"
    );
    let json: serde_json::Value = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON line in: {stdout}"));
    let overall = &json["overall"];
    let cards = overall["cards"].as_u64().expect("cards");
    assert!(cards >= 4, "labelled cards counted: {overall}");
    // Every labelled card is accounted for, once.
    let counted = ["correct", "rejected", "wrong"]
        .iter()
        .map(|k| overall[*k].as_u64().expect(k))
        .sum::<u64>();
    assert_eq!(counted, cards, "{overall}");
    assert!(
        overall["correct"].as_u64() > Some(0),
        "nothing read: {overall}"
    );
    assert_eq!(overall["wrong"], 0, "a wrong card: {overall}");
    assert_eq!(
        json["empty"]["extra"], 0,
        "a card on an empty table: {json}"
    );
    assert_eq!(json["empty"]["frames"], 2);
    assert!(!json["wheel"].as_array().expect("wheel rows").is_empty());
}
