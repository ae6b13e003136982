//! serde's view of the document ([`super::schema`]) -> the surface AST, with saphyr's
//! locations turned into byte spans of the spec.

use super::schema::*;
use crate::ast::*;
use crate::diag::{did_you_mean, Diagnostic};
use crate::span::{self, SourceFile, Span};
use serde_saphyr::{Location, Spanned as YSpanned};

/// Turns locations into spans for one source file.
pub struct Spans<'a> {
    file: &'a SourceFile,
}

impl<'a> Spans<'a> {
    pub fn new(file: &'a SourceFile) -> Self {
        Spans { file }
    }

    /// Byte offset where a location starts (clamped to the text).
    pub fn start_of(&self, loc: &Location) -> usize {
        let offset = match loc
            .span()
            .byte_offset()
            .and_then(|b| usize::try_from(b).ok())
        {
            Some(b) => b,
            None => {
                let line = usize::try_from(loc.line()).unwrap_or(usize::MAX);
                let col = usize::try_from(loc.column()).unwrap_or(usize::MAX);
                self.file.offset_of(line.max(1), col.max(1))
            }
        };
        floor_boundary(&self.file.text, offset.min(self.file.text.len()))
    }

    /// The span of a scalar (or of any single token saphyr located).
    pub fn token(&self, loc: &Location) -> Span {
        let start = self.start_of(loc);
        let len = loc
            .span()
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0);
        if len > 0 {
            let end = floor_boundary(
                &self.file.text,
                start.saturating_add(len).min(self.file.text.len()),
            );
            return Span::new(start, end);
        }
        // No length known: up to the end of the plain token.
        let rest = self.file.text.get(start..).unwrap_or("");
        let token_len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}'))
            .unwrap_or(rest.len());
        Span::new(start, start + token_len)
    }

    /// The text a span covers (empty if it is not on character boundaries).
    pub fn text(&self, span: Span) -> &'a str {
        self.file.text.get(span.range()).unwrap_or("")
    }

    /// The span of a mapping or sequence: its first line only, from where it starts to
    /// the end of that line's text (trailing comment and blanks left out), so a label
    /// under it never spans half the file.
    pub fn first_line(&self, loc: &Location) -> Span {
        first_line_from(&self.file.text, self.start_of(loc))
    }
}

/// A type a scalar field is read as, and what a spec author calls it (`None`: text, for
/// which quotes are fine).
pub trait Scalar {
    const EXPECTED: Option<&'static str>;
}

impl Scalar for String {
    const EXPECTED: Option<&'static str> = None;
}

impl Scalar for i64 {
    const EXPECTED: Option<&'static str> = Some("an integer");
}

impl Scalar for f64 {
    const EXPECTED: Option<&'static str> = Some("a number");
}

impl Scalar for bool {
    const EXPECTED: Option<&'static str> = Some("`true` or `false`");
}

/// The span of `location` in a spanned value (the use site when it came through an alias).
fn loc_of<T>(v: &YSpanned<T>) -> &Location {
    if v.referenced != Location::UNKNOWN {
        &v.referenced
    } else {
        &v.defined
    }
}

/// The most of a line a label covers: a label under a longer line ends here, so that
/// finding labels stays linear in the size of a spec written on one line.
const MAX_LABEL_BYTES: usize = 256;

/// From `start` to the end of its line (at most [`MAX_LABEL_BYTES`]), less a trailing
/// comment and trailing blanks.
pub fn first_line_from(text: &str, start: usize) -> Span {
    let rest = text.get(start..).unwrap_or("");
    let mut cap = rest.len().min(MAX_LABEL_BYTES);
    while !rest.is_char_boundary(cap) {
        cap -= 1;
    }
    let line = rest[..cap].split('\n').next().unwrap_or("");
    let mut end = line.len();
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') if opens_scalar(prev) => quote = Some(c),
            (None, '#') if prev.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
        prev = c;
    }
    let trimmed = line[..end].trim_end().len();
    Span::new(start, start + trimmed)
}

/// Whether a quote after `prev` starts a quoted scalar (rather than being an apostrophe
/// inside a plain one, as in `name: bob's-net`).
pub fn opens_scalar(prev: char) -> bool {
    prev.is_whitespace() || matches!(prev, ':' | '[' | '{' | ',' | '-' | '?')
}

/// The span of the document: its first line that is neither blank nor a comment (nor a
/// `---` / `%` directive line), or the empty span at the start.
pub fn document_span(text: &str) -> Span {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let t = body.trim_end();
        let skip = t.is_empty()
            || t.starts_with('#')
            || t.starts_with('%')
            || t == "---"
            || t.starts_with("--- #");
        if !skip {
            return first_line_from(text, offset + indent);
        }
        offset += line.len();
    }
    Span::DUMMY
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Converts one parsed document, collecting the few problems serde could not see
/// (a stem pool that is neither `none` nor a mapping).
pub struct Converter<'a> {
    spans: Spans<'a>,
    pub errors: Vec<Diagnostic>,
}

impl<'a> Converter<'a> {
    pub fn new(file: &'a SourceFile) -> Self {
        Converter {
            spans: Spans::new(file),
            errors: Vec::new(),
        }
    }

    /// A scalar with its span. A number or boolean written in quotes is a string in
    /// YAML, which serde-saphyr would still read as the number: it is reported here.
    fn scalar<T: Scalar>(&mut self, v: YSpanned<T>) -> span::Spanned<T> {
        let span = self.spans.token(loc_of(&v));
        if let Some(expected) = T::EXPECTED {
            let text = self.spans.text(span);
            if text.starts_with(['"', '\'']) {
                self.errors.push(
                    Diagnostic::error(
                        "E-yaml-type",
                        format!("wrong type: expected {expected}, found the string {text}"),
                    )
                    .with_primary(span, format!("expected {expected}, not a quoted string"))
                    .with_help(format!(
                        "remove the quotes: `{}`",
                        text.trim_matches(['"', '\''])
                    )),
                );
            }
        }
        span::Spanned::new(v.value, span)
    }

    fn field<T: Scalar>(&mut self, v: Entry<T>) -> Field<T> {
        self.present(v).map(|v| self.scalar(v))
    }

    /// A key's value, if the key is there with one. A null (`key: ~`, `key:`) is
    /// reported: it reads as "nothing" to some and as "the default" to others, and which
    /// one is not guessed.
    fn present<T>(&mut self, v: Entry<T>) -> Option<YSpanned<T>> {
        let v = v?;
        match v.value {
            Some(value) => Some(YSpanned {
                value,
                referenced: v.referenced,
                defined: v.defined,
            }),
            None => {
                let at = self.spans.token(loc_of(&v));
                let (key, span) = self.key_of(at);
                let help = match key.as_str() {
                    "pool" => "write `pool: none` for no pooling, or leave `pool` out for torchvision's max-pool \
                               3x3/2 pad 1"
                        .to_owned(),
                    "name" | "stages" | "repeat" | "filters" => format!("give `{key}` a value: it is required"),
                    _ => format!("give `{key}` a value, or leave the key out for the default"),
                };
                self.errors.push(
                    Diagnostic::error("E-yaml-type", format!("`{key}` has no value"))
                        .with_primary(span, "null: neither a value nor the default")
                        .with_help(help),
                );
                None
            }
        }
    }

    /// The key whose null value was located at `at`: the word before the last `:` at or
    /// before it (an empty value is located at its colon or at the next token). Returns
    /// the key and its span, or `?` and `at` when there is none.
    fn key_of(&self, at: Span) -> (String, Span) {
        let text = self.spans.text(Span::new(0, self.spans.file.text.len()));
        // The colon itself may be where an empty value is located.
        let end = if text[at.start..].starts_with(':') {
            at.start + 1
        } else {
            at.start
        };
        let upto = &text[..end];
        let Some(colon) = upto.rfind(':') else {
            return ("?".to_owned(), at);
        };
        let before = upto[..colon].trim_end();
        let start = before
            .rfind(|c: char| c.is_whitespace() || matches!(c, '{' | '[' | ','))
            .map_or(0, |i| i + 1);
        let key = &before[start..];
        if key.is_empty() {
            return ("?".to_owned(), at);
        }
        (
            key.trim_matches(['"', '\'']).to_owned(),
            Span::new(start, start + key.len()),
        )
    }

    /// A mapping or sequence field, converted by `f` and spanned by its first line.
    fn section<T, U>(&mut self, v: Entry<T>, f: impl FnOnce(&mut Self, T) -> U) -> Field<U> {
        let v = self.present(v)?;
        let span = self.spans.first_line(loc_of(&v));
        let value = f(self, v.value);
        Some(span::Spanned::new(value, span))
    }

    fn numbers(&mut self, items: Vec<YSpanned<i64>>) -> Vec<span::Spanned<i64>> {
        items.into_iter().map(|i| self.scalar(i)).collect()
    }

    pub fn root(&mut self, root: RootRepr, span: Span) -> SpecAst {
        SpecAst {
            span,
            name: self.field(root.name),
            input: self.section(root.input, Self::input),
            stem: self.section(root.stem, Self::stem),
            defaults: self.section(root.defaults, Self::options),
            stages: self.section(root.stages, |c, stages| {
                stages
                    .into_iter()
                    .map(|s| {
                        let span = c.spans.first_line(loc_of(&s));
                        span::Spanned::new(c.stage(s.value), span)
                    })
                    .collect()
            }),
            head: self.section(root.head, Self::head),
            init: self.field(root.init),
            zero_init_residual: self.field(root.zero_init_residual),
            batch_norm: self.section(root.batch_norm, |c, bn| BatchNormAst {
                eps: c.field(bn.eps),
                momentum: c.field(bn.momentum),
            }),
            norm: self.kind_or(
                root.norm,
                |c, m| NormAst {
                    kind: c.field(m.kind),
                    groups: c.field(m.groups),
                },
                |n| &mut n.kind,
            ),
            drop_path_rate: self.field(root.drop_path_rate),
            features: self.section(root.features, |c, items: Vec<YSpanned<String>>| {
                items.into_iter().map(|i| c.scalar(i)).collect()
            }),
            unknown: Vec::new(),
        }
    }

    fn input(&mut self, input: InputRepr) -> InputAst {
        match input {
            InputRepr::List(items) => {
                let mut items = self.numbers(items).into_iter();
                let (channels, height, width) = (items.next(), items.next(), items.next());
                if let Some(extra) = items.next() {
                    self.errors.push(
                        Diagnostic::error("E-yaml-type", "`input` takes three numbers")
                            .with_primary(extra.span, "extra number")
                            .with_help("write `input: [channels, height, width]`, e.g. `input: [3, 224, 224]`"),
                    );
                }
                InputAst {
                    channels,
                    height,
                    width,
                }
            }
            InputRepr::Map(m) => InputAst {
                channels: self.field(m.channels),
                height: self.field(m.height),
                width: self.field(m.width),
            },
        }
    }

    /// A keyword (`norm: batch`) as the `kind` of an otherwise empty AST, spanned by its
    /// token; or a mapping converted by `map`, spanned by its first line.
    fn kind_or<M, T: Default>(
        &mut self,
        v: Entry<KindOr<M>>,
        map: impl FnOnce(&mut Self, M) -> T,
        kind: impl FnOnce(&mut T) -> &mut Field<String>,
    ) -> Field<T> {
        let v = self.present(v)?;
        let loc = *loc_of(&v);
        Some(match v.value {
            KindOr::Kind(k) => {
                let span = self.spans.token(&loc);
                let mut out = T::default();
                *kind(&mut out) = Some(span::Spanned::new(k, span));
                span::Spanned::new(out, span)
            }
            KindOr::Map(m) => {
                let span = self.spans.first_line(&loc);
                span::Spanned::new(map(self, m), span)
            }
        })
    }

    fn conv(&mut self, conv: ConvRepr) -> ConvAst {
        ConvAst {
            filters: self.field(conv.filters),
            kernel: self.field(conv.kernel),
            stride: self.field(conv.stride),
            padding: self.field(conv.padding),
            bias: self.field(conv.bias),
        }
    }

    fn bias(&mut self, b: Entry<BiasRepr>) -> Field<BiasAst> {
        let v = self.present(b)?;
        let loc = *loc_of(&v);
        Some(match v.value {
            BiasRepr::All(all) => {
                let s = self.scalar(YSpanned {
                    value: all,
                    referenced: v.referenced,
                    defined: v.defined,
                });
                span::Spanned::new(BiasAst::All(s.value), s.span)
            }
            BiasRepr::PerConv(items) => {
                let span = self.spans.first_line(&loc);
                let items = items.into_iter().map(|i| self.scalar(i)).collect();
                span::Spanned::new(BiasAst::PerConv(items), span)
            }
        })
    }

    fn attention(&mut self, a: Entry<KindOr<AttentionMapRepr>>) -> Field<AttentionAst> {
        self.kind_or(
            a,
            |c, m| AttentionAst {
                kind: c.field(m.kind),
                reduction: c.field(m.reduction),
                divisor: c.field(m.divisor),
                gamma: c.field(m.gamma),
                beta: c.field(m.beta),
            },
            |a| &mut a.kind,
        )
    }

    fn stem(&mut self, stem: StemRepr) -> StemAst {
        StemAst {
            conv: self.section(stem.conv, Self::conv),
            convs: self.section(stem.convs, |c, convs| {
                convs
                    .into_iter()
                    .map(|v| {
                        let span = c.spans.first_line(loc_of(&v));
                        span::Spanned::new(c.conv(v.value), span)
                    })
                    .collect()
            }),
            bn: self.field(stem.bn),
            relu: self.field(stem.relu),
            pool: self.present(stem.pool).map(|p| {
                let loc = *loc_of(&p);
                match p.value {
                    StemPoolRepr::None => span::Spanned::new(StemPoolAst::None, self.spans.token(&loc)),
                    StemPoolRepr::Pool(pool) => {
                        let pool = PoolAst {
                            kind: self.field(pool.kind),
                            kernel: self.field(pool.kernel),
                            stride: self.field(pool.stride),
                            padding: self.field(pool.padding),
                            ceil_mode: self.field(pool.ceil_mode),
                            anti_alias: self.field(pool.anti_alias),
                            filters: self.field(pool.filters),
                            bias: self.field(pool.bias),
                        };
                        span::Spanned::new(StemPoolAst::Pool(Box::new(pool)), self.spans.first_line(&loc))
                    }
                    StemPoolRepr::Other(found) => {
                        let span = self.spans.token(&loc);
                        let mut d = Diagnostic::error("E-yaml-type", format!("stem `pool` cannot be `{found}`"))
                            .with_primary(span, "expected `none` or a pooling mapping")
                            .with_note("write `pool: none` for no pooling, or e.g. `pool: {kind: max, kernel: 3, stride: 2, padding: 1}`");
                        if let Some(s) = did_you_mean(&found, ["none"]) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        self.errors.push(d);
                        // Keep going as if no pooling was asked for, so that the rest of the
                        // spec still gets checked.
                        span::Spanned::new(StemPoolAst::None, span)
                    }
                }
            }),
        }
    }

    fn projection(&mut self, p: Entry<ProjectionRepr>) -> Field<ProjectionAst> {
        self.section(p, |c, p| ProjectionAst {
            bn: c.field(p.bn),
            bias: c.field(p.bias),
            kernel: c.field(p.kernel),
            pool: c.field(p.pool),
        })
    }

    fn options(&mut self, o: OptionsRepr) -> BlockOptionsAst {
        BlockOptionsAst {
            block: self.field(o.block),
            stride_on: self.field(o.stride_on),
            shortcut: self.field(o.shortcut),
            projection: self.projection(o.projection),
            groups: self.field(o.groups),
            width_per_group: self.field(o.width_per_group),
            bias: self.bias(o.bias),
            attention: self.attention(o.attention),
            anti_alias: self.field(o.anti_alias),
            stride_at: self.field(o.stride_at),
            dilation: self.field(o.dilation),
        }
    }

    fn stage(&mut self, s: StageRepr) -> StageAst {
        StageAst {
            name: self.field(s.stage),
            repeat: self.field(s.repeat),
            filters: self.section(s.filters, Self::numbers_mut),
            stride: self.field(s.stride),
            options: BlockOptionsAst {
                block: self.field(s.block),
                stride_on: self.field(s.stride_on),
                shortcut: self.field(s.shortcut),
                projection: self.projection(s.projection),
                groups: self.field(s.groups),
                width_per_group: self.field(s.width_per_group),
                bias: self.bias(s.bias),
                attention: self.attention(s.attention),
                anti_alias: self.field(s.anti_alias),
                stride_at: self.field(s.stride_at),
                dilation: self.field(s.dilation),
            },
        }
    }

    fn numbers_mut(&mut self, items: Vec<YSpanned<i64>>) -> Vec<span::Spanned<i64>> {
        self.numbers(items)
    }

    fn head(&mut self, h: HeadRepr) -> HeadAst {
        HeadAst {
            norm: self.field(h.norm),
            pool: self.field(h.pool),
            dropout: self.field(h.dropout),
            in_features: self.field(h.in_features),
            classes: self.field(h.classes),
            softmax: self.field(h.softmax),
        }
    }
}
