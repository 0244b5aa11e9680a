//! The sliding window's two products on NdArray, each one op that writes every part's GEMM in
//! place: the band's scores (`[w, d] · [d, w]` per query block and key block, plus the global
//! column against token 0's key) and its context (`[w, w] · [w, d]` per probability part and value
//! block, plus the global column times token 0's value), forward and backward.
//!
//! Built from Burn's ops (`crate::attention::sliding`), the band costs a `cat` of the three score
//! parts and of the global column (burn-ndarray 0.21 concatenates along the last axis into a
//! non-standard layout and copies it twice more: a quarter of a mini forward), a zero-padded copy
//! of the keys and values, and a copying `slice` per part of the keys, values and probabilities;
//! in the backward every slice becomes a zero tensor of the whole and a `slice_assign`. Here the
//! query, key and value tensors are read where they are (any strides), the scores come out as one
//! `[b, h, nb, w, 3w (+1)]` array with each part's GEMM written into its columns, and the
//! gradients are accumulated by GEMM (`β = 1`) into one array per operand.
//!
//! Parts that fall outside the sequence (the previous block of block 0, the next block of the last
//! block) score 0 and contribute nothing, as the zero padding of the generic path does; the
//! caller masks those scores. The forward values are those of the part-by-part path up to the
//! order of the additions in the context; `tests/sliding_gradients.rs` checks outputs and
//! gradients against the dense oracle.

use core::marker::PhantomData;

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, ArrayViewD, Axis, IxDyn};

use super::{primitive, tensor, Float, Kind};

#[cfg(target_arch = "x86_64")]
mod attention;
mod kernels;

#[cfg(target_arch = "x86_64")]
pub(crate) use attention::attention;

use kernels::{context_backward, context_forward, dims4, scores_backward, scores_forward, Band};

/// `[n, ...]` as the shape `dims` (standard layout, no copy).
fn shaped<E: Float>(array: ndarray::ArrayD<E>, dims: &[usize]) -> NdArrayTensor {
    E::wrap(
        array
            .into_shape_with_order(IxDyn(dims))
            .expect("same number of elements")
            .into_shared(),
    )
}

/// The views of two tensors of `E` (their dtype was checked).
fn views<'a, E: Float>(
    a: &'a NdArrayTensor,
    b: &'a NdArrayTensor,
) -> (ArrayViewD<'a, E>, ArrayViewD<'a, E>) {
    (
        E::view(a).expect("dtype checked"),
        E::view(b).expect("dtype checked"),
    )
}

/// Which product an op node computes.
#[derive(Debug, Clone, Copy)]
enum Product {
    Scores,
    Context,
}

impl Product {
    /// The forward on the two operands (`q, k` or `p, v`).
    fn forward<E: Float>(self, a: &NdArrayTensor, b: &NdArrayTensor, band: Band) -> NdArrayTensor {
        let (x, y) = views::<E>(a, b);
        match self {
            Product::Scores => {
                let (bs, h, l, _) = dims4(&x);
                let dims = [bs, h, l / band.w, band.w, band.cols()];
                shaped(scores_forward(&x, &y, band).into_dyn(), &dims)
            }
            Product::Context => {
                let dims = y.shape().to_vec();
                shaped(context_forward(&x, &y, band).into_dyn(), &dims)
            }
        }
    }

    /// The gradients with respect to both operands.
    fn backward<E: Float>(
        self,
        grad: &NdArrayTensor,
        a: &NdArrayTensor,
        b: &NdArrayTensor,
        band: Band,
    ) -> [NdArrayTensor; 2] {
        let g = E::view(grad).expect("dtype checked");
        let (x, y) = views::<E>(a, b);
        match self {
            Product::Scores => {
                let dims = x.shape().to_vec();
                let both = scores_backward(&g, &x, &y, band).into_shared();
                let part = |n: usize| {
                    let array = both.clone().index_axis_move(Axis(0), n).into_dyn();
                    E::wrap(
                        array
                            .into_shape_with_order(IxDyn(&dims))
                            .expect("a contiguous half"),
                    )
                };
                [part(0), part(1)]
            }
            Product::Context => {
                let (dp, dv) = context_backward(&g, &x, &y, band);
                [
                    shaped(dp.into_dyn(), x.shape()),
                    shaped(dv.into_dyn(), y.shape()),
                ]
            }
        }
    }
}

/// The autodiff node of either product: keeps both operands.
#[derive(Debug)]
struct BandOp<E> {
    product: Product,
    band: Band,
    float: PhantomData<E>,
}

impl<E: Float> Backward<NdArray<E>, 2> for BandOp<E>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad: NdArrayTensor = grads.consume::<NdArray<E>>(&ops.node);
        let a: NdArrayTensor = checkpointer.retrieve_node_output(ops.state.0);
        let b: NdArrayTensor = checkpointer.retrieve_node_output(ops.state.1);
        let gradients = self.product.backward::<E>(&grad, &a, &b, self.band);
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<NdArray<E>>(node.id, gradient);
            }
        }
    }
}

/// `product` of `a` and `b` on NdArray (`E` checked), recorded for autodiff when tracked.
fn run<B: Backend, const DA: usize, const DB: usize, const DO: usize, E: Float>(
    product: Product,
    a: Tensor<B, DA>,
    b: Tensor<B, DB>,
    band: Band,
    tracked: bool,
) -> Tensor<B, DO>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    if !tracked {
        let (a, b): (NdArrayTensor, NdArrayTensor) = (primitive(a), primitive(b));
        return tensor(product.forward::<E>(&a, &b, band));
    }
    let a: FloatTensor<Autodiff<NdArray<E>>> = primitive(a);
    let b: FloatTensor<Autodiff<NdArray<E>>> = primitive(b);
    let op = BandOp::<E> {
        product,
        band,
        float: PhantomData,
    };
    let y = match op
        .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&a), prep.checkpoint(&b));
            prep.finish(
                state,
                product.forward::<E>(&a.primitive, &b.primitive, band),
            )
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(product.forward::<E>(&a.primitive, &b.primitive, band))
        }
    };
    tensor(y)
}

/// Whether the fused band runs for backend `B` with operands of `dtype`.
fn dispatch<B: Backend>(dtype: DType) -> Option<Kind> {
    Kind::of::<B>().filter(|kind| kind.dtype() == dtype)
}

/// `product` for the backend's kind.
fn on_kind<B: Backend, const DA: usize, const DB: usize, const DO: usize>(
    kind: Kind,
    product: Product,
    a: Tensor<B, DA>,
    b: Tensor<B, DB>,
    band: Band,
) -> Tensor<B, DO> {
    match kind {
        Kind::Plain(DType::F32) => run::<B, DA, DB, DO, f32>(product, a, b, band, false),
        Kind::Plain(_) => run::<B, DA, DB, DO, f64>(product, a, b, band, false),
        Kind::Tracked(DType::F32) => run::<B, DA, DB, DO, f32>(product, a, b, band, true),
        Kind::Tracked(_) => run::<B, DA, DB, DO, f64>(product, a, b, band, true),
    }
}

/// The band's scores: for query block `k` (rows `[k·w, (k+1)·w)`), columns `[s·w, (s+1)·w)` hold
/// its products with key block `k + s - 1` (0 outside the sequence) and, when `global`, column
/// `3w` its product with key row 0. `Err` for other backends.
///
/// # Shapes
/// - query (scaled), key: `[batch, heads, seq_len, head_dim]`, `seq_len % w == 0`
/// - output: `[batch, heads, seq_len / w, w, 3w (+1 when global)]`
#[allow(clippy::type_complexity)]
pub(crate) fn scores<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    w: usize,
    global: bool,
) -> Result<Tensor<B, 5>, (Tensor<B, 4>, Tensor<B, 4>)> {
    let fits = query.dims() == key.dims() && w > 0 && query.dims()[2].is_multiple_of(w);
    match dispatch::<B>(query.dtype()) {
        Some(kind) if fits && key.dtype() == query.dtype() => Ok(on_kind(
            kind,
            Product::Scores,
            query,
            key,
            Band { w, global },
        )),
        _ => Err((query, key)),
    }
}

/// The band's context: for query block `k`, the sum over the parts `s` of probabilities
/// `[s·w, (s+1)·w)` times value block `k + s - 1` (none outside the sequence), plus, when
/// `global`, column `3w` times value row 0. `Err` for other backends.
///
/// # Shapes
/// - probs: `[batch, heads, seq_len / w, w, 3w (+1 when global)]`
/// - value: `[batch, heads, seq_len, head_dim]`
/// - output: `[batch, heads, seq_len, head_dim]`
#[allow(clippy::type_complexity)]
pub(crate) fn context<B: Backend>(
    probs: Tensor<B, 5>,
    value: Tensor<B, 4>,
    w: usize,
    global: bool,
) -> Result<Tensor<B, 4>, (Tensor<B, 5>, Tensor<B, 4>)> {
    let band = Band { w, global };
    let [b, h, l, _] = value.dims();
    let fits = w > 0 && l.is_multiple_of(w) && probs.dims() == [b, h, l / w, w, band.cols()];
    match dispatch::<B>(probs.dtype()) {
        Some(kind) if fits && value.dtype() == probs.dtype() => {
            Ok(on_kind(kind, Product::Context, probs, value, band))
        }
        _ => Err((probs, value)),
    }
}

#[cfg(test)]
mod tests {
    //! The fused ops run on NdArray and hand other backends back; their values against the
    //! part-by-part path of `crate::attention::sliding` (gradients against the dense oracle:
    //! `tests/sliding_gradients.rs`).

    use burn::nn::DropoutConfig;
    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    use super::{context, scores};
    use crate::attention::sliding::{band_scores, local_attention_sliding, BandProduct};
    use crate::attention::AttentionMasks;
    use crate::ndarray_ops::tests::{bits, Ad, Plain};

    fn random<B: burn::tensor::backend::Backend, const D: usize>(
        shape: [usize; D],
    ) -> Tensor<B, D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    #[test]
    fn ndarray_takes_the_fused_ops_and_other_shapes_are_handed_back() {
        let (q, k) = (random::<Plain, 4>([2, 3, 12, 4]), random([2, 3, 12, 4]));
        let s = scores(q.clone(), k.clone(), 4, true).unwrap_or_else(|_| panic!("fused"));
        assert_eq!(s.dims(), [2, 3, 3, 4, 13]);
        assert!(context(s, k.clone(), 4, true).is_ok());
        // 12 is not a multiple of 5; probabilities of the wrong width.
        assert!(scores(q, k.clone(), 5, false).is_err());
        assert!(context(random::<Plain, 5>([2, 3, 3, 4, 12]), k, 4, true).is_err());
    }

    /// The scores, computed per query block as one product over the adjacent key blocks: the
    /// same bits as one product per part (Burn's part-by-part path), at the sequence's edges
    /// (one, two and many blocks) too.
    #[test]
    fn fused_scores_equal_the_part_by_part_scores_bit_for_bit() {
        for (l, global) in [(4, true), (8, false), (24, true)] {
            let (q, k) = (random::<Plain, 4>([2, 3, l, 8]), random([2, 3, l, 8]));
            let fused = scores(q.clone(), k.clone(), 4, global).unwrap_or_else(|_| panic!("fused"));
            let parts = band_scores(q, k, 4, global, BandProduct::Parts);
            let (fused, parts) = (bits(fused.into_data()), bits(parts.into_data()));
            assert!(parts.iter().any(|&b| b != 0));
            assert_eq!(fused, parts, "l {l}, global {global}");
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn other_backends_are_handed_back() {
        type Flex = burn::backend::Flex;
        let (q, k) = (random::<Flex, 4>([1, 1, 8, 2]), random([1, 1, 8, 2]));
        assert!(scores(q, k, 4, false).is_err());
    }

    /// Local attention in f32 on the fused and part-by-part paths, padding and a global first
    /// token included: the same outputs within rounding, and the same gradients.
    #[test]
    fn fused_band_equals_the_part_by_part_band() {
        let device = Default::default();
        let [b, h, w, d] = [2, 3, 4, 8];
        let l = 6 * w;
        let ints =
            |v: Vec<i64>| Tensor::<Ad, 2, Int>::from_data(TensorData::new(v, [b, l]), &device);
        let mask = (0..b * l)
            .map(|i| (i % l < l - 5 * (i / l)) as i64)
            .collect();
        let global = (0..b * l)
            .map(|i| (i % l == 0 && i / l == 0) as i64)
            .collect();
        let masks = AttentionMasks::new(ints(mask), ints(global));
        let dropout = DropoutConfig::new(0.0).init();
        let (q, k, v) = (
            random::<Ad, 4>([b, h, l, d]).require_grad(),
            random::<Ad, 4>([b, h, l, d]).require_grad(),
            random::<Ad, 4>([b, h, l, d]).require_grad(),
        );
        let run = |product| {
            let out = local_attention_sliding(
                q.clone(),
                k.clone(),
                v.clone(),
                &masks,
                w,
                &dropout,
                product,
            );
            let grads = (out.clone() * out.clone().cos()).sum().backward();
            let g =
                |t: &Tensor<Ad, 4>| t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            (
                out.into_data().to_vec::<f32>().unwrap(),
                [g(&q), g(&k), g(&v)],
            )
        };
        let (parts, parts_grads) = run(BandProduct::Parts);
        let (fused, fused_grads) = run(BandProduct::Fused);
        let close = |a: &[f32], e: &[f32], what: &str| {
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{what}[{i}]: {x} vs {y}"
                );
            }
        };
        close(&fused, &parts, "output");
        for (name, (a, e)) in ["query", "key", "value"]
            .iter()
            .zip(fused_grads.iter().zip(&parts_grads))
        {
            close(a, e, name);
        }
        assert!(parts_grads.iter().all(|g| g.iter().any(|&x| x != 0.0)));
    }
}
