//! Image decoding and preprocessing for `resnetc predict`.
//!
//! Decoding uses libtorch's bundled stb_image (PNG, JPEG, BMP, TGA, GIF), always to RGB.
//! Preprocessing follows torchvision's ImageNet recipe
//! (`Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)`), scaled to the spec's
//! input: the crop is the spec's `H x W` and the shorter side is first resized to
//! `crop * 256 / 224` (256 for a 224 input). A 1-channel spec gets the image converted
//! to grayscale (ITU-R 601-2 luma, as PIL's `convert("L")`).

use crate::ir::Shape;
use tch::{Kind, TchError, Tensor};

/// torchvision's ImageNet normalization.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet normalization.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// An image that could not be read, decoded or preprocessed.
#[derive(Debug, thiserror::Error)]
#[error("cannot load image `{path}`")]
pub struct ImageError {
    pub path: String,
    #[source]
    pub source: TchError,
}

/// How images become network inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Shorter side after resizing (bilinear with antialiasing, as PIL).
    pub resize: i64,
    /// Center crop height and width.
    pub crop: (i64, i64),
    /// 3 (RGB) or 1 (grayscale).
    pub channels: i64,
    /// Per-channel mean and standard deviation applied after scaling to [0, 1].
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Preprocess {
    /// torchvision's ImageNet preprocessing for a network taking `input`: RGB with
    /// ImageNet's mean/std, or grayscale with their averages (0.449, 0.226) for a 1-channel
    /// input. Other channel counts are rejected by [`Preprocess::check`].
    pub fn imagenet(input: Shape) -> Preprocess {
        let (h, w) = (input.h as i64, input.w as i64);
        let resize = ((h.min(w) as f64) * 256.0 / 224.0).round() as i64;
        let (mean, std) = if input.c == 1 {
            (vec![0.449], vec![0.226])
        } else {
            (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())
        };
        Preprocess { resize, crop: (h, w), channels: input.c as i64, mean, std }
    }

    /// Checks the settings: 1 or 3 channels, one mean and std per channel, std > 0.
    pub fn check(&self) -> Result<(), String> {
        if self.channels != 1 && self.channels != 3 {
            return Err(format!("images can feed 1- or 3-channel networks, this one takes {} channels", self.channels));
        }
        if self.mean.len() != self.channels as usize || self.std.len() != self.channels as usize {
            return Err(format!(
                "need {} mean and std values (one per channel), got {} and {}",
                self.channels,
                self.mean.len(),
                self.std.len()
            ));
        }
        if self.std.iter().any(|&s| s <= 0.0 || !s.is_finite()) || self.mean.iter().any(|m| !m.is_finite()) {
            return Err("std values must be positive and means finite".into());
        }
        if self.resize < 1 || self.crop.0 < 1 || self.crop.1 < 1 {
            return Err("resize and crop sizes must be positive".into());
        }
        Ok(())
    }

    /// Decodes and preprocesses one image file into a `[C, H, W]` f32 tensor.
    pub fn load(&self, path: &str) -> Result<Tensor, ImageError> {
        let err = |source| ImageError { path: path.to_string(), source };
        if let Err(e) = std::fs::metadata(path) {
            return Err(err(TchError::FileFormat(e.to_string())));
        }
        let rgb = tch::vision::image::load(path).map_err(err)?;
        self.apply(&rgb).map_err(err)
    }

    /// Preprocesses a decoded `[3, H, W]` u8 image.
    pub fn apply(&self, rgb: &Tensor) -> Result<Tensor, TchError> {
        let size = rgb.size();
        let &[3, h, w] = size.as_slice() else {
            return Err(TchError::Shape(format!("expected a [3, H, W] image, got {size:?}")));
        };
        if h < 1 || w < 1 {
            return Err(TchError::Shape(format!("empty image {size:?}")));
        }
        // Resize the shorter side (torchvision truncates the longer one).
        let (nh, nw) = if h <= w {
            (self.resize, ((self.resize as f64) * w as f64 / h as f64) as i64)
        } else {
            (((self.resize as f64) * h as f64 / w as f64) as i64, self.resize)
        };
        let x = rgb.f_to_kind(Kind::Float)?.f_unsqueeze(0)?;
        let x = x.f_internal_upsample_bilinear2d_aa([nh.max(1), nw.max(1)], false, None::<f64>, None::<f64>)?;
        // PIL hands back 8-bit pixels.
        let x = x.f_round()?.f_clamp(0.0, 255.0)?.f_squeeze_dim(0)?;
        let x = center_crop(&x, self.crop.0, self.crop.1)?.f_div_scalar(255.0)?;
        let x = if self.channels == 1 {
            let weights = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).f_reshape([3, 1, 1])?;
            x.f_mul(&weights)?.f_sum_dim_intlist([0i64].as_slice(), true, Kind::Float)?
        } else {
            x
        };
        let c = self.channels;
        let mean = Tensor::from_slice(&self.mean).f_to_kind(Kind::Float)?.f_reshape([c, 1, 1])?;
        let std = Tensor::from_slice(&self.std).f_to_kind(Kind::Float)?.f_reshape([c, 1, 1])?;
        x.f_sub(&mean)?.f_div(&std)
    }
}

/// torchvision's `center_crop`: offsets `round((size - crop) / 2)`, zero padding where the
/// image is smaller than the crop.
fn center_crop(x: &Tensor, ch: i64, cw: i64) -> Result<Tensor, TchError> {
    let size = x.size();
    let (h, w) = (size[1], size[2]);
    let (ph, pw) = ((ch - h).max(0), (cw - w).max(0));
    let x = if ph > 0 || pw > 0 {
        x.f_constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])?
    } else {
        x.shallow_clone()
    };
    let size = x.size();
    let (h, w) = (size[1], size[2]);
    let top = ((h - ch) as f64 / 2.0).round() as i64;
    let left = ((w - cw) as f64 / 2.0).round() as i64;
    x.f_narrow(1, top, ch)?.f_narrow(2, left, cw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_recipe_for_224_and_gray() {
        let p = Preprocess::imagenet(Shape::new(3, 224, 224));
        assert_eq!((p.resize, p.crop), (256, (224, 224)));
        assert!(p.check().is_ok());
        let img = Tensor::full([3, 300, 400], 128, (Kind::Uint8, tch::Device::Cpu));
        let x = p.apply(&img).unwrap();
        assert_eq!(x.size(), vec![3, 224, 224]);
        let expect = (128.0 / 255.0 - 0.485) / 0.229;
        assert!((x.double_value(&[0, 100, 100]) - expect).abs() < 1e-5);

        let g = Preprocess::imagenet(Shape::new(1, 28, 28));
        assert_eq!((g.resize, g.crop), (32, (28, 28)));
        let x = g.apply(&img).unwrap();
        assert_eq!(x.size(), vec![1, 28, 28]);
        assert!(Preprocess::imagenet(Shape::new(4, 32, 32)).check().is_err());
    }

    #[test]
    fn missing_and_broken_files_are_errors() {
        let p = Preprocess::imagenet(Shape::new(3, 224, 224));
        let e = p.load("/nonexistent/cat.png").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cat.png"));
        let bad = std::env::temp_dir().join(format!("resnetc-bad-{}.png", std::process::id()));
        std::fs::write(&bad, b"not an image").unwrap();
        assert!(p.load(&bad.display().to_string()).is_err());
        let _ = std::fs::remove_file(bad);
    }
}
