//! The one-pass local attention against the three ops it replaces, bit for bit.

use burn::tensor::Tensor;

use super::attention;
use crate::attention::AttentionMasks;
use crate::ndarray_ops::band::{context, scores};
use crate::ndarray_ops::masked_softmax::band_masked_softmax;
use crate::ndarray_ops::tests::{heads, masks, random, same_bits, token_major, Ad, Plain};

/// Scores, masked softmax and context as three ops (the path the one-pass op replaces).
fn three_ops(
    q: Tensor<Plain, 4>,
    k: Tensor<Plain, 4>,
    v: Tensor<Plain, 4>,
    masks: &AttentionMasks<Plain>,
    w: usize,
) -> Tensor<Plain, 4> {
    let global = masks.any_global;
    let s = scores(q, k, w, global).unwrap_or_else(|_| panic!("fused scores"));
    let p = band_masked_softmax(s, masks, w).unwrap_or_else(|_| panic!("fused softmax"));
    context(p, v, w, global).unwrap_or_else(|_| panic!("fused context"))
}

/// A shape and its masks: one-sided window, head size, blocks, padding tokens per row (two
/// rows), token 0 global per row.
struct Case {
    w: usize,
    d: usize,
    nb: usize,
    padding: [usize; 2],
    global: [bool; 2],
}

#[test]
fn one_pass_equals_the_three_ops_bit_for_bit() {
    if pulp::x86::V4::try_new().is_none() {
        eprintln!("no AVX-512 on this CPU: the one-pass attention does not run here");
        return;
    }
    // One block, the edges of two, many; 16- and 32-wide parts; a global column or none;
    // padding over whole blocks, and rows with one real token.
    let cases = [
        Case {
            w: 16,
            d: 16,
            nb: 1,
            padding: [0, 5],
            global: [true, true],
        },
        Case {
            w: 16,
            d: 32,
            nb: 3,
            padding: [0, 20],
            global: [false, false],
        },
        Case {
            w: 32,
            d: 64,
            nb: 4,
            padding: [0, 70],
            global: [true, false],
        },
        Case {
            w: 48,
            d: 16,
            nb: 2,
            padding: [3, 0],
            global: [true, true],
        },
        Case {
            w: 32,
            d: 32,
            nb: 2,
            padding: [0, 0],
            global: [false, true],
        },
        Case {
            w: 64,
            d: 48,
            nb: 3,
            padding: [0, 100],
            global: [true, true],
        },
        Case {
            w: 16,
            d: 16,
            nb: 2,
            padding: [31, 31],
            global: [true, false],
        },
    ];
    for Case {
        w,
        d,
        nb,
        padding,
        global,
    } in cases
    {
        let (b, h, l) = (2, 3, nb * w);
        let (q, k, v) = (
            heads::<Plain>(b, h, l, d),
            heads(b, h, l, d),
            heads(b, h, l, d),
        );
        let global = global.map(|g| if g { vec![0] } else { vec![] });
        let masks = masks::<Plain>(l, &padding, &global);
        let one = attention(q.clone(), k.clone(), v.clone(), &masks, w)
            .unwrap_or_else(|_| panic!("w {w}, d {d}: the one-pass op runs"));
        token_major(&one);
        let three = three_ops(q, k, v, &masks, w);
        same_bits(one, three, &format!("w {w}, d {d}, blocks {nb}"));
    }
}

#[test]
fn other_shapes_and_backends_get_their_operands_back() {
    let masks = masks::<Plain>(32, &[0], &[vec![0]]);
    // Parts of 8 columns, heads of 8 dimensions: not whole vectors.
    let (q, k, v) = (
        heads::<Plain>(1, 2, 32, 16),
        heads(1, 2, 32, 16),
        heads(1, 2, 32, 16),
    );
    assert!(attention(q, k, v, &masks, 8).is_err());
    let (q, k, v) = (
        heads::<Plain>(1, 2, 32, 8),
        heads(1, 2, 32, 8),
        heads(1, 2, 32, 8),
    );
    assert!(attention(q, k, v, &masks, 16).is_err());
    // Values whose rows are not contiguous.
    let (q, k) = (heads::<Plain>(1, 2, 32, 16), heads(1, 2, 32, 16));
    let v = random::<Plain, 4>([1, 2, 16, 32]).swap_dims(2, 3);
    assert!(attention(q, k, v, &masks, 16).is_err());
    // Autodiff: the three ops keep what their backward needs.
    let masks = self::masks::<Ad>(32, &[0], &[vec![0]]);
    let (q, k, v) = (
        heads::<Ad>(1, 2, 32, 16),
        heads(1, 2, 32, 16),
        heads(1, 2, 32, 16),
    );
    assert!(attention(q, k, v, &masks, 16).is_err());
}
