//! The name of the generated struct, derived from the model's name.

/// Words spelled the way their authors spell them, matched at the start of a word.
const KNOWN_WORDS: &[(&str, &str)] = &[
    ("resnext", "ResNeXt"),
    ("resnet", "ResNet"),
    ("preact", "PreAct"),
];

/// The Rust type name for a model name.
///
/// The rule: split the name at every character that is not an ASCII letter or digit
/// (`-`, `_`, `.`, spaces); a word that starts with a digit is kept as written and joined
/// with `_` (`resnet50-2` -> `ResNet50_2`); any other word starts with a capital letter,
/// except that `resnet`, `resnext` and `preact` at the start of a word become `ResNet`,
/// `ResNeXt` and `PreAct`. A name that would start with a digit gets a `Model` prefix, and
/// a name that is not a usable identifier (empty, or `Self`) gets a `Model` suffix.
///
/// ```
/// use resnetc::back::rust::struct_name;
/// assert_eq!(struct_name("resnet50"), "ResNet50");
/// assert_eq!(struct_name("resnext50-32x4d"), "ResNeXt50_32x4d");
/// assert_eq!(struct_name("wide-resnet50-2"), "WideResNet50_2");
/// assert_eq!(struct_name("cifar-resnet20"), "CifarResNet20");
/// assert_eq!(struct_name("article-pytorch"), "ArticlePytorch");
/// assert_eq!(struct_name("preact-resnet18"), "PreActResNet18");
/// ```
pub fn struct_name(model_name: &str) -> String {
    let mut out = String::new();
    for word in model_name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(if out.is_empty() { "Model" } else { "_" });
            out.push_str(word);
            continue;
        }
        let lower = word.to_ascii_lowercase();
        match KNOWN_WORDS.iter().find(|(k, _)| lower.starts_with(k)) {
            Some((k, spelled)) => {
                out.push_str(spelled);
                out.push_str(&word[k.len()..]);
            }
            None => {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.push(first.to_ascii_uppercase());
                    out.push_str(chars.as_str());
                }
            }
        }
    }
    if is_type_name(&out) {
        out
    } else {
        format!("{out}Model")
    }
}

/// True when `name` can name the generated struct; see [`check_type_name`].
pub fn is_type_name(name: &str) -> bool {
    check_type_name(name).is_ok()
}

/// Whether `name` can name the generated struct, and if not, why (a sentence for the
/// user, naming the problem and the fix).
///
/// Any identifier works except a keyword (`fn`, `Self`, `self`, `crate`, ...) or a raw
/// identifier (`r#type`): the generated module names every std, core and tch item by its
/// absolute path, so `Vec`, `Option`, `Result`, `Tensor`, `Default`, `i64` or `std` are
/// fine.
///
/// ```
/// use resnetc::back::rust::check_type_name;
/// assert!(check_type_name("Vec").is_ok());
/// assert!(check_type_name("Self").unwrap_err().contains("keyword"));
/// assert!(check_type_name("3D").is_err());
/// ```
pub fn check_type_name(name: &str) -> Result<(), String> {
    let fix = "use a name such as `ResNet50` (a letter or `_`, then letters, digits or `_`)";
    if name.is_empty() {
        return Err(format!("the struct name is empty; {fix}"));
    }
    if name.starts_with("r#") {
        return Err(format!(
            "`{name}` is a raw identifier, which cannot name the struct; {fix}"
        ));
    }
    if syn::parse_str::<syn::Ident>(name).is_ok() {
        return Ok(());
    }
    // `syn` rejects keywords and anything that is not one identifier token.
    if syn::parse_str::<syn::Ident>(&format!("r#{name}")).is_ok()
        || matches!(name, "self" | "Self" | "super" | "crate" | "_")
    {
        Err(format!(
            "`{name}` is a Rust keyword and cannot name the struct; {fix}"
        ))
    } else {
        Err(format!("`{name}` is not a Rust identifier; {fix}"))
    }
}

/// Rust's primitive types, which a struct of the same name shadows in its module.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16",
    "u32", "u64", "u128", "usize",
];

/// True when `name` is a primitive type's name (`i64`, `bool`, ...).
pub(super) fn is_primitive(name: &str) -> bool {
    PRIMITIVES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_shipped_models() {
        for (model, name) in [
            ("resnet18", "ResNet18"),
            ("resnet50-v1", "ResNet50V1"),
            ("resnext50-32x4d", "ResNeXt50_32x4d"),
            ("wide-resnet50-2", "WideResNet50_2"),
            ("cifar-resnet20", "CifarResNet20"),
            ("fmnist-resnet20", "FmnistResNet20"),
            ("article-pytorch", "ArticlePytorch"),
            ("article-keras", "ArticleKeras"),
            ("plain34", "Plain34"),
            ("preact-resnet18", "PreActResNet18"),
        ] {
            assert_eq!(struct_name(model), name, "{model}");
        }
    }

    #[test]
    fn odd_names_still_give_identifiers() {
        assert_eq!(struct_name("18-layer"), "Model18Layer");
        assert_eq!(struct_name(""), "Model");
        assert_eq!(struct_name("---"), "Model");
        assert_eq!(struct_name("self"), "SelfModel");
        assert_eq!(struct_name("my net (v2)"), "MyNetV2");
        assert!(is_type_name(&struct_name("ünïcode")));
        assert!(!is_type_name("r#type"));
        assert!(!is_type_name("Self"));
        assert!(!is_type_name("3D"));
    }

    #[test]
    fn only_keywords_and_non_identifiers_are_refused() {
        for name in [
            "Vec",
            "Option",
            "Result",
            "Box",
            "String",
            "Tensor",
            "Path",
            "Some",
            "None",
            "Ok",
            "Err",
            "Default",
            "std",
            "core",
            "tch",
            "nn",
            "i64",
            "bool",
            "_x",
            "ünïcode",
        ] {
            assert_eq!(check_type_name(name), Ok(()), "{name}");
        }
        for name in [
            "Self", "self", "fn", "struct", "crate", "super", "async", "_",
        ] {
            let message = check_type_name(name).unwrap_err();
            assert!(message.contains("keyword"), "{name}: {message}");
        }
        for name in ["", "r#type", "3D", "a-b", "a b", "a\nb"] {
            let message = check_type_name(name).unwrap_err();
            assert!(message.contains("ResNet50"), "{name}: {message}");
        }
    }
}
