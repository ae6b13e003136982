use super::*;
use crate::ast::StemPoolAst;
use crate::span::{Span, Syntax};

fn yaml(text: &str) -> SourceFile {
    SourceFile::new("t.yaml", text, Syntax::Yaml)
}

/// The source text a span covers.
fn at(file: &SourceFile, span: Span) -> &str {
    &file.text[span.range()]
}

/// The single diagnostic a document fails with.
fn error(text: &str) -> (SourceFile, Diagnostic) {
    let file = yaml(text);
    match parse(&file) {
        Ok(_) => panic!("parsed but should not:\n{text}"),
        Err(mut d) => {
            assert_eq!(d.len(), 1, "{d:?}");
            let d = d.remove(0);
            (file, d)
        }
    }
}

/// Line of the primary label, and the text it underlines.
fn label(file: &SourceFile, d: &Diagnostic) -> (usize, String) {
    let span = d.primary_span().expect("a primary label");
    (file.line_col(span.start).0, at(file, span).to_owned())
}

const FULL: &str = "\
# A comment header.

name: resnet50
input: [3, 224, 224]
stem:
  conv: {filters: 64, kernel: 7, stride: 2, padding: 3, bias: false}
  bn: true
  relu: true
  pool: {kind: max, kernel: 3, stride: 2, padding: 1, ceil_mode: false}
defaults:
  block: bottleneck
  stride_on: v1.5
  shortcut: B
  projection: {bn: true, bias: false}
  groups: 1
  width_per_group: 64
  bias: false
stages:
  - stage: conv2_x   # the first stage
    repeat: 3
    filters: [64, 64, 256]
    stride: 1
  - stage: conv3_x
    repeat: -4
    filters: [128, 128, 512]
    stride: 2
    shortcut: C
    stride_on: 1.5
    projection: {bias: true}
  - repeat: 1000000000000
    filters:
      - 256
      - 256
      - 1024
head: {norm: false, pool: avg, dropout: 0, in_features: 2048, classes: 1000, softmax: false}
init: kaiming_normal
zero_init_residual: false
batch_norm: {eps: 1.0e-5, momentum: 0.1}
";

#[test]
fn parses_every_section_with_values_and_spans() {
    let file = yaml(FULL);
    let ast = parse(&file).expect("valid");
    assert_eq!(at(&file, ast.span), "name: resnet50");

    let name = ast.name.as_ref().expect("name");
    assert_eq!(
        (name.value.as_str(), at(&file, name.span)),
        ("resnet50", "resnet50")
    );

    let input = ast.input.as_ref().expect("input");
    assert_eq!(at(&file, input.span), "[3, 224, 224]");
    let c = input.value.channels.as_ref().expect("channels");
    assert_eq!((c.value, at(&file, c.span)), (3, "3"));
    assert_eq!(input.value.width.as_ref().map(|w| w.value), Some(224));

    let stem = ast.stem.as_ref().expect("stem");
    assert_eq!(
        at(&file, stem.span),
        "conv: {filters: 64, kernel: 7, stride: 2, padding: 3, bias: false}"
    );
    let conv = stem.value.conv.as_ref().expect("conv");
    assert_eq!(
        at(&file, conv.span),
        "{filters: 64, kernel: 7, stride: 2, padding: 3, bias: false}"
    );
    let kernel = conv.value.kernel.as_ref().expect("kernel");
    assert_eq!((kernel.value, at(&file, kernel.span)), (7, "7"));
    assert_eq!(conv.value.bias.as_ref().map(|b| b.value), Some(false));
    assert_eq!(
        stem.value.bn.as_ref().map(|b| (b.value, at(&file, b.span))),
        Some((true, "true"))
    );
    match &stem.value.pool.as_ref().expect("pool").value {
        StemPoolAst::Pool(p) => {
            assert_eq!(p.kind.as_ref().map(|k| k.value.as_str()), Some("max"));
            assert_eq!(p.ceil_mode.as_ref().map(|k| k.value), Some(false));
        }
        StemPoolAst::None => panic!("pool is given"),
    }

    let defaults = ast.defaults.as_ref().expect("defaults");
    assert_eq!(at(&file, defaults.span), "block: bottleneck");
    let d = &defaults.value;
    assert_eq!(
        d.stride_on
            .as_ref()
            .map(|s| (s.value.as_str(), at(&file, s.span))),
        Some(("v1.5", "v1.5"))
    );
    assert_eq!(d.shortcut.as_ref().map(|s| s.value.as_str()), Some("B"));
    assert_eq!(d.width_per_group.as_ref().map(|s| s.value), Some(64));
    let projection = d.projection.as_ref().expect("projection");
    assert_eq!(projection.value.bn.as_ref().map(|b| b.value), Some(true));

    let stages = ast.stages.as_ref().expect("stages");
    assert_eq!(at(&file, stages.span), "- stage: conv2_x");
    let [s1, s2, s3] = stages.value.as_slice() else {
        panic!("three stages")
    };
    assert_eq!(at(&file, s1.span), "stage: conv2_x");
    assert_eq!(file.line_col(s1.span.start), (19, 5));
    assert_eq!(
        s1.value.name.as_ref().map(|n| at(&file, n.span)),
        Some("conv2_x")
    );
    let filters = s1.value.filters.as_ref().expect("filters");
    assert_eq!(at(&file, filters.span), "[64, 64, 256]");
    let f: Vec<(i64, &str)> = filters
        .value
        .iter()
        .map(|f| (f.value, at(&file, f.span)))
        .collect();
    assert_eq!(f, [(64, "64"), (64, "64"), (256, "256")]);
    assert_eq!(s1.value.stride.as_ref().map(|s| s.value), Some(1));

    // Negative and huge numbers get through, for lowering to range-check.
    assert_eq!(
        s2.value
            .repeat
            .as_ref()
            .map(|r| (r.value, at(&file, r.span))),
        Some((-4, "-4"))
    );
    assert_eq!(
        s3.value.repeat.as_ref().map(|r| r.value),
        Some(1_000_000_000_000)
    );
    // Block options on a stage; a keyword YAML would type as a float arrives as written.
    assert_eq!(
        s2.value.options.shortcut.as_ref().map(|s| s.value.as_str()),
        Some("C")
    );
    assert_eq!(
        s2.value
            .options
            .stride_on
            .as_ref()
            .map(|s| s.value.as_str()),
        Some("1.5")
    );
    let p = s2.value.options.projection.as_ref().expect("projection");
    assert_eq!(
        (p.value.bn.is_none(), p.value.bias.as_ref().map(|b| b.value)),
        (true, Some(true))
    );
    // A stage without a name, filters as a block list.
    assert!(s3.value.name.is_none());
    assert_eq!(at(&file, s3.span), "repeat: 1000000000000");
    let f3 = s3.value.filters.as_ref().expect("filters");
    assert_eq!(
        f3.value.iter().map(|f| f.value).collect::<Vec<_>>(),
        [256, 256, 1024]
    );
    assert_eq!(
        f3.value
            .iter()
            .map(|f| at(&file, f.span))
            .collect::<Vec<_>>(),
        ["256", "256", "1024"]
    );

    let head = ast.head.as_ref().expect("head").value.clone();
    assert_eq!(head.dropout.map(|d| d.value), Some(0.0));
    assert_eq!(head.pool.map(|p| p.value), Some("avg".to_owned()));
    assert_eq!(head.classes.map(|c| c.value), Some(1000));
    assert_eq!(head.in_features.map(|c| c.value), Some(2048));
    assert_eq!(
        ast.init.as_ref().map(|i| i.value.as_str()),
        Some("kaiming_normal")
    );
    assert_eq!(
        ast.zero_init_residual.as_ref().map(|z| z.value),
        Some(false)
    );
    let bn = &ast.batch_norm.as_ref().expect("batch_norm").value;
    assert_eq!(
        bn.eps.as_ref().map(|e| (e.value, at(&file, e.span))),
        Some((1e-5, "1.0e-5"))
    );
    assert_eq!(bn.momentum.as_ref().map(|m| m.value), Some(0.1));
    assert!(ast.unknown.is_empty());
}

#[test]
fn accepts_the_alternative_forms() {
    let file =
        yaml("name: x\ninput: {channels: 1, height: 28, width: 30}\nstem: {pool: none}\nbatch_norm: {eps: 1e-5}\n");
    let ast = parse(&file).expect("valid");
    let input = ast.input.expect("input").value;
    let h = input.height.expect("height");
    assert_eq!((h.value, at(&file, h.span)), (28, "28"));
    assert_eq!(input.width.map(|w| w.value), Some(30));
    let pool = ast.stem.expect("stem").value.pool.expect("pool");
    assert_eq!(
        (pool.value, at(&file, pool.span)),
        (StemPoolAst::None, "none")
    );
    assert_eq!(
        ast.batch_norm.and_then(|b| b.value.eps).map(|e| e.value),
        Some(1e-5)
    );

    // `pool: false` means no pooling too; a partial input list leaves the rest missing.
    let ast = parse(&yaml("stem: {pool: false}\ninput: [3, 32]\n")).expect("valid");
    assert_eq!(
        ast.stem.and_then(|s| s.value.pool).map(|p| p.value),
        Some(StemPoolAst::None)
    );
    assert!(ast.input.expect("input").value.width.is_none());
}

#[test]
fn empty_and_comment_only_documents_are_empty_specs() {
    for text in ["", "\n\n", "# just a comment\n", "   \n# a\n   # b\n"] {
        let ast = parse(&yaml(text)).unwrap_or_else(|d| panic!("{text:?}: {d:?}"));
        assert_eq!(
            ast,
            SpecAst {
                span: ast.span,
                ..SpecAst::default()
            }
        );
        assert!(ast.span.start <= text.len());
    }
}

#[test]
fn unknown_key_names_the_section_and_suggests_the_key() {
    let (file, d) = error("name: x\nstages:\n  - stage: conv2_x\n    filtres: [64, 64]\n");
    assert_eq!(d.code, "E-unknown-key");
    assert_eq!(d.message, "unknown key `filtres` in stage");
    assert_eq!(label(&file, &d), (4, "filtres".to_owned()));
    assert_eq!(d.help, ["did you mean `filters`?"]);
    assert!(
        d.notes[0].contains("repeat, filters, stride"),
        "{:?}",
        d.notes
    );

    let (file, d) = error("name: x\nheads: {classes: 10}\n");
    assert_eq!(
        (d.code, d.message.as_str()),
        ("E-unknown-key", "unknown key `heads` at the top level")
    );
    assert_eq!(label(&file, &d), (2, "heads".to_owned()));
    assert_eq!(d.help, ["did you mean `head`?"]);

    let (file, d) = error("stem:\n  pool: {kind: max, kernl: 3}\n");
    assert_eq!(d.message, "unknown key `kernl` in stem.pool");
    assert_eq!(label(&file, &d), (2, "kernl".to_owned()));
    let (_, d) = error("input: {channels: 3, hieght: 4}\n");
    assert_eq!(
        (d.message.as_str(), d.help[0].as_str()),
        ("unknown key `hieght` in input", "did you mean `height`?")
    );
    let (_, d) = error("defaults: {blok: basic}\n");
    assert_eq!(d.message, "unknown key `blok` in defaults");
    let (_, d) = error("head: {clases: 10}\n");
    assert_eq!(d.message, "unknown key `clases` in head");
    // Nothing close: no guess, still the list.
    let (_, d) = error("zzzzzz: 1\n");
    assert!(d.help.is_empty());
    assert!(d.notes[0].contains("batch_norm"));
}

#[test]
fn wrong_types_say_what_was_expected() {
    let (file, d) = error("stages:\n  - stage: x\n    repeat: three\n");
    assert_eq!(d.code, "E-yaml-type");
    assert_eq!(d.message, "wrong type: expected an integer, found `three`");
    assert_eq!(label(&file, &d), (3, "three".to_owned()));

    let (file, d) = error("stages:\n  - repeat: 3.5\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (2, "3.5".to_owned()))
    );
    assert!(d.help[0].contains("whole number"));

    let (file, d) = error("stem:\n  conv: {filters: 99999999999999999999}\n");
    assert_eq!(d.code, "E-yaml-type");
    assert_eq!(d.message, "integer `99999999999999999999` is too large");
    assert_eq!(label(&file, &d).0, 2);

    let (file, d) = error("name: x\nstem: 3\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (2, "3".to_owned()))
    );
    assert!(d.message.contains("expected a mapping"), "{}", d.message);

    let (_, d) = error("- a\n- b\n");
    assert_eq!(
        (d.code, d.message.as_str()),
        (
            "E-yaml-type",
            "wrong type: expected a mapping (`key: value` entries), found a list"
        )
    );
    let (_, d) = error("just a scalar\n");
    assert_eq!(d.code, "E-yaml-type");

    let (file, d) = error("head:\n  softmax: maybe\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (2, "maybe".to_owned()))
    );
    let (file, d) = error("head:\n  dropout: lots\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (2, "lots".to_owned()))
    );
    let (file, d) = error("stages:\n  - filters: 64\n");
    assert_eq!((d.code, label(&file, &d).0), ("E-yaml-type", 2));
    let (file, d) = error("stages: {repeat: 3}\n");
    assert_eq!((d.code, label(&file, &d).0), ("E-yaml-type", 1));

    let (file, d) = error("stem:\n  pool: nothing\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (2, "nothing".to_owned()))
    );
    let (_, d) = error("stem:\n  pool: None\n");
    assert_eq!(d.help, ["did you mean `none`?"]);

    let (file, d) = error("input: [3, 224, 224, 1]\n");
    assert_eq!(
        (d.code, label(&file, &d)),
        ("E-yaml-type", (1, "1".to_owned()))
    );
    let (file, d) = error("input: 224\n");
    assert_eq!((d.code, label(&file, &d).0), ("E-yaml-type", 1));
}

#[test]
fn duplicate_keys_are_reported_at_the_second() {
    let (file, d) = error("name: a\ninput: [3, 32, 32]\nname: b\n");
    assert_eq!(d.code, "E-duplicate-key");
    assert_eq!(d.message, "duplicate key `name`");
    assert_eq!(label(&file, &d), (3, "name".to_owned()));
    let first = d
        .labels
        .iter()
        .find(|l| !l.primary)
        .expect("first occurrence");
    assert_eq!(file.line_col(first.span.start), (1, 1));
    let (file, d) = error("stages:\n  - repeat: 1\n  - repeat: 1\n    # note\n\n    repeat: 2\n");
    assert_eq!((d.code, label(&file, &d).0), ("E-duplicate-key", 6));
    let first = d
        .labels
        .iter()
        .find(|l| !l.primary)
        .expect("first occurrence");
    assert_eq!(
        (file.line_col(first.span.start), at(&file, first.span)),
        ((3, 5), "repeat")
    );
    // The first occurrence is looked for in the same mapping only.
    let (file, d) = error("stages:\n  - filters: [1, 1]\n  - repeat: 1\n    repeat: 2\n");
    let first = d
        .labels
        .iter()
        .find(|l| !l.primary)
        .expect("first occurrence");
    assert_eq!(file.line_col(first.span.start), (3, 5));
    let (_, d) = error("stages:\n  - {repeat: 1, repeat: 2}\n");
    assert_eq!((d.code, d.labels.len()), ("E-duplicate-key", 1));
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let (file, d) =
        error("name: broken\nstages:\n  - stage: conv2_x\n    filters: [64, 64\n    repeat: 2\n");
    assert_eq!(d.code, "E-yaml-syntax");
    assert_eq!(label(&file, &d).0, 5);
    // The unclosed bracket that caused it is shown too.
    let open = d
        .labels
        .iter()
        .find(|l| !l.primary)
        .expect("secondary label");
    assert_eq!(
        (file.line_col(open.span.start), at(&file, open.span)),
        ((4, 14), "[")
    );
    assert_eq!(d.help, ["close it with `]`"]);

    let (_, d) = error("name: x\n  bad indent: 1\n");
    assert_eq!(d.code, "E-yaml-syntax");
    let (_, d) = error("name: \"unterminated\n");
    assert_eq!(d.code, "E-yaml-syntax");
    let (file, d) = error("name: x\n---\nname: y\n");
    assert_eq!((d.code, label(&file, &d).0), ("E-yaml-syntax", 2));
    let (_, d) = error("name: *nowhere\n");
    assert_eq!(d.code, "E-yaml-syntax");
    let (_, d) = error("\t- tab\n");
    assert!(d.code.starts_with("E-yaml"));
}

#[test]
fn aliases_are_reported_where_used() {
    // Anchors are plain YAML and work; the span is where the value is used.
    let file = yaml("name: &n x\ninit: *n\n");
    let ast = parse(&file).expect("valid");
    assert_eq!(
        ast.init
            .map(|i| (i.value.clone(), at(&file, i.span).to_owned())),
        Some(("x".into(), "*n".into()))
    );
}

#[test]
fn limits_stop_hostile_documents() {
    // Deep flow nesting.
    let deep = format!("name: {}{}\n", "[".repeat(400_000), "]".repeat(400_000));
    let (_, d) = error(&deep);
    assert!(d.code.starts_with("E-yaml"), "{d:?}");
    // Deep block nesting.
    let mut block = String::new();
    for i in 0..2_000 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    let (_, d) = error(&block);
    assert!(d.code.starts_with("E-"), "{d:?}");
    // Billion laughs.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        laughs.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let (_, d) = error(&laughs);
    assert!(d.code.starts_with("E-"), "{d:?}");
    let laughs_as_name = format!(
        "name: &x [{}]\nstages: [*x, *x, *x]\n",
        ["1"; 10].join(", ")
    );
    let _ = parse(&yaml(&laughs_as_name));
    // A huge list of numbers.
    let long = format!("stages:\n  - filters: [{}]\n", vec!["1"; 30_000].join(", "));
    let (_, d) = error(&long);
    assert_eq!(d.code, "E-yaml-limit", "{d:?}");
    assert_eq!(
        d.message,
        "the document is too large to be a spec: more than 20000 values"
    );
    // (More text than any spec is refused before parsing: `front::tests`.)
}

#[test]
fn garbage_never_panics() {
    let samples: &[&str] = &[
        "\u{0}\u{1}\u{ff}garbage{{{",
        "\u{feff}name: bom\n",
        ":",
        "- - - -",
        "{",
        "]",
        "&",
        "*",
        "!",
        "!!binary AAAA",
        "name: !!int 3\n",
        "repeat: !custom 3\n",
        "? complex key\n: value\n",
        "<<: {name: x}\n",
        "name: |\n  multi\n  line\n",
        "name: >\n  folded\n",
        "...\n",
        "---\n",
        "--- !!map\n",
        "%YAML 1.2\n---\nname: x\n",
        "%BAD\n",
        "name: x\n...\n...\n",
        "~",
        "null",
        "name:\n",
        "name: ~\nstages: ~\n",
        "stages:\n  -\n  - ~\n",
        "stages: []\n",
        "stages: [{}]\n",
        "stages: [[1, 2]]\n",
        "input: []\n",
        "input: [a, b, c]\n",
        "input: [-1, 1e400, .nan]\n",
        "batch_norm: {eps: .nan, momentum: -.inf}\n",
        "head: {dropout: 1e999}\n",
        "name: \"\\uD800\"\n",
        "name: 'a''b'\n",
        "\"name\": x\n",
        "name: x\r\ninput: [3, 4, 5]\r\n",
        "name: x # comment with 'quote\n",
        "stem:\n  conv: {filters: 64 kernel: 7}\n",
        "ñame: ü\n",
        "name: x\n\u{2028}\n",
        "stages:\n- stage: a\n  repeat: 1\n    filters: [1]\n",
    ];
    for s in samples {
        let _ = parse(&yaml(s));
    }
    // Every prefix of a real spec, cut at every character.
    for (i, _) in FULL.char_indices().step_by(3) {
        let file = yaml(&FULL[..i]);
        if let Err(diags) = parse(&file) {
            for d in diags {
                let span = d.primary_span().expect("every error has a label");
                assert!(
                    span.end <= file.text.len() && file.text.is_char_boundary(span.start),
                    "{d:?}"
                );
            }
        }
    }
    // Bytes that are not text at all, decoded lossily as the CLI would.
    let bytes: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = parse(&yaml(&String::from_utf8_lossy(&bytes)));
}

/// Every shipped spec parses, compiles, and prints back to the same model.
#[test]
fn shipped_specs_compile_and_round_trip_through_the_printer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("specs/") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).expect("readable");
        let file = SourceFile::new(path.display().to_string(), text, Syntax::Yaml);
        let compiled =
            crate::compile(&file).unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
        assert!(
            compiled.warnings.is_empty(),
            "{}",
            crate::diag::render(&file, &compiled.warnings)
        );
        let printed = crate::back::yaml::print(&compiled.model);
        let again = SourceFile::new("printed.yaml", printed.as_str(), Syntax::Yaml);
        let recompiled = crate::compile(&again).unwrap_or_else(|d| {
            panic!(
                "{}:\n{}\n{printed}",
                file.name,
                crate::diag::render(&again, &d)
            )
        });
        assert_eq!(
            recompiled.model, compiled.model,
            "{}:\n{printed}",
            file.name
        );
        assert_eq!(
            recompiled.network.totals, compiled.network.totals,
            "{}",
            file.name
        );
        // Printing is a fixed point.
        assert_eq!(crate::back::yaml::print(&recompiled.model), printed);
    }
    assert!(seen >= 18, "only {seen} specs");
}

#[test]
fn quoted_numbers_and_booleans_are_strings() {
    for (text, line, token, expected) in [
        ("stages:\n  - repeat: \"2\"\n", 2, "\"2\"", "an integer"),
        (
            "stages:\n  - filters: [64, '64']\n",
            2,
            "'64'",
            "an integer",
        ),
        ("input: {channels: \"3\"}\n", 1, "\"3\"", "an integer"),
        ("batch_norm: {eps: \"1e-5\"}\n", 1, "\"1e-5\"", "a number"),
        (
            "head: {softmax: \"true\"}\n",
            1,
            "\"true\"",
            "`true` or `false`",
        ),
    ] {
        let (file, d) = error(text);
        assert_eq!(d.code, "E-yaml-type", "{text}");
        assert_eq!(
            d.message,
            format!("wrong type: expected {expected}, found the string {token}"),
            "{text}"
        );
        assert_eq!(label(&file, &d), (line, token.to_owned()), "{text}");
        assert_eq!(
            d.help,
            [format!(
                "remove the quotes: `{}`",
                token.trim_matches(['"', '\''])
            )]
        );
    }
    // Quotes stay fine where text is expected.
    let ast = parse(&yaml("name: \"42\"\ninit: 'kaiming_normal'\n")).unwrap();
    assert_eq!(ast.name.map(|n| n.value).as_deref(), Some("42"));
}

#[test]
fn a_tagged_scalar_is_not_called_too_large() {
    let (file, d) = error("stages:\n  - repeat: !!str 2\n");
    assert_eq!(d.code, "E-yaml-type");
    assert_eq!(
        d.message,
        "wrong type: expected an integer, found a string (`!!str 2`)"
    );
    assert_eq!(label(&file, &d), (2, "2".to_owned()));
    assert_eq!(d.help, ["remove the `!!str` tag: `2`"]);
    let (_, d) = error("batch_norm: {eps: !!str 1e-5}\n");
    assert_eq!(
        d.message,
        "wrong type: expected a number, found a string (`!!str 1e-5`)"
    );
    // A number that really is too large is still reported as such.
    let (_, d) = error("stages:\n  - repeat: 99999999999999999999\n");
    assert_eq!(d.message, "integer `99999999999999999999` is too large");
}

#[test]
fn a_null_value_is_an_error_not_the_default() {
    for (text, key) in [
        ("stem:\n  pool: ~\n", "pool"),
        ("stem:\n  pool: null\n", "pool"),
        ("stem:\n  pool:\n  bn: true\n", "pool"),
        ("stem: {pool: }\n", "pool"),
        ("stem: {bn: ~}\n", "bn"),
        ("head:\n  softmax:\n", "softmax"),
        ("defaults: ~\n", "defaults"),
        ("stages:\n  - {repeat: ~}\n", "repeat"),
        ("batch_norm: {eps: }\n", "eps"),
    ] {
        let (file, d) = error(text);
        assert_eq!(
            (d.code, d.message.clone()),
            ("E-yaml-type", format!("`{key}` has no value")),
            "{text}"
        );
        assert_eq!(at(&file, d.primary_span().unwrap()), key, "{text}");
    }
    let (_, d) = error("stem:\n  pool: ~\n");
    assert!(
        d.help[0].contains("`pool: none` for no pooling"),
        "{:?}",
        d.help
    );
    let (_, d) = error("stages:\n  - {repeat: ~}\n");
    assert_eq!(d.help, ["give `repeat` a value: it is required"]);
    // `none` and a left-out pool keep their meanings.
    let ast = parse(&yaml("stem: {pool: none}\n")).unwrap();
    assert_eq!(
        ast.stem.unwrap().value.pool.map(|p| p.value),
        Some(StemPoolAst::None)
    );
    let ast = parse(&yaml("stem: {bn: true}\n")).unwrap();
    assert_eq!(ast.stem.unwrap().value.pool, None);
}

#[test]
fn library_internals_stay_out_of_messages() {
    let mut merges = String::from("stages:\n  - &x {block: basic}\n");
    for i in 0..101 {
        merges.push_str(&format!("  - {{<<: *x, stage: s{i}}}\n"));
    }
    let (_, d) = error(&merges);
    assert_eq!(d.code, "E-yaml-limit");
    assert_eq!(
        d.message,
        "the document is too large to be a spec: more than 100 merge keys (`<<`)"
    );

    let (file, d) = error("name: a\n---\nname: b\n");
    assert_eq!(
        d.message,
        "a spec is a single YAML document, but this file holds more than one"
    );
    assert_eq!(label(&file, &d), (2, "---".to_owned()));
    // A `---` that opens the first document is fine.
    parse(&yaml("---\nname: a\n")).unwrap();

    for text in [
        merges.as_str(),
        "name: a\n---\nname: b\n",
        "a: &a [*a]\n",
        "x: !!binary zz\n",
    ] {
        let d = parse(&yaml(text)).unwrap_err();
        for m in d
            .iter()
            .flat_map(|d| std::iter::once(&d.message).chain(&d.help).chain(&d.notes))
        {
            assert!(!m.contains("from_str") && !m.contains(" { "), "{m}");
        }
    }
}

/// Trainable parameters of a spec, as `resnetc table` counts them.
fn trainable(file: &SourceFile) -> u64 {
    let c = crate::compile(file).unwrap_or_else(|d| panic!("{}", crate::diag::render(file, &d)));
    assert!(
        c.warnings.is_empty(),
        "{}",
        crate::diag::render(file, &c.warnings)
    );
    crate::back::table::json(&c.model, &c.network)["params"]["trainable"]
        .as_u64()
        .unwrap()
}

/// torchvision's ResNeXt and Wide ResNet written with its own constructor arguments:
/// `width_per_group` as the base width (`width = planes * width_per_group / 64 * groups`).
#[test]
fn torchvision_form_of_resnext_and_wide_resnet() {
    let spec = |name: &str, groups: u64, width: u64, repeats: [u64; 4], mids: [u64; 4]| {
        let mut s = format!("name: {name}\ndefaults: {{block: bottleneck, groups: {groups}, width_per_group: {width}}}\nstages:\n");
        for (i, (r, m)) in repeats.iter().zip(mids).enumerate() {
            let out = 256 << i;
            s.push_str(&format!(
                "  - {{repeat: {r}, filters: [{m}, {m}, {out}]}}\n"
            ));
        }
        yaml(&s)
    };
    let resnext50 = spec(
        "resnext50_32x4d",
        32,
        4,
        [3, 4, 6, 3],
        [128, 256, 512, 1024],
    );
    assert_eq!(trainable(&resnext50), 25_028_904);
    let resnext101 = spec(
        "resnext101_32x8d",
        32,
        8,
        [3, 4, 23, 3],
        [256, 512, 1024, 2048],
    );
    assert_eq!(trainable(&resnext101), 88_791_336);
    let wide50 = spec(
        "wide_resnet50_2",
        1,
        128,
        [3, 4, 6, 3],
        [128, 256, 512, 1024],
    );
    assert_eq!(trainable(&wide50), 68_883_240);
    // The per-stage reading (channels per group of each stage's 3x3), as the shipped
    // resnext50-32x4d.yaml writes it, stays accepted.
    let shipped = crate::span::SourceFile::new(
        "resnext50-32x4d.yaml",
        include_str!("../../../specs/resnext50-32x4d.yaml"),
        Syntax::Yaml,
    );
    assert_eq!(trainable(&shipped), 25_028_904);
}

#[test]
fn labels_under_a_long_line_stop_early() {
    // One 0.9 MB line of mappings: every mapping's label is looked up from its start, so
    // each lookup must stop after a bounded stretch of the line (or the run is quadratic).
    let line = format!("{{x: [{}]}}", "{a: 1}, ".repeat(110_000));
    let span = super::convert::first_line_from(&line, 5);
    assert_eq!(span.start, 5);
    assert!(
        span.end - span.start <= 256,
        "a label covers {} bytes",
        span.end - span.start
    );
    // A short line still ends at its end, less a comment.
    let short = "stem: {conv: 7} # the stem\nnext: 1";
    let span = super::convert::first_line_from(short, 0);
    assert_eq!(&short[span.start..span.end], "stem: {conv: 7}");
}

#[test]
fn new_constructs_parse_with_spans() {
    let text = "\
name: x
norm: {kind: group, groups: 32}
drop_path_rate: 0.05
stem:
  convs:
    - {filters: 32, kernel: 3, stride: 2, padding: 1}
    - {filters: 64, kernel: 3, stride: 1, padding: 1}
  pool: {kind: conv, filters: 64, kernel: 3, stride: 2, padding: 1, anti_alias: blur}
defaults:
  block: bottleneck
  attention: se
  projection: {pool: avg, kernel: 3}
  bias: [false, false, true]
stages:
  - {repeat: 1, filters: [64, 64, 256], stride_at: last, dilation: 2, anti_alias: avg,
     attention: {kind: eca, gamma: 3, beta: 0}}
";
    let file = yaml(text);
    let ast = parse(&file).unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
    let norm = ast.norm.expect("norm");
    assert_eq!(at(&file, norm.span), "{kind: group, groups: 32}");
    assert_eq!(norm.value.groups.map(|g| g.value), Some(32));
    assert_eq!(ast.drop_path_rate.map(|d| d.value), Some(0.05));
    let stem = ast.stem.expect("stem").value;
    let convs = stem.convs.expect("convs").value;
    assert_eq!(convs.len(), 2);
    assert_eq!(at(&file, convs[1].span), "{filters: 64, kernel: 3, stride: 1, padding: 1}");
    let Some(StemPoolAst::Pool(pool)) = stem.pool.map(|p| p.value) else {
        panic!("a pool mapping")
    };
    assert_eq!(pool.kind.map(|k| k.value).as_deref(), Some("conv"));
    assert_eq!(pool.filters.map(|f| f.value), Some(64));
    assert_eq!(pool.anti_alias.map(|a| a.value).as_deref(), Some("blur"));
    let d = ast.defaults.expect("defaults").value;
    let attention = d.attention.expect("attention");
    assert_eq!(at(&file, attention.span), "se");
    assert_eq!(attention.value.kind.map(|k| k.value).as_deref(), Some("se"));
    let projection = d.projection.expect("projection").value;
    assert_eq!(projection.pool.map(|p| p.value).as_deref(), Some("avg"));
    assert_eq!(projection.kernel.map(|k| k.value), Some(3));
    let Some(crate::ast::BiasAst::PerConv(flags)) = d.bias.map(|b| b.value) else {
        panic!("a bias list")
    };
    assert_eq!(flags.iter().map(|f| f.value).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(at(&file, flags[2].span), "true");
    let stages = ast.stages.expect("stages").value;
    let o = &stages[0].value.options;
    assert_eq!(o.stride_at.as_ref().map(|s| s.value.as_str()), Some("last"));
    assert_eq!(o.dilation.as_ref().map(|s| s.value), Some(2));
    assert_eq!(o.anti_alias.as_ref().map(|s| s.value.as_str()), Some("avg"));
    let eca = o.attention.as_ref().expect("attention").value.clone();
    assert_eq!((eca.gamma.map(|g| g.value), eca.beta.map(|b| b.value)), (Some(3), Some(0)));
}

#[test]
fn a_scalar_norm_is_its_kind() {
    let file = yaml("name: x\nnorm: batch\n");
    let ast = parse(&file).expect("parses");
    let norm = ast.norm.expect("norm");
    assert_eq!(at(&file, norm.span), "batch");
    assert_eq!(norm.value.kind.map(|k| k.value).as_deref(), Some("batch"));
}

#[test]
fn unknown_key_in_attention_names_the_section() {
    let (_, d) = error("name: x\ndefaults: {attention: {kind: se, ratio: 4}}\n");
    assert!(d.message.contains("ratio"), "{}", d.message);
    assert!(
        d.notes.iter().any(|n| n.contains("in attention")),
        "{:?}",
        d.notes
    );
}
