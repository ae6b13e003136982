//! Per-epoch metrics and `metrics.csv`.

use std::path::Path;

/// Header of `metrics.csv`.
pub const CSV_HEADER: &str = "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds";

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's training examples (train mode, as d2l reports it).
    pub train_loss: f64,
    /// Fraction of training examples classified right while training.
    pub train_acc: f64,
    /// Fraction of test examples classified right after the epoch (eval mode).
    pub test_acc: f64,
    /// Training examples per second (the training steps only, as d2l's `train_ch6`).
    pub examples_per_sec: f64,
    /// Wall-clock seconds of the whole epoch: training and the test pass.
    pub seconds: f64,
}

impl EpochMetrics {
    /// The number of fields, as stored in a checkpoint.
    pub const FIELDS: usize = 6;

    /// The fields in CSV order, for a checkpoint.
    pub fn to_array(&self) -> [f64; Self::FIELDS] {
        [
            self.epoch as f64,
            self.train_loss,
            self.train_acc,
            self.test_acc,
            self.examples_per_sec,
            self.seconds,
        ]
    }

    /// The inverse of [`EpochMetrics::to_array`].
    pub fn from_array(a: [f64; Self::FIELDS]) -> EpochMetrics {
        EpochMetrics {
            epoch: a[0] as usize,
            train_loss: a[1],
            train_acc: a[2],
            test_acc: a[3],
            examples_per_sec: a[4],
            seconds: a[5],
        }
    }

    /// One CSV line (no newline).
    pub fn csv_line(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.1},{:.2}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.test_acc,
            self.examples_per_sec,
            self.seconds
        )
    }
}

/// The whole CSV text for `history`.
pub fn to_csv(history: &[EpochMetrics]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for m in history {
        s.push_str(&m.csv_line());
        s.push('\n');
    }
    s
}

/// Replaces `path` atomically with the CSV of `history`.
pub fn write_csv(path: &Path, history: &[EpochMetrics]) -> std::io::Result<()> {
    super::atomic::write_bytes(path, to_csv(history).as_bytes())
}

/// Parses `metrics.csv` text; the error names the line at fault.
pub fn parse_csv(text: &str) -> Result<Vec<EpochMetrics>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == CSV_HEADER => {}
        other => {
            return Err(format!(
                "line 1: expected the header `{CSV_HEADER}`, found `{}`",
                other.unwrap_or("")
            ))
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != EpochMetrics::FIELDS {
                return Err(format!(
                    "line {}: expected {} fields, found {}",
                    i + 2,
                    EpochMetrics::FIELDS,
                    fields.len()
                ));
            }
            let mut a = [0f64; EpochMetrics::FIELDS];
            for (k, f) in fields.iter().enumerate() {
                a[k] = f
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {}: `{f}` is not a number", i + 2))?;
            }
            if !(1.0..=1e6).contains(&a[0]) || a[0].fract() != 0.0 {
                return Err(format!(
                    "line {}: the epoch `{}` is not a whole number from 1 to 1000000",
                    i + 2,
                    fields[0].trim()
                ));
            }
            Ok(EpochMetrics::from_array(a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = vec![
            EpochMetrics {
                epoch: 1,
                train_loss: 0.5,
                train_acc: 0.8,
                test_acc: 0.85,
                examples_per_sec: 480.25,
                seconds: 130.0,
            },
            EpochMetrics {
                epoch: 2,
                train_loss: 0.25,
                train_acc: 0.9,
                test_acc: 0.875,
                examples_per_sec: 481.0,
                seconds: 129.5,
            },
        ];
        let text = to_csv(&h);
        assert!(text.starts_with(
            "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds\n1,0.500000,"
        ));
        let back = parse_csv(&text).unwrap();
        assert_eq!(back[1].epoch, 2);
        assert_eq!(back[1].test_acc, 0.875);
        assert!(parse_csv("epoch,x\n").is_err());
        assert!(parse_csv(&format!("{CSV_HEADER}\n1,2,3\n"))
            .unwrap_err()
            .contains("line 2"));
    }
}
