use resnetc_macros::resnet;

#[resnet(spec = "specs/tiny.yaml", input = "3x0x224")]
pub struct BadInput;

#[resnet(spec = "specs/tiny.yaml", classes = 0)]
pub struct NoClasses;

#[resnet(spec = "specs/tiny.txt")]
pub struct BadExtension;

#[resnet(classes = 10)]
pub struct NoSpec;

#[resnet(spec = "specs/tiny.yaml", spec = "specs/tiny.yaml")]
pub struct TwoSpecs;

#[resnet(spec = "specs/tiny.yaml")]
#[derive(Clone)]
pub struct Derived;

fn main() {}
