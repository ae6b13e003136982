use resnetc_macros::resnet;

#[resnet(spec = "specs/tiny.yaml", layers = 18)]
pub struct Tiny;

fn main() {
    let _ = Tiny;
}
