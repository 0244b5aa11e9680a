//! A finished library run is a model directory: `finetune()` and `pretrain()` export `RUN/model`
//! themselves, with the item index (keys and texts) that a `Recommender` serves from.

mod common;

use burn::tensor::backend::Backend;
use common::{world, Inner, B};
use recformer_train::{
    pretrain, FinetuneConfig, FinetuneOutcome, ModelDir, NoProgress, OptimizerConfig,
    PretrainConfig, PretrainData, Recommender, RunControl, RunDir,
};

#[test]
fn a_finished_finetuning_run_opens_as_a_model_directory_that_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = FinetuneConfig {
        num_train_epochs: 1,
        batch_size: 8,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: 1e-3,
            warmup_steps: 1,
            ..FinetuneConfig::default().optimizer
        },
        eval_batch_size: 8,
        encode_batch_size: 6,
        ..FinetuneConfig::default()
    };
    let run = tmp.path().join("run");
    let FinetuneOutcome::Finished(result) = common::run_finetune(&w, &run, &config, None) else {
        panic!("the run did not finish");
    };
    let md = ModelDir::open(&run).unwrap();
    assert_eq!(md.dir, run.join("model"));
    assert_eq!(md.config(), &w.model_config);
    let device = Default::default();
    let index = md.load_items::<Inner>(&device).unwrap().unwrap();
    assert_eq!(index.keys.as_deref(), Some(w.dataset.item_keys.as_slice()));
    assert_eq!(index.texts.as_deref(), Some(w.dataset.items.as_slice()));
    // The exported index is the best checkpoint's item matrix.
    let best = recformer_train::checkpoint::load_item_matrix::<Inner>(
        &result.best_model.with_file_name("items.safetensors"),
        &device,
    )
    .unwrap();
    assert_eq!(index.vectors.to_data(), best.to_data());

    let rec = Recommender::<Inner>::from_dir(&run, &device).unwrap();
    let recs = rec.recommend(&["I0", "I1"], 3, true).unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.key != "I0" && r.key != "I1"));

    // A finished run without its export (made before runs exported) gets one when called again.
    std::fs::remove_dir_all(run.join("model")).unwrap();
    let FinetuneOutcome::Finished(again) = common::run_finetune(&w, &run, &config, None) else {
        panic!("a finished run stays finished");
    };
    assert_eq!(again, result);
    assert_eq!(ModelDir::open(&run).unwrap().dir, run.join("model"));
}

#[test]
fn a_finished_pretraining_run_opens_as_a_model_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = PretrainConfig {
        max_epochs: 1,
        batch_size: 6,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: 1e-3,
            ..PretrainConfig::default().optimizer
        },
        val_batch_size: 6,
        ..PretrainConfig::default()
    };
    let data = PretrainData {
        spec: &w.spec,
        corpus: &w.corpus,
        item_tokens: &w.item_tokens,
    };
    let device = Default::default();
    B::seed(&device, 3);
    let run = tmp.path().join("pt");
    let outcome = pretrain(
        w.model_config.init_pretraining::<B>(&device),
        &config,
        &data,
        &RunDir::create(&run).unwrap(),
        &device,
        &RunControl::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(outcome.state.finished);
    let md = ModelDir::open(&run).unwrap();
    assert_eq!(md.dir, run.join("model"));
    let loaded = md.load::<Inner>(&device).unwrap();
    assert!(
        loaded.lm_head.is_some(),
        "the MLM head is exported for further pretraining"
    );
    assert!(md.items.is_none());
}

#[test]
fn a_stop_request_interrupts_at_the_next_checkpoint_and_the_run_resumes() {
    use std::sync::atomic::AtomicBool;
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let stop = AtomicBool::new(true);
    let control = RunControl {
        stop: Some(&stop),
        ..RunControl::default()
    };
    // Finetuning stops at the end of the first epoch, with its resume checkpoint written.
    let config = FinetuneConfig {
        num_train_epochs: 3,
        batch_size: 8,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            ..FinetuneConfig::default().optimizer
        },
        eval_batch_size: 8,
        encode_batch_size: 6,
        ..FinetuneConfig::default()
    };
    let device = Default::default();
    let run = tmp.path().join("ft");
    let data = recformer_train::FinetuneData {
        spec: &w.spec,
        dataset: &w.dataset,
        item_tokens: &w.item_tokens,
    };
    let outcome = recformer_train::finetune(
        w.model_config.init_model::<B>(&device),
        &config,
        &data,
        &RunDir::create(&run).unwrap(),
        &device,
        &control,
        &NoProgress,
    )
    .unwrap();
    let FinetuneOutcome::Interrupted(state) = outcome else {
        panic!("a stop request must interrupt the run");
    };
    assert_eq!(state.epoch, 1);
    assert!(state.last_dir.is_some(), "a resume checkpoint is written");

    // Pretraining stops after the micro-batch during which the request comes, and resumes.
    let pt_config = PretrainConfig {
        max_epochs: 1,
        batch_size: 4,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 2,
            ..PretrainConfig::default().optimizer
        },
        val_batch_size: 6,
        ..PretrainConfig::default()
    };
    let pt_data = PretrainData {
        spec: &w.spec,
        corpus: &w.corpus,
        item_tokens: &w.item_tokens,
    };
    let pt_run = RunDir::create(tmp.path().join("pt")).unwrap();
    let pt_stop = AtomicBool::new(false);
    let first = pretrain(
        w.model_config.init_pretraining::<B>(&device),
        &pt_config,
        &pt_data,
        &pt_run,
        &device,
        &RunControl {
            stop: Some(&pt_stop),
            ..RunControl::default()
        },
        &StopOnFirstBatch(&pt_stop),
    )
    .unwrap();
    assert!(!first.state.finished);
    assert_eq!(first.state.batch_in_epoch, 1);
    let resumed = pretrain(
        w.model_config.init_pretraining::<B>(&device),
        &pt_config,
        &pt_data,
        &pt_run,
        &device,
        &RunControl::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(resumed.state.finished);
}

/// Requests a stop when the first micro-batch is done (as a Ctrl-C during it would).
struct StopOnFirstBatch<'a>(&'a std::sync::atomic::AtomicBool);

impl recformer_train::Progress for StopOnFirstBatch<'_> {
    fn on_start(&self, _label: &str, _total: u64) {}
    fn on_advance(&self, n: u64) {
        if n > 0 {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn on_finish(&self) {}
}
