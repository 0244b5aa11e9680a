//! The sliding window's local attention in one pass per batch-and-head pair, for inference on
//! NdArray f32 with AVX-512: a block of `w` queries at a time, its scores, their masked softmax
//! and its context, while the block's scores and probabilities stay in L1.
//!
//! The generic path runs three ops ([`super::scores`], `masked_softmax::band_masked_softmax`,
//! [`super::context`]). They write and read the `[batch, heads, l / w, w, 3w + 1]` scores and
//! probabilities through memory (6.4 MB each per mini layer at 8 × 512 tokens). They also run
//! every small product (`[w, d] · [d, 3w]` per block) through matrixmultiply, which packs both
//! operands of each. Here, per pair:
//! - the keys are packed once, as `[d, 16]` panels of 16 keys each;
//! - the queries, probabilities and values are read in place (their rows are contiguous);
//! - every score and every context element is the chain of FMAs that matrixmultiply computes:
//!   the sum in index order from zero, each part of the context (previous, same and next key
//!   block, then the global column) added to the running sum with one rounding;
//! - the rows go through the same masked softmax ([`SoftmaxRows`]);
//! - a strip of 8 query rows reaches only columns `r0 ..= r0 + 7 + 2w` of the block's `3w`
//!   through the window (row `r` reaches `r ..= r + 2w`). The scores of 16-column groups
//!   outside that range are not computed (the softmax replaces them by the mask value without
//!   reading them). The context skips the columns outside it as well: their probabilities are
//!   exactly 0 in every row of the strip, so each term they would add is `0 · v = ±0`. A sum
//!   that starts at +0 stays +0 through leading zero terms, and adding ±0 to a non-zero sum
//!   leaves it unchanged (a sum that is exactly zero could at most change the sign of its
//!   zero). This holds for finite values; it saves about a fifth of the band's FMAs.
//!
//! So the output is the three ops' output bit for bit for finite inputs (the tests compare
//! them). Inference only: no autodiff, hence no dropout. Anything else gets its operands back.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use ndarray::{ArrayD, ArrayView2, ArrayViewD};
use pulp::x86::V4;
use pulp::{Simd, WithSimd};

use super::super::masked_softmax::SoftmaxRows;
use super::super::matrix;
use super::super::one_pass::{self, per_pair, Operands};
use super::super::rows_kernel::{add_into, kernel, load, pack_keys, row, store, LANES};
use super::super::sgemm::KC;
use super::kernels::{dims4, Band};
use crate::attention::AttentionMasks;

/// Query (or probability) rows per micro-kernel call.
const R: usize = 8;

/// `crate::attention::sliding::local_attention_sliding` without dropout: the band's scores,
/// their masked softmax under `masks` and the context, in one op. It runs on NdArray f32
/// without autodiff, on a CPU with AVX-512, when `w` and `head_dim` are multiples of 16 and at
/// most 256 and the query and value rows are contiguous. `Err` hands the operands back
/// otherwise.
///
/// # Shapes
/// - query (scaled), key, value: `[batch, heads, seq_len, head_dim]`, `seq_len % w == 0`
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
    let fits = (1..=KC).contains(&w) && w.is_multiple_of(LANES) && l.is_multiple_of(w);
    one_pass::attention(query, key, value, masks, fits, |simd, qkv| {
        let rules = SoftmaxRows::band(masks, h, w);
        let band = Band {
            w,
            global: masks.any_global,
        };
        run(simd, qkv, &rules, band)
    })
}

/// The output of every pair, one pair per parallel task, token-major ([`per_pair`]).
fn run(simd: V4, qkv: [&ArrayViewD<'_, f32>; 3], rules: &SoftmaxRows, band: Band) -> ArrayD<f32> {
    let (_, _, l, d) = dims4(qkv[0]);
    let cols = band.cols();
    per_pair(qkv[0], l * d + 2 * band.w * cols, |i, scratch, out| {
        Simd::vectorize(
            simd,
            Pair {
                simd,
                qkv: qkv.map(|x| matrix(x, i)),
                rules,
                band,
                first_score: i * l * cols,
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
    band: Band,
    /// The pair's first element in the band's `[b, h, l / w, w, cols]` scores.
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
            band,
            first_score,
            scratch,
            out,
        } = self;
        let (l, d) = q.dim();
        let (w, cols) = (band.w, band.cols());
        let nb = l / w;
        let (keys, rest) = scratch.split_at_mut(l * d);
        let (scores, probs) = rest.split_at_mut(w * cols);
        pack_keys(&k, keys);
        // Key 0, against which every query scores the global column.
        let key0: Vec<f32> = if band.global {
            k.row(0).to_vec()
        } else {
            Vec::new()
        };
        for blk in 0..nb {
            let block = Block {
                simd,
                band,
                blk,
                nb,
                d,
            };
            block.scores(&q, keys, &key0, scores);
            rules.softmax(first_score + blk * w * cols, scores, probs);
            block.context(&v, probs, &mut out[blk * w..(blk + 1) * w]);
        }
    }
}

/// One block of `w` queries of a pair.
struct Block {
    simd: V4,
    band: Band,
    blk: usize,
    nb: usize,
    d: usize,
}

impl Block {
    /// The block's `[w, cols]` scores: part `s`'s columns hold its products with key block
    /// `blk + s - 1` (`keys`, packed; zero outside the sequence), the last column its products
    /// with key 0 (`key0`, when the band has a global column).
    #[inline(always)]
    fn scores(&self, q: &ArrayView2<'_, f32>, keys: &[f32], key0: &[f32], scores: &mut [f32]) {
        let Block {
            simd,
            band,
            blk,
            nb,
            d,
        } = *self;
        let (w, cols) = (band.w, band.cols());
        let parts = Band::parts_inside(blk, nb);
        for row in scores.chunks_exact_mut(cols) {
            // The parts outside the sequence score 0, as the op's.
            row[..parts.start * w].fill(0.0);
            row[parts.end * w..3 * w].fill(0.0);
        }
        for r0 in (0..w).step_by(R) {
            let rows: [&[f32]; R] = core::array::from_fn(|r| row(q, blk * w + r0 + r));
            if band.global {
                // Each lane holds the same chain (the key's element broadcast): the global
                // column's dot products, eight independent chains at a time.
                let acc = kernel(simd, &rows, d, |p| [simd.splat_f32x16(key0[p])]);
                for (r, acc) in acc.iter().enumerate() {
                    let lanes: [f32; LANES] = pulp::bytemuck::cast(acc[0]);
                    scores[(r0 + r) * cols + 3 * w] = lanes[0];
                }
            }
            // The strip's rows reach columns `r0 ..= r0 + R - 1 + 2w` through the window; the
            // softmax never reads the others.
            let reached = |col: usize| col + LANES > r0 && col <= r0 + R - 1 + 2 * w;
            for s in parts.clone() {
                // Columns `s·w + c` read key `(blk + s - 1)·w + c`, in panel `(blk + s - 1)·w/16 + c/16`.
                let first_key = (blk + s - 1) * w;
                let panel = |c: usize| &keys[(first_key + c) * d..][..d * LANES];
                let mut c = 0;
                while c < w {
                    let out = |r: usize| (r0 + r) * cols + s * w + c;
                    if !reached(s * w + c) {
                        c += LANES;
                    } else if c + 2 * LANES <= w && reached(s * w + c + LANES) {
                        let (p0, p1) = (panel(c), panel(c + LANES));
                        let acc = kernel(simd, &rows, d, |p| {
                            [load(&p0[p * LANES..]), load(&p1[p * LANES..])]
                        });
                        for (r, acc) in acc.iter().enumerate() {
                            store(acc, &mut scores[out(r)..]);
                        }
                        c += 2 * LANES;
                    } else {
                        let p0 = panel(c);
                        let acc = kernel(simd, &rows, d, |p| [load(&p0[p * LANES..])]);
                        for (r, acc) in acc.iter().enumerate() {
                            store(acc, &mut scores[out(r)..]);
                        }
                        c += LANES;
                    }
                }
            }
        }
    }

    /// The block's `[w, d]` context into its `w` output rows (zero on entry): part by part, each
    /// part's products summed from zero and added to the running sum, the global column last.
    #[inline(always)]
    fn context(&self, v: &ArrayView2<'_, f32>, probs: &[f32], out: &mut [&mut [f32]]) {
        let Block {
            simd,
            band,
            blk,
            nb,
            d,
        } = *self;
        let (w, cols) = (band.w, band.cols());
        let mut values: [&[f32]; KC] = [&[]; KC];
        for s in Band::parts_inside(blk, nb) {
            let first_key = (blk + s - 1) * w;
            for (c, slot) in values[..w].iter_mut().enumerate() {
                *slot = row(v, first_key + c);
            }
            let values = &values[..w];
            for r0 in (0..w).step_by(R) {
                // The columns of the part the strip's rows reach through the window: the
                // others hold probability 0 in every row of the strip.
                let first = r0.saturating_sub(s * w).min(w);
                let end = (r0 + R + 2 * w).saturating_sub(s * w).min(w);
                if first >= end {
                    continue;
                }
                let values = &values[first..end];
                let rows: [&[f32]; R] = core::array::from_fn(|r| {
                    &probs[(r0 + r) * cols + s * w + first..][..end - first]
                });
                let mut j = 0;
                while j < d {
                    if j + 2 * LANES <= d {
                        let acc = kernel(simd, &rows, end - first, |c| {
                            [load(&values[c][j..]), load(&values[c][j + LANES..])]
                        });
                        for (r, acc) in acc.iter().enumerate() {
                            add_into(simd, acc, &mut out[r0 + r][j..]);
                        }
                        j += 2 * LANES;
                    } else {
                        let acc = kernel(simd, &rows, end - first, |c| [load(&values[c][j..])]);
                        for (r, acc) in acc.iter().enumerate() {
                            add_into(simd, acc, &mut out[r0 + r][j..]);
                        }
                        j += LANES;
                    }
                }
            }
        }
        if band.global {
            let value0 = row(v, 0);
            let zero = simd.splat_f32x16(0.0);
            for (out, probs) in out.iter_mut().zip(probs.chunks_exact(cols)) {
                let p = simd.splat_f32x16(probs[3 * w]);
                for (j, out) in out.chunks_exact_mut(LANES).enumerate() {
                    let ab = simd.mul_add_f32x16(p, load(&value0[j * LANES..]), zero);
                    add_into(simd, &[ab], out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
