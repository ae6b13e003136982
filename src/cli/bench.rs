//! `resnetc bench`: inference throughput (eval mode, random input, random or given weights).
//!
//! Reports the one-time cost (BN folding, weight reordering, layout measurement) apart
//! from the steady state: the median over `--iters` timed forward passes after
//! `--warmup` untimed ones. GFLOP/s counts 2 x MACs (convolutions and `fc` only, the
//! compiler's table). On the CPU it also prints the fraction of the FP32 peak, with the
//! assumption spelled out: cores x FLOP/cycle (32 with AVX2+FMA, 64 with AVX-512) x clock.

use super::run::{build_network, compile, DeviceArgs, PassArgs};
use super::CliError;
use crate::ir::Shape;
use crate::runtime::{device, InferenceModel};
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
    /// Weights to load (default: the spec's random initialization).
    #[arg(long, value_name = "W.safetensors")]
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
    let overrides = Overrides { input: args.input, ..Default::default() };
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
    let x = Tensor::f_randn([args.batch, input.c as i64, input.h as i64, input.w as i64], (Kind::Float, device))
        .map_err(ctx("cannot allocate the input batch"))?;

    let opts = args.passes.options(dtype, true);
    let start = Instant::now();
    let fast = InferenceModel::new(&net, opts.clone()).map_err(ctx("cannot prepare the network"))?;
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
    let peak = (device == Device::Cpu).then(|| cpu_peak(threads));
    let report = fast.report();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if args.format == "json" {
        let candidates: serde_json::Map<String, serde_json::Value> =
            report.candidates.iter().map(|(l, d)| (l.clone(), serde_json::json!(ms(*d)))).collect();
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
            "peak_fraction": peak.as_ref().map(|p| gflops / p.gflops),
            "peak_assumption": peak.as_ref().map(|p| p.assumption.clone()),
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
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }

    println!(
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
    let layout = report.layout.map_or("-".to_string(), |l| format!("{l}{}", if report.fused { ", fused kernels" } else { "" }));
    let measured = if report.candidates.is_empty() {
        String::new()
    } else {
        let c: Vec<String> = report.candidates.iter().map(|(l, d)| format!("{l} {:.1} ms", ms(*d))).collect();
        format!(" (measured: {})", c.join(", "))
    };
    println!(
        "  passes: {}{}, layout {layout}{measured}",
        if opts.fold_bn { format!("BN folded into {} convs", report.folded) } else { "no BN folding".into() },
        if opts.no_grad { ", no-grad" } else { "" },
    );
    println!(
        "  one-time: fold {:.1} ms, weight conversion {:.1} ms, layout measurement {:.1} ms; first call {:.1} ms",
        ms(report.fold),
        ms(report.layout_prep),
        ms(report.measure),
        ms(first_call)
    );
    println!(
        "  steady state ({} iters): {:.2} ms/batch median (min {:.2}, max {:.2}), {:.2} images/s",
        args.iters,
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        images_per_sec
    );
    println!(
        "  compute: {:.3} GMAC/image = {:.3} GFLOP/image (2 x MACs, conv + fc); {:.1} GFLOP/s",
        macs as f64 / 1e9,
        2.0 * macs as f64 / 1e9,
        gflops
    );
    if let Some(p) = peak {
        println!("  CPU peak: {} = {:.1} GFLOP/s; {:.1}% of peak", p.assumption, p.gflops, 100.0 * gflops / p.gflops);
    }
    Ok(ExitCode::SUCCESS)
}

/// `map_err` adapter: a CLI error saying `what`, caused by the error.
fn ctx<E: Into<Box<dyn std::error::Error + Send + Sync>>>(what: &'static str) -> impl FnOnce(E) -> CliError {
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

/// The CPU's FP32 peak and how it was derived.
struct Peak {
    gflops: f64,
    assumption: String,
}

/// cores x FP32 FLOP/cycle x clock. FLOP/cycle assumes two FMA units per core: 2 x 2 x 8
/// = 32 with AVX2+FMA, 64 with AVX-512, 16 with SSE/AVX only. The clock is the first
/// `cpu MHz` of /proc/cpuinfo (the current or nominal clock; boost can exceed it).
fn cpu_peak(threads: i32) -> Peak {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let (per_cycle, isa) = if has("avx512f") {
        (64.0, "AVX-512")
    } else if has("avx2") && has("fma") {
        (32.0, "AVX2+FMA")
    } else {
        (16.0, "no FMA")
    };
    let (mhz, clock_src) = match field("cpu MHz").and_then(|v| v.parse::<f64>().ok()) {
        Some(m) if m > 0.0 => (m, "/proc/cpuinfo cpu MHz"),
        _ => (2450.0, "assumed, /proc/cpuinfo has no clock"),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(threads.max(1) as usize);
    let gflops = cores as f64 * per_cycle * mhz / 1e3;
    Peak {
        gflops,
        assumption: format!(
            "{cores} core{} x {per_cycle:.0} FP32 FLOP/cycle ({isa}, 2 FMA units) x {:.3} GHz ({clock_src})",
            if cores == 1 { "" } else { "s" },
            mhz / 1e3
        ),
    }
}
