//! Lowering: [`SpecAst`] -> [`Model`].
//!
//! This pass applies torchvision's defaults ([`crate::ir::defaults`]), resolves keyword
//! strings into enums (with "did you mean" help), and checks every number against its
//! range and [`Limits`]. It reports every problem it finds, not just the first. It never
//! computes shapes: that is [`crate::valid`]'s job.
//!
//! Beside the [`Model`] it builds a [`SpanTable`] recording where each setting was
//! written, so later passes can point diagnostics at the spec line.

use crate::ast::{self, BiasAst, Field, SpecAst, StemPoolAst};
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{
    defaults, AntiAlias, Attention, BatchNorm, BlockKind, Conv, Head, HeadPool, Init, Limits,
    Model, Norm, Pool, PoolKind, Projection, Shape, ShortcutOption, Stage, Stem, StemPool,
    StrideAt, StrideOn,
};
use crate::span::{Span, Spanned, Syntax};
use std::collections::BTreeMap;

/// Where each IR setting was written, keyed by spec path (`stages[1].filters[2]`).
///
/// [`SpanTable::get`] falls back to the closest enclosing path that has a span, so a
/// setting that was left to its default still points at its stage or section.
#[derive(Clone, Debug, Default)]
pub struct SpanTable {
    /// The whole document (first line), the last resort.
    pub doc: Span,
    /// The syntax the spec was written in, so help lines show fixes in that syntax.
    pub syntax: Syntax,
    pub map: BTreeMap<String, Span>,
}

impl SpanTable {
    /// `yaml` or `dsl`, whichever is how the user writes this spec.
    pub fn example<'a>(&self, yaml: &'a str, dsl: &'a str) -> &'a str {
        match self.syntax {
            Syntax::Yaml => yaml,
            Syntax::Dsl => dsl,
        }
    }

    /// The span recorded for `path`, else for its closest ancestor, else the document.
    pub fn get(&self, path: &str) -> Span {
        let mut p = path;
        loop {
            if let Some(span) = self.map.get(p) {
                return *span;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.doc,
            }
        }
    }

    /// Whether `path` itself (not an ancestor) was written in the spec.
    pub fn has(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }

    fn record<T>(&mut self, path: &str, field: &Field<T>) {
        if let Some(f) = field {
            self.map.insert(path.to_string(), f.span);
        }
    }
}

/// Lowers a parsed spec. On success returns the model, its spans and any warnings; on
/// failure every error found.
pub fn lower(
    ast: &SpecAst,
    syntax: Syntax,
) -> Result<(Model, SpanTable, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut cx = Lowerer {
        spans: SpanTable {
            doc: ast.span,
            syntax,
            map: BTreeMap::new(),
        },
        diags: Vec::new(),
    };
    let model = cx.model(ast);
    // A bad setting under `defaults` is seen by every stage that uses it: report it once.
    let mut seen = std::collections::HashSet::new();
    cx.diags
        .retain(|d| seen.insert((d.code, d.primary_span(), d.message.clone())));
    if crate::diag::has_errors(&cx.diags) {
        Err(cx.diags)
    } else {
        Ok((model, cx.spans, cx.diags))
    }
}

struct Lowerer {
    spans: SpanTable,
    diags: Vec<Diagnostic>,
}

/// Block options after merging a stage's own with the model-wide `defaults`.
struct Options<'a> {
    block: Option<&'a Spanned<String>>,
    stride_on: Option<&'a Spanned<String>>,
    shortcut: Option<&'a Spanned<String>>,
    projection: Option<&'a Spanned<ast::ProjectionAst>>,
    groups: Option<&'a Spanned<i64>>,
    width_per_group: Option<&'a Spanned<i64>>,
    bias: Option<&'a Spanned<BiasAst>>,
    attention: Option<&'a Spanned<ast::AttentionAst>>,
    anti_alias: Option<&'a Spanned<String>>,
    stride_at: Option<&'a Spanned<String>>,
    dilation: Option<&'a Spanned<i64>>,
}

impl Lowerer {
    fn model(&mut self, ast: &SpecAst) -> Model {
        for unknown in &ast.unknown {
            self.unknown_key(unknown);
        }

        let name = match &ast.name {
            Some(n) if n.value.trim().is_empty() => {
                self.diags.push(
                    Diagnostic::error("E-range", "the model name is empty")
                        .with_primary(n.span, "empty name")
                        .with_help(format!(
                            "name the model, e.g. `{}`",
                            self.spans.example("name: resnet50", "model resnet50")
                        )),
                );
                String::new()
            }
            Some(n) => {
                self.spans.map.insert("name".into(), n.span);
                n.value.clone()
            }
            None => {
                let example = format!(
                    "`{}`",
                    self.spans.example("name: resnet50", "model resnet50")
                );
                self.missing(ast.span, "name", "the spec", &example);
                String::new()
            }
        };

        let input = self.input(ast.input.as_ref());
        let stem = self.stem(ast.stem.as_ref());
        let stages = self.stages(ast);
        let last_block = stages.last().map(|s| s.block);
        let features = self.features(ast, &stages);
        let head = if ast.features.is_some() { None } else { Some(self.head(ast.head.as_ref(), last_block)) };

        let init = match &ast.init {
            Some(i) => {
                self.spans.map.insert("init".into(), i.span);
                self.keyword(i, "init", Init::KEYWORDS, |s| match s {
                    "kaiming_normal" => Some(Init::KaimingNormal),
                    "xavier_uniform" | "glorot_uniform" => Some(Init::XavierUniform),
                    _ => None,
                })
                .unwrap_or(defaults::INIT)
            }
            None => defaults::INIT,
        };
        self.spans
            .record("zero_init_residual", &ast.zero_init_residual);
        if let Some(z) = ast.zero_init_residual.as_ref().filter(|z| z.value) {
            if !stages.is_empty() && stages.iter().all(|s| !s.block.has_shortcut()) {
                self.diags.push(
                    Diagnostic::error("E-no-effect", "`zero_init_residual` has no effect: no stage has residual blocks")
                        .with_primary(z.span, "every block is plain, without a shortcut")
                        .with_note("zero_init_residual starts the last BN of each residual block at 0, so the block begins as its shortcut")
                        .with_help(format!(
                            "remove `{}`, or use a residual block kind (`basic`, `bottleneck`)",
                            self.spans.example("zero_init_residual: true", "zero_init_residual")
                        )),
                );
            }
        }
        let zero_init_residual = ast
            .zero_init_residual
            .as_ref()
            .map_or(defaults::ZERO_INIT_RESIDUAL, |z| z.value);
        let batch_norm = self.batch_norm(ast.batch_norm.as_ref());
        let norm = self.norm(ast.norm.as_ref());
        let drop_path_rate = match &ast.drop_path_rate {
            Some(d) => {
                self.spans.map.insert("drop_path_rate".into(), d.span);
                if (0.0..1.0).contains(&d.value) {
                    d.value
                } else {
                    self.diags.push(
                        Diagnostic::error(
                            "E-range",
                            format!(
                                "drop_path_rate {} is not a probability below 1",
                                decimal(d.value)
                            ),
                        )
                        .with_primary(d.span, "must be at least 0 and below 1")
                        .with_note("the rate rises linearly from 0 at the first block to this value at the last")
                        .with_help(format!(
                            "use e.g. `{}` (timm's usual rates are 0.05 to 0.2), or 0 for none",
                            self.spans.example("drop_path_rate: 0.05", "drop_path 0.05")
                        )),
                    );
                    0.0
                }
            }
            None => 0.0,
        };

        Model {
            name,
            input,
            stem,
            stages,
            head,
            features,
            init,
            zero_init_residual,
            batch_norm,
            norm,
            drop_path_rate,
        }
    }

    /// `features: [conv4_x, conv5_x]`: a backbone returning those stages' outputs, in
    /// stage order; it has no head.
    fn features(&mut self, ast: &SpecAst, stages: &[Stage]) -> Vec<usize> {
        let Some(f) = &ast.features else { return Vec::new() };
        self.spans.map.insert("features".into(), f.span);
        if let Some(h) = &ast.head {
            self.diags.push(
                Diagnostic::error("E-conflict", "a backbone (`features`) has no head")
                    .with_primary(h.span, "a head here")
                    .with_secondary(f.span, "`features` makes the network return these stages' feature maps")
                    .with_help("remove the head to return feature maps, or remove `features` for a classifier"),
            );
        }
        if f.value.is_empty() {
            self.diags.push(
                Diagnostic::error("E-range", "`features` names no stage")
                    .with_primary(f.span, "empty list")
                    .with_help(format!(
                        "name the stages whose outputs the backbone returns, e.g. `{}`",
                        self.spans.example("features: [conv4_x, conv5_x]", "features conv4_x, conv5_x")
                    )),
            );
            return Vec::new();
        }
        let mut out: Vec<usize> = Vec::new();
        let mut unknown = false;
        for (i, name) in f.value.iter().enumerate() {
            self.spans.map.insert(format!("features[{i}]"), name.span);
            match stages.iter().position(|s| s.name == name.value) {
                Some(si) if out.contains(&si) => self.diags.push(
                    Diagnostic::error("E-duplicate", format!("stage `{}` is listed twice in `features`", crate::diag::escape(&name.value)))
                        .with_primary(name.span, "listed again here")
                        .with_help("list each stage once"),
                ),
                Some(si) => out.push(si),
                None => {
                    unknown = true;
                    let mut d = Diagnostic::error("E-unknown-stage", format!("`features` names no stage `{}`", crate::diag::escape(&name.value)))
                        .with_primary(name.span, "not a stage of this network");
                    if let Some(sug) = did_you_mean(&name.value, stages.iter().map(|s| s.name.as_str())) {
                        d = d.with_help(format!("did you mean `{sug}`?"));
                    }
                    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
                    self.diags.push(d.with_note(format!("the stages are {}", names.join(", "))));
                }
            }
        }
        out.sort_unstable();
        // With a misspelt name the last stage meant is unknown: no guess about the rest.
        if let (false, Some(&last), Some(ast_stages)) = (unknown, out.last(), &ast.stages) {
            if let Some(extra) = stages.get(last + 1) {
                let at = ast_stages.value.get(last + 1).map_or(f.span, |s| s.span);
                self.diags.push(
                    Diagnostic::error(
                        "E-no-effect",
                        format!("stage `{}` comes after the backbone's last feature map", crate::diag::escape(&extra.name)),
                    )
                    .with_primary(at, "its output is never returned")
                    .with_secondary(f.span, "the feature maps returned")
                    .with_help("list it in `features`, or remove it (and the stages after it) from the backbone"),
                );
            }
        }
        out
    }

    /// `norm: batch` / `norm: {kind: group, groups: G}`.
    fn norm(&mut self, norm: Option<&Spanned<ast::NormAst>>) -> Norm {
        let Some(norm) = norm else {
            return Norm::Batch;
        };
        self.spans.map.insert("norm".into(), norm.span);
        let n = &norm.value;
        let kind = match &n.kind {
            Some(k) => self.keyword(k, "norm kind", Norm::KEYWORDS, |s| match s {
                "batch" | "batch_norm" | "batchnorm" | "bn" => Some(false),
                "group" | "group_norm" | "groupnorm" | "gn" => Some(true),
                _ => None,
            }),
            None => {
                let example = self
                    .spans
                    .example("`kind: group`", "the kind after `norm`: `norm group 32`");
                self.missing(norm.span, "kind", "`norm`", example);
                None
            }
        };
        let groups = self.int(&n.groups, "norm.groups", "groups", 1, Limits::MAX_CHANNELS);
        match (kind, groups) {
            (Some(true), Some(g)) => Norm::Group { groups: g },
            (Some(true), None) => {
                if n.groups.is_none() {
                    let example = self
                        .spans
                        .example("`groups: 32` to `norm`", "the groups: `norm group 32`");
                    self.missing(norm.span, "groups", "GroupNorm", example);
                }
                Norm::Batch
            }
            (Some(false), _) => {
                if let Some(g) = &n.groups {
                    self.diags.push(
                        Diagnostic::error("E-no-effect", "BatchNorm has no groups, so `groups` has no effect")
                            .with_primary(g.span, "has no effect here")
                            .with_help(format!(
                                "remove `groups`, or use GroupNorm: `{}`",
                                self.spans
                                    .example("norm: {kind: group, groups: 32}", "norm group 32")
                            )),
                    );
                }
                Norm::Batch
            }
            (None, _) => Norm::Batch,
        }
    }

    fn input(&mut self, input: Option<&Spanned<ast::InputAst>>) -> Shape {
        let Some(input) = input else {
            return defaults::INPUT;
        };
        self.spans.map.insert("input".into(), input.span);
        let i = &input.value;
        let c = self.required_int(
            &i.channels,
            "input.channels",
            input.span,
            "`input`",
            "channels",
            1,
            Limits::MAX_CHANNELS,
        );
        let h = self.required_int(
            &i.height,
            "input.height",
            input.span,
            "`input`",
            "height",
            1,
            Limits::MAX_SIDE,
        );
        let w = self.required_int(
            &i.width,
            "input.width",
            input.span,
            "`input`",
            "width",
            1,
            Limits::MAX_SIDE,
        );
        let (c, h, w) = (c.unwrap_or(1), h.unwrap_or(1), w.unwrap_or(1));
        if h * w > Limits::MAX_PIXELS {
            self.diags.push(
                Diagnostic::error(
                    "E-limit",
                    format!("input of {h}x{w} = {} pixels is too large", h * w),
                )
                .with_primary(
                    input.span,
                    format!("more than {} pixels per channel", Limits::MAX_PIXELS),
                )
                .with_note(format!(
                    "resnetc accepts at most {} pixels ({}x{}) per image",
                    Limits::MAX_PIXELS,
                    1u64 << 13,
                    1u64 << 13
                )),
            );
        }
        Shape::new(c, h, w)
    }

    fn stem(&mut self, stem: Option<&Spanned<ast::StemAst>>) -> Stem {
        let default = defaults::stem();
        let Some(stem) = stem else { return default };
        self.spans.map.insert("stem".into(), stem.span);
        let s = &stem.value;
        let convs = match (&s.conv, &s.convs) {
            (Some(one), Some(several)) => {
                self.diags.push(
                    Diagnostic::error("E-conflict", "the stem has both `conv` and `convs`")
                        .with_primary(several.span, "several convolutions here")
                        .with_secondary(one.span, "one convolution here")
                        .with_note("`convs` lists every convolution of a deep stem, the first included")
                        .with_help("keep one: `conv` for a single convolution, or `convs` for several"),
                );
                vec![default.convs[0]]
            }
            (Some(c), None) => {
                self.spans.map.insert("stem.conv".into(), c.span);
                vec![self.conv(&c.value, "stem.conv", &default.convs[0])]
            }
            (None, Some(list)) => self.stem_convs(list, &default.convs[0]),
            (None, None) => default.convs.clone(),
        };
        self.spans.record("stem.bn", &s.bn);
        self.spans.record("stem.relu", &s.relu);
        let out_channels = convs.last().map_or(defaults::STEM_FILTERS, |c| c.filters);
        let pool = match &s.pool {
            None => default.pool,
            Some(Spanned {
                value: StemPoolAst::None,
                span,
            }) => {
                self.spans.map.insert("stem.pool".into(), *span);
                StemPool::None
            }
            Some(Spanned {
                value: StemPoolAst::Pool(p),
                span,
            }) => {
                self.spans.map.insert("stem.pool".into(), *span);
                self.stem_pool(p, out_channels)
            }
        };
        Stem {
            convs,
            bn: s.bn.as_ref().map_or(default.bn, |b| b.value),
            relu: s.relu.as_ref().map_or(default.relu, |b| b.value),
            pool,
        }
    }

    /// `convs: [...]`: timm's deep stem. Each convolution records its span at
    /// `stem.convs[i]` (and a single one at `stem.conv` too, the name the checker uses for
    /// a stem of one convolution).
    fn stem_convs(&mut self, list: &Spanned<Vec<Spanned<ast::ConvAst>>>, default: &Conv) -> Vec<Conv> {
        self.spans.map.insert("stem.convs".into(), list.span);
        const MAX_STEM_CONVS: usize = 16;
        if list.value.is_empty() {
            self.diags.push(
                Diagnostic::error("E-missing", "the stem's `convs` is empty")
                    .with_primary(list.span, "no convolution")
                    .with_help(format!(
                        "give at least one convolution, e.g. `{}`",
                        self.spans.example(
                            "convs: [{filters: 32, kernel: 3, stride: 2, padding: 1}]",
                            "conv 3x3/2 pad 1 -> 32"
                        )
                    )),
            );
            return vec![*default];
        }
        if list.value.len() > MAX_STEM_CONVS {
            self.diags.push(
                Diagnostic::error(
                    "E-limit",
                    format!("{} stem convolutions is too many", list.value.len()),
                )
                .with_primary(list.span, format!("at most {MAX_STEM_CONVS}")),
            );
            return vec![*default];
        }
        let single = list.value.len() == 1;
        list.value
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let path = if single {
                    "stem.conv".to_string()
                } else {
                    format!("stem.convs[{i}]")
                };
                self.spans.map.insert(path.clone(), c.span);
                self.spans.map.insert(format!("stem.convs[{i}]"), c.span);
                self.conv(&c.value, &path, default)
            })
            .collect()
    }

    /// The stem's pooling: `max`/`avg` (optionally anti-aliased) or `conv` (ResNet-RS's
    /// strided convolution + norm + ReLU in place of the pooling, whose filters default
    /// to the stem's output channels).
    fn stem_pool(&mut self, p: &ast::PoolAst, channels: u64) -> StemPool {
        let path = "stem.pool";
        const KINDS: &[&str] = &["max", "avg", "conv"];
        let is_conv = match &p.kind {
            Some(k) => {
                self.spans.map.insert(format!("{path}.kind"), k.span);
                self.keyword(k, "pooling kind", KINDS, |s| match s {
                    "max" | "maxpool" => Some(false),
                    "avg" | "avgpool" => Some(false),
                    "conv" => Some(true),
                    _ => None,
                })
                .unwrap_or(false)
            }
            None => false,
        };
        let anti_alias = p.anti_alias.as_ref().and_then(|a| {
            self.spans.map.insert(format!("{path}.anti_alias"), a.span);
            self.keyword(a, "anti-aliasing", AntiAlias::KEYWORDS, anti_alias)
        });
        if is_conv {
            if let Some(c) = &p.ceil_mode {
                self.diags.push(
                    Diagnostic::error("E-no-effect", "`ceil_mode` has no effect on a stem pooling convolution")
                        .with_primary(c.span, "has no effect here")
                        .with_help("remove `ceil_mode`: it rounds a pooling's output size, and kind `conv` is a convolution"),
                );
            }
            let conv = self.conv(
                &ast::ConvAst {
                    filters: p.filters.clone(),
                    kernel: p.kernel.clone(),
                    stride: p.stride.clone(),
                    padding: p.padding.clone(),
                    bias: p.bias.clone(),
                },
                path,
                &Conv {
                    filters: channels,
                    kernel: defaults::POOL_KERNEL,
                    stride: defaults::POOL_STRIDE,
                    padding: defaults::padding(defaults::POOL_KERNEL),
                    bias: false,
                },
            );
            return StemPool::Conv { conv, anti_alias };
        }
        for (key, span) in [
            ("filters", p.filters.as_ref().map(|f| f.span)),
            ("bias", p.bias.as_ref().map(|b| b.span)),
        ] {
            if let Some(span) = span {
                self.diags.push(
                    Diagnostic::error("E-no-effect", format!("a pooling has no `{key}`"))
                        .with_primary(span, "has no effect here")
                        .with_help(format!(
                            "remove `{key}`, or use `{}` for ResNet-RS's strided convolution in place of the pooling",
                            self.spans.example("kind: conv", "pool conv")
                        )),
                );
            }
        }
        StemPool::Pool(Pool {
            anti_alias,
            ..self.pool(p, path)
        })
    }

    fn conv(&mut self, c: &ast::ConvAst, path: &str, default: &Conv) -> Conv {
        let filters = self.int(
            &c.filters,
            &format!("{path}.filters"),
            "filters",
            1,
            Limits::MAX_CHANNELS,
        );
        let kernel = self.int(
            &c.kernel,
            &format!("{path}.kernel"),
            "kernel",
            1,
            Limits::MAX_KERNEL,
        );
        let stride = self.int(
            &c.stride,
            &format!("{path}.stride"),
            "stride",
            1,
            Limits::MAX_STRIDE,
        );
        let padding = self.int(
            &c.padding,
            &format!("{path}.padding"),
            "padding",
            0,
            Limits::MAX_PADDING,
        );
        self.spans.record(&format!("{path}.bias"), &c.bias);
        let kernel = kernel.unwrap_or(default.kernel);
        Conv {
            filters: filters.unwrap_or(default.filters),
            kernel,
            stride: stride.unwrap_or(default.stride),
            padding: padding.unwrap_or_else(|| defaults::padding(kernel)),
            bias: c.bias.as_ref().map_or(default.bias, |b| b.value),
        }
    }

    /// A max or average pooling (its kind already checked by [`Self::stem_pool`]).
    fn pool(&mut self, p: &ast::PoolAst, path: &str) -> Pool {
        let kind = match p.kind.as_ref().map(|k| k.value.trim()) {
            Some("avg" | "avgpool") => PoolKind::Avg,
            _ => PoolKind::Max,
        };
        let kernel = self.int(
            &p.kernel,
            &format!("{path}.kernel"),
            "kernel",
            1,
            Limits::MAX_KERNEL,
        );
        let stride = self.int(
            &p.stride,
            &format!("{path}.stride"),
            "stride",
            1,
            Limits::MAX_STRIDE,
        );
        let padding = self.int(
            &p.padding,
            &format!("{path}.padding"),
            "padding",
            0,
            Limits::MAX_PADDING,
        );
        self.spans
            .record(&format!("{path}.ceil_mode"), &p.ceil_mode);
        let kernel = kernel.unwrap_or(defaults::POOL_KERNEL);
        Pool {
            kind,
            kernel,
            stride: stride.unwrap_or(defaults::POOL_STRIDE),
            padding: padding.unwrap_or_else(|| defaults::padding(kernel)),
            ceil_mode: p.ceil_mode.as_ref().is_some_and(|c| c.value),
            anti_alias: None,
        }
    }

    fn stages(&mut self, ast: &SpecAst) -> Vec<Stage> {
        let Some(stages) = &ast.stages else {
            let example = format!(
                "at least one stage, e.g. `{}`",
                self.spans.example(
                    "stages: [{block: basic, repeat: 2, filters: [64, 64]}]",
                    "conv2_x: basic [64, 64] x2"
                )
            );
            self.missing(ast.span, "stages", "the spec", &example);
            return Vec::new();
        };
        self.spans.map.insert("stages".into(), stages.span);
        if stages.value.is_empty() {
            self.diags.push(
                Diagnostic::error("E-missing", "the spec has no stages")
                    .with_primary(stages.span, "empty list of stages")
                    .with_help(format!(
                        "add at least one stage, e.g. `{}`",
                        self.spans.example(
                            "- {block: basic, repeat: 2, filters: [64, 64]}",
                            "conv2_x: basic [64, 64] x2"
                        )
                    )),
            );
            return Vec::new();
        }
        if stages.value.len() > Limits::MAX_STAGES {
            self.diags.push(
                Diagnostic::error(
                    "E-limit",
                    format!("{} stages is too many", stages.value.len()),
                )
                .with_primary(
                    stages.span,
                    format!("at most {} stages", Limits::MAX_STAGES),
                ),
            );
            return Vec::new();
        }
        let model_defaults = ast.defaults.as_ref();
        if let Some(d) = model_defaults {
            self.spans.map.insert("defaults".into(), d.span);
            self.check_default_keywords(&d.value);
        }
        let mut out = Vec::new();
        let mut names: BTreeMap<String, Span> = BTreeMap::new();
        let mut total_blocks: u64 = 0;
        for (index, stage) in stages.value.iter().enumerate() {
            let lowered = self.stage(index, stage, model_defaults.map(|d| &d.value));
            if let Some(first) = names.get(&lowered.name) {
                let span = stage.value.name.as_ref().map_or(stage.span, |n| n.span);
                self.diags.push(
                    Diagnostic::error(
                        "E-duplicate",
                        format!("two stages are named `{}`", lowered.name),
                    )
                    .with_primary(span, "second stage with this name")
                    .with_secondary(*first, "first defined here")
                    .with_help(
                        "give each stage its own name (the paper's are conv2_x, conv3_x, ...)",
                    ),
                );
            } else {
                names.insert(
                    lowered.name.clone(),
                    stage.value.name.as_ref().map_or(stage.span, |n| n.span),
                );
            }
            total_blocks = total_blocks.saturating_add(lowered.repeat);
            out.push(lowered);
        }
        if let Some(d) = model_defaults {
            self.unused_defaults(&d.value, stages, &out);
        }
        if total_blocks > Limits::MAX_BLOCKS {
            self.diags.push(
                Diagnostic::error(
                    "E-limit",
                    format!("{total_blocks} residual blocks in total is too many"),
                )
                .with_primary(
                    stages.span,
                    format!("at most {} blocks", Limits::MAX_BLOCKS),
                ),
            );
        }
        out
    }

    fn stage(
        &mut self,
        index: usize,
        stage: &Spanned<ast::StageAst>,
        model: Option<&ast::BlockOptionsAst>,
    ) -> Stage {
        let path = format!("stages[{index}]");
        self.spans.map.insert(path.clone(), stage.span);
        let s = &stage.value;
        let name = match &s.name {
            Some(n) if n.value.trim().is_empty() => {
                let example = self
                    .spans
                    .example("stage: conv2_x", "conv2_x: basic [64, 64] x2");
                self.diags.push(
                    Diagnostic::error("E-range", "the stage name is empty")
                        .with_primary(n.span, if n.value.is_empty() { "empty name" } else { "only blanks" })
                        .with_help(format!(
                            "name the stage, e.g. `{example}`, or leave the name out for the paper's `{}`",
                            defaults::stage_name(index)
                        )),
                );
                // Go on with the default name, so no duplicate-name error follows from it.
                defaults::stage_name(index)
            }
            Some(n) => {
                self.spans.map.insert(format!("{path}.name"), n.span);
                n.value.clone()
            }
            None => defaults::stage_name(index),
        };
        let what = format!("stage `{name}`");

        let opts = self.merge_options(&path, &s.options, model);
        let block = match opts.block {
            Some(b) => self
                .keyword(b, "block kind", BlockKind::KEYWORDS, block_kind)
                // Unresolved: guess from the filters so no arity error cascades from it.
                .unwrap_or_else(|| guess_block(s.filters.as_ref())),
            None => {
                let example = self.spans.example(
                    "`block: bottleneck` on the stage, or once for all stages under `defaults`",
                    "the block kind on the stage line (`conv2_x: bottleneck [64, 64, 256] x3`), or once in `defaults bottleneck`",
                );
                self.missing(stage.span, "block", &what, example);
                guess_block(s.filters.as_ref())
            }
        };

        let repeat = self.required_int(
            &s.repeat,
            &format!("{path}.repeat"),
            stage.span,
            &what,
            "repeat",
            1,
            Limits::MAX_REPEAT,
        );
        let stride = self.int(
            &s.stride,
            &format!("{path}.stride"),
            "stride",
            1,
            Limits::MAX_STRIDE,
        );

        let filters = match &s.filters {
            None => {
                let example = if block.arity() == 3 {
                    "[64, 64, 256]"
                } else {
                    "[64, 64]"
                };
                let example = match self.spans.syntax {
                    Syntax::Yaml => format!("`filters: {example}`"),
                    Syntax::Dsl => format!(
                        "the filters after the block kind: `{} {example} x2`",
                        block.keyword()
                    ),
                };
                self.missing(stage.span, "filters", &what, &example);
                vec![1; block.arity()]
            }
            Some(f) => {
                self.spans.map.insert(format!("{path}.filters"), f.span);
                let mut values = Vec::new();
                for (i, v) in f.value.iter().enumerate() {
                    let p = format!("{path}.filters[{i}]");
                    self.spans.map.insert(p.clone(), v.span);
                    values.push(
                        self.check_range(v, "filters", 1, Limits::MAX_CHANNELS)
                            .unwrap_or(1),
                    );
                }
                if values.len() != block.arity() {
                    self.arity_error(f, block, opts.block.map(|b| b.span), &name);
                    values.resize(block.arity(), 1);
                }
                values
            }
        };

        let stride_on = match opts.stride_on {
            Some(k) => self
                .keyword(k, "stride placement", StrideOn::KEYWORDS, stride_on)
                .unwrap_or(defaults::STRIDE_ON),
            None => defaults::STRIDE_ON,
        };
        let shortcut = match opts.shortcut {
            Some(k) => self
                .keyword(k, "shortcut option", ShortcutOption::KEYWORDS, shortcut)
                .unwrap_or(defaults::SHORTCUT),
            None => defaults::SHORTCUT,
        };
        let default_projection = defaults::projection(block);
        let projection = match opts.projection {
            Some(p) => Projection {
                bn: p
                    .value
                    .bn
                    .as_ref()
                    .map_or(default_projection.bn, |b| b.value),
                bias: p
                    .value
                    .bias
                    .as_ref()
                    .map_or(default_projection.bias, |b| b.value),
                kernel: self
                    .int(
                        &p.value.kernel,
                        &format!("{path}.projection.kernel"),
                        "kernel",
                        1,
                        Limits::MAX_KERNEL,
                    )
                    .unwrap_or(default_projection.kernel),
                avg_pool: p.value.pool.as_ref().is_some_and(|k| {
                    self.keyword(k, "projection pooling", &["avg", "none"], |s| match s {
                        "avg" | "avgpool" => Some(true),
                        "none" => Some(false),
                        _ => None,
                    })
                    .unwrap_or(false)
                }),
            },
            None => default_projection,
        };
        // A setting the stage's blocks have no use for is an error where the stage sets it,
        // and otherwise (from `defaults`) stays at torchvision's default in the IR, so that
        // the printers never write it on such a stage.
        for setting in Setting::ALL {
            let Some(span) = setting.own(&s.options) else {
                continue;
            };
            if !setting.applies(block, shortcut) {
                let d = Diagnostic::error(
                    "E-no-effect",
                    format!(
                        "{what}: {}, so `{}` has no effect",
                        setting.why_not(block, shortcut),
                        setting.key()
                    ),
                )
                .with_primary(span, "has no effect here")
                .with_help(setting.fix(block, shortcut));
                let cause = match (setting, opts.shortcut) {
                    (Setting::Projection, Some(k)) if block.has_shortcut() => Some((
                        k.span,
                        format!("shortcut `{}` set here", shortcut.keyword()),
                    )),
                    _ => opts
                        .block
                        .map(|b| (b.span, format!("block kind `{}` set here", block.keyword()))),
                };
                self.diags.push(match cause {
                    Some((span, label)) => d.with_secondary(span, label),
                    None => d,
                });
            }
        }
        let stride_on = if Setting::StrideOn.applies(block, shortcut) {
            stride_on
        } else {
            defaults::STRIDE_ON
        };
        let projection = if Setting::Projection.applies(block, shortcut) {
            projection
        } else {
            default_projection
        };
        let shortcut = if Setting::Shortcut.applies(block, shortcut) {
            shortcut
        } else {
            defaults::SHORTCUT
        };
        let groups = match opts.groups {
            Some(g) => self
                .check_range(g, "groups", 1, Limits::MAX_CHANNELS)
                .unwrap_or(1),
            None => defaults::GROUPS,
        };
        if let Some(wpg) = opts.width_per_group {
            if let Some(w) = self.check_range(wpg, "width_per_group", 1, Limits::MAX_CHANNELS) {
                let fspan = s.filters.as_ref().map_or(stage.span, |f| f.span);
                self.check_width_per_group(
                    &what,
                    block,
                    &filters,
                    groups,
                    Spanned::new(w, wpg.span),
                    fspan,
                );
            }
        }
        let bias = match opts.bias {
            None => vec![defaults::BIAS; block.arity()],
            Some(Spanned {
                value: BiasAst::All(b),
                ..
            }) => vec![*b; block.arity()],
            Some(Spanned {
                value: BiasAst::PerConv(list),
                span,
            }) => {
                for (i, b) in list.iter().enumerate() {
                    self.spans.map.insert(format!("{path}.bias[{i}]"), b.span);
                }
                let mut values: Vec<bool> = list.iter().map(|b| b.value).collect();
                if values.len() != block.arity() {
                    self.bias_arity_error(*span, values.len(), block, opts.block.map(|b| b.span), &name);
                    values.resize(block.arity(), defaults::BIAS);
                }
                values
            }
        };
        let attention = opts.attention.and_then(|a| self.attention(a));
        let anti_alias = opts.anti_alias.and_then(|a| {
            self.keyword(a, "anti-aliasing", AntiAlias::KEYWORDS, anti_alias)
        });
        let stride_at = opts
            .stride_at
            .and_then(|k| self.keyword(k, "stride placement", StrideAt::KEYWORDS, stride_at))
            .unwrap_or(StrideAt::First);
        let stride = stride.unwrap_or_else(|| defaults::stage_stride(index));
        let repeat = repeat.unwrap_or(1);
        if let (StrideAt::Last, Some(at)) = (stride_at, opts.stride_at) {
            if repeat == 1 && stride > 1 {
                let mut d = Diagnostic::error(
                    "E-stride-at",
                    format!(
                        "{what}: `{}` on a stage of one block",
                        self.spans.example("stride_at: last", "stride_at last")
                    ),
                )
                .with_primary(at.span, "the last block is the first one here")
                .with_note(format!(
                    "with one block, the block that strides (by {stride}) is also the first, which changes the channels and projects: Keras's V2 puts the stride in a later block, whose identity shortcut is subsampled"
                ))
                .with_help(format!(
                    "use `{}` on this stage, or give it more blocks",
                    self.spans.example("stride_at: first", "stride_at first")
                ));
                if let Some(r) = &s.repeat {
                    d = d.with_secondary(r.span, "one block");
                }
                self.diags.push(d);
            }
        }
        let dilation = match opts.dilation {
            Some(d) => self
                .check_range(d, "dilation", 1, Limits::MAX_PADDING)
                .unwrap_or(1),
            None => 1,
        };
        if let Some(d) = opts.dilation.filter(|_| dilation > 1 && stride > 1) {
            let mut diag = Diagnostic::error(
                "E-dilation",
                format!("{what}: stride {stride} and dilation {dilation} in one stage"),
            )
            .with_primary(d.span, format!("dilation {dilation}"))
            .with_note("a dilated stage keeps the size: its blocks run at stride 1")
            .with_help(format!(
                "set the stage's stride to 1 and its dilation to {}, as torchvision's replace_stride_with_dilation does (it sets the stride to 1 and multiplies the dilation by it)",
                dilation.saturating_mul(stride)
            ));
            if let Some(st) = &s.stride {
                diag = diag.with_secondary(st.span, format!("stride {stride}"));
            }
            self.diags.push(diag);
        }

        Stage {
            name,
            block,
            repeat,
            filters,
            stride,
            stride_on,
            shortcut,
            projection,
            groups,
            bias,
            attention,
            anti_alias,
            dilation,
            stride_at,
        }
    }

    /// Merges a stage's options over the model-wide ones, recording for every setting
    /// the span it came from (the stage's own key, or the `defaults` key).
    fn merge_options<'a>(
        &mut self,
        path: &str,
        stage: &'a ast::BlockOptionsAst,
        model: Option<&'a ast::BlockOptionsAst>,
    ) -> Options<'a> {
        fn pick<'a, T>(
            spans: &mut SpanTable,
            path: String,
            own: &'a Field<T>,
            model: Option<&'a Field<T>>,
        ) -> Option<&'a Spanned<T>> {
            let chosen = own.as_ref().or_else(|| model.and_then(|m| m.as_ref()));
            if let Some(c) = chosen {
                spans.map.insert(path, c.span);
            }
            chosen
        }
        let s = &mut self.spans;
        Options {
            block: pick(
                s,
                format!("{path}.block"),
                &stage.block,
                model.map(|m| &m.block),
            ),
            stride_on: pick(
                s,
                format!("{path}.stride_on"),
                &stage.stride_on,
                model.map(|m| &m.stride_on),
            ),
            shortcut: pick(
                s,
                format!("{path}.shortcut"),
                &stage.shortcut,
                model.map(|m| &m.shortcut),
            ),
            projection: pick(
                s,
                format!("{path}.projection"),
                &stage.projection,
                model.map(|m| &m.projection),
            ),
            groups: pick(
                s,
                format!("{path}.groups"),
                &stage.groups,
                model.map(|m| &m.groups),
            ),
            width_per_group: pick(
                s,
                format!("{path}.width_per_group"),
                &stage.width_per_group,
                model.map(|m| &m.width_per_group),
            ),
            bias: pick(
                s,
                format!("{path}.bias"),
                &stage.bias,
                model.map(|m| &m.bias),
            ),
            attention: pick(
                s,
                format!("{path}.attention"),
                &stage.attention,
                model.map(|m| &m.attention),
            ),
            anti_alias: pick(
                s,
                format!("{path}.anti_alias"),
                &stage.anti_alias,
                model.map(|m| &m.anti_alias),
            ),
            stride_at: pick(
                s,
                format!("{path}.stride_at"),
                &stage.stride_at,
                model.map(|m| &m.stride_at),
            ),
            dilation: pick(
                s,
                format!("{path}.dilation"),
                &stage.dilation,
                model.map(|m| &m.dilation),
            ),
        }
    }

    /// Resolves the keywords under `defaults` once, so a misspelling there is reported even
    /// when every stage overrides it. (Duplicates from stages that use it are dropped.)
    fn check_default_keywords(&mut self, d: &ast::BlockOptionsAst) {
        if let Some(b) = &d.block {
            self.keyword(b, "block kind", BlockKind::KEYWORDS, block_kind);
        }
        if let Some(k) = &d.stride_on {
            self.keyword(k, "stride placement", StrideOn::KEYWORDS, stride_on);
        }
        if let Some(k) = &d.shortcut {
            self.keyword(k, "shortcut option", ShortcutOption::KEYWORDS, shortcut);
        }
        if let Some(k) = &d.anti_alias {
            self.keyword(k, "anti-aliasing", AntiAlias::KEYWORDS, anti_alias);
        }
        if let Some(k) = &d.stride_at {
            self.keyword(k, "stride placement", StrideAt::KEYWORDS, stride_at);
        }
        if let Some(a) = &d.attention {
            self.attention(a);
        }
    }

    /// `attention: se` / `eca` / `{kind: se, reduction: 16, divisor: 8}` /
    /// `{kind: eca, gamma: 2, beta: 1}` (timm's defaults where left out).
    fn attention(&mut self, a: &Spanned<ast::AttentionAst>) -> Option<Attention> {
        let v = &a.value;
        let Some(k) = &v.kind else {
            let example = self
                .spans
                .example("`kind: se` (or `eca`)", "the kind: `attention se`");
            self.missing(a.span, "kind", "`attention`", example);
            return None;
        };
        let is_se = self.keyword(k, "attention", Attention::KEYWORDS, |s| match s {
            "se" | "squeeze_excitation" => Some(true),
            "eca" => Some(false),
            _ => None,
        })?;
        type Keys<'f> = [(&'static str, &'f Field<i64>); 2];
        let (kind, own, foreign): (_, Keys, Keys) = if is_se {
            ("se", [("reduction", &v.reduction), ("divisor", &v.divisor)], [("gamma", &v.gamma), ("beta", &v.beta)])
        } else {
            ("eca", [("gamma", &v.gamma), ("beta", &v.beta)], [("reduction", &v.reduction), ("divisor", &v.divisor)])
        };
        for (key, field) in foreign {
            if let Some(f) = field {
                self.diags.push(
                    Diagnostic::error("E-no-effect", format!("`{key}` has no effect on `{kind}` attention"))
                        .with_primary(f.span, "has no effect here")
                        .with_note("SE takes `reduction` and `divisor`; ECA takes `gamma` and `beta`")
                        .with_help(format!("remove `{key}`")),
                );
            }
        }
        let [(k1, f1), (k2, f2)] = own;
        let min2 = if is_se { 1 } else { 0 };
        let x = f1.as_ref().and_then(|f| self.check_range(f, k1, 1, Limits::MAX_CHANNELS));
        let y = f2.as_ref().and_then(|f| self.check_range(f, k2, min2, Limits::MAX_CHANNELS));
        Some(if is_se {
            Attention::Se {
                reduction: x.unwrap_or(16),
                divisor: y.unwrap_or(8),
            }
        } else {
            Attention::Eca {
                gamma: x.unwrap_or(2),
                beta: y.unwrap_or(1),
            }
        })
    }

    /// `bias: [..]` with a number of flags other than the block's convolutions.
    fn bias_arity_error(
        &mut self,
        span: Span,
        n: usize,
        block: BlockKind,
        block_span: Option<Span>,
        stage: &str,
    ) {
        let want = block.arity();
        let example = if want == 3 {
            "[false, false, true]"
        } else {
            "[false, true]"
        };
        let mut d = Diagnostic::error(
            "E-arity",
            format!(
                "stage `{stage}`: a {} block has {want} convolutions, found {n} bias flags",
                block.keyword()
            ),
        )
        .with_primary(span, format!("{n} flag{}", if n == 1 { "" } else { "s" }))
        .with_help(format!(
            "give one flag per convolution, e.g. `{}`, or one for all: `{}`",
            self.spans
                .example(&format!("bias: {example}"), &format!("bias {example}")),
            self.spans.example("bias: true", "bias")
        ));
        if let Some(b) = block_span {
            d = d.with_secondary(b, format!("block kind `{}` set here", block.keyword()));
        }
        self.diags.push(d);
    }

    /// A block option under `defaults` that reaches no stage it could change: every stage
    /// that does not set its own has no use for it (plain blocks for `shortcut`, ...).
    fn unused_defaults(
        &mut self,
        d: &ast::BlockOptionsAst,
        stages: &Spanned<Vec<Spanned<ast::StageAst>>>,
        out: &[Stage],
    ) {
        for setting in Setting::ALL {
            let Some(span) = setting.own(d) else { continue };
            let mut inheriting = stages
                .value
                .iter()
                .zip(out)
                .filter(|(ast, _)| setting.own(&ast.value.options).is_none())
                .peekable();
            if inheriting.peek().is_none()
                || inheriting.any(|(_, s)| setting.applies(s.block, s.shortcut))
            {
                continue;
            }
            self.diags.push(
                Diagnostic::error(
                    "E-no-effect",
                    format!(
                        "`{}` under `defaults` has no effect: {}",
                        setting.key(),
                        setting.unused_reason()
                    ),
                )
                .with_primary(span, "reaches no stage it could change")
                .with_note("`defaults` applies to every stage without its own setting")
                .with_help(format!("remove `{}` from `defaults`", setting.key())),
            );
        }
    }

    fn arity_error(
        &mut self,
        f: &Spanned<Vec<Spanned<i64>>>,
        block: BlockKind,
        block_span: Option<Span>,
        stage: &str,
    ) {
        let n = f.value.len();
        let want = block.arity();
        let help = match (want, n) {
            (3, 2) => format!(
                "a {} block takes a triple [1x1, 3x3, 1x1], e.g. [64, 64, 256]; for a pair use the `basic` block kind ({})",
                block.keyword(),
                self.spans.example("`block: basic`", "`basic [64, 64]`")
            ),
            (2, 3) => format!(
                "a {} block takes a pair [3x3, 3x3], e.g. [64, 64]; for a triple use the `bottleneck` block kind ({})",
                block.keyword(),
                self.spans.example("`block: bottleneck`", "`bottleneck [64, 64, 256]`")
            ),
            (3, _) => "give three filters: [1x1, 3x3, 1x1], e.g. [64, 64, 256]".to_string(),
            _ => "give two filters: [3x3, 3x3], e.g. [64, 64]".to_string(),
        };
        let mut d = Diagnostic::error(
            "E-arity",
            format!(
                "stage `{stage}`: a {} block takes {want} filters, found {n}",
                block.keyword()
            ),
        )
        .with_primary(
            f.span,
            format!("{n} filter{}", if n == 1 { "" } else { "s" }),
        )
        .with_help(help);
        if let Some(b) = block_span {
            d = d.with_secondary(b, format!("block kind `{}` set here", block.keyword()));
        }
        self.diags.push(d);
    }

    /// Checks `width_per_group` against the stage's grouped convolution (a bottleneck's
    /// 3x3, a basic block's first 3x3). The filters make the model; `width_per_group` only
    /// confirms them, and is accepted in either of its two readings:
    /// - torchvision's base width (its `ResNet(groups=32, width_per_group=4)` argument, one
    ///   value for every stage): the 3x3 has `planes * width_per_group / 64 * groups`
    ///   filters, `planes` being the block's output channels over its expansion (4 for a
    ///   bottleneck, 1 for a basic block);
    /// - the stage's own channels per group: the 3x3 has `groups * width_per_group` filters.
    ///
    /// Both agree in a stage whose planes are 64 (torchvision's first stage).
    fn check_width_per_group(
        &mut self,
        what: &str,
        block: BlockKind,
        filters: &[u64],
        groups: u64,
        wpg: Spanned<u64>,
        filters_span: Span,
    ) {
        let (grouped, which) = if block.is_bottleneck() {
            (filters.get(1).copied().unwrap_or(0), "middle (3x3) filter")
        } else {
            (filters.first().copied().unwrap_or(0), "first filter")
        };
        let expansion = if block.is_bottleneck() { 4 } else { 1 };
        let out = filters.last().copied().unwrap_or(0);
        let planes = (out % expansion == 0).then_some(out / expansion);
        let w = wpg.value;
        // Every factor is at most Limits::MAX_CHANNELS (2^16): no product overflows u64.
        let base_width = planes.map(|p| p * w / 64 * groups);
        let per_group = groups * w;
        if base_width == Some(grouped) || per_group == grouped {
            return;
        }
        let gives = match base_width {
            Some(b) if b != per_group => format!("gives {b} or {per_group} filters, not {grouped}"),
            _ => format!("gives {per_group} filters, not {grouped}"),
        };
        let mut d = Diagnostic::error(
            "E-width-per-group",
            format!("{what}: width_per_group {w} does not match the {which} {grouped}"),
        )
        .with_primary(wpg.span, gives)
        .with_secondary(
            filters_span,
            format!("the grouped convolution has {grouped} filters"),
        );
        match (planes, base_width) {
            (Some(p), Some(b)) if b != per_group => {
                let planes_from = if expansion == 1 {
                    format!("the block's output channels ({out})")
                } else {
                    format!("the block's output channels / {expansion} ({out} / {expansion})")
                };
                d = d
                    .with_note(format!(
                        "read as torchvision's base width (resnext50_32x4d: groups 32, width_per_group 4), it gives the \
                         3x3 planes x width_per_group / 64 x groups = {p} x {w} / 64 x {groups} = {b} filters, planes \
                         being {planes_from}"
                    ))
                    .with_note(format!(
                        "read as the stage's channels per group, it gives groups x width_per_group = \
                         {groups} x {w} = {per_group}"
                    ));
            }
            _ => {
                let why = match planes {
                    Some(64) => {
                        " (with planes of 64, torchvision's base width and the channels per group are the same number)"
                            .to_string()
                    }
                    None => format!(
                        " (the block's output {out} is not a multiple of {expansion}, so torchvision's base width does \
                         not apply)"
                    ),
                    Some(_) => String::new(),
                };
                d = d.with_note(format!(
                    "the 3x3 gets groups x width_per_group = {groups} x {w} = {per_group} filters{why}"
                ));
            }
        }
        // The values that would fit, in each reading.
        let per = (grouped % groups == 0).then_some(grouped / groups);
        let torchvision = per.zip(planes).and_then(|(per, p)| {
            let w = (per * 64).div_ceil(p.max(1));
            (p * w / 64 == per).then_some(w)
        });
        let filters_fix = match base_width {
            Some(b) if b != per_group => format!("{b} or {per_group}"),
            _ => per_group.to_string(),
        };
        let help = match (torchvision, per) {
            (Some(t), Some(c)) if t != c => format!(
                "set width_per_group to {t} (torchvision's base width) or {c} (channels per group), \
                 or the {which} to {filters_fix}"
            ),
            (_, Some(c)) => format!("set width_per_group to {c}, or the {which} to {filters_fix}"),
            _ => format!(
                "{} do not divide the {which} {grouped}: change the groups or the filters",
                count(groups, "group")
            ),
        };
        self.diags.push(d.with_help(help));
    }

    fn head(
        &mut self,
        head: Option<&Spanned<ast::HeadAst>>,
        last_block: Option<BlockKind>,
    ) -> Head {
        let default = defaults::head(last_block);
        let Some(head) = head else { return default };
        self.spans.map.insert("head".into(), head.span);
        let h = &head.value;
        self.spans.record("head.norm", &h.norm);
        self.spans.record("head.softmax", &h.softmax);
        let pool = match &h.pool {
            Some(p) => {
                self.spans.map.insert("head.pool".into(), p.span);
                self.keyword(p, "head pooling", HeadPool::KEYWORDS, |s| match s {
                    "avg" | "avgpool" | "global_avg" => Some(HeadPool::Avg),
                    "max" | "maxpool" | "global_max" => Some(HeadPool::Max),
                    "flatten" | "none" => Some(HeadPool::Flatten),
                    _ => None,
                })
                .unwrap_or(HeadPool::Avg)
            }
            None => default.pool,
        };
        let dropout = match &h.dropout {
            Some(d) => {
                self.spans.map.insert("head.dropout".into(), d.span);
                if !(0.0..1.0).contains(&d.value) {
                    self.diags.push(
                        Diagnostic::error(
                            "E-range",
                            format!("dropout {} is not a probability below 1", decimal(d.value)),
                        )
                        .with_primary(d.span, "must be at least 0 and below 1")
                        .with_help(format!(
                            "use e.g. `{}`, or 0 for none",
                            self.spans.example("dropout: 0.2", "dropout 0.2")
                        )),
                    );
                    0.0
                } else {
                    d.value
                }
            }
            None => default.dropout,
        };
        let in_features = self.int(
            &h.in_features,
            "head.in_features",
            "in_features",
            1,
            1 << 48,
        );
        let classes = self.int(
            &h.classes,
            "head.classes",
            "classes",
            1,
            Limits::MAX_CLASSES,
        );
        Head {
            norm: h.norm.as_ref().map_or(default.norm, |n| n.value),
            pool,
            dropout,
            in_features,
            classes: classes.unwrap_or(default.classes),
            softmax: h.softmax.as_ref().map_or(default.softmax, |s| s.value),
        }
    }

    fn batch_norm(&mut self, bn: Option<&Spanned<ast::BatchNormAst>>) -> BatchNorm {
        let default = BatchNorm::default();
        let Some(bn) = bn else { return default };
        self.spans.map.insert("batch_norm".into(), bn.span);
        let mut out = default;
        if let Some(eps) = &bn.value.eps {
            self.spans.map.insert("batch_norm.eps".into(), eps.span);
            // The network computes in f32: an eps that is zero or subnormal there divides
            // by the bare variance (or loses precision), whatever the spec says.
            let as_f32 = eps.value as f32;
            if eps.value > 0.0 && eps.value < 1.0 && as_f32 < f32::MIN_POSITIVE {
                let becomes = if as_f32 == 0.0 {
                    "0".to_string()
                } else {
                    format!("the subnormal {as_f32:e}")
                };
                self.diags.push(
                    Diagnostic::error(
                        "E-range",
                        format!("batch-norm eps {} is too small for f32", decimal(eps.value)),
                    )
                    .with_primary(eps.span, format!("becomes {becomes} in f32"))
                    .with_note(format!(
                        "the network computes in f32, whose smallest normal number is {:e}",
                        f32::MIN_POSITIVE
                    ))
                    .with_help("PyTorch's default is 1e-5; Keras's ResNet50 uses 1.001e-5"),
                );
            } else if eps.value > 0.0 && eps.value < 1.0 {
                out.eps = eps.value;
            } else {
                self.diags.push(
                    Diagnostic::error(
                        "E-range",
                        format!("batch-norm eps {} is out of range", decimal(eps.value)),
                    )
                    .with_primary(eps.span, "must be above 0 and below 1")
                    .with_help("PyTorch's default is 1e-5; Keras's ResNet50 uses 1.001e-5"),
                );
            }
        }
        if let Some(m) = &bn.value.momentum {
            self.spans.map.insert("batch_norm.momentum".into(), m.span);
            if (0.0..=1.0).contains(&m.value) {
                out.momentum = m.value;
            } else {
                self.diags.push(
                    Diagnostic::error(
                        "E-range",
                        format!("batch-norm momentum {} is out of range", decimal(m.value)),
                    )
                    .with_primary(m.span, "must be between 0 and 1")
                    .with_help("PyTorch convention: 0.1 (Keras's momentum 0.99 is 0.01 here)"),
                );
            }
        }
        out
    }

    // ---- helpers ----------------------------------------------------------------

    fn unknown_key(&mut self, u: &ast::UnknownKey) {
        self.diags.push(u.diagnostic());
    }

    fn missing(&mut self, span: Span, key: &str, owner: &str, example: &str) {
        self.diags.push(
            Diagnostic::error("E-missing", format!("{owner} is missing `{key}`"))
                .with_primary(span, format!("`{key}` is required here"))
                .with_help(format!("add {example}")),
        );
    }

    fn keyword<T>(
        &mut self,
        value: &Spanned<String>,
        what: &str,
        keywords: &[&'static str],
        resolve: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let resolved = resolve(value.value.trim());
        if resolved.is_none() {
            let mut d = Diagnostic::error("E-keyword", format!("unknown {what} `{}`", value.value))
                .with_primary(value.span, format!("not {} {what}", article(what)))
                .with_note(format!("expected one of: {}", keywords.join(", ")));
            if let Some(s) = did_you_mean(value.value.trim(), keywords.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
        }
        resolved
    }

    fn int(
        &mut self,
        field: &Field<i64>,
        path: &str,
        what: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let f = field.as_ref()?;
        self.spans.map.insert(path.to_string(), f.span);
        self.check_range(f, what, min, max)
    }

    #[allow(clippy::too_many_arguments)]
    fn required_int(
        &mut self,
        field: &Field<i64>,
        path: &str,
        owner: Span,
        owner_name: &str,
        what: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        if field.is_none() {
            let example = match (self.spans.syntax, what) {
                (Syntax::Dsl, "repeat") => {
                    "the repeat count after the filters: `[64, 64] x2`".to_string()
                }
                (Syntax::Dsl, _) => "it to the `input` line: `input 3x224x224`".to_string(),
                (Syntax::Yaml, _) => format!("`{what}: N`"),
            };
            self.missing(owner, what, owner_name, &example);
            return None;
        }
        self.int(field, path, what, min, max)
    }

    fn check_range(&mut self, v: &Spanned<i64>, what: &str, min: u64, max: u64) -> Option<u64> {
        let x = v.value;
        if x < 0 || (x as u64) < min {
            self.diags.push(
                Diagnostic::error(
                    "E-range",
                    format!("{what} must be at least {min}, found {x}"),
                )
                .with_primary(v.span, format!("below {min}"))
                .with_help(format!("use a value from {min} to {max}")),
            );
            return None;
        }
        if x as u64 > max {
            self.diags.push(
                Diagnostic::error(
                    "E-limit",
                    format!("{what} of {x} is beyond resnetc's limit of {max}"),
                )
                .with_primary(v.span, format!("at most {max}"))
                .with_note(
                    "limits keep every spec cheap to check: nothing is allocated for it"
                        .to_string(),
                ),
            );
            return None;
        }
        Some(x as u64)
    }
}

/// A block option that only some blocks have a use for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setting {
    /// Only bottlenecks have two places for the stride.
    StrideOn,
    /// Plain blocks have no shortcut.
    Shortcut,
    /// Only shortcuts B and C project.
    Projection,
}

impl Setting {
    const ALL: [Setting; 3] = [Setting::StrideOn, Setting::Shortcut, Setting::Projection];

    fn key(self) -> &'static str {
        match self {
            Setting::StrideOn => "stride_on",
            Setting::Shortcut => "shortcut",
            Setting::Projection => "projection",
        }
    }

    /// Where the setting was written in these options, if it was.
    fn own(self, o: &ast::BlockOptionsAst) -> Option<Span> {
        match self {
            Setting::StrideOn => o.stride_on.as_ref().map(|v| v.span),
            Setting::Shortcut => o.shortcut.as_ref().map(|v| v.span),
            Setting::Projection => o.projection.as_ref().map(|v| v.span),
        }
    }

    /// Whether the setting changes anything in a stage of these blocks and shortcut.
    fn applies(self, block: BlockKind, shortcut: ShortcutOption) -> bool {
        match self {
            Setting::StrideOn => block.is_bottleneck(),
            Setting::Shortcut => block.has_shortcut(),
            Setting::Projection => {
                block.has_shortcut() && matches!(shortcut, ShortcutOption::B | ShortcutOption::C)
            }
        }
    }

    /// Why it changes nothing in such a stage.
    fn why_not(self, block: BlockKind, shortcut: ShortcutOption) -> String {
        let kind = block.keyword();
        match self {
            Setting::StrideOn => format!(
                "{} {kind} block has a single place for its stride",
                article(kind)
            ),
            Setting::Projection if block.has_shortcut() => {
                format!("shortcut `{}` never projects", shortcut.keyword())
            }
            Setting::Shortcut | Setting::Projection => {
                format!("{} {kind} block has no shortcut", article(kind))
            }
        }
    }

    fn fix(self, block: BlockKind, shortcut: ShortcutOption) -> String {
        let key = self.key();
        match self {
            Setting::StrideOn => {
                "remove `stride_on`: it chooses between a bottleneck's first 1x1 and its 3x3".to_string()
            }
            Setting::Projection if block.has_shortcut() => format!(
                "remove `projection`, or use `shortcut B` or `C` instead of `{}` for projection shortcuts",
                shortcut.keyword()
            ),
            Setting::Shortcut | Setting::Projection => format!(
                "remove `{key}`, or use a residual block kind (`{}`) for the stage to have a shortcut",
                if block.is_bottleneck() { "bottleneck" } else { "basic" }
            ),
        }
    }

    /// Why a `defaults` setting reaches no stage it could change.
    fn unused_reason(self) -> &'static str {
        match self {
            Setting::StrideOn => "no stage that takes it has bottleneck blocks",
            Setting::Shortcut => "no stage that takes it has a shortcut",
            Setting::Projection => "no stage that takes it has projection shortcuts (B or C)",
        }
    }
}

/// A rate as a reader writes it: `0.1`, `1e-5`, `1e-320` (not 320 zeros).
fn decimal(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e16).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// `1 group`, `32 groups`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The indefinite article for a phrase: `an init`, `a block kind`.
fn article(phrase: &str) -> &'static str {
    if phrase.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The block kind a stage's filters suggest (a triple: bottleneck), used after the kind
/// itself was missing or misspelt, so that no second error cascades from the first.
fn guess_block(filters: Option<&Spanned<Vec<Spanned<i64>>>>) -> BlockKind {
    match filters.map(|f| f.value.len()) {
        Some(3) => BlockKind::Bottleneck,
        _ => BlockKind::Basic,
    }
}

fn block_kind(k: &str) -> Option<BlockKind> {
    match k {
        "basicblock" | "basic_block" => Some(BlockKind::Basic),
        other => BlockKind::from_keyword(other),
    }
}

fn stride_on(k: &str) -> Option<StrideOn> {
    match k {
        "conv1" | "v1" | "1x1" => Some(StrideOn::Conv1),
        "conv2" | "v1.5" | "3x3" => Some(StrideOn::Conv2),
        _ => None,
    }
}

fn anti_alias(k: &str) -> Option<AntiAlias> {
    match k {
        "blur" | "blurpool" => Some(AntiAlias::Blur),
        "avg" | "avgpool" => Some(AntiAlias::Avg),
        _ => None,
    }
}

fn stride_at(k: &str) -> Option<StrideAt> {
    match k {
        "first" => Some(StrideAt::First),
        "last" => Some(StrideAt::Last),
        _ => None,
    }
}

fn shortcut(k: &str) -> Option<ShortcutOption> {
    match k {
        "A" | "a" => Some(ShortcutOption::A),
        "B" | "b" => Some(ShortcutOption::B),
        "C" | "c" => Some(ShortcutOption::C),
        "identity" => Some(ShortcutOption::Identity),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp<T>(value: T, start: usize) -> Spanned<T> {
        Spanned::new(value, Span::new(start, start + 1))
    }

    fn minimal() -> SpecAst {
        SpecAst {
            name: Some(sp("tiny".to_string(), 0)),
            stages: Some(sp(
                vec![sp(
                    ast::StageAst {
                        repeat: Some(sp(2, 10)),
                        filters: Some(sp(vec![sp(64, 20), sp(64, 22)], 19)),
                        options: ast::BlockOptionsAst {
                            block: Some(sp("basic".into(), 30)),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    5,
                )],
                4,
            )),
            ..Default::default()
        }
    }

    #[test]
    fn applies_torchvision_defaults() {
        let (m, spans, warnings) = lower(&minimal(), Syntax::Yaml).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(m.input, defaults::INPUT);
        assert_eq!(m.stem, defaults::stem());
        assert_eq!(m.stages[0].name, "conv2_x");
        assert_eq!(m.stages[0].stride, 1);
        assert_eq!(m.stages[0].shortcut, ShortcutOption::B);
        assert_eq!(m.head.as_ref().map(|h| h.classes), Some(1000));
        assert_eq!(spans.get("stages[0].filters[1]"), Span::new(22, 23));
        // A default setting falls back to its stage's span.
        assert_eq!(spans.get("stages[0].stride"), Span::new(5, 6));
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut ast = minimal();
        let stages = ast.stages.as_mut().unwrap();
        stages.value[0].value.repeat = Some(sp(1_000_000_000_000, 10));
        stages.value[0].value.filters = Some(sp(vec![sp(64, 20), sp(64, 22), sp(-3, 24)], 19));
        ast.name = None;
        let errs = lower(&ast, Syntax::Yaml).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|d| d.code).collect();
        assert!(codes.contains(&"E-missing"), "{codes:?}");
        assert!(codes.contains(&"E-limit"), "{codes:?}");
        assert!(codes.contains(&"E-range"), "{codes:?}");
        assert!(codes.contains(&"E-arity"), "{codes:?}");
    }

    #[test]
    fn misspelt_keyword_gets_a_suggestion() {
        let mut ast = minimal();
        ast.stages.as_mut().unwrap().value[0].value.options.block =
            Some(sp("botleneck".into(), 30));
        let errs = lower(&ast, Syntax::Yaml).unwrap_err();
        let e = errs.iter().find(|d| d.code == "E-keyword").unwrap();
        assert_eq!(e.help, vec!["did you mean `bottleneck`?".to_string()]);
    }
}
