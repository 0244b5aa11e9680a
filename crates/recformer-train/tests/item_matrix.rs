//! The `item-matrix` finetuning variant: the encoder stays as it was, the item matrix learns,
//! and an interrupted run resumes to exactly the uninterrupted result.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use common::{run_finetune, world, World, B};
use recformer_train::finetune::item_matrix::training_contexts;
use recformer_train::finetune::FinetuneOutcome;
use recformer_train::{
    checkpoint, FinetuneConfig, FinetuneVariant, MetricsEvent, NoProgress, OptimizerConfig, RunDir,
};

/// The backend RNG (init) is process-global: tests that train must not interleave.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config() -> FinetuneConfig {
    FinetuneConfig {
        variant: FinetuneVariant::ItemMatrix,
        num_train_epochs: 6,
        batch_size: 8,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: 0.1,
            warmup_steps: 0,
            ..FinetuneConfig::default().optimizer
        },
        verbose: 1,
        patience_stage1: 10,
        eval_batch_size: 8,
        encode_batch_size: 5,
        ..FinetuneConfig::default()
    }
}

fn events(dir: &Path) -> Vec<MetricsEvent> {
    RunDir::create(dir).unwrap().read_events().unwrap()
}

/// The item matrix of the run's best checkpoint and the initial model's I0.
fn best_and_initial_items(
    w: &World,
    dir: &Path,
) -> (
    burn::tensor::Tensor<common::Inner, 2>,
    burn::tensor::Tensor<common::Inner, 2>,
) {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let best = dir.join(state["best"]["dir"].as_str().unwrap());
    let device = Default::default();
    B::seed(&device, 7);
    let initial = w.model_config.init_model::<B>(&device);
    let items =
        checkpoint::load_item_matrix::<common::Inner>(&best.join("items.safetensors"), &device)
            .unwrap();
    let i0 = recformer_train::encode_all_items(
        &initial.valid(),
        &w.item_tokens,
        &w.builder,
        5,
        &device,
        &NoProgress,
    );
    (items, i0)
}

#[test]
fn contexts_are_every_prefix_with_at_least_one_item() {
    let train = BTreeMap::from([
        (0, vec![4, 5, 6]),
        (1, vec![7]),
        (2, vec![]),
        (3, vec![1, 2]),
    ]);
    let got: Vec<(Vec<usize>, usize)> = training_contexts(&train)
        .into_iter()
        .map(|(h, l)| (h.to_vec(), l))
        .collect();
    assert_eq!(
        got,
        vec![(vec![4], 5), (vec![4, 5], 6), (vec![1], 2)],
        "users in key order, prefixes in time order, single-item and empty sequences give none"
    );
}

#[test]
fn encoder_stays_frozen_while_the_item_matrix_learns() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let dir = tmp.path().join("run");
    let FinetuneOutcome::Finished(result) = run_finetune(&w, &dir, &config(), None) else {
        panic!("must finish");
    };
    let ev = events(&dir);
    let losses: Vec<f64> = ev
        .iter()
        .filter(|e| e.kind == "epoch")
        .map(|e| e.loss.unwrap())
        .collect();
    assert_eq!(losses.len(), 6, "no early stop with patience 10");
    assert!(
        *losses.last().unwrap() < losses[0] - 0.05,
        "the training loss falls: {losses:?}"
    );
    // the best checkpoint: the initial encoder, a changed item matrix
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let best = dir.join(state["best"]["dir"].as_str().unwrap());
    let device = Default::default();
    B::seed(&device, 7);
    let initial = w.model_config.init_model::<B>(&device);
    let record = checkpoint::load_record::<B, _>(&best.join("model.mpk"), &device).unwrap();
    let saved = initial.clone().load_record(record);
    let (a, b) = (
        initial.embeddings.word_embeddings.weight.val(),
        saved.embeddings.word_embeddings.weight.val(),
    );
    assert_eq!(a.into_data(), b.into_data(), "encoder unchanged");
    let (items, i0) = best_and_initial_items(&w, &dir);
    let moved: f32 = (items - i0).abs().max().into_scalar();
    assert!(
        moved > 1e-3,
        "the item matrix was trained (max change {moved})"
    );
    // the test split is evaluated with the best matrix; the zero-shot print is there too
    assert_eq!(ev.last().unwrap().stage, "final");
    assert_eq!(ev.last().unwrap().metrics, Some(result.test));
    assert!(result.zero_shot.is_some());
}

#[test]
fn item_matrix_resume_matches_uninterrupted_run() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = FinetuneConfig {
        num_train_epochs: 4,
        ..config()
    };
    let a_dir = tmp.path().join("a");
    let FinetuneOutcome::Finished(a) = run_finetune(&w, &a_dir, &config, None) else {
        panic!("uninterrupted run must finish");
    };
    let b_dir = tmp.path().join("b");
    let mut calls = 0;
    let b = loop {
        calls += 1;
        assert!(calls < 10, "run never finishes");
        match run_finetune(&w, &b_dir, &config, Some(1)) {
            FinetuneOutcome::Finished(r) => break r,
            FinetuneOutcome::Interrupted(state) => assert!(state.result.is_none()),
        }
    };
    assert!(calls > 2, "the run was interrupted at least twice");
    assert_eq!(a.test, b.test);
    assert_eq!(a.best_val, b.best_val);
    assert_eq!(a.optimizer_steps, b.optimizer_steps);
    assert_eq!(events(&a_dir), events(&b_dir));
}

#[test]
fn items_that_are_never_a_label_keep_their_text_vectors() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let mut w = world(tmp.path());
    // item 0 only ever opens a training sequence: in train, never a context label
    for seq in w.dataset.train.values_mut() {
        seq.retain(|&i| i != 0);
    }
    w.dataset.train.get_mut(&0).unwrap().insert(0, 0);
    let dir = tmp.path().join("run");
    let FinetuneOutcome::Finished(_) = run_finetune(&w, &dir, &config(), None) else {
        panic!("must finish");
    };
    let (items, i0) = best_and_initial_items(&w, &dir);
    let h = w.model_config.hidden_size;
    let row = |t: &burn::tensor::Tensor<common::Inner, 2>, r: usize| {
        t.clone().slice([r..r + 1, 0..h]).into_data()
    };
    assert_eq!(row(&items, 0), row(&i0, 0), "item 0 kept its text vector");
    let moved: f32 = (items.slice([1..12, 0..h]) - i0.slice([1..12, 0..h]))
        .abs()
        .max()
        .into_scalar();
    assert!(moved > 1e-3, "the label items were trained ({moved})");
}
