//! The libtorch runtime (feature `torch`): runs any checked spec on CPU or CUDA.
//!
//! - [`ResNet`] builds the network of a [`crate::Compiled`] spec on a `tch::nn::Path`,
//!   with every variable named as in torchvision's `state_dict`
//!   (`layer1.0.downsample.1.running_var`), and implements [`tch::nn::ModuleT`].
//! - [`weights`] loads and saves safetensors files with those names (strict or partial), and
//!   loads PyTorch checkpoints and Keras weights through [`crate::import`].
//! - [`device`] parses `--device cpu|cuda|cuda:N|auto` and `--dtype f32|f16|bf16`.
//! - [`infer`] prepares a network for fast inference (BN folding, no-grad, memory format
//!   chosen by measurement, oneDNN on CPU, cuDNN benchmark and bf16 on CUDA).
//! - [`image`] decodes and preprocesses images for `resnetc predict`.
//! - For training: `fused` (batch norm + addition + ReLU as one CPU autograd function,
//!   `resnetc train --speedups fused-bn`) and [`autocast`] (`--precision bf16`), both in
//!   C++ against libtorch's headers (`csrc/`).
//! - [`files`] and [`tensor_file`] open the files the commands read without trusting
//!   them: regular files only, headers checked against the file before anything is read.
//!
//! ```no_run
//! use tch::nn::ModuleT;
//! let spec = resnetc::span::SourceFile::new(
//!     "resnet18.yaml",
//!     std::fs::read_to_string("specs/resnet18.yaml").unwrap(),
//!     resnetc::span::Syntax::Yaml,
//! );
//! let compiled = resnetc::compile(&spec).expect("valid spec");
//! let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let net = resnetc::runtime::ResNet::new(&vs.root(), &compiled).unwrap();
//! resnetc::runtime::weights::load(&mut vs, "resnet18.safetensors", resnetc::runtime::weights::LoadMode::Strict).unwrap();
//! let x = tch::Tensor::randn([1, 3, 224, 224], (tch::Kind::Float, tch::Device::Cpu));
//! let logits = net.forward_t(&x, false); // [1, 1000]
//! ```

pub mod autocast;
pub mod device;
mod fused;
pub mod graph;
pub mod image;
pub mod infer;
mod layers;
mod model;
mod onednn;
pub mod peak;
pub(crate) mod script;
pub mod tensor_file;
pub mod weights;

pub use device::{parse_device, DType};
pub use infer::{InferenceModel, InferenceOptions, MemoryFormat, PrepareReport};
pub use model::ResNet;

/// Errors of the runtime: building a network, running it, devices and dtypes.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// libtorch reported an error (out of memory, an unsupported operation, ...).
    #[error("libtorch failed while {context}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    /// The input tensor does not have the shape the network expects.
    #[error("input tensor has shape {found:?}, but the network expects {expected}")]
    InputShape { expected: String, found: Vec<i64> },
    /// The input tensor is not a floating-point tensor.
    #[error("input tensor has dtype {found:?}; a floating-point tensor (f32, f64, f16 or bf16) is required")]
    InputDtype { found: tch::Kind },
    /// A `--device` value that is not `cpu`, `cuda`, `cuda:N` or `auto`.
    #[error("unknown device `{0}`: use cpu, cuda, cuda:N or auto")]
    UnknownDevice(String),
    /// CUDA was requested but is not available (or the index is out of range).
    #[error("device `{requested}` is not available: {reason}")]
    DeviceUnavailable { requested: String, reason: String },
    /// A `--dtype` value that is not `f32`, `f16` or `bf16`.
    #[error("unknown dtype `{0}`: use f32, f16 or bf16")]
    UnknownDtype(String),
    /// Half-precision types run only on CUDA here.
    #[error("dtype {dtype} is only supported on CUDA devices (device is {}); use --dtype f32 on the CPU", device::device_name(*device))]
    DtypeOnDevice { dtype: DType, device: tch::Device },
    /// A combination of options this build or device cannot run.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl RuntimeError {
    /// Wraps a libtorch error with what was being done.
    pub fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Torch { context, source }
    }
}
