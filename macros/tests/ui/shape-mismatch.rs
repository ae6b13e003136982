use resnetc_macros::resnet;

#[resnet(spec = "specs/shape-mismatch.yaml")]
pub struct Mismatch;

fn main() {
    let _ = Mismatch;
}
