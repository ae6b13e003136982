//! The expansion: read the spec, compile it, hand the network to resnetc's Rust back end.
//!
//! On any error the expansion is one `compile_error!` plus the item as the user wrote it
//! (for `#[resnet(...)] pub struct X;`, a stub `pub struct X;`), so the user sees one
//! error, not a cascade of "cannot find type `X`".

use crate::attr;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use resnetc::back::rust::{is_type_name, module_tokens, RustOptions};
use resnetc::diag::Diagnostic;
use resnetc::span::{SourceFile, Syntax};
use resnetc::Overrides;
use std::path::{Path, PathBuf};
use syn::{Attribute, Fields, Item, ItemStruct, LitStr};

/// Expands `#[resnet(args)] item`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let output = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(s)) => expand_struct(args, s),
        Ok(other) => Err(Failure::new(wrong_item(&other))),
        Err(e) => Err(Failure::new(e)),
    };
    match output {
        Ok(tokens) => tokens,
        Err(Failure { error, include }) => {
            let error = error.to_compile_error();
            quote! {
                #error
                #include
                #item
            }
        }
    }
}

/// An error, and the `include_str!` of a spec that was read (so fixing it rebuilds).
struct Failure {
    error: syn::Error,
    include: Option<TokenStream>,
}

impl Failure {
    fn new(error: syn::Error) -> Self {
        Failure {
            error,
            include: None,
        }
    }
}

impl From<syn::Error> for Failure {
    fn from(error: syn::Error) -> Self {
        Failure::new(error)
    }
}

fn wrong_item(item: &Item) -> syn::Error {
    let (what, tokens): (&str, TokenStream) = match item {
        Item::Enum(e) => ("an enum", e.ident.to_token_stream()),
        Item::Fn(f) => ("a function", f.sig.ident.to_token_stream()),
        Item::Union(u) => ("a union", u.ident.to_token_stream()),
        Item::Trait(t) => ("a trait", t.ident.to_token_stream()),
        Item::Type(t) => ("a type alias", t.ident.to_token_stream()),
        Item::Mod(m) => ("a module", m.ident.to_token_stream()),
        Item::Const(c) => ("a constant", c.ident.to_token_stream()),
        Item::Static(s) => ("a static", s.ident.to_token_stream()),
        Item::Impl(i) => ("an impl block", i.self_ty.to_token_stream()),
        other => ("this item", other.to_token_stream()),
    };
    syn::Error::new_spanned(
        tokens,
        format!("#[resnet] goes on a unit struct such as `pub struct ResNet50;`, not on {what}"),
    )
}

fn expand_struct(args: TokenStream, item: ItemStruct) -> Result<TokenStream, Failure> {
    check_shape(&item)?;
    let attrs = Attrs::sort(&item.attrs)?;
    let args = attr::parse(args)?;
    let name = item.ident.to_string();
    if !is_type_name(&name) {
        return Err(syn::Error::new_spanned(
            &item.ident,
            "#[resnet] needs a plain identifier as the struct's name",
        )
        .into());
    }

    let spec = &args.spec;
    let (path, base) = resolve(spec)?;
    let include = path.to_str().map(|p| {
        quote!(
            const _: &str = ::core::include_str!(#p);
        )
    });
    let file = read(spec, &path, base.as_deref())?;
    let overrides = Overrides {
        input: args.input,
        classes: args.classes,
        name: None,
    };
    let compiled = resnetc::compile_with(&file, &overrides).map_err(|diags| Failure {
        error: syn::Error::new(spec.span(), spec_errors(&file, diags)),
        include: include.clone(),
    })?;
    let tokens = module_tokens(
        &compiled,
        &RustOptions {
            name: Some(name),
            source: Some(spec.value()),
        },
    );

    let ident = &item.ident;
    let vis = &item.vis;
    let module = format_ident!("__resnet_{}", ident);
    let Attrs { docs, cfgs, lints } = attrs;
    Ok(quote! {
        #(#cfgs)*
        #(#lints)*
        #[allow(non_snake_case)]
        mod #module {
            #include
            #tokens
        }
        #(#cfgs)*
        #(#lints)*
        #(#docs)*
        #vis use #module::#ident;
    })
}

/// `#[resnet]` replaces a unit struct without generics.
fn check_shape(item: &ItemStruct) -> syn::Result<()> {
    let hint = format!(
        "write a unit struct: `{}struct {};`",
        vis_prefix(item),
        item.ident
    );
    match &item.fields {
        Fields::Unit => {}
        fields => {
            return Err(syn::Error::new_spanned(
                fields,
                format!("#[resnet] generates the struct's fields; {hint}"),
            ))
        }
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            format!("#[resnet] structs take no generics; {hint}"),
        ));
    }
    Ok(())
}

fn vis_prefix(item: &ItemStruct) -> String {
    let vis = item.vis.to_token_stream().to_string();
    if vis.is_empty() {
        vis
    } else {
        format!("{vis} ")
    }
}

/// The struct's attributes, by where they go in the expansion.
struct Attrs<'a> {
    /// Doc comments: onto the re-export, where rustdoc shows them above the generated docs.
    docs: Vec<&'a Attribute>,
    /// `#[cfg]`/`#[cfg_attr]`: onto both the module and the re-export.
    cfgs: Vec<&'a Attribute>,
    /// `#[allow]`, `#[warn]`, `#[deny]`, `#[forbid]`, `#[expect]`: likewise.
    lints: Vec<&'a Attribute>,
}

impl<'a> Attrs<'a> {
    fn sort(attrs: &'a [Attribute]) -> syn::Result<Self> {
        let mut sorted = Attrs {
            docs: Vec::new(),
            cfgs: Vec::new(),
            lints: Vec::new(),
        };
        for attr in attrs {
            let path = attr.path();
            if path.is_ident("doc") {
                sorted.docs.push(attr);
            } else if path.is_ident("cfg") || path.is_ident("cfg_attr") {
                sorted.cfgs.push(attr);
            } else if ["allow", "warn", "deny", "forbid", "expect"]
                .iter()
                .any(|l| path.is_ident(l))
            {
                sorted.lints.push(attr);
            } else {
                return Err(syn::Error::new_spanned(
                    attr,
                    "#[resnet] generates the struct (deriving `Debug`): only doc comments, #[cfg] and lint attributes can go on it",
                ));
            }
        }
        Ok(sorted)
    }
}

/// The spec's path, and the directory a relative path was resolved against: the calling
/// crate's `CARGO_MANIFEST_DIR`.
fn resolve(spec: &LitStr) -> syn::Result<(PathBuf, Option<PathBuf>)> {
    let written = spec.value();
    if Syntax::from_path(&written).is_none() {
        return Err(syn::Error::new(
            spec.span(),
            format!("`{written}`: unknown spec extension; use .yaml, .yml or .resnet"),
        ));
    }
    let path = Path::new(&written);
    if path.is_absolute() {
        return Ok((path.to_path_buf(), None));
    }
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            Ok((dir.join(path), Some(dir)))
        }
        None => Err(syn::Error::new(
            spec.span(),
            format!("cannot resolve `{written}`: CARGO_MANIFEST_DIR is not set (build with Cargo, or give an absolute path)"),
        )),
    }
}

fn read(spec: &LitStr, path: &Path, base: Option<&Path>) -> Result<SourceFile, Failure> {
    let written = spec.value();
    // The same checks as the CLI's (a regular file, at most the spec size limit, UTF-8),
    // named as written: not the absolute folder, which would make messages differ between
    // checkouts.
    let text = resnetc::cli::read_spec_text(path, &resnetc::diag::escape(&written)).map_err(|e| {
        let mut message = match &e {
            resnetc::cli::CliError::Read { source, .. } => format!("cannot read spec `{written}`: {source}"),
            other => other.to_string(),
        };
        let missing = matches!(&e, resnetc::cli::CliError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
        if base.is_some() && missing {
            message.push_str("\n  = note: a relative path starts at the calling crate's root (the folder of its Cargo.toml)");
        }
        // Once the file was read, an include makes fixing it rebuild the crate.
        // (Not for a file over the limit: rustc would read all of it.)
        let include = matches!(e, resnetc::cli::CliError::NotUtf8 { .. })
            .then(|| path.to_str().map(|p| quote!(const _: &str = ::core::include_str!(#p);)))
            .flatten();
        Failure { error: syn::Error::new(spec.span(), message), include }
    })?;
    // `resolve` has checked the extension.
    let syntax = Syntax::from_path(&written).unwrap_or(Syntax::Yaml);
    Ok(SourceFile::new(written, text, syntax))
}

/// The compile error's message: resnetc's rendered diagnostics, errors first. rustc
/// prints `error: ` before it, so the first line `error[CODE]: title` becomes
/// `title [CODE]`.
fn spec_errors(file: &SourceFile, mut diags: Vec<Diagnostic>) -> String {
    diags.sort_by_key(|d| !d.is_error());
    let rendered = resnetc::diag::render(file, &diags);
    let rendered = rendered.trim_end();
    let (first, rest) = rendered.split_once('\n').unwrap_or((rendered, ""));
    let first = match first
        .strip_prefix("error[")
        .and_then(|s| s.split_once("]: "))
    {
        Some((code, title)) => format!("{title} [{code}]"),
        None => first.to_string(),
    };
    if rest.is_empty() {
        first
    } else {
        format!("{first}\n{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn expands_to_the_generator_output_in_a_private_module() {
        let out = expand_str(
            quote!(spec = "../specs/resnet18.yaml"),
            quote!(
                pub struct ResNet18;
            ),
        );
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../specs/resnet18.yaml"
        ))
        .expect("spec");
        let file = SourceFile::new("../specs/resnet18.yaml", text, Syntax::Yaml);
        let compiled = resnetc::compile(&file).expect("valid");
        let opts = RustOptions {
            name: Some("ResNet18".into()),
            source: Some("../specs/resnet18.yaml".into()),
        };
        let generated = module_tokens(&compiled, &opts).to_string();
        assert!(
            out.contains(&generated),
            "the expansion holds the module `resnetc build` writes"
        );
        assert!(out.contains("mod __resnet_ResNet18"));
        assert!(out.contains("pub use __resnet_ResNet18 :: ResNet18"));
        assert!(out.contains("include_str !"));
        assert!(!out.contains("compile_error"));
    }

    #[test]
    fn errors_expand_to_one_compile_error_and_the_stub() {
        let cases = [
            (
                quote!(spec = "../specs/does-not-exist.yaml"),
                "cannot read spec",
            ),
            (
                quote!(spec = "../specs/resnet18.yaml", depth = 18),
                "unknown argument `depth`",
            ),
            (
                quote!(spec = "../tests/specs/invalid/identity-where-projection.yaml"),
                "residual add shape mismatch",
            ),
            (quote!(classes = 10), "missing `spec"),
            (quote!(spec = 18), "expected string literal"),
        ];
        for (args, message) in cases {
            let out = expand_str(
                args,
                quote!(
                    pub struct Net;
                ),
            );
            assert_eq!(out.matches("compile_error").count(), 1, "{out}");
            assert!(out.contains(message), "{message}: {out}");
            assert!(out.ends_with("pub struct Net ;"), "{out}");
            assert!(
                !out.contains(":: tch"),
                "the stub never mentions tch: {out}"
            );
        }
    }

    #[test]
    fn only_regular_files_within_the_size_limit_are_read() {
        let dir = std::env::temp_dir().join(format!("resnetc-macro-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let folder = dir.join("folder.yaml");
        std::fs::create_dir_all(&folder).expect("a folder named like a spec");
        let fifo = dir.join("fifo.resnet");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let large = dir.join("large.resnet");
        std::fs::write(&large, vec![b'#'; resnetc::ir::Limits::MAX_SPEC_BYTES + 1]).expect("write");
        let cases = [
            (&folder, "is a directory, not a regular file"),
            // Opening a FIFO for reading would block the compiler until a writer comes.
            (&fifo, "is a FIFO, not a regular file"),
            (&large, "is larger than 1048576 bytes"),
        ];
        for (path, message) in cases {
            let path = path.to_str().expect("a UTF-8 temp dir");
            let out = expand_str(
                quote!(spec = #path),
                quote!(
                    pub struct Net;
                ),
            );
            assert_eq!(out.matches("compile_error").count(), 1, "{out}");
            assert!(out.contains(message), "{message}: {out}");
            assert!(
                !out.contains("include_str"),
                "a file that was not read is not included: {out}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_spec_is_still_tracked_for_rebuilds() {
        let out = expand_str(
            quote!(spec = "../tests/specs/invalid/identity-where-projection.yaml"),
            quote!(
                struct Net;
            ),
        );
        assert!(out.contains("include_str !"), "{out}");
    }

    /// The expansion of a hostile spec for structs named like std and tch items, compiled
    /// by rustc against the stand-in `tch` of the root crate's tests; `rustdoc --test` on
    /// it finds no doc test.
    #[test]
    fn hostile_spec_and_shadowing_names_compile_without_doc_tests() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir =
            std::env::temp_dir().join(format!("resnetc-macros-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let rustc = |args: &[&str], file: &std::path::Path, tool: &str| {
            std::process::Command::new(tool)
                .args(["--edition", "2021", "-L"])
                .arg(&dir)
                .args(args)
                .arg(file)
                .current_dir(&dir)
                .output()
                .expect("rustc/rustdoc runs")
        };
        let out = rustc(
            &[
                "--crate-type",
                "lib",
                "--crate-name",
                "tch",
                "--out-dir",
                dir.to_str().expect("UTF-8"),
            ],
            &root.join("tests/codegen/tch_stub.rs"),
            "rustc",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut crate_source = String::new();
        for name in [
            "Vec",
            "Option",
            "Box",
            "Tensor",
            "Default",
            "Some",
            "i64",
            "conv2d",
            "linear",
            "Downsample",
        ] {
            let ident = syn::Ident::new(name, proc_macro2::Span::call_site());
            let out = expand(
                quote!(spec = "../examples/macro-demo/specs/hostile.yaml"),
                quote!(pub struct #ident;),
            );
            let out = out.to_string();
            // (The spec's payload mentions `compile_error!`, as text inside a doc.)
            assert!(!out.contains(":: compile_error"), "{out}");
            crate_source.push_str(&format!("pub mod m_{name} {{ {out} }}\n"));
        }
        let file = dir.join("hostile.rs");
        std::fs::write(&file, crate_source).expect("write");
        let tch = format!("tch={}", dir.join("libtch.rlib").display());
        let args = ["--crate-name", "hostile", "--extern", &tch];
        let out = rustc(
            &[
                &args[..],
                &[
                    "--crate-type",
                    "lib",
                    "--emit",
                    "metadata",
                    "-A",
                    "warnings",
                ],
            ]
            .concat(),
            &file,
            "rustc",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = rustc(&[&args[..], &["--test"]].concat(), &file, "rustdoc");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("running 0 tests"), "{stdout}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeps_docs_cfg_and_lints() {
        let out = expand_str(
            quote!(
                spec = "../specs/resnet18.yaml",
                classes = 10,
                input = "1x28x28"
            ),
            quote! {
                /// Docs.
                #[cfg(not(any()))]
                #[allow(dead_code)]
                pub(crate) struct Small;
            },
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("pub (crate) use __resnet_Small :: Small"),
            "{out}"
        );
        assert!(out.contains("NUM_CLASSES : i64 = 10"), "{out}");
        assert!(
            out.contains("INPUT_SHAPE : [i64 ; 3] = [1 , 28 , 28]"),
            "{out}"
        );
        assert_eq!(out.matches("cfg (not (any ()))").count(), 2, "{out}");
    }
}

/// Expansion time as users get it (proc macros build unoptimized in the dev profile):
/// `cargo test -p resnetc-macros --lib -- --ignored --nocapture expansion_time`.
#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore = "a measurement, not a check"]
    fn expansion_time_resnet152() {
        let mut times: Vec<f64> = (0..31)
            .map(|_| {
                let start = std::time::Instant::now();
                let out = expand(
                    quote!(spec = "../specs/resnet152.yaml"),
                    quote!(
                        pub struct ResNet152;
                    ),
                );
                assert!(!out.is_empty());
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "#[resnet] expansion of resnet152: median {:.1} ms, min {:.1} ms",
            times[15], times[0]
        );
    }
}
