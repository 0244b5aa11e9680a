//! Interrupted + resumed runs reach exactly the same results as uninterrupted ones (CPU, fixed
//! seed), and checkpoints on disk are always complete.

mod common;

use std::path::Path;

use burn::tensor::backend::Backend;
use common::{run_finetune, world, B};
use recformer_train::finetune::{FinetuneData, FinetuneOutcome, RunControl};
use recformer_train::pretrain::PretrainData;
use recformer_train::{
    finetune, pretrain, FinetuneConfig, FinetuneVariant, MetricsEvent, NoProgress, OptimizerConfig,
    PretrainConfig, RunDir,
};

/// The backend RNG (dropout, init) is process-global: tests that train must not interleave.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ft_config() -> FinetuneConfig {
    FinetuneConfig {
        num_train_epochs: 3,
        batch_size: 4,
        // 24 users -> 6 micro-batches per epoch: 1 step + 2 micro-batches carried over
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 4,
            learning_rate: 1e-3,
            warmup_steps: 1,
            ..FinetuneConfig::default().optimizer
        },
        verbose: 1,
        patience_stage1: 2,
        patience_stage2: 1,
        eval_batch_size: 8,
        encode_batch_size: 5,
        ..FinetuneConfig::default()
    }
}

fn events(dir: &Path) -> Vec<MetricsEvent> {
    RunDir::create(dir).unwrap().read_events().unwrap()
}

/// No temp files anywhere; every directory named by state.json exists.
fn assert_clean(dir: &Path) {
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(!name.contains(".tmp-"), "leftover temp file {entry:?}");
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    if let Some(last) = state["last_dir"].as_str() {
        assert!(dir.join(last).join("model.mpk").is_file());
        assert!(dir.join(last).join("optimizer.mpk").is_file());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn finetune_resume_matches_uninterrupted_run() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = ft_config();

    let a_dir = tmp.path().join("a");
    let FinetuneOutcome::Finished(a) = run_finetune(&w, &a_dir, &config, None) else {
        panic!("uninterrupted run must finish");
    };
    assert!(a.optimizer_steps > 0);
    assert!(a.best_model.is_file());
    assert!(a_dir.join("result.json").is_file());

    let b_dir = tmp.path().join("b");
    let mut calls = 0;
    let b = loop {
        calls += 1;
        assert!(calls < 20, "run never finishes");
        match run_finetune(&w, &b_dir, &config, Some(1)) {
            FinetuneOutcome::Finished(r) => break r,
            FinetuneOutcome::Interrupted(state) => {
                assert!(state.result.is_none());
                assert_clean(&b_dir);
            }
        }
    };
    assert!(calls > 2, "the run was interrupted at least twice");
    assert_eq!(a.test, b.test);
    assert_eq!(a.best_val, b.best_val);
    assert_eq!(a.zero_shot, b.zero_shot);
    assert_eq!(a.optimizer_steps, b.optimizer_steps);
    assert_eq!(events(&a_dir), events(&b_dir));
    assert_clean(&b_dir);

    // a finished run returns its stored result
    let FinetuneOutcome::Finished(again) = run_finetune(&w, &b_dir, &config, None) else {
        panic!("finished run must stay finished");
    };
    assert_eq!(again, b);

    // resuming with another config is refused
    let mut other = config.clone();
    other.optimizer.learning_rate = 2e-3;
    let c_dir = tmp.path().join("c");
    run_finetune(&w, &c_dir, &config, Some(1));
    let device = Default::default();
    let model = w.model_config.init_model::<B>(&device);
    let data = FinetuneData {
        spec: &w.spec,
        dataset: &w.dataset,
        item_tokens: &w.item_tokens,
    };
    let err = finetune(
        model,
        &other,
        &data,
        &RunDir::create(&c_dir).unwrap(),
        &device,
        &RunControl::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("train_config.json"), "{err}");
}

#[test]
fn finetune_log_follows_the_two_stage_protocol() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let dir = tmp.path().join("run");
    let FinetuneOutcome::Finished(result) = run_finetune(&w, &dir, &ft_config(), None) else {
        panic!()
    };
    let ev = events(&dir);
    assert_eq!(ev.first().unwrap().stage, "zero-shot");
    assert_eq!(ev.last().unwrap().stage, "final");
    assert_eq!(ev.last().unwrap().metrics, Some(result.test));
    let stage1_epochs = ev
        .iter()
        .filter(|e| e.kind == "epoch" && e.stage == "stage1")
        .count();
    let stage2_epochs = ev
        .iter()
        .filter(|e| e.kind == "epoch" && e.stage == "stage2")
        .count();
    assert!((1..=3).contains(&stage1_epochs));
    assert!((1..=3).contains(&stage2_epochs));
    // the best validation NDCG@10 over all evaluations is the reported best
    let best = ev
        .iter()
        .filter(|e| e.kind == "eval")
        .map(|e| e.metrics.unwrap().ndcg_10)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(result.best_val.unwrap().ndcg_10, best);
    // optimizer steps: 6 micro-batches per epoch with accumulation 4, leftovers carried over
    let epochs = stage1_epochs + stage2_epochs;
    assert_eq!(result.optimizer_steps, epochs * 6 / 4);
}

#[test]
fn training_only_variant_is_zero_shot() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = FinetuneConfig {
        variant: FinetuneVariant::TrainingOnly,
        ..ft_config()
    };
    let FinetuneOutcome::Finished(r) = run_finetune(&w, &tmp.path().join("z"), &config, None)
    else {
        panic!()
    };
    assert_eq!(r.optimizer_steps, 0);
    assert_eq!(Some(r.test), r.zero_shot);
}

#[test]
fn pretrain_resume_matches_uninterrupted_run() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let config = PretrainConfig {
        max_epochs: 2,
        batch_size: 4,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 2,
            learning_rate: 1e-3,
            ..PretrainConfig::default().optimizer
        },
        val_check_interval: 2,
        val_batch_size: 3,
        save_top_k: 2,
        ..PretrainConfig::default()
    };
    let data = PretrainData {
        spec: &w.spec,
        corpus: &w.corpus,
        item_tokens: &w.item_tokens,
    };
    let run = |dir: &Path, stop: Option<usize>| {
        let device = Default::default();
        B::seed(&device, 11);
        let model = w.model_config.init_pretraining::<B>(&device);
        pretrain(
            model,
            &config,
            &data,
            &RunDir::create(dir).unwrap(),
            &device,
            &RunControl {
                stop_after_epochs: stop,
                ..RunControl::default()
            },
            &NoProgress,
        )
        .unwrap()
    };
    let a = run(&tmp.path().join("a"), None);
    assert!(a.state.finished);
    // 18 sequences / 4 = 5 micro-batches per epoch -> 3 steps per epoch (last one at epoch end)
    assert_eq!(a.state.optimizer_steps, 6);
    assert!(a.best_model.as_ref().unwrap().is_file());
    assert!(a.state.top_k.len() <= 2);
    let b1 = run(&tmp.path().join("b"), Some(1));
    assert!(!b1.state.finished);
    assert_clean(&tmp.path().join("b"));
    let b = run(&tmp.path().join("b"), None);
    assert!(b.state.finished);
    assert_eq!(events(&tmp.path().join("a")), events(&tmp.path().join("b")));
    let acc = |s: &recformer_train::PretrainState| {
        s.top_k
            .iter()
            .map(|k| (k.accuracy, k.step))
            .collect::<Vec<_>>()
    };
    assert_eq!(acc(&a.state), acc(&b.state));
    let loss: Vec<f64> = events(&tmp.path().join("a"))
        .iter()
        .filter_map(|e| e.loss)
        .collect();
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
}

#[test]
fn user_cap_applies_to_validation_only() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let run = |name: &str, cap: Option<usize>| {
        let config = FinetuneConfig {
            variant: FinetuneVariant::TrainingOnly,
            max_eval_users: cap,
            ..ft_config()
        };
        match run_finetune(&w, &tmp.path().join(name), &config, None) {
            FinetuneOutcome::Finished(r) => r,
            FinetuneOutcome::Interrupted(_) => panic!("run interrupted"),
        }
    };
    let full = run("full", None);
    let capped = run("capped", Some(5));
    assert!(full.best_val.unwrap().users > 5);
    assert_eq!(capped.best_val.unwrap().users, 5);
    // zero-shot and final test evaluations ignore the cap
    assert_eq!(capped.test, full.test);
    assert_eq!(capped.zero_shot, full.zero_shot);
    assert_eq!(capped.test.users, full.test.users);
}
