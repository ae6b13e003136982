//! Image folders as a stream: the files are listed up front, and each image is read,
//! decoded, cropped, resized and normalized when its batch is prepared, by the loader's
//! worker threads ([`super::loader`]). Memory holds the file list and the batches in
//! flight, whatever the folder's size.
//!
//! - Decoding: JPEG (zune-jpeg, through the `image` crate; grey and CMYK files become RGB)
//!   and PNG, after [`crate::runtime::image::check_header`] has checked the file's format
//!   and declared size, so nothing is decoded from a file that lies about either.
//! - Training transforms: torchvision's `RandomResizedCrop(size, scale=(0.08, 1),
//!   ratio=(3/4, 4/3))` (`--augment rrc`), otherwise the evaluation transform; then the
//!   4-pixel-padded random crop (`crop`) and the horizontal flip (`flip`) when asked for.
//! - Evaluation transform: the shorter side resized to `size * 256 / 224`, then the
//!   center crop (`Resize(256)`, `CenterCrop(224)` for a 224 input), as `resnetc predict`.
//! - Resizing uses PIL's antialiased bilinear filter (fast_image_resize's convolution).
//! - Every random choice comes from a stream named by the seed, the epoch and the
//!   example's index, so batches do not depend on the number of workers.

use super::rng::{Purpose, Rng};
use crate::runtime::image::{read_checked, ImageError, ImageFormat};
use fast_image_resize as fr;
use std::path::{Path, PathBuf};

/// What to do with an image that cannot be read or decoded (`--on-bad-image`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadImage {
    /// Stop with an error naming the file.
    #[default]
    Fail,
    /// Leave the image out of its batch, count it, and go on.
    Skip,
}

/// The files of one split of an image folder, with how to turn them into inputs.
#[derive(Clone, Debug)]
pub struct FolderImages {
    /// One file per example, in label order then name order.
    pub paths: Vec<PathBuf>,
    /// 1 (grey, BT.601 luma) or 3 (RGB).
    pub channels: usize,
    /// Height of the prepared images (the network's input).
    pub height: usize,
    /// Width of the prepared images.
    pub width: usize,
    /// What happens to unreadable images.
    pub on_bad: OnBadImage,
}

/// One example prepared for a batch: `channels * height * width` floats, normalized.
pub type Pixels = Vec<f32>;

/// How one epoch's examples are transformed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transform {
    /// `RandomResizedCrop` instead of resize + center crop.
    pub random_resized_crop: bool,
    /// The 4-pixel-padded random crop after resizing.
    pub crop: bool,
    /// Horizontal flip with probability 1/2.
    pub flip: bool,
}

/// A crop window of the decoded image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// torchvision's `RandomResizedCrop.get_params` for a `width x height` image: ten tries at
/// an area fraction in `scale` and a log-uniform aspect ratio in `ratio`, then the
/// central crop with the ratio clamped into range.
pub fn random_resized_crop(width: u32, height: u32, rng: &mut Rng) -> Window {
    let (w, h) = (f64::from(width), f64::from(height));
    let area = w * h;
    let (scale, ratio) = ((0.08, 1.0), (3.0f64 / 4.0, 4.0f64 / 3.0));
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * rng.uniform());
        let aspect = (log_lo + (log_hi - log_lo) * rng.uniform()).exp();
        // Python's round(): halves to even.
        let cw = (target * aspect).sqrt().round_ties_even();
        let ch = (target / aspect).sqrt().round_ties_even();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let top = rng.below((h - ch) as usize + 1) as f64;
            let left = rng.below((w - cw) as usize + 1) as f64;
            return Window {
                left,
                top,
                width: cw,
                height: ch,
            };
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w / ratio.0).round_ties_even())
    } else if in_ratio > ratio.1 {
        ((h * ratio.1).round_ties_even(), h)
    } else {
        (w, h)
    };
    Window {
        left: ((w - cw) / 2.0).floor().max(0.0),
        top: ((h - ch) / 2.0).floor().max(0.0),
        width: cw,
        height: ch,
    }
}

/// The evaluation window: what `Resize(s)` then `CenterCrop(height, width)` keep of a
/// `width x height` image, with `s = min(out) * 256 / 224`, in source pixels.
pub fn center_window(width: u32, height: u32, out_h: usize, out_w: usize) -> Window {
    let (w, h) = (f64::from(width), f64::from(height));
    let short = ((out_h.min(out_w) as f64) * 256.0 / 224.0).round();
    // torchvision: the shorter side becomes `short`, the longer keeps the aspect ratio.
    let (rw, rh) = if w <= h {
        (short, (short * h / w).floor())
    } else {
        ((short * w / h).floor(), short)
    };
    let (sx, sy) = (w / rw, h / rh);
    let top = ((rh - out_h as f64) / 2.0).round_ties_even();
    let left = ((rw - out_w as f64) / 2.0).round_ties_even();
    Window {
        left: left * sx,
        top: top * sy,
        width: out_w as f64 * sx,
        height: out_h as f64 * sy,
    }
}

impl FolderImages {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Example `index` as normalized floats (`mean`/`std` per channel), transformed with
    /// the example's own random stream for `(seed, epoch)`.
    pub fn prepare(
        &self,
        index: usize,
        transform: Transform,
        stream: (u64, u64),
        mean: &[f32],
        std: &[f32],
    ) -> Result<Pixels, ImageError> {
        let mut out = vec![0f32; self.channels * self.height * self.width];
        self.prepare_into(index, transform, stream, (mean, std), &mut out)?;
        Ok(out)
    }

    /// [`FolderImages::prepare`] into `out` (`channels * height * width` floats), as the
    /// loader's workers fill a batch without a copy.
    pub fn prepare_into(
        &self,
        index: usize,
        transform: Transform,
        stream: (u64, u64),
        (mean, std): (&[f32], &[f32]),
        out: &mut [f32],
    ) -> Result<(), ImageError> {
        let path = &self.paths[index];
        let rgb = decode_rgb(path)?;
        let mut rng = Rng::stream(
            stream.0,
            &[Purpose::Augment as u64, stream.1, index as u64, 1],
        );
        let (w, h) = (rgb.width(), rgb.height());
        let window = if transform.random_resized_crop {
            random_resized_crop(w, h, &mut rng)
        } else {
            center_window(w, h, self.height, self.width)
        };
        let resized = resize(&rgb, window, self.width, self.height).map_err(|e| ImageError {
            path: path.display().to_string(),
            problem: format!("resizing failed: {e}"),
        })?;
        let (dy, dx) = if transform.crop {
            let pad = super::loader::Augment::CROP_PADDING;
            (
                rng.below(2 * pad + 1) as isize - pad as isize,
                rng.below(2 * pad + 1) as isize - pad as isize,
            )
        } else {
            (0, 0)
        };
        let flip = transform.flip && rng.coin();
        normalize(
            &resized,
            (self.width, self.height),
            self.channels,
            (dy, dx, flip),
            (mean, std),
            out,
        );
        Ok(())
    }

    /// Per-channel mean and standard deviation (0..1 scale) of up to `sample` evenly spaced
    /// images under the evaluation transform (`--normalize dataset`). Unreadable images are
    /// left out; an error only when none can be read.
    pub fn statistics(&self, sample: usize) -> Result<(Vec<f32>, Vec<f32>), ImageError> {
        let c = self.channels;
        let (zero, one) = (vec![0.0; c], vec![1.0; c]);
        let (mut sum, mut sq, mut n) = (vec![0f64; c], vec![0f64; c], 0u64);
        let keep = sample.min(self.len()).max(1);
        let mut first_error = None;
        for k in 0..keep {
            let i = k * self.len() / keep;
            match self.prepare(i, Transform::default(), (0, 0), &zero, &one) {
                Ok(px) => {
                    let plane = self.height * self.width;
                    for ch in 0..c {
                        for &v in &px[ch * plane..(ch + 1) * plane] {
                            sum[ch] += f64::from(v);
                            sq[ch] += f64::from(v) * f64::from(v);
                        }
                    }
                    n += (self.height * self.width) as u64;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if n == 0 {
            return Err(first_error.unwrap_or_else(|| ImageError {
                path: String::new(),
                problem: "no images".into(),
            }));
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / n as f64) as f32).collect();
        let std: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| ((q / n as f64 - f64::from(*m).powi(2)).max(1e-12)).sqrt() as f32)
            .collect();
        Ok((mean, std))
    }
}

/// Reads and decodes a PNG or JPEG file to 8-bit RGB, after checking its header.
pub fn decode_rgb(path: &Path) -> Result<image::RgbImage, ImageError> {
    let err = |problem: String| ImageError {
        path: path.display().to_string(),
        problem,
    };
    let (bytes, format, w, h) = read_checked(path)?;
    let fmt = match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        other => {
            return Err(err(format!(
                "image folders hold PNG or JPEG files; this is {}",
                other.name()
            )))
        }
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w as u32);
    limits.max_image_height = Some(h as u32);
    // The decoded image (up to 16 bits x 4 channels) and the decoder's own buffers.
    limits.max_alloc = Some(w * h * 8 * 2 + (64 << 20));
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| {
        err(format!(
            "cannot decode the {} data ({e}); the file is truncated or corrupt",
            format.name()
        ))
    })?;
    if (u64::from(decoded.width()), u64::from(decoded.height())) != (w, h) {
        return Err(err(format!(
            "decoded to {}x{}, but the header declares {w}x{h}",
            decoded.width(),
            decoded.height()
        )));
    }
    Ok(decoded.into_rgb8())
}

/// `window` of `rgb` resized to `out_w x out_h` with PIL's antialiased bilinear filter.
fn resize(
    rgb: &image::RgbImage,
    window: Window,
    out_w: usize,
    out_h: usize,
) -> Result<Vec<u8>, String> {
    let src = fr::images::ImageRef::new(rgb.width(), rgb.height(), rgb.as_raw(), fr::PixelType::U8x3)
        .map_err(|e| e.to_string())?;
    let mut dst = fr::images::Image::new(out_w as u32, out_h as u32, fr::PixelType::U8x3);
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
        .crop(window.left, window.top, window.width, window.height);
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

/// Interleaved RGB bytes (`w x h`) to planar normalized floats with `channels` (grey by
/// ITU-R BT.601 luma, rounded, as PIL's `convert("L")`), shifted by `(dy, dx)` with black
/// where the shift uncovers the border, and mirrored when `flip`.
///
/// Each channel's 256 possible values are computed once (`(byte / 255 - mean) / std`, the
/// same arithmetic per value as per pixel), so the pixel loop only looks them up.
fn normalize(
    rgb: &[u8],
    (w, h): (usize, usize),
    channels: usize,
    (dy, dx, flip): (isize, isize, bool),
    (mean, std): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let plane = w * h;
    let stat = |v: &[f32], ch: usize| v[ch.min(v.len().saturating_sub(1))];
    let tables: Vec<[f32; 256]> = (0..channels)
        .map(|ch| {
            let (m, s) = (stat(mean, ch), stat(std, ch));
            std::array::from_fn(|byte| (byte as f32 / 255.0 - m) / s)
        })
        .collect();
    // Black is byte 0.
    let black = |out: &mut [f32], o: usize| {
        for (ch, table) in tables.iter().enumerate() {
            out[ch * plane + o] = table[0];
        }
    };
    for y in 0..h {
        let sy = y as isize + dy;
        if sy < 0 || sy >= h as isize {
            for x in 0..w {
                black(out, y * w + x);
            }
            continue;
        }
        let row = &rgb[sy as usize * w * 3..(sy as usize + 1) * w * 3];
        for x in 0..w {
            let o = y * w + x;
            let xm = if flip { w - 1 - x } else { x };
            let sx = xm as isize + dx;
            if sx < 0 || sx >= w as isize {
                black(out, o);
                continue;
            }
            let p = sx as usize * 3;
            if channels == 1 {
                let luma = 0.299 * f32::from(row[p])
                    + 0.587 * f32::from(row[p + 1])
                    + 0.114 * f32::from(row[p + 2]);
                out[o] = tables[0][luma.round().clamp(0.0, 255.0) as usize];
            } else {
                for (ch, table) in tables.iter().enumerate() {
                    out[ch * plane + o] = table[usize::from(row[p + ch])];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_resized_crop_stays_inside_and_in_range() {
        let mut rng = Rng::stream(1, &[]);
        for _ in 0..2000 {
            let win = random_resized_crop(500, 375, &mut rng);
            assert!(win.left >= 0.0 && win.top >= 0.0);
            assert!(win.left + win.width <= 500.0 && win.top + win.height <= 375.0);
            let frac = win.width * win.height / (500.0 * 375.0);
            assert!(frac > 0.07 && frac <= 1.0, "{frac}");
        }
        // A very wide image falls back to the central crop at the largest ratio.
        let mut rng = Rng::stream(2, &[]);
        let fallback = (0..50)
            .map(|_| random_resized_crop(1000, 10, &mut rng))
            .find(|w| w.height == 10.0);
        assert!(fallback.is_some());
    }

    #[test]
    fn center_window_is_torchvisions_resize_then_crop() {
        // 500x375 -> Resize(256) gives 341x256; CenterCrop(224) keeps x 58..282 (Python's
        // round(58.5) is 58), y 16..240.
        let win = center_window(500, 375, 224, 224);
        let s = 375.0 / 256.0;
        assert!((win.top - 16.0 * s).abs() < 1e-9, "{win:?}");
        assert!((win.height - 224.0 * s).abs() < 1e-9);
        assert!((win.left - 58.0 * 500.0 / 341.0).abs() < 1e-9, "{win:?}");
    }

    #[test]
    fn normalizes_shifts_and_flips() {
        // 2x1 image: red, then white.
        let rgb = [255, 0, 0, 255, 255, 255];
        let run = |channels: usize, shift: (isize, isize, bool), m: f32, s: f32| {
            let mut out = vec![0f32; channels * 2];
            normalize(&rgb, (2, 1), channels, shift, (&[m], &[s]), &mut out);
            out
        };
        let px = run(3, (0, 0, false), 0.0, 1.0);
        assert_eq!(px, vec![1.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let flipped = run(3, (0, 0, true), 0.0, 1.0);
        assert_eq!(flipped, vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        let grey = run(1, (0, 1, false), 0.5, 0.5);
        // Shifted by one: the first pixel shows the white one, the second is black.
        assert_eq!(grey, vec![1.0, -1.0]);
    }
}
