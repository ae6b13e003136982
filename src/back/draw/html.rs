//! The HTML page: one self-contained file (no network, no fonts or scripts from
//! elsewhere) that opens from `file://` in any browser. The drawing's pieces are inline
//! SVG stacked by the page's own layout, each block drawn both closed and open so a
//! click swaps them and a stage's frame folds to its title bar; beside the drawing, the
//! details of what was clicked and the layer table, searchable.
//!
//! Every text from the spec is escaped for HTML, and the data the script reads is JSON
//! inside `<script type="application/json">` with `<`, `>`, `&`, U+2028 and U+2029
//! escaped, so a hostile name cannot end the script block or inject markup.

use super::canvas::{xml, FONT_FAMILY};
use super::picture::{frame_width, ARROW, BAR, FRAME_PAD, STYLE};
use super::units::{self, Metrics, Piece};
use super::{DrawOptions, Scene, Unit};
use crate::back::table;
use crate::span::SourceFile;
use crate::Compiled;
use std::fmt::Write;

const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");

/// The interactive page of a compiled spec (see the module documentation).
pub fn html(file: &SourceFile, compiled: &Compiled, opts: &DrawOptions) -> String {
    let scene = Scene::new(file, compiled);
    let m = Metrics::new(&scene, true, true);
    let frame_w = frame_width(&scene, &m);
    let mut out = String::new();
    let title = xml(&scene.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - resnetc</title>\n<style>\n{PAGE_CSS}{STYLE}\
         svg text{{font-family:{FONT_FAMILY}}}\n\
         .flow{{width:{frame_w}px}}\n.flow>svg{{margin-left:{FRAME_PAD}px}}\n\
         .units>svg,.units>.blk>svg,.group>.tail{{margin-left:{}px}}\n.gbar{{height:{BAR}px}}\n</style>\n</head>\n<body>\n",
        FRAME_PAD - 1
    );
    let _ = write!(
        out,
        "<header>\n<h1>{title}</h1>\n<p class=\"summary\">{}</p>\n<div class=\"tools\">\
         <button type=\"button\" id=\"open-all\">open every block</button> \
         <button type=\"button\" id=\"close-all\">close every block</button> \
         <span class=\"hint\">Click a stage's title to fold it, a block to open it, a layer for its details; \
         the table's rows find their layer.</span></div>\n</header>\n<main>\n<div id=\"drawing\">\n\
         <svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\"><defs>{ARROW}</defs></svg>\n<div class=\"flow\">\n",
        xml(&scene.summary)
    );

    piece(
        &mut out,
        &units::terminal(&scene, &m, "input", &scene.input, None),
        &m,
        "",
    );
    for g in &scene.groups {
        piece(&mut out, &units::connector(&m, &g.incoming, 0), &m, "");
        let _ = write!(
            out,
            "<section class=\"group\" data-group=\"{id}\">\n<div class=\"gbar item\" data-id=\"{id}\">\
             <div class=\"bar1\">{}</div><div class=\"bar2\">{}</div></div>\n<div class=\"units\">\n",
            xml(&g.title[0]),
            xml(&g.title[1]),
            id = xml(&g.id)
        );
        let mut incoming = g.incoming.clone();
        for (i, u) in g.units.iter().enumerate() {
            let first = i == 0;
            match u {
                Unit::Block(b) => {
                    let _ = writeln!(
                        out,
                        "<div class=\"blk{}\" data-block=\"{}\">",
                        if opts.expand { " is-open" } else { "" },
                        xml(&super::block_id(b))
                    );
                    piece(
                        &mut out,
                        &units::unit(&scene, &m, u, first, &incoming, false),
                        &m,
                        "v-closed",
                    );
                    piece(
                        &mut out,
                        &units::unit(&scene, &m, u, first, &incoming, true),
                        &m,
                        "v-open",
                    );
                    out.push_str("</div>\n");
                }
                _ => piece(
                    &mut out,
                    &units::unit(&scene, &m, u, first, &incoming, false),
                    &m,
                    "",
                ),
            }
            incoming = u.output(&incoming);
        }
        out.push_str("</div>\n");
        piece(&mut out, &units::tail(&m, g), &m, "tail");
        out.push_str("</section>\n");
    }
    if let Some((text, edge)) = &scene.output {
        piece(
            &mut out,
            &units::terminal(&scene, &m, "output", text, Some(edge)),
            &m,
            "",
        );
    }
    out.push_str("</div>\n</div>\n");

    // The details panel and the layer table.
    out.push_str(
        "<aside>\n<section id=\"details\" aria-live=\"polite\">\n<h2>Details</h2>\n<dl>\n",
    );
    for (field, label) in [
        ("kind", "kind"),
        ("name", "name"),
        ("op", "op"),
        ("output", "output"),
        ("params", "params"),
        ("macs", "MACs"),
        ("spec", "spec line"),
    ] {
        let _ = writeln!(out, "<dt>{label}</dt><dd data-field=\"{field}\"></dd>");
    }
    out.push_str(
        "</dl>\n<p class=\"empty\">Click a stage, a block or a layer.</p>\n</section>\n\
         <section id=\"layers\">\n<h2>Layers</h2>\n\
         <input id=\"search\" type=\"search\" placeholder=\"search by name or op\" autocomplete=\"off\">\n\
         <p id=\"count\"></p>\n<div class=\"scroll\">\n<table id=\"layer-table\">\n\
         <thead><tr><th>layer</th><th>op</th><th>output</th><th>params</th><th>MACs</th></tr></thead>\n<tbody>\n",
    );
    for (i, r) in compiled.network.layers.iter().enumerate() {
        let [name, op, output, params, macs] = table::layer_cells(r);
        let _ = writeln!(
            out,
            "<tr data-row=\"{i}\" data-id=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            xml(scene.row_items.get(i).map_or("", String::as_str)),
            xml(&name),
            xml(&op),
            xml(&output),
            xml(&params),
            xml(&macs)
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n</aside>\n</main>\n<div id=\"tip\" hidden></div>\n");
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"resnetc-data\">{}</script>\n<script>\n{PAGE_JS}</script>\n</body>\n</html>\n",
        script_json(&data(&scene))
    );
    out
}

/// One piece as an inline `<svg>` of the column's width.
fn piece(out: &mut String, p: &Piece, m: &Metrics, class: &str) {
    let _ = writeln!(
        out,
        "<svg class=\"piece {class}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">{}</svg>",
        p.canvas.svg,
        w = m.width,
        h = p.height
    );
}

/// What the page's script reads: every item's details, and the spec lines they name.
/// Texts from the spec have their controls and bidi marks shown escaped, as everywhere
/// resnetc prints them.
fn data(scene: &Scene) -> serde_json::Value {
    let shown = |s: &str| crate::diag::escape(s).into_owned();
    let items: serde_json::Map<String, serde_json::Value> = scene
        .items
        .iter()
        .map(|(id, i)| {
            (
                id.clone(),
                serde_json::json!({
                    "kind": i.kind.word(),
                    "name": shown(&i.name),
                    "op": shown(&i.op),
                    "output": i.output,
                    "params": i.params,
                    "macs": i.macs,
                    "rows": i.rows,
                    "group": i.group,
                    "block": i.block,
                    "line": i.line,
                }),
            )
        })
        .collect();
    let lines: serde_json::Map<String, serde_json::Value> = scene
        .lines
        .iter()
        .map(|(n, text)| (n.to_string(), serde_json::Value::from(shown(text))))
        .collect();
    serde_json::json!({ "spec": shown(&scene.spec), "items": items, "lines": lines })
}

/// JSON that can stand inside a `<script>` element: nothing in it can close the element
/// (`</script>`), open a comment (`<!--`) or end a line of JavaScript.
pub fn script_json(v: &serde_json::Value) -> String {
    // Serialising a serde_json::Value to a string cannot fail.
    let text = serde_json::to_string(v).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::script_json;

    #[test]
    fn script_json_cannot_close_the_script() {
        let v = serde_json::json!({"name": "</script><script>alert(1)</script>&\u{2028}\u{2029}"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}') && !s.contains('\u{2029}'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
