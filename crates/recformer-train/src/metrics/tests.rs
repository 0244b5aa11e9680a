//! Unit tests of the metrics and the reference baselines.
use super::*;

#[test]
fn strict_greater_rank_with_ties_favouring_label() {
    // label 2 has score 0.5; items 0 (0.9) and 4 (0.7) are higher, item 3 ties.
    let scores = [0.9, 0.1, 0.5, 0.5, 0.7];
    assert_eq!(rank_of(&scores, 2, &[]), 2);
    assert_eq!(rank_of(&scores, 3, &[]), 2);
    assert_eq!(rank_of(&scores, 0, &[]), 0);
    assert_eq!(rank_of(&scores, 1, &[]), 4);
    // all equal => rank 0 for everybody
    assert_eq!(rank_of(&[1.0; 7], 5, &[]), 0);
}

#[test]
fn excluding_history_removes_only_higher_history_items() {
    let scores = [0.9, 0.1, 0.5, 0.5, 0.7];
    // history {0, 1, 0 again, 2 (= label, never excluded)}
    assert_eq!(rank_of(&scores, 2, &[0, 1, 0, 2]), 1);
    assert_eq!(rank_of(&scores, 2, &[4, 0]), 0);
    assert_eq!(rank_of(&scores, 1, &[3]), 3);
}

#[test]
fn per_user_formulas() {
    assert!((ndcg_at(0, 10) - 1.0).abs() < 1e-12);
    assert!((ndcg_at(1, 10) - 1.0 / 3f64.log2()).abs() < 1e-12);
    assert!((ndcg_at(9, 10) - 1.0 / 11f64.log2()).abs() < 1e-12);
    assert_eq!(ndcg_at(10, 10), 0.0);
    assert!((ndcg_at(10, 50) - 1.0 / 12f64.log2()).abs() < 1e-12);
    assert_eq!(recall_at(9, 10), 1.0);
    assert_eq!(recall_at(10, 10), 0.0);
    assert!((reciprocal_rank(99) - 0.01).abs() < 1e-12);
}

#[test]
fn user_mean_and_batch_mean_of_means() {
    let mut acc = MetricsAccumulator::new();
    acc.push_batch(&[0, 1, 60]); // batch means: recall@10 = 2/3
    acc.push_batch(&[20]); // recall@10 = 0, recall@50 = 1
    let m = acc.mean_over_users();
    assert_eq!(m.users, 4);
    assert!((m.recall_10 - 0.5).abs() < 1e-12);
    assert!((m.recall_50 - 0.75).abs() < 1e-12);
    let mrr = (1.0 + 0.5 + 1.0 / 61.0 + 1.0 / 21.0) / 4.0;
    assert!((m.mrr - mrr).abs() < 1e-12);
    let ndcg10 = (1.0 + 1.0 / 3f64.log2()) / 4.0;
    assert!((m.ndcg_10 - ndcg10).abs() < 1e-12);
    let ndcg50 = (1.0 + 1.0 / 3f64.log2() + 1.0 / 22f64.log2()) / 4.0;
    assert!((m.ndcg_50 - ndcg50).abs() < 1e-12);

    let b = acc.mean_of_batch_means();
    assert_eq!(b.users, 4);
    assert!((b.recall_10 - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    assert!((b.recall_50 - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
}

#[test]
fn metrics_serialise_with_official_names() {
    let m = Metrics {
        ndcg_10: 0.5,
        users: 3,
        ..Default::default()
    };
    let v = serde_json::to_value(m).unwrap();
    for key in [
        "NDCG@10",
        "Recall@10",
        "NDCG@50",
        "Recall@50",
        "MRR",
        "users",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let back: Metrics = serde_json::from_value(v).unwrap();
    assert_eq!(back, m);
}

#[test]
fn popularity_baseline_counts_and_ranks() {
    let train = vec![vec![0, 1, 1], vec![1, 2], vec![3]];
    let pop = popularity_scores(5, &train);
    assert_eq!(pop, vec![1.0, 3.0, 1.0, 1.0, 0.0]);
    let h0 = [0usize, 1];
    let cases = [
        RankingCase {
            history: &h0,
            label: 1,
        }, // rank 0
        RankingCase {
            history: &h0,
            label: 2,
        }, // items scoring > 1: only item 1 => rank 1; excluding history => 0
        RankingCase {
            history: &h0,
            label: 4,
        }, // rank 4
    ];
    let m = evaluate_static_scores(&pop, &cases, false, 16);
    assert!((m.mrr - (1.0 + 0.5 + 0.2) / 3.0).abs() < 1e-12);
    let m = evaluate_static_scores(&pop, &cases, true, 16);
    // excluded: label 2 -> rank 0; label 4 -> items {2,3} remain higher -> rank 2
    assert!((m.mrr - (1.0 + 1.0 + 1.0 / 3.0) / 3.0).abs() < 1e-12);
}

#[test]
fn random_baseline_is_near_chance() {
    use rand::SeedableRng;
    let h: [usize; 0] = [];
    let cases: Vec<RankingCase<'_>> = (0..400)
        .map(|i| RankingCase {
            history: &h,
            label: i % 100,
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let m = evaluate_random(100, &cases, false, &mut rng);
    // expected Recall@10 = 0.1, Recall@50 = 0.5
    assert!((m.recall_10 - 0.1).abs() < 0.05, "{m:?}");
    assert!((m.recall_50 - 0.5).abs() < 0.08, "{m:?}");
}

#[test]
fn metrics_from_ranks_is_the_user_mean_and_rank_helpers_agree() {
    let m = metrics_from_ranks(&[0, 1, 60, 20]);
    let mut acc = MetricsAccumulator::new();
    acc.push_batch(&[0, 1]);
    acc.push_batch(&[60, 20]);
    let a = acc.mean_over_users();
    assert_eq!(m.users, 4);
    for (x, y) in [
        (m.ndcg_10, a.ndcg_10),
        (m.recall_10, a.recall_10),
        (m.ndcg_50, a.ndcg_50),
        (m.recall_50, a.recall_50),
        (m.mrr, a.mrr),
    ] {
        assert!((x - y).abs() < 1e-12);
    }
    assert_eq!(metrics_from_ranks(&[]), Metrics::default());

    let pop = [1.0, 3.0, 1.0, 1.0, 0.0];
    let h0 = [0usize, 1];
    let cases = [
        RankingCase {
            history: &h0,
            label: 2,
        },
        RankingCase {
            history: &h0,
            label: 4,
        },
    ];
    assert_eq!(static_score_ranks(&pop, &cases, false), vec![1, 4]);
    assert_eq!(static_score_ranks(&pop, &cases, true), vec![0, 2]);

    use rand::SeedableRng;
    let r1 = random_ranks(
        50,
        &cases,
        false,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
    );
    let m1 = evaluate_random(
        50,
        &cases,
        false,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
    );
    assert_eq!(metrics_from_ranks(&r1), m1);
}
