//! `pooler_type = "avg"`: the mean over real tokens, with and without window padding.

use burn::tensor::{Int, Tensor, TensorData};
use recformer_model::backend::Cpu;
use recformer_model::{Pooler, RecformerConfig, RecformerInput};

type Device = burn::tensor::Device<Cpu>;

/// Two rows: the first `len0` real tokens, the second `len1` real tokens then batch padding.
fn batch(seq_len: usize, len1: usize, device: &Device) -> RecformerInput<Cpu> {
    let pad = RecformerConfig::tiny().pad_token_id as i64;
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    let mut types = Vec::new();
    let mut items = Vec::new();
    for (row, len) in [(0, seq_len), (1, len1)] {
        for i in 0..seq_len {
            let real = i < len;
            ids.push(if real {
                3 + ((i * 7 + row * 5) % 50) as i64
            } else {
                pad
            });
            mask.push(real as i64);
            types.push(if i == 0 {
                0
            } else if real {
                1 + (i % 2) as i64
            } else {
                3
            });
            items.push(if i == 0 {
                0
            } else if real {
                1
            } else {
                5
            });
        }
    }
    let t =
        |v: Vec<i64>| Tensor::<Cpu, 2, Int>::from_data(TensorData::new(v, [2, seq_len]), device);
    RecformerInput::with_cls_global(t(ids), t(mask), t(types), t(items))
}

/// The masked mean computed by hand from the last hidden states.
fn hand_mean(hidden: &TensorData, lens: [usize; 2], seq_len: usize, h: usize) -> Vec<f32> {
    let v: Vec<f32> = hidden.clone().convert::<f32>().iter::<f32>().collect();
    let mut out = Vec::new();
    for (row, len) in lens.into_iter().enumerate() {
        for d in 0..h {
            let sum: f32 = (0..len).map(|i| v[(row * seq_len + i) * h + d]).sum();
            out.push(sum / len as f32);
        }
    }
    out
}

#[test]
fn avg_pooling_is_the_mean_over_real_tokens() {
    let device = Default::default();
    let config = RecformerConfig {
        pooler_type: "avg".into(),
        ..RecformerConfig::tiny()
    };
    let model = config.init_model::<Cpu>(&device);
    assert_eq!(model.pooler, Pooler::Avg);
    let h = config.hidden_size;
    // 6 tokens: window 4 pads to 8 (window padding); 8 tokens: no window padding.
    for (seq_len, len1) in [(6, 3), (8, 5), (8, 8)] {
        let out = model.forward(batch(seq_len, len1, &device));
        let expected = hand_mean(
            &out.last_hidden_state.to_data(),
            [seq_len, len1],
            seq_len,
            h,
        );
        let actual: Vec<f32> = out.pooler_output.to_data().iter::<f32>().collect();
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert!(
                (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "seq {seq_len} elem {i}: {a} vs {e}"
            );
        }
        // Not the first-token vector.
        let first: Vec<f32> = out
            .last_hidden_state
            .clone()
            .narrow(1, 0, 1)
            .to_data()
            .iter::<f32>()
            .take(h)
            .collect();
        assert_ne!(&actual[..h], &first[..]);
    }
}

#[test]
fn cls_pooling_is_the_first_token_and_avg_ignores_padding_values() {
    let device = Default::default();
    let config = RecformerConfig::tiny();
    let model = config.init_model::<Cpu>(&device);
    let out = model.forward(batch(6, 3, &device));
    let first = out
        .last_hidden_state
        .clone()
        .narrow(1, 0, 1)
        .reshape([2, config.hidden_size]);
    assert_eq!(out.pooler_output.to_data(), first.to_data());
    // The padded row's avg vector equals the same row encoded without batch padding.
    let avg = model.clone().with_pooler(Pooler::Avg);
    let padded = avg.forward(batch(6, 3, &device)).pooler_output;
    let alone = avg.forward(batch(3, 3, &device)).pooler_output;
    let a: Vec<f32> = padded.narrow(0, 1, 1).to_data().iter::<f32>().collect();
    let b: Vec<f32> = alone.narrow(0, 1, 1).to_data().iter::<f32>().collect();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
    }
}
