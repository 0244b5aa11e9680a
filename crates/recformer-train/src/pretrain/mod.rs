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

mod state;
mod step;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::{ItemTokens, MlmConfig, PretrainCorpus, RecformerTokenizer};
use recformer_model::{save_safetensors, RecformerForPretraining};

pub use self::state::{KeptCheckpoint, PretrainOutcome, PretrainState};
pub use self::step::{
    pretrain_step, sample_pair, sample_pretrain_epoch, validate_pretrain, PretrainLosses,
    PretrainPair,
};
use crate::checkpoint;
use crate::config::PretrainConfig;
use crate::error::{Error, Result};
use crate::finetune::RunControl;
use crate::freeze::freeze_pretraining_word_embeddings;
use crate::inputs::InputBuilder;
use crate::model_dir::{ModelDir, ModelSpec, RUN_MODEL_SUBDIR};
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::schedule::DecayKind;
use crate::seeds::derive_seed;
use crate::session::Session;
use crate::stepper::OptimizerStepper;

/// Data needed by pretraining.
#[derive(Debug, Clone, Copy)]
pub struct PretrainData<'a> {
    /// The model config and tokenizer (special ids, word starts for whole-word masking, limits);
    /// exported with the best weights as `RUN/model`.
    pub spec: &'a ModelSpec,
    /// Training and dev sequences (item rows).
    pub corpus: &'a PretrainCorpus,
    /// Tokens of every item, indexed by item row.
    pub item_tokens: &'a [ItemTokens],
}

impl PretrainData<'_> {
    /// Sequence construction (special ids from the tokenizer, limits from the config).
    pub fn builder(&self) -> InputBuilder {
        self.spec.input_builder()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &RecformerTokenizer {
        self.spec.tokenizer()
    }
}

/// Pretraining's policy on the shared run bookkeeping: top-k checkpoints by dev accuracy.
struct Run<'a> {
    session: Session<'a>,
    run: &'a RunDir,
    progress: &'a dyn Progress,
    state: PretrainState,
}

impl Run<'_> {
    fn log(&mut self, event: MetricsEvent) -> Result<()> {
        self.session.log(&mut self.state, event)
    }

    fn save_last<B: AutodiffBackend>(
        &mut self,
        model: &RecformerForPretraining<B>,
        stepper: &mut OptimizerStepper<B, RecformerForPretraining<B>>,
    ) -> Result<()> {
        self.session
            .save_last(&mut self.state, stepper, model, |dir| {
                checkpoint::save_weights(dir, model)
            })
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
/// When the run finishes, its best checkpoint is exported as a model directory `RUN/model`
/// ([`ModelDir::open`] accepts the run directory itself).
pub fn pretrain<B: AutodiffBackend>(
    model: RecformerForPretraining<B>,
    config: &PretrainConfig,
    data: &PretrainData<'_>,
    run: &RunDir,
    device: &B::Device,
    control: &RunControl<'_>,
    progress: &dyn Progress,
) -> Result<PretrainOutcome> {
    config.validate()?;
    let model_config = data.spec.config();
    let num_items = data.corpus.num_items();
    checkpoint::check_item_rows(data.item_tokens.len(), num_items)?;
    let num_seqs = data.corpus.train.iter().filter(|s| !s.is_empty()).count();
    if num_seqs == 0 {
        return Err(Error::InvalidData("no training sequence".into()));
    }
    let batches_per_epoch = num_seqs.div_ceil(config.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(config.optimizer.gradient_accumulation_steps);
    let total_steps = config
        .max_steps
        .unwrap_or(steps_per_epoch * config.max_epochs);
    let mlm_weight = config.mlm_weight.unwrap_or(model_config.mlm_weight);
    let mlm = MlmConfig {
        probability: config.mlm_probability,
        ..MlmConfig::default()
    };
    let temp = model_config.temp;
    let mut model = RecformerForPretraining {
        longformer: model.longformer.with_precision(config.precision),
        ..model
    };
    if config.fix_word_embedding {
        model = freeze_pretraining_word_embeddings(model);
    }
    // The item-item loss reads `forward_pooled`; without MLM the last layer's local
    // projections get no gradient.
    let mut stepper = OptimizerStepper::<B, RecformerForPretraining<B>>::new(
        config.optimizer.stepper(total_steps, DecayKind::Linear),
    )
    .with_zero_gradients_for(|m| m.longformer.params_outside_pooled());
    let mut r = Run {
        session: Session::new(run, progress),
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
    if let Some(mut state) = r.session.saved_state::<_, PretrainState>(config)? {
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
            r.session.resume(&mut state)?;
        }
        r.state = state;
    } else {
        r.session.start(config, model_config)?;
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
            || control.stop_requested()
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
            if control.stop_requested() && r.state.batch_in_epoch < chunks.len() {
                progress.on_finish();
                r.save_last(&model, &mut stepper)?;
                return Ok(PretrainOutcome {
                    best_model: best_model(&r.state),
                    state: r.state,
                });
            }
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
    let best = best_model(&r.state);
    if let Some(best) = &best {
        ModelDir::export(&run.path(RUN_MODEL_SUBDIR), data.spec, best, None)?;
    }
    Ok(PretrainOutcome {
        best_model: best,
        state: r.state,
    })
}
