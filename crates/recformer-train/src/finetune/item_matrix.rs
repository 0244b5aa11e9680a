//! The `item-matrix` variant: the encoder keeps its initial (pretrained) weights and the item
//! matrix is the trained parameter (the seed's "item embedding trainable" setting, with the
//! encoder frozen).
//!
//! ```text
//! I0 = encode(initial model); test eval (zero-shot print)
//! contexts = every prefix of every training sequence that has at least one item:
//!            history train[..t], label train[t], t = 1..len-1 (what the official sampler can
//!            draw, minus the empty history), encoded once by the frozen encoder
//! val users encoded once (up to max_eval_users)
//! I = I0, a parameter; rows of items that are never a context label stay at I0 (they would only
//!     ever be pushed away as negatives: cold items would sink to the bottom of every ranking)
//! every epoch: contexts shuffled; per batch the finetuning loss
//!     CE(cos(context, I) / temp) over all items, gradient into I only; AdamW + schedule
//!     every `verbose` epochs: val eval of the cached vectors against I; best -> saved;
//!     `patience_stage1` evaluations without improvement, or `num_train_epochs`, end the run
//! reload best; final test eval
//! ```
//! The frozen encoder is run once per context instead of once per sample and epoch, so an epoch
//! costs a `[batch, N]` matmul per batch; the text prior stays in I0 and in the user side, and
//! the co-occurrence ("collaborative") signal of the training sequences moves the item rows.
//! Resume: the last checkpoint holds I and the optimizer state; the context vectors are
//! re-encoded (deterministically) when a run resumes.

use burn::module::{AutodiffModule, Module, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::{EvalExample, Split};
use recformer_model::{l2_normalize, RecformerModel};

use super::trainer::Trainer;
use super::{FinetuneOutcome, RunControl};
use crate::encode::encode_histories;
use crate::error::{Error, Result};
use crate::evaluate::evaluate_vectors;
use crate::loss::finetune_loss;
use crate::progress::MetricsEvent;
use crate::run_dir;
use crate::schedule::DecayKind;
use crate::seeds::derive_seed;
use crate::stepper::OptimizerStepper;
use crate::{checkpoint, Metrics};

/// The trained parameter: the item matrix `[N, H]` (raw, normalised in the loss).
#[derive(Module, Debug)]
pub struct ItemMatrixParam<B: Backend> {
    /// `item_embedding.weight`.
    pub weight: Param<Tensor<B, 2>>,
}

/// Training contexts: every prefix with at least one item of every training sequence, as
/// `(history, label)` in user order.
pub fn training_contexts(
    train: &std::collections::BTreeMap<usize, Vec<usize>>,
) -> Vec<(&[usize], usize)> {
    train
        .values()
        .flat_map(|seq| (1..seq.len()).map(move |t| (&seq[..t], seq[t])))
        .collect()
}

/// Id of the item-matrix parameter, fixed so that a resumed optimizer state finds it.
const ITEM_PARAM_ID: u64 = 0x17e3_0a71;

impl<B: Backend> ItemMatrixParam<B> {
    /// The trainable parameter holding `items`.
    pub fn new(items: Tensor<B, 2>) -> Self {
        Self {
            weight: Param::initialized(ParamId::from(ITEM_PARAM_ID), items.require_grad()),
        }
    }
}

/// The variant's entry point (see the module doc), called by [`finetune`](super::finetune).
pub(super) fn finetune_item_matrix<B: AutodiffBackend>(
    mut trainer: Trainer<'_, B>,
    model: RecformerModel<B>,
    control: &RunControl<'_>,
) -> Result<FinetuneOutcome> {
    let (config, data, rd) = (trainer.config, trainer.data, trainer.run);
    let contexts = training_contexts(&data.dataset.train).len();
    if contexts == 0 {
        return Err(Error::InvalidData(
            "no training sequence has two items: the item-matrix variant has no contexts".into(),
        ));
    }
    let batches = contexts.div_ceil(config.batch_size);
    let mut stepper = OptimizerStepper::<B, ItemMatrixParam<B>>::new(config.optimizer.stepper(
        (batches / config.optimizer.gradient_accumulation_steps).max(1) * config.num_train_epochs,
        DecayKind::Official,
    ));
    let resumed = match trainer.resume_state()? {
        Some(state) if state.result.is_some() || state.last_dir.is_some() => Some(state),
        _ => None,
    };
    let items = match resumed {
        Some(mut state) => {
            if let Some(result) = &state.result {
                return super::finished(&trainer, result);
            }
            let dir = rd.path(state.last_dir.as_deref().unwrap_or_default());
            let items = checkpoint::load_item_matrix::<B::InnerBackend>(
                &dir.join(run_dir::ITEMS_FILE),
                trainer.device,
            )?;
            let template = ItemMatrixParam::new(Tensor::<B, 2>::from_inner(items.clone()));
            stepper = stepper.load(
                &dir,
                &template,
                state.pending_micro_batches,
                state.optimizer_steps,
                trainer.device,
            )?;
            trainer.session().resume(&mut state)?;
            trainer.state = state;
            items
        }
        None => trainer.start_fresh(&model)?,
    };
    match run(&mut trainer, &model, items, &mut stepper, control)? {
        true => super::finish(&mut trainer, model, stepper.steps),
        false => Ok(FinetuneOutcome::Interrupted(trainer.state.clone())),
    }
}

/// Runs the epochs to the end (`true`) or until `control` stops it (`false`); `items` is I0
/// (fresh) or the last checkpoint's matrix (resume).
fn run<B: AutodiffBackend>(
    trainer: &mut Trainer<'_, B>,
    model: &RecformerModel<B>,
    items: Tensor<B::InnerBackend, 2>,
    stepper: &mut OptimizerStepper<B, ItemMatrixParam<B>>,
    control: &RunControl<'_>,
) -> Result<bool> {
    let (config, data, device, progress) = (
        trainer.config,
        trainer.data,
        trainer.device,
        trainer.progress,
    );
    let encoder = model.valid();
    let contexts = training_contexts(&data.dataset.train);
    let histories: Vec<&[usize]> = contexts.iter().map(|(h, _)| *h).collect();
    let labels: Vec<usize> = contexts.iter().map(|(_, l)| *l).collect();
    let bs = config.encode_batch_size;
    let ctx = encode_histories(
        &encoder,
        &histories,
        data.item_tokens,
        &data.builder(),
        bs,
        device,
        progress,
        "encode contexts",
    );
    let val: Vec<EvalExample> = {
        let all = data.dataset.eval_examples(Split::Val);
        let n = config.max_eval_users.unwrap_or(all.len()).min(all.len());
        all.into_iter().take(n).collect()
    };
    let val_hist: Vec<&[usize]> = val.iter().map(|e| e.history.as_slice()).collect();
    let val_users = encode_histories(
        &encoder,
        &val_hist,
        data.item_tokens,
        &data.builder(),
        bs,
        device,
        progress,
        "encode val users",
    );
    let options = crate::EvalOptions {
        batch_size: config.eval_batch_size,
        temp: trainer.model_config.temp,
        exclude_history: config.exclude_history,
        max_users: None,
    };

    // 1 for the rows that are some context's label (trained), 0 for the rest (kept as they are:
    // at I0, also on resume, since they never change)
    let n = items.dims()[0];
    let mut is_label = vec![0.0f32; n];
    for &l in &labels {
        is_label[l] = 1.0;
    }
    let trained =
        Tensor::<B, 2>::from_inner(Tensor::from_data(TensorData::new(is_label, [n, 1]), device));
    let kept = Tensor::<B, 2>::from_inner(items.clone()) * trained.clone().neg().add_scalar(1.0);
    let matrix = |p: &ItemMatrixParam<B>| p.weight.val() * trained.clone() + kept.clone();
    let mut param = ItemMatrixParam::new(Tensor::<B, 2>::from_inner(items));
    let mut epochs_this_call = 0usize;
    loop {
        let epoch = trainer.state.epoch;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, &[3, epoch as u64]));
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.shuffle(&mut rng);
        progress.on_start(
            &format!("item matrix epoch {}", epoch + 1),
            order.len() as u64,
        );
        let (mut loss_sum, mut batches) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
            let idx = Tensor::<B::InnerBackend, 1, Int>::from_data(
                TensorData::new(idx, [chunk.len()]),
                device,
            );
            let seq = Tensor::<B, 2>::from_inner(ctx.clone().select(0, idx));
            let chunk_labels: Vec<usize> = chunk.iter().map(|&i| labels[i]).collect();
            let loss = finetune_loss(
                seq,
                l2_normalize(matrix(&param)),
                &chunk_labels,
                trainer.model_config.temp,
                config.loss_chunk_size,
            );
            loss_sum += loss.clone().into_scalar().elem::<f64>();
            batches += 1;
            param = stepper.backward(param, loss);
            progress.on_advance(chunk.len() as u64);
        }
        progress.on_finish();
        trainer.state.epoch += 1;
        epochs_this_call += 1;
        let mut e = MetricsEvent::new("epoch", "items", epoch, stepper.steps);
        e.loss = Some(loss_sum / batches.max(1) as f64);
        e.lr = Some(stepper.last_lr);
        trainer.log(e)?;

        let items_now = matrix(&param).inner();
        let mut over = trainer.state.epoch >= config.num_train_epochs;
        if (epoch + 1).is_multiple_of(config.verbose) || over {
            let ev = evaluate_vectors(&items_now, &val_users, &val, &options, progress)?;
            let improved = improves(trainer.state.best.as_ref().map(|b| &b.val), &ev.metrics);
            let mut e = MetricsEvent::new("eval", "items", epoch, stepper.steps);
            e.split = Some("val".into());
            e.metrics = Some(ev.metrics);
            e.best = Some(improved);
            trainer.log(e)?;
            if improved {
                trainer.save_best(model, &items_now, ev.metrics, epoch)?;
                trainer.state.patience_left = config.patience_stage1;
            } else {
                trainer.state.patience_left = trainer.state.patience_left.saturating_sub(1);
                over |= trainer.state.patience_left == 0;
            }
        }
        if over {
            return Ok(true);
        }
        save_last(trainer, &items_now, stepper, &param)?;
        if control
            .stop_after_epochs
            .is_some_and(|max| epochs_this_call >= max)
            || control.stop_requested()
        {
            return Ok(false);
        }
    }
}

fn improves(best: Option<&Metrics>, new: &Metrics) -> bool {
    best.is_none_or(|b| new.ndcg_10 > b.ndcg_10)
}

/// The resume checkpoint of the variant: the item matrix and the optimizer state.
fn save_last<B: AutodiffBackend>(
    trainer: &mut Trainer<'_, B>,
    items: &Tensor<B::InnerBackend, 2>,
    stepper: &mut OptimizerStepper<B, ItemMatrixParam<B>>,
    param: &ItemMatrixParam<B>,
) -> Result<()> {
    trainer
        .session()
        .save_last(&mut trainer.state, stepper, param, |dir| {
            checkpoint::save_item_matrix(&dir.join(run_dir::ITEMS_FILE), items)
        })
}
