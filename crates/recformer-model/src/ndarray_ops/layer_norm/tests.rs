//! Against Burn's `LayerNorm` on the same backend: values and all three gradients within
//! rounding.

use burn::module::Param;
use burn::nn::LayerNormConfig;
use burn::tensor::{Distribution, Tensor};

use super::{layer_norm, BackwardBlock, Norm, Rows};
use crate::ndarray_ops::simd::tests::{on, same_bits_on_every_width};
use crate::ndarray_ops::tests::{map_on, Ad, Plain};

/// Four rows' moments together are each row's own, bit for bit (lengths with and without
/// a tail past the 8 lanes, rows far from zero mean).
#[test]
fn moments_of_a_group_are_each_rows_moments() {
    for d in [1, 8, 37, 384] {
        let values: Vec<f32> = (0..super::GROUP * d)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.013 - 3.0 + (i / d) as f32 * 100.0)
            .collect();
        let rows: [&[f32]; super::GROUP] = core::array::from_fn(|r| &values[r * d..(r + 1) * d]);
        for (row, got) in rows.iter().zip(super::moments_of(rows, 1e-5)) {
            let want = super::moments(row, 1e-5);
            assert_eq!(
                (got.0.to_bits(), got.1.to_bits()),
                (want.0.to_bits(), want.1.to_bits()),
                "d {d}"
            );
        }
    }
}

#[test]
fn the_same_bits_on_every_instruction_set() {
    // Rows of 37 (not a multiple of the lanes), some far from zero mean.
    let d = 37;
    let wave = |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
    let x: Vec<f32> = wave(d * 29, 0.37)
        .iter()
        .enumerate()
        .map(|(i, v)| v + (i / d) as f32)
        .collect();
    let (gamma, beta, g) = (wave(d, 1.3), wave(d, 0.7), wave(d * 29, 2.1));
    let norm = Norm { epsilon: 1e-12 };
    let rows = Rows {
        norm,
        gamma: &gamma,
        beta: &beta,
    };
    same_bits_on_every_width("LayerNorm", |arch| map_on(arch, &rows, &x));
    same_bits_on_every_width("LayerNorm'", |arch| {
        let mut dx = vec![0.0_f32; x.len()];
        let block = BackwardBlock {
            norm,
            gamma: &gamma,
            x: &x,
            g: &g,
            dx: &mut dx,
        };
        let (dgamma, dbeta) = on(arch, block);
        [dx, dgamma, dbeta].concat()
    });
}

/// `[y, dx, dγ, dβ]` in f64 for the loss `Σ y ⊙ r`.
fn exact(x: &[f32], gamma: &[f32], beta: &[f32], r: &[f32], eps: f64) -> [Vec<f64>; 4] {
    let d = gamma.len();
    let (mut y, mut dx) = (vec![], vec![]);
    let (mut dg, mut db) = (vec![0.0; d], vec![0.0; d]);
    for (x, r) in x.chunks(d).zip(r.chunks(d)) {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mean = x.iter().sum::<f64>() / d as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let sd = (var + eps).sqrt();
        let h: Vec<f64> = x.iter().map(|v| (v - mean) / sd).collect();
        let gh: Vec<f64> = r
            .iter()
            .zip(gamma)
            .map(|(&r, &g)| r as f64 * g as f64)
            .collect();
        let mg = gh.iter().sum::<f64>() / d as f64;
        let mgh = gh.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>() / d as f64;
        for j in 0..d {
            y.push(h[j] * gamma[j] as f64 + beta[j] as f64);
            dx.push((gh[j] - mg - h[j] * mgh) / sd);
            dg[j] += r[j] as f64 * h[j];
            db[j] += r[j] as f64;
        }
    }
    [y, dx, dg, db]
}

/// Values and the three gradients against Burn's `LayerNorm` and an f64 reference: ours
/// within 2e-6 of the largest value and no worse than twice Burn's own error (plus 1e-6).
#[test]
fn values_and_gradients_are_as_accurate_as_burns_layer_norm() {
    let device = Default::default();
    let (d, eps) = (37, 1e-5);
    let mut module = LayerNormConfig::new(d)
        .with_epsilon(eps)
        .init::<Ad>(&device);
    let random =
        |shape: [usize; 1]| Tensor::<Ad, 1>::random(shape, Distribution::Normal(1.0, 0.5), &device);
    module.gamma = Param::from_tensor(random([d]));
    module.beta = Some(Param::from_tensor(random([d])));
    let (gamma, beta) = (module.gamma.val(), module.beta.as_ref().unwrap().val());
    // Rows with an offset and a spread, so that centring matters.
    let x = Tensor::<Ad, 3>::random([6, 50, d], Distribution::Normal(3.0, 2.0), &device);
    let r = Tensor::<Ad, 3>::random([6, 50, d], Distribution::Normal(0.0, 1.0), &device);
    let run = |ours: bool| {
        let x = x.clone().require_grad();
        let y = if ours {
            layer_norm(x.clone(), gamma.clone(), beta.clone(), eps)
                .unwrap_or_else(|_| panic!("Autodiff<NdArray> f32"))
        } else {
            module.forward(x.clone())
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        let v = |t: &Tensor<Ad, 1>| t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        [
            y.into_data().to_vec::<f32>().unwrap(),
            x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap(),
            v(&gamma),
            v(&beta),
        ]
    };
    let (ours, burn) = (run(true), run(false));
    let values = |t: &Tensor<Ad, 3>| t.to_data().to_vec::<f32>().unwrap();
    let exact = exact(
        &values(&x),
        &gamma.to_data().to_vec::<f32>().unwrap(),
        &beta.to_data().to_vec::<f32>().unwrap(),
        &values(&r),
        eps,
    );
    let names = ["output", "dx", "dgamma", "dbeta"];
    for (((o, b), e), what) in ours.iter().zip(&burn).zip(&exact).zip(names) {
        let worst = |v: &[f32]| {
            v.iter()
                .zip(e)
                .map(|(&a, e)| (a as f64 - e).abs())
                .fold(0.0, f64::max)
        };
        let scale = e.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let (ours_err, burn_err) = (worst(o), worst(b));
        assert!(
            ours_err <= 2e-6 * scale && ours_err <= 2.0 * burn_err + 1e-6 * scale,
            "{what}: off by {ours_err} (Burn's {burn_err}, scale {scale})"
        );
    }

    // Inference gives the training forward's values.
    let plain = Tensor::<Plain, 3>::from_data(x.to_data(), &device);
    let g = Tensor::<Plain, 1>::from_data(gamma.to_data(), &device);
    let b = Tensor::<Plain, 1>::from_data(beta.to_data(), &device);
    let inference = layer_norm(plain, g, b, eps).unwrap_or_else(|_| panic!("NdArray f32"));
    let training = layer_norm(x, gamma, beta, eps).unwrap_or_else(|_| panic!("fused"));
    assert_eq!(inference.into_data(), training.into_data());
}

// No f64 NdArray tensor in this test binary: the first tensor a process creates on a device
// fixes that device's default float type for every test (burn 0.21 `DeviceSettings`). f64
// takes Burn's op: `tests/sliding_gradients.rs` runs the whole encoder in f64.
#[test]
fn other_backends_and_shapes_are_handed_back() {
    let device = Default::default();
    #[cfg(feature = "flex")]
    {
        type Flex = burn::backend::Flex;
        let x = Tensor::<Flex, 2>::zeros([2, 3], &Default::default());
        let v = Tensor::<Flex, 1>::ones([3], &Default::default());
        assert!(layer_norm(x, v.clone(), v, 1e-5).is_err());
    }
    let x = Tensor::<Plain, 2>::zeros([2, 3], &device);
    let v = Tensor::<Plain, 1>::ones([4], &device);
    assert!(layer_norm(x, v.clone(), v, 1e-5).is_err());
}
