//! The SVG picture: the scene's pieces stacked down one main line, each group in a frame
//! under its title bar; a stage too tall for one column continues in the next column to
//! its right, so a 152-layer network stays a picture one can take in.

use super::canvas::{text_width, xml, Anchor, Canvas, Mark, MarkKind, Rect, FONT_FAMILY};
use super::units::{self, Metrics, Piece, FONT, SMALL, TAIL, TITLE};
use super::{DrawOptions, Group, Scene};
use crate::span::SourceFile;
use crate::Compiled;
use std::fmt::Write;

const MARGIN: i32 = 16;
/// Between a frame's border and the column of pieces in it.
pub const FRAME_PAD: i32 = 10;
/// A title bar of two lines.
pub const BAR: i32 = 40;
/// Between two columns of a wrapped stage.
const GUTTER: i32 = 40;
/// How far a continued column starts below the first: room for the edge into it.
const WRAP_DROP: i32 = 24;
/// The height past which a stage continues in another column.
const COLUMN_CLOSED: i32 = 900;
const COLUMN_OPEN: i32 = 1800;

/// The style of every drawing, in the picture and on the page.
pub const STYLE: &str = include_str!("drawing.css");

/// A laid-out drawing: the SVG text and every rectangle it covers.
#[derive(Clone, Debug)]
pub struct Picture {
    pub svg: String,
    pub marks: Vec<Mark>,
    pub width: i32,
    pub height: i32,
}

/// Draws the network as SVG (see the [module](super) documentation).
pub fn svg(file: &SourceFile, compiled: &Compiled, opts: &DrawOptions) -> Picture {
    let scene = Scene::new(file, compiled);
    draw(&scene, opts.expand)
}

/// The marker at the end of edges, for `<defs>`.
pub const ARROW: &str = "<marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0L8,4L0,8z\" class=\"arrowhead\"/></marker>";

/// Width of the frames of a drawing: the column, or the widest title bar.
pub fn frame_width(scene: &Scene, m: &Metrics) -> i32 {
    let title = scene
        .groups
        .iter()
        .map(|g| text_width(&g.title[0], TITLE).max(text_width(&g.title[1], FONT)))
        .max()
        .unwrap_or(0);
    (m.width + 2 * FRAME_PAD).max(title + 2 * FRAME_PAD)
}

fn draw(scene: &Scene, open: bool) -> Picture {
    let m = Metrics::new(scene, !open, open);
    let frame_w = frame_width(scene, &m);
    let mut c = Canvas::default();
    let mut width = frame_w;

    // The headline and the legend.
    c.text(
        MARGIN,
        MARGIN + 14,
        Anchor::Start,
        16,
        "h1",
        &scene.name,
        true,
    );
    c.text(
        MARGIN,
        MARGIN + 34,
        Anchor::Start,
        FONT,
        "h2",
        &scene.summary,
        true,
    );
    width = width
        .max(text_width(&scene.summary, FONT))
        .max(text_width(&scene.name, 16));
    let legend_y = MARGIN + 54;
    let mut x = MARGIN;
    for (class, text) in [
        ("sc identity", "identity shortcut"),
        ("sc projection", "projection or zero-padding shortcut"),
    ] {
        c.wire(
            &[(x, legend_y - 4), (x + 28, legend_y - 4)],
            &format!("{class} key"),
            text,
        );
        c.text(x + 34, legend_y, Anchor::Start, SMALL, "lbl", text, true);
        x += 34 + text_width(text, SMALL) + 24;
    }
    let note = "edges: output C x H x W";
    c.text(x, legend_y, Anchor::Start, SMALL, "lbl", note, true);
    width = width.max(x + text_width(note, SMALL) - MARGIN);

    let left = MARGIN + FRAME_PAD;
    let mut y = legend_y + 20;
    let input = units::terminal(scene, &m, "input", &scene.input, None);
    y = put(&mut c, &input, left, y);
    let mut exit_dx = 0;
    for g in &scene.groups {
        y = put(&mut c, &units::connector(&m, &g.incoming, exit_dx), left, y);
        let (bottom, dx, w) = group(&mut c, scene, &m, g, y, frame_w, open);
        width = width.max(w);
        y = bottom;
        exit_dx = dx;
    }
    if let Some((text, edge)) = &scene.output {
        if exit_dx != 0 {
            y = put(&mut c, &units::connector(&m, edge, exit_dx), left, y);
            y = put(
                &mut c,
                &units::terminal(scene, &m, "output", text, None),
                left,
                y,
            );
        } else {
            y = put(
                &mut c,
                &units::terminal(scene, &m, "output", text, Some(edge)),
                left,
                y,
            );
        }
    }
    let (w, h) = (width + 2 * MARGIN, y + MARGIN);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n<defs>{ARROW}</defs>\n\
         <rect class=\"bg\" width=\"{w}\" height=\"{h}\"/>\n",
        xml(&format!("{}: {}", scene.name, scene.summary))
    );
    svg.push_str(&c.svg);
    svg.push_str("</svg>\n");
    Picture {
        svg,
        marks: c.marks,
        width: w,
        height: h,
    }
}

/// Places a piece with its top-left corner at `(x, y)`; returns its bottom.
fn put(c: &mut Canvas, p: &Piece, x: i32, y: i32) -> i32 {
    c.place(&p.canvas, x, y);
    y + p.height
}

/// A frame with its title bar at `(MARGIN, top)`.
pub fn frame(c: &mut Canvas, g: &Group, x: i32, top: i32, w: i32, h: i32) {
    c.rect(Rect::new(x, top, w, h), 8, "frame", MarkKind::Frame, &g.id);
    // The bar's top corners follow the frame's; its bottom edge is straight.
    let (l, r, b) = (x + 1, x + w - 1, top + BAR);
    let _ = writeln!(
        c.svg,
        "<path class=\"bar\" d=\"M{l},{b}V{}Q{l},{} {},{}H{}Q{r},{} {r},{}V{b}Z\"/>",
        top + 8,
        top + 1,
        l + 7,
        top + 1,
        r - 7,
        top + 1,
        top + 8
    );
    c.text(
        x + FRAME_PAD,
        top + 17,
        Anchor::Start,
        TITLE,
        "bar1",
        &g.title[0],
        true,
    );
    c.text(
        x + FRAME_PAD,
        top + 33,
        Anchor::Start,
        FONT,
        "bar2",
        &g.title[1],
        true,
    );
}

/// Draws group `g` whose frame's top is at `top`; returns the frame's bottom, how far
/// right of the main line its last column ends, and the frame's width.
fn group(
    c: &mut Canvas,
    scene: &Scene,
    m: &Metrics,
    g: &Group,
    top: i32,
    frame_w: i32,
    open: bool,
) -> (i32, i32, i32) {
    // Every piece as if inside a column; the first of each column is drawn again below.
    let mut incoming = g.incoming.clone();
    let mut pieces = Vec::new();
    for (i, u) in g.units.iter().enumerate() {
        pieces.push((
            units::unit(scene, m, u, i == 0, &incoming, open),
            incoming.clone(),
        ));
        incoming = u.output(&incoming);
    }
    let budget = if open { COLUMN_OPEN } else { COLUMN_CLOSED };
    let columns = split(
        &pieces.iter().map(|(p, _)| p.height).collect::<Vec<_>>(),
        budget,
    );
    let stride = m.width + GUTTER;
    let body = top + BAR;
    let mut bottoms = Vec::new();
    let mut inner = Canvas::default();
    for (k, range) in columns.iter().enumerate() {
        let x = MARGIN + FRAME_PAD + k as i32 * stride;
        let mut y = if k == 0 { body } else { body + WRAP_DROP };
        for i in range.clone() {
            let redrawn;
            let piece = if i == range.start && k > 0 {
                redrawn = units::unit(scene, m, &g.units[i], true, &pieces[i].1, open);
                &redrawn
            } else {
                &pieces[i].0
            };
            y = put(&mut inner, piece, x, y);
        }
        bottoms.push((x + m.cx, y));
    }
    let wrapped = columns.len() > 1;
    let (last_x, last_bottom) = bottoms
        .last()
        .copied()
        .unwrap_or((MARGIN + FRAME_PAD + m.cx, body));
    let bottom = if wrapped {
        // The edges from each column's end to the next column's top, round the right.
        let low = bottoms.iter().map(|b| b.1).max().unwrap_or(body) + 8;
        for k in 1..columns.len() {
            let (x0, y0) = bottoms[k - 1];
            let gutter = MARGIN + FRAME_PAD + k as i32 * stride - GUTTER / 2;
            let x1 = x0 + stride;
            let label = &pieces[columns[k].start].1;
            inner.wire(
                &[
                    (x0, y0),
                    (x0, low),
                    (gutter, low),
                    (gutter, body + 8),
                    (x1, body + 8),
                    (x1, body + WRAP_DROP),
                ],
                "wire plain",
                label,
            );
            inner.text(
                x1 - 5,
                body + WRAP_DROP - 2,
                Anchor::End,
                SMALL,
                "lbl",
                label,
                true,
            );
        }
        if !g.ends() {
            inner.wire(
                &[(last_x, last_bottom), (last_x, low + 10)],
                "wire plain",
                &g.id,
            );
        }
        low + 10
    } else {
        put(
            &mut inner,
            &units::tail(m, g),
            MARGIN + FRAME_PAD,
            last_bottom,
        );
        last_bottom + TAIL
    };
    let w = frame_w.max(2 * FRAME_PAD + columns.len() as i32 * stride - GUTTER);
    frame(c, g, MARGIN, top, w, bottom - top);
    c.place(&inner, 0, 0);
    (bottom, last_x - (MARGIN + FRAME_PAD + m.cx), w)
}

/// Splits pieces of the given heights into as few columns as keep each within `budget`
/// (a piece taller than that has a column of its own), in order, the tallest column as
/// short as it can be; returns each column's range.
fn split(heights: &[i32], budget: i32) -> Vec<std::ops::Range<usize>> {
    // Columns of at most `limit` pixels, filled in order.
    let fill = |limit: i32| {
        let mut columns = Vec::new();
        let (mut start, mut filled) = (0, 0);
        for (i, &h) in heights.iter().enumerate() {
            if filled > 0 && filled + h > limit {
                columns.push(start..i);
                start = i;
                filled = 0;
            }
            filled += h;
        }
        columns.push(start..heights.len());
        columns
    };
    let tallest = heights.iter().copied().max().unwrap_or(0);
    let n = fill(budget.max(tallest)).len();
    // The shortest limit that still needs no more than `n` columns.
    let (mut lo, mut hi) = (tallest, heights.iter().sum::<i32>().max(tallest));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fill(mid).len() <= n {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    fill(lo)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_into_even_columns() {
        assert_eq!(split(&[10; 5], 100), vec![0..5]);
        assert_eq!(split(&[10; 36], 130), vec![0..12, 12..24, 24..36]);
        assert_eq!(split(&[10; 23], 130), vec![0..12, 12..23]);
        // The first piece a little shorter must not push the rest into a last, long column.
        let mut heights = vec![400; 36];
        heights[0] = 386;
        let columns = split(&heights, 1800);
        assert_eq!(columns.len(), 9);
        assert!(columns.iter().all(|c| c.len() == 4), "{columns:?}");
        assert_eq!(split(&[500], 100), vec![0..1]);
    }
}
