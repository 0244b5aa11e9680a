//! Loss values against plain-Rust (f64) reference formulas, and lean vs full MLM.

mod common;

use burn::tensor::{Distribution, Tensor, TensorData};
use common::Inner;
use recformer_model::{LongformerLMHead, RecformerConfig};
use recformer_train::loss::{
    cross_entropy_ignore, finetune_loss, iic_loss, in_batch_accuracy, mlm_loss_full, mlm_loss_lean,
    IGNORE_LABEL,
};

fn values<const D: usize>(t: Tensor<Inner, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn scalar(t: Tensor<Inner, 1>) -> f64 {
    values(t)[0]
}

fn rand2(rows: usize, cols: usize, seed: u64) -> Tensor<Inner, 2> {
    // deterministic pseudo-random values without touching the backend RNG
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), &Default::default())
}

fn log_softmax_row(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-8);
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-8);
    dot / (na * nb)
}

#[test]
fn cross_entropy_ignores_minus_100() {
    let logits = rand2(5, 7, 1);
    let rows = values(logits.clone());
    let labels = [3, IGNORE_LABEL, 0, 6, IGNORE_LABEL];
    let mut expected = 0.0;
    for (i, &l) in labels.iter().enumerate() {
        if l != IGNORE_LABEL {
            expected -= log_softmax_row(&rows[i * 7..i * 7 + 7])[l as usize];
        }
    }
    expected /= 3.0;
    let got = scalar(cross_entropy_ignore(logits.clone(), &labels));
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // all ignored: 0, not NaN
    let got = scalar(cross_entropy_ignore(logits, &[IGNORE_LABEL; 5]));
    assert_eq!(got, 0.0);
}

#[test]
fn iic_loss_matches_the_official_formula() {
    let (b, h, temp) = (4, 6, 0.05);
    let z1 = rand2(b, h, 2);
    let z2 = rand2(b, h, 3);
    let a = values(z1.clone());
    let c = values(z2.clone());
    let mut expected = 0.0;
    let mut hits = 0;
    for i in 0..b {
        let row: Vec<f64> = (0..b)
            .map(|j| cosine(&a[i * h..(i + 1) * h], &c[j * h..(j + 1) * h]) / temp)
            .collect();
        expected -= log_softmax_row(&row)[i];
        let argmax = (0..b).max_by(|&x, &y| row[x].total_cmp(&row[y])).unwrap();
        hits += usize::from(argmax == i);
    }
    expected /= b as f64;
    let out = iic_loss(z1, z2, temp);
    let got = scalar(out.loss);
    assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    let acc = in_batch_accuracy(out.logits);
    assert!((acc - hits as f64 / b as f64).abs() < 1e-12);
}

#[test]
fn finetune_loss_is_full_softmax_and_chunking_does_not_change_it() {
    let (b, n, h, temp) = (3, 11, 5, 0.05);
    let seq = rand2(b, h, 4);
    let items = rand2(n, h, 5);
    let items_n = recformer_model::l2_normalize(items.clone());
    let labels = [0usize, 7, 10];
    let s = values(seq.clone());
    let it = values(items);
    let mut expected = 0.0;
    for (i, &l) in labels.iter().enumerate() {
        let row: Vec<f64> = (0..n)
            .map(|j| cosine(&s[i * h..(i + 1) * h], &it[j * h..(j + 1) * h]) / temp)
            .collect();
        expected -= log_softmax_row(&row)[l];
    }
    expected /= b as f64;
    for chunk in [1, 4, 11, 1000] {
        let got = scalar(finetune_loss(
            seq.clone(),
            items_n.clone(),
            &labels,
            temp,
            chunk,
        ));
        assert!(
            (got - expected).abs() < 1e-4,
            "chunk {chunk}: {got} vs {expected}"
        );
    }
}

#[test]
fn lean_mlm_equals_full_mlm() {
    let config = RecformerConfig::tiny();
    let device = Default::default();
    let head = LongformerLMHead::<Inner>::init(&config, &device);
    let (b, l, h) = (2, 6, config.hidden_size);
    let hidden = Tensor::<Inner, 3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
    let mut labels = vec![IGNORE_LABEL; b * l];
    labels[1] = 5;
    labels[4] = 63;
    labels[7] = 0;
    labels[11] = 12;
    let full = scalar(mlm_loss_full(head.forward(hidden.clone()), &labels));
    let lean = scalar(mlm_loss_lean(&head, hidden.clone(), &labels));
    assert!((full - lean).abs() < 1e-5, "{full} vs {lean}");
    assert!(full > 0.0);
    let none = scalar(mlm_loss_lean(&head, hidden, &[IGNORE_LABEL; 12]));
    assert_eq!(none, 0.0);
}

#[test]
fn lean_and_full_mlm_give_the_same_gradients() {
    use burn::module::AutodiffModule;
    use burn::optim::GradientsParams;
    type B = common::B;
    let config = RecformerConfig::tiny();
    let device = Default::default();
    let head = LongformerLMHead::<B>::init(&config, &device);
    let hidden_inner = Tensor::<Inner, 3>::random(
        [2, 5, config.hidden_size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<i64> = (0..10)
        .map(|i| {
            if i % 3 == 0 {
                (i * 7 % 64) as i64
            } else {
                IGNORE_LABEL
            }
        })
        .collect();
    let hidden = || Tensor::<B, 3>::from_inner(hidden_inner.clone());
    let g_full = GradientsParams::from_grads(
        mlm_loss_full(head.forward(hidden()), &labels).backward(),
        &head,
    );
    let g_lean =
        GradientsParams::from_grads(mlm_loss_lean(&head, hidden(), &labels).backward(), &head);
    let id = head.dense.weight.id;
    let a = values(g_full.get::<Inner, 2>(id).unwrap());
    let c = values(g_lean.get::<Inner, 2>(id).unwrap());
    let max_diff = a
        .iter()
        .zip(&c)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(max_diff < 1e-5, "max diff {max_diff}");
    let _ = head.valid();
}
