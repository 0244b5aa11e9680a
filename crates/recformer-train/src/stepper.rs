//! Optimizer stepping with gradient accumulation, global-norm clipping and an LR schedule,
//! shared by pretraining and finetuning; its state is checkpointable.

use std::path::Path;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use crate::checkpoint;
use crate::error::Result;
use crate::optim::{clip_grad_norm, FusedAdamW};
use crate::schedule::LrSchedule;

/// Registers a zero gradient for each listed parameter that has none.
struct ZeroWhereMissing<'a> {
    ids: &'a [ParamId],
    grads: &'a mut GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ZeroWhereMissing<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.ids.contains(&param.id) && self.grads.get::<B::InnerBackend, D>(param.id).is_none()
        {
            let zeros: Tensor<B::InnerBackend, D> = param.val().inner().zeros_like();
            self.grads.register::<B::InnerBackend, D>(param.id, zeros);
        }
    }
}

/// Settings of an [`OptimizerStepper`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepperConfig {
    /// Learning-rate schedule (its `base_lr` is the peak LR).
    pub schedule: LrSchedule,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    /// Global gradient-norm clipping.
    pub max_grad_norm: Option<f64>,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// AdamW epsilon.
    pub adam_epsilon: f64,
}

/// AdamW + accumulation + clipping + schedule.
///
/// Call [`OptimizerStepper::backward`] once per micro-batch with the *unscaled* loss; it divides
/// by the accumulation count (as the official `loss / 8`), accumulates, and every `accumulation`
/// micro-batches clips, steps with `schedule.lr(optimizer_steps)` and counts the step.
///
/// The same work in its stages, for a loop that needs a seam between them (a gradient
/// all-reduce across data-parallel workers, a loss scaler's unscale):
/// [`OptimizerStepper::gradients`] (backward of the scaled loss) →
/// [`OptimizerStepper::accumulate`] → when [`OptimizerStepper::ready`],
/// [`OptimizerStepper::step_with`] (the hook sees the summed gradients before clipping) →
/// clip → AdamW step.
pub struct OptimizerStepper<B: AutodiffBackend, M: AutodiffModule<B>> {
    optim: OptimizerAdaptor<FusedAdamW, M, B>,
    accumulator: GradientsAccumulator<M>,
    config: StepperConfig,
    /// Micro-batches accumulated since the last optimizer step.
    pub pending: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Learning rate of the last step.
    pub last_lr: f64,
    zero_gradients_for: Option<fn(&M) -> Vec<ParamId>>,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> OptimizerStepper<B, M> {
    /// A fresh stepper.
    pub fn new(config: StepperConfig) -> Self {
        Self {
            optim: FusedAdamW::new(config.weight_decay, config.adam_epsilon).init::<B, M>(),
            accumulator: GradientsAccumulator::new(),
            config,
            pending: 0,
            steps: 0,
            last_lr: 0.0,
            zero_gradients_for: None,
        }
    }

    /// Parameters that PyTorch's graph reaches with an exactly zero gradient but this loop's
    /// forward does not reach at all (e.g. [`RecformerModel::params_outside_pooled`] when the
    /// loss reads [`RecformerModel::forward_pooled`]). When one has no gradient at a step, it is
    /// given zeros, so that AdamW's weight decay shrinks it as `torch.optim.AdamW` does. Without
    /// weight decay a zero gradient leaves a parameter exactly as it is, and nothing is added.
    ///
    /// [`RecformerModel::params_outside_pooled`]: recformer_model::RecformerModel::params_outside_pooled
    /// [`RecformerModel::forward_pooled`]: recformer_model::RecformerModel::forward_pooled
    pub fn with_zero_gradients_for(mut self, params: fn(&M) -> Vec<ParamId>) -> Self {
        self.zero_gradients_for = Some(params);
        self
    }

    /// Backward of one micro-batch; steps the optimizer when enough micro-batches are accumulated.
    pub fn backward(&mut self, model: M, loss: Tensor<B, 1>) -> M {
        let grads = self.gradients(&model, loss);
        self.accumulate(&model, grads);
        if self.ready() {
            self.step(model)
        } else {
            model
        }
    }

    /// The gradients of one micro-batch: backward of `loss / accumulation`.
    pub fn gradients(&self, model: &M, loss: Tensor<B, 1>) -> GradientsParams {
        let loss = loss.div_scalar(self.config.accumulation as f64);
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// Adds one micro-batch's gradients to the pending sum.
    pub fn accumulate(&mut self, model: &M, grads: GradientsParams) {
        self.accumulator.accumulate(model, grads);
        self.pending += 1;
    }

    /// Whether `accumulation` micro-batches are pending (time for an optimizer step).
    pub fn ready(&self) -> bool {
        self.pending >= self.config.accumulation
    }

    /// Applies the accumulated gradients now (e.g. Lightning's step at the end of an epoch).
    /// Does nothing when no micro-batch is pending.
    pub fn step(&mut self, model: M) -> M {
        self.step_with(model, |_, _| {})
    }

    /// [`OptimizerStepper::step`] with `hook` run on the summed gradients before clipping (the
    /// seam for a gradient all-reduce or a loss scaler's unscale).
    pub fn step_with(&mut self, model: M, hook: impl FnOnce(&M, &mut GradientsParams)) -> M {
        if self.pending == 0 {
            return model;
        }
        let mut grads = self.accumulator.grads();
        hook(&model, &mut grads);
        if let Some(params) = self.zero_gradients_for {
            if self.config.weight_decay != 0.0 {
                let ids = params(&model);
                model.visit(&mut ZeroWhereMissing {
                    ids: &ids,
                    grads: &mut grads,
                });
            }
        }
        if let Some(max) = self.config.max_grad_norm {
            clip_grad_norm::<B, M>(&model, &mut grads, max);
        }
        let lr = self.config.schedule.lr(self.steps);
        self.last_lr = lr;
        let model = self.optim.step(lr, model, grads);
        self.steps += 1;
        self.pending = 0;
        model
    }

    /// Writes the optimizer record and pending gradients into `dir`
    /// (`optimizer.mpk`, `pending_grads.safetensors`).
    pub fn save(&mut self, dir: &Path, model: &M) -> Result<()> {
        checkpoint::save_record::<B, _>(
            &dir.join(crate::run_dir::OPTIMIZER_RECORD_FILE),
            self.optim.to_record(),
        )?;
        let grads = self.accumulator.grads();
        checkpoint::save_gradients::<B, M>(
            &dir.join(crate::run_dir::PENDING_GRADS_FILE),
            model,
            &grads,
        )?;
        self.accumulator.accumulate(model, grads);
        Ok(())
    }

    /// Restores what [`OptimizerStepper::save`] wrote; `pending` and `steps` come from the
    /// trainer state.
    pub fn load(
        mut self,
        dir: &Path,
        model: &M,
        pending: usize,
        steps: usize,
        device: &B::Device,
    ) -> Result<Self> {
        let record = checkpoint::load_record::<B, _>(
            &dir.join(crate::run_dir::OPTIMIZER_RECORD_FILE),
            device,
        )?;
        self.optim = self.optim.load_record(record);
        let grads = checkpoint::load_gradients::<B, M>(
            &dir.join(crate::run_dir::PENDING_GRADS_FILE),
            model,
            device,
        )?;
        self.accumulator = GradientsAccumulator::new();
        self.accumulator.accumulate(model, grads);
        self.pending = pending;
        self.steps = steps;
        Ok(self)
    }
}
