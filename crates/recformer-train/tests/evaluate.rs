//! Item encoding and full-ranking evaluation.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{world, Inner};
use recformer_data::{EvalExample, Split};
use recformer_train::evaluate::rank_batch;
use recformer_train::metrics::{rank_of, MetricsAccumulator};
use recformer_train::{
    encode_all_items, encode_histories, evaluate, evaluate_newest_item, evaluate_vectors,
    EvalOptions, NoProgress,
};

fn t2(rows: usize, cols: usize, v: Vec<f32>) -> Tensor<Inner, 2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), &Default::default())
}

#[test]
fn device_ranks_follow_the_official_rule_including_ties() {
    // items (already unit norm): e0, e1, e0 (duplicate => tie), -e0, (e0+e1)/sqrt2
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let items = t2(5, 2, vec![1., 0., 0., 1., 1., 0., -1., 0., s, s]);
    // seq 0 = e0: scores 20, 0, 20, -20, 14.1; seq 1 = e1
    let seq = t2(2, 2, vec![2., 0., 0., 3.]);
    let ranks = rank_batch(seq.clone(), &items, &[0, 4], None, 0.05);
    // label 0 ties with item 2 -> rank 0; for e1 label 4 (14.1) is below item 1 (20) -> rank 1
    assert_eq!(ranks, vec![0, 1]);
    // e1 vs -e0 scores 0: items 1 (20) and 4 (14.1) are higher; items 0 and 2 tie (0)
    let ranks = rank_batch(seq.clone(), &items, &[4, 3], None, 0.05);
    assert_eq!(ranks, vec![2, 2]);
    // history exclusion: seq 0 label 4 with history {0, 4}: item 2 still higher -> rank 1
    let h0: &[usize] = &[0, 4];
    let h1: &[usize] = &[1];
    let ranks = rank_batch(seq, &items, &[4, 3], Some(&[h0, h1]), 0.05);
    assert_eq!(ranks, vec![1, 1]);
}

#[test]
fn item_encoding_is_in_row_order_and_independent_of_batching() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let device = Default::default();
    let model = w.model_config.init_model::<Inner>(&device);
    let all = encode_all_items(&model, &w.item_tokens, &w.builder, 5, &device, &NoProgress);
    assert_eq!(all.dims(), [12, w.model_config.hidden_size]);
    for row in [0usize, 5, 11] {
        let one = encode_all_items(
            &model,
            &w.item_tokens[row..row + 1],
            &w.builder,
            1,
            &device,
            &NoProgress,
        );
        let a = all
            .clone()
            .slice([row..row + 1, 0..w.model_config.hidden_size]);
        let diff: f32 = (a - one).abs().max().into_scalar();
        assert!(diff < 1e-4, "row {row}: {diff}");
    }
}

#[test]
fn evaluation_ranks_equal_cpu_ranks_of_full_scores() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let device = Default::default();
    let model = w.model_config.init_model::<Inner>(&device);
    let items = encode_all_items(&model, &w.item_tokens, &w.builder, 4, &device, &NoProgress);
    let examples: Vec<EvalExample> = w.dataset.eval_examples(Split::Test);
    for exclude_history in [false, true] {
        let options = EvalOptions {
            batch_size: 5,
            temp: 0.05,
            exclude_history,
            max_users: None,
        };
        let ev = evaluate(
            &model,
            &items,
            &w.item_tokens,
            &examples,
            &w.builder,
            &options,
            &device,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(ev.ranks.len(), examples.len());
        // reference: per-user scores on the CPU from the same model, official rank rule
        let items_n = recformer_model::l2_normalize(items.clone());
        let mut acc = MetricsAccumulator::new();
        for (chunk_i, chunk) in examples.chunks(5).enumerate() {
            let hist: Vec<&[usize]> = chunk.iter().map(|e| e.history.as_slice()).collect();
            let (_, input) = w.builder.batch::<Inner>(&hist, &w.item_tokens, &device);
            let seq = recformer_model::l2_normalize(model.forward(input).pooler_output);
            let scores: Vec<f32> = seq
                .matmul(items_n.clone().transpose())
                .div_scalar(0.05)
                .into_data()
                .into_vec()
                .unwrap();
            let ranks: Vec<usize> = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let excl: &[usize] = if exclude_history { &e.history } else { &[] };
                    rank_of(&scores[i * 12..(i + 1) * 12], e.label, excl)
                })
                .collect();
            assert_eq!(ranks, ev.ranks[chunk_i * 5..chunk_i * 5 + chunk.len()]);
            acc.push_batch(&ranks);
        }
        assert_eq!(acc.mean_over_users(), ev.metrics);
        assert_eq!(acc.mean_of_batch_means(), ev.batch_mean);
    }
}

#[test]
fn newest_item_baseline_ranks_by_cosine_to_the_last_history_item() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let device = Default::default();
    let model = w.model_config.init_model::<Inner>(&device);
    let items = encode_all_items(&model, &w.item_tokens, &w.builder, 4, &device, &NoProgress);
    let [n, _] = items.dims();
    let examples: Vec<EvalExample> = w.dataset.eval_examples(Split::Test);
    // reference: CPU score matrix (cosine / temp of every item pair), official rank rule
    let items_n = recformer_model::l2_normalize(items.clone());
    let sim: Vec<f32> = items_n
        .clone()
        .matmul(items_n.transpose())
        .div_scalar(0.05)
        .into_data()
        .into_vec()
        .unwrap();
    for exclude_history in [false, true] {
        let options = EvalOptions {
            batch_size: 3,
            temp: 0.05,
            exclude_history,
            max_users: None,
        };
        let ev = evaluate_newest_item(&items, &examples, &options, &NoProgress).unwrap();
        assert_eq!(ev.ranks.len(), examples.len());
        for (e, &rank) in examples.iter().zip(&ev.ranks) {
            let last = *e.history.last().unwrap();
            let row = &sim[last * n..(last + 1) * n];
            let excl: &[usize] = if exclude_history { &e.history } else { &[] };
            let exact = rank_of(row, e.label, excl);
            // the device matmul may round differently: allow only near-ties to move
            let t = row[e.label];
            let kept = |i: &usize| *i == e.label || !excl.contains(i);
            let lo = (0..n).filter(kept).filter(|&i| row[i] > t + 1e-3).count();
            let hi = (0..n).filter(kept).filter(|&i| row[i] > t - 1e-3).count();
            assert!(
                (lo..=hi).contains(&rank),
                "rank {rank}, exact {exact}, {lo}..={hi}"
            );
        }
        let mut acc = MetricsAccumulator::new();
        for chunk in ev.ranks.chunks(3) {
            acc.push_batch(chunk);
        }
        assert_eq!(acc.mean_over_users(), ev.metrics);
        assert_eq!(acc.mean_of_batch_means(), ev.batch_mean);
    }
    // an empty history has no newest item
    let mut own = examples[0].clone();
    own.history.clear();
    let err = evaluate_newest_item(&items, &[own], &EvalOptions::default(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty history"), "{err}");
}

#[test]
fn cached_user_vectors_rank_exactly_like_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let device = Default::default();
    let model = w.model_config.init_model::<Inner>(&device);
    let items = encode_all_items(&model, &w.item_tokens, &w.builder, 4, &device, &NoProgress);
    let examples: Vec<EvalExample> = w.dataset.eval_examples(Split::Test);
    let hist: Vec<&[usize]> = examples.iter().map(|e| e.history.as_slice()).collect();
    // batches of 3 sorted by length: a different batching than the evaluation's
    let users = encode_histories(
        &model,
        &hist,
        &w.item_tokens,
        &w.builder,
        3,
        &device,
        &NoProgress,
        "users",
    );
    let options = EvalOptions {
        batch_size: 5,
        ..EvalOptions::default()
    };
    let direct = evaluate(
        &model,
        &items,
        &w.item_tokens,
        &examples,
        &w.builder,
        &options,
        &device,
        &NoProgress,
    )
    .unwrap();
    let cached = evaluate_vectors(&items, &users, &examples, &options, &NoProgress).unwrap();
    assert_eq!(direct.ranks, cached.ranks);
    assert_eq!(direct.metrics, cached.metrics);
    let err = evaluate_vectors(&items, &users, &examples[1..], &options, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("user vectors"), "{err}");
}

#[test]
fn batches_side_by_side_give_the_same_vectors_ranks_and_metrics() {
    use recformer_train::waves::concurrent_batches;
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let device = Default::default();
    let model = w.model_config.init_model::<Inner>(&device);
    let examples: Vec<EvalExample> = w.dataset.eval_examples(Split::Test);
    let options = EvalOptions {
        batch_size: 3,
        exclude_history: true,
        ..EvalOptions::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(concurrent_batches::<Inner>(), threads);
            // 12 items in batches of 2: waves of `threads` batches, the last one partial.
            let items =
                encode_all_items(&model, &w.item_tokens, &w.builder, 2, &device, &NoProgress);
            let ev = evaluate(
                &model,
                &items,
                &w.item_tokens,
                &examples,
                &w.builder,
                &options,
                &device,
                &NoProgress,
            )
            .unwrap();
            (items.into_data(), ev)
        })
    };
    let (items_1, ev_1) = run(1);
    for threads in [2, 5] {
        let (items_n, ev_n) = run(threads);
        assert_eq!(items_n, items_1, "item vectors with {threads} threads");
        assert_eq!(ev_n, ev_1, "evaluation with {threads} threads");
    }
    assert_eq!(ev_1.ranks.len(), examples.len());
}
