//! What loading weights into a network found: the same report for `resnetc import` and
//! for the runtime's `--weights` (re-exported by `runtime::weights`).

/// How a weights file that does not match the network exactly is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Every variable must be in the file with its shape, and nothing else may be.
    #[default]
    Strict,
    /// Load what matches; report what was skipped (unexpected keys, wrong shapes) and
    /// what was left at its initial value (missing keys).
    Partial,
}

/// A variable whose tensor in the file has another shape (or a non-float dtype).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub name: String,
    /// The network's shape and dtype, e.g. `[64, 3, 7, 7] f32`.
    pub expected: String,
    /// The file's.
    pub found: String,
}

/// What loading did, or in strict mode would have had to ignore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables set from the file.
    pub loaded: Vec<String>,
    /// Variables the file lacks (`num_batches_tracked` is tolerated and not listed).
    pub missing: Vec<String>,
    /// Tensors in the file that the network has no variable for.
    pub unexpected: Vec<String>,
    /// Tensors whose shape (or dtype kind) differs from the variable's.
    pub mismatched: Vec<Mismatch>,
}

impl LoadReport {
    /// True when the file matched the network exactly.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// Sorts every list by name (the order the report prints in).
    pub fn sort(&mut self) {
        self.loaded.sort();
        self.missing.sort();
        self.unexpected.sort();
        self.mismatched.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

impl std::fmt::Display for LoadReport {
    /// One line per problem, grouped: missing keys, unexpected keys, shape mismatches.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut section = |f: &mut std::fmt::Formatter<'_>,
                           title: &str,
                           lines: Vec<String>|
         -> std::fmt::Result {
            if lines.is_empty() {
                return Ok(());
            }
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{title} ({}):", lines.len())?;
            for l in lines {
                write!(f, "\n  {l}")?;
            }
            Ok(())
        };
        section(
            f,
            "missing keys (in the network, not in the file)",
            self.missing.clone(),
        )?;
        section(
            f,
            "unexpected keys (in the file, not in the network)",
            self.unexpected.clone(),
        )?;
        section(
            f,
            "shape mismatches",
            self.mismatched
                .iter()
                .map(|m| format!("{}: network {}, file {}", m.name, m.expected, m.found))
                .collect(),
        )
    }
}

/// Whether `name` is BN's step counter, which a file may lack (Keras has none).
pub fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}
