//! Drawings of the network that resnetc lays out itself, with no Graphviz and no script:
//! an SVG picture (`resnetc graph --format svg`) and a self-contained HTML page whose
//! stages and blocks open and close on click (`--format html`).
//!
//! Both draw the same [`Scene`]: the input, the stem, one framed group per stage under its
//! Table-1 line (parameters and MACs included), the head and the output, each block one box
//! whose shortcut runs beside it as in the paper's Figure 3 (solid: identity; dashed and
//! labelled: a projection or zero-padding), the output shape on every edge of the main
//! path. `--expand` opens every block into its layers, the shortcut's own layers in a
//! column beside them.
//!
//! The layout is computed here, in whole pixels with a fixed width per character, so
//! the same spec always gives the same bytes; every rectangle drawn is recorded as a
//! [`Mark`], and [`check_marks`] proves that nothing overlaps.
//!
//! ```
//! let spec = resnetc::span::SourceFile::new(
//!     "resnet18.yaml",
//!     std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/resnet18.yaml")).unwrap(),
//!     resnetc::span::Syntax::Yaml,
//! );
//! let compiled = resnetc::compile(&spec).unwrap();
//! let picture = resnetc::back::draw::svg(&spec, &compiled, &Default::default());
//! assert!(picture.svg.starts_with("<svg "));
//! assert!(resnetc::back::draw::check_marks(&picture.marks).is_empty());
//! ```

mod canvas;
mod html;
mod picture;
mod scene;
mod texts;
mod units;

pub use canvas::{check_marks, text_width, Mark, MarkKind, Rect};
pub use html::html;
pub use picture::{svg, Picture};
pub use texts::{block_text, describe, layer_class, layer_text, shortcut_text};

use crate::ir::Shape;
use crate::valid::BlockPlan;
use crate::Compiled;
use std::collections::BTreeMap;

/// How a drawing is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrawOptions {
    /// Draw every layer of every block (the SVG), or open every block at first (the page).
    pub expand: bool,
}

/// What a hoverable thing of the drawing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Input,
    Output,
    Stem,
    Stage,
    Head,
    Block,
    Layer,
    /// A block's addition (its row of the layer table: `Add`, `Add, ReLU`).
    Add,
    /// A backbone's feature map.
    Feature,
}

impl ItemKind {
    fn word(self) -> &'static str {
        match self {
            ItemKind::Input => "input",
            ItemKind::Output => "output",
            ItemKind::Stem => "stem",
            ItemKind::Stage => "stage",
            ItemKind::Head => "head",
            ItemKind::Block => "block",
            ItemKind::Layer => "layer",
            ItemKind::Add => "add",
            ItemKind::Feature => "feature",
        }
    }
}

/// One thing of the drawing the reader can point at, with what the page shows for it.
/// Every number comes from the layer table's rows ([`crate::valid::Network::layers`]),
/// formatted as `resnetc table` prints them.
#[derive(Clone, Debug)]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    pub op: String,
    pub output: String,
    pub params: String,
    pub macs: String,
    /// Indices of the layer-table rows it stands for.
    pub rows: Vec<usize>,
    /// The group (`stage/layer2`, `stem`, `head`) and block (`block/layer2.0`) it is in.
    pub group: Option<String>,
    pub block: Option<String>,
    /// The spec line it comes from (1-based), if any.
    pub line: Option<usize>,
}

impl Item {
    /// The tooltip: name and op, then output, parameters and MACs.
    fn tooltip(&self) -> String {
        format!(
            "{}  {}\noutput {}, params {}, MACs {}",
            self.name, self.op, self.output, self.params, self.macs
        )
    }
}

/// One box on a group's main line.
#[derive(Clone, Debug)]
pub enum Unit<'a> {
    /// A layer of the stem or the head.
    Layer {
        id: String,
        text: String,
        class: &'static str,
        /// The shape on the edge out of it.
        output: String,
    },
    /// A residual (or plain) block: one box, or its layers when open.
    Block(&'a BlockPlan),
    /// A backbone's output taken from the stage's last block.
    Feature {
        id: String,
        text: String,
        last: bool,
    },
}

/// The stem, a stage or the head: a frame with a title bar and boxes on one line.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    pub id: String,
    /// The title bar: the paper's Table 1 line, then output, parameters and MACs.
    pub title: [String; 2],
    /// The shape on the edge into the group.
    pub incoming: String,
    pub units: Vec<Unit<'a>>,
}

/// Everything a drawing shows, before any geometry.
#[derive(Clone, Debug)]
pub struct Scene<'a> {
    pub compiled: &'a Compiled,
    pub name: String,
    /// The headline under the name: input, output, parameters, MACs.
    pub summary: String,
    pub input: String,
    pub groups: Vec<Group<'a>>,
    /// The output terminal of a classifier, with the shape on its edge.
    pub output: Option<(String, String)>,
    pub items: BTreeMap<String, Item>,
    /// The text of every spec line an item points at.
    pub lines: BTreeMap<usize, String>,
    pub spec: String,
    /// The item each row of the layer table belongs to.
    pub row_items: Vec<String>,
}

/// `256x56x56`, as edges are labelled.
pub fn shape_text(s: Shape) -> String {
    format!("{}x{}x{}", s.c, s.h, s.w)
}

fn dims_text(v: &[u64]) -> String {
    let parts: Vec<String> = v.iter().map(u64::to_string).collect();
    parts.join("x")
}

fn block_id(b: &BlockPlan) -> String {
    format!("block/{}", b.name)
}

fn stage_id(module: &str) -> String {
    format!("stage/{module}")
}

impl Group<'_> {
    /// Whether the main line ends inside this group: at a backbone's last feature map.
    pub fn ends(&self) -> bool {
        matches!(self.units.last(), Some(Unit::Feature { last: true, .. }))
    }
}

impl Unit<'_> {
    /// The shape on the edge out of this unit, given the shape on the edge into it.
    pub fn output(&self, incoming: &str) -> String {
        match self {
            Unit::Layer { output, .. } => output.clone(),
            Unit::Block(b) => shape_text(b.output),
            Unit::Feature { .. } => incoming.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{SourceFile, Syntax};

    fn compile(path: &str) -> (SourceFile, Compiled) {
        let text =
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let file = SourceFile::new(path, text, Syntax::from_path(path).unwrap());
        let c = crate::compile(&file).unwrap();
        (file, c)
    }

    #[test]
    fn every_row_of_the_table_belongs_to_one_item() {
        for spec in [
            "specs/resnet50.yaml",
            "specs/timm/ecaresnet50d.yaml",
            "specs/cifar-resnet20.yaml",
            "specs/resnet50-os8.yaml",
        ] {
            let (file, c) = compile(spec);
            let scene = Scene::new(&file, &c);
            let mut owners = vec![Vec::new(); c.network.layers.len()];
            for (id, item) in &scene.items {
                if matches!(
                    item.kind,
                    ItemKind::Layer | ItemKind::Add | ItemKind::Feature
                ) {
                    for &r in &item.rows {
                        owners[r].push(id.clone());
                    }
                }
            }
            for (r, o) in owners.iter().enumerate() {
                assert_eq!(
                    o.len(),
                    1,
                    "{spec}: row {} belongs to {o:?}",
                    c.network.layers[r].name
                );
            }
        }
    }

    #[test]
    fn texts_read_like_the_paper() {
        let (file, c) = compile("specs/resnet50.yaml");
        let b = &c.network.blocks[3];
        assert_eq!(
            block_text(b),
            "layer2.0  [1x1, 128; 3x3, 128, /2; 1x1, 512]"
        );
        assert_eq!(shortcut_text(b).as_deref(), Some("projection 1x1, 512, /2"));
        assert_eq!(layer_text(&b.branch[2]), "conv2  3x3 conv, 128, /2");
        let scene = Scene::new(&file, &c);
        assert_eq!(
            scene.groups[2].title,
            [
                "conv3_x  [1x1, 128; 3x3, 128; 1x1, 512], /2  x4".to_string(),
                "out 512x28x28  params 1,219,584  MACs 1,027,604,480".to_string()
            ]
        );
        let conv = &scene.items["layer2.0.conv2"];
        assert_eq!(
            (conv.op.as_str(), conv.output.as_str(), conv.params.as_str()),
            ("Conv2d 3x3/2 p1, 128->128", "[128, 28, 28]", "147,456")
        );
        assert!(scene.lines[&conv.line.unwrap()].contains("conv3_x"));
    }
}
