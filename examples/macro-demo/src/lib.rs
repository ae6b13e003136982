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

/// Networks from a hostile spec (`specs/hostile.yaml`): its model and stage names hold
/// Markdown code fences with `compile_error!` and `panic!` payloads, line breaks, a
/// carriage return and a right-to-left override, and the structs are named like prelude
/// types. The generated docs show the names escaped, so the doc tests of this crate run
/// nothing from the spec (a payload that ran would fail them), and the generated code
/// names std items by absolute path, so the names shadow nothing it uses.
pub mod hostile {
    use resnetc_macros::resnet;

    /// A network named like `std::vec::Vec`.
    #[resnet(spec = "specs/hostile.yaml")]
    pub struct Vec;

    /// A network named like `core::option::Option`, with 3 classes.
    #[resnet(spec = "specs/hostile.yaml", classes = 3)]
    pub struct Option;

    /// A network named like `tch::Tensor`.
    #[resnet(spec = "specs/hostile.yaml")]
    pub struct Tensor;
}

/// The modules `resnetc build` writes for every shipped spec and the fixtures under
/// `specs/` (the build script calls the same generator), compiled with warnings and
/// missing docs denied: the files need nothing but `tch`.
pub mod built {
    #![deny(missing_docs, unused)]

    /// `resnetc build ../../specs/article-keras.yaml`.
    pub mod article_keras {
        include!(concat!(env!("OUT_DIR"), "/article-keras.rs"));
    }
    /// `resnetc build ../../specs/article-pytorch.yaml`.
    pub mod article_pytorch {
        include!(concat!(env!("OUT_DIR"), "/article-pytorch.rs"));
    }
    /// `resnetc build ../../specs/cifar-resnet110.yaml`.
    pub mod cifar_resnet110 {
        include!(concat!(env!("OUT_DIR"), "/cifar-resnet110.rs"));
    }
    /// `resnetc build ../../specs/cifar-resnet20.yaml`.
    pub mod cifar_resnet20 {
        include!(concat!(env!("OUT_DIR"), "/cifar-resnet20.rs"));
    }
    /// `resnetc build ../../specs/cifar-resnet32.yaml`.
    pub mod cifar_resnet32 {
        include!(concat!(env!("OUT_DIR"), "/cifar-resnet32.rs"));
    }
    /// `resnetc build ../../specs/cifar-resnet44.yaml`.
    pub mod cifar_resnet44 {
        include!(concat!(env!("OUT_DIR"), "/cifar-resnet44.rs"));
    }
    /// `resnetc build ../../specs/cifar-resnet56.yaml`.
    pub mod cifar_resnet56 {
        include!(concat!(env!("OUT_DIR"), "/cifar-resnet56.rs"));
    }
    /// `resnetc build ../../specs/fmnist-resnet20.yaml`.
    pub mod fmnist_resnet20 {
        include!(concat!(env!("OUT_DIR"), "/fmnist-resnet20.rs"));
    }
    /// `resnetc build ../../specs/plain34.yaml`.
    pub mod plain34 {
        include!(concat!(env!("OUT_DIR"), "/plain34.rs"));
    }
    /// `resnetc build ../../specs/preact-resnet18.yaml`.
    pub mod preact_resnet18 {
        include!(concat!(env!("OUT_DIR"), "/preact-resnet18.rs"));
    }
    /// `resnetc build ../../specs/resnet101.yaml`.
    pub mod resnet101 {
        include!(concat!(env!("OUT_DIR"), "/resnet101.rs"));
    }
    /// `resnetc build ../../specs/resnet152.yaml`.
    pub mod resnet152 {
        include!(concat!(env!("OUT_DIR"), "/resnet152.rs"));
    }
    /// `resnetc build ../../specs/resnet18.yaml`.
    pub mod resnet18 {
        include!(concat!(env!("OUT_DIR"), "/resnet18.rs"));
    }
    /// `resnetc build ../../specs/resnet34.yaml`.
    pub mod resnet34 {
        include!(concat!(env!("OUT_DIR"), "/resnet34.rs"));
    }
    /// `resnetc build ../../specs/resnet50-v1.yaml`.
    pub mod resnet50_v1 {
        include!(concat!(env!("OUT_DIR"), "/resnet50-v1.rs"));
    }
    /// `resnetc build ../../specs/resnet50.yaml`.
    pub mod resnet50 {
        include!(concat!(env!("OUT_DIR"), "/resnet50.rs"));
    }
    /// `resnetc build ../../specs/resnext50-32x4d.yaml`.
    pub mod resnext50_32x4d {
        include!(concat!(env!("OUT_DIR"), "/resnext50-32x4d.rs"));
    }
    /// `resnetc build ../../specs/wide-resnet50-2.yaml`.
    pub mod wide_resnet50_2 {
        include!(concat!(env!("OUT_DIR"), "/wide-resnet50-2.rs"));
    }
    /// `resnetc build specs/mixed-features.yaml`.
    pub mod mixed_features {
        include!(concat!(env!("OUT_DIR"), "/mixed-features.rs"));
    }
    /// `resnetc build specs/hostile.yaml`.
    pub mod hostile {
        include!(concat!(env!("OUT_DIR"), "/hostile.rs"));
    }
    /// `resnetc build specs/option-c.yaml`.
    pub mod option_c {
        include!(concat!(env!("OUT_DIR"), "/option-c.rs"));
    }
    /// `resnetc build specs/preact-flatten.yaml`.
    pub mod preact_flatten {
        include!(concat!(env!("OUT_DIR"), "/preact-flatten.rs"));
    }
    /// The general form of the generated module: networks of `variants.rs` (deep stems,
    /// ResNet-D, SE/ECA, GroupNorm, BlurPool, Keras V2 blocks, dilation, stochastic
    /// depth), whose IR is built in code until the spec syntax for them lands.
    pub mod general {
        /// The `resnet50d` network of `variants.rs`.
        pub mod resnet50d {
            include!(concat!(env!("OUT_DIR"), "/general-resnet50d.rs"));
        }
        /// The `seresnet50` network of `variants.rs`.
        pub mod seresnet50 {
            include!(concat!(env!("OUT_DIR"), "/general-seresnet50.rs"));
        }
        /// The `ecaresnet26` network of `variants.rs`.
        pub mod ecaresnet26 {
            include!(concat!(env!("OUT_DIR"), "/general-ecaresnet26.rs"));
        }
        /// The `resnet50-gn` network of `variants.rs`.
        pub mod resnet50_gn {
            include!(concat!(env!("OUT_DIR"), "/general-resnet50-gn.rs"));
        }
        /// The `resnetblur50` network of `variants.rs`.
        pub mod resnetblur50 {
            include!(concat!(env!("OUT_DIR"), "/general-resnetblur50.rs"));
        }
        /// The `keras-resnet50v2` network of `variants.rs`.
        pub mod keras_resnet50v2 {
            include!(concat!(env!("OUT_DIR"), "/general-keras-resnet50v2.rs"));
        }
        /// The `resnet50-dilated` network of `variants.rs`.
        pub mod resnet50_dilated {
            include!(concat!(env!("OUT_DIR"), "/general-resnet50-dilated.rs"));
        }
        /// The `resnet-rs-like` network of `variants.rs`.
        pub mod resnet_rs_like {
            include!(concat!(env!("OUT_DIR"), "/general-resnet-rs-like.rs"));
        }
        /// The `preact-gn-blur` network of `variants.rs`.
        pub mod preact_gn_blur {
            include!(concat!(env!("OUT_DIR"), "/general-preact-gn-blur.rs"));
        }
        /// The `cifar-eca-mixed` network of `variants.rs`.
        pub mod cifar_eca_mixed {
            include!(concat!(env!("OUT_DIR"), "/general-cifar-eca-mixed.rs"));
        }
    }
}
