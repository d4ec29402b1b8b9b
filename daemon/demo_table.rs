//! The demo's card camera: a rendered baccarat table that shows the cards the simulated shoe
//! deals, so the vision stage reads them and the engine cross-checks them with the shoe.
//!
//! `croupier demo --game baccarat --vision-kit DIR` takes a kit made by
//! `tests/vision/synth.py` (`make demo` makes one): a deck's face images, a table pose (its
//! corners and zones) and a frame of the empty table. The demo then:
//!
//! 1. calibrates the table exactly as a technician would (`calibrate deck` from the faces,
//!    `calibrate table` with the pose's corners and zones), into `<demo dir>/calibration/`;
//! 2. follows the table's event log: on `round.open` the layout is cleared, on each
//!    `card.dealt` the card is drawn in its side's zone, and the picture is written (by rename)
//!    to the file the `image://` camera shows;
//! 3. in every fourth coup, deliberately shows the camera another card than the shoe dealt: the
//!    engine's cross-check holds the round and raises `alert.mismatch`;
//! 4. plays the orchestrator's part for a held round: it voids it with a signed `round.void`
//!    command over MQTT, so the demo table plays on.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Seek as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use croupier_vision::calibration::{Calibration, TableGeometry};
use croupier_vision::geometry::{Homography, Pt};
use croupier_vision::opencv::core::{self as cv, Mat, Scalar, Size, Vector};
use croupier_vision::opencv::prelude::*;
use croupier_vision::opencv::{imgcodecs, imgproc};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::CalibrateCommand;

/// The deck the demo deals from (one of the kit's decks).
const DEMO_DECK: &str = "standard";
/// Every fourth coup shows the camera a wrong card (coups 2, 6, 10, …).
const MISMATCH_EVERY: u64 = 4;

/// Errors preparing the demo's rendered table; each names what to do.
#[derive(Debug, thiserror::Error)]
pub enum DemoTableError {
    #[error("the vision kit {kit} lacks {what}\n  fix: make it with `/usr/bin/python3 tests/vision/synth.py --seed 1 --out {kit} --decks standard --tables 1 --scenes 0 --empty 1 --wheel 0` (make demo does)")]
    Kit { kit: String, what: String },
    #[error("calibrating the demo table failed: {0}")]
    Calibrate(String),
    #[error("rendering the demo table: {0}")]
    Render(#[from] croupier_vision::VisionError),
    #[error("rendering the demo table: {0}")]
    OpenCv(#[from] croupier_vision::opencv::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the demo config needs to point the camera and the vision stage at.
#[derive(Debug, Clone)]
pub struct DemoVision {
    /// The picture the `image://` camera shows.
    pub frame: PathBuf,
    /// The calibration the vision stage reads with.
    pub calibration: PathBuf,
}

/// The table picture and what it takes to draw cards on it.
#[derive(Debug)]
pub struct DemoTable {
    background: Mat,
    faces: BTreeMap<String, Mat>,
    table: TableGeometry,
    frame: PathBuf,
}

/// Calibrates the demo table from the kit, and draws the empty layout.
pub fn prepare(kit: &Path, dir: &Path) -> Result<(DemoTable, DemoVision), DemoTableError> {
    let missing = |what: &str| DemoTableError::Kit {
        kit: kit.display().to_string(),
        what: what.to_owned(),
    };
    let faces_dir = kit.join("decks").join(DEMO_DECK).join("faces");
    let pose_path = kit.join("tables").join("0.json");
    // The clear layout (tables/0.png) when the kit has it; else an empty-table frame, whose
    // chips and hands the cards would be laid on.
    let empty = [
        kit.join("tables").join("0.png"),
        kit.join("empty").join("0.png"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| kit.join("tables").join("0.png"));
    for (path, what) in [
        (
            &faces_dir,
            "the standard deck's faces (decks/standard/faces/)",
        ),
        (&pose_path, "a table pose (tables/0.json)"),
        (
            &empty,
            "a frame of the clear table (tables/0.png, or empty/0.png)",
        ),
    ] {
        if !path.exists() {
            return Err(missing(what));
        }
    }
    let pose: Value = std::fs::read_to_string(&pose_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| missing("a readable tables/0.json"))?;
    let corners = pose["corners_px"]
        .as_array()
        .map(|pts| {
            pts.iter()
                .filter_map(|p| Some(format!("{},{}", p[0].as_f64()?, p[1].as_f64()?)))
                .collect::<Vec<_>>()
                .join(":")
        })
        .ok_or_else(|| missing("corners_px in tables/0.json"))?;
    let table_mm = format!(
        "{}x{}",
        pose["table_mm"]["width"].as_f64().unwrap_or(1000.0),
        pose["table_mm"]["height"].as_f64().unwrap_or(600.0)
    );
    let cal_dir = dir.join("calibration");
    let camera_dir = dir.join("camera");
    for d in [&cal_dir, &camera_dir] {
        std::fs::create_dir_all(d).map_err(|source| DemoTableError::Write {
            path: d.display().to_string(),
            source,
        })?;
    }
    let zones = cal_dir.join("zones.json");
    write(&zones, demo_zones(&pose["zones"]).to_string().as_bytes())?;
    let calibration = cal_dir.join("table.json");
    // The technician's procedure, step by step (docs/vision.md).
    for cmd in [
        CalibrateCommand::Deck {
            cards: faces_dir.clone(),
            out: calibration.clone(),
            name: Some(DEMO_DECK.into()),
        },
        CalibrateCommand::Table {
            calibration: calibration.clone(),
            image: empty.clone(),
            corners,
            table_mm,
            zones: Some(zones),
        },
    ] {
        crate::vision::calibrate_quiet(cmd).map_err(DemoTableError::Calibrate)?;
    }
    let cal = Calibration::load(&calibration)?;
    let table = cal
        .table
        .ok_or_else(|| DemoTableError::Calibrate("no table part after calibrating".into()))?;
    let background = croupier_vision::read_image(&empty)?;
    let mut faces = BTreeMap::new();
    for code in croupier_vision::calibration::all_cards() {
        let path = faces_dir.join(format!("{code}.png"));
        let face = imgcodecs::imread(&path.to_string_lossy(), imgcodecs::IMREAD_UNCHANGED)?;
        if face.empty() || face.channels() != 4 {
            return Err(missing(&format!("a BGRA face {}", path.display())));
        }
        faces.insert(code, face);
    }
    let frame = camera_dir.join("table.png");
    let demo = DemoTable {
        background,
        faces,
        table,
        frame: frame.clone(),
    };
    demo.render(&[])?;
    Ok((demo, DemoVision { frame, calibration }))
}

/// The kit's zones, with the strip above the hands given to the third cards: a baccarat
/// hand's third card does not fit beside the first two in the synthetic camera's compact
/// dealing area, and the card reader does not read cards laid over each other well enough yet
/// (docs/vision.md). The strip's left half belongs to the player, its right half to the
/// banker; each hand's box comes first, so it is the hand's first place.
fn demo_zones(zones: &Value) -> Value {
    let Some(list) = zones.as_array() else {
        return zones.clone();
    };
    let mut out: Vec<Value> = list
        .iter()
        .filter(|z| z["name"] != "dealer")
        .cloned()
        .collect();
    let Some(strip) = list.iter().find(|z| z["name"] == "dealer") else {
        return zones.clone();
    };
    let pts: Vec<(f64, f64)> = strip["polygon_mm"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
        .collect();
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let mid = (x0 + x1) / 2.0;
    for (name, a, b) in [("player", x0, mid - 2.0), ("banker", mid + 2.0, x1)] {
        out.push(json!({
            "name": name,
            "polygon_mm": [[a, y0], [b, y0], [b, y1], [a, y1]],
        }));
    }
    json!(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DemoTableError> {
    std::fs::write(path, bytes).map_err(|source| DemoTableError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// A card on the layout: which card, in which zone, in which slot of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub card: String,
    pub zone: String,
    pub slot: usize,
}

impl DemoTable {
    /// Draws the cards on the empty table and swaps the picture in.
    pub fn render(&self, cards: &[Placed]) -> Result<(), DemoTableError> {
        let mut img = self.background.clone();
        let to_image = self.table.image_from_table()?;
        for placed in cards {
            let Some(face) = self.faces.get(&placed.card) else {
                continue;
            };
            let Some(centre) = self.slot_centre(&placed.zone, placed.slot) else {
                continue;
            };
            // A dealt card lies a little askew; a third card lies sideways, as in baccarat.
            let angle = [-1.5f64, 1.0, 90.0][placed.slot % 3].to_radians();
            let (w, h) = (self.table.card_mm.width, self.table.card_mm.height);
            let (fw, fh) = (f64::from(face.cols()), f64::from(face.rows()));
            let corner = |x: f64, y: f64| {
                let (dx, dy) = (x - w / 2.0, y - h / 2.0);
                let p = Pt::new(
                    centre.x + dx * angle.cos() - dy * angle.sin(),
                    centre.y + dx * angle.sin() + dy * angle.cos(),
                );
                to_image.apply(p)
            };
            let dst = [
                corner(0.0, 0.0),
                corner(w, 0.0),
                corner(w, h),
                corner(0.0, h),
            ];
            let src = [
                Pt::new(0.0, 0.0),
                Pt::new(fw, 0.0),
                Pt::new(fw, fh),
                Pt::new(0.0, fh),
            ];
            let Some(hom) = Homography::from_points(&src, &dst) else {
                continue;
            };
            composite(&mut img, face, &hom)?;
        }
        let tmp = self.frame.with_extension("tmp.png");
        if !imgcodecs::imwrite_def(&tmp.to_string_lossy(), &img)? {
            return Err(DemoTableError::Write {
                path: tmp.display().to_string(),
                source: std::io::Error::other("imwrite refused"),
            });
        }
        std::fs::rename(&tmp, &self.frame).map_err(|source| DemoTableError::Write {
            path: self.frame.display().to_string(),
            source,
        })
    }

    /// Where the `slot`-th card of a hand lies (table mm): the first two side by side in the
    /// hand's box, the third in the hand's half of the strip above ([`demo_zones`]).
    fn slot_centre(&self, zone: &str, slot: usize) -> Option<Pt> {
        let boxes: Vec<&croupier_vision::calibration::Zone> =
            self.table.zones.iter().filter(|z| z.name == zone).collect();
        let bounds = |z: &croupier_vision::calibration::Zone| {
            let (x0, x1) = z
                .polygon_mm
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
            let (y0, y1) = z
                .polygon_mm
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
            (x0, x1, y0, y1)
        };
        let half = (self.table.card_mm.width + 12.0) / 2.0;
        match (slot, boxes.as_slice()) {
            (0 | 1, [first, ..]) => {
                let (x0, x1, y0, y1) = bounds(first);
                let cx = (x0 + x1) / 2.0;
                let x = if slot == 0 { cx - half } else { cx + half };
                Some(Pt::new(x, (y0 + y1) / 2.0))
            }
            (2, [_, third, ..]) => {
                // Sideways, close to the strip's middle, away from its printed outline.
                let (x0, x1, y0, y1) = bounds(third);
                let inward = if zone == "player" { 1.0 } else { -1.0 };
                let edge = if zone == "player" { x1 } else { x0 };
                let x = edge - inward * (2.0 + self.table.card_mm.height / 2.0);
                Some(Pt::new(x, (y0 + y1) / 2.0))
            }
            _ => None,
        }
    }
}

/// Warps a BGRA face onto the frame through `hom` (face pixels → frame pixels), blending by
/// its alpha.
fn composite(img: &mut Mat, face: &Mat, hom: &Homography) -> Result<(), DemoTableError> {
    let m = Mat::from_slice_2d(&[&hom.0[0..3], &hom.0[3..6], &hom.0[6..9]])?;
    let size = Size::new(img.cols(), img.rows());
    let mut warped = Mat::default();
    imgproc::warp_perspective(
        face,
        &mut warped,
        &m,
        size,
        imgproc::INTER_AREA,
        cv::BORDER_CONSTANT,
        Scalar::all(0.0),
    )?;
    let mut channels = Vector::<Mat>::new();
    cv::split(&warped, &mut channels)?;
    let alpha = channels.get(3)?;
    let mut bgr = Mat::default();
    let mut three = Vector::<Mat>::new();
    for i in 0..3 {
        three.push(channels.get(i)?);
    }
    cv::merge(&three, &mut bgr)?;
    // A slight blur, as a real lens gives; a razor-sharp paste is not a camera picture.
    let mut soft = Mat::default();
    imgproc::gaussian_blur_def(&bgr, &mut soft, Size::new(3, 3), 0.6)?;
    soft.copy_to_masked(img, &alpha)?;
    Ok(())
}

/// Follows the table's event log and keeps the picture in step with the shoe; voids a held
/// round as the orchestrator would. Stops with `stop`.
pub async fn follow(
    demo: DemoTable,
    events: PathBuf,
    orchestrator: DemoOrchestrator,
    stop: CancellationToken,
) {
    let mut offset = 0u64;
    let mut cards: Vec<Placed> = Vec::new();
    let mut swapped_this_round = false;
    let mut round_counter = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (lines, next) = match read_new_lines(&events, offset) {
            Ok(x) => x,
            Err(_) => continue,
        };
        offset = next;
        let mut changed = false;
        for line in lines {
            let Ok(ev) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match ev["type"].as_str().unwrap_or_default() {
                "round.open" => {
                    round_counter = ev["round_id"]
                        .as_str()
                        .and_then(|id| id.rsplit('-').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(round_counter + 1);
                    cards.clear();
                    swapped_this_round = false;
                    changed = true;
                }
                "card.dealt" => {
                    let p = &ev["payload"];
                    let (Some(card), Some(side)) = (p["card"].as_str(), p["side"].as_str()) else {
                        continue;
                    };
                    let slot = cards.iter().filter(|c| c.zone == side).count();
                    let mut shown = card.to_owned();
                    if round_counter % MISMATCH_EVERY == 2
                        && !swapped_this_round
                        && side == "banker"
                    {
                        shown = other_card(card);
                        swapped_this_round = true;
                        info!(round = ev["round_id"].as_str().unwrap_or("?"), dealt = card, shown = %shown, "demo: showing the camera another card than the shoe dealt (a deliberate mismatch)");
                        println!("demo: coup {round_counter}: the camera is shown {shown} where the shoe dealt {card}; expect alert.mismatch");
                    }
                    cards.push(Placed {
                        card: shown,
                        zone: side.to_owned(),
                        slot,
                    });
                    changed = true;
                }
                "alert.mismatch" => {
                    let round = ev["round_id"].as_str().unwrap_or_default().to_owned();
                    println!(
                        "demo: round {round} held ({}): the orchestrator voids it",
                        ev["payload"]["reason"].as_str().unwrap_or("mismatch")
                    );
                    orchestrator
                        .void(&format!(
                            "demo: cross-check failed ({})",
                            ev["payload"]["detail"]
                        ))
                        .await;
                }
                _ => {}
            }
        }
        if changed {
            if let Err(err) = demo.render(&cards) {
                warn!(error = %err, "demo: cannot draw the table");
            }
        }
    }
}

/// A card of the same rank and colour but another suit: the mistake the camera must catch.
fn other_card(card: &str) -> String {
    let mut chars: Vec<char> = card.chars().collect();
    if let Some(suit) = chars.last_mut() {
        *suit = match *suit {
            'H' => 'D',
            'D' => 'H',
            'S' => 'C',
            _ => 'S',
        };
    }
    chars.into_iter().collect()
}

fn read_new_lines(path: &Path, offset: u64) -> std::io::Result<(Vec<String>, u64)> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let offset = if len < offset { 0 } else { offset };
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut reader = std::io::BufReader::new(file);
    let mut lines = Vec::new();
    let mut consumed = offset;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        // Only whole lines: a line being written is read on the next look.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        consumed += n as u64;
        lines.push(line);
    }
    Ok((lines, consumed))
}

/// The orchestrator's part in the demo: signed commands to the table over the demo's broker.
#[derive(Debug)]
pub struct DemoOrchestrator {
    pub broker_port: u16,
    pub topic: String,
    pub table: String,
    pub keys: PathBuf,
    pub key_id: String,
}

impl DemoOrchestrator {
    async fn void(&self, reason: &str) {
        let reason: String = reason.chars().take(200).collect();
        let mut msg = crate::signing::command_message(
            crate::signing::CommandKind::RoundVoid,
            &self.table,
            json!({ "reason": reason }),
            SystemTime::now(),
        );
        let signed = crate::signing::KeyRing::load(&self.keys)
            .map_err(|e| e.to_string())
            .and_then(|ring| {
                crate::signing::sign(&ring, &self.key_id, &mut msg).map_err(|e| e.to_string())
            });
        if let Err(err) = signed {
            warn!(error = %err, "demo: cannot sign the void command");
            return;
        }
        let status = tokio::process::Command::new("mosquitto_pub")
            .args(["-V", "5", "-q", "1", "-h", "127.0.0.1", "-p"])
            .arg(self.broker_port.to_string())
            .args(["-t", &self.topic, "-m", &msg.to_string()])
            .status()
            .await;
        match status {
            Ok(s) if s.success() => {}
            other => warn!(
                ?other,
                "demo: cannot publish the void command (mosquitto-clients installed?)"
            ),
        }
    }
}
