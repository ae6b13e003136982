//! The name of the generated struct, derived from the model's name.

/// Words spelled the way their authors spell them, matched at the start of a word.
const KNOWN_WORDS: &[(&str, &str)] = &[("resnext", "ResNeXt"), ("resnet", "ResNet"), ("preact", "PreAct")];

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
    for word in model_name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
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

/// True when `name` can name a struct: an identifier that is neither a keyword (`Self`,
/// `fn`) nor a raw identifier (`r#type`).
pub fn is_type_name(name: &str) -> bool {
    !name.starts_with("r#") && syn::parse_str::<syn::Ident>(name).is_ok()
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
}
