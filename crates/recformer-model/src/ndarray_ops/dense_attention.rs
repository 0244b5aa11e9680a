//! The dense local attention in one pass per batch-and-head pair, for inference on NdArray f32
//! with AVX-512: a block of queries at a time, its scores against every key, their masked
//! softmax and its context, while the block's scores and probabilities stay in L1.
//!
//! The generic path (`attention::dense`) runs three ops: the `[l, d] · [d, l]` scores of every
//! pair through matrixmultiply (which packs both operands of each small product), the masked
//! softmax (`masked_softmax::masked_softmax`), and the `[l, l] · [l, d]` context through
//! matrixmultiply again, the `[batch, heads, l, l]` scores and probabilities written to memory
//! and read back in between (12.6 MB each per MiniLM layer at 64 × 64 tokens; with the
//! products' packing and copies, about 12% of that forward, docs/performance.md). Here, per pair:
//! - the keys are packed once, as `[d, 16]` panels of 16 keys each;
//! - the queries, probabilities and values are read in place (their rows are contiguous);
//! - every score is matrixmultiply's chain of FMAs: the sum over `d` in index order from zero
//!   (`d ≤` [`KC`], one block of its sum);
//! - the rows go through the same masked softmax ([`SoftmaxRows`]), the dense layout's rules;
//! - every context element is matrixmultiply's sum over the keys: blocks of [`KC`] keys, each
//!   block's chain of FMAs from zero, the first block stored and every later one added with one
//!   rounding.
//!
//! So the output is the three ops' output bit for bit (the tests compare them). Inference only:
//! no autodiff, hence no dropout. Anything else gets its operands back.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use ndarray::{ArrayD, ArrayView2, ArrayViewD};
use pulp::x86::V4;
use pulp::{Simd, WithSimd};

use super::masked_softmax::SoftmaxRows;
use super::matrix;
use super::one_pass::{self, per_pair, Operands};
use super::rows_kernel::{epilogue, kernel, load, pack_keys, row, store, LANES};
use super::sgemm::KC;
use crate::attention::AttentionMasks;

/// Query (or probability) rows per micro-kernel call.
const R: usize = 8;
/// Queries per block: the block's scores and probabilities (2 × 32 × `l` floats) stay in L1 for
/// sequences of up to a few hundred tokens.
const QB: usize = 32;

/// `crate::attention::reference::local_attention_dense` without dropout: the dense scores,
/// their masked softmax under `masks` (one-sided window `w`) and the context, in one op. It
/// runs on NdArray f32 without autodiff, on a CPU with AVX-512, when `seq_len` and `head_dim`
/// are multiples of 16, `head_dim` is at most 256 and the query and value rows are contiguous.
/// `Err` hands the operands back otherwise.
///
/// # Shapes
/// - query (scaled), key, value: `[batch, heads, seq_len, head_dim]`
/// - masks: `[batch, seq_len]`
/// - output: `[batch, heads, seq_len, head_dim]`
pub(crate) fn attention<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    masks: &AttentionMasks<B>,
    w: usize,
) -> Result<Tensor<B, 4>, Operands<B>> {
    let [_, h, l, _] = query.dims();
    let fits = l > 0 && l.is_multiple_of(LANES);
    one_pass::attention(query, key, value, masks, fits, |simd, qkv| {
        run(simd, qkv, &SoftmaxRows::dense(masks, h, w))
    })
}

/// The output of every pair, one pair per parallel task, token-major
/// ([`per_pair`]: the merge of heads after it copies nothing).
fn run(simd: V4, qkv: [&ArrayViewD<'_, f32>; 3], rules: &SoftmaxRows) -> ArrayD<f32> {
    let (l, d) = (qkv[0].shape()[2], qkv[0].shape()[3]);
    per_pair(qkv[0], l * d + 2 * QB * l, |i, scratch, out| {
        Simd::vectorize(
            simd,
            Pair {
                simd,
                qkv: qkv.map(|x| matrix(x, i)),
                rules,
                first_score: i * l * l,
                scratch,
                out,
            },
        );
    })
}

/// One batch-and-head pair: its `[l, d]` queries, keys and values, and its output rows.
struct Pair<'a, 'v, 'o> {
    simd: V4,
    qkv: [ArrayView2<'v, f32>; 3],
    rules: &'a SoftmaxRows,
    /// The pair's first element in the `[b, h, l, l]` scores.
    first_score: usize,
    /// Room for the packed keys, a block's scores and its probabilities.
    scratch: &'a mut [f32],
    /// The pair's `l` output rows of `d` floats.
    out: &'a mut [&'o mut [f32]],
}

impl WithSimd for Pair<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        // `V4::vectorize` compiles this body for AVX-512.
        let Pair {
            simd,
            qkv: [q, k, v],
            rules,
            first_score,
            scratch,
            out,
        } = self;
        let (l, d) = q.dim();
        let (keys, rest) = scratch.split_at_mut(l * d);
        let (scores, probs) = rest.split_at_mut(QB * l);
        pack_keys(&k, keys);
        for q0 in (0..l).step_by(QB) {
            let n = QB.min(l - q0);
            let (scores, probs) = (&mut scores[..n * l], &mut probs[..n * l]);
            block_scores(simd, &q, keys, q0, scores);
            rules.softmax(first_score + q0 * l, scores, probs);
            block_context(simd, &v, probs, &mut out[q0..q0 + n]);
        }
    }
}

/// The `[n, l]` scores of queries `q0 .. q0 + n` (`n` a multiple of [`R`]) against every key
/// (`keys`, packed by [`pack_keys`]).
#[inline(always)]
fn block_scores(simd: V4, q: &ArrayView2<'_, f32>, keys: &[f32], q0: usize, scores: &mut [f32]) {
    let (l, d) = q.dim();
    let panel = |c: usize| &keys[c * d..][..d * LANES];
    for r0 in (0..scores.len() / l).step_by(R) {
        let rows: [&[f32]; R] = core::array::from_fn(|r| row(q, q0 + r0 + r));
        let out = |r: usize, c: usize| (r0 + r) * l + c;
        let mut c = 0;
        while c < l {
            if c + 2 * LANES <= l {
                let (p0, p1) = (panel(c), panel(c + LANES));
                let acc = kernel(simd, &rows, d, |p| {
                    [load(&p0[p * LANES..]), load(&p1[p * LANES..])]
                });
                for (r, acc) in acc.iter().enumerate() {
                    store(acc, &mut scores[out(r, c)..]);
                }
                c += 2 * LANES;
            } else {
                let p0 = panel(c);
                let acc = kernel(simd, &rows, d, |p| [load(&p0[p * LANES..])]);
                for (r, acc) in acc.iter().enumerate() {
                    store(acc, &mut scores[out(r, c)..]);
                }
                c += LANES;
            }
        }
    }
}

/// The `[n, d]` context of a block's `[n, l]` probabilities into its `n` output rows: the sum
/// over the keys in blocks of [`KC`], each block's products summed from zero, the first stored
/// and the later ones added.
#[inline(always)]
fn block_context(simd: V4, v: &ArrayView2<'_, f32>, probs: &[f32], out: &mut [&mut [f32]]) {
    let (l, d) = v.dim();
    let mut values: [&[f32]; KC] = [&[]; KC];
    for k0 in (0..l).step_by(KC) {
        let kc = KC.min(l - k0);
        for (c, slot) in values[..kc].iter_mut().enumerate() {
            *slot = row(v, k0 + c);
        }
        let values = &values[..kc];
        for r0 in (0..probs.len() / l).step_by(R) {
            let rows: [&[f32]; R] = core::array::from_fn(|r| &probs[(r0 + r) * l + k0..][..kc]);
            let mut j = 0;
            while j < d {
                if j + 2 * LANES <= d {
                    let acc = kernel(simd, &rows, kc, |c| {
                        [load(&values[c][j..]), load(&values[c][j + LANES..])]
                    });
                    for (r, acc) in acc.iter().enumerate() {
                        epilogue(simd, k0 == 0, acc, &mut out[r0 + r][j..]);
                    }
                    j += 2 * LANES;
                } else {
                    let acc = kernel(simd, &rows, kc, |c| [load(&values[c][j..])]);
                    for (r, acc) in acc.iter().enumerate() {
                        epilogue(simd, k0 == 0, acc, &mut out[r0 + r][j..]);
                    }
                    j += LANES;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
