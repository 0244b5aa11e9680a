//! Pretraining: item-item contrastive + MLM (official `RecformerForPretraining`,
//! `PretrainDataCollatorWithPadding`, `LitWrapper`; spec §4.1).
//!
//! Per epoch, one sample per training sequence (sequences shuffled): `n = len`,
//! `t ~ U[(n-1)//2, n-1]`, history `seq[..t]` (may be empty), target `[seq[t]]`.
//! Per micro-batch, four encoder passes: pooled history `z1` and pooled target `z2` on unmasked
//! inputs; MLM on the masked history and on the masked target. Loss:
//! `IIC(z1, z2) + mlm_weight · (MLM_a + MLM_b)`. AdamW, linear schedule with optional warmup,
//! global-norm clipping, accumulation (the leftover micro-batches of an epoch are applied at the
//! epoch end, as Lightning does), optional frozen word embeddings, dev validation (in-batch
//! accuracy) every `val_check_interval` micro-batches and at each epoch end, top-k checkpoints.

use std::path::PathBuf;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recformer_data::{mask_mlm, ItemTokens, MlmConfig, PretrainCorpus, RecformerTokenizer};
use recformer_model::{save_safetensors, RecformerConfig, RecformerForPretraining};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::config::PretrainConfig;
use crate::error::{Error, Result};
use crate::finetune::RunControl;
use crate::inputs::{with_input_ids, InputBuilder};
use crate::loss::{iic_loss, in_batch_accuracy, mlm_loss_full, mlm_loss_lean};
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::schedule::{DecayKind, LrSchedule};
use crate::seeds::derive_seed;
use crate::stepper::{OptimizerStepper, StepperConfig};

/// Data needed by pretraining.
#[derive(Debug, Clone, Copy)]
pub struct PretrainData<'a> {
    /// Training and dev sequences (item rows).
    pub corpus: &'a PretrainCorpus,
    /// Tokens of every item, indexed by item row.
    pub item_tokens: &'a [ItemTokens],
    /// Tokenizer (special ids and word starts for whole-word masking).
    pub tokenizer: &'a RecformerTokenizer,
    /// Sequence construction.
    pub builder: InputBuilder,
}

/// One kept checkpoint (top-k by dev accuracy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptCheckpoint {
    /// Dev in-batch accuracy.
    pub accuracy: f64,
    /// Optimizer steps when it was saved.
    pub step: usize,
    /// Epoch it was saved in.
    pub epoch: usize,
    /// Directory name in the run directory (holds `model.safetensors`, HF names with `lm_head.*`).
    pub dir: String,
}

/// Persistent pretraining state (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainState {
    /// Current epoch.
    pub epoch: usize,
    /// Next micro-batch index within the epoch.
    pub batch_in_epoch: usize,
    /// Optimizer steps so far.
    pub optimizer_steps: usize,
    /// Micro-batches accumulated but not yet applied.
    pub pending_micro_batches: usize,
    /// Kept checkpoints, best first.
    pub top_k: Vec<KeptCheckpoint>,
    /// Resume checkpoint directory.
    pub last_dir: Option<String>,
    /// Lines of `metrics.jsonl` that belong to this state.
    pub events_logged: usize,
    /// Counter for directory names.
    pub counter: usize,
    /// Whether the run is complete.
    pub finished: bool,
}

/// What [`pretrain`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainOutcome {
    /// Final state (`finished == false` when stopped by [`RunControl`]).
    pub state: PretrainState,
    /// Path of the best checkpoint's `model.safetensors`, if any validation ran.
    pub best_model: Option<PathBuf>,
}

/// One pretraining pair: history (oldest first) and target item.
pub type PretrainPair = (Vec<usize>, usize);

/// The official `sample_pairs`: target index uniform in `[(n-1)//2, n-1]`. Empty sequences are
/// skipped.
pub fn sample_pair<R: Rng>(seq: &[usize], rng: &mut R) -> Option<PretrainPair> {
    let n = seq.len();
    if n == 0 {
        return None;
    }
    let t = rng.random_range((n - 1) / 2..n);
    Some((seq[..t].to_vec(), seq[t]))
}

/// Samples of one epoch, shuffled.
pub fn sample_pretrain_epoch<R: Rng>(seqs: &[Vec<usize>], rng: &mut R) -> Vec<PretrainPair> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.shuffle(rng);
    order
        .into_iter()
        .filter_map(|i| sample_pair(&seqs[i], rng))
        .collect()
}

/// Losses of one micro-batch.
#[derive(Debug)]
pub struct PretrainLosses<B: Backend> {
    /// Total loss `iic + w (mlm_a + mlm_b)`, shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// IIC loss.
    pub iic: Tensor<B, 1>,
    /// MLM loss on the histories.
    pub mlm_a: Tensor<B, 1>,
    /// MLM loss on the targets.
    pub mlm_b: Tensor<B, 1>,
    /// In-batch accuracy (sequence → target arg-max on the diagonal).
    pub accuracy: f64,
}

/// Forward of one pretraining micro-batch (four encoder passes).
#[allow(clippy::too_many_arguments)]
pub fn pretrain_step<B: Backend, R: Rng>(
    model: &RecformerForPretraining<B>,
    pairs: &[PretrainPair],
    data: &PretrainData<'_>,
    mlm: &MlmConfig,
    temp: f64,
    mlm_weight: f64,
    lean_mlm: bool,
    rng: &mut R,
    device: &B::Device,
) -> PretrainLosses<B> {
    let histories: Vec<&[usize]> = pairs.iter().map(|(h, _)| h.as_slice()).collect();
    let targets: Vec<[usize; 1]> = pairs.iter().map(|(_, t)| [*t]).collect();
    let target_refs: Vec<&[usize]> = targets.iter().map(|t| t.as_slice()).collect();
    let (batch_a, input_a) = data
        .builder
        .batch::<B>(&histories, data.item_tokens, device);
    let (batch_b, input_b) = data
        .builder
        .batch::<B>(&target_refs, data.item_tokens, device);
    let masked_a = mask_mlm(&batch_a, data.tokenizer, mlm, rng);
    let masked_b = mask_mlm(&batch_b, data.tokenizer, mlm, rng);

    let z1 = model.longformer.forward(input_a.clone()).pooler_output;
    let z2 = model.longformer.forward(input_b.clone()).pooler_output;
    let iic = iic_loss(z1, z2, temp);
    let accuracy = in_batch_accuracy(iic.logits.clone().detach());

    let mut mlm_losses = Vec::with_capacity(2);
    for (input, masked) in [(&input_a, &masked_a), (&input_b, &masked_b)] {
        let hidden = model
            .longformer
            .forward(with_input_ids(input, &masked.input_ids, device))
            .last_hidden_state;
        mlm_losses.push(if lean_mlm {
            mlm_loss_lean(&model.lm_head, hidden, &masked.labels)
        } else {
            mlm_loss_full(model.lm_head.forward(hidden), &masked.labels)
        });
    }
    let mlm_b = mlm_losses.pop().expect("two MLM losses");
    let mlm_a = mlm_losses.pop().expect("two MLM losses");
    let loss = iic.loss.clone() + (mlm_a.clone() + mlm_b.clone()).mul_scalar(mlm_weight);
    PretrainLosses {
        loss,
        iic: iic.loss,
        mlm_a,
        mlm_b,
        accuracy,
    }
}

/// Dev in-batch accuracy (mean over validation batches) with a fixed sample of pairs.
pub fn validate_pretrain<B: Backend>(
    model: &RecformerForPretraining<B>,
    data: &PretrainData<'_>,
    config: &PretrainConfig,
    temp: f64,
    device: &B::Device,
    progress: &dyn Progress,
) -> Option<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, &[1]));
    let dev: &[Vec<usize>] = match config.val_max_sequences {
        Some(m) => &data.corpus.dev[..m.min(data.corpus.dev.len())],
        None => &data.corpus.dev,
    };
    let pairs: Vec<PretrainPair> = dev
        .iter()
        .filter_map(|s| sample_pair(s, &mut rng))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    progress.on_start("validate", pairs.len() as u64);
    let mut sum = 0.0;
    let mut batches = 0usize;
    for chunk in pairs.chunks(config.val_batch_size) {
        let histories: Vec<&[usize]> = chunk.iter().map(|(h, _)| h.as_slice()).collect();
        let targets: Vec<[usize; 1]> = chunk.iter().map(|(_, t)| [*t]).collect();
        let target_refs: Vec<&[usize]> = targets.iter().map(|t| t.as_slice()).collect();
        let (_, a) = data
            .builder
            .batch::<B>(&histories, data.item_tokens, device);
        let (_, b) = data
            .builder
            .batch::<B>(&target_refs, data.item_tokens, device);
        let z1 = model.longformer.forward(a).pooler_output;
        let z2 = model.longformer.forward(b).pooler_output;
        sum += in_batch_accuracy(iic_loss(z1, z2, temp).logits);
        batches += 1;
        progress.on_advance(chunk.len() as u64);
    }
    progress.on_finish();
    Some(sum / batches as f64)
}

fn freeze_word_embeddings<B: Backend>(
    mut model: RecformerForPretraining<B>,
) -> RecformerForPretraining<B> {
    model.longformer.embeddings.word_embeddings.weight = model
        .longformer
        .embeddings
        .word_embeddings
        .weight
        .set_require_grad(false);
    model
}

struct Run<'a> {
    run: &'a RunDir,
    progress: &'a dyn Progress,
    state: PretrainState,
}

impl Run<'_> {
    fn log(&mut self, event: MetricsEvent) -> Result<()> {
        self.run.log_event(&event)?;
        self.progress.on_event(&event);
        self.state.events_logged += 1;
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        self.run.save_json(run_dir::STATE_FILE, &self.state)?;
        let mut keep: Vec<&str> = self.state.top_k.iter().map(|k| k.dir.as_str()).collect();
        if let Some(l) = &self.state.last_dir {
            keep.push(l);
        }
        self.run.prune("last-", &keep)?;
        self.run.prune("ckpt-", &keep)
    }

    fn save_last<B: AutodiffBackend>(
        &mut self,
        model: &RecformerForPretraining<B>,
        stepper: &mut OptimizerStepper<B, RecformerForPretraining<B>>,
    ) -> Result<()> {
        self.state.counter += 1;
        let name = format!("last-{:05}", self.state.counter);
        let dir = self.run.fresh_subdir(&name)?;
        checkpoint::save_record::<B, _>(
            &dir.join(run_dir::MODEL_RECORD_FILE),
            model.clone().into_record(),
        )?;
        stepper.save(&dir, model)?;
        self.state.optimizer_steps = stepper.steps;
        self.state.pending_micro_batches = stepper.pending;
        self.state.last_dir = Some(name);
        self.commit()
    }

    /// Validation + top-k bookkeeping.
    #[allow(clippy::too_many_arguments)]
    fn validate<B: AutodiffBackend>(
        &mut self,
        model: &RecformerForPretraining<B>,
        data: &PretrainData<'_>,
        config: &PretrainConfig,
        temp: f64,
        steps: usize,
        train_loss: Option<f64>,
        device: &B::Device,
    ) -> Result<()> {
        let valid = model.valid();
        let Some(accuracy) = validate_pretrain(&valid, data, config, temp, device, self.progress)
        else {
            return Ok(());
        };
        let mut e = MetricsEvent::new("validation", "pretrain", self.state.epoch, steps);
        e.split = Some("dev".into());
        e.accuracy = Some(accuracy);
        e.loss = train_loss;
        let qualifies = config.save_top_k > 0
            && (self.state.top_k.len() < config.save_top_k
                || self
                    .state
                    .top_k
                    .last()
                    .is_some_and(|worst| accuracy > worst.accuracy));
        e.best = Some(
            self.state
                .top_k
                .first()
                .is_none_or(|b| accuracy > b.accuracy),
        );
        self.log(e)?;
        if qualifies {
            self.state.counter += 1;
            let name = format!("ckpt-{:05}-step{steps}", self.state.counter);
            let dir = self.run.fresh_subdir(&name)?;
            save_safetensors(
                &valid.longformer,
                Some(&valid.lm_head),
                None,
                &dir.join(run_dir::MODEL_SAFETENSORS_FILE),
            )?;
            self.state.top_k.push(KeptCheckpoint {
                accuracy,
                step: steps,
                epoch: self.state.epoch,
                dir: name,
            });
            // stable: earlier checkpoints win ties
            self.state
                .top_k
                .sort_by(|a, b| b.accuracy.total_cmp(&a.accuracy));
            self.state.top_k.truncate(config.save_top_k);
        }
        Ok(())
    }
}

/// Runs (or resumes) pretraining in `run`. `control.stop_after_epochs` interrupts after that many
/// epochs of this call. Resuming requires the same `config` as saved in the run directory.
#[allow(clippy::too_many_arguments)]
pub fn pretrain<B: AutodiffBackend>(
    model: RecformerForPretraining<B>,
    model_config: &RecformerConfig,
    config: &PretrainConfig,
    data: &PretrainData<'_>,
    run: &RunDir,
    device: &B::Device,
    control: &RunControl,
    progress: &dyn Progress,
) -> Result<PretrainOutcome> {
    config.validate()?;
    let num_items = data.corpus.num_items();
    if data.item_tokens.len() != num_items {
        return Err(Error::InvalidData(format!(
            "{} item token rows for {num_items} items",
            data.item_tokens.len()
        )));
    }
    let num_seqs = data.corpus.train.iter().filter(|s| !s.is_empty()).count();
    if num_seqs == 0 {
        return Err(Error::InvalidData("no training sequence".into()));
    }
    let batches_per_epoch = num_seqs.div_ceil(config.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(config.gradient_accumulation_steps);
    let total_steps = config
        .max_steps
        .unwrap_or(steps_per_epoch * config.max_epochs);
    let mlm_weight = config.mlm_weight.unwrap_or(model_config.mlm_weight);
    let mlm = MlmConfig {
        probability: config.mlm_probability,
        ..MlmConfig::default()
    };
    let temp = model_config.temp;
    let mut model = if config.fix_word_embedding {
        freeze_word_embeddings(model)
    } else {
        model
    };
    let mut stepper = OptimizerStepper::<B, RecformerForPretraining<B>>::new(StepperConfig {
        schedule: LrSchedule {
            base_lr: config.learning_rate,
            warmup_steps: config.warmup_steps,
            total_steps,
            decay: DecayKind::Linear,
        },
        accumulation: config.gradient_accumulation_steps,
        max_grad_norm: config.max_grad_norm,
        weight_decay: config.weight_decay,
        adam_epsilon: config.adam_epsilon,
    });
    let mut r = Run {
        run,
        progress,
        state: PretrainState {
            epoch: 0,
            batch_in_epoch: 0,
            optimizer_steps: 0,
            pending_micro_batches: 0,
            top_k: Vec::new(),
            last_dir: None,
            events_logged: 0,
            counter: 0,
            finished: false,
        },
    };
    if run.has_state() {
        let saved: PretrainConfig = checkpoint::load_json(&run.path(run_dir::TRAIN_CONFIG_FILE))?;
        if &saved != config {
            return Err(Error::Resume {
                path: run.root().to_path_buf(),
                reason: format!(
                    "{} differs from the given config",
                    run_dir::TRAIN_CONFIG_FILE
                ),
            });
        }
        let state: PretrainState = checkpoint::load_json(&run.path(run_dir::STATE_FILE))?;
        if !state.finished {
            let last = state.last_dir.clone().ok_or_else(|| Error::Resume {
                path: run.root().to_path_buf(),
                reason: "state.json names no checkpoint".into(),
            })?;
            let dir = run.path(&last);
            let record =
                checkpoint::load_record::<B, _>(&dir.join(run_dir::MODEL_RECORD_FILE), device)?;
            model = model.load_record(record);
            stepper = stepper.load(
                &dir,
                &model,
                state.pending_micro_batches,
                state.optimizer_steps,
                device,
            )?;
            run.truncate_events(state.events_logged)?;
        }
        r.state = state;
    } else {
        run.truncate_events(0)?;
        run.save_json(run_dir::TRAIN_CONFIG_FILE, config)?;
        model_config.save_json(run.path(run_dir::MODEL_CONFIG_FILE))?;
    }

    let best_model = |state: &PretrainState| {
        state
            .top_k
            .first()
            .map(|k| run.path(&k.dir).join(run_dir::MODEL_SAFETENSORS_FILE))
    };
    let mut epochs_this_call = 0usize;
    while !r.state.finished {
        if control
            .stop_after_epochs
            .is_some_and(|max| epochs_this_call >= max)
        {
            r.save_last(&model, &mut stepper)?;
            return Ok(PretrainOutcome {
                best_model: best_model(&r.state),
                state: r.state,
            });
        }
        let epoch = r.state.epoch;
        let epoch_seed = derive_seed(config.seed, &[0, epoch as u64]);
        let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed);
        let pairs = sample_pretrain_epoch(&data.corpus.train, &mut rng);
        let label = format!("pretrain epoch {}", epoch + 1);
        progress.on_start(&label, batches_per_epoch as u64);
        progress.on_advance(r.state.batch_in_epoch as u64);
        let mut loss_sum = 0.0;
        let mut loss_n = 0usize;
        let mut stop = false;
        let chunks: Vec<&[PretrainPair]> = pairs.chunks(config.batch_size).collect();
        while r.state.batch_in_epoch < chunks.len() {
            let i = r.state.batch_in_epoch;
            let mut batch_rng = ChaCha8Rng::seed_from_u64(derive_seed(epoch_seed, &[i as u64, 7]));
            B::seed(device, derive_seed(epoch_seed, &[i as u64, 9]));
            let out = pretrain_step(
                &model,
                chunks[i],
                data,
                &mlm,
                temp,
                mlm_weight,
                config.lean_mlm,
                &mut batch_rng,
                device,
            );
            loss_sum += out.loss.clone().into_scalar().elem::<f64>();
            loss_n += 1;
            model = stepper.backward(model, out.loss);
            r.state.batch_in_epoch += 1;
            if r.state.batch_in_epoch == chunks.len() {
                model = stepper.step(model); // Lightning steps on the epoch's last batch
            }
            progress.on_advance(1);
            if config.max_steps.is_some_and(|m| stepper.steps >= m) {
                stop = true;
                break;
            }
            if config.val_check_interval > 0
                && r.state
                    .batch_in_epoch
                    .is_multiple_of(config.val_check_interval)
                && r.state.batch_in_epoch < chunks.len()
            {
                let mean = loss_sum / loss_n.max(1) as f64;
                r.validate(
                    &model,
                    data,
                    config,
                    temp,
                    stepper.steps,
                    Some(mean),
                    device,
                )?;
                r.save_last(&model, &mut stepper)?;
            }
        }
        progress.on_finish();
        let mean = (loss_n > 0).then(|| loss_sum / loss_n as f64);
        let mut e = MetricsEvent::new("epoch", "pretrain", epoch, stepper.steps);
        e.loss = mean;
        e.lr = Some(stepper.last_lr);
        r.log(e)?;
        r.validate(&model, data, config, temp, stepper.steps, mean, device)?;
        epochs_this_call += 1;
        r.state.epoch += 1;
        r.state.batch_in_epoch = 0;
        if stop || r.state.epoch >= config.max_epochs {
            r.state.finished = true;
        }
        r.save_last(&model, &mut stepper)?;
    }
    Ok(PretrainOutcome {
        best_model: best_model(&r.state),
        state: r.state,
    })
}
