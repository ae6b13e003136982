//! `resnetc bench-data DIR [--workers N] [--size S] [--batch-size B] [--batches K]
//! [--augment LIST] [--format text|json]`: the throughput of the image-folder input
//! pipeline alone (read, decode, training augmentation, normalization, batching into
//! tensors), without a network, in images/s.
use super::outln;
use super::train::FolderArgs;
use super::CliError;
use crate::train::loader::{Loader, Prep};
use crate::train::{Augment, DataSource, Split};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image folder (DIR/<class>/*.png|jpg, or DIR/train/<class>/ beside DIR/test/<class>/);
    /// its training part is read.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Side of the square images made (the network's input).
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u64).range(8..=4096))]
    size: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
    batch_size: u64,
    /// Batches to time (default: one pass over the folder).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    batches: Option<u64>,
    /// Training augmentation, as `resnetc train --augment` (default: torchvision's ImageNet
    /// recipe, RandomResizedCrop and horizontal flip).
    #[arg(long, value_name = "LIST", default_value = "rrc,flip")]
    augment: Augment,
    /// 3 for RGB images, 1 for grey.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=3))]
    channels: u64,
    /// Seed of the order and the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    #[command(flatten)]
    folder: FolderArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let listed = Instant::now();
    let source = DataSource::Folder(args.dir.clone());
    let size = args.size as usize;
    let channels = if args.channels == 1 { 1 } else { 3 };
    let mut data = source
        .load(Split::Train, None, (size, size), channels)
        .map_err(|e| CliError::other(format!("cannot read the image folder {source}"), e))?;
    if let Some(f) = data.files.as_mut() {
        f.on_bad = args.folder.on_bad_image;
    }
    let list_seconds = listed.elapsed().as_secs_f64();
    let workers = args.folder.workers();
    let batch_size = args.batch_size as usize;
    let total = data.len();
    let mut order: Vec<usize> = (0..total).collect();
    crate::train::rng::Rng::stream(args.seed, &[crate::train::rng::Purpose::Shuffle as u64, 0])
        .shuffle(&mut order);
    if let Some(k) = args.batches {
        order.truncate((k as usize).saturating_mul(batch_size).min(total));
    }
    let prep = Prep {
        channels,
        height: size,
        width: size,
        augment: args.augment,
        device: tch::Device::Cpu,
        workers,
    };
    let started = Instant::now();
    let (mut images, mut batches, mut skipped) = (0usize, 0usize, 0usize);
    let mut checksum = 0f64;
    for batch in Loader::spawn(Arc::new(data), order, batch_size, prep, (args.seed, 0)) {
        let batch = batch.map_err(|e| CliError::other("preparing a batch failed", e))?;
        images += batch.labels.size()[0] as usize;
        skipped += batch.skipped.len();
        batches += 1;
        // Touch the result, as a training step would.
        checksum += batch.images.f_sum(tch::Kind::Float).and_then(|t| t.f_double_value(&[])).unwrap_or(0.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = images as f64 / seconds.max(1e-9);
    let peak_rss_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);
    if args.format == "json" {
        let json = serde_json::json!({
            "dir": args.dir.display().to_string(),
            "images": images,
            "batches": batches,
            "skipped": skipped,
            "folder_images": total,
            "workers": workers,
            "size": size,
            "batch_size": batch_size,
            "augment": args.augment.to_string(),
            "seconds": seconds,
            "images_per_sec": rate,
            "list_seconds": list_seconds,
            "peak_rss_mib": peak_rss_mib,
            "checksum": checksum,
        });
        outln!("{json}");
    } else {
        outln!(
            "{images} images in {batches} batches of {batch_size} at {size}x{size} ({}), {workers} workers: {rate:.1} images/s ({seconds:.2} s; listing {total} files took {list_seconds:.2} s{})",
            args.augment,
            if skipped > 0 { format!("; {skipped} unreadable images skipped") } else { String::new() }
        );
        if let Some(m) = peak_rss_mib {
            outln!("peak resident memory {m:.0} MiB");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident set (`VmHWM` of /proc/self/status), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
