use resnetc_macros::resnet;

#[resnet(spec = "specs/yaml-syntax.yaml")]
pub struct Broken;

fn main() {
    let _ = Broken;
}
