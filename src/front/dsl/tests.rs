use super::*;
use crate::ast::{StageAst, StemPoolAst};
use crate::span::{Span, Spanned, Syntax};

fn file(text: &str) -> SourceFile {
    SourceFile::new("t.resnet", text, Syntax::Dsl)
}

fn ok(text: &str) -> SpecAst {
    let f = file(text);
    parse(&f).unwrap_or_else(|d| panic!("{}", crate::diag::render(&f, &d)))
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(&file(text)) {
        Ok(ast) => panic!("expected errors, parsed {ast:?}"),
        Err(d) => d,
    }
}

/// The span of the `n`th occurrence (0-based) of `needle` in `text`.
fn at(text: &str, needle: &str, n: usize) -> Span {
    let start = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("`{needle}` #{n} not in text"))
        .0;
    Span::new(start, start + needle.len())
}

/// The span of the `n`th occurrence of `needle` on the line that starts with `line`.
fn on(text: &str, line: &str, needle: &str, n: usize) -> Span {
    let start = text
        .match_indices(line)
        .find(|(i, _)| *i == 0 || text[..*i].ends_with('\n'));
    let start = start.unwrap_or_else(|| panic!("no line `{line}`")).0;
    let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
    let found = at(&text[start..end], needle, n);
    Span::new(start + found.start, start + found.end)
}

/// `span` without its first `n` bytes (the number of `x3` or `/2`).
fn skip(span: Span, n: usize) -> Span {
    Span::new(span.start + n, span.end)
}

fn value<T: Clone>(f: &Option<Spanned<T>>) -> Option<T> {
    f.as_ref().map(|s| s.value.clone())
}

fn stage(ast: &SpecAst, i: usize) -> &Spanned<StageAst> {
    &ast.stages.as_ref().expect("stages").value[i]
}

const RESNET50: &str = "\
# ResNet-50 as in torchvision (v1.5: stride on the 3x3)
model resnet50
input 3x224x224
stem conv 7x7/2 pad 3 -> 64, bn, relu, maxpool 3x3/2 pad 1
defaults bottleneck, stride_on conv2, shortcut B

conv2_x: bottleneck [64, 64, 256] x3
conv3_x: bottleneck [128, 128, 512] x4 /2   # halves the map
conv4_x: bottleneck [256, 256, 1024] x6 /2
conv5_x: bottleneck [512, 512, 2048] x3 /2
head avgpool, fc 1000
";

#[test]
fn resnet50_parses_with_exact_spans() {
    let t = RESNET50;
    let ast = ok(t);
    assert_eq!(ast.span, on(t, "model", "model resnet50", 0));
    let name = ast.name.as_ref().unwrap();
    assert_eq!(
        (name.value.as_str(), name.span),
        ("resnet50", on(t, "model", "resnet50", 0))
    );

    let input = ast.input.as_ref().unwrap();
    assert_eq!(input.span, on(t, "input", "input 3x224x224", 0));
    assert_eq!(
        input.value.channels,
        Some(Spanned::new(3, on(t, "input", "3", 0)))
    );
    assert_eq!(
        input.value.height,
        Some(Spanned::new(224, on(t, "input", "224", 0)))
    );
    assert_eq!(
        input.value.width,
        Some(Spanned::new(224, on(t, "input", "224", 1)))
    );

    let stem = ast.stem.as_ref().unwrap();
    assert_eq!(
        stem.span,
        on(
            t,
            "stem",
            "stem conv 7x7/2 pad 3 -> 64, bn, relu, maxpool 3x3/2 pad 1",
            0
        )
    );
    let conv = stem.value.conv.as_ref().unwrap();
    assert_eq!(conv.span, on(t, "stem", "conv 7x7/2 pad 3 -> 64", 0));
    assert_eq!(
        conv.value.kernel,
        Some(Spanned::new(7, on(t, "stem", "7x7", 0)))
    );
    assert_eq!(
        conv.value.stride,
        Some(Spanned::new(2, on(t, "stem", "2", 0)))
    );
    assert_eq!(
        conv.value.padding,
        Some(Spanned::new(3, on(t, "stem", "3", 0)))
    );
    assert_eq!(
        conv.value.filters,
        Some(Spanned::new(64, on(t, "stem", "64", 0)))
    );
    assert_eq!(conv.value.bias, None);
    assert_eq!(
        stem.value.bn,
        Some(Spanned::new(true, on(t, "stem", "bn", 0)))
    );
    assert_eq!(
        stem.value.relu,
        Some(Spanned::new(true, on(t, "stem", "relu", 0)))
    );
    let pool = stem.value.pool.as_ref().unwrap();
    assert_eq!(pool.span, on(t, "stem", "maxpool 3x3/2 pad 1", 0));
    let StemPoolAst::Pool(pool) = &pool.value else {
        panic!("a pool")
    };
    assert_eq!(
        pool.kind,
        Some(Spanned::new("max".to_string(), on(t, "stem", "max", 0)))
    );
    assert_eq!(pool.kernel, Some(Spanned::new(3, on(t, "stem", "3x3", 0))));
    assert_eq!(pool.stride, Some(Spanned::new(2, on(t, "stem", "2", 1))));
    assert_eq!(pool.padding, Some(Spanned::new(1, on(t, "stem", "1", 0))));
    assert_eq!(pool.ceil_mode, None);

    let defaults = ast.defaults.as_ref().unwrap();
    assert_eq!(
        defaults.span,
        on(
            t,
            "defaults",
            "defaults bottleneck, stride_on conv2, shortcut B",
            0
        )
    );
    assert_eq!(
        defaults.value.block,
        Some(Spanned::new(
            "bottleneck".to_string(),
            on(t, "defaults", "bottleneck", 0)
        ))
    );
    assert_eq!(
        defaults.value.stride_on,
        Some(Spanned::new(
            "conv2".to_string(),
            on(t, "defaults", "conv2", 0)
        ))
    );
    assert_eq!(
        defaults.value.shortcut,
        Some(Spanned::new("B".to_string(), on(t, "defaults", "B", 0)))
    );

    let stages = ast.stages.as_ref().unwrap();
    assert_eq!(stages.value.len(), 4);
    assert_eq!(
        stages.span,
        on(t, "conv2_x", "conv2_x", 0).to(on(t, "conv5_x", "/2", 0))
    );
    let s = stage(&ast, 0);
    assert_eq!(
        s.span,
        on(t, "conv2_x", "conv2_x: bottleneck [64, 64, 256] x3", 0)
    );
    assert_eq!(
        s.value.name,
        Some(Spanned::new(
            "conv2_x".to_string(),
            on(t, "conv2_x", "conv2_x", 0)
        ))
    );
    assert_eq!(
        s.value.options.block,
        Some(Spanned::new(
            "bottleneck".to_string(),
            on(t, "conv2_x", "bottleneck", 0)
        ))
    );
    let filters = s.value.filters.as_ref().unwrap();
    assert_eq!(filters.span, on(t, "conv2_x", "[64, 64, 256]", 0));
    let f: Vec<(i64, Span)> = filters.value.iter().map(|x| (x.value, x.span)).collect();
    let line = |needle, n| on(t, "conv2_x", needle, n);
    assert_eq!(
        f,
        [
            (64, line("64", 0)),
            (64, line("64", 1)),
            (256, line("256", 0))
        ]
    );
    assert_eq!(
        s.value.repeat,
        Some(Spanned::new(3, skip(line("x3", 0), 1)))
    );
    assert_eq!(s.value.stride, None);
    let s = stage(&ast, 1);
    // A stage's span is its line, without the comment.
    assert_eq!(
        s.span,
        on(t, "conv3_x", "conv3_x: bottleneck [128, 128, 512] x4 /2", 0)
    );
    assert_eq!(
        s.value.stride,
        Some(Spanned::new(2, skip(on(t, "conv3_x", "/2", 0), 1)))
    );
    assert_eq!(value(&s.value.repeat), Some(4));
    assert_eq!(value(&stage(&ast, 2).value.repeat), Some(6));
    assert_eq!(
        value(&stage(&ast, 3).value.name).as_deref(),
        Some("conv5_x")
    );

    let head = ast.head.as_ref().unwrap();
    assert_eq!(head.span, on(t, "head", "head avgpool, fc 1000", 0));
    assert_eq!(
        head.value.pool,
        Some(Spanned::new("avg".to_string(), on(t, "head", "avg", 0)))
    );
    assert_eq!(
        head.value.classes,
        Some(Spanned::new(1000, on(t, "head", "1000", 0)))
    );
    assert!(ast.unknown.is_empty());
    assert_eq!(
        (ast.init, ast.zero_init_residual, ast.batch_norm),
        (None, None, None)
    );
}

#[test]
fn every_statement_form() {
    let t = "\
model \"my net #1\"   # quoted names may hold anything
input 1x28x28
stem conv 3x3 -> 16 bias pad 1, no bn, no relu, avgpool 2x2/2 pad 0 ceil
defaults block preact_basic, stride_on v1.5, shortcut A, projection no bn bias, groups 2, width_per_group 8, no bias
[16, 16] x3
basic [32, 32] ×3 /2, shortcut C, bias
\"stage three\": [64, 64] x 3 / 2, projection
head norm, flatten, dropout 0.25, in 64, fc 10, softmax
init xavier_uniform
zero_init_residual
batch_norm momentum 0.01, eps 1.001e-5
";
    let ast = ok(t);
    assert_eq!(value(&ast.name).as_deref(), Some("my net #1"));
    let input = value(&ast.input).unwrap();
    assert_eq!(
        (
            value(&input.channels),
            value(&input.height),
            value(&input.width)
        ),
        (Some(1), Some(28), Some(28))
    );

    let stem = value(&ast.stem).unwrap();
    let conv = value(&stem.conv).unwrap();
    assert_eq!(
        (
            value(&conv.kernel),
            value(&conv.stride),
            value(&conv.padding),
            value(&conv.filters),
            value(&conv.bias)
        ),
        (Some(3), None, Some(1), Some(16), Some(true))
    );
    assert_eq!(
        (value(&stem.bn), value(&stem.relu)),
        (Some(false), Some(false))
    );
    let Some(StemPoolAst::Pool(pool)) = value(&stem.pool) else {
        panic!("a pool")
    };
    assert_eq!(value(&pool.kind).as_deref(), Some("avg"));
    assert_eq!(
        (
            value(&pool.kernel),
            value(&pool.stride),
            value(&pool.padding)
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(value(&pool.ceil_mode), Some(true));

    let d = value(&ast.defaults).unwrap();
    assert_eq!(value(&d.block).as_deref(), Some("preact_basic"));
    assert_eq!(value(&d.stride_on).as_deref(), Some("v1.5"));
    assert_eq!(value(&d.shortcut).as_deref(), Some("A"));
    let p = value(&d.projection).unwrap();
    assert_eq!((value(&p.bn), value(&p.bias)), (Some(false), Some(true)));
    assert_eq!(
        (value(&d.groups), value(&d.width_per_group), value(&d.bias)),
        (Some(2), Some(8), Some(crate::ast::BiasAst::All(false)))
    );

    let s0 = &stage(&ast, 0).value;
    assert_eq!((s0.name.clone(), s0.options.block.clone()), (None, None));
    assert_eq!(s0.filters.as_ref().map(|f| f.value.len()), Some(2));
    assert_eq!((value(&s0.repeat), value(&s0.stride)), (Some(3), None));
    let s1 = &stage(&ast, 1).value;
    assert_eq!(s1.name, None);
    assert_eq!(value(&s1.options.block).as_deref(), Some("basic"));
    assert_eq!((value(&s1.repeat), value(&s1.stride)), (Some(3), Some(2)));
    assert_eq!(
        (
            value(&s1.options.shortcut).as_deref(),
            value(&s1.options.bias)
        ),
        (Some("C"), Some(crate::ast::BiasAst::All(true)))
    );
    let s2 = &stage(&ast, 2).value;
    assert_eq!(value(&s2.name).as_deref(), Some("stage three"));
    assert_eq!((value(&s2.repeat), value(&s2.stride)), (Some(3), Some(2)));
    let p = value(&s2.options.projection).unwrap();
    assert_eq!((p.bn, p.bias), (None, None));

    let h = value(&ast.head).unwrap();
    assert_eq!(
        (value(&h.norm), value(&h.pool).as_deref()),
        (Some(true), Some("flatten"))
    );
    assert_eq!(
        (value(&h.dropout), value(&h.in_features)),
        (Some(0.25), Some(64))
    );
    assert_eq!(
        (value(&h.classes), value(&h.softmax)),
        (Some(10), Some(true))
    );
    assert_eq!(value(&ast.init).as_deref(), Some("xavier_uniform"));
    assert_eq!(value(&ast.zero_init_residual), Some(true));
    let bn = value(&ast.batch_norm).unwrap();
    assert_eq!(
        (value(&bn.eps), value(&bn.momentum)),
        (Some(1.001e-5), Some(0.01))
    );
}

#[test]
fn smaller_forms() {
    let ast = ok(
        "stem no pool\nhead fc 2048 → 10, no softmax, no norm, maxpool\nzero_init_residual false\n",
    );
    let stem = value(&ast.stem).unwrap();
    assert_eq!(value(&stem.pool), Some(StemPoolAst::None));
    assert_eq!(stem.conv, None);
    let h = value(&ast.head).unwrap();
    assert_eq!(
        (value(&h.in_features), value(&h.classes)),
        (Some(2048), Some(10))
    );
    assert_eq!(
        (value(&h.softmax), value(&h.norm), value(&h.pool).as_deref()),
        (Some(false), Some(false), Some("max"))
    );
    assert_eq!(value(&ast.zero_init_residual), Some(false));

    // Sections may be empty; numbers keep their sign and lose their separators.
    let ast = ok("stem\nhead\ndefaults\nbasic [64, 64,] x-1 /1_000\n");
    assert!(ast.stem.is_some() && ast.head.is_some() && ast.defaults.is_some());
    let s = &stage(&ast, 0).value;
    assert_eq!((value(&s.repeat), value(&s.stride)), (Some(-1), Some(1000)));
    assert_eq!(s.filters.as_ref().map(|f| f.value.len()), Some(2));

    // A stage may be named like a statement keyword.
    let ast = ok("head: basic [64, 64] x2\n");
    assert_eq!(value(&stage(&ast, 0).value.name).as_deref(), Some("head"));
}

#[test]
fn empty_and_comment_only_files_parse_to_nothing() {
    for text in [
        "",
        "\n\n",
        "# only a comment\n   # and another\n",
        "  \t \r\n",
    ] {
        assert_eq!(ok(text), SpecAst::default(), "{text:?}");
    }
}

/// (text, line, column, words the message must contain)
const SYNTAX_ERRORS: &[(&str, usize, usize, &str)] = &[
    (
        "model resnet50\ninput 3x224\n",
        2,
        12,
        "expected `x`, found end of line",
    ),
    (
        "input 3x224x224\nstem conv 7x7/2 pad 3 -> 64 bn\n",
        2,
        29,
        "found `bn`",
    ),
    (
        "stem conv 7x7/2, no foo\n",
        1,
        21,
        "expected `bn`, `relu` or `pool`, found `foo`",
    ),
    (
        "conv2_x bottleneck [64, 64, 256] x3\n",
        1,
        9,
        "expected `:` or filters such as `[64, 64, 256]`, found `bottleneck`",
    ),
    (
        "conv2_x: bottleneck [64, 64, 256] x3 /2 extra\n",
        1,
        41,
        "expected `,` or end of line, found `extra`",
    ),
    (
        "conv2_x: bottleneck [64, 64; 256] x3\n",
        1,
        28,
        "expected `]` or `,`, found `;`",
    ),
    (
        "basic x3\n",
        1,
        7,
        "expected `:` or filters such as `[64, 64, 256]`, found `x3`",
    ),
    (
        "conv2_x: basic x3\n",
        1,
        16,
        "expected filters such as `[64, 64, 256]`, found `x3`",
    ),
    (
        "defaults shortcut\n",
        1,
        18,
        "expected a shortcut option (`A`, `B`, `C`",
    ),
    (
        "head avgpool, fc\n",
        1,
        17,
        "expected a number, found end of line",
    ),
    (
        "head avgpool fc 10\n",
        1,
        14,
        "expected `,` or end of line, found `fc`",
    ),
    ("model\n", 1, 6, "expected a name"),
    (
        "\n  3x224x224\n",
        2,
        3,
        "expected a statement, found `3x224x224`",
    ),
    ("batch_norm eps x\n", 1, 16, "expected a number, found `x`"),
    (
        "init\n",
        1,
        5,
        "expected an init scheme (`kaiming_normal` or `xavier_uniform`), found end of line",
    ),
    ("stem conv 7x7, , bn\n", 1, 16, "expected a stem part"),
    ("stem conv abc\n", 1, 11, "a window such as `3x3/2`"),
    (
        "zero_init_residual yes\n",
        1,
        20,
        "expected a boolean (`true` or `false`) or end of line, found `yes`",
    ),
    (
        "conv2_x: basic [64, 64] x2, groups two\n",
        1,
        36,
        "expected a number, found `two`",
    ),
    ("conv2_x: basic [[64, 64]] x2\n", 1, 17, "found `[`"),
];

#[test]
fn syntax_errors_point_at_the_right_place_in_words() {
    for &(text, line, col, words) in SYNTAX_ERRORS {
        let f = file(text);
        let diags = errors(text);
        assert_eq!(diags.len(), 1, "{text:?}: {diags:?}");
        let d = &diags[0];
        assert_eq!(d.code, SYNTAX_ERROR, "{text:?}");
        let span = d.primary_span().expect("a primary label");
        assert_eq!(
            f.line_col(span.start),
            (line, col),
            "{text:?}: {}",
            d.message
        );
        assert!(
            d.message.contains(words),
            "{text:?}: message {:?} lacks {words:?}",
            d.message
        );
        // No raw rule names in what the user reads.
        assert!(
            !d.message.contains("kw_")
                && !d.message.contains("_item")
                && !d.message.contains("EOI"),
            "{}",
            d.message
        );
        assert_eq!(
            d.help.len(),
            1,
            "{text:?}: a help line with the expected form"
        );
    }
}

#[test]
fn the_help_line_shows_the_statement_form() {
    let d = &errors("conv2_x: bottleneck [64, 64, 256] x3 /2 extra")[0];
    assert!(
        d.help[0].contains("conv3_x: bottleneck [128, 128, 512] x4 /2"),
        "{:?}",
        d.help
    );
    let d = &errors("input 3")[0];
    assert!(d.help[0].contains("input 3x224x224"), "{:?}", d.help);
}

#[test]
fn every_broken_line_is_reported_in_one_run() {
    let text = "\
model resnet50
input 3x224
stem conv 7x7/2 pad 3 -> 64 bn
conv2_x: basic [64, 64] x2
conv3_x basic [128, 128] x2 /2
head fc
";
    let f = file(text);
    let diags = errors(text);
    let lines: Vec<usize> = diags
        .iter()
        .map(|d| f.line_col(d.primary_span().unwrap().start).0)
        .collect();
    assert_eq!(lines, [2, 3, 5, 6]);
    assert!(diags.iter().all(|d| d.code == SYNTAX_ERROR));
}

#[test]
fn unknown_keys_are_kept_not_syntax_errors() {
    let t = "\
modle resnet50
stem conv 7x7/2, dilation 2, bn
defaults bottleneck, groupz 32
conv2_x: bottleneck [64, 64, 256] x3, cardinality 32
head avgpool, classes 10, fc 10
";
    let ast = ok(t);
    let found: Vec<(&str, &str, Span)> = ast
        .unknown
        .iter()
        .map(|u| (u.key.value.as_str(), u.section.as_str(), u.key.span))
        .collect();
    assert_eq!(
        found,
        [
            ("modle", "the spec", at(t, "modle", 0)),
            ("dilation", "stem", at(t, "dilation", 0)),
            ("groupz", "defaults", at(t, "groupz", 0)),
            ("cardinality", "stages[0]", at(t, "cardinality", 0)),
            ("classes", "head", at(t, "classes", 0)),
        ]
    );
    assert!(ast.unknown[0].expected.contains(&"model"));
    assert!(ast.unknown[2].expected.contains(&"groups"));
    assert!(ast.unknown[4].expected.contains(&"fc"));
    // Known keys around the unknown ones are still read.
    let stem = value(&ast.stem).unwrap();
    assert_eq!(value(&stem.bn), Some(true));
    assert_eq!(value(&value(&ast.head).unwrap().classes), Some(10));
}

#[test]
fn unknown_keys_reach_lowering_with_a_suggestion() {
    let f = file("model m\ndefaults groupz 32\nbasic [64, 64] x2\n");
    let diags = crate::compile(&f).expect_err("an unknown key is an error");
    let d = diags
        .iter()
        .find(|d| d.code == "E-unknown-key")
        .expect("E-unknown-key");
    assert_eq!(d.primary_span(), Some(at(&f.text, "groupz", 0)));
    assert!(d.help.iter().any(|h| h.contains("`groups`")), "{d:?}");
}

#[test]
fn unknown_keys_are_reported_even_when_another_line_fails() {
    // Lowering does not run after a broken line, so the front end reports the unknown
    // keys it would have reported: every problem of every line in one run.
    let t = "\
model m
modle n
conv2_x: basic [64, 64 x2
conv3_x: basic [128, 128] x2 /2, shortcat B
conv4_x: basic [256, 256] x2 //2
head avgpool, fc 10, sofmax
";
    let diags = errors(t);
    let got: Vec<(&str, Span)> = diags
        .iter()
        .map(|d| (d.code, d.primary_span().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("E-unknown-key", at(t, "modle", 0)),
            (SYNTAX_ERROR, at(t, "x2", 0)),
            ("E-unknown-key", at(t, "shortcat", 0)),
            (
                SYNTAX_ERROR,
                Span::new(at(t, "//2", 0).start + 1, at(t, "//2", 0).start + 2)
            ),
            ("E-unknown-key", at(t, "sofmax", 0)),
        ]
    );
    // The broken stage line still counts: `conv3_x` is the second stage.
    assert_eq!(diags[2].message, "unknown key `shortcat` in stages[1]");
    // Nothing that the broken lines would cause: no "missing", no shapes.
    assert!(
        diags
            .iter()
            .all(|d| d.code == SYNTAX_ERROR || d.code == "E-unknown-key"),
        "{diags:?}"
    );
}

#[test]
fn unknown_keys_read_the_same_with_or_without_a_broken_line() {
    // Without a broken line lowering reports the key; with one, the front end does.
    let good = "model m\ndefaults groupz 32\nbasic [64, 64] x2\n";
    let by_lowering = crate::compile(&file(good)).expect_err("an unknown key is an error");
    let by_lowering: Vec<_> = by_lowering
        .iter()
        .filter(|d| d.code == "E-unknown-key")
        .collect();
    let broken = format!("{good}input 3x\n");
    let by_front_end = errors(&broken);
    let by_front_end: Vec<_> = by_front_end
        .iter()
        .filter(|d| d.code == "E-unknown-key")
        .collect();
    assert_eq!(by_lowering.len(), 1);
    assert_eq!(by_front_end, by_lowering);
}

#[test]
fn many_broken_lines_stay_linear() {
    // 1 MB of broken stage lines between stages with an unknown key: one diagnostic a line.
    let lines = "conv2_x: basic [64, 64] x2, shortcat B\nconv3_x: basic [64, 64 x2\n";
    let text = lines.repeat((1 << 20) / lines.len());
    let start = std::time::Instant::now();
    let diags = errors(&text);
    let took = start.elapsed();
    let lines = text.lines().count();
    assert_eq!(diags.len(), lines);
    assert_eq!(diags[0].code, "E-unknown-key");
    assert_eq!(diags[1].code, SYNTAX_ERROR);
    eprintln!("{lines} lines in {took:?}");
    assert!(
        took < std::time::Duration::from_secs(20),
        "{lines} lines took {took:?}"
    );
}

#[test]
fn duplicates_point_at_the_first_one() {
    let t = "model a\ninput 3x32x32\nmodel b\nstem bn, no bn\nbasic [1, 1] x1, groups 2, groups 4\nhead fc 10 -> 10, in 5\n";
    let diags = errors(t);
    assert!(diags.iter().all(|d| d.code == DUPLICATE_ERROR), "{diags:?}");
    let places: Vec<(Span, Span)> = diags
        .iter()
        .map(|d| {
            (
                d.primary_span().unwrap(),
                d.labels.iter().find(|l| !l.primary).unwrap().span,
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            (at(t, "model b", 0), at(t, "model a", 0)),
            (at(t, "no bn", 0), at(t, "bn", 0)),
            (skip(at(t, "groups 4", 0), 7), skip(at(t, "groups 2", 0), 7)),
            (at(t, "5", 0), at(t, "10", 0)),
        ]
    );
    assert!(diags[0].message.contains("`model` is given twice"));
}

#[test]
fn numbers_beyond_i64_and_non_square_kernels_are_diagnostics() {
    let t =
        "input 3x99999999999999999999x224\nstem conv 7x5, maxpool 3x3/2\nbatch_norm eps 1e999\n";
    let f = file(t);
    let diags = errors(t);
    let got: Vec<(&str, usize)> = diags
        .iter()
        .map(|d| (d.code, f.line_col(d.primary_span().unwrap().start).0))
        .collect();
    assert_eq!(
        got,
        [(NUMBER_ERROR, 1), (KERNEL_ERROR, 2), (NUMBER_ERROR, 3)]
    );
    assert_eq!(
        diags[0].primary_span(),
        Some(at(t, "99999999999999999999", 0))
    );
    assert_eq!(diags[1].primary_span(), Some(at(t, "7x5", 0)));
}

#[test]
fn garbage_never_panics() {
    let mut inputs: Vec<String> = vec![
        "[".repeat(100_000),
        format!("conv2_x: basic {}", "[".repeat(10_000)),
        // Long lines take the same paths as a 1 MB one, in a fraction of the time.
        format!("model {}", "x".repeat(1 << 18)),
        format!("model {} extra", "x".repeat(1 << 18)),
        format!("basic [{}] x2", "64, ".repeat(10_000)),
        "9".repeat(1 << 16),
        "\"unterminated".into(),
        "model \"a\\".into(),
        "stem conv 7x7/2 pad 3 -> 64 -> 64 ->".into(),
        "é∂ƒ©˙∆˚¬…æ\u{0}\u{7f}".into(),
        ":::::\n,,,,\n->->\n////\n".into(),
        "head dropout 1e-99999, fc -0".into(),
        "no pool".into(),
        "\r\r\r\n\t\t".into(),
        "x3 /2".into(),
    ];
    // A deterministic byte soup built from the language's own characters.
    let alphabet: Vec<char> =
        "model input stem conv bn relu pool head fc 0123456789 x/,:[]->#\"\\\n\t."
            .chars()
            .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..300 {
        let mut s = String::new();
        for _ in 0..60 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        inputs.push(s);
    }
    for text in &inputs {
        let f = file(text);
        if let Err(diags) = parse(&f) {
            for d in &diags {
                let span = d.primary_span().expect("a primary label");
                assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
                assert!(
                    d.message.len() < 400,
                    "message kept short: {}",
                    d.message.len()
                );
            }
            if text.len() < 10_000 {
                let _ = crate::diag::render(&f, &diags);
            }
        }
    }
}

#[test]
fn unknown_escapes_in_quoted_names_are_errors() {
    let text = "model \"a\\qb\"\n\"s\\%\": basic [8, 8] x1\n";
    let d = errors(text);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].message, "unknown escape `\\q` in a quoted name");
    assert_eq!(d[0].primary_span(), Some(at(text, "\\q", 0)));
    assert_eq!(d[1].message, "unknown escape `\\%` in a quoted name");
    assert_eq!(d[1].primary_span(), Some(at(text, "\\%", 0)));
    assert!(d[0].help[0].contains("`\\\\q`"), "{:?}", d[0].help);
    // A control character after the backslash is named, not printed.
    let d = errors("model \"a\\\u{7}\"\n");
    assert_eq!(
        d[0].message,
        "unknown escape `\\` followed by U+0007 in a quoted name"
    );
    // The known escapes still work.
    let ast = ok("model \"a\\\"b\\\\c\\nd\\te\\rf\"\n");
    assert_eq!(ast.name.unwrap().value, "a\"b\\c\nd\te\rf");
}

#[test]
fn window_messages_agree_with_the_number() {
    for (window, message) in [
        ("8x7", "an 8x7 window is not square"),
        ("11x3", "an 11x3 window is not square"),
        ("18x3", "an 18x3 window is not square"),
        ("7x5", "a 7x5 window is not square"),
        ("1x8", "a 1x8 window is not square"),
    ] {
        let d = errors(&format!("stem conv {window}\n"));
        assert_eq!(d[0].message, message);
    }
}

/// The spec's compiled diagnostics (errors or warnings), by code.
fn compiled_codes(text: &str) -> Vec<&'static str> {
    match crate::compile(&file(text)) {
        Ok(c) => c.warnings.iter().map(|d| d.code).collect(),
        Err(d) => d.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn options_without_effect_are_errors() {
    // A shortcut setting on a plain stage.
    assert_eq!(
        compiled_codes("model p\nplain [8, 8] x1, shortcut C\n"),
        ["E-no-effect"]
    );
    assert_eq!(
        compiled_codes("model p\nplain_bottleneck [8, 8, 32] x1, projection bias\n"),
        ["E-no-effect"]
    );
    // Under `defaults` it is fine as soon as one stage taking it has a shortcut ...
    assert!(
        compiled_codes("model p\ndefaults shortcut A\nplain [8, 8] x1\nbasic [8, 8] x1\n")
            .is_empty()
    );
    // ... and an error when none has.
    assert_eq!(
        compiled_codes("model p\ndefaults plain, shortcut A\n[8, 8] x1\n[8, 8] x1\n"),
        ["E-no-effect"]
    );
    // A stage with its own setting does not take the default.
    assert_eq!(
        compiled_codes(
            "model p\ndefaults shortcut A\nplain [8, 8] x1\nbasic [8, 8] x1, shortcut B\n"
        ),
        ["E-no-effect"]
    );
    // stride_on on a stage without bottlenecks, projection where nothing projects.
    assert_eq!(
        compiled_codes("model p\nbasic [8, 8] x1, stride_on v1\n"),
        ["E-no-effect"]
    );
    assert_eq!(
        compiled_codes("model p\ndefaults stride_on v1\nbasic [8, 8] x1\n"),
        ["E-no-effect"]
    );
    assert!(compiled_codes(
        "model p\ndefaults stride_on v1\nbasic [64, 64] x1\nbottleneck [8, 8, 64] x1\n"
    )
    .is_empty());
    assert_eq!(
        compiled_codes("model p\nbasic [64, 64] x1, shortcut A, projection bias\n"),
        ["E-no-effect"]
    );
    let identity = "model p\ndefaults shortcut identity, projection bias\nbasic [64, 64] x1\n";
    assert_eq!(compiled_codes(identity), ["E-no-effect"]);
    // zero_init_residual needs one residual block.
    assert_eq!(
        compiled_codes("model p\nplain [8, 8] x1\nzero_init_residual\n"),
        ["E-no-effect"]
    );
    assert!(compiled_codes("model p\nplain [8, 8] x1\nzero_init_residual false\n").is_empty());
    assert!(
        compiled_codes("model p\nplain [8, 8] x1\nbasic [8, 8] x1\nzero_init_residual\n")
            .is_empty()
    );
}

#[test]
fn blank_stage_names_and_f32_epsilons_are_errors() {
    assert_eq!(
        compiled_codes("model p\n\"\": basic [8, 8] x1\n"),
        ["E-range"]
    );
    assert_eq!(
        compiled_codes("model p\n\" \\t\": basic [8, 8] x1\n"),
        ["E-range"]
    );
    for eps in ["1e-320", "1e-40", "1e-39"] {
        let codes = compiled_codes(&format!("model p\nbasic [8, 8] x1\nbatch_norm eps {eps}\n"));
        assert_eq!(codes, ["E-range"], "{eps}");
    }
    // The smallest normal f32 and everything above it are fine.
    assert!(compiled_codes("model p\nbasic [8, 8] x1\nbatch_norm eps 1.2e-38\n").is_empty());
    assert!(compiled_codes("model p\nbasic [8, 8] x1\nbatch_norm eps 1e-5\n").is_empty());
}

/// torchvision's ResNeXt and Wide ResNet, with `width_per_group` as its constructor's base
/// width, in the DSL: the same totals as torchvision.
#[test]
fn torchvision_form_of_resnext_and_wide_resnet() {
    let spec = |name: &str, groups: u64, width: u64, repeats: [u64; 4], mids: [u64; 4]| {
        let mut s = format!(
            "model {name}\ndefaults bottleneck, groups {groups}, width_per_group {width}\n"
        );
        for (i, (r, m)) in repeats.iter().zip(mids).enumerate() {
            s.push_str(&format!("conv{}_x: [{m}, {m}, {}] x{r}\n", i + 2, 256 << i));
        }
        file(&s)
    };
    let trainable = |file: SourceFile| {
        let c =
            crate::compile(&file).unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d)));
        assert!(
            c.warnings.is_empty(),
            "{}",
            crate::diag::render(&file, &c.warnings)
        );
        crate::back::table::json(&c.model, &c.network)["params"]["trainable"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        trainable(spec(
            "resnext50_32x4d",
            32,
            4,
            [3, 4, 6, 3],
            [128, 256, 512, 1024]
        )),
        25_028_904
    );
    assert_eq!(
        trainable(spec(
            "resnext101_32x8d",
            32,
            8,
            [3, 4, 23, 3],
            [256, 512, 1024, 2048]
        )),
        88_791_336
    );
    assert_eq!(
        trainable(spec(
            "wide_resnet50_2",
            1,
            128,
            [3, 4, 6, 3],
            [128, 256, 512, 1024]
        )),
        68_883_240
    );
    // A 3x3 that fits neither reading is still an error.
    let wrong = spec(
        "resnext50_32x4d",
        32,
        4,
        [3, 4, 6, 3],
        [128, 384, 512, 1024],
    );
    let d = crate::compile(&wrong).err().unwrap();
    assert_eq!(
        d.iter().map(|d| d.code).collect::<Vec<_>>(),
        ["E-width-per-group"]
    );
}

/// A shortcut setting under `defaults` reaches the residual stages only, so printing a
/// spec that mixes plain and residual stages never puts it on a plain stage.
#[test]
fn mixed_plain_and_residual_stages_round_trip() {
    let text = "model mix\ninput 3x32x32\nstem conv 3x3/1 -> 16, no pool\n\
                defaults shortcut A, projection no bn, stride_on v1\n\
                plain [16, 16] x1\nbasic [32, 32] x1 /2\nbasic [32, 32] x1, shortcut C\nplain [32, 32] x1\n\
                bottleneck [16, 16, 32] x1, shortcut B\nzero_init_residual\n";
    let model = crate::compile(&file(text))
        .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file(text), &d)))
        .model;
    assert_eq!(model.stages[0].shortcut, crate::ir::defaults::SHORTCUT);
    assert_eq!(model.stages[1].shortcut, crate::ir::ShortcutOption::A);
    // Settings the stage has no use for stay at their defaults.
    assert_eq!(
        model.stages[1].projection,
        crate::ir::defaults::projection(crate::ir::BlockKind::Basic)
    );
    assert_eq!(model.stages[1].stride_on, crate::ir::defaults::STRIDE_ON);
    assert!(!model.stages[2].projection.bn);
    assert_eq!(model.stages[4].stride_on, crate::ir::StrideOn::Conv1);
    for (syntax, printed) in [
        (Syntax::Yaml, crate::back::yaml::print(&model)),
        (Syntax::Dsl, crate::back::dsl::print(&model)),
    ] {
        let printed = SourceFile::new("printed", printed, syntax);
        let back = crate::compile(&printed)
            .unwrap_or_else(|d| panic!("{}", crate::diag::render(&printed, &d)));
        assert_eq!(back.model, model, "{}", printed.text);
    }
}

#[test]
fn unicode_escapes_in_quoted_names() {
    let spec = |name: &str| {
        format!("model {name}\ninput 3x32x32\nstem conv 3x3/1 pad 1 -> 16, bn, relu, no pool\nconv2_x: basic [16, 16] x1 /1\nhead avgpool, fc 10\n")
    };
    let file = SourceFile::new(
        "t.resnet",
        spec(r#""a\u{1b}b\u{202E}c\u{10FFFF}""#),
        Syntax::Dsl,
    );
    let compiled = crate::compile(&file).expect("escapes read");
    assert_eq!(compiled.model.name, "a\u{1b}b\u{202e}c\u{10ffff}");
    for bad in [
        r#""\u{}""#,
        r#""\u{110000}""#,
        r#""\u{d800}""#,
        r#""\u{1234567}""#,
        r#""\u1b""#,
        r#""\u{zz}""#,
    ] {
        let file = SourceFile::new("t.resnet", spec(bad), Syntax::Dsl);
        let diags = crate::compile(&file).expect_err(bad);
        assert!(
            diags
                .iter()
                .any(|d| d.message == "malformed `\\u{..}` escape in a quoted name"),
            "{bad}: {diags:?}"
        );
    }
    // Many unclosed escapes on one line stay linear (each looks at a few bytes only).
    let many = format!("\"{}\"", r"\u{".repeat(50_000));
    let file = SourceFile::new("t.resnet", spec(&many), Syntax::Dsl);
    assert!(crate::compile(&file).is_err());
}

#[test]
fn new_constructs_parse() {
    let text = "\
model x
norm group 32
drop_path 0.05
stem conv 3x3/2 pad 1 -> 32, conv 3x3/1 pad 1 -> 64, bn, relu, convpool 3x3/2 pad 1 -> 64 anti_alias blur
defaults bottleneck, attention se reduction 4, projection avgpool kernel 3, bias [false, false, true]
conv2_x: [64, 64, 256] x3, stride_at last, dilation 2, anti_alias avg, attention eca gamma 3 beta 0
";
    let ast = ok(text);
    let norm = ast.norm.clone().expect("norm");
    assert_eq!(norm.span, at(text, "norm group 32", 0));
    assert_eq!(value(&norm.value.kind).as_deref(), Some("group"));
    assert_eq!(value(&norm.value.groups), Some(32));
    assert_eq!(value(&ast.drop_path_rate), Some(0.05));
    let stem = ast.stem.clone().expect("stem").value;
    let convs = stem.convs.expect("two convs: a deep stem").value;
    assert_eq!(convs.len(), 2);
    assert_eq!(convs[1].span, at(text, "conv 3x3/1 pad 1 -> 64", 0));
    assert!(stem.conv.is_none());
    let Some(StemPoolAst::Pool(pool)) = value(&stem.pool) else {
        panic!("a stem pool")
    };
    assert_eq!(value(&pool.kind).as_deref(), Some("conv"));
    assert_eq!(value(&pool.filters), Some(64));
    assert_eq!(value(&pool.anti_alias).as_deref(), Some("blur"));
    let d = ast.defaults.clone().expect("defaults").value;
    let a = d.attention.expect("attention");
    assert_eq!(a.span, at(text, "attention se reduction 4", 0));
    assert_eq!(value(&a.value.reduction), Some(4));
    let p = d.projection.expect("projection").value;
    assert_eq!(value(&p.pool).as_deref(), Some("avg"));
    assert_eq!(value(&p.kernel), Some(3));
    let Some(crate::ast::BiasAst::PerConv(flags)) = value(&d.bias) else {
        panic!("a bias list")
    };
    assert_eq!(flags.iter().map(|f| f.value).collect::<Vec<_>>(), [false, false, true]);
    let o = &stage(&ast, 0).value.options;
    assert_eq!(value(&o.stride_at).as_deref(), Some("last"));
    assert_eq!(value(&o.dilation), Some(2));
    assert_eq!(value(&o.anti_alias).as_deref(), Some("avg"));
    let eca = o.attention.as_ref().expect("attention").value.clone();
    assert_eq!((value(&eca.gamma), value(&eca.beta)), (Some(3), Some(0)));
}

#[test]
fn one_stem_conv_stays_the_stem_conv() {
    let ast = ok("model x\nstem conv 3x3/1 pad 1 -> 16, no pool\nbasic [16, 16] x2\n");
    let stem = ast.stem.expect("stem").value;
    assert!(stem.conv.is_some());
    assert!(stem.convs.is_none());
}

#[test]
fn projection_no_pool_is_none() {
    let ast = ok("model x\ndefaults bottleneck, projection no pool\n[64, 64, 256] x2\n");
    let p = ast.defaults.expect("defaults").value.projection.expect("projection");
    assert_eq!(value(&p.value.pool).as_deref(), Some("none"));
}
