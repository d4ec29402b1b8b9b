//! Bet-window close error: how late the daemon's close is processed after the deadline, on
//! the same path the table component uses (the engine, its timer heap, a tokio sleep on the
//! monotonic clock), idle and with both cores saturated by busy threads plus a flood of
//! device observations into the same runtime. `cargo bench --bench close_error`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use croupier::config::Game;
use croupier::engine::{
    blackjack, roulette, At, CrossCheck, Engine, EngineConfig, Input, Output, Source,
};
use croupier::table::{sleep_until_mono, Timers};
use croupier_drivers::model::{monotonic_ns, Observation};
use croupier_drivers::pedal::PedalEvent;

const ROUNDS: usize = 200;
const WINDOW: Duration = Duration::from_millis(40);

fn now() -> At {
    let mono_ns = monotonic_ns();
    At {
        utc: UNIX_EPOCH + Duration::from_nanos(mono_ns),
        mono_ns,
    }
}

async fn measure() -> Vec<f64> {
    let mut engine = Engine::new(EngineConfig {
        table_id: "bench".into(),
        game: Game::Roulette,
        bet_window: WINDOW,
        early_close: true,
        wheel: roulette::WheelType::European,
        blackjack: blackjack::Rules::default(),
        crosscheck: CrossCheck::default(),
    });
    let mut late_us = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut timers = Timers::default();
        for out in engine.handle(Input::Device {
            device: "pedal".into(),
            source: Source::Pedal,
            at: now(),
            observation: Observation::Pedal(PedalEvent::Press),
        }) {
            if let Output::Timer { at_mono_ns } = out {
                timers.arm(at_mono_ns);
            }
        }
        sleep_until_mono(timers.next()).await;
        for out in engine.handle(Input::Tick { at: now() }) {
            if let Output::Event(e) = out {
                if e.kind == "round.close" {
                    late_us.push(e.payload["late_us"].as_f64().unwrap_or(0.0));
                }
            }
        }
        // Void the round so the next pedal press opens a new one.
        engine.handle(Input::Command {
            source: Source::Command,
            at: now(),
            command: croupier::engine::Command::Void {
                reason: "bench".into(),
            },
        });
    }
    late_us
}

fn report(label: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<48} n={} p50 {:>8.0} us  p99 {:>8.0} us  max {:>8.0} us",
        v.len(),
        p(0.5),
        p(0.99),
        v[v.len() - 1]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "# {ROUNDS} rounds, {} ms windows, tokio multi-thread runtime",
        WINDOW.as_millis()
    );
    report("idle", rt.block_on(measure()));

    // Load: two threads spinning on the two cores, and a task flooding the runtime.
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let flood_stop = stop.clone();
    let loaded = rt.block_on(async move {
        let flood = tokio::spawn(async move {
            while !flood_stop.load(Ordering::Relaxed) {
                // Busy async work that yields, as device traffic and HTTP requests would.
                let mut acc = 0u64;
                for i in 0..20_000u64 {
                    acc = std::hint::black_box(acc ^ i.rotate_left(7));
                }
                tokio::task::yield_now().await;
            }
        });
        let result = measure().await;
        flood.abort();
        result
    });
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    report("loaded (2 spinning threads + runtime flood)", loaded);
}
