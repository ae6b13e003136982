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
//!
//! Image folders ([`super::folder`]) are read as a stream instead: `Prep::workers` threads
//! take batches in turn, read, decode and transform their images, and the loader hands
//! the batches out in order. At most `workers + 2` batches are in flight (being
//! prepared, waiting, or held for their turn), so memory stays flat whatever the folder's
//! size. Each example draws from its own random stream, so the batches are the same with
//! any number of workers.

use super::data::Dataset;
use super::folder::{OnBadImage, Transform};
use super::rng::{Purpose, Rng};
use crate::runtime::image::ImageError;
use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

/// Random training-time augmentation (`--augment crop,flip`, `--augment rrc,flip`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Augment {
    /// torchvision's `RandomResizedCrop` (image folders only): a random window of 8% to
    /// 100% of the image, aspect ratio 3/4 to 4/3, resized to the input.
    pub rrc: bool,
    /// Random crop of the original size from the image padded with 4 black pixels per side.
    pub crop: bool,
    /// Horizontal flip with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// Padding of the random crop, in pixels of the stored image.
    pub const CROP_PADDING: usize = 4;

    /// What the augmentation does to an image folder's examples.
    pub fn transform(self) -> Transform {
        Transform {
            random_resized_crop: self.rrc,
            crop: self.crop,
            flip: self.flip,
        }
    }
}

impl std::str::FromStr for Augment {
    type Err = String;

    /// A comma-separated list of `rrc`, `crop`, `flip` (or `none`; `imagenet` is
    /// `rrc,flip`).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut a = Augment::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "rrc" | "random-resized-crop" => a.rrc = true,
                "crop" => a.crop = true,
                "flip" => a.flip = true,
                "imagenet" => {
                    a.rrc = true;
                    a.flip = true;
                }
                "none" => {}
                other => {
                    return Err(format!(
                        "unknown augmentation `{other}`; expected rrc, crop, flip, imagenet or none"
                    ))
                }
            }
        }
        Ok(a)
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<&str> = [(self.rrc, "rrc"), (self.crop, "crop"), (self.flip, "flip")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect();
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
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
    /// Threads that read and decode image folders (other data sets use one thread).
    pub workers: usize,
}

/// The default number of loader workers: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One batch: `images` is `[B, C, H, W]` float, `labels` is `[B]` int64, both on the device.
#[derive(Debug)]
pub struct Batch {
    /// Normalized images.
    pub images: Tensor,
    /// Class indices.
    pub labels: Tensor,
    /// Images of the batch left out as unreadable (`--on-bad-image skip`); `B` counts
    /// only the others, and may be 0.
    pub skipped: Vec<ImageError>,
}

/// Why a batch could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An unreadable image (`--on-bad-image fail`).
    #[error(transparent)]
    Image(ImageError),
    /// Making the tensors failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl LoadError {
    /// As a training error, `context` saying what was being done.
    pub fn into_train(self, context: &str) -> super::TrainError {
        match self {
            LoadError::Image(e) => super::TrainError::Data(super::DataError::Image(e)),
            LoadError::Torch(source) => super::TrainError::Torch {
                context: context.to_string(),
                source,
            },
        }
    }
}

/// A batch gathered on the loader thread: normalized, augmented images at the stored size
/// (`[n, c, h, w]`, row-major) and their labels, in plain memory.
#[derive(Debug)]
struct HostBatch {
    images: Vec<f32>,
    labels: Vec<i64>,
    shape: [i64; 4],
    skipped: Vec<ImageError>,
}

/// What the loader thread sends: a gathered batch (CPU) or a finished one (CUDA).
enum Prepared {
    Host(HostBatch),
    Ready(Result<Batch, tch::TchError>),
    Failed(ImageError),
}

/// Iterator over the batches of one pass, prepared on background threads.
pub struct Loader {
    rx: Option<Receiver<(usize, Prepared)>>,
    handles: Vec<JoinHandle<()>>,
    batches: usize,
    prep: Prep,
    /// The next batch to hand out, and batches that arrived before their turn.
    want: usize,
    pending: BTreeMap<usize, Prepared>,
    /// Shared with folder workers: how far they may run ahead.
    window: Option<Arc<Window>>,
    /// Image-folder batches' memory, handed back once their tensors are made.
    buffers: Option<Buffers>,
}

/// Batch buffers for reuse: a batch of 128 images at 3x224x224 is 77 MB, which malloc maps
/// fresh (and the kernel faults in and zeroes page by page) every time; reused, they are
/// written in place. At most as many as batches in flight.
#[derive(Clone, Default)]
struct Buffers(Arc<Mutex<Vec<Vec<f32>>>>, usize);

impl Buffers {
    /// A buffer of `len` floats whose contents are left to the caller to overwrite.
    fn take(&self, len: usize) -> Vec<f32> {
        let reused = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut buf = reused.unwrap_or_default();
        buf.resize(len, 0.0);
        buf
    }

    fn give_back(&self, buf: Vec<f32>) {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.1 {
            pool.push(buf);
        }
    }
}

/// The folder workers' schedule: the next batch to take, how many the loader has handed
/// out, and whether to stop.
struct Window {
    state: Mutex<(usize, usize, bool)>,
    wake: Condvar,
    limit: usize,
}

impl Window {
    /// The next batch a worker may prepare, waiting while `limit` batches are in flight;
    /// `None` when there are no more or the loader stopped.
    fn take(&self, batches: usize) -> Option<usize> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (next, handed, stop) = *st;
            if stop || next >= batches {
                return None;
            }
            if next < handed + self.limit {
                st.0 += 1;
                return Some(next);
            }
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn handed_one(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1 += 1;
        self.wake.notify_all();
    }

    fn stop(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.2 = true;
        self.wake.notify_all();
    }
}

/// How many batches may wait ready in the channel.
const PREFETCH: usize = 3;

/// How many image-folder batches may be ready beyond one per worker (batches of large
/// images: 77 MB each at 128 x 3 x 224 x 224).
const FOLDER_PREFETCH: usize = 2;

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
        if data.files.is_some() {
            return Loader::spawn_folder(data, order, batch_size, prep, stream);
        }
        let (tx, rx) = sync_channel(PREFETCH);
        // On CUDA the thread finishes the batches; on the CPU it only gathers them.
        let finish = prep.device.is_cuda().then(|| prep.clone());
        let augment = prep.augment;
        let handle = std::thread::spawn(move || {
            for (b, chunk) in order.chunks(batch_size).enumerate() {
                let mut rng = Rng::stream(stream.0, &[Purpose::Augment as u64, stream.1, b as u64]);
                let host = gather(&data, chunk, augment, &mut rng);
                let batch = match &finish {
                    Some(prep) => Prepared::Ready(to_device(host, prep, None)),
                    None => Prepared::Host(host),
                };
                // The receiver is gone when the trainer stopped early: stop too.
                if tx.send((b, batch)).is_err() {
                    return;
                }
            }
        });
        Loader {
            rx: Some(rx),
            handles: vec![handle],
            batches,
            prep,
            want: 0,
            pending: BTreeMap::new(),
            window: None,
            buffers: None,
        }
    }

    /// An image folder's pass: `prep.workers` threads prepare the batches.
    fn spawn_folder(
        data: Arc<Dataset>,
        order: Vec<usize>,
        batch_size: usize,
        prep: Prep,
        stream: (u64, u64),
    ) -> Loader {
        let chunks: Arc<Vec<Vec<usize>>> =
            Arc::new(order.chunks(batch_size).map(<[usize]>::to_vec).collect());
        let batches = chunks.len();
        let workers = prep.workers.clamp(1, 256);
        let window = Arc::new(Window {
            state: Mutex::new((0, 0, false)),
            wake: Condvar::new(),
            limit: workers + FOLDER_PREFETCH,
        });
        let (tx, rx) = sync_channel(workers + FOLDER_PREFETCH);
        let transform = prep.augment.transform();
        let buffers = Buffers(Arc::default(), workers + FOLDER_PREFETCH + 1);
        let handles = (0..workers)
            .map(|_| {
                let (data, chunks, window, tx, buffers) = (
                    data.clone(),
                    chunks.clone(),
                    window.clone(),
                    tx.clone(),
                    buffers.clone(),
                );
                let finish = prep.device.is_cuda().then(|| prep.clone());
                std::thread::spawn(move || {
                    while let Some(b) = window.take(chunks.len()) {
                        let batch =
                            match gather_files(&data, &chunks[b], transform, stream, &buffers) {
                                Err(e) => Prepared::Failed(e),
                                Ok(host) => match &finish {
                                    Some(prep) => {
                                        Prepared::Ready(to_device(host, prep, Some(&buffers)))
                                    }
                                    None => Prepared::Host(host),
                                },
                            };
                        if tx.send((b, batch)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Loader {
            rx: Some(rx),
            handles,
            batches,
            prep,
            want: 0,
            pending: BTreeMap::new(),
            window: Some(window),
            buffers: Some(buffers),
        }
    }

    /// Number of batches in the pass.
    pub fn batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for Loader {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.want >= self.batches {
            return None;
        }
        let prepared = loop {
            if let Some(p) = self.pending.remove(&self.want) {
                break p;
            }
            let (b, p) = self.rx.as_ref()?.recv().ok()?;
            self.pending.insert(b, p);
        };
        self.want += 1;
        if let Some(w) = &self.window {
            w.handed_one();
        }
        Some(match prepared {
            Prepared::Host(host) => {
                to_device(host, &self.prep, self.buffers.as_ref()).map_err(LoadError::from)
            }
            Prepared::Ready(batch) => batch.map_err(LoadError::from),
            Prepared::Failed(e) => Err(LoadError::Image(e)),
        })
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Stop the workers, then drop the receiver to unblock any waiting to send.
        if let Some(w) = &self.window {
            w.stop();
        }
        self.rx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Reads and prepares the images `indices` of an image folder into one host batch
/// (unreadable ones skipped or fatal, as the folder says).
fn gather_files(
    data: &Dataset,
    indices: &[usize],
    transform: Transform,
    stream: (u64, u64),
    buffers: &Buffers,
) -> Result<HostBatch, ImageError> {
    let files = data.files.as_ref().expect("a folder data set");
    let (c, h, w) = (files.channels, files.height, files.width);
    let size = c * h * w;
    // Every slot of a kept image is written whole.
    let mut images = buffers.take(indices.len() * size);
    let mut labels = Vec::with_capacity(indices.len());
    let mut skipped = Vec::new();
    for &i in indices {
        let slot = &mut images[labels.len() * size..(labels.len() + 1) * size];
        match files.prepare_into(i, transform, stream, (&data.mean, &data.std), slot) {
            Ok(()) => labels.push(data.labels[i]),
            Err(e) if files.on_bad == OnBadImage::Skip => skipped.push(e),
            Err(mut e) => {
                e.problem
                    .push_str(" (`--on-bad-image skip` leaves unreadable images out)");
                return Err(e);
            }
        }
    }
    images.truncate(labels.len() * size);
    Ok(HostBatch {
        shape: [labels.len() as i64, c as i64, h as i64, w as i64],
        images,
        labels,
        skipped,
    })
}

/// Gathers the examples `indices` into one normalized, augmented batch on the device.
pub fn make_batch(
    data: &Dataset,
    indices: &[usize],
    prep: &Prep,
    rng: &mut Rng,
) -> Result<Batch, LoadError> {
    if data.files.is_some() {
        let transform = prep.augment.transform();
        let buffers = Buffers::default();
        return match gather_files(data, indices, transform, (rng.next_u64(), 0), &buffers) {
            Ok(host) => to_device(host, prep, None).map_err(LoadError::from),
            Err(e) => Err(LoadError::Image(e)),
        };
    }
    to_device(gather(data, indices, prep.augment, rng), prep, None).map_err(LoadError::from)
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
        skipped: Vec::new(),
    }
}

/// Makes tensors of a gathered batch, on `prep.device`, resized and with `prep.channels`;
/// hands the batch's memory to `buffers` afterwards.
fn to_device(
    host: HostBatch,
    prep: &Prep,
    buffers: Option<&Buffers>,
) -> Result<Batch, tch::TchError> {
    let [n, c, h, w] = host.shape;
    let (c, h, w) = (c as usize, h as usize, w as usize);
    // To the device before resizing: a GPU resizes in no time, and the small images
    // travel instead of the large ones (28x28 -> 224x224 is 64 times the bytes).
    let mut images = Tensor::f_from_slice(&host.images)?
        .f_view(host.shape)?
        .f_to_device(prep.device)?;
    if let Some(buffers) = buffers {
        buffers.give_back(host.images);
    }
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
        skipped: host.skipped,
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
            files: None,
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
            workers: 1,
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
            rrc: false,
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
            rrc: false,
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
            workers: 1,
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
                rrc: false,
                crop: true,
                flip: true
            })
        );
        assert_eq!("none".parse::<Augment>(), Ok(Augment::default()));
        assert!("rotate".parse::<Augment>().is_err());
        let imagenet: Augment = "imagenet".parse().unwrap();
        assert!(imagenet.rrc && imagenet.flip && !imagenet.crop);
        assert_eq!(imagenet.to_string(), "rrc,flip");
        assert_eq!("flip,crop".parse::<Augment>().unwrap().to_string(), "crop,flip");
    }
}
