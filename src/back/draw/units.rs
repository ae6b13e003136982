//! The pieces every drawing is stacked from, each drawn in its own coordinates: a
//! terminal, a layer box, a block (closed: one box and its shortcut; open: its layers in a
//! frame, the shortcut's layers in a column beside them), a backbone's output tap and the
//! edge between groups. All pieces of one drawing share one width and one main line
//! ([`Metrics`]), so stacking them needs no more than adding heights.

use super::canvas::{text_width, Anchor, Canvas, MarkKind, Rect};
use super::{
    block_id, block_text, layer_class, layer_text, shape_text, shortcut_text, Scene, Unit,
};
use crate::valid::{BlockPlan, Layer, ShortcutPlan};

/// Box text size, in pixels.
pub const FONT: i32 = 11;
/// Edge and shortcut labels.
pub const SMALL: i32 = 10;
/// Title bars.
pub const TITLE: i32 = 12;
const BOX_H: i32 = 22;
const BOX_PAD: i32 = 10;
const MIN_BOX_W: i32 = 200;
/// An edge that carries its shape label.
const LEAD: i32 = 30;
/// The first edge inside a frame: its shape is on the edge into the frame.
const LEAD_FIRST: i32 = 16;
const ADD_GAP: i32 = 6;
const ADD_R: i32 = 5;
/// How far right of a box its shortcut runs.
const ARC_OUT: i32 = 14;
/// Between the main column and a shortcut's own layers.
const SIDE_GAP: i32 = 30;
/// An open block's frame: the row of its name, and its margins.
const NAME_ROW: i32 = 20;
const FRAME_IN: i32 = 8;
/// Space kept at each side of the column.
const SIDE_PAD: i32 = 4;
/// Below the last piece of a frame.
pub const TAIL: i32 = 12;
/// The edge between two groups.
pub const GAP: i32 = 30;

/// Sizes shared by every piece of one drawing.
#[derive(Clone, Copy, Debug)]
pub struct Metrics {
    /// Width of every box on the main line.
    pub box_w: i32,
    /// Width of a shortcut's layer boxes in an open block.
    side_w: i32,
    /// From the column's left edge to the main line.
    pub cx: i32,
    /// Width of the column.
    pub width: i32,
    /// An open block's frame, left and right of the main line.
    frame_l: i32,
    frame_r: i32,
    /// Offset of a closed block's shortcut, and of an open block's side column, from the
    /// main line.
    arc_x: i32,
    side_x: i32,
}

impl Metrics {
    /// Measures the scene for closed blocks, open blocks, or both (the page draws both).
    pub fn new(scene: &Scene, closed: bool, open: bool) -> Metrics {
        let net = &scene.compiled.network;
        let mut main = vec![text_width(&scene.input, FONT) + 2 * BOX_PAD];
        let mut side = 0;
        let mut labels = 0;
        let mut sc_labels = 0;
        let mut names = 0;
        let mut taps = 0;
        if let Some((text, edge)) = &scene.output {
            main.push(text_width(text, FONT) + 2 * BOX_PAD);
            labels = labels.max(text_width(edge, SMALL));
        }
        // Every edge carries the input's shape or a row's output.
        labels = labels.max(text_width(&shape_text(net.input), SMALL));
        for r in &net.layers {
            labels = labels.max(text_width(&super::dims_text(&r.output), SMALL));
        }
        for g in &scene.groups {
            for u in &g.units {
                match u {
                    Unit::Layer { text, .. } => main.push(text_width(text, FONT) + 2 * BOX_PAD),
                    Unit::Feature { text, .. } => {
                        taps = taps.max(text_width(text, FONT) + 2 * BOX_PAD)
                    }
                    Unit::Block(b) => {
                        if closed {
                            main.push(text_width(&block_text(b), FONT) + 2 * BOX_PAD);
                            if let Some(t) = shortcut_text(b) {
                                sc_labels = sc_labels.max(text_width(&t, SMALL));
                            }
                        }
                        if open {
                            names = names.max(text_width(&b.name, SMALL));
                            for l in b.pre.iter().chain(&b.branch) {
                                main.push(text_width(&layer_text(l), FONT) + 2 * BOX_PAD);
                            }
                            for l in b.shortcut.layers() {
                                side = side.max(text_width(&layer_text(l), FONT) + 2 * BOX_PAD);
                            }
                            if matches!(b.shortcut, ShortcutPlan::None) {
                                main.push(text_width("ReLU", FONT) + 2 * BOX_PAD);
                            }
                        }
                    }
                }
            }
        }
        // Even widths keep the main line on a whole pixel.
        let even = |w: i32| w + (w & 1);
        let box_w = even(main.into_iter().max().unwrap_or(0).max(MIN_BOX_W));
        let side_w = even(side);
        let half = box_w / 2;
        let arc_x = half + ARC_OUT;
        let side_x = half + SIDE_GAP + side_w / 2;
        let frame_l = half.max(labels + 5).max(names + 12) + FRAME_IN;
        let side_right = if side_w > 0 {
            side_x + (side_w / 2).max(5 + labels)
        } else {
            0
        };
        let frame_r = (arc_x + 2).max(side_right) + FRAME_IN;
        let mut left = half.max(labels + 5);
        let mut right = if taps > 0 { half + 10 + taps } else { half };
        if closed {
            right = right.max(arc_x + 2).max(if sc_labels > 0 {
                arc_x + 6 + sc_labels
            } else {
                0
            });
        }
        if open {
            left = left.max(frame_l);
            right = right.max(frame_r);
        }
        let cx = left + SIDE_PAD;
        Metrics {
            box_w,
            side_w,
            cx,
            width: cx + right + SIDE_PAD,
            frame_l,
            frame_r,
            arc_x,
            side_x,
        }
    }
}

/// A drawn piece and its height.
pub struct Piece {
    pub canvas: Canvas,
    pub height: i32,
}

/// The edge into a piece: from its top down to `lead`, the shape left of it.
fn edge_in(c: &mut Canvas, m: &Metrics, lead: i32, label: Option<&str>, what: &str) {
    c.wire(&[(m.cx, 0), (m.cx, lead)], "wire", what);
    wire_label(c, m, lead, label);
}

/// The shape on an edge that ends at `lead`, left of the main line.
fn wire_label(c: &mut Canvas, m: &Metrics, lead: i32, label: Option<&str>) {
    if let Some(label) = label {
        c.text(m.cx - 5, lead - 9, Anchor::End, SMALL, "lbl", label, true);
    }
}

/// A box centred on `x` whose top is at `y`, inside an item the page reacts to.
#[allow(clippy::too_many_arguments)]
fn item_box(
    c: &mut Canvas,
    scene: &Scene,
    id: &str,
    x: i32,
    y: i32,
    w: i32,
    class: &str,
    text: &str,
) {
    let tooltip = scene.items.get(id).map(|i| i.tooltip()).unwrap_or_default();
    c.open_item(id, "", &tooltip);
    c.rect(
        Rect::new(x - w / 2, y, w, BOX_H),
        4,
        &format!("box {class}"),
        MarkKind::Box,
        text,
    );
    c.text(x, y + 15, Anchor::Middle, FONT, "t", text, false);
    c.close_item();
}

/// The input or output terminal: a rounded box, with the edge into it unless `first`.
pub fn terminal(scene: &Scene, m: &Metrics, id: &str, text: &str, edge: Option<&str>) -> Piece {
    let mut c = Canvas::default();
    let top = match edge {
        Some(label) => {
            edge_in(&mut c, m, GAP, Some(label), text);
            GAP
        }
        None => 0,
    };
    let w = text_width(text, FONT) + 2 * BOX_PAD;
    let tooltip = scene.items.get(id).map(|i| i.tooltip()).unwrap_or_default();
    c.open_item(id, "", &tooltip);
    c.rect(
        Rect::new(m.cx - w / 2, top, w, BOX_H),
        BOX_H / 2,
        "box term",
        MarkKind::Box,
        text,
    );
    c.text(m.cx, top + 15, Anchor::Middle, FONT, "t", text, false);
    c.close_item();
    Piece {
        canvas: c,
        height: top + BOX_H,
    }
}

/// The edge between two groups (or a terminal and a group), its shape beside it;
/// `from_dx` is where it starts, right of the main line (a group wrapped into columns
/// ends in its last column).
pub fn connector(m: &Metrics, label: &str, from_dx: i32) -> Piece {
    let mut c = Canvas::default();
    if from_dx != 0 {
        c.wire(
            &[(m.cx + from_dx, 0), (m.cx + from_dx, 8), (m.cx, 8)],
            "wire plain",
            label,
        );
    }
    edge_in(&mut c, m, GAP, Some(label), label);
    Piece {
        canvas: c,
        height: GAP,
    }
}

/// The last bit of the main line inside a frame, down to its bottom; none after the
/// group's flow has ended (a backbone's last feature map).
pub fn tail(m: &Metrics, g: &super::Group) -> Piece {
    let mut c = Canvas::default();
    if !g.ends() {
        c.wire(&[(m.cx, 0), (m.cx, TAIL)], "wire plain", "tail");
    }
    Piece {
        canvas: c,
        height: TAIL,
    }
}

/// One piece of a group; `first` when it is the first inside its frame (or column), where
/// the edge into it carries no label; `incoming` is the shape on that edge otherwise.
pub fn unit(
    scene: &Scene,
    m: &Metrics,
    u: &Unit,
    first: bool,
    incoming: &str,
    open: bool,
) -> Piece {
    match u {
        Unit::Layer {
            id, text, class, ..
        } => {
            let mut c = Canvas::default();
            let lead = if first { LEAD_FIRST } else { LEAD };
            edge_in(&mut c, m, lead, (!first).then_some(incoming), text);
            item_box(&mut c, scene, id, m.cx, lead, m.box_w, class, text);
            Piece {
                canvas: c,
                height: lead + BOX_H,
            }
        }
        Unit::Feature { id, text, last } => feature(scene, m, id, text, *last),
        Unit::Block(b) if open => open_block(scene, m, b, first, incoming),
        Unit::Block(b) => closed_block(scene, m, b, first, incoming),
    }
}

/// A backbone's output taken off the main line to a box at the right.
fn feature(scene: &Scene, m: &Metrics, id: &str, text: &str, last: bool) -> Piece {
    let mut c = Canvas::default();
    let y = 4 + BOX_H / 2;
    let end = if last { y } else { GAP };
    c.wire(&[(m.cx, 0), (m.cx, end)], "wire plain", text);
    let w = text_width(text, FONT) + 2 * BOX_PAD;
    let x = m.cx + m.box_w / 2 + 10;
    c.wire(&[(m.cx, y), (x, y)], "wire tap", text);
    let tooltip = scene.items.get(id).map(|i| i.tooltip()).unwrap_or_default();
    c.open_item(id, "", &tooltip);
    c.rect(
        Rect::new(x, 4, w, BOX_H),
        BOX_H / 2,
        "box term",
        MarkKind::Box,
        text,
    );
    c.text(x + w / 2, 4 + 15, Anchor::Middle, FONT, "t", text, false);
    c.close_item();
    Piece {
        canvas: c,
        height: GAP,
    }
}

/// A closed block: one box; the shortcut as a line beside it, into the addition below.
fn closed_block(scene: &Scene, m: &Metrics, b: &BlockPlan, first: bool, incoming: &str) -> Piece {
    let mut c = Canvas::default();
    let lead = if first { LEAD_FIRST } else { LEAD };
    edge_in(&mut c, m, lead, (!first).then_some(incoming), &b.name);
    let text = block_text(b);
    let id = block_id(b);
    let tooltip = scene
        .items
        .get(&id)
        .map(|i| i.tooltip())
        .unwrap_or_default();
    c.open_item(&id, "block-closed", &tooltip);
    c.rect(
        Rect::new(m.cx - m.box_w / 2, lead, m.box_w, BOX_H),
        4,
        "box block",
        MarkKind::Box,
        &text,
    );
    c.text(m.cx, lead + 15, Anchor::Middle, FONT, "t", &text, false);
    c.close_item();
    let bottom = lead + BOX_H;
    if matches!(b.shortcut, ShortcutPlan::None) {
        return Piece {
            canvas: c,
            height: bottom,
        };
    }
    let add_y = bottom + ADD_GAP + ADD_R;
    c.wire(
        &[(m.cx, bottom), (m.cx, bottom + ADD_GAP)],
        "wire plain",
        &b.name,
    );
    add(&mut c, scene, b, m.cx, add_y);
    let class = if b.shortcut.is_identity() {
        "sc identity"
    } else {
        "sc projection"
    };
    c.bypass(
        (m.cx, lead - 6),
        m.cx + m.arc_x,
        add_y,
        m.cx + ADD_R,
        class,
        &format!("{} shortcut", b.name),
    );
    if let Some(label) = shortcut_text(b) {
        c.text(
            m.cx + m.arc_x + 6,
            lead + 15,
            Anchor::Start,
            SMALL,
            "lbl sc-lbl",
            &label,
            true,
        );
    }
    Piece {
        canvas: c,
        height: add_y + ADD_R,
    }
}

/// The addition of block `b` at `(x, y)`.
fn add(c: &mut Canvas, scene: &Scene, b: &BlockPlan, x: i32, y: i32) {
    let tooltip = scene
        .items
        .get(&b.name)
        .map(|i| i.tooltip())
        .unwrap_or_default();
    c.open_item(&b.name, "", &tooltip);
    c.add(x, y, ADD_R, &format!("{} add", b.name));
    c.close_item();
}

/// An open block: its layers down the main line inside a frame, the shortcut's layers in
/// a column at the right (or the identity beside them), the addition at the bottom.
fn open_block(scene: &Scene, m: &Metrics, b: &BlockPlan, first: bool, incoming: &str) -> Piece {
    let mut c = Canvas::default();
    let lead = if first { LEAD_FIRST } else { LEAD };
    edge_in(&mut c, m, lead, (!first).then_some(incoming), &b.name);
    let id = block_id(b);
    let mut inner = Canvas::default();
    let tooltip = scene
        .items
        .get(&id)
        .map(|i| i.tooltip())
        .unwrap_or_default();
    inner.open_item(&id, "block-open", &tooltip);
    inner.text(
        m.cx - m.frame_l + 6,
        lead + 14,
        Anchor::Start,
        SMALL,
        "bname",
        &b.name,
        true,
    );
    inner.close_item();

    // The main line: pre-activation, then the branch.
    let main: Vec<&Layer> = b.pre.iter().chain(&b.branch).collect();
    let mut tops = Vec::new();
    let mut y = lead + NAME_ROW + 10;
    inner.wire(&[(m.cx, lead), (m.cx, y)], "wire", &b.name);
    let mut shape = b.input;
    for (i, l) in main.iter().enumerate() {
        if i > 0 {
            let from = y;
            y += LEAD;
            inner.wire(&[(m.cx, from), (m.cx, y)], "wire", l.name());
            inner.text(
                m.cx - 5,
                y - 9,
                Anchor::End,
                SMALL,
                "lbl",
                &shape_text(shape),
                true,
            );
        }
        tops.push(y);
        let text = layer_text(l);
        item_box(
            &mut inner,
            scene,
            l.name(),
            m.cx,
            y,
            m.box_w,
            layer_class(l),
            &text,
        );
        y += BOX_H;
        shape = l.output();
    }
    let split_input = tops.first().copied().unwrap_or(y + LEAD) - 6;
    let mut bottom = y;

    // The shortcut's own layers, in a column at the right.
    let side = b.shortcut.layers();
    if !side.is_empty() {
        let from_pre = matches!(b.shortcut, ShortcutPlan::Path { from_pre: true, .. });
        let split = if from_pre && !b.pre.is_empty() {
            tops.get(b.pre.len()).copied().unwrap_or(y + LEAD) - 6
        } else {
            split_input
        };
        let mut shape = if from_pre {
            b.pre.last().map_or(b.input, Layer::output)
        } else {
            b.input
        };
        let sx = m.cx + m.side_x;
        let mut sy = split + 24;
        inner.wire(
            &[(m.cx, split), (sx, split), (sx, sy)],
            "sc projection",
            &format!("{} shortcut", b.name),
        );
        inner.text(
            sx + 5,
            split + 18,
            Anchor::Start,
            SMALL,
            "lbl",
            &shape_text(shape),
            true,
        );
        for (i, l) in side.iter().enumerate() {
            if i > 0 {
                let from = sy;
                sy += LEAD;
                inner.wire(&[(sx, from), (sx, sy)], "sc projection", l.name());
                inner.text(
                    sx + 5,
                    sy - 9,
                    Anchor::Start,
                    SMALL,
                    "lbl",
                    &shape_text(shape),
                    true,
                );
            }
            item_box(
                &mut inner,
                scene,
                l.name(),
                sx,
                sy,
                m.side_w,
                layer_class(l),
                &layer_text(l),
            );
            sy += BOX_H;
            shape = l.output();
        }
        bottom = bottom.max(sy);
        let add_top = bottom + LEAD;
        let add_y = add_top + ADD_R;
        inner.wire(
            &[(sx, sy), (sx, add_y), (m.cx + ADD_R, add_y)],
            "sc projection",
            &format!("{} shortcut", b.name),
        );
        inner.text(
            sx + 5,
            add_y - 9,
            Anchor::Start,
            SMALL,
            "lbl",
            &shape_text(shape),
            true,
        );
        bottom = finish_add(&mut inner, scene, m, b, y, add_top);
    } else if b.shortcut.is_identity() {
        let add_top = bottom + LEAD;
        inner.bypass(
            (m.cx, split_input),
            m.cx + m.arc_x,
            add_top + ADD_R,
            m.cx + ADD_R,
            "sc identity",
            &format!("{} shortcut", b.name),
        );
        bottom = finish_add(&mut inner, scene, m, b, y, add_top);
    } else {
        // A plain block ends in its ReLU, a row of the table of its own.
        let from = y;
        y += LEAD;
        inner.wire(&[(m.cx, from), (m.cx, y)], "wire", &b.name);
        inner.text(
            m.cx - 5,
            y - 9,
            Anchor::End,
            SMALL,
            "lbl",
            &shape_text(shape),
            true,
        );
        item_box(&mut inner, scene, &b.name, m.cx, y, m.box_w, "norm", "ReLU");
        bottom = y + BOX_H;
    }
    let frame_bottom = bottom + FRAME_IN + 2;
    inner.wire(
        &[(m.cx, bottom), (m.cx, frame_bottom)],
        "wire plain",
        &b.name,
    );
    c.rect(
        Rect::new(
            m.cx - m.frame_l,
            lead,
            m.frame_l + m.frame_r,
            frame_bottom - lead,
        ),
        6,
        "bframe",
        MarkKind::Frame,
        &format!("block {}", b.name),
    );
    c.place(&inner, 0, 0);
    Piece {
        canvas: c,
        height: frame_bottom,
    }
}

/// The last edge of the main line into the addition at `add_top`, and the addition;
/// returns the addition's bottom.
fn finish_add(
    c: &mut Canvas,
    scene: &Scene,
    m: &Metrics,
    b: &BlockPlan,
    main_bottom: i32,
    add_top: i32,
) -> i32 {
    c.wire(&[(m.cx, main_bottom), (m.cx, add_top)], "wire", &b.name);
    let shape = b.branch.last().map_or(b.input, Layer::output);
    c.text(
        m.cx - 5,
        add_top - 9,
        Anchor::End,
        SMALL,
        "lbl",
        &shape_text(shape),
        true,
    );
    add(c, scene, b, m.cx, add_top + ADD_R);
    add_top + 2 * ADD_R
}
