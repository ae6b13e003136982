//! `resnetc import --map FILE`: renaming the keys of a checkpoint from another code base.
//!
//! One rule per line, `REGEX => REPLACEMENT`; blank lines and lines starting with `#`
//! are skipped. A rule applies when its regex matches a whole key; the first rule that
//! applies renames it (`$1`, `${name}` refer to groups), and keys no rule matches keep
//! their name and are reported. An empty replacement drops the key.
//!
//! ```text
//! # a backbone saved inside a detection model
//! backbone\.body\.(.*) => $1
//! # a classifier called `head` instead of `fc`
//! head\.(weight|bias) => fc.$1
//! # not needed
//! aux_head\..* =>
//! ```

use regex::Regex;
use std::path::Path;

/// The longest map file read.
pub const MAX_MAP_BYTES: u64 = 1 << 20;
/// Compiled size limit of one rule's regex (the regex crate's own default is 10 MiB).
const MAX_REGEX_BYTES: usize = 1 << 20;

/// A parsed map file.
#[derive(Debug)]
pub struct RenameMap {
    rules: Vec<(Regex, String)>,
}

/// What applying a map to a list of keys did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Renamed {
    /// The new name of each key (`None`: dropped), in the keys' order.
    pub names: Vec<Option<String>>,
    /// Keys no rule matched (kept as they are).
    pub unmatched: Vec<String>,
}

impl RenameMap {
    /// Parses map text; `origin` names it in errors.
    pub fn parse(text: &str) -> Result<RenameMap, String> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((pattern, replacement)) = line.split_once("=>") else {
                return Err(format!(
                    "line {}: expected `REGEX => REPLACEMENT`, found `{}`",
                    i + 1,
                    crate::diag::escape(line)
                ));
            };
            let pattern = pattern.trim();
            let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| {
                    format!(
                        "line {}: `{}` is not a valid regex: {e}",
                        i + 1,
                        crate::diag::escape(pattern)
                    )
                })?;
            rules.push((regex, replacement.trim().to_string()));
        }
        if rules.is_empty() {
            return Err("the map holds no rule (`REGEX => REPLACEMENT` lines)".into());
        }
        Ok(RenameMap { rules })
    }

    /// Reads and parses a map file (a regular file of at most [`MAX_MAP_BYTES`], UTF-8).
    pub fn read(path: &Path) -> Result<RenameMap, String> {
        let bytes = crate::files::read_bounded(path, MAX_MAP_BYTES).map_err(|e| e.to_string())?;
        let text = String::from_utf8(bytes).map_err(|_| "the map is not UTF-8 text".to_string())?;
        RenameMap::parse(&text)
    }

    /// Renames `keys`.
    pub fn apply<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Renamed {
        let mut out = Renamed::default();
        for key in keys {
            match self.rules.iter().find(|(r, _)| r.is_match(key)) {
                Some((r, replacement)) => {
                    let new = r.replace(key, replacement.as_str()).into_owned();
                    out.names.push((!new.is_empty()).then_some(new));
                }
                None => {
                    out.unmatched.push(key.to_string());
                    out.names.push(Some(key.to_string()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_whole_keys_with_the_first_rule_that_matches() {
        let map = RenameMap::parse(
            "# comment\n\nbackbone\\.(.*) => $1\nhead\\.(weight|bias) => fc.$1\naux\\..* =>\n",
        )
        .unwrap();
        let r = map.apply(
            [
                "backbone.conv1.weight",
                "head.bias",
                "aux.x",
                "xhead.bias",
                "bn1.weight",
            ]
            .into_iter(),
        );
        assert_eq!(
            r.names,
            [
                Some("conv1.weight".into()),
                Some("fc.bias".into()),
                None,
                Some("xhead.bias".into()),
                Some("bn1.weight".into())
            ]
        );
        assert_eq!(r.unmatched, ["xhead.bias", "bn1.weight"]);
    }

    #[test]
    fn refuses_bad_rules() {
        assert!(RenameMap::parse("no arrow").unwrap_err().contains("line 1"));
        assert!(RenameMap::parse("( => x")
            .unwrap_err()
            .contains("not a valid regex"));
        assert!(RenameMap::parse("# only\n")
            .unwrap_err()
            .contains("no rule"));
        // A regex whose compiled form is huge is refused, not built.
        assert!(RenameMap::parse("a{1000}{1000} => x").is_err());
    }
}
