//! Two-level (RAM + disk) schedules: valid, within both tiers' slots, every step reversed once
//! in order, and as many advances as the closed form says.

use crate::UNIT;
use pnode_checkpoint::revolve::optimal_advances;
use pnode_checkpoint::two_level::{two_level, two_level_advances};
use pnode_checkpoint::{Action, Checkpointing, Error};
use proptest::prelude::*;

/// Most slots of each tier live at once, read off the action lists (independent of the cost
/// model's peak counting).
fn live_slots(schedule: &pnode_checkpoint::Schedule) -> (usize, usize) {
    let mut live = vec![false; schedule.n_slots()];
    let (mut ram, mut disk) = (0, 0);
    for action in schedule.forward().chain(schedule.reverse()) {
        match action {
            Action::Store { slot, .. } | Action::StepKeepingStages { slot, .. } => {
                live[slot] = true
            }
            Action::Free { slot } => live[slot] = false,
            _ => {}
        }
        let count = |on_disk: bool| {
            (0..live.len())
                .filter(|&s| live[s] && schedule.slot_on_disk(s) == on_disk)
                .count()
        };
        ram = ram.max(count(false));
        disk = disk.max(count(true));
    }
    (ram, disk)
}

fn check_two_level(n: usize, ram: usize, disk: usize) {
    let d = n.div_ceil(disk);
    if ram == 0 && d > 1 {
        assert!(matches!(
            two_level(n, ram, disk),
            Err(Error::BudgetTooSmall { .. })
        ));
        return;
    }
    let schedule = two_level(n, ram, disk).unwrap();
    schedule.validate().unwrap();
    let p = schedule.predict(&UNIT, 8).unwrap();
    let ctx = format!("N={n} ram={ram} disk={disk}: {p:?}");
    assert_eq!(p.forward_steps, n as u64, "{ctx}");
    assert_eq!(p.reversed_steps, n as u64, "{ctx}");
    let (live_ram, live_disk) = live_slots(&schedule);
    assert!(live_ram <= ram && live_disk <= disk, "{ctx}");
    assert_eq!(
        (p.peak_stored_vectors, p.peak_disk_vectors),
        (live_ram as u64, live_disk as u64),
        "{ctx}"
    );
    // Every disk slot is written once, in the first sweep, with an interval's start.
    let intervals = n.div_ceil(d);
    let written = intervals - usize::from(n - (intervals - 1) * d == 1);
    assert_eq!(p.disk_writes, written as u64, "{ctx}");
    assert_eq!(live_disk, written, "{ctx}");
    assert_eq!(
        p.forward_steps - 1 + p.recomputed_steps,
        two_level_advances(n, ram, disk),
        "{ctx}"
    );
    let reversed: Vec<usize> = schedule
        .reverse()
        .filter_map(|a| match a {
            Action::Reverse { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(reversed, (0..n).rev().collect::<Vec<_>>(), "{ctx}");
    // The schedule as planned through the mode enum is the same.
    let planned = Checkpointing::TwoLevel {
        ram_slots: ram,
        disk_slots: disk,
    }
    .plan(n, &UNIT, 8)
    .unwrap();
    assert_eq!(planned, schedule);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn two_level_is_valid_and_within_both_tiers(
        n in 1usize..=400,
        ram in 0usize..=10,
        disk in 1usize..=40,
    ) {
        check_two_level(n, ram, disk);
    }
}

#[test]
fn corner_cases() {
    for n in 1..=15 {
        for ram in 0..=6 {
            for disk in 1..=17 {
                check_two_level(n, ram, disk);
            }
        }
    }
    check_two_level(5000, 8, 25);
}

#[test]
fn cost_is_one_binomial_reversal_per_interval() {
    // N = 1000, 10 disk slots: ten intervals of 100, each reversed with 4 RAM slots plus its
    // disk base, p(100, 5) = 4·100 − C(9, 6) = 316 each; the first sweep advances 900 steps before the last one.
    assert_eq!(optimal_advances(100, 5), 316);
    assert_eq!(two_level_advances(1000, 4, 10), 900 + 10 * 316);
    let p = two_level(1000, 4, 10)
        .unwrap()
        .predict(&UNIT, 8000)
        .unwrap();
    assert_eq!(p.forward_steps - 1 + p.recomputed_steps, 4060);
    assert_eq!((p.peak_stored_vectors, p.peak_stored_bytes), (4, 32_000));
    assert_eq!((p.peak_disk_vectors, p.peak_disk_bytes), (10, 80_000));
    assert_eq!(p.disk_writes, 10);
    // Revolve with all 14 slots in RAM needs fewer advances, but 14 vectors of RAM.
    assert_eq!(optimal_advances(1000, 14), 3184);
}

/// Two-level over 10⁷ steps is generated on demand: the forward phase lists one store and one
/// advance per disk interval plus Revolve's first sweep of the last interval, and the reverse
/// phase starts at once.
#[test]
fn two_level_over_ten_million_steps_is_generated_on_demand() {
    let n = 10_000_000;
    let s = two_level(n, 8, 100).unwrap();
    assert!(s.is_generated());
    assert_eq!(s.name(), "two-level(ram 8, disk 100)");
    assert_eq!(s.n_slots(), 108);
    assert_eq!(
        s.disk_slots().collect::<Vec<_>>(),
        (8..108).collect::<Vec<_>>()
    );
    let forward: Vec<Action> = s.forward().collect();
    assert!(forward.len() <= 2 * 100 + 2 * 8 + 2, "{}", forward.len());
    assert_eq!(forward.last(), Some(&Action::Tape { step: n - 1 }));
    assert_eq!(
        s.reverse().next(),
        Some(Action::Reverse {
            step: n - 1,
            stages: pnode_checkpoint::StageSource::Tape
        })
    );
}
