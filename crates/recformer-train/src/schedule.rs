//! Learning-rate schedules of the official code, as pure functions of the optimizer step.
//!
//! The schedule state is just the number of optimizer steps taken, saved with the trainer state.
//! Optimizer step `k` (0-based) uses `base_lr * factor(k)`, as PyTorch does when
//! `scheduler.step()` follows `optimizer.step()`.

use serde::{Deserialize, Serialize};

/// Shape of the decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DecayKind {
    /// `transformers.get_linear_schedule_with_warmup`:
    /// `max(0, (total - step) / (total - warmup))` after warmup (used by pretraining).
    #[default]
    Linear,
    /// RecFormer's `optimization.py`: `max(0, 1 - step / total)` after warmup (used by finetuning);
    /// note the small drop at the end of warmup.
    Official,
    /// No decay: constant after warmup.
    Constant,
}

/// A warmup + decay learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Linear warmup steps (`step / warmup`).
    pub warmup_steps: usize,
    /// Total number of optimizer steps the decay is computed for.
    pub total_steps: usize,
    /// Decay kind.
    pub decay: DecayKind,
}

impl LrSchedule {
    /// Multiplier of the base learning rate at optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        let s = step as f64;
        if step < self.warmup_steps {
            return s / self.warmup_steps.max(1) as f64;
        }
        let total = self.total_steps.max(1) as f64;
        match self.decay {
            DecayKind::Linear => {
                let denom = (self.total_steps.saturating_sub(self.warmup_steps)).max(1) as f64;
                ((total - s) / denom).max(0.0)
            }
            DecayKind::Official => (1.0 - s / total).max(0.0),
            DecayKind::Constant => 1.0,
        }
    }

    /// Learning rate at optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_finetune_schedule() {
        let s = LrSchedule {
            base_lr: 5e-5,
            warmup_steps: 100,
            total_steps: 1000,
            decay: DecayKind::Official,
        };
        assert_eq!(s.factor(0), 0.0);
        assert!((s.factor(50) - 0.5).abs() < 1e-12);
        assert!((s.factor(99) - 0.99).abs() < 1e-12);
        // drop at the end of warmup: 1 - 100/1000
        assert!((s.factor(100) - 0.9).abs() < 1e-12);
        assert!((s.factor(500) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(1000), 0.0);
        assert_eq!(s.factor(5000), 0.0);
        assert!((s.lr(500) - 2.5e-5).abs() < 1e-15);
    }

    #[test]
    fn hf_linear_schedule() {
        let s = LrSchedule {
            base_lr: 1.0,
            warmup_steps: 0,
            total_steps: 10,
            decay: DecayKind::Linear,
        };
        assert_eq!(s.factor(0), 1.0);
        assert!((s.factor(5) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(10), 0.0);
        let w = LrSchedule {
            warmup_steps: 4,
            total_steps: 12,
            ..s
        };
        assert!((w.factor(2) - 0.5).abs() < 1e-12);
        assert_eq!(w.factor(4), 1.0);
        assert!((w.factor(8) - 0.5).abs() < 1e-12);
    }
}
