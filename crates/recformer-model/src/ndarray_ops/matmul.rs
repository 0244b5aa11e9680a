//! A batched matrix product `a · b` on NdArray: Burn's `matmul` op (forward, `grad · bᵀ`,
//! `aᵀ · grad`) with every product on strided GEMM, one GEMM per matrix of the batch, the
//! batch's matrices in parallel as burn-ndarray runs them.

use core::marker::PhantomData;

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, ArrayViewD, ArrayViewMut2, IxDyn};

use super::filled::filled;
use super::{gemm, gemm_into, matrix, primitive, tensor, Float, Kind};

/// `a · b` over the last two dimensions through strided GEMM when `B` is NdArray or
/// `Autodiff<NdArray>` (see the module [`super`]) and the leading dimensions are equal (no
/// broadcasting); `Err((a, b))` otherwise.
///
/// # Shapes
/// - a: `[..., m, k]`, b: `[..., k, n]` (the same leading dimensions)
/// - output: `[..., m, n]`
#[allow(clippy::type_complexity)]
pub(crate) fn matmul<B: Backend, const D: usize>(
    a: Tensor<B, D>,
    b: Tensor<B, D>,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let (sa, sb) = (a.dims(), b.dims());
    let same_batch = D >= 2 && sa[..D - 2] == sb[..D - 2] && sa[D - 1] == sb[D - 2];
    if !same_batch || a.dtype() != b.dtype() {
        return Err((a, b));
    }
    match Kind::of::<B>() {
        Some(kind) if kind.dtype() != a.dtype() => Err((a, b)),
        Some(Kind::Plain(DType::F32)) => Ok(plain::<B, D, f32>(a, b)),
        Some(Kind::Plain(DType::F64)) => Ok(plain::<B, D, f64>(a, b)),
        Some(Kind::Tracked(DType::F32)) => Ok(tracked::<B, D, f32>(a, b)),
        Some(Kind::Tracked(DType::F64)) => Ok(tracked::<B, D, f64>(a, b)),
        _ => Err((a, b)),
    }
}

/// `a · b` for views of equal leading dimensions, into a new standard-layout array.
fn batched<E: Float>(a: &ArrayViewD<'_, E>, b: &ArrayViewD<'_, E>) -> ArcArray<E, IxDyn> {
    let nd = a.ndim();
    let (m, n) = (a.shape()[nd - 2], b.shape()[nd - 1]);
    let lead = &a.shape()[..nd - 2];
    let batches = lead.iter().product::<usize>();
    let shape: Vec<usize> = lead.iter().copied().chain([m, n]).collect();
    if batches == 1 {
        // One product, split over the threads by the GEMM itself.
        return gemm(matrix(a, 0), matrix(b, 0))
            .into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements")
            .into_shared();
    }
    // One product per task, which zeroes its output matrix right before writing it.
    let out = filled(batches * m * n, (m * n).max(1), |i, c| {
        let mut c = ArrayViewMut2::from_shape((m, n), c).expect("one output matrix");
        gemm_into(&matrix(a, i), &matrix(b, i), &mut c);
    });
    ArcArray::from_shape_vec(IxDyn(&shape), out).expect("same number of elements")
}

/// The view with its last two axes swapped.
fn transposed<E: Float>(view: ArrayViewD<'_, E>) -> ArrayViewD<'_, E> {
    let mut view = view;
    let nd = view.ndim();
    view.swap_axes(nd - 2, nd - 1);
    view
}

/// `a · b` on NdArray tensors (Burn's matmul when either is not of `E`).
fn forward<E: Float>(a: NdArrayTensor, b: NdArrayTensor) -> NdArrayTensor
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    match (E::view(&a), E::view(&b)) {
        (Some(x), Some(y)) => E::wrap(batched(&x, &y)),
        _ => NdArray::<E>::float_matmul(a, b),
    }
}

fn plain<B: Backend, const D: usize, E: Float>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    tensor::<B, D, _>(forward::<E>(primitive(a), primitive(b)))
}

/// Burn's autodiff `matmul` op, its gradients computed by [`batched`] on transposed views.
#[derive(Debug)]
struct StridedMatmul<E>(PhantomData<E>);

impl<E: Float> Backward<NdArray<E>, 2> for StridedMatmul<E>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    /// The checkpointed lhs (needed for the rhs gradient) and rhs (for the lhs gradient).
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_a, node_b] = ops.parents;
        let grad: NdArrayTensor = grads.consume::<NdArray<E>>(&ops.node);
        let (a_state, b_state) = ops.state;
        let a = a_state.map(|id| checkpointer.retrieve_node_output::<NdArrayTensor>(id));
        let b = b_state.map(|id| checkpointer.retrieve_node_output::<NdArrayTensor>(id));

        if let Some(node) = node_a {
            let b = b.expect("the rhs is kept when the lhs needs a gradient");
            // grad · bᵀ
            let grad_a = match (E::view(&grad), E::view(&b)) {
                (Some(g), Some(b)) => E::wrap(batched(&g, &transposed(b))),
                _ => NdArray::<E>::float_matmul(
                    grad.clone(),
                    NdArray::<E>::float_transpose(b.clone()),
                ),
            };
            grads.register::<NdArray<E>>(node.id, grad_a);
        }
        if let Some(node) = node_b {
            let a = a.expect("the lhs is kept when the rhs needs a gradient");
            // aᵀ · grad
            let grad_b = match (E::view(&a), E::view(&grad)) {
                (Some(a), Some(g)) => E::wrap(batched(&transposed(a), &g)),
                _ => NdArray::<E>::float_matmul(
                    NdArray::<E>::float_transpose(a.clone()),
                    grad.clone(),
                ),
            };
            grads.register::<NdArray<E>>(node.id, grad_b);
        }
    }
}

fn tracked<B: Backend, const D: usize, E: Float>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    let a: FloatTensor<Autodiff<NdArray<E>>> = primitive(a);
    let b: FloatTensor<Autodiff<NdArray<E>>> = primitive(b);
    let (a_tracked, b_tracked) = (a.is_tracked(), b.is_tracked());
    let op = StridedMatmul::<E>(PhantomData);
    let y = match op
        .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            // Each operand is only needed for the other's gradient.
            let a_state = b_tracked.then(|| prep.checkpoint(&a));
            let b_state = a_tracked.then(|| prep.checkpoint(&b));
            prep.finish((a_state, b_state), forward::<E>(a.primitive, b.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward::<E>(a.primitive, b.primitive)),
    };
    tensor::<B, D, _>(y)
}

#[cfg(test)]
mod tests {
    //! The strided product against Burn's `Tensor::matmul` on the same backend, on the kinds of
    //! operands attention passes (transposed heads, windows sliced out of padded blocks,
    //! broadcast views): outputs and gradients equal bit for bit.

    use burn::tensor::{Distribution, Tensor};

    use super::matmul;
    use crate::ndarray_ops::tests::{bits, Ad, Plain};

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<Ad, D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    /// Output of `Σ (make(x, y)) ⊙ r` and the gradients of the leaves `x` and `y`, with the product
    /// inside `make` strided or Burn's.
    fn run<const D: usize, const E: usize>(
        x: &Tensor<Ad, D>,
        y: &Tensor<Ad, E>,
        make: impl Fn(Tensor<Ad, D>, Tensor<Ad, E>) -> (Tensor<Ad, 4>, Tensor<Ad, 4>),
        strided: bool,
    ) -> [Vec<u32>; 3] {
        let (x, y) = (x.clone().require_grad(), y.clone().require_grad());
        let (a, b) = make(x.clone(), y.clone());
        let out = if strided {
            matmul(a, b)
                .unwrap_or_else(|_| panic!("equal leading dimensions take the strided path"))
        } else {
            a.matmul(b)
        };
        // Fixed, uneven weights on the output (the same for both paths).
        let r = Tensor::<Ad, 1, burn::tensor::Int>::arange(
            0..out.shape().num_elements() as i64,
            &Default::default(),
        )
        .float()
        .sin()
        .reshape(out.dims());
        let grads = (out.clone() * r).sum().backward();
        [
            bits(out.into_data()),
            bits(x.grad(&grads).unwrap().into_data()),
            bits(y.grad(&grads).unwrap().into_data()),
        ]
    }

    fn check<const D: usize, const E: usize>(
        what: &str,
        x: Tensor<Ad, D>,
        y: Tensor<Ad, E>,
        make: impl Fn(Tensor<Ad, D>, Tensor<Ad, E>) -> (Tensor<Ad, 4>, Tensor<Ad, 4>) + Copy,
    ) {
        let burn = run(&x, &y, make, false);
        let ours = run(&x, &y, make, true);
        for (which, (a, b)) in ["output", "lhs grad", "rhs grad"]
            .iter()
            .zip(burn.iter().zip(&ours))
        {
            assert!(a == b, "{what}: {which} differs");
        }
    }

    #[test]
    fn outputs_and_gradients_equal_burns_matmul_bit_for_bit() {
        // Scores: heads split from [b, l, h, d] (a strided view) against transposed keys.
        check(
            "q · kᵀ",
            random([2, 37, 3, 16]),
            random([2, 29, 3, 16]),
            |q, k| (q.swap_dims(1, 2), k.swap_dims(1, 2).swap_dims(2, 3)),
        );
        // Probabilities against values, contiguous lhs, strided rhs.
        check(
            "p · v",
            random([2, 3, 37, 29]),
            random([2, 29, 3, 16]),
            |p, v| (p, v.swap_dims(1, 2)),
        );
        // A window sliced out of zero-padded blocks, and a broadcast (stride-0) operand.
        check(
            "window",
            random([2, 3, 12, 8]),
            random([2, 3, 1, 5]),
            |q, v| {
                let padded = Tensor::cat(
                    vec![Tensor::zeros([2, 3, 4, 8], &Default::default()), q.clone()],
                    2,
                );
                let window = padded.slice([0..2, 0..3, 2..14, 0..8]);
                (v.expand([2, 3, 12, 5]).swap_dims(2, 3), window)
            },
        );
    }

    #[test]
    fn inference_equals_burns_matmul_bit_for_bit() {
        let a = Tensor::<Plain, 3>::random(
            [4, 33, 20],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        let b = Tensor::<Plain, 3>::random(
            [4, 41, 20],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        let burn = a.clone().matmul(b.clone().swap_dims(1, 2));
        let ours = matmul(a, b.swap_dims(1, 2)).unwrap_or_else(|_| panic!("strided path"));
        assert_eq!(bits(burn.into_data()), bits(ours.into_data()));
    }

    #[test]
    fn broadcasting_is_handed_back_and_the_crate_product_still_broadcasts() {
        let a = Tensor::<Plain, 3>::random(
            [1, 5, 4],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        let b = Tensor::<Plain, 3>::random(
            [3, 4, 2],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        assert!(matmul(a.clone(), b.clone()).is_err());
        let expected = a.clone().matmul(b.clone());
        assert_eq!(
            bits(crate::matmul::matmul(a, b).into_data()),
            bits(expected.into_data())
        );
    }
}
