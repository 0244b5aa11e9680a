//! A residual sum and the LayerNorm after it in one pass per row, on NdArray f32 in inference.
//!
//! Every encoder block ends in `LayerNorm(x + residual)`. Burn's `add` runs on the calling
//! thread (the other core waits) and writes a sum that the LayerNorm then reads again: each
//! block's two residual sums were ~2% of a mini forward's samples (docs/performance.md). Here
//! each task writes the sum of its rows into the output and normalises them there, while they
//! are in its cache. The sum is the same f32 addition and the normalisation
//! [`super::layer_norm`]'s, so the bits are those of the add followed by that op. With autodiff,
//! the two ops run as before (the LayerNorm's backward keeps its input, the sum).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_ndarray::NdArrayTensor;

use super::layer_norm::{moments, moments_of, normalised, vector, Norm, Rows, GROUP};
use super::{primitive, tensor, zip_map_f32, Kind, ZipMap};

/// `LayerNorm(x + residual)` with scale `gamma`, shift `beta` and `epsilon` over the last
/// dimension, on NdArray f32 without autodiff; `Err((x, residual))` for every other backend,
/// float type or shape.
///
/// # Shapes
/// - x, residual: `[..., d]` (the same); gamma, beta: `[d]`; output as x
pub(crate) fn add_layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    residual: Tensor<B, D>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    epsilon: f64,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let d = x.dims()[D - 1];
    let fits = d > 0 && x.dims() == residual.dims() && gamma.dims() == [d] && beta.dims() == [d];
    let f32s = [x.dtype(), residual.dtype(), gamma.dtype(), beta.dtype()] == [DType::F32; 4];
    if !fits || !f32s || Kind::of::<B>() != Some(Kind::Plain(DType::F32)) {
        return Err((x, residual));
    }
    let (x, residual): (NdArrayTensor, NdArrayTensor) = (primitive(x), primitive(residual));
    let (gamma, beta): (NdArrayTensor, NdArrayTensor) =
        (primitive(gamma.clone()), primitive(beta.clone()));
    let (gamma, beta) = (vector(&gamma), vector(&beta));
    let rows = AddRows(Rows {
        norm: Norm {
            epsilon: epsilon as f32,
        },
        gamma: &gamma,
        beta: &beta,
    });
    let task = Norm::rows_per_task(d) * d;
    Ok(tensor::<B, D, _>(zip_map_f32(
        &x,
        &residual,
        task,
        "a residual sum of two tensors of one shape",
        &rows,
    )))
}

/// The loop: each row's sum written to the output, then normalised in place as
/// [`super::layer_norm`]'s rows.
struct AddRows<'a>(Rows<'a>);

impl ZipMap for AddRows<'_> {
    #[inline(always)]
    fn apply(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let rows = &self.0;
        let d = rows.gamma.len();
        // A group of rows at a time (in L1): the sums, their moments together, then each
        // row normalised.
        let groups = out
            .chunks_mut(GROUP * d)
            .zip(a.chunks(GROUP * d).zip(b.chunks(GROUP * d)));
        for (y, (a, b)) in groups {
            for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
                *y = a + b;
            }
            if y.len() == GROUP * d {
                let sums: [&[f32]; GROUP] = core::array::from_fn(|r| &y[r * d..(r + 1) * d]);
                let moments = moments_of(sums, rows.norm.epsilon);
                for (y, moments) in y.chunks_exact_mut(d).zip(moments) {
                    normalise_in_place(rows, y, moments);
                }
            } else {
                for y in y.chunks_exact_mut(d) {
                    let moments = moments(y, rows.norm.epsilon);
                    normalise_in_place(rows, y, moments);
                }
            }
        }
    }
}

/// A row of sums normalised in place with its moments.
#[inline(always)]
fn normalise_in_place(rows: &Rows<'_>, y: &mut [f32], moments: (f32, f32)) {
    for ((y, &g), &b) in y.iter_mut().zip(rows.gamma).zip(rows.beta) {
        *y = normalised(*y, moments, g, b);
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::{add_layer_norm, AddRows, Norm, Rows};
    use crate::ndarray_ops::layer_norm::layer_norm;
    use crate::ndarray_ops::simd::tests::same_bits_on_every_width;
    use crate::ndarray_ops::tests::{zip_on, Ad, Plain};

    fn random<B: burn::tensor::backend::Backend, const D: usize>(
        shape: [usize; D],
        mean: f64,
    ) -> Tensor<B, D> {
        Tensor::random(shape, Distribution::Normal(mean, 1.5), &Default::default())
    }

    #[test]
    fn the_add_then_the_layer_norm_bit_for_bit() {
        // Rows of 37 (not a multiple of the lanes), some tasks' worth of them, a mean far from 0.
        for (rows, d) in [(3, 37), (1_000, 37), (70, 384)] {
            let x = random::<Plain, 3>([2, rows, d], 3.0);
            let residual = random::<Plain, 3>([2, rows, d], -1.0);
            let (gamma, beta) = (random::<Plain, 1>([d], 1.0), random::<Plain, 1>([d], 0.0));
            let fused = add_layer_norm(x.clone(), residual.clone(), &gamma, &beta, 1e-12)
                .unwrap_or_else(|_| panic!("NdArray f32 takes the fused path"));
            let two_ops = layer_norm(x + residual, gamma, beta, 1e-12)
                .unwrap_or_else(|_| panic!("NdArray f32 takes the fused path"));
            assert_eq!(fused.into_data(), two_ops.into_data(), "{rows} rows of {d}");
        }
    }

    #[test]
    fn the_same_bits_on_every_instruction_set() {
        let d = 37;
        let wave =
            |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        let (a, b) = (wave(d * 29, 0.37), wave(d * 29, 1.9));
        let (gamma, beta) = (wave(d, 1.3), wave(d, 0.7));
        let rows = AddRows(Rows {
            norm: Norm { epsilon: 1e-5 },
            gamma: &gamma,
            beta: &beta,
        });
        same_bits_on_every_width("x + r, LayerNorm", |arch| zip_on(arch, &rows, &a, &b));
    }

    #[test]
    fn autodiff_and_other_shapes_are_handed_back() {
        let d = 8;
        let (gamma, beta) = (random::<Ad, 1>([d], 1.0), random::<Ad, 1>([d], 0.0));
        let x = random::<Ad, 2>([4, d], 0.0);
        assert!(add_layer_norm(x.clone(), x, &gamma, &beta, 1e-5).is_err());
        let (gamma, beta) = (random::<Plain, 1>([d], 1.0), random::<Plain, 1>([d], 0.0));
        let (x, r) = (
            random::<Plain, 2>([4, d], 0.0),
            random::<Plain, 2>([1, d], 0.0),
        );
        assert!(
            add_layer_norm(x, r, &gamma, &beta, 1e-5).is_err(),
            "no broadcasting"
        );
    }
}
