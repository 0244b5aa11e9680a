//! Training-mode forwards repeat exactly under `Backend::seed` (what a resumed finetuning run
//! relies on), and draw new dropout masks otherwise.
//!
//! Its own test binary on purpose: the seed is the backend's global generator, which tests
//! running in parallel in one binary would draw from.

mod common;

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use common::{batch_on, tiny_config};
use recformer_model::backend::CpuAutodiff;
use recformer_model::AttentionImpl;

type A = CpuAutodiff;

#[test]
fn dropout_masks_repeat_under_the_same_seed_and_change_otherwise() {
    let device = Default::default();
    let mut config = tiny_config(4, 2);
    config.hidden_dropout_prob = 0.1;
    config.attention_probs_dropout_prob = 0.1;
    let model = config.init_model::<A>(&device);
    // 12 tokens with a one-sided window of 2: the banded path; 3 tokens: the dense one.
    for (imp, lengths) in [
        (AttentionImpl::Sliding, vec![12, 9]),
        (AttentionImpl::Dense, vec![3, 2]),
    ] {
        let model = model.clone().with_attention_impl(imp);
        let forward = || -> TensorData {
            model
                .forward(batch_on::<A>(&lengths, &config, 5))
                .last_hidden_state
                .into_data()
        };
        A::seed(&device, 3);
        let (first, second) = (forward(), forward());
        assert_ne!(first, second, "{imp:?}: new masks on every forward");
        A::seed(&device, 3);
        assert_eq!(forward(), first, "{imp:?}: the same seed, the same masks");
        assert_eq!(forward(), second, "{imp:?}: and the same sequence of masks");
        A::seed(&device, 4);
        assert_ne!(forward(), first, "{imp:?}: another seed, other masks");
    }
}
