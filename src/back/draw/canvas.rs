//! SVG elements written with their rectangles: every box, label and wire a drawing puts
//! down is also recorded as a [`Mark`], so the layout can be checked for overlaps
//! ([`check_marks`]) without parsing the SVG back.
//!
//! Coordinates are whole pixels, and text widths are estimated from a fixed advance per
//! character of a monospace font ([`text_width`]): the same spec always gives the same
//! bytes, on any machine.

use std::fmt::Write;
use unicode_width::UnicodeWidthStr;

/// A monospace font's advance, as a share of the font size. DejaVu Sans Mono, Menlo and
/// Liberation Mono advance 0.60 to 0.602 em; the estimate errs on the wide side.
const ADVANCE: f64 = 0.61;

/// The fonts asked for, in order; every system has some `monospace`.
pub const FONT_FAMILY: &str = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";

/// Estimated width in pixels of `text` at `size` pixels: one advance per column (East
/// Asian wide characters take two).
pub fn text_width(text: &str, size: i32) -> i32 {
    let columns = text.width() as f64;
    (columns * f64::from(size) * ADVANCE).ceil() as i32
}

/// An axis-aligned rectangle: top-left corner, width and height, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Rect { x, y, w, h }
    }

    pub fn right(&self) -> i32 {
        self.x + self.w
    }

    pub fn bottom(&self) -> i32 {
        self.y + self.h
    }

    /// Whether the two share some area (touching edges do not count).
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }

    /// Whether `o` lies wholly inside (edges may touch).
    pub fn contains(&self, o: &Rect) -> bool {
        self.x <= o.x && self.y <= o.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }

    fn shifted(self, dx: i32, dy: i32) -> Rect {
        Rect::new(self.x + dx, self.y + dy, self.w, self.h)
    }
}

/// What a recorded rectangle is, for the overlap rules of [`check_marks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// A layer, block or terminal box with its text.
    Box,
    /// A line of text on its own (shapes on edges, shortcut labels, titles).
    Text,
    /// The circle of a residual addition.
    Add,
    /// A straight piece of an edge or shortcut, one pixel wide.
    Wire,
    /// A frame around a stage, the stem, the head or an expanded block.
    Frame,
}

/// One rectangle a drawing covers, with a name for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub kind: MarkKind,
    pub rect: Rect,
    pub what: String,
}

/// SVG elements and the marks they cover, in one coordinate system.
#[derive(Clone, Debug, Default)]
pub struct Canvas {
    pub svg: String,
    pub marks: Vec<Mark>,
}

/// Where a text is anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Canvas {
    fn mark(&mut self, kind: MarkKind, rect: Rect, what: &str) {
        self.marks.push(Mark {
            kind,
            rect,
            what: what.to_string(),
        });
    }

    /// Opens a group that the page reacts to (`data-id`), with a tooltip.
    pub fn open_item(&mut self, id: &str, class: &str, tooltip: &str) {
        let _ = writeln!(
            self.svg,
            "<g class=\"item {class}\" data-id=\"{}\"><title>{}</title>",
            xml(id),
            xml(tooltip)
        );
    }

    pub fn close_item(&mut self) {
        self.svg.push_str("</g>\n");
    }

    /// A rounded rectangle recorded as `kind`.
    pub fn rect(&mut self, r: Rect, radius: i32, class: &str, kind: MarkKind, what: &str) {
        let _ = writeln!(
            self.svg,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{radius}\"/>",
            r.x, r.y, r.w, r.h
        );
        self.mark(kind, r, what);
    }

    /// One line of text whose baseline is at `y`; recorded as a [`MarkKind::Text`] when
    /// `record` (a text inside a box is part of the box).
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        x: i32,
        y: i32,
        anchor: Anchor,
        size: i32,
        class: &str,
        text: &str,
        record: bool,
    ) {
        let w = text_width(text, size);
        let (left, anchor_attr) = match anchor {
            Anchor::Start => (x, ""),
            Anchor::Middle => (x - w / 2, " text-anchor=\"middle\""),
            Anchor::End => (x - w, " text-anchor=\"end\""),
        };
        let _ = writeln!(
            self.svg,
            "<text class=\"{class}\" x=\"{x}\" y=\"{y}\"{anchor_attr}>{}</text>",
            xml(text)
        );
        if record {
            // Ascenders reach about 0.8 em above the baseline, descenders 0.25 em below.
            let top = y - (size * 4 + 4) / 5;
            let bottom = y + (size + 3) / 4;
            self.mark(MarkKind::Text, Rect::new(left, top, w, bottom - top), text);
        }
    }

    /// A polyline through `points` (horizontal and vertical pieces only), each piece
    /// recorded as a [`MarkKind::Wire`].
    pub fn wire(&mut self, points: &[(i32, i32)], class: &str, what: &str) {
        if points.len() < 2 {
            return;
        }
        let coords: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
        let _ = writeln!(
            self.svg,
            "<polyline class=\"{class}\" points=\"{}\"/>",
            coords.join(" ")
        );
        for pair in points.windows(2) {
            self.wire_mark(pair[0], pair[1], what);
        }
    }

    /// A straight piece of wire as a one-pixel-wide rectangle.
    fn wire_mark(&mut self, (x0, y0): (i32, i32), (x1, y1): (i32, i32), what: &str) {
        let r = if y0 == y1 {
            Rect::new(x0.min(x1), y0, (x1 - x0).abs(), 0)
        } else {
            Rect::new(x0, y0.min(y1), 0, (y1 - y0).abs())
        };
        self.mark(MarkKind::Wire, r, what);
    }

    /// A shortcut that leaves the main line at `(x0, y0)`, runs right to `x`, down to `y1`
    /// and back left to `x_end`, with rounded corners; recorded as its three pieces.
    pub fn bypass(
        &mut self,
        (x0, y0): (i32, i32),
        x: i32,
        y1: i32,
        x_end: i32,
        class: &str,
        what: &str,
    ) {
        let r = 6.min((y1 - y0) / 2).min((x - x0) / 2).max(0);
        let _ = writeln!(
            self.svg,
            "<path class=\"{class}\" d=\"M{x0},{y0}H{}Q{x},{y0} {x},{}V{}Q{x},{y1} {},{y1}H{x_end}\"/>",
            x - r,
            y0 + r,
            y1 - r,
            x - r
        );
        self.wire_mark((x0, y0), (x, y0), what);
        self.wire_mark((x, y0), (x, y1), what);
        self.wire_mark((x, y1), (x_end, y1), what);
    }

    /// The circle of a residual addition, centred at `(x, y)`.
    pub fn add(&mut self, x: i32, y: i32, r: i32, what: &str) {
        let _ = writeln!(
            self.svg,
            "<circle class=\"add\" cx=\"{x}\" cy=\"{y}\" r=\"{r}\"/><path class=\"plus\" d=\"M{},{y}H{}M{x},{}V{}\"/>",
            x - r + 2,
            x + r - 2,
            y - r + 2,
            y + r - 2
        );
        self.mark(MarkKind::Add, Rect::new(x - r, y - r, 2 * r, 2 * r), what);
    }

    /// Appends another canvas moved by `(dx, dy)`.
    pub fn place(&mut self, other: &Canvas, dx: i32, dy: i32) {
        let _ = writeln!(self.svg, "<g transform=\"translate({dx},{dy})\">");
        self.svg.push_str(&other.svg);
        self.svg.push_str("</g>\n");
        self.marks.extend(other.marks.iter().map(|m| Mark {
            kind: m.kind,
            rect: m.rect.shifted(dx, dy),
            what: m.what.clone(),
        }));
    }
}

/// `text` for XML character data and attribute values: markup characters as references,
/// and characters XML 1.0 cannot hold at all (controls, U+FFFE, U+FFFF) and bidi marks
/// written as `\u{1b}`, as resnetc prints names everywhere.
pub fn xml(text: &str) -> String {
    let printable = crate::diag::escape(text);
    let mut out = String::with_capacity(printable.len());
    for c in printable.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Checks that a drawing's marks do not collide, and returns every collision found:
/// - no two boxes, texts or additions share any area;
/// - no wire crosses a box, a text or an addition (it may end on their edges);
/// - two frames are either apart or one inside the other, and a box, text or addition
///   is either inside a frame or apart from it.
pub fn check_marks(marks: &[Mark]) -> Vec<String> {
    let mut problems = Vec::new();
    let solid = |m: &&Mark| matches!(m.kind, MarkKind::Box | MarkKind::Text | MarkKind::Add);
    let mut leaves: Vec<&Mark> = marks.iter().filter(solid).collect();
    leaves.sort_by_key(|m| (m.rect.y, m.rect.x));
    // A sweep down the page: only marks that start above another's bottom can meet it.
    for (i, a) in leaves.iter().enumerate() {
        for b in &leaves[i + 1..] {
            if b.rect.y >= a.rect.bottom() {
                break;
            }
            if a.rect.overlaps(&b.rect) {
                problems.push(format!("`{}` overlaps `{}`", a.what, b.what));
            }
        }
    }
    for w in marks.iter().filter(|m| m.kind == MarkKind::Wire) {
        // A wire is a segment: it crosses a rectangle when it runs through its inside.
        let crosses = |r: &Rect| {
            let (x0, x1, y0, y1) = (w.rect.x, w.rect.right(), w.rect.y, w.rect.bottom());
            if w.rect.h == 0 {
                r.y < y0 && y0 < r.bottom() && x0 < r.right() && r.x < x1
            } else {
                r.x < x0 && x0 < r.right() && y0 < r.bottom() && r.y < y1
            }
        };
        for l in leaves.iter().filter(|l| crosses(&l.rect)) {
            problems.push(format!("a wire of `{}` crosses `{}`", w.what, l.what));
        }
    }
    let frames: Vec<&Mark> = marks.iter().filter(|m| m.kind == MarkKind::Frame).collect();
    for (i, a) in frames.iter().enumerate() {
        for b in &frames[i + 1..] {
            if a.rect.overlaps(&b.rect) && !a.rect.contains(&b.rect) && !b.rect.contains(&a.rect) {
                problems.push(format!("frame `{}` overlaps frame `{}`", a.what, b.what));
            }
        }
        for l in &leaves {
            if a.rect.overlaps(&l.rect) && !a.rect.contains(&l.rect) {
                problems.push(format!("`{}` straddles frame `{}`", l.what, a.what));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_what_xml_cannot_hold() {
        assert_eq!(
            xml("</script><svg onload=\"x\">&'"),
            "&lt;/script&gt;&lt;svg onload=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(xml("a\u{1b}b\u{fffe}"), "a\\u{1b}b\\u{fffe}");
    }

    #[test]
    fn widths_count_columns() {
        assert_eq!(text_width("", 11), 0);
        assert_eq!(text_width("abcd", 10), 25);
        // A wide character takes two columns.
        assert_eq!(text_width("\u{4e2d}", 10), text_width("ab", 10));
    }

    #[test]
    fn finds_overlaps_crossings_and_straddles() {
        let m = |kind, x, y, w, h, what: &str| Mark {
            kind,
            rect: Rect::new(x, y, w, h),
            what: what.into(),
        };
        let ok = [
            m(MarkKind::Frame, 0, 0, 100, 100, "f"),
            m(MarkKind::Box, 10, 10, 20, 10, "a"),
            m(MarkKind::Box, 10, 20, 20, 10, "b"),
            m(MarkKind::Wire, 20, 30, 0, 10, "w"),
        ];
        assert_eq!(check_marks(&ok), Vec::<String>::new());
        let bad = [
            m(MarkKind::Frame, 0, 0, 50, 50, "f"),
            m(MarkKind::Box, 10, 10, 20, 10, "a"),
            m(MarkKind::Text, 25, 15, 40, 10, "t"),
            m(MarkKind::Wire, 5, 15, 30, 0, "w"),
        ];
        let problems = check_marks(&bad);
        assert!(
            problems.contains(&"`a` overlaps `t`".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"a wire of `w` crosses `a`".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"`t` straddles frame `f`".to_string()),
            "{problems:?}"
        );
    }
}
