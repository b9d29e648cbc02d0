//! Print the Cranelift IR and machine code of the fused RK4 steps of Lotka–Volterra:
//! `PNODE_JIT_DUMP=1 cargo run -p pnode-jit --example dump_lv`.

use pnode_ir::{Builder, Layout};
use pnode_jit::JitErkStepper;
use pnode_runtime::Tableau;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut b = Builder::new(Layout::new(2, 4));
    let x = b.state(0, [])?;
    let y = b.state(1, [])?;
    let k: Vec<_> = (0..4).map(|i| b.param(i, [])).collect::<Result<_, _>>()?;
    let xy = b.mul(x, y)?;
    let ax = b.mul(k[0], x)?;
    let bxy = b.mul(k[1], xy)?;
    let f0 = b.sub(ax, bxy)?;
    let dxy = b.mul(k[2], xy)?;
    let gy = b.mul(k[3], y)?;
    let f1 = b.sub(dxy, gy)?;
    let f = b.stack(&[f0, f1], 0)?;
    let rhs = b.finish_rhs(&[f])?;
    let st = JitErkStepper::new(Tableau::rk4(), &rhs)?;
    println!(
        "compiled in {:.2} ms",
        st.compile_time().as_secs_f64() * 1e3
    );
    Ok(())
}
