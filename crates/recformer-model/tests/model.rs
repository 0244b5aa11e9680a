//! Model invariants on random-init tiny models: banded attention == dense oracle, padding does not
//! change real tokens, non-CLS global patterns, MLM rows, similarity, autodiff, parameter counts.

mod common;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{Distribution, Tensor, TensorData};
use common::{assert_close, batch_on, tiny_config as config};
use recformer_model::backend::{Cpu, CpuAutodiff};
use recformer_model::{
    cosine_logits, l2_normalize, AttentionImpl, RecformerConfig, RecformerInput, RecformerModel,
};

type B = Cpu;

fn batch(lengths: &[usize], config: &RecformerConfig, seed: u64) -> RecformerInput<B> {
    batch_on::<B>(lengths, config, seed)
}

fn forward(
    model: &RecformerModel<B>,
    input: RecformerInput<B>,
    imp: AttentionImpl,
) -> (TensorData, TensorData) {
    let out = model.clone().with_attention_impl(imp).forward(input);
    (out.last_hidden_state.to_data(), out.pooler_output.to_data())
}

#[test]
fn sliding_equals_dense_oracle() {
    let device = Default::default();
    for window in [4, 8] {
        let config = config(window, 2);
        let model = config.init_model::<B>(&device);
        let w = window / 2;
        for lengths in [
            vec![2 * w, 2 * w - 1],
            vec![3 * w, 1, 2],
            vec![5 * w + 1, 3 * w, 5],
        ] {
            let input = batch(&lengths, &config, lengths.iter().sum::<usize>() as u64);
            let (dense, dense_pool) = forward(&model, input.clone(), AttentionImpl::Dense);
            let (sliding, sliding_pool) = forward(&model, input, AttentionImpl::Sliding);
            let what = format!("window {window} lengths {lengths:?}");
            assert_close(sliding, dense, 1e-5, 1e-5, &what);
            assert_close(sliding_pool, dense_pool, 1e-5, 1e-5, &what);
        }
    }
}

#[test]
fn per_layer_windows_and_no_global_token() {
    let device = Default::default();
    let config = RecformerConfig {
        attention_window: vec![8, 4],
        ..config(8, 2)
    };
    let model = config.init_model::<B>(&device);
    let mut input = batch(&[19, 11], &config, 7);
    input.global_attention_mask = input.global_attention_mask.zeros_like();
    let (dense, _) = forward(&model, input.clone(), AttentionImpl::Dense);
    let (sliding, _) = forward(&model, input, AttentionImpl::Sliding);
    assert_close(sliding, dense, 1e-5, 1e-5, "no global token");
}

#[test]
fn other_global_positions_fall_back_to_the_oracle() {
    let device = Default::default();
    let config = config(4, 2);
    let model = config.init_model::<B>(&device);
    // 16 tokens, a window multiple: neither path pads, so the fallback must be the oracle bit
    // for bit (the dense path alone would not pad a shorter batch, `padding_does_not_change_real_tokens`).
    let mut input = batch(&[16, 9], &config, 3);
    let [b, l] = input.dims();
    // Global attention on tokens 0 and 5 of every row.
    input.global_attention_mask = input
        .global_attention_mask
        .slice_assign([0..b, 5..6], Tensor::ones([b, 1], &device));
    let (dense, _) = forward(&model, input.clone(), AttentionImpl::Dense);
    let (sliding, _) = forward(&model, input.clone(), AttentionImpl::Sliding);
    assert_close(sliding, dense.clone(), 0.0, 0.0, "fallback");
    // And token 5 really is global: its output differs from the CLS-only run.
    let mut cls_only = input;
    cls_only.global_attention_mask = cls_only
        .global_attention_mask
        .slice_assign([0..b, 5..6], Tensor::zeros([b, 1], &device));
    let (cls, _) = forward(&model, cls_only, AttentionImpl::Dense);
    let h = config.hidden_size;
    let row = |d: TensorData| d.to_vec::<f32>().unwrap()[5 * h..6 * h].to_vec();
    assert_ne!(row(dense), row(cls));
    let _ = l;
}

#[test]
fn padding_does_not_change_real_tokens() {
    let device = Default::default();
    let config = config(4, 2);
    let model = config.init_model::<B>(&device);
    let h = config.hidden_size;
    for imp in [AttentionImpl::Dense, AttentionImpl::Sliding] {
        let padded = batch(&[7, 18], &config, 11);
        let alone = RecformerInput::new(
            padded.input_ids.clone().slice([0..1, 0..7]),
            padded.attention_mask.clone().slice([0..1, 0..7]),
            padded.token_type_ids.clone().slice([0..1, 0..7]),
            padded.item_position_ids.clone().slice([0..1, 0..7]),
            padded.global_attention_mask.clone().slice([0..1, 0..7]),
        );
        let out_padded = model.clone().with_attention_impl(imp).forward(padded);
        let out_alone = model.clone().with_attention_impl(imp).forward(alone);
        let real = out_padded.last_hidden_state.slice([0..1, 0..7, 0..h]);
        assert_close(
            real.to_data(),
            out_alone.last_hidden_state.to_data(),
            1e-5,
            1e-5,
            &format!("{imp:?}"),
        );
        assert_close(
            out_padded.pooler_output.slice([0..1, 0..h]).to_data(),
            out_alone.pooler_output.to_data(),
            1e-5,
            1e-5,
            "pooled",
        );
    }
}

#[test]
fn forward_rows_equals_forward_at_the_rows() {
    let device = Default::default();
    let config = config(4, 1);
    let model = config.init_pretraining::<B>(&device);
    let input = batch(&[9, 6], &config, 5);
    let hidden = model.forward(input).last_hidden_state;
    let [_, l, h] = hidden.dims();
    let full = model.lm_head.forward(hidden.clone());
    let rows = Tensor::cat(
        vec![
            hidden.clone().slice([0..1, 3..4, 0..h]).reshape([1, h]),
            hidden.slice([1..2, 5..6, 0..h]).reshape([1, h]),
        ],
        0,
    );
    let logits = model.lm_head.forward_rows(rows);
    let v = config.vocab_size;
    let expected = Tensor::cat(
        vec![
            full.clone().slice([0..1, 3..4, 0..v]).reshape([1, v]),
            full.slice([1..2, 5..6, 0..v]).reshape([1, v]),
        ],
        0,
    );
    assert_close(logits.to_data(), expected.to_data(), 1e-6, 1e-6, "rows");
    let _ = l;
}

#[test]
fn cosine_logits_match_hand_computation() {
    let device = Default::default();
    let a = Tensor::<B, 2>::from_data([[3.0, 4.0], [0.0, 0.0]], &device);
    let b = Tensor::<B, 2>::from_data([[1.0, 0.0], [0.0, 2.0], [-6.0, -8.0]], &device);
    let logits = cosine_logits(a.clone(), b, 0.05);
    let expected = TensorData::new(
        vec![0.6f32 / 0.05, 0.8 / 0.05, -1.0 / 0.05, 0.0, 0.0, 0.0],
        [2, 3],
    );
    assert_close(logits.to_data(), expected, 1e-6, 1e-6, "cosine");
    let n = l2_normalize(a).to_data();
    assert_close(
        n,
        TensorData::new(vec![0.6f32, 0.8, 0.0, 0.0], [2, 2]),
        1e-6,
        0.0,
        "normalize",
    );
}

#[test]
fn dropout_only_under_autodiff_and_gradients_reach_global_projections() {
    let device = Default::default();
    let config = config(4, 2);
    let model = config.init_model::<CpuAutodiff>(&device);
    let input = batch_on::<CpuAutodiff>(&[10, 6], &config, 9);
    // Inference (inner backend): deterministic.
    let valid = model.valid();
    let inner_input = batch(&[10, 6], &config, 9);
    let a = valid.forward(inner_input.clone()).pooler_output.to_data();
    let b = valid.forward(inner_input).pooler_output.to_data();
    assert_close(a, b, 0.0, 0.0, "valid() is deterministic");
    // Training: dropout active, and the loss reaches the global projections. (With 2 layers the
    // local projections of layer 0 matter too: the pooled token only sees them through layer 1.)
    let out = model.forward(input.clone()).pooler_output;
    let out2 = model.forward(input).pooler_output;
    assert_ne!(
        out.to_data().to_vec::<f32>().unwrap(),
        out2.to_data().to_vec::<f32>().unwrap()
    );
    let grads = out.powi_scalar(2).sum().backward();
    let attn = &model.encoder.layer[0].attention.self_attn;
    for (name, param) in [
        ("query_global", &attn.query_global.weight),
        ("key_global", &attn.key_global.weight),
        ("query", &attn.query.weight),
    ] {
        let g = param
            .grad(&grads)
            .unwrap_or_else(|| panic!("no grad for {name}"));
        let norm: f32 = g.abs().sum().into_scalar();
        assert!(norm > 0.0, "zero grad for {name}");
    }
}

#[test]
fn parameter_counts_follow_the_formula() {
    let device = Default::default();
    // The real module against the formula, on tiny and on the mini/base geometries (fewer layers
    // and, for base, a smaller vocabulary to keep the debug-mode init fast).
    let base_geometry = RecformerConfig {
        num_hidden_layers: 1,
        attention_window: vec![64],
        vocab_size: 1000,
        ..RecformerConfig::base()
    };
    let mini_geometry = RecformerConfig {
        num_hidden_layers: 2,
        attention_window: vec![64; 2],
        ..RecformerConfig::mini()
    };
    for (name, config) in [
        ("tiny", RecformerConfig::tiny()),
        ("mini", mini_geometry),
        ("base", base_geometry),
    ] {
        let model = config.init_pretraining::<B>(&device);
        assert_eq!(
            model.longformer.num_params(),
            config.model_num_params(),
            "{name} model"
        );
        assert_eq!(
            model.lm_head.num_params(),
            config.lm_head_num_params(),
            "{name} lm_head"
        );
        assert_eq!(
            model.longformer.embeddings.num_params(),
            config.embeddings_num_params(),
            "{name}"
        );
        assert_eq!(
            model.longformer.encoder.layer[0].num_params(),
            config.layer_num_params(),
            "{name} layer"
        );
    }
    // Counts printed by the HKUST Recformer-mini presentation (torch module summaries).
    let mini = RecformerConfig::mini();
    assert_eq!(mini.embeddings_num_params(), 8_090_880);
    assert_eq!(mini.layer_num_params(), 987_136);
    let base = RecformerConfig::base();
    assert_eq!(base.embeddings_num_params(), 41_794_560);
    assert_eq!(base.layer_num_params(), 8_859_648);
    // Recformer-mini is "14M" without the MLM head.
    assert_eq!(mini.model_num_params(), 14_013_696);
    assert_eq!(mini.lm_head_num_params(), 7_910_458);
    assert_eq!(base.model_num_params(), 148_110_336);
    assert_eq!(base.lm_head_num_params(), 39_245_913);
    let _ = Tensor::<B, 1>::random([1], Distribution::Default, &device);
}
