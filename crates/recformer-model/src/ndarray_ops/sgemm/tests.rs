//! [`super::gemm`] and [`super::product`] against matrixmultiply (ndarray's `general_mat_mul`), bit for bit;
//! the AMX path against sums in f64. Each test chooses its path ([`on_fma`], [`on_amx`]).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ShapeBuilder};

use super::*;

/// Deterministic values of mixed magnitudes (so that a different order of the sums would
/// round differently).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            u * (1.0 + (s >> 60) as f32)
        })
        .collect()
}

fn matrix(rows: usize, cols: usize, column_major: bool, seed: u64) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols).set_f(column_major), values(rows * cols, seed))
        .expect("shape")
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Every shape class (edges of the micro-kernel and of the tasks, one to three blocks of
/// the sum), every operand layout, with and without a bias: the same bits as
/// matrixmultiply's product followed by the bias addition.
#[test]
fn same_bits_as_matrixmultiply_then_the_bias() {
    on_fma(|| {
        let shapes = [
            (150, 300, 70),
            (113, 513, 47),
            (224, 256, 64),
            (29, 700, 130),
        ];
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            for (a_cm, b_cm) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = matrix(m, k, a_cm, 10 + case as u64);
                let b = matrix(k, n, b_cm, 20 + case as u64);
                let bias = Array1::from(values(n, 30 + case as u64));
                let mut expected = Array2::<f32>::zeros((m, n));
                general_mat_mul(1.0, &a, &b, 0.0, &mut expected);
                let mut with_bias = expected.clone();
                with_bias
                    .rows_mut()
                    .into_iter()
                    .for_each(|mut r| r += &bias);
                for (bias, expected) in [(None, &expected), (Some(&bias.view()), &with_bias)] {
                    let what = format!(
                        "{m}x{k}x{n} a_cm={a_cm} b_cm={b_cm} bias={}",
                        bias.is_some()
                    );
                    if bias.is_none() {
                        // Into an existing matrix (no bias there: linear layers take `product`).
                        let mut c = Array2::<f32>::from_elem((m, n), f32::NAN);
                        let handled = gemm(&a.view(), &b.view(), &mut c.view_mut());
                        assert_eq!(handled, avx512(), "{what}: handled iff AVX-512");
                        if handled {
                            assert_eq!(bits(&c), bits(expected), "{what}");
                        }
                    }
                    // The allocating product: the first block written into rows its tasks zeroed.
                    let product = product(&a.view(), &b.view(), bias, Then::Nothing);
                    assert_eq!(product.is_some(), avx512(), "{what}: a product iff AVX-512");
                    if let Some(product) = product {
                        assert_eq!(bits(&product), bits(expected), "{what}, allocating");
                    }
                }
            }
        }
    });
}

/// Products called from tasks of other products on rayon's pool (the batched products of
/// `matmul`): each takes a fresh buffer where its thread's is in use, same bits.
#[test]
fn nested_products_on_the_pool_give_the_same_bits() {
    on_fma(|| {
        use rayon::prelude::*;
        let pairs: Vec<_> = (0..6)
            .map(|i| {
                (
                    matrix(130, 300, i % 2 == 1, 40 + i),
                    matrix(300, 90, false, 50 + i),
                )
            })
            .collect();
        let results: Vec<(bool, Array2<f32>, Array2<f32>)> = pairs
            .par_iter()
            .map(|(a, b)| {
                let mut expected = Array2::<f32>::zeros((130, 90));
                general_mat_mul(1.0, a, b, 0.0, &mut expected);
                let mut c = Array2::<f32>::zeros((130, 90));
                let handled = gemm(&a.view(), &b.view(), &mut c.view_mut());
                (handled, c, expected)
            })
            .collect();
        for (i, (handled, c, expected)) in results.iter().enumerate() {
            assert_eq!(*handled, avx512(), "product {i}");
            if *handled {
                assert_eq!(bits(c), bits(expected), "product {i}");
            }
        }
    });
}

/// What it leaves to matrixmultiply: small products, an empty sum, C's rows not
/// contiguous; C untouched then.
#[test]
fn declines_small_products_empty_sums_and_strided_outputs() {
    let (a, b) = (matrix(64, 64, false, 1), matrix(64, 64, false, 2));
    let mut c = Array2::<f32>::from_elem((64, 64), 7.0);
    assert!(!gemm(&a.view(), &b.view(), &mut c.view_mut()));
    let (a, b) = (matrix(4096, 0, false, 1), matrix(0, 4096, false, 2));
    let mut c = Array2::<f32>::from_elem((4096, 4096), 7.0);
    assert!(!gemm(&a.view(), &b.view(), &mut c.view_mut()));
    let (a, b) = (matrix(150, 300, false, 1), matrix(300, 70, false, 2));
    let mut c = Array2::<f32>::from_elem((150, 70).f(), 7.0);
    assert!(!gemm(&a.view(), &b.view(), &mut c.view_mut()));
    assert!(c.iter().all(|&v| v == 7.0));
}

/// Products with fewer than 16 rows (the first token's global attention: one row per head),
/// the right operand's rows or columns contiguous, one to three blocks of the sum, partial
/// groups of rows and columns: the same bits as matrixmultiply, which they bypass.
#[test]
fn thin_products_have_matrixmultiplys_bits() {
    if !avx512() {
        return;
    }
    let shapes = [
        (1, 1, 16),
        (4, 256, 512),
        (4, 512, 256),
        (12, 384, 64),
        (12, 64, 384),
        (15, 600, 80),
        (3, 37, 13),
        (7, 300, 9),
    ];
    for (case, &(m, k, n)) in shapes.iter().enumerate() {
        for (a_cm, b_cm) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = matrix(m, k, a_cm, 40 + case as u64);
            let b = matrix(k, n, b_cm, 50 + case as u64);
            let mut expected = Array2::<f32>::zeros((m, n));
            general_mat_mul(1.0, &a, &b, 0.0, &mut expected);
            let mut got = Array2::<f32>::from_elem((m, n), f32::NAN);
            let taken = gemm(&a.view(), &b.view(), &mut got.view_mut());
            // Rows of B whose width is not a multiple of 16 stay with matrixmultiply.
            let expected_taken = b_cm || n % 16 == 0;
            assert_eq!(taken, expected_taken, "{m}x{k}x{n}, b column-major {b_cm}");
            if taken {
                assert_eq!(
                    bits(&got),
                    bits(&expected),
                    "{m}x{k}x{n}, a column-major {a_cm}, b column-major {b_cm}"
                );
            }
        }
    }
}

/// `pack_rows` writes every row's columns as `out[p][r]`, through whole 16 × 16 tiles and the
/// tail, for panels of 14, 16 and 32 rows, full or not, read from a matrix whose rows are
/// contiguous but not adjacent (a column block of a wider matrix).
#[test]
fn pack_rows_transposes_every_row_and_column() {
    fn check<const R: usize>(h: usize, kc: usize) {
        let wide = matrix(h, kc + 5, false, (R * 100 + h * 10 + kc) as u64);
        let mut panel = wide.view();
        panel.slice_axis_inplace(ndarray::Axis(1), (3..3 + kc).into());
        let mut out = vec![f32::NAN; R * kc];
        if h < R {
            out.fill(0.0);
        }
        pack_rows::<R>(panel, kc, &mut out);
        for p in 0..kc {
            for r in 0..R {
                let want = if r < h { panel[[r, p]] } else { 0.0 };
                assert_eq!(
                    out[p * R + r].to_bits(),
                    want.to_bits(),
                    "R {R}, {h} rows, {kc} columns: row {r}, column {p}"
                );
            }
        }
    }
    for kc in [1, 15, 16, 37, 64, 256] {
        for h in [1, 7, 13, 14] {
            check::<14>(h, kc);
        }
        for h in [5, 16] {
            check::<16>(h, kc);
        }
        for h in [3, 17, 32] {
            check::<32>(h, kc);
        }
    }
}

thread_local! {
    /// Products started on this thread take the AMX path (`Some(true)`, where the CPU and the
    /// kernel allow it) or the FMA path (`Some(false)`), whatever `RECFORMER_GEMM` says.
    pub(crate) static FORCED_AMX: core::cell::Cell<Option<bool>> = const { core::cell::Cell::new(None) };
}

/// `f` on a pool of its own whose threads (the caller's included, inside `install`) all
/// choose the path `amx`, so that products started from tasks on the pool take it too.
fn on_path<R: Send>(amx: bool, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .start_handler(move |_| FORCED_AMX.with(|c| c.set(Some(amx))))
        .build()
        .expect("a thread pool")
        .install(f)
}

/// `f` with every product on the FMA path: the tests of matrixmultiply's bits.
pub(crate) fn on_fma<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    on_path(false, f)
}

/// `f` with every product on the AMX path, or `None` (nothing run) where AMX is not usable
/// here.
fn on_amx<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    #[cfg(target_arch = "x86_64")]
    if amx::usable() {
        return Some(on_path(true, f));
    }
    let _ = f;
    eprintln!("AMX not usable on this machine: AMX tests skipped");
    None
}

/// `a · b + bias` in f64, and `Σ |a_ik · b_kj| + |bias_j|` (the scale of each element's
/// rounding errors).
fn exact(a: &Array2<f32>, b: &Array2<f32>, bias: &Array1<f32>) -> (Array2<f64>, Array2<f64>) {
    let (m, n) = (a.nrows(), b.ncols());
    let mut value = Array2::<f64>::zeros((m, n));
    let mut scale = Array2::<f64>::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let (mut v, mut s) = (f64::from(bias[j]), f64::from(bias[j]).abs());
            for k in 0..a.ncols() {
                let p = f64::from(a[[i, k]]) * f64::from(b[[k, j]]);
                v += p;
                s += p.abs();
            }
            value[[i, j]] = v;
            scale[[i, j]] = s;
        }
    }
    (value, scale)
}

/// The largest `|c - exact| / scale` over the elements.
fn worst(c: &Array2<f32>, exact: &(Array2<f64>, Array2<f64>)) -> f64 {
    c.iter()
        .zip(&exact.0)
        .zip(&exact.1)
        .map(|((&c, &e), &s)| (f64::from(c) - e).abs() / s)
        .fold(0.0, f64::max)
}

/// Every shape class of the AMX path (rows, columns and the sum's depth off its 32-wide
/// tiles, one to three blocks, one to four strips per task), with a bias: within f32's accuracy of the exact sums (six
/// bf16 part products; three would be ~2⁻¹⁶ off, a packing error O(1)), and no worse than
/// matrixmultiply's own rounding by more than a small factor.
#[test]
fn amx_products_have_f32_accuracy() {
    let shapes = [
        (150, 300, 70),
        (113, 513, 47),
        (224, 256, 64),
        (64, 400, 96),
        // Tasks of four strips (the last one short): each task's tiles, strip after strip
        // and panel after panel, go through the epilogue while the next one is summed.
        (1000, 150, 80),
    ];
    for (case, &(m, k, n)) in shapes.iter().enumerate() {
        let a = matrix(m, k, false, 60 + case as u64);
        let b = matrix(k, n, false, 70 + case as u64);
        let bias = Array1::from(values(n, 80 + case as u64));
        let exact = exact(&a, &b, &bias);
        let Some(amx) = on_amx(|| product(&a.view(), &b.view(), Some(&bias.view()), Then::Nothing))
        else {
            return;
        };
        let amx = amx.expect("a product on AVX-512");
        let mut fma = Array2::<f32>::zeros((m, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut fma);
        fma.rows_mut().into_iter().for_each(|mut r| r += &bias);
        let (amx_error, fma_error) = (worst(&amx, &exact), worst(&fma, &exact));
        let what = format!("{m}x{k}x{n}: AMX {amx_error:.2e}, matrixmultiply {fma_error:.2e}");
        assert!(amx_error < 2f64.powi(-21), "{what}");
        assert!(amx_error < 4.0 * fma_error.max(2f64.powi(-24)), "{what}");
        assert_ne!(bits(&amx), bits(&fma), "{what}: the AMX path ran");
        // Into an existing matrix: the same blocks, the same bits.
        let no_bias = on_amx(|| product(&a.view(), &b.view(), None, Then::Nothing))
            .flatten()
            .expect("a product");
        let mut c = Array2::<f32>::from_elem((m, n), f32::NAN);
        assert!(on_amx(|| gemm(&a.view(), &b.view(), &mut c.view_mut())).unwrap_or(false));
        assert_eq!(bits(&c), bits(&no_bias), "{m}x{k}x{n}: gemm and product");
    }
}

/// The fused feed-forward block on AMX: the same bits as its two products one after the
/// other (the up-projection with GELU, then the down-projection), as on the FMA path.
#[test]
fn amx_feed_forward_is_its_two_products() {
    let (m, d_model, d_ff, d_out) = (150, 96, 400, 70);
    let x = matrix(m, d_model, false, 90);
    let (w1, w2) = (
        matrix(d_model, d_ff, false, 91),
        matrix(d_ff, d_out, false, 92),
    );
    let (b1, b2) = (
        Array1::from(values(d_ff, 93)),
        Array1::from(values(d_out, 94)),
    );
    let Some((fused, chained)) = on_amx(|| {
        let up = Dense {
            weight: w1.view(),
            bias: Some(b1.view()),
        };
        let down = Dense {
            weight: w2.view(),
            bias: Some(b2.view()),
        };
        let fused = feed_forward(&x.view(), &up, &down).expect("fused");
        let hidden = product(&x.view(), &w1.view(), Some(&b1.view()), Then::Gelu).expect("up");
        let chained = product(&hidden.view(), &w2.view(), Some(&b2.view()), Then::Nothing);
        (fused, chained.expect("down"))
    }) else {
        return;
    };
    assert_eq!(bits(&fused), bits(&chained));
}
