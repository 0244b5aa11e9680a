//! Ranking for [`Recommender`]: histories given as keys → user vectors → `cos / temp` against
//! the whole index → on-device top-k.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use recformer_model::cosine_scores;

use super::{Recommendation, Recommender};
use crate::encode::encode_histories;
use crate::error::{Error, Result};
use crate::progress::NoProgress;

impl<B: Backend> Recommender<B> {
    /// The rows of a history given as item keys (oldest first).
    ///
    /// # Errors
    /// A key that is not in the index.
    pub fn history_rows(&self, history: &[&str]) -> Result<Vec<usize>> {
        history
            .iter()
            .map(|k| {
                self.rows.get(*k).copied().ok_or_else(|| {
                    Error::InvalidData(format!(
                        "item `{k}` is not in the index ({} items); add it with add_items",
                        self.len()
                    ))
                })
            })
            .collect()
    }

    /// The top `k` items for one history (item keys, oldest first), best first.
    /// `exclude_history` leaves the history's own items out.
    ///
    /// # Errors
    /// As [`Recommender::recommend_batch`].
    pub fn recommend(
        &self,
        history: &[&str],
        k: usize,
        exclude_history: bool,
    ) -> Result<Vec<Recommendation>> {
        Ok(self
            .recommend_batch(&[history], k, exclude_history)?
            .remove(0))
    }

    /// The top `k` items for many histories: per chunk of [`Recommender::batch_size`] users, the
    /// histories are encoded in one forward, scored against the whole index in one matmul, and
    /// ranked with an on-device top-k.
    ///
    /// # Errors
    /// An empty history, an unknown key, `k == 0`, an empty index.
    pub fn recommend_batch(
        &self,
        histories: &[&[&str]],
        k: usize,
        exclude_history: bool,
    ) -> Result<Vec<Vec<Recommendation>>> {
        if k == 0 || self.is_empty() {
            return Err(Error::InvalidData(format!(
                "cannot recommend {k} of {} items",
                self.len()
            )));
        }
        if histories.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Vec<usize>> = histories
            .iter()
            .map(|h| {
                if h.is_empty() {
                    Err(Error::InvalidData("an empty history".into()))
                } else {
                    self.history_rows(h)
                }
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(rows.len());
        // Chunks of `batch_size` users bound the score matrix to `batch_size × len()`.
        for chunk in rows.chunks(self.batch_size) {
            out.extend(self.rank_chunk(chunk, k, exclude_history)?);
        }
        Ok(out)
    }

    /// Encodes, scores and ranks one chunk of histories (catalogue rows).
    fn rank_chunk(
        &self,
        rows: &[Vec<usize>],
        k: usize,
        exclude_history: bool,
    ) -> Result<Vec<Vec<Recommendation>>> {
        let refs: Vec<&[usize]> = rows.iter().map(|r| r.as_slice()).collect();
        let users = encode_histories(
            &self.model,
            &refs,
            &self.tokens,
            &self.builder,
            self.batch_size,
            &self.device,
            &NoProgress,
            "encode histories",
        );
        let n = self.len();
        let b = rows.len();
        let mut scores = cosine_scores(users, self.normalized.clone(), self.spec.config().temp);
        let mut k = k.min(n);
        if exclude_history {
            let mut mask = vec![false; b * n];
            for (u, hist) in rows.iter().enumerate() {
                for &r in hist {
                    mask[u * n + r] = true;
                }
            }
            let most = rows.iter().map(|h| n - dedup_len(h)).max().unwrap_or(n);
            k = k.min(most);
            let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [b, n]), &self.device);
            scores = scores.mask_fill(mask, f32::NEG_INFINITY);
        }
        if k == 0 {
            return Ok(vec![Vec::new(); b]);
        }
        let (top, idx) = scores.topk_with_indices(k, 1);
        let top: Vec<f32> = top
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| Error::InvalidData(format!("reading scores: {e:?}")))?;
        let idx: Vec<i64> = idx
            .into_data()
            .convert::<i64>()
            .into_vec()
            .map_err(|e| Error::InvalidData(format!("reading top-k rows: {e:?}")))?;
        Ok((0..b)
            .map(|u| {
                (0..k)
                    .map(|j| (idx[u * k + j] as usize, top[u * k + j]))
                    .filter(|(_, s)| s.is_finite())
                    .map(|(row, score)| Recommendation {
                        key: self.keys[row].clone(),
                        row,
                        score,
                    })
                    .collect()
            })
            .collect())
    }
}

/// Number of distinct rows.
fn dedup_len(rows: &[usize]) -> usize {
    let mut r = rows.to_vec();
    r.sort_unstable();
    r.dedup();
    r.len()
}
