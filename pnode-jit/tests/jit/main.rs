//! pnode-jit's tests, one binary (one link): the kernels against the interpreter (`kernels`,
//! `corpus`, `props`) and whole gradients through the runtime (`gradients`). The models and
//! numeric helpers come from `pnode-testkit`.

mod corpus;
mod gradients;
mod kernels;
mod props;
