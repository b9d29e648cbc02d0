pnode::model!("no/such/model.pode");

fn main() {}
