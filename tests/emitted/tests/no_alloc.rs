//! The generated models and fused steppers do not allocate after construction (one test in
//! this binary, so no other thread allocates while it counts).

use pnode_codegen::testmodels::{self, rand_vec};
use pnode_emitted_tests::Model;
use pnode_emitted_tests::generated::{self, Dopri5, Rk4};
use pnode_runtime::Stats;
use pnode_runtime::adaptive::EmbeddedStepper;
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_testkit::alloc::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

#[test]
fn generated_code_does_not_allocate() {
    let models: Vec<(&str, Box<dyn Model>)> = vec![
        ("mlp_tanh", Box::new(generated::MlpTanh::new())),
        ("mlp_tanh", Box::new(generated::MlpTanhScratch::new())),
        ("mlp_mixed", Box::new(generated::MlpMixed::new())),
        ("structure", Box::new(generated::Structure::new())),
        ("unary_zoo", Box::new(generated::UnaryZoo::new())),
    ];
    for (name, mut g) in models {
        let m = testmodels::by_name(name).unwrap();
        let (n, np) = (m.u.len(), m.p.len());
        let v = rand_vec(1, n);
        let (mut f, mut gu, mut gp) = (vec![0.0; n], vec![0.0; n], vec![0.0; np]);
        let sv = 7 * n;
        let (mut next, mut stages) = (vec![0.0; n], vec![0.0; sv]);
        let (mut lambda, mut mu) = (vec![1.0; n], vec![0.0; np]);
        let mut err = vec![0.0; n];
        let (mut rk4, mut dopri5) = (Rk4::new(n, np), Dopri5::new(n, np));
        let mut stats = Stats::default();
        let at = StepAt {
            index: 0,
            t: 0.0,
            h: 0.01,
        };
        let g: &mut dyn Model = &mut *g;
        let before = GLOBAL.count();
        for _ in 0..3 {
            g.rhs(m.t, &m.u, &m.p, &mut f);
            g.jvp(m.t, &m.u, &m.p, &v, &mut f);
            g.vjp(m.t, &m.u, &m.p, &v, &mut gu, &mut gp);
            let st = &mut stages[..4 * n];
            rk4.step(g, at, &m.p, &m.u, &mut next, Some(st), &mut stats)
                .unwrap();
            rk4.reverse(g, at, &m.p, st, &mut lambda, &mut mu, &mut stats)
                .unwrap();
            let st = &mut stages[..6 * n];
            dopri5
                .step(g, at, &m.p, &m.u, &mut next, Some(st), &mut stats)
                .unwrap();
            dopri5
                .recompute_stages(g, at, &m.p, &m.u, st, &mut stats)
                .unwrap();
            dopri5
                .reverse(g, at, &m.p, st, &mut lambda, &mut mu, &mut stats)
                .unwrap();
            // A trial step with its error estimate (the retries reuse the cached K_1).
            dopri5
                .try_step(g, at, &m.p, &m.u, &mut next, st, &mut err, &mut stats)
                .unwrap();
        }
        let after = GLOBAL.count();
        assert_eq!(after - before, 0, "{name} allocated");
    }
}
