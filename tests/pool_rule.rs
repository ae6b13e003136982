//! resnetc's pooling output-size rule against live PyTorch.
//!
//! The venv python (found through `RESNETC_HOME` or `~/.cache/resnetc/venv`, as
//! `tests/parity.rs` does) runs `MaxPool2d` and `AvgPool2d` over a grid of input sizes
//! (1..=9), kernels (1..=4), strides (1..=3), paddings (0..=2), with and without
//! `ceil_mode`, on a plain input and on one that requires grad (max pooling takes another
//! code path then). Every configuration must get the same verdict from
//! [`pool_output_size`]: the same output size, or a rejection for the same reason.
//!
//! Run: `cargo test -j2 --features torch --test pool_rule`. It needs the venv only, not
//! a tensor, but lives in the torch stage of the suite, where the venv exists.
#![cfg(feature = "torch")]

mod common;

use resnetc::valid::shape::{pool_output_size, PoolError};

/// One line per configuration: `kind grad size kernel stride padding ceil verdict`, the
/// verdict an output size, `pad` (padding over half the kernel), `small` (output below
/// 1) or `other:MESSAGE`.
const SCRIPT: &str = r#"
import torch, torch.nn.functional as F
for kind in ("max", "avg"):
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    for grad in (0, 1):
        for size in range(1, 10):
            for k in range(1, 5):
                for s in range(1, 4):
                    for p in range(0, 3):
                        for ceil in (0, 1):
                            x = torch.zeros(1, 1, size, size, requires_grad=bool(grad))
                            try:
                                y = pool(x, k, s, p, ceil_mode=bool(ceil))
                                assert y.shape[2] == y.shape[3], y.shape
                                verdict = str(y.shape[2])
                            except RuntimeError as e:
                                m = str(e)
                                if "pad should be at most half" in m:
                                    verdict = "pad"
                                elif "Output size is too small" in m:
                                    verdict = "small"
                                else:
                                    verdict = "other:" + m.replace("\n", " ")
                            print(kind, grad, size, k, s, p, ceil, verdict)
"#;

fn verdict(rule: Result<u64, PoolError>) -> String {
    match rule {
        Ok(n) => n.to_string(),
        Err(PoolError::PaddingOverHalfKernel) => "pad".into(),
        Err(PoolError::OutputTooSmall) => "small".into(),
        Err(PoolError::ZeroKernelOrStride) => "zero".into(),
    }
}

#[test]
fn pooling_output_sizes_agree_with_pytorch() {
    let python = common::venv_python();
    let out = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (run ./scripts/setup.sh first): {e}",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the PyTorch grid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut compared = 0;
    let mut accepted = 0;
    let mut mismatches = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.splitn(8, ' ').collect();
        let [_kind, _grad, size, k, s, p, ceil, torch] = fields[..] else {
            panic!("unexpected line from the PyTorch grid: {line:?}");
        };
        let num = |f: &str| f.parse::<u64>().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let ours = verdict(pool_output_size(
            num(size),
            num(k),
            num(s),
            num(p),
            ceil == "1",
        ));
        compared += 1;
        accepted += usize::from(torch.parse::<u64>().is_ok());
        if ours != torch {
            mismatches.push(format!("{line}: resnetc says {ours}"));
        }
    }
    // 2 kinds x 2 grad modes x 9 sizes x 4 kernels x 3 strides x 3 paddings x 2 ceil modes.
    assert_eq!(
        compared,
        2 * 2 * 9 * 4 * 3 * 3 * 2,
        "the grid is incomplete:\n{stdout}"
    );
    assert!(
        accepted > 0 && accepted < compared,
        "the grid should hold both verdicts"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {compared} configurations differ from PyTorch:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!("{compared} configurations agree with PyTorch ({accepted} accepted)");
}
