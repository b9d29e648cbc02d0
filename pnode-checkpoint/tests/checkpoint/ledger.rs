//! The ledger (`Tracker`): typed refusals with the messages schedules have always given, running
//! totals kept per action, the counts an executor driving it step by step gets (equal to
//! `Schedule::predict`), and linear time: store-all over 10⁶ steps.

use pnode_checkpoint::revolve::revolve;
use pnode_checkpoint::two_level::two_level;
use pnode_checkpoint::{
    Action, Error, LedgerError, Phase, Schedule, SlotContent, StageSource, StepCost, Tracker,
};

const RK4: StepCost = StepCost {
    rhs_per_step: 4,
    rhs_per_stage_recompute: 3,
    vjp_per_reverse: 4,
    stage_vectors: 4,
};

use Action::{Advance, Free, Restore, Reverse, StepKeepingStages as Keep, Store, Tape};
use StageSource::{Recompute, Slot};

/// Apply `forward` then `reverse` to a 3-step, 2-slot tracker; the last action must be refused
/// with `expected`, whose message must be `message`; the state must not change on refusal.
fn check(forward: &[Action], reverse: &[Action], expected: LedgerError, message: &str) {
    let mut t = Tracker::new(3, 2, &RK4, 8);
    let actions: Vec<(Action, Phase)> = forward
        .iter()
        .map(|a| (*a, Phase::Forward))
        .chain(reverse.iter().map(|a| (*a, Phase::Reverse)))
        .collect();
    let (last, init) = actions.split_last().expect("an action to refuse");
    for (a, phase) in init {
        t.apply(a, *phase).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    let before = (
        t.current(),
        t.tape(),
        t.next_reverse(),
        t.stats(),
        t.applied(),
    );
    let err = t.apply(&last.0, last.1).unwrap_err();
    assert_eq!(err, expected);
    assert_eq!(err.to_string(), message);
    let after = (
        t.current(),
        t.tape(),
        t.next_reverse(),
        t.stats(),
        t.applied(),
    );
    assert_eq!(before, after, "a refused action changes nothing");
}

#[test]
fn refusals_are_typed_and_keep_their_messages() {
    use LedgerError as E;
    let end = Advance { from: 0, to: 3 };
    check(
        &[Store { slot: 0, step: 1 }],
        &[],
        E::NotCurrent {
            current: 0,
            wanted: 1,
        },
        "the current solution is u0, not u1",
    );
    check(
        &[end, Tape { step: 3 }],
        &[],
        E::PastLastStep { step: 3, last: 2 },
        "step 3 is past the last step 2",
    );
    check(
        &[Advance { from: 0, to: 4 }],
        &[],
        E::BadAdvance { from: 0, to: 4 },
        "cannot advance from u0 to u4",
    );
    check(
        &[Store { slot: 2, step: 0 }],
        &[],
        E::NoSuchSlot {
            slot: 2,
            n_slots: 2,
        },
        "slot 2 does not exist (the schedule uses 2 slots)",
    );
    check(
        &[end, Restore { slot: 1, step: 0 }],
        &[],
        E::EmptySlot { slot: 1 },
        "slot 1 is empty",
    );
    check(
        &[Keep { slot: 0, step: 0 }, Restore { slot: 0, step: 1 }],
        &[],
        E::WrongSolution {
            slot: 0,
            step: 1,
            holds: SlotContent::Stages(0),
        },
        "slot 0 holds the stages of step 0, not u1",
    );
    check(
        &[Free { slot: 0 }],
        &[],
        E::AlreadyEmpty { slot: 0 },
        "slot 0 is already empty",
    );
    check(
        &[Reverse {
            step: 2,
            stages: Recompute,
        }],
        &[],
        E::ReverseInForward,
        "reverse actions belong to the reverse phase",
    );
    check(
        &[end],
        &[Reverse {
            step: 1,
            stages: Recompute,
        }],
        E::OutOfOrder { step: 1, next: 2 },
        "the next step to reverse is 2",
    );
    check(
        &[Store { slot: 0, step: 0 }, end],
        &[Reverse {
            step: 2,
            stages: Slot(0),
        }],
        E::NoStagesInSlot {
            slot: 0,
            step: 2,
            holds: Some(SlotContent::Solution(0)),
        },
        "slot 0 does not hold the stages of step 2 (it holds solution u0)",
    );
    check(
        &[end],
        &[Reverse {
            step: 2,
            stages: Slot(1),
        }],
        E::NoStagesInSlot {
            slot: 1,
            step: 2,
            holds: None,
        },
        "slot 1 does not hold the stages of step 2 (it holds nothing)",
    );
    check(
        &[end],
        &[Reverse {
            step: 2,
            stages: StageSource::Tape,
        }],
        E::NotOnTape { step: 2 },
        "the tape does not hold step 2",
    );
    let mut t = Tracker::new(1, 0, &RK4, 8);
    assert_eq!(
        t.end_forward(),
        Err(Error::InvalidSchedule {
            index: 0,
            action: "end of forward phase".into(),
            reason: E::ForwardEndsEarly {
                current: 0,
                n_steps: 1
            }
        })
    );
    assert_eq!(
        t.end_forward().unwrap_err().to_string(),
        "invalid checkpoint schedule at action 0 (end of forward phase): the forward phase \
         must end at u1"
    );
    t.apply(&Tape { step: 0 }, Phase::Forward).unwrap();
    t.end_forward().unwrap();
    assert_eq!(
        t.end_reverse().unwrap_err().to_string(),
        "invalid checkpoint schedule at action 1 (end of reverse phase): steps 0..1 were never \
         reversed"
    );
    let reverse = Reverse {
        step: 0,
        stages: StageSource::Tape,
    };
    t.apply(&reverse, Phase::Reverse).unwrap();
    t.end_reverse().unwrap();
    assert_eq!(
        t.apply(&reverse, Phase::Reverse),
        Err(E::AllReversed),
        "every step is already reversed"
    );
    // Schedules report them with the action and its position.
    let err = Schedule::new("none", 0, vec![], vec![]).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSchedule {
            index: 0,
            action: "-".into(),
            reason: E::NoSteps
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid checkpoint schedule at action 0 (-): a schedule needs at least one step"
    );
}

#[test]
fn running_totals_follow_every_action() {
    // Slot 1 on disk: u0 to RAM slot 0, step 0's stages to disk slot 1, step 1 taped.
    let forward = vec![
        Store { slot: 0, step: 0 },
        Keep { slot: 1, step: 0 },
        Tape { step: 1 },
    ];
    let reverse = vec![
        Reverse {
            step: 1,
            stages: StageSource::Tape,
        },
        Restore { slot: 1, step: 0 },
        Reverse {
            step: 0,
            stages: Slot(1),
        },
        Free { slot: 1 },
        Free { slot: 0 },
    ];
    let schedule = Schedule::tiered("mixed", 2, forward.clone(), reverse.clone(), [1]).unwrap();
    // A 3-element f32 tensor: 12 bytes per vector.
    let mut t = Tracker::for_schedule(&schedule, &RK4, 12);
    let mut seen = Vec::new();
    for a in &forward {
        t.apply(a, Phase::Forward).unwrap();
        seen.push((t.live_slots(), t.ram_vectors(), t.disk_vectors()));
    }
    t.end_forward().unwrap();
    for a in &reverse {
        t.apply(a, Phase::Reverse).unwrap();
        seen.push((t.live_slots(), t.ram_vectors(), t.disk_vectors()));
    }
    t.end_reverse().unwrap();
    assert_eq!(
        seen,
        [
            (1, 1, 0),
            (2, 1, 4),
            (2, 1, 4),
            (2, 1, 4),
            (2, 1, 4),
            (2, 1, 4),
            (1, 1, 0),
            (0, 0, 0)
        ]
    );
    let s = t.stats();
    assert_eq!((s.forward_steps, s.reversed_steps), (2, 2));
    assert_eq!((s.rhs_evals, s.vjp_evals), (8, 8));
    assert_eq!(
        (s.peak_slots, s.peak_stored_vectors, s.peak_disk_vectors),
        (2, 1, 4)
    );
    assert_eq!((s.peak_stored_bytes, s.peak_disk_bytes), (12, 48));
    // 4 stage vectors written; 1 vector restored + 4 stage vectors reversed from disk.
    assert_eq!((s.disk_writes, s.disk_reads), (4, 5));
    assert_eq!(s, schedule.predict(&RK4, 12).unwrap());
    assert_eq!(t.applied(), 8);
    // Restarting reuses the tracker for a new sweep, from u0 with nothing counted.
    t.restart(&schedule);
    assert_eq!((t.current(), t.applied(), t.live_slots()), (0, 0, 0));
    assert_eq!(t.stats(), Default::default());
    assert_eq!(t.slot(1), None);
    t.apply(&forward[0], Phase::Forward).unwrap();
    assert_eq!(t.slot(0), Some(SlotContent::Solution(0)));
}

/// An executor's view: apply every action with its phase, as the runtime does.
fn drive(schedule: &Schedule, cost: &StepCost, bytes: u64) -> pnode_checkpoint::Stats {
    let mut t = Tracker::for_schedule(schedule, cost, bytes);
    for a in schedule.forward() {
        t.apply(&a, Phase::Forward).unwrap();
    }
    t.end_forward().unwrap();
    for a in schedule.reverse() {
        t.apply(&a, Phase::Reverse).unwrap();
    }
    t.end_reverse().unwrap();
    t.stats()
}

#[test]
fn a_driven_tracker_counts_the_prediction() {
    for schedule in [
        Schedule::store_all(30),
        Schedule::solution_only(30),
        revolve(30, 4).unwrap(),
        two_level(30, 3, 4).unwrap(),
    ] {
        let driven = drive(&schedule, &RK4, 24);
        assert_eq!(
            driven,
            schedule.predict(&RK4, 24).unwrap(),
            "{}",
            schedule.name()
        );
        assert_eq!((driven.forward_steps, driven.reversed_steps), (30, 30));
    }
}

#[test]
fn store_all_over_a_million_steps() {
    // Linear time: the old per-action scan of every slot made this `O(N²)` (10¹² slot visits).
    let n = 1_000_000u64;
    let s = Schedule::store_all(n as usize).predict(&RK4, 8).unwrap();
    assert_eq!(
        (s.forward_steps, s.reversed_steps, s.recomputed_steps),
        (n, n, 0)
    );
    assert_eq!((s.rhs_evals, s.vjp_evals), (4 * n, 4 * n));
    assert_eq!((s.peak_slots, s.peak_stored_vectors), (n - 1, 4 * (n - 1)));
    assert_eq!(s.peak_stored_bytes, 32 * (n - 1));
    let s = Schedule::solution_only(n as usize)
        .predict(&RK4, 8)
        .unwrap();
    assert_eq!(
        (s.stage_recomputations, s.peak_stored_vectors),
        (n - 1, n - 1)
    );
    assert_eq!(s.rhs_evals, 4 * n + 3 * (n - 1));
}
