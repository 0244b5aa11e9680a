//! A linear layer (`x · W + b`, `x` of rank 2) on NdArray: Burn's `linear` op with its products
//! (forward, `grad · Wᵀ`, `xᵀ · grad`) on strided GEMM ([`super::sgemm`] for the large ones,
//! the bias added in its epilogue, else matrixmultiply); the bias gradient NdArray's column sums,
//! the columns split over the threads.

use core::marker::PhantomData;

use burn::backend::NdArray;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, ModuleOps};
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_ndarray::NdArrayTensor;
use ndarray::parallel::prelude::*;
use ndarray::{ArcArray, Array1, Array2, ArrayView1, ArrayView2, Axis, Ix1, Ix2, IxDyn};
use rayon::slice::ParallelSliceMut;

use super::{gemm, gemm_into, primitive, tensor, zeros, Float, Kind};

/// `layer` on the rows of `x` through strided GEMM when `B` is NdArray or `Autodiff<NdArray>`
/// (see the module [`super`]); `Err(x)` for every other backend.
///
/// # Shapes
/// - x: `[rows, d_input]`
/// - output: `[rows, d_output]`
pub(crate) fn linear<B: Backend>(
    layer: &Linear<B>,
    x: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
    let Some(kind) = Kind::of::<B>() else {
        return Err(x);
    };
    // The parameters are read once, and every operand must be of the backend's float type
    // (anything else takes Burn's path).
    let weight = layer.weight.val();
    let bias = layer.bias.as_ref().map(|b| b.val());
    let dtype = kind.dtype();
    if x.dtype() != dtype
        || weight.dtype() != dtype
        || bias.as_ref().is_some_and(|b| b.dtype() != dtype)
    {
        return Err(x);
    }
    match kind {
        Kind::Plain(DType::F32) => Ok(inference::<B, f32>(x, weight, bias)),
        Kind::Plain(DType::F64) => Ok(inference::<B, f64>(x, weight, bias)),
        Kind::Tracked(DType::F32) => Ok(tracked::<B, f32>(x, weight, bias)),
        Kind::Tracked(DType::F64) => Ok(tracked::<B, f64>(x, weight, bias)),
        _ => Err(x),
    }
}

/// The tensor as a matrix, if it is a rank-2 tensor of `E`.
fn matrix<E: Float>(tensor: &NdArrayTensor) -> Option<ArrayView2<'_, E>> {
    E::view(tensor)?.into_dimensionality::<Ix2>().ok()
}

/// `a · b` as an NdArray tensor.
fn product<E: Float>(a: ArrayView2<'_, E>, b: ArrayView2<'_, E>) -> NdArrayTensor {
    E::wrap(gemm(a, b).into_dyn().into_shared())
}

/// `x · W + b` on NdArray tensors; Burn's default `linear` (matmul, then the bias reshaped to
/// `[1, d_output]` and added).
fn forward<E: Float>(
    x: NdArrayTensor,
    weight: NdArrayTensor,
    bias: Option<NdArrayTensor>,
) -> NdArrayTensor
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    let (x, w) = match (matrix::<E>(&x), matrix::<E>(&weight)) {
        (Some(x), Some(w)) => (x, w),
        _ => return NdArray::<E>::linear(x, weight, bias),
    };
    let bias = bias.as_ref().map(|bias| {
        E::view(bias)
            .and_then(|b| b.into_dimensionality::<Ix1>().ok())
            .expect("a rank-1 bias of the weight's type (checked by `linear`)")
    });
    let y = match E::fast_product(&x, &w, bias.as_ref()) {
        Some(y) => y,
        None => small(&x, &w, bias.as_ref()),
    };
    E::wrap(y.into_dyn().into_shared())
}

/// `x · w + bias` off [`super::sgemm`]: matrixmultiply, then the bias as Burn adds it.
fn small<E: Float>(
    x: &ArrayView2<'_, E>,
    w: &ArrayView2<'_, E>,
    bias: Option<&ArrayView1<'_, E>>,
) -> Array2<E> {
    let mut y: Array2<E> = zeros((x.nrows(), w.ncols()));
    gemm_into(x, w, &mut y.view_mut());
    if let Some(bias) = bias {
        // Burn adds the bias as a `[1, d_output]` row, one addition per element: the same
        // additions here, in place and row by row in parallel (burn-ndarray's add allocates a
        // new array on one thread).
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| row += bias);
    }
    y
}

fn inference<B: Backend, E: Float>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    let x: NdArrayTensor = primitive(x);
    let weight: NdArrayTensor = primitive(weight);
    let bias: Option<NdArrayTensor> = bias.map(primitive);
    tensor::<B, 2, _>(forward::<E>(x, weight, bias))
}

/// Burn's autodiff `linear` op (with or without bias, `N` = 3 or 2 parents), its gradients
/// computed by [`product`] on transposed views.
#[derive(Debug)]
struct StridedLinear<E>(PhantomData<E>);

impl<E: Float, const N: usize> Backward<NdArray<E>, N> for StridedLinear<E>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    /// The checkpointed input (needed for the weight gradient) and weight (for the input's).
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let mut parents = ops.parents.into_iter();
        let (node_x, node_weight) = (parents.next().flatten(), parents.next().flatten());
        let node_bias = parents.next().flatten();
        let grad: NdArrayTensor = grads.consume::<NdArray<E>>(&ops.node);

        let (x_state, weight_state) = ops.state;
        let x = x_state.map(|id| checkpointer.retrieve_node_output::<NdArrayTensor>(id));
        let weight = weight_state.map(|id| checkpointer.retrieve_node_output::<NdArrayTensor>(id));

        if let Some(node) = node_x {
            let weight = weight.expect("the weight is kept when the input needs a gradient");
            // grad · Wᵀ
            let grad_x = match (matrix::<E>(&grad), matrix::<E>(&weight)) {
                (Some(g), Some(w)) => product(g, w.t()),
                _ => NdArray::<E>::linear_x_backward(weight.clone(), grad.clone()),
            };
            grads.register::<NdArray<E>>(node.id, grad_x);
        }
        if let Some(node) = node_weight {
            let x = x.expect("the input is kept when the weight needs a gradient");
            // xᵀ · grad
            let grad_weight = match (matrix::<E>(&x), matrix::<E>(&grad)) {
                (Some(x), Some(g)) => product(x.t(), g),
                _ => NdArray::<E>::linear_weight_backward(x.clone(), grad.clone()),
            };
            grads.register::<NdArray<E>>(node.id, grad_weight);
        }
        if let Some(node) = node_bias {
            let grad_bias = match matrix::<E>(&grad).and_then(|g| bias_gradient(&g)) {
                Some(sums) => E::wrap(sums.into_dyn().into_shared()),
                None => NdArray::<E>::linear_bias_backward(grad),
            };
            grads.register::<NdArray<E>>(node.id, grad_bias);
        }
    }
}

/// Burn's `linear_bias_backward` of a standard-layout `[rows, d]` gradient (`d > 1`): ndarray's
/// `sum_axis(Axis(0))`, i.e. per column `((0 + g₀) + g₁) + …` in row order, with the columns split
/// over rayon's threads (Burn's runs on the calling thread). The same bits; `None` for other
/// layouts, where ndarray sums differently.
fn bias_gradient<E: Float>(grad: &ArrayView2<'_, E>) -> Option<Array1<E>> {
    let d = grad.ncols();
    let data = grad.as_slice().filter(|_| d > 1)?;
    let mut sums: Vec<E> = vec![E::zero(); d];
    let columns = d.div_ceil(2 * rayon::current_num_threads()).max(16);
    sums.par_chunks_mut(columns)
        .enumerate()
        .for_each(|(chunk, sums)| {
            let start = chunk * columns;
            for row in data.chunks_exact(d) {
                let row = &row[start..start + sums.len()];
                for (sum, &x) in sums.iter_mut().zip(row) {
                    *sum += x;
                }
            }
        });
    Some(Array1::from(sums))
}

fn tracked<B: Backend, E: Float>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    type Ad<E> = FloatTensor<Autodiff<NdArray<E>>>;
    let x: Ad<E> = primitive(x);
    let weight: Ad<E> = primitive(weight);
    let bias: Option<Ad<E>> = bias.map(primitive);
    let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
    let op = StridedLinear::<E>(PhantomData);

    // The same recording with and without the bias's node (`N` = 3 or 2 parents).
    macro_rules! record {
        ($nodes:expr, $bias:expr) => {
            match op
                .prepare::<NoCheckpointing>($nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    // The input is only needed for the weight's gradient, and vice versa.
                    let x_state = weight_tracked.then(|| prep.checkpoint(&x));
                    let weight_state = x_tracked.then(|| prep.checkpoint(&weight));
                    let y = forward::<E>(x.primitive, weight.primitive, $bias);
                    prep.finish((x_state, weight_state), y)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(forward::<E>(x.primitive, weight.primitive, $bias))
                }
            }
        };
    }
    let y = match bias {
        Some(bias) => record!(
            [x.node.clone(), weight.node.clone(), bias.node.clone()],
            Some(bias.primitive)
        ),
        None => record!([x.node.clone(), weight.node.clone()], None),
    };
    tensor::<B, 2, _>(y)
}

#[cfg(test)]
mod tests {
    //! The strided path against Burn's own `Linear::forward` on the same backend: outputs and
    //! every gradient equal bit for bit.

    use burn::nn::Linear;
    use burn::tensor::{Distribution, Tensor};

    use super::linear;
    use crate::ndarray_ops::tests::{bits, random_linear, Ad, Plain};

    /// A layer with random weights and (if `bias`) a random, non-zero bias.
    fn layer<B: burn::tensor::backend::Backend>(
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Linear<B> {
        random_linear(d_in, d_out, bias, 1.0)
    }

    /// Output and gradients (x, weight, bias) of `Σ y ⊙ r` for `y = layer(x)`, strided or Burn's.
    fn run(layer: &Linear<Ad>, x: Tensor<Ad, 2>, r: Tensor<Ad, 2>, strided: bool) -> Vec<Vec<u32>> {
        let x = x.require_grad();
        let y = if strided {
            linear(layer, x.clone())
                .unwrap_or_else(|_| panic!("Autodiff<NdArray> takes the strided path"))
        } else {
            layer.forward(x.clone())
        };
        let grads = (y.clone() * r).sum().backward();
        let mut out = vec![
            bits(y.into_data()),
            bits(x.grad(&grads).unwrap().into_data()),
        ];
        out.push(bits(layer.weight.val().grad(&grads).unwrap().into_data()));
        if let Some(bias) = &layer.bias {
            out.push(bits(bias.val().grad(&grads).unwrap().into_data()));
        }
        out
    }

    #[test]
    fn outputs_and_gradients_equal_burns_linear_bit_for_bit() {
        crate::ndarray_ops::sgemm::tests::on_fma(|| {
            let device = Default::default();
            // Shapes off the GEMM kernel's tile sizes; a contiguous input and a transposed view.
            // The last two are large enough for `sgemm` (every product, forward and backward, over
            // two blocks of the sum), the others stay on matrixmultiply.
            for (rows, d_in, d_out, bias) in [
                (37, 23, 19, true),
                (130, 64, 200, true),
                (9, 48, 31, false),
                (300, 270, 130, true),
                (260, 300, 140, false),
            ] {
                let layer = layer::<Ad>(d_in, d_out, bias);
                let r =
                    Tensor::<Ad, 2>::random([rows, d_out], Distribution::Normal(0.0, 1.0), &device);
                let contiguous =
                    Tensor::<Ad, 2>::random([rows, d_in], Distribution::Normal(0.0, 1.0), &device);
                let transposed =
                    Tensor::<Ad, 2>::random([d_in, rows], Distribution::Normal(0.0, 1.0), &device)
                        .transpose();
                for x in [contiguous, transposed] {
                    let burn = run(&layer, x.clone(), r.clone(), false);
                    let ours = run(&layer, x, r.clone(), true);
                    assert_eq!(burn.len(), ours.len());
                    for (which, (a, b)) in ["output", "x grad", "weight grad", "bias grad"]
                        .iter()
                        .zip(burn.iter().zip(&ours))
                    {
                        assert!(
                            a == b,
                            "{which} differs ({rows}×{d_in} → {d_out}, bias {bias})"
                        );
                    }
                }
            }
        });
    }

    #[test]
    fn a_frozen_weight_gets_no_gradient_and_the_input_the_same_one() {
        let device = Default::default();
        let layer = layer::<Ad>(16, 8, true);
        let frozen = Linear {
            weight: layer.weight.set_require_grad(false),
            ..layer
        };
        let x = Tensor::<Ad, 2>::random([5, 16], Distribution::Normal(0.0, 1.0), &device);
        let mut x_grads = Vec::new();
        for strided in [false, true] {
            let x = x.clone().require_grad();
            let y = if strided {
                linear(&frozen, x.clone()).unwrap_or_else(|_| panic!("strided path"))
            } else {
                frozen.forward(x.clone())
            };
            let grads = y.sum().backward();
            assert!(frozen.weight.val().grad(&grads).is_none());
            x_grads.push(bits(x.grad(&grads).unwrap().into_data()));
        }
        assert_eq!(x_grads[0], x_grads[1]);
    }

    #[test]
    fn inference_equals_burns_linear_bit_for_bit() {
        crate::ndarray_ops::sgemm::tests::on_fma(|| {
            let device = Default::default();
            // matrixmultiply's size, then `sgemm`'s (with the bias in its epilogue).
            for (rows, d_in, d_out) in [(70, 40, 24), (300, 270, 130)] {
                let layer = layer::<Plain>(d_in, d_out, true);
                let x = Tensor::<Plain, 2>::random(
                    [rows, d_in],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let burn = layer.forward(x.clone());
                let ours = linear(&layer, x.clone())
                    .unwrap_or_else(|_| panic!("NdArray takes the strided path"));
                assert_eq!(bits(burn.into_data()), bits(ours.into_data()));
            }
        });
    }

    #[cfg(feature = "flex")]
    #[test]
    fn other_backends_are_handed_back() {
        type Flex = burn::backend::Flex;
        let plain = layer::<Flex>(4, 3, true);
        let x = Tensor::<Flex, 2>::zeros([2, 4], &Default::default());
        assert!(linear(&plain, x).is_err(), "Flex keeps Burn's linear");
        let tracked = layer::<burn_autodiff::Autodiff<Flex>>(4, 3, true);
        let x = Tensor::zeros([2, 4], &Default::default());
        assert!(
            linear(&tracked, x).is_err(),
            "Autodiff<Flex> keeps Burn's linear"
        );
    }
}
