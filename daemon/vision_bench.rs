//! `croupier vision bench --data DIR`: the recognisers against a synthetic set made by
//! `tests/vision/synth.py` (deterministic from its seed), per deck and overall.
//!
//! Cards: each read is given to the labelled card whose centre is nearest (within 30 mm). A
//! labelled card is **correct** when a read given to it names it, **wrong** when the reads
//! given to it name another card, **rejected** when none was given to it. A read near no card,
//! or a second read of one card, is an **extra** (a false positive, and wrong too). Empty tables
//! (chips, hands, placards, no card) count their extras per 1000 frames, read with every
//! deck's templates. Latency is `CardReader::read` on one core (OpenCV held to one thread),
//! image decoding excluded: wall clock, and the reading thread's CPU time (on a shared machine
//! the wall clock also counts the waits for a core). Cards with glare over them
//! (`photometric.glare.over_cards`) are also counted apart. The wheel: the pocket read against the label, and any pocket read
//! on a frame whose ball is not at rest is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use croupier_vision::calibration::{Calibration, Ring, TableGeometry, WheelGeometry};
use croupier_vision::cards::{CardReader, Deck};
use croupier_vision::geometry::{Homography, Pt};
use croupier_vision::{read_image, wheel, VisionError};
use serde_json::{json, Value};

use crate::vision::label_centre_mm;

const SAME_CARD_MM: f64 = 30.0;

fn read_json(path: &Path) -> Result<Value, VisionError> {
    let text = std::fs::read_to_string(path).map_err(|e| VisionError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| VisionError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Images with a `.json` label beside them, in name order (numbers sort numerically).
fn labelled(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut v: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .filter_map(|p| {
            let label = p.with_extension("json");
            label.exists().then_some((p, label))
        })
        .collect();
    v.sort_by_key(|(p, _)| {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (stem.parse::<u64>().unwrap_or(u64::MAX), stem)
    });
    v
}

#[derive(Debug, Default, Clone)]
struct Tally {
    frames: u64,
    cards: u64,
    correct: u64,
    rejected: u64,
    wrong: u64,
    extra: u64,
    /// Labelled cards with a card-shaped find within 30 mm (read or not).
    found: u64,
    ms: Vec<f64>,
    /// CPU time of the reading thread per frame: what the frame costs one core, without the
    /// waits a shared machine adds to the wall clock.
    cpu_ms: Vec<f64>,
    /// Labelled cards with glare over them (`photometric.glare.over_cards`), and how those went.
    glare_cards: u64,
    glare_correct: u64,
    glare_wrong: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.frames += o.frames;
        self.cards += o.cards;
        self.correct += o.correct;
        self.rejected += o.rejected;
        self.wrong += o.wrong;
        self.extra += o.extra;
        self.found += o.found;
        self.ms.extend(&o.ms);
        self.cpu_ms.extend(&o.cpu_ms);
        self.glare_cards += o.glare_cards;
        self.glare_correct += o.glare_correct;
        self.glare_wrong += o.glare_wrong;
    }
    fn pct(&self, n: u64) -> f64 {
        if self.cards == 0 {
            0.0
        } else {
            100.0 * n as f64 / self.cards as f64
        }
    }
    fn quantile(&self, q: f64) -> f64 {
        quantile(&self.ms, q)
    }
    fn cpu_quantile(&self, q: f64) -> f64 {
        quantile(&self.cpu_ms, q)
    }
    fn json(&self) -> Value {
        json!({
            "frames": self.frames, "cards": self.cards, "correct": self.correct,
            "rejected": self.rejected, "wrong": self.wrong, "extra": self.extra,
            "found_pct": self.pct(self.found), "correct_pct": self.pct(self.correct), "rejected_pct": self.pct(self.rejected),
            "wrong_pct": self.pct(self.wrong + self.extra),
            "p50_ms": self.quantile(0.5), "p99_ms": self.quantile(0.99),
            "p50_cpu_ms": self.cpu_quantile(0.5), "p99_cpu_ms": self.cpu_quantile(0.99),
            "glare_cards": self.glare_cards, "glare_correct": self.glare_correct, "glare_wrong": self.glare_wrong,
        })
    }
}

/// Thread CPU time, ms.
fn cpu_now_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0.0, |t| {
        t.tv_sec() as f64 * 1000.0 + t.tv_nsec() as f64 / 1e6
    })
}

fn quantile(ms: &[f64], q: f64) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn tables(data: &Path) -> Result<BTreeMap<u64, TableGeometry>, VisionError> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(data.join("tables")).map_err(|e| VisionError::File {
        path: data.join("tables").display().to_string(),
        reason: format!("{e} (make the set with tests/vision/synth.py)"),
    })? {
        let path = entry
            .map_err(|e| VisionError::File {
                path: data.display().to_string(),
                reason: e.to_string(),
            })?
            .path();
        // `<k>.json` is table k's geometry; `<k>.png` beside it is its clear layout.
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(k) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| VisionError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let t: TableGeometry = serde_json::from_str(&text).map_err(|e| VisionError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        out.insert(k, t);
    }
    Ok(out)
}

fn reader(
    deck: &croupier_vision::calibration::DeckTemplates,
    table: &TableGeometry,
    thresholds: croupier_vision::calibration::Thresholds,
) -> Result<CardReader, VisionError> {
    let cal = Calibration {
        table: Some(table.clone()),
        deck: Some(deck.clone()),
        thresholds,
        ..Calibration::default()
    };
    CardReader::new(&cal)
}

/// One card reader per table pose, for one deck.
fn readers(
    deck: &croupier_vision::calibration::DeckTemplates,
    tables: &BTreeMap<u64, TableGeometry>,
    thresholds: croupier_vision::calibration::Thresholds,
) -> Result<BTreeMap<u64, CardReader>, VisionError> {
    tables
        .iter()
        .map(|(k, t)| Ok((*k, reader(deck, t, thresholds)?)))
        .collect()
}

pub fn run(
    data: &Path,
    only: Option<&str>,
    as_json: bool,
    min_score: Option<f64>,
    min_margin: Option<f64>,
) -> Result<(), VisionError> {
    let mut thresholds = Calibration::default().thresholds;
    if let Some(v) = min_score {
        thresholds.card_min_score = v;
    }
    if let Some(v) = min_margin {
        thresholds.card_min_margin = v;
    }
    let tables = tables(data)?;
    let wanted: Option<Vec<&str>> = only.map(|s| s.split(',').map(str::trim).collect());
    let mut decks = Vec::new();
    for dir in sorted_dirs(&data.join("decks")) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if wanted.as_ref().is_some_and(|w| !w.contains(&name.as_str())) {
            continue;
        }
        decks.push((name.clone(), Deck::from_faces(&dir.join("faces"), &name)?));
    }
    let mut per_deck: BTreeMap<String, Tally> = BTreeMap::new();
    for (name, deck) in &decks {
        let readers = readers(deck, &tables, thresholds)?;
        let mut tally = Tally::default();
        for (image, label) in labelled(&data.join("scenes").join(name)) {
            let label = read_json(&label)?;
            let k = label["table"].as_u64().unwrap_or(0);
            let (Some(r), Some(table)) = (readers.get(&k), tables.get(&k)) else {
                continue;
            };
            let frame = read_image(&image)?;
            if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                eprintln!("frame: {}", image.display());
            }
            let (t, cpu) = (Instant::now(), cpu_now_ms());
            let reads = r.read(&frame)?;
            tally.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            tally.cpu_ms.push(cpu_now_ms() - cpu);
            if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                eprintln!(
                    "ms: {:.2} (debug images included; {} read, {} proposals)",
                    t.elapsed().as_secs_f64() * 1000.0,
                    reads.cards.len(),
                    reads.found_mm.len()
                );
            }
            let under_glare: Vec<u64> = label["photometric"]["glare"]["over_cards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            tally.frames += 1;
            let truth: Vec<(String, Pt)> = label["cards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((c["card"].as_str()?.to_owned(), label_centre_mm(c, table)?)))
                .collect();
            if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                for (card, at) in &truth {
                    eprintln!("truth: {card} at {:.0},{:.0} mm", at.x, at.y);
                }
            }
            // Each read belongs to the labelled card whose centre is nearest (within 30 mm):
            // in a dealt hand two cards' centres can lie closer than 30 mm, and a read of one
            // must not be counted against the other.
            let mut assigned: Vec<Vec<&str>> = vec![Vec::new(); truth.len()];
            let mut extra = 0u64;
            for read in &reads.cards {
                let p = Pt::new(read.centre_mm[0], read.centre_mm[1]);
                let nearest = truth
                    .iter()
                    .enumerate()
                    .map(|(i, (_, at))| (i, at.sub(p).len()))
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                match nearest {
                    Some((i, d)) if d <= SAME_CARD_MM => assigned[i].push(read.card.as_str()),
                    _ => extra += 1,
                }
            }
            for (n, ((card, at), reads_here)) in truth.iter().zip(&assigned).enumerate() {
                tally.cards += 1;
                let glare = under_glare.contains(&(n as u64));
                tally.glare_cards += u64::from(glare);
                if reads
                    .found_mm
                    .iter()
                    .any(|f| Pt::new(f[0], f[1]).sub(*at).len() <= SAME_CARD_MM)
                {
                    tally.found += 1;
                }
                if reads_here.iter().any(|r| r == card) {
                    tally.correct += 1;
                    tally.glare_correct += u64::from(glare);
                    // A second read of the same card is a read where no other card lies.
                    extra += reads_here.len() as u64 - 1;
                } else if let Some(other) = reads_here.first() {
                    tally.wrong += 1;
                    tally.glare_wrong += u64::from(glare);
                    extra += reads_here.len() as u64 - 1;
                    if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                        eprintln!("wrong: {card} read as {other} in {}", image.display());
                    }
                } else {
                    tally.rejected += 1;
                    if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                        let found = reads
                            .found_mm
                            .iter()
                            .any(|f| Pt::new(f[0], f[1]).sub(*at).len() <= SAME_CARD_MM);
                        eprintln!(
                            "rejected: {card} (card {n}, at {:.0},{:.0} mm{}{}) in {}",
                            at.x,
                            at.y,
                            if found { "" } else { ", not found" },
                            if glare { ", under glare" } else { "" },
                            image.display()
                        );
                    }
                }
            }
            tally.extra += extra;
        }
        per_deck.insert(name.clone(), tally);
    }
    // Empty tables, read with every deck's templates.
    let mut empty = Tally::default();
    let empties = labelled(&data.join("empty"));
    for (_, deck) in &decks {
        let readers = readers(deck, &tables, thresholds)?;
        for (image, label) in &empties {
            let label = read_json(label)?;
            let Some(r) = readers.get(&label["table"].as_u64().unwrap_or(0)) else {
                continue;
            };
            let frame = read_image(image)?;
            let (t, cpu) = (Instant::now(), cpu_now_ms());
            let reads = r.read(&frame)?;
            empty.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            empty.cpu_ms.push(cpu_now_ms() - cpu);
            if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                eprintln!(
                    "empty {}: ms {:.2} (debug images included; {} proposals)",
                    image.display(),
                    t.elapsed().as_secs_f64() * 1000.0,
                    reads.found_mm.len()
                );
            }
            empty.frames += 1;
            empty.extra += reads.cards.len() as u64;
        }
    }
    // The wheel, once per way a technician can calibrate it.
    let wheel_frames = labelled(&data.join("wheel"));
    let mut wheel_rows: Vec<(&'static str, WheelTally)> = Vec::new();
    for mode in WheelCalibration::ALL {
        let mut t = WheelTally::default();
        for (image, label) in &wheel_frames {
            let label = read_json(label)?;
            let pose = label["pose"].as_u64().unwrap_or(0);
            let pose_file = data.join("wheel").join(format!("pose_{pose}.json"));
            let geometry = wheel_geometry(mode, &read_json(&pose_file)?)?;
            let frame = read_image(image)?;
            let t0 = Instant::now();
            let read = wheel::read_pocket(&frame, &geometry, &thresholds)?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let layout = label["layout"].as_str().unwrap_or("?");
            let tally = if layout == "american" {
                &mut t.american
            } else {
                &mut t.european
            };
            tally.ms.push(ms);
            tally.frames += 1;
            match (label["number"].as_str(), read) {
                (Some(n), Some(r)) => {
                    tally.cards += 1;
                    if r.number == n {
                        tally.correct += 1
                    } else {
                        tally.wrong += 1;
                        if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                            eprintln!(
                                "wheel ({}): {n} read as {} ({:.3}) in {}",
                                mode.name(),
                                r.number,
                                r.confidence,
                                image.display()
                            );
                        }
                    }
                }
                (Some(_), None) => {
                    tally.cards += 1;
                    tally.rejected += 1;
                }
                // No ball at rest (on the track, or none): any read is a false one.
                (None, read) => {
                    tally.found += 1;
                    if let Some(r) = read {
                        tally.extra += 1;
                        if std::env::var_os("CROUPIER_VISION_DEBUG").is_some() {
                            eprintln!(
                                "wheel ({}): no ball at rest, read {} ({:.3}, ball at {:.1}°) in {}",
                                mode.name(),
                                r.number,
                                r.confidence,
                                r.ball_angle_deg,
                                image.display()
                            );
                        }
                    }
                }
            }
        }
        wheel_rows.push((mode.name(), t));
    }
    let mut overall = Tally::default();
    for t in per_deck.values() {
        overall.add(t);
    }
    println!("| deck | frames | cards | found | correct | rejected | wrong | extra reads | p50 ms | p99 ms | p50 CPU ms | p99 CPU ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, t: &Tally| {
        println!(
            "| {name} | {} | {} | {:.1} % | {:.2} % | {:.2} % | {:.2} % | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            t.frames,
            t.cards,
            t.pct(t.found),
            t.pct(t.correct),
            t.pct(t.rejected),
            t.pct(t.wrong),
            t.extra,
            t.quantile(0.5),
            t.quantile(0.99),
            t.cpu_quantile(0.5),
            t.cpu_quantile(0.99)
        );
    };
    for (name, t) in &per_deck {
        row(name, t);
    }
    row("**all decks**", &overall);
    println!();
    // The studio requirement on the card camera (docs/vision.md): the zones at ≥ 2.5 px/mm.
    let resolution: Vec<String> = tables
        .iter()
        .map(|(k, t)| match t.zones_min_px_per_mm() {
            Ok(Some(v)) => format!("table {k}: {v:.2}"),
            _ => format!("table {k}: no zones"),
        })
        .collect();
    println!(
        "Card camera, worst resolution over the zones (px/mm; required ≥ 2.5 at 1280×720): {}",
        resolution.join(", ")
    );
    let clear = overall.cards - overall.glare_cards;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            100.0 * n as f64 / of as f64
        }
    };
    println!(
        "Cards with glare over them: {} of {}: correct {:.2} %, wrong {:.2} %; the other {}: correct {:.2} %, wrong {:.2} %",
        overall.glare_cards,
        overall.cards,
        pct(overall.glare_correct, overall.glare_cards),
        pct(overall.glare_wrong, overall.glare_cards),
        clear,
        pct(overall.correct - overall.glare_correct, clear),
        pct(overall.wrong - overall.glare_wrong, clear)
    );
    println!(
        "Empty tables: {} reads of {} frames (× {} decks): {} false cards ({:.2} per 1000 frames); p50 {:.2} ms, p99 {:.2} ms (CPU p50 {:.2} ms, p99 {:.2} ms)",
        empty.frames / decks.len().max(1) as u64,
        empties.len(),
        decks.len(),
        empty.extra,
        if empty.frames == 0 { 0.0 } else { 1000.0 * empty.extra as f64 / empty.frames as f64 },
        empty.quantile(0.5),
        empty.quantile(0.99),
        empty.cpu_quantile(0.5),
        empty.cpu_quantile(0.99)
    );
    println!();
    println!("| wheel calibration | layout | frames | ball at rest | correct | rejected | wrong | no ball at rest | pockets read there | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (mode, t) in &wheel_rows {
        for (layout, tally) in [
            ("european", &t.european),
            ("american", &t.american),
            ("**both**", &t.both()),
        ] {
            println!(
                "| {mode} | {layout} | {} | {} | {:.2} % | {:.2} % | {:.2} % | {} | {} | {:.2} | {:.2} |",
                tally.frames,
                tally.cards,
                tally.pct(tally.correct),
                tally.pct(tally.rejected),
                tally.pct(tally.wrong),
                tally.found,
                tally.extra,
                tally.quantile(0.5),
                tally.quantile(0.99)
            );
        }
    }
    if as_json {
        let decks_json: BTreeMap<&String, Value> =
            per_deck.iter().map(|(k, v)| (k, v.json())).collect();
        println!(
            "{}",
            json!({ "decks": decks_json, "overall": overall.json(), "empty": {
                "frames": empty.frames, "extra": empty.extra, "p50_ms": empty.quantile(0.5), "p99_ms": empty.quantile(0.99)
            }, "wheel": wheel_rows.iter().map(|(mode, t)| json!({
                "calibration": mode,
                "european": t.european.wheel_json(),
                "american": t.american.wheel_json(),
                "both": t.both().wheel_json(),
            })).collect::<Vec<_>>() })
        );
    }
    Ok(())
}

/// Pocket reads per layout. In a `Tally` here, `cards` counts frames with the ball at rest,
/// `found` frames without, and `extra` the pockets read on those (false reads).
#[derive(Debug, Default)]
struct WheelTally {
    european: Tally,
    american: Tally,
}

impl WheelTally {
    fn both(&self) -> Tally {
        let mut t = self.european.clone();
        t.add(&self.american);
        t
    }
}

impl Tally {
    fn wheel_json(&self) -> Value {
        json!({
            "frames": self.frames, "at_rest": self.cards, "correct": self.correct,
            "rejected": self.rejected, "wrong": self.wrong,
            "correct_pct": self.pct(self.correct), "rejected_pct": self.pct(self.rejected),
            "wrong_pct": self.pct(self.wrong),
            "no_ball_frames": self.found, "no_ball_reads": self.extra,
            "p50_ms": self.quantile(0.5), "p99_ms": self.quantile(0.99),
        })
    }
}

/// The three ways `croupier calibrate wheel` can be told where the wheel is, made from a
/// synthetic pose (`wheel/pose_<p>.json`).
#[derive(Debug, Clone, Copy)]
enum WheelCalibration {
    /// The pose's exact wheel-to-image homography (what a planar calibration tool gives).
    Homography,
    /// Four of the bowl's deflectors clicked (`--marks`), each off by about a pixel.
    Marks,
    /// The centre and the ring's radii only (`--centre`): the tilted ring read as a circle.
    Circle,
}

impl WheelCalibration {
    const ALL: [WheelCalibration; 3] = [
        WheelCalibration::Homography,
        WheelCalibration::Marks,
        WheelCalibration::Circle,
    ];

    fn name(self) -> &'static str {
        match self {
            WheelCalibration::Homography => "homography",
            WheelCalibration::Marks => "4 clicked marks",
            WheelCalibration::Circle => "circle (centre + radii)",
        }
    }
}

fn wheel_geometry(mode: WheelCalibration, pose: &Value) -> Result<WheelGeometry, VisionError> {
    let bad = |what: &str| VisionError::Calibration(format!("wheel pose file: {what}"));
    let ring: Ring =
        serde_json::from_value(pose["pocket_ring_px"].clone()).map_err(|e| bad(&e.to_string()))?;
    let centre: [f64; 2] =
        serde_json::from_value(pose["centre_px"].clone()).map_err(|e| bad(&e.to_string()))?;
    let m: [[f64; 3]; 3] = serde_json::from_value(pose["homography_wheel_to_px"].clone())
        .map_err(|e| bad(&e.to_string()))?;
    let h = Homography([
        m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
    ]);
    Ok(match mode {
        WheelCalibration::Homography => WheelGeometry::from_homography("auto", h, ring),
        WheelCalibration::Circle => WheelGeometry::circle("auto", centre, ring),
        WheelCalibration::Marks => {
            // synth.py's deflectors sit at 22.5° + k·45° on radius 0.80 of the rim's outer
            // radius; a technician clicks the four long ones (k even), a pixel or so off.
            let rim = pose["rim_px"]["outer"]
                .as_f64()
                .ok_or_else(|| bad("no rim_px"))?;
            let radius = 0.80 * rim;
            let click = [(0.8, -0.6), (-0.7, 0.9), (0.5, 0.7), (-0.9, -0.4)];
            let marks: [Pt; 4] = std::array::from_fn(|i| {
                let a = (22.5 + 90.0 * i as f64).to_radians();
                let p = h.apply(Pt::new(radius * a.sin(), -radius * a.cos()));
                Pt::new(p.x + click[i].0, p.y + click[i].1)
            });
            WheelGeometry::from_marks("auto", marks, radius, ring)?
        }
    })
}
