//! Batches prepared ahead on another thread: gather, augment, normalize, into tensors,
//! to the device, resized.
//!
//! A [`Loader`] owns one thread that walks an epoch's order and sends prepared batches
//! through a bounded channel, so the next batches are ready while the model trains on
//! the current one, and memory stays bounded. Augmentation draws from a stream named
//! by `(seed, epoch, batch)` ([`super::rng`]), so batches do not depend on timing.
//!
//! Training on the CPU, the loader thread stops before libtorch: it hands plain buffers
//! over, and the training thread makes the tensors (one fill and one copy). Making a
//! tensor fills it in parallel, which would give the loader thread an OpenMP team of its
//! own; once libgomp manages more threads than there are cores, it stops spinning at
//! barriers and puts the training thread's workers to sleep at every parallel region
//! (measured on two cores: 37,840 context switches in 50 batches instead of about 850,
//! and about 12% fewer examples/s). On CUDA the training thread hardly runs parallel CPU
//! operators, so the loader thread also makes the tensors, copies them to the GPU and
//! resizes them there, off the training thread.

use super::data::Dataset;
use super::rng::{Purpose, Rng};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

/// Random training-time augmentation (`--augment crop,flip`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Augment {
    /// Random crop of the original size from the image padded with 4 black pixels per side.
    pub crop: bool,
    /// Horizontal flip with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// Padding of the random crop, in pixels of the stored image.
    pub const CROP_PADDING: usize = 4;
}

impl std::str::FromStr for Augment {
    type Err = String;

    /// A comma-separated list of `crop`, `flip` (or `none`).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut a = Augment::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "crop" => a.crop = true,
                "flip" => a.flip = true,
                "none" => {}
                other => {
                    return Err(format!(
                        "unknown augmentation `{other}`; expected crop, flip or none"
                    ))
                }
            }
        }
        Ok(a)
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.crop, self.flip) {
            (true, true) => f.write_str("crop,flip"),
            (true, false) => f.write_str("crop"),
            (false, true) => f.write_str("flip"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// How stored images become the network's input.
#[derive(Clone, Debug)]
pub struct Prep {
    /// Channels, height and width the network takes.
    pub channels: usize,
    /// See `channels`.
    pub height: usize,
    /// See `channels`.
    pub width: usize,
    /// Augmentation (none for testing).
    pub augment: Augment,
    /// Where batches are sent.
    pub device: Device,
}

/// One batch: `images` is `[B, C, H, W]` float, `labels` is `[B]` int64, both on the device.
#[derive(Debug)]
pub struct Batch {
    /// Normalized images.
    pub images: Tensor,
    /// Class indices.
    pub labels: Tensor,
}

/// A batch gathered on the loader thread: normalized, augmented images at the stored size
/// (`[n, c, h, w]`, row-major) and their labels, in plain memory.
#[derive(Debug)]
struct HostBatch {
    images: Vec<f32>,
    labels: Vec<i64>,
    shape: [i64; 4],
}

/// What the loader thread sends: a gathered batch (CPU) or a finished one (CUDA).
enum Prepared {
    Host(HostBatch),
    Ready(Result<Batch, tch::TchError>),
}

/// Iterator over the batches of one pass, prepared on a background thread.
pub struct Loader {
    rx: Option<Receiver<Prepared>>,
    handle: Option<JoinHandle<()>>,
    batches: usize,
    prep: Prep,
}

/// How many batches may wait ready in the channel.
const PREFETCH: usize = 3;

impl Loader {
    /// Starts the thread for one pass over `order` (indices into `data`) in batches of
    /// `batch_size` (the last may be smaller). `stream` names the augmentation streams,
    /// e.g. `(seed, epoch)`.
    pub fn spawn(
        data: Arc<Dataset>,
        order: Vec<usize>,
        batch_size: usize,
        prep: Prep,
        stream: (u64, u64),
    ) -> Loader {
        let batch_size = batch_size.max(1);
        let batches = order.len().div_ceil(batch_size);
        let (tx, rx) = sync_channel(PREFETCH);
        // On CUDA the thread finishes the batches; on the CPU it only gathers them.
        let finish = prep.device.is_cuda().then(|| prep.clone());
        let augment = prep.augment;
        let handle = std::thread::spawn(move || {
            for (b, chunk) in order.chunks(batch_size).enumerate() {
                let mut rng = Rng::stream(stream.0, &[Purpose::Augment as u64, stream.1, b as u64]);
                let host = gather(&data, chunk, augment, &mut rng);
                let batch = match &finish {
                    Some(prep) => Prepared::Ready(to_device(host, prep)),
                    None => Prepared::Host(host),
                };
                // The receiver is gone when the trainer stopped early: stop too.
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
        Loader {
            rx: Some(rx),
            handle: Some(handle),
            batches,
            prep,
        }
    }

    /// Number of batches in the pass.
    pub fn batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for Loader {
    type Item = Result<Batch, tch::TchError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.as_ref()?.recv().ok()? {
            Prepared::Host(host) => Some(to_device(host, &self.prep)),
            Prepared::Ready(batch) => Some(batch),
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Dropping the receiver first unblocks a thread waiting to send.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Gathers the examples `indices` into one normalized, augmented batch on the device.
pub fn make_batch(
    data: &Dataset,
    indices: &[usize],
    prep: &Prep,
    rng: &mut Rng,
) -> Result<Batch, tch::TchError> {
    to_device(gather(data, indices, prep.augment, rng), prep)
}

/// Gathers, augments and normalizes the examples `indices` (no libtorch calls).
fn gather(data: &Dataset, indices: &[usize], augment: Augment, rng: &mut Rng) -> HostBatch {
    let (c, h, w) = (data.channels, data.height, data.width);
    let plane = h * w;
    let mut out = vec![0f32; indices.len() * c * plane];
    // 0..255 byte -> normalized float, one table per channel.
    let tables: Vec<[f32; 256]> = (0..c)
        .map(|ch| {
            let (m, s) = (
                data.mean[ch.min(data.mean.len() - 1)],
                data.std[ch.min(data.std.len() - 1)],
            );
            std::array::from_fn(|v| (v as f32 / 255.0 - m) / s)
        })
        .collect();
    let pad = Augment::CROP_PADDING as isize;
    for (k, &i) in indices.iter().enumerate() {
        let src = data.image(i);
        let (dy, dx) = if augment.crop {
            (
                rng.below(2 * pad as usize + 1) as isize - pad,
                rng.below(2 * pad as usize + 1) as isize - pad,
            )
        } else {
            (0, 0)
        };
        let flip = augment.flip && rng.coin();
        for ch in 0..c {
            let table = &tables[ch];
            let black = table[0];
            let dst = &mut out[(k * c + ch) * plane..(k * c + ch + 1) * plane];
            let src = &src[ch * plane..(ch + 1) * plane];
            for y in 0..h {
                let sy = y as isize + dy;
                let row = &mut dst[y * w..(y + 1) * w];
                if sy < 0 || sy >= h as isize {
                    row.fill(black);
                    continue;
                }
                let srow = &src[sy as usize * w..(sy as usize + 1) * w];
                for (x, v) in row.iter_mut().enumerate() {
                    let x = if flip { w - 1 - x } else { x };
                    let sx = x as isize + dx;
                    *v = if sx < 0 || sx >= w as isize {
                        black
                    } else {
                        table[srow[sx as usize] as usize]
                    };
                }
            }
        }
    }
    let labels = indices.iter().map(|&i| data.labels[i]).collect();
    HostBatch {
        images: out,
        labels,
        shape: [indices.len() as i64, c as i64, h as i64, w as i64],
    }
}

/// Makes tensors of a gathered batch, on `prep.device`, resized and with `prep.channels`.
fn to_device(host: HostBatch, prep: &Prep) -> Result<Batch, tch::TchError> {
    let [n, c, h, w] = host.shape;
    let (c, h, w) = (c as usize, h as usize, w as usize);
    // To the device before resizing: a GPU resizes in no time, and the small images
    // travel instead of the large ones (28x28 -> 224x224 is 64 times the bytes).
    let mut images = Tensor::f_from_slice(&host.images)?
        .f_view(host.shape)?
        .f_to_device(prep.device)?;
    if (h, w) != (prep.height, prep.width) {
        // Bilinear, as torchvision's Resize; upsampling needs no antialiasing.
        let aa = prep.height < h || prep.width < w;
        images = if aa {
            images.f_internal_upsample_bilinear2d_aa(
                [prep.height as i64, prep.width as i64],
                false,
                None,
                None,
            )?
        } else {
            images.f_upsample_bilinear2d(
                [prep.height as i64, prep.width as i64],
                false,
                None,
                None,
            )?
        };
    }
    if c == 1 && prep.channels != 1 {
        images = images
            .f_expand(
                [
                    n,
                    prep.channels as i64,
                    prep.height as i64,
                    prep.width as i64,
                ],
                false,
            )?
            .f_contiguous()?;
    } else if c != prep.channels {
        // Colour to grey: data sets load grey images as 1 channel already, so only a
        // mismatch like 3 -> 2 gets here; average the channels.
        images = images
            .f_mean_dim(1, true, Kind::Float)?
            .f_expand(
                [
                    n,
                    prep.channels as i64,
                    prep.height as i64,
                    prep.width as i64,
                ],
                false,
            )?
            .f_contiguous()?;
    }
    let labels = Tensor::f_from_slice(&host.labels)?;
    Ok(Batch {
        images,
        labels: labels.f_to_device(prep.device)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            pixels: (0..2 * 16).map(|v| v as u8).collect(),
            labels: vec![3, 5],
            channels: 1,
            height: 4,
            width: 4,
            classes: (0..10).map(|c| c.to_string()).collect(),
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
        }
    }

    /// The batch's values, rounded (normalization by 1/255 is exact only up to rounding).
    fn values(b: &Batch) -> Vec<f32> {
        Vec::<f32>::try_from(b.images.flatten(0, -1))
            .unwrap()
            .into_iter()
            .map(f32::round)
            .collect()
    }

    fn prep(augment: Augment) -> Prep {
        Prep {
            channels: 1,
            height: 4,
            width: 4,
            augment,
            device: Device::Cpu,
        }
    }

    #[test]
    fn plain_batches_normalize_and_keep_order() {
        let b = make_batch(
            &tiny(),
            &[1, 0],
            &prep(Augment::default()),
            &mut Rng::stream(0, &[]),
        )
        .unwrap();
        assert_eq!(b.images.size(), vec![2, 1, 4, 4]);
        assert_eq!(Vec::<i64>::try_from(&b.labels).unwrap(), vec![5, 3]);
        let v = values(&b);
        assert_eq!(v[0], 16.0);
        assert_eq!(v[31], 15.0);
    }

    #[test]
    fn flip_mirrors_and_crop_shifts() {
        let data = tiny();
        let p = prep(Augment {
            crop: false,
            flip: true,
        });
        let mut seen = std::collections::HashSet::new();
        for s in 0..16 {
            let b = make_batch(&data, &[0], &p, &mut Rng::stream(s, &[])).unwrap();
            let v = values(&b);
            assert!(
                v[..4] == [0.0, 1.0, 2.0, 3.0] || v[..4] == [3.0, 2.0, 1.0, 0.0],
                "{v:?}"
            );
            seen.insert(v[0] as i32);
        }
        assert_eq!(seen.len(), 2, "both flipped and unflipped occur");
        let p = prep(Augment {
            crop: true,
            flip: false,
        });
        for s in 0..16 {
            let b = make_batch(&data, &[0], &p, &mut Rng::stream(s, &[])).unwrap();
            let v = values(&b);
            // Every value is either padding (0) or a pixel of the image; the crop is a shift.
            assert!(v.iter().all(|&x| (0.0..16.0).contains(&x)));
        }
    }

    #[test]
    fn resizes_and_expands_channels() {
        let p = Prep {
            channels: 3,
            height: 8,
            width: 8,
            augment: Augment::default(),
            device: Device::Cpu,
        };
        let b = make_batch(&tiny(), &[0, 1], &p, &mut Rng::stream(0, &[])).unwrap();
        assert_eq!(b.images.size(), vec![2, 3, 8, 8]);
    }

    #[test]
    fn loader_yields_every_example_once() {
        let data = Arc::new(tiny());
        let loader = Loader::spawn(data, vec![1, 0, 1], 2, prep(Augment::default()), (0, 0));
        assert_eq!(loader.batches(), 2);
        let sizes: Vec<i64> = loader.map(|b| b.unwrap().labels.size()[0]).collect();
        assert_eq!(sizes, vec![2, 1]);
    }

    #[test]
    fn parses_augment() {
        assert_eq!(
            "crop,flip".parse::<Augment>(),
            Ok(Augment {
                crop: true,
                flip: true
            })
        );
        assert_eq!("none".parse::<Augment>(), Ok(Augment::default()));
        assert!("rotate".parse::<Augment>().is_err());
    }
}
