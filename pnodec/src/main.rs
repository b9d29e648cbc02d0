//! `pnodec`, the pnode compiler's command-line interface (being written).

fn main() {}
