//! AdamW's update of one parameter on NdArray f32 in one parallel pass, bit for bit Burn 0.21's
//! `AdamW` (without AMSGrad or cautious weight decay).
//!
//! Burn's step is fifteen element-wise tensor ops (`m·β₁`, `g·(1-β₁)`, their sum, `g²`, …, the
//! decayed weight minus `lr·Δ`), each a pass over parameter-sized arrays on the calling thread
//! while rayon's workers wait: on the MiniLM shape about 140 ms of a 2.3 s training step
//! (docs/performance.md). Here the same f32 operations in the same order run per element, the
//! moments and the weight updated in place when no one else holds them, the slices split over
//! the threads. IEEE division and square root are exact at every vector width, and Rust never
//! fuses a multiply and an add, so the bits are Burn's (`tests::matches_burn_bit_for_bit`).

use burn::optim::AdaptiveMomentumState;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use crate::fused::{AdamWHyper, AdamWInputs};

use super::{elements, primitive, simd, standard, zeroed, Float, Kind, CHUNK};

/// [`crate::fused::adamw_update`].
pub(crate) fn adamw_update<B: Backend, const D: usize>(
    hyper: &AdamWHyper,
    lr: f64,
    tensor: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<AdaptiveMomentumState<B, D>>,
) -> Result<(Tensor<B, D>, AdaptiveMomentumState<B, D>), AdamWInputs<B, D>> {
    let f32_tensors = tensor.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && tensor.shape() == grad.shape()
        && state.as_ref().is_none_or(|s| {
            s.max_moment_2.is_none()
                && [&s.moment_1, &s.moment_2]
                    .iter()
                    .all(|m| m.dtype() == DType::F32 && m.shape() == grad.shape())
        });
    if Kind::of::<B>() != Some(Kind::Plain(DType::F32)) || !f32_tensors {
        return Err((tensor, grad, state));
    }
    let (time, moments) = match state {
        Some(s) => (s.time + 1, Some((s.moment_1, s.moment_2))),
        None => (1, None),
    };
    let step = Step::new(hyper, lr, time, moments.is_none());

    let mut theta = writable(primitive(tensor));
    let (mut m, mut v) = match moments {
        Some((m, v)) => (writable(primitive(m)), writable(primitive(v))),
        None => {
            let zeros = || {
                ArcArray::from_shape_vec(theta.raw_dim(), zeroed(theta.len()))
                    .expect("the parameter's element count")
            };
            (zeros(), zeros())
        }
    };
    let grad: NdArrayTensor = primitive(grad);
    let grad = elements(&grad);
    let g = grad.as_slice().expect("standard layout");
    // `as_slice_mut` copies a buffer first if another array shares it.
    let (theta_s, m_s, v_s) = (
        theta.as_slice_mut().expect("standard layout"),
        m.as_slice_mut().expect("standard layout"),
        v.as_slice_mut().expect("standard layout"),
    );
    theta_s
        .par_chunks_mut(CHUNK)
        .zip(m_s.par_chunks_mut(CHUNK))
        .zip(v_s.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((theta, m), v), g)| {
            simd::vectorized(Slices {
                step,
                theta,
                m,
                v,
                g,
            })
        });

    let wrap = |a: ArcArray<f32, IxDyn>| super::tensor::<B, D, _>(f32::wrap(a));
    Ok((
        wrap(theta),
        AdaptiveMomentumState::new(time, wrap(m), wrap(v)),
    ))
}

/// The array of an f32 tensor in standard layout, to be written in place.
fn writable(x: NdArrayTensor) -> ArcArray<f32, IxDyn> {
    let array = f32::shared(x).unwrap_or_else(|_| unreachable!("dtype checked"));
    if array.is_standard_layout() {
        array
    } else {
        standard(&array.view()).into_shared()
    }
}

/// The scalars of one step, rounded to f32 as Burn's scalar ops round them.
#[derive(Clone, Copy, Debug)]
struct Step {
    beta_1: f32,
    beta_2: f32,
    /// `1 - β₁`, `1 - β₂` (f32 arithmetic, as Burn's `factor_1`, `factor_2`).
    factor_1: f32,
    factor_2: f32,
    /// The bias corrections `1 - βᵗ` (f32 `powi`, as Burn's).
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    /// `1 - lr·λ` rounded to f32; `None` when `lr·λ` is 0 (Burn leaves the weight as it is).
    decay: Option<f32>,
    lr: f32,
    /// The state's first step: the moments are `g·(1-β)` alone.
    first: bool,
}

impl Step {
    fn new(hyper: &AdamWHyper, lr: f64, time: usize, first: bool) -> Self {
        let time = time as i32;
        let decay_rate = lr * f64::from(hyper.weight_decay);
        Step {
            beta_1: hyper.beta_1,
            beta_2: hyper.beta_2,
            factor_1: 1.0 - hyper.beta_1,
            factor_2: 1.0 - hyper.beta_2,
            correction_1: 1f32 - hyper.beta_1.powi(time),
            correction_2: 1f32 - hyper.beta_2.powi(time),
            epsilon: hyper.epsilon,
            decay: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32),
            lr: lr as f32,
            first,
        }
    }
}

/// One slice of the update.
struct Slices<'a> {
    step: Step,
    theta: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    g: &'a [f32],
}

impl simd::Kernel for Slices<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let s = self.step;
        let elements = self.theta.iter_mut().zip(self.m.iter_mut());
        for ((theta, m), (v, &g)) in elements.zip(self.v.iter_mut().zip(self.g)) {
            // Burn's `AdaptiveMomentumW::transform`, then `AdamW::step`, op by op.
            let (m1, v1) = if s.first {
                (g * s.factor_1, (g * g) * s.factor_2)
            } else {
                (
                    *m * s.beta_1 + g * s.factor_1,
                    *v * s.beta_2 + (g * g) * s.factor_2,
                )
            };
            *m = m1;
            *v = v1;
            let delta = (m1 / s.correction_1) / ((v1 / s.correction_2).sqrt() + s.epsilon);
            let decayed = match s.decay {
                Some(keep) => *theta * keep,
                None => *theta,
            };
            *theta = decayed - delta * s.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::optim::{AdamWConfig, AdamWState, SimpleOptimizer};
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    type B = NdArray<f32>;

    fn bits<const D: usize>(t: &Tensor<B, D>) -> Vec<u32> {
        let data = t.to_data();
        data.as_slice::<f32>()
            .expect("f32")
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// Five steps of both on one parameter (gradients drawn anew each step, some exactly zero,
    /// one transposed so the fused path reads a strided gradient): the same bits every step.
    fn compare(hyper: AdamWHyper, lrs: &[f64]) {
        let device = Default::default();
        let burn = AdamWConfig::new()
            .with_beta_1(hyper.beta_1)
            .with_beta_2(hyper.beta_2)
            .with_epsilon(hyper.epsilon)
            .with_weight_decay(hyper.weight_decay)
            .build();
        // Larger than one task, not a multiple of the vector width.
        let (rows, cols) = (181, 197);
        let start = Tensor::<B, 2>::random([rows, cols], Distribution::Normal(0.0, 0.5), &device);
        let (mut ours, mut theirs) = (start.clone(), start);
        let (mut our_state, mut their_state): (Option<AdaptiveMomentumState<B, 2>>, _) =
            (None, None::<AdamWState<B, 2>>);
        for (i, &lr) in lrs.iter().enumerate() {
            let mut grad =
                Tensor::<B, 2>::random([cols, rows], Distribution::Normal(0.0, 1e-2), &device)
                    .transpose();
            if i == 1 {
                let negative = grad.clone().lower_elem(0.0);
                grad = grad.mask_fill(negative, 0.0);
            }
            let (next, state) =
                SimpleOptimizer::<B>::step(&burn, lr, theirs, grad.clone(), their_state);
            (theirs, their_state) = (next, state);
            let (next, state) = adamw_update(&hyper, lr, ours, grad, our_state)
                .unwrap_or_else(|_| panic!("NdArray f32 takes the fused path"));
            (ours, our_state) = (next, Some(state));

            let (mine, burns) = (
                our_state.as_ref().unwrap(),
                &their_state.as_ref().unwrap().momentum,
            );
            assert_eq!(mine.time, burns.time, "step {i}: time");
            assert_eq!(bits(&ours), bits(&theirs), "step {i}: parameter");
            assert_eq!(bits(&mine.moment_1), bits(&burns.moment_1), "step {i}: m");
            assert_eq!(bits(&mine.moment_2), bits(&burns.moment_2), "step {i}: v");
        }
    }

    #[test]
    fn matches_burn_bit_for_bit() {
        let torch = AdamWHyper {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
        };
        compare(torch, &[5e-5, 1e-4, 3e-3, 0.0, 2e-5]);
        compare(
            AdamWHyper {
                weight_decay: 0.0,
                epsilon: 1e-6,
                ..torch
            },
            &[1e-3, 5e-4, 1e-4, 1e-4, 7e-5],
        );
    }

    #[test]
    fn other_backends_are_handed_back() {
        let hyper = AdamWHyper {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        };
        type Tracked = burn_autodiff::Autodiff<NdArray<f32>>;
        let x = Tensor::<Tracked, 1>::ones([4], &Default::default());
        assert!(adamw_update(&hyper, 1e-3, x.clone(), x, None).is_err());
        // Not `NdArray<f64>`: the first tensor a process creates on a device fixes that
        // device's default float type for every test (burn 0.21 `DeviceSettings`, see `gelu.rs`).
        #[cfg(feature = "flex")]
        {
            let x = Tensor::<burn::backend::Flex, 1>::ones([4], &Default::default());
            assert!(adamw_update(&hyper, 1e-3, x.clone(), x, None).is_err());
        }
    }
}
