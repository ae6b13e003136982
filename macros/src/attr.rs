//! The attribute's arguments: `spec = "..."`, `classes = N`, `input = "CxHxW"`.

use proc_macro2::{Span, TokenStream};
use resnetc::ir::{Limits, Shape};
use syn::parse::Parser;
use syn::{LitInt, LitStr};

/// Parsed and checked arguments of `#[resnet(...)]`.
pub struct Args {
    /// The spec's path, as written.
    pub spec: LitStr,
    pub classes: Option<u64>,
    pub input: Option<Shape>,
}

const EXPECTED: &str = "expected `spec = \"...\"`, `classes = N` or `input = \"CxHxW\"`";

/// Parses the tokens inside `#[resnet(...)]`.
pub fn parse(args: TokenStream) -> syn::Result<Args> {
    let mut spec: Option<LitStr> = None;
    let mut classes: Option<u64> = None;
    let mut input: Option<Shape> = None;
    let parser = syn::meta::parser(|meta| {
        let duplicate = |name: &str| meta.error(format!("duplicate `{name}` argument"));
        if meta.path.is_ident("spec") {
            if spec.is_some() {
                return Err(duplicate("spec"));
            }
            spec = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("classes") {
            if classes.is_some() {
                return Err(duplicate("classes"));
            }
            let lit: LitInt = meta.value()?.parse()?;
            let n: u64 = lit.base10_parse()?;
            if !(1..=Limits::MAX_CLASSES).contains(&n) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("`classes` must be between 1 and {}", Limits::MAX_CLASSES),
                ));
            }
            classes = Some(n);
        } else if meta.path.is_ident("input") {
            if input.is_some() {
                return Err(duplicate("input"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let shape = resnetc::cli::parse_shape(&lit.value())
                .map_err(|e| syn::Error::new(lit.span(), format!("`input`: {e}")))?;
            input = Some(shape);
        } else {
            let name = meta
                .path
                .get_ident()
                .map_or_else(|| "this".to_string(), |i| format!("`{i}`"));
            return Err(meta.error(format!("unknown argument {name}; {EXPECTED}")));
        }
        Ok(())
    });
    parser.parse2(args)?;
    let spec = spec.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "missing `spec = \"...\"`: the path of a .yaml, .yml or .resnet spec",
        )
    })?;
    Ok(Args {
        spec,
        classes,
        input,
    })
}
