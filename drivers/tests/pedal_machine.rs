//! The pedal state machine, fed recorded edges: debounce, press, release, long and double
//! presses, odd input, and properties over random edge streams.

use croupier_drivers::pedal::{
    Edge, ModemLinePedal, PedalEvent, PedalMachine, PedalTiming, SerialBytePedal, TimedPedalEvent,
};
use proptest::prelude::*;
use std::time::Duration;

use PedalEvent::{DoublePress, LongPress, Press, Release};

const fn ms(n: u64) -> u64 {
    n * 1_000_000
}

const fn p(at_ms: u64) -> Edge {
    Edge::press(ms(at_ms))
}

const fn r(at_ms: u64) -> Edge {
    Edge::release(ms(at_ms))
}

/// Feeds the edges, ticking at every deadline that falls before the next edge (as the async
/// adapter does), then runs the timers out to `until_ms`. Returns (stamp in ms, event).
fn play(machine: &mut PedalMachine, edges: &[Edge], until_ms: u64) -> Vec<(u64, PedalEvent)> {
    let mut out: Vec<TimedPedalEvent> = Vec::new();
    for edge in edges {
        while let Some(due) = machine.next_deadline().filter(|&d| d <= edge.at_ns) {
            out.extend(machine.tick(due));
        }
        out.extend(machine.edge(*edge));
    }
    while let Some(due) = machine.next_deadline().filter(|&d| d <= ms(until_ms)) {
        out.extend(machine.tick(due));
    }
    out.extend(machine.tick(ms(until_ms)));
    out.into_iter()
        .map(|e| (e.at_ns / 1_000_000, e.event))
        .collect()
}

fn fresh() -> PedalMachine {
    PedalMachine::new(PedalTiming::default())
}

#[test]
fn a_clean_press_and_release() {
    let mut m = fresh();
    assert_eq!(
        play(&mut m, &[p(1000), r(1300)], 5000),
        [(1000, Press), (1300, Release)]
    );
    assert!(!m.is_pressed());
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn the_press_is_reported_once_the_debounce_time_has_passed() {
    let mut m = fresh();
    assert!(m.edge(p(1000)).is_empty());
    assert_eq!(m.next_deadline(), Some(ms(1020)));
    assert!(m.tick(ms(1019)).is_empty());
    assert_eq!(
        m.tick(ms(1020)),
        [TimedPedalEvent {
            at_ns: ms(1000),
            event: Press
        }]
    );
    // Next: the long-press threshold, counted from the foot hitting the switch.
    assert_eq!(m.next_deadline(), Some(ms(1800)));
}

#[test]
fn bounce_on_press_and_release_is_stamped_with_the_first_edge() {
    let mut m = fresh();
    let edges = [
        // Foot down: the contact chatters for 5 ms.
        p(1000),
        r(1001),
        p(1002),
        r(1004),
        p(1005),
        // Foot up 300 ms later, chattering again.
        r(1300),
        p(1302),
        r(1303),
    ];
    assert_eq!(play(&mut m, &edges, 5000), [(1000, Press), (1300, Release)]);
    assert_eq!(m.stats().glitches, 0);
    assert_eq!(m.stats().edges, 8);
}

#[test]
fn a_blip_shorter_than_the_debounce_is_ignored() {
    let mut m = fresh();
    // A knock on the table: 5 ms of contact, then two tiny bounces.
    assert!(play(&mut m, &[p(1000), r(1005), p(1100), r(1101)], 5000).is_empty());
    assert!(!m.is_pressed());
    assert_eq!(m.stats().glitches, 2);
    // A gap in the bounce shorter than the debounce keeps the transition going.
    let mut m = fresh();
    assert_eq!(
        play(&mut m, &[p(1000), r(1010), p(1025)], 1100),
        [(1000, Press)]
    );
}

#[test]
fn a_long_press_is_reported_once() {
    let mut m = fresh();
    assert_eq!(
        play(&mut m, &[p(1000), r(4000)], 9000),
        [(1000, Press), (1800, LongPress), (4000, Release)]
    );
}

#[test]
fn a_release_bouncing_across_the_threshold_is_no_long_press() {
    // Let go at 1790 ms, bouncing past the 1800 ms threshold: held 790 ms.
    let mut m = fresh();
    let out = play(&mut m, &[p(1000), r(1790), p(1795), r(1801)], 9000);
    assert_eq!(out, [(1000, Press), (1790, Release)]);
    // The threshold tick alone decides nothing while the release is unsettled.
    let mut m = fresh();
    m.edge(p(1000));
    m.tick(ms(1020));
    m.edge(r(1790));
    assert!(m.tick(ms(1805)).is_empty());
    assert_eq!(m.next_deadline(), Some(ms(1810)));
}

#[test]
fn a_blip_of_the_released_level_does_not_cancel_a_long_press() {
    // A 5 ms open contact at 1790 ms while the foot stays down.
    let mut m = fresh();
    let out = play(&mut m, &[p(1000), r(1790), p(1795)], 3000);
    assert_eq!(out, [(1000, Press), (1800, LongPress)]);
    assert!(m.is_pressed());
}

#[test]
fn a_double_press_also_reports_its_second_press_at_once() {
    let mut m = fresh();
    let out = play(&mut m, &[p(1000), r(1100), p(1300), r(1400)], 5000);
    assert_eq!(
        out,
        [
            (1000, Press),
            (1100, Release),
            (1300, Press),
            (1300, DoublePress),
            (1400, Release)
        ]
    );
}

#[test]
fn the_double_press_window_is_measured_from_release_to_press() {
    let mut m = fresh();
    // 350 ms exactly: a double.
    let out = play(&mut m, &[p(1000), r(1100), p(1450)], 1500);
    assert!(out.contains(&(1450, DoublePress)), "{out:?}");
    // 351 ms: two single presses.
    let mut m = fresh();
    let out = play(&mut m, &[p(1000), r(1100), p(1451)], 1500);
    assert!(!out.contains(&(1451, DoublePress)), "{out:?}");
}

#[test]
fn a_third_quick_press_starts_over() {
    let mut m = fresh();
    let out = play(
        &mut m,
        &[
            p(1000),
            r(1100),
            p(1300),
            r(1400),
            p(1600),
            r(1700),
            p(1900),
        ],
        2000,
    );
    let doubles: Vec<_> = out.iter().filter(|(_, e)| *e == DoublePress).collect();
    // 1300 pairs with 1000; 1600 is a fresh first press; 1900 pairs with 1600.
    assert_eq!(doubles, [&(1300, DoublePress), &(1900, DoublePress)]);
}

#[test]
fn a_press_soon_after_a_long_press_is_no_double_press() {
    let mut m = fresh();
    let out = play(&mut m, &[p(1000), r(2000), p(2100), r(2200)], 5000);
    assert_eq!(
        out,
        [
            (1000, Press),
            (1800, LongPress),
            (2000, Release),
            (2100, Press),
            (2200, Release)
        ]
    );
}

#[test]
fn ticks_without_edges_do_nothing() {
    let mut m = fresh();
    assert_eq!(m.next_deadline(), None);
    for t in (0..10_000).step_by(7) {
        assert!(m.tick(ms(t)).is_empty());
    }
    assert!(m.tick(u64::MAX).is_empty());
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn an_edge_from_the_past_counts_as_now() {
    let mut m = fresh();
    m.tick(ms(5000));
    // Stamped before the tick: taken as happening at 5000 ms.
    let out = play(&mut m, &[p(4000), r(5300)], 9000);
    assert_eq!(out, [(5000, Press), (5300, Release)]);
    assert_eq!(m.stats().reordered, 1);
    // A release stamped before its press: a blip at the press's instant.
    let mut m = fresh();
    assert!(play(&mut m, &[p(1000), r(900)], 2000).is_empty());
    assert_eq!(m.stats().reordered, 1);
}

#[test]
fn equal_stamps_and_repeated_levels() {
    let mut m = fresh();
    // Press and release in the same instant: a blip.
    assert!(play(&mut m, &[p(1000), r(1000)], 2000).is_empty());
    // Down, down again: one press.
    let mut m = fresh();
    assert_eq!(
        play(&mut m, &[p(1000), p(1000), p(1010), r(1500), r(1500)], 3000),
        [(1000, Press), (1500, Release)]
    );
    assert_eq!(m.stats().repeated, 3);
}

#[test]
fn a_pedal_held_at_start_is_ignored_until_let_go() {
    let mut m = PedalMachine::starting(PedalTiming::default(), true, ms(1000));
    assert!(m.is_pressed());
    // Held for seconds: no long press, and its release is swallowed too.
    assert!(play(&mut m, &[r(5000)], 5050).is_empty());
    assert!(!m.is_pressed());
    // From then on, normal; and the swallowed release starts no double press.
    assert_eq!(
        play(&mut m, &[p(5100), r(5200)], 7000),
        [(5100, Press), (5200, Release)]
    );
}

#[test]
fn zero_debounce_takes_every_edge_as_it_comes() {
    let timing = PedalTiming {
        debounce: Duration::ZERO,
        ..PedalTiming::default()
    };
    let mut m = PedalMachine::new(timing);
    assert_eq!(
        m.edge(p(1000)),
        [TimedPedalEvent {
            at_ns: ms(1000),
            event: Press
        }]
    );
    assert_eq!(m.edge(r(1001)).len(), 1);
}

#[test]
fn long_and_double_presses_can_be_turned_off() {
    let timing = PedalTiming {
        long_press: Duration::ZERO,
        double_press: Duration::ZERO,
        ..PedalTiming::default()
    };
    let mut m = PedalMachine::new(timing);
    assert_eq!(
        play(&mut m, &[p(0), r(5000), p(5100), r(5200)], 9000),
        [(0, Press), (5000, Release), (5100, Press), (5200, Release)]
    );
}

#[test]
fn a_serial_pedal_byte_per_press_makes_doubles_too() {
    let timing = PedalTiming::default();
    let mut pedal = SerialBytePedal::new(&timing);
    let mut m = PedalMachine::new(timing);
    let mut edges = pedal.bytes(b"P", ms(1000), 0);
    edges.extend(pedal.bytes(b"P", ms(1200), 0));
    assert_eq!(
        play(&mut m, &edges, 3000),
        [
            (1000, Press),
            (1020, Release),
            (1200, Press),
            (1200, DoublePress),
            (1220, Release)
        ]
    );
}

#[test]
fn a_polled_modem_line_with_bounce() {
    // CTS polled every 5 ms; the contact bounces for one poll when closing.
    let polls = [
        (false, 0),
        (false, 5),
        (true, 10),
        (false, 15),
        (true, 20),
        (true, 25),
        (true, 300),
        (false, 305),
    ];
    let mut line = ModemLinePedal::new(false);
    let edges: Vec<Edge> = polls
        .iter()
        .filter_map(|&(level, at)| line.poll(level, ms(at)))
        .collect();
    assert_eq!(edges.len(), 4);
    let mut m = PedalMachine::new(PedalTiming::default());
    // Stamped midway between polls: 7.5 ms rounds down to 7 here.
    assert_eq!(play(&mut m, &edges, 1000), [(7, Press), (302, Release)]);
}

// ---------------------------------------------------------------------------------------------
// Properties over random edge streams
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// An edge `gap_us` after the previous step (possibly "earlier": out of order).
    Edge {
        gap_us: i64,
        pressed: bool,
    },
    Tick {
        gap_us: i64,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let gap = prop_oneof![
        4 => 0i64..3_000,            // bounce-scale gaps
        3 => 0i64..1_000_000,        // press-scale gaps
        1 => -50_000i64..0,          // out of order
        1 => Just(0i64),             // equal stamps
    ];
    let step = prop_oneof![
        4 => (gap.clone(), any::<bool>()).prop_map(|(gap_us, pressed)| Step::Edge { gap_us, pressed }),
        1 => gap.prop_map(|gap_us| Step::Tick { gap_us }),
    ];
    prop::collection::vec(step, 0..120)
}

fn timing() -> impl Strategy<Value = PedalTiming> {
    (0u64..40, 0u64..1500, 0u64..600).prop_map(|(d, l, dp)| PedalTiming {
        debounce: Duration::from_millis(d),
        long_press: Duration::from_millis(l),
        double_press: Duration::from_millis(dp),
    })
}

fn run_steps(machine: &mut PedalMachine, steps: &[Step]) -> Vec<TimedPedalEvent> {
    let mut t: i64 = 1_000_000_000;
    let mut out = Vec::new();
    for step in steps {
        match *step {
            Step::Edge { gap_us, pressed } => {
                t = (t + gap_us * 1000).max(0);
                out.extend(machine.edge(Edge {
                    at_ns: t as u64,
                    pressed,
                }));
            }
            Step::Tick { gap_us } => {
                t = (t + gap_us * 1000).max(0);
                let before = machine.next_deadline();
                out.extend(machine.tick(t as u64));
                // A loop that sleeps until the deadline and ticks never spins.
                if let (Some(due), Some(next)) = (before, machine.next_deadline()) {
                    if due <= t as u64 {
                        assert!(next > due, "deadline {due} did not move on");
                    }
                }
                if let Some(next) = machine.next_deadline() {
                    assert!(next > t as u64 || next == u64::MAX);
                }
            }
        }
    }
    // Run every timer out.
    while let Some(due) = machine.next_deadline() {
        let events = machine.tick(due);
        out.extend(events);
        if machine.next_deadline() == Some(due) {
            panic!("deadline {due} did not move on");
        }
    }
    out
}

fn check_well_formed(events: &[TimedPedalEvent]) -> Result<(), TestCaseError> {
    let mut down = false;
    let mut long_this_press = false;
    let mut last_at = 0u64;
    let mut previous: Option<TimedPedalEvent> = None;
    for e in events {
        prop_assert!(e.at_ns >= last_at, "stamps went back: {events:?}");
        last_at = e.at_ns;
        match e.event {
            Press => {
                prop_assert!(!down, "two presses in a row: {events:?}");
                down = true;
                long_this_press = false;
            }
            Release => {
                prop_assert!(down, "release without press: {events:?}");
                down = false;
            }
            LongPress => {
                prop_assert!(down, "long press while up: {events:?}");
                prop_assert!(!long_this_press, "two long presses: {events:?}");
                long_this_press = true;
            }
            DoublePress => {
                prop_assert!(
                    previous.is_some_and(|p| p.event == Press && p.at_ns == e.at_ns),
                    "double press not right after its press: {events:?}"
                );
            }
        }
        previous = Some(*e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_edges_never_panic_and_presses_alternate(timing in timing(), steps in steps()) {
        let mut machine = PedalMachine::new(timing);
        let events = run_steps(&mut machine, &steps);
        check_well_formed(&events)?;
        // The debounced level agrees with the events.
        let presses = events.iter().filter(|e| e.event == Press).count();
        let releases = events.iter().filter(|e| e.event == Release).count();
        prop_assert_eq!(machine.is_pressed(), presses > releases);
    }

    #[test]
    fn a_pedal_held_at_start_still_alternates(timing in timing(), steps in steps()) {
        let mut machine = PedalMachine::starting(timing, true, 1_000_000_000);
        let events = run_steps(&mut machine, &steps);
        check_well_formed(&events)?;
    }

    #[test]
    fn ticking_in_between_changes_nothing(
        timing in timing(),
        gaps in prop::collection::vec((0u64..400_000, any::<bool>(), any::<bool>()), 0..80),
    ) {
        // In-order edges, fed once without ticks and once with a tick at every deadline
        // before each edge: the same events, stamps included.
        let mut t = 0u64;
        let edges: Vec<(Edge, bool)> = gaps
            .iter()
            .map(|&(gap_us, pressed, tick)| {
                t += gap_us * 1000;
                (Edge { at_ns: t, pressed }, tick)
            })
            .collect();
        let mut plain = PedalMachine::new(timing);
        let mut ticked = PedalMachine::new(timing);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for &(edge, tick) in &edges {
            a.extend(plain.edge(edge));
            if tick {
                while let Some(due) = ticked.next_deadline().filter(|&d| d <= edge.at_ns) {
                    b.extend(ticked.tick(due));
                }
            }
            b.extend(ticked.edge(edge));
        }
        a.extend(plain.tick(u64::MAX));
        b.extend(ticked.tick(u64::MAX));
        prop_assert_eq!(a, b);
    }
}
