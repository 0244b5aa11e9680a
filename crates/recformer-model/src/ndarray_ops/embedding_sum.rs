//! The four embedding lookups of `RecformerEmbeddings` and their sum in one parallel pass, on
//! NdArray f32 in inference.
//!
//! Burn's `Embedding::forward` gathers each table's rows into a new tensor, and its three `add`s
//! run on the calling thread while the other cores wait: ~1.7% of a mini forward's samples, all
//! on one thread (docs/performance.md). Here each task writes its tokens' sums
//! `((word + position) + token type) + item position` straight from the tables: the same f32
//! additions in the same order, so the same bits. With autodiff (the tables' gradients are
//! scatter-adds) Burn's ops run as before.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor};
use burn_ndarray::NdArrayTensor;
use ndarray::ArcArray;

use super::filled::filled;
use super::{primitive, simd, tensor, Float, Kind, CHUNK};

/// `Σ tables[k][ids[k][b, t]]` over the four tables in order, on NdArray f32 without autodiff;
/// `Err(ids)` for every other backend or float type, tables of different widths, ids of
/// different shapes, or an id outside its table (Burn's lookup then reports it).
///
/// # Shapes
/// - tables: `[rows_k, hidden]`; ids: `[batch, seq_len]` each
/// - output: `[batch, seq_len, hidden]`
pub(crate) fn embedding_sum<B: Backend>(
    tables: [Tensor<B, 2>; 4],
    ids: [Tensor<B, 2, Int>; 4],
) -> Result<Tensor<B, 3>, [Tensor<B, 2, Int>; 4]> {
    let h = tables[0].dims()[1];
    let [b, l] = ids[0].dims();
    let fits = tables
        .iter()
        .all(|t| t.dims()[1] == h && t.dtype() == DType::F32)
        && ids.iter().all(|i| i.dims() == [b, l]);
    if !fits || h == 0 || Kind::of::<B>() != Some(Kind::Plain(DType::F32)) {
        return Err(ids);
    }
    let values: Vec<Vec<i64>> = ids
        .iter()
        .map(|i| {
            i.to_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .expect("i64 ids")
        })
        .collect();
    let primitives: Vec<NdArrayTensor> = tables.into_iter().map(primitive).collect();
    let views: Vec<_> = primitives
        .iter()
        .map(|p| f32::view(p).expect("f32 (dtype checked)"))
        .collect();
    let Some(slices) = views
        .iter()
        .map(|v| v.as_slice())
        .collect::<Option<Vec<&[f32]>>>()
    else {
        return Err(ids);
    };
    let in_range = values.iter().zip(&slices).all(|(ids, table)| {
        ids.iter()
            .all(|&id| id >= 0 && (id as usize) < table.len() / h)
    });
    if !in_range {
        return Err(ids);
    }
    let tokens_per_task = (CHUNK / h).max(1);
    let out = filled(b * l * h, tokens_per_task * h, |task, out| {
        simd::vectorized(Sum {
            first: task * tokens_per_task,
            h,
            ids: &values,
            tables: &slices,
            out,
        });
    });
    let array = ArcArray::from_shape_vec(vec![b, l, h], out).expect("b · l · h elements");
    Ok(tensor::<B, 3, _>(f32::wrap(array.into_dyn())))
}

/// One task's tokens, from `first` on: `((w + p) + t) + i` element by element, from the rows
/// `tables[k][ids[k][token]]` of `h` values.
struct Sum<'a> {
    first: usize,
    h: usize,
    ids: &'a [Vec<i64>],
    tables: &'a [&'a [f32]],
    out: &'a mut [f32],
}

impl simd::Kernel for Sum<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let h = self.h;
        let row = |k: usize, token: usize| {
            let start = self.ids[k][token] as usize * h;
            &self.tables[k][start..start + h]
        };
        for (n, out) in self.out.chunks_exact_mut(h).enumerate() {
            let token = self.first + n;
            let (w, p, t, i) = (row(0, token), row(1, token), row(2, token), row(3, token));
            for ((((o, &w), &p), &t), &i) in out.iter_mut().zip(w).zip(p).zip(t).zip(i) {
                *o = ((w + p) + t) + i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Embedding, EmbeddingConfig};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, Tensor, TensorData};

    use super::embedding_sum;
    use crate::ndarray_ops::tests::{Ad, Plain};

    /// Four tables of `rows[k]` rows and ids drawn in range, `[batch, seq_len]` each.
    fn setup<B: Backend>(
        rows: [usize; 4],
        h: usize,
        [b, l]: [usize; 2],
    ) -> ([Embedding<B>; 4], [Tensor<B, 2, Int>; 4]) {
        let device = Default::default();
        let tables = rows.map(|n| EmbeddingConfig::new(n, h).init::<B>(&device));
        let ids = rows.map(|n| {
            let values: Vec<i64> = (0..b * l).map(|i| ((i * 7919 + n) % n) as i64).collect();
            Tensor::from_data(TensorData::new(values, [b, l]), &device)
        });
        (tables, ids)
    }

    fn burns<B: Backend>(tables: &[Embedding<B>; 4], ids: [Tensor<B, 2, Int>; 4]) -> Tensor<B, 3> {
        let [w, p, t, i] = ids;
        tables[0].forward(w) + tables[1].forward(p) + tables[2].forward(t) + tables[3].forward(i)
    }

    #[test]
    fn the_lookups_and_adds_bit_for_bit() {
        // Widths below and above a vector, several tasks' worth of tokens.
        for (h, shape) in [(5, [2, 3]), (64, [3, 300]), (384, [4, 70])] {
            let (tables, ids) = setup::<Plain>([1000, 513, 4, 51], h, shape);
            let weights = tables.each_ref().map(|t| t.weight.val());
            let fused = embedding_sum(weights, ids.clone())
                .unwrap_or_else(|_| panic!("NdArray f32 takes the fused path"));
            assert_eq!(fused.into_data(), burns(&tables, ids).into_data(), "h {h}");
        }
    }

    #[test]
    fn autodiff_and_ids_out_of_range_are_handed_back() {
        let (tables, ids) = setup::<Ad>([10, 10, 2, 3], 8, [2, 4]);
        assert!(embedding_sum(tables.map(|t| t.weight.val()), ids).is_err());
        let (tables, [w, p, t, _]) = setup::<Plain>([10, 10, 2, 3], 8, [2, 4]);
        let device = Default::default();
        for bad in [3_i64, -1] {
            let i = Tensor::from_data(
                TensorData::new(vec![0, 1, bad, 0, 0, 0, 0, 0], [2, 4]),
                &device,
            );
            let weights = tables.each_ref().map(|t| t.weight.val());
            let result = embedding_sum(weights, [w.clone(), p.clone(), t.clone(), i]);
            assert!(result.is_err(), "id {bad} of a 3-row table");
        }
    }
}
