//! pnode-ir's tests, one binary (one link) but for `no_alloc` (its counting global allocator
//! needs a binary of its own). The models, numeric helpers, derivative checks, corpus reader
//! and random-IR generator come from `pnode-testkit`.

mod derivatives;
mod errors;
mod ir;
mod kernels;
mod lower;
mod lower_checks;
mod lower_limits;
mod lower_props;
mod lower_reference;
mod opaque;
mod props;
mod reference;
