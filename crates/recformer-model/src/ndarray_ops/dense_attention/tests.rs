//! The one-pass dense attention against the dense oracle, bit for bit.

use burn::nn::DropoutConfig;

use super::attention;
use crate::attention::reference::local_attention_dense;
use crate::ndarray_ops::tests::{heads, masks, random, same_bits, token_major, Ad, Plain};

/// A shape and its masks: tokens, head size, one-sided window, padding tokens per row (two
/// rows), global tokens per row.
struct Case {
    l: usize,
    d: usize,
    w: usize,
    padding: [usize; 2],
    global: [&'static [usize]; 2],
}

#[test]
fn one_pass_equals_the_dense_oracle_bit_for_bit() {
    crate::ndarray_ops::sgemm::tests::on_fma(|| {
        if pulp::x86::V4::try_new().is_none() {
            eprintln!("no AVX-512 on this CPU: the one-pass attention does not run here");
            return;
        }
        // One vector of keys; a partial block of queries (48 = 32 + 16); an odd number of key
        // vectors (80); more keys than one block of the context's sum (272 > 256); heads of 16 to
        // 64 dimensions; windows narrower than the sequence; no global token, token 0, several;
        // padding rows, and a row with one real token.
        let cases = [
            Case {
                l: 16,
                d: 16,
                w: 4,
                padding: [0, 5],
                global: [&[0], &[]],
            },
            Case {
                l: 48,
                d: 32,
                w: 8,
                padding: [0, 47],
                global: [&[], &[0]],
            },
            Case {
                l: 64,
                d: 32,
                w: 32,
                padding: [0, 20],
                global: [&[0], &[0]],
            },
            Case {
                l: 80,
                d: 48,
                w: 16,
                padding: [3, 0],
                global: [&[0, 7, 40], &[]],
            },
            Case {
                l: 272,
                d: 64,
                w: 64,
                padding: [0, 100],
                global: [&[0], &[2, 260]],
            },
        ];
        let no_dropout = DropoutConfig::new(0.0).init();
        for Case {
            l,
            d,
            w,
            padding,
            global,
        } in cases
        {
            let (b, h) = (2, 3);
            let (q, k, v) = (
                heads::<Plain>(b, h, l, d),
                heads(b, h, l, d),
                heads(b, h, l, d),
            );
            let masks = masks::<Plain>(l, &padding, &global.map(<[usize]>::to_vec));
            let one = attention(q.clone(), k.clone(), v.clone(), &masks, w)
                .unwrap_or_else(|_| panic!("l {l}, d {d}: the one-pass op runs"));
            token_major(&one);
            let oracle = local_attention_dense(q, k, v, &masks, w, &no_dropout);
            same_bits(one, oracle, &format!("l {l}, d {d}, w {w}"));
        }
    });
}

#[test]
fn other_shapes_and_backends_get_their_operands_back() {
    let masks = masks::<Plain>(24, &[0], &[vec![0]]);
    // 24 tokens: not whole vectors of keys.
    let (q, k, v) = (
        heads::<Plain>(1, 2, 24, 16),
        heads(1, 2, 24, 16),
        heads(1, 2, 24, 16),
    );
    assert!(attention(q, k, v, &masks, 8).is_err());
    // Heads of 8 dimensions.
    let masks = self::masks::<Plain>(32, &[0], &[vec![0]]);
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
