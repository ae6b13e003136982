//! The Rust back end: a `tch` module that builds the checked network.
//!
//! One code generator serves both front doors: `resnetc build` formats
//! [`module_source`] into a file, and `#[resnet(spec = "...")]` (crate `resnetc-macros`)
//! expands to [`module_tokens`]. The generated code needs only `tch` (every path is
//! absolute, `::tch::...`) and reads like a hand-written tch model:
//!
//! - a public struct named after the model ([`struct_name`]), with typed fields
//!   (`conv1: nn::Conv2D`, `layer1: Vec<Bottleneck>`, `fc: nn::Linear`), associated
//!   constants `INPUT_SHAPE`, `NUM_CLASSES`, `TRAINABLE_PARAMS` and `MACS`, a doc comment
//!   holding the layer table, `pub fn new(p: &nn::Path) -> Self` and `impl nn::ModuleT`;
//! - one struct per block kind used (`BasicBlock`, `Bottleneck`, `PreActBlock`, ...)
//!   with `conv1`/`bn1`/... fields, a `Downsample` struct for projection shortcuts, and
//!   builder functions (`conv2d`, `batch_norm2d`, `linear`) that hold the spec's
//!   initialization scheme;
//! - every variable named as torchvision's `state_dict` key (`layer3.4.bn2.running_var`,
//!   `layer1.0.downsample.0.weight`, `fc.weight`), so torchvision checkpoints saved as
//!   safetensors load with `VarStore::load` without renaming.
//!
//! Spec text (the model's and stages' names, the spec's path) reaches only comments,
//! through [`doc_text`]: it cannot open a doc test, end a comment or hide code behind
//! bidirectional controls. [`audit::audit_module`] checks a generated module for exactly
//! that, and for items beyond the model's.
//!
//! Settings that are the same in every block (groups, bias, where a bottleneck strides)
//! are written as literals; only what varies between blocks becomes a constructor
//! argument, so the usual networks read like torchvision's.
//!
//! That form covers the classic networks (one-convolution stem with BN, the presets'
//! blocks with BN, identity, zero-padding or 1x1 projection shortcuts). Every other
//! checked network (deep stems, GroupNorm, SE/ECA attention, BlurPool or average
//! anti-aliasing, ResNet-D and Keras V2 shortcuts, dilation, per-convolution bias, drop
//! path) gets the general form: a `Layer` enum with one variant per layer kind used and a
//! `Block` struct of layer lists, whose `forward_t` mirror resnetc's runtime interpreter
//! layer for layer, and a model struct with `stem: Vec<Layer>`, `layerN: Vec<Block>` and
//! the head. Both forms name every variable as the runtime does.
//!
//! ```
//! # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/resnet18.yaml")).unwrap();
//! use resnetc::back::rust::{module_source, RustOptions};
//! let spec = resnetc::span::SourceFile::new("resnet18.yaml", text, resnetc::span::Syntax::Yaml);
//! let compiled = resnetc::compile(&spec).expect("a shipped spec is valid");
//! let source = module_source(&compiled, &RustOptions::default());
//! assert!(source.contains("pub struct ResNet18 {"));
//! assert!(source.contains("impl ::tch::nn::ModuleT for ResNet18 {"));
//! ```

pub mod audit;
mod doc;
mod emit;
mod general;
mod naming;
mod plan;

pub use doc::doc_text;
pub use naming::{check_type_name, is_type_name, struct_name};

use crate::Compiled;
use proc_macro2::TokenStream;

/// Settings of the generated module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RustOptions {
    /// The struct's name; `None` derives it from the model's name with [`struct_name`].
    /// A name that is not a usable identifier (see [`is_type_name`]) is ignored.
    pub name: Option<String>,
    /// The spec's path as the user gave it, quoted in the doc comment and file header
    /// (through [`doc_text`], so any path is safe there).
    pub source: Option<String>,
}

impl RustOptions {
    /// The struct name these options give `compiled`.
    pub fn struct_name(&self, compiled: &Compiled) -> String {
        match &self.name {
            Some(name) if is_type_name(name) => name.clone(),
            _ => struct_name(&compiled.model.name),
        }
    }
}

/// The module's items as tokens: what `#[resnet(...)]` expands to.
///
/// Never fails: a [`Compiled`] network is checked, so every shape, count and name in it
/// is valid. Spec text reaches only doc comments, through [`doc_text`]; every std, core
/// and tch item is named by its absolute path, so the struct may take any name
/// [`is_type_name`] accepts (`Vec`, `Option`, `Tensor`, `i64`, ...).
pub fn module_tokens(compiled: &Compiled, opts: &RustOptions) -> TokenStream {
    let name = opts.struct_name(compiled);
    // The templates write `i64`, `f64` and `bool` as such; a struct of that name would
    // shadow the primitive type. Emit under a placeholder name, then spell the primitive
    // `::core::primitive::NAME` and give the struct its name.
    let primitive = naming::is_primitive(&name);
    let emitted = if primitive { PLACEHOLDER } else { &name };
    let classic = plan::fits_classic(&compiled.network)
        .then(|| plan::Plan::new(compiled, emitted.to_string()))
        .flatten();
    let tokens = match classic {
        Some(plan) => emit::module(&plan, opts),
        None => general::module(compiled, emitted, opts),
    };
    if primitive {
        rename_primitive(tokens, &name)
    } else {
        tokens
    }
}

/// The struct's name while a primitive-named module is emitted; no template uses it.
const PLACEHOLDER: &str = "__ResnetcModelStruct";

fn rename_primitive(tokens: TokenStream, name: &str) -> TokenStream {
    use proc_macro2::{Group, Ident, TokenTree};
    use quote::quote;
    tokens
        .into_iter()
        .flat_map(|tree| -> TokenStream {
            match tree {
                TokenTree::Ident(ident) if ident == PLACEHOLDER => {
                    TokenTree::Ident(Ident::new(name, ident.span())).into()
                }
                TokenTree::Ident(ident) if ident == name => quote!(::core::primitive::#ident),
                TokenTree::Group(group) => {
                    let mut renamed =
                        Group::new(group.delimiter(), rename_primitive(group.stream(), name));
                    renamed.set_span(group.span());
                    TokenTree::Group(renamed).into()
                }
                other => other.into(),
            }
        })
        .collect()
}

/// The module as formatted Rust source (prettyplease), with a header comment: what
/// `resnetc build` writes.
pub fn module_source(compiled: &Compiled, opts: &RustOptions) -> String {
    let tokens = module_tokens(compiled, opts);
    let body = match syn::parse2::<syn::File>(tokens.clone()) {
        // One item at a time, so that a blank line separates items.
        Ok(mut file) => {
            let items = std::mem::take(&mut file.items);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                file.items = vec![item];
                out.push(prettyplease::unparse(&file));
            }
            out.join("\n")
        }
        // The generator only emits items; keep the raw tokens rather than lose them.
        Err(_) => tokens.to_string(),
    };
    // The path is spec text: escaped, it stays inside this line comment.
    let from = opts
        .source
        .as_deref()
        .map(|s| format!(" from `{}`", doc_text(s)))
        .unwrap_or_default();
    format!(
        "// @generated by resnetc{from}: edit the spec and rebuild rather than this file.\n\
         // Needs only the `tch` crate. Build with `{name}::new(&vs.root())`.\n\n{body}",
        name = opts.struct_name(compiled),
    )
}

#[cfg(test)]
mod tests;
