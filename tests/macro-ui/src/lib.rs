//! trybuild UI tests of `#[neural_ode]` and `model!` live in `tests/`.
