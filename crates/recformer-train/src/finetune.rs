//! The official two-stage finetuning loop (`finetune.py`, spec §4.2) and its ablation variants.
//!
//! ```text
//! I0 = encode(initial model); test eval (zero-shot print)
//! stage 1: every epoch: I = encode(model) at epoch start; train one epoch against frozen I;
//!          every `verbose` epochs: val eval (with that I); best by NDCG@10 → save weights + I;
//!          patience_stage1 evaluations without improvement → stop
//! reload best weights and their I (optimizer and schedule continue)
//! stage 2: same, but I is never re-encoded; patience_stage2
//! reload best; final test eval
//! ```
//! Training samples: one per user per epoch (users shuffled), `t ~ U[0, len(train) - 1]`,
//! history `train[..t]` (may be empty), label `train[t]`. Loss: full-softmax CE of
//! `cos(seq, I) / temp`. AdamW, micro-batch × accumulation, warmup then `1 - step/total`;
//! leftover micro-batches carry their gradients into the next epoch.

use std::path::PathBuf;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recformer_data::{EvalExample, FinetuneDataset, ItemTokens, Split};
use recformer_model::{l2_normalize, save_safetensors, RecformerConfig, RecformerModel};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::config::{FinetuneConfig, FinetuneVariant};
use crate::encode::encode_all_items;
use crate::error::{Error, Result};
use crate::evaluate::{evaluate, EvalOptions, Evaluation};
use crate::inputs::InputBuilder;
use crate::loss::finetune_loss;
use crate::metrics::Metrics;
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::schedule::{DecayKind, LrSchedule};
use crate::seeds::derive_seed;
use crate::stepper::{OptimizerStepper, StepperConfig};

/// Data needed by finetuning and evaluation.
#[derive(Debug, Clone, Copy)]
pub struct FinetuneData<'a> {
    /// The dataset (train / val / test, item rows).
    pub dataset: &'a FinetuneDataset,
    /// Tokens of every item, indexed by item row.
    pub item_tokens: &'a [ItemTokens],
    /// Sequence construction (special ids, limits).
    pub builder: InputBuilder,
}

/// Limits of one call (not part of the run's semantics; used to interrupt runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunControl {
    /// Return after this many training epochs in this call (`None`: run to the end).
    pub stop_after_epochs: Option<usize>,
}

/// The best checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    /// Validation metrics that made it best.
    pub val: Metrics,
    /// Stage (1 or 2) it was found in.
    pub stage: u8,
    /// Epoch (0-based, within the stage) after which it was evaluated.
    pub epoch: usize,
    /// Directory name inside the run directory.
    pub dir: String,
}

/// Persistent trainer state (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneState {
    /// Current stage (1 or 2).
    pub stage: u8,
    /// Next epoch to run within the stage.
    pub epoch: usize,
    /// Optimizer steps so far (the scheduler state).
    pub optimizer_steps: usize,
    /// Micro-batches accumulated but not yet applied.
    pub pending_micro_batches: usize,
    /// Evaluations left before the current stage stops.
    pub patience_left: usize,
    /// Best checkpoint so far.
    pub best: Option<BestCheckpoint>,
    /// Directory of the resume checkpoint.
    pub last_dir: Option<String>,
    /// Number of lines of `metrics.jsonl` that belong to this state.
    pub events_logged: usize,
    /// Counter for checkpoint directory names.
    pub counter: usize,
    /// Zero-shot test metrics (before training), if computed.
    pub zero_shot: Option<Metrics>,
    /// Final result, once finished.
    pub result: Option<FinetuneResult>,
}

/// Final numbers of a finetuning run (`result.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneResult {
    /// Test metrics of the best checkpoint, mean over users.
    pub test: Metrics,
    /// Same, official mean of batch means.
    pub test_batch_mean: Metrics,
    /// Validation metrics of the best checkpoint.
    pub best_val: Option<Metrics>,
    /// Zero-shot test metrics (initial model), if computed.
    pub zero_shot: Option<Metrics>,
    /// Path of the best model export (HF names, includes `item_embedding.weight`).
    pub best_model: PathBuf,
    /// Optimizer steps taken.
    pub optimizer_steps: usize,
}

/// What [`finetune`] returns.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum FinetuneOutcome {
    /// The run finished; final numbers.
    Finished(FinetuneResult),
    /// Stopped early by [`RunControl`]; call again with the same run directory to resume.
    Interrupted(FinetuneState),
}

fn eval_options(config: &FinetuneConfig, model_config: &RecformerConfig) -> EvalOptions {
    EvalOptions {
        batch_size: config.eval_batch_size,
        temp: model_config.temp,
        exclude_history: config.exclude_history,
        max_users: config.max_eval_users,
    }
}

/// Training examples of one epoch, in order: `(history, label)` per user.
pub fn sample_epoch<R: Rng>(
    train: &std::collections::BTreeMap<usize, Vec<usize>>,
    rng: &mut R,
) -> Vec<(Vec<usize>, usize)> {
    let mut users: Vec<&Vec<usize>> = train.values().filter(|s| !s.is_empty()).collect();
    users.shuffle(rng);
    users
        .into_iter()
        .map(|seq| {
            let t = rng.random_range(0..seq.len());
            (seq[..t].to_vec(), seq[t])
        })
        .collect()
}

/// Encodes the item matrix with the current weights (no autodiff).
pub fn encode_items_with<B: AutodiffBackend>(
    model: &RecformerModel<B>,
    data: &FinetuneData<'_>,
    batch_size: usize,
    device: &B::Device,
    progress: &dyn Progress,
) -> Tensor<B::InnerBackend, 2> {
    encode_all_items(
        &model.valid(),
        data.item_tokens,
        &data.builder,
        batch_size,
        device,
        progress,
    )
}

/// Evaluates `split` with a given item matrix.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_split<B: Backend>(
    model: &RecformerModel<B>,
    items: &Tensor<B, 2>,
    data: &FinetuneData<'_>,
    split: Split,
    options: &EvalOptions,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let examples: Vec<EvalExample> = data.dataset.eval_examples(split);
    evaluate(
        model,
        items,
        data.item_tokens,
        &examples,
        &data.builder,
        options,
        device,
        progress,
    )
}

struct Trainer<'a, B: AutodiffBackend> {
    config: &'a FinetuneConfig,
    model_config: &'a RecformerConfig,
    data: &'a FinetuneData<'a>,
    run: &'a RunDir,
    device: &'a B::Device,
    progress: &'a dyn Progress,
    state: FinetuneState,
}

impl<'a, B: AutodiffBackend> Trainer<'a, B> {
    fn log(&mut self, event: MetricsEvent) -> Result<()> {
        self.run.log_event(&event)?;
        self.progress.on_event(&event);
        self.state.events_logged += 1;
        Ok(())
    }

    fn stage_name(&self) -> &'static str {
        if self.state.stage == 1 {
            "stage1"
        } else {
            "stage2"
        }
    }

    fn eval(
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
            &eval_options(self.config, self.model_config),
            self.device,
            self.progress,
        )
    }

    fn save_best(
        &mut self,
        model: &RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        val: Metrics,
        epoch: usize,
    ) -> Result<()> {
        self.state.counter += 1;
        let name = format!("best-{:05}", self.state.counter);
        let dir = self.run.fresh_subdir(&name)?;
        checkpoint::save_record::<B, _>(
            &dir.join(run_dir::MODEL_RECORD_FILE),
            model.clone().into_record(),
        )?;
        checkpoint::save_item_matrix(&dir.join(run_dir::ITEMS_FILE), items)?;
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

    fn load_best(
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

    fn save_last(
        &mut self,
        model: &RecformerModel<B>,
        items: &Tensor<B::InnerBackend, 2>,
        stepper: &mut OptimizerStepper<B, RecformerModel<B>>,
    ) -> Result<()> {
        self.state.counter += 1;
        let name = format!("last-{:05}", self.state.counter);
        let dir = self.run.fresh_subdir(&name)?;
        checkpoint::save_record::<B, _>(
            &dir.join(run_dir::MODEL_RECORD_FILE),
            model.clone().into_record(),
        )?;
        checkpoint::save_item_matrix(&dir.join(run_dir::ITEMS_FILE), items)?;
        stepper.save(&dir, model)?;
        self.state.optimizer_steps = stepper.steps;
        self.state.pending_micro_batches = stepper.pending;
        self.state.last_dir = Some(name.clone());
        self.commit_state()
    }

    fn commit_state(&self) -> Result<()> {
        self.run.save_json(run_dir::STATE_FILE, &self.state)?;
        let mut keep: Vec<&str> = Vec::new();
        if let Some(l) = &self.state.last_dir {
            keep.push(l);
        }
        if let Some(b) = &self.state.best {
            keep.push(&b.dir);
        }
        self.run.prune("last-", &keep)?;
        self.run.prune("best-", &keep)
    }

    /// One training epoch against the frozen (normalised) item matrix.
    fn train_epoch(
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
                    .builder
                    .batch::<B>(&histories, self.data.item_tokens, self.device);
            let seq = model.forward(input).pooler_output;
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

fn freeze_word_embeddings<B: Backend>(mut model: RecformerModel<B>) -> RecformerModel<B> {
    model.embeddings.word_embeddings.weight = model
        .embeddings
        .word_embeddings
        .weight
        .set_require_grad(false);
    model
}

/// Runs (or resumes) finetuning in `run`.
///
/// `model` is the initial model (pretrained, or freshly initialised for the "finetuning only"
/// ablation). If `run` holds a `state.json`, the run resumes from its last checkpoint (the given
/// weights are replaced by the checkpoint's) and the saved training config must equal `config`.
/// A finished run returns its stored result.
#[allow(clippy::too_many_arguments)]
pub fn finetune<B: AutodiffBackend>(
    model: RecformerModel<B>,
    model_config: &RecformerConfig,
    config: &FinetuneConfig,
    data: &FinetuneData<'_>,
    run: &RunDir,
    device: &B::Device,
    control: &RunControl,
    progress: &dyn Progress,
) -> Result<FinetuneOutcome> {
    config.validate()?;
    let num_items = data.dataset.num_items();
    if data.item_tokens.len() != num_items {
        return Err(Error::InvalidData(format!(
            "{} item token rows for {num_items} items",
            data.item_tokens.len()
        )));
    }
    let train_users = data
        .dataset
        .train
        .values()
        .filter(|s| !s.is_empty())
        .count();
    if train_users == 0 {
        return Err(Error::InvalidData("no user has a training sequence".into()));
    }
    let mut model = if config.fix_word_embedding {
        freeze_word_embeddings(model)
    } else {
        model
    };
    let stepper_config = StepperConfig {
        schedule: LrSchedule {
            base_lr: config.learning_rate,
            warmup_steps: config.warmup_steps,
            total_steps: config.total_steps(train_users),
            decay: DecayKind::Official,
        },
        accumulation: config.gradient_accumulation_steps,
        max_grad_norm: config.max_grad_norm,
        weight_decay: config.weight_decay,
        adam_epsilon: config.adam_epsilon,
    };
    let mut stepper = OptimizerStepper::<B, RecformerModel<B>>::new(stepper_config);

    let resuming = run.has_state();
    let mut trainer = Trainer::<B> {
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
    };

    let mut items: Tensor<B::InnerBackend, 2>;
    if resuming {
        let saved: FinetuneConfig = checkpoint::load_json(&run.path(run_dir::TRAIN_CONFIG_FILE))?;
        if &saved != config {
            return Err(Error::Resume {
                path: run.root().to_path_buf(),
                reason: format!(
                    "{} differs from the given config",
                    run_dir::TRAIN_CONFIG_FILE
                ),
            });
        }
        let state: FinetuneState = checkpoint::load_json(&run.path(run_dir::STATE_FILE))?;
        if let Some(result) = &state.result {
            return Ok(FinetuneOutcome::Finished(result.clone()));
        }
        let last = state.last_dir.clone().ok_or_else(|| Error::Resume {
            path: run.root().to_path_buf(),
            reason: "state.json names no checkpoint".into(),
        })?;
        let dir = run.path(&last);
        let record =
            checkpoint::load_record::<B, _>(&dir.join(run_dir::MODEL_RECORD_FILE), device)?;
        model = model.load_record(record);
        items = checkpoint::load_item_matrix::<B::InnerBackend>(
            &dir.join(run_dir::ITEMS_FILE),
            device,
        )?;
        stepper = stepper.load(
            &dir,
            &model,
            state.pending_micro_batches,
            state.optimizer_steps,
            device,
        )?;
        run.truncate_events(state.events_logged)?;
        trainer.state = state;
    } else {
        // no state: anything logged by an earlier, killed attempt is void
        run.truncate_events(0)?;
        run.save_json(run_dir::TRAIN_CONFIG_FILE, config)?;
        model_config.save_json(run.path(run_dir::MODEL_CONFIG_FILE))?;
        // The initial matrix I0 (zero-shot item representations).
        items = encode_items_with(&model, data, config.encode_batch_size, device, progress);
        if config.initial_test_eval || config.variant == FinetuneVariant::TrainingOnly {
            let ev = trainer.eval(&model, &items, Split::Test)?;
            let mut e = MetricsEvent::new("test", "zero-shot", 0, 0);
            e.split = Some("test".into());
            e.metrics = Some(ev.metrics);
            trainer.log(e)?;
            trainer.state.zero_shot = Some(ev.metrics);
        }
        if config.variant == FinetuneVariant::TrainingOnly {
            let ev = trainer.eval(&model, &items, Split::Val)?;
            let mut e = MetricsEvent::new("eval", "zero-shot", 0, 0);
            e.split = Some("val".into());
            e.metrics = Some(ev.metrics);
            trainer.log(e)?;
            trainer.save_best(&model, &items, ev.metrics, 0)?;
        }
    }

    if config.variant == FinetuneVariant::TrainingOnly {
        return finish(&mut trainer, model, &mut stepper);
    }

    let mut epochs_this_call = 0usize;
    if control.stop_after_epochs == Some(0) {
        trainer.save_last(&model, &items, &mut stepper)?;
        return Ok(FinetuneOutcome::Interrupted(trainer.state.clone()));
    }
    loop {
        let reencode = trainer.state.stage == 1 && config.variant != FinetuneVariant::Fix;
        if reencode {
            items = encode_items_with(&model, data, config.encode_batch_size, device, progress);
        }
        let (m, loss) = trainer.train_epoch(model, &items, &mut stepper);
        model = m;
        epochs_this_call += 1;
        let epoch = trainer.state.epoch;
        trainer.state.epoch += 1;
        let mut e = MetricsEvent::new("epoch", trainer.stage_name(), epoch, stepper.steps);
        e.loss = Some(loss);
        e.lr = Some(stepper.last_lr);
        trainer.log(e)?;

        let mut stage_over = trainer.state.epoch >= config.num_train_epochs;
        if (epoch + 1).is_multiple_of(config.verbose) {
            let ev = trainer.eval(&model, &items, Split::Val)?;
            let improved = trainer
                .state
                .best
                .as_ref()
                .is_none_or(|b| ev.metrics.ndcg_10 > b.val.ndcg_10);
            let mut e = MetricsEvent::new("eval", trainer.stage_name(), epoch, stepper.steps);
            e.split = Some("val".into());
            e.metrics = Some(ev.metrics);
            e.best = Some(improved);
            trainer.log(e)?;
            if improved {
                trainer.save_best(&model, &items, ev.metrics, epoch)?;
                trainer.state.patience_left = if trainer.state.stage == 1 {
                    config.patience_stage1
                } else {
                    config.patience_stage2
                };
            } else {
                trainer.state.patience_left = trainer.state.patience_left.saturating_sub(1);
                if trainer.state.patience_left == 0 {
                    stage_over = true;
                }
            }
        }

        if stage_over {
            if trainer.state.best.is_none() {
                // fewer epochs than `verbose`: evaluate once so that there is a best checkpoint
                let ev = trainer.eval(&model, &items, Split::Val)?;
                let mut e = MetricsEvent::new("eval", trainer.stage_name(), epoch, stepper.steps);
                e.split = Some("val".into());
                e.metrics = Some(ev.metrics);
                e.best = Some(true);
                trainer.log(e)?;
                trainer.save_best(&model, &items, ev.metrics, epoch)?;
            }
            if trainer.state.stage == 1 && config.variant == FinetuneVariant::TwoStage {
                let (m, best_items) = trainer.load_best(model)?;
                model = m;
                items = best_items;
                trainer.state.stage = 2;
                trainer.state.epoch = 0;
                trainer.state.patience_left = config.patience_stage2;
            } else {
                return finish(&mut trainer, model, &mut stepper);
            }
        }
        trainer.save_last(&model, &items, &mut stepper)?;
        if control
            .stop_after_epochs
            .is_some_and(|max| epochs_this_call >= max)
        {
            return Ok(FinetuneOutcome::Interrupted(trainer.state.clone()));
        }
    }
}

fn finish<B: AutodiffBackend>(
    trainer: &mut Trainer<'_, B>,
    model: RecformerModel<B>,
    stepper: &mut OptimizerStepper<B, RecformerModel<B>>,
) -> Result<FinetuneOutcome> {
    let (model, items) = trainer.load_best(model)?;
    let ev = trainer.eval(&model, &items, Split::Test)?;
    let best = trainer.state.best.clone();
    let mut e = MetricsEvent::new("test", "final", trainer.state.epoch, stepper.steps);
    e.split = Some("test".into());
    e.metrics = Some(ev.metrics);
    trainer.log(e)?;
    let best_model = trainer
        .run
        .path(&best.as_ref().map(|b| b.dir.clone()).unwrap_or_default())
        .join(run_dir::MODEL_SAFETENSORS_FILE);
    let result = FinetuneResult {
        test: ev.metrics,
        test_batch_mean: ev.batch_mean,
        best_val: best.map(|b| b.val),
        zero_shot: trainer.state.zero_shot,
        best_model,
        optimizer_steps: stepper.steps,
    };
    trainer.run.save_json(run_dir::RESULT_FILE, &result)?;
    trainer.state.result = Some(result.clone());
    trainer.state.optimizer_steps = stepper.steps;
    trainer.state.last_dir = None;
    trainer.commit_state()?;
    Ok(FinetuneOutcome::Finished(result))
}
