//! The CPU's FP32 peak for `resnetc bench`: measured, and from the core's maximum clock.
//!
//! The measurement runs, on each of the benchmark's threads at once, a loop of twelve
//! independent chains of fused multiply-adds in the widest vector registers the CPU has
//! (AVX-512 or AVX2+FMA): twelve chains cover the latency of two FMA units (4 to 5
//! cycles each), so the loop issues FMAs as fast as the cores can, at the clock they
//! reach under that load. The theoretical figure is cores x FLOP/cycle x the maximum
//! clock from cpufreq (`cpuinfo_max_freq`), when the system exposes it. The peak divided
//! by is the larger of the two, so it is never below what the machine was seen to do.
//! (`/proc/cpuinfo`'s `cpu MHz` is the current or base clock, which boost exceeds: it is
//! not used.)

use std::time::{Duration, Instant};

/// The peak and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuPeak {
    /// FP32 GFLOP/s.
    pub gflops: f64,
    /// How `gflops` was derived, in words.
    pub assumption: String,
}

/// The vector instructions used by the measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FmaIsa {
    /// 512-bit registers, 16 f32 lanes.
    Avx512,
    /// 256-bit registers, 8 f32 lanes.
    Avx2Fma,
}

impl FmaIsa {
    /// The widest FMA instructions this CPU and OS support, if any.
    pub fn detect() -> Option<FmaIsa> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Some(FmaIsa::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Some(FmaIsa::Avx2Fma);
            }
        }
        None
    }

    fn name(self) -> &'static str {
        match self {
            FmaIsa::Avx512 => "AVX-512",
            FmaIsa::Avx2Fma => "AVX2+FMA",
        }
    }

    /// FP32 FLOP per iteration of the loop: 12 FMAs x lanes x 2.
    fn flop_per_iteration(self) -> f64 {
        match self {
            FmaIsa::Avx512 => 12.0 * 16.0 * 2.0,
            FmaIsa::Avx2Fma => 12.0 * 8.0 * 2.0,
        }
    }

    /// FP32 FLOP per cycle of a core with two FMA units.
    fn flop_per_cycle(self) -> f64 {
        match self {
            FmaIsa::Avx512 => 64.0,
            FmaIsa::Avx2Fma => 32.0,
        }
    }
}

/// Iterations of one call of the loop (about a millisecond).
const CHUNK: u64 = 200_000;

/// Runs `iterations` of the 12-chain FMA loop. Written in assembly so that its speed does
/// not depend on the optimization level of the build.
#[cfg(target_arch = "x86_64")]
fn fma_loop(isa: FmaIsa, iterations: u64) {
    if iterations == 0 {
        return;
    }
    match isa {
        // SAFETY: `FmaIsa` values come from `FmaIsa::detect`, which checked at run time
        // that the CPU and the OS support these instructions (AVX-512F, or AVX2 and FMA).
        // The assembly touches only registers it declares: rcx (the counter) and the
        // vector registers, all caller-saved and so clobbered by `clobber_abi("C")`; the
        // upper halves of zmm0-15/ymm0-15, which the compiler does not use without those
        // features enabled, are cleared by `vzeroupper` before returning. It reads and
        // writes no memory and does not touch the stack. (Assembly rather than
        // `#[target_feature]` intrinsics: AVX-512 target features need Rust 1.89, above
        // this crate's minimum version.)
        FmaIsa::Avx512 => unsafe {
            std::arch::asm!(
                "vxorps xmm12, xmm12, xmm12",
                "vxorps xmm13, xmm13, xmm13",
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "vxorps xmm4, xmm4, xmm4",
                "vxorps xmm5, xmm5, xmm5",
                "vxorps xmm6, xmm6, xmm6",
                "vxorps xmm7, xmm7, xmm7",
                "vxorps xmm8, xmm8, xmm8",
                "vxorps xmm9, xmm9, xmm9",
                "vxorps xmm10, xmm10, xmm10",
                "vxorps xmm11, xmm11, xmm11",
                "2:",
                "vfmadd231ps zmm0, zmm12, zmm13",
                "vfmadd231ps zmm1, zmm12, zmm13",
                "vfmadd231ps zmm2, zmm12, zmm13",
                "vfmadd231ps zmm3, zmm12, zmm13",
                "vfmadd231ps zmm4, zmm12, zmm13",
                "vfmadd231ps zmm5, zmm12, zmm13",
                "vfmadd231ps zmm6, zmm12, zmm13",
                "vfmadd231ps zmm7, zmm12, zmm13",
                "vfmadd231ps zmm8, zmm12, zmm13",
                "vfmadd231ps zmm9, zmm12, zmm13",
                "vfmadd231ps zmm10, zmm12, zmm13",
                "vfmadd231ps zmm11, zmm12, zmm13",
                "dec rcx",
                "jnz 2b",
                "vzeroupper",
                inout("rcx") iterations => _,
                clobber_abi("C"),
                options(nostack, nomem),
            );
        },
        // SAFETY: as above, for AVX2 and FMA on ymm0-13.
        FmaIsa::Avx2Fma => unsafe {
            std::arch::asm!(
                "vxorps xmm12, xmm12, xmm12",
                "vxorps xmm13, xmm13, xmm13",
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "vxorps xmm4, xmm4, xmm4",
                "vxorps xmm5, xmm5, xmm5",
                "vxorps xmm6, xmm6, xmm6",
                "vxorps xmm7, xmm7, xmm7",
                "vxorps xmm8, xmm8, xmm8",
                "vxorps xmm9, xmm9, xmm9",
                "vxorps xmm10, xmm10, xmm10",
                "vxorps xmm11, xmm11, xmm11",
                "2:",
                "vfmadd231ps ymm0, ymm12, ymm13",
                "vfmadd231ps ymm1, ymm12, ymm13",
                "vfmadd231ps ymm2, ymm12, ymm13",
                "vfmadd231ps ymm3, ymm12, ymm13",
                "vfmadd231ps ymm4, ymm12, ymm13",
                "vfmadd231ps ymm5, ymm12, ymm13",
                "vfmadd231ps ymm6, ymm12, ymm13",
                "vfmadd231ps ymm7, ymm12, ymm13",
                "vfmadd231ps ymm8, ymm12, ymm13",
                "vfmadd231ps ymm9, ymm12, ymm13",
                "vfmadd231ps ymm10, ymm12, ymm13",
                "vfmadd231ps ymm11, ymm12, ymm13",
                "dec rcx",
                "jnz 2b",
                "vzeroupper",
                inout("rcx") iterations => _,
                clobber_abi("C"),
                options(nostack, nomem),
            );
        },
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_loop(_isa: FmaIsa, _iterations: u64) {}

/// Measures the FP32 FMA throughput of `threads` threads running the loop at once for
/// about `duration` (three rounds; the best counts). `None` without AVX2+FMA or AVX-512.
pub fn measure_fma(threads: usize, duration: Duration) -> Option<(f64, FmaIsa)> {
    let isa = FmaIsa::detect()?;
    let threads = threads.max(1);
    let round = duration / 3;
    let mut best = 0.0f64;
    for _ in 0..3 {
        let barrier = std::sync::Barrier::new(threads);
        let (iterations, elapsed) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < round {
                            fma_loop(isa, CHUNK);
                            n += CHUNK;
                        }
                        (n, start.elapsed())
                    })
                })
                .collect();
            // A thread that panicked counts as having done nothing.
            let results: Vec<(u64, Duration)> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect();
            let n: u64 = results.iter().map(|r| r.0).sum();
            let t = results.iter().map(|r| r.1).max().unwrap_or_default();
            (n, t)
        });
        if elapsed > Duration::ZERO {
            best = best
                .max(iterations as f64 * isa.flop_per_iteration() / elapsed.as_secs_f64() / 1e9);
        }
    }
    (best.is_finite() && best > 0.0).then_some((best, isa))
}

/// The maximum clock of CPU 0 in GHz, from cpufreq, if the system exposes it.
pub fn max_clock_ghz() -> Option<f64> {
    let khz: f64 = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (khz.is_finite() && khz > 0.0).then_some(khz / 1e6)
}

/// The FP32 peak of `threads` threads (at most the available cores): the larger of the
/// measured FMA throughput and cores x FLOP/cycle x maximum clock (when known).
pub fn cpu_peak(threads: usize) -> Option<CpuPeak> {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(threads.max(1));
    let plural = if cores == 1 { "" } else { "s" };
    let measured = measure_fma(cores, Duration::from_millis(90));
    let theoretical = FmaIsa::detect()
        .zip(max_clock_ghz())
        .map(|(isa, ghz)| (cores as f64 * isa.flop_per_cycle() * ghz, isa, ghz));
    let measured_text = measured.map(|(g, isa)| {
        format!(
            "measured {g:.1} GFLOP/s ({cores} thread{plural} of 12 independent {} FMA chains)",
            isa.name()
        )
    });
    let theoretical_text = theoretical.map(|(g, isa, ghz)| {
        format!(
            "{cores} core{plural} x {:.0} FLOP/cycle ({}, 2 FMA units) x {ghz:.3} GHz max clock (cpufreq) = {g:.1} GFLOP/s",
            isa.flop_per_cycle(),
            isa.name()
        )
    });
    let (gflops, source) = match (measured, theoretical) {
        (Some((m, _)), Some((t, _, _))) => (
            m.max(t),
            if m >= t {
                "the measurement"
            } else {
                "the max clock"
            },
        ),
        (Some((m, _)), None) => (m, "the measurement; cpufreq gives no max clock"),
        (None, Some((t, _, _))) => (t, "the max clock; no FMA loop for this CPU"),
        (None, None) => return None,
    };
    let parts: Vec<String> = [measured_text, theoretical_text]
        .into_iter()
        .flatten()
        .collect();
    Some(CpuPeak {
        gflops,
        assumption: format!("{}; peak from {source}", parts.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_fma_throughput_is_positive_and_finite() {
        let Some(isa) = FmaIsa::detect() else { return };
        let (g, found) =
            measure_fma(1, Duration::from_millis(30)).expect("a CPU with FMA measures");
        assert_eq!(found, isa);
        assert!(g.is_finite() && g > 0.0, "{g}");
        let peak = cpu_peak(1).expect("a peak");
        assert!(peak.gflops.is_finite() && peak.gflops > 0.0, "{peak:?}");
        assert!(peak.assumption.contains("FMA"), "{}", peak.assumption);
    }
}
