//! Token templates of the generated module, filled from a [`Plan`].

use super::doc::{doc_code, doc_text};
use super::plan::{BlockCall, KindPlan, Knob, Plan, ShortcutArg, ShortcutStyle, StagePlan};
use super::RustOptions;
use crate::back::table;
use crate::ir::{BlockKind, HeadPool, Init, PoolKind};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, ToTokens};

/// The whole module: helpers, shortcut types, block structs, the model struct.
pub(super) fn module(plan: &Plan, opts: &RustOptions) -> TokenStream {
    let helpers = helpers(plan);
    let shortcut_types = shortcut_types(plan);
    let blocks = plan.kinds.iter().map(|k| block(plan, k));
    let model = model(plan, opts);
    quote! {
        #model
        #(#blocks)*
        #shortcut_types
        #helpers
    }
}

// ---------------------------------------------------------------------------------------
// Small token helpers.

pub(super) fn ident(name: &str) -> Ident {
    // Every name reaching here is a checked identifier (see `super::naming`) or one of
    // this module's own constants.
    Ident::new(name, Span::call_site())
}

/// An integer literal; every count in a checked network fits in `i64` (`ir::Limits`).
pub(super) fn int(v: u64) -> Literal {
    Literal::i64_unsuffixed(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A float literal as Rust's `Debug` writes it (`1.0`, `0.1`, `1e-5`).
pub(super) fn float(v: f64) -> TokenStream {
    // The IR's ranges make every float finite; fall back to 0 rather than panic.
    let v = if v.is_finite() { v } else { 0.0 };
    format!("{v:?}")
        .parse::<TokenStream>()
        .unwrap_or_else(|_| Literal::f64_unsuffixed(v).into_token_stream())
}

/// `11_689_512`, for the metadata constants.
pub(super) fn grouped_int(v: u64) -> TokenStream {
    let v = v.min(i64::MAX as u64);
    let text = table::thousands(v).replace(',', "_");
    text.parse::<TokenStream>()
        .unwrap_or_else(|_| int(v).into_token_stream())
}

/// Width of the generated doc comments' prose.
const DOC_WIDTH: usize = 88;

/// `#[doc = " line"]` for every line of `text`: paragraphs (split at blank lines) are
/// re-wrapped to [`DOC_WIDTH`], lines inside ``` fences are kept as they are.
pub(super) fn doc_lines(text: &str) -> TokenStream {
    let lines = doc_wrap(text, DOC_WIDTH).into_iter().map(|l| {
        let l = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#[doc = #l])
    });
    quote!(#(#lines)*)
}

pub(super) fn doc_wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fenced = false;
    let flush = |paragraph: &mut Vec<&str>, out: &mut Vec<String>| {
        // An inline code span is never broken: spec text, always quoted in one (see
        // `doc_code`), then never starts a line, where Markdown could read it as a heading,
        // a list or HTML.
        let mut words: Vec<String> = Vec::new();
        let mut in_code = false;
        for word in paragraph.drain(..).flat_map(str::split_whitespace) {
            match words.last_mut() {
                Some(last) if in_code => {
                    last.push(' ');
                    last.push_str(word);
                }
                _ => words.push(word.to_string()),
            }
            if word.matches('`').count() % 2 == 1 {
                in_code = !in_code;
            }
        }
        let mut line = String::new();
        for word in &words {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push(line);
        }
    };
    for l in text.lines() {
        if l.starts_with("```") {
            flush(&mut paragraph, &mut out);
            fenced = !fenced;
            out.push(l.to_string());
        } else if fenced {
            out.push(l.to_string());
        } else if l.trim().is_empty() {
            flush(&mut paragraph, &mut out);
            out.push(String::new());
        } else {
            paragraph.push(l);
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

fn knob_bool(k: Knob<bool>, param: &str) -> TokenStream {
    match k {
        Knob::Fixed(v) => quote!(#v),
        Knob::Param => {
            let p = ident(param);
            quote!(#p)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Builder functions: every initialization rule lives here.

fn helpers(plan: &Plan) -> TokenStream {
    let conv = conv_helper(plan);
    let bn = if plan.has_batch_norm() {
        bn_helper(plan)
    } else {
        TokenStream::new()
    };
    let linear = linear_helper(plan.model.init);
    let zero_pad = if matches!(plan.shortcut, ShortcutStyle::Enum { zero_pad: true, .. }) {
        quote! {
            /// The parameter-free shortcut of option A (paper section 3.3): every `stride`-th
            /// row and column of the input, then `extra_channels` zero channels appended.
            fn zero_pad(xs: &::tch::Tensor, stride: i64, extra_channels: i64) -> ::tch::Tensor {
                xs.slice(2, 0, None::<i64>, stride)
                    .slice(3, 0, None::<i64>, stride)
                    .constant_pad_nd([0, 0, 0, 0, 0, extra_channels])
            }
        }
    } else {
        TokenStream::new()
    };
    quote! {
        #conv
        #bn
        #linear
        #zero_pad
    }
}

fn conv_helper(plan: &Plan) -> TokenStream {
    let groups_param = plan.conv_groups.then(|| quote!(, groups: i64));
    let bias_param = plan.conv_bias.is_param().then(|| quote!(, bias: bool));
    let allow = (plan.conv_groups && plan.conv_bias.is_param())
        .then(|| quote!(#[allow(clippy::too_many_arguments)]));
    let groups_field = plan.conv_groups.then(|| quote!(groups,));
    let fan_in_channels = if plan.conv_groups {
        quote!(c_in / groups)
    } else {
        quote!(c_in)
    };
    let has_bias = plan.conv_bias != Knob::Fixed(false);
    let bias_field = match plan.conv_bias {
        Knob::Fixed(b) => quote!(bias: #b,),
        Knob::Param => quote!(bias,),
    };
    let (doc, body) = match plan.model.init {
        Init::KaimingNormal => {
            let doc = if has_bias {
                "A convolution with torchvision's initialization: Kaiming-normal weights for ReLU\n\
                 with fan-out (std = sqrt(2 / fan_out), fan_out = c_out * ksize^2); the bias as\n\
                 `nn.Conv2d`'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."
            } else {
                "A convolution with torchvision's initialization: Kaiming-normal weights for ReLU\n\
                 with fan-out (std = sqrt(2 / fan_out), fan_out = c_out * ksize^2)."
            };
            let bias_init = has_bias.then(|| {
                quote! {
                    let bound = 1.0 / ((#fan_in_channels * ksize * ksize) as f64).sqrt();
                }
            });
            let bs_init = has_bias
                .then(|| quote!(bs_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },));
            let body = quote! {
                let fan_out = (c_out * ksize * ksize) as f64;
                #bias_init
                let config = ::tch::nn::ConvConfig {
                    stride,
                    padding,
                    #groups_field
                    #bias_field
                    ws_init: ::tch::nn::Init::Randn { mean: 0.0, stdev: (2.0 / fan_out).sqrt() },
                    #bs_init
                    ..::std::default::Default::default()
                };
                ::tch::nn::conv2d(p, c_in, c_out, ksize, config)
            };
            (doc, body)
        }
        Init::XavierUniform => {
            let doc = "A convolution with Xavier/Glorot-uniform weights, U(-a, a) with\n\
                       a = sqrt(6 / (fan_in + fan_out)), fan_in = c_in / groups * ksize^2 and\n\
                       fan_out = c_out * ksize^2; biases 0.";
            let body = quote! {
                let fan_in = (#fan_in_channels * ksize * ksize) as f64;
                let fan_out = (c_out * ksize * ksize) as f64;
                let bound = (6.0 / (fan_in + fan_out)).sqrt();
                let config = ::tch::nn::ConvConfig {
                    stride,
                    padding,
                    #groups_field
                    #bias_field
                    ws_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },
                    bs_init: ::tch::nn::Init::Const(0.0),
                    ..::std::default::Default::default()
                };
                ::tch::nn::conv2d(p, c_in, c_out, ksize, config)
            };
            (doc, body)
        }
    };
    let doc = doc_lines(doc);
    quote! {
        #doc
        #allow
        fn conv2d(p: ::tch::nn::Path, c_in: i64, c_out: i64, ksize: i64, stride: i64, padding: i64 #groups_param #bias_param) -> ::tch::nn::Conv2D {
            #body
        }
    }
}

fn bn_helper(plan: &Plan) -> TokenStream {
    let bn = plan.model.batch_norm;
    let (eps, momentum) = (float(bn.eps), float(bn.momentum));
    let note = format!(
        "`BatchNorm2d` with eps {:?} and momentum {:?} (PyTorch's convention),",
        bn.eps, bn.momentum
    );
    if plan.zero_init {
        let doc = doc_lines(&format!(
            "{note}\nweight `weight` (1, or 0 for the last BN of each residual block:\n`zero_init_residual`, so every block starts as the identity) and bias 0."
        ));
        quote! {
            #doc
            fn batch_norm2d(p: ::tch::nn::Path, channels: i64, weight: f64) -> ::tch::nn::BatchNorm {
                let config = ::tch::nn::BatchNormConfig {
                    eps: #eps,
                    momentum: #momentum,
                    ws_init: ::tch::nn::Init::Const(weight),
                    bs_init: ::tch::nn::Init::Const(0.0),
                    ..::std::default::Default::default()
                };
                ::tch::nn::batch_norm2d(p, channels, config)
            }
        }
    } else {
        let doc = doc_lines(&format!("{note}\nweight 1 and bias 0."));
        quote! {
            #doc
            fn batch_norm2d(p: ::tch::nn::Path, channels: i64) -> ::tch::nn::BatchNorm {
                let config = ::tch::nn::BatchNormConfig {
                    eps: #eps,
                    momentum: #momentum,
                    ws_init: ::tch::nn::Init::Const(1.0),
                    bs_init: ::tch::nn::Init::Const(0.0),
                    ..::std::default::Default::default()
                };
                ::tch::nn::batch_norm2d(p, channels, config)
            }
        }
    }
}

pub(super) fn linear_helper(init: Init) -> TokenStream {
    match init {
        Init::KaimingNormal => quote! {
            /// The fully connected layer, initialized as `nn.Linear`: weight and bias
            /// U(-1/sqrt(in_features), 1/sqrt(in_features)).
            fn linear(p: ::tch::nn::Path, in_features: i64, out_features: i64) -> ::tch::nn::Linear {
                let bound = 1.0 / (in_features as f64).sqrt();
                let init = ::tch::nn::Init::Uniform { lo: -bound, up: bound };
                let config = ::tch::nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true };
                ::tch::nn::linear(p, in_features, out_features, config)
            }
        },
        Init::XavierUniform => quote! {
            /// The fully connected layer with Xavier/Glorot-uniform weights,
            /// U(-a, a) with a = sqrt(6 / (in_features + out_features)), and bias 0.
            fn linear(p: ::tch::nn::Path, in_features: i64, out_features: i64) -> ::tch::nn::Linear {
                let bound = (6.0 / (in_features + out_features) as f64).sqrt();
                let config = ::tch::nn::LinearConfig {
                    ws_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },
                    bs_init: Some(::tch::nn::Init::Const(0.0)),
                    bias: true,
                };
                ::tch::nn::linear(p, in_features, out_features, config)
            }
        },
    }
}

/// Arguments after `padding` in a `conv2d` call: groups and bias where the helper takes them.
fn conv_extra(plan: &Plan, groups: TokenStream, bias: TokenStream) -> TokenStream {
    let g = plan.conv_groups.then(|| quote!(, #groups));
    let b = plan.conv_bias.is_param().then(|| quote!(, #bias));
    quote!(#g #b)
}

/// The weight argument of a `batch_norm2d` call when the helper takes one.
fn bn_extra(plan: &Plan, zero: bool) -> TokenStream {
    if plan.zero_init {
        let w = float(if zero { 0.0 } else { 1.0 });
        quote!(, #w)
    } else {
        TokenStream::new()
    }
}

// ---------------------------------------------------------------------------------------
// Shortcuts.

fn shortcut_types(plan: &Plan) -> TokenStream {
    let downsample = match plan.downsample {
        Some(ds) => {
            let name = ident(&plan.types.downsample);
            let bn_param = ds.bn.is_param().then(|| quote!(, bn: bool));
            let bias_param = (ds.bias == Some(Knob::Param)).then(|| quote!(, bias: bool));
            let bias_arg = match ds.bias {
                Some(k) => knob_bool(k, "bias"),
                None => TokenStream::new(),
            };
            let extra = conv_extra(plan, quote!(1), bias_arg);
            let bn_new = bn_extra(plan, false);
            let conv = quote!(conv2d(&p / "0", c_in, c_out, 1, stride, 0 #extra));
            let (bn_field, bn_init, forward, what) = match ds.bn {
                Knob::Fixed(true) => (
                    quote! {
                        /// Its batch normalization (`downsample.1`).
                        pub bn: ::tch::nn::BatchNorm,
                    },
                    quote!(bn: batch_norm2d(&p / "1", c_out #bn_new),),
                    quote!(xs.apply(&self.conv).apply_t(&self.bn, train)),
                    "a 1x1 convolution (`downsample.0`) and a BN (`downsample.1`)",
                ),
                Knob::Fixed(false) => (
                    TokenStream::new(),
                    TokenStream::new(),
                    quote!(xs.apply(&self.conv)),
                    "a 1x1 convolution (`downsample.0`), no BN",
                ),
                Knob::Param => (
                    quote! {
                        /// Its batch normalization (`downsample.1`), if the stage has one.
                        pub bn: ::core::option::Option<::tch::nn::BatchNorm>,
                    },
                    quote!(bn: bn.then(|| batch_norm2d(&p / "1", c_out #bn_new)),),
                    quote! {
                        let ys = xs.apply(&self.conv);
                        match &self.bn {
                            Some(bn) => ys.apply_t(bn, train),
                            None => ys,
                        }
                    },
                    "a 1x1 convolution (`downsample.0`), then a BN (`downsample.1`) where the stage asks for one",
                ),
            };
            // A projection without BN behaves the same in training and evaluation.
            let train = if ds.bn == Knob::Fixed(false) {
                quote!(_train)
            } else {
                quote!(train)
            };
            let doc = doc_lines(&format!(
                "A projection shortcut (the paper's options B and C): {what}."
            ));
            let new_doc = doc_lines("Builds the projection under `p` (a block's `downsample`).");
            quote! {
                #doc
                #[derive(Debug)]
                pub struct #name {
                    /// The 1x1 convolution (`downsample.0`).
                    pub conv: ::tch::nn::Conv2D,
                    #bn_field
                }

                impl #name {
                    #new_doc
                    pub fn new(p: ::tch::nn::Path, c_in: i64, c_out: i64, stride: i64 #bn_param #bias_param) -> Self {
                        #name {
                            conv: #conv,
                            #bn_init
                        }
                    }
                }

                impl ::tch::nn::ModuleT for #name {
                    fn forward_t(&self, xs: &::tch::Tensor, #train: bool) -> ::tch::Tensor {
                        #forward
                    }
                }
            }
        }
        None => TokenStream::new(),
    };
    let enums = match plan.shortcut {
        ShortcutStyle::Enum {
            identity,
            zero_pad,
            projection,
        } => {
            let name = ident(&plan.types.shortcut);
            let ds = ident(&plan.types.downsample);
            let mut variants = Vec::new();
            let mut kinds = Vec::new();
            if identity {
                variants.push(quote! {
                    /// The input itself.
                    Identity
                });
                kinds.push(quote! {
                    /// The input itself.
                    Identity
                });
            }
            if zero_pad {
                variants.push(quote! {
                    /// Option A: subsample by `stride`, then append `extra_channels` zero channels.
                    ZeroPad {
                        /// The block's stride.
                        stride: i64,
                        /// Output channels minus input channels.
                        extra_channels: i64,
                    }
                });
                kinds.push(quote! {
                    /// Option A: subsampled input with zero channels appended.
                    ZeroPad
                });
            }
            if projection {
                variants.push(quote! {
                    /// A 1x1 convolution (`downsample`).
                    Projection(::std::boxed::Box<#ds>)
                });
                kinds.push(quote! {
                    /// A 1x1 convolution (`downsample`).
                    Projection
                });
            }
            let kind_enum = plan.shortcut.takes_kind().then(|| {
                let kind_name = ident(&plan.types.shortcut_kind);
                quote! {
                    /// Which shortcut a block gets, as the spec's option resolves for it.
                    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
                    pub enum #kind_name {
                        #(#kinds,)*
                    }
                }
            });
            quote! {
                /// How a block's input reaches the addition.
                #[derive(Debug)]
                pub enum #name {
                    #(#variants,)*
                }

                #kind_enum
            }
        }
        _ => TokenStream::new(),
    };
    quote! {
        #downsample
        #enums
    }
}

// ---------------------------------------------------------------------------------------
// Blocks.

fn block(plan: &Plan, k: &KindPlan) -> TokenStream {
    let name = ident(&k.ident);
    let kind = k.kind;
    let bottleneck = kind.is_bottleneck();
    let preact = kind.is_preact();
    let residual = kind.has_shortcut();
    let n = kind.arity();

    // Constructor parameters beyond `p, c_in, filters, stride`.
    let mut params = Vec::new();
    let groups = match k.groups {
        Some(Knob::Param) => {
            params.push(quote!(groups: i64));
            quote!(groups)
        }
        Some(Knob::Fixed(g)) => {
            let g = int(g);
            quote!(#g)
        }
        None => quote!(1),
    };
    let bias = match k.bias {
        Some(Knob::Param) => {
            params.push(quote!(bias: bool));
            quote!(bias)
        }
        Some(Knob::Fixed(b)) => quote!(#b),
        None => TokenStream::new(),
    };
    if k.stride_first == Some(Knob::Param) {
        params.push(quote!(stride_first: bool));
    }
    let has_projection = residual && plan.shortcut.has_projection();
    if residual {
        match plan.shortcut {
            ShortcutStyle::OptionalProjection => params.push(quote!(project: bool)),
            s if s.takes_kind() => {
                let kind_name = ident(&plan.types.shortcut_kind);
                params.push(quote!(shortcut: #kind_name));
            }
            _ => {}
        }
    }
    let ds_bn_param = has_projection && plan.downsample.is_some_and(|d| d.bn.is_param());
    let ds_bias_param =
        has_projection && plan.downsample.is_some_and(|d| d.bias == Some(Knob::Param));
    if ds_bn_param {
        params.push(quote!(projection_bn: bool));
    }
    if ds_bias_param {
        params.push(quote!(projection_bias: bool));
    }
    let allow = (params.len() + 4 > 7).then(|| quote!(#[allow(clippy::too_many_arguments)]));

    // Channels and strides of each convolution.
    let c: Vec<Ident> = (1..=n).map(|i| ident(&format!("c{i}"))).collect();
    let c_last = &c[n - 1];
    let filters_ty = int(n as u64);
    let (stride_split, strides): (TokenStream, Vec<TokenStream>) = if bottleneck {
        match k.stride_first {
            Some(Knob::Param) => (
                quote!(let (stride1, stride2) = if stride_first { (stride, 1) } else { (1, stride) };),
                vec![quote!(stride1), quote!(stride2), quote!(1)],
            ),
            Some(Knob::Fixed(true)) => (
                TokenStream::new(),
                vec![quote!(stride), quote!(1), quote!(1)],
            ),
            _ => (
                TokenStream::new(),
                vec![quote!(1), quote!(stride), quote!(1)],
            ),
        }
    } else {
        (TokenStream::new(), vec![quote!(stride), quote!(1)])
    };

    // Fields and their initializers, in module order.
    let mut fields = Vec::new();
    let mut inits = Vec::new();
    for i in 0..n {
        let conv = ident(&format!("conv{}", i + 1));
        let bn = ident(&format!("bn{}", i + 1));
        let conv_name = format!("conv{}", i + 1);
        let bn_name = format!("bn{}", i + 1);
        let c_in = if i == 0 {
            ident("c_in")
        } else {
            c[i - 1].clone()
        };
        let c_out = &c[i];
        let (ksize, padding) = if bottleneck && i != 1 {
            (quote!(1), quote!(0))
        } else {
            (quote!(3), quote!(1))
        };
        let is_grouped = if bottleneck { i == 1 } else { true };
        let g = if is_grouped {
            groups.clone()
        } else {
            quote!(1)
        };
        let extra = conv_extra(plan, g, bias.clone());
        let stride = &strides[i];
        let zero = plan.zero_init && residual && i + 1 == n;
        let bn_arg = bn_extra(plan, zero);
        let bn_channels = if preact { &c_in } else { c_out };
        let conv_init =
            quote!(#conv: conv2d(&p / #conv_name, #c_in, #c_out, #ksize, #stride, #padding #extra));
        let bn_init = quote!(#bn: batch_norm2d(&p / #bn_name, #bn_channels #bn_arg));
        let k = if bottleneck && i != 1 { 1 } else { 3 };
        let conv_doc = format!(" The {k}x{k} convolution `{conv_name}`.");
        let bn_doc = format!(
            " The batch normalization {} `{conv_name}`.",
            if preact { "before" } else { "after" }
        );
        let conv_field = quote!(#[doc = #conv_doc] pub #conv: ::tch::nn::Conv2D);
        let bn_field = quote!(#[doc = #bn_doc] pub #bn: ::tch::nn::BatchNorm);
        if preact {
            fields.push(bn_field);
            fields.push(conv_field);
            inits.push(bn_init);
            inits.push(conv_init);
        } else {
            fields.push(conv_field);
            fields.push(bn_field);
            inits.push(conv_init);
            inits.push(bn_init);
        }
    }

    // The shortcut field.
    let ds = ident(&plan.types.downsample);
    let mut ds_args = Vec::new();
    if ds_bn_param {
        ds_args.push(quote!(projection_bn));
    }
    if ds_bias_param {
        ds_args.push(quote!(projection_bias));
    }
    let ds_new = quote!(#ds::new(&p / "downsample", c_in, #c_last, stride #(, #ds_args)*));
    if residual {
        match plan.shortcut {
            ShortcutStyle::Identity => {}
            ShortcutStyle::Projection => {
                fields.push(quote!(#[doc = " The projection shortcut."] pub downsample: #ds));
                inits.push(quote!(downsample: #ds_new));
            }
            ShortcutStyle::OptionalProjection => {
                fields.push(quote!(#[doc = " The projection shortcut, where the block has one."] pub downsample: ::core::option::Option<#ds>));
                inits.push(quote!(downsample: project.then(|| #ds_new)));
            }
            ShortcutStyle::Enum {
                identity,
                zero_pad,
                projection,
            } => {
                let sc = ident(&plan.types.shortcut);
                fields.push(quote!(#[doc = " How the block's input reaches the addition."] pub shortcut: #sc));
                let zero = quote!(#sc::ZeroPad { stride, extra_channels: #c_last - c_in });
                if plan.shortcut.takes_kind() {
                    let kn = ident(&plan.types.shortcut_kind);
                    let mut arms = Vec::new();
                    if identity {
                        arms.push(quote!(#kn::Identity => #sc::Identity));
                    }
                    if zero_pad {
                        arms.push(quote!(#kn::ZeroPad => #zero));
                    }
                    if projection {
                        arms.push(quote!(#kn::Projection => #sc::Projection(::std::boxed::Box::new(#ds_new))));
                    }
                    inits.push(quote!(shortcut: match shortcut { #(#arms,)* }));
                } else {
                    inits.push(quote!(shortcut: #zero));
                }
            }
        }
    }

    let forward = block_forward(plan, kind);
    let doc = doc_lines(&block_doc(plan, k));
    let new_doc = doc_lines(&format!(
        "Builds the block under `p` (`layer1.0`, ...): `c_in` input channels, output channels\nof each convolution in `filters` ({}), and the block's stride{}.",
        c.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", "),
        match k.stride_first {
            Some(Knob::Param) => " (on the first 1x1 if `stride_first`, else on the 3x3)",
            Some(Knob::Fixed(true)) => " (on the first 1x1)",
            Some(Knob::Fixed(false)) if bottleneck => " (on the 3x3)",
            _ => "",
        }
    ));
    let filters = quote!(filters: [i64; #filters_ty]);
    quote! {
        #doc
        #[derive(Debug)]
        pub struct #name {
            #(#fields,)*
        }

        impl #name {
            #new_doc
            #allow
            pub fn new(p: ::tch::nn::Path, c_in: i64, #filters, stride: i64 #(, #params)*) -> Self {
                let [#(#c),*] = filters;
                #stride_split
                #name {
                    #(#inits,)*
                }
            }
        }

        impl ::tch::nn::ModuleT for #name {
            fn forward_t(&self, xs: &::tch::Tensor, train: bool) -> ::tch::Tensor {
                #forward
            }
        }
    }
}

fn block_doc(plan: &Plan, k: &KindPlan) -> String {
    let stride_on = match k.stride_first {
        Some(Knob::Fixed(true)) => " (stride on the first 1x1: ResNet v1)",
        Some(Knob::Fixed(false)) => " (stride on the 3x3: torchvision's v1.5)",
        _ => "",
    };
    let shortcut = match plan.shortcut {
        ShortcutStyle::Identity => "the input itself",
        ShortcutStyle::Projection => "a projection (`downsample`) of the input",
        ShortcutStyle::OptionalProjection => {
            "the input (where the shape changes, its projection `downsample`)"
        }
        ShortcutStyle::Enum { .. } => "the block's `shortcut`",
    };
    let pre_shortcut = match plan.shortcut {
        ShortcutStyle::Identity => "the input itself",
        ShortcutStyle::Projection => "a projection (`downsample`) of the pre-activated input",
        ShortcutStyle::OptionalProjection => {
            "the input (where the shape changes, a projection `downsample` of the pre-activated input)"
        }
        ShortcutStyle::Enum { .. } => "the block's `shortcut` (a projection reads the pre-activated input)",
    };
    match k.kind {
        BlockKind::Basic => format!(
            "A basic residual block (ResNet-18/34): `conv1` 3x3 -> `bn1` -> ReLU -> `conv2` 3x3 ->\n`bn2`, plus {shortcut}, then ReLU."
        ),
        BlockKind::Bottleneck => format!(
            "A bottleneck residual block{stride_on}: `conv1` 1x1 -> `bn1` -> ReLU ->\n`conv2` 3x3 -> `bn2` -> ReLU -> `conv3` 1x1 -> `bn3`, plus {shortcut}, then ReLU."
        ),
        BlockKind::PreActBasic => format!(
            "A pre-activation basic block (\"Identity Mappings in Deep Residual Networks\"):\n`bn1` -> ReLU -> `conv1` 3x3 -> `bn2` -> ReLU -> `conv2` 3x3, plus {pre_shortcut};\nno activation after the addition."
        ),
        BlockKind::PreActBottleneck => format!(
            "A pre-activation bottleneck block{stride_on}: `bn1` -> ReLU -> `conv1` 1x1 -> `bn2` ->\nReLU -> `conv2` 3x3 -> `bn3` -> ReLU -> `conv3` 1x1, plus {pre_shortcut};\nno activation after the addition."
        ),
        BlockKind::Plain => {
            "A plain block (the paper's plain networks, no shortcut): `conv1` 3x3 -> `bn1` -> ReLU ->\n`conv2` 3x3 -> `bn2` -> ReLU.".to_string()
        }
        BlockKind::PlainBottleneck => format!(
            "A plain bottleneck (no shortcut){stride_on}: `conv1` 1x1 -> `bn1` -> ReLU -> `conv2` 3x3 ->\n`bn2` -> ReLU -> `conv3` 1x1 -> `bn3` -> ReLU."
        ),
    }
}

fn block_forward(plan: &Plan, kind: BlockKind) -> TokenStream {
    let n = kind.arity();
    let conv: Vec<Ident> = (1..=n).map(|i| ident(&format!("conv{i}"))).collect();
    let bn: Vec<Ident> = (1..=n).map(|i| ident(&format!("bn{i}"))).collect();
    if kind.is_preact() {
        // out = relu(bn1(x)); then conv1, (bn, relu, conv)*.
        let (conv1, rest_conv, rest_bn) = (&conv[0], &conv[1..], &bn[1..]);
        let bn1 = &bn[0];
        let ys = quote! {
            let ys = out.apply(&self.#conv1)
                #(.apply_t(&self.#rest_bn, train).relu().apply(&self.#rest_conv))*;
        };
        let sum = match plan.shortcut {
            ShortcutStyle::Identity => quote!(ys + xs),
            ShortcutStyle::Projection => quote!(ys + out.apply_t(&self.downsample, train)),
            ShortcutStyle::OptionalProjection => quote! {
                match &self.downsample {
                    Some(downsample) => ys + out.apply_t(downsample, train),
                    None => ys + xs,
                }
            },
            ShortcutStyle::Enum { .. } => {
                let arms = enum_arms(plan, quote!(out));
                quote! {
                    let shortcut = match &self.shortcut { #(#arms,)* };
                    ys + shortcut
                }
            }
        };
        quote! {
            let out = xs.apply_t(&self.#bn1, train).relu();
            #ys
            #sum
        }
    } else {
        let (last_conv, last_bn) = (&conv[n - 1], &bn[n - 1]);
        let (head_conv, head_bn) = (&conv[..n - 1], &bn[..n - 1]);
        let ys = quote! {
            let ys = xs
                #(.apply(&self.#head_conv).apply_t(&self.#head_bn, train).relu())*
                .apply(&self.#last_conv)
                .apply_t(&self.#last_bn, train);
        };
        let sum = if !kind.has_shortcut() {
            quote!(ys.relu())
        } else {
            match plan.shortcut {
                ShortcutStyle::Identity => quote!((ys + xs).relu()),
                ShortcutStyle::Projection => {
                    quote!((ys + xs.apply_t(&self.downsample, train)).relu())
                }
                ShortcutStyle::OptionalProjection => quote! {
                    match &self.downsample {
                        Some(downsample) => (ys + xs.apply_t(downsample, train)).relu(),
                        None => (ys + xs).relu(),
                    }
                },
                ShortcutStyle::Enum { .. } => {
                    let arms = enum_arms(plan, quote!(xs));
                    quote! {
                        let shortcut = match &self.shortcut { #(#arms,)* };
                        (ys + shortcut).relu()
                    }
                }
            }
        };
        quote! {
            #ys
            #sum
        }
    }
}

/// Match arms computing the shortcut tensor; a projection reads `projected_input`.
fn enum_arms(plan: &Plan, projected_input: TokenStream) -> Vec<TokenStream> {
    let sc = ident(&plan.types.shortcut);
    let mut arms = Vec::new();
    if let ShortcutStyle::Enum {
        identity,
        zero_pad,
        projection,
    } = plan.shortcut
    {
        if identity {
            arms.push(quote!(#sc::Identity => xs.shallow_clone()));
        }
        if zero_pad {
            arms.push(quote!(#sc::ZeroPad { stride, extra_channels } => zero_pad(xs, *stride, *extra_channels)));
        }
        if projection {
            arms.push(quote!(#sc::Projection(downsample) => #projected_input.apply_t(downsample.as_ref(), train)));
        }
    }
    arms
}

// ---------------------------------------------------------------------------------------
// The model.

fn model(plan: &Plan, opts: &RustOptions) -> TokenStream {
    let net = plan.net;
    let model = plan.model;
    let name = ident(&plan.name);

    let stem = super::plan::classic_stem(&net.stem).expect("only networks that fit_classic reach the block structs");
    let sc = stem.conv;
    let (c_in, c_out, k, s, pad) = (
        int(sc.in_channels),
        int(sc.out_channels),
        int(sc.kernel),
        int(sc.stride),
        int(sc.padding),
    );
    let stem_extra = conv_extra(plan, quote!(1), knob_bool(Knob::Fixed(sc.bias), "bias"));
    let mut fields = vec![quote! {
        /// The stem convolution.
        pub conv1: ::tch::nn::Conv2D
    }];
    let mut lets =
        vec![quote!(let conv1 = conv2d(p / "conv1", #c_in, #c_out, #k, #s, #pad #stem_extra);)];
    let mut names = vec![ident("conv1")];
    let mut stem_ops = vec![quote!(.apply(&self.conv1))];
    if let Some(bn) = stem.bn {
        let ch = int(bn.channels);
        let extra = bn_extra(plan, false);
        fields.push(quote! {
            /// The stem's batch normalization.
            pub bn1: ::tch::nn::BatchNorm
        });
        lets.push(quote!(let bn1 = batch_norm2d(p / "bn1", #ch #extra);));
        names.push(ident("bn1"));
        stem_ops.push(quote!(.apply_t(&self.bn1, train)));
    }
    if stem.relu {
        stem_ops.push(quote!(.relu()));
    }
    if let Some(pool) = stem.pool {
        let p = pool.pool;
        let (k, s, pad, ceil) = (int(p.kernel), int(p.stride), int(p.padding), p.ceil_mode);
        stem_ops.push(match p.kind {
            PoolKind::Max => quote!(.max_pool2d([#k, #k], [#s, #s], [#pad, #pad], [1, 1], #ceil)),
            PoolKind::Avg => {
                quote!(.avg_pool2d([#k, #k], [#s, #s], [#pad, #pad], #ceil, true, None::<i64>))
            }
        });
    }

    let mut stage_loops = Vec::new();
    for stage in &plan.stages {
        let field = ident(&stage.field);
        let kind = &plan.kinds[stage.kind];
        let ty = ident(&kind.ident);
        let summary = &net.stages[stage.summary];
        let doc = doc_lines(&format!(
            "{} ({}): {} x {}, output {}.",
            doc_code(&summary.name),
            stage.field,
            summary.repeat,
            table::block_config(summary),
            summary.output
        ));
        fields.push(quote! {
            #doc
            pub #field: ::std::vec::Vec<#ty>
        });
        lets.push(stage_builder(plan, stage, kind));
        names.push(field.clone());
        stage_loops.push(quote! {
            for block in &self.#field {
                xs = xs.apply_t(block, train);
            }
        });
    }

    let head = plan.head;
    let mut head_ops = Vec::new();
    if let Some(bn) = &head.norm {
        let ch = int(bn.channels);
        let extra = bn_extra(plan, false);
        fields.push(quote! {
            /// The final BN (+ ReLU) of a pre-activation network.
            pub final_bn: ::tch::nn::BatchNorm
        });
        lets.push(quote!(let final_bn = batch_norm2d(p / "final_bn", #ch #extra);));
        names.push(ident("final_bn"));
        head_ops.push(quote!(.apply_t(&self.final_bn, train).relu()));
    }
    head_ops.push(match head.pool {
        HeadPool::Avg => quote!(.adaptive_avg_pool2d([1, 1])),
        HeadPool::Max => quote!(.adaptive_max_pool2d([1, 1]).0),
        HeadPool::Flatten => TokenStream::new(),
    });
    head_ops.push(quote!(.flatten(1, -1)));
    if head.dropout > 0.0 {
        let p = float(head.dropout);
        head_ops.push(quote!(.dropout(#p, train)));
    }
    head_ops.push(quote!(.apply(&self.fc)));
    if head.softmax {
        head_ops.push(quote!(.softmax(-1, None::<::tch::Kind>)));
    }
    let (fc_in, fc_out) = (int(head.fc.in_features), int(head.fc.out_features));
    fields.push(quote! {
        /// The fully connected layer.
        pub fc: ::tch::nn::Linear
    });
    lets.push(quote!(let fc = linear(p / "fc", #fc_in, #fc_out);));
    names.push(ident("fc"));

    let i = net.input;
    let (ic, ih, iw) = (int(i.c), int(i.h), int(i.w));
    let classes = int(head.fc.out_features);
    let params = grouped_int(net.totals.trainable_params);
    let macs = grouped_int(net.totals.macs);
    let doc = doc_lines(&model_doc(plan.model, plan.net, opts));
    let input_doc = doc_lines(&format!(
        "Input shape of one sample, `[C, H, W]`: the spec's {}.",
        i
    ));
    let classes_doc = doc_lines(&format!(
        "Number of classes: the width of the output{}.",
        if head.softmax {
            " (softmax probabilities)"
        } else {
            " (logits)"
        }
    ));
    let mut_xs = if plan.stages.is_empty() {
        TokenStream::new()
    } else {
        quote!(mut)
    };
    let init_doc = doc_lines(&format!(
        "Creates every variable under `p`, named as torchvision's `state_dict`, initialized\n{}.",
        match model.init {
            Init::KaimingNormal => "as torchvision does",
            Init::XavierUniform => "Xavier/Glorot-uniform",
        }
    ));

    quote! {
        #doc
        #[derive(Debug)]
        pub struct #name {
            #(#fields,)*
        }

        #[allow(dead_code)]
        impl #name {
            #input_doc
            pub const INPUT_SHAPE: [i64; 3] = [#ic, #ih, #iw];
            #classes_doc
            pub const NUM_CLASSES: i64 = #classes;
            /// Trainable parameters: weights and biases of convolutions, BN and `fc`.
            pub const TRAINABLE_PARAMS: i64 = #params;
            /// Multiply-accumulates of convolutions and `fc` for one sample (FLOPs = 2 x MACs).
            pub const MACS: i64 = #macs;
        }

        impl #name {
            #init_doc
            pub fn new(p: &::tch::nn::Path) -> Self {
                #(#lets)*
                #name { #(#names),* }
            }
        }

        impl ::tch::nn::ModuleT for #name {
            fn forward_t(&self, xs: &::tch::Tensor, train: bool) -> ::tch::Tensor {
                let #mut_xs xs = xs #(#stem_ops)*;
                #(#stage_loops)*
                xs #(#head_ops)*
            }
        }
    }
}

/// `let layerN = vec![...];`, or the first block and a loop when the rest are alike.
fn stage_builder(plan: &Plan, stage: &StagePlan, kind: &KindPlan) -> TokenStream {
    let field = ident(&stage.field);
    let layer = &stage.field;
    let ty = ident(&kind.ident);
    let call = |c: &BlockCall, index: TokenStream| -> TokenStream {
        let args = block_args(plan, kind, c);
        quote!(#ty::new(p / #layer / #index, #args))
    };
    if stage.loop_tail {
        let first = call(&stage.calls[0], quote!(0));
        let rest = call(&stage.calls[1], quote!(i));
        let n = int(stage.calls.len() as u64);
        quote! {
            let mut #field = ::std::vec::Vec::from([#first]);
            for i in 1..#n {
                let block = #rest;
                #field.push(block);
            }
        }
    } else {
        // `Vec::from([..])` rather than `vec![..]`: prettyplease formats calls, not macros.
        let calls = stage
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| call(c, int(i as u64).into_token_stream()));
        quote!(let #field = ::std::vec::Vec::from([#(#calls),*]);)
    }
}

/// Arguments of a block constructor after `p`.
fn block_args(plan: &Plan, kind: &KindPlan, c: &BlockCall) -> TokenStream {
    let c_in = int(c.c_in);
    let filters = c.filters.iter().map(|&f| int(f));
    let stride = int(c.stride);
    let mut extra = Vec::new();
    if kind.groups == Some(Knob::Param) {
        let g = int(c.groups);
        extra.push(quote!(#g));
    }
    if kind.bias == Some(Knob::Param) {
        let b = c.bias;
        extra.push(quote!(#b));
    }
    if kind.stride_first == Some(Knob::Param) {
        let s = c.stride_first;
        extra.push(quote!(#s));
    }
    if kind.kind.has_shortcut() {
        match plan.shortcut {
            ShortcutStyle::OptionalProjection => {
                let project = c.shortcut == ShortcutArg::Projection;
                extra.push(quote!(#project));
            }
            s if s.takes_kind() => {
                let kn = ident(&plan.types.shortcut_kind);
                extra.push(match c.shortcut {
                    ShortcutArg::ZeroPad => quote!(#kn::ZeroPad),
                    ShortcutArg::Projection => quote!(#kn::Projection),
                    ShortcutArg::Identity | ShortcutArg::None => quote!(#kn::Identity),
                });
            }
            _ => {}
        }
        if plan.shortcut.has_projection() {
            if let Some(ds) = plan.downsample {
                if ds.bn.is_param() {
                    let b = c.projection_bn;
                    extra.push(quote!(#b));
                }
                if ds.bias == Some(Knob::Param) {
                    let b = c.projection_bias;
                    extra.push(quote!(#b));
                }
            }
        }
    }
    quote!(#c_in, [#(#filters),*], #stride #(, #extra)*)
}

pub(super) fn model_doc(
    model: &crate::ir::Model,
    net: &crate::valid::Network,
    opts: &RustOptions,
) -> String {
    let from = match &opts.source {
        Some(path) => format!(" (from {})", doc_code(path)),
        None => String::new(),
    };
    let i = net.input;
    let out = match &net.head {
        Some(h) if h.softmax => format!("output `[N, {}]` (softmax probabilities)", h.fc.out_features),
        Some(h) => format!("output `[N, {}]` (logits)", h.fc.out_features),
        None => format!(
            "outputs the feature maps of {}",
            net.features.iter().map(|f| format!("{} `[N, {}, {}, {}]`", f.module, f.shape.c, f.shape.h, f.shape.w)).collect::<Vec<_>>().join(", ")
        ),
    };
    let init = match model.init {
        Init::KaimingNormal => {
            "torchvision's (Kaiming-normal fan-out convolutions, BN weight 1 and bias 0, `fc` as\n`nn.Linear`)"
        }
        Init::XavierUniform => "Xavier/Glorot-uniform convolutions and `fc`, biases 0, BN weight 1 and bias 0",
    };
    let zero = if model.zero_init_residual {
        "; the last BN of each residual block starts at 0 (`zero_init_residual`)"
    } else {
        ""
    };
    format!(
        "The {name} network{from}, generated by resnetc.\n\
         \n\
         Input `[N, {c}, {h}, {w}]`, {out}; {params} trainable parameters,\n\
         {macs} MACs per sample. Every variable is named as in torchvision's `state_dict`\n\
         (`layer1.0.conv1.weight`, `fc.bias`), so a checkpoint saved from the same PyTorch module\n\
         as safetensors loads with `VarStore::load`. Initialization: {init}{zero}.\n\
         \n\
         ```text\n{table}```",
        name = doc_code(&model.name),
        c = i.c,
        h = i.h,
        w = i.w,
        params = table::thousands(net.totals.trainable_params),
        macs = table::thousands(net.totals.macs),
        table = doc_table(model, net),
    )
}

/// The layer table for the doc's `text` block: spec text in it (the model's name) is made
/// inert, and so is every line, so nothing can end the block early.
fn doc_table(model: &crate::ir::Model, net: &crate::valid::Network) -> String {
    let shown = crate::ir::Model {
        name: doc_text(&model.name),
        ..model.clone()
    };
    table::layers(&shown, net)
        .lines()
        .map(|line| doc_text(line) + "\n")
        .collect()
}
