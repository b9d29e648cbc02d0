//! The demos of pnode-torch trained small (feature `torch`): ODE-Net (`odenet`), the spiral
//! (`spiral`) and the stiff experiment (`stiff`). A binary of their own: each training seeds
//! libtorch's global generator and then draws its network from it, so nothing else may draw
//! meanwhile. Here they take turns through [`torch_lock`]; the other tests of the crate
//! (`tests/torch`), which draw random tensors at any time, live in another process.
#![allow(missing_docs)]

mod odenet;
mod spiral;
mod stiff;

use std::sync::{Mutex, MutexGuard};

/// Training seeds libtorch's global generator: tests that build networks take turns. One
/// libtorch thread: these tensors are small, and spinning workers only slow them down.
fn torch_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    pnode_torch::tch::set_num_threads(1);
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
