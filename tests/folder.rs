//! Image folders read as a stream (`src/train/folder.rs`, the loader's workers), on files
//! made on the spot by Pillow in resnetc's venv: JPEGs and PNGs of several sizes, grey,
//! CMYK and RGBA images, a corrupt file, an empty class folder, mismatched classes.
//!
//! - Every image decodes to what Pillow decodes (`convert("RGB")`), CMYK included, within
//!   JPEG decoders' rounding.
//! - The batches are the same with 1 and 3 workers, for training (RandomResizedCrop and
//!   flip) and evaluation transforms; seeds and epochs change them.
//! - A corrupt file stops the pass naming it, or is skipped and counted on request; an
//!   empty class folder and mismatched train/test classes are refused naming the folder.
//! - `resnetc bench-data` reports images/s, and peak memory as JSON.
#![cfg(feature = "torch")]

mod common;

use resnetc::train::folder::{decode_rgb, OnBadImage};
use resnetc::train::loader::{Augment, Loader, Prep};
use resnetc::train::{DataError, DataSource, Dataset, Split};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Makes `root/{train,test}/<class>/` with Pillow, and `root/pil/<name>.rgb`: Pillow's RGB
/// decode of each image, as raw bytes, with `root/pil/<name>.size` = "W H".
const MAKE: &str = r#"
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
def photo(w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(0.03 * xx + k) * np.cos(0.02 * yy + k) for k in range(3)], -1)
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
os.makedirs(os.path.join(root, "pil"))
n = 0
for split, count in (("train", 6), ("test", 2)):
    for c, cls in enumerate(("bird", "cat", "dog")):
        d = os.path.join(root, split, cls)
        os.makedirs(d)
        for i in range(count):
            kind = (n + c) % 5
            w, h = [(500, 375), (64, 48), (31, 97), (120, 120), (77, 40)][n % 5]
            im = Image.fromarray(photo(w, h))
            name = f"{split}-{cls}-{i}"
            if kind == 0:
                path = os.path.join(d, name + ".jpg"); im.save(path, quality=92)
            elif kind == 1:
                path = os.path.join(d, name + ".png"); im.save(path)
            elif kind == 2:
                path = os.path.join(d, name + ".jpg"); im.convert("L").save(path, quality=92)
            elif kind == 3:
                path = os.path.join(d, name + ".jpg"); im.convert("CMYK").save(path, quality=92)
            else:
                path = os.path.join(d, name + ".png"); im.putalpha(200); im.save(path)
            rgb = Image.open(path).convert("RGB")
            with open(os.path.join(root, "pil", name + ".rgb"), "wb") as f:
                f.write(rgb.tobytes())
            with open(os.path.join(root, "pil", name + ".size"), "w") as f:
                f.write(f"{rgb.size[0]} {rgb.size[1]}")
            n += 1
"#;

fn make_folder(root: &Path) {
    let out = Command::new(common::venv_python())
        .args(["-c", MAKE])
        .arg(root)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn load(root: &Path, split: Split, size: usize) -> Dataset {
    DataSource::Folder(root.to_path_buf())
        .load(split, None, (size, size), 3)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every batch of one pass as flat values and labels.
fn pass(data: &Dataset, workers: usize, augment: Augment, stream: (u64, u64)) -> Vec<(Vec<f32>, Vec<i64>)> {
    let prep = Prep {
        channels: 3,
        height: 32,
        width: 32,
        augment,
        device: tch::Device::Cpu,
        workers,
    };
    let order: Vec<usize> = (0..data.len()).rev().collect();
    Loader::spawn(Arc::new(data.clone()), order, 4, prep, stream)
        .map(|b| {
            let b = b.unwrap_or_else(|e| panic!("{e}"));
            (
                Vec::<f32>::try_from(b.images.flatten(0, -1)).unwrap(),
                Vec::<i64>::try_from(&b.labels).unwrap(),
            )
        })
        .collect()
}

#[test]
fn folders_decode_as_pillow_and_batch_the_same_with_any_workers() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());

    // Decoding: JPEG (RGB, grey, CMYK) and PNG (RGB, RGBA) against Pillow.
    let mut worst = 0f64;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path().join("pil")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rgb") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let mut parts = name.splitn(3, '-');
            let (split, class) = (parts.next().unwrap(), parts.next().unwrap());
            let folder = dir.path().join(split).join(class);
            let image = ["jpg", "png"]
                .iter()
                .map(|e| folder.join(format!("{name}.{e}")))
                .find(|p| p.exists())
                .unwrap();
            let ours = decode_rgb(&image).unwrap_or_else(|e| panic!("{e}"));
            let pil = std::fs::read(&path).unwrap();
            let size = std::fs::read_to_string(path.with_extension("size")).unwrap();
            assert_eq!(format!("{} {}", ours.width(), ours.height()), size, "{}", image.display());
            let mean_abs = ours
                .as_raw()
                .iter()
                .zip(&pil)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .sum::<f64>()
                / pil.len() as f64;
            assert!(mean_abs < 2.0, "{}: mean |ours - Pillow| = {mean_abs}", image.display());
            worst = worst.max(mean_abs);
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
    println!("decoded {checked} images; largest mean |ours - Pillow| per image: {worst:.3}");

    // The batches do not depend on the number of workers; seeds and epochs change them.
    let train = load(dir.path(), Split::Train, 32);
    assert_eq!((train.len(), train.classes.clone()), (18, vec!["bird".into(), "cat".into(), "dog".into()]));
    let imagenet: Augment = "imagenet".parse().unwrap();
    let one = pass(&train, 1, imagenet, (7, 0));
    assert_eq!(one.len(), 5);
    assert_eq!(one, pass(&train, 3, imagenet, (7, 0)));
    assert_ne!(one, pass(&train, 3, imagenet, (7, 1)));
    assert_ne!(one, pass(&train, 1, imagenet, (8, 0)));
    let plain = pass(&train, 1, Augment::default(), (0, 0));
    assert_eq!(plain, pass(&train, 3, Augment::default(), (5, 5)), "evaluation draws nothing");
    assert!(one.iter().flat_map(|b| &b.0).all(|v| v.is_finite()));

    // A corrupt file: fatal by default, naming it; skipped and counted on request.
    let bad = dir.path().join("train/cat/zz-truncated.jpg");
    let good = std::fs::read(dir.path().join("train/cat/train-cat-0.jpg"))
        .or_else(|_| std::fs::read(dir.path().join("pil/train-cat-0.rgb")))
        .unwrap();
    std::fs::write(&bad, &good[..good.len().min(300)]).unwrap();
    let mut train = load(dir.path(), Split::Train, 32);
    assert_eq!(train.len(), 19);
    let prep = Prep {
        channels: 3,
        height: 32,
        width: 32,
        augment: Augment::default(),
        device: tch::Device::Cpu,
        workers: 2,
    };
    let order: Vec<usize> = (0..train.len()).collect();
    let err = Loader::spawn(Arc::new(train.clone()), order.clone(), 8, prep.clone(), (0, 0))
        .find_map(Result::err)
        .expect("the corrupt file stops the pass");
    let text = err.to_string();
    assert!(text.contains("zz-truncated.jpg") && text.contains("--on-bad-image skip"), "{text}");
    train.files.as_mut().unwrap().on_bad = OnBadImage::Skip;
    let (mut n, mut skipped) = (0, 0);
    for b in Loader::spawn(Arc::new(train), order, 8, prep, (0, 0)) {
        let b = b.unwrap();
        n += b.labels.size()[0];
        skipped += b.skipped.len();
        if let Some(e) = b.skipped.first() {
            assert!(e.path.ends_with("zz-truncated.jpg"), "{e}");
        }
    }
    assert_eq!((n, skipped), (18, 1));
}

#[test]
fn empty_and_mismatched_class_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write_png = |p: &Path| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let img = tch::Tensor::full([3, 4, 4], 7, (tch::Kind::Uint8, tch::Device::Cpu));
        tch::vision::image::save(&img, p).unwrap();
    };
    write_png(&dir.path().join("train/cat/a.png"));
    write_png(&dir.path().join("train/dog/a.png"));
    write_png(&dir.path().join("test/cat/a.png"));
    write_png(&dir.path().join("test/fox/a.png"));
    let err = DataSource::Folder(dir.path().to_path_buf())
        .load(Split::Train, None, (8, 8), 3)
        .unwrap_err();
    assert!(matches!(err, DataError::ClassMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("fox") && text.contains("dog"), "{text}");

    std::fs::create_dir_all(dir.path().join("flat/cat")).unwrap();
    write_png(&dir.path().join("flat/cat/a.png"));
    std::fs::create_dir_all(dir.path().join("flat/dog")).unwrap();
    // Hidden folders are not classes.
    std::fs::create_dir_all(dir.path().join("flat/.cache")).unwrap();
    let err = DataSource::Folder(dir.path().join("flat"))
        .load(Split::Train, None, (8, 8), 3)
        .unwrap_err();
    assert!(matches!(&err, DataError::EmptyClass { path } if path.ends_with("dog")), "{err}");
}

#[test]
fn bench_data_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(["bench-data"])
        .arg(dir.path())
        .args(["--size", "32", "--batch-size", "4", "--workers", "2", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["images"], 18);
    assert_eq!(j["batches"], 5);
    assert!(j["images_per_sec"].as_f64().unwrap() > 0.0);
    assert!(j["peak_rss_mib"].as_f64().unwrap() > 0.0);
}
