//! `#[resnet(spec = "...")]`: a resnetc model spec becomes a `tch` module at compile time.
//!
//! ```ignore
//! use resnetc_macros::resnet;
//!
//! /// ResNet-50 as torchvision builds it.
//! #[resnet(spec = "specs/resnet50.yaml")]
//! pub struct ResNet50;
//!
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let net = ResNet50::new(&vs.root());
//! let logits = tch::Tensor::randn([2, 3, 224, 224], tch::kind::FLOAT_CPU).apply_t(&net, false);
//! assert_eq!(logits.size(), [2, ResNet50::NUM_CLASSES]);
//! ```
//!
//! The attribute replaces the unit struct with the module `resnetc build` writes (the same
//! generator, [`resnetc::back::rust::module_tokens`]): a struct of that name with
//! `new(&nn::Path)`, `impl nn::ModuleT`, the constants `INPUT_SHAPE`, `NUM_CLASSES`,
//! `TRAINABLE_PARAMS` and `MACS`, and the layer table in its documentation. Its helper
//! types (`Bottleneck`, `Downsample`, ...) live in a private module beside it, so several
//! networks can share one module of the calling crate.
//!
//! Arguments:
//! - `spec = "path"` (required): a `.yaml`, `.yml` or `.resnet` spec, relative to the calling
//!   crate's `CARGO_MANIFEST_DIR` (or absolute). Editing it rebuilds the crate.
//! - `classes = N`: replaces the spec's number of classes.
//! - `input = "CxHxW"`: replaces the spec's input size (e.g. `"1x28x28"`).
//!
//! The struct's name names the generated struct. Doc comments, `#[cfg]` and lint
//! attributes on it are kept; the generated struct derives `Debug`.
//!
//! Errors are compile errors, never panics: a spec with problems gives one error on the
//! `spec = "..."` literal carrying resnetc's diagnostics (file, line and column inside the
//! spec, and the offending line). Spec warnings are not shown (a stable proc macro cannot
//! emit warnings); `resnetc check` prints them.
//!
//! This crate never links libtorch: only the code it generates uses `tch`.

mod attr;
mod expand;

use proc_macro::TokenStream;

/// Expands a unit struct into the network of a resnetc spec; see the crate documentation.
#[proc_macro_attribute]
pub fn resnet(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, item): (proc_macro2::TokenStream, proc_macro2::TokenStream) =
        (args.into(), item.into());
    let stub = item.clone();
    // Every error is reported as a compile error; a panic would be a bug in resnetc, and
    // still becomes one error (plus the stub) rather than a crashed macro.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| expand::expand(args, item))) {
        Ok(tokens) => tokens.into(),
        Err(_) => quote::quote! {
            ::core::compile_error!("internal error in resnetc while expanding #[resnet]; please report it with the spec");
            #stub
        }
        .into(),
    }
}
