//! `resnetc bench`: inference throughput (eval mode, random input, random or given weights).
//!
//! Reports the one-time cost (BN folding, weight reordering, layout measurement) apart
//! from the steady state: the median over `--iters` timed forward passes after
//! `--warmup` untimed ones. GFLOP/s counts 2 x MACs (convolutions and `fc` only, the
//! compiler's table). On the CPU it also prints the fraction of the FP32 peak, with how
//! the peak was found ([`crate::runtime::peak`]): measured with an FMA loop on as many
//! threads, or cores x FLOP/cycle x the maximum clock, whichever is larger. A rate above
//! that peak (kernels that multiply less than 2 x MACs, such as Winograd convolutions,
//! or a clock that rose after the measurement) is reported as 100% with a note.

use super::outln;
use super::run::{build_network, compile, DeviceArgs, PassArgs};
use super::CliError;
use crate::ir::Shape;
use crate::runtime::{device, peak, InferenceModel};
use crate::Overrides;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=65536))]
    batch: i64,
    /// Timed forward passes.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100000))]
    iters: u32,
    /// Untimed forward passes after the first call.
    #[arg(long, default_value_t = 3)]
    warmup: u32,
    /// Override the spec's input size, as CxHxW.
    #[arg(long, value_name = "CxHxW", value_parser = super::parse_shape)]
    input: Option<Shape>,
    /// Weights to load (default: the spec's random initialization): safetensors, a PyTorch
    /// checkpoint or Keras 3 weights, as `run` takes them.
    #[arg(long, value_name = "FILE")]
    weights: Option<String>,
    /// Intra-op threads (default: libtorch's, one per core).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1024))]
    threads: Option<i32>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    passes: PassArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let overrides = Overrides {
        input: args.input,
        ..Default::default()
    };
    let Some(compiled) = compile(&args.spec, &overrides)? else {
        return Ok(ExitCode::from(super::EXIT_SPEC));
    };
    let (device, dtype) = args.device.resolve()?;
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    let threads = tch::get_num_threads();
    let net = build_network(&compiled, device, args.weights.as_deref(), false)?;
    let input = compiled.network.input;
    tch::manual_seed(0);
    let x = Tensor::f_randn(
        [args.batch, input.c as i64, input.h as i64, input.w as i64],
        (Kind::Float, device),
    )
    .map_err(ctx("cannot allocate the input batch"))?;

    let opts = args.passes.options(dtype, true);
    let start = Instant::now();
    let fast =
        InferenceModel::new(&net, opts.clone()).map_err(ctx("cannot prepare the network"))?;
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let _ = fast.logits(&x).map_err(ctx("forward pass failed"))?;
    sync();
    let first_call = start.elapsed();
    for _ in 0..args.warmup {
        let _ = fast.logits(&x).map_err(ctx("forward pass failed"))?;
    }
    sync();
    let mut times = Vec::with_capacity(args.iters as usize);
    for _ in 0..args.iters {
        let t = Instant::now();
        let _ = fast.logits(&x).map_err(ctx("forward pass failed"))?;
        sync();
        times.push(t.elapsed());
    }
    times.sort();
    let median = median(&times);
    let secs = median.as_secs_f64();
    let images_per_sec = args.batch as f64 / secs;
    let macs = compiled.network.totals.macs;
    let gflops = 2.0 * macs as f64 * args.batch as f64 / secs / 1e9;
    let peak = if device == Device::Cpu {
        peak::cpu_peak(threads.max(1) as usize)
    } else {
        None
    };
    let fraction = peak.as_ref().map(|p| peak_fraction(gflops, p.gflops));
    let report = fast.report();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if args.format == "json" {
        let candidates: serde_json::Map<String, serde_json::Value> = report
            .candidates
            .iter()
            .map(|(l, d)| (l.clone(), serde_json::json!(ms(*d))))
            .collect();
        let v = serde_json::json!({
            "spec": args.spec,
            "model": compiled.model.name,
            "device": device::device_name(device),
            "dtype": dtype.to_string(),
            "batch": args.batch,
            "input": [input.c, input.h, input.w],
            "threads": threads,
            "iters": args.iters,
            "images_per_sec": images_per_sec,
            "ms_per_batch": ms(median),
            "ms_per_batch_min": ms(times[0]),
            "ms_per_batch_max": ms(times[times.len() - 1]),
            "macs_per_image": macs,
            "gflops_per_sec": gflops,
            "peak_gflops": peak.as_ref().map(|p| p.gflops),
            "peak_fraction": fraction.as_ref().map(|f| f.0),
            "peak_assumption": peak.as_ref().map(|p| p.assumption.clone()),
            "peak_note": fraction.as_ref().and_then(|f| f.1.clone()),
            "first_call_ms": ms(first_call),
            "one_time": {
                "fold_ms": ms(report.fold),
                "layout_prep_ms": ms(report.layout_prep),
                "measure_ms": ms(report.measure),
                "layout": report.layout.map(|l| l.name()),
                "fused": report.fused,
                "candidates_ms": candidates,
                "folded_convs": report.folded,
            },
            "passes": {
                "fold_bn": opts.fold_bn,
                "no_grad": opts.no_grad,
                "memory_format": opts.memory_format.name(),
                "mkldnn": opts.mkldnn,
                "cudnn_benchmark": opts.cudnn_benchmark,
                "fuse": opts.fuse,
                "autocast": opts.autocast,
            },
        });
        outln!("{v}");
        return Ok(ExitCode::SUCCESS);
    }

    outln!(
        "{} ({}), batch {}, input {}x{}x{}, {}, {dtype}, {threads} thread{}",
        compiled.model.name,
        args.spec,
        args.batch,
        input.c,
        input.h,
        input.w,
        device::device_name(device),
        if threads == 1 { "" } else { "s" }
    );
    let layout = report.layout.map_or("-".to_string(), |l| {
        format!("{l}{}", if report.fused { ", fused kernels" } else { "" })
    });
    let measured = if report.candidates.is_empty() {
        String::new()
    } else {
        let c: Vec<String> = report
            .candidates
            .iter()
            .map(|(l, d)| format!("{l} {:.1} ms", ms(*d)))
            .collect();
        format!(" (measured: {})", c.join(", "))
    };
    outln!(
        "  passes: {}{}, layout {layout}{measured}",
        if opts.fold_bn {
            format!("BN folded into {} convs", report.folded)
        } else {
            "no BN folding".into()
        },
        if opts.no_grad { ", no-grad" } else { "" },
    );
    outln!(
        "  one-time: fold {:.1} ms, weight conversion {:.1} ms, layout measurement {:.1} ms; first call {:.1} ms",
        ms(report.fold),
        ms(report.layout_prep),
        ms(report.measure),
        ms(first_call)
    );
    outln!(
        "  steady state ({} iters): {:.2} ms/batch median (min {:.2}, max {:.2}), {:.2} images/s",
        args.iters,
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        images_per_sec
    );
    outln!(
        "  compute: {:.3} GMAC/image = {:.3} GFLOP/image (2 x MACs, conv + fc); {:.1} GFLOP/s",
        macs as f64 / 1e9,
        2.0 * macs as f64 / 1e9,
        gflops
    );
    if let (Some(p), Some((f, note))) = (peak, fraction) {
        outln!(
            "  CPU peak: {:.1} GFLOP/s ({}); {:.1}% of peak",
            p.gflops,
            p.assumption,
            100.0 * f
        );
        if let Some(note) = note {
            outln!("  note: {note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `map_err` adapter: a CLI error saying `what`, caused by the error.
fn ctx<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: &'static str,
) -> impl FnOnce(E) -> CliError {
    move |e| CliError::other(what, e)
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// The fraction of the peak, at most 1, and a note when the measured rate exceeded it.
fn peak_fraction(gflops: f64, peak: f64) -> (f64, Option<String>) {
    let raw = gflops / peak;
    if raw.is_finite() && raw <= 1.0 {
        (raw.max(0.0), None)
    } else {
        let note = format!(
            "the rate is {:.0}% of the estimated peak, which it cannot exceed: the kernels do fewer multiplications than \
             2 x MACs (e.g. Winograd convolutions) or the clock rose after the peak was measured; shown as 100%",
            100.0 * raw
        );
        (1.0, Some(note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fraction_of_the_peak_is_at_most_one() {
        assert_eq!(peak_fraction(50.0, 100.0), (0.5, None));
        let (f, note) = peak_fraction(123.0, 100.0);
        assert_eq!(f, 1.0);
        assert!(note.is_some_and(|n| n.contains("123%")));
        assert_eq!(peak_fraction(1.0, 0.0).0, 1.0);
    }
}
