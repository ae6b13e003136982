//! pest's parse errors as diagnostics: rule names become words ("expected a number, `x`
//! or `,`"), the position becomes a label on the offending token, and the statement's
//! expected form becomes a help line.

use super::lines::{self, expected_form};
use super::{Rule, SYNTAX_ERROR};
use crate::diag::Diagnostic;
use crate::ir::{AntiAlias, Attention, BlockKind, Init, Norm, ShortcutOption, StrideAt, StrideOn};
use crate::span::Span;
use pest::error::{Error, ErrorVariant, InputLocation};

/// A syntax error in the line of `text` that starts at byte `base` of the file, parsed
/// with the entry rule `entry`.
pub fn diagnostic(error: &Error<Rule>, text: &str, base: usize, entry: Rule) -> Diagnostic {
    let pos = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((start, _)) => start,
    }
    .min(text.len());
    let (found, found_len) = found_at(text, pos);
    let (message, label) = match &error.variant {
        ErrorVariant::ParsingError {
            positives,
            negatives,
        } => {
            // Say what may come next before "`,`" and "end of line".
            let mut positives = positives.clone();
            positives.sort_by_key(|r| match r {
                Rule::EOI => 2,
                Rule::comma => 1,
                _ => 0,
            });
            let expected = join(positives.iter().filter_map(|r| describe(*r)));
            let unexpected = join(negatives.iter().filter_map(|r| describe(*r)));
            match (expected.is_empty(), unexpected.is_empty()) {
                (false, _) => (
                    format!("expected {expected}, found {found}"),
                    format!("expected {expected}"),
                ),
                (true, false) => (
                    format!("unexpected {unexpected}"),
                    "not allowed here".to_string(),
                ),
                (true, true) => (format!("unexpected {found}"), "not understood".to_string()),
            }
        }
        ErrorVariant::CustomError { message } => (message.clone(), "here".to_string()),
    };
    Diagnostic::error(SYNTAX_ERROR, message)
        .with_primary(Span::new(base + pos, base + pos + found_len), label)
        .with_help(expected_form(entry))
}

/// The error for a line whose first word starts no statement.
pub fn not_a_statement(text: &str, base: usize) -> Diagnostic {
    let lead = text.len() - text.trim_start().len();
    let (found, len) = found_at(text, lead);
    Diagnostic::error(SYNTAX_ERROR, format!("expected a statement, found {found}"))
        .with_primary(
            Span::new(base + lead, base + lead + len),
            "expected a statement keyword or a stage",
        )
        .with_help(lines::STATEMENT_HELP)
}

/// What stands at `pos`, for "found ...": a word, a number or one character, quoted; or
/// "end of line". Long tokens are cut short (a 1 MB line makes a short message).
fn found_at(text: &str, pos: usize) -> (String, usize) {
    let rest = lines::strip_comment(text.get(pos..).unwrap_or(""));
    if rest.trim().is_empty() {
        return ("end of line".to_string(), 0);
    }
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.');
    let first = rest.chars().next().unwrap_or(' ');
    let len = if word(first) {
        rest.find(|c: char| !word(c)).unwrap_or(rest.len())
    } else if first == '-' && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        1 + rest[1..].find(|c: char| !word(c)).unwrap_or(rest.len() - 1)
    } else {
        first.len_utf8()
    };
    const MAX_SHOWN: usize = 24;
    let token = &rest[..len];
    let shown = if token.chars().count() > MAX_SHOWN {
        format!("`{}...`", token.chars().take(MAX_SHOWN).collect::<String>())
    } else {
        format!("`{token}`")
    };
    (shown, len)
}

/// "a, b or c", each phrase once, in the order pest tried them.
fn join(phrases: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for p in phrases {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    match seen.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn one_of(keywords: &[&str]) -> String {
    let quoted: Vec<String> = keywords.iter().map(|k| format!("`{k}`")).collect();
    join(quoted.into_iter())
}

/// A rule in words, or `None` for rules a user never needs to hear about.
pub fn describe(rule: Rule) -> Option<String> {
    let text = match rule {
        Rule::EOI => "end of line",
        Rule::number | Rule::float => "a number",
        Rule::boolean => "a boolean (`true` or `false`)",
        Rule::model_name => "a name",
        Rule::stage_name => "a stage name",
        Rule::block_kind | Rule::bare_block => {
            return Some(format!("a block kind ({})", one_of(BlockKind::KEYWORDS)));
        }
        Rule::stride_on_value => return Some(format!("a stride position ({})", one_of(StrideOn::KEYWORDS))),
        Rule::shortcut_value => return Some(format!("a shortcut option ({})", one_of(ShortcutOption::KEYWORDS))),
        Rule::init_kind => return Some(format!("an init scheme ({})", one_of(Init::KEYWORDS))),
        Rule::stride_at_value => return Some(format!("a stride position ({})", one_of(StrideAt::KEYWORDS))),
        Rule::anti_alias_value => return Some(format!("an anti-aliasing ({})", one_of(AntiAlias::KEYWORDS))),
        Rule::attention_kind => return Some(format!("an attention ({})", one_of(Attention::KEYWORDS))),
        Rule::norm_kind => return Some(format!("a norm kind ({})", one_of(Norm::KEYWORDS))),
        Rule::pool_word => "a pooling (`maxpool` or `avgpool`)",
        Rule::times => "`x`",
        Rule::slash => "`/`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::arrow => "`->`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::kw_model => "`model`",
        Rule::kw_input => "`input`",
        Rule::kw_stem => "`stem`",
        Rule::kw_defaults => "`defaults`",
        Rule::kw_head => "`head`",
        Rule::kw_init => "`init`",
        Rule::kw_zero_init_residual => "`zero_init_residual`",
        Rule::kw_batch_norm => "`batch_norm`",
        Rule::kw_conv => "`conv`",
        Rule::kw_pad => "`pad`",
        Rule::kw_bias => "`bias`",
        Rule::kw_bn => "`bn`",
        Rule::kw_relu => "`relu`",
        Rule::kw_pool => "`pool`",
        Rule::kw_ceil => "`ceil`",
        Rule::kw_no => "`no`",
        Rule::kw_norm => "`norm`",
        Rule::kw_flatten => "`flatten`",
        Rule::kw_dropout => "`dropout`",
        Rule::kw_in => "`in`",
        Rule::kw_fc => "`fc`",
        Rule::kw_softmax => "`softmax`",
        Rule::kw_block => "`block`",
        Rule::kw_stride_on => "`stride_on`",
        Rule::kw_shortcut => "`shortcut`",
        Rule::kw_projection => "`projection`",
        Rule::kw_groups => "`groups`",
        Rule::kw_width_per_group => "`width_per_group`",
        Rule::kw_eps => "`eps`",
        Rule::kw_momentum => "`momentum`",
        Rule::kw_drop_path => "`drop_path`",
        Rule::kw_features => "`features`",
        Rule::features => "`features STAGE, ...`",
        Rule::kw_attention => "`attention`",
        Rule::kw_anti_alias => "`anti_alias`",
        Rule::kw_stride_at => "`stride_at`",
        Rule::kw_dilation => "`dilation`",
        Rule::kw_kernel => "`kernel`",
        Rule::kw_reduction => "`reduction`",
        Rule::kw_divisor => "`divisor`",
        Rule::kw_gamma => "`gamma`",
        Rule::kw_beta => "`beta`",
        Rule::anti_alias => "`anti_alias blur|avg`",
        Rule::proj_kernel => "`kernel K`",
        Rule::bias_list => "`bias [..]`",
        Rule::opt_attention => "`attention se|eca`",
        Rule::attention_param => "an attention setting (`reduction R`, `divisor D`, `gamma G`, `beta B`)",
        Rule::opt_stride_at => "`stride_at first|last`",
        Rule::opt_dilation => "`dilation D`",
        Rule::model_norm => "`norm ...`",
        Rule::drop_path => "`drop_path P`",
        Rule::kernel_stride => "a window such as `3x3/2`",
        Rule::padding => "`pad P`",
        Rule::bias_flag => "`bias`/`no bias`",
        Rule::bn_flag => "`bn`/`no bn`",
        Rule::relu_flag => "`relu`/`no relu`",
        Rule::ceil_flag => "`ceil`/`no ceil`",
        Rule::norm_flag => "`norm`/`no norm`",
        Rule::softmax_flag => "`softmax`/`no softmax`",
        Rule::unknown_item | Rule::unknown_key => "an option name",
        Rule::unknown_rest => return None,
        Rule::stem_item => "a stem part (`conv ...`, `bn`, `relu`, `maxpool ...` or `no pool`)",
        Rule::stem_conv => "`conv`",
        Rule::out_filters => "`-> FILTERS`",
        Rule::no_pool => "`no pool`",
        Rule::stem_pool => "a pooling such as `maxpool 3x3/2 pad 1` or `convpool 3x3/2 pad 1 -> 64`",
        Rule::option => {
            "a block option (`stride_on`, `shortcut`, `projection`, `groups`, `width_per_group`, `bias`, `attention`, \
             `anti_alias`, `stride_at`, `dilation`)"
        }
        Rule::opt_block => "`block KIND`",
        Rule::opt_stride_on => "`stride_on conv1|conv2`",
        Rule::opt_shortcut => "`shortcut A|B|C`",
        Rule::opt_projection => "`projection`",
        Rule::opt_groups => "`groups G`",
        Rule::opt_width_per_group => "`width_per_group W`",
        Rule::filters => "filters such as `[64, 64, 256]`",
        Rule::repeat => "a block count such as `x3`",
        Rule::stage_stride => "a stride such as `/2`",
        Rule::head_item => {
            "a head part (`avgpool`, `maxpool`, `flatten`, `norm`, `dropout P`, `in N`, `fc CLASSES` or `softmax`)"
        }
        Rule::head_pool => "a pooling (`avgpool`, `maxpool` or `flatten`)",
        Rule::dropout => "`dropout P`",
        Rule::in_features => "`in N`",
        Rule::fc => "`fc CLASSES`",
        Rule::bn_eps => "`eps E`",
        Rule::bn_momentum => "`momentum M`",
        Rule::model => "`model NAME`",
        Rule::input => "`input CxHxW`",
        Rule::stem => "`stem ...`",
        Rule::defaults => "`defaults ...`",
        Rule::stage => "a stage",
        Rule::head => "`head ...`",
        Rule::init => "`init ...`",
        Rule::zero_init_residual => "`zero_init_residual`",
        Rule::batch_norm => "`batch_norm ...`",
        Rule::model_line
        | Rule::input_line
        | Rule::stem_line
        | Rule::defaults_line
        | Rule::stage_line
        | Rule::head_line
        | Rule::init_line
        | Rule::zero_init_residual_line
        | Rule::batch_norm_line
        | Rule::norm_line
        | Rule::drop_path_line
        | Rule::features_line => return None,
        // Silent helpers: pest never reports them, but they are variants of `Rule`.
        Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::ident_char
        | Rule::quoted
        | Rule::bare_name
        | Rule::word
        | Rule::stem_word
        | Rule::option_word
        | Rule::head_word
        | Rule::defaults_item
        | Rule::bn_param => return None,
    };
    Some(text.to_string())
}
