//! A finished library run is a model directory: `finetune()` and `pretrain()` export `RUN/model`
//! themselves, with the item index (keys and texts) that a `Recommender` serves from.

mod common;

use burn::tensor::backend::Backend;
use common::{world, Inner, B};
use recformer_train::{
    pretrain, FinetuneConfig, FinetuneOutcome, ModelDir, NoProgress, PretrainConfig, PretrainData,
    Recommender, RunControl, RunDir,
};

#[test]
fn a_finished_finetuning_run_opens_as_a_model_directory_that_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = FinetuneConfig {
        num_train_epochs: 1,
        batch_size: 8,
        gradient_accumulation_steps: 1,
        learning_rate: 1e-3,
        warmup_steps: 1,
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
}

#[test]
fn a_finished_pretraining_run_opens_as_a_model_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = PretrainConfig {
        max_epochs: 1,
        batch_size: 6,
        gradient_accumulation_steps: 1,
        learning_rate: 1e-3,
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
