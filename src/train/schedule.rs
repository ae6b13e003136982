//! Learning-rate schedules, evaluated at every step.

/// `--schedule constant|step|cosine`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The base rate throughout (the article's setting).
    #[default]
    Constant,
    /// The base rate divided by 10 after 50% and again after 75% of the epochs (He et
    /// al.'s CIFAR schedule, scaled to the run's length).
    Step,
    /// Cosine annealing from the base rate to 0 over all steps of the run, without
    /// restarts (Loshchilov & Hutter), updated every step.
    Cosine,
}

impl Schedule {
    /// The learning rate of step `step` (0-based) of `steps_per_epoch * epochs` steps.
    pub fn lr(self, base: f64, step: usize, steps_per_epoch: usize, epochs: usize) -> f64 {
        let total = (steps_per_epoch * epochs).max(1);
        match self {
            Schedule::Constant => base,
            Schedule::Step => {
                let epoch = step / steps_per_epoch.max(1);
                // Milestones at half and three quarters of the epochs (integer epochs).
                let drops = [epochs / 2, epochs * 3 / 4]
                    .iter()
                    .filter(|&&m| m > 0 && epoch >= m)
                    .count();
                base * 0.1f64.powi(drops as i32)
            }
            Schedule::Cosine => {
                let t = step.min(total) as f64 / total as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// The keyword of the CLI.
    pub fn keyword(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step => "step",
            Schedule::Cosine => "cosine",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Schedule::Constant.lr(0.05, 999, 10, 10), 0.05);
        assert_eq!(Schedule::Step.lr(0.1, 0, 10, 20), 0.1);
        assert!((Schedule::Step.lr(0.1, 100, 10, 20) - 0.01).abs() < 1e-12);
        assert!((Schedule::Step.lr(0.1, 150, 10, 20) - 0.001).abs() < 1e-12);
        assert_eq!(Schedule::Cosine.lr(0.1, 0, 10, 10), 0.1);
        assert!((Schedule::Cosine.lr(0.1, 50, 10, 10) - 0.05).abs() < 1e-12);
        assert!(Schedule::Cosine.lr(0.1, 99, 10, 10) < 1e-4);
    }
}
