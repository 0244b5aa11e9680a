//! `reshape` on NdArray without copying standard-layout tensors, forward and backward.
//!
//! burn-ndarray 0.21's `reshape` copies every tensor: a standard-layout array goes through
//! ndarray's `to_shape` (a view) and `into_shared` (which copies a view into a new array), any
//! other array is copied twice (`to_shape`, then `as_standard_layout().into_shared()`). Autodiff's
//! reshape backward reshapes the gradient the same way. Every per-token linear layer reshapes its
//! input to rows and its output back (`token_linear`), attention splits and merges heads: 8% of an
//! `encode-items` profile (docs/performance.md). Here a standard-layout array is re-viewed under
//! the new shape (same buffer, no copy) and any other array is copied once into standard layout.
//! Values are untouched, so results are bit-identical to Burn's.

use core::marker::PhantomData;

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{DType, Shape, Tensor, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};

use super::{primitive, standard, tensor, Float, Kind};

/// `x.reshape(shape)` without copying on NdArray and `Autodiff<NdArray>` (the module
/// [`super`]); `Err(x)` for every other backend, and when the element counts differ (Burn's
/// `reshape` then reports the error).
///
/// # Shapes
/// - x: any shape with as many elements as `shape`
/// - output: `shape`
pub(crate) fn reshape<B: Backend, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Result<Tensor<B, D2>, Tensor<B, D1>> {
    let Some(kind) = Kind::of::<B>() else {
        return Err(x);
    };
    if x.dtype() != kind.dtype() || x.shape().num_elements() != shape.iter().product::<usize>() {
        return Err(x);
    }
    let shape = Shape::new(shape);
    Ok(match kind {
        Kind::Plain(DType::F32) => tensor(array_reshape::<f32>(primitive(x), &shape)),
        Kind::Plain(DType::F64) => tensor(array_reshape::<f64>(primitive(x), &shape)),
        Kind::Tracked(DType::F32) => tracked::<B, D1, D2, f32>(x, shape),
        Kind::Tracked(DType::F64) => tracked::<B, D1, D2, f64>(x, shape),
        _ => return Err(x),
    })
}

/// The array under `shape`: the same buffer when it is in standard layout, else one copy.
fn array_reshape<E: Float>(x: NdArrayTensor, shape: &Shape) -> NdArrayTensor
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    let array: ArcArray<E, IxDyn> = match E::shared(x) {
        Ok(array) if array.is_standard_layout() => array,
        Ok(array) => standard(&array.view()).into_shared(),
        Err(x) => return NdArray::<E>::float_reshape(x, shape.clone()),
    };
    let dims: Vec<usize> = shape.iter().copied().collect();
    let array = array
        .into_shape_with_order(IxDyn(&dims))
        .expect("a standard-layout array takes any shape with its element count");
    E::wrap(array)
}

/// Burn's autodiff reshape node with [`array_reshape`] both ways.
#[derive(Debug)]
struct FreeReshape<E>(PhantomData<E>);

impl<E: Float> Backward<NdArray<E>, 1> for FreeReshape<E>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    /// The input's shape and the output's.
    type State = (Shape, Shape);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (input_shape, output_shape) = ops.state;
        unary::<NdArray<E>, _>(ops.parents, ops.node, grads, |grad| {
            // As Burn's: a gradient broadcast along an output dimension of size 1 is summed back.
            let mut grad = grad;
            for dim in 0..output_shape.num_dims() {
                if output_shape[dim] == 1 && grad.shape()[dim] != 1 {
                    grad = NdArray::<E>::float_sum_dim(grad, dim);
                }
            }
            array_reshape::<E>(grad, &input_shape)
        });
    }
}

fn tracked<B: Backend, const D1: usize, const D2: usize, E: Float>(
    x: Tensor<B, D1>,
    shape: Shape,
) -> Tensor<B, D2>
where
    NdArrayTensor: From<ArcArray<E, IxDyn>>,
{
    let x: FloatTensor<Autodiff<NdArray<E>>> = primitive(x);
    let y = match FreeReshape::<E>(PhantomData)
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let input_shape = x.primitive.shape();
            let y = array_reshape::<E>(x.primitive, &shape);
            prep.finish((input_shape, shape), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(array_reshape::<E>(x.primitive, &shape)),
    };
    tensor(y)
}

#[cfg(test)]
mod tests {
    //! Against Burn's `reshape`: the same values and gradients, bit for bit, and no copy.

    use burn::tensor::{Distribution, Tensor};

    use super::reshape;
    use crate::ndarray_ops::tests::{bits, Ad, Plain};
    use crate::ndarray_ops::Float;

    #[test]
    fn values_and_gradients_equal_burns_reshape() {
        let device = Default::default();
        let base = Tensor::<Ad, 3>::random([4, 6, 10], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<Ad, 2>::random([24, 10], Distribution::Normal(0.0, 1.0), &device);
        // A standard-layout input and a transposed view (copied once).
        for swap in [false, true] {
            let mut results = Vec::new();
            for ours in [false, true] {
                let x = base.clone().require_grad();
                let input = if swap {
                    x.clone().swap_dims(0, 1)
                } else {
                    x.clone()
                };
                let y: Tensor<Ad, 2> = if ours {
                    reshape(input, [24, 10]).unwrap_or_else(|_| panic!("NdArray's path"))
                } else {
                    input.reshape([24, 10])
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                results.push((
                    bits(y.into_data()),
                    bits(x.grad(&grads).unwrap().into_data()),
                ));
            }
            assert_eq!(results[0], results[1], "swapped {swap}");
        }
    }

    #[test]
    fn a_standard_layout_tensor_keeps_its_buffer() {
        let device = Default::default();
        let x = Tensor::<Plain, 3>::random([2, 3, 4], Distribution::Normal(0.0, 1.0), &device);
        let before = <f32 as Float>::view(&x.clone().into_primitive().tensor())
            .unwrap()
            .as_ptr();
        let y: Tensor<Plain, 2> = reshape(x, [6, 4]).unwrap_or_else(|_| panic!("NdArray's path"));
        let after = <f32 as Float>::view(&y.into_primitive().tensor())
            .unwrap()
            .as_ptr();
        assert_eq!(before, after, "reshaped in place");
    }

    #[test]
    fn a_wrong_element_count_is_handed_back() {
        let x = Tensor::<Plain, 2>::zeros([2, 3], &Default::default());
        assert!(reshape(x, [7]).is_err());
    }
}
