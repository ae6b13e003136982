//! Test accuracy and the confusion matrix.

use super::loader::{Loader, Prep};
use super::{Classifier, Dataset, TrainError};
use std::sync::Arc;

/// The outcome of classifying a data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Examples predicted as a class index beyond the data set's classes (a model with
    /// more outputs than classes): wrong, and in no column.
    pub beyond: u64,
    /// Unreadable images left out (`--on-bad-image skip`): in no count.
    pub skipped: u64,
}

impl Evaluation {
    /// Examples classified right.
    pub fn correct(&self) -> u64 {
        (0..self.confusion.len())
            .map(|i| self.confusion[i][i])
            .sum()
    }

    /// Examples seen.
    pub fn total(&self) -> u64 {
        self.confusion.iter().flatten().sum::<u64>() + self.beyond
    }

    /// Fraction classified right (0 for an empty set).
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.total().max(1) as f64
    }

    /// The matrix as text: one row per true class, one column per predicted class,
    /// class names on the rows and numbered columns, with per-class recall.
    pub fn render(&self, classes: &[String]) -> String {
        let n = self.confusion.len();
        let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
        let label_w = (0..n)
            .map(|i| name(i).chars().count() + 5)
            .max()
            .unwrap_or(8)
            .max("true \\ predicted".len());
        let max = self.confusion.iter().flatten().copied().max().unwrap_or(0);
        let cell_w = max.to_string().len().max(n.to_string().len() + 1).max(4);
        let mut s = format!("{:<label_w$}", "true \\ predicted");
        for j in 0..n {
            s.push_str(&format!(" {:>cell_w$}", format!("[{j}]")));
        }
        s.push_str("  recall\n");
        for (i, row) in self.confusion.iter().enumerate() {
            s.push_str(&format!("{:<label_w$}", format!("[{i}] {}", name(i))));
            for v in row {
                s.push_str(&format!(" {v:>cell_w$}"));
            }
            let total: u64 = row.iter().sum();
            let recall = if total == 0 {
                "-".to_string()
            } else {
                format!("{:.3}", row[i] as f64 / total as f64)
            };
            s.push_str(&format!("  {recall:>6}\n"));
        }
        s
    }
}

/// Classifies every example of `data` in eval mode, without gradients.
pub fn evaluate<M: Classifier>(
    model: &M,
    data: Arc<Dataset>,
    prep: &Prep,
    batch_size: usize,
) -> Result<Evaluation, TrainError> {
    let classes = data.classes.len();
    let mut confusion = vec![vec![0u64; classes]; classes];
    let mut beyond = 0u64;
    let mut skipped = 0u64;
    let order: Vec<usize> = (0..data.len()).collect();
    let loader = Loader::spawn(data, order, batch_size, prep.clone(), (0, 0));
    tch::no_grad(|| -> Result<(), TrainError> {
        for batch in loader {
            let batch = batch.map_err(|e| e.into_train("preparing a test batch"))?;
            skipped += batch.skipped.len() as u64;
            if batch.labels.size()[0] == 0 {
                continue;
            }
            let logits = model.logits(&batch.images, false)?;
            let predicted = logits
                .f_argmax(-1, false)
                .and_then(|p| p.f_to_device(tch::Device::Cpu))
                .and_then(|p| Vec::<i64>::try_from(&p))
                .map_err(TrainError::torch("reading predictions"))?;
            let truth = batch
                .labels
                .f_to_device(tch::Device::Cpu)
                .and_then(|l| Vec::<i64>::try_from(&l))
                .map_err(TrainError::torch("reading labels"))?;
            for (t, p) in truth.into_iter().zip(predicted) {
                // Labels are below `classes` (checked when loading); predictions may not be.
                match confusion
                    .get_mut(t as usize)
                    .and_then(|row| row.get_mut(p as usize))
                {
                    Some(cell) => *cell += 1,
                    None => beyond += 1,
                }
            }
        }
        Ok(())
    })?;
    Ok(Evaluation {
        confusion,
        beyond,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_names() {
        let e = Evaluation {
            confusion: vec![vec![8, 2], vec![1, 9]],
            beyond: 0,
            skipped: 0,
        };
        assert_eq!(e.correct(), 17);
        assert_eq!(e.total(), 20);
        let text = e.render(&["T-shirt/top".into(), "Trouser".into()]);
        assert!(text.contains("[0] T-shirt/top"), "{text}");
        assert!(text.contains("0.800"), "{text}");
        assert!(text.lines().count() == 3, "{text}");
    }
}
