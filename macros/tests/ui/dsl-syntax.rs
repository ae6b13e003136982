use resnetc_macros::resnet;

#[resnet(spec = "specs/dsl-syntax.resnet")]
pub struct Broken;

fn main() {
    let _ = Broken;
}
