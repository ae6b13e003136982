use resnetc_macros::resnet;

#[resnet(spec = "specs/tiny.yaml")]
pub struct Tiny {
    layers: u32,
}

fn main() {}
