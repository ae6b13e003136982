//! Data sets: Fashion-MNIST and MNIST (IDX files), and image folders.

use super::folder::{FolderImages, OnBadImage};
use super::{idx, DataError};
use std::path::{Path, PathBuf};

/// The class names of Fashion-MNIST, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where a data set comes from: `--data fashion-mnist|mnist|DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// Fashion-MNIST's IDX files in `<root>/fashion-mnist` ([`data_root`] by default).
    FashionMnist {
        /// The folder holding `fashion-mnist/`.
        root: PathBuf,
    },
    /// MNIST's IDX files in `<root>/mnist`.
    Mnist {
        /// The folder holding `mnist/`.
        root: PathBuf,
    },
    /// An image folder: `DIR/<class>/*.{png,jpg,jpeg}`, or `DIR/train/<class>/...` beside
    /// `DIR/test/<class>/...` (or `DIR/val/...`). Without `train`/`test`, every tenth image
    /// of each class (in name order) is held out for testing.
    Folder(PathBuf),
}

/// The training or the test part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The examples to learn from.
    Train,
    /// The held-out examples to measure accuracy on.
    Test,
}

/// `$RESNETC_HOME/data`, by default `~/.cache/resnetc/data`: where scripts/fetch-data.sh
/// puts Fashion-MNIST and MNIST.
pub fn data_root() -> PathBuf {
    let home = std::env::var_os("RESNETC_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache/resnetc")
        });
    home.join("data")
}

impl std::str::FromStr for DataSource {
    type Err = String;

    /// `fashion-mnist`, `mnist`, or the path of an image folder.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "fashion-mnist" | "fashion_mnist" | "fmnist" => {
                DataSource::FashionMnist { root: data_root() }
            }
            "mnist" => DataSource::Mnist { root: data_root() },
            "" => return Err("expected fashion-mnist, mnist or an image folder".into()),
            path => DataSource::Folder(PathBuf::from(path)),
        })
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::FashionMnist { .. } => f.write_str("fashion-mnist"),
            DataSource::Mnist { .. } => f.write_str("mnist"),
            DataSource::Folder(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Images and labels held in memory as bytes.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `len * channels * height * width` bytes, each image in C x H x W order.
    pub pixels: Vec<u8>,
    /// Class index of each image.
    pub labels: Vec<i64>,
    /// Channels of the stored images (1 grey, 3 RGB).
    pub channels: usize,
    /// Height of the stored images.
    pub height: usize,
    /// Width of the stored images.
    pub width: usize,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Per-channel mean and standard deviation of the training images (on the 0..1
    /// scale) used to normalize every image, training and test alike.
    pub mean: Vec<f32>,
    /// See `mean`.
    pub std: Vec<f32>,
    /// An image folder's files, read as a stream by the loader: then `pixels` is empty and
    /// `channels`, `height` and `width` are those of the prepared images.
    pub files: Option<FolderImages>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of example `i` of a data set held in memory (empty for a streamed
    /// image folder, whose images are read by the loader).
    pub fn image(&self, i: usize) -> &[u8] {
        if self.files.is_some() {
            return &[];
        }
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Keeps `limit` evenly spaced examples (all when `limit` is `None` or not smaller).
    pub fn limit(mut self, limit: Option<usize>) -> Dataset {
        let Some(keep) = limit.filter(|&k| k < self.len()) else {
            return self;
        };
        let picks = evenly_spaced(self.len(), keep);
        if let Some(files) = &mut self.files {
            files.paths = picks.iter().map(|&i| files.paths[i].clone()).collect();
            self.labels = picks.iter().map(|&i| self.labels[i]).collect();
            return self;
        }
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(keep * n);
        for &i in &picks {
            pixels.extend_from_slice(self.image(i));
        }
        self.labels = picks.iter().map(|&i| self.labels[i]).collect();
        self.pixels = pixels;
        self
    }
}

/// `keep` indices spread evenly over `0..len` (`keep <= len`).
fn evenly_spaced(len: usize, keep: usize) -> Vec<usize> {
    (0..keep).map(|k| k * len / keep.max(1)).collect()
}

impl DataSource {
    /// Loads one split. `size` (height, width) and `channels` matter only for image
    /// folders, which are listed here and read as a stream by the loader (see
    /// [`super::folder`]: RGB, or grey by luminance when `channels` is 1, at `size`); IDX
    /// images keep their 28x28 grey form and are resized by the loader. `limit` keeps
    /// evenly spaced examples.
    pub fn load(
        &self,
        split: Split,
        limit: Option<usize>,
        size: (usize, usize),
        channels: usize,
    ) -> Result<Dataset, DataError> {
        match self {
            DataSource::FashionMnist { root } => {
                let classes = FASHION_MNIST_CLASSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                Ok(load_idx_pair(
                    &root.join("fashion-mnist"),
                    split,
                    classes,
                    0.2860406,
                    0.3530242,
                )?
                .limit(limit))
            }
            DataSource::Mnist { root } => {
                let classes = (0..10).map(|d| d.to_string()).collect();
                Ok(
                    load_idx_pair(&root.join("mnist"), split, classes, 0.1306605, 0.3081078)?
                        .limit(limit),
                )
            }
            DataSource::Folder(dir) => load_folder(dir, split, limit, size, channels),
        }
    }
}

/// Finds `name` or `name.gz` in `dir` (the gzipped one when only it exists).
fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if !raw.exists() && gz.exists() {
        gz
    } else if raw.exists() {
        raw
    } else {
        gz
    }
}

fn load_idx_pair(
    dir: &Path,
    split: Split,
    classes: Vec<String>,
    mean: f32,
    std: f32,
) -> Result<Dataset, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = idx_file(dir, &format!("{prefix}-images-idx3-ubyte"));
    let labels_path = idx_file(dir, &format!("{prefix}-labels-idx1-ubyte"));
    let images = idx::read_images(&images_path)?;
    let labels = idx::read_labels(&labels_path)?;
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_path,
            labels: labels_path,
            image_count: images.count,
            label_count: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes.len())
    {
        return Err(DataError::LabelOutOfRange {
            path: labels_path,
            index,
            label,
            classes: classes.len(),
        });
    }
    Ok(Dataset {
        pixels: images.pixels,
        labels: labels.into_iter().map(i64::from).collect(),
        channels: 1,
        height: images.rows,
        width: images.cols,
        classes,
        mean: vec![mean],
        std: vec![std],
        files: None,
    })
}

/// Class subfolders of `dir` with their image files, both in name order.
fn list_classes(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
    let list = |p: &Path| -> Result<Vec<PathBuf>, DataError> {
        let mut v = std::fs::read_dir(p)
            .map_err(|source| DataError::List {
                path: p.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect::<Vec<_>>();
        v.sort();
        Ok(v)
    };
    let is_image = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
    };
    let mut classes = Vec::new();
    for sub in list(dir)? {
        let hidden = sub
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !sub.is_dir() || hidden {
            continue;
        }
        let files: Vec<PathBuf> = list(&sub)?
            .into_iter()
            .filter(|f| f.is_file() && is_image(f))
            .collect();
        if files.is_empty() {
            // As torchvision's ImageFolder: a class without images is a mistake to fix.
            return Err(DataError::EmptyClass { path: sub });
        }
        let name = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        classes.push((name, files));
    }
    if classes.is_empty() {
        return Err(DataError::NoClasses {
            path: dir.to_path_buf(),
        });
    }
    Ok(classes)
}

fn load_folder(
    dir: &Path,
    split: Split,
    limit: Option<usize>,
    size: (usize, usize),
    channels: usize,
) -> Result<Dataset, DataError> {
    let train_dir = dir.join("train");
    let test_dir = ["test", "val"]
        .iter()
        .map(|t| dir.join(t))
        .find(|p| p.is_dir());
    let files: Vec<(String, Vec<PathBuf>)> = match (train_dir.is_dir(), test_dir) {
        (true, Some(test_dir)) => {
            let train = list_classes(&train_dir)?;
            let test = list_classes(&test_dir)?;
            let names =
                |c: &[(String, Vec<PathBuf>)]| c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            if names(&train) != names(&test) {
                return Err(DataError::ClassMismatch {
                    path: dir.to_path_buf(),
                    train: names(&train),
                    test: names(&test),
                });
            }
            match split {
                Split::Train => train,
                Split::Test => test,
            }
        }
        _ => list_classes(dir)?
            .into_iter()
            .map(|(name, files)| {
                let keep = files
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| (i % 10 == 9) == (split == Split::Test))
                    .map(|(_, f)| f)
                    .collect();
                (name, keep)
            })
            .collect(),
    };
    let classes: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let mut all: Vec<(PathBuf, i64)> = files
        .into_iter()
        .enumerate()
        .flat_map(|(label, (_, fs))| fs.into_iter().map(move |f| (f, label as i64)))
        .collect();
    if let Some(keep) = limit.filter(|&k| k < all.len()) {
        all = evenly_spaced(all.len(), keep)
            .into_iter()
            .map(|i| all[i].clone())
            .collect();
    }
    let (h, w) = size;
    let channels = if channels == 1 { 1 } else { 3 };
    let (paths, labels): (Vec<PathBuf>, Vec<i64>) = all.into_iter().unzip();
    // ImageNet's statistics for colour images (what torchvision's pretrained weights
    // expect); a neutral 0.5 for grey ones.
    let (mean, std) = if channels == 3 {
        (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
    } else {
        (vec![0.5], vec![0.5])
    };
    Ok(Dataset {
        pixels: Vec::new(),
        labels,
        channels,
        height: h,
        width: w,
        classes,
        mean,
        std,
        files: Some(FolderImages {
            paths,
            channels,
            height: h,
            width: w,
            on_bad: OnBadImage::Fail,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spaced_subsets() {
        assert_eq!(evenly_spaced(10, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(evenly_spaced(7, 3), vec![0, 2, 4]);
        assert_eq!(evenly_spaced(3, 0), Vec::<usize>::new());
    }

    #[test]
    fn parses_sources() {
        assert!(matches!(
            "fashion-mnist".parse::<DataSource>(),
            Ok(DataSource::FashionMnist { .. })
        ));
        assert!(matches!(
            "mnist".parse::<DataSource>(),
            Ok(DataSource::Mnist { .. })
        ));
        assert_eq!(
            "some/dir".parse::<DataSource>(),
            Ok(DataSource::Folder("some/dir".into()))
        );
    }
}
