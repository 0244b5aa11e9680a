mod common;
use burn::tensor::backend::Backend;
use common::{world, B};
use recformer_train::finetune::{FinetuneData, RunControl};
use recformer_train::*;
#[test]
fn learns() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let device = Default::default();
    B::seed(&device, 7);
    let model = w.model_config.init_model::<B>(&device);
    let data = FinetuneData { dataset: &w.dataset, item_tokens: &w.item_tokens, builder: w.builder };
    let config = FinetuneConfig { num_train_epochs: 30, batch_size: 8, gradient_accumulation_steps: 1, learning_rate: 1e-3, warmup_steps: 5, verbose: 5, patience_stage1: 10, patience_stage2: 1, ..FinetuneConfig::default() };
    let run = RunDir::create(tmp.path().join("r")).unwrap();
    let out = finetune(model, &w.model_config, &config, &data, &run, &device, &RunControl::default(), &NoProgress).unwrap();
    for e in run.read_events().unwrap() { eprintln!("{} {} {} {:?} {:?}", e.stage, e.kind, e.epoch, e.loss, e.metrics.map(|m| m.ndcg_10)); }
    eprintln!("{out:?}");
}
