//! Image decoding and preprocessing for `resnetc predict`.
//!
//! Decoding uses libtorch's bundled stb_image (PNG, JPEG, BMP, TGA, GIF), always to RGB.
//! Preprocessing follows torchvision's ImageNet recipe
//! (`Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)`), scaled to the spec's
//! input: the crop is the spec's `H x W` and the shorter side is first resized to
//! `crop * 256 / 224` (256 for a 224 input). A 1-channel spec gets the image converted
//! to grayscale (ITU-R 601-2 luma, as PIL's `convert("L")`).

use crate::ir::Shape;
use std::path::Path;
use tch::{Kind, TchError, Tensor};

/// torchvision's ImageNet normalization.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet normalization.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// An image that could not be read, decoded or preprocessed.
#[derive(Debug, thiserror::Error)]
#[error("cannot load image `{path}`: {problem}")]
pub struct ImageError {
    pub path: String,
    /// What is wrong, with the fix where there is one.
    pub problem: String,
}

/// The largest image file read: 256 MiB.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
/// The most pixels an image may declare (8192 x 8192, the compiler's limit on an input's
/// height x width); checked from the file's header, before decoding allocates anything.
pub const MAX_IMAGE_PIXELS: u64 = crate::ir::Limits::MAX_PIXELS;

/// The image formats read (those of libtorch's bundled stb_image that resnetc accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Bmp,
    Gif,
    Tga,
}

impl ImageFormat {
    /// The format a file name's extension promises, if it is one of the formats read.
    pub fn from_extension(path: &Path) -> Option<ImageFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "png" => ImageFormat::Png,
            "jpg" | "jpeg" | "jpe" | "jfif" => ImageFormat::Jpeg,
            "bmp" | "dib" => ImageFormat::Bmp,
            "gif" => ImageFormat::Gif,
            "tga" | "tpic" => ImageFormat::Tga,
            _ => return None,
        })
    }

    /// The format of `bytes`, from its signature (TGA has none).
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageFormat::Gif)
        } else if bytes.starts_with(b"BM") {
            Some(ImageFormat::Bmp)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Gif => "GIF",
            ImageFormat::Tga => "TGA",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => ".png",
            ImageFormat::Jpeg => ".jpg",
            ImageFormat::Bmp => ".bmp",
            ImageFormat::Gif => ".gif",
            ImageFormat::Tga => ".tga",
        }
    }

    /// Width and height as the header states them; `None` if the header is cut short or
    /// malformed.
    pub fn dimensions(self, b: &[u8]) -> Option<(u64, u64)> {
        let be16 = |i: usize| {
            b.get(i..i + 2)
                .map(|s| u16::from_be_bytes([s[0], s[1]]) as u64)
        };
        let le16 = |i: usize| {
            b.get(i..i + 2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
        };
        let be32 = |i: usize| {
            b.get(i..i + 4)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
        };
        let le32 = |i: usize| {
            b.get(i..i + 4)
                .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        match self {
            ImageFormat::Png => (b.get(12..16)? == b"IHDR")
                .then_some(())
                .and_then(|_| Some((be32(16)?, be32(20)?))),
            ImageFormat::Gif => Some((le16(6)?, le16(8)?)),
            ImageFormat::Bmp => {
                if le32(14)? == 12 {
                    Some((le16(18)?, le16(20)?))
                } else {
                    // Height is negative for top-down rows.
                    Some((
                        le32(18)?.unsigned_abs() as u64,
                        le32(22)?.unsigned_abs() as u64,
                    ))
                }
            }
            ImageFormat::Tga => {
                // Colour-mapped, true-colour or grey; raw or run-length encoded.
                if !matches!(b.get(2)?, 1 | 2 | 3 | 9 | 10 | 11) || b.len() < 18 {
                    return None;
                }
                Some((le16(12)?, le16(14)?))
            }
            ImageFormat::Jpeg => {
                // Walk the marker segments to the first start-of-frame.
                let mut i = 2;
                loop {
                    while *b.get(i)? != 0xff {
                        i += 1;
                    }
                    while *b.get(i)? == 0xff {
                        i += 1;
                    }
                    let marker = *b.get(i)?;
                    i += 1;
                    if marker == 0x01 || (0xd0..=0xd9).contains(&marker) {
                        continue;
                    }
                    let len = be16(i)? as usize;
                    let is_sof =
                        (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
                    if is_sof {
                        return Some((be16(i + 5)?, be16(i + 3)?));
                    }
                    if len < 2 {
                        return None;
                    }
                    i += len;
                }
            }
        }
    }
}

/// Reads and decodes an image file into a `[3, H, W]` u8 tensor (RGB), refusing what is
/// not an image of a format read, an image whose content is another format than its
/// extension says, a file over [`MAX_IMAGE_FILE_BYTES`] and an image declaring more than
/// [`MAX_IMAGE_PIXELS`] pixels, before decoding.
pub fn decode(path: &Path) -> Result<Tensor, ImageError> {
    let err = |problem: String| ImageError {
        path: path.display().to_string(),
        problem,
    };
    let (bytes, format, w, h) = read_checked(path)?;
    let hwc = tch::vision::image::load_from_memory(&bytes).map_err(|e| {
        err(format!(
            "cannot decode the {} data ({}); the file is truncated or corrupt",
            format.name(),
            stb_reason(&e)
        ))
    })?;
    let size = hwc.size();
    if size != [3, h as i64, w as i64] {
        return Err(err(format!(
            "decoded to shape {size:?}, but the header declares {w}x{h}"
        )));
    }
    Ok(hwc)
}

/// Reads an image file of at most [`MAX_IMAGE_FILE_BYTES`] and checks its header
/// ([`check_header`]): its bytes, format and declared width and height.
pub fn read_checked(path: &Path) -> Result<(Vec<u8>, ImageFormat, u64, u64), ImageError> {
    let bytes = crate::files::read_bounded(path, MAX_IMAGE_FILE_BYTES).map_err(|e| ImageError {
        path: path.display().to_string(),
        problem: e.to_string(),
    })?;
    let (format, w, h) = check_header(path, &bytes)?;
    Ok((bytes, format, w, h))
}

/// Checks an image file's bytes before anything decodes them: not empty, of a format read,
/// the format its extension promises, and a header declaring a non-empty image of at most
/// [`MAX_IMAGE_PIXELS`] pixels. Returns the format and the declared width and height.
pub fn check_header(path: &Path, bytes: &[u8]) -> Result<(ImageFormat, u64, u64), ImageError> {
    let err = |problem: String| ImageError {
        path: path.display().to_string(),
        problem,
    };
    if bytes.is_empty() {
        return Err(err("the file is empty (0 bytes)".into()));
    }
    let promised = ImageFormat::from_extension(path);
    let format = match (ImageFormat::sniff(bytes), promised) {
        (Some(found), Some(ext)) if found != ext => {
            return Err(err(format!(
                "the file holds a {} image, not {} as its extension says; rename it to {}",
                found.name(),
                ext.name(),
                found.extension()
            )))
        }
        (Some(found), _) => found,
        (None, Some(ImageFormat::Tga)) => ImageFormat::Tga,
        (None, Some(ext)) => return Err(err(format!("the file is not a {} image (its first bytes are {})", ext.name(), show_start(bytes)))),
        (None, None) => {
            return Err(err(format!(
                "the file is not an image in a format resnetc reads (PNG, JPEG, BMP, GIF, TGA); its first bytes are {}",
                show_start(bytes)
            )))
        }
    };
    let Some((w, h)) = format.dimensions(bytes) else {
        return Err(err(format!(
            "the {} header is truncated or malformed",
            format.name()
        )));
    };
    if w == 0 || h == 0 {
        return Err(err(format!(
            "the {} header declares an empty image ({w}x{h})",
            format.name()
        )));
    }
    if w * h > MAX_IMAGE_PIXELS {
        return Err(err(format!(
            "the {} header declares {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS} (8192x8192) resnetc decodes; scale the image down first",
            format.name()
        )));
    }
    Ok((format, w, h))
}

/// stb_image's reason without tch's "Internal torch error:" prefix and C++ backtrace.
fn stb_reason(e: &TchError) -> String {
    let text = e.to_string();
    let text = text.strip_prefix("Internal torch error: ").unwrap_or(&text);
    format!("stb_image: {}", text.lines().next().unwrap_or("").trim())
}

/// The first bytes of a file as text if they are printable ASCII, else in hex.
fn show_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(8)];
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("`{}`", String::from_utf8_lossy(head))
    } else {
        head.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
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
        Preprocess {
            resize,
            crop: (h, w),
            channels: input.c as i64,
            mean,
            std,
        }
    }

    /// Checks the settings: 1 or 3 channels, one mean and std per channel, std > 0.
    pub fn check(&self) -> Result<(), String> {
        if self.channels != 1 && self.channels != 3 {
            return Err(format!(
                "images can feed 1- or 3-channel networks, this one takes {} channels",
                self.channels
            ));
        }
        if self.mean.len() != self.channels as usize || self.std.len() != self.channels as usize {
            return Err(format!(
                "need {} mean and std values (one per channel), got {} and {}",
                self.channels,
                self.mean.len(),
                self.std.len()
            ));
        }
        if self.std.iter().any(|&s| s <= 0.0 || !s.is_finite())
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err("std values must be positive and means finite".into());
        }
        if self.resize < 1 || self.crop.0 < 1 || self.crop.1 < 1 {
            return Err("resize and crop sizes must be positive".into());
        }
        Ok(())
    }

    /// Decodes and preprocesses one image file into a `[C, H, W]` f32 tensor.
    pub fn load(&self, path: &str) -> Result<Tensor, ImageError> {
        let rgb = decode(Path::new(path))?;
        self.apply(&rgb).map_err(|e| ImageError {
            path: path.to_string(),
            problem: format!("preprocessing failed ({e})"),
        })
    }

    /// Preprocesses a decoded `[3, H, W]` u8 image.
    pub fn apply(&self, rgb: &Tensor) -> Result<Tensor, TchError> {
        let size = rgb.size();
        let &[3, h, w] = size.as_slice() else {
            return Err(TchError::Shape(format!(
                "expected a [3, H, W] image, got {size:?}"
            )));
        };
        if h < 1 || w < 1 {
            return Err(TchError::Shape(format!("empty image {size:?}")));
        }
        // Resize the shorter side (torchvision truncates the longer one).
        let (nh, nw) = if h <= w {
            (
                self.resize,
                ((self.resize as f64) * w as f64 / h as f64) as i64,
            )
        } else {
            (
                ((self.resize as f64) * h as f64 / w as f64) as i64,
                self.resize,
            )
        };
        let x = rgb.f_to_kind(Kind::Float)?.f_unsqueeze(0)?;
        let x = x.f_internal_upsample_bilinear2d_aa(
            [nh.max(1), nw.max(1)],
            false,
            None::<f64>,
            None::<f64>,
        )?;
        // PIL hands back 8-bit pixels.
        let x = x.f_round()?.f_clamp(0.0, 255.0)?.f_squeeze_dim(0)?;
        let x = center_crop(&x, self.crop.0, self.crop.1)?.f_div_scalar(255.0)?;
        let x = if self.channels == 1 {
            let weights = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).f_reshape([3, 1, 1])?;
            x.f_mul(&weights)?
                .f_sum_dim_intlist([0i64].as_slice(), true, Kind::Float)?
        } else {
            x
        };
        let c = self.channels;
        let mean = Tensor::from_slice(&self.mean)
            .f_to_kind(Kind::Float)?
            .f_reshape([c, 1, 1])?;
        let std = Tensor::from_slice(&self.std)
            .f_to_kind(Kind::Float)?
            .f_reshape([c, 1, 1])?;
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
    fn dimensions_from_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(640u32.to_be_bytes());
        png.extend(480u32.to_be_bytes());
        assert_eq!(ImageFormat::sniff(&png), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::Png.dimensions(&png), Some((640, 480)));
        assert_eq!(ImageFormat::Png.dimensions(&png[..20]), None);
        // SOI, an APP0 segment of 4 bytes, a restart marker, then SOF2 (progressive).
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2, 0xff, 0xd0, 0xff, 0xc2, 0, 11, 8, 0, 30, 0, 40, 3,
        ];
        assert_eq!(ImageFormat::sniff(&jpeg), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::Jpeg.dimensions(&jpeg), Some((40, 30)));
        assert_eq!(ImageFormat::Jpeg.dimensions(&jpeg[..12]), None);
        // A DHT segment (0xc4) is not a frame header.
        let dht = [
            0xff, 0xd8, 0xff, 0xc4, 0, 2, 0xff, 0xc0, 0, 11, 8, 0, 5, 0, 6, 3,
        ];
        assert_eq!(ImageFormat::Jpeg.dimensions(&dht), Some((6, 5)));
        let gif = b"GIF89a\x10\x00\x20\x00";
        assert_eq!(ImageFormat::Gif.dimensions(gif), Some((16, 32)));
        let mut bmp = b"BM".to_vec();
        bmp.extend([0u8; 12]);
        bmp.extend(40u32.to_le_bytes());
        bmp.extend(7i32.to_le_bytes());
        bmp.extend((-9i32).to_le_bytes());
        assert_eq!(ImageFormat::Bmp.dimensions(&bmp), Some((7, 9)));
        let mut tga = vec![0u8, 0, 2];
        tga.extend([0u8; 9]);
        tga.extend(5u16.to_le_bytes());
        tga.extend(6u16.to_le_bytes());
        tga.extend([24, 0]);
        assert_eq!(ImageFormat::Tga.dimensions(&tga), Some((5, 6)));
        tga[2] = 77;
        assert_eq!(ImageFormat::Tga.dimensions(&tga), None);
        assert_eq!(
            ImageFormat::from_extension(Path::new("a/B.JPEG")),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::from_extension(Path::new("a/b.webp")), None);
    }

    #[test]
    fn missing_and_broken_files_are_errors() {
        let p = Preprocess::imagenet(Shape::new(3, 224, 224));
        let e = p.load("/nonexistent/cat.png").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cat.png"));
        let mut bad = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
        std::io::Write::write_all(&mut bad, b"not an image").unwrap();
        assert!(p.load(&bad.path().display().to_string()).is_err());
    }
}
