//! Parity with the official PyTorch code (HF transformers 4.28 Longformer inside), on the tiny
//! seeded fixtures written by `scripts/gen_fixtures.py` (see docs/parity.md).

mod common;

use burn::tensor::Tensor;
use common::{assert_close, fixture, fixture_config, read_tensors, Case, ATOL, CASES, RTOL};
use recformer_model::backend::Cpu;
use recformer_model::{load_checkpoint, AttentionImpl, CheckpointPrefix, RecformerConfig};

#[test]
fn fixture_config_is_the_tiny_preset() {
    assert_eq!(fixture_config(), RecformerConfig::tiny());
}

fn check_file(file: &str, prefix: CheckpointPrefix) {
    let device = Default::default();
    let config = fixture_config();
    let loaded = load_checkpoint::<Cpu>(&fixture(file), &config, &device).expect("load");
    assert_eq!(loaded.prefix, prefix);
    for attention_impl in [
        AttentionImpl::Dense,
        AttentionImpl::Sliding,
        AttentionImpl::Auto,
    ] {
        let model = loaded.model.clone().with_attention_impl(attention_impl);
        for name in CASES {
            let case = Case::load(name);
            let out = model.forward(case.input::<Cpu>(&device));
            let what = format!("{file} {name} {attention_impl:?}");
            assert_close(
                out.last_hidden_state.to_data(),
                case.expected("last_hidden_state"),
                RTOL,
                ATOL,
                &format!("{what} last_hidden_state"),
            );
            assert_close(
                out.pooler_output.to_data(),
                case.expected("pooler_output"),
                RTOL,
                ATOL,
                &format!("{what} pooler_output"),
            );
            assert_close(
                model.forward_pooled(case.input::<Cpu>(&device)).to_data(),
                case.expected("pooler_output"),
                RTOL,
                ATOL,
                &format!("{what} forward_pooled"),
            );
            if let Some(head) = &loaded.lm_head {
                assert_close(
                    head.forward(out.last_hidden_state).to_data(),
                    case.expected("mlm_logits"),
                    RTOL,
                    ATOL,
                    &format!("{what} mlm_logits"),
                );
            }
        }
    }
}

#[test]
fn pretraining_bin_matches_pytorch() {
    check_file("pretraining.bin", CheckpointPrefix::Pretraining);
}

#[test]
fn pretraining_safetensors_matches_pytorch() {
    check_file("pretraining.safetensors", CheckpointPrefix::Pretraining);
}

#[test]
fn model_bin_matches_pytorch() {
    check_file("model.bin", CheckpointPrefix::Model);
}

#[test]
fn seqrec_bin_matches_pytorch_and_keeps_item_table() {
    check_file("seqrec.bin", CheckpointPrefix::SeqRec);
    let device = Default::default();
    let loaded =
        load_checkpoint::<Cpu>(&fixture("seqrec.bin"), &fixture_config(), &device).unwrap();
    assert!(loaded.lm_head.is_none());
    let items: Tensor<Cpu, 2> = loaded.item_embedding.expect("item_embedding");
    let expected = read_tensors("seqrec_item_embedding.safetensors")["item_embedding"].clone();
    assert_close(items.to_data(), expected, 0.0, 0.0, "item_embedding");
}

#[test]
fn pooled_output_is_first_token_of_last_hidden_state() {
    let device = Default::default();
    let loaded = load_checkpoint::<Cpu>(&fixture("model.bin"), &fixture_config(), &device).unwrap();
    let case = Case::load("padded");
    let out = loaded.model.forward(case.input::<Cpu>(&device));
    let [b, _, h] = out.last_hidden_state.dims();
    let first = out
        .last_hidden_state
        .slice([0..b, 0..1, 0..h])
        .reshape([b, h]);
    assert_close(
        first.to_data(),
        out.pooler_output.to_data(),
        0.0,
        0.0,
        "cls pooling",
    );
}
