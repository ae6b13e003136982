//! The general form of the generated module, for every network the block structs of
//! [`super::emit`] do not describe (deep stems, GroupNorm, channel attention,
//! anti-aliasing, dilation, ResNet-D and Keras V2 shortcuts, per-convolution bias,
//! stochastic depth, ...).
//!
//! It follows the checked network's layer lists one to one, as resnetc's runtime
//! interpreter does: a `Layer` enum with one variant per layer kind the network uses
//! (its `forward_t` is the runtime's `run_layers` case for that kind), a `Block` struct
//! holding a block's `pre`, `branch` and `shortcut` lists (its `forward_t` is the
//! runtime's `Block::forward`), and the model struct with `stem: Vec<Layer>`, one
//! `layerN: Vec<Block>` per stage and the head. `new` lists every layer with its literal
//! hyper-parameters under its torchvision name; a stage whose blocks after the first
//! differ only in their index is built in a loop.

use super::doc::doc_code;
use super::emit::{doc_lines, float, grouped_int, ident, int, linear_helper, model_doc};
use super::RustOptions;
use crate::back::table;
use crate::ir::{HeadPool, Init, Norm, PoolKind};
use crate::valid::{AttentionKind, BlockPlan, Layer, Network, ShortcutPlan};
use crate::Compiled;
use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

/// The layer kinds a network uses: one `Layer` variant (and helper) each.
#[derive(Clone, Copy, Debug, Default)]
struct Used {
    batch_norm: bool,
    group_norm: bool,
    relu: bool,
    max_pool: bool,
    avg_pool: bool,
    blur: bool,
    se: bool,
    eca: bool,
    subsample: bool,
    drop_path: bool,
}

impl Used {
    fn of(net: &Network) -> Used {
        let mut u = Used::default();
        let head = net.head.iter().flat_map(|h| h.norm.iter()).map(|n| Layer::Norm(n.clone()));
        let layers: Vec<Layer> = net.body_layers().cloned().chain(head).collect();
        for l in &layers {
            match l {
                Layer::Conv(_) => {}
                Layer::Norm(n) => match n.norm {
                    Norm::Batch => u.batch_norm = true,
                    Norm::Group { .. } => u.group_norm = true,
                },
                Layer::Relu { .. } => u.relu = true,
                Layer::Pool(p) => match p.pool.kind {
                    PoolKind::Max => u.max_pool = true,
                    PoolKind::Avg => u.avg_pool = true,
                },
                Layer::Blur(_) => u.blur = true,
                Layer::Attention(a) => match a.kind {
                    AttentionKind::Se { .. } => u.se = true,
                    AttentionKind::Eca { .. } => u.eca = true,
                },
                Layer::Subsample { .. } => u.subsample = true,
                Layer::DropPath { .. } => u.drop_path = true,
            }
        }
        u
    }
}

/// The names of the module's types.
struct Names {
    model: proc_macro2::Ident,
    layer: proc_macro2::Ident,
    block: proc_macro2::Ident,
}

/// The module's items as tokens.
pub(super) fn module(compiled: &Compiled, name: &str, opts: &RustOptions) -> TokenStream {
    let net = &compiled.network;
    // The model's own name wins; a private type of the same name steps aside.
    let avoid = |base: &str| {
        if base == name {
            ident(&format!("{base}Inner"))
        } else {
            ident(base)
        }
    };
    let names = Names {
        model: ident(name),
        layer: avoid("Layer"),
        block: avoid("Block"),
    };
    let used = Used::of(net);
    let model = model(compiled, &names, opts);
    let layer = layer_enum(&names, used);
    let block = block_struct(&names);
    let helpers = helpers(compiled, &names, used);
    quote! {
        #model
        #layer
        #block
        #helpers
    }
}

// ---------------------------------------------------------------------------------------
// Constructors of single layers.

/// `p / "layer1" / 0 / "conv1"`: `root` followed by the dotted `rest`, one segment each.
fn path(root: &TokenStream, rest: &str) -> TokenStream {
    let segments = rest.split('.').filter(|s| !s.is_empty());
    quote!(#root #(/ #segments)*)
}

/// The expression that builds layer `l`, whose variables live under `p` (the layer's own
/// path); `zero` starts a norm layer's weight at 0 (`zero_init_residual`).
fn layer_new(names: &Names, l: &Layer, p: TokenStream, zero: bool) -> TokenStream {
    let ty = &names.layer;
    match l {
        Layer::Conv(c) => {
            let (i, o, k, s, pad, d, g, b) = (
                int(c.in_channels),
                int(c.out_channels),
                int(c.kernel),
                int(c.stride),
                int(c.padding),
                int(c.dilation),
                int(c.groups),
                c.bias,
            );
            quote!(#ty::Conv(conv2d(#p, #i, #o, #k, #s, #pad, #d, #g, #b)))
        }
        Layer::Norm(n) => {
            let (c, relu) = (int(n.channels), n.relu);
            let w = float(if zero { 0.0 } else { 1.0 });
            match n.norm {
                Norm::Batch => quote!(#ty::BatchNorm(batch_norm2d(#p, #c, #w), #relu)),
                Norm::Group { groups } => {
                    let g = int(groups);
                    quote!(#ty::GroupNorm(group_norm(#p, #g, #c, #w), #relu))
                }
            }
        }
        Layer::Relu { .. } => quote!(#ty::Relu),
        Layer::Pool(pl) => {
            let q = pl.pool;
            let (k, s, pad, ceil) = (int(q.kernel), int(q.stride), int(q.padding), q.ceil_mode);
            match q.kind {
                PoolKind::Max => quote! {
                    #ty::MaxPool { kernel: #k, stride: #s, padding: #pad, ceil_mode: #ceil }
                },
                PoolKind::Avg => {
                    let inc = q.count_include_pad;
                    quote! {
                        #ty::AvgPool { kernel: #k, stride: #s, padding: #pad, ceil_mode: #ceil, count_include_pad: #inc }
                    }
                }
            }
        }
        Layer::Blur(b) => {
            let (c, s, pad) = (int(b.channels), int(b.stride), int(b.padding));
            quote!(#ty::Blur { channels: #c, stride: #s, padding: #pad })
        }
        Layer::Attention(a) => {
            let c = int(a.channels);
            match a.kind {
                AttentionKind::Se { hidden } => {
                    let h = int(hidden);
                    quote!(squeeze_excitation(#p, #c, #h))
                }
                AttentionKind::Eca { kernel } => {
                    let k = int(kernel);
                    quote!(#ty::Eca { conv: conv1d(#p / "conv", #k) })
                }
            }
        }
        Layer::Subsample {
            stride,
            extra_channels,
            ..
        } => {
            let (s, e) = (int(*stride), int(*extra_channels));
            quote!(#ty::Subsample { stride: #s, extra_channels: #e })
        }
        Layer::DropPath { rate, .. } => {
            let r = float(*rate);
            quote!(#ty::DropPath { rate: #r })
        }
    }
}

/// `::std::vec::Vec::from([...])` of `items` (`Vec::new()` when there are none).
fn vec_of(items: Vec<TokenStream>) -> TokenStream {
    if items.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote!(::std::vec::Vec::from([#(#items),*]))
    }
}

/// The `Block { .. }` expression for `b`, its variables under `root` (`p / "layer1" / 0`).
fn block_new(compiled: &Compiled, names: &Names, b: &BlockPlan, root: &TokenStream) -> TokenStream {
    let ty = &names.block;
    let prefix = format!("{}.", b.name);
    let local = |l: &Layer| -> TokenStream {
        let rest = l.name().strip_prefix(&prefix).unwrap_or(l.name());
        path(root, rest)
    };
    // zero_init_residual: the last norm layer of a residual block's pre + branch.
    let residual = !matches!(b.shortcut, ShortcutPlan::None);
    let zero_at = if compiled.model.zero_init_residual && residual {
        let all: Vec<&Layer> = b.pre.iter().chain(&b.branch).collect();
        all.iter().rposition(|l| matches!(l, Layer::Norm(_)))
    } else {
        None
    };
    let mut pre = Vec::new();
    let mut branch = Vec::new();
    for (i, l) in b.pre.iter().chain(&b.branch).enumerate() {
        let t = layer_new(names, l, local(l), zero_at == Some(i));
        if i < b.pre.len() {
            pre.push(t);
        } else {
            branch.push(t);
        }
    }
    let (pre, branch) = (vec_of(pre), vec_of(branch));
    let (shortcut, from_pre) = match &b.shortcut {
        ShortcutPlan::None => (quote!(::core::option::Option::None), false),
        ShortcutPlan::Path { from_pre, layers } => {
            let layers = vec_of(
                layers
                    .iter()
                    .map(|l| layer_new(names, l, local(l), false))
                    .collect(),
            );
            (quote!(::core::option::Option::Some(#layers)), *from_pre)
        }
    };
    let relu = b.relu_after_add;
    quote! {
        #ty {
            pre: #pre,
            branch: #branch,
            shortcut: #shortcut,
            shortcut_from_pre: #from_pre,
            relu_after_add: #relu,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The model.

fn model(compiled: &Compiled, names: &Names, opts: &RustOptions) -> TokenStream {
    let net = &compiled.network;
    let model = &compiled.model;
    let name = &names.model;
    let layer_ty = &names.layer;
    let block_ty = &names.block;
    let p = quote!(p);

    let stem = vec_of(
        net.stem
            .layers
            .iter()
            .map(|l| layer_new(names, l, path(&p, l.name()), false))
            .collect(),
    );
    let stem_names = net
        .stem
        .layers
        .iter()
        .map(|l| format!("`{}`", l.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let stem_doc = doc_lines(&format!("The stem: {stem_names}."));
    let mut fields = vec![quote! {
        #stem_doc
        pub stem: ::std::vec::Vec<#layer_ty>
    }];
    let mut lets = vec![quote!(let stem = #stem;)];
    let mut field_names = vec![ident("stem")];
    let mut stage_loops = Vec::new();

    for (si, summary) in net.stages.iter().enumerate() {
        let field_name = format!("layer{}", si + 1);
        let field = ident(&field_name);
        let blocks: Vec<&BlockPlan> = net.blocks.iter().filter(|b| b.stage == si).collect();
        let doc = doc_lines(&format!(
            "{} ({}): {} x {}, output {}.",
            doc_code(&summary.name),
            field_name,
            summary.repeat,
            table::block_config(summary),
            summary.output
        ));
        fields.push(quote! {
            #doc
            pub #field: ::std::vec::Vec<#block_ty>
        });
        let at = |index: TokenStream| quote!(p / #field_name / #index);
        let built: Vec<TokenStream> = blocks
            .iter()
            .map(|b| block_new(compiled, names, b, &at(int(b.index).into_token_stream())))
            .collect();
        // Blocks after the first that differ only in their index: a loop.
        let by_index: Vec<String> = blocks
            .iter()
            .skip(1)
            .map(|b| block_new(compiled, names, b, &at(quote!(i))).to_string())
            .collect();
        let looped = blocks.len() >= 3 && by_index.iter().all(|t| *t == by_index[0]);
        if looped {
            let first = &built[0];
            let rest = block_new(compiled, names, blocks[1], &at(quote!(i)));
            let n = int(blocks.len() as u64);
            lets.push(quote! {
                let mut #field = ::std::vec::Vec::from([#first]);
                for i in 1..#n {
                    let block = #rest;
                    #field.push(block);
                }
            });
        } else {
            lets.push(quote!(let #field = ::std::vec::Vec::from([#(#built),*]);));
        }
        field_names.push(field.clone());
        stage_loops.push(quote! {
            for block in &self.#field {
                xs = xs.apply_t(block, train);
            }
        });
        if net.features.iter().any(|f| f.stage == si) {
            stage_loops.push(quote!(features.push(xs.shallow_clone());));
        }
    }

    let mut head_ops = Vec::new();
    if let Some(head) = &net.head {
        if let Some(n) = &head.norm {
            let norm = layer_new(names, &Layer::Norm(n.clone()), path(&p, &n.name), false);
            fields.push(quote! {
                /// The final norm layer (+ ReLU) of a pre-activation network.
                pub final_bn: #layer_ty
            });
            lets.push(quote!(let final_bn = #norm;));
            field_names.push(ident("final_bn"));
            head_ops.push(quote!(.apply_t(&self.final_bn, train)));
        }
        head_ops.push(match head.pool {
            HeadPool::Avg => quote!(.adaptive_avg_pool2d([1, 1])),
            HeadPool::Max => quote!(.adaptive_max_pool2d([1, 1]).0),
            HeadPool::Flatten => TokenStream::new(),
        });
        head_ops.push(quote!(.flatten(1, -1)));
        if head.dropout > 0.0 {
            let d = float(head.dropout);
            head_ops.push(quote!(.dropout(#d, train)));
        }
        head_ops.push(quote!(.apply(&self.fc)));
        if head.softmax {
            head_ops.push(quote!(.softmax(-1, ::core::option::Option::None::<::tch::Kind>)));
        }
        let (fc_in, fc_out) = (int(head.fc.in_features), int(head.fc.out_features));
        fields.push(quote! {
            /// The fully connected layer.
            pub fc: ::tch::nn::Linear
        });
        lets.push(quote!(let fc = linear(p / "fc", #fc_in, #fc_out);));
        field_names.push(ident("fc"));
    }

    let i = net.input;
    let (ic, ih, iw) = (int(i.c), int(i.h), int(i.w));
    let params = grouped_int(net.totals.trainable_params);
    let macs = grouped_int(net.totals.macs);
    let doc = doc_lines(&model_doc(model, net, opts));
    let input_doc = doc_lines(&format!(
        "Input shape of one sample, `[C, H, W]`: the spec's {i}."
    ));
    let mut_xs = if stage_loops.is_empty() {
        TokenStream::new()
    } else {
        quote!(mut)
    };
    let init_doc = doc_lines(&format!(
        "Creates every variable under `p`, named as torchvision's and timm's `state_dict`,\ninitialized {}.",
        match model.init {
            Init::KaimingNormal => "as torchvision does",
            Init::XavierUniform => "Xavier/Glorot-uniform",
        }
    ));
    let (output_consts, forward) = match &net.head {
        Some(head) => {
            let classes = int(head.fc.out_features);
            let classes_doc = doc_lines(&format!(
                "Number of classes: the width of the output{}.",
                if head.softmax {
                    " (softmax probabilities)"
                } else {
                    " (logits)"
                }
            ));
            (
                quote! {
                    #classes_doc
                    pub const NUM_CLASSES: i64 = #classes;
                },
                quote! {
                    impl ::tch::nn::ModuleT for #name {
                        fn forward_t(&self, xs: &::tch::Tensor, train: bool) -> ::tch::Tensor {
                            let #mut_xs xs = forward_layers(&self.stem, xs, train);
                            #(#stage_loops)*
                            xs #(#head_ops)*
                        }
                    }
                },
            )
        }
        None => {
            let modules: Vec<&str> = net.features.iter().map(|f| f.module.as_str()).collect();
            let n = proc_macro2::Literal::usize_unsuffixed(modules.len());
            let doc = doc_lines(&format!(
                "The backbone's outputs, in order: the feature maps of {}.",
                net.features.iter().map(|f| format!("{} ({}, {})", doc_code(&f.name), f.module, f.shape)).collect::<Vec<_>>().join(", ")
            ));
            (
                quote! {
                    #doc
                    pub const FEATURES: [&'static str; #n] = [#(#modules),*];
                },
                quote! {
                    impl #name {
                        /// Runs the backbone: one feature map `[N, C, H, W]` per entry of `FEATURES`.
                        pub fn features_t(&self, xs: &::tch::Tensor, train: bool) -> ::std::vec::Vec<::tch::Tensor> {
                            let mut features = ::std::vec::Vec::with_capacity(#n);
                            let #mut_xs xs = forward_layers(&self.stem, xs, train);
                            #(#stage_loops)*
                            let _ = xs;
                            features
                        }
                    }
                },
            )
        }
    };
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
            #output_consts
            /// Trainable parameters: weights and biases of convolutions, norm layers and `fc`.
            pub const TRAINABLE_PARAMS: i64 = #params;
            /// Multiply-accumulates of convolutions and `fc` for one sample (FLOPs = 2 x MACs).
            pub const MACS: i64 = #macs;
        }

        impl #name {
            #init_doc
            pub fn new(p: &::tch::nn::Path) -> Self {
                #(#lets)*
                #name { #(#field_names),* }
            }
        }

        #forward
    }
}

// ---------------------------------------------------------------------------------------
// The layer enum and the block struct.

fn layer_enum(names: &Names, used: Used) -> TokenStream {
    let ty = &names.layer;
    let mut variants = vec![quote! {
        /// A 2-D convolution (`Conv2d`).
        Conv(::tch::nn::Conv2D)
    }];
    let mut arms = vec![quote!(#ty::Conv(conv) => xs.apply(conv))];
    if used.batch_norm {
        variants.push(quote! {
            /// `BatchNorm2d`, then a ReLU if the flag is set.
            BatchNorm(::tch::nn::BatchNorm, bool)
        });
        arms.push(quote! {
            #ty::BatchNorm(bn, relu) => {
                let ys = xs.apply_t(bn, train);
                if *relu { ys.relu() } else { ys }
            }
        });
    }
    if used.group_norm {
        variants.push(quote! {
            /// `GroupNorm`, then a ReLU if the flag is set.
            GroupNorm(::tch::nn::GroupNorm, bool)
        });
        arms.push(quote! {
            #ty::GroupNorm(gn, relu) => {
                let ys = xs.apply(gn);
                if *relu { ys.relu() } else { ys }
            }
        });
    }
    if used.relu {
        variants.push(quote! {
            /// A ReLU on its own.
            Relu
        });
        arms.push(quote!(#ty::Relu => xs.relu()));
    }
    if used.max_pool {
        variants.push(quote! {
            /// `MaxPool2d` (square window, symmetric padding).
            MaxPool {
                /// Window size.
                kernel: i64,
                /// Stride.
                stride: i64,
                /// Padding on each side.
                padding: i64,
                /// Round the output size up (PyTorch's `ceil_mode`).
                ceil_mode: bool,
            }
        });
        arms.push(quote! {
            #ty::MaxPool { kernel, stride, padding, ceil_mode } => {
                xs.max_pool2d([*kernel; 2], [*stride; 2], [*padding; 2], [1, 1], *ceil_mode)
            }
        });
    }
    if used.avg_pool {
        variants.push(quote! {
            /// `AvgPool2d` (square window, symmetric padding).
            AvgPool {
                /// Window size.
                kernel: i64,
                /// Stride.
                stride: i64,
                /// Padding on each side.
                padding: i64,
                /// Round the output size up (PyTorch's `ceil_mode`).
                ceil_mode: bool,
                /// Count padded zeros in the average (PyTorch's `count_include_pad`).
                count_include_pad: bool,
            }
        });
        arms.push(quote! {
            #ty::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad } => {
                xs.avg_pool2d(
                    [*kernel; 2],
                    [*stride; 2],
                    [*padding; 2],
                    *ceil_mode,
                    *count_include_pad,
                    ::core::option::Option::None::<i64>,
                )
            }
        });
    }
    if used.blur {
        variants.push(quote! {
            /// timm's `BlurPool2d`: reflect padding, then the fixed binomial filter
            /// (`[1, 2, 1]` outer product, divided by 16) on each channel, with the stride.
            /// The filter is a constant, not a variable.
            Blur {
                /// Channels (one filter each).
                channels: i64,
                /// Stride.
                stride: i64,
                /// Reflect padding on each side.
                padding: i64,
            }
        });
        arms.push(quote! {
            #ty::Blur { channels, stride, padding } => {
                let taps = ::tch::Tensor::from_slice(&[1.0f64, 2.0, 1.0])
                    .to_kind(xs.kind())
                    .to_device(xs.device());
                let filter = taps
                    .outer(&taps)
                    .g_div_scalar(16.0)
                    .reshape([1, 1, 3, 3])
                    .repeat([*channels, 1, 1, 1]);
                xs.reflection_pad2d([*padding; 4]).conv2d(
                    &filter,
                    ::core::option::Option::None::<::tch::Tensor>,
                    [*stride; 2],
                    [0, 0],
                    [1, 1],
                    *channels,
                )
            }
        });
    }
    if used.se {
        variants.push(quote! {
            /// Squeeze-and-excitation (timm's `SEModule`, module `se`): global average,
            /// `fc1` 1x1 convolution, ReLU, `fc2` 1x1 convolution, sigmoid gate.
            Se {
                /// The squeeze (`se.fc1`).
                fc1: ::tch::nn::Conv2D,
                /// The excitation (`se.fc2`).
                fc2: ::tch::nn::Conv2D,
            }
        });
        arms.push(quote! {
            #ty::Se { fc1, fc2 } => {
                let gate = xs
                    .mean_dim(&[2i64, 3][..], true, ::core::option::Option::None::<::tch::Kind>)
                    .apply(fc1)
                    .relu()
                    .apply(fc2)
                    .sigmoid();
                xs.g_mul(&gate)
            }
        });
    }
    if used.eca {
        variants.push(quote! {
            /// Efficient channel attention (timm's `EcaModule`, module `se`): global
            /// average, a 1-D convolution across channels (`se.conv`), sigmoid gate.
            Eca {
                /// The convolution across channels (no bias).
                conv: ::tch::nn::Conv1D,
            }
        });
        arms.push(quote! {
            #ty::Eca { conv } => {
                let size = xs.size();
                let (n, c) = (size[0], size[1]);
                let gate = xs
                    .mean_dim(&[2i64, 3][..], false, ::core::option::Option::None::<::tch::Kind>)
                    .view([n, 1, c])
                    .apply(conv)
                    .sigmoid()
                    .view([n, c, 1, 1]);
                xs.g_mul(&gate)
            }
        });
    }
    if used.subsample {
        variants.push(quote! {
            /// A parameter-free shortcut: every `stride`-th row and column of the input,
            /// then `extra_channels` zero channels appended (the paper's option A; Keras
            /// V2's `MaxPooling2D(1, stride)` without them).
            Subsample {
                /// The block's stride.
                stride: i64,
                /// Output channels minus input channels.
                extra_channels: i64,
            }
        });
        arms.push(quote! {
            #ty::Subsample { stride, extra_channels } => {
                let ys = if *stride > 1 {
                    xs.slice(2, 0, ::core::option::Option::None::<i64>, *stride)
                        .slice(3, 0, ::core::option::Option::None::<i64>, *stride)
                } else {
                    xs.shallow_clone()
                };
                if *extra_channels > 0 {
                    ys.constant_pad_nd([0, 0, 0, 0, 0, *extra_channels])
                } else {
                    ys
                }
            }
        });
    }
    if used.drop_path {
        variants.push(quote! {
            /// Stochastic depth (timm's `drop_path`): in training, each sample's residual
            /// branch is zeroed with probability `rate` and the others scaled by
            /// `1 / (1 - rate)`; the identity in evaluation.
            DropPath {
                /// The probability of dropping a sample's branch.
                rate: f64,
            }
        });
        arms.push(quote! {
            #ty::DropPath { rate } => {
                if !train {
                    return xs.shallow_clone();
                }
                let keep = 1.0 - *rate;
                let n = xs.size()[0];
                let mask = ::tch::Tensor::empty([n, 1, 1, 1], (xs.kind(), xs.device()))
                    .bernoulli_float_(keep);
                xs.g_mul(&mask.g_div_scalar(keep))
            }
        });
    }
    let train = if used.batch_norm || used.drop_path {
        quote!(train)
    } else {
        quote!(_train)
    };
    quote! {
        /// One layer of the stem or of a block, as resnetc's runtime runs it.
        #[derive(Debug)]
        pub enum #ty {
            #(#variants,)*
        }

        impl ::tch::nn::ModuleT for #ty {
            fn forward_t(&self, xs: &::tch::Tensor, #train: bool) -> ::tch::Tensor {
                match self {
                    #(#arms,)*
                }
            }
        }
    }
}

fn block_struct(names: &Names) -> TokenStream {
    let ty = &names.block;
    let layer = &names.layer;
    quote! {
        /// A residual block (`layer1.0`, ...): `pre` (a pre-activation block's first norm
        /// layer and ReLU, shared by the branch and a projection), the residual `branch`,
        /// the `shortcut` (its layers, none for the identity; `None` for a plain block),
        /// their sum, then a ReLU if `relu_after_add`.
        #[derive(Debug)]
        pub struct #ty {
            /// Layers before the split into branch and shortcut.
            pub pre: ::std::vec::Vec<#layer>,
            /// The residual branch.
            pub branch: ::std::vec::Vec<#layer>,
            /// The shortcut's layers (empty: the identity); `None`: no shortcut, no addition.
            pub shortcut: ::core::option::Option<::std::vec::Vec<#layer>>,
            /// The shortcut reads the output of `pre` rather than the block's input.
            pub shortcut_from_pre: bool,
            /// A ReLU after the addition.
            pub relu_after_add: bool,
        }

        impl ::tch::nn::ModuleT for #ty {
            fn forward_t(&self, xs: &::tch::Tensor, train: bool) -> ::tch::Tensor {
                let pre = forward_layers(&self.pre, xs, train);
                let ys = forward_layers(&self.branch, &pre, train);
                let ys = match &self.shortcut {
                    ::core::option::Option::Some(layers) => {
                        let input = if self.shortcut_from_pre { &pre } else { xs };
                        ys + forward_layers(layers, input, train)
                    }
                    ::core::option::Option::None => ys,
                };
                if self.relu_after_add { ys.relu() } else { ys }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Builder functions: every initialization rule lives here.

fn helpers(compiled: &Compiled, names: &Names, used: Used) -> TokenStream {
    let model = &compiled.model;
    let layer = &names.layer;
    let conv_body = match model.init {
        Init::KaimingNormal => quote! {
            let bound = 1.0 / fan_in.sqrt();
            let config = ::tch::nn::ConvConfig {
                stride,
                padding,
                dilation,
                groups,
                bias,
                ws_init: ::tch::nn::Init::Randn { mean: 0.0, stdev: (2.0 / fan_out).sqrt() },
                bs_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },
                ..::std::default::Default::default()
            };
        },
        Init::XavierUniform => quote! {
            let bound = (6.0 / (fan_in + fan_out)).sqrt();
            let config = ::tch::nn::ConvConfig {
                stride,
                padding,
                dilation,
                groups,
                bias,
                ws_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },
                bs_init: ::tch::nn::Init::Const(0.0),
                ..::std::default::Default::default()
            };
        },
    };
    let conv_doc = doc_lines(match model.init {
        Init::KaimingNormal => {
            "A convolution with torchvision's initialization: Kaiming-normal weights for ReLU\n\
             with fan-out (std = sqrt(2 / fan_out), fan_out = c_out * ksize^2); the bias as\n\
             `nn.Conv2d`'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with\n\
             fan_in = c_in / groups * ksize^2."
        }
        Init::XavierUniform => {
            "A convolution with Xavier/Glorot-uniform weights, U(-a, a) with\n\
             a = sqrt(6 / (fan_in + fan_out)), fan_in = c_in / groups * ksize^2 and\n\
             fan_out = c_out * ksize^2; biases 0."
        }
    });
    let conv = quote! {
        #conv_doc
        #[allow(clippy::too_many_arguments)]
        fn conv2d(
            p: ::tch::nn::Path,
            c_in: i64,
            c_out: i64,
            ksize: i64,
            stride: i64,
            padding: i64,
            dilation: i64,
            groups: i64,
            bias: bool,
        ) -> ::tch::nn::Conv2D {
            let fan_in = (c_in / groups * ksize * ksize) as f64;
            let fan_out = (c_out * ksize * ksize) as f64;
            #conv_body
            ::tch::nn::conv2d(p, c_in, c_out, ksize, config)
        }
    };
    let bn_cfg = model.batch_norm;
    let (eps, momentum) = (float(bn_cfg.eps), float(bn_cfg.momentum));
    let bn = used.batch_norm.then(|| {
        let doc = doc_lines(&format!(
            "`BatchNorm2d` with eps {:?} and momentum {:?} (PyTorch's convention), weight\n`weight` (1, or 0 for the last norm layer of each residual block with\n`zero_init_residual`) and bias 0.",
            bn_cfg.eps, bn_cfg.momentum
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
    });
    let gn = used.group_norm.then(|| {
        let doc = doc_lines(&format!(
            "`GroupNorm` with eps {:?}, weight `weight` (1, or 0 for the last norm layer of each\nresidual block with `zero_init_residual`) and bias 0.",
            bn_cfg.eps
        ));
        quote! {
            #doc
            fn group_norm(p: ::tch::nn::Path, groups: i64, channels: i64, weight: f64) -> ::tch::nn::GroupNorm {
                let config = ::tch::nn::GroupNormConfig {
                    eps: #eps,
                    ws_init: ::tch::nn::Init::Const(weight),
                    bs_init: ::tch::nn::Init::Const(0.0),
                    ..::std::default::Default::default()
                };
                ::tch::nn::group_norm(p, groups, channels, config)
            }
        }
    });
    let se = used.se.then(|| {
        quote! {
            /// Squeeze-and-excitation under `p` (`se`): `fc1` from `channels` to `hidden`
            /// and `fc2` back, 1x1 convolutions with bias.
            fn squeeze_excitation(p: ::tch::nn::Path, channels: i64, hidden: i64) -> #layer {
                #layer::Se {
                    fc1: conv2d(&p / "fc1", channels, hidden, 1, 1, 0, 1, 1, true),
                    fc2: conv2d(&p / "fc2", hidden, channels, 1, 1, 0, 1, 1, true),
                }
            }
        }
    });
    let eca = used.eca.then(|| {
        quote! {
            /// ECA's `Conv1d(1, 1, kernel)` without bias, padding `(kernel - 1) / 2`, with
            /// `nn.Conv1d`'s default weights U(-1/sqrt(kernel), 1/sqrt(kernel)).
            fn conv1d(p: ::tch::nn::Path, kernel: i64) -> ::tch::nn::Conv1D {
                let bound = 1.0 / (kernel as f64).sqrt();
                let config = ::tch::nn::ConvConfig {
                    padding: (kernel - 1) / 2,
                    bias: false,
                    ws_init: ::tch::nn::Init::Uniform { lo: -bound, up: bound },
                    ..::std::default::Default::default()
                };
                ::tch::nn::conv1d(p, 1, 1, kernel, config)
            }
        }
    });
    let linear = linear_helper(model.init);
    quote! {
        /// Runs `layers` in order.
        fn forward_layers(layers: &[#layer], xs: &::tch::Tensor, train: bool) -> ::tch::Tensor {
            layers
                .iter()
                .fold(xs.shallow_clone(), |xs, layer| xs.apply_t(layer, train))
        }

        #conv
        #bn
        #gn
        #se
        #eca
        #linear
    }
}
