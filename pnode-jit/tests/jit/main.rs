//! pnode-jit's tests, one binary (one link): the kernels against the interpreter (`kernels`,
//! `corpus`, `props`), whole gradients through the runtime (`gradients`) and adaptive stepping
//! with the fused trial step (`adaptive`). The models and numeric helpers come from
//! `pnode-testkit`.

mod adaptive;
mod corpus;
mod gradients;
mod kernels;
mod props;
