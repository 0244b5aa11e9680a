//! NdArray's own kernels for the ops where burn-ndarray 0.21 is slow: matrix products on strided
//! GEMM ([`linear`], [`matmul`], [`sgemm`]), the sliding window's scores and context as one op
//! each ([`band`]), one-pass GELU ([`gelu`], with the vectorised f32 `erf` of [`erf`]), softmax
//! ([`softmax`]), dropout ([`dropout`]) and LayerNorm ([`layer_norm`]), and reshapes without
//! copies ([`reshape`]).
//!
//! **Products.** burn-ndarray 0.21's `matmul` reshapes both operands to 3-D before its GEMM, and
//! that reshape copies them: arrays in standard layout with a plain copy, and any other view (a
//! transpose, a head split, a window sliced out of padded blocks) element by element. Backward
//! passes multiply by transposed operands (`xᵀ · grad` for a linear layer's weight, `grad · Wᵀ`
//! for its input, `Qᵀ`, `Kᵀ`, `Vᵀ`, `Pᵀ` in attention), so every training step gathered the
//! activations one element at a time: about a quarter of the main thread of a mini training step
//! (docs/performance.md). matrixmultiply, under ndarray's `general_mat_mul`, takes any strides and
//! packs its operands into the same panels whatever their layout, so the GEMM is called here on
//! the views themselves. The products and their rounding are the same as Burn's (the packed
//! panels, the kernel, the threads and the order of the sums do not depend on the operands'
//! strides); the tests of [`linear`] and [`matmul`] check outputs and gradients bit for bit
//! against Burn's own ops. The large f32 products run on [`sgemm`], an AVX-512 GEMM with
//! matrixmultiply's arithmetic (the same bits, faster; matrixmultiply elsewhere).
//!
//! **GELU.** Burn's is five element-wise passes around libm's f64 `erf` on one thread; [`gelu`]
//! is one pass, in parallel, PyTorch's formula with the f32 `erf` of [`erf`] (within 1 ulp;
//! libm's value rounded to f32 on 98.6% of inputs), and its exact derivative in one pass.
//!
//! Burn has no hook to replace one backend's kernels from outside, and a backend-extension trait
//! would put a bound on every generic `B` of the workspace. The backend is therefore recognised by
//! its type ([`Kind::of`]): NdArray (f32 or f64) and `Autodiff` of it without checkpointing. For
//! every other backend, and for operands this module does not handle, the functions hand their
//! inputs back and the caller runs Burn's op. The autodiff ops are Burn's own (burn-autodiff 0.21
//! `ops/module.rs` linear, `ops/tensor.rs` matmul) with the GEMMs replaced, and a GELU node of
//! the same shape as Burn's `erf` node.

pub(crate) mod adamw;
pub(crate) mod add_layer_norm;
pub(crate) mod band;
#[cfg(target_arch = "x86_64")]
pub(crate) mod dense_attention;
pub(crate) mod dropout;
pub(crate) mod embedding_sum;
pub(crate) mod erf;
pub(crate) mod feed_forward;
pub(crate) mod filled;
pub(crate) mod gelu;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod linear_gelu;
pub(crate) mod masked_softmax;
pub(crate) mod matmul;
#[cfg(target_arch = "x86_64")]
pub(crate) mod one_pass;
pub(crate) mod prefetch;
pub(crate) mod reshape;
#[cfg(target_arch = "x86_64")]
pub(crate) mod rows_kernel;
pub(crate) mod sgemm;
pub(crate) mod simd;
pub(crate) mod softmax;

use core::any::{Any, TypeId};

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_ndarray::{FloatNdArrayElement, NdArrayTensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{
    ArcArray, Array2, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, CowArray, Ix2, Ix3,
    Ix4, IxDyn, LinalgScalar,
};
use rayon::prelude::*;

/// Which NdArray backend `B` is, if it is one this module handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain(DType),
    Tracked(DType),
}

impl Kind {
    fn of<B: Backend>() -> Option<Self> {
        let backend = TypeId::of::<B>();
        [
            (TypeId::of::<NdArray<f32>>(), Kind::Plain(DType::F32)),
            (TypeId::of::<NdArray<f64>>(), Kind::Plain(DType::F64)),
            (
                TypeId::of::<Autodiff<NdArray<f32>>>(),
                Kind::Tracked(DType::F32),
            ),
            (
                TypeId::of::<Autodiff<NdArray<f64>>>(),
                Kind::Tracked(DType::F64),
            ),
        ]
        .into_iter()
        .find_map(|(id, kind)| (id == backend).then_some(kind))
    }

    /// The float type of the backend.
    fn dtype(self) -> DType {
        match self {
            Kind::Plain(dtype) | Kind::Tracked(dtype) => dtype,
        }
    }
}

/// The float elements NdArray stores.
trait Float: FloatNdArrayElement + LinalgScalar + Send + Sync {
    /// The tensor's elements, if they are of this type.
    fn view(tensor: &NdArrayTensor) -> Option<ArrayViewD<'_, Self>>;
    fn wrap(array: ArcArray<Self, IxDyn>) -> NdArrayTensor;
    /// The tensor's array, if it is of this type (without a copy unless it was borrowed from
    /// loaded bytes).
    fn shared(tensor: NdArrayTensor) -> Result<ArcArray<Self, IxDyn>, NdArrayTensor>;
    /// `c = a · b` by [`sgemm::gemm`] if it handles the operands (bit for bit matrixmultiply's
    /// product); `false` otherwise.
    fn fast_gemm(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        c: &mut ArrayViewMut2<'_, Self>,
    ) -> bool;
    /// `a · b + bias` into a new matrix by [`sgemm::product`] if it handles the operands (the
    /// same bits as [`Float::fast_gemm`] then the bias addition); `None` otherwise.
    fn fast_product(
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        bias: Option<&ArrayView1<'_, Self>>,
    ) -> Option<Array2<Self>>;
}

macro_rules! float {
    ($ty:ty, $variant:ident, $fast_gemm:expr, $fast_product:expr) => {
        impl Float for $ty {
            fn view(tensor: &NdArrayTensor) -> Option<ArrayViewD<'_, Self>> {
                match tensor {
                    NdArrayTensor::$variant(storage) => Some(storage.view()),
                    _ => None,
                }
            }
            fn wrap(array: ArcArray<Self, IxDyn>) -> NdArrayTensor {
                NdArrayTensor::from(array)
            }
            fn shared(tensor: NdArrayTensor) -> Result<ArcArray<Self, IxDyn>, NdArrayTensor> {
                match tensor {
                    NdArrayTensor::$variant(storage) => Ok(storage.into_shared()),
                    other => Err(other),
                }
            }
            fn fast_gemm(
                a: &ArrayView2<'_, Self>,
                b: &ArrayView2<'_, Self>,
                c: &mut ArrayViewMut2<'_, Self>,
            ) -> bool {
                $fast_gemm(a, b, c)
            }
            fn fast_product(
                a: &ArrayView2<'_, Self>,
                b: &ArrayView2<'_, Self>,
                bias: Option<&ArrayView1<'_, Self>>,
            ) -> Option<Array2<Self>> {
                $fast_product(a, b, bias)
            }
        }
    };
}
float!(f32, F32, sgemm::gemm, |a, b, bias| sgemm::product(
    a,
    b,
    bias,
    sgemm::Then::Nothing
));
float!(f64, F64, |_, _, _| false, |_, _, _| None);

/// `out = a · b` (either may be any view): burn-ndarray's own call (`general_mat_mul`, α = 1,
/// β = 0), without its copies of the operands, or [`sgemm`]'s product with the same bits.
fn gemm_into<E: Float>(
    a: &ArrayView2<'_, E>,
    b: &ArrayView2<'_, E>,
    out: &mut ArrayViewMut2<'_, E>,
) {
    if !E::fast_gemm(a, b, out) {
        general_mat_mul(E::one(), a, b, E::zero(), out);
    }
}

/// `a · b` into a new standard-layout matrix.
fn gemm<E: Float>(a: ArrayView2<'_, E>, b: ArrayView2<'_, E>) -> Array2<E> {
    if let Some(out) = E::fast_product(&a, &b, None) {
        return out;
    }
    let mut out: Array2<E> = zeros((a.nrows(), b.ncols()));
    gemm_into(&a, &b, &mut out.view_mut());
    out
}

/// Matrix `index` (row-major over the leading dimensions) of a `[..., rows, cols]` view.
fn matrix<'a, E: Float>(view: &ArrayViewD<'a, E>, mut index: usize) -> ArrayView2<'a, E> {
    // Ranks 3 and 4 through fixed-rank views: cheaper than removing axes of a dynamic-rank
    // view one at a time (this runs for every matrix of a batch: 0.7% of a MiniLM forward).
    match view.ndim() {
        3 => {
            let fixed = view.clone().into_dimensionality::<Ix3>().expect("rank 3");
            return fixed.index_axis_move(Axis(0), index);
        }
        4 => {
            let fixed = view.clone().into_dimensionality::<Ix4>().expect("rank 4");
            let heads = fixed.shape()[1];
            return fixed
                .index_axis_move(Axis(0), index / heads)
                .index_axis_move(Axis(0), index % heads);
        }
        _ => {}
    }
    // Row-major over the leading axes, without allocating.
    let mut left: usize = view.shape()[..view.ndim() - 2].iter().product();
    let mut matrix = view.clone();
    while matrix.ndim() > 2 {
        left /= matrix.shape()[0];
        matrix = matrix.index_axis_move(Axis(0), index / left);
        index %= left;
    }
    matrix
        .into_dimensionality::<Ix2>()
        .expect("rank 2 after the leading axes")
}

/// Elements per parallel task: large enough that rayon's scheduling is noise, small enough
/// that an FFN activation (millions of elements) splits over every thread.
pub(crate) const CHUNK: usize = 1 << 14;

/// Zeros filled in at least this many elements per task (64 KiB of f32): below it, one thread.
const ZERO_BLOCK: usize = 1 << 14;

/// `n` zeros, written by all of rayon's threads.
///
/// An output array is zeroed before a kernel overwrites it (safe Rust has no uninitialised
/// buffers), and `vec![0.0; n]` zeroes on the calling thread while the workers wait: the
/// allocator reuses freed memory (`recformer-cli`'s `alloc.rs`), so every large array costs a
/// `memset` there, 6–8% of a MiniLM step's wall time (docs/performance.md). Here the buffer is
/// collected from blocks of zeros in parallel, straight into its final place.
pub(crate) fn zeroed<E: Copy + Send + Sync + Default>(n: usize) -> Vec<E> {
    if n < 2 * ZERO_BLOCK {
        return vec![E::default(); n];
    }
    let mut blocks: Vec<[E; 256]> = Vec::with_capacity(n.div_ceil(256));
    blocks.par_extend(
        rayon::iter::repeat_n([E::default(); 256], n.div_ceil(256)).with_min_len(ZERO_BLOCK / 256),
    );
    let mut out = blocks.into_flattened();
    out.truncate(n);
    out
}

/// A zero array of `shape`, zeroed by [`zeroed`].
pub(crate) fn zeros<E, Sh, D>(shape: Sh) -> ndarray::Array<E, D>
where
    E: Copy + Send + Sync + Default,
    Sh: ndarray::ShapeBuilder<Dim = D>,
    D: ndarray::Dimension,
{
    let shape = shape.into_shape_with_order();
    let n = shape.raw_dim().size();
    ndarray::Array::from_shape_vec(shape, zeroed(n)).expect("the shape's element count")
}

/// A copy of `view` in standard layout, written by all of rayon's threads (ndarray's
/// `as_standard_layout` copies on the calling thread: a head split's or merge's permuted view,
/// about 2% of a MiniLM training step, docs/performance.md). With at least as many indices
/// along the first axis as threads, each task copies whole indices of it lane by lane into
/// rows of the new array that were not zeroed first ([`filled::written`]); otherwise the
/// array is zeroed, then copied element by element.
pub(crate) fn standard<E: Copy + Send + Sync + Default>(
    view: &ndarray::ArrayView<'_, E, IxDyn>,
) -> ndarray::Array<E, IxDyn> {
    let shape = view.raw_dim();
    let (outer, len) = (view.shape().first().copied().unwrap_or(1), view.len());
    if view.ndim() < 2 || len == 0 || outer < rayon::current_num_threads() {
        let mut out = zeros(shape);
        ndarray::Zip::from(&mut out)
            .and(view)
            .par_for_each(|o, &x| *o = x);
        return out;
    }
    // One row of the new array per index of the first axis; a task copies the lanes of its
    // indices in standard order (`last`: the last axis of an index of the first).
    let (width, last) = (len / outer, Axis(view.ndim() - 2));
    let per_task = CHUNK.div_ceil(width).max(1);
    let data = filled::written(outer, width, per_task, |task, rows| {
        let mut lane_buffer = Vec::new();
        for r in 0..rows.rows() {
            let index = view.index_axis(Axis(0), task * per_task + r);
            for lane in index.lanes(last) {
                match lane.as_slice() {
                    Some(lane) => rows.put(r, lane),
                    None => {
                        lane_buffer.clear();
                        lane_buffer.extend(lane.iter().copied());
                        rows.put(r, &lane_buffer);
                    }
                }
            }
        }
    });
    ndarray::Array::from_shape_vec(shape, data).expect("the view's element count")
}

/// The f32 elements of a tensor (its dtype was checked), in standard layout.
fn elements(tensor: &NdArrayTensor) -> CowArray<'_, f32, IxDyn> {
    let view: ArrayViewD<'_, f32> = f32::view(tensor).expect("an f32 tensor (dtype checked)");
    if view.is_standard_layout() {
        CowArray::from(view)
    } else {
        CowArray::from(standard(&view))
    }
}

/// The body of [`map_f32`]: `out` from `input`, the slice of the tensor that starts at element
/// `start`. Implementations mark `apply` `#[inline(always)]`, and everything it calls, so that
/// it is compiled for the CPU's widest vector instructions ([`simd`]).
pub(crate) trait Map: Sync {
    fn apply(&self, start: usize, input: &[f32], out: &mut [f32]);
}

/// The body of [`zip_map_f32`]: `out` from the slices `a` and `b` (as [`Map`]).
pub(crate) trait ZipMap: Sync {
    fn apply(&self, a: &[f32], b: &[f32], out: &mut [f32]);
}

/// One slice of a [`Map`] as a [`simd::Kernel`].
struct MapSlice<'a, M> {
    map: &'a M,
    start: usize,
    input: &'a [f32],
    out: &'a mut [f32],
}

impl<M: Map> simd::Kernel for MapSlice<'_, M> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        self.map.apply(self.start, self.input, self.out);
    }
}

/// One pair of slices of a [`ZipMap`] as a [`simd::Kernel`].
struct ZipSlice<'a, M> {
    map: &'a M,
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
}

impl<M: ZipMap> simd::Kernel for ZipSlice<'_, M> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        self.map.apply(self.a, self.b, self.out);
    }
}

/// `map` on consecutive slices of `task` elements of an f32 tensor read in standard order, in
/// parallel, into a new tensor of the same shape.
fn map_f32(x: &NdArrayTensor, task: usize, map: &impl Map) -> NdArrayTensor {
    let x = elements(x);
    let input = x.as_slice().expect("standard layout");
    let out = filled::filled(input.len(), task, |i, out| {
        let start = i * task;
        simd::vectorized(MapSlice {
            map,
            start,
            input: &input[start..start + out.len()],
            out,
        });
    });
    let array = ArcArray::from_shape_vec(x.raw_dim(), out).expect("same number of elements");
    f32::wrap(array)
}

/// [`map_f32`] over two f32 tensors of one shape (`what` names them in the panic otherwise).
fn zip_map_f32(
    a: &NdArrayTensor,
    b: &NdArrayTensor,
    task: usize,
    what: &str,
    map: &impl ZipMap,
) -> NdArrayTensor {
    let (a, b) = (elements(a), elements(b));
    assert_eq!(a.shape(), b.shape(), "{what}");
    let (xa, xb) = (
        a.as_slice().expect("standard layout"),
        b.as_slice().expect("standard layout"),
    );
    let out = filled::filled(xa.len(), task, |i, out| {
        let range = i * task..i * task + out.len();
        let (a, b) = (&xa[range.clone()], &xb[range]);
        simd::vectorized(ZipSlice { map, a, b, out });
    });
    let array = ArcArray::from_shape_vec(a.raw_dim(), out).expect("same number of elements");
    f32::wrap(array)
}

/// Moves a value between two names of the same type (the `TypeId` was checked by [`Kind::of`]).
fn same<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("the backend's type was checked")
}

/// The backend primitive of a float tensor, under its concrete type `P`.
fn primitive<B: Backend, const D: usize, P: 'static>(tensor: Tensor<B, D>) -> P {
    same(tensor.into_primitive().tensor())
}

/// A float tensor of `B` from its primitive under its concrete type `P`.
fn tensor<B: Backend, const D: usize, P: 'static>(primitive: P) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(same(primitive)))
}

#[cfg(test)]
pub(crate) mod tests;
