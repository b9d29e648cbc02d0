pnode::model!(lotka_volterra);

fn main() {}
