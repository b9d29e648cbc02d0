//! Multistage (two slot kinds) planning: its dynamic program against an exhaustive search over
//! every possible schedule for small N, never worse than Revolve, and valid within its budget.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use pnode_checkpoint::StepCost;
use pnode_checkpoint::multistage::{multistage, optimal_cost};
use pnode_checkpoint::revolve::revolve;
use proptest::prelude::*;

fn rk(s: u64) -> StepCost {
    StepCost {
        rhs_per_step: s,
        rhs_per_stage_recompute: s - 1,
        vjp_per_reverse: s,
        stage_vectors: s,
    }
}

/// Executor state for the exhaustive search; slot identities do not matter, only contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    current: Option<u8>,
    tape: Option<u8>,
    next_reverse: u8,
    reached_end: bool,
    solutions: u32,
    stages: u32,
}

/// Least total RHS cost of any action sequence (store, keep stages, tape, one-step advance,
/// restore, free, reverse from slot/tape/recompute) that reverses all `n` steps, reaching `u_n`
/// before the first reverse, never holding more than `budget` vectors: Dijkstra over states.
fn exhaustive(n: u8, budget: u32, cost: &StepCost) -> u64 {
    let (a, r, s) = (
        cost.rhs_per_step,
        cost.rhs_per_stage_recompute,
        cost.stage_vectors as u32,
    );
    let vectors = |st: &State| st.solutions.count_ones() + s * st.stages.count_ones();
    let start = State {
        current: Some(0),
        tape: None,
        next_reverse: n,
        reached_end: n == 0,
        solutions: 0,
        stages: 0,
    };
    let mut dist: HashMap<State, u64> = HashMap::new();
    let mut heap = BinaryHeap::new();
    dist.insert(start, 0);
    heap.push(Reverse((0u64, start_key(&start), start)));
    while let Some(Reverse((d, _, st))) = heap.pop() {
        if dist.get(&st).is_some_and(|&best| best < d) {
            continue;
        }
        if st.next_reverse == 0 {
            return d;
        }
        let mut next: Vec<(u64, State)> = Vec::new();
        if let Some(c) = st.current {
            if c < n {
                // Advance one step.
                let mut t = st;
                t.current = Some(c + 1);
                t.reached_end |= c + 1 == n;
                next.push((a, t));
                // Tape it.
                let mut t2 = t;
                t2.tape = Some(c);
                next.push((a, t2));
                // Keep its stages in a slot.
                let mut t3 = t;
                t3.stages |= 1 << c;
                if vectors(&t3) <= budget {
                    next.push((a, t3));
                }
            }
            let mut t = st;
            t.solutions |= 1 << c;
            if c < n && vectors(&t) <= budget {
                next.push((0, t));
            }
        }
        for k in 0..n {
            let bit = 1u32 << k;
            if st.solutions & bit != 0 || st.stages & bit != 0 {
                let mut t = st;
                t.current = Some(k);
                next.push((0, t));
            }
            if st.solutions & bit != 0 {
                let mut t = st;
                t.solutions &= !bit;
                next.push((0, t));
            }
            if st.stages & bit != 0 {
                let mut t = st;
                t.stages &= !bit;
                next.push((0, t));
            }
        }
        if st.reached_end {
            let step = st.next_reverse - 1;
            let mut t = st;
            t.next_reverse = step;
            if st.stages & (1 << step) != 0 || st.tape == Some(step) {
                next.push((0, t));
            }
            if st.current == Some(step) {
                t.tape = None;
                next.push((r, t));
            }
        }
        for (c, t) in next {
            let nd = d + c;
            if dist.get(&t).is_none_or(|&best| nd < best) {
                dist.insert(t, nd);
                heap.push(Reverse((nd, start_key(&t), t)));
            }
        }
    }
    u64::MAX
}

/// A total order key for the heap (State itself is not Ord).
fn start_key(s: &State) -> (u8, u8, u8, bool, u32, u32) {
    (
        s.current.map_or(255, |c| c),
        s.tape.map_or(255, |c| c),
        s.next_reverse,
        s.reached_end,
        s.solutions,
        s.stages,
    )
}

impl PartialOrd for State {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for State {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        start_key(self).cmp(&start_key(other))
    }
}

#[test]
fn dynamic_program_equals_exhaustive_search_for_small_n() {
    for s in [1u64, 2, 3] {
        let cost = rk(s);
        for n in 1..=6u8 {
            for budget in 1..=(u32::from(n) * s as u32).min(9) {
                let dp = optimal_cost(n as usize, u64::from(budget), &cost).unwrap();
                let brute = exhaustive(n, budget, &cost);
                assert_eq!(dp, brute, "s={s} N={n} B={budget}");
                let schedule = multistage(n as usize, u64::from(budget), &cost).unwrap();
                let p = schedule.predict(&cost, 8).unwrap();
                assert_eq!(p.rhs_evals, dp, "s={s} N={n} B={budget}: emitted schedule");
                assert!(p.peak_stored_vectors <= u64::from(budget));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn multistage_is_valid_within_budget_and_no_worse_than_revolve(
        n in 1usize..=300, c in 1u64..=20, s in 1u64..=5
    ) {
        let cost = rk(s);
        let schedule = multistage(n, c, &cost).unwrap();
        let p = schedule.predict(&cost, 8).unwrap();
        prop_assert_eq!(p.rhs_evals, optimal_cost(n, c, &cost).unwrap());
        prop_assert!(p.peak_stored_vectors <= c);
        prop_assert_eq!(p.reversed_steps, n as u64);
        let r = revolve(n, c as usize).unwrap().predict(&cost, 8).unwrap();
        prop_assert!(p.rhs_evals <= r.rhs_evals, "multistage {} > revolve {}", p.rhs_evals, r.rhs_evals);
    }
}

#[test]
fn stage_slots_pay_off_when_the_budget_allows() {
    // RK4, 40 steps, 40 vectors: Revolve holds 40 solutions (no re-advancing, but every step but
    // the last recomputes its stages); multistage mixes in stage slots and recomputes less.
    let cost = rk(4);
    let m = multistage(40, 40, &cost)
        .unwrap()
        .predict(&cost, 8)
        .unwrap();
    let r = revolve(40, 40).unwrap().predict(&cost, 8).unwrap();
    assert!(
        m.rhs_evals < r.rhs_evals,
        "{} vs {}",
        m.rhs_evals,
        r.rhs_evals
    );
    // Enough for store-all: no recomputation at all.
    let all = multistage(40, 40 * 4, &cost)
        .unwrap()
        .predict(&cost, 8)
        .unwrap();
    assert_eq!(all.rhs_evals, 40 * 4);
}

/// A byte budget over many steps does not fill a giant table: `multistage` refuses with the
/// table's size, and the budget planner falls back to Revolve within the budget.
#[test]
fn budgets_past_the_table_limit_are_refused_or_planned_by_revolve() {
    use pnode_checkpoint::multistage::{MAX_TABLE_ENTRIES, MAX_TABLE_WORK};
    use pnode_checkpoint::{Budget, Checkpointing, Error};
    let rk4 = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };
    // 1 MB of scalar f64 states: 125 000 vectors, store-all needs 159 996.
    let vectors = 1_000_000 / 8;
    let err = multistage(40_000, vectors, &rk4).unwrap_err();
    let Error::PlanTooLarge {
        n_steps,
        budget_vectors,
        entries,
        max_entries,
        max_work,
        ..
    } = err.clone()
    else {
        panic!("{err}");
    };
    assert_eq!((n_steps, budget_vectors), (40_000, vectors));
    assert_eq!(entries, 4 * 40_001 * (vectors as u128 + 1));
    assert_eq!((max_entries, max_work), (MAX_TABLE_ENTRIES, MAX_TABLE_WORK));
    assert!(
        err.to_string()
            .starts_with("the multistage plan for 40000 steps and 125000 vectors is too large"),
        "{err}"
    );
    let s = Checkpointing::Budget(Budget::Bytes(1_000_000))
        .plan(40_000, &rk4, 8)
        .unwrap();
    assert_eq!(s.name(), "revolve(39999)");
    let p = s.predict(&rk4, 8).unwrap();
    assert!(p.peak_stored_bytes <= 1_000_000, "{p:?}");
    // Within the limits the dynamic program still plans.
    let s = Checkpointing::Budget(Budget::Vectors(50))
        .plan(200, &rk4, 8)
        .unwrap();
    assert_eq!(s.name(), "multistage(50 vectors)");
}
