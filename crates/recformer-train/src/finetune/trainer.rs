//! The finetuning trainer: run-directory bookkeeping (events, best / last checkpoints, state)
//! and one training epoch.

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::Split;
use recformer_model::{l2_normalize, save_safetensors, RecformerConfig, RecformerModel};

use super::eval::{encode_items_with, evaluate_split};
use super::sampling::sample_epoch;
use super::state::{BestCheckpoint, FinetuneState};
use super::FinetuneData;
use crate::checkpoint;
use crate::config::{FinetuneConfig, FinetuneVariant};
use crate::error::{Error, Result};
use crate::evaluate::{EvalOptions, Evaluation};
use crate::loss::finetune_loss;
use crate::metrics::Metrics;
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::seeds::derive_seed;
use crate::session::Session;
use crate::stepper::OptimizerStepper;

/// Evaluation options of `split`: `max_eval_users` caps validation only; test uses every user.
fn eval_options(
    config: &FinetuneConfig,
    model_config: &RecformerConfig,
    split: Split,
) -> EvalOptions {
    EvalOptions {
        batch_size: config.eval_batch_size,
        temp: model_config.temp,
        exclude_history: config.exclude_history,
        max_users: match split {
            Split::Val => config.max_eval_users,
            _ => None,
        },
    }
}

pub(super) struct Trainer<'a, B: AutodiffBackend> {
    pub(super) config: &'a FinetuneConfig,
    pub(super) model_config: &'a RecformerConfig,
    pub(super) data: &'a FinetuneData<'a>,
    pub(super) run: &'a RunDir,
    pub(super) device: &'a B::Device,
    pub(super) progress: &'a dyn Progress,
    pub(super) state: FinetuneState,
}

impl<'a, B: AutodiffBackend> Trainer<'a, B> {
    /// A trainer with the fresh state of a new run (stage 1, epoch 0, stage-1 patience).
    pub(super) fn new(
        config: &'a FinetuneConfig,
        model_config: &'a RecformerConfig,
        data: &'a FinetuneData<'a>,
        run: &'a RunDir,
        device: &'a B::Device,
        progress: &'a dyn Progress,
    ) -> Self {
        Self {
            config,
            model_config,
            data,
            run,
            device,
            progress,
            state: FinetuneState {
                stage: 1,
                epoch: 0,
                optimizer_steps: 0,
                pending_micro_batches: 0,
                patience_left: config.patience_stage1,
                best: None,
                last_dir: None,
                events_logged: 0,
                counter: 0,
                zero_shot: None,
                result: None,
            },
        }
    }

    /// The saved state of the run directory, if it has one; its saved training config must equal
    /// this trainer's.
    pub(super) fn resume_state(&self) -> Result<Option<FinetuneState>> {
        self.session().saved_state(self.config)
    }

    /// The shared run bookkeeping of this trainer's run directory.
    pub(super) fn session(&self) -> Session<'a> {
        Session::new(self.run, self.progress)
    }

    /// Starts a new run: voids what a killed earlier attempt logged, writes the configs, encodes
    /// the initial item matrix I0 and (if configured, or for the training-only variant) logs
    /// the zero-shot test evaluation. Returns I0.
    pub(super) fn start_fresh(
        &mut self,
        model: &RecformerModel<B>,
    ) -> Result<Tensor<B::InnerBackend, 2>> {
        self.session().start(self.config, self.model_config)?;
        let items = encode_items_with(
            model,
            self.data,
            self.config.encode_batch_size,
            self.device,
            self.progress,
        );
        if self.config.initial_test_eval || self.config.variant == FinetuneVariant::TrainingOnly {
            let ev = self.eval(model, &items, Split::Test)?;
            let mut e = MetricsEvent::new("test", "zero-shot", 0, 0);
            e.split = Some("test".into());
            e.metrics = Some(ev.metrics);
            self.log(e)?;
            self.state.zero_shot = Some(ev.metrics);
        }
        Ok(items)
    }

    pub(super) fn log(&mut self, event: MetricsEvent) -> Result<()> {
        self.session().log(&mut self.state, event)
    }

    pub(super) fn stage_name(&self) -> &'static str {
        if self.state.stage == 1 {
            "stage1"
        } else {
            "stage2"
        }
    }

    pub(super) fn eval(
        &self,
        model: &RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        split: Split,
    ) -> Result<Evaluation> {
        evaluate_split(
            &model.valid(),
            items,
            self.data,
            split,
            &eval_options(self.config, self.model_config, split),
            self.device,
            self.progress,
        )
    }

    pub(super) fn save_best(
        &mut self,
        model: &RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        val: Metrics,
        epoch: usize,
    ) -> Result<()> {
        let (name, dir) =
            checkpoint::start_model_checkpoint(self.run, &mut self.state.counter, "best", model)?;
        checkpoint::save_item_index(
            &dir.join(run_dir::ITEMS_FILE),
            items,
            Some(checkpoint::ItemRows {
                keys: &self.data.dataset.item_keys,
                texts: Some(&self.data.dataset.items),
            }),
        )?;
        save_safetensors(
            &model.valid(),
            None,
            Some(items),
            &dir.join(run_dir::MODEL_SAFETENSORS_FILE),
        )?;
        self.state.best = Some(BestCheckpoint {
            val,
            stage: self.state.stage,
            epoch,
            dir: name,
        });
        Ok(())
    }

    pub(super) fn load_best(
        &self,
        model: RecformerModel<B>,
    ) -> Result<(RecformerModel<B>, Tensor<B::InnerBackend, 2>)> {
        let best = self.state.best.as_ref().ok_or_else(|| Error::Resume {
            path: self.run.root().to_path_buf(),
            reason: "no best checkpoint recorded".into(),
        })?;
        let dir = self.run.path(&best.dir);
        let record =
            checkpoint::load_record::<B, _>(&dir.join(run_dir::MODEL_RECORD_FILE), self.device)?;
        let items = checkpoint::load_item_matrix::<B::InnerBackend>(
            &dir.join(run_dir::ITEMS_FILE),
            self.device,
        )?;
        Ok((model.load_record(record), items))
    }

    pub(super) fn save_last(
        &mut self,
        model: &RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        stepper: &mut OptimizerStepper<B, RecformerModel<B>>,
    ) -> Result<()> {
        self.session()
            .save_last(&mut self.state, stepper, model, |dir| {
                checkpoint::save_weights(dir, model)?;
                checkpoint::save_item_matrix(&dir.join(run_dir::ITEMS_FILE), items)
            })
    }

    pub(super) fn commit_state(&self) -> Result<()> {
        self.session().commit(&self.state)
    }

    /// One training epoch against the frozen (normalised) item matrix.
    pub(super) fn train_epoch(
        &self,
        mut model: RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        stepper: &mut OptimizerStepper<B, RecformerModel<B>>,
    ) -> (RecformerModel<B>, f64) {
        let epoch_seed = derive_seed(
            self.config.seed,
            &[self.state.stage as u64, self.state.epoch as u64],
        );
        let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed);
        B::seed(self.device, derive_seed(epoch_seed, &[1]));
        let samples = sample_epoch(&self.data.dataset.train, &mut rng);
        let items_n: Tensor<B, 2> = Tensor::from_inner(l2_normalize(items.clone()));
        let label = format!("{} epoch {}", self.stage_name(), self.state.epoch + 1);
        self.progress.on_start(&label, samples.len() as u64);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for chunk in samples.chunks(self.config.batch_size) {
            let histories: Vec<&[usize]> = chunk.iter().map(|(h, _)| h.as_slice()).collect();
            let labels: Vec<usize> = chunk.iter().map(|(_, l)| *l).collect();
            let (_, input) =
                self.data
                    .builder()
                    .batch::<B>(&histories, self.data.item_tokens, self.device);
            let seq = model.forward_pooled(input);
            let loss = finetune_loss(
                seq,
                items_n.clone(),
                &labels,
                self.model_config.temp,
                self.config.loss_chunk_size,
            );
            loss_sum += loss.clone().into_scalar().elem::<f64>();
            batches += 1;
            model = stepper.backward(model, loss);
            self.progress.on_advance(chunk.len() as u64);
        }
        self.progress.on_finish();
        (model, loss_sum / batches.max(1) as f64)
    }
}
