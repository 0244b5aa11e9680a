//! Against the reference's masking and softmax: the same bits, forward and backward.

use burn::tensor::{Distribution, Int, Tensor, TensorData};

use super::{band_masked_softmax, masked_softmax};
use crate::attention::reference::masked_probs;
use crate::attention::sliding::band_probs;
use crate::attention::AttentionMasks;
use crate::ndarray_ops::tests::{bits, Ad, Plain};

/// Two sequences of 24 tokens (window 4): the first with 5 padding tokens and tokens 0 and
/// 9 global, the second unpadded with token 0 global.
fn masks<B: burn::tensor::backend::Backend>() -> AttentionMasks<B> {
    masks_with::<B>(&[0, 9, 24])
}

/// The same two sequences with the tokens at flat positions `global` (of `2 · 24`) global.
fn masks_with<B: burn::tensor::backend::Backend>(global_at: &[usize]) -> AttentionMasks<B> {
    let device = Default::default();
    let l = 24;
    let mut attention = vec![1_i64; 2 * l];
    attention[l - 5..l].fill(0);
    let mut global = vec![0_i64; 2 * l];
    for &g in global_at {
        global[g] = 1;
    }
    let t = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [2, l]), &device);
    AttentionMasks::new(t(attention), t(global))
}

fn scores() -> TensorData {
    let device = Default::default();
    Tensor::<Plain, 4>::random([2, 3, 24, 24], Distribution::Normal(0.0, 2.0), &device).into_data()
}

#[test]
fn probabilities_equal_the_reference_bit_for_bit() {
    let x = Tensor::<Plain, 4>::from_data(scores(), &Default::default());
    let m = masks::<Plain>();
    let reference = masked_probs(x.clone(), &m, 4);
    let fused = masked_softmax(x, &m, 4).unwrap_or_else(|_| panic!("NdArray f32 is fused"));
    assert_eq!(bits(fused.into_data()), bits(reference.into_data()));
}

#[test]
fn gradients_equal_the_reference_bit_for_bit() {
    let device = Default::default();
    let m = masks::<Ad>();
    let r = Tensor::<Ad, 4>::random([2, 3, 24, 24], Distribution::Normal(0.0, 1.0), &device);
    let data = scores();
    let mut results = Vec::new();
    for fused in [false, true] {
        let x = Tensor::<Ad, 4>::from_data(data.clone(), &device).require_grad();
        let y = if fused {
            masked_softmax(x.clone(), &m, 4).unwrap_or_else(|_| panic!("fused"))
        } else {
            masked_probs(x.clone(), &m, 4)
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        results.push((
            bits(y.into_data()),
            bits(x.grad(&grads).expect("a gradient").into_data()),
        ));
    }
    assert_eq!(results[0].0, results[1].0, "probabilities");
    assert_eq!(results[0].1, results[1].1, "gradients");
}

// Not `NdArray<f64>`: the first tensor a process creates on a device fixes that device's
// default float type for every test (burn 0.21 `DeviceSettings`, see `gelu.rs`).
#[cfg(feature = "flex")]
#[test]
fn other_backends_are_handed_back() {
    type F = burn::backend::Flex;
    let m = masks::<F>();
    let x = Tensor::<F, 4>::zeros([2, 3, 24, 24], &Default::default());
    assert!(masked_softmax(x, &m, 4).is_err());
}

/// Band scores `[2, 3, 24 / 4, 4, 12 (+1)]` for window 4.
fn band_scores(global_column: bool) -> TensorData {
    let cols = 12 + usize::from(global_column);
    Tensor::<Plain, 5>::random(
        [2, 3, 6, 4, cols],
        Distribution::Normal(0.0, 2.0),
        &Default::default(),
    )
    .into_data()
}

/// Token 0 global in the first sequence only (the second's global column is masked), in
/// both (the model's pattern), with a global key inside the band, and with none (no column).
const BAND_GLOBALS: [&[usize]; 4] = [&[0], &[0, 24], &[0, 9, 24], &[]];

#[test]
fn band_probabilities_equal_the_chain_bit_for_bit() {
    for global in BAND_GLOBALS {
        let m = masks_with::<Plain>(global);
        let x = Tensor::<Plain, 5>::from_data(band_scores(m.any_global), &Default::default());
        let reference = band_probs(x.clone(), &m, 4);
        let fused = band_masked_softmax(x, &m, 4).unwrap_or_else(|_| panic!("fused"));
        let (fused, reference) = (bits(fused.into_data()), bits(reference.into_data()));
        assert!(reference.contains(&0), "some entries masked");
        assert_eq!(fused, reference, "global tokens at {global:?}");
    }
}

#[test]
fn band_gradients_equal_the_chain_bit_for_bit() {
    let device = Default::default();
    for global in BAND_GLOBALS {
        let m = masks_with::<Ad>(global);
        let data = band_scores(m.any_global);
        let r = Tensor::<Ad, 5>::random(data.shape.clone(), Distribution::Default, &device);
        let mut results = Vec::new();
        for fused in [false, true] {
            let x = Tensor::<Ad, 5>::from_data(data.clone(), &device).require_grad();
            let y = if fused {
                band_masked_softmax(x.clone(), &m, 4).unwrap_or_else(|_| panic!("fused"))
            } else {
                band_probs(x.clone(), &m, 4)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            results.push((
                bits(y.into_data()),
                bits(x.grad(&grads).expect("a gradient").into_data()),
            ));
        }
        assert_eq!(
            results[0].0, results[1].0,
            "probabilities, globals {global:?}"
        );
        assert_eq!(results[0].1, results[1].1, "gradients, globals {global:?}");
    }
}

#[test]
fn band_scores_of_another_shape_are_handed_back() {
    // A global column without global tokens, and a block height other than the window.
    let m = masks_with::<Plain>(&[]);
    let device = Default::default();
    let extra = Tensor::<Plain, 5>::zeros([2, 3, 6, 4, 13], &device);
    assert!(band_masked_softmax(extra, &m, 4).is_err());
    let tall = Tensor::<Plain, 5>::zeros([2, 3, 3, 8, 12], &device);
    assert!(band_masked_softmax(tall, &m, 4).is_err());
}
