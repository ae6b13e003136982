//! Parse trees of single lines -> pieces of the surface AST, with spans into the file.
//!
//! Every span is the line's offset plus pest's offset within the line: a scalar's span is
//! its token, a section's (`stem`, `head`, `defaults`, `input`, ...) is its statement from
//! keyword to last token, a stage's is its whole line (without comment).

use super::lines::{self, Line, LineKind, STATEMENTS, STATEMENT_KEYS};
use super::{
    syntax, ResnetParser, Rule, DUPLICATE_ERROR, KERNEL_ERROR, NUMBER_ERROR, SYNTAX_ERROR,
};
use crate::ast::{
    AttentionAst, BatchNormAst, BiasAst, BlockOptionsAst, ConvAst, Field, HeadAst, InputAst,
    NormAst, PoolAst, ProjectionAst, SpecAst, StageAst, StemAst, StemPoolAst, UnknownKey,
};
use crate::diag::Diagnostic;
use crate::span::{Span, Spanned};
use pest::iterators::Pair;
use pest::Parser;

type P<'i> = Pair<'i, Rule>;

/// Keys accepted in the stem (for "unknown key" reports).
pub const STEM_KEYS: &[&str] = &[
    "conv", "bn", "relu", "maxpool", "avgpool", "convpool", "no pool",
];
/// Keys accepted in `defaults` and after a stage.
pub const OPTION_KEYS: &[&str] = &[
    "block",
    "stride_on",
    "shortcut",
    "projection",
    "groups",
    "width_per_group",
    "bias",
    "attention",
    "anti_alias",
    "stride_at",
    "dilation",
];
/// Keys accepted in the head.
pub const HEAD_KEYS: &[&str] = &[
    "norm", "avgpool", "maxpool", "flatten", "dropout", "in", "fc", "softmax",
];

/// Collects the AST line by line, and every problem found on the way.
pub struct Builder {
    ast: SpecAst,
    stages: Vec<Spanned<StageAst>>,
    diags: Vec<Diagnostic>,
    /// Where each statement other than a stage was first given.
    first: Vec<(Rule, Span)>,
    /// Stage lines seen so far, parsed or not: a stage's index is its place in the file,
    /// so that a broken stage line does not renumber the stages after it.
    stage_lines: usize,
    /// Byte offset of the line being built.
    base: usize,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            ast: SpecAst::default(),
            stages: Vec::new(),
            diags: Vec::new(),
            first: Vec::new(),
            stage_lines: 0,
            base: 0,
        }
    }

    /// The AST, or every diagnostic in source order.
    ///
    /// Unknown keys are left in the AST for lowering to report beside its own findings.
    /// When a line failed, lowering does not run (a missing or half-read statement would
    /// only cause bogus "missing" and shape errors), so they are reported here instead.
    pub fn finish(mut self) -> Result<SpecAst, Vec<Diagnostic>> {
        if let (Some(first), Some(last)) = (self.stages.first(), self.stages.last()) {
            let span = first.span.to(last.span);
            self.ast.stages = Some(Spanned::new(self.stages, span));
        }
        if self.diags.is_empty() {
            Ok(self.ast)
        } else {
            self.diags.extend(
                self.ast
                    .unknown
                    .iter()
                    .map(crate::ast::UnknownKey::diagnostic),
            );
            self.diags
                .sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
            Err(self.diags)
        }
    }

    /// Adds one statement line.
    pub fn line(&mut self, line: &Line<'_>) {
        self.base = line.start;
        if self.first.is_empty() && self.stages.is_empty() && self.ast.span == Span::DUMMY {
            self.ast.span = line.content_span();
        }
        match line.kind {
            LineKind::Garbage => self
                .diags
                .push(syntax::not_a_statement(line.text, line.start)),
            LineKind::Unknown(span) => {
                let word = line
                    .text
                    .get(span.start - line.start..span.end - line.start)
                    .unwrap_or("");
                self.ast.unknown.push(UnknownKey {
                    key: Spanned::new(word.to_string(), span),
                    section: "the spec".to_string(),
                    expected: STATEMENT_KEYS.to_vec(),
                });
            }
            LineKind::Statement(rule) => {
                let stage_index = self.stage_lines;
                if rule == Rule::stage_line {
                    self.stage_lines += 1;
                }
                match ResnetParser::parse(rule, line.text) {
                    // The statement is dropped; the next line is read as usual.
                    Err(e) => self
                        .diags
                        .push(syntax::diagnostic(&e, line.text, line.start, rule)),
                    Ok(mut pairs) => {
                        // The entry rule's pair holds the statement, then EOI.
                        if let Some(statement) =
                            pairs.next().and_then(|line| line.into_inner().next())
                        {
                            self.statement(rule, statement, stage_index);
                        }
                    }
                }
            }
        }
    }

    /// One parsed statement; `stage_index` is the stage's place in the file (for stages).
    fn statement(&mut self, rule: Rule, p: P<'_>, stage_index: usize) {
        let span = self.span(&p);
        if rule == Rule::stage_line {
            let stage = self.stage(p, stage_index);
            self.stages.push(Spanned::new(stage, span));
            return;
        }
        if let Some((_, first)) = self.first.iter().find(|(r, _)| *r == rule) {
            let keyword = STATEMENTS
                .iter()
                .find(|(_, r)| *r == rule)
                .map_or("statement", |(k, _)| k);
            self.diags.push(
                Diagnostic::error(DUPLICATE_ERROR, format!("`{keyword}` is given twice"))
                    .with_primary(span, "given again here")
                    .with_secondary(*first, "first given here")
                    .with_help("keep one of the two lines"),
            );
            return;
        }
        self.first.push((rule, span));
        match rule {
            Rule::model_line => {
                if let Some(name) = child(&p, Rule::model_name) {
                    self.ast.name = Some(Spanned::new(self.unquote(&name), self.span(&name)));
                }
            }
            Rule::input_line => {
                let numbers: Vec<_> = children(&p, Rule::number).collect();
                let mut dims = numbers.into_iter().map(|n| self.int(&n));
                let input = InputAst {
                    channels: dims.next().flatten(),
                    height: dims.next().flatten(),
                    width: dims.next().flatten(),
                };
                self.ast.input = Some(Spanned::new(input, span));
            }
            Rule::stem_line => self.ast.stem = Some(Spanned::new(self.stem(p), span)),
            Rule::defaults_line => self.ast.defaults = Some(Spanned::new(self.defaults(p), span)),
            Rule::head_line => self.ast.head = Some(Spanned::new(self.head(p), span)),
            Rule::init_line => {
                if let Some(kind) = child(&p, Rule::init_kind) {
                    self.ast.init = Some(Spanned::new(kind.as_str().to_string(), self.span(&kind)));
                }
            }
            Rule::zero_init_residual_line => {
                let value = child(&p, Rule::boolean).is_none_or(|b| b.as_str() == "true");
                self.ast.zero_init_residual = Some(Spanned::new(value, span));
            }
            Rule::batch_norm_line => {
                self.ast.batch_norm = Some(Spanned::new(self.batch_norm(p), span))
            }
            Rule::norm_line => {
                let norm = NormAst {
                    kind: child(&p, Rule::norm_kind)
                        .map(|k| Spanned::new(k.as_str().to_string(), self.span(&k))),
                    groups: child(&p, Rule::number).and_then(|n| self.int(&n)),
                };
                self.ast.norm = Some(Spanned::new(norm, span));
            }
            Rule::drop_path_line => {
                self.ast.drop_path_rate = child(&p, Rule::float).and_then(|f| self.float(&f));
            }
            Rule::features_line => {
                let names = children(&p, Rule::stage_name).map(|n| Spanned::new(self.unquote(&n), self.span(&n))).collect();
                self.ast.features = Some(Spanned::new(names, span));
            }
            _ => {}
        }
    }

    // ---- sections ---------------------------------------------------------------------

    fn stem(&mut self, p: P<'_>) -> StemAst {
        let mut stem = StemAst::default();
        let mut convs: Vec<Spanned<ConvAst>> = Vec::new();
        for item in children(&p, Rule::stem_item) {
            let Some(part) = item.into_inner().next() else {
                continue;
            };
            let span = self.span(&part);
            match part.as_rule() {
                // One `conv` is the stem's convolution; several make a deep stem.
                Rule::stem_conv => convs.push(Spanned::new(self.conv(&part), span)),
                Rule::bn_flag => self.set(&mut stem.bn, flag(&part), span, "bn"),
                Rule::relu_flag => self.set(&mut stem.relu, flag(&part), span, "relu"),
                Rule::no_pool => self.set(&mut stem.pool, StemPoolAst::None, span, "pool"),
                Rule::stem_pool => {
                    let pool = self.pool(&part);
                    self.set(&mut stem.pool, StemPoolAst::Pool(Box::new(pool)), span, "pool");
                }
                Rule::unknown_item => self.unknown(&part, "stem", STEM_KEYS),
                _ => {}
            }
        }
        if convs.len() == 1 {
            stem.conv = convs.pop();
        } else if let (Some(first), Some(last)) = (convs.first(), convs.last()) {
            let span = first.span.to(last.span);
            stem.convs = Some(Spanned::new(convs, span));
        }
        stem
    }

    fn conv(&mut self, p: &P<'_>) -> ConvAst {
        let mut conv = ConvAst::default();
        for attr in p.clone().into_inner() {
            match attr.as_rule() {
                Rule::kernel_stride => self.window(&attr, &mut conv.kernel, &mut conv.stride),
                Rule::padding => self.number_in(&attr, &mut conv.padding, "pad"),
                Rule::out_filters => self.number_in(&attr, &mut conv.filters, "->"),
                Rule::bias_flag => {
                    let span = self.span(&attr);
                    self.set(&mut conv.bias, flag(&attr), span, "bias");
                }
                _ => {}
            }
        }
        conv
    }

    fn pool(&mut self, p: &P<'_>) -> PoolAst {
        let mut pool = PoolAst::default();
        for attr in p.clone().into_inner() {
            match attr.as_rule() {
                Rule::pool_word => pool.kind = self.pool_kind(&attr, false),
                Rule::kernel_stride => self.window(&attr, &mut pool.kernel, &mut pool.stride),
                Rule::padding => self.number_in(&attr, &mut pool.padding, "pad"),
                Rule::ceil_flag => {
                    let span = self.span(&attr);
                    self.set(&mut pool.ceil_mode, flag(&attr), span, "ceil");
                }
                Rule::out_filters => self.number_in(&attr, &mut pool.filters, "->"),
                Rule::bias_flag => {
                    let span = self.span(&attr);
                    self.set(&mut pool.bias, flag(&attr), span, "bias");
                }
                Rule::anti_alias => {
                    if let Some(v) = child(&attr, Rule::anti_alias_value) {
                        let span = self.span(&v);
                        self.set(&mut pool.anti_alias, v.as_str().to_string(), span, "anti_alias");
                    }
                }
                _ => {}
            }
        }
        pool
    }

    /// The kind a `maxpool`-style word names: the part before `pool`. A bare `pool` names
    /// no kind (the default) in the stem, and stays `pool` in the head, where it is not a
    /// kind lowering accepts.
    fn pool_kind(&self, p: &P<'_>, bare_is_kind: bool) -> Field<String> {
        let text = p.as_str();
        let prefix = text
            .strip_suffix("pool")
            .unwrap_or(text)
            .trim_end_matches('_');
        let start = self.span(p).start;
        if prefix.is_empty() {
            return bare_is_kind.then(|| Spanned::new(text.to_string(), self.span(p)));
        }
        Some(Spanned::new(
            prefix.to_string(),
            Span::new(start, start + prefix.len()),
        ))
    }

    fn defaults(&mut self, p: P<'_>) -> BlockOptionsAst {
        let mut options = BlockOptionsAst::default();
        for item in p.into_inner() {
            match item.as_rule() {
                Rule::bare_block => {
                    if let Some(kind) = child(&item, Rule::block_kind) {
                        let span = self.span(&kind);
                        self.set(&mut options.block, kind.as_str().to_string(), span, "block");
                    }
                }
                Rule::option => self.option(&mut options, &item, "defaults"),
                _ => {}
            }
        }
        options
    }

    fn option(&mut self, options: &mut BlockOptionsAst, p: &P<'_>, section: &str) {
        let Some(opt) = p.clone().into_inner().next() else {
            return;
        };
        let span = self.span(&opt);
        let value = |rule| child(&opt, rule).map(|v| (v.as_str().to_string(), self.span(&v)));
        match opt.as_rule() {
            Rule::opt_block => {
                if let Some((v, s)) = value(Rule::block_kind) {
                    self.set(&mut options.block, v, s, "block");
                }
            }
            Rule::opt_stride_on => {
                if let Some((v, s)) = value(Rule::stride_on_value) {
                    self.set(&mut options.stride_on, v, s, "stride_on");
                }
            }
            Rule::opt_shortcut => {
                if let Some((v, s)) = value(Rule::shortcut_value) {
                    self.set(&mut options.shortcut, v, s, "shortcut");
                }
            }
            Rule::opt_projection => {
                let mut projection = ProjectionAst::default();
                for f in opt.clone().into_inner() {
                    let s = self.span(&f);
                    match f.as_rule() {
                        Rule::bn_flag => self.set(&mut projection.bn, flag(&f), s, "projection bn"),
                        Rule::bias_flag => {
                            self.set(&mut projection.bias, flag(&f), s, "projection bias")
                        }
                        Rule::proj_kernel => {
                            self.number_in(&f, &mut projection.kernel, "projection kernel")
                        }
                        Rule::no_pool => {
                            self.set(&mut projection.pool, "none".to_string(), s, "projection pool")
                        }
                        Rule::pool_word => {
                            // `avgpool` -> `avg`; a bare `pool` is no kind at all.
                            let kind = self
                                .pool_kind(&f, true)
                                .unwrap_or_else(|| Spanned::new(f.as_str().to_string(), s));
                            self.set(&mut projection.pool, kind.value, kind.span, "projection pool")
                        }
                        _ => {}
                    }
                }
                self.set(&mut options.projection, projection, span, "projection");
            }
            Rule::opt_groups => self.number_in(&opt, &mut options.groups, "groups"),
            Rule::opt_width_per_group => {
                self.number_in(&opt, &mut options.width_per_group, "width_per_group")
            }
            Rule::bias_flag => {
                self.set(&mut options.bias, crate::ast::BiasAst::All(flag(&opt)), span, "bias")
            }
            Rule::bias_list => {
                let flags = children(&opt, Rule::boolean)
                    .map(|b| Spanned::new(b.as_str() == "true", self.span(&b)))
                    .collect();
                self.set(&mut options.bias, BiasAst::PerConv(flags), span, "bias");
            }
            Rule::opt_attention => {
                let mut a = AttentionAst {
                    kind: value(Rule::attention_kind).map(|(v, s)| Spanned::new(v, s)),
                    ..AttentionAst::default()
                };
                for param in children(&opt, Rule::attention_param) {
                    let Some(key) = param.clone().into_inner().next() else {
                        continue;
                    };
                    let (slot, what) = match key.as_rule() {
                        Rule::kw_reduction => (&mut a.reduction, "reduction"),
                        Rule::kw_divisor => (&mut a.divisor, "divisor"),
                        Rule::kw_gamma => (&mut a.gamma, "gamma"),
                        _ => (&mut a.beta, "beta"),
                    };
                    self.number_in(&param, slot, what);
                }
                self.set(&mut options.attention, a, span, "attention");
            }
            Rule::anti_alias => {
                if let Some((v, s)) = value(Rule::anti_alias_value) {
                    self.set(&mut options.anti_alias, v, s, "anti_alias");
                }
            }
            Rule::opt_stride_at => {
                if let Some((v, s)) = value(Rule::stride_at_value) {
                    self.set(&mut options.stride_at, v, s, "stride_at");
                }
            }
            Rule::opt_dilation => self.number_in(&opt, &mut options.dilation, "dilation"),
            Rule::unknown_item => self.unknown(&opt, section, OPTION_KEYS),
            _ => {}
        }
    }

    fn stage(&mut self, p: P<'_>, index: usize) -> StageAst {
        let mut stage = StageAst::default();
        let section = format!("stages[{index}]");
        for part in p.into_inner() {
            let span = self.span(&part);
            match part.as_rule() {
                Rule::stage_name => stage.name = Some(Spanned::new(self.unquote(&part), span)),
                Rule::block_kind => {
                    stage.options.block = Some(Spanned::new(part.as_str().to_string(), span))
                }
                Rule::filters => {
                    let numbers: Vec<_> = children(&part, Rule::number).collect();
                    let values = numbers.iter().filter_map(|n| self.int(n)).collect();
                    stage.filters = Some(Spanned::new(values, span));
                }
                Rule::repeat => self.number_in(&part, &mut stage.repeat, "repeat"),
                Rule::stage_stride => self.number_in(&part, &mut stage.stride, "stride"),
                Rule::option => self.option(&mut stage.options, &part, &section),
                _ => {}
            }
        }
        stage
    }

    fn head(&mut self, p: P<'_>) -> HeadAst {
        let mut head = HeadAst::default();
        for item in children(&p, Rule::head_item) {
            let Some(part) = item.into_inner().next() else {
                continue;
            };
            let span = self.span(&part);
            match part.as_rule() {
                Rule::norm_flag => self.set(&mut head.norm, flag(&part), span, "norm"),
                Rule::softmax_flag => self.set(&mut head.softmax, flag(&part), span, "softmax"),
                Rule::head_pool => {
                    let kind = match part.clone().into_inner().next() {
                        Some(w) if w.as_rule() == Rule::pool_word => self.pool_kind(&w, true),
                        _ => Some(Spanned::new("flatten".to_string(), span)),
                    };
                    if let Some(kind) = kind {
                        self.set(&mut head.pool, kind.value, kind.span, "pool");
                    }
                }
                Rule::dropout => {
                    if let Some(v) = child(&part, Rule::float).and_then(|f| self.float(&f)) {
                        self.set(&mut head.dropout, v.value, v.span, "dropout");
                    }
                }
                Rule::in_features => self.number_in(&part, &mut head.in_features, "in"),
                Rule::fc => {
                    let numbers: Vec<_> = children(&part, Rule::number).collect();
                    if let [features, _] = numbers.as_slice() {
                        if let Some(v) = self.int(features) {
                            self.set(&mut head.in_features, v.value, v.span, "in");
                        }
                    }
                    if let Some(v) = numbers.last().and_then(|n| self.int(n)) {
                        self.set(&mut head.classes, v.value, v.span, "fc");
                    }
                }
                Rule::unknown_item => self.unknown(&part, "head", HEAD_KEYS),
                _ => {}
            }
        }
        head
    }

    fn batch_norm(&mut self, p: P<'_>) -> BatchNormAst {
        let mut bn = BatchNormAst::default();
        for param in p.into_inner() {
            let (slot, what) = match param.as_rule() {
                Rule::bn_eps => (&mut bn.eps, "eps"),
                Rule::bn_momentum => (&mut bn.momentum, "momentum"),
                _ => continue,
            };
            if let Some(v) = child(&param, Rule::float).and_then(|f| self.float(&f)) {
                self.set(slot, v.value, v.span, what);
            }
        }
        bn
    }

    // ---- values -------------------------------------------------------------------------

    /// `KxK` or `KxK/S`: kernels are square, so the two sides must agree.
    fn window(&mut self, p: &P<'_>, kernel: &mut Field<i64>, stride: &mut Field<i64>) {
        let numbers: Vec<_> = children(p, Rule::number).collect();
        let [height, width, rest @ ..] = numbers.as_slice() else {
            return;
        };
        let span = self.span(height).to(self.span(width));
        if let (Some(h), Some(w)) = (self.int(height), self.int(width)) {
            if h.value != w.value {
                self.diags.push(
                    Diagnostic::error(
                        KERNEL_ERROR,
                        format!(
                            "{} {}x{} window is not square",
                            number_article(h.value),
                            h.value,
                            w.value
                        ),
                    )
                    .with_primary(span, "both sides must be equal")
                    .with_help(format!("write `{0}x{0}` or `{1}x{1}`", h.value, w.value)),
                );
            }
            self.set(kernel, h.value, span, "window size");
        }
        if let Some(s) = rest.first().and_then(|n| self.int(n)) {
            self.set(stride, s.value, s.span, "stride");
        }
    }

    /// Sets `slot` from the (first) number inside `p`.
    fn number_in(&mut self, p: &P<'_>, slot: &mut Field<i64>, what: &str) {
        if let Some(v) = child(p, Rule::number).and_then(|n| self.int(&n)) {
            self.set(slot, v.value, v.span, what);
        }
    }

    fn int(&mut self, p: &P<'_>) -> Option<Spanned<i64>> {
        let span = self.span(p);
        let digits: String = p.as_str().chars().filter(|c| *c != '_').collect();
        match digits.parse::<i64>() {
            Ok(v) => Some(Spanned::new(v, span)),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error(
                        NUMBER_ERROR,
                        format!("number {} is too large", shorten(p.as_str())),
                    )
                    .with_primary(span, "does not fit in 64 bits"),
                );
                None
            }
        }
    }

    fn float(&mut self, p: &P<'_>) -> Option<Spanned<f64>> {
        let span = self.span(p);
        match p.as_str().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(Spanned::new(v, span)),
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        NUMBER_ERROR,
                        format!("number {} is too large", shorten(p.as_str())),
                    )
                    .with_primary(span, "does not fit in a 64-bit float"),
                );
                None
            }
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    /// A pair's span in the file. pest's implicit whitespace may leave blanks and a
    /// comment at the end of a pair whose last part matched nothing: they are cut off.
    fn span(&self, p: &P<'_>) -> Span {
        let start = self.base + p.as_span().start();
        let text = lines::strip_comment(p.as_str()).trim_end_matches([' ', '\t', '\r']);
        Span::new(start, start + text.len())
    }

    /// Fills `slot` unless it is already set, in which case the repetition is an error.
    fn set<T>(&mut self, slot: &mut Field<T>, value: T, span: Span, what: &str) {
        match slot {
            Some(first) => self.diags.push(
                Diagnostic::error(DUPLICATE_ERROR, format!("`{what}` is given twice"))
                    .with_primary(span, "given again here")
                    .with_secondary(first.span, "first given here")
                    .with_help("keep one of the two"),
            ),
            None => *slot = Some(Spanned::new(value, span)),
        }
    }

    /// A name as written: bare, or quoted with `\"`, `\\`, `\n`, `\t` and `\r` escapes.
    /// Any other escape is an error (the name keeps the character after the backslash, so
    /// that checking goes on).
    fn unquote(&mut self, p: &P<'_>) -> String {
        let text = p.as_str();
        let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
            return text.to_string();
        };
        // Byte offset of `inner` in the file.
        let at = self.base + p.as_span().start() + 1;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, c @ ('"' | '\\'))) => out.push(c),
                Some((_, 'u')) => {
                    // `\u{1b}`: one to six hex digits naming a Unicode scalar value.
                    // Only the next few bytes are looked at, so many `\u{` stay linear.
                    let rest = &inner[i + 2..];
                    let digits = rest.strip_prefix('{').and_then(|r| {
                        r.as_bytes()
                            .iter()
                            .take(7)
                            .position(|&b| b == b'}')
                            .map(|end| &r[..end])
                    });
                    let value = digits
                        .filter(|d| {
                            (1..=6).contains(&d.len()) && d.chars().all(|c| c.is_ascii_hexdigit())
                        })
                        .and_then(|d| u32::from_str_radix(d, 16).ok())
                        .and_then(char::from_u32);
                    match (digits, value) {
                        (Some(d), Some(c)) => {
                            out.push(c);
                            // Skip `{`, the digits and `}`.
                            for _ in 0..d.len() + 2 {
                                chars.next();
                            }
                        }
                        _ => {
                            let len = 2;
                            self.diags.push(
                                Diagnostic::error(SYNTAX_ERROR, "malformed `\\u{..}` escape in a quoted name")
                                    .with_primary(Span::new(at + i, at + i + len), "not a Unicode character")
                                    .with_help("write one to six hex digits of a Unicode scalar value, as in `\\u{1b}`"),
                            );
                        }
                    }
                }
                Some((_, other)) => {
                    const KNOWN: &str =
                        "a quoted name knows `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r` and `\\u{..}`";
                    let (shown, help) = if other.is_control() {
                        (
                            format!("`\\` followed by U+{:04X}", other as u32),
                            format!("{KNOWN}; remove the backslash"),
                        )
                    } else {
                        (
                            format!("`\\{other}`"),
                            format!("{KNOWN}; write `\\\\{other}` for a backslash followed by `{other}`"),
                        )
                    };
                    let len = 1 + other.len_utf8();
                    self.diags.push(
                        Diagnostic::error(
                            SYNTAX_ERROR,
                            format!("unknown escape {shown} in a quoted name"),
                        )
                        .with_primary(
                            Span::new(at + i, at + i + len),
                            "not an escape of the language",
                        )
                        .with_help(help),
                    );
                    out.push(other);
                }
                None => {}
            }
        }
        out
    }

    fn unknown(&mut self, p: &P<'_>, section: &str, expected: &[&'static str]) {
        if let Some(key) = child(p, Rule::unknown_key) {
            self.ast.unknown.push(UnknownKey {
                key: Spanned::new(key.as_str().to_string(), self.span(&key)),
                section: section.to_string(),
                expected: expected.to_vec(),
            });
        }
    }
}

fn children<'i>(p: &P<'i>, rule: Rule) -> impl Iterator<Item = P<'i>> {
    p.clone().into_inner().filter(move |c| c.as_rule() == rule)
}

fn child<'i>(p: &P<'i>, rule: Rule) -> Option<P<'i>> {
    children(p, rule).next()
}

/// `bn` -> true, `no bn` -> false.
fn flag(p: &P<'_>) -> bool {
    !p.clone().into_inner().any(|c| c.as_rule() == Rule::kw_no)
}

/// The article before a number read aloud: `an 8x8 window`, `an 11x11`, `a 7x7`.
fn number_article(n: i64) -> &'static str {
    let digits = n.unsigned_abs().to_string();
    // eight..., eleven, eighteen (and their thousands, millions, ...); not for `-`.
    let eleven = digits.len() % 3 == 2 && (digits.starts_with("11") || digits.starts_with("18"));
    if n >= 0 && (digits.starts_with('8') || eleven) {
        "an"
    } else {
        "a"
    }
}

fn shorten(token: &str) -> String {
    const MAX_SHOWN: usize = 24;
    if token.chars().count() > MAX_SHOWN {
        format!("`{}...`", token.chars().take(MAX_SHOWN).collect::<String>())
    } else {
        format!("`{token}`")
    }
}
