use resnetc_macros::resnet;

#[resnet(spec = "specs/tiny.yaml")]
pub enum Tiny {}

fn main() {}
