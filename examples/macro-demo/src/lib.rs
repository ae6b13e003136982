//! Networks generated at compile time by `#[resnet(spec = "...")]`.
//!
//! Each struct below is a complete `tch` model: `new(&nn::Path)`, `impl nn::ModuleT`, and
//! the constants `INPUT_SHAPE`, `NUM_CLASSES`, `TRAINABLE_PARAMS` and `MACS`. Spec paths
//! are relative to this crate's directory; editing a spec rebuilds the crate.
//!
//! ```no_run
//! use macro_demo::ResNet18;
//! use tch::nn::ModuleT;
//!
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let net = ResNet18::new(&vs.root());
//! let images = tch::Tensor::randn([8, 3, 224, 224], tch::kind::FLOAT_CPU);
//! let logits = net.forward_t(&images, false);
//! assert_eq!(logits.size(), [8, ResNet18::NUM_CLASSES]);
//! ```

use resnetc_macros::resnet;

/// torchvision's ResNet-18.
#[resnet(spec = "../../specs/resnet18.yaml")]
pub struct ResNet18;

/// The article's PyTorch network (d2l style) for Fashion-MNIST at 224x224.
#[resnet(spec = "../../specs/article-pytorch.yaml")]
pub struct ArticlePytorch;

/// ResNet-18 for 28x28 grayscale images and 10 classes: the spec's sizes overridden.
#[resnet(spec = "../../specs/resnet18.yaml", input = "1x28x28", classes = 10)]
pub struct GrayResNet18;
