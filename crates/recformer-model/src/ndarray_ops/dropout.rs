//! Dropout on `Autodiff<NdArray<f32>>` in one pass, its mask drawn from a counter-based hash and
//! recomputed in the backward instead of kept.
//!
//! Burn 0.21's `Dropout` samples a Bernoulli tensor element by element from burn-ndarray's
//! global generator on the calling thread (about a tenth of a training step's main thread,
//! docs/performance.md), multiplies twice, and autodiff keeps the sampled tensor (one f32 per
//! element: the attention probabilities' size for the attention dropout) until the backward. Here
//! each call draws two 31-bit keys from the same backend generator (`Tensor::random`, so
//! `Backend::seed` makes runs, and resumed runs, repeat exactly), and element `i` is kept when
//! the top 24 bits of `hash(hash(i ^ k₁) + k₂)` fall below `keep · 2²⁴`; the hash is the
//! `lowbias32` integer mixer (bijective, full avalanche), computed in parallel and vectorised.
//! The values are Burn's formula for that mask, `(x · m) · 1/keep`, and the gradient Burn's,
//! `(g · 1/keep) · m`. The masks differ from the ones Burn's sampler would draw.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Distribution, Int, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArrayTensor;

use super::{map_f32, primitive, tensor, Kind, Map, CHUNK};

/// Dropout with drop probability `prob` (`0 < prob < 1`) on `Autodiff<NdArray<f32>>`; `Err(x)`
/// for every other backend and float type (the caller runs Burn's).
///
/// # Shapes
/// - any; output as input
pub(crate) fn dropout<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    prob: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if x.dtype() != DType::F32 || !(prob > 0.0 && prob < 1.0) {
        return Err(x);
    }
    if Kind::of::<B>() != Some(Kind::Tracked(DType::F32)) {
        return Err(x);
    }
    let mask = Mask::draw::<B>(&x.device(), prob);
    let x: FloatTensor<Autodiff<NdArray<f32>>> = primitive(x);
    let y = match FusedDropout
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(mask, mask.apply(&x.primitive)),
        OpsKind::UnTracked(prep) => prep.finish(mask.apply(&x.primitive)),
    };
    Ok(tensor::<B, D, _>(y))
}

/// One call's mask: its keys, the keep threshold and the scale.
#[derive(Debug, Clone, Copy)]
struct Mask {
    keys: [u32; 2],
    /// Kept when the hash's top 24 bits are below this (`keep · 2²⁴`, rounded).
    threshold: u32,
    /// `1 / keep`.
    scale: f32,
}

/// `lowbias32` (Chris Wellons' integer hash search): a bijection of `u32` with low bias.
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

impl Mask {
    /// Keys from the backend's generator (so `Backend::seed` fixes them).
    fn draw<B: Backend>(device: &B::Device, prob: f64) -> Self {
        let keys =
            Tensor::<B, 1, Int>::random([2], Distribution::Uniform(0.0, 2_147_483_647.0), device)
                .into_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .expect("two integer keys");
        let keep = 1.0 - prob;
        Mask {
            keys: [keys[0] as u32, keys[1] as u32],
            threshold: (keep * (1u64 << 24) as f64).round() as u32,
            scale: (1.0 / keep) as f32,
        }
    }

    /// 1.0 where element `index` is kept, 0.0 where it is dropped.
    #[inline(always)]
    fn keep(self, index: u32) -> f32 {
        let bits = lowbias32(lowbias32(index ^ self.keys[0]).wrapping_add(self.keys[1]));
        if (bits >> 8) < self.threshold {
            1.0
        } else {
            0.0
        }
    }

    /// The forward: `(x · m) · scale`.
    fn apply(self, x: &NdArrayTensor) -> NdArrayTensor {
        map_f32(x, CHUNK, &Scaled(self))
    }

    /// The backward: `(g · scale) · m`.
    fn gradient(self, grad: &NdArrayTensor) -> NdArrayTensor {
        map_f32(grad, CHUNK, &ScaledGradient(self))
    }
}

/// The forward's loop: `(x · m) · scale`, `m` the mask of the element's index.
struct Scaled(Mask);

impl Map for Scaled {
    #[inline(always)]
    fn apply(&self, start: usize, input: &[f32], out: &mut [f32]) {
        let (mask, start) = (self.0, start as u32);
        for (i, (o, &v)) in out.iter_mut().zip(input).enumerate() {
            *o = (v * mask.keep(start.wrapping_add(i as u32))) * mask.scale;
        }
    }
}

/// The backward's loop: `(g · scale) · m`.
struct ScaledGradient(Mask);

impl Map for ScaledGradient {
    #[inline(always)]
    fn apply(&self, start: usize, input: &[f32], out: &mut [f32]) {
        let (mask, start) = (self.0, start as u32);
        for (i, (o, &g)) in out.iter_mut().zip(input).enumerate() {
            *o = (g * mask.scale) * mask.keep(start.wrapping_add(i as u32));
        }
    }
}

/// The autodiff node: keeps only the mask's keys.
#[derive(Debug)]
struct FusedDropout;

impl Backward<NdArray<f32>, 1> for FusedDropout {
    type State = Mask;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let mask = ops.state;
        unary::<NdArray<f32>, _>(ops.parents, ops.node, grads, |grad| mask.gradient(&grad));
    }
}

#[cfg(test)]
mod tests {
    //! The mask's statistics, determinism under `Backend::seed`, and Burn's formulas for the
    //! values and the gradient.

    use burn::tensor::{Distribution, Tensor};

    use super::{dropout, Mask, Scaled, ScaledGradient};
    use crate::ndarray_ops::simd::tests::same_bits_on_every_width;
    use crate::ndarray_ops::tests::{map_on, Ad, Plain};

    fn run(x: &Tensor<Ad, 2>, prob: f64) -> Tensor<Ad, 2> {
        dropout(x.clone(), prob).unwrap_or_else(|_| panic!("Autodiff<NdArray> f32"))
    }

    #[test]
    fn keeps_the_expected_share_independently_and_scales_the_kept_values() {
        let device = Default::default();
        let x = Tensor::<Ad, 2>::ones([1000, 1000], &device);
        for prob in [0.1, 0.5] {
            let y = run(&x, prob).into_data().to_vec::<f32>().unwrap();
            let scale = (1.0 / (1.0 - prob)) as f32;
            assert!(y.iter().all(|&v| v == 0.0 || v == scale));
            let kept: Vec<bool> = y.iter().map(|&v| v != 0.0).collect();
            let n = kept.len() as f64;
            let share = kept.iter().filter(|&&k| k).count() as f64 / n;
            // 10⁶ Bernoulli draws: the standard deviation of the share is below 5e-4.
            assert!(
                (share - (1.0 - prob)).abs() < 3e-3,
                "kept {share} at p = {prob}"
            );
            // Neighbours (consecutive elements, and rows apart) are independent.
            for lag in [1, 1000] {
                let both = kept
                    .iter()
                    .zip(&kept[lag..])
                    .filter(|(a, b)| **a && **b)
                    .count() as f64
                    / (n - lag as f64);
                let expected = (1.0 - prob) * (1.0 - prob);
                assert!(
                    (both - expected).abs() < 3e-3,
                    "lag {lag}: {both} vs {expected}"
                );
            }
        }
    }

    /// (Determinism under `Backend::seed`: `tests/dropout_seed.rs`, its own process.)
    #[test]
    fn masks_differ_between_calls_and_are_a_function_of_the_keys() {
        let device = Default::default();
        let x = Tensor::<Ad, 2>::ones([64, 64], &device);
        assert_ne!(run(&x, 0.1).into_data(), run(&x, 0.1).into_data());
        let mask = Mask {
            keys: [12345, 678],
            threshold: 1 << 23,
            scale: 2.0,
        };
        let other = Mask {
            keys: [12345, 679],
            ..mask
        };
        let bits = |m: Mask| (0..4096).map(|i| m.keep(i)).collect::<Vec<_>>();
        assert_eq!(bits(mask), bits(mask));
        assert_ne!(bits(mask), bits(other));
    }

    #[test]
    fn values_and_gradient_follow_burns_formulas_for_the_drawn_mask() {
        let device = Default::default();
        let x = Tensor::<Ad, 2>::random([37, 53], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let r = Tensor::<Ad, 2>::random([37, 53], Distribution::Normal(0.0, 1.0), &device);
        let y = run(&x, 0.3);
        let grads = (y.clone() * r.clone()).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let (xs, ys, rs) = (
            x.into_data().to_vec::<f32>().unwrap(),
            y.into_data().to_vec::<f32>().unwrap(),
            r.into_data().to_vec::<f32>().unwrap(),
        );
        let scale = (1.0 / 0.7_f64) as f32;
        let mut dropped = 0;
        for (((&x, &y), &r), &g) in xs.iter().zip(&ys).zip(&rs).zip(&g) {
            let m = if y == 0.0 && x != 0.0 { 0.0 } else { 1.0 };
            dropped += (m == 0.0) as usize;
            assert_eq!(y, (x * m) * scale);
            assert_eq!(g, (r * scale) * m);
        }
        assert!(dropped > 0 && dropped < xs.len());
    }

    #[test]
    fn the_same_bits_on_every_instruction_set() {
        let mask = Mask {
            keys: [987_654_321, 42],
            threshold: (0.9 * (1u64 << 24) as f64).round() as u32,
            scale: (1.0 / 0.9_f64) as f32,
        };
        let x: Vec<f32> = (0..10_007).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        same_bits_on_every_width("dropout", |arch| map_on(arch, &Scaled(mask), &x));
        same_bits_on_every_width("dropout'", |arch| map_on(arch, &ScaledGradient(mask), &x));
    }

    #[test]
    fn other_backends_and_probabilities_are_handed_back() {
        let x = Tensor::<Plain, 2>::ones([2, 2], &Default::default());
        assert!(
            dropout(x, 0.1).is_err(),
            "no autodiff: the caller's identity"
        );
        let x = Tensor::<Ad, 2>::ones([2, 2], &Default::default());
        assert!(dropout(x.clone(), 0.0).is_err());
        assert!(dropout(x, 1.0).is_err());
    }
}
