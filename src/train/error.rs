//! Errors of training and evaluation: data sets, checkpoints, reports.

use std::path::PathBuf;

/// A data set could not be loaded. Every variant names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A class folder of an image folder holds no images.
    #[error("class folder `{path}` holds no .png or .jpg images: add images or remove the folder")]
    EmptyClass { path: PathBuf },
    /// A data file does not exist.
    #[error("data file `{path}` is missing (scripts/fetch-data.sh puts Fashion-MNIST and MNIST under $RESNETC_HOME/data)")]
    Missing { path: PathBuf },
    /// A data file exists but could not be read.
    #[error("cannot read data file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A gzipped data file is truncated or corrupt.
    #[error("data file `{path}` is not a valid gzip stream (truncated or corrupt download?)")]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the IDX magic number expected for its kind.
    #[error("data file `{path}` is not an IDX {kind} file: magic number 0x{found:08x}, expected 0x{expected:08x}")]
    BadMagic {
        path: PathBuf,
        kind: &'static str,
        found: u32,
        expected: u32,
    },
    /// The header declares dimensions resnetc does not read (empty or oversized images,
    /// more data than [`super::idx::MAX_IDX_BYTES`]).
    #[error("data file `{path}` has an unusable IDX header: {message}")]
    BadHeader { path: PathBuf, message: String },
    /// The file holds fewer bytes than its header promises.
    #[error(
        "data file `{path}` is truncated: its header promises {expected} bytes, it holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// The file holds more bytes than its header promises.
    #[error("data file `{path}` is corrupt: {extra} bytes follow the data its header describes")]
    TrailingBytes { path: PathBuf, extra: u64 },
    /// Images and labels files disagree on the number of examples.
    #[error("`{images}` holds {image_count} images but `{labels}` holds {label_count} labels")]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        image_count: usize,
        label_count: usize,
    },
    /// A label is not a valid class index.
    #[error("data file `{path}` is corrupt: label {label} of example {index} is not below the {classes} classes")]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },
    /// An image folder has no class subfolders holding images.
    #[error("image folder `{path}` has no class subfolders with PNG or JPEG images (expected DIR/<class>/*.png, or DIR/train/<class>/ and DIR/test/<class>/)")]
    NoClasses { path: PathBuf },
    /// The train and test parts of an image folder name different classes.
    #[error("image folder `{path}`: train classes {train:?} differ from test classes {test:?}")]
    ClassMismatch {
        path: PathBuf,
        train: Vec<String>,
        test: Vec<String>,
    },
    /// An image could not be read or decoded (the error names the file).
    #[error(transparent)]
    Image(#[from] crate::runtime::image::ImageError),
    /// A folder could not be listed.
    #[error("cannot list folder `{path}`")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Training or evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data set could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A libtorch operation failed (out of memory, a device that is not there, ...).
    #[error("libtorch failed while {context}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    /// A file of the run could not be written.
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint or weights file is unreadable or does not fit the model.
    #[error("checkpoint `{path}`: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// `--resume` was given with settings that differ from the interrupted run's.
    #[error("cannot resume `{path}`: the run was started with other settings ({differences}); resume with the same settings or train into another --out")]
    ResumeMismatch { path: PathBuf, differences: String },
    /// `--resume` was given but there is nothing to resume.
    #[error("nothing to resume: `{path}` does not exist")]
    NoCheckpoint { path: PathBuf },
    /// The run folder already holds a run and `--resume` was not given.
    #[error("`{path}` already holds a training run; pass --resume to continue it, or choose another --out")]
    RunExists { path: PathBuf },
    /// The starting weights (`--init-from`) could not be loaded.
    #[error("cannot start from the weights `{path}`")]
    Init {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The model's forward pass failed.
    #[error("the forward pass failed")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Options that cannot work together.
    #[error("{0}")]
    Config(String),
    /// The curves could not be drawn.
    #[error("cannot draw `{path}`: {message}")]
    Plot { path: PathBuf, message: String },
}

impl TrainError {
    /// Wraps a libtorch error with what was being done.
    pub fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> TrainError {
        let context = context.into();
        move |source| TrainError::Torch { context, source }
    }
}
