//! Cosine similarity as matmul of L2-normalised rows (`Similarity` in `recformer/models.py`).

use crate::matmul::matmul;
use burn::tensor::{backend::Backend, Tensor};

/// Norm floor, as `torch.nn.CosineSimilarity(eps=1e-8)`.
pub const COSINE_EPS: f64 = 1e-8;

/// Row-wise L2 normalisation, `x / max(||x||, 1e-8)`.
///
/// # Shapes
/// - `[n, d]` -> `[n, d]`
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(COSINE_EPS);
    x / norm
}

/// `cos(a_i, b_j) / temp` for all pairs, as one matmul (no `[Na, Nb, d]` intermediate).
///
/// # Shapes
/// - a: `[na, d]`, b: `[nb, d]` -> `[na, nb]`
pub fn cosine_logits<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>, temp: f64) -> Tensor<B, 2> {
    cosine_scores(a, l2_normalize(b), temp)
}

/// RecFormer's score, `cos(user_i, item_j) / temp`, against an item matrix whose rows are already
/// L2-normalised (normalise once, score many times): the one scoring function of training
/// losses, evaluation and serving.
///
/// # Shapes
/// - users: `[nu, d]`, items_normalized: `[ni, d]` -> `[nu, ni]`
pub fn cosine_scores<B: Backend>(
    users: Tensor<B, 2>,
    items_normalized: Tensor<B, 2>,
    temp: f64,
) -> Tensor<B, 2> {
    normalized_scores(l2_normalize(users), items_normalized, temp)
}

/// [`cosine_scores`] when the users are normalised too (a loss that normalises once and scores
/// chunks of the item matrix): `users_normalized · items_normalizedᵀ / temp`.
///
/// # Shapes
/// - users_normalized: `[nu, d]`, items_normalized: `[ni, d]` -> `[nu, ni]`
pub fn normalized_scores<B: Backend>(
    users_normalized: Tensor<B, 2>,
    items_normalized: Tensor<B, 2>,
    temp: f64,
) -> Tensor<B, 2> {
    matmul(users_normalized, items_normalized.transpose()).div_scalar(temp)
}
