//! Prints a [`Model`] as a `.resnet` DSL spec (`resnetc fmt --to dsl`).
//!
//! The output always names the model, its input, the whole stem and, per stage, the name,
//! block, filters, block count and stride; everything else is written only where it
//! differs from torchvision's behaviour ([`crate::ir::defaults`]). Block options shared by
//! every stage go on one `defaults` line. Parsing the text back gives an equal [`Model`].
//!
//! ```
//! use resnetc::ir::*;
//! let model = Model {
//!     name: "tiny".into(),
//!     input: Shape::new(3, 32, 32),
//!     stem: defaults::stem(),
//!     stages: vec![Stage::new("conv2_x", BlockKind::Basic, 2, &[64, 64], 1)],
//!     head: Some(Head { classes: 10, ..defaults::head(Some(BlockKind::Basic)) }),
//!     features: Vec::new(),
//!     init: Init::KaimingNormal,
//!     zero_init_residual: false,
//!     batch_norm: BatchNorm::default(),
//!     norm: Norm::Batch,
//!     drop_path_rate: 0.0,
//! };
//! let text = resnetc::back::dsl::print(&model);
//! assert!(text.contains("conv2_x: basic [64, 64] x2 /1\n"));
//! assert!(text.contains("head fc 10\n"));
//! ```

use crate::ir::{
    defaults, AntiAlias, Attention, BatchNorm, Conv, Head, HeadPool, Model, Norm, Pool, PoolKind,
    Projection, Stage, Stem, StemPool, StrideAt,
};
use std::fmt::Write;

/// The spec text for `model`; parsing it back yields an equal [`Model`].
pub fn print(model: &Model) -> String {
    let mut out = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(out, "# {}", comment_text(&model.name));
    let _ = writeln!(out, "model {}", name(&model.name));
    let i = model.input;
    let _ = writeln!(out, "input {}x{}x{}", i.c, i.h, i.w);
    let _ = writeln!(out, "stem {}", stem(&model.stem));

    let options = OptionPlan::new(&model.stages);
    if !options.shared.is_empty() {
        let _ = writeln!(out, "defaults {}", options.shared.join(", "));
    }
    for (index, s) in model.stages.iter().enumerate() {
        let filters: Vec<String> = s.filters.iter().map(u64::to_string).collect();
        let _ = write!(
            out,
            "{}: {} [{}] x{} /{}",
            name(&s.name),
            s.block.keyword(),
            filters.join(", "),
            s.repeat,
            s.stride
        );
        for option in &options.per_stage[index] {
            let _ = write!(out, ", {option}");
        }
        out.push('\n');
    }

    match &model.head {
        Some(h) => {
            let _ = writeln!(out, "head {}", head(h, model.stages.last().map(|s| s.block)));
        }
        None => {
            let names: Vec<String> = model.features.iter().filter_map(|&i| model.stages.get(i)).map(|s| name(&s.name)).collect();
            let _ = writeln!(out, "features {}", names.join(", "));
        }
    }
    if model.init != defaults::INIT {
        let _ = writeln!(out, "init {}", model.init.keyword());
    }
    if model.zero_init_residual != defaults::ZERO_INIT_RESIDUAL {
        let _ = writeln!(out, "zero_init_residual {}", model.zero_init_residual);
    }
    if model.batch_norm != BatchNorm::default() {
        let bn = model.batch_norm;
        let _ = writeln!(
            out,
            "batch_norm eps {} momentum {}",
            float(bn.eps),
            float(bn.momentum)
        );
    }
    if let Norm::Group { groups } = model.norm {
        let _ = writeln!(out, "norm group {groups}");
    }
    if model.drop_path_rate.to_bits() != 0f64.to_bits() {
        let _ = writeln!(out, "drop_path {}", float(model.drop_path_rate));
    }
    out
}

fn stem(s: &Stem) -> String {
    let mut parts: Vec<String> = s.convs.iter().map(conv).collect();
    parts.push(if s.bn { "bn" } else { "no bn" }.to_string());
    parts.push(if s.relu { "relu" } else { "no relu" }.to_string());
    parts.push(match &s.pool {
        StemPool::Pool(p) => pool(p),
        StemPool::None => "no pool".to_string(),
        StemPool::Conv {
            conv: c,
            anti_alias,
        } => {
            let bias = if c.bias { " bias" } else { "" };
            format!(
                "convpool {0}x{0}/{1} pad {2}{bias} -> {3}{4}",
                c.kernel,
                c.stride,
                c.padding,
                c.filters,
                anti_alias_part(*anti_alias)
            )
        }
    });
    parts.join(", ")
}

/// ` anti_alias blur` after a stem pooling, or nothing.
fn anti_alias_part(a: Option<AntiAlias>) -> String {
    a.map_or(String::new(), |a| format!(" anti_alias {}", a.keyword()))
}

fn conv(c: &Conv) -> String {
    let bias = if c.bias { " bias" } else { "" };
    format!(
        "conv {0}x{0}/{1} pad {2}{bias} -> {3}",
        c.kernel, c.stride, c.padding, c.filters
    )
}

fn pool(p: &Pool) -> String {
    let kind = match p.kind {
        PoolKind::Max => "maxpool",
        PoolKind::Avg => "avgpool",
    };
    let ceil = if p.ceil_mode { " ceil" } else { "" };
    format!(
        "{kind} {0}x{0}/{1} pad {2}{ceil}{3}",
        p.kernel,
        p.stride,
        p.padding,
        anti_alias_part(p.anti_alias)
    )
}

fn head(h: &Head, last_block: Option<crate::ir::BlockKind>) -> String {
    let d = defaults::head(last_block);
    let mut parts = Vec::new();
    if h.norm != d.norm {
        parts.push(if h.norm { "norm" } else { "no norm" }.to_string());
    }
    if h.pool != d.pool {
        parts.push(
            match h.pool {
                HeadPool::Avg => "avgpool",
                HeadPool::Max => "maxpool",
                HeadPool::Flatten => "flatten",
            }
            .to_string(),
        );
    }
    if h.dropout != d.dropout || h.dropout.is_sign_negative() != d.dropout.is_sign_negative() {
        parts.push(format!("dropout {}", float(h.dropout)));
    }
    parts.push(match h.in_features {
        Some(n) => format!("fc {n} -> {}", h.classes),
        None => format!("fc {}", h.classes),
    });
    if h.softmax != d.softmax {
        parts.push(if h.softmax { "softmax" } else { "no softmax" }.to_string());
    }
    parts.join(", ")
}

/// Where each block option is written: on the `defaults` line when every stage has the
/// same value, after the stages that differ from torchvision's default otherwise, and
/// nowhere when every stage has the default.
struct OptionPlan {
    shared: Vec<String>,
    per_stage: Vec<Vec<String>>,
}

impl OptionPlan {
    fn new(stages: &[Stage]) -> Self {
        let mut plan = OptionPlan {
            shared: Vec::new(),
            per_stage: vec![Vec::new(); stages.len()],
        };
        plan.place(
            stages,
            |s| s.stride_on,
            |_| defaults::STRIDE_ON,
            |v| format!("stride_on {}", v.keyword()),
        );
        plan.place(
            stages,
            |s| s.shortcut,
            |_| defaults::SHORTCUT,
            |v| format!("shortcut {}", v.keyword()),
        );
        plan.place(
            stages,
            |s| s.projection,
            |s| defaults::projection(s.block),
            projection,
        );
        plan.place(
            stages,
            |s| s.groups,
            |_| defaults::GROUPS,
            |v| format!("groups {v}"),
        );
        plan.place(
            stages,
            |s| s.bias.clone(),
            |s| vec![defaults::BIAS; s.block.arity()],
            |v| match v.first() {
                Some(&first) if v.iter().all(|b| *b == first) => {
                    if first { "bias" } else { "no bias" }.to_string()
                }
                _ => {
                    let flags: Vec<&str> = v.iter().map(|b| if *b { "true" } else { "false" }).collect();
                    format!("bias [{}]", flags.join(", "))
                }
            },
        );
        plan.place(stages, |s| s.attention, |_| None, attention);
        plan.place(
            stages,
            |s| s.anti_alias,
            |_| None,
            |v| format!("anti_alias {}", v.map_or("none", AntiAlias::keyword)),
        );
        plan.place(
            stages,
            |s| s.stride_at,
            |_| StrideAt::First,
            |v| format!("stride_at {}", v.keyword()),
        );
        plan.place(
            stages,
            |s| s.dilation,
            |_| 1,
            |v| format!("dilation {v}"),
        );
        plan
    }

    fn place<T: PartialEq + Clone>(
        &mut self,
        stages: &[Stage],
        value: impl Fn(&Stage) -> T,
        default: impl Fn(&Stage) -> T,
        text: impl Fn(T) -> String,
    ) {
        let Some(first) = stages.first().map(&value) else {
            return;
        };
        if stages.iter().all(|s| value(s) == default(s)) {
            return;
        }
        if stages.iter().all(|s| value(s) == first) {
            self.shared.push(text(first));
            return;
        }
        for (i, s) in stages.iter().enumerate() {
            if value(s) != default(s) {
                self.per_stage[i].push(text(value(s)));
            }
        }
    }
}

fn projection(p: Projection) -> String {
    let bn = if p.bn { "bn" } else { "no bn" };
    let bias = if p.bias { "bias" } else { "no bias" };
    let mut s = format!("projection {bn} {bias}");
    if p.kernel != Projection::default().kernel {
        let _ = write!(s, " kernel {}", p.kernel);
    }
    if p.avg_pool {
        s.push_str(" avgpool");
    }
    s
}

/// `attention se`, `attention eca gamma 3 beta 0`, ... (timm's defaults left out).
fn attention(a: Option<Attention>) -> String {
    match a {
        None => "attention none".to_string(),
        Some(Attention::Se { reduction, divisor }) => {
            let mut s = "attention se".to_string();
            if reduction != 16 {
                let _ = write!(s, " reduction {reduction}");
            }
            if divisor != 8 {
                let _ = write!(s, " divisor {divisor}");
            }
            s
        }
        Some(Attention::Eca { gamma, beta }) => {
            let mut s = "attention eca".to_string();
            if gamma != 2 {
                let _ = write!(s, " gamma {gamma}");
            }
            if beta != 1 {
                let _ = write!(s, " beta {beta}");
            }
            s
        }
    }
}

/// A float that reads back as exactly the same `f64` (Rust's shortest round-trip form).
fn float(x: f64) -> String {
    format!("{x:?}")
}

/// A name as the grammar reads it: bare when it is made of letters, digits, `_`, `.` and
/// `-`, quoted otherwise.
fn name(n: &str) -> String {
    let bare = !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if bare {
        return n.to_string();
    }
    let mut out = String::from("\"");
    for c in n.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Controls, bidi marks and separators as `\u{..}`: the file shows what it holds.
            c if crate::diag::is_unprintable(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name for the title comment: one line, unprintable characters escaped.
fn comment_text(n: &str) -> String {
    crate::diag::escape(n).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::fixtures::resnet50;
    use crate::ir::*;
    use crate::span::{SourceFile, Syntax};

    /// Everything away from the defaults, so every optional piece gets printed.
    fn unusual() -> Model {
        let mut m = resnet50();
        m.name = "my \"odd\" net\\1".into();
        m.input = Shape::new(1, 28, 30);
        m.stem = Stem {
            convs: vec![Conv {
                filters: 16,
                kernel: 3,
                stride: 1,
                padding: 0,
                bias: true,
            }],
            bn: false,
            relu: false,
            pool: StemPool::Pool(Pool {
                kind: PoolKind::Avg,
                kernel: 2,
                stride: 2,
                padding: 0,
                ceil_mode: true,
                anti_alias: None,
            }),
        };
        m.stages[0].block = BlockKind::PreActBottleneck;
        m.stages[0].projection = Projection {
            bn: true,
            bias: true,
            ..Projection::default()
        };
        m.stages[1].shortcut = ShortcutOption::C;
        m.stages[1].name = "stage two".into();
        for s in &mut m.stages {
            s.stride_on = StrideOn::Conv1;
            s.groups = 32;
            s.bias = vec![true; s.block.arity()];
            s.anti_alias = Some(AntiAlias::Avg);
        }
        m.stages[2].bias = vec![false, false, true];
        m.stages[1].attention = Some(Attention::Se {
            reduction: 4,
            divisor: 8,
        });
        m.stages[2].attention = Some(Attention::Eca { gamma: 3, beta: 0 });
        m.stages[3].attention = Some(Attention::Se {
            reduction: 16,
            divisor: 8,
        });
        m.stages[1].stride_at = StrideAt::Last;
        m.stages[3].stride = 1;
        m.stages[3].dilation = 2;
        m.stages[2].projection.kernel = 3;
        m.stages[2].projection.avg_pool = true;
        m.norm = Norm::Group { groups: 8 };
        m.drop_path_rate = 0.1;
        m.head = Some(Head {
            norm: true,
            pool: HeadPool::Flatten,
            dropout: 0.1 + 0.2,
            in_features: Some(2048),
            classes: 10,
            softmax: true,
        });
        m.init = Init::XavierUniform;
        m.zero_init_residual = true;
        m.batch_norm = BatchNorm {
            eps: 1.001e-5,
            momentum: 0.01,
        };
        m
    }

    #[test]
    fn prints_resnet50_like_table_1() {
        assert_eq!(
            print(&resnet50()),
            "# resnet50\n\
             model resnet50\n\
             input 3x224x224\n\
             stem conv 7x7/2 pad 3 -> 64, bn, relu, maxpool 3x3/2 pad 1\n\
             conv2_x: bottleneck [64, 64, 256] x3 /1\n\
             conv3_x: bottleneck [128, 128, 512] x4 /2\n\
             conv4_x: bottleneck [256, 256, 1024] x6 /2\n\
             conv5_x: bottleneck [512, 512, 2048] x3 /2\n\
             head fc 1000\n"
        );
    }

    #[test]
    fn prints_every_setting_away_from_the_defaults() {
        let text = print(&unusual());
        assert!(
            text.starts_with(
                "# my \"odd\" net\\1\nmodel \"my \\\"odd\\\" net\\\\1\"\ninput 1x28x30\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "stem conv 3x3/1 pad 0 bias -> 16, no bn, no relu, avgpool 2x2/2 pad 0 ceil\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("defaults stride_on conv1, groups 32, anti_alias avg\n"),
            "{text}"
        );
        assert!(
            text.contains("conv2_x: preact_bottleneck [64, 64, 256] x3 /1, projection bn bias, bias\n"),
            "{text}"
        );
        assert!(
            text.contains("\"stage two\": bottleneck [128, 128, 512] x4 /2, shortcut C, bias, attention se reduction 4, stride_at last\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "head norm, flatten, dropout 0.30000000000000004, fc 2048 -> 10, softmax\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "init xavier_uniform\nzero_init_residual true\nbatch_norm eps 1.001e-5 momentum 0.01\n"
        ));
    }

    #[test]
    fn prints_the_new_settings() {
        let text = print(&unusual());
        for part in [
            "defaults stride_on conv1, groups 32, anti_alias avg\n",
            ", bias [false, false, true]",
            ", attention se reduction 4",
            ", attention eca gamma 3 beta 0",
            ", attention se, dilation 2\n",
            ", stride_at last",
            ", dilation 2",
            ", projection bn no bias kernel 3 avgpool",
            "norm group 8\ndrop_path 0.1\n",
        ] {
            assert!(text.contains(part), "{part}\n{text}");
        }
    }

    #[test]
    fn deep_stems_and_stem_pools_round_trip() {
        let deep = vec![
            Conv {
                filters: 32,
                kernel: 3,
                stride: 2,
                padding: 1,
                bias: false,
            },
            Conv {
                filters: 64,
                kernel: 3,
                stride: 1,
                padding: 1,
                bias: true,
            },
        ];
        let pools = [
            StemPool::Pool(Pool {
                kind: PoolKind::Max,
                kernel: 3,
                stride: 2,
                padding: 1,
                ceil_mode: false,
                anti_alias: Some(AntiAlias::Blur),
            }),
            StemPool::Conv {
                conv: Conv {
                    filters: 64,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    bias: false,
                },
                anti_alias: None,
            },
            StemPool::Conv {
                conv: Conv {
                    filters: 48,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    bias: true,
                },
                anti_alias: Some(AntiAlias::Avg),
            },
        ];
        for pool in pools {
            let mut model = resnet50();
            model.stem.convs = deep.clone();
            model.stem.pool = pool;
            let text = print(&model);
            assert!(
                text.contains("stem conv 3x3/2 pad 1 -> 32, conv 3x3/1 pad 1 bias -> 64, bn"),
                "{text}"
            );
            let file = SourceFile::new("printed.resnet", text, Syntax::Dsl);
            let ast = crate::front::dsl::parse(&file)
                .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
            let (back, _, _) = crate::lower::lower(&ast, crate::span::Syntax::Dsl)
                .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
            assert_eq!(back, model, "{}", file.text);
        }
    }

    #[test]
    fn shared_projection_goes_on_the_defaults_line() {
        let mut m = resnet50();
        for s in &mut m.stages {
            s.projection = Projection {
                bn: false,
                bias: true,
                ..Projection::default()
            };
        }
        assert!(print(&m).contains("defaults projection no bn bias\n"));
    }

    #[test]
    fn output_parses_back_to_the_same_settings() {
        for model in [resnet50(), unusual()] {
            let text = print(&model);
            let file = SourceFile::new("printed.resnet", text.clone(), Syntax::Dsl);
            let ast = crate::front::dsl::parse(&file)
                .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
            assert_eq!(ast.name.map(|n| n.value), Some(model.name.clone()));
            let stages = ast.stages.map(|s| s.value).unwrap_or_default();
            assert_eq!(stages.len(), model.stages.len());
            for (s, m) in stages.iter().zip(&model.stages) {
                assert_eq!(
                    s.value.name.as_ref().map(|n| n.value.as_str()),
                    Some(m.name.as_str())
                );
                let filters: Vec<i64> = s
                    .value
                    .filters
                    .iter()
                    .flat_map(|f| f.value.iter().map(|x| x.value))
                    .collect();
                assert_eq!(
                    filters,
                    m.filters.iter().map(|&f| f as i64).collect::<Vec<_>>()
                );
            }
            let bn = ast.batch_norm.map(|b| b.value);
            if model.batch_norm != BatchNorm::default() {
                let bn = bn.expect("batch_norm line");
                assert_eq!(bn.eps.map(|e| e.value), Some(model.batch_norm.eps));
                assert_eq!(
                    bn.momentum.map(|m| m.value),
                    Some(model.batch_norm.momentum)
                );
            }
            if let Some(head) = ast.head.map(|h| h.value) {
                if let Some(d) = head.dropout {
                    assert_eq!(Some(d.value), model.head.as_ref().map(|h| h.dropout));
                }
            }
        }
    }

    #[test]
    fn output_compiles_back_to_an_equal_model() {
        for model in [resnet50(), unusual()] {
            let text = print(&model);
            let file = SourceFile::new("printed.resnet", text, Syntax::Dsl);
            let ast = crate::front::dsl::parse(&file)
                .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
            let (back, _, _) = crate::lower::lower(&ast, crate::span::Syntax::Dsl)
                .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
            assert_eq!(back, model, "{}", file.text);
        }
    }
}
