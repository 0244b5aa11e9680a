//! Training samples of one finetuning epoch.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;

/// Training examples of one epoch, in order: `(history, label)` per user.
pub fn sample_epoch<R: Rng>(
    train: &BTreeMap<usize, Vec<usize>>,
    rng: &mut R,
) -> Vec<(Vec<usize>, usize)> {
    let mut users: Vec<&Vec<usize>> = train.values().filter(|s| !s.is_empty()).collect();
    users.shuffle(rng);
    users
        .into_iter()
        .map(|seq| {
            let t = rng.random_range(0..seq.len());
            (seq[..t].to_vec(), seq[t])
        })
        .collect()
}
