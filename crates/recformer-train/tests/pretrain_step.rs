//! The pretraining loss of one micro-batch: `iic + w (mlm_history + mlm_target)`, and the IIC-only
//! mode (`w = 0`) that skips the masked passes without changing the IIC term.

mod common;

use common::{world, Inner};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::MlmConfig;
use recformer_train::pretrain::{pretrain_step, sample_pretrain_epoch, PretrainData};

fn scalar(t: burn::tensor::Tensor<Inner, 1>) -> f64 {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()[0]
}

#[test]
fn total_loss_is_iic_plus_weighted_mlm_and_weight_zero_skips_mlm() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let device = Default::default();
    // Inference backend: no dropout, so both calls see the same IIC passes.
    let model = w.model_config.init_pretraining::<Inner>(&device);
    let data = PretrainData {
        spec: &w.spec,
        corpus: &w.corpus,
        item_tokens: &w.item_tokens,
    };
    let pairs = sample_pretrain_epoch(&w.corpus.train, &mut ChaCha8Rng::seed_from_u64(3));
    let pairs = &pairs[..6];
    let mlm = MlmConfig::default();
    let step = |weight: f64| {
        pretrain_step(
            &model,
            pairs,
            &data,
            &mlm,
            0.05,
            weight,
            true,
            &mut ChaCha8Rng::seed_from_u64(5),
            &device,
        )
    };

    let full = step(0.1);
    let (iic, a, b) = (
        scalar(full.iic.clone()),
        scalar(full.mlm_a.clone()),
        scalar(full.mlm_b.clone()),
    );
    assert!(a > 0.0 && b > 0.0, "MLM terms {a} {b}");
    assert!((scalar(full.loss) - (iic + 0.1 * (a + b))).abs() < 1e-5);

    let iic_only = step(0.0);
    assert!((scalar(iic_only.iic.clone()) - iic).abs() < 1e-6);
    assert_eq!(scalar(iic_only.loss), scalar(iic_only.iic));
    assert_eq!(scalar(iic_only.mlm_a), 0.0);
    assert_eq!(scalar(iic_only.mlm_b), 0.0);
    assert_eq!(iic_only.accuracy, full.accuracy);
}
