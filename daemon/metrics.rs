//! Histograms and gauges for `/metrics` that are not a component's health: how late betting
//! closed, how long an input took to reach the broker, how long a vision read took, WebRTC
//! round trips.
//!
//! One registry per process. The components that observe (the table, the uplink, the vision
//! stage, the cameras) live far apart, and a daemon is one process per table, so a global is
//! simpler than threading a handle through every constructor; tests that run several daemons in
//! one process only share observations, never decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex, PoisonError};

/// A histogram family: its help text and bucket bounds (seconds).
struct Family {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
}

const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const CLOSE_ERROR: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const READ: &[f64] = &[0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

const FAMILIES: &[Family] = &[
    Family {
        name: "croupier_input_to_publish_seconds",
        help: "From an input (its event's monotonic instant) to the broker's acknowledgement of the event.",
        bounds: LATENCY,
    },
    Family {
        name: "croupier_bet_close_error_seconds",
        help: "How late the table processed the close of betting after its deadline (round.close late_us).",
        bounds: CLOSE_ERROR,
    },
    Family {
        name: "croupier_vision_read_seconds",
        help: "Time the vision stage took to read one frame.",
        bounds: READ,
    },
];

/// Counter families: their help, shown even before the first count, so dashboards and alert
/// rules can name them from the start.
const COUNTERS: &[(&str, &str)] = &[(
    "croupier_crosscheck_mismatches_total",
    "Holds by reason (mismatch, missing_confirmation) and by the witness that disagreed or was missing (vision, rfid).",
)];

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Registry {
    histograms: BTreeMap<(&'static str, String), Histogram>,
    gauges: BTreeMap<(&'static str, String), f64>,
    gauge_help: BTreeMap<&'static str, &'static str>,
    counters: BTreeMap<(&'static str, String), u64>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn labels_text(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Records one observation (seconds) in the histogram `name` (one of [`FAMILIES`]).
pub fn observe(name: &'static str, labels: &[(&str, &str)], seconds: f64) {
    let Some(family) = FAMILIES.iter().find(|f| f.name == name) else {
        return;
    };
    if !seconds.is_finite() {
        return;
    }
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let h = reg
        .histograms
        .entry((name, labels_text(labels)))
        .or_insert_with(|| Histogram {
            counts: vec![0; family.bounds.len()],
            sum: 0.0,
            count: 0,
        });
    for (i, bound) in family.bounds.iter().enumerate() {
        if seconds <= *bound {
            h.counts[i] += 1;
        }
    }
    h.sum += seconds;
    h.count += 1;
}

/// Sets a gauge.
pub fn gauge(name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    reg.gauge_help.insert(name, help);
    reg.gauges.insert((name, labels_text(labels)), value);
}

/// Adds to a counter of [`COUNTERS`].
pub fn count(name: &'static str, labels: &[(&str, &str)], n: u64) {
    if !COUNTERS.iter().any(|(c, _)| *c == name) {
        return;
    }
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    *reg.counters.entry((name, labels_text(labels))).or_default() += n;
}

/// Forgets every gauge of `name` with these labels (a camera that went away).
pub fn clear_gauges(name: &'static str, labels: &[(&str, &str)]) {
    let key = labels_text(labels);
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    reg.gauges
        .retain(|(n, l), _| !(*n == name && l.starts_with(&key)));
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// The registry in Prometheus text exposition.
pub fn render(out: &mut String) {
    let reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    for family in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} histogram", family.name);
        for ((name, labels), h) in reg
            .histograms
            .iter()
            .filter(|((n, _), _)| *n == family.name)
        {
            let sep = if labels.is_empty() { "" } else { "," };
            for (bound, count) in family.bounds.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels}{sep}le=\"{}\"}} {count}",
                    number(*bound)
                );
            }
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
            let braces = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            let _ = writeln!(out, "{name}_sum{braces} {}", number(h.sum));
            let _ = writeln!(out, "{name}_count{braces} {}", h.count);
        }
    }
    for (family, help) in COUNTERS {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} counter");
        for ((name, labels), value) in reg.counters.iter().filter(|((n, _), _)| n == family) {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    let mut last = "";
    for ((name, labels), value) in &reg.gauges {
        if *name != last {
            let help = reg.gauge_help.get(name).copied().unwrap_or("");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            last = name;
        }
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {}", number(*value));
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {}", number(*value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_and_renders_every_bucket() {
        observe(
            "croupier_vision_read_seconds",
            &[("camera", "unit-test")],
            0.004,
        );
        observe(
            "croupier_vision_read_seconds",
            &[("camera", "unit-test")],
            0.3,
        );
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains(
                "croupier_vision_read_seconds_bucket{camera=\"unit-test\",le=\"0.002\"} 0"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "croupier_vision_read_seconds_bucket{camera=\"unit-test\",le=\"0.005\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains("croupier_vision_read_seconds_bucket{camera=\"unit-test\",le=\"0.5\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("croupier_vision_read_seconds_bucket{camera=\"unit-test\",le=\"+Inf\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("croupier_vision_read_seconds_count{camera=\"unit-test\"} 2"),
            "{out}"
        );
    }

    #[test]
    fn counters_count_per_label_set_and_show_before_the_first() {
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains("# TYPE croupier_crosscheck_mismatches_total counter"),
            "{out}"
        );
        count(
            "croupier_crosscheck_mismatches_total",
            &[("reason", "unit"), ("source", "vision")],
            1,
        );
        count(
            "croupier_crosscheck_mismatches_total",
            &[("reason", "unit"), ("source", "vision")],
            2,
        );
        count("croupier_not_declared_total", &[], 1);
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains(
                "croupier_crosscheck_mismatches_total{reason=\"unit\",source=\"vision\"} 3"
            ),
            "{out}"
        );
        assert!(!out.contains("croupier_not_declared_total"));
    }

    #[test]
    fn unknown_families_and_non_finite_values_are_ignored() {
        observe("croupier_no_such_thing", &[], 1.0);
        observe(
            "croupier_input_to_publish_seconds",
            &[("t", "nan")],
            f64::NAN,
        );
        let mut out = String::new();
        render(&mut out);
        assert!(!out.contains("croupier_no_such_thing"));
        assert!(!out.contains("t=\"nan\""));
    }
}
