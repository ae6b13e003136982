//! Prints a [`Model`] as a `.yaml` spec (`resnetc fmt --to yaml`).
//!
//! The output parses back, through the whole pipeline, to an equal [`Model`]. It says
//! what matters and leaves torchvision's defaults ([`crate::ir::defaults`]) unsaid: the
//! stem is written in full, every stage names its `stage`, `repeat`, `filters` and
//! `stride`, a block option shared by every stage goes once under `defaults:`, and the
//! head, init and batch-norm settings appear only where they differ from the defaults
//! (the head always says its `classes`).
//!
//! ```
//! use resnetc::ir::*;
//! let model = Model {
//!     name: "tiny".into(),
//!     input: Shape::new(3, 32, 32),
//!     stem: defaults::stem(),
//!     stages: vec![Stage::new("conv2_x", BlockKind::Basic, 2, &[16, 16], 1)],
//!     head: Some(Head { classes: 10, ..defaults::head(Some(BlockKind::Basic)) }),
//!     features: Vec::new(),
//!     init: Init::KaimingNormal,
//!     zero_init_residual: false,
//!     batch_norm: BatchNorm::default(),
//!     norm: Norm::Batch,
//!     drop_path_rate: 0.0,
//! };
//! let text = resnetc::back::yaml::print(&model);
//! assert!(text.contains("filters: [16, 16]"));
//! assert!(text.contains("defaults:\n  block: basic\n"));
//! ```

use crate::ir::{
    defaults, AntiAlias, Attention, BatchNorm, Conv, Model, Norm, Pool, Projection, Stage,
    StemPool, StrideAt,
};
use std::fmt::Write;

/// The spec text for `model`; parsing it back yields an equal [`Model`].
pub fn print(model: &Model) -> String {
    let mut out = String::new();
    // `write!` into a `String` cannot fail; the results are ignored throughout.
    let _ = writeln!(out, "# {}", comment_text(&model.name));
    let _ = writeln!(out, "name: {}", string(&model.name));
    let _ = writeln!(
        out,
        "input: [{}, {}, {}]",
        model.input.c, model.input.h, model.input.w
    );

    if let Norm::Group { groups } = model.norm {
        let _ = writeln!(out, "norm: {{kind: group, groups: {groups}}}");
    }
    if model.drop_path_rate.to_bits() != 0f64.to_bits() {
        let _ = writeln!(out, "drop_path_rate: {}", float(model.drop_path_rate));
    }

    let stem = &model.stem;
    out.push_str("stem:\n");
    match stem.convs.as_slice() {
        [one] => {
            let _ = writeln!(out, "  conv: {}", conv(one));
        }
        several => {
            out.push_str("  convs:\n");
            for c in several {
                let _ = writeln!(out, "    - {}", conv(c));
            }
        }
    }
    let _ = writeln!(out, "  bn: {}", stem.bn);
    let _ = writeln!(out, "  relu: {}", stem.relu);
    match &stem.pool {
        StemPool::Pool(p) => {
            let _ = writeln!(out, "  pool: {}", pool(p));
        }
        StemPool::None => out.push_str("  pool: none\n"),
        StemPool::Conv {
            conv: c,
            anti_alias,
        } => {
            let _ = writeln!(
                out,
                "  pool: {{kind: conv, filters: {}, kernel: {}, stride: {}, padding: {}, bias: {}{}}}",
                c.filters,
                c.kernel,
                c.stride,
                c.padding,
                c.bias,
                anti_alias_key(*anti_alias)
            );
        }
    }

    let options = block_options(&model.stages);
    if !options.shared.is_empty() {
        out.push_str("defaults:\n");
        for (key, value) in &options.shared {
            let _ = writeln!(out, "  {key}: {value}");
        }
    }

    out.push_str("stages:\n");
    for (stage, own) in model.stages.iter().zip(&options.per_stage) {
        let _ = writeln!(out, "  - stage: {}", string(&stage.name));
        let _ = writeln!(out, "    repeat: {}", stage.repeat);
        let filters: Vec<String> = stage.filters.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "    filters: [{}]", filters.join(", "));
        let _ = writeln!(out, "    stride: {}", stage.stride);
        for (key, value) in own {
            let _ = writeln!(out, "    {key}: {value}");
        }
    }

    if let Some(head) = &model.head {
        print_head(&mut out, head, model);
    } else {
        let names: Vec<String> = model.features.iter().filter_map(|&i| model.stages.get(i)).map(|s| string(&s.name)).collect();
        let _ = writeln!(out, "features: [{}]", names.join(", "));
    }
    print_tail(&mut out, model);
    out
}

/// The `head` section.
fn print_head(out: &mut String, head: &crate::ir::Head, model: &Model) {
    let default_head = defaults::head(model.stages.last().map(|s| s.block));
    out.push_str("head:\n");
    if head.norm != default_head.norm {
        let _ = writeln!(out, "  norm: {}", head.norm);
    }
    if head.pool != default_head.pool {
        let _ = writeln!(out, "  pool: {}", head.pool.keyword());
    }
    // Compared bit for bit, so that -0.0 and the like survive the round trip too.
    if head.dropout.to_bits() != default_head.dropout.to_bits() {
        let _ = writeln!(out, "  dropout: {}", float(head.dropout));
    }
    if let Some(n) = head.in_features {
        let _ = writeln!(out, "  in_features: {n}");
    }
    let _ = writeln!(out, "  classes: {}", head.classes);
    if head.softmax != default_head.softmax {
        let _ = writeln!(out, "  softmax: {}", head.softmax);
    }
}

/// The model-wide settings after the head.
fn print_tail(out: &mut String, model: &Model) {

    if model.init != defaults::INIT {
        let _ = writeln!(out, "init: {}", model.init.keyword());
    }
    if model.zero_init_residual != defaults::ZERO_INIT_RESIDUAL {
        let _ = writeln!(out, "zero_init_residual: {}", model.zero_init_residual);
    }
    let bn = model.batch_norm;
    let default_bn = BatchNorm::default();
    let mut bn_fields = Vec::new();
    if bn.eps.to_bits() != default_bn.eps.to_bits() {
        bn_fields.push(format!("eps: {}", float(bn.eps)));
    }
    if bn.momentum.to_bits() != default_bn.momentum.to_bits() {
        bn_fields.push(format!("momentum: {}", float(bn.momentum)));
    }
    if !bn_fields.is_empty() {
        let _ = writeln!(out, "batch_norm: {{{}}}", bn_fields.join(", "));
    }
}

fn conv(c: &Conv) -> String {
    format!(
        "{{filters: {}, kernel: {}, stride: {}, padding: {}, bias: {}}}",
        c.filters, c.kernel, c.stride, c.padding, c.bias
    )
}

fn pool(p: &Pool) -> String {
    format!(
        "{{kind: {}, kernel: {}, stride: {}, padding: {}, ceil_mode: {}{}}}",
        p.kind.keyword(),
        p.kernel,
        p.stride,
        p.padding,
        p.ceil_mode,
        anti_alias_key(p.anti_alias)
    )
}

/// `, anti_alias: blur` inside a stem pool mapping, or nothing.
fn anti_alias_key(a: Option<AntiAlias>) -> String {
    a.map_or(String::new(), |a| format!(", anti_alias: {}", a.keyword()))
}

/// `{bn, bias}`, with `kernel` and `pool` where they differ from the defaults.
fn projection(p: &Projection) -> String {
    let mut s = format!("{{bn: {}, bias: {}", p.bn, p.bias);
    if p.kernel != Projection::default().kernel {
        let _ = write!(s, ", kernel: {}", p.kernel);
    }
    if p.avg_pool {
        s.push_str(", pool: avg");
    }
    s.push('}');
    s
}

/// `se` / `eca` at timm's defaults, the mapping otherwise.
fn attention(a: Option<Attention>) -> String {
    match a {
        None => "none".to_owned(),
        Some(Attention::Se {
            reduction: 16,
            divisor: 8,
        }) => "se".to_owned(),
        Some(Attention::Eca { gamma: 2, beta: 1 }) => "eca".to_owned(),
        Some(Attention::Se { reduction, divisor }) => {
            format!("{{kind: se, reduction: {reduction}, divisor: {divisor}}}")
        }
        Some(Attention::Eca { gamma, beta }) => {
            format!("{{kind: eca, gamma: {gamma}, beta: {beta}}}")
        }
    }
}

/// `true` / `false` when every convolution agrees, one flag per convolution otherwise.
fn bias(b: &[bool]) -> String {
    match b.first() {
        Some(first) if b.iter().all(|x| x == first) => first.to_string(),
        _ => {
            let flags: Vec<String> = b.iter().map(bool::to_string).collect();
            format!("[{}]", flags.join(", "))
        }
    }
}

/// Block options split into those every stage shares (for `defaults:`) and the rest,
/// per stage; both as `(key, value)` lines in the schema's key order.
struct BlockOptions {
    shared: Vec<(&'static str, String)>,
    per_stage: Vec<Vec<(&'static str, String)>>,
}

fn block_options(stages: &[Stage]) -> BlockOptions {
    type OptionRow = (&'static str, fn(&Stage) -> String, fn(&Stage) -> bool);
    // (key, value as written, whether the value is what lowering would pick anyway)
    let table: [OptionRow; 10] = [
        ("block", |s| s.block.keyword().to_owned(), |_| false),
        (
            "stride_on",
            |s| s.stride_on.keyword().to_owned(),
            |s| s.stride_on == defaults::STRIDE_ON,
        ),
        (
            "shortcut",
            |s| s.shortcut.keyword().to_owned(),
            |s| s.shortcut == defaults::SHORTCUT,
        ),
        (
            "projection",
            |s| projection(&s.projection),
            |s| s.projection == defaults::projection(s.block),
        ),
        (
            "groups",
            |s| s.groups.to_string(),
            |s| s.groups == defaults::GROUPS,
        ),
        (
            "bias",
            |s| bias(&s.bias),
            |s| s.bias.iter().all(|b| *b == defaults::BIAS),
        ),
        (
            "attention",
            |s| attention(s.attention),
            |s| s.attention.is_none(),
        ),
        (
            "anti_alias",
            |s| s.anti_alias.map_or("none", |a| a.keyword()).to_owned(),
            |s| s.anti_alias.is_none(),
        ),
        (
            "stride_at",
            |s| s.stride_at.keyword().to_owned(),
            |s| s.stride_at == StrideAt::First,
        ),
        (
            "dilation",
            |s| s.dilation.to_string(),
            |s| s.dilation == 1,
        ),
    ];
    let mut shared = Vec::new();
    let mut per_stage = vec![Vec::new(); stages.len()];
    for (key, value, is_default) in table {
        if stages.iter().all(is_default) {
            continue;
        }
        let values: Vec<String> = stages.iter().map(value).collect();
        match values.first() {
            Some(first) if values.iter().all(|v| v == first) => shared.push((key, first.clone())),
            _ => {
                for ((stage, v), own) in stages.iter().zip(values).zip(per_stage.iter_mut()) {
                    if !is_default(stage) {
                        own.push((key, v));
                    }
                }
            }
        }
    }
    BlockOptions { shared, per_stage }
}

/// A float YAML reads back as the same `f64`: Rust's shortest round-trip digits, with a
/// `.0` wherever they lack a point (`1e-5` -> `1.0e-5`, `0` -> `0.0`), so that no YAML
/// schema takes it for an integer or a string.
fn float(x: f64) -> String {
    if x.is_nan() {
        return ".nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            ".inf".to_owned()
        } else {
            "-.inf".to_owned()
        };
    }
    let s = format!("{x:?}");
    if s.contains('.') {
        return s;
    }
    match s.find(['e', 'E']) {
        Some(i) => format!("{}.0{}", &s[..i], &s[i..]),
        None => format!("{s}.0"),
    }
}

/// A string as a YAML scalar: plain where that reads back as the same string, else
/// double-quoted with escapes.
fn string(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // Other non-printable characters (C1 controls, bidi marks, separators, BOM)
            // are escaped too, so the file shows what it holds and any YAML reader takes it.
            c if crate::diag::is_unprintable(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True for names like `resnet50`, `conv2_x`, `wide-resnet50-2`, `resnext50_32x4d`: a
/// letter first, then letters, digits, `_`, `-` and `.`, and not a word YAML reads
/// as a boolean or null.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "none", "nan", "inf",
    ];
    first_ok && rest_ok && !SPECIAL.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// The name, on one line, for the header comment (unprintable characters escaped).
fn comment_text(s: &str) -> String {
    crate::diag::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::fixtures::resnet50;
    use crate::ir::*;
    use crate::span::{SourceFile, Syntax};

    /// Everything off its default, and stages that disagree with each other.
    fn unusual() -> Model {
        let mut m = resnet50();
        m.name = "odd: \"name\"\n#1".into();
        m.input = Shape::new(1, 28, 30);
        m.stem.convs[0].bias = true;
        m.stem.pool = StemPool::None;
        m.stages[0].block = BlockKind::PreActBottleneck;
        m.stages[0].name = "true".into();
        m.stages[1].stride_on = StrideOn::Conv1;
        m.stages[1].shortcut = ShortcutOption::C;
        m.stages[2].projection = Projection {
            bn: false,
            bias: true,
            ..Projection::default()
        };
        m.stages[0].projection = Projection {
            bn: true,
            bias: false,
            ..Projection::default()
        };
        m.stages[3].groups = 32;
        m.stages[3].stride = 1;
        for s in &mut m.stages {
            s.bias = vec![true; s.block.arity()];
            s.anti_alias = Some(AntiAlias::Blur);
        }
        m.stages[0].bias = vec![false, true, false];
        m.stages[1].attention = Some(Attention::Se {
            reduction: 4,
            divisor: 8,
        });
        m.stages[2].attention = Some(Attention::Eca { gamma: 2, beta: 1 });
        m.stages[3].attention = Some(Attention::Eca { gamma: 3, beta: 0 });
        m.stages[1].stride_at = StrideAt::Last;
        m.stages[3].dilation = 2;
        m.stages[2].projection.kernel = 3;
        m.stages[2].projection.avg_pool = true;
        m.stem.convs.push(Conv {
            filters: 32,
            kernel: 3,
            stride: 1,
            padding: 1,
            bias: false,
        });
        m.norm = Norm::Group { groups: 32 };
        m.drop_path_rate = 0.05;
        m.head = Some(Head {
            norm: true,
            pool: HeadPool::Flatten,
            dropout: 0.1 + 0.2,
            in_features: Some(2048),
            classes: 7,
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

    fn reparse(text: &str) -> Model {
        let file = SourceFile::new("printed.yaml", text, Syntax::Yaml);
        let ast = match crate::front::yaml::parse(&file) {
            Ok(ast) => ast,
            Err(d) => panic!(
                "printed spec does not parse:\n{}\n{text}",
                crate::diag::render(&file, &d)
            ),
        };
        match crate::lower::lower(&ast, crate::span::Syntax::Yaml) {
            Ok((model, _, _)) => model,
            Err(d) => panic!(
                "printed spec does not lower:\n{}\n{text}",
                crate::diag::render(&file, &d)
            ),
        }
    }

    #[test]
    fn prints_torchvision_resnet50_tersely() {
        let text = print(&resnet50());
        let expected = "\
# resnet50
name: resnet50
input: [3, 224, 224]
stem:
  conv: {filters: 64, kernel: 7, stride: 2, padding: 3, bias: false}
  bn: true
  relu: true
  pool: {kind: max, kernel: 3, stride: 2, padding: 1, ceil_mode: false}
defaults:
  block: bottleneck
stages:
  - stage: conv2_x
    repeat: 3
    filters: [64, 64, 256]
    stride: 1
  - stage: conv3_x
    repeat: 4
    filters: [128, 128, 512]
    stride: 2
  - stage: conv4_x
    repeat: 6
    filters: [256, 256, 1024]
    stride: 2
  - stage: conv5_x
    repeat: 3
    filters: [512, 512, 2048]
    stride: 2
head:
  classes: 1000
";
        assert_eq!(text, expected);
        assert_eq!(reparse(&text), resnet50());
    }

    #[test]
    fn round_trips_every_setting() {
        let model = unusual();
        let text = print(&model);
        assert!(text.contains("    bias: true\n"), "{text}");
        assert!(text.contains("    block: preact_bottleneck\n"), "{text}");
        assert!(text.contains("    stride_on: conv1\n"), "{text}");
        assert!(
            text.contains("batch_norm: {eps: 1.001e-5, momentum: 0.01}"),
            "{text}"
        );
        assert_eq!(reparse(&text), model);
    }

    #[test]
    fn round_trips_every_stem_pool() {
        let pools = [
            StemPool::None,
            StemPool::Pool(Pool {
                kind: PoolKind::Avg,
                kernel: 2,
                stride: 2,
                padding: 0,
                ceil_mode: true,
                anti_alias: Some(AntiAlias::Avg),
            }),
            StemPool::Conv {
                conv: Conv {
                    filters: 64,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    bias: true,
                },
                anti_alias: Some(AntiAlias::Blur),
            },
            StemPool::Conv {
                conv: Conv {
                    filters: 48,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    bias: false,
                },
                anti_alias: None,
            },
        ];
        for pool in pools {
            let mut model = resnet50();
            model.stem.pool = pool;
            let text = print(&model);
            assert_eq!(reparse(&text), model, "{text}");
        }
    }

    #[test]
    fn prints_the_new_settings() {
        let text = print(&unusual());
        for line in [
            "norm: {kind: group, groups: 32}\n",
            "drop_path_rate: 0.05\n",
            "  convs:\n    - {filters: 64, kernel: 7, stride: 2, padding: 3, bias: true}\n    - {filters: 32, kernel: 3, stride: 1, padding: 1, bias: false}\n",
            "defaults:\n",
            "  anti_alias: blur\n",
            "    bias: [false, true, false]\n",
            "    attention: {kind: se, reduction: 4, divisor: 8}\n",
            "    attention: eca\n",
            "    attention: {kind: eca, gamma: 3, beta: 0}\n",
            "    stride_at: last\n",
            "    dilation: 2\n",
            "    projection: {bn: false, bias: true, kernel: 3, pool: avg}\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn floats_read_back_exactly() {
        for x in [
            0.0,
            1e-5,
            1.001e-5,
            0.1 + 0.2,
            1e20,
            5e-324,
            123456789.0,
            0.5,
        ] {
            let s = float(x);
            assert!(s.contains('.'), "{s}");
            let back: f64 = serde_saphyr::from_str(&s).expect("a YAML float");
            assert_eq!(back.to_bits(), x.to_bits(), "{s}");
        }
        assert_eq!(float(1e-5), "1.0e-5");
        assert_eq!(float(0.0), "0.0");
    }

    #[test]
    fn strings_read_back_exactly() {
        for s in [
            "resnet50",
            "conv2_x",
            "wide-resnet50-2",
            "true",
            "null",
            "12",
            "a: b",
            "# x",
            " lead",
            "tab\there",
            "q\"\\",
            "é ü",
            "\u{85}\u{2028}",
            "",
        ] {
            let yaml = format!("v: {}", string(s));
            #[derive(serde::Deserialize)]
            struct V {
                v: String,
            }
            let back: V = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!(back.v, s, "{yaml}");
        }
    }
}
