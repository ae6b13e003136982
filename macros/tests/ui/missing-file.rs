use resnetc_macros::resnet;

#[resnet(spec = "specs/does-not-exist.yaml")]
pub struct Missing;

// The stub struct keeps this use from becoming a second error.
fn main() {
    let _ = Missing;
}
