//! The drawings resnetc lays out itself (`resnetc graph --format svg|html`): no overlap in
//! any shipped spec, well-formed XML, snapshots, hostile names kept inert, the pictures
//! in `docs/` up to date, and the `-o` output path handled like `build -o`.

mod common;

use resnetc::back::draw::{self, check_marks, DrawOptions};
use resnetc::span::SourceFile;
use std::path::Path;

const CLOSED: DrawOptions = DrawOptions { expand: false };
const OPEN: DrawOptions = DrawOptions { expand: true };

fn compile(file: &SourceFile) -> resnetc::Compiled {
    resnetc::compile(file).unwrap_or_else(|d| panic!("{}", resnetc::diag::render(file, &d)))
}

/// Parses an SVG drawing and checks that it holds nothing active: no script, no event
/// handler, no reference outside the document.
fn assert_inert_svg<'a>(svg: &'a str, what: &str) -> roxmltree::Document<'a> {
    let doc = roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("{what}: not well-formed XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{what}");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg"),
        "{what}"
    );
    for node in doc.descendants().filter(|n| n.is_element()) {
        let tag = node.tag_name().name();
        assert!(
            !matches!(tag, "script" | "foreignObject" | "image" | "a" | "use"),
            "{what}: a <{tag}> element"
        );
        for a in node.attributes() {
            assert!(
                !a.name().starts_with("on"),
                "{what}: an event handler `{}`",
                a.name()
            );
            assert!(
                !a.name().contains("href"),
                "{what}: a reference `{}`",
                a.name()
            );
        }
    }
    doc
}

#[test]
fn every_spec_draws_without_overlap_closed_and_open() {
    let mut specs = common::shipped_specs();
    specs.extend(common::zoo_specs());
    for path in specs {
        let file = common::load(&path);
        let c = compile(&file);
        for opts in [CLOSED, OPEN] {
            let picture = draw::svg(&file, &c, &opts);
            let what = format!("{} (expand: {})", file.name, opts.expand);
            let problems = check_marks(&picture.marks);
            assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
            // Everything lies inside the picture.
            for m in &picture.marks {
                let r = m.rect;
                assert!(
                    r.x >= 0
                        && r.y >= 0
                        && r.right() <= picture.width
                        && r.bottom() <= picture.height,
                    "{what}: `{}` at {r:?} is outside {}x{}",
                    m.what,
                    picture.width,
                    picture.height
                );
            }
            let doc = assert_inert_svg(&picture.svg, &what);
            // One box per block when closed; every layer of the body when open.
            let items = |class: &str| {
                doc.descendants()
                    .filter(|n| {
                        n.attribute("class")
                            .is_some_and(|c| c.split(' ').any(|w| w == class))
                    })
                    .count()
            };
            if opts.expand {
                assert_eq!(items("block-open"), c.network.blocks.len(), "{what}");
                let body = c.network.body_layers().count();
                let drawn = doc
                    .descendants()
                    .filter(|n| {
                        n.attribute("data-id")
                            .is_some_and(|id| c.network.body_layers().any(|l| l.name() == id))
                    })
                    .count();
                assert_eq!(drawn, body, "{what}: every layer once");
            } else {
                assert_eq!(items("block-closed"), c.network.blocks.len(), "{what}");
            }
        }
    }
}

#[test]
fn a_152_layer_network_stays_a_few_columns_wide() {
    let file = common::load(&common::root().join("specs/resnet152.yaml"));
    let c = compile(&file);
    let closed = draw::svg(&file, &c, &CLOSED);
    // conv4_x's 36 blocks continue in three columns side by side instead of one line
    // 2,400 pixels long.
    let frame = |p: &draw::Picture| {
        p.marks
            .iter()
            .find(|m| m.kind == draw::MarkKind::Frame && m.what == "stage/layer3")
            .map(|m| m.rect)
            .unwrap()
    };
    let conv4 = frame(&closed);
    assert!(conv4.h < 1000 && conv4.w > 3 * 400, "{conv4:?}");
    assert!(closed.height < 3000, "{}x{}", closed.width, closed.height);
    let open = draw::svg(&file, &c, &OPEN);
    assert!(frame(&open).h < 2000, "{:?}", frame(&open));
}

#[test]
fn the_largest_network_a_spec_may_describe_draws_too() {
    // 4,096 blocks, the limit: laid out without overlap, in well under a second of a
    // release build (a few in this debug one).
    let file = common::load(&common::root().join("tests/fuzz-corpus/hostile-many-blocks.resnet"));
    let c = compile(&file);
    assert_eq!(c.network.blocks.len(), 4096);
    let picture = draw::svg(&file, &c, &CLOSED);
    let problems = check_marks(&picture.marks);
    assert!(
        problems.is_empty(),
        "{}",
        problems[..problems.len().min(20)].join("\n")
    );
    roxmltree::Document::parse(&picture.svg).expect("well-formed");
    let page = draw::html(&file, &c, &CLOSED);
    assert_eq!(page.matches("class=\"blk").count(), 4096);
}

#[test]
fn svg_snapshots() {
    for (spec, opts) in [
        ("specs/resnet18.yaml", CLOSED),
        ("specs/fmnist-resnet20.yaml", CLOSED),
        ("specs/fmnist-resnet20.yaml", OPEN),
    ] {
        let file = common::load(&common::root().join(spec));
        let c = compile(&file);
        let name = format!(
            "svg_{}{}",
            Path::new(spec).file_stem().unwrap().to_string_lossy(),
            if opts.expand { "_expanded" } else { "" }
        );
        insta::assert_snapshot!(name, draw::svg(&file, &c, &opts).svg);
    }
}

#[test]
fn the_drawing_reads_like_the_paper() {
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let c = compile(&file);
    let svg = draw::svg(&file, &c, &CLOSED).svg;
    let doc = assert_inert_svg(&svg, "resnet50");
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for want in [
        "conv3_x  [1x1, 128; 3x3, 128; 1x1, 512], /2  x4",
        "out 512x28x28  params 1,219,584  MACs 1,027,604,480",
        "layer2.0  [1x1, 128; 3x3, 128, /2; 1x1, 512]",
        "projection 1x1, 512, /2",
        "512x28x28",
        "stem  7x7, 64, stride 2; 3x3 max pool, stride 2",
        "head  average pool, 1000-d fc",
        "output [1000]",
    ] {
        assert!(texts.contains(&want), "no text `{want}` in the drawing");
    }
    // Identity shortcuts are solid, projections dashed: one projection per stage here.
    let paths = |class: &str| {
        doc.descendants()
            .filter(|n| n.tag_name().name() == "path" && n.attribute("class") == Some(class))
            .count()
    };
    assert_eq!(paths("sc projection"), 4);
    assert_eq!(paths("sc identity"), 12);
}

/// A spec whose model and stage names try to break out of SVG text, an attribute, the
/// page's script and its JSON.
fn hostile_spec() -> SourceFile {
    let model = "\"><svg onload=alert(1)></svg>&amp;\u{2028}";
    let stage = "</script><script>alert(1)</script><!--";
    let text = format!(
        "name: {}\ninput: [3, 32, 32]\nstem:\n  conv: {{filters: 16, kernel: 3, stride: 1, padding: 1}}\n  pool: none\n\
         defaults: {{block: basic}}\nstages:\n  - {{stage: {}, repeat: 2, filters: [16, 16], stride: 1}}\n  \
         - {{stage: {}, repeat: 1, filters: [32, 32], stride: 2}}\nhead: {{pool: avg, classes: 10}}\n",
        common::yaml_quoted(model),
        common::yaml_quoted(stage),
        common::yaml_quoted("'\u{1b}[31m\u{202e}x"),
    );
    SourceFile::new("hostile.yaml", text, resnetc::span::Syntax::Yaml)
}

#[test]
fn hostile_names_stay_text_in_the_svg() {
    let file = hostile_spec();
    let c = compile(&file);
    for opts in [CLOSED, OPEN] {
        let svg = draw::svg(&file, &c, &opts).svg;
        let doc = assert_inert_svg(&svg, "hostile");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        // The names come back as the text they are (controls and bidi marks shown escaped).
        assert!(
            texts
                .iter()
                .any(|t| t.contains("\"><svg onload=alert(1)></svg>&amp;\\u{2028}")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("</script><script>alert(1)</script><!--  ")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("'\\u{1b}[31m\\u{202e}x  ")),
            "{texts:?}"
        );
    }
}

#[test]
fn hostile_names_stay_text_in_the_page() {
    let file = hostile_spec();
    let c = compile(&file);
    let page = draw::html(&file, &c, &CLOSED);
    // The only script elements are the page's own two, each closed once.
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<svg onload"));
    assert!(!page.contains("<!--"));
    assert!(!page.contains('\u{2028}') && !page.contains('\u{1b}') && !page.contains('\u{202e}'));
    // The data still holds the names exactly.
    let start = page.find("id=\"resnetc-data\">").unwrap() + "id=\"resnetc-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(
        data["items"]["stage/layer1"]["name"],
        "</script><script>alert(1)</script><!--"
    );
    // Every <svg> piece of the page is well-formed and inert on its own.
    let mut rest = page.as_str();
    let mut pieces = 0;
    while let Some(at) = rest.find("<svg class=\"piece") {
        let len = rest[at..].find("</svg>").unwrap() + "</svg>".len();
        let piece =
            rest[at..at + len].replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1);
        assert_inert_svg(&piece, "a piece of the page");
        pieces += 1;
        rest = &rest[at + len..];
    }
    assert!(pieces > 5);
}

#[test]
fn the_page_is_one_file_with_nothing_from_elsewhere() {
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let c = compile(&file);
    let page = draw::html(&file, &c, &CLOSED);
    for external in [
        "http://", "https://", "//cdn", "src=", "href=", "@import", "url(http",
    ] {
        let hits: Vec<&str> = page
            .match_indices(external)
            .map(|(i, _)| &page[i.saturating_sub(40)..(i + 40).min(page.len())])
            // The SVG namespace names the vocabulary; nothing is fetched from it.
            .filter(|ctx| !ctx.contains("xmlns"))
            .collect();
        assert!(hits.is_empty(), "`{external}` in the page: {hits:?}");
    }
    // Every row of the layer table is there, as `resnetc table` prints it.
    for r in &c.network.layers {
        let [name, op, ..] = resnetc::back::table::layer_cells(r);
        let op = op
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            page.contains(&format!("<td>{name}</td><td>{op}</td>")),
            "{name}"
        );
    }
}

#[test]
fn the_pictures_in_docs_are_what_the_command_draws() {
    for (spec, out) in [
        ("specs/resnet18.yaml", "docs/resnet18.svg"),
        ("specs/resnet50.yaml", "docs/resnet50.svg"),
    ] {
        let file = common::load(&common::root().join(spec));
        let c = compile(&file);
        let now = draw::svg(&file, &c, &CLOSED).svg;
        let kept = std::fs::read_to_string(common::root().join(out))
            .unwrap_or_else(|e| panic!("{out}: {e}"));
        assert!(
            kept == now,
            "{out} is stale: run `resnetc graph {spec} --format svg -o {out}`"
        );
    }
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let c = compile(&file);
    let kept = std::fs::read_to_string(common::root().join("docs/resnet50.html")).unwrap();
    assert!(
        kept == draw::html(&file, &c, &CLOSED),
        "docs/resnet50.html is stale: run `resnetc graph specs/resnet50.yaml --format html -o docs/resnet50.html`"
    );
}

// ---- the command ---------------------------------------------------------------------------

#[test]
fn graph_writes_each_format_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::root().join("specs/resnet18.yaml");
    let spec = spec.to_str().unwrap();
    for (format, head) in [
        ("dot", "digraph \"resnet18\""),
        ("svg", "<svg "),
        ("html", "<!DOCTYPE html>"),
    ] {
        let out = dir.path().join(format!("r18.{format}"));
        let o = common::resnetc(&[
            "graph",
            spec,
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        assert!(o.stdout.is_empty(), "{}", o.stdout);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with(head),
            "{format}: {}",
            &text[..80.min(text.len())]
        );
        // The same as on stdout.
        let o = common::resnetc(&["graph", spec, "--format", format]);
        assert_eq!(o.stdout, text);
    }
    // DOT stays the default.
    let o = common::resnetc(&["graph", spec]);
    assert!(o.stdout.starts_with("digraph"), "{}", o.stdout);
    let o = common::resnetc(&["graph", spec, "--format", "svg", "--expand"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("block-open"));
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["r18.dot", "r18.html", "r18.svg"]);
}

#[test]
fn graph_usage_errors_say_what_to_do() {
    let spec = common::root().join("specs/resnet18.yaml");
    let spec = spec.to_str().unwrap();
    let o = common::resnetc(&["graph", spec, "--format", "png"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("invalid value 'png'") && o.stderr.contains("dot, svg, html"),
        "{}",
        o.stderr
    );
    let o = common::resnetc(&["graph", spec, "--expand"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("`--format svg`"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
}

#[cfg(unix)]
#[test]
fn graph_output_refuses_what_it_must_not_replace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.yaml");
    std::fs::copy(common::root().join("specs/fmnist-resnet20.yaml"), &spec).unwrap();
    let graph_to = |out: &Path| {
        common::resnetc(&[
            "graph",
            spec.to_str().unwrap(),
            "--format",
            "svg",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    // A directory.
    let sub = dir.path().join("sub.svg");
    std::fs::create_dir(&sub).unwrap();
    common::assert_refused(
        &graph_to(&sub),
        "sub.svg",
        &["is a directory; resnetc writes only regular files"],
    );
    // A FIFO, without blocking.
    let fifo = dir.path().join("fifo.svg");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    common::assert_refused(
        &graph_to(&fifo),
        "fifo.svg",
        &["is a FIFO; resnetc writes only regular files"],
    );
    // A symbolic link: neither it nor the file it names changes.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    common::assert_refused(&graph_to(&link), "link.svg", &["is a symbolic link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // The spec itself.
    common::assert_refused(
        &graph_to(&spec),
        "tiny.yaml",
        &["is the spec being compiled"],
    );
    assert!(std::fs::read_to_string(&spec)
        .unwrap()
        .contains("fmnist-resnet20"));
    // A folder that does not exist.
    let missing = dir.path().join("no/such/dir/x.svg");
    common::assert_refused(&graph_to(&missing), "x.svg", &["cannot write"]);
}
